//! The vocabulary of sharing requests and grants (办法 第十五条, 第十六条; SPEC C3).

use serde::{Deserialize, Serialize};
use shutong_catalog::value_list;

shutong_store::typed_id!(
    /// 共享申请标识: the ID of a sharing request (subscription, application or negotiation), 办法 第十五条.
    RequestId
);
shutong_store::typed_id!(
    /// 授权标识: the ID of a grant (共享授权), 办法 第十六条.
    GrantId
);
shutong_store::typed_id!(
    /// 提醒标识: the ID of a notice to a department (逾期、到期、答复提醒).
    NotificationId
);

value_list!(
    /// 申请类别: how a consumer asks for a resource, decided by the resource's and the items' 共享类型.
    RequestKind {
        /// 直接获取 (无条件共享, R-REQ-1): a subscription that creates a grant at once.
        Subscription => "subscription" / "无条件共享订阅",
        /// 共享申请 (有条件共享, R-REQ-2): answered by the provider within 10 working days.
        Application => "application" / "有条件共享申请",
        /// 不予共享 resources or items (R-REQ-4): the consumer opens a negotiation with the provider.
        Negotiation => "negotiation" / "不予共享协商",
    }
);

value_list!(
    /// 申请状态 (R-REQ-2 … R-REQ-4).
    RequestStatus {
        /// 待答复: waiting for the provider's answer.
        Pending => "pending" / "待答复",
        /// 已同意: answered with a grant (at any stage).
        Approved => "approved" / "已同意",
        /// 已拒绝 / 不予共享: refused with a reason (at the stage in `stage`).
        Rejected => "rejected" / "已拒绝",
        /// 已撤回 by the consumer.
        Withdrawn => "withdrawn" / "已撤回",
        /// 协商中: the consumer and the provider negotiate.
        Negotiating => "negotiating" / "协商中",
        /// 协调中: the sharing authority of the level coordinates.
        Coordinating => "coordinating" / "协调中",
        /// 领导小组协调中: the leading group decides (provincial departments involved).
        LeadingGroup => "leading_group" / "领导小组协调中",
    }
);

impl RequestStatus {
    /// Still waiting for someone.
    pub fn is_open(self) -> bool {
        matches!(self, RequestStatus::Pending | RequestStatus::Negotiating | RequestStatus::Coordinating | RequestStatus::LeadingGroup)
    }
}

value_list!(
    /// 环节: where a request stands in 第十六条's sequence.
    Stage {
        /// 答复: the provider answers the application.
        Answer => "answer" / "提供部门答复",
        /// 协商: consumer and provider negotiate.
        Negotiation => "negotiation" / "协商",
        /// 协调: the sharing authority of the level coordinates.
        Coordination => "coordination" / "主管部门协调",
        /// 领导小组: the leading group decides where provincial departments are involved.
        LeadingGroup => "leading_group" / "领导小组协调",
    }
);

impl Stage {
    /// The request status while this stage is open.
    pub fn open_status(self) -> RequestStatus {
        match self {
            Stage::Answer => RequestStatus::Pending,
            Stage::Negotiation => RequestStatus::Negotiating,
            Stage::Coordination => RequestStatus::Coordinating,
            Stage::LeadingGroup => RequestStatus::LeadingGroup,
        }
    }

    /// The origin of a grant decided at this stage.
    pub fn grant_origin(self) -> GrantOrigin {
        match self {
            Stage::Answer => GrantOrigin::Approval,
            Stage::Negotiation => GrantOrigin::Negotiation,
            Stage::Coordination => GrantOrigin::Coordination,
            Stage::LeadingGroup => GrantOrigin::LeadingGroup,
        }
    }
}

value_list!(
    /// 使用用途 (R-REQ-2).
    Purpose {
        AdministrativeBasis => "administrative_basis" / "作为行政依据",
        WorkReference => "work_reference" / "工作参考",
        DataVerification => "data_verification" / "用于数据校核",
        BusinessCollaboration => "business_collaboration" / "业务协同",
        /// 其他: described in `purpose_detail`.
        Other => "other" / "其他",
    }
);

value_list!(
    /// 使用方式: how granted data is consumed (SPEC C4).
    AccessMethod {
        OnlineQuery => "online_query" / "联机查询",
        BulkDownload => "bulk_download" / "批量下载",
        Subscription => "subscription" / "订阅",
        SystemIntegration => "system_integration" / "系统对接",
    }
);

impl AccessMethod {
    /// The catalog's 共享方式 that offers this access method.
    pub fn offered_by(self) -> shutong_catalog::SharingMethod {
        use shutong_catalog::SharingMethod as M;
        match self {
            AccessMethod::OnlineQuery => M::OnlineQuery,
            AccessMethod::BulkDownload => M::BulkDownload,
            AccessMethod::Subscription => M::ExchangeNode,
            AccessMethod::SystemIntegration => M::SystemIntegration,
        }
    }
}

value_list!(
    /// Which side of requests a list shows, seen from the caller's department.
    Side {
        /// 我申请的: the caller's department is the consumer.
        Consumer => "consumer" / "我申请的",
        /// 向我申请的: the caller's department provides the resource.
        Provider => "provider" / "向我申请的",
        /// 待我办理: open requests whose current stage the caller's department owns.
        Owner => "owner" / "待我办理",
    }
);

value_list!(
    /// 授权来源: which decision created a grant.
    GrantOrigin {
        Subscription => "subscription" / "无条件共享直接获取",
        Approval => "approval" / "提供部门同意",
        Negotiation => "negotiation" / "协商一致",
        Coordination => "coordination" / "主管部门协调",
        LeadingGroup => "leading_group" / "领导小组协调",
    }
);

value_list!(
    /// 授权状态 as of a date: revoked and expired grants stop working at once (R-REQ-5).
    GrantState {
        Active => "active" / "有效",
        NotYetValid => "not_yet_valid" / "未生效",
        Expired => "expired" / "已过期",
        Revoked => "revoked" / "已撤销",
    }
);

value_list!(
    /// A row filter's comparison.
    FilterOp {
        /// The item equals the value.
        Eq => "eq" / "等于",
        /// The item equals one of the values.
        In => "in" / "属于",
        /// The item starts with the value (e.g. a region code prefix).
        Prefix => "prefix" / "前缀",
    }
);

/// 行范围: one condition on the rows a grant covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowCondition {
    /// An information item of the resource (it need not be among the granted items).
    pub item: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

impl RowCondition {
    /// Whether one value satisfies the condition.
    pub fn holds(&self, v: &str) -> bool {
        match self.op {
            FilterOp::Eq | FilterOp::In => self.values.iter().any(|x| x == v),
            FilterOp::Prefix => self.values.iter().any(|x| v.starts_with(x.as_str())),
        }
    }
}

/// 行范围: the rows a grant covers; all conditions hold (AND). Empty means every row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    pub conditions: Vec<RowCondition>,
}

impl RowFilter {
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Whether a row passes, given a lookup of its values by item name.
    pub fn matches<'a>(&self, value_of: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.conditions.iter().all(|c| c.holds(value_of(&c.item).unwrap_or("")))
    }

    /// A readable form, e.g. `户籍地区划代码 前缀 3201`.
    pub fn describe(&self) -> String {
        if self.conditions.is_empty() {
            return "全部记录".into();
        }
        self.conditions.iter().map(|c| format!("{} {} {}", c.item, c.op.label_zh(), c.values.join("、"))).collect::<Vec<_>>().join("；")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_filter_matches() {
        let f = RowFilter {
            conditions: vec![
                RowCondition { item: "区划".into(), op: FilterOp::Prefix, values: vec!["3201".into()] },
                RowCondition { item: "性别".into(), op: FilterOp::In, values: vec!["1".into(), "2".into()] },
            ],
        };
        let row = |r: &'static [(&'static str, &'static str)]| move |k: &str| r.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert!(f.matches(row(&[("区划", "320102"), ("性别", "1")])));
        assert!(!f.matches(row(&[("区划", "320202"), ("性别", "1")])));
        assert!(!f.matches(row(&[("区划", "320102")])));
        assert!(RowFilter::default().matches(row(&[])));
        assert_eq!(f.describe(), "区划 前缀 3201；性别 属于 1、2");
    }

    #[test]
    fn statuses() {
        assert!(RequestStatus::Pending.is_open());
        assert!(!RequestStatus::Rejected.is_open());
        assert_eq!(Purpose::parse("用于数据校核"), Some(Purpose::DataVerification));
        assert_eq!(Stage::Coordination.open_status(), RequestStatus::Coordinating);
    }
}
