//! The catalog's JSON shapes (政务信息资源目录, SPEC C2): resources, versions, review, classification, change
//! events, statistics, search, import and projects.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::wire_list!(
    /// 共享类型 (办法 第十条).
    SharingType {
        /// 无条件共享: may be provided to every government department.
        Unconditional => "unconditional" / "无条件共享",
        /// 有条件共享: may be provided to some departments, or only in part to all.
        Conditional => "conditional" / "有条件共享",
        /// 不予共享: not to be provided; needs a legal basis (第十一条(一)).
        NotShared => "not_shared" / "不予共享",
    }
);

crate::wire_list!(
    /// 数据类型 of an information item.
    DataType {
        Char => "C" / "字符型",
        Numeric => "N" / "数值型",
        Currency => "Y" / "货币型",
        Date => "D" / "日期型",
        DateTime => "T" / "日期时间型",
        Logical => "L" / "逻辑型",
        Memo => "M" / "备注型",
        General => "G" / "通用型",
        Double => "B" / "双精度型",
        Integer => "I" / "整型",
        Float => "F" / "浮点型",
    }
);

crate::wire_list!(
    /// 更新周期.
    UpdateCycle {
        Realtime => "realtime" / "实时",
        Daily => "daily" / "每日",
        Weekly => "weekly" / "每周",
        Monthly => "monthly" / "每月",
        Quarterly => "quarterly" / "每季度",
        HalfYearly => "half_yearly" / "每半年",
        Yearly => "yearly" / "每年",
        Irregular => "irregular" / "不定期",
    }
);

crate::wire_list!(
    /// 信息资源格式.
    ResourceFormat {
        Database => "database" / "数据库",
        ElectronicFile => "electronic_file" / "电子文件",
        Spreadsheet => "spreadsheet" / "电子表格",
        Image => "image" / "图形图像",
        Streaming => "streaming" / "流媒体",
        SelfDescribing => "self_describing" / "自描述格式",
        ServiceInterface => "service_interface" / "服务接口",
    }
);

crate::wire_list!(
    /// 共享方式 (办法 第十五条).
    SharingMethod {
        SystemIntegration => "system_integration" / "系统对接",
        ExchangeNode => "exchange_node" / "前置机共享",
        OnlineQuery => "online_query" / "联机查询",
        BulkDownload => "bulk_download" / "批量下载",
    }
);

crate::wire_list!(
    /// 涉密属性.
    Secrecy {
        NonClassified => "non_classified" / "非涉密",
        Classified => "classified" / "涉密",
    }
);

crate::wire_list!(
    /// 所属网络: 电子政务外网, 内网 or a dedicated network.
    Network {
        Outer => "outer" / "电子政务外网",
        Inner => "inner" / "电子政务内网",
        Dedicated => "dedicated" / "业务专网",
    }
);

crate::wire_list!(
    /// 目录状态 of one version (R-CAT-5): draft → submitted → published → superseded by a newer version;
    /// a submission may be returned with a reason; a published resource may be withdrawn.
    VersionStatus {
        Draft => "draft" / "草稿",
        Submitted => "submitted" / "待审核",
        Returned => "returned" / "已退回",
        Published => "published" / "已发布",
        Superseded => "superseded" / "已被新版本替代",
        Withdrawn => "withdrawn" / "已撤销",
    }
);

/// 脱敏类型: the kind of a sensitive item, which selects its masking rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    IdNumber,
    Mobile,
    Landline,
    Name,
    Address,
    CreditCode,
    BankCard,
    Email,
}

/// 信息项: one data element of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoItem {
    /// 信息项名称.
    pub name: String,
    /// 数据类型.
    pub data_type: DataType,
    /// 数据长度 (characters or digits); absent for types without a length.
    #[serde(default)]
    pub length: Option<u32>,
    /// 是否必填.
    #[serde(default)]
    pub required: bool,
    /// 是否主键: identifies a record (e.g. 公民身份号码 in a population resource).
    #[serde(default)]
    pub is_key: bool,
    /// 敏感 item: masked on the way out unless a grant allows clear text (R-EX-3). The masking kind.
    #[serde(default)]
    pub mask: Option<MaskKind>,
    /// Item-level 共享类型 (R-CAT-3).
    pub sharing_type: SharingType,
    /// Item-level 共享条件, for conditional items.
    #[serde(default)]
    pub sharing_condition: Option<String>,
    /// 标准依据 of the item's values, e.g. "GB 11643-1999".
    #[serde(default)]
    pub standard: Option<String>,
    /// 基础信息项: a base item of a base resource, always unconditional (R-CAT-2).
    #[serde(default)]
    pub is_base_item: bool,
}

/// 信息资源目录条目: the metadata of one resource (core elements of the national guideline in their
/// order, then the extended ones). The classification, the code and the provider are the resource's own
/// and are kept beside the document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceDocument {
    /// 信息资源名称.
    pub name: String,
    /// 信息资源摘要.
    pub summary: String,
    /// 信息资源格式.
    pub format: ResourceFormat,
    /// 信息项信息.
    pub items: Vec<InfoItem>,
    /// 共享类型.
    pub sharing_type: SharingType,
    /// 共享条件 (required for 有条件共享, R-CAT-1).
    #[serde(default)]
    pub sharing_condition: Option<String>,
    /// 使用要求 / permitted usage (required for 有条件共享, R-CAT-1).
    #[serde(default)]
    pub permitted_usage: Option<String>,
    /// 不予共享依据: the law, administrative regulation or central policy (required for 不予共享, R-CAT-1).
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// 共享方式.
    #[serde(default)]
    pub sharing_methods: Vec<SharingMethod>,
    /// 是否向社会开放 (never for 不予共享, R-CAT-4).
    #[serde(default)]
    pub open_to_public: bool,
    /// 开放条件.
    #[serde(default)]
    pub open_condition: Option<String>,
    /// 更新周期.
    pub update_cycle: UpdateCycle,
    /// 关联资源代码.
    #[serde(default)]
    pub related_codes: Vec<String>,
    /// 涉密属性.
    #[serde(default = "default_secrecy")]
    pub secrecy: Secrecy,
    /// 所属网络.
    #[serde(default = "default_network")]
    pub network: Network,
    /// 来源信息系统.
    #[serde(default)]
    pub source_system: Option<String>,
    /// 联系人 / 联系方式.
    #[serde(default)]
    pub contact: Option<String>,
    /// 数据量: 记录数.
    #[serde(default)]
    pub record_count: Option<i64>,
    /// 数据量: 存储量, in MB.
    #[serde(default)]
    pub storage_mb: Option<f64>,
    /// 标签 (主题, 基础 …).
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_secrecy() -> Secrecy {
    Secrecy::NonClassified
}
fn default_network() -> Network {
    Network::Outer
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResourceRequest {
    /// Where the resource belongs: a 项 or deeper (e.g. `101`, `201003`).
    pub classification_code: String,
    /// The providing department; defaults to the caller's.
    #[serde(default)]
    pub provider_department_id: Option<i64>,
    pub document: ResourceDocument,
    /// A registered project whose catalog this entry belongs to (R-CAT-8).
    #[serde(default)]
    pub project_id: Option<i64>,
}

/// A resource as one of its versions.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourceView {
    pub code: String,
    pub version: i64,
    pub status: VersionStatus,
    pub latest_version: i64,
    /// The version in force (published), if any.
    pub published_version: Option<i64>,
    /// The resource's own status: the latest version's, or `withdrawn`.
    pub resource_status: VersionStatus,
    pub classification_code: String,
    pub classification_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    /// 提供方代码: the provider's 统一社会信用代码.
    pub provider_code: String,
    pub provider_region_code: String,
    pub document: ResourceDocument,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub return_reason: Option<String>,
    /// 发布日期.
    pub published_at_ms: Option<i64>,
    pub withdrawn_at_ms: Option<i64>,
    pub withdraw_reason: Option<String>,
}

/// One line of a version history.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    pub version: i64,
    pub status: VersionStatus,
    pub name: String,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub return_reason: Option<String>,
    pub published_at_ms: Option<i64>,
}

/// A resource in a list.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourceSummary {
    pub code: String,
    pub name: String,
    pub status: VersionStatus,
    pub latest_version: i64,
    pub published_version: Option<i64>,
    pub classification_code: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    pub sharing_type: SharingType,
    pub open_to_public: bool,
    pub format: ResourceFormat,
    pub update_cycle: UpdateCycle,
    pub updated_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourceList {
    pub resources: Vec<ResourceSummary>,
    pub next_after: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve` or `return`.
    pub decision: String,
    /// Required to return.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub reason: String,
}

/// One broken rule: which, where, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Violation {
    /// The rule, e.g. `R-CAT-1`, or `FIELD` for a field-level check.
    pub rule: String,
    /// The field at fault, as a path (`items[2].sharing_type`).
    pub field: String,
    pub message: String,
}

/// 信息资源分类 node.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Classification {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    /// 1 类, 2 项, 3 目, 4 细目.
    pub level: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClassificationRequest {
    pub code: String,
    pub name: String,
}

/// 目录更新事件: a change that obliges a department to update its catalog within 15 working days.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeEvent {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    /// `law_revised` (法律法规修订) or `functions_changed` (行政管理职能变化).
    pub kind: String,
    pub description: String,
    pub occurred_on: NaiveDate,
    /// The 15th working day after the change.
    pub due_on: NaiveDate,
    pub overdue: bool,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChangeEventRequest {
    pub department_id: i64,
    /// `law_revised` (法律法规修订) or `functions_changed` (行政管理职能变化).
    pub kind: String,
    pub description: String,
    /// YYYY-MM-DD.
    pub occurred_on: String,
}

/// A count under a key.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub key: String,
    pub label: String,
    pub count: i64,
}

/// 目录统计 over published resources (withdrawn ones excluded).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogStats {
    pub published: i64,
    pub drafts_and_pending: i64,
    pub by_class: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_sharing_type: Vec<Count>,
    /// Share of published resources that are shareable (无条件 or 有条件), 0–1 (Guizhou's target: 0.5).
    pub shareable_share: f64,
    /// Share of published resources open to the public, 0–1.
    pub open_share: f64,
    /// Change events past their 15-working-day deadline and not answered.
    pub overdue_change_events: i64,
}

/// One hit.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub code: String,
    pub name: String,
    pub summary: String,
    pub provider_name: String,
    pub sharing_type: String,
    pub classification_code: String,
    pub score: f32,
}

/// A facet value and how many hits carry it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    /// A readable name of the value (Chinese), where one is known.
    pub label: String,
    pub count: u64,
}

/// Search results: hits, the total, facet counts over all hits, and the cursor of the next page.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    /// Per dimension (class, provider, region, sharing, open, format, cycle): values with counts.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    pub next_cursor: Option<String>,
}

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportIssue {
    pub sheet: String,
    /// 1-based row number as the spreadsheet shows it (the header is row 1); 0 for the file itself.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// What an import did, or would have done.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub format: String,
    pub resources: usize,
    pub items: usize,
    /// Whether anything was written.
    pub committed: bool,
    /// The codes given to the imported resources, in file order.
    pub codes: Vec<String>,
    pub issues: Vec<ImportIssue>,
}

/// 政务信息化项目目录: a project whose catalog is compiled before approval and merged at acceptance.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub department_id: i64,
    /// `compiled` (目录已编制, awaiting acceptance) or `accepted` (验收, merged into the catalog).
    pub status: String,
    pub resources: i64,
    pub created_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    pub department_id: i64,
    pub name: String,
}
