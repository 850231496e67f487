//! The JSON shapes of data quality (SPEC C6; 办法 第十七条): dimensions and their weights, rules, checks with
//! their results, and scores. Scores are points from 0 to 100 with two decimals.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::wire_list!(
    /// 质量维度 (GB/T 36344-2018).
    QualityDimension {
        Completeness => "completeness" / "完整性",
        Conformity => "conformity" / "规范性",
        Accuracy => "accuracy" / "准确性",
        Consistency => "consistency" / "一致性",
        Timeliness => "timeliness" / "时效性",
    }
);

crate::wire_list!(
    /// Where a rule comes from.
    RuleOrigin {
        /// 目录派生: from the catalog entry's items and 更新周期.
        Derived => "derived" / "目录派生",
        /// 自定义: added by the provider or the authority.
        Custom => "custom" / "自定义",
    }
);

crate::wire_list!(
    /// The identifier an identifier rule checks.
    IdScheme {
        IdNumber => "id_number" / "公民身份号码",
        CreditCode => "credit_code" / "统一社会信用代码",
        OrgCode => "org_code" / "组织机构代码",
    }
);

crate::wire_list!(
    /// What started a check.
    CheckCause {
        Batch => "batch" / "数据归集",
        Schedule => "schedule" / "定时检查",
        Manual => "manual" / "手动检查",
    }
);

crate::wire_list!(
    /// 质量等级: 优秀 ≥ 90, 良好 ≥ 80, 中等 ≥ 70, 及格 ≥ 60, 不及格.
    QualityGrade {
        Excellent => "excellent" / "优秀",
        Good => "good" / "良好",
        Fair => "fair" / "中等",
        Pass => "pass" / "及格",
        Fail => "fail" / "不及格",
    }
);

/// A rule's test and what it needs, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum QualityRuleKind {
    /// 必填: the item has a value.
    Required { item: String },
    /// 长度: at most `max` characters (1–100000).
    Length {
        item: String,
        #[schema(minimum = 1, maximum = 100000)]
        max: u32,
    },
    /// 标识码校验: a valid identifier, check character included.
    Identifier { item: String, scheme: IdScheme },
    /// 行政区划代码: a code of the stored GB/T 2260 table in force.
    RegionCode { item: String },
    /// 代码表: one of `values` (1–10000 values of 1–200 characters).
    CodeList { item: String, values: Vec<String> },
    /// 格式: the whole value matches the regular expression `pattern` (1–500 characters).
    Pattern { item: String, pattern: String },
    /// 取值范围: a number, or a date as YYYY-MM-DD, between `min` and `max` (both included; either may be left out).
    Range {
        item: String,
        #[serde(default)]
        min: Option<String>,
        #[serde(default)]
        max: Option<String>,
    },
    /// 身份证一致性: 出生日期 and 性别 agree with 公民身份号码 (at least one of the two named).
    IdConsistency {
        id_item: String,
        #[serde(default)]
        birth_item: Option<String>,
        #[serde(default)]
        sex_item: Option<String>,
    },
    /// 及时性: the last batch at most `max_age_days` old (1–3660).
    Freshness {
        #[schema(minimum = 1, maximum = 3660)]
        max_age_days: u32,
    },
    /// 数据量波动: live records changed by at most `max_change_percent` since the previous check (1–1000).
    VolumeChange {
        #[schema(minimum = 1, maximum = 1000)]
        max_change_percent: u32,
    },
    /// 唯一性: no two live records share a value of this non-key item (not a sensitive item stored encrypted).
    Unique { item: String },
    /// 引用一致: every value is the key of a live record of the resource `resource` (a pooled dataset).
    Reference { item: String, resource: String },
}

/// A dimension as the sharing authority set it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityDimensionView {
    pub dimension: QualityDimension,
    pub name: String,
    /// 0–100.
    pub weight: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityDimensionList {
    pub dimensions: Vec<QualityDimensionView>,
}

/// A dimension's new name and weight.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQualityDimension {
    /// 1–20 characters; left out: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 100)]
    pub weight: i64,
}

/// 质量规则.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityRuleView {
    /// The stored rule's ID; none for a derived rule in force.
    pub id: Option<i64>,
    /// Stable across checks: `derived:{…}` or `custom:{id}`; names the rule to retire.
    pub key: String,
    pub resource_code: String,
    pub origin: RuleOrigin,
    pub rule: QualityRuleKind,
    /// The kind's Chinese name.
    pub kind_zh: String,
    pub dimension: QualityDimension,
    pub blocking: bool,
    pub note: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub retired_at: Option<DateTime<Utc>>,
    pub retired_by: Option<String>,
    pub retire_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityRuleList {
    pub rules: Vec<QualityRuleView>,
}

/// A rule to add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQualityRule {
    pub rule: QualityRuleKind,
    /// Default: the kind's (必填 → 完整性, 格式 → 规范性, 取值范围 → 准确性 …).
    #[serde(default)]
    pub dimension: Option<QualityDimension>,
    /// 阻断: recorded with the rule.
    #[serde(default)]
    pub blocking: bool,
    /// At most 500 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// A rule to retire, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireQualityRule {
    /// The rule's `key`.
    pub key: String,
    /// 4–500 characters.
    pub reason: String,
}

/// One rule's result in one check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityRuleResult {
    pub rule_key: String,
    pub kind: String,
    pub dimension: QualityDimension,
    pub checked_at: DateTime<Utc>,
    pub rows_checked: i64,
    pub rows_failing: i64,
    /// Keys of failing records, masked (at most 20).
    pub samples: Vec<String>,
    /// 0–100.
    pub score: f64,
    pub detail: Option<String>,
}

/// A dimension's score.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityDimensionScore {
    pub dimension: QualityDimension,
    /// 0–100.
    pub score: f64,
    pub rules: i64,
}

/// 质量检查: one check of a dataset.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityCheck {
    pub id: i64,
    pub resource_code: String,
    pub department_id: i64,
    pub cause: CheckCause,
    pub batch_id: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows_checked: i64,
    /// 0–100.
    pub score: f64,
    pub grade: QualityGrade,
    pub grade_zh: String,
    pub dimensions: Vec<QualityDimensionScore>,
    pub actor: String,
    /// The rules' results (in one check's read; empty in a list).
    pub results: Vec<QualityRuleResult>,
}

/// A dataset's checks, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityCheckList {
    pub checks: Vec<QualityCheck>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

/// A dataset's latest score.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetQualityScore {
    pub resource_code: String,
    pub resource_name: String,
    pub department_id: i64,
    pub check_id: i64,
    pub checked_at: DateTime<Utc>,
    pub score: f64,
    pub grade: QualityGrade,
    pub dimensions: Vec<QualityDimensionScore>,
}

/// A department's score: the mean of its datasets' latest scores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentQualityScore {
    pub department_id: i64,
    pub department_name: String,
    pub datasets: i64,
    pub score: f64,
    pub grade: QualityGrade,
    pub dimensions: Vec<QualityDimensionScore>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityScores {
    pub datasets: Vec<DatasetQualityScore>,
    pub departments: Vec<DepartmentQualityScore>,
}

// ------------------------------------------------------------------ 疑义校核 (办法 第十八条)

crate::wire_list!(
    /// 疑义状态.
    ObjectionState {
        /// 待核实: waiting for the provider's answer; the records carry the 校核中 flag.
        Open => "open" / "待核实",
        /// 已答复: the filer accepts or escalates.
        Answered => "answered" / "已答复",
        /// 提请裁定: the sharing authority rules; the records are flagged again.
        Escalated => "escalated" / "提请裁定",
        /// 已办结.
        Closed => "closed" / "已办结",
    }
);

crate::wire_list!(
    /// 核实结果: the provider's answer.
    ObjectionAnswer {
        /// 已更正: a batch changed the records (refused while they are as they were).
        Corrected => "corrected" / "已更正",
        /// 确认无误: the data is right.
        Confirmed => "confirmed" / "确认无误",
        /// 不予受理.
        Declined => "declined" / "不予受理",
    }
);

crate::wire_list!(
    /// 裁定结果.
    ObjectionRuling {
        /// 疑义成立: the provider answers again within a new period.
        Upheld => "upheld" / "疑义成立",
        /// 疑义不成立: closed.
        Dismissed => "dismissed" / "疑义不成立",
    }
);

crate::wire_list!(
    /// Whose objections a list shows.
    ObjectionScope {
        /// Filed by the caller's department.
        Filed => "filed" / "本部门提出",
        /// On the caller's department's data: its queue, ranked by impact.
        Received => "received" / "本部门待核实",
    }
);

/// 疑义原因.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionReasonView {
    pub code: String,
    pub name: String,
    /// No longer offered; objections that gave it keep it.
    pub retired: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionReasonList {
    pub reasons: Vec<ObjectionReasonView>,
}

/// A reason's name, and whether it is retired.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetObjectionReason {
    /// 1–20 characters.
    pub name: String,
    #[serde(default)]
    pub retired: bool,
}

/// An objection to file: records by key, the items in doubt, a reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObjection {
    /// The dataset's resource code.
    pub resource_code: String,
    /// Which grant, when several are in force.
    #[serde(default)]
    pub grant_id: Option<i64>,
    /// 1–100 records, by their keys.
    pub keys: Vec<String>,
    /// The items in doubt (items the grant delivers); none: the whole record.
    #[serde(default)]
    pub items: Vec<String>,
    /// A reason's code (`GET /api/v1/quality/objection-reasons`).
    pub reason: String,
    /// 1–2000 characters.
    pub description: String,
}

/// 佐证材料.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionEvidenceView {
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// SM3 of the file, hex.
    pub sm3: String,
    pub uploaded_at: DateTime<Utc>,
}

/// How much the dataset of an objection is in use (what ranks a provider's queue).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionImpact {
    pub grants_in_force: i64,
    pub calls_30_days: i64,
}

/// 数据疑义.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionView {
    pub id: i64,
    pub resource_code: String,
    pub provider_department_id: i64,
    pub filer_department_id: i64,
    pub filed_by: String,
    pub grant_id: Option<i64>,
    pub reason: String,
    pub reason_name: String,
    pub description: String,
    /// The items in doubt; empty: the whole record.
    pub items: Vec<String>,
    /// The records' keys (masked when the key item is sensitive).
    pub keys: Vec<String>,
    pub state: ObjectionState,
    pub state_zh: String,
    pub filed_at: DateTime<Utc>,
    /// The last working day of the provider's answer.
    pub due_on: chrono::NaiveDate,
    /// Open after `due_on`.
    pub overdue: bool,
    pub answer: Option<ObjectionAnswer>,
    pub answer_note: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
    /// The batch that corrected the records.
    pub corrected_batch: Option<i64>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalation_note: Option<String>,
    pub ruling: Option<ObjectionRuling>,
    pub ruling_note: Option<String>,
    pub ruled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub evidence: Option<ObjectionEvidenceView>,
    /// In a list: the use of the dataset.
    pub impact: Option<ObjectionImpact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionList {
    pub objections: Vec<ObjectionView>,
}

/// The provider's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerObjection {
    pub answer: ObjectionAnswer,
    /// The explanation or reason, 1–2000 characters.
    pub note: String,
}

/// The filer's dispute.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateObjection {
    /// Why the answer is wrong, 1–2000 characters.
    pub note: String,
}

/// The sharing authority's ruling.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleObjection {
    pub ruling: ObjectionRuling,
    /// 1–2000 characters.
    pub note: String,
}

/// 疑义处理情况 of a provider department.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionFiguresView {
    pub department_id: i64,
    pub filed: i64,
    pub open: i64,
    pub overdue: i64,
    pub answered: i64,
    pub corrected: i64,
    pub confirmed: i64,
    pub declined: i64,
    pub median_hours_to_answer: Option<f64>,
    pub median_hours_to_close: Option<f64>,
    /// 已更正 among the answers, percent.
    pub real_error_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectionFiguresList {
    pub departments: Vec<ObjectionFiguresView>,
}

// ------------------------------------------------------------------ 一数一源 (办法 第四条(三))

crate::wire_list!(
    /// What a reconciliation found for one key.
    ConflictKind {
        MissingInResource => "missing_in_resource" / "本数据集缺少",
        MissingInAuthoritative => "missing_in_authoritative" / "权威来源缺少",
        Differs => "differs" / "取值不一致",
    }
);

crate::wire_list!(
    /// What started a reconciliation.
    ReconcileCause {
        Batch => "batch" / "数据归集",
        Schedule => "schedule" / "定时比对",
        Manual => "manual" / "手动比对",
    }
);

crate::wire_list!(
    /// Which side of a conflict an objection is filed against.
    ConflictSide {
        Authoritative => "authoritative" / "权威来源",
        Resource => "resource" / "比对数据集",
    }
);

/// A dataset carrying an element.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ElementCarrier {
    pub resource_code: String,
    pub provider_department_id: i64,
    /// Authoritative item → the dataset's item.
    pub items: std::collections::BTreeMap<String, String>,
    /// Mapped by the authority (else matched by item names).
    pub explicit: bool,
}

/// 基础数据元素.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaseElementView {
    pub id: i64,
    pub name: String,
    pub key_item: String,
    /// The authoritative resource.
    pub resource_code: String,
    pub items: Vec<String>,
    pub carriers: Vec<ElementCarrier>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaseElementList {
    pub elements: Vec<BaseElementView>,
}

/// An element to declare (or redeclare, by name).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBaseElement {
    /// 1–50 characters, e.g. 人口.
    pub name: String,
    /// The authoritative dataset's key item, e.g. 公民身份号码.
    pub key_item: String,
    /// The authoritative resource.
    pub resource_code: String,
    /// 1–100 of its items.
    pub items: Vec<String>,
}

/// A dataset's items mapped onto an element's; empty: matched by names again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ElementMapping {
    pub items: std::collections::BTreeMap<String, String>,
}

/// Which carrier to reconcile (all by default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    #[serde(default)]
    pub resource_code: Option<String>,
}

/// One item's agreement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemConsistencyView {
    pub item: String,
    pub resource_item: String,
    pub compared: i64,
    pub differing: i64,
    /// Percent of compared keys that agree, two decimals.
    pub rate: f64,
}

/// 比对差异.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    pub id: i64,
    /// The key (masked for a sensitive key item).
    pub key: String,
    pub kind: ConflictKind,
    pub item: Option<String>,
    pub authoritative_value: Option<String>,
    pub resource_value: Option<String>,
}

/// 比对记录: one reconciliation, never changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyRunView {
    pub id: i64,
    pub element_id: i64,
    pub resource_code: String,
    pub authoritative_code: String,
    pub provider_department_id: i64,
    pub authoritative_department_id: i64,
    pub cause: ReconcileCause,
    pub ran_at: DateTime<Utc>,
    pub keys_compared: i64,
    pub missing_in_resource: i64,
    pub missing_in_authoritative: i64,
    pub differing_keys: i64,
    pub items: Vec<ItemConsistencyView>,
    /// Percent of the dataset's keys found in the authoritative dataset with the same values in every item,
    /// two decimals (keys only in the authoritative dataset do not count against it).
    pub rate: f64,
    /// Conflicts kept (at most 10,000; every one is counted).
    pub conflicts_kept: i64,
    pub actor: String,
    /// In one run's read: its conflicts; empty in a list.
    pub conflicts: Vec<ConflictView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyRunList {
    pub runs: Vec<ConsistencyRunView>,
}

/// A conflict turned into an objection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectToConflict {
    pub side: ConflictSide,
    /// Added to the description, at most 1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

// ------------------------------------------------------------------ 基础库与主题库 (SPEC C7)

/// One item of a base template.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateItemView {
    pub name: String,
    pub data_type: crate::catalog::DataType,
    pub length: Option<u32>,
    pub mask: Option<crate::catalog::MaskKind>,
    pub standard: Option<String>,
}

/// 基础库标准项集.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaseTemplateView {
    pub code: String,
    pub name: String,
    pub classification: String,
    pub resource_name: String,
    pub key_item: String,
    pub items: Vec<TemplateItemView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaseTemplateList {
    pub templates: Vec<BaseTemplateView>,
}

/// Which department compiles the base resource (the authority may name one; default the caller's).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompileBaseResource {
    #[serde(default)]
    pub provider_department_id: Option<i64>,
}

/// One item of a theme database, drawn from one member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeItemView {
    /// Its name in the theme.
    pub item: String,
    /// The member resource.
    pub resource_code: String,
    /// Its name in the member.
    pub member_item: String,
}

/// A member as a refresh read it (the lineage of its values).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThemeMemberState {
    pub resource_code: String,
    /// The catalog version in force.
    pub version: i64,
    /// Read up to this change sequence number.
    pub last_seq: i64,
    pub reset_seq: i64,
    pub last_batch_at: Option<DateTime<Utc>>,
}

/// One refresh of a theme database.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThemeRefreshView {
    pub refreshed_at: DateTime<Utc>,
    /// `full` or `incremental`.
    pub mode: String,
    pub rows_written: i64,
    pub rows_deleted: i64,
    /// The theme's batch.
    pub batch_id: Option<i64>,
    pub members: Vec<ThemeMemberState>,
    pub actor: String,
}

/// 主题库.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThemeView {
    pub id: i64,
    /// Its own resource (granted and read like any dataset).
    pub resource_code: String,
    pub name: String,
    pub lead_department_id: i64,
    pub key_item: String,
    pub items: Vec<ThemeItemView>,
    pub members: Vec<String>,
    pub published: bool,
    pub last_refresh: Option<ThemeRefreshView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThemeList {
    pub themes: Vec<ThemeView>,
}

/// A theme database to create, as the lead department.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTheme {
    pub name: String,
    #[serde(default)]
    pub summary: Option<String>,
    /// A 主题信息资源 classification (2xx).
    pub classification_code: String,
    /// The key item every member is keyed by.
    pub key_item: String,
    /// From at least two members.
    pub items: Vec<ThemeItemView>,
}
