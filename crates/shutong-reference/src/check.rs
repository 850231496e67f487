//! One entry point for checking any identifier kind, shared by the CLI and the API.

use serde_json::json;

use crate::{CreditCode, IdNumberValidator, OrgCode, RegionTable};

/// Which identifier to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifierKind {
    /// 公民身份号码 (GB 11643).
    IdNumber,
    /// 统一社会信用代码 (GB 32100).
    CreditCode,
    /// 组织机构代码 (GB 11714).
    OrgCode,
    /// 行政区划代码 (GB/T 2260), which must be in the region table.
    Region,
}

impl IdentifierKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "id" | "id_number" => IdentifierKind::IdNumber,
            "uscc" | "credit_code" => IdentifierKind::CreditCode,
            "org" | "org_code" => IdentifierKind::OrgCode,
            "region" | "region_code" => IdentifierKind::Region,
            _ => return None,
        })
    }
}

/// A valid identifier: its normalised form and what can be read from it.
#[derive(Clone, Debug)]
pub struct Checked {
    pub normalized: String,
    pub details: serde_json::Value,
}

/// A checker holding what a batch shares: today's date and the region table.
pub struct Checker<'a> {
    pub id_validator: IdNumberValidator,
    pub regions: &'a RegionTable,
}

impl<'a> Checker<'a> {
    pub fn new(regions: &'a RegionTable) -> Self {
        Checker { id_validator: IdNumberValidator::today(), regions }
    }

    /// Appends the normalised value to `out`: the hot path of batch validation.
    pub fn normalize(&self, kind: IdentifierKind, value: &str, out: &mut Vec<u8>) -> Result<(), String> {
        match kind {
            IdentifierKind::IdNumber => {
                self.id_validator.parse(value).map(|v| out.extend_from_slice(v.as_bytes())).map_err(|e| e.to_string())
            }
            IdentifierKind::CreditCode => {
                CreditCode::parse(value).map(|v| out.extend_from_slice(v.as_str().as_bytes())).map_err(|e| e.to_string())
            }
            IdentifierKind::OrgCode => {
                OrgCode::parse(value).map(|v| out.extend_from_slice(v.as_str().as_bytes())).map_err(|e| e.to_string())
            }
            IdentifierKind::Region => {
                self.regions.lookup(value).map(|(c, _)| out.extend_from_slice(c.as_str().as_bytes())).map_err(|e| e.to_string())
            }
        }
    }

    /// Like [`Self::normalize`] on raw bytes; the error for bytes that are not UTF-8 names the first bad byte.
    pub fn normalize_bytes(&self, kind: IdentifierKind, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let not_utf8 = |value: &[u8]| {
            let at = std::str::from_utf8(value).err().map(|e| e.valid_up_to() + 1).unwrap_or(1);
            format!("not UTF-8 text (byte {at})")
        };
        match kind {
            // `parse_bytes` takes the fast test first.
            IdentifierKind::IdNumber => match self.id_validator.parse_bytes(value) {
                Some(r) => r.map(|v| out.extend_from_slice(v.as_bytes())).map_err(|e| e.to_string()),
                None => Err(not_utf8(value)),
            },
            _ => match std::str::from_utf8(value) {
                Ok(s) => self.normalize(kind, s, out),
                Err(_) => Err(not_utf8(value)),
            },
        }
    }

    /// The normalised value and details, or the reason it is invalid.
    pub fn check(&self, kind: IdentifierKind, value: &str) -> Result<Checked, String> {
        match kind {
            IdentifierKind::IdNumber => {
                let v = self.id_validator.parse(value).map_err(|e| e.to_string())?;
                let region = self.regions.lookup(v.region_code()).ok().map(|(_, e)| e.name.clone());
                Ok(Checked {
                    normalized: v.to_string(),
                    details: json!({"birth_date": v.birth_date(), "sex": v.sex(), "region_code": v.region_code(), "region_name": region}),
                })
            }
            IdentifierKind::CreditCode => {
                let v = CreditCode::parse(value).map_err(|e| e.to_string())?;
                Ok(Checked {
                    normalized: v.to_string(),
                    details: json!({
                        "registration_authority": v.registration_authority(),
                        "entity_type": v.entity_type(),
                        "region_code": v.region_code(),
                        "org_code": v.org_code(),
                    }),
                })
            }
            IdentifierKind::OrgCode => {
                let v = OrgCode::parse(value).map_err(|e| e.to_string())?;
                Ok(Checked { normalized: v.to_string(), details: json!({}) })
            }
            IdentifierKind::Region => {
                let (c, e) = self.regions.lookup(value).map_err(|e| e.to_string())?;
                Ok(Checked {
                    normalized: c.to_string(),
                    details: json!({"name": e.name, "level": e.level, "parent": e.parent, "valid_from": e.valid_from, "valid_to": e.valid_to, "current": e.is_current()}),
                })
            }
        }
    }
}
