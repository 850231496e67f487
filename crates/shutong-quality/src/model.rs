//! The quality domain: dimensions, rules and their kinds, results and grades.

use serde::{Deserialize, Serialize};
use shutong_catalog::value_list;

shutong_store::typed_id!(
    /// 质量规则标识: a rule a provider or the authority added to a dataset, or the retirement of a derived one
    /// (办法 第十七条 数据质量).
    QualityRuleId
);
shutong_store::typed_id!(
    /// 质量检查标识: one check of a dataset, its results appended (办法 第十七条).
    QualityRunId
);

value_list!(
    /// 质量维度 (GB/T 36344-2018 数据质量评价指标): what a rule measures. The five codes are fixed; their names
    /// and weights are data the sharing authority edits (`quality_dimensions`).
    Dimension {
        /// 完整性: values and records that should be there are.
        Completeness => "completeness" / "完整性",
        /// 规范性: values follow their standard, format, length and code lists.
        Conformity => "conformity" / "规范性",
        /// 准确性: values are true to what they describe (plausible ranges, expected volumes).
        Accuracy => "accuracy" / "准确性",
        /// 一致性: values agree with each other and with other data.
        Consistency => "consistency" / "一致性",
        /// 时效性: data is as recent as its 更新周期 promises.
        Timeliness => "timeliness" / "时效性",
    }
);

value_list!(
    /// Where a rule comes from: derived from the catalog entry's items (必填、长度、标识码、行政区划、更新周期) or
    /// added by the provider or the authority.
    RuleOrigin {
        Derived => "derived" / "目录派生",
        Custom => "custom" / "自定义",
    }
);

value_list!(
    /// 证件号码体系 an identifier rule checks.
    IdScheme {
        /// 公民身份号码 (GB 11643).
        IdNumber => "id_number" / "公民身份号码",
        /// 统一社会信用代码 (GB 32100).
        CreditCode => "credit_code" / "统一社会信用代码",
        /// 组织机构代码 (GB 11714).
        OrgCode => "org_code" / "组织机构代码",
    }
);

value_list!(
    /// What started a check.
    CheckCause {
        /// A committed batch (every accepted batch is checked).
        Batch => "batch" / "数据归集",
        /// The schedule (freshness, daily).
        Schedule => "schedule" / "定时检查",
        /// Someone asked for it (API, CLI, portal).
        Manual => "manual" / "手动检查",
    }
);

value_list!(
    /// 质量等级: the five levels of a score (0–100).
    Grade {
        /// 优秀: 90 and above.
        Excellent => "excellent" / "优秀",
        /// 良好: 80 to 90.
        Good => "good" / "良好",
        /// 中等: 70 to 80.
        Fair => "fair" / "中等",
        /// 及格: 60 to 70.
        Pass => "pass" / "及格",
        /// 不及格: below 60.
        Fail => "fail" / "不及格",
    }
);

impl Grade {
    /// The grade of a score in hundredths (0–10,000).
    pub fn of(score_bp: i64) -> Grade {
        match score_bp {
            9000.. => Grade::Excellent,
            8000..9000 => Grade::Good,
            7000..8000 => Grade::Fair,
            6000..7000 => Grade::Pass,
            _ => Grade::Fail,
        }
    }
}

/// A rule's test (规则类型), with what it needs. Row rules look at each live record; dataset rules at the
/// dataset as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// 必填: the item has a value (from 是否必填 and the key).
    Required { item: String },
    /// 长度: the value has at most `max` characters (from 数据长度).
    Length { item: String, max: u32 },
    /// 标识码校验: the value is a valid identifier of `scheme`, check character included.
    Identifier { item: String, scheme: IdScheme },
    /// 行政区划代码: the value is a code of the stored GB/T 2260 table in force.
    RegionCode { item: String },
    /// 代码表: the value is one of `values`.
    CodeList { item: String, values: Vec<String> },
    /// 格式: the whole value matches the regular expression `pattern`.
    Pattern { item: String, pattern: String },
    /// 取值范围: a number or a date (YYYY-MM-DD) between `min` and `max`, both included, either open.
    Range {
        item: String,
        #[serde(default)]
        min: Option<String>,
        #[serde(default)]
        max: Option<String>,
    },
    /// 身份证一致性: 出生日期 and 性别 agree with 公民身份号码 (GB 11643: digits 7–14, digit 17).
    IdConsistency {
        id_item: String,
        #[serde(default)]
        birth_item: Option<String>,
        #[serde(default)]
        sex_item: Option<String>,
    },
    /// 及时性: the last batch is at most `max_age_days` old (from 更新周期).
    Freshness { max_age_days: u32 },
    /// 数据量波动: live records changed by at most `max_change_percent` since the previous check.
    VolumeChange { max_change_percent: u32 },
    /// 唯一性: no two live records share a value of a non-key item (the key is unique by construction).
    Unique { item: String },
    /// 引用一致: every value of the item is the key of a live record of another resource's dataset (a
    /// 统一社会信用代码 that names a registered 法人, a 公民身份号码 that names a person).
    Reference { item: String, resource: String },
}

impl RuleKind {
    /// The kind's code (as stored and on the wire).
    pub fn code(&self) -> &'static str {
        match self {
            RuleKind::Required { .. } => "required",
            RuleKind::Length { .. } => "length",
            RuleKind::Identifier { .. } => "identifier",
            RuleKind::RegionCode { .. } => "region_code",
            RuleKind::CodeList { .. } => "code_list",
            RuleKind::Pattern { .. } => "pattern",
            RuleKind::Range { .. } => "range",
            RuleKind::IdConsistency { .. } => "id_consistency",
            RuleKind::Freshness { .. } => "freshness",
            RuleKind::VolumeChange { .. } => "volume_change",
            RuleKind::Unique { .. } => "unique",
            RuleKind::Reference { .. } => "reference",
        }
    }

    /// The kind's Chinese name.
    pub fn label_zh(&self) -> &'static str {
        match self {
            RuleKind::Required { .. } => "必填",
            RuleKind::Length { .. } => "长度",
            RuleKind::Identifier { .. } => "标识码校验",
            RuleKind::RegionCode { .. } => "行政区划代码",
            RuleKind::CodeList { .. } => "代码表",
            RuleKind::Pattern { .. } => "格式",
            RuleKind::Range { .. } => "取值范围",
            RuleKind::IdConsistency { .. } => "身份证一致性",
            RuleKind::Freshness { .. } => "及时性",
            RuleKind::VolumeChange { .. } => "数据量波动",
            RuleKind::Unique { .. } => "唯一性",
            RuleKind::Reference { .. } => "引用一致",
        }
    }

    /// The dimension a rule of this kind measures unless its author says otherwise.
    pub fn default_dimension(&self) -> Dimension {
        match self {
            RuleKind::Required { .. } | RuleKind::VolumeChange { .. } => Dimension::Completeness,
            RuleKind::Length { .. }
            | RuleKind::Identifier { .. }
            | RuleKind::RegionCode { .. }
            | RuleKind::CodeList { .. }
            | RuleKind::Pattern { .. } => Dimension::Conformity,
            RuleKind::Range { .. } | RuleKind::Unique { .. } => Dimension::Accuracy,
            RuleKind::IdConsistency { .. } | RuleKind::Reference { .. } => Dimension::Consistency,
            RuleKind::Freshness { .. } => Dimension::Timeliness,
        }
    }

    /// The items the rule reads.
    pub fn items(&self) -> Vec<&str> {
        match self {
            RuleKind::Required { item }
            | RuleKind::Length { item, .. }
            | RuleKind::Identifier { item, .. }
            | RuleKind::RegionCode { item }
            | RuleKind::CodeList { item, .. }
            | RuleKind::Pattern { item, .. }
            | RuleKind::Range { item, .. }
            | RuleKind::Unique { item }
            | RuleKind::Reference { item, .. } => vec![item.as_str()],
            RuleKind::IdConsistency { id_item, birth_item, sex_item } => {
                std::iter::once(id_item.as_str()).chain(birth_item.as_deref()).chain(sex_item.as_deref()).collect()
            }
            RuleKind::Freshness { .. } | RuleKind::VolumeChange { .. } => Vec::new(),
        }
    }

    /// Whether the rule judges the dataset as a whole rather than each record.
    pub fn is_dataset_rule(&self) -> bool {
        matches!(self, RuleKind::Freshness { .. } | RuleKind::VolumeChange { .. })
    }

    /// Whether the rule compares records with each other or with another dataset (唯一性, 引用一致): judged by
    /// the pool over the whole dataset, not record by record.
    pub fn is_set_rule(&self) -> bool {
        matches!(self, RuleKind::Unique { .. } | RuleKind::Reference { .. })
    }

    /// The key of a derived rule: stable for the same test of the same items, so that its results line up
    /// over time and a retirement sticks.
    pub fn derived_key(&self) -> String {
        format!("derived:{}", serde_json::to_string(self).unwrap_or_default())
    }
}

/// 质量维度 as the authority set it: its name and weight in the dataset score.
#[derive(Clone, Debug, Serialize)]
pub struct DimensionSetting {
    pub dimension: Dimension,
    pub name: String,
    /// 0–100; a dataset's score weighs the dimensions that have rules by these.
    pub weight: i64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// 质量规则: one test of a dataset, derived from its catalog entry or added by a person.
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    /// The stored rule's ID (custom rules, retired derived ones); none for a derived rule in force.
    pub id: Option<QualityRuleId>,
    /// Stable across checks: `derived:{…}` or `custom:{id}`.
    pub key: String,
    pub resource_code: String,
    pub origin: RuleOrigin,
    pub kind: RuleKind,
    pub dimension: Dimension,
    /// 阻断: a failure is meant to refuse the batch (recorded; see the crate README for where it applies).
    pub blocking: bool,
    pub note: Option<String>,
    pub created_at_ms: Option<i64>,
    pub created_by: Option<String>,
    pub retired_at_ms: Option<i64>,
    pub retired_by: Option<String>,
    pub retire_reason: Option<String>,
}

/// What a provider or the authority asks to add.
#[derive(Clone, Debug, Deserialize)]
pub struct NewRule {
    pub kind: RuleKind,
    pub dimension: Option<Dimension>,
    pub blocking: bool,
    pub note: Option<String>,
}

/// One rule's result in one check (appended, never changed).
#[derive(Clone, Debug, Serialize)]
pub struct RuleResult {
    pub rule_key: String,
    pub kind: String,
    pub dimension: Dimension,
    pub checked_at_ms: i64,
    pub rows_checked: i64,
    pub rows_failing: i64,
    /// Keys of failing records, masked, at most [`crate::SAMPLE_LIMIT`].
    pub samples: Vec<String>,
    /// 0–10,000 (hundredths of a point).
    pub score: i64,
    /// What a dataset rule measured, or the first failing value's reason.
    pub detail: Option<String>,
}

/// A dimension's score in one check.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DimensionScore {
    pub dimension: Dimension,
    /// 0–10,000.
    pub score: i64,
    pub rules: i64,
}

/// 质量检查: one check of a dataset and its score.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub id: QualityRunId,
    pub resource_code: String,
    pub department_id: i64,
    pub cause: CheckCause,
    pub batch_id: Option<i64>,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub rows_checked: i64,
    /// 0–10,000.
    pub score: i64,
    pub grade: Grade,
    pub dimensions: Vec<DimensionScore>,
    pub actor: String,
    /// The rules' results (filled when one run is read).
    pub results: Vec<RuleResult>,
}

/// A dataset's latest score, for the department and overview lists.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetScore {
    pub resource_code: String,
    pub resource_name: String,
    pub department_id: i64,
    pub run_id: QualityRunId,
    pub checked_at_ms: i64,
    pub score: i64,
    pub grade: Grade,
    pub dimensions: Vec<DimensionScore>,
}

/// A department's score: the mean of its datasets' latest scores.
#[derive(Clone, Debug, Serialize)]
pub struct DepartmentScore {
    pub department_id: i64,
    pub department_name: String,
    pub datasets: i64,
    pub score: i64,
    pub grade: Grade,
    pub dimensions: Vec<DimensionScore>,
}
