//! 行政区划代码 (GB/T 2260): administrative division codes and the historical table of them.

use std::collections::BTreeMap;
use std::fmt;

use crate::{describe_non_ascii, full_width_hint};

/// The historical GB/T 2260 table shipped with shutong (see `data/regions-gb2260.tsv`).
pub const BUILTIN_REGIONS_TSV: &str = include_str!("../../../data/regions-gb2260.tsv");

/// 行政区划代码: a 6-digit GB/T 2260 code with a province-level prefix. Whether the code exists (or
/// existed) is the [`RegionTable`]'s business.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode([u8; 6]);

/// Why a value is not a 行政区划代码.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionCodeError {
    #[error("empty value")]
    Empty,
    #[error("character {position} '{found}' is not ASCII{hint}")]
    NonAscii { position: usize, found: char, hint: &'static str },
    #[error("length is {found}, expected 6 digits")]
    Length { found: usize },
    #[error("character {position} '{found}' must be a digit")]
    NotDigit { position: usize, found: char },
    #[error("'{prefix}' is not a province-level prefix")]
    Province { prefix: String },
    #[error("region code {code} is not in the GB/T 2260 table")]
    Unknown { code: String },
}

/// 级别: province (省级), prefecture (地级) or county (县级), read off the code's zero digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    Province,
    Prefecture,
    County,
}

impl RegionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Province => "province",
            RegionLevel::Prefecture => "prefecture",
            RegionLevel::County => "county",
        }
    }
}

impl RegionCode {
    pub fn parse(input: &str) -> Result<Self, RegionCodeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(RegionCodeError::Empty);
        }
        if !s.is_ascii() {
            let (position, found) = describe_non_ascii(s).unwrap_or((1, '?'));
            return Err(RegionCodeError::NonAscii { position, found, hint: full_width_hint(found) });
        }
        let b = s.as_bytes();
        if b.len() != 6 {
            return Err(RegionCodeError::Length { found: b.len() });
        }
        if let Some(i) = b.iter().position(|c| !c.is_ascii_digit()) {
            return Err(RegionCodeError::NotDigit { position: i + 1, found: b[i] as char });
        }
        if !crate::is_province_prefix(b[0], b[1]) {
            return Err(RegionCodeError::Province { prefix: s[..2].to_string() });
        }
        let mut out = [0u8; 6];
        out.copy_from_slice(b);
        Ok(RegionCode(out))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn level(&self) -> RegionLevel {
        if &self.0[2..] == b"0000" {
            RegionLevel::Province
        } else if &self.0[4..] == b"00" {
            RegionLevel::Prefecture
        } else {
            RegionLevel::County
        }
    }

    /// The province-level code this code belongs to (e.g. 320100 → 320000).
    pub fn province(&self) -> RegionCode {
        let mut b = self.0;
        b[2..].copy_from_slice(b"0000");
        RegionCode(b)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.as_str())
    }
}
impl std::str::FromStr for RegionCode {
    type Err = RegionCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(s)
    }
}

/// One row of the GB/T 2260 table: a code, its current (or last) name, and the years it was in force.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegionEntry {
    pub code: String,
    pub name: String,
    pub level: RegionLevel,
    pub parent: Option<String>,
    pub valid_from: Option<i32>,
    pub valid_to: Option<i32>,
    #[serde(default)]
    pub former_names: Vec<String>,
}

impl RegionEntry {
    /// In force now (no end year).
    pub fn is_current(&self) -> bool {
        self.valid_to.is_none()
    }
}

/// 行政区划代码表: the GB/T 2260 table, historical codes included, loadable and updatable at run time.
#[derive(Clone, Debug, Default)]
pub struct RegionTable {
    entries: BTreeMap<String, RegionEntry>,
}

/// A line of a region TSV that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RegionTableError {
    pub line: usize,
    pub reason: String,
}

impl RegionTable {
    /// The table shipped with shutong.
    pub fn builtin() -> Self {
        // The shipped file is tested to parse; an error here would be a packaging bug.
        Self::from_tsv(BUILTIN_REGIONS_TSV).unwrap_or_default()
    }

    /// Reads `code<TAB>name<TAB>level<TAB>parent<TAB>valid_from<TAB>valid_to[<TAB>former|names]` rows;
    /// lines starting with `#` are comments.
    pub fn from_tsv(text: &str) -> Result<Self, RegionTableError> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let entry = parse_row(line).map_err(|reason| RegionTableError { line: i + 1, reason })?;
            entries.insert(entry.code.clone(), entry);
        }
        Ok(RegionTable { entries })
    }

    pub fn get(&self, code: &RegionCode) -> Option<&RegionEntry> {
        self.entries.get(code.as_str())
    }

    /// Parses a code and requires it to be in the table (current or historical).
    pub fn lookup(&self, input: &str) -> Result<(RegionCode, &RegionEntry), RegionCodeError> {
        let code = RegionCode::parse(input)?;
        let entry = self.get(&code).ok_or_else(|| RegionCodeError::Unknown { code: code.to_string() })?;
        Ok((code, entry))
    }

    /// Inserts or replaces entries (an administrator's yearly update).
    pub fn upsert(&mut self, entry: RegionEntry) {
        self.entries.insert(entry.code.clone(), entry);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a RegionEntry> + 'a {
        self.entries.values().filter(move |e| e.parent.as_deref() == Some(parent))
    }

    pub fn iter(&self) -> impl Iterator<Item = &RegionEntry> {
        self.entries.values()
    }
}

fn parse_row(line: &str) -> Result<RegionEntry, String> {
    let cols: Vec<&str> = line.split('\t').collect();
    if cols.len() < 6 {
        return Err(format!("expected at least 6 tab-separated columns, found {}", cols.len()));
    }
    let code = RegionCode::parse(cols[0]).map_err(|e| format!("code: {e}"))?;
    let year = |s: &str, what: &str| -> Result<Option<i32>, String> {
        if s.is_empty() { Ok(None) } else { s.parse().map(Some).map_err(|_| format!("{what}: '{s}' is not a year")) }
    };
    let level = match cols[2] {
        "province" => RegionLevel::Province,
        "prefecture" => RegionLevel::Prefecture,
        "county" => RegionLevel::County,
        other => return Err(format!("level: '{other}' is not province, prefecture or county")),
    };
    if cols[1].trim().is_empty() {
        return Err("name: empty".into());
    }
    Ok(RegionEntry {
        code: code.to_string(),
        name: cols[1].to_string(),
        level,
        parent: (!cols[3].is_empty()).then(|| cols[3].to_string()),
        valid_from: year(cols[4], "valid_from")?,
        valid_to: year(cols[5], "valid_to")?,
        former_names: cols.get(6).filter(|s| !s.is_empty()).map(|s| s.split('|').map(String::from).collect()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_knows_the_seed_regions() {
        let t = RegionTable::from_tsv(BUILTIN_REGIONS_TSV).unwrap();
        assert!(t.len() > 6000);
        for (code, name) in [("320000", "江苏省"), ("220000", "吉林省"), ("520000", "贵州省"), ("610200", "铜川市")] {
            assert_eq!(t.lookup(code).unwrap().1.name, name);
        }
        let (_, chongwen) = t.lookup("110103").unwrap();
        assert_eq!(chongwen.valid_to, Some(2010));
        assert!(matches!(t.lookup("329999"), Err(RegionCodeError::Unknown { .. })));
    }

    #[test]
    fn format_errors() {
        assert_eq!(RegionCode::parse("").unwrap_err(), RegionCodeError::Empty);
        assert_eq!(RegionCode::parse("32010").unwrap_err(), RegionCodeError::Length { found: 5 });
        assert!(matches!(RegionCode::parse("32010a").unwrap_err(), RegionCodeError::NotDigit { position: 6, .. }));
        assert!(matches!(RegionCode::parse("990000").unwrap_err(), RegionCodeError::Province { .. }));
        assert_eq!(RegionCode::parse(" 320100 ").unwrap().level(), RegionLevel::Prefecture);
        assert_eq!(RegionCode::parse("320102").unwrap().province().as_str(), "320000");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,12}") {
            let _ = RegionCode::parse(&s);
            let _ = RegionTable::builtin().lookup(&s);
            let _ = RegionTable::from_tsv(&s);
        }
    }
}
