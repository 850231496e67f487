//! 文件挂接: files a provider uploads for a resource bound as `files` (办法 第十二条: 数据资源的挂接), and their
//! download under a grant.
//!
//! The platform cannot take items out of an opaque file or filter its rows, so a file leaves the platform
//! whole or not at all: to the provider's own members, and to a consumer only under a grant in force for
//! 批量下载 that covers every item of the resource in clear text, without a row filter. A resource with a
//! 不予共享 item therefore never delivers its files to a consumer (R-EX-2). Every download is audited with
//! the grant, purpose and file digest.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use shutong_audit::{AuditContext, NewAuditEvent};
use shutong_identity::{DepartmentId, Principal};
use shutong_sharing::{AccessMethod, GrantId};
use shutong_store::{AnyRow, Row, now_ms};
use tokio::io::AsyncWriteExt;

use crate::access::{Access, authorize, count_usage, require_quota, take_rate};
use crate::binding::{Published, commit_pool_change, get_binding, may_load, pool_change, published};
use crate::model::*;
use crate::read::event;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

/// 挂接文件: one file of a resource bound as files.
#[derive(Clone, Debug, Serialize)]
pub struct FileView {
    pub id: i64,
    pub resource_code: String,
    /// The file name as uploaded (no directories).
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex: what a consumer checks its download against.
    pub sha256: String,
    pub uploaded_at_ms: i64,
    pub uploaded_by: String,
}

fn file_from_row(r: &AnyRow) -> ExchangeResult<FileView> {
    Ok(FileView {
        id: r.try_get("id")?,
        resource_code: r.try_get("resource_code")?,
        name: r.try_get("name")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        uploaded_at_ms: r.try_get("uploaded_at")?,
        uploaded_by: r.try_get("uploaded_by")?,
    })
}

/// A file name as stored: 1–200 characters, no directory part, no control characters, not `.` or `..`.
pub fn check_file_name(name: &str) -> ExchangeResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(invalid("name", "a file name must have 1–200 characters"));
    }
    if n == "." || n == ".." || n.contains('/') || n.contains('\\') || n.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("'{}' must be a plain file name: no '/', '\\', control characters, '.' or '..'", n.escape_debug()),
        ));
    }
    Ok(n.to_string())
}

/// A media type as stored: `type/subtype` in visible ASCII, default `application/octet-stream`.
fn check_media_type(m: Option<&str>) -> ExchangeResult<String> {
    match m.map(str::trim).filter(|m| !m.is_empty()) {
        None => Ok("application/octet-stream".into()),
        Some(m) if m.len() <= 200 && m.contains('/') && m.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => Ok(m.to_string()),
        Some(m) => Err(invalid("content_type", format!("'{}' is not a media type", m.escape_debug()))),
    }
}

fn file_path(ex: &Exchange, code: &str, id: i64) -> PathBuf {
    ex.settings.files_dir.join(code.replace('/', "-")).join(id.to_string())
}

/// Checks, before the body is read, that the actor may upload files for the resource: the provider's
/// editors, administrators and system accounts, on a resource bound as files.
pub async fn prepare_file_upload(ex: &Exchange, actor: &Principal, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Published> {
    let code = resource.as_str();
    let p = published(ex, resource).await?;
    if !may_load(actor, p.provider) {
        return Err(ExchangeError::Forbidden(
            "only the provider's catalog editors, administrators and system accounts upload its files".into(),
        ));
    }
    match get_binding(ex, resource).await? {
        Some(b) if b.kind == BindingKind::Files => Ok(p),
        Some(b) => Err(ExchangeError::Conflict(format!("{code} is bound as {}, not as files", b.kind.label_zh()))),
        None => Err(ExchangeError::Conflict(format!("{code} is not bound yet: bind it as files first"))),
    }
}

/// A file to upload: its name, media type and the most bytes accepted.
pub struct NewFile<'a> {
    pub name: &'a str,
    pub media_type: Option<&'a str>,
    /// Larger uploads are refused (413) and nothing is stored.
    pub limit: u64,
}

/// Stores an uploaded file, streamed to disk with its digest (never held in memory). A file with the same
/// name replaces the earlier one.
pub async fn upload_file<S>(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    new: NewFile<'_>,
    body: S,
) -> ExchangeResult<FileView>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send,
{
    let code = resource.as_str();
    let NewFile { name, media_type, limit } = new;
    let name = check_file_name(name)?;
    let media_type = check_media_type(media_type)?;
    // Every check before the first byte of the body is read.
    let p = prepare_file_upload(ex, actor, resource).await?;
    let dir = ex.settings.files_dir.join(code.replace('/', "-"));
    tokio::fs::create_dir_all(&dir).await.map_err(io_error)?;
    let spool = dir.join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
    let (size, sha256) = match spool_body(&spool, body, limit).await {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(e);
        }
    };
    let result = store(ex, ctx, code, p.provider, &name, &media_type, size, &sha256, &spool).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&spool).await;
    }
    result
}

async fn spool_body<S>(path: &Path, body: S, limit: u64) -> ExchangeResult<(i64, String)>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send,
{
    let mut out = tokio::fs::File::create(path).await.map_err(io_error)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| invalid("body", format!("the upload broke off: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ExchangeError::TooLarge(format!(
                "the file is larger than {limit} bytes (exchange.max_upload_mb); nothing was stored"
            )));
        }
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(io_error)?;
    }
    out.sync_all().await.map_err(io_error)?;
    Ok((size as i64, hex::encode(hash.finalize())))
}

#[allow(clippy::too_many_arguments)]
async fn store(
    ex: &Exchange,
    ctx: &AuditContext,
    code: &str,
    provider: DepartmentId,
    name: &str,
    media_type: &str,
    size: i64,
    sha256: &str,
    spool: &Path,
) -> ExchangeResult<FileView> {
    let mut change = pool_change(ex, ctx).await?;
    let replaced: Option<(i64, String)> = sqlx::query("SELECT id, sha256 FROM exchange_files WHERE resource_code = $1 AND name = $2")
        .bind(code)
        .bind(name)
        .fetch_optional(&mut **change.tx())
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?;
    if let Some((old, _)) = &replaced {
        sqlx::query("DELETE FROM exchange_files WHERE id = $1").bind(old).execute(&mut **change.tx()).await?;
    }
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO exchange_files (resource_code, name, media_type, size, sha256, uploaded_at, uploaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(code)
    .bind(name)
    .bind(media_type)
    .bind(size)
    .bind(sha256)
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?;
    sqlx::query("UPDATE exchange_bindings SET last_batch_at = $1, updated_at = $1 WHERE resource_code = $2")
        .bind(now)
        .bind(code)
        .execute(&mut **change.tx())
        .await?;
    let target = file_path(ex, code, id);
    let event = NewAuditEvent {
        action: shutong_audit::Action::ExchangeFileUpload,
        target_kind: "resource",
        target_id: code.to_string(),
        department_id: Some(provider.0),
        detail: json!({"file_id": id, "name": name, "size": size, "sha256": sha256,
            "replaced": replaced.as_ref().map(|(id, sha)| json!({"file_id": id, "sha256": sha}))}),
    };
    change.record(event).await?;
    change.notify(shutong_audit::Notice::DataChanged { code: code.to_string() });
    // The file takes its place just before the commit: a failed commit removes it again.
    tokio::fs::rename(spool, &target).await.map_err(io_error)?;
    if let Err(e) = commit_pool_change(ex, change).await {
        let _ = tokio::fs::remove_file(&target).await;
        return Err(e);
    }
    if let Some((old, _)) = replaced {
        let _ = tokio::fs::remove_file(file_path(ex, code, old)).await;
    }
    get_file_row(ex, code, id).await
}

async fn get_file_row(ex: &Exchange, code: &str, id: i64) -> ExchangeResult<FileView> {
    let row = sqlx::query(concat!("SELECT ", crate::file_columns!(), " FROM exchange_files WHERE id = $1 AND resource_code = $2"))
        .bind(id)
        .bind(code)
        .fetch_optional(ex.pool.pool())
        .await?
        .ok_or(ExchangeError::NotFound { what: "file" })?;
    file_from_row(&row)
}

/// The files of a resource, newest first (visible to everyone who sees the published resource, like its
/// binding; downloading them needs a grant).
pub async fn list_files(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Vec<FileView>> {
    let code = resource.as_str();
    published(ex, resource).await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        crate::file_columns!(),
        " FROM exchange_files WHERE resource_code = $1 ORDER BY uploaded_at DESC, id DESC"
    ))
    .bind(code)
    .fetch_all(ex.pool.pool())
    .await?;
    rows.iter().map(file_from_row).collect()
}

/// Whether an access may receive a whole file: the provider always; a consumer only when its grant covers
/// every item of the resource in clear text without a row filter. The reason when not.
pub fn whole_file_refusal(a: &Access) -> Option<String> {
    a.grant.as_ref()?;
    let all = a.item_names.len();
    if a.items.len() < all {
        return Some(format!(
            "a file is delivered whole and the platform cannot remove items from it: your grant covers {} of the resource's {all} items (不予共享 items are never granted)",
            a.items.len()
        ));
    }
    if a.items.iter().any(|i| i.mask.is_some()) {
        return Some("a file is delivered whole and cannot be masked: your grant does not allow clear text of its sensitive items".into());
    }
    if !a.row_filter.conditions.is_empty() {
        return Some("a file is delivered whole and cannot be filtered: your grant has a row filter".into());
    }
    None
}

/// An opened file for download, already audited.
pub struct FileDownload {
    pub file: FileView,
    pub path: PathBuf,
}

/// 批量下载 of one bound file under the caller's grant (or as the provider).
pub async fn download_file(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    id: FileId,
    grant: Option<GrantId>,
) -> ExchangeResult<FileDownload> {
    let code = resource.as_str();
    let FileId(id) = id;
    let a = authorize(ex, actor, resource, AccessMethod::BulkDownload, grant).await?;
    if a.binding.kind != BindingKind::Files {
        return Err(ExchangeError::Conflict(format!("{code} is bound as {}, not as files", a.binding.kind.label_zh())));
    }
    if let Some(why) = whole_file_refusal(&a) {
        return Err(ExchangeError::NoGrant(why));
    }
    let file = get_file_row(ex, code, id).await?;
    take_rate(ex, &a)?;
    require_quota(ex, &a, 1).await?;
    let path = file_path(ex, code, id);
    if tokio::fs::metadata(&path).await.is_err() {
        tracing::error!(path = %path.display(), "a bound file is missing from the files directory");
        return Err(ExchangeError::Store(shutong_store::StoreError::Other(sqlx::Error::RowNotFound)));
    }
    count_usage(ex, &a, 1);
    ex.log
        .record(event(
            ex,
            ctx,
            &a,
            shutong_audit::Action::DataFileDownload,
            1,
            json!({"file_id": id, "name": file.name, "sha256": file.sha256, "size": file.size}),
        ))
        .await;
    Ok(FileDownload { file, path })
}

/// Removes a file (the provider).
pub async fn delete_file(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    id: FileId,
) -> ExchangeResult<()> {
    let code = resource.as_str();
    let FileId(id) = id;
    let p = published(ex, resource).await?;
    if !may_load(actor, p.provider) {
        return Err(ExchangeError::Forbidden("only the provider's editors, administrators and system accounts remove its files".into()));
    }
    let file = get_file_row(ex, code, id).await?;
    let mut change = pool_change(ex, ctx).await?;
    sqlx::query("DELETE FROM exchange_files WHERE id = $1").bind(id).execute(&mut **change.tx()).await?;
    let event = NewAuditEvent {
        action: shutong_audit::Action::ExchangeFileDelete,
        target_kind: "resource",
        target_id: code.to_string(),
        department_id: Some(p.provider.0),
        detail: json!({"file_id": id, "name": file.name, "sha256": file.sha256}),
    };
    change.record(event).await?;
    change.notify(shutong_audit::Notice::DataChanged { code: code.to_string() });
    commit_pool_change(ex, change).await?;
    let _ = tokio::fs::remove_file(file_path(ex, code, id)).await;
    Ok(())
}

fn io_error(e: std::io::Error) -> ExchangeError {
    ExchangeError::Store(shutong_store::StoreError::Other(sqlx::Error::Io(e)))
}
