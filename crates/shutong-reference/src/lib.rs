#![doc = include_str!("../README.md")]

pub mod calendar;
pub mod check;
pub mod credit_code;
pub mod id_number;
pub mod masking;
pub mod region;

pub use calendar::{CalendarError, DayKind, DaySource, WorkCalendar, YearSchedule};
pub use check::{Checker, IdentifierKind};
pub use credit_code::{CreditCode, CreditCodeError, OrgCode, OrgCodeError};
pub use id_number::{IdNumber, IdNumberError, IdNumberValidator, Sex};
pub use masking::{MaskKind, MaskRule, MaskRules};
pub use region::{RegionCode, RegionCodeError, RegionEntry, RegionLevel, RegionTable};

/// Describes the first character of `s` that is not printable ASCII, for error messages.
pub(crate) fn describe_non_ascii(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| !c.is_ascii()).map(|(i, c)| (i + 1, c))
}

/// A hint for full-width characters (全角), the commonest non-ASCII mistake in pasted identifiers.
pub(crate) fn full_width_hint(c: char) -> &'static str {
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) || c == '\u{3000}' { " (full-width character 全角; use half-width ASCII)" } else { "" }
}

/// Province-level prefixes of GB/T 2260 (first two digits), including 71 台湾, 81 香港, 82 澳门 and
/// 83 (used by residence permits of Taiwan residents).
pub(crate) const fn is_province_prefix(d0: u8, d1: u8) -> bool {
    matches!(
        (d0, d1),
        (b'1', b'1'..=b'5')
            | (b'2', b'1'..=b'3')
            | (b'3', b'1'..=b'7')
            | (b'4', b'1'..=b'6')
            | (b'5', b'0'..=b'4')
            | (b'6', b'1'..=b'5')
            | (b'7', b'1')
            | (b'8', b'1'..=b'3')
    )
}
