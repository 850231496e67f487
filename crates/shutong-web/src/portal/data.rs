//! 数据集: a resource's data on the platform — binding, schema, row count, freshness, last batches and their
//! reports, downloads for holders of a grant, and the provider's upload form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use shutong_exchange::{self as exchange, BatchRequest, DataFormat, ExchangeError, IngestMode, Input};
use shutong_identity::DepartmentId;
use shutong_sharing::AccessMethod;

use super::pages::{Flash, Layout, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

pub struct ColumnRow {
    name: String,
    data_type: &'static str,
    sharing: &'static str,
    mask: &'static str,
    key: bool,
    /// Whether this viewer receives the item (granted, or the provider).
    yours: bool,
}

pub struct BatchRow {
    id: i64,
    batch_id: String,
    mode: &'static str,
    status: &'static str,
    received: i64,
    upserted: i64,
    deleted: i64,
    rejected: i64,
    by: String,
    at: String,
}

pub struct FileRow {
    id: i64,
    name: String,
    size: i64,
    sha256: String,
    at: String,
    by: String,
}

#[derive(Template)]
#[template(path = "data_resource.html")]
struct DataPage {
    l: Layout,
    code: String,
    name: String,
    bound: bool,
    kind: &'static str,
    key_item: String,
    service_url: String,
    row_count: i64,
    last_seq: i64,
    freshness: String,
    columns: Vec<ColumnRow>,
    batches: Vec<BatchRow>,
    can_read_batches: bool,
    /// The viewer may download (a grant with 批量下载, or the provider).
    can_download: bool,
    /// Why not, when the viewer may not.
    download_note: String,
    can_load: bool,
    /// Bound as files (文件挂接): the file list replaces rows and batches.
    is_files: bool,
    files: Vec<FileRow>,
}

fn message(e: &ExchangeError) -> String {
    super::errors::exchange(e).text
}

fn batch_rows(list: Vec<exchange::BatchReport>) -> Vec<BatchRow> {
    list.into_iter()
        .map(|b| BatchRow {
            id: b.id,
            batch_id: b.batch_id,
            mode: b.mode.label_zh(),
            status: b.status.label_zh(),
            received: b.rows_received,
            upserted: b.rows_upserted,
            deleted: b.rows_deleted,
            rejected: b.rows_rejected,
            by: b.submitted_by,
            at: b.finished_at_ms.or(Some(b.started_at_ms)).map(fmt_time).unwrap_or_default(),
        })
        .collect()
}

pub async fn dataset(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Query(f): Query<Flash>,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let ex = &state.exchange;
    let p = match exchange::published(ex, &code).await {
        Ok(p) => p,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或尚未发布。"),
    };
    let binding = exchange::get_binding(ex, &code).await.ok().flatten();
    let provider = DepartmentId(p.provider.0);
    let can_read_batches = exchange::may_read_batches(ex, &s.principal, provider).await.unwrap_or(false);
    let can_load = exchange::may_load(&s.principal, provider);
    let (can_download, download_note, granted) = match exchange::authorize(ex, &s.principal, &code, AccessMethod::BulkDownload, None).await
    {
        Ok(a) => {
            let granted = a.items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
            match (a.binding.kind, exchange::whole_file_refusal(&a)) {
                (exchange::BindingKind::Files, Some(_)) => (
                    false,
                    "文件整体提供，平台无法按信息项裁剪、脱敏或按行过滤：需要覆盖全部信息项、允许明文且不限行范围的授权。".into(),
                    granted,
                ),
                (exchange::BindingKind::Files, None) => (true, String::new(), granted),
                _ => (a.binding.table_name.is_some(), String::new(), granted),
            }
        }
        Err(e) => (false, message(&e), Vec::new()),
    };
    let is_files = binding.as_ref().is_some_and(|b| b.kind == exchange::BindingKind::Files);
    let files = if is_files {
        exchange::list_files(ex, &code)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|f| FileRow { id: f.id, name: f.name, size: f.size, sha256: f.sha256, at: fmt_time(f.uploaded_at_ms), by: f.uploaded_by })
            .collect()
    } else {
        Vec::new()
    };
    let key_item = binding.as_ref().and_then(|b| b.key_item.clone()).unwrap_or_default();
    let columns = p
        .document
        .items
        .iter()
        .map(|i| ColumnRow {
            name: i.name.clone(),
            data_type: i.data_type.label_zh(),
            sharing: i.sharing_type.label_zh(),
            mask: i.mask.map(|m| m.as_str()).unwrap_or(""),
            key: i.name == key_item,
            yours: granted.contains(&i.name),
        })
        .collect();
    let batches = if can_read_batches && binding.is_some() {
        batch_rows(exchange::list_batches(ex, &s.principal, &code, 20).await.unwrap_or_default())
    } else {
        Vec::new()
    };
    let page = DataPage {
        l: layout(&state, &s, &format!("{} · 数据集", p.document.name), "catalog", f).await,
        name: p.document.name.clone(),
        bound: binding.is_some(),
        kind: binding.as_ref().map(|b| b.kind.label_zh()).unwrap_or("未挂接"),
        service_url: binding.as_ref().and_then(|b| b.service_url.clone()).unwrap_or_default(),
        row_count: binding.as_ref().map(|b| b.row_count).unwrap_or(0),
        last_seq: binding.as_ref().map(|b| b.last_seq).unwrap_or(0),
        freshness: binding.as_ref().and_then(|b| b.last_batch_at_ms).map(fmt_time).unwrap_or_else(|| "—".into()),
        key_item,
        columns,
        batches,
        can_read_batches,
        can_download,
        download_note,
        can_load,
        is_files,
        files,
        code: code.to_string(),
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "data_batch.html")]
struct BatchPage {
    l: Layout,
    code: String,
    r: exchange::BatchReport,
    mode: &'static str,
    status: &'static str,
    started: String,
    finished: String,
}

pub async fn batch(State(state): State<AppState>, s: PortalSession, Path((class, seq, id)): Path<(String, String, i64)>) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let r = match exchange::get_batch(&state.exchange, &s.principal, &code, exchange::BatchId(id)).await {
        Ok(r) => r,
        Err(e) => return plain_error(StatusCode::NOT_FOUND, &message(&e)),
    };
    let page = BatchPage {
        l: layout(&state, &s, &format!("批次 #{id}"), "catalog", Flash::default()).await,
        mode: r.mode.label_zh(),
        status: r.status.label_zh(),
        started: fmt_time(r.started_at_ms),
        finished: r.finished_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
        code: code.to_string(),
        r,
    };
    render(&page)
}

/// The provider's upload: the file is spooled to disk (never held in memory) and loaded as one batch.
pub async fn upload(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    mut form: axum::extract::Multipart,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let back = format!("/catalog/{code}/data");
    let back_err =
        |m: String| Redirect::to(&format!("{back}?{}", serde_urlencoded::to_string([("error", m)]).unwrap_or_default())).into_response();
    let dir = state.config.data_dir.join("tmp");
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        tracing::error!(error = %e, "creating the upload directory");
        return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "内部错误。");
    }
    // The mode as sent: an unknown or missing one is refused, never guessed (a full batch replaces the dataset).
    let (mut csrf, mut mode, mut all_or_nothing, mut file_name, mut path) = (String::new(), None::<String>, false, String::new(), None);
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return back_err(format!("上传失败：{}", e.body_text())),
        };
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "mode" => mode = Some(field.text().await.unwrap_or_default()),
            "all_or_nothing" => all_or_nothing = true,
            "file" => {
                file_name = field.file_name().unwrap_or("upload.csv").to_string();
                let p = dir.join(format!("portal-{}", uuid::Uuid::new_v4().simple()));
                let mut out = match tokio::fs::File::create(&p).await {
                    Ok(f) => f,
                    Err(_) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "内部错误。"),
                };
                loop {
                    match field.chunk().await {
                        Ok(Some(c)) => {
                            if tokio::io::AsyncWriteExt::write_all(&mut out, &c).await.is_err() {
                                let _ = tokio::fs::remove_file(&p).await;
                                return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "内部错误。");
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tokio::fs::remove_file(&p).await;
                            return back_err(format!("上传失败：{}", e.body_text()));
                        }
                    }
                }
                path = Some(p);
            }
            _ => {}
        }
    }
    if let Some(r) = s.csrf_rejection(&csrf) {
        if let Some(p) = path {
            let _ = tokio::fs::remove_file(p).await;
        }
        return r;
    }
    let mode = match mode.as_deref().map(|m| (m, IngestMode::parse(m))) {
        Some((_, Some(m))) => m,
        Some((m, None)) => {
            let _ = path.as_ref().map(std::fs::remove_file);
            return back_err(format!("导入方式「{m}」无效：应为全量（full）或增量（incremental）。"));
        }
        None => {
            let _ = path.as_ref().map(std::fs::remove_file);
            return back_err("请选择导入方式（全量或增量）。".into());
        }
    };
    let Some(path) = path else { return back_err("请选择文件。".into()) };
    let lower = file_name.to_ascii_lowercase();
    let format = if lower.ends_with(".xlsx") {
        DataFormat::Xlsx
    } else if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        DataFormat::Ndjson
    } else {
        DataFormat::Csv
    };
    let req = BatchRequest {
        resource_code: code.clone(),
        mode,
        format,
        batch_id: None,
        delimiter: None,
        encoding: None,
        all_or_nothing,
        part: None,
    };
    let result = exchange::ingest(&state.exchange, &s.principal, &s.ctx(), req, Input::File(path.clone())).await;
    let _ = tokio::fs::remove_file(&path).await;
    match result {
        Ok(r) => Redirect::to(&format!("{back}/batches/{}", r.id)).into_response(),
        Err(ExchangeError::BatchRejected { report, .. }) => Redirect::to(&format!("{back}/batches/{}", report.id)).into_response(),
        Err(e) => back_err(message(&e)),
    }
}

/// The provider's file upload (文件挂接): streamed to the files directory with its digest.
pub async fn upload_file(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    mut form: axum::extract::Multipart,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let back = format!("/catalog/{code}/data");
    let redirect = |key: &str, m: String| {
        Redirect::to(&format!("{back}?{}", serde_urlencoded::to_string([(key, m)]).unwrap_or_default())).into_response()
    };
    // The CSRF field comes first in the form: checked before any byte of the file is stored.
    let csrf = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    if let Some(r) = s.csrf_rejection(&csrf) {
        return r;
    }
    let limit = state.config.exchange.max_upload_mb * 1024 * 1024;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return redirect("error", "请选择文件。".into()),
            Err(e) => return redirect("error", format!("上传失败：{}", e.body_text())),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_string();
        let media_type = field.content_type().map(str::to_string);
        let stream = futures_util::stream::unfold(field, |mut f| async move {
            match f.chunk().await {
                Ok(Some(c)) => Some((Ok(c), f)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.body_text())), f)),
            }
        });
        let new = exchange::NewFile { name: &name, media_type: media_type.as_deref(), limit };
        return match exchange::upload_file(&state.exchange, &s.principal, &s.ctx(), &code, new, stream).await {
            Ok(f) => redirect("ok", format!("已上传 {}（{} 字节）", f.name, f.size)),
            Err(e) => redirect("error", message(&e)),
        };
    }
}
