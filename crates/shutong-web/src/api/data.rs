//! 共享交换: bindings, batches, lookup, query, export, the change feed, the service proxy and the exemption
//! check. Resource codes are two path segments (`/api/v1/data/101/000001/…`).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use shutong_api_types::exchange::{
    BatchList, BatchReport, BindingView, ChangePage, DatasetView, ExemptionAnswer, ExemptionQuery, FileList, FileView, FreshnessList,
    NewBinding, QuerySpec, RecordPage,
};
use shutong_exchange::{self as exchange, BatchRequest, DataFormat, IngestMode, Input, ProxyCall};
use utoipa::IntoParams;

use super::catalog::wire;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use shutong_api_types::ErrorEnvelope;

use super::catalog::code_of;

/// The upload limit in bytes (`exchange.max_upload_mb`); a declared length beyond it is refused before the
/// body is read (413). A body without a declared length is counted as it streams.
fn upload_limit(state: &AppState, headers: &HeaderMap, advice: &str) -> ApiResult<u64> {
    let limit = state.config.exchange.max_upload_mb * 1024 * 1024;
    match headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        Some(len) if len > limit => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the upload is {len} bytes; the limit is {limit} (exchange.max_upload_mb): {advice}"),
        )),
        _ => Ok(limit),
    }
}

/// Reads and drops what is left of an upload answered without being read (a re-sent batch, a refusal), so that a
/// client still sending receives the answer rather than a reset connection. At most `limit` bytes and two minutes;
/// nothing when the client sent `Expect: 100-continue`, since it waits for the answer before sending.
async fn discard(mut body: axum::body::BodyDataStream, headers: &HeaderMap, limit: u64) {
    if headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")) {
        return;
    }
    let drain = async move {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(120), drain).await;
}

/// 数据时效: the datasets the caller may follow (its department's as provider; every one for the sharing
/// authority and auditors), each against its catalog entry's 更新周期, most overdue first.
#[utoipa::path(get, path = "/api/v1/data/freshness", tag = "data", security(("bearer" = [])),
    responses((status = 200, body = FreshnessList)))]
pub async fn freshness(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<FreshnessList>> {
    let list = exchange::figures::freshness(&state.exchange, &caller.principal).await?;
    Ok(axum::Json(FreshnessList { datasets: list.into_iter().map(Into::into).collect() }))
}

/// The binding of a resource to its data, with its row count and last update.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = DatasetView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    _caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<DatasetView>> {
    let code = code_of(&class, &seq)?;
    exchange::published(&state.exchange, &code).await?;
    let binding = exchange::get_binding(&state.exchange, &code).await?.ok_or_else(|| ApiError::not_found("binding"))?;
    Ok(axum::Json(DatasetView { binding: binding.into() }))
}

/// 挂接: binds a published resource to a pooled dataset, the provider's service, or files.
#[utoipa::path(put, path = "/api/v1/data/{classification}/{sequence}/binding", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = NewBinding,
    responses((status = 200, body = BindingView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewBinding>,
) -> ApiResult<axum::Json<BindingView>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(exchange::bind(&state.exchange, &caller.principal, &caller.ctx(), &code, body.into()).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// full (全量, replaces the dataset) or incremental (增量, upserts and deletions by key; `_op` column).
    pub mode: Option<String>,
    /// csv, ndjson or xlsx; default from Content-Type, else csv.
    pub format: Option<String>,
    /// The client's batch ID: re-sending the same ID returns the first delivery's report.
    pub batch_id: Option<String>,
    /// CSV delimiter: `,` (default), `;`, `tab` or `|`.
    pub delimiter: Option<String>,
    /// utf-8 or gbk; default detected.
    pub encoding: Option<String>,
    /// Refuse the whole batch when any row is rejected.
    #[serde(default)]
    pub all_or_nothing: bool,
    /// A full batch uploaded in parts (分片上传): this part's number, 1, 2, … in order, each under the
    /// batch's one `batch_id`. A part already received is answered 200 with the batch's report; a new part
    /// 202, its rows loaded but not yet visible; the `last` part 201, the batch committed.
    pub part: Option<i64>,
    /// With `part`: the last part, which commits the batch (a batch sent whole is its own last part).
    #[serde(default)]
    pub last: bool,
}

fn format_of(q: Option<&str>, headers: &HeaderMap) -> ApiResult<DataFormat> {
    if let Some(f) = q.filter(|f| !f.trim().is_empty()) {
        return DataFormat::parse(f)
            .ok_or_else(|| ApiError::validation("format", format!("format: '{f}' is not csv, ndjson, xlsx or parquet")));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    Ok(if ct.contains("ndjson") || ct.contains("jsonl") {
        DataFormat::Ndjson
    } else if ct.contains("spreadsheetml") {
        DataFormat::Xlsx
    } else {
        DataFormat::Csv
    })
}

/// 数据归集: a batch, streamed. CSV (UTF-8 or GBK), NDJSON or XLSX; the header names the items. Valid rows
/// commit atomically; the report lists every rejected row. 201 for a new batch, 200 for a re-sent one.
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/batches", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), BatchQuery),
    request_body(content = String, content_type = "text/csv", description = "The rows, with a header naming the items"),
    responses((status = 201, body = BatchReport), (status = 200, body = BatchReport), (status = 202, body = BatchReport), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn post_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let code = code_of(&class, &seq)?;
    let mode = match q.mode.as_deref().filter(|m| !m.trim().is_empty()) {
        None => IngestMode::Full,
        Some(m) => IngestMode::parse(m).ok_or_else(|| ApiError::validation("mode", format!("mode: '{m}' is not full or incremental")))?,
    };
    let format = format_of(q.format.as_deref(), &headers)?;
    let delimiter = match q.delimiter.as_deref() {
        None | Some("") | Some(",") => None,
        Some(";") => Some(b';'),
        Some("tab") | Some("\t") => Some(b'\t'),
        Some("|") => Some(b'|'),
        Some(d) => return Err(ApiError::validation("delimiter", format!("delimiter: '{d}' is not one of , ; tab |"))),
    };
    let limit = upload_limit(&state, &headers, "split it into incremental batches")?;
    let part = q.part.map(|number| exchange::Part { number, last: q.last });
    let req = BatchRequest {
        resource_code: code,
        mode,
        format,
        batch_id: q.batch_id,
        delimiter,
        encoding: q.encoding,
        all_or_nothing: q.all_or_nothing,
        part,
    };
    let ex = &state.exchange;
    match exchange::prepare(ex, &caller.principal, &req).await {
        Ok(Ok(())) => {}
        Ok(Err(done)) => {
            discard(body.into_data_stream(), &headers, limit).await;
            return Ok((StatusCode::OK, axum::Json(BatchReport::from(done))).into_response());
        }
        Err(e) => {
            discard(body.into_data_stream(), &headers, limit).await;
            return Err(e.into());
        }
    }
    // The body, counted against the limit as it streams.
    let mut seen = 0u64;
    let stream = body.into_data_stream().map(move |chunk| match chunk {
        Ok(bytes) => {
            seen += bytes.len() as u64;
            if seen > limit { Err(std::io::Error::other("length limit exceeded")) } else { Ok(bytes) }
        }
        Err(e) => Err(std::io::Error::other(e)),
    });
    let input = if format == DataFormat::Xlsx {
        // A workbook is a zip archive: spool it to disk (never to memory), then read it.
        let dir = state.config.data_dir.join("tmp");
        tokio::fs::create_dir_all(&dir).await.map_err(|e| ApiError::internal(&e))?;
        let path = dir.join(format!("upload-{}.xlsx", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| ApiError::internal(&e))?;
        let mut stream = Box::pin(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(if e.to_string().contains("length limit") {
                        ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload_too_large",
                            format!("the upload is larger than {limit} bytes"),
                        )
                    } else {
                        ApiError::bad_request(format!("the upload broke off: {e}"))
                    });
                }
            };
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await.map_err(|e| ApiError::internal(&e))?;
        }
        Input::File(path)
    } else {
        let reader = tokio_util::io::StreamReader::new(stream);
        Input::Reader(Box::new(tokio_util::io::SyncIoBridge::new(reader)))
    };
    let spooled = if let Input::File(p) = &input { Some(p.clone()) } else { None };
    let result = exchange::ingest(ex, &caller.principal, &caller.ctx(), req, input).await;
    if let Some(p) = spooled {
        let _ = tokio::fs::remove_file(p).await;
    }
    let report = result?;
    let status = if report.replayed {
        StatusCode::OK
    } else if report.status == exchange::BatchStatus::Loading {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(BatchReport::from(report))).into_response())
}

/// The last batches of a dataset (the provider, the authority, auditors).
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/batches", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = BatchList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_batches(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<BatchList>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(BatchList { batches: wire(exchange::list_batches(&state.exchange, &caller.principal, &code, 50).await?) }))
}

/// One batch's report with its rejected rows.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/batches/{id}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = BatchReport), (status = 404, body = ErrorEnvelope)))]
pub async fn get_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq, id)): Path<(String, String, i64)>,
) -> ApiResult<axum::Json<BatchReport>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(exchange::get_batch(&state.exchange, &caller.principal, &code, exchange::BatchId(id)).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// Which grant to use when several are in force.
    pub grant_id: Option<i64>,
}

/// 联机查询: one record by its key (identifiers are normalised: 15 → 18 digits, x → X).
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/records/{key}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ("key" = String, Path), GrantQuery),
    responses((status = 200, body = Object), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq, key)): Path<(String, String, String)>,
    Query(q): Query<GrantQuery>,
) -> ApiResult<axum::Json<shutong_exchange::Record>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(
        exchange::lookup(&state.exchange, &caller.principal, &caller.ctx(), &code, &key, q.grant_id.map(shutong_sharing::GrantId)).await?,
    ))
}

/// 联机查询: records matching conditions on granted items, in key order, by pages.
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/query", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = QuerySpec,
    responses((status = 200, body = RecordPage), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(spec): ApiJson<QuerySpec>,
) -> ApiResult<axum::Json<RecordPage>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(exchange::query(&state.exchange, &caller.principal, &caller.ctx(), &code, &spec.into()).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// csv (default), ndjson or parquet.
    pub format: Option<String>,
    pub grant_id: Option<i64>,
}

/// 批量下载: the dataset within the grant, streamed.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/export", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ExportQuery),
    responses((status = 200, description = "CSV, NDJSON or Parquet", content_type = "text/csv"), (status = 403, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let code = code_of(&class, &seq)?;
    let format = match q.format.as_deref().filter(|f| !f.trim().is_empty()) {
        None => DataFormat::Csv,
        Some(f) => DataFormat::parse(f)
            .filter(|f| *f != DataFormat::Xlsx)
            .ok_or_else(|| ApiError::validation("format", format!("format: '{f}' is not csv, ndjson or parquet")))?,
    };
    let ex = exchange::export(&state.exchange, &caller.principal, &caller.ctx(), &code, format, q.grant_id.map(shutong_sharing::GrantId))
        .await?;
    let stream = tokio_stream_from(ex.body);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ex.content_type)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", ex.file_name))
        .header("x-shutong-records", ex.records_hint.to_string())
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(&e))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The last sequence number already applied (0: from the start).
    pub since: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
    pub grant_id: Option<i64>,
    /// Long-poll: when nothing follows `since`, wait up to this long (ms, at most
    /// `exchange.changes_max_wait_ms`) for the next commit and answer as soon as it comes. Default 0.
    pub wait_ms: Option<i64>,
}

/// 订阅: the changes after `since`; with `wait_ms`, waits for the next change (long-poll).
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/changes", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ChangesQuery),
    responses((status = 200, body = ChangePage), (status = 403, body = ErrorEnvelope)))]
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<axum::Json<ChangePage>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(
        exchange::changes(
            &state.exchange,
            &caller.principal,
            &caller.ctx(),
            &code,
            exchange::FeedRead {
                since: q.since.unwrap_or(0),
                limit: q.limit,
                grant: q.grant_id.map(shutong_sharing::GrantId),
                wait_ms: q.wait_ms,
            },
        )
        .await?
        .into(),
    ))
}

/// 系统对接: a call to the provider's service through the platform, filtered to the grant.
#[utoipa::path(post, path = "/api/v1/services/{classification}/{sequence}/{path}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ("path" = String, Path), GrantQuery),
    request_body(content = String, content_type = "application/json", description = "Passed to the provider's service (any method)"),
    responses((status = 200, description = "The provider's answer, filtered"), (status = 403, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)))]
pub async fn service_proxy(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((class, seq, path)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let code = code_of(&class, &seq)?;
    // grant_id is the platform's own parameter; the rest of the query goes to the provider.
    let mut grant = None;
    let mut rest = Vec::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("grant_id=") {
            Some(g) => {
                grant = Some(shutong_sharing::GrantId(
                    g.parse::<i64>().map_err(|_| ApiError::validation("grant_id", "grant_id: not a number"))?,
                ))
            }
            None => rest.push(pair),
        }
    }
    let call = ProxyCall {
        method: method.as_str().to_string(),
        path,
        query: Some(rest.join("&")),
        content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        body,
        grant,
    };
    let answer = exchange::proxy(&state.exchange, &caller.principal, &caller.ctx(), &code, call).await?;
    let mut res = Response::builder().status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY));
    if let Some(ct) = answer.content_type {
        res = res.header(header::CONTENT_TYPE, ct);
    }
    res.body(Body::from(answer.body)).map_err(|e| ApiError::internal(&e))
}

/// 免提交: which of the items a service needs the caller's department can fetch from the platform for
/// this subject (and, with `fetch`, their values), so that the applicant is not asked for them again.
#[utoipa::path(post, path = "/api/v1/exemptions/check", tag = "data", security(("bearer" = [])), request_body = ExemptionQuery,
    responses((status = 200, body = ExemptionAnswer), (status = 422, body = ErrorEnvelope)))]
pub async fn exemption_check(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(q): ApiJson<ExemptionQuery>,
) -> ApiResult<axum::Json<ExemptionAnswer>> {
    Ok(axum::Json(exchange::check_exemption(&state.exchange, &caller.principal, &caller.ctx(), &q.into()).await?.into()))
}

/// 文件挂接: the files of a resource bound as files (names, sizes, digests; downloading needs a grant).
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/files", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = FileList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_files(
    State(state): State<AppState>,
    _caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<FileList>> {
    let code = code_of(&class, &seq)?;
    Ok(axum::Json(FileList { files: wire(exchange::list_files(&state.exchange, &code).await?) }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileUploadQuery {
    /// The file name (no directories). A file of the same name is replaced.
    pub name: String,
}

/// 文件挂接: the provider uploads a file, streamed to disk with its SHA-256 (limit `exchange.max_upload_mb`).
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/files", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), FileUploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    responses((status = 201, body = FileView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn upload_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<FileUploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<FileView>)> {
    let code = code_of(&class, &seq)?;
    let limit = upload_limit(&state, &headers, "store it in parts")?;
    let media_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = body.into_data_stream();
    let mut read = false;
    let stream = body.by_ref().map(|c| {
        read = true;
        c.map_err(std::io::Error::other)
    });
    let new = exchange::NewFile { name: &q.name, media_type: media_type.as_deref(), limit };
    match exchange::upload_file(&state.exchange, &caller.principal, &caller.ctx(), &code, new, stream).await {
        Ok(f) => Ok((StatusCode::CREATED, axum::Json(f.into()))),
        Err(e) => {
            // Refused before the first byte was read: let the client finish sending and read the answer.
            if !read {
                discard(body, &headers, limit).await;
            }
            Err(e.into())
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileDownloadQuery {
    pub grant_id: Option<i64>,
}

/// 批量下载 of one file: to the provider, or under a grant for bulk download that covers every item of the
/// resource in clear text without a row filter (a file cannot be cut down to granted items). Audited.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/files/{id}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ("id" = i64, Path), FileDownloadQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn download_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq, id)): Path<(String, String, i64)>,
    Query(q): Query<FileDownloadQuery>,
) -> ApiResult<Response> {
    let code = code_of(&class, &seq)?;
    let d = exchange::download_file(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        &code,
        exchange::FileId(id),
        q.grant_id.map(shutong_sharing::GrantId),
    )
    .await?;
    let file = tokio::fs::File::open(&d.path).await.map_err(|e| ApiError::internal(&e))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, d.file.media_type.as_str())
        .header(header::CONTENT_LENGTH, d.file.size)
        .header(header::CONTENT_DISPOSITION, attachment(&d.file.name))
        .header("x-shutong-sha256", d.file.sha256.as_str())
        .body(Body::from_stream(tokio_util::io::ReaderStream::new(file)))
        .map_err(|e| ApiError::internal(&e))
}

/// Removes a file (the provider).
#[utoipa::path(delete, path = "/api/v1/data/{classification}/{sequence}/files/{id}", tag = "data", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq, id)): Path<(String, String, i64)>,
) -> ApiResult<StatusCode> {
    let code = code_of(&class, &seq)?;
    exchange::delete_file(&state.exchange, &caller.principal, &caller.ctx(), &code, exchange::FileId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Content-Disposition` of a download (RFC 6266): an ASCII fallback and the UTF-8 name.
pub fn attachment(name: &str) -> String {
    let ascii: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    let utf8: String = name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b".-_".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
}
