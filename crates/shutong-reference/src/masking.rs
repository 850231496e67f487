//! 脱敏规则: masking of sensitive items (SPEC §5, R-EX-3).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 脱敏类型: the kind of a sensitive item, which selects its default masking rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// 身份证号: keep the first 6 and last 4.
    IdNumber,
    /// 手机号: keep the first 3 and last 4.
    Mobile,
    /// 固定电话: keep the area code and the last 2.
    Landline,
    /// 姓名: keep the surname (first character).
    Name,
    /// 地址: keep the first 6 characters (province and city).
    Address,
    /// 统一社会信用代码: keep the first 8 (authority, type, region) and the last 2.
    CreditCode,
    /// 银行卡号: keep the first 6 and last 4.
    BankCard,
    /// 电子邮箱: keep the first character of the local part and the domain.
    Email,
}

impl MaskKind {
    pub const ALL: [MaskKind; 8] = [
        MaskKind::IdNumber,
        MaskKind::Mobile,
        MaskKind::Landline,
        MaskKind::Name,
        MaskKind::Address,
        MaskKind::CreditCode,
        MaskKind::BankCard,
        MaskKind::Email,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MaskKind::IdNumber => "id_number",
            MaskKind::Mobile => "mobile",
            MaskKind::Landline => "landline",
            MaskKind::Name => "name",
            MaskKind::Address => "address",
            MaskKind::CreditCode => "credit_code",
            MaskKind::BankCard => "bank_card",
            MaskKind::Email => "email",
        }
    }

    pub fn default_rule(self) -> MaskRule {
        let r = |keep_head, keep_tail| MaskRule { keep_head, keep_tail, mask_char: '*' };
        match self {
            MaskKind::IdNumber => r(6, 4),
            MaskKind::Mobile => r(3, 4),
            MaskKind::Landline => r(0, 2),
            MaskKind::Name => r(1, 0),
            MaskKind::Address => r(6, 0),
            MaskKind::CreditCode => r(8, 2),
            MaskKind::BankCard => r(6, 4),
            MaskKind::Email => r(1, 0),
        }
    }
}

/// 脱敏规则: how many characters to keep at the head and the tail; the rest become `mask_char`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    pub keep_head: usize,
    pub keep_tail: usize,
    #[serde(default = "default_mask_char")]
    pub mask_char: char,
}

fn default_mask_char() -> char {
    '*'
}

/// The masking rules in force: the defaults, overridden per kind by configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MaskRules {
    #[serde(default)]
    pub overrides: BTreeMap<MaskKind, MaskRule>,
}

impl MaskRules {
    pub fn rule(&self, kind: MaskKind) -> MaskRule {
        self.overrides.get(&kind).copied().unwrap_or_else(|| kind.default_rule())
    }

    pub fn mask(&self, kind: MaskKind, value: &str) -> String {
        let rule = self.rule(kind);
        match kind {
            MaskKind::Email => match value.split_once('@') {
                Some((local, domain)) => format!("{}@{domain}", rule.apply(local)),
                None => rule.apply(value),
            },
            // The area code (before the hyphen) stays readable.
            MaskKind::Landline => match value.split_once('-') {
                Some((area, number)) => format!("{area}-{}", rule.apply(number)),
                None => rule.apply(value),
            },
            _ => rule.apply(value),
        }
    }
}

impl MaskRule {
    /// Masks by characters (not bytes), so Chinese names and addresses mask correctly. A value too
    /// short to keep head and tail is masked except for its head, and never shown whole.
    pub fn apply(&self, value: &str) -> String {
        let n = value.chars().count();
        if n == 0 {
            return String::new();
        }
        let (head, tail) = if self.keep_head + self.keep_tail < n {
            (self.keep_head, self.keep_tail)
        } else {
            (self.keep_head.min(n.saturating_sub(1)), 0)
        };
        // Byte offsets of the head's end and the tail's start (one pass, no per-character buffer: exports
        // mask millions of values).
        let offset = |chars: usize| value.char_indices().nth(chars).map_or(value.len(), |(i, _)| i);
        let head_end = offset(head);
        let tail_start = if tail == 0 { value.len() } else { offset(n - tail) };
        let mut out = String::with_capacity(value.len());
        out.push_str(&value[..head_end]);
        out.extend(std::iter::repeat_n(self.mask_char, n - head - tail));
        out.push_str(&value[tail_start..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_characters_at_both_ends() {
        let r = MaskRule { keep_head: 1, keep_tail: 1, mask_char: '*' };
        assert_eq!(r.apply("欧阳娜娜"), "欧**娜");
        assert_eq!(r.apply("a张b"), "a*b");
        assert_eq!(r.apply("张b"), "张*", "too short for head and tail: the head shows, never the whole");
        let r = MaskRule { keep_head: 0, keep_tail: 2, mask_char: '#' };
        assert_eq!(r.apply("玄武区12号"), "####2号");
        assert_eq!(r.apply(""), "");
    }

    #[test]
    fn defaults() {
        let m = MaskRules::default();
        assert_eq!(m.mask(MaskKind::IdNumber, "11010519491231002X"), "110105********002X");
        assert_eq!(m.mask(MaskKind::Mobile, "13812345678"), "138****5678");
        assert_eq!(m.mask(MaskKind::Name, "张三丰"), "张**");
        assert_eq!(m.mask(MaskKind::Name, "李"), "*");
        assert_eq!(m.mask(MaskKind::Landline, "025-83331234"), "025-******34");
        assert_eq!(m.mask(MaskKind::Email, "zhangsan@example.cn"), "z*******@example.cn");
        assert_eq!(m.mask(MaskKind::Address, "江苏省南京市玄武区北京东路41号"), "江苏省南京市**********");
        assert_eq!(m.mask(MaskKind::BankCard, "6222021234567890123"), "622202*********0123");
        assert_eq!(m.mask(MaskKind::CreditCode, "91110000600037341L"), "91110000********1L");
    }

    #[test]
    fn configurable() {
        let mut m = MaskRules::default();
        m.overrides.insert(MaskKind::Mobile, MaskRule { keep_head: 0, keep_tail: 4, mask_char: '#' });
        assert_eq!(m.mask(MaskKind::Mobile, "13812345678"), "#######5678");
    }
}
