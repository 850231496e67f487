//! Validation of one value against its 信息项 (type, length, required, identifier checksums), producing the
//! normalised form the platform stores.

use chrono::{NaiveDate, NaiveDateTime};
use shutong_catalog::{DataType, InfoItem};
use shutong_reference::{CreditCode, IdNumberValidator, MaskKind};

/// The identifier an item holds, checked with the reference crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentKind {
    /// 公民身份号码 (GB 11643).
    IdNumber,
    /// 统一社会信用代码 (GB 32100).
    CreditCode,
}

/// Which identifier an item holds: by its masking kind, its 标准依据, or its name.
pub fn identifier_kind(item: &InfoItem) -> Option<IdentKind> {
    let standard = item.standard.as_deref().unwrap_or("");
    if item.mask == Some(MaskKind::IdNumber) || standard.contains("11643") || item.name.ends_with("公民身份号码") {
        Some(IdentKind::IdNumber)
    } else if item.mask == Some(MaskKind::CreditCode) || standard.contains("32100") || item.name.ends_with("统一社会信用代码") {
        Some(IdentKind::CreditCode)
    } else {
        None
    }
}

/// The checks of one item, prepared once per batch.
#[derive(Clone, Debug)]
pub struct ItemCheck {
    pub name: String,
    pub data_type: DataType,
    pub length: Option<u32>,
    pub required: bool,
    pub ident: Option<IdentKind>,
    /// The masking kind of a sensitive item (stored encrypted).
    pub mask: Option<shutong_reference::MaskKind>,
}

impl ItemCheck {
    pub fn of(item: &InfoItem) -> Self {
        ItemCheck {
            name: item.name.clone(),
            data_type: item.data_type,
            length: item.length,
            required: item.required || item.is_key,
            ident: identifier_kind(item),
            mask: item.mask,
        }
    }

    /// The stored form of `raw`, `None` for an empty value, or why it is not acceptable.
    pub fn check(&self, raw: &str, ids: &IdNumberValidator) -> Result<Option<String>, String> {
        let v = raw.trim();
        if v.is_empty() {
            return if self.required { Err("is required and empty".into()) } else { Ok(None) };
        }
        if let Some(kind) = self.ident {
            return match kind {
                IdentKind::IdNumber => {
                    ids.parse(v).map(|n| Some(n.as_str().to_string())).map_err(|e| format!("'{v}' is not a valid 公民身份号码: {e}"))
                }
                IdentKind::CreditCode => CreditCode::parse(v)
                    .map(|c| Some(c.as_str().to_string()))
                    .map_err(|e| format!("'{v}' is not a valid 统一社会信用代码: {e}")),
            };
        }
        let allow_newlines = matches!(self.data_type, DataType::Memo | DataType::General);
        if let Some(c) = v.chars().find(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t'))) {
            return Err(format!("contains the control character U+{:04X}", c as u32));
        }
        match self.data_type {
            DataType::Char | DataType::Memo | DataType::General => {
                if let Some(max) = self.length {
                    let n = v.chars().count();
                    if n > max as usize {
                        return Err(format!("has {n} characters, longer than the item's length {max}"));
                    }
                }
                Ok(Some(v.to_string()))
            }
            DataType::Numeric | DataType::Currency => {
                let digits = decimal_digits(v).ok_or_else(|| format!("'{v}' is not a number"))?;
                if let Some(max) = self.length
                    && digits > max as usize
                {
                    return Err(format!("'{v}' has {digits} digits, more than the item's length {max}"));
                }
                Ok(Some(v.to_string()))
            }
            DataType::Integer => v.parse::<i64>().map(|n| Some(n.to_string())).map_err(|_| format!("'{v}' is not an integer")),
            DataType::Float | DataType::Double => match v.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Some(v.to_string())),
                _ => Err(format!("'{v}' is not a number")),
            },
            // Most dates come as YYYY-MM-DD or YYYYMMDD: checked without chrono's format parser.
            DataType::Date if canonical_date(v) => Ok(Some(v.to_string())),
            DataType::Date if let Some(d) = compact_date(v) => Ok(Some(d)),
            DataType::Date => parse_date(v)
                .map(|d| Some(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| format!("'{v}' is not a date (YYYY-MM-DD or YYYYMMDD)")),
            DataType::DateTime => parse_datetime(v)
                .map(|d| Some(d.format("%Y-%m-%d %H:%M:%S").to_string()))
                .ok_or_else(|| format!("'{v}' is not a date and time (YYYY-MM-DD HH:MM:SS)")),
            DataType::Logical => match v {
                "true" | "TRUE" | "True" | "1" | "是" | "Y" | "y" | "T" => Ok(Some("true".into())),
                "false" | "FALSE" | "False" | "0" | "否" | "N" | "n" | "F" => Ok(Some("false".into())),
                _ => Err(format!("'{v}' is not a logical value (是/否, true/false, 1/0)")),
            },
        }
    }
}

/// The number of digits of a plain decimal (`-12.50` → 4), or `None` if it is not one.
fn decimal_digits(v: &str) -> Option<usize> {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(int.len() + frac.len())
}

/// Whether the year, month and day digits of `b` at `y`, `m`, `d` make a real date.
fn real_date(b: &[u8], y: std::ops::Range<usize>, m: std::ops::Range<usize>, d: std::ops::Range<usize>) -> bool {
    let num = |r: std::ops::Range<usize>| b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')));
    match (num(y), num(m), num(d)) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

/// Whether `v` is a real date written YYYY-MM-DD, as [`parse_date`] and formatting would give it back.
fn canonical_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && real_date(b, 0..4, 5..7, 8..10)
}

/// A real date written YYYYMMDD, as YYYY-MM-DD (what [`parse_date`] and formatting give).
fn compact_date(v: &str) -> Option<String> {
    let b = v.as_bytes();
    (b.len() == 8 && real_date(b, 0..4, 4..6, 6..8)).then(|| format!("{}-{}-{}", &v[0..4], &v[4..6], &v[6..8]))
}

pub fn parse_date(v: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"].iter().find_map(|f| NaiveDate::parse_from_str(v, f).ok())
}

pub fn parse_datetime(v: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S", "%Y/%m/%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .or_else(|| parse_date(v).and_then(|d| d.and_hms_opt(0, 0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use shutong_catalog::SharingType;

    /// The quick check of YYYY-MM-DD accepts exactly the dates that parsing and formatting give back unchanged.
    #[test]
    fn canonical_dates_agree_with_chrono() {
        for v in [
            "2024-02-29",
            "2023-02-29",
            "1999-12-31",
            "0001-01-01",
            "2024-13-01",
            "2024-00-10",
            "2024-1-010",
            "２０24-01-01",
            "2024/01/01",
            "20240101",
            "2024-04-31",
            "+202-01-01",
        ] {
            let chrono = parse_date(v).map(|d| d.format("%Y-%m-%d").to_string()).filter(|f| f == v).is_some();
            assert_eq!(canonical_date(v), chrono, "{v}");
        }
    }

    /// The quick reading of YYYYMMDD gives what parsing and formatting give, for every eight-character input
    /// it accepts, and accepts every real date so written.
    #[test]
    fn compact_dates_agree_with_chrono() {
        for v in [
            "20240229",
            "20230229",
            "19991231",
            "00010101",
            "09990101",
            "20241301",
            "20240010",
            "20240431",
            "2024011",
            "202401011",
            "2024-1-1",
            "2024010a",
            "+2024011",
            "２0240101",
        ] {
            let chrono = parse_date(v).map(|d| d.format("%Y-%m-%d").to_string());
            match compact_date(v) {
                Some(quick) => assert_eq!(Some(quick), chrono, "{v}"),
                // Refused here: left to chrono, unless it is eight digits, which chrono must refuse too.
                None if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) => assert_eq!(chrono, None, "{v}"),
                None => {}
            }
        }
        let mut day = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        while day.year() < 2101 {
            let v = day.format("%Y%m%d").to_string();
            assert_eq!(compact_date(&v), Some(day.format("%Y-%m-%d").to_string()), "{v}");
            day = day.succ_opt().unwrap();
        }
    }

    fn item(name: &str, t: DataType, len: Option<u32>, required: bool) -> ItemCheck {
        ItemCheck::of(&InfoItem {
            name: name.into(),
            data_type: t,
            length: len,
            required,
            is_key: false,
            mask: None,
            sharing_type: SharingType::Unconditional,
            sharing_condition: None,
            standard: None,
            is_base_item: false,
        })
    }

    #[test]
    fn values_are_checked_and_normalised() {
        let ids = IdNumberValidator::new(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        let id = item("公民身份号码", DataType::Char, Some(18), true);
        assert_eq!(id.check(" 11010519491231002x ", &ids), Ok(Some("11010519491231002X".into())));
        assert!(id.check("110105194912310021", &ids).unwrap_err().contains("check character"));
        assert!(id.check("", &ids).unwrap_err().contains("required"));
        let name = item("姓名", DataType::Char, Some(3), false);
        assert_eq!(name.check("", &ids), Ok(None));
        assert!(name.check("欧阳娜娜", &ids).unwrap_err().contains("4 characters"));
        assert!(name.check("a\u{1}b", &ids).unwrap_err().contains("U+0001"));
        let d = item("出生日期", DataType::Date, Some(8), true);
        assert_eq!(d.check("19491231", &ids), Ok(Some("1949-12-31".into())));
        assert!(d.check("1949-13-01", &ids).is_err());
        let n = item("注册资本", DataType::Currency, Some(5), false);
        assert_eq!(n.check("123.45", &ids), Ok(Some("123.45".into())));
        assert!(n.check("1234.56", &ids).unwrap_err().contains("6 digits"));
        assert!(n.check("1e5", &ids).is_err());
        let l = item("是否", DataType::Logical, None, false);
        assert_eq!(l.check("是", &ids), Ok(Some("true".into())));
        let uscc = item("统一社会信用代码", DataType::Char, Some(18), true);
        assert_eq!(uscc.check("91350100M000100Y43", &ids), Ok(Some("91350100M000100Y43".into())));
        assert!(uscc.check("91350100M000100Y44", &ids).is_err());
    }
}
