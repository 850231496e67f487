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

    /// The normalised value only: the hot path of batch validation.
    pub fn normalize(&self, kind: IdentifierKind, value: &str, out: &mut String) -> Result<(), String> {
        use std::fmt::Write;
        match kind {
            IdentifierKind::IdNumber => self.id_validator.parse(value).map(|v| out.push_str(v.as_str())).map_err(|e| e.to_string()),
            IdentifierKind::CreditCode => CreditCode::parse(value).map(|v| out.push_str(v.as_str())).map_err(|e| e.to_string()),
            IdentifierKind::OrgCode => OrgCode::parse(value).map(|v| out.push_str(v.as_str())).map_err(|e| e.to_string()),
            IdentifierKind::Region => self
                .regions
                .lookup(value)
                .map(|(c, e)| {
                    let _ = write!(out, "{c}");
                    let _ = e;
                })
                .map_err(|e| e.to_string()),
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
