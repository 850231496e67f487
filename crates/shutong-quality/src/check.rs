//! The rules as tests over a dataset's records: compiled once per check against the dataset's columns, then
//! run over every live record in one pass ([`Evaluator::row`]), counting failures and keeping the first
//! failing keys, masked. Pure: the service reads the rows and writes the results.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::NaiveDate;
use shutong_exchange::sealed;
use shutong_reference::{CreditCode, IdNumberValidator, MaskKind, MaskRules, OrgCode, RegionTable, Sex};

use crate::SAMPLE_LIMIT;
use crate::model::*;

/// A range bound, typed by what `min` and `max` parse as.
#[derive(Clone, Debug, PartialEq)]
pub enum Bounds {
    Number(Option<f64>, Option<f64>),
    Date(Option<NaiveDate>, Option<NaiveDate>),
}

/// Reads a date as written in government data: `2020-01-31`, `2020/01/31`, `20200131`, or the date part of a
/// date-time.
pub fn parse_date(v: &str) -> Option<NaiveDate> {
    let v = v.trim();
    let head: String = v.chars().take(10).collect();
    NaiveDate::parse_from_str(&head, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&head, "%Y/%m/%d"))
        .or_else(|_| NaiveDate::parse_from_str(v.get(..8).unwrap_or(v), "%Y%m%d"))
        .ok()
}

/// The bounds of a range rule, or why they are not usable (named by field).
pub fn range_bounds(min: Option<&str>, max: Option<&str>) -> Result<Bounds, (&'static str, String)> {
    let (min, max) = (min.map(str::trim).filter(|s| !s.is_empty()), max.map(str::trim).filter(|s| !s.is_empty()));
    if min.is_none() && max.is_none() {
        return Err(("rule.min", "a range needs min, max or both".into()));
    }
    let number = |v: &str| v.parse::<f64>().ok().filter(|f| f.is_finite());
    // What a bound is: a number, else a date; `None` for neither.
    let kind = |v: &str| {
        if number(v).is_some() {
            Some(true)
        } else if parse_date(v).is_some() {
            Some(false)
        } else {
            None
        }
    };
    let (kmin, kmax) = (min.map(kind), max.map(kind));
    if kmin == Some(None) {
        return Err(("rule.min", "must be a number, or a date as YYYY-MM-DD".into()));
    }
    if kmax == Some(None) || matches!((kmin, kmax), (Some(Some(a)), Some(Some(b))) if a != b) {
        return Err(("rule.max", "must be a number, or a date as YYYY-MM-DD, and both bounds of the same kind".into()));
    }
    if kmin.or(kmax) == Some(Some(true)) {
        let (a, b) = (min.and_then(number), max.and_then(number));
        if let (Some(a), Some(b)) = (a, b)
            && a > b
        {
            return Err(("rule.max", format!("max {b} is below min {a}")));
        }
        Ok(Bounds::Number(a, b))
    } else {
        let (a, b) = (min.and_then(parse_date), max.and_then(parse_date));
        if let (Some(a), Some(b)) = (a, b)
            && a > b
        {
            return Err(("rule.max", format!("max {b} is before min {a}")));
        }
        Ok(Bounds::Date(a, b))
    }
}

/// A pattern as a whole-value regular expression, bounded in size (a pattern anyone may add must not make
/// the service use unbounded memory).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.is_empty() || pattern.chars().count() > 500 {
        return Err("must be 1 to 500 characters".into());
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| format!("is not a valid regular expression: {}", e.to_string().lines().last().unwrap_or_default().trim()))
}

enum Test {
    Required,
    Length(usize),
    Identifier(IdScheme),
    Region,
    CodeList(HashSet<String>),
    Pattern(regex::Regex),
    Range(Bounds),
    IdConsistency { birth: Option<usize>, sex: Option<usize> },
}

struct RowRule {
    slot: usize,
    column: Option<usize>,
    test: Test,
    failing: i64,
    samples: Vec<String>,
    detail: Option<String>,
}

/// A row rule's tally after the pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    /// The rule's position in the list compiled.
    pub slot: usize,
    pub failing: i64,
    pub samples: Vec<String>,
    /// The first failure's reason.
    pub detail: Option<String>,
}

/// The row rules compiled against one dataset.
pub struct Evaluator<'a> {
    code: String,
    columns: Vec<String>,
    rules: Vec<RowRule>,
    needed: Vec<bool>,
    key_column: Option<usize>,
    key_mask: Option<MaskKind>,
    keys: Option<&'a shutong_crypto::DataKeys>,
    masks: &'a MaskRules,
    regions: &'a RegionTable,
    ids: IdNumberValidator,
    pub rows: i64,
}

impl<'a> Evaluator<'a> {
    /// Compiles the row rules among `rules` (their positions are kept as slots) for a dataset whose columns
    /// are `columns`, keyed by `key_item` (masked in samples by `key_mask`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        code: &str,
        columns: &[String],
        key_item: Option<&str>,
        key_mask: Option<MaskKind>,
        rules: &[&RuleKind],
        keys: Option<&'a shutong_crypto::DataKeys>,
        masks: &'a MaskRules,
        regions: &'a RegionTable,
        today: NaiveDate,
    ) -> Result<Self, String> {
        let col = |item: &str| columns.iter().position(|c| c == item);
        let mut compiled = Vec::new();
        let mut needed = vec![false; columns.len()];
        for (slot, kind) in rules.iter().enumerate() {
            let (item, test) = match kind {
                RuleKind::Required { item } => (item, Test::Required),
                RuleKind::Length { item, max } => (item, Test::Length(*max as usize)),
                RuleKind::Identifier { item, scheme } => (item, Test::Identifier(*scheme)),
                RuleKind::RegionCode { item } => (item, Test::Region),
                RuleKind::CodeList { item, values } => (item, Test::CodeList(values.iter().map(|v| v.trim().to_string()).collect())),
                RuleKind::Pattern { item, pattern } => (item, Test::Pattern(compile_pattern(pattern)?)),
                RuleKind::Range { item, min, max } => {
                    (item, Test::Range(range_bounds(min.as_deref(), max.as_deref()).map_err(|(f, m)| format!("{f}: {m}"))?))
                }
                RuleKind::IdConsistency { id_item, birth_item, sex_item } => {
                    (id_item, Test::IdConsistency { birth: birth_item.as_deref().and_then(col), sex: sex_item.as_deref().and_then(col) })
                }
                RuleKind::Freshness { .. } | RuleKind::VolumeChange { .. } | RuleKind::Unique { .. } | RuleKind::Reference { .. } => {
                    continue;
                }
            };
            let column = col(item);
            for c in column.into_iter().chain(
                match &test {
                    Test::IdConsistency { birth, sex } => [*birth, *sex],
                    _ => [None, None],
                }
                .into_iter()
                .flatten(),
            ) {
                needed[c] = true;
            }
            compiled.push(RowRule { slot, column, test, failing: 0, samples: Vec::new(), detail: None });
        }
        let key_column = key_item.and_then(col);
        Ok(Evaluator {
            code: code.to_string(),
            columns: columns.to_vec(),
            rules: compiled,
            needed,
            key_column,
            key_mask,
            keys,
            masks,
            regions,
            ids: IdNumberValidator::new(today),
            rows: 0,
        })
    }

    /// Whether any row rule is compiled (no pass is needed otherwise).
    pub fn has_row_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The record's key as shown in samples: masked by the key item's rule, or the stored masked form of an
    /// encrypted key.
    fn sample_key(&self, values: &[Option<&str>]) -> String {
        shown_key(self.key_column.and_then(|k| values.get(k).copied().flatten()), self.key_mask, self.masks)
    }

    /// Runs every row rule over one record's stored values (in column order).
    pub fn row(&mut self, values: &[Option<&str>]) -> shutong_exchange::ExchangeResult<()> {
        self.rows += 1;
        // The values the rules read, in clear (an encrypted value is opened once per record).
        let mut clear: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            clear.push(match (v, self.needed.get(i).copied().unwrap_or(false)) {
                (Some(raw), true) => {
                    let name = self.columns.get(i).map(String::as_str).unwrap_or_default();
                    let open = sealed::open(self.keys, &self.code, name, raw)?;
                    let t = match open {
                        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
                    };
                    if t.is_empty() { None } else { Some(t) }
                }
                _ => None,
            });
        }
        let mut sample: Option<String> = None;
        for i in 0..self.rules.len() {
            let value = self.rules[i].column.and_then(|c| clear.get(c)).and_then(|v| v.as_deref());
            let Some(reason) = self.test(&self.rules[i].test, value, &clear) else { continue };
            if sample.is_none() && self.rules[i].samples.len() < SAMPLE_LIMIT {
                sample = Some(self.sample_key(values));
            }
            let r = &mut self.rules[i];
            r.failing += 1;
            if r.detail.is_none() {
                r.detail = Some(reason);
            }
            if r.samples.len() < SAMPLE_LIMIT {
                r.samples.push(sample.clone().unwrap_or_default());
            }
        }
        Ok(())
    }

    /// Why `value` fails `test`, or `None` if it passes. An empty value passes every test but 必填.
    fn test(&self, test: &Test, value: Option<&str>, clear: &[Option<Cow<'_, str>>]) -> Option<String> {
        let Some(v) = value else {
            return matches!(test, Test::Required).then(|| "值为空".to_string());
        };
        match test {
            Test::Required => None,
            Test::Length(max) => {
                let n = v.chars().count();
                (n > *max).then(|| format!("长度 {n} 超过 {max}"))
            }
            Test::Identifier(scheme) => {
                let ok = match scheme {
                    IdScheme::IdNumber => self.ids.parse(v).is_ok(),
                    IdScheme::CreditCode => CreditCode::parse(v).is_ok(),
                    IdScheme::OrgCode => OrgCode::parse(v).is_ok(),
                };
                (!ok).then(|| format!("不是有效的{}", scheme.label_zh()))
            }
            Test::Region => match self.regions.lookup(v) {
                Ok((_, e)) if e.is_current() => None,
                Ok((code, e)) => Some(format!("行政区划代码 {code}（{}）已停用", e.name)),
                Err(_) => Some("不是现行 GB/T 2260 行政区划代码".into()),
            },
            Test::CodeList(values) => (!values.contains(v)).then(|| "不在代码表中".into()),
            Test::Pattern(re) => (!re.is_match(v)).then(|| "不符合格式要求".into()),
            Test::Range(Bounds::Number(min, max)) => match v.parse::<f64>() {
                Ok(x) if min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m) => None,
                Ok(_) => Some("超出取值范围".into()),
                Err(_) => Some("不是数值".into()),
            },
            Test::Range(Bounds::Date(min, max)) => match parse_date(v) {
                Some(d) if min.is_none_or(|m| d >= m) && max.is_none_or(|m| d <= m) => None,
                Some(_) => Some("超出取值范围".into()),
                None => Some("不是日期".into()),
            },
            Test::IdConsistency { birth, sex } => {
                // An invalid number is the identifier rule's failure, not this one's.
                let Ok(id) = self.ids.parse(v) else { return None };
                if let Some(b) = birth.and_then(|c| clear.get(c)).and_then(|x| x.as_deref()) {
                    match parse_date(b) {
                        Some(d) if d == id.birth_date() => {}
                        _ => return Some("出生日期与公民身份号码不一致".into()),
                    }
                }
                if let Some(s) = sex.and_then(|c| clear.get(c)).and_then(|x| x.as_deref()) {
                    let declared = match s {
                        "男" | "1" | "M" | "m" | "male" => Some(Sex::Male),
                        "女" | "2" | "F" | "f" | "female" => Some(Sex::Female),
                        // GB/T 2261.1: 0 未知的性别, 9 未说明的性别 — nothing to compare.
                        "0" | "9" | "未知" | "未说明" => None,
                        _ => return Some("性别不是 GB/T 2261.1 的值".into()),
                    };
                    if declared.is_some_and(|d| d != id.sex()) {
                        return Some("性别与公民身份号码不一致".into());
                    }
                }
                None
            }
        }
    }

    /// The tallies, one per row rule compiled, by slot.
    pub fn finish(self) -> Vec<Tally> {
        self.rules.into_iter().map(|r| Tally { slot: r.slot, failing: r.failing, samples: r.samples, detail: r.detail }).collect()
    }
}

/// A score in hundredths: the share of records that pass.
pub fn share_score(checked: i64, failing: i64) -> i64 {
    if checked <= 0 { 10_000 } else { ((checked - failing).max(0) * 10_000) / checked }
}

/// A record's key as a sample shows it: the stored masked form of an encrypted key, else masked by the key
/// item's rule.
pub fn shown_key(raw: Option<&str>, mask: Option<MaskKind>, masks: &shutong_reference::MaskRules) -> String {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return "（无主键）".into() };
    if let Some(p) = sealed::parts(raw) {
        return p.masked.to_string();
    }
    match mask {
        Some(kind) => masks.mask(kind, raw),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_numbers_or_dates_and_named_when_wrong() {
        assert_eq!(range_bounds(Some("0"), Some("150")).unwrap(), Bounds::Number(Some(0.0), Some(150.0)));
        assert!(matches!(range_bounds(Some("1900-01-01"), None).unwrap(), Bounds::Date(Some(_), None)));
        assert_eq!(range_bounds(None, None).unwrap_err().0, "rule.min");
        assert_eq!(range_bounds(Some("5"), Some("1")).unwrap_err().0, "rule.max");
        assert_eq!(range_bounds(Some("abc"), Some("1")).unwrap_err().0, "rule.min");
        assert_eq!(range_bounds(Some("1"), Some("2020-01-01")).unwrap_err().0, "rule.max");
    }

    #[test]
    fn patterns_match_whole_values_and_bad_ones_are_refused() {
        let re = compile_pattern("[0-9]{3}").unwrap();
        assert!(re.is_match("123") && !re.is_match("1234"));
        assert!(compile_pattern("([a-z]").unwrap_err().contains("not a valid"));
        assert!(compile_pattern("a{100000}{100000}").is_err(), "a pattern that would take unbounded memory is refused");
    }

    #[test]
    fn dates_in_the_usual_forms() {
        let d = NaiveDate::from_ymd_opt(1990, 3, 7).unwrap();
        for v in ["1990-03-07", "1990/03/07", "19900307", "1990-03-07 08:00:00"] {
            assert_eq!(parse_date(v), Some(d), "{v}");
        }
        assert_eq!(parse_date("07.03.1990"), None);
    }

    #[test]
    fn each_row_test_finds_its_defect_and_passes_clean_values() {
        let masks = MaskRules::default();
        let regions = RegionTable::builtin();
        let columns: Vec<String> = ["公民身份号码", "姓名", "出生日期", "性别", "行政区划代码", "年龄", "学历"].map(String::from).to_vec();
        let kinds = [
            RuleKind::Required { item: "姓名".into() },
            RuleKind::Length { item: "姓名".into(), max: 4 },
            RuleKind::Identifier { item: "公民身份号码".into(), scheme: IdScheme::IdNumber },
            RuleKind::RegionCode { item: "行政区划代码".into() },
            RuleKind::Range { item: "年龄".into(), min: Some("0".into()), max: Some("150".into()) },
            RuleKind::CodeList { item: "学历".into(), values: vec!["10".into(), "20".into()] },
            RuleKind::Pattern { item: "姓名".into(), pattern: "\\p{Han}+".into() },
            RuleKind::IdConsistency {
                id_item: "公民身份号码".into(), birth_item: Some("出生日期".into()), sex_item: Some("性别".into())
            },
        ];
        let refs: Vec<&RuleKind> = kinds.iter().collect();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut ev =
            Evaluator::new("R1", &columns, Some("公民身份号码"), Some(MaskKind::IdNumber), &refs, None, &masks, &regions, today).unwrap();
        let good = ["11010519491231002X", "张三", "1949-12-31", "女", "110105", "76", "10"];
        ev.row(&good.map(Some)).unwrap();
        let bad_name = ["11010519491231002X", "张三丰二世", "1949-12-31", "女", "110105", "76", "10"];
        ev.row(&bad_name.map(Some)).unwrap();
        let bad_rest = ["110105194912310021", "", "1950-01-01", "男", "999999", "200", "30"];
        ev.row(&bad_rest.map(|v| if v.is_empty() { None } else { Some(v) })).unwrap();
        let latin = ["11010519491231002X", "Tom", "1949-12-31", "女", "110105", "76", "10"];
        ev.row(&latin.map(Some)).unwrap();
        let tallies = ev.finish();
        let failing: Vec<i64> = tallies.iter().map(|t| t.failing).collect();
        // required, length, identifier, region, range, code list, pattern, consistency.
        assert_eq!(failing, [1, 1, 1, 1, 1, 1, 1, 0], "{tallies:?}");
        assert_eq!(tallies[6].detail.as_deref(), Some("不符合格式要求"));
        // The consistency rule's failure: a valid number whose birth date and sex disagree.
        let mut ev =
            Evaluator::new("R1", &columns, Some("公民身份号码"), Some(MaskKind::IdNumber), &refs, None, &masks, &regions, today).unwrap();
        ev.row(&["11010519491231002X", "张三", "1950-01-01", "女", "110105", "76", "10"].map(Some)).unwrap();
        ev.row(&["11010519491231002X", "张三", "1949-12-31", "男", "110105", "76", "10"].map(Some)).unwrap();
        let t = ev.finish();
        assert_eq!(t[7].failing, 2);
        assert!(t[7].samples.iter().all(|s| s != "11010519491231002X" && s.contains('*')), "samples are masked: {:?}", t[7].samples);
    }
}
