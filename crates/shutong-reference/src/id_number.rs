//! 公民身份号码 (GB 11643-1999): the citizen identity number.

use chrono::{Datelike, NaiveDate};
use std::fmt;

use crate::{describe_non_ascii, full_width_hint};

/// ISO 7064 MOD 11-2 weights for positions 1–17 (GB 11643-1999 §6.2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder 0..=10.
const CHECK: [u8; 11] = *b"10X98765432";

/// 公民身份号码: an 18-character citizen identity number (GB 11643-1999), always valid once constructed:
/// province-level prefix known, birth date real and not in the future, check character right.
/// 15-digit legacy numbers are accepted and normalised to 18 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber([u8; 18]);

/// 性别: the sex encoded by the sequence code's parity (odd male, even female).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// Why a value is not a valid 公民身份号码.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("empty value")]
    Empty,
    #[error("character {position} '{found}' is not ASCII{hint}")]
    NonAscii { position: usize, found: char, hint: &'static str },
    #[error("length is {found}, expected 18 (or 15 for a legacy number)")]
    Length { found: usize },
    #[error("character {position} '{found}' must be a digit")]
    NotDigit { position: usize, found: char },
    #[error("character 18 '{found}' must be a digit or X")]
    BadCheckCharacter { found: char },
    #[error("'{prefix}' is not a province-level region code (GB/T 2260)")]
    Province { prefix: String },
    #[error("birth date '{value}' is not a real date")]
    BirthDate { value: String },
    #[error("birth date {date} is in the future")]
    FutureBirthDate { date: NaiveDate },
    #[error("check character is '{found}', expected '{expected}'")]
    CheckCharacter { found: char, expected: char },
}

/// Validates many numbers against one reference date ("today"), so that a batch does not read the clock
/// once per number.
#[derive(Clone, Copy, Debug)]
pub struct IdNumberValidator {
    /// Today's date as YYYYMMDD, the latest birth date accepted.
    today: u32,
    /// The same as eight ASCII digits read as a big-endian integer: birth dates in that form compare
    /// like the dates they spell.
    today_text: u64,
}

impl IdNumberValidator {
    pub fn new(today: NaiveDate) -> Self {
        let today = today.year() as u32 * 10_000 + today.month() * 100 + today.day();
        let mut text = [0u8; 8];
        text.copy_from_slice(format!("{today:08}").as_bytes().get(..8).unwrap_or(b"99991231"));
        IdNumberValidator { today, today_text: u64::from_be_bytes(text) }
    }

    /// A validator for today's date in China Standard Time (UTC+8).
    pub fn today() -> Self {
        Self::new(china_today())
    }

    pub fn parse(&self, input: &str) -> Result<IdNumber, IdNumberError> {
        // Most input has no surrounding whitespace: skip the (Unicode-aware) trim then.
        let b = input.as_bytes();
        let clean = matches!((b.first(), b.last()), (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric());
        let s = if clean { input } else { input.trim() };
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(IdNumberError::Empty);
        }
        if !s.is_ascii() {
            let (position, found) = describe_non_ascii(s).unwrap_or((1, '?'));
            return Err(IdNumberError::NonAscii { position, found, hint: full_width_hint(found) });
        }
        match b.len() {
            18 => self.parse18(b),
            15 => {
                for (i, &c) in b.iter().enumerate() {
                    if !c.is_ascii_digit() {
                        return Err(IdNumberError::NotDigit { position: i + 1, found: c as char });
                    }
                }
                let mut full = [0u8; 18];
                full[..6].copy_from_slice(&b[..6]);
                full[6..8].copy_from_slice(b"19");
                full[8..17].copy_from_slice(&b[6..15]);
                full[17] = CHECK[remainder(&full)];
                self.parse18(&full)
            }
            n => Err(IdNumberError::Length { found: n }),
        }
    }

    /// The batch fast path: the normalised 18 bytes if `b` is exactly a valid 18-character number, `None`
    /// otherwise (then [`Self::parse`] says why). No error value is built, so nothing is allocated or moved
    /// on the common path, and the number is checked eight characters at a time (SWAR): the digit test,
    /// and the MOD 11-2 weighted sum as four multiplications (see [`lane_weights`]), without a branch
    /// until the final verdict.
    #[inline]
    pub fn fast_normalize(&self, b: &[u8]) -> Option<[u8; 18]> {
        let b: &[u8; 18] = b.try_into().ok()?;
        if !self.fast_check(b) {
            return None;
        }
        let mut out = *b;
        if out[17] == b'x' {
            out[17] = b'X';
        }
        Some(out)
    }

    /// Whether `b` is a valid number as it stands, a lower-case `x` check character accepted (its
    /// normalised form has `X`): the test of [`Self::fast_normalize`], returning nothing to copy. The batch
    /// mode copies the input line itself into its output and only then mends an `x`, so that no value
    /// is written to memory in one width and read back in another (a stall per line otherwise).
    #[inline(always)]
    pub fn fast_check(&self, b: &[u8; 18]) -> bool {
        let (all_digits, sum) = digits_and_sum(b);
        // Province: the first two digits, through a table (both nibbles keep the index below 256).
        let province = (b[0] & 15) as usize * 10 + (b[1] & 15) as usize;
        // Birth date: its eight characters, read big-endian, compare like the dates they spell.
        let date = u64::from_be_bytes(first8(b, 6));
        let month = (b[10] & 15) as usize * 10 + (b[11] & 15) as usize;
        let day = u32::from(b[12] & 15) * 10 + u32::from(b[13] & 15);
        let last = if b[17] == b'x' { b'X' } else { b[17] };
        let ok = all_digits
            & PROVINCE_TABLE[province]
            & (date >= EARLIEST_BIRTH_DATE)
            & (date <= self.today_text)
            & (day.wrapping_sub(1) < MONTH_DAYS[month])
            & (CHECK[(sum % 11) as usize] == last);
        // 29 February only in a leap year (rare enough for a branch).
        ok && (month != 2 || day != 29 || {
            let year = u32::from(b[6] & 15) * 1000 + u32::from(b[7] & 15) * 100 + u32::from(b[8] & 15) * 10 + u32::from(b[9] & 15);
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
        })
    }

    /// Parses raw bytes (a line of a batch file). The common case, exactly 18 characters starting with a
    /// digit, goes straight to the check; anything else, or any error, takes the path of [`Self::parse`]
    /// so that the reasons are the same. `None` means the bytes are not UTF-8.
    pub fn parse_bytes(&self, input: &[u8]) -> Option<Result<IdNumber, IdNumberError>> {
        if input.len() == 18
            && input[0].is_ascii_digit()
            && let Ok(v) = self.parse18(input)
        {
            return Some(Ok(v));
        }
        std::str::from_utf8(input).ok().map(|s| self.parse(s))
    }

    fn parse18(&self, b: &[u8]) -> Result<IdNumber, IdNumberError> {
        let Ok(b) = <&[u8; 18]>::try_from(b) else {
            return Err(IdNumberError::Length { found: b.len() });
        };
        // A valid number passes the fast test; only an invalid one is gone through step by step, for its reason.
        match self.fast_normalize(b) {
            Some(out) => Ok(IdNumber(out)),
            None => self.check18(b),
        }
    }

    /// The check step by step, naming the first thing wrong: the reference [`Self::fast_check`] is tested
    /// against.
    fn check18(&self, b: &[u8; 18]) -> Result<IdNumber, IdNumberError> {
        // One branch-free pass over the 17 digits: their values, whether any is not a digit, and the
        // MOD 11-2 weighted sum. Errors are worked out afterwards, off the hot path.
        let mut d = [0u32; 17];
        let mut bad = false;
        let mut sum = 0u32;
        for i in 0..17 {
            let v = b[i].wrapping_sub(b'0');
            bad |= v > 9;
            d[i] = v as u32;
            sum += v as u32 * WEIGHTS[i];
        }
        if bad {
            let i = b[..17].iter().position(|c| !c.is_ascii_digit()).unwrap_or(0);
            return Err(IdNumberError::NotDigit { position: i + 1, found: b[i] as char });
        }
        let last = if b[17] == b'x' { b'X' } else { b[17] };
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::BadCheckCharacter { found: last as char });
        }
        if PROVINCES & (1u128 << (d[0] * 10 + d[1])) == 0 {
            return Err(IdNumberError::Province { prefix: String::from_utf8_lossy(&b[..2]).into() });
        }
        let year = d[6] * 1000 + d[7] * 100 + d[8] * 10 + d[9];
        let month = d[10] * 10 + d[11];
        let day = d[12] * 10 + d[13];
        if year < 1800 || month == 0 || month > 12 || day == 0 || day > days_in_month(year, month) {
            return Err(IdNumberError::BirthDate { value: String::from_utf8_lossy(&b[6..14]).into() });
        }
        if year * 10_000 + month * 100 + day > self.today {
            let date = NaiveDate::from_ymd_opt(year as i32, month, day).unwrap_or_default();
            return Err(IdNumberError::FutureBirthDate { date });
        }
        let expected = CHECK[(sum % 11) as usize];
        if expected != last {
            return Err(IdNumberError::CheckCharacter { found: last as char, expected: expected as char });
        }
        let mut out = *b;
        out[17] = last;
        Ok(IdNumber(out))
    }
}

/// Bit `10·d0 + d1` is set for each province-level prefix (see [`crate::is_province_prefix`]).
const PROVINCES: u128 = {
    let mut mask = 0u128;
    let mut i = 0;
    while i < 100 {
        if crate::is_province_prefix(b'0' + (i / 10) as u8, b'0' + (i % 10) as u8) {
            mask |= 1 << i;
        }
        i += 1;
    }
    mask
};

fn remainder(b: &[u8; 18]) -> usize {
    let mut sum = 0u32;
    for i in 0..17 {
        sum += (b[i] - b'0') as u32 * WEIGHTS[i];
    }
    (sum % 11) as usize
}

/// Whether the first 17 characters are digits, and their MOD 11-2 weighted sum (meaningful only if they are):
/// eight characters at a time in a 64-bit word (SWAR), the weighted sum as four multiplications (see
/// [`lane_weights`]).
///
/// (The same as plain loops over the characters, which the compiler turns into SSE2 instructions, was
/// slower: 14.5 against 9-12 ns a number.)
#[inline(always)]
fn digits_and_sum(b: &[u8; 18]) -> (bool, u32) {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const SIX: u64 = 0x0606_0606_0606_0606;
    const EVEN: u64 = 0x00FF_00FF_00FF_00FF;
    let (w0, w1) = (u64::from_le_bytes(first8(b, 0)), u64::from_le_bytes(first8(b, 8)));
    // Every byte in 0x30..=0x39: high nibble 3, and still 3 after adding 6 (0x3A..0x3F carry into 4).
    let digits = |w: u64| (w & HIGH) == ZEROS && (w.wrapping_add(SIX) & HIGH) == ZEROS;
    let d16 = b[16].wrapping_sub(b'0');
    let all_digits = digits(w0) & digits(w1) & (d16 <= 9);
    // Digit values, one per byte (no byte borrows: each is at least 0x30 once all_digits holds).
    let (v0, v1) = (w0.wrapping_sub(ZEROS), w1.wrapping_sub(ZEROS));
    let dot = |lanes: u64, weights: u64| (lanes.wrapping_mul(weights) >> 48) as u32;
    let sum = dot(v0 & EVEN, lane_weights(0))
        + dot((v0 >> 8) & EVEN, lane_weights(1))
        + dot(v1 & EVEN, lane_weights(8))
        + dot((v1 >> 8) & EVEN, lane_weights(9))
        + u32::from(d16) * WEIGHTS[16];
    (all_digits, sum)
}

/// The earliest birth date accepted, 1800-01-01, as [`IdNumberValidator::today_text`] holds dates.
const EARLIEST_BIRTH_DATE: u64 = u64::from_be_bytes(*b"18000101");

/// Most days a month can have (29 for February), indexed by the month's two digits; 0 for every index that
/// is not a month (the index may be up to 165 when a character is not a digit).
const MONTH_DAYS: [u32; 256] = {
    let mut t = [0u32; 256];
    let days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut m = 0;
    while m < 12 {
        t[m + 1] = days[m];
        m += 1;
    }
    t
};

/// Whether the index (a number's first two digits) is a province-level code, for indices below 256.
const PROVINCE_TABLE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = PROVINCES & (1u128 << i) != 0;
        i += 1;
    }
    t
};

/// Eight bytes of `b` from `at` (which the caller keeps within bounds).
#[inline]
fn first8(b: &[u8; 18], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    w
}

/// The multiplier that turns four 16-bit lanes holding the digits at positions `first`, `first + 2`,
/// `first + 4`, `first + 6` into their MOD 11-2 weighted sum in the top lane: in the product, lane 3
/// collects `lane_k × weight_(3-k)` for k = 0..=3 (each partial sum is at most 4 × 9 × 10 = 360, so no lane
/// carries into the next).
const fn lane_weights(first: usize) -> u64 {
    let mut c = 0u64;
    let mut j = 0;
    while j < 4 {
        c |= (WEIGHTS[first + 2 * (3 - j)] as u64) << (16 * j);
        j += 1;
    }
    c
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// Today's date in China Standard Time (UTC+8), the time zone of every deadline in the regulations.
pub fn china_today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

impl IdNumber {
    /// Parses and validates against today's date (UTC+8).
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        IdNumberValidator::today().parse(input)
    }

    /// Computes the check character for the first 17 characters, which must be digits.
    pub fn check_character(first17: &[u8; 17]) -> Option<char> {
        if !first17.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut full = [b'0'; 18];
        full[..17].copy_from_slice(first17);
        Some(CHECK[remainder(&full)] as char)
    }

    /// The 18 ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; 18] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Constructed from ASCII digits and 'X' only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn birth_date(&self) -> NaiveDate {
        let d = |i: usize| (self.0[i] - b'0') as u32;
        let year = (d(6) * 1000 + d(7) * 100 + d(8) * 10 + d(9)) as i32;
        NaiveDate::from_ymd_opt(year, d(10) * 10 + d(11), d(12) * 10 + d(13)).unwrap_or_default()
    }

    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// The 6-digit address code (行政区划代码 of the place of registration at issue).
    pub fn region_code(&self) -> &str {
        &self.as_str()[..6]
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IdNumber {
    /// Debug output is masked: identity numbers must not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({}********{})", &self.as_str()[..6], &self.as_str()[14..])
    }
}

impl std::str::FromStr for IdNumber {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdNumber::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v() -> IdNumberValidator {
        IdNumberValidator::new(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap())
    }

    /// The example of GB 11643-1999 Appendix A and other published numbers.
    #[test]
    fn standard_vectors() {
        let n = v().parse("11010519491231002X").unwrap();
        assert_eq!(n.sex(), Sex::Female);
        assert_eq!(n.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(n.region_code(), "110105");
        assert!(v().parse("440524188001010014").is_ok());
        assert_eq!(v().parse("440524188001010014").unwrap().sex(), Sex::Male);
    }

    #[test]
    fn lower_case_x_and_whitespace() {
        assert_eq!(v().parse("  11010519491231002x\n").unwrap().as_str(), "11010519491231002X");
    }

    #[test]
    fn legacy_fifteen_digits() {
        // 110105491231002 -> 11010519491231002X
        assert_eq!(v().parse("110105491231002").unwrap().as_str(), "11010519491231002X");
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(v().parse("").unwrap_err(), IdNumberError::Empty);
        assert_eq!(v().parse("1101051949123100").unwrap_err(), IdNumberError::Length { found: 16 });
        assert_eq!(v().parse("11010519491231002XX").unwrap_err(), IdNumberError::Length { found: 19 });
        assert!(matches!(v().parse("１1010519491231002X").unwrap_err(), IdNumberError::NonAscii { position: 1, .. }));
        assert!(matches!(v().parse("110105194912310021").unwrap_err(), IdNumberError::CheckCharacter { expected: 'X', .. }));
        assert!(matches!(v().parse("99010519491231002X").unwrap_err(), IdNumberError::Province { .. }));
        assert!(matches!(v().parse("110105194902300020").unwrap_err(), IdNumberError::BirthDate { .. }));
        assert!(matches!(v().parse("11010520301231002X").unwrap_err(), IdNumberError::FutureBirthDate { .. }));
        assert!(matches!(v().parse("1101051949123100AX").unwrap_err(), IdNumberError::NotDigit { position: 17, .. }));
    }

    /// The fast path's date and province edges, each against `parse`: leap days, the earliest date, today
    /// and tomorrow, month and day limits, unknown provinces.
    #[test]
    fn fast_path_edges() {
        let cases = [
            ("110105", "20000229", true),
            ("110105", "19960229", true),
            ("110105", "19000229", false),
            ("110105", "21000229", false),
            ("110105", "20230229", false),
            ("110105", "20240229", true),
            ("110105", "18000101", true),
            ("110105", "17991231", false),
            ("110105", "20261122", true),
            ("110105", "20261123", false),
            ("110105", "19990431", false),
            ("110105", "19990430", true),
            ("110105", "19991231", true),
            ("110105", "19991232", false),
            ("110105", "19991300", false),
            ("110105", "19990001", false),
            ("110105", "19990100", false),
            ("100105", "19990101", false),
            ("990105", "19990101", false),
            ("820105", "19990101", true),
        ];
        for (region, date, valid) in cases {
            let first17 = format!("{region}{date}123");
            let arr: [u8; 17] = first17.as_bytes().try_into().unwrap();
            let n = format!("{first17}{}", IdNumber::check_character(&arr).unwrap());
            let slow = v().check18(n.as_bytes().try_into().unwrap()).ok().map(|n| *n.as_bytes());
            assert_eq!(slow.is_some(), valid, "{n}");
            assert_eq!(v().parse(&n).ok().map(|n| *n.as_bytes()), slow, "{n}");
            assert_eq!(v().fast_normalize(n.as_bytes()), slow, "{n}");
        }
    }

    fn valid_number() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["110105", "320102", "520102", "220102", "610202", "440524"]),
            1900i32..2025,
            1u32..13,
            1u32..29,
            0u32..1000,
        )
            .prop_map(|(region, y, m, d, seq)| {
                let first17 = format!("{region}{y:04}{m:02}{d:02}{seq:03}");
                let arr: [u8; 17] = first17.as_bytes().try_into().unwrap();
                format!("{first17}{}", IdNumber::check_character(&arr).unwrap())
            })
    }

    proptest! {
        #[test]
        fn generated_numbers_are_valid(s in valid_number()) {
            prop_assert_eq!(v().parse(&s).unwrap().to_string(), s);
        }

        /// MOD 11-2 detects every single-character substitution.
        #[test]
        fn single_substitution_is_caught(s in valid_number(), pos in 0usize..18, c in prop::sample::select(b"0123456789X".to_vec())) {
            let mut b = s.clone().into_bytes();
            prop_assume!(b[pos] != c);
            b[pos] = c;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(v().parse(&changed).is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,25}") {
            let _ = v().parse(&s);
            let _ = v().fast_normalize(s.as_bytes());
        }

        /// The fast test accepts exactly what the step-by-step check accepts, and `parse` agrees with both.
        #[test]
        fn fast_path_agrees(s in valid_number(), pos in 0usize..18, c in prop::sample::select(b"0123456789Xx".to_vec()), mutate: bool) {
            let mut b = s.into_bytes();
            if mutate {
                b[pos] = c;
            }
            let slow = v().check18(b.as_slice().try_into().unwrap()).ok().map(|n| *n.as_bytes());
            prop_assert_eq!(v().fast_normalize(&b), slow);
            prop_assert_eq!(v().parse(std::str::from_utf8(&b).unwrap()).ok().map(|n| *n.as_bytes()), slow);
        }

        /// The same for arbitrary bytes (the SWAR digit test must refuse every byte that is not a digit).
        #[test]
        fn fast_path_agrees_on_any_bytes(s in valid_number(), pos in 0usize..18, c: u8, soup in prop::collection::vec(any::<u8>(), 18)) {
            // A valid number with one byte replaced by any byte, and 18 arbitrary bytes.
            let mut b = s.into_bytes();
            b[pos] = c;
            for b in [b, soup] {
                let slow = v().check18(b.as_slice().try_into().unwrap()).ok().map(|n| *n.as_bytes());
                prop_assert_eq!(v().fast_normalize(&b), slow);
            }
        }

        #[test]
        fn never_panics_on_digit_soup(s in "[0-9xX ]{0,20}") {
            let _ = v().parse(&s);
        }
    }
}
