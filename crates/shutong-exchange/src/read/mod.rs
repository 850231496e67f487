//! 数据使用: lookup by key and filtered query (联机查询), bulk download (批量下载), the change feed (订阅).
//! Every call passes [`authorize`](crate::authorize) and is written to the access log.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shutong_audit::AuditContext;
use shutong_identity::Principal;
use shutong_reference::IdNumberValidator;
use shutong_sharing::{AccessMethod, FilterOp, RowCondition};
use shutong_store::{AnyRow, Row, now_ms};

use crate::access::{Access, authorize, count_usage, project, require_quota, take_rate};
use crate::accesslog::AccessEvent;
use crate::model::*;
use crate::validate::IdentKind;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

mod changes;
mod export;
mod lookup;
mod query;

pub use changes::*;
pub use export::*;
pub use lookup::*;
pub use query::*;

pub(crate) fn event(
    ex: &Exchange,
    ctx: &AuditContext,
    a: &Access,
    action: shutong_audit::Action,
    records: i64,
    extra: serde_json::Value,
) -> AccessEvent {
    AccessEvent {
        at_ms: now_ms(),
        ctx: ctx.clone(),
        department_id: a.consumer.0,
        action,
        resource_code: a.binding.resource_code.to_string(),
        grant_id: a.grant_id(),
        purpose: a.purpose(),
        items: Arc::new(a.item_names_out()),
        clear: a.clear_sensitive(),
        records,
        extra,
        quota_day: a.grant.as_ref().and_then(|g| g.daily_quota).map(|_| ex.sharing.today().to_string()),
    }
}

fn values_of(r: &AnyRow, from: usize, n: usize) -> Result<Vec<Option<String>>, sqlx::Error> {
    (0..n).map(|i| r.try_get::<Option<String>, _>(from + i)).collect()
}

fn columns_sql(n: usize) -> String {
    (0..n).map(|i| format!(", c{i}")).collect()
}

/// A dataset table disappears when a full batch replaces it between resolving and reading: resolve again.
fn table_gone(e: &ExchangeError) -> bool {
    let m = e.to_string();
    m.contains("no such table") || (m.contains("relation") && m.contains("does not exist"))
}

/// Normalises a key: identifiers are checked and normalised (15 → 18 digits, x → X).
pub fn normalise_key(a: &Access, key: &str, today: chrono::NaiveDate) -> ExchangeResult<String> {
    let k = key.trim();
    if k.is_empty() || k.len() > 200 {
        return Err(invalid("key", "must be 1–200 characters"));
    }
    match a.key_ident {
        Some(IdentKind::IdNumber) => IdNumberValidator::new(today)
            .parse(k)
            .map(|n| n.as_str().to_string())
            .map_err(|e| invalid("key", format!("'{k}' is not a valid 公民身份号码: {e}"))),
        Some(IdentKind::CreditCode) => shutong_reference::CreditCode::parse(k)
            .map(|c| c.as_str().to_string())
            .map_err(|e| invalid("key", format!("'{k}' is not a valid 统一社会信用代码: {e}"))),
        None => Ok(k.to_string()),
    }
}

/// Appends the SQL of conditions (row filter or query) with their parameters.
fn conditions_sql(a: &Access, conds: &[RowCondition], params: &mut Vec<String>, field: &str) -> ExchangeResult<String> {
    let mut sql = String::new();
    for (i, c) in conds.iter().enumerate() {
        let col = a
            .all_columns
            .get(&c.item)
            .ok_or_else(|| invalid(&format!("{field}[{i}].item"), format!("'{}' is not an item of the dataset", c.item)))?;
        if c.values.is_empty() {
            return Err(invalid(&format!("{field}[{i}].values"), "at least one value"));
        }
        if a.is_app_condition(c) {
            // A sensitive item stored encrypted: evaluated after decryption (see `after_decryption`).
            continue;
        }
        let mut alts = Vec::new();
        for v in &c.values {
            params.push(v.clone());
            let p = params.len();
            alts.push(match c.op {
                FilterOp::Eq | FilterOp::In => format!("c{col} = ${p}"),
                FilterOp::Prefix => format!("substr(c{col}, 1, {}) = ${p}", v.chars().count()),
            });
        }
        sql.push_str(&format!(" AND ({})", alts.join(" OR ")));
    }
    Ok(sql)
}

/// The SQL of a grant's row filter, with its parameters (for other modules reading records under a grant).
pub(crate) fn row_filter_sql(a: &Access, params: &mut Vec<String>) -> ExchangeResult<String> {
    conditions_sql(a, &a.row_filter.conditions, params, "grant.row_filter")
}

/// The row filter's conditions evaluated after decryption.
pub(crate) fn decrypted_conditions(a: &Access) -> Vec<&RowCondition> {
    after_decryption(a, &a.row_filter.conditions)
}

/// `, c0, c1, …` for `n` columns.
pub(crate) fn columns_of(n: usize) -> String {
    columns_sql(n)
}

/// The conditions that name sensitive items stored encrypted: evaluated on each row after decryption.
fn after_decryption<'c>(a: &Access, conds: impl IntoIterator<Item = &'c RowCondition>) -> Vec<&'c RowCondition> {
    conds.into_iter().filter(|c| a.is_app_condition(c)).collect()
}

/// How many rows one query or feed call reads at most while conditions are evaluated after decryption; a
/// page may then hold fewer records than asked, with a cursor to go on from.
const SCAN_LIMIT: usize = 50_000;
