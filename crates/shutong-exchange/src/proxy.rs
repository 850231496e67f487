//! 系统对接: a call to the provider's own service, forwarded by the platform under the consumer's grant.
//! The platform tells the provider who is calling, under which grant and for what purpose, and filters the
//! answer: in a JSON answer every key that names an item of the resource is kept only if granted (masked
//! unless the grant allows clear text); an answer the platform cannot filter (not JSON) passes only when
//! the grant covers every item unmasked.

use bytes::Bytes;
use serde_json::{Value, json};
use shutong_audit::AuditContext;
use shutong_identity::Principal;
use shutong_sharing::AccessMethod;

use crate::access::{Access, authorize, count_usage, require_quota, take_rate};
use crate::binding::published;
use crate::model::*;
use crate::read::event;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

/// A proxied call.
pub struct ProxyCall {
    pub method: String,
    /// The path below the service's base URL (without a leading `/`).
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub grant: Option<shutong_sharing::GrantId>,
}

pub struct ProxyAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

pub async fn proxy(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    call: ProxyCall,
) -> ExchangeResult<ProxyAnswer> {
    let code = resource.as_str();
    if call.path.split('/').any(|seg| seg == ".." || seg == ".") || call.path.contains('\\') || call.path.contains("//") {
        return Err(invalid("path", "must not contain '.', '..', '//' or '\\' segments"));
    }
    let a = authorize(ex, actor, resource, AccessMethod::SystemIntegration, call.grant).await?;
    if a.binding.kind != BindingKind::Service {
        return Err(ExchangeError::Conflict(format!("{code} is bound as {}, not as a service", a.binding.kind.label_zh())));
    }
    take_rate(ex, &a)?;
    require_quota(ex, &a, 1).await?;
    let base = a.binding.service_url.clone().ok_or_else(|| ExchangeError::Conflict("the binding has no service URL".into()))?;
    let mut url = format!("{base}/{}", call.path.trim_start_matches('/'));
    if let Some(q) = call.query.as_deref().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).map_err(|_| invalid("method", "not an HTTP method"))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(ex.settings.proxy_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ExchangeError::Upstream(format!("cannot build the HTTP client: {e}")))?;
    let consumer_code: Option<String> =
        sqlx::query_scalar("SELECT credit_code FROM departments WHERE id = $1").bind(a.consumer.0).fetch_optional(ex.db.pool()).await?;
    let mut req = client
        .request(method, &url)
        .header("x-shutong-consumer", consumer_code.unwrap_or_default())
        .header("x-shutong-grant", a.grant_id().map(|g| g.to_string()).unwrap_or_default())
        .header("x-shutong-purpose", a.purpose())
        .header("x-shutong-request-id", ctx.request_id.clone().unwrap_or_default())
        .body(call.body.clone());
    if let Some(ct) = &call.content_type {
        req = req.header("content-type", ct);
    }
    let answer = req.send().await.map_err(|e| {
        ExchangeError::Upstream(format!(
            "the provider's service did not answer ({}): {}",
            if e.is_timeout() { "timeout" } else { "error" },
            e.without_url()
        ))
    })?;
    let status = answer.status().as_u16();
    let content_type = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = answer.bytes().await.map_err(|e| ExchangeError::Upstream(format!("reading the provider's answer: {}", e.without_url())))?;
    let item_names = published(ex, resource).await?.document.items.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let is_json = content_type.as_deref().is_some_and(|c| c.contains("json"));
    let (body, records) = if is_json {
        let mut v: Value = serde_json::from_slice(&body).map_err(|e| {
            ExchangeError::Upstream(format!("the provider's service answered with invalid JSON ({e}); nothing was passed on"))
        })?;
        let mut records = 0;
        filter(ex, &a, &item_names, &mut v, &mut records);
        (Bytes::from(serde_json::to_vec(&v).unwrap_or_default()), records)
    } else if body.is_empty() || (a.items.len() == item_names.len() && a.items.iter().all(|i| i.mask.is_none())) {
        (body, 0)
    } else {
        return Err(ExchangeError::Upstream(format!(
            "the provider's service answered with {} which the platform cannot filter to your granted items; nothing was passed on",
            content_type.as_deref().unwrap_or("no content type")
        )));
    };
    count_usage(ex, &a, records.max(1));
    ex.log
        .record(event(
            ex,
            ctx,
            &a,
            shutong_audit::Action::DataProxy,
            records,
            json!({"method": call.method, "path": call.path, "status": status}),
        ))
        .await;
    Ok(ProxyAnswer { status, content_type, body })
}

/// Drops ungranted items from a JSON answer and masks the granted ones that need it; counts the objects
/// that carried items.
fn filter(ex: &Exchange, a: &Access, items: &[String], v: &mut Value, records: &mut i64) {
    match v {
        Value::Array(list) => list.iter_mut().for_each(|x| filter(ex, a, items, x, records)),
        Value::Object(map) => {
            let mut had_item = false;
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if items.contains(&k) {
                    had_item = true;
                    match a.items.iter().find(|i| i.name == k) {
                        None => {
                            map.remove(&k);
                        }
                        Some(out) => {
                            if let (Some(kind), Some(Value::String(s))) = (out.mask, map.get(&k)) {
                                let masked = ex.mask_rules.mask(kind, s);
                                map.insert(k, Value::String(masked));
                            } else if out.mask.is_some() && !matches!(map.get(&k), Some(Value::Null)) {
                                // A sensitive item that is not a string (a number, an object): withhold it.
                                map.insert(k, Value::Null);
                            }
                        }
                    }
                } else if let Some(child) = map.get_mut(&k) {
                    filter(ex, a, items, child, records);
                }
            }
            if had_item {
                *records += 1;
            }
        }
        _ => {}
    }
}
