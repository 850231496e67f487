//! 免提交核验 (R-EX-6, 办法 第十六条: 凡属于共享平台可以获取的信息，各政务部门原则上不得要求自然人、法人或其他
//! 组织重复提交): given a subject and the items a service needs, which of them the calling department can
//! fetch from the platform under its grants, and, on request, the values in one call.

use serde::{Deserialize, Serialize};
use shutong_audit::AuditContext;
use shutong_identity::Principal;
use shutong_reference::{CreditCode, IdNumberValidator};
use shutong_sharing::AccessMethod;

use crate::access::authorize;
use crate::binding::{list_bindings, published};
use crate::model::*;
use crate::validate::{IdentKind, identifier_kind};
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptionQuery {
    /// 公民身份号码 or 统一社会信用代码 of the applicant.
    pub subject: String,
    /// The items the service needs, by name (e.g. 姓名, 户籍地址, 单位名称).
    pub items: Vec<String>,
    /// Also fetch the values (each access is checked and audited like a lookup).
    #[serde(default)]
    pub fetch: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ItemAvailability {
    pub item: String,
    /// The platform can provide it: do not ask the applicant for it.
    pub available: bool,
    pub resource_code: Option<String>,
    pub resource_name: Option<String>,
    pub grant_id: Option<i64>,
    /// Why not: `not_pooled` (no dataset keyed by this kind of subject holds the item), `no_grant` (one does,
    /// but no grant in force covers it), `no_record` (fetched, and the subject has no record there).
    pub reason: Option<String>,
    /// The value, when fetched (masked unless the grant allows clear text).
    pub value: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExemptionAnswer {
    /// `person` (公民身份号码) or `legal_entity` (统一社会信用代码).
    pub subject_kind: String,
    pub items: Vec<ItemAvailability>,
    /// Items the applicant still has to provide.
    pub still_required: Vec<String>,
}

/// A data subject as an identifier (申请人或法人): a valid 公民身份号码 or 统一社会信用代码, normalised as
/// lookups normalise keys; `None` for anything else.
pub(crate) fn identify_subject(today: chrono::NaiveDate, subject: &str) -> Option<(IdentKind, String)> {
    if let Ok(n) = IdNumberValidator::new(today).parse(subject) {
        Some((IdentKind::IdNumber, n.as_str().to_string()))
    } else {
        CreditCode::parse(subject).ok().map(|c| (IdentKind::CreditCode, c.as_str().to_string()))
    }
}

pub async fn check_exemption(ex: &Exchange, actor: &Principal, ctx: &AuditContext, q: &ExemptionQuery) -> ExchangeResult<ExemptionAnswer> {
    let subject = q.subject.trim();
    let Some(kind) = identify_subject(ex.sharing.today(), subject) else {
        return Err(invalid("subject", format!("'{subject}' is neither a valid 公民身份号码 nor a valid 统一社会信用代码")));
    };
    if q.items.is_empty() || q.items.len() > 100 {
        return Err(invalid("items", "name 1–100 items"));
    }
    for (i, item) in q.items.iter().enumerate() {
        if item.trim().is_empty() {
            return Err(invalid(&format!("items[{i}]"), "empty item name"));
        }
    }
    // Datasets keyed by this kind of subject, with their items.
    let mut candidates: Vec<(shutong_catalog::ResourceCode, String, Vec<String>)> = Vec::new();
    for b in list_bindings(ex).await? {
        if b.kind != BindingKind::Dataset || b.table_name.is_none() {
            continue;
        }
        let Ok(p) = published(ex, &b.resource_code).await else { continue };
        let key = b.key_item.as_deref().unwrap_or("");
        if p.document.items.iter().find(|i| i.name == key).and_then(identifier_kind) != Some(kind.0) {
            continue;
        }
        candidates.push((b.resource_code.clone(), p.document.name.clone(), p.document.items.iter().map(|i| i.name.clone()).collect()));
    }
    let mut out: Vec<ItemAvailability> = Vec::new();
    for item in &q.items {
        let item = item.trim().to_string();
        let holders: Vec<&(shutong_catalog::ResourceCode, String, Vec<String>)> =
            candidates.iter().filter(|c| c.2.contains(&item)).collect();
        let mut found = None;
        for (code, name, _) in &holders {
            if let Ok(a) = authorize(ex, actor, code, AccessMethod::OnlineQuery, None).await
                && a.items.iter().any(|i| i.name == item)
            {
                found = Some((code.clone(), name.clone(), a.grant_id()));
                break;
            }
        }
        out.push(match found {
            Some((code, name, grant)) => ItemAvailability {
                item,
                available: true,
                resource_code: Some(code.to_string()),
                resource_name: Some(name),
                grant_id: grant,
                reason: None,
                value: None,
            },
            None => ItemAvailability {
                item,
                available: false,
                resource_code: None,
                resource_name: None,
                grant_id: None,
                reason: Some(if holders.is_empty() { "not_pooled" } else { "no_grant" }.into()),
                value: None,
            },
        });
    }
    if q.fetch {
        let mut codes: Vec<shutong_catalog::ResourceCode> = candidates.iter().map(|c| c.0.clone()).collect();
        codes.retain(|c| out.iter().any(|i| i.resource_code.as_deref() == Some(c.as_str())));
        codes.sort();
        codes.dedup();
        for resource in codes {
            let code = resource.to_string();
            let grant = out.iter().find(|i| i.resource_code.as_deref() == Some(&code)).and_then(|i| i.grant_id);
            match crate::read::lookup(ex, actor, ctx, &resource, &kind.1, grant.map(shutong_sharing::GrantId)).await {
                Ok(record) => {
                    for i in out.iter_mut().filter(|i| i.resource_code.as_deref() == Some(&code)) {
                        i.value = record.get(&i.item).cloned();
                    }
                }
                Err(ExchangeError::NotFound { .. }) => {
                    for i in out.iter_mut().filter(|i| i.resource_code.as_deref() == Some(&code)) {
                        i.available = false;
                        i.reason = Some("no_record".into());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    let still_required = out.iter().filter(|i| !i.available).map(|i| i.item.clone()).collect();
    Ok(ExemptionAnswer {
        subject_kind: if kind.0 == IdentKind::IdNumber { "person" } else { "legal_entity" }.into(),
        items: out,
        still_required,
    })
}
