//! The JSON shapes of information systems and projects (SPEC C8, C9): the inventory 信息系统台账, zombie
//! verdicts and their review, cleanup plans, the asset register, project filing 全口径备案 and the funding gates.
//! Amounts of money are strings of 元 with at most two decimals (`"1250000.00"`), never floats.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::wire_list!(
    /// 使用范围 (吉林方案 二(一)): who uses the system.
    UsageScope {
        /// 处室内部: one internal unit only.
        Unit => "unit" / "处室内部",
        /// 部门内部.
        Department => "department" / "部门内部",
        /// 跨部门.
        CrossDepartment => "cross_department" / "跨部门",
        /// 面向社会公众.
        Public => "public" / "面向社会公众",
    }
);

crate::wire_list!(
    /// 使用频度 (吉林方案 二(一)).
    UsageFrequency {
        Daily => "daily" / "每日",
        Weekly => "weekly" / "每周",
        Monthly => "monthly" / "每月",
        Yearly => "yearly" / "每年",
        /// 极少使用: less than once a year.
        Rarely => "rarely" / "极少使用",
    }
);

crate::wire_list!(
    /// 经费来源 (江苏方案 三(一)1).
    FundingSource {
        /// 财政预算.
        Budget => "budget" / "财政预算",
        /// 专项资金.
        Special => "special" / "专项资金",
        /// 自筹资金.
        SelfFunded => "self_funded" / "自筹资金",
        /// 其他.
        Other => "other" / "其他",
    }
);

crate::wire_list!(
    /// 部署网络 (贵州方案 四(一)): the network a system runs on.
    SystemNetwork {
        /// 电子政务外网.
        GovOuter => "gov_outer" / "外网",
        /// 电子政务内网.
        GovInner => "gov_inner" / "内网",
        /// 业务专网.
        Dedicated => "dedicated" / "专网",
        /// 互联网.
        Internet => "internet" / "互联网",
    }
);

crate::wire_list!(
    /// 系统状态.
    SystemStatus {
        /// 在用.
        InUse => "in_use" / "在用",
        /// 停用: switched off, not yet retired.
        Suspended => "suspended" / "停用",
        /// 已下线: retired (cleanup completed).
        Retired => "retired" / "已下线",
    }
);

crate::wire_list!(
    /// 运维状态 (criterion 4 of the zombie checks: 运维服务已经停止).
    OmStatus {
        /// 运维中.
        Ongoing => "ongoing" / "运维中",
        /// 运维已停止.
        Stopped => "stopped" / "运维已停止",
    }
);

crate::wire_list!(
    /// 僵尸信息系统的认定情形 (江苏方案 三(一)2; 吉林方案 二(二); 铜川方案 二(一)).
    ZombieCriterion {
        /// 与业务长期脱节: none of its resources updated for a year.
        Detached => "detached" / "与业务长期脱节",
        /// 功能可被其他系统替代: another system in use produces the same resources or does the same.
        Replaceable => "replaceable" / "功能可被其他系统替代",
        /// 所占用资源长期处于空闲状态: its accounts have not used the platform, nor its exchange nodes moved
        /// data, for half a year.
        Idle => "idle" / "所占用资源长期处于空闲状态",
        /// 运维服务已经停止或超过一年未进行更新.
        Unmaintained => "unmaintained" / "运维服务已停止或超过一年未更新",
        /// 使用范围小、频度低.
        LittleUsed => "little_used" / "使用范围小、频度低",
    }
);

crate::wire_list!(
    /// 部门意见 on a zombie verdict.
    ZombieResponse {
        /// 确认.
        Confirm => "confirm" / "确认",
        /// 有异议: disputed, with a reason.
        Dispute => "dispute" / "有异议",
    }
);

crate::wire_list!(
    /// 主管部门认定.
    ZombieDecision {
        /// 认定为僵尸系统.
        Zombie => "zombie" / "认定为僵尸系统",
        /// 不认定.
        NotZombie => "not_zombie" / "不认定为僵尸系统",
    }
);

crate::wire_list!(
    /// 清理方式 (江苏方案 三(一)2-3: 关停、整合、迁移).
    CleanupAction {
        /// 关停下线.
        ShutDown => "shut_down" / "关停下线",
        /// 整合: merged into another system.
        Integrate => "integrate" / "整合",
        /// 迁移上云.
        Migrate => "migrate" / "迁移",
    }
);

crate::wire_list!(
    /// 清理进展.
    CleanupProgress {
        Planned => "planned" / "已计划",
        InProgress => "in_progress" / "实施中",
        Done => "done" / "已完成",
    }
);

crate::wire_list!(
    /// 自查报告状态 (铜川方案 二(一)).
    ReportStatus {
        Draft => "draft" / "草稿",
        Submitted => "submitted" / "已报送",
        Accepted => "accepted" / "审核通过",
        Returned => "returned" / "已退回",
    }
);

crate::wire_list!(
    /// 项目阶段 (办法 第二十二条、第二十三条): 立项申请 → 审批 → 建设 → 验收 → 运维.
    ProjectStage {
        Filed => "filed" / "立项申请",
        Approved => "approved" / "审批",
        Construction => "construction" / "建设",
        Accepted => "accepted" / "验收",
        Operation => "operation" / "运维",
    }
);

crate::wire_list!(
    /// 审核关口 (办法 第二十二条; 江苏方案 三(五)3), computed from facts, never typed in.
    Gate {
        /// 立项审批: no approval without a compiled project catalog.
        Approval => "approval" / "立项审批",
        /// 项目验收: no acceptance until the project catalog is merged into the platform's.
        Acceptance => "acceptance" / "项目验收",
        /// 运维经费: no O&M funding for a system that must connect and does not, or a zombie.
        OmFunding => "om_funding" / "运维经费",
    }
);

/// 信息系统登记表: one system as its department declares it, with its links to the platform.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemDocument {
    /// 系统名称.
    pub name: String,
    /// 主要功能.
    pub function: String,
    /// 使用范围.
    pub usage_scope: UsageScope,
    /// 使用频度.
    pub usage_frequency: UsageFrequency,
    /// 审批部门.
    #[serde(default)]
    pub approving_department: Option<String>,
    /// 审批时间.
    #[serde(default)]
    pub approval_date: Option<NaiveDate>,
    /// 建设经费 (元, at most two decimals).
    pub build_cost: String,
    /// 年运维经费 (元).
    pub om_cost: String,
    /// 经费来源.
    pub funding_source: FundingSource,
    /// IP 地址 (IPv4 or IPv6).
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// 主机实例名称.
    #[serde(default)]
    pub host_instances: Vec<String>,
    /// 访问域名或地址: an http(s) URL, a domain name or an IP address.
    #[serde(default)]
    pub access_url: Option<String>,
    /// 部署网络.
    pub network: SystemNetwork,
    /// 系统状态.
    pub status: SystemStatus,
    /// 使用处室, if one internal unit runs it.
    #[serde(default)]
    pub unit: Option<String>,
    /// 运维状态.
    pub om_status: OmStatus,
    /// 最近一次更新日期.
    #[serde(default)]
    pub last_update_date: Option<NaiveDate>,
    /// 是否与其他部门共享数据 (then it must connect to the platform).
    pub shares_across_departments: bool,
    /// 是否已接入共享平台, as declared.
    pub connected: bool,
    /// 资源代码 of the catalog resources it produces (the department's own).
    #[serde(default)]
    pub produces: Vec<String>,
    /// 资源代码 of the catalog resources it consumes.
    #[serde(default)]
    pub consumes: Vec<String>,
    /// Usernames of its system accounts (the department's).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Names of its exchange nodes (前置机, the department's registered nodes).
    #[serde(default)]
    pub nodes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSystemRequest {
    pub department_id: i64,
    pub document: SystemDocument,
}

/// The department's answer and the authority's decision on a zombie verdict.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ZombieState {
    pub response: Option<ZombieResponse>,
    pub response_reason: Option<String>,
    pub decision: Option<ZombieDecision>,
    pub decision_reason: Option<String>,
}

/// 清理计划 and its progress.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Cleanup {
    pub action: CleanupAction,
    pub due_on: NaiveDate,
    pub into_system_id: Option<i64>,
    pub progress: CleanupProgress,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// One system of the inventory as it stands.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemView {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    pub version: i64,
    pub document: SystemDocument,
    /// 以处室名义登记: why the system is to be merged into its department's, if it is.
    pub merger_flag: Option<String>,
    pub zombie: ZombieState,
    pub cleanup: Option<Cleanup>,
    pub created_at_ms: i64,
    pub created_by: String,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// A system in a list.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemSummary {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    pub name: String,
    pub status: SystemStatus,
    pub network: SystemNetwork,
    pub usage_scope: UsageScope,
    pub connected: bool,
    pub merger_flag: Option<String>,
    pub zombie_decision: Option<ZombieDecision>,
    pub version: i64,
    pub updated_at_ms: i64,
}

/// A page of systems; `next_cursor` is the `after` of the next page.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemList {
    pub items: Vec<SystemSummary>,
    pub next_cursor: Option<i64>,
}

/// One version of a system's registration.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemVersion {
    pub version: i64,
    pub document: SystemDocument,
    pub changed_at_ms: i64,
    pub changed_by: String,
}

/// One zombie criterion for one system: met or not, and the facts it read.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CriterionResult {
    pub criterion: ZombieCriterion,
    pub met: bool,
    pub evidence: Vec<String>,
}

/// 僵尸系统研判.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ZombieVerdict {
    pub system_id: i64,
    pub system_name: String,
    pub department_id: i64,
    pub department_name: String,
    pub status: SystemStatus,
    /// 疑似僵尸: some criterion is met.
    pub suspected: bool,
    pub criteria: Vec<CriterionResult>,
    pub state: ZombieState,
    pub cleanup: Option<Cleanup>,
}

/// One step of a zombie review: `response` (部门意见) or `decision` (主管部门认定), with the criteria as they stood.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ZombieReviewStep {
    pub id: i64,
    pub step: String,
    pub value: String,
    pub reason: Option<String>,
    /// The criteria as they stood at this step.
    pub evidence: Vec<CriterionResult>,
    pub at_ms: i64,
    pub by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZombieResponseBody {
    pub response: ZombieResponse,
    /// Needed with a dispute.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZombieDecisionBody {
    pub decision: ZombieDecision,
    /// Needed when the decision goes against the department's answer.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupPlanBody {
    pub action: CleanupAction,
    pub due_on: NaiveDate,
    /// For an integration: the system it goes into.
    #[serde(default)]
    pub into_system_id: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupProgressBody {
    pub progress: CleanupProgress,
    #[serde(default)]
    pub note: Option<String>,
}

/// 项目备案表.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectDocument {
    /// 项目名称.
    pub name: String,
    /// 建设单位.
    pub construction_unit: String,
    /// 总投资 (元).
    pub total_investment: String,
    /// 年运维预算 (元).
    pub om_budget: String,
    /// 资金渠道.
    pub funding_channel: FundingSource,
    /// 建设内容.
    pub content: String,
    /// IDs of the inventory's systems the project builds or changes.
    #[serde(default)]
    pub systems: Vec<i64>,
    /// 等级保护备案号.
    #[serde(default)]
    pub protection_filing: Option<String>,
    /// 分级保护备案号.
    #[serde(default)]
    pub classified_filing: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileProjectRequest {
    pub department_id: i64,
    /// 立项申请日期.
    pub filed_on: NaiveDate,
    /// 立项申请文件名称及文号.
    pub application: String,
    pub document: ProjectDocument,
}

/// One stage reached, with its date and document, and the override that let it in, if one did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StageRecord {
    pub stage: ProjectStage,
    pub entered_on: NaiveDate,
    pub document: String,
    pub override_reason: Option<String>,
    pub at_ms: i64,
    pub by: String,
}

/// A funding gate as the facts make it now.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GateState {
    pub gate: Gate,
    pub open: bool,
    pub reasons: Vec<String>,
}

/// A filed project, its stages and its gates.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FiledProject {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    /// The project catalog (R-CAT-8) entries are compiled into: `project_id` of a catalog entry.
    pub catalog_project_id: i64,
    pub stage: ProjectStage,
    pub document: ProjectDocument,
    pub stages: Vec<StageRecord>,
    pub gates: Vec<GateState>,
    pub next_stage: Option<ProjectStage>,
    pub created_at_ms: i64,
    pub created_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    pub items: Vec<FiledProject>,
    pub next_cursor: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceProjectBody {
    /// The next stage.
    pub stage: ProjectStage,
    pub entered_on: NaiveDate,
    /// 文件名称及文号 of the stage (批复, 验收意见, 经费安排文件 …).
    pub document: String,
    /// Enters through a closed gate: the reason, kept with the stage and audited.
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// One resource of the asset register.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterResource {
    pub code: String,
    pub name: String,
    pub items: i64,
    pub records: i64,
    pub storage_bytes: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterSystem {
    pub id: i64,
    pub name: String,
    pub status: SystemStatus,
    pub resources: Vec<RegisterResource>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterTotals {
    pub systems: i64,
    pub resources: i64,
    pub items: i64,
    pub records: i64,
    pub storage_bytes: i64,
}

/// 数据资产登记表 of one department.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AssetRegister {
    pub department_id: i64,
    pub department_name: String,
    pub systems: Vec<RegisterSystem>,
    /// Resources the department provides that no registered system produces.
    pub unattributed: Vec<RegisterResource>,
    pub totals: RegisterTotals,
}

/// What an inventory import did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemImportReport {
    /// Rows read.
    pub systems: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// The systems' IDs, in the file's order.
    pub ids: Vec<i64>,
}

/// What the department writes in its self-inspection report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportContent {
    /// 年度.
    pub year: i32,
    /// 自查工作开展情况.
    pub overview: String,
    /// 存在的问题.
    pub problems: String,
    /// 整改措施.
    pub measures: String,
    /// 需求清单 entries the department declares beyond its sharing requests.
    #[serde(default)]
    pub needs: Vec<DeclaredNeed>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredNeed {
    pub resource: String,
    pub provider: String,
    pub purpose: String,
}

/// One line of 整合清理清单.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CleanupLine {
    pub system_id: i64,
    pub name: String,
    pub reasons: Vec<String>,
    pub action: Option<String>,
    pub due_on: Option<NaiveDate>,
    pub progress: Option<String>,
}

/// One line of 接入清单.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectLine {
    pub system_id: i64,
    pub name: String,
    pub reasons: Vec<String>,
}

/// One line of 需求清单.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NeedLine {
    pub resource_code: Option<String>,
    pub resource: String,
    pub provider: String,
    pub purpose: String,
    pub source: String,
}

/// The three lists and the figures of 基本情况, as generated when the version was saved.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportLists {
    pub systems: i64,
    pub in_use: i64,
    pub build_cost: String,
    pub om_cost: String,
    pub resources_provided: i64,
    pub cleanup: Vec<CleanupLine>,
    pub connect: Vec<ConnectLine>,
    pub needs: Vec<NeedLine>,
}

/// One version of a department's self-inspection report with its three lists.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportView {
    pub department_id: i64,
    pub department_name: String,
    pub version: i64,
    pub status: ReportStatus,
    pub content: ReportContent,
    pub lists: ReportLists,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewReportBody {
    /// accept (审核通过) or return (退回, with a note).
    pub decision: String,
    #[serde(default)]
    pub note: Option<String>,
}
