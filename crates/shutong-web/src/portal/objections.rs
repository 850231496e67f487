//! 疑义校核 in the portal: a record looked up by key with its 校核中 flag and the 数据纠错 form beside it, the
//! lists of objections (filed by the department, the provider's queue ranked by impact, the authority's
//! overview with the figures per department), and one objection with the forms its viewer may use. Every
//! rule and permission comes from `shutong_quality`.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use shutong_quality::{self as quality, ObjectionId, ObjectionScope, QualityError};

use super::chart::{Bar, BarChart};
use super::pages::{Flash, Layout, done, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::{AppState, objection_settings};

fn back_with(to: &str, e: &QualityError) -> Response {
    super::errors::back(to, super::errors::quality(e))
}

fn department_names(list: Vec<shutong_identity::Department>) -> std::collections::HashMap<i64, String> {
    list.into_iter().map(|d| (d.id.0, d.name)).collect()
}

// ------------------------------------------------------------------ a record, with 数据纠错

pub struct FieldRow {
    name: String,
    value: String,
    flagged: bool,
}

#[derive(Template)]
#[template(path = "data_record.html")]
struct RecordPage {
    l: Layout,
    code: String,
    name: String,
    key: String,
    found: bool,
    message: String,
    fields: Vec<FieldRow>,
    /// Under verification (校核中), and the items in doubt (empty: the whole record).
    flagged: bool,
    flagged_items: String,
    /// The items the viewer may object to: the 数据纠错 form shows when there are.
    items: Vec<String>,
    reasons: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct KeyQuery {
    #[serde(default)]
    key: String,
}

/// 按键查询: one record under the viewer's grant (audited as every lookup), its 校核中 flag, and 数据纠错.
pub async fn record(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
    Query(f): Query<Flash>,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let ex = &state.exchange;
    let published = match shutong_exchange::published(ex, &code).await {
        Ok(p) => p,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或尚未发布。"),
    };
    let key = q.key.trim().to_string();
    let (mut found, mut message, mut fields, mut flag) = (false, String::new(), Vec::new(), None);
    if !key.is_empty() {
        match shutong_exchange::lookup(ex, &s.principal, &s.ctx(), &code, &key, None).await {
            Ok(mut rec) => {
                found = true;
                flag = rec.remove(shutong_exchange::flags::FLAG_FIELD);
                let doubted: Vec<String> = flag
                    .as_ref()
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|i| i.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                fields = rec
                    .into_iter()
                    .map(|(name, v)| FieldRow {
                        flagged: flag.is_some() && (doubted.is_empty() || doubted.contains(&name)),
                        value: match v {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        },
                        name,
                    })
                    .collect();
            }
            Err(e) => message = super::errors::exchange(&e).text,
        }
    }
    let flagged_items = flag
        .as_ref()
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join("、"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "全部信息项".into());
    let items = if found { quality::objectable_items(ex, &s.principal, &code).await.unwrap_or_default() } else { Vec::new() };
    let reasons =
        quality::objection_reasons(ex).await.unwrap_or_default().into_iter().filter(|r| !r.retired).map(|r| (r.code, r.name)).collect();
    let page = RecordPage {
        l: layout(&state, &s, &format!("{} · 按键查询", published.document.name), "catalog", f).await,
        code: code.to_string(),
        name: published.document.name.clone(),
        key,
        found,
        message,
        fields,
        flagged: flag.is_some(),
        flagged_items,
        items,
        reasons,
    };
    render(&page)
}

/// 数据纠错: the form beside a record (multipart: the evidence file is optional). The objection is filed, then
/// its evidence attached; the answer page is the new objection's.
pub async fn file(State(state): State<AppState>, s: PortalSession, mut form: Multipart) -> Response {
    let settings = objection_settings(&state.config);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut evidence: Option<(String, String, Vec<u8>)> = None;
    let mut csrf_checked = false;
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return plain_error(StatusCode::BAD_REQUEST, &format!("表单读取失败：{}", e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        if !csrf_checked {
            // The CSRF field comes first: checked before anything else is read.
            let value = if name == "csrf" { field.text().await.unwrap_or_default() } else { String::new() };
            if let Some(r) = s.csrf_rejection(&value) {
                return r;
            }
            csrf_checked = true;
            continue;
        }
        if name == "evidence" {
            let file_name = field.file_name().unwrap_or("").to_string();
            let content_type = field.content_type().unwrap_or("").to_string();
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if bytes.len() + c.len() > settings.evidence_max_bytes {
                            return plain_error(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                &format!("佐证材料超过 {} 字节。", settings.evidence_max_bytes),
                            );
                        }
                        bytes.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => return plain_error(StatusCode::BAD_REQUEST, &format!("上传失败：{}", e.body_text())),
                }
            }
            if !file_name.is_empty() && !bytes.is_empty() {
                evidence = Some((file_name, content_type, bytes));
            }
        } else {
            fields.push((name, field.text().await.unwrap_or_default()));
        }
    }
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let resource = get("resource");
    let key = get("key");
    let code = match shutong_catalog::ResourceCode::parse(&resource) {
        Ok(c) => c,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或尚未发布。"),
    };
    let back = format!("/catalog/{code}/data/record?{}", serde_urlencoded::to_string([("key", key.as_str())]).unwrap_or_default());
    let new = quality::NewObjection {
        resource: code,
        grant: None,
        keys: vec![key.clone()],
        items: fields.iter().filter(|(k, _)| k == "items").map(|(_, v)| v.clone()).collect(),
        reason: get("reason"),
        description: get("description"),
    };
    let (ex, p, ctx) = (&state.exchange, &s.principal, s.ctx());
    let o = match quality::file_objection(ex, p, &ctx, &settings, &new).await {
        Ok(o) => o,
        Err(e) => return back_with(&back, &e),
    };
    let to = format!("/quality/objections/{}", o.id.0);
    if let Some((name, content_type, bytes)) = evidence
        && let Err(e) = quality::attach_evidence(ex, p, &ctx, &settings, o.id, &name, &content_type, &bytes).await
    {
        return back_with(&to, &e);
    }
    done(&to, "objection_filed")
}

// ------------------------------------------------------------------ lists

pub struct ObjectionRow {
    id: i64,
    resource_code: String,
    keys: String,
    items: String,
    reason: String,
    filer: String,
    provider: String,
    state: &'static str,
    filed: String,
    due: String,
    overdue: bool,
    impact: String,
}

pub struct FigureRow {
    department: String,
    filed: i64,
    open: i64,
    overdue: i64,
    corrected: i64,
    confirmed: i64,
    declined: i64,
    to_answer: String,
    to_close: String,
    real_errors: String,
}

#[derive(Template)]
#[template(path = "objections.html")]
struct ListPage {
    l: Layout,
    scope: String,
    overdue: bool,
    rows: Vec<ObjectionRow>,
    figures: Vec<FigureRow>,
    chart: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    overdue: Option<String>,
}

/// 数据疑义: the department's objections (filed, or received as the provider's queue ranked by impact), every
/// one for the sharing authority, with the figures per department.
pub async fn list(State(state): State<AppState>, s: PortalSession, Query(q): Query<ListQuery>, Query(f): Query<Flash>) -> Response {
    let ex = &state.exchange;
    let scope = ObjectionScope::parse(&q.scope);
    let overdue = q.overdue.as_deref() == Some("1");
    let filter = quality::ObjectionFilter { scope, overdue, ..Default::default() };
    let list = match quality::objections(ex, &s.principal, &filter).await {
        Ok(l) => l,
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::quality(&e).text),
    };
    let names = department_names(shutong_identity::list_departments(&state.db).await.unwrap_or_default());
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let rows = list
        .into_iter()
        .map(|q| {
            let o = q.objection;
            ObjectionRow {
                id: o.id.0,
                keys: o.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join("，"),
                items: if o.items.is_empty() { "全部信息项".into() } else { o.items.join("、") },
                reason: o.reason_name,
                filer: name(o.filer_department_id),
                provider: name(o.provider_department_id),
                state: o.state.label_zh(),
                filed: fmt_time(o.filed_at_ms),
                due: o.due_on.to_string(),
                overdue: o.overdue,
                impact: format!("{} 个授权 · 30 日调用 {} 次", q.grants_in_force, q.calls_30_days),
                resource_code: o.resource_code,
            }
        })
        .collect();
    let figures = quality::objection_figures(ex, &s.principal).await.unwrap_or_default();
    let chart = if figures.iter().any(|f| f.filed > 0) {
        let bars = figures
            .iter()
            .map(|f| Bar { label: name(f.department_id), value: f.open, href: None })
            .filter(|b| b.value > 0)
            .collect::<Vec<_>>();
        if bars.is_empty() {
            String::new()
        } else {
            BarChart { testid: "chart-objections-open", title: "各部门待核实疑义".into(), bars }.html()
        }
    } else {
        String::new()
    };
    let hours = |h: Option<f64>| h.map(|h| format!("{h:.1}")).unwrap_or_else(|| "—".into());
    let figures = figures
        .into_iter()
        .map(|f| FigureRow {
            department: name(f.department_id),
            filed: f.filed,
            open: f.open,
            overdue: f.overdue,
            corrected: f.corrected,
            confirmed: f.confirmed,
            declined: f.declined,
            to_answer: hours(f.median_hours_to_answer),
            to_close: hours(f.median_hours_to_close),
            real_errors: f.real_error_percent.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let page = ListPage {
        l: layout(&state, &s, "数据疑义", "objections", f).await,
        scope: scope.map(|s| s.as_str().to_string()).unwrap_or_default(),
        overdue,
        rows,
        figures,
        chart,
    };
    render(&page)
}

// ------------------------------------------------------------------ one objection

#[derive(Template)]
#[template(path = "objection.html")]
struct DetailPage {
    l: Layout,
    o: quality::Objection,
    state: &'static str,
    items: String,
    keys: String,
    filer: String,
    provider: String,
    filed: String,
    answer: &'static str,
    answered: String,
    ruling: &'static str,
    escalated: String,
    ruled: String,
    closed: String,
    evidence_at: String,
    can: quality::ObjectionActions,
    answers: Vec<(&'static str, &'static str)>,
    rulings: Vec<(&'static str, &'static str)>,
}

pub async fn detail(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(f): Query<Flash>) -> Response {
    let ex = &state.exchange;
    let o = match quality::objection(ex, &s.principal, ObjectionId(id)).await {
        Ok(o) => o,
        Err(QualityError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "疑义不存在，或无权查看。"),
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::quality(&e).text),
    };
    let can = quality::objection_actions(ex, &s.principal, &o).await.unwrap_or_default();
    let names = department_names(shutong_identity::list_departments(&state.db).await.unwrap_or_default());
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let opt_time = |t: Option<i64>| t.map(fmt_time).unwrap_or_default();
    let page = DetailPage {
        l: layout(&state, &s, &format!("数据疑义 {id}"), "objections", f).await,
        state: o.state.label_zh(),
        items: if o.items.is_empty() { "全部信息项".into() } else { o.items.join("、") },
        keys: o.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join("，"),
        filer: name(o.filer_department_id),
        provider: name(o.provider_department_id),
        filed: fmt_time(o.filed_at_ms),
        answer: o.answer.map(|a| a.label_zh()).unwrap_or(""),
        answered: opt_time(o.answered_at_ms),
        ruling: o.ruling.map(|r| r.label_zh()).unwrap_or(""),
        escalated: opt_time(o.escalated_at_ms),
        ruled: opt_time(o.ruled_at_ms),
        closed: opt_time(o.closed_at_ms),
        evidence_at: o.evidence.as_ref().map(|e| fmt_time(e.uploaded_at_ms)).unwrap_or_default(),
        can,
        answers: quality::ObjectionAnswer::ALL.iter().map(|a| (a.as_str(), a.label_zh())).collect(),
        rulings: quality::ObjectionRuling::ALL.iter().map(|r| (r.as_str(), r.label_zh())).collect(),
        o,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    ruling: String,
    #[serde(default)]
    note: String,
}

/// 答复、认可、提请裁定、裁定: one form per action, each the service's function.
pub async fn act(
    State(state): State<AppState>,
    s: PortalSession,
    Path((id, action)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let (ex, p, ctx) = (&state.exchange, &s.principal, s.ctx());
    let to = format!("/quality/objections/{id}");
    let id = ObjectionId(id);
    let result = match action.as_str() {
        "answer" => match quality::ObjectionAnswer::parse(&f.answer) {
            Some(a) => quality::answer_objection(ex, p, &ctx, id, a, &f.note).await.map(|_| "objection_answered"),
            None => Err(QualityError::Validation {
                field: "answer".into(),
                message: format!("'{}' is not one of {}", f.answer, quality::ObjectionAnswer::expected()),
            }),
        },
        "accept" => quality::accept_answer(ex, p, &ctx, id).await.map(|_| "objection_accepted"),
        "escalate" => quality::escalate_objection(ex, p, &ctx, id, &f.note).await.map(|_| "objection_escalated"),
        "rule" => match quality::ObjectionRuling::parse(&f.ruling) {
            Some(r) => {
                quality::rule_objection(ex, p, &ctx, &objection_settings(&state.config), id, r, &f.note).await.map(|_| "objection_ruled")
            }
            None => Err(QualityError::Validation {
                field: "ruling".into(),
                message: format!("'{}' is not one of {}", f.ruling, quality::ObjectionRuling::expected()),
            }),
        },
        _ => return plain_error(StatusCode::NOT_FOUND, "页面不存在。"),
    };
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

/// The evidence file, as a download.
pub async fn evidence(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>) -> Response {
    match quality::evidence(&state.exchange, &s.principal, ObjectionId(id)).await {
        Ok((e, bytes)) => crate::api::objections::evidence_response(&e, bytes),
        Err(_) => plain_error(StatusCode::NOT_FOUND, "佐证材料不存在，或无权查看。"),
    }
}

/// Replaces the evidence file (the filer, until closed).
pub async fn attach(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, mut form: Multipart) -> Response {
    let settings = objection_settings(&state.config);
    let to = format!("/quality/objections/{id}");
    let csrf = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    if let Some(r) = s.csrf_rejection(&csrf) {
        return r;
    }
    while let Ok(Some(mut field)) = form.next_field().await {
        if field.name() != Some("evidence") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_string();
        let content_type = field.content_type().unwrap_or("").to_string();
        let mut bytes = Vec::new();
        while let Ok(Some(c)) = field.chunk().await {
            if bytes.len() + c.len() > settings.evidence_max_bytes {
                return super::errors::back(&to, super::errors::Shown::new(format!("佐证材料超过 {} 字节。", settings.evidence_max_bytes)));
            }
            bytes.extend_from_slice(&c);
        }
        return match quality::attach_evidence(
            &state.exchange,
            &s.principal,
            &s.ctx(),
            &settings,
            ObjectionId(id),
            &name,
            &content_type,
            &bytes,
        )
        .await
        {
            Ok(_) => done(&to, "evidence_attached"),
            Err(e) => back_with(&to, &e),
        };
    }
    Redirect::to(&to).into_response()
}

// ------------------------------------------------------------------ 一数一源

pub struct ElementRow {
    name: String,
    key_item: String,
    authoritative: String,
    items: String,
    carriers: String,
}

pub struct RunRow {
    id: i64,
    element: String,
    resource_code: String,
    authoritative_code: String,
    at: String,
    cause: &'static str,
    keys: i64,
    differing: i64,
    missing_here: i64,
    missing_there: i64,
    rate: String,
}

#[derive(Template)]
#[template(path = "consistency.html")]
struct ConsistencyPage {
    l: Layout,
    elements: Vec<ElementRow>,
    runs: Vec<RunRow>,
    chart: String,
}

fn percent(bp: i64) -> String {
    format!("{:.2}%", bp as f64 / 100.0)
}

/// 一数一源: the base elements with their authoritative resources and carriers, and the latest reconciliations.
pub async fn consistency(State(state): State<AppState>, s: PortalSession, Query(f): Query<Flash>) -> Response {
    let ex = &state.exchange;
    let elements = match quality::elements(ex).await {
        Ok(e) => e,
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::quality(&e).text),
    };
    let names: std::collections::HashMap<i64, String> = elements.iter().map(|e| (e.id.0, e.name.clone())).collect();
    let runs = quality::consistency_runs(ex, &s.principal, None, 100).await.unwrap_or_default();
    // The latest run of each dataset and element, for the chart.
    let mut latest: Vec<&quality::ConsistencyRun> = Vec::new();
    for r in &runs {
        if !latest.iter().any(|l| l.element_id == r.element_id && l.resource_code == r.resource_code) {
            latest.push(r);
        }
    }
    let chart = if latest.is_empty() {
        String::new()
    } else {
        let bars = latest
            .iter()
            .map(|r| Bar {
                label: format!("{} · {}", names.get(&r.element_id.0).cloned().unwrap_or_default(), r.resource_code),
                value: r.rate / 100,
                href: Some(format!("/quality/consistency/{}", r.id.0)),
            })
            .collect();
        BarChart { testid: "chart-consistency", title: "一数一源一致率（%）".into(), bars }.html()
    };
    let page = ConsistencyPage {
        l: layout(&state, &s, "一数一源", "consistency", f).await,
        elements: elements
            .iter()
            .map(|e| ElementRow {
                name: e.name.clone(),
                key_item: e.key_item.clone(),
                authoritative: e.resource_code.clone(),
                items: e.items.join("、"),
                carriers: e.carriers.iter().map(|c| c.resource_code.as_str()).collect::<Vec<_>>().join("，"),
            })
            .collect(),
        runs: runs
            .iter()
            .map(|r| RunRow {
                id: r.id.0,
                element: names.get(&r.element_id.0).cloned().unwrap_or_default(),
                resource_code: r.resource_code.clone(),
                authoritative_code: r.authoritative_code.clone(),
                at: fmt_time(r.ran_at_ms),
                cause: r.cause.label_zh(),
                keys: r.keys_compared,
                differing: r.differing_keys,
                missing_here: r.missing_in_resource,
                missing_there: r.missing_in_authoritative,
                rate: percent(r.rate),
            })
            .collect(),
        chart,
    };
    render(&page)
}

pub struct ConflictRow {
    id: i64,
    key: String,
    kind: &'static str,
    item: String,
    authoritative: String,
    resource: String,
}

#[derive(Template)]
#[template(path = "consistency_run.html")]
struct RunPage {
    l: Layout,
    run: quality::ConsistencyRun,
    element: String,
    at: String,
    rate: String,
    items: Vec<(String, String, i64, i64, String)>,
    conflicts: Vec<ConflictRow>,
    sides: Vec<(&'static str, &'static str)>,
}

/// One reconciliation: its figures per item and its conflicts, each with the 提出疑义 form the viewer may use.
pub async fn consistency_run(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(f): Query<Flash>) -> Response {
    let ex = &state.exchange;
    let run = match quality::consistency_run(ex, &s.principal, quality::ConsistencyRunId(id)).await {
        Ok(r) => r,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "比对记录不存在，或无权查看。"),
    };
    let element = quality::element(ex, run.element_id).await.map(|e| e.name).unwrap_or_default();
    let sides =
        quality::conflict_sides(ex, &s.principal, &run).await.unwrap_or_default().into_iter().map(|s| (s.as_str(), s.label_zh())).collect();
    let page = RunPage {
        l: layout(&state, &s, &format!("一数一源比对 {id}"), "consistency", f).await,
        element,
        at: fmt_time(run.ran_at_ms),
        rate: percent(run.rate),
        items: run.items.iter().map(|i| (i.item.clone(), i.resource_item.clone(), i.compared, i.differing, percent(i.rate))).collect(),
        conflicts: run
            .conflicts
            .iter()
            .map(|c| ConflictRow {
                id: c.id.0,
                key: c.key.clone(),
                kind: c.kind.label_zh(),
                item: c.item.clone().unwrap_or_default(),
                authoritative: c.authoritative_value.clone().unwrap_or_default(),
                resource: c.resource_value.clone().unwrap_or_default(),
            })
            .collect(),
        sides,
        run,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ConflictForm {
    csrf: String,
    side: String,
    #[serde(default)]
    note: String,
    run: i64,
}

/// 提出疑义 on a conflict, against the side chosen.
pub async fn object_to_conflict(
    State(state): State<AppState>,
    s: PortalSession,
    Path(id): Path<i64>,
    Form(f): Form<ConflictForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let back = format!("/quality/consistency/{}", f.run);
    let Some(side) = quality::ConflictSide::parse(&f.side) else {
        return super::errors::back(&back, super::errors::Shown::new(format!("“{}”不是可选的一方", f.side)));
    };
    let settings = objection_settings(&state.config);
    match quality::object_to_conflict(&state.exchange, &s.principal, &s.ctx(), &settings, quality::ConflictId(id), side, &f.note).await {
        Ok(o) => done(&format!("/quality/objections/{}", o.id.0), "objection_filed"),
        Err(e) => back_with(&back, &e),
    }
}

// ------------------------------------------------------------------ 基础库与主题库

pub struct ThemeRow {
    id: i64,
    name: String,
    code: String,
    lead: String,
    members: String,
    published: bool,
    refreshed: String,
}

pub struct TemplateRow {
    code: &'static str,
    name: &'static str,
    classification: &'static str,
    key_item: &'static str,
    items: String,
}

#[derive(Template)]
#[template(path = "themes.html")]
struct ThemesPage {
    l: Layout,
    themes: Vec<ThemeRow>,
    templates: Vec<TemplateRow>,
}

/// 基础库与主题库: the theme databases with their members and last refresh, and the base templates.
pub async fn themes(State(state): State<AppState>, s: PortalSession, Query(f): Query<Flash>) -> Response {
    let names = department_names(shutong_identity::list_departments(&state.db).await.unwrap_or_default());
    let themes = quality::themes(&state.exchange).await.unwrap_or_default();
    let page = ThemesPage {
        l: layout(&state, &s, "基础库与主题库", "themes", f).await,
        themes: themes
            .into_iter()
            .map(|t| ThemeRow {
                id: t.id.0,
                name: t.name,
                code: t.resource_code,
                lead: names.get(&t.lead_department_id).cloned().unwrap_or_default(),
                members: t.members.join("，"),
                published: t.published,
                refreshed: t
                    .last_refresh
                    .map(|r| format!("{}（{}，{} 条）", fmt_time(r.refreshed_at_ms), r.mode, r.rows_written))
                    .unwrap_or_else(|| "—".into()),
            })
            .collect(),
        templates: quality::base_templates()
            .into_iter()
            .map(|t| TemplateRow {
                code: t.code,
                name: t.name,
                classification: t.classification,
                key_item: t.key_item,
                items: t.items.iter().map(|i| i.name).collect::<Vec<_>>().join("、"),
            })
            .collect(),
    };
    render(&page)
}

pub struct LineageRow {
    item: String,
    member: String,
    member_item: String,
    version: String,
    seq: String,
    at: String,
}

#[derive(Template)]
#[template(path = "theme.html")]
struct ThemePage {
    l: Layout,
    t: quality::Theme,
    lead: String,
    lineage: Vec<LineageRow>,
    refreshed: String,
}

/// One theme database: its items and where each comes from (the member, its version and the change read).
pub async fn theme(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(f): Query<Flash>) -> Response {
    let t = match quality::theme(&state.exchange, quality::ThemeId(id)).await {
        Ok(t) => t,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "主题库不存在。"),
    };
    let names = department_names(shutong_identity::list_departments(&state.db).await.unwrap_or_default());
    let state_of = |code: &str| t.last_refresh.as_ref().and_then(|r| r.members.iter().find(|m| m.resource_code == code).cloned());
    let lineage = t
        .items
        .iter()
        .map(|i| {
            let m = state_of(&i.resource_code);
            LineageRow {
                item: i.item.clone(),
                member: i.resource_code.clone(),
                member_item: i.member_item.clone(),
                version: m.as_ref().map(|m| format!("第 {} 版", m.version)).unwrap_or_default(),
                seq: m.as_ref().map(|m| m.last_seq.to_string()).unwrap_or_default(),
                at: m.as_ref().and_then(|m| m.last_batch_at_ms).map(fmt_time).unwrap_or_default(),
            }
        })
        .collect();
    let page = ThemePage {
        l: layout(&state, &s, &t.name, "themes", f).await,
        lead: names.get(&t.lead_department_id).cloned().unwrap_or_default(),
        lineage,
        refreshed: t
            .last_refresh
            .as_ref()
            .map(|r| format!("{}（{}，写入 {} 条，删除 {} 条）", fmt_time(r.refreshed_at_ms), r.mode, r.rows_written, r.rows_deleted))
            .unwrap_or_else(|| "尚未更新".into()),
        t,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// 立即更新 a theme database.
pub async fn refresh_theme(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/quality/themes/{id}");
    match quality::refresh_theme(&state.exchange, &s.principal, &s.ctx(), quality::ThemeId(id)).await {
        Ok(_) => done(&to, "theme_refreshed"),
        Err(e) => back_with(&to, &e),
    }
}

/// 按标准项集编制: a base resource's catalog draft from a template, then its editing page.
pub async fn compile_base(State(state): State<AppState>, s: PortalSession, Path(code): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    match quality::compile_base_resource(&state.exchange, &s.principal, &s.ctx(), &code, None).await {
        Ok(view) => done(&format!("/catalog/{}", view.code), "base_compiled"),
        Err(e) => back_with("/quality/themes", &e),
    }
}
