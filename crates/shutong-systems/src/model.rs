//! The inventory entry (信息系统台账), the project filing (全口径备案) and their value lists.

use std::net::IpAddr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shutong_catalog::value_list;

shutong_store::typed_id!(
    /// 信息系统标识: one system of the inventory (江苏方案 三(一)1; 贵州方案 四(一)).
    SystemId
);
shutong_store::typed_id!(
    /// 备案项目标识: one filed informatisation project (办法 第二十三条 全口径备案).
    FiledProjectId
);
shutong_store::typed_id!(
    /// 僵尸系统认定记录标识: one step of a zombie review (response or decision).
    ZombieReviewId
);

value_list!(
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

value_list!(
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

value_list!(
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

value_list!(
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

value_list!(
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

value_list!(
    /// 运维状态 (criterion 4 of the zombie checks: 运维服务已经停止).
    OmStatus {
        /// 运维中.
        Ongoing => "ongoing" / "运维中",
        /// 运维已停止.
        Stopped => "stopped" / "运维已停止",
    }
);

value_list!(
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

value_list!(
    /// 部门意见 on a zombie verdict.
    ZombieResponse {
        /// 确认.
        Confirm => "confirm" / "确认",
        /// 有异议: disputed, with a reason.
        Dispute => "dispute" / "有异议",
    }
);

value_list!(
    /// 主管部门认定.
    ZombieDecision {
        /// 认定为僵尸系统.
        Zombie => "zombie" / "认定为僵尸系统",
        /// 不认定.
        NotZombie => "not_zombie" / "不认定为僵尸系统",
    }
);

value_list!(
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

value_list!(
    /// 清理进展.
    CleanupProgress {
        Planned => "planned" / "已计划",
        InProgress => "in_progress" / "实施中",
        Done => "done" / "已完成",
    }
);

value_list!(
    /// 自查报告状态 (铜川方案 二(一)).
    ReportStatus {
        Draft => "draft" / "草稿",
        Submitted => "submitted" / "已报送",
        Accepted => "accepted" / "审核通过",
        Returned => "returned" / "已退回",
    }
);

value_list!(
    /// 项目阶段 (办法 第二十二条、第二十三条): 立项申请 → 审批 → 建设 → 验收 → 运维.
    ProjectStage {
        Filed => "filed" / "立项申请",
        Approved => "approved" / "审批",
        Construction => "construction" / "建设",
        Accepted => "accepted" / "验收",
        Operation => "operation" / "运维",
    }
);

impl ProjectStage {
    /// The stage that follows, if any.
    pub fn next(self) -> Option<ProjectStage> {
        match self {
            ProjectStage::Filed => Some(ProjectStage::Approved),
            ProjectStage::Approved => Some(ProjectStage::Construction),
            ProjectStage::Construction => Some(ProjectStage::Accepted),
            ProjectStage::Accepted => Some(ProjectStage::Operation),
            ProjectStage::Operation => None,
        }
    }

    /// The funding gate that guards entry into this stage.
    pub fn gate(self) -> Option<Gate> {
        match self {
            ProjectStage::Approved => Some(Gate::Approval),
            ProjectStage::Accepted => Some(Gate::Acceptance),
            ProjectStage::Operation => Some(Gate::OmFunding),
            _ => None,
        }
    }
}

value_list!(
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

/// 金额: an exact amount in 分 (fen), written on the wire and in spreadsheets as 元 with up to two decimals
/// (`"1250000.00"`). Never a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    pub fn from_fen(fen: i64) -> Money {
        Money(fen)
    }
    pub fn fen(self) -> i64 {
        self.0
    }
    /// Parses 元 as the API writes them: digits with up to two decimals (`1250000`, `1250000.5`), less than
    /// 一万亿元. Signs, more decimals, separators and exponents are refused, naming the value.
    pub fn parse(s: &str) -> Result<Money, String> {
        let bad = || format!("'{s}' is not an amount in yuan (元) with at most two decimals, e.g. 1250000.00");
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
            return Err(bad());
        }
        if s.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        if whole.len() > 12 {
            return Err(format!("'{s}' is 一万亿元 or more"));
        }
        let yuan: i64 = whole.parse().map_err(|_| bad())?;
        let cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        Ok(Money(yuan * 100 + cents))
    }

    /// Parses an amount as people type it in a spreadsheet: spaces, thousands separators (`1,250,000.00`)
    /// and a trailing 元 are allowed; the rest as [`Money::parse`].
    pub fn parse_typed(s: &str) -> Result<Money, String> {
        let t: String = s.trim().trim_end_matches('元').chars().filter(|c| !matches!(c, ',' | '，' | ' ')).collect();
        Money::parse(&t).map_err(|_| format!("'{}' is not an amount in yuan (元) with at most two decimals, e.g. 1250000.00", s.trim()))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let s = String::deserialize(d)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One field at fault in a document: its path (`ip_addresses[1]`) and what is wrong, in English; the portal
/// shows it in Chinese through the message catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

fn problem(out: &mut Vec<FieldProblem>, field: impl Into<String>, message: impl Into<String>) {
    out.push(FieldProblem { field: field.into(), message: message.into() });
}

/// 信息系统登记表: one system as its department declares it (江苏方案 三(一)1; 吉林方案 二(一); 贵州方案 四(一);
/// 铜川方案 二(一)), with its links to the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// 建设经费 (元).
    pub build_cost: Money,
    /// 年运维经费 (元).
    pub om_cost: Money,
    /// 经费来源.
    pub funding_source: FundingSource,
    /// IP 地址.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// 主机实例名称.
    #[serde(default)]
    pub host_instances: Vec<String>,
    /// 访问域名或地址.
    #[serde(default)]
    pub access_url: Option<String>,
    /// 部署网络.
    pub network: SystemNetwork,
    /// 系统状态.
    pub status: SystemStatus,
    /// 使用处室 (the internal unit that runs it), if it is run by one.
    #[serde(default)]
    pub unit: Option<String>,
    /// 运维状态.
    pub om_status: OmStatus,
    /// 最近一次更新日期 (of the software, as declared).
    #[serde(default)]
    pub last_update_date: Option<NaiveDate>,
    /// 是否与其他部门共享数据: a system that does must connect to the sharing platform (办法 第二十二条).
    pub shares_across_departments: bool,
    /// 是否已接入共享平台 (as declared; the zombie and funding checks read the platform's facts too).
    pub connected: bool,
    /// Catalog resources it produces (资源代码).
    #[serde(default)]
    pub produces: Vec<String>,
    /// Catalog resources it consumes.
    #[serde(default)]
    pub consumes: Vec<String>,
    /// Its system accounts on the platform (usernames of the department's system accounts).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Its exchange nodes (前置机) on the platform, by name (the department's registered nodes).
    #[serde(default)]
    pub nodes: Vec<String>,
}

const NAME_MAX: usize = 200;
const TEXT_MAX: usize = 2000;
const LIST_MAX: usize = 64;

fn line_ok(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn text_ok(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Checks an access address: an `http`/`https` URL with a host, or a bare domain name or IP address.
pub fn check_access_url(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 500 {
        return Err("must be 1 to 500 characters".into());
    }
    let rest = if let Some(r) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) {
        r
    } else if s.contains("://") {
        return Err(format!("'{s}' is not an http or https address"));
    } else {
        s
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{s}' has an unclosed IPv6 address"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{h}' is not an IPv6 address"));
        }
        (None, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(host_port), None),
        }
    };
    if let Some(p) = port
        && !(p.parse::<u16>().is_ok_and(|n| n > 0))
    {
        return Err(format!("'{p}' is not a port number"));
    }
    if let Some(host) = host {
        if host.parse::<std::net::Ipv4Addr>().is_ok() {
            return Ok(());
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!("'{host}' is not an IPv4 address"));
        }
        let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
        };
        if host.is_empty() || host.len() > 253 || !labels.iter().all(label_ok) {
            return Err(format!("'{host}' is not a domain name"));
        }
        if labels.len() < 2 && host != "localhost" {
            return Err(format!("'{host}' is not a full domain name (e.g. oa.example.gov.cn)"));
        }
    }
    Ok(())
}

/// The names of internal units (处室) a system name may start with: a run of Chinese characters ending in one of
/// these, such as 人事处, 办公室, 信息中心, 财务科 (not 办: 经办, 承办 are ordinary words).
const UNIT_SUFFIXES: &[&str] = &["处", "室", "科", "中心", "股"];

/// Words that end like a unit but are not one (数据处理, 行政处罚, 处理).
const NOT_UNITS: &[&str] =
    &["数据处", "行政处", "信息处理", "事务处", "处理", "处罚", "处置", "处分", "办理", "办件", "室外", "科技", "科研", "科学"];

/// The 处室 at the start of a system name (人事处工资管理系统 → 人事处), if it names one.
pub fn unit_in_name(name: &str) -> Option<String> {
    let name = name.trim();
    let chars: Vec<char> = name.chars().collect();
    // Shortest prefix first: 办公室 before 办公室信息中心.
    for end in 2..=chars.len().min(10) {
        let prefix: String = chars[..end].iter().collect();
        if !prefix.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
            return None;
        }
        if !UNIT_SUFFIXES.iter().any(|s| prefix.ends_with(s)) {
            continue;
        }
        let rest: String = chars[end..].iter().collect();
        let with_next: String = chars[..(end + 1).min(chars.len())].iter().collect();
        if NOT_UNITS.iter().any(|w| prefix.ends_with(w) || with_next.ends_with(w)) {
            return None;
        }
        if rest.chars().count() >= 2 {
            return Some(prefix);
        }
    }
    None
}

/// 以处室名义登记: a system registered under an internal unit — by its declared 使用处室 or by a name that starts
/// with one — is to be merged into the department's (江苏方案 三(一)3). The reason, or none.
pub fn merger_flag(doc: &SystemDocument) -> Option<String> {
    if let Some(u) = unit_in_name(&doc.name) {
        return Some(format!("系统名称以处室“{u}”开头，应以部门名义整合"));
    }
    if doc.usage_scope == UsageScope::Unit
        && let Some(u) = doc.unit.as_deref().filter(|u| !u.trim().is_empty())
    {
        return Some(format!("系统仅在处室“{}”内部使用，应以部门名义整合", u.trim()));
    }
    None
}

/// The key duplicates are found by: the name without spaces, punctuation and case.
pub fn name_key(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

impl SystemDocument {
    /// Trims every text; drops empty list entries; IP addresses in canonical form where they parse.
    pub fn normalised(mut self) -> SystemDocument {
        fn t(s: &mut String) {
            *s = s.trim().to_string();
        }
        fn o(s: &mut Option<String>) {
            *s = s.take().map(|v| v.trim().to_string());
        }
        fn l(v: &mut [String]) {
            for s in v {
                *s = s.trim().to_string();
            }
        }
        t(&mut self.name);
        t(&mut self.function);
        o(&mut self.approving_department);
        o(&mut self.access_url);
        o(&mut self.unit);
        l(&mut self.host_instances);
        for ip in &mut self.ip_addresses {
            if let Ok(a) = ip.parse::<IpAddr>() {
                *ip = a.to_string();
            }
        }
        self
    }

    /// Every field at fault, by name (`ip_addresses[1]`), with what is wrong; `today` bounds the dates.
    pub fn problems(&self, today: NaiveDate) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if let Err(m) = line_ok(&self.name, NAME_MAX) {
            problem(&mut out, "name", m);
        } else if name_key(&self.name).is_empty() {
            problem(&mut out, "name", "must contain a letter or a digit");
        }
        if let Err(m) = text_ok(&self.function, TEXT_MAX) {
            problem(&mut out, "function", m);
        }
        for (field, v) in [("approving_department", &self.approving_department), ("unit", &self.unit)] {
            if let Some(v) = v
                && let Err(m) = line_ok(v, NAME_MAX)
            {
                problem(&mut out, field, m);
            }
        }
        for (field, d) in [("approval_date", self.approval_date), ("last_update_date", self.last_update_date)] {
            if let Some(d) = d {
                if d > today {
                    problem(&mut out, field, format!("{d} is in the future"));
                } else if d < NaiveDate::from_ymd_opt(1980, 1, 1).unwrap_or(NaiveDate::MIN) {
                    problem(&mut out, field, format!("{d} is before 1980"));
                }
            }
        }
        if self.approval_date.is_some() && self.approving_department.is_none() {
            problem(&mut out, "approving_department", "an approval date needs the approving department");
        }
        for (field, list) in [
            ("ip_addresses", &self.ip_addresses),
            ("host_instances", &self.host_instances),
            ("produces", &self.produces),
            ("consumes", &self.consumes),
            ("accounts", &self.accounts),
            ("nodes", &self.nodes),
        ] {
            if list.len() > LIST_MAX {
                problem(&mut out, field, format!("at most {LIST_MAX} entries"));
            }
        }
        for (i, ip) in self.ip_addresses.iter().enumerate().take(LIST_MAX) {
            if ip.parse::<IpAddr>().is_err() {
                problem(&mut out, format!("ip_addresses[{i}]"), format!("'{ip}' is not an IPv4 or IPv6 address"));
            }
        }
        for (i, h) in self.host_instances.iter().enumerate().take(LIST_MAX) {
            if let Err(m) = line_ok(h, 200) {
                problem(&mut out, format!("host_instances[{i}]"), m);
            }
        }
        if let Some(u) = &self.access_url
            && let Err(m) = check_access_url(u)
        {
            problem(&mut out, "access_url", m);
        }
        for (field, list) in [("produces", &self.produces), ("consumes", &self.consumes)] {
            for (i, code) in list.iter().enumerate().take(LIST_MAX) {
                if let Err(e) = shutong_catalog::ResourceCode::parse(code) {
                    problem(&mut out, format!("{field}[{i}]"), e.to_string());
                }
            }
        }
        if self.status == SystemStatus::Retired && self.connected {
            problem(&mut out, "connected", "a retired system cannot be connected to the platform");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_names_bad_values() {
        assert_eq!(Money::parse("1250000").unwrap().fen(), 125_000_000);
        assert_eq!(Money::parse_typed("1,250,000.5").unwrap().to_string(), "1250000.50");
        assert_eq!(Money::parse("0.07").unwrap().fen(), 7);
        assert_eq!(Money::parse_typed(" 12元 ").unwrap().fen(), 1200);
        assert_eq!(Money::parse("999999999999.99").unwrap().fen(), 99_999_999_999_999);
        for bad in ["", "-1", "1.234", "abc", "1e5", ".5", "5.", "1000000000000", " 1", "1,000"] {
            let e = Money::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let json = serde_json::to_string(&Money::from_fen(1)).unwrap();
        assert_eq!(json, "\"0.01\"");
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), Money::from_fen(1));
    }

    #[test]
    fn access_urls() {
        for ok in ["https://oa.js.gov.cn/login", "http://10.1.2.3:8080/", "oa.js.gov.cn", "http://[::1]:80/x", "政务.中国"] {
            assert!(check_access_url(ok).is_ok(), "{ok}");
        }
        for bad in ["ftp://x.cn", "http://", "http://a..b", "http://x.cn:99999", "999.1.1.1", "intranet", "http://-a.cn"] {
            assert!(check_access_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_in_names() {
        assert_eq!(unit_in_name("人事处工资管理系统").as_deref(), Some("人事处"));
        assert_eq!(unit_in_name("办公室公文流转系统").as_deref(), Some("办公室"));
        assert_eq!(unit_in_name("信息中心运维平台").as_deref(), Some("信息中心"));
        assert_eq!(unit_in_name("数据处理平台"), None);
        assert_eq!(unit_in_name("行政处罚办案系统"), None);
        assert_eq!(unit_in_name("不动产登记系统"), None);
        assert_eq!(unit_in_name("OA系统"), None);
        assert_eq!(unit_in_name("社会保险经办管理系统"), None);
    }

    #[test]
    fn names_key_without_spacing_or_case() {
        assert_eq!(name_key(" 不动产 登记系统（V2） "), name_key("不动产登记系统(v2)"));
    }
}
