//! Portal pages of the resource catalog: search with facets, the resource page (metadata, items,
//! versions, history), the editor's form, the authority's review queue, and the statistics.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use shutong_catalog::{
    self as catalog, CatalogError, DataType, InfoItem, NewResource, ResourceDocument, ResourceFormat, ReviewDecision, SharingMethod,
    SharingType, UpdateCycle, VersionStatus,
};
use shutong_identity::{DepartmentId, Role};

use super::pages::{Flash, Layout, action_zh, done, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

fn back_with(to: &str, e: &CatalogError) -> Response {
    super::errors::back(to, super::errors::catalog(e))
}

// ------------------------------------------------------------------ search

pub struct FacetValue {
    label: String,
    count: u64,
    href: String,
    selected: bool,
}

pub struct FacetGroup {
    title: &'static str,
    values: Vec<FacetValue>,
}

pub struct HitRow {
    code: String,
    name: String,
    provider_name: String,
    sharing: &'static str,
    summary: String,
}

#[derive(Template)]
#[template(path = "catalog_search.html")]
struct SearchPage {
    l: Layout,
    q: String,
    active: Vec<(String, String)>,
    facets: Vec<FacetGroup>,
    hits: Vec<HitRow>,
    total: usize,
    pager: super::pager::Pager,
    can_create: bool,
}

#[derive(Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    class: Option<String>,
    provider: Option<String>,
    region: Option<String>,
    sharing: Option<String>,
    open: Option<String>,
    format: Option<String>,
    cycle: Option<String>,
    cursor: Option<String>,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

pub async fn search(State(state): State<AppState>, s: PortalSession, Query(p): Query<SearchParams>) -> Response {
    let active: Vec<(String, String)> = [
        ("class", &p.class),
        ("provider", &p.provider),
        ("region", &p.region),
        ("sharing", &p.sharing),
        ("open", &p.open),
        ("format", &p.format),
        ("cycle", &p.cycle),
    ]
    .into_iter()
    .filter_map(|(d, v)| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(|v| (d.to_string(), v.to_string())))
    .collect();
    let req = catalog::search::SearchRequest { q: p.q.clone(), filters: active.clone(), limit: 20, cursor: p.cursor.clone() };
    let mut results = match state.catalog_index.search(&req) {
        Ok(r) => r,
        Err(e) => return back_with("/catalog", &e),
    };
    crate::api::catalog::label_facets(&state, &mut results).await;
    let link = |filters: &[(String, String)], cursor: Option<&str>| {
        let mut pairs: Vec<(String, String)> = vec![("q".into(), p.q.clone())];
        pairs.extend(filters.iter().cloned());
        if let Some(c) = cursor {
            pairs.push(("cursor".into(), c.to_string()));
        }
        format!("/catalog?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    };
    let facets = catalog::search::FACETS
        .iter()
        .filter_map(|(dim, title)| {
            let values = results.facets.get(*dim)?;
            let values: Vec<FacetValue> = values
                .iter()
                .take(12)
                .map(|v| {
                    let selected = active.iter().any(|(d, x)| d == dim && *x == v.value);
                    let mut filters: Vec<(String, String)> = active.iter().filter(|(d, _)| d != dim).cloned().collect();
                    if !selected {
                        filters.push((dim.to_string(), v.value.clone()));
                    }
                    FacetValue { label: v.label.clone(), count: v.count, href: link(&filters, None), selected }
                })
                .collect();
            (!values.is_empty()).then_some(FacetGroup { title, values })
        })
        .collect();
    let hits = results
        .hits
        .iter()
        .map(|h| HitRow {
            code: h.code.clone(),
            name: h.name.clone(),
            provider_name: h.provider_name.clone(),
            sharing: SharingType::parse(&h.sharing_type).map(|t| t.label_zh()).unwrap_or(""),
            summary: h.summary.clone(),
        })
        .collect();
    let can_create = catalog::may_compile(&s.principal, catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false));
    let page = SearchPage {
        l: layout(&state, &s, "资源目录", "catalog", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        q: p.q.clone(),
        pager: {
            let mut filters: Vec<(&str, String)> = vec![("q", p.q.clone())];
            filters.extend(active.iter().map(|(d, v)| (d.as_str(), v.clone())));
            super::pager::Pager::new("/catalog", &filters, "cursor", p.cursor.clone(), results.next_cursor.clone(), results.hits.len())
        },
        active,
        facets,
        hits,
        total: results.total,
        can_create,
    };
    render(&page)
}

// ------------------------------------------------------------------ resource page

pub struct ItemRow {
    name: String,
    data_type: &'static str,
    length: String,
    sharing: &'static str,
    base: &'static str,
    mask: &'static str,
    standard: String,
}

pub struct VersionRow {
    version: i64,
    status: &'static str,
    name: String,
    submitted: String,
    reviewed: String,
    published: String,
}

pub struct HistoryRow {
    at: String,
    actor: String,
    action_zh: &'static str,
    detail: String,
}

#[derive(Template)]
#[template(path = "catalog_resource.html")]
struct ResourcePage {
    l: Layout,
    r: catalog::ResourceView,
    status_label: &'static str,
    viewing_old: bool,
    format_label: &'static str,
    sharing_label: &'static str,
    cycle_label: &'static str,
    sharing_condition: String,
    permitted_usage: String,
    legal_basis: String,
    methods: String,
    published_at: String,
    source_system: String,
    record_count: String,
    items: Vec<ItemRow>,
    versions: Vec<VersionRow>,
    history: Vec<HistoryRow>,
    can_edit_draft: bool,
    can_revise: bool,
    can_review: bool,
    can_withdraw: bool,
    /// 申请使用: a department other than the provider may apply for (or subscribe to) a published resource.
    can_apply: bool,
}

#[derive(Deserialize, Default)]
pub struct ResourceParams {
    version: Option<i64>,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

fn dash(s: &Option<String>) -> String {
    s.as_deref().filter(|x| !x.trim().is_empty()).unwrap_or("—").to_string()
}

pub async fn resource(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Query(p): Query<ResourceParams>,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let r = match catalog::get_resource(&state.db, &s.principal, &code, p.version).await {
        Ok(r) => r,
        Err(CatalogError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或无权查看。"),
        Err(e) => return back_with("/catalog", &e),
    };
    let authority = catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false);
    let editor = authority || s.principal.has_role_in(Role::CatalogEditor, DepartmentId(r.provider_department_id));
    let is_latest = r.version == r.latest_version;
    let versions = catalog::list_versions(&state.db, &s.principal, &code)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| VersionRow {
            version: v.version,
            status: v.status.label_zh(),
            name: v.name,
            submitted: v.submitted_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
            reviewed: match (&v.reviewed_by, v.reviewed_at_ms) {
                (Some(by), Some(at)) => format!("{by} {}", fmt_time(at)),
                _ => "—".into(),
            },
            published: v.published_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let history = shutong_audit::list_for_target(&state.db, "catalog_resource", code.as_str())
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| HistoryRow {
            at: fmt_time(e.at_ms),
            actor: e.actor.clone(),
            action_zh: action_zh(&e.action),
            detail: e
                .detail
                .get("reason")
                .and_then(|r| r.as_str())
                .map(|r| format!("理由：{r}"))
                .or_else(|| e.detail.get("version").map(|v| format!("第 {v} 版")))
                .unwrap_or_default(),
        })
        .collect();
    let d = &r.document;
    let items = d
        .items
        .iter()
        .map(|i| ItemRow {
            name: i.name.clone(),
            data_type: i.data_type.label_zh(),
            length: i.length.map(|l| l.to_string()).unwrap_or_default(),
            sharing: i.sharing_type.label_zh(),
            base: if i.is_base_item { "是" } else { "" },
            mask: i.mask.map(|m| m.as_str()).unwrap_or(""),
            standard: i.standard.clone().unwrap_or_default(),
        })
        .collect();
    let status = if r.resource_status == VersionStatus::Withdrawn { VersionStatus::Withdrawn } else { r.status };
    let page = ResourcePage {
        l: layout(&state, &s, &d.name.clone(), "catalog", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        status_label: status.label_zh(),
        viewing_old: !is_latest,
        format_label: d.format.label_zh(),
        sharing_label: d.sharing_type.label_zh(),
        cycle_label: d.update_cycle.label_zh(),
        sharing_condition: dash(&d.sharing_condition),
        permitted_usage: dash(&d.permitted_usage),
        legal_basis: dash(&d.legal_basis),
        methods: if d.sharing_methods.is_empty() {
            "—".into()
        } else {
            d.sharing_methods.iter().map(|m| m.label_zh()).collect::<Vec<_>>().join("、")
        },
        published_at: r.published_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
        source_system: dash(&d.source_system),
        record_count: d.record_count.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
        items,
        versions,
        history,
        can_edit_draft: editor && is_latest && matches!(r.status, VersionStatus::Draft | VersionStatus::Returned),
        can_revise: editor && is_latest && r.status == VersionStatus::Published,
        can_review: authority && is_latest && r.status == VersionStatus::Submitted,
        can_withdraw: editor && is_latest && r.status == VersionStatus::Published && r.resource_status != VersionStatus::Withdrawn,
        can_apply: r.published_version.is_some()
            && r.resource_status != VersionStatus::Withdrawn
            && s.principal.department_id.is_some_and(|d| d.0 != r.provider_department_id && shutong_sharing::acts_for(&s.principal, d)),
        r,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

pub async fn action(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq, verb)): Path<(String, String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let to = format!("/catalog/{code}");
    let ctx = s.ctx();
    let result = match verb.as_str() {
        "submit" => catalog::submit(&state.db, &s.principal, &ctx, &code).await.map(|_| "submitted"),
        "revise" => catalog::revise(&state.db, &s.principal, &ctx, &code).await.map(|_| "revised"),
        "withdraw" => catalog::withdraw(&state.db, &s.principal, &ctx, &code, &f.reason).await.map(|_| "withdrawn"),
        "review" => {
            let (decision, ok) = if f.decision == "approve" {
                (ReviewDecision::Approve, "published")
            } else {
                (ReviewDecision::Return { reason: f.reason.clone() }, "returned")
            };
            catalog::review(&state.db, &state.clock, &s.principal, &ctx, &code, decision).await.map(|_| ok)
        }
        _ => return plain_error(StatusCode::NOT_FOUND, "没有这个操作。"),
    };
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

// ------------------------------------------------------------------ editor form

/// The editor's form fields (also what is shown back).
#[derive(Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    classification_code: String,
    #[serde(default)]
    provider: Option<i64>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    sharing_type: String,
    #[serde(default)]
    update_cycle: String,
    #[serde(default)]
    sharing_condition: String,
    #[serde(default)]
    permitted_usage: String,
    #[serde(default)]
    legal_basis: String,
    #[serde(default)]
    source_system: String,
    #[serde(default)]
    open_to_public: Option<String>,
    #[serde(default)]
    m_system_integration: Option<String>,
    #[serde(default)]
    m_exchange_node: Option<String>,
    #[serde(default)]
    m_online_query: Option<String>,
    #[serde(default)]
    m_bulk_download: Option<String>,
    #[serde(default)]
    items: String,
}

/// The form as the template shows it.
pub struct FormView {
    classification_code: String,
    name: String,
    summary: String,
    format: String,
    sharing_type: String,
    update_cycle: String,
    sharing_condition: String,
    permitted_usage: String,
    legal_basis: String,
    source_system: String,
    open_to_public: bool,
    items: String,
    /// The sharing methods ticked.
    methods: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "catalog_edit.html")]
struct EditPage {
    l: Layout,
    heading: String,
    action: String,
    cancel: String,
    is_new: bool,
    f: FormView,
    classes: Vec<(String, String)>,
    providers: Vec<(i64, String)>,
    formats: Vec<(&'static str, &'static str)>,
    sharings: Vec<(&'static str, &'static str)>,
    cycles: Vec<(&'static str, &'static str)>,
    methods: Vec<(&'static str, &'static str, bool)>,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Reads the items textarea: `名称|数据类型|长度|共享类型|基础信息项|脱敏类型` per line.
fn parse_items(text: &str) -> Result<Vec<InfoItem>, String> {
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split(['|', '\t']).map(str::trim).collect();
        let at = |what: &str| format!("信息项第 {} 行：{what}", n + 1);
        let name = cols.first().filter(|c| !c.is_empty()).ok_or_else(|| at("缺少名称"))?;
        let data_type =
            DataType::parse(cols.get(1).copied().unwrap_or("C")).ok_or_else(|| at(&format!("数据类型应为 {}", DataType::expected())))?;
        let length = match cols.get(2).copied().unwrap_or("") {
            "" => None,
            l => Some(l.parse::<u32>().map_err(|_| at(&format!("长度“{l}”不是整数")))?),
        };
        let sharing_type = SharingType::parse(cols.get(3).copied().unwrap_or("无条件共享"))
            .ok_or_else(|| at(&format!("共享类型应为 {}", SharingType::expected())))?;
        let is_base_item = matches!(cols.get(4).copied().unwrap_or(""), "是" | "true" | "1" | "Y");
        let mask = match cols.get(5).copied().unwrap_or("") {
            "" => None,
            m => Some(shutong_reference::MaskKind::parse(m).ok_or_else(|| at(&format!("脱敏类型“{m}”未知")))?),
        };
        items.push(InfoItem {
            name: name.to_string(),
            data_type,
            length,
            required: false,
            is_key: false,
            mask,
            sharing_type,
            sharing_condition: None,
            standard: None,
            is_base_item,
        });
    }
    Ok(items)
}

fn items_text(items: &[InfoItem]) -> String {
    items
        .iter()
        .map(|i| {
            format!(
                "{}|{}|{}|{}|{}|{}",
                i.name,
                i.data_type.as_str(),
                i.length.map(|l| l.to_string()).unwrap_or_default(),
                i.sharing_type.label_zh(),
                if i.is_base_item { "是" } else { "否" },
                i.mask.map(|m| m.as_str()).unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn document_of(f: &EditForm, previous: Option<&ResourceDocument>) -> Result<ResourceDocument, String> {
    let mut methods = Vec::new();
    for (flag, m) in [
        (&f.m_system_integration, SharingMethod::SystemIntegration),
        (&f.m_exchange_node, SharingMethod::ExchangeNode),
        (&f.m_online_query, SharingMethod::OnlineQuery),
        (&f.m_bulk_download, SharingMethod::BulkDownload),
    ] {
        if flag.is_some() {
            methods.push(m);
        }
    }
    let mut items = parse_items(&f.items)?;
    // Fields the form does not show are kept from the previous version.
    if let Some(prev) = previous {
        for i in &mut items {
            if let Some(p) = prev.items.iter().find(|p| p.name == i.name) {
                i.required = p.required;
                i.is_key = p.is_key;
                i.sharing_condition = p.sharing_condition.clone();
                i.standard = p.standard.clone();
            }
        }
    }
    let base = previous.cloned();
    Ok(ResourceDocument {
        name: f.name.clone(),
        summary: f.summary.clone(),
        format: ResourceFormat::parse(&f.format).ok_or("信息资源格式未选择")?,
        items,
        sharing_type: SharingType::parse(&f.sharing_type).ok_or("共享类型未选择")?,
        sharing_condition: opt(&f.sharing_condition),
        permitted_usage: opt(&f.permitted_usage),
        legal_basis: opt(&f.legal_basis),
        sharing_methods: methods,
        open_to_public: f.open_to_public.is_some(),
        open_condition: base.as_ref().and_then(|b| b.open_condition.clone()),
        update_cycle: UpdateCycle::parse(&f.update_cycle).ok_or("更新周期未选择")?,
        related_codes: base.as_ref().map(|b| b.related_codes.clone()).unwrap_or_default(),
        secrecy: base.as_ref().map(|b| b.secrecy).unwrap_or(catalog::Secrecy::NonClassified),
        network: base.as_ref().map(|b| b.network).unwrap_or(catalog::Network::Outer),
        source_system: opt(&f.source_system),
        contact: base.as_ref().and_then(|b| b.contact.clone()),
        record_count: base.as_ref().and_then(|b| b.record_count),
        storage_mb: base.as_ref().and_then(|b| b.storage_mb),
        tags: base.as_ref().map(|b| b.tags.clone()).unwrap_or_default(),
    })
}

/// Where the editor's form posts to and returns to.
struct FormTarget {
    heading: String,
    action: String,
    cancel: String,
    is_new: bool,
}

async fn edit_page(state: &AppState, s: &PortalSession, target: FormTarget, f: FormView, flash: Flash) -> Response {
    let classes = catalog::list_classifications(&state.db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.level >= 2)
        .map(|c| (c.code.clone(), format!("{} {}", c.code, c.name)))
        .collect();
    let authority = catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false);
    let providers = shutong_identity::list_departments(&state.db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|d| authority || s.principal.has_role_in(Role::CatalogEditor, d.id))
        .map(|d| (d.id.0, d.name))
        .collect();
    let methods = SharingMethod::ALL.iter().map(|m| (m.as_str(), m.label_zh(), f.methods.contains(&m.as_str()))).collect::<Vec<_>>();
    let FormTarget { heading, action, cancel, is_new } = target;
    let page = EditPage {
        l: layout(state, s, &heading, "catalog", flash).await,
        heading,
        action,
        cancel,
        is_new,
        classes,
        providers,
        formats: ResourceFormat::ALL.iter().map(|x| (x.as_str(), x.label_zh())).collect(),
        sharings: SharingType::ALL.iter().map(|x| (x.as_str(), x.label_zh())).collect(),
        cycles: UpdateCycle::ALL.iter().map(|x| (x.as_str(), x.label_zh())).collect(),
        methods,
        f,
    };
    render(&page)
}

fn form_view_of(doc: &ResourceDocument, class: &str) -> FormView {
    FormView {
        classification_code: class.to_string(),
        name: doc.name.clone(),
        summary: doc.summary.clone(),
        format: doc.format.as_str().into(),
        sharing_type: doc.sharing_type.as_str().into(),
        update_cycle: doc.update_cycle.as_str().into(),
        sharing_condition: doc.sharing_condition.clone().unwrap_or_default(),
        permitted_usage: doc.permitted_usage.clone().unwrap_or_default(),
        legal_basis: doc.legal_basis.clone().unwrap_or_default(),
        source_system: doc.source_system.clone().unwrap_or_default(),
        open_to_public: doc.open_to_public,
        items: items_text(&doc.items),
        methods: doc.sharing_methods.iter().map(|m| m.as_str()).collect(),
    }
}

pub async fn new_form(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let f = FormView {
        classification_code: "101".into(),
        name: String::new(),
        summary: String::new(),
        format: "database".into(),
        sharing_type: "unconditional".into(),
        update_cycle: "monthly".into(),
        sharing_condition: String::new(),
        permitted_usage: String::new(),
        legal_basis: String::new(),
        source_system: String::new(),
        open_to_public: false,
        items: String::new(),
        methods: vec![SharingMethod::OnlineQuery.as_str()],
    };
    let target = FormTarget { heading: "编制目录".into(), action: "/catalog/new".into(), cancel: "/catalog".into(), is_new: true };
    edit_page(&state, &s, target, f, flash).await
}

pub async fn create(State(state): State<AppState>, s: PortalSession, Form(f): Form<EditForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let doc = match document_of(&f, None) {
        Ok(d) => d,
        Err(m) => return back_with("/catalog/new", &CatalogError::Validation { field: "form".into(), message: m }),
    };
    let new = NewResource {
        classification_code: f.classification_code.clone(),
        provider: f.provider.map(DepartmentId),
        document: doc,
        project: None,
    };
    match catalog::create_resource(&state.db, &s.principal, &s.ctx(), new).await {
        Ok(v) => done(&format!("/catalog/{}", v.code), "created"),
        Err(e) => back_with("/catalog/new", &e),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let r = match catalog::get_resource(&state.db, &s.principal, &code, None).await {
        Ok(r) => r,
        Err(e) => return back_with("/catalog", &e),
    };
    let f = form_view_of(&r.document, &r.classification_code);
    let target = FormTarget {
        heading: format!("编辑 {}（第 {} 版）", r.document.name, r.version),
        action: format!("/catalog/{code}/edit"),
        cancel: format!("/catalog/{code}"),
        is_new: false,
    };
    edit_page(&state, &s, target, f, flash).await
}

pub async fn update(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Form(f): Form<EditForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let previous = catalog::get_resource(&state.db, &s.principal, &code, None).await.ok().map(|r| r.document);
    let doc = match document_of(&f, previous.as_ref()) {
        Ok(d) => d,
        Err(m) => return back_with(&format!("/catalog/{code}/edit"), &CatalogError::Validation { field: "form".into(), message: m }),
    };
    match catalog::update_draft(&state.db, &s.principal, &s.ctx(), &code, doc).await {
        Ok(_) => done(&format!("/catalog/{code}"), "saved"),
        Err(e) => back_with(&format!("/catalog/{code}/edit"), &e),
    }
}

// ------------------------------------------------------------------ review queue and statistics

pub struct QueueRow {
    code: String,
    name: String,
    provider: String,
    version: i64,
    sharing: &'static str,
}

#[derive(Template)]
#[template(path = "catalog_review.html")]
struct ReviewPage {
    l: Layout,
    rows: Vec<QueueRow>,
    overdue: Vec<catalog::ChangeEvent>,
}

pub async fn review_queue(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    if !catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false) {
        return plain_error(StatusCode::FORBIDDEN, "只有共享主管部门审核目录。");
    }
    let filter = catalog::ResourceFilter { awaiting_review: true, limit: 500, ..Default::default() };
    let rows = catalog::list_resources(&state.db, &s.principal, &filter)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| QueueRow {
            code: r.code.to_string(),
            name: r.name,
            provider: r.provider_name,
            version: r.latest_version,
            sharing: r.sharing_type.label_zh(),
        })
        .collect();
    let overdue = catalog::list_change_events(&state.db, &state.clock, None, true).await.unwrap_or_default();
    let page = ReviewPage { l: layout(&state, &s, "目录审核", "review", flash).await, rows, overdue };
    render(&page)
}

#[derive(Template)]
#[template(path = "catalog_stats.html")]
struct StatsPage {
    l: Layout,
    s: catalog::CatalogStats,
    shareable: String,
    open: String,
    /// Charts (`chart`): resources by class, by sharing type and by provider, each bar a link to the
    /// catalog filtered by it.
    by_class: String,
    by_type: String,
    by_department: String,
}

pub async fn stats(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let st = match catalog::stats(&state.db, &state.clock).await {
        Ok(x) => x,
        Err(e) => return back_with("/", &e),
    };
    use super::chart::{Bar, BarChart};
    let bars = |counts: &[catalog::Count], param: &str, label: &dyn Fn(&catalog::Count) -> String| {
        counts
            .iter()
            .map(|c| Bar {
                label: label(c),
                value: c.count,
                href: Some(format!("/catalog?{}", serde_urlencoded::to_string([(param, c.key.as_str())]).unwrap_or_default())),
            })
            .collect::<Vec<_>>()
    };
    let by_class = BarChart {
        testid: "chart-by-class",
        title: "已发布资源（按分类）".into(),
        bars: bars(&st.by_class, "class", &|c| format!("{} {}", c.key, c.label)),
    };
    let by_type = BarChart {
        testid: "chart-by-type",
        title: "已发布资源（按共享类型）".into(),
        bars: bars(&st.by_sharing_type, "sharing", &|c| c.label.clone()),
    };
    let by_department = BarChart {
        testid: "chart-by-department",
        title: "已发布资源（按提供部门）".into(),
        bars: bars(&st.by_department, "provider", &|c| c.label.clone()),
    };
    let page = StatsPage {
        l: layout(&state, &s, "目录统计", "stats", flash).await,
        shareable: format!("{:.1}%", st.shareable_share * 100.0),
        open: format!("{:.1}%", st.open_share * 100.0),
        by_class: by_class.html(),
        by_type: by_type.html(),
        by_department: by_department.html(),
        s: st,
    };
    render(&page)
}

// ------------------------------------------------------------------ import (portal)

#[derive(Template)]
#[template(path = "catalog_import.html")]
struct ImportPage {
    l: Layout,
    departments: Vec<(String, String)>,
}

pub async fn import_page(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let authority = catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false);
    let departments = shutong_identity::list_departments(&state.db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|d| authority || s.principal.has_role_in(Role::CatalogEditor, d.id))
        .map(|d| (d.credit_code, d.name))
        .collect();
    render(&ImportPage { l: layout(&state, &s, "导入目录", "import", flash).await, departments })
}

/// Starts an import from an uploaded file and shows its progress page; the import runs in the
/// background and the page refreshes itself until the report is ready.
pub async fn import_upload(State(state): State<AppState>, s: PortalSession, mut form: axum::extract::Multipart) -> Response {
    use shutong_catalog::transfer::{self, ImportLimits, ImportOptions, TransferFormat};
    let (mut csrf, mut file_name, mut bytes, mut department, mut submit) = (String::new(), String::new(), Vec::new(), None, false);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return plain_error(e.status(), &format!("上传失败：{}", e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            file_name = field.file_name().unwrap_or("catalog").to_string();
        }
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(e) => return plain_error(e.status(), &format!("上传失败：{}", e.body_text())),
        };
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&data).into_owned(),
            "file" => bytes = data.to_vec(),
            "department" => department = Some(String::from_utf8_lossy(&data).trim().to_string()).filter(|d| !d.is_empty()),
            "submit" => submit = true,
            _ => {}
        }
    }
    if let Some(r) = s.csrf_rejection(&csrf) {
        return r;
    }
    if bytes.is_empty() {
        return Redirect::to("/catalog/import?error=%E8%AF%B7%E9%80%89%E6%8B%A9%E6%96%87%E4%BB%B6").into_response();
    }
    let format = TransferFormat::of_path(&file_name).unwrap_or_else(|| transfer::sniff(&bytes));
    let id = {
        use rand::RngCore;
        let mut b = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut b);
        hex::encode(b)
    };
    let job =
        crate::state::ImportJob {
            owner: s.principal.user_id.map(|u| u.0), file_name, phase: "正在校验文件…".into(), ..Default::default()
        };
    if let Ok(mut jobs) = state.import_jobs.lock() {
        // Old finished jobs are dropped as new ones start.
        if jobs.len() > 100 {
            jobs.retain(|_, j| !j.finished);
        }
        jobs.insert(id.clone(), job);
    }
    let (principal, ctx, job_id, st) = (s.principal.clone(), s.ctx(), id.clone(), state.clone());
    tokio::spawn(async move {
        let parsed = tokio::task::spawn_blocking(move || transfer::parse(format, &bytes, &ImportLimits::default())).await;
        let entries = match parsed {
            Ok(Ok(e)) => e,
            Ok(Err(issues)) => {
                st.update_job(&job_id, |j| {
                    j.issues = issues;
                    j.phase = "校验未通过".into();
                    j.finished = true;
                });
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "import parsing task failed");
                st.update_job(&job_id, |j| {
                    j.phase = "内部错误".into();
                    j.finished = true;
                });
                return;
            }
        };
        let total = entries.len();
        st.update_job(&job_id, |j| {
            j.total = total;
            j.phase = format!("校验通过：{total} 条资源，正在导入…");
        });
        let progress_state = st.clone();
        let progress_id = job_id.clone();
        let progress = move |done: usize| progress_state.update_job(&progress_id, |j| j.done = done);
        let result =
            transfer::import(&st.db, &principal, &ctx, &entries, ImportOptions { submit, department_code: department }, &progress).await;
        match result {
            Ok(report) if report.issues.is_empty() => {
                st.update_job(&job_id, |j| {
                    j.done = total;
                    j.phase = "导入完成".into();
                    j.summary = Some(format!(
                        "已导入 {} 条资源（{} 个信息项）{}。",
                        report.resources,
                        report.items,
                        if submit { "，并已提交审核" } else { "，均为草稿" }
                    ));
                    j.finished = true;
                });
            }
            Ok(report) => st.update_job(&job_id, |j| {
                j.issues = report.issues;
                j.phase = "校验未通过".into();
                j.finished = true;
            }),
            Err(e) => {
                tracing::error!(error = %e, "portal import failed");
                st.update_job(&job_id, |j| {
                    j.phase = format!("导入失败：{e}");
                    j.finished = true;
                });
            }
        }
    });
    Redirect::to(&format!("/catalog/import/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "catalog_import_job.html")]
struct ImportJobPage {
    file_name: String,
    phase: String,
    done: usize,
    total: usize,
    running: bool,
    summary: Option<String>,
    issues: Vec<shutong_catalog::transfer::ImportIssue>,
}

pub async fn import_job(State(state): State<AppState>, s: PortalSession, Path(id): Path<String>) -> Response {
    let job = state.import_jobs.lock().ok().and_then(|jobs| jobs.get(&id).cloned());
    match job {
        Some(j) if j.owner == s.principal.user_id.map(|u| u.0) => render(&ImportJobPage {
            file_name: j.file_name,
            phase: j.phase,
            done: j.done,
            total: j.total.max(1),
            running: !j.finished,
            summary: j.summary,
            issues: j.issues,
        }),
        _ => plain_error(StatusCode::NOT_FOUND, "没有这个导入任务。"),
    }
}
