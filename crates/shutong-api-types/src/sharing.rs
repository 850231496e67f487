//! Sharing's JSON shapes (共享申请与授权, 办法 第十五条, 第十六条; SPEC C3): requests, their answers and
//! escalation, grants, the inbox and the per-provider figures.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::wire_list!(
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

crate::wire_list!(
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

crate::wire_list!(
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

crate::wire_list!(
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

crate::wire_list!(
    /// 使用方式: how granted data is consumed (SPEC C4).
    AccessMethod {
        OnlineQuery => "online_query" / "联机查询",
        BulkDownload => "bulk_download" / "批量下载",
        Subscription => "subscription" / "订阅",
        SystemIntegration => "system_integration" / "系统对接",
    }
);

crate::wire_list!(
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

crate::wire_list!(
    /// 授权来源: which decision created a grant.
    GrantOrigin {
        Subscription => "subscription" / "无条件共享直接获取",
        Approval => "approval" / "提供部门同意",
        Negotiation => "negotiation" / "协商一致",
        Coordination => "coordination" / "主管部门协调",
        LeadingGroup => "leading_group" / "领导小组协调",
    }
);

crate::wire_list!(
    /// 授权状态 as of a date: revoked and expired grants stop working at once (R-REQ-5).
    GrantState {
        Active => "active" / "有效",
        NotYetValid => "not_yet_valid" / "未生效",
        Expired => "expired" / "已过期",
        Revoked => "revoked" / "已撤销",
    }
);

crate::wire_list!(
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCondition {
    /// An information item of the resource (it need not be among the granted items).
    pub item: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// 行范围: the rows a grant covers; all conditions hold (AND). Empty means every row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    pub conditions: Vec<RowCondition>,
}

/// A subscription or an application.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequestBody {
    /// The resource's code, e.g. `101/000001`.
    pub resource_code: String,
    /// The consumer department; defaults to the caller's.
    #[serde(default)]
    pub consumer_department_id: Option<i64>,
    /// Information items wanted, by name. A subscription defaults to every unconditional item.
    #[serde(default)]
    pub items: Vec<String>,
    /// 使用用途: administrative_basis, work_reference, data_verification, business_collaboration, other (or the Chinese names).
    pub purpose: Purpose,
    /// Required when the purpose is `other`.
    #[serde(default)]
    pub purpose_detail: Option<String>,
    /// 依据: the legal or duty basis.
    #[serde(default)]
    pub basis: String,
    /// First day of use; default today.
    #[serde(default)]
    pub period_from: Option<NaiveDate>,
    /// Last day of use; required for an application, default a year for a subscription.
    #[serde(default)]
    pub period_to: Option<NaiveDate>,
    /// 使用方式: online_query, bulk_download, subscription, system_integration.
    #[serde(default)]
    pub access_methods: Vec<AccessMethod>,
    /// 预计数据量, e.g. "每日约 2,000 次查询".
    #[serde(default)]
    pub expected_volume: Option<String>,
}

/// 共享申请: a subscription or an application, and where it stands.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub kind: RequestKind,
    pub status: RequestStatus,
    /// The current (or last) stage of 第十六条's sequence.
    pub stage: Stage,
    pub resource_code: String,
    pub resource_name: String,
    /// The published version the request was made against.
    pub resource_version: i64,
    pub consumer_department_id: i64,
    pub consumer_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    /// Who the request waits for at its stage.
    pub owner_department_id: i64,
    pub owner_name: String,
    pub items: Vec<String>,
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    /// 依据: the legal or duty basis.
    pub basis: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub access_methods: Vec<AccessMethod>,
    pub expected_volume: Option<String>,
    pub submitted_at_ms: i64,
    pub submitted_by: String,
    pub submitted_on: NaiveDate,
    /// The provider's answer is due on this date: the N-th working day after submission (第十六条).
    pub due_on: NaiveDate,
    /// The open stage's due date.
    pub stage_due_on: NaiveDate,
    /// Open and past its stage's due date (R-REQ-3).
    pub overdue: bool,
    pub answered_at_ms: Option<i64>,
    pub answered_on: Option<NaiveDate>,
    pub answered_by: Option<String>,
    /// The reason of a refusal, or the note of an approval.
    pub answer_reason: Option<String>,
    /// Answered after the due date (counts against the provider).
    pub answered_late: bool,
    pub grant_id: Option<i64>,
    /// The stage the consumer may escalate to now, if any.
    pub next_stage: Option<Stage>,
}

/// One step of an escalation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EscalationView {
    pub id: i64,
    pub stage: Stage,
    pub owner_department_id: i64,
    pub owner_name: String,
    pub opened_at_ms: i64,
    pub opened_by: String,
    pub opened_on: NaiveDate,
    /// Why the consumer escalated.
    pub reason: String,
    pub due_on: NaiveDate,
    pub overdue: bool,
    pub closed_at_ms: Option<i64>,
    pub closed_on: Option<NaiveDate>,
    pub closed_by: Option<String>,
    /// `granted`, `refused` or `withdrawn` once closed; `escalated` when the consumer moved on.
    pub outcome: Option<String>,
    pub outcome_note: Option<String>,
}

/// One message of the record of the exchange.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub stage: Stage,
    pub at_ms: i64,
    pub author: String,
    pub department_id: Option<i64>,
    pub department_name: Option<String>,
    pub body: String,
}

/// A request with its escalation steps, its messages and its grant.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestDetail {
    pub request: RequestView,
    pub escalations: Vec<EscalationView>,
    pub messages: Vec<MessageView>,
    pub grant: Option<GrantView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
    pub next_before: Option<i64>,
}

/// 授权 (R-REQ-5).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub id: i64,
    pub resource_code: String,
    pub resource_name: String,
    pub consumer_department_id: i64,
    pub consumer_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    pub request_id: Option<i64>,
    pub origin: GrantOrigin,
    pub items: Vec<String>,
    pub row_filter: RowFilter,
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub access_methods: Vec<AccessMethod>,
    /// Records per day, if limited.
    pub daily_quota: Option<i64>,
    /// Sensitive items are delivered in clear text (otherwise masked, R-EX-3).
    pub clear_text: bool,
    /// The state as of today: revoked and expired grants stop working at once.
    pub state: GrantState,
    pub created_at_ms: i64,
    pub created_by: String,
    pub renewed_at_ms: Option<i64>,
    pub renewed_by: Option<String>,
    pub revoked_at_ms: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
    pub next_before: Option<i64>,
}

/// An approval, possibly narrowing the request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// A subset of the requested items; default all of them.
    #[serde(default)]
    pub items: Option<Vec<String>>,
    /// 行范围: rows the grant covers.
    #[serde(default)]
    pub row_filter: Option<RowFilter>,
    /// Within the requested period; default the requested period.
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_to: Option<NaiveDate>,
    /// A subset of the requested access methods.
    #[serde(default)]
    pub access_methods: Option<Vec<AccessMethod>>,
    /// Records per day.
    #[serde(default)]
    pub daily_quota: Option<i64>,
    /// Deliver sensitive items in clear text (default masked).
    #[serde(default)]
    pub clear_text: bool,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Required for a refusal, an escalation, a revocation; optional for a withdrawal.
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub body: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// The new last day of validity.
    pub valid_to: NaiveDate,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadBody {
    /// Mark notices up to this ID; default all.
    #[serde(default)]
    pub up_to: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MarkReadResult {
    pub marked: u64,
}

/// One thing waiting for the caller's department.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InboxItem {
    /// `answer` (待答复), `negotiation`, `coordination`, `leading_group` (待办理), `escalate` (refused: the
    /// consumer may escalate), `grant_expiring`, `overdue` (the authority's list).
    pub kind: String,
    pub title: String,
    pub request_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub resource_code: String,
    pub resource_name: String,
    /// The other party.
    pub counterpart: String,
    pub due_on: Option<NaiveDate>,
    pub overdue: bool,
    /// Working days left until the due date (negative when overdue).
    pub workdays_left: Option<i64>,
}

/// 提醒: a notice to a department.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub department_id: i64,
    /// request, subscribed, approved, rejected, withdrawn, escalation, message, reminder, overdue,
    /// grant_revoked, grant_renewed, grant_expiring, grant_expired.
    pub kind: String,
    pub target_kind: String,
    pub target_id: String,
    pub message: String,
    pub due_on: Option<NaiveDate>,
    pub created_at_ms: i64,
    pub read: bool,
}

/// What waits for the caller: its department's work with due dates, the authority's overdue list, and
/// unread notices.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Inbox {
    pub today: NaiveDate,
    pub waiting: Vec<InboxItem>,
    /// Every overdue open request (the authority and auditors only; empty for others).
    pub overdue: Vec<InboxItem>,
    pub notifications: Vec<Notification>,
    pub unread: i64,
    /// 前置机失联: the exchange nodes silent longer than `exchange.node_silence_seconds` that the caller
    /// answers for (its department's administrators; platform administrators for all).
    #[serde(default)]
    pub silent_nodes: Vec<crate::exchange::ExchangeNode>,
}

/// What one deadline sweep did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SweepReport {
    pub today: NaiveDate,
    /// Stages that became overdue (each is recorded once in the audit trail).
    pub overdue: usize,
    pub reminders: usize,
    pub grants_expiring: usize,
    pub grants_expired: usize,
}

/// A provider's answering record (第二十五条(三): counted against the provider).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderFigures {
    pub department_id: i64,
    pub department_name: String,
    /// Applications received (subscriptions excluded).
    pub received: i64,
    pub approved: i64,
    pub rejected: i64,
    pub withdrawn: i64,
    /// Still waiting for the provider's answer.
    pub pending: i64,
    /// Waiting past the due date now.
    pub overdue_now: i64,
    pub answered_on_time: i64,
    pub answered_late: i64,
    /// Subscriptions (无条件共享) served.
    pub subscriptions: i64,
    /// Requests in escalation (协商, 协调, 领导小组) now.
    pub in_escalation: i64,
    /// Grants in force today.
    pub grants_in_force: i64,
}

/// Sharing figures for the whole platform (or one department), per provider.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SharingStats {
    pub today: NaiveDate,
    pub providers: Vec<ProviderFigures>,
    pub totals: ProviderFigures,
    /// The on-time record per due month, the twelve months ending with this one.
    pub months: Vec<MonthFigures>,
}

/// 按时答复 in one month: applications due that month answered on time, and late (or unanswered past due).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    pub answered_on_time: i64,
    pub answered_late: i64,
}
