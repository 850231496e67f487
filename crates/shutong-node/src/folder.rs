//! 提供 from a drop folder: CSV (UTF-8 or GBK), XLSX or NDJSON files placed in the folder become full or
//! incremental batches (by configuration or by name), then move to `done/` or `rejected/` with the batch
//! report beside them (`<file>.report.json`). A file is the outbox of its own changes: it stays where it is
//! until the platform has answered, and its batch ID is derived from its content, so a file sent twice
//! (a crash between the answer and the move) is applied once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shutong_client::Client;
use shutong_client::types::exchange::{DataFormat, IngestMode};

use crate::config::{FolderMode, Publication};
use crate::publish::{DeliveryError, classify};

/// What became of one file.
pub enum FileOutcome {
    /// Applied (rows received, rows rejected): moved to `done/`.
    Done { rows: i64, rejected: i64 },
    /// Refused as a whole (its reason): moved to `rejected/`.
    Rejected(String),
}

fn format_of(path: &Path) -> Option<DataFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "txt" => Some(DataFormat::Csv),
        "xlsx" => Some(DataFormat::Xlsx),
        "ndjson" | "jsonl" => Some(DataFormat::Ndjson),
        _ => None,
    }
}

fn mode_of(cfg: &Publication, path: &Path) -> IngestMode {
    match cfg.mode.unwrap_or(FolderMode::Incremental) {
        FolderMode::Full => IngestMode::Full,
        FolderMode::Incremental => IngestMode::Incremental,
        FolderMode::ByName => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_lowercase();
            if name.contains("full") || name.contains("全量") { IngestMode::Full } else { IngestMode::Incremental }
        }
    }
}

/// The files waiting in the folder, oldest name first: regular files of a known format, not written to in
/// the last second (a file still being copied in is left for the next look).
pub fn waiting(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let now = std::time::SystemTime::now();
    for e in std::fs::read_dir(folder)? {
        let e = e?;
        let meta = e.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let p = e.path();
        if format_of(&p).is_none() {
            continue;
        }
        let settled = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age >= Duration::from_secs(1));
        if settled {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

async fn content_id(epoch: &str, publication: &str, path: &Path) -> std::io::Result<String> {
    let digest = shutong_client::file_sm3(path).await?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Ok(crate::publish::batch_id(epoch, publication, &format!("file|{name}|{digest}")))
}

fn move_with_report(path: &Path, to: &str, report: &serde_json::Value) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new(".")).join(to);
    std::fs::create_dir_all(&dir)?;
    let name = path.file_name().unwrap_or_default();
    let target = dir.join(name);
    let mut report_name = name.to_os_string();
    report_name.push(".report.json");
    // The report first: a crash between the two leaves the file to be sent again (applied once), never a
    // moved file without its report.
    std::fs::write(dir.join(report_name), serde_json::to_vec_pretty(report).unwrap_or_default())?;
    std::fs::rename(path, target)
}

/// Sends one file and files it under `done/` or `rejected/`.
pub async fn send_file(client: &Client, epoch: &str, cfg: &Publication, path: &Path) -> Result<FileOutcome, DeliveryError> {
    let io = |e: std::io::Error| DeliveryError::Offline(format!("{}: {e}", path.display()));
    let format = format_of(path).unwrap_or(DataFormat::Csv);
    let mode = mode_of(cfg, path);
    let id = content_id(epoch, &cfg.name, path).await.map_err(io)?;
    let encoding = if format == DataFormat::Csv { cfg.encoding.as_deref() } else { None };
    match client.post_batch_file(&cfg.resource, mode, format, &id, encoding, path).await {
        Ok(report) => {
            let value = serde_json::to_value(&report).unwrap_or_default();
            move_with_report(path, "done", &value).map_err(io)?;
            Ok(FileOutcome::Done { rows: report.rows_received, rejected: report.rows_rejected })
        }
        Err(e) => match classify(&e) {
            DeliveryError::Stopped(reason) => {
                let value = serde_json::json!({"file": path.file_name().and_then(|n| n.to_str()), "batch_id": id, "error": reason,
                    "status": e.status().map(|s| s.as_u16()), "code": e.code(), "field": e.field()});
                move_with_report(path, "rejected", &value).map_err(io)?;
                Ok(FileOutcome::Rejected(reason))
            }
            other => Err(other),
        },
    }
}
