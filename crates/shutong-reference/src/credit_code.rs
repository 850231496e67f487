//! 统一社会信用代码 (GB 32100-2015) and 组织机构代码 (GB 11714-1997).

use std::fmt;

use crate::{describe_non_ascii, full_width_hint};

/// The 31 characters of GB 32100 (digits and capitals without I, O, Z, S, V), in value order.
const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights 3^(i-1) mod 31 for positions 1–17.
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// GB 11714 weights for the 8 body characters.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARSET.iter().position(|&x| x == c).map(|p| p as u32)
}

/// 统一社会信用代码: the 18-character unified social credit code (GB 32100-2015), always valid once
/// constructed: charset, registration authority and entity type, region code, the embedded
/// 组织机构代码 (GB 11714) where the standard requires it, and the check character.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode([u8; 18]);

/// Why a value is not a valid 统一社会信用代码.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("empty value")]
    Empty,
    #[error("character {position} '{found}' is not ASCII{hint}")]
    NonAscii { position: usize, found: char, hint: &'static str },
    #[error("length is {found}, expected 18")]
    Length { found: usize },
    #[error("character {position} '{found}' is not allowed (GB 32100 uses 0-9 and A-Z without I, O, Z, S, V)")]
    Charset { position: usize, found: char },
    #[error("registration authority '{found}' (character 1) is not one of GB 32100's")]
    Authority { found: char },
    #[error("entity type '{found}' (character 2) is not defined for registration authority '{authority}'")]
    EntityType { authority: char, found: char },
    #[error("region code '{found}' (characters 3-8) must be 6 digits with a province-level prefix")]
    Region { found: String },
    #[error("embedded organisation code (characters 9-17) is invalid: {0}")]
    OrgCode(OrgCodeError),
    #[error("check character is '{found}', expected '{expected}'")]
    CheckCharacter { found: char, expected: char },
}

/// The registration authorities of GB 32100-2015 Table 1 with their entity types (Table 2), in Chinese.
pub fn registration_authority(c: u8) -> Option<(&'static str, &'static [(u8, &'static str)])> {
    Some(match c {
        b'1' => ("机构编制", &[(b'1', "机关"), (b'2', "事业单位"), (b'3', "中央编办直接管理机构编制的群众团体"), (b'9', "其他")]),
        b'2' => ("外交", &[(b'1', "外国常驻新闻机构"), (b'9', "其他")]),
        b'3' => (
            "司法行政",
            &[
                (b'1', "律师执业机构"),
                (b'2', "公证处"),
                (b'3', "基层法律服务所"),
                (b'4', "司法鉴定机构"),
                (b'5', "仲裁委员会"),
                (b'9', "其他"),
            ],
        ),
        b'4' => ("文化", &[(b'1', "外国在华文化中心"), (b'9', "其他")]),
        b'5' => ("民政", &[(b'1', "社会团体"), (b'2', "民办非企业单位"), (b'3', "基金会"), (b'9', "其他")]),
        b'6' => ("旅游", &[(b'1', "外国旅游部门常驻代表机构"), (b'2', "港澳台地区旅游部门常驻内地（大陆）代表机构"), (b'9', "其他")]),
        b'7' => ("宗教", &[(b'1', "宗教活动场所"), (b'2', "宗教院校"), (b'9', "其他")]),
        b'8' => ("工会", &[(b'1', "基层工会"), (b'9', "其他")]),
        b'9' => ("工商", &[(b'1', "企业"), (b'2', "个体工商户"), (b'3', "农民专业合作社")]),
        b'A' => ("中央军委改革和编制办公室", &[(b'1', "军队事业单位"), (b'9', "其他")]),
        b'N' => ("农业", &[(b'1', "组级集体经济组织"), (b'2', "村级集体经济组织"), (b'3', "乡镇级集体经济组织"), (b'9', "其他")]),
        b'Y' => ("其他", &[(b'1', "其他")]),
        _ => return None,
    })
}

impl CreditCode {
    pub fn parse(input: &str) -> Result<Self, CreditCodeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(CreditCodeError::Empty);
        }
        if !s.is_ascii() {
            let (position, found) = describe_non_ascii(s).unwrap_or((1, '?'));
            return Err(CreditCodeError::NonAscii { position, found, hint: full_width_hint(found) });
        }
        if s.len() != 18 {
            return Err(CreditCodeError::Length { found: s.len() });
        }
        let mut b = [0u8; 18];
        b.copy_from_slice(s.as_bytes());
        b.make_ascii_uppercase();
        let mut sum = 0;
        for (i, &c) in b.iter().enumerate() {
            let v = uscc_value(c).ok_or(CreditCodeError::Charset { position: i + 1, found: c as char })?;
            if i < 17 {
                sum += v * USCC_WEIGHTS[i];
            }
        }
        let (_, types) = registration_authority(b[0]).ok_or(CreditCodeError::Authority { found: b[0] as char })?;
        if !types.iter().any(|(t, _)| *t == b[1]) {
            return Err(CreditCodeError::EntityType { authority: b[0] as char, found: b[1] as char });
        }
        let region = &b[2..8];
        // Central bodies register under 100000 (national level); everything else under a province prefix.
        if !region.iter().all(u8::is_ascii_digit) || !(crate::is_province_prefix(region[0], region[1]) || region == b"100000") {
            return Err(CreditCodeError::Region { found: String::from_utf8_lossy(region).into() });
        }
        // GB 32100 §4.4: characters 9–17 are the 主体标识码 (组织机构代码) per GB 11714. 个体工商户 (92)
        // were given identifiers outside GB 11714 during the transition, so their body is not checked.
        if !(b[0] == b'9' && b[1] == b'2') {
            OrgCode::from_bytes(&b[8..17]).map_err(CreditCodeError::OrgCode)?;
        }
        let check = (31 - sum % 31) % 31;
        let expected = USCC_CHARSET[check as usize];
        if expected != b[17] {
            return Err(CreditCodeError::CheckCharacter { found: b[17] as char, expected: expected as char });
        }
        Ok(CreditCode(b))
    }

    /// Computes the check character of 17 GB 32100 characters.
    pub fn check_character(first17: &[u8]) -> Option<char> {
        let mut sum = 0;
        for (i, &c) in first17.iter().take(17).enumerate() {
            sum += uscc_value(c)? * USCC_WEIGHTS[i];
        }
        Some(USCC_CHARSET[((31 - sum % 31) % 31) as usize] as char)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// 登记管理部门 (character 1), e.g. "机构编制".
    pub fn registration_authority(&self) -> &'static str {
        registration_authority(self.0[0]).map(|(a, _)| a).unwrap_or("")
    }

    /// 机构类别 (character 2) as named by the registration authority, e.g. "机关".
    pub fn entity_type(&self) -> &'static str {
        registration_authority(self.0[0]).and_then(|(_, types)| types.iter().find(|(t, _)| *t == self.0[1]).map(|(_, n)| *n)).unwrap_or("")
    }

    /// 登记管理机关行政区划码 (characters 3–8).
    pub fn region_code(&self) -> &str {
        &self.as_str()[2..8]
    }

    /// 主体标识码 (组织机构代码, characters 9–17).
    pub fn org_code(&self) -> &str {
        &self.as_str()[8..17]
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditCode({})", self.as_str())
    }
}
impl std::str::FromStr for CreditCode {
    type Err = CreditCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreditCode::parse(s)
    }
}

/// 组织机构代码: the 9-character organisation code of GB 11714-1997 (8 body characters and a check
/// character); accepted with or without the hyphen before the check character.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgCode([u8; 9]);

/// Why a value is not a valid 组织机构代码.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgCodeError {
    #[error("empty value")]
    Empty,
    #[error("character {position} '{found}' is not ASCII{hint}")]
    NonAscii { position: usize, found: char, hint: &'static str },
    #[error("length is {found}, expected 9 (or 10 with the hyphen)")]
    Length { found: usize },
    #[error("character {position} '{found}' must be a digit or a capital letter")]
    Charset { position: usize, found: char },
    #[error("check character is '{found}', expected '{expected}'")]
    CheckCharacter { found: char, expected: char },
}

impl OrgCode {
    pub fn parse(input: &str) -> Result<Self, OrgCodeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(OrgCodeError::Empty);
        }
        if !s.is_ascii() {
            let (position, found) = describe_non_ascii(s).unwrap_or((1, '?'));
            return Err(OrgCodeError::NonAscii { position, found, hint: full_width_hint(found) });
        }
        let b = s.as_bytes();
        let compact: Vec<u8> = if b.len() == 10 && b[8] == b'-' {
            b[..8].iter().chain(&b[9..]).map(u8::to_ascii_uppercase).collect()
        } else {
            b.iter().map(u8::to_ascii_uppercase).collect()
        };
        Self::from_bytes(&compact)
    }

    /// Computes the check character of 8 body characters (digits and capital letters).
    pub fn check_character(body: &[u8]) -> Option<char> {
        if body.len() != 8 {
            return None;
        }
        let mut sum = 0;
        for (i, &c) in body.iter().enumerate() {
            let v = match c {
                b'0'..=b'9' => (c - b'0') as u32,
                b'A'..=b'Z' => (c - b'A') as u32 + 10,
                _ => return None,
            };
            sum += v * ORG_WEIGHTS[i];
        }
        Some(match 11 - sum % 11 {
            10 => 'X',
            11 => '0',
            n => (b'0' + n as u8) as char,
        })
    }

    fn from_bytes(b: &[u8]) -> Result<Self, OrgCodeError> {
        if b.len() != 9 {
            return Err(OrgCodeError::Length { found: b.len() });
        }
        let mut sum = 0;
        for (i, &c) in b[..8].iter().enumerate() {
            let v = match c {
                b'0'..=b'9' => (c - b'0') as u32,
                b'A'..=b'Z' => (c - b'A') as u32 + 10,
                _ => return Err(OrgCodeError::Charset { position: i + 1, found: c as char }),
            };
            sum += v * ORG_WEIGHTS[i];
        }
        let expected = match 11 - sum % 11 {
            10 => b'X',
            11 => b'0',
            n => b'0' + n as u8,
        };
        if b[8] != expected {
            return Err(OrgCodeError::CheckCharacter { found: b[8] as char, expected: expected as char });
        }
        let mut out = [0u8; 9];
        out.copy_from_slice(b);
        Ok(OrgCode(out))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgCode({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_codes() {
        // 国家发展和改革委员会 (机关) and a company code, both published.
        let c = CreditCode::parse("11100000000013127D").unwrap();
        assert_eq!(c.registration_authority(), "机构编制");
        assert_eq!(c.entity_type(), "机关");
        assert_eq!(c.region_code(), "100000");
        assert_eq!(c.org_code(), "000013127");
        // python-stdnum's examples.
        assert!(CreditCode::parse("91110000600037341L").is_ok());
        assert!(CreditCode::parse("91110000600037341l").is_ok());
    }

    #[test]
    fn org_code_vectors() {
        assert_eq!(OrgCode::parse("D2143569-X").unwrap().as_str(), "D2143569X");
        assert_eq!(OrgCode::parse("000013127").unwrap().as_str(), "000013127");
        assert!(matches!(OrgCode::parse("D21435691").unwrap_err(), OrgCodeError::CheckCharacter { expected: 'X', .. }));
    }

    #[test]
    fn errors() {
        assert_eq!(CreditCode::parse("").unwrap_err(), CreditCodeError::Empty);
        assert!(matches!(CreditCode::parse("91110000600037341").unwrap_err(), CreditCodeError::Length { found: 17 }));
        assert!(matches!(CreditCode::parse("91110000600037341M").unwrap_err(), CreditCodeError::CheckCharacter { expected: 'L', .. }));
        assert!(matches!(CreditCode::parse("9111000060003734IL").unwrap_err(), CreditCodeError::Charset { position: 17, .. }));
        assert!(matches!(CreditCode::parse("B1110000600037341L").unwrap_err(), CreditCodeError::Authority { .. }));
        assert!(matches!(CreditCode::parse("97110000600037341L").unwrap_err(), CreditCodeError::EntityType { .. }));
    }

    fn valid_code() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["11", "12", "51", "52", "91", "93", "N2", "Y1"]),
            prop::sample::select(vec!["320000", "320100", "610200", "520100", "100000"]),
            prop::collection::vec(prop::sample::select(b"0123456789ABCDEFGHJKLMNPQRTUWXY".to_vec()), 8),
        )
            .prop_map(|(head, region, body)| {
                let mut sum = 0;
                for (i, &c) in body.iter().enumerate() {
                    let v = if c.is_ascii_digit() { (c - b'0') as u32 } else { (c - b'A') as u32 + 10 };
                    sum += v * ORG_WEIGHTS[i];
                }
                let oc = match 11 - sum % 11 {
                    10 => 'X',
                    11 => '0',
                    n => (b'0' + n as u8) as char,
                };
                let first17 = format!("{head}{region}{}{oc}", String::from_utf8(body).unwrap());
                format!("{first17}{}", CreditCode::check_character(first17.as_bytes()).unwrap())
            })
    }

    proptest! {
        #[test]
        fn generated_codes_are_valid(s in valid_code()) {
            prop_assert_eq!(CreditCode::parse(&s).unwrap().to_string(), s);
        }

        /// The MOD 31 check detects every single-character substitution within the charset.
        #[test]
        fn single_substitution_is_caught(s in valid_code(), pos in 0usize..18, c in prop::sample::select(USCC_CHARSET.to_vec())) {
            let mut b = s.clone().into_bytes();
            prop_assume!(b[pos] != c);
            b[pos] = c;
            prop_assert!(CreditCode::parse(&String::from_utf8(b).unwrap()).is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,25}") {
            let _ = CreditCode::parse(&s);
            let _ = OrgCode::parse(&s);
        }
    }
}
