//! The catalog entry and its value lists (政务信息资源目录编制指南, 发改高技〔2017〕1272号).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A closed list of values with an English code (the wire form) and a Chinese name (accepted on input and
/// shown in forms, spreadsheets and the portal). Exported for the other capability crates.
#[macro_export]
macro_rules! value_list {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:tt / $zh:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $($(#[$vdoc])* #[serde(rename = $s, alias = $zh)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// The Chinese name used in forms, spreadsheets and the portal.
            pub fn label_zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
            /// Accepts the English code or the Chinese name.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                match s { $($s | $zh => Some($name::$variant),)+ _ => None }
            }
            pub fn expected() -> String { [$($zh),+].join("、") }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

value_list!(
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

value_list!(
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

value_list!(
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

impl UpdateCycle {
    /// The age (days) beyond which data kept on this cycle is out of date (时效性): one day for real-time
    /// and daily data, then a week, 31 days, a quarter (92), half a year (183) and a year (366);
    /// none for irregular updates, which have no due date.
    pub fn max_age_days(self) -> Option<u32> {
        match self {
            UpdateCycle::Realtime | UpdateCycle::Daily => Some(1),
            UpdateCycle::Weekly => Some(7),
            UpdateCycle::Monthly => Some(31),
            UpdateCycle::Quarterly => Some(92),
            UpdateCycle::HalfYearly => Some(183),
            UpdateCycle::Yearly => Some(366),
            UpdateCycle::Irregular => None,
        }
    }
}

value_list!(
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

value_list!(
    /// 共享方式 (办法 第十五条).
    SharingMethod {
        SystemIntegration => "system_integration" / "系统对接",
        ExchangeNode => "exchange_node" / "前置机共享",
        OnlineQuery => "online_query" / "联机查询",
        BulkDownload => "bulk_download" / "批量下载",
    }
);

value_list!(
    /// 涉密属性.
    Secrecy {
        NonClassified => "non_classified" / "非涉密",
        Classified => "classified" / "涉密",
    }
);

value_list!(
    /// 所属网络: 电子政务外网, 内网 or a dedicated network.
    Network {
        Outer => "outer" / "电子政务外网",
        Inner => "inner" / "电子政务内网",
        Dedicated => "dedicated" / "业务专网",
    }
);

value_list!(
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

shutong_store::typed_id!(
    /// 项目标识: the ID of a registered 政务信息化项目 whose catalog is compiled ahead (办法 第二十二条, R-CAT-8).
    ProjectId
);

/// 信息资源代码: classification code + "/" + a 6-digit sequence code, e.g. `101001/000042`. Generated by the
/// platform, unique and never reused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceCode(String);

impl ResourceCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (class, seq) = s.split_once('/').ok_or_else(|| format!("'{s}' is not CLASSIFICATION/SEQUENCE"))?;
        if !is_classification_code(class) {
            return Err(format!("'{class}' is not a classification code (1–3, then 2-digit 项, 3-digit 目, 细目)"));
        }
        if seq.len() != 6 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("sequence '{seq}' must be 6 digits"));
        }
        Ok(ResourceCode(s.to_string()))
    }

    /// A code read back from storage: one that no longer parses is the store's error naming the table and
    /// column, not a default.
    pub fn from_stored(table: &str, column: &str, s: &str) -> shutong_store::StoreResult<Self> {
        ResourceCode::parse(s).map_err(|_| shutong_store::StoreError::decode(table, column, s))
    }

    pub fn new(classification: &str, seq: i64) -> Self {
        ResourceCode(format!("{classification}/{seq:06}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn classification(&self) -> &str {
        self.0.split_once('/').map(|(c, _)| c).unwrap_or("")
    }
}

impl TryFrom<String> for ResourceCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ResourceCode::parse(&s)
    }
}
impl From<ResourceCode> for String {
    fn from(c: ResourceCode) -> String {
        c.0
    }
}
impl fmt::Display for ResourceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 类/项/目/细目: `1`–`3`, then 2 digits (项), then 3 digits (目), then any further digits (细目).
pub fn is_classification_code(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 30
        && matches!(b[0], b'1'..=b'3')
        && b.iter().all(u8::is_ascii_digit)
        && b.len() != 2
        && b.len() != 4
        && b.len() != 5
}

/// The level of a classification code: 1 类, 2 项, 3 目, 4 细目.
pub fn classification_level(code: &str) -> i64 {
    match code.len() {
        1 => 1,
        3 => 2,
        6 => 3,
        _ => 4,
    }
}

/// The parent of a classification code (`101001` → `101`).
pub fn classification_parent(code: &str) -> Option<&str> {
    match code.len() {
        0 | 1 => None,
        3 => Some(&code[..1]),
        6 => Some(&code[..3]),
        _ => Some(&code[..6]),
    }
}

/// 信息项: one data element of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub mask: Option<shutong_reference::MaskKind>,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_codes() {
        assert!(ResourceCode::parse("101/000001").is_ok());
        assert!(ResourceCode::parse("101001/000042").is_ok());
        assert!(ResourceCode::parse("3/000001").is_ok());
        assert_eq!(ResourceCode::new("101", 7).as_str(), "101/000007");
        for bad in ["", "101", "4/000001", "10/000001", "101/1", "101/00000a", "1a1/000001"] {
            assert!(ResourceCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(classification_parent("101001"), Some("101"));
        assert_eq!(classification_level("101001"), 3);
    }

    #[test]
    fn value_lists_accept_codes_and_chinese() {
        assert_eq!(SharingType::parse("有条件共享"), Some(SharingType::Conditional));
        assert_eq!(SharingType::parse("conditional"), Some(SharingType::Conditional));
        assert_eq!(DataType::parse("C"), Some(DataType::Char));
        assert_eq!(DataType::parse("日期型"), Some(DataType::Date));
        assert_eq!(UpdateCycle::parse("每季度"), Some(UpdateCycle::Quarterly));
        assert_eq!(SharingMethod::parse("前置机共享"), Some(SharingMethod::ExchangeNode));
        assert!(ResourceFormat::parse("纸质").is_none());
    }
}
