//! The resource catalog (政务信息资源目录). Resource codes contain a slash (`101001/000042`), so routes
//! take them as two path segments: `/api/v1/catalog/resources/{classification}/{sequence}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use shutong_api_types::catalog::{
    CatalogStats, ChangeEvent, Classification, CreateChangeEventRequest, CreateClassificationRequest, CreateProjectRequest,
    CreateResourceRequest, ImportReport, Project, ResourceDocument, ResourceList, ResourceView, ReviewRequest, SearchResults,
    VersionSummary, WithdrawRequest,
};
use shutong_catalog::{self as catalog, NewResource, ResourceFilter, ReviewDecision, VersionStatus};
use shutong_identity::DepartmentId;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// A list of domain values as their wire shapes.
pub(crate) fn wire<D, W: From<D>>(v: Vec<D>) -> Vec<W> {
    v.into_iter().map(W::from).collect()
}

/// A resource code from its two path segments, parsed once: the services take it typed.
pub(crate) fn code_of(class: &str, seq: &str) -> ApiResult<catalog::ResourceCode> {
    catalog::ResourceCode::parse(&format!("{class}/{seq}")).map_err(|e| ApiError::validation("code", format!("code: {e}")))
}

/// Creates a resource as a draft (version 1); the platform gives it its code.
#[utoipa::path(post, path = "/api/v1/catalog/resources", tag = "catalog", security(("bearer" = [])), request_body = CreateResourceRequest,
    responses((status = 201, body = ResourceView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_resource(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateResourceRequest>,
) -> ApiResult<(StatusCode, axum::Json<ResourceView>)> {
    let view = catalog::create_resource(
        &state.db,
        &caller.principal,
        &caller.ctx(),
        NewResource {
            classification_code: req.classification_code.trim().to_string(),
            provider: req.provider_department_id.map(DepartmentId),
            document: req.document.into(),
            project: req.project_id.map(catalog::ProjectId),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(view.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub provider_department_id: Option<i64>,
    /// draft, submitted, returned, published, withdrawn.
    pub status: Option<String>,
    /// A classification code; resources under it.
    pub classification: Option<String>,
    /// Only resources whose latest version waits for review (the authority's queue).
    #[serde(default)]
    pub awaiting_review: bool,
    /// Cursor: the `next_after` of the previous page.
    pub after: Option<String>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
}

/// Lists resources: published ones for everyone, the others for their provider, the authority and auditors.
#[utoipa::path(get, path = "/api/v1/catalog/resources", tag = "catalog", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = ResourceList)))]
pub async fn list_resources(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ResourceList>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            VersionStatus::parse(s)
                .ok_or_else(|| ApiError::validation("status", format!("status: '{s}' is not one of {}", VersionStatus::expected())))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 1000"));
    }
    let resources = catalog::list_resources(
        &state.db,
        &caller.principal,
        &ResourceFilter {
            provider: q.provider_department_id.map(DepartmentId),
            status,
            classification_prefix: classification_param(q.classification)?,
            awaiting_review: q.awaiting_review,
            after: q.after,
            limit,
        },
    )
    .await?;
    let next_after = (resources.len() as i64 == limit).then(|| resources.last().map(|r| r.code.to_string())).flatten();
    Ok(axum::Json(ResourceList { resources: resources.into_iter().map(Into::into).collect(), next_after }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    /// A version number; default the latest one the caller may see.
    pub version: Option<i64>,
}

/// A resource at a version, with its items (`?version=N` for an older one).
#[utoipa::path(get, path = "/api/v1/catalog/resources/{classification}/{sequence}", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), VersionQuery),
    responses((status = 200, body = ResourceView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(catalog::get_resource(&state.db, &caller.principal, &code, q.version).await?.into()))
}

/// Replaces the draft's document (the latest version must be a draft or returned).
#[utoipa::path(put, path = "/api/v1/catalog/resources/{classification}/{sequence}", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = ResourceDocument,
    responses((status = 200, body = ResourceView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(doc): ApiJson<ResourceDocument>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    let view = catalog::update_draft(&state.db, &caller.principal, &caller.ctx(), &code, doc.into()).await?;
    Ok(axum::Json(view.into()))
}

/// The version history.
#[utoipa::path(get, path = "/api/v1/catalog/resources/{classification}/{sequence}/versions", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), responses((status = 200, body = [VersionSummary])))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<VersionSummary>>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(wire(catalog::list_versions(&state.db, &caller.principal, &code).await?)))
}

/// Submits the draft for review; every rule (R-CAT-1 … R-CAT-4) must hold, or all violations are listed.
#[utoipa::path(post, path = "/api/v1/catalog/resources/{classification}/{sequence}/submit", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn submit_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    let view = catalog::submit(&state.db, &caller.principal, &caller.ctx(), &code).await?;
    Ok(axum::Json(view.into()))
}

/// The sharing authority approves (publishes) or returns a submission.
#[utoipa::path(post, path = "/api/v1/catalog/resources/{classification}/{sequence}/review", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = ResourceView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn review_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    let decision = match req.decision.as_str() {
        "approve" => ReviewDecision::Approve,
        "return" => ReviewDecision::Return { reason: req.reason.unwrap_or_default() },
        other => return Err(ApiError::validation("decision", format!("decision: '{other}' is not approve or return"))),
    };
    let view = catalog::review(&state.db, &state.clock, &caller.principal, &caller.ctx(), &code, decision).await?;
    Ok(axum::Json(view.into()))
}

/// Opens a new version of a published resource as a draft.
#[utoipa::path(post, path = "/api/v1/catalog/resources/{classification}/{sequence}/revise", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 409, body = ErrorEnvelope)))]
pub async fn revise_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    let view = catalog::revise(&state.db, &caller.principal, &caller.ctx(), &code).await?;
    Ok(axum::Json(view.into()))
}

/// Withdraws a published resource, with a reason.
#[utoipa::path(post, path = "/api/v1/catalog/resources/{classification}/{sequence}/withdraw", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = WithdrawRequest,
    responses((status = 200, body = ResourceView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn withdraw_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(req): ApiJson<WithdrawRequest>,
) -> ApiResult<axum::Json<ResourceView>> {
    let code = code_of(&class, &seq)?;
    let view = catalog::withdraw(&state.db, &caller.principal, &caller.ctx(), &code, &req.reason).await?;
    Ok(axum::Json(view.into()))
}

/// The resource's history: every state change with who, when and why (from the audit trail).
#[utoipa::path(get, path = "/api/v1/catalog/resources/{classification}/{sequence}/history", tag = "catalog", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), responses((status = 200, body = AuditEventList)))]
pub async fn resource_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<shutong_api_types::AuditEventList>> {
    let code = code_of(&class, &seq)?;
    // Visibility follows the resource's.
    catalog::get_resource(&state.db, &caller.principal, &code, None).await?;
    let events = shutong_audit::list_for_target(&state.db, "catalog_resource", code.as_str()).await?;
    Ok(axum::Json(shutong_api_types::AuditEventList { events: events.iter().map(super::views::audit_view).collect(), next_before: None }))
}

/// The classification tree (类/项/目/细目).
#[utoipa::path(get, path = "/api/v1/catalog/classifications", tag = "catalog", responses((status = 200, body = [Classification])))]
pub async fn list_classifications(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Classification>>> {
    Ok(axum::Json(wire(catalog::list_classifications(&state.db).await?)))
}

/// Adds a classification node (the sharing authority).
#[utoipa::path(post, path = "/api/v1/catalog/classifications", tag = "catalog", security(("bearer" = [])), request_body = CreateClassificationRequest,
    responses((status = 201, body = Classification), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_classification(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateClassificationRequest>,
) -> ApiResult<(StatusCode, axum::Json<Classification>)> {
    let c = catalog::create_classification(&state.db, &caller.principal, &caller.ctx(), &req.code, &req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(c.into())))
}

/// Catalog statistics: by class, department and sharing type; shareable and open shares; overdue updates.
#[utoipa::path(get, path = "/api/v1/catalog/stats", tag = "catalog", responses((status = 200, body = CatalogStats)))]
pub async fn stats(State(state): State<AppState>) -> ApiResult<axum::Json<CatalogStats>> {
    Ok(axum::Json(catalog::stats(&state.db, &state.clock).await?.into()))
}

/// Records a change obliging a department to update its catalog within 15 working days (办法 第九条).
#[utoipa::path(post, path = "/api/v1/catalog/change-events", tag = "catalog", security(("bearer" = [])), request_body = CreateChangeEventRequest,
    responses((status = 201, body = ChangeEvent), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_change_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateChangeEventRequest>,
) -> ApiResult<(StatusCode, axum::Json<ChangeEvent>)> {
    let occurred = NaiveDate::parse_from_str(req.occurred_on.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::validation("occurred_on", format!("occurred_on: '{}' is not a date YYYY-MM-DD", req.occurred_on)))?;
    let calendar = state.calendar();
    let new = catalog::NewChangeEvent {
        department: DepartmentId(req.department_id),
        kind: &req.kind,
        description: &req.description,
        occurred_on: occurred,
    };
    let e = catalog::record_change_event(&state.db, &state.clock, &calendar, &caller.principal, &caller.ctx(), new).await?;
    Ok((StatusCode::CREATED, axum::Json(e.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangeEventQuery {
    pub department_id: Option<i64>,
    /// Only open events past their deadline.
    #[serde(default)]
    pub overdue: bool,
}

/// Change events; `?overdue=true` is the list of departments late in updating their catalog.
#[utoipa::path(get, path = "/api/v1/catalog/change-events", tag = "catalog", security(("bearer" = [])), params(ChangeEventQuery),
    responses((status = 200, body = [ChangeEvent])))]
pub async fn list_change_events(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<ChangeEventQuery>,
) -> ApiResult<axum::Json<Vec<ChangeEvent>>> {
    Ok(axum::Json(wire(catalog::list_change_events(&state.db, &state.clock, q.department_id.map(DepartmentId), q.overdue).await?)))
}

use shutong_api_types::{AuditEventList, ErrorEnvelope};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text (Chinese word segmentation); empty lists the newest.
    #[serde(default)]
    pub q: String,
    /// Classification code (类, 项, 目 …): the resource and everything under it.
    pub class: Option<String>,
    /// Provider department ID.
    pub provider: Option<String>,
    /// GB/T 2260 region code of the provider.
    pub region: Option<String>,
    /// unconditional, conditional, not_shared.
    pub sharing: Option<String>,
    /// true or false.
    pub open: Option<String>,
    /// database, electronic_file, spreadsheet, image, streaming, self_describing, service_interface.
    pub format: Option<String>,
    /// realtime, daily, weekly, monthly, quarterly, half_yearly, yearly, irregular.
    pub cycle: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Searches the published catalog in Chinese, with facets and cursor pagination.
#[utoipa::path(get, path = "/api/v1/catalog/search", tag = "catalog", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 422, body = ErrorEnvelope)))]
pub async fn search(State(state): State<AppState>, Query(q): Query<SearchQuery>) -> ApiResult<axum::Json<SearchResults>> {
    let mut filters = Vec::new();
    for (dim, v) in [
        ("class", &q.class),
        ("provider", &q.provider),
        ("region", &q.region),
        ("sharing", &q.sharing),
        ("open", &q.open),
        ("format", &q.format),
        ("cycle", &q.cycle),
    ] {
        // Passed as sent: the search refuses a value its facet cannot hold (surrounding spaces included).
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            filters.push((dim.to_string(), v.to_string()));
        }
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 100"));
    }
    let req = shutong_catalog::search::SearchRequest { q: q.q, filters, limit, cursor: q.cursor };
    let mut results = state.catalog_index.search(&req)?;
    label_facets(&state, &mut results).await;
    Ok(axum::Json(results.into()))
}

/// A classification filter: empty means none; anything else must be a classification code.
fn classification_param(v: Option<String>) -> ApiResult<Option<String>> {
    match v.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if catalog::is_classification_code(&v) => Ok(Some(v)),
        Some(v) => Err(ApiError::validation("classification", format!("classification: '{v}' is not a classification code"))),
    }
}

/// Names the provider and classification facet values (department and classification names).
pub async fn label_facets(state: &AppState, results: &mut shutong_catalog::search::SearchResults) {
    if let Some(providers) = results.facets.get_mut("provider") {
        let names: std::collections::HashMap<String, String> = shutong_identity::list_departments(&state.db)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.id.to_string(), d.name))
            .collect();
        for p in providers.iter_mut() {
            if let Some(n) = names.get(&p.value) {
                p.label = n.clone();
            }
        }
    }
    if let Some(classes) = results.facets.get_mut("class") {
        let names: std::collections::HashMap<String, String> =
            catalog::list_classifications(&state.db).await.unwrap_or_default().into_iter().map(|c| (c.code, c.name)).collect();
        for c in classes.iter_mut() {
            if let Some(n) = names.get(&c.value) {
                c.label = format!("{} {n}", c.value);
            }
        }
    }
    if let Some(regions) = results.facets.get_mut("region") {
        let table = state.regions();
        for r in regions.iter_mut() {
            if let Ok((_, e)) = table.lookup(&r.value) {
                r.label = e.name.clone();
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// xlsx, csv or json; default from the content type, else sniffed.
    pub format: Option<String>,
    /// The 统一社会信用代码 of the department whose catalog this is (fills empty 提供方代码).
    pub department: Option<String>,
    /// Submit the imported resources for review at once.
    #[serde(default)]
    pub submit: bool,
    /// Check only; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Imports a catalog file (the body: XLSX, CSV or JSON). Every row is checked against every rule; on
/// any problem nothing is imported and the 422 error lists each issue (sheet, row, column, reason) in
/// `violations`.
#[utoipa::path(post, path = "/api/v1/catalog/import", tag = "catalog", security(("bearer" = [])), params(ImportQuery),
    request_body(content = Vec<u8>, description = "the file", content_type = "application/octet-stream"),
    responses((status = 200, body = ImportReport), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<axum::Json<ImportReport>> {
    use shutong_catalog::transfer::{self, ImportLimits, ImportOptions, TransferFormat};
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the file is larger than {} MB", super::IMPORT_LIMIT >> 20),
        )
    };
    // A declared length over the limit is refused before any of the body is read.
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > super::IMPORT_LIMIT as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, super::IMPORT_LIMIT).await.map_err(|_| too_large())?;
    let format = match q.format.as_deref() {
        Some(f) => {
            TransferFormat::parse(f).ok_or_else(|| ApiError::validation("format", format!("format: '{f}' is not xlsx, csv or json")))?
        }
        None => {
            let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if ct.contains("spreadsheetml") {
                TransferFormat::Xlsx
            } else if ct.contains("csv") {
                TransferFormat::Csv
            } else if ct.contains("json") {
                TransferFormat::Json
            } else {
                transfer::sniff(&body)
            }
        }
    };
    let reject = |issues: Vec<transfer::ImportIssue>| {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_rejected",
            format!("nothing imported: {} issue(s); see violations", issues.len()),
        );
        e.field = issues.first().map(|i| format!("{}!{}{}", i.sheet, i.column, i.row));
        e.violations = serde_json::to_value(&issues).ok().map(Box::new);
        e
    };
    let parsed = tokio::task::spawn_blocking(move || transfer::parse(format, &body, &ImportLimits::default()))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let entries = parsed.map_err(reject)?;
    let options = ImportOptions { submit: q.submit, department_code: q.department };
    if q.dry_run {
        return Ok(axum::Json(ImportReport {
            format: format!("{format:?}").to_lowercase(),
            resources: entries.len(),
            items: entries.iter().map(|e| e.document.items.len()).sum(),
            committed: false,
            codes: vec![],
            issues: vec![],
        }));
    }
    let mut report = transfer::import(&state.db, &caller.principal, &caller.ctx(), &entries, options, &|_| {}).await?;
    if !report.issues.is_empty() {
        return Err(reject(report.issues));
    }
    report.format = format!("{format:?}").to_lowercase();
    Ok(axum::Json(report.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// xlsx (default), csv or json.
    pub format: Option<String>,
    pub provider_department_id: Option<i64>,
    /// A resource status; default: what the caller may see.
    pub status: Option<String>,
    pub classification: Option<String>,
}

/// Exports the catalog the caller may see, in the shape the import reads.
#[utoipa::path(get, path = "/api/v1/catalog/export", tag = "catalog", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn export(State(state): State<AppState>, caller: Caller, Query(q): Query<ExportQuery>) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use shutong_catalog::transfer::{self, TransferFormat};
    let format = match q.format.as_deref() {
        Some(f) => {
            TransferFormat::parse(f).ok_or_else(|| ApiError::validation("format", format!("format: '{f}' is not xlsx, csv or json")))?
        }
        None => TransferFormat::Xlsx,
    };
    let status = q
        .status
        .as_deref()
        .map(|s| {
            VersionStatus::parse(s)
                .ok_or_else(|| ApiError::validation("status", format!("status: '{s}' is not one of {}", VersionStatus::expected())))
        })
        .transpose()?;
    let filter = ResourceFilter {
        provider: q.provider_department_id.map(DepartmentId),
        status,
        classification_prefix: classification_param(q.classification)?,
        limit: 1000,
        ..Default::default()
    };
    let entries = transfer::export_entries(&state.db, &caller.principal, &filter).await?;
    let bytes = tokio::task::spawn_blocking(move || transfer::write(format, &entries)).await.map_err(|e| ApiError::internal(&e))??;
    let ext = format!("{format:?}").to_lowercase();
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, format.content_type().to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"catalog.{ext}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// Registers an information project whose catalog is compiled before approval (R-CAT-8, 第二十二条).
#[utoipa::path(post, path = "/api/v1/catalog/projects", tag = "catalog", security(("bearer" = [])), request_body = CreateProjectRequest,
    responses((status = 201, body = Project), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateProjectRequest>,
) -> ApiResult<(StatusCode, axum::Json<Project>)> {
    let p = catalog::create_project(&state.db, &caller.principal, &caller.ctx(), DepartmentId(req.department_id), &req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

/// Projects and their catalogs.
#[utoipa::path(get, path = "/api/v1/catalog/projects", tag = "catalog", security(("bearer" = [])), responses((status = 200, body = [Project])))]
pub async fn list_projects(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<Vec<Project>>> {
    Ok(axum::Json(wire(catalog::list_projects(&state.db).await?)))
}

/// Accepts a project: its catalog is merged into the platform catalog, all entries or none.
#[utoipa::path(post, path = "/api/v1/catalog/projects/{id}/accept", tag = "catalog", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Project), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn accept_project(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(catalog::accept_project(&state.db, &caller.principal, &caller.ctx(), catalog::ProjectId(id)).await?.into()))
}
