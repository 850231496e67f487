//! 归档: retention. Sealed segments older than the retention period are written to a file that verifies on
//! its own, checked, and only then removed from the database. Nothing unsealed, and nothing younger than
//! the retention period, is ever removed.

use std::path::{Path, PathBuf};

use shutong_store::{Db, Row, now_ms};

use crate::export::{ExportSigner, export_to};
use crate::{AuditContext, AuditError, AuditResult, NewAuditEvent};

/// A segment moved out of the database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Archived {
    pub from: i64,
    pub to: i64,
    pub events: u64,
    pub file: PathBuf,
    /// SM3 of the file, hex (recorded in `audit_archives`).
    pub file_sm3: String,
}

/// Archives the sealed events up to the last checkpoint signed before `cutoff_ms` into `dir`. Returns
/// `None` when there is nothing that old.
pub async fn archive(
    db: &Db,
    signer: &ExportSigner<'_>,
    trusted_keys: Vec<String>,
    cutoff_ms: i64,
    dir: &Path,
    ctx: &AuditContext,
) -> AuditResult<Option<Archived>> {
    let head =
        sqlx::query("SELECT archived_through FROM audit_chain_head WHERE id = 1").fetch_one(db.pool()).await.map_err(AuditError::db)?;
    let archived: i64 = head.try_get(0).map_err(AuditError::db)?;
    let Some(last) =
        sqlx::query("SELECT chain_seq, hash FROM audit_checkpoints WHERE chain_seq > $1 AND at < $2 ORDER BY chain_seq DESC LIMIT 1")
            .bind(archived)
            .bind(cutoff_ms)
            .fetch_optional(db.pool())
            .await
            .map_err(AuditError::db)?
    else {
        return Ok(None);
    };
    let to: i64 = last.try_get(0).map_err(AuditError::db)?;
    let to_hash: String = last.try_get(1).map_err(AuditError::db)?;
    let from = archived + 1;

    std::fs::create_dir_all(dir).map_err(AuditError::Io)?;
    // Names of its own per run: replicas sharing the directory may archive the same range at once.
    let run = format!("{}-{}", std::process::id(), now_ms());
    let partial = dir.join(format!(".audit-{from:012}-{to:012}.ndjson.{run}.partial"));
    let exported = export_to(db, from, to, signer, std::fs::File::create(&partial).map_err(AuditError::Io)?).await;
    let (summary, written) = match exported {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    written.sync_all().map_err(AuditError::Io)?;

    // The file must verify on its own, to its last event, under a signature, before anything is removed.
    let report = crate::verify::verify_file(std::io::BufReader::new(std::fs::File::open(&partial).map_err(AuditError::Io)?), trusted_keys);
    let why = match &report {
        Ok(r) if r.ok && r.through == to && r.signed_through == to => None,
        Ok(r) => {
            Some(r.failure.as_ref().map(|f| f.to_string()).unwrap_or_else(|| format!("it verifies through {} only", r.signed_through)))
        }
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = why {
        let _ = std::fs::remove_file(&partial);
        return Err(AuditError::Corrupt(format!("the archive of {from}..{to} does not verify, nothing removed: {why}")));
    }
    // Never over another file of the same range (another run's, whose SM3 may be on record, or one left by a
    // run that failed before recording it): then under a name of its own.
    let mut file = dir.join(format!("audit-{from:012}-{to:012}.ndjson"));
    if let Err(e) = std::fs::hard_link(&partial, &file) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&partial);
            return Err(AuditError::Io(e));
        }
        file = dir.join(format!("audit-{from:012}-{to:012}.{run}.ndjson"));
        std::fs::hard_link(&partial, &file).map_err(AuditError::Io)?;
    }
    let _ = std::fs::remove_file(&partial);
    let recorded = record_archive(db, ctx, from, to, archived, &to_hash, summary.events, &file).await;
    if recorded.is_err() {
        // Not on record: the rows stay, and so would a second copy of them.
        let _ = std::fs::remove_file(&file);
    }
    recorded
}

/// Removes the archived rows and records the archive, in one transaction under the chain head's lock.
#[allow(clippy::too_many_arguments)]
async fn record_archive(
    db: &Db,
    ctx: &AuditContext,
    from: i64,
    to: i64,
    archived: i64,
    to_hash: &str,
    events: u64,
    file: &Path,
) -> AuditResult<Option<Archived>> {
    let file_sm3 = hex::encode(shutong_crypto::sm3(&std::fs::read(file).map_err(AuditError::Io)?));

    let mut tx = db.begin().await?;
    sqlx::query(crate::seal::LOCK_HEAD).execute(&mut *tx).await.map_err(AuditError::db)?;
    let again: i64 = sqlx::query("SELECT archived_through FROM audit_chain_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await
        .map_err(AuditError::db)?
        .try_get(0)
        .map_err(AuditError::db)?;
    if again != archived {
        return Err(AuditError::Invalid("another archive ran at the same time; nothing removed by this one".into()));
    }
    sqlx::query("DELETE FROM audit_events WHERE chain_seq > $1 AND chain_seq <= $2")
        .bind(archived)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(AuditError::db)?;
    sqlx::query("UPDATE audit_chain_head SET archived_through = $1, archived_hash = $2 WHERE id = 1")
        .bind(to)
        .bind(to_hash)
        .execute(&mut *tx)
        .await
        .map_err(AuditError::db)?;
    sqlx::query(
        "INSERT INTO audit_archives (last_chain_seq, first_chain_seq, last_hash, events, file, file_sm3, archived_at, archived_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(to)
    .bind(from)
    .bind(to_hash)
    .bind(i64::try_from(events).unwrap_or(i64::MAX))
    .bind(file.display().to_string())
    .bind(&file_sm3)
    .bind(now_ms())
    .bind(&ctx.actor)
    .execute(&mut *tx)
    .await
    .map_err(AuditError::db)?;
    crate::record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: crate::Action::AuditArchive,
            target_kind: "audit_chain",
            target_id: format!("{from}-{to}"),
            department_id: None,
            detail: serde_json::json!({ "from": from, "to": to, "events": events, "file": file.display().to_string(), "file_sm3": file_sm3 }),
        },
    )
    .await?;
    tx.commit().await.map_err(AuditError::db)?;
    Ok(Some(Archived { from, to, events, file: file.to_path_buf(), file_sm3 }))
}

/// An archive on record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ArchiveRecord {
    pub from: i64,
    pub to: i64,
    pub last_hash: String,
    pub events: i64,
    pub file: String,
    pub file_sm3: String,
    pub archived_at_ms: i64,
    pub archived_by: String,
}

pub async fn list_archives(db: &Db) -> AuditResult<Vec<ArchiveRecord>> {
    let rows = sqlx::query(
        "SELECT first_chain_seq, last_chain_seq, last_hash, events, file, file_sm3, archived_at, archived_by FROM audit_archives ORDER BY last_chain_seq",
    )
    .fetch_all(db.pool())
    .await
    .map_err(AuditError::db)?;
    rows.iter()
        .map(|r| {
            Ok(ArchiveRecord {
                from: r.try_get(0).map_err(AuditError::db)?,
                to: r.try_get(1).map_err(AuditError::db)?,
                last_hash: r.try_get(2).map_err(AuditError::db)?,
                events: r.try_get(3).map_err(AuditError::db)?,
                file: r.try_get(4).map_err(AuditError::db)?,
                file_sm3: r.try_get(5).map_err(AuditError::db)?,
                archived_at_ms: r.try_get(6).map_err(AuditError::db)?,
                archived_by: r.try_get(7).map_err(AuditError::db)?,
            })
        })
        .collect()
}
