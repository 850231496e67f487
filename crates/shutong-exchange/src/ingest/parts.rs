//! 分片上传: a full batch uploaded in parts — the exchange node's snapshot of a large table, sent in
//! key-ordered parts, so that a crash or a cut costs one part, not the whole upload.
//!
//! Each part loads into the batch's one load table and commits there, with the batch's count of parts,
//! rows and rejects; the table stays invisible to readers. The batch holds the dataset's claim from its
//! first part to its last (each part renews it). The last part builds the key index and commits the batch
//! as a batch sent whole commits. A part already received is answered with the batch's report and not
//! loaded again; a part that broke off is loaded again when it is re-sent (on PostgreSQL its rows rolled
//! back with its transaction; on SQLite, where a load commits chunk by chunk, the rows past the batch's
//! count are deleted first). A batch that lost its claim (no part for `exchange.claim_timeout_seconds`
//! while another batch took the dataset, or a restart after that long) failed: its next part is answered
//! 409 `batch_parts_lost`, and the client starts again from part 1 under the same batch ID.

use shutong_audit::AuditContext;
use shutong_identity::DepartmentId;
use shutong_store::{Backend, Row, now_ms};

use super::load::{Stage, load};
use super::{BatchRequest, Concluded, Input, Part, conclude, drop_table, failure_text, finish_failed, insert_rejects, open_batch};
use crate::binding::load_batch;
use crate::model::*;
use crate::parse::Columns;
use crate::{Exchange, ExchangeError, ExchangeResult, schema};

/// A batch being uploaded in parts, as its record says.
struct Staged {
    batch: i64,
    parts: i64,
    base: i64,
    received: i64,
    rejected: i64,
    started: i64,
}

/// Loads one part; see the module comment.
pub(super) async fn ingest_part(
    ex: &Exchange,
    ctx: &AuditContext,
    req: &BatchRequest,
    part: Part,
    input: Input,
    provider: &DepartmentId,
    columns: Columns,
) -> ExchangeResult<BatchReport> {
    let code = req.resource_code.as_str();
    let key = req.batch_id.clone().unwrap_or_default();
    let row = sqlx::query(
        "SELECT id, parts, base_seq, rows_received, rows_rejected, started_at FROM exchange_batches \
         WHERE resource_code = $1 AND batch_key = $2 AND status = 'loading' ORDER BY id DESC LIMIT 1",
    )
    .bind(code)
    .bind(&key)
    .fetch_optional(ex.pool.pool())
    .await?;
    let staged = match row {
        Some(r) => {
            let s = Staged {
                batch: r.try_get(0)?,
                parts: r.try_get(1)?,
                base: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
                received: r.try_get(3)?,
                rejected: r.try_get(4)?,
                started: r.try_get(5)?,
            };
            if part.number <= s.parts {
                let mut report = load_batch(ex, code, s.batch).await?;
                report.replayed = true;
                return Ok(report);
            }
            if part.number > s.parts + 1 {
                return Err(ExchangeError::Conflict(format!(
                    "part {} of batch '{key}' arrived before part {}: send the parts in order",
                    part.number,
                    s.parts + 1
                )));
            }
            let renewed = sqlx::query("UPDATE exchange_bindings SET busy_since = $1 WHERE resource_code = $2 AND busy_batch = $3")
                .bind(now_ms())
                .bind(code)
                .bind(s.batch)
                .execute(ex.pool.pool())
                .await?
                .rows_affected();
            if renewed == 0 {
                drop_table(ex, &schema::table_name("xd", code, s.batch)).await;
                finish_failed(ex, s.batch, "the batch lost its claim on the dataset between two parts", false).await;
                return Err(lost(&key, "it lost its claim on the dataset between two parts"));
            }
            s
        }
        None if part.number == 1 => {
            let started = now_ms();
            let (batch, base) = open_batch(ex, ctx, req, &key, provider.0, started).await?;
            // Later parts number their rows after it.
            sqlx::query("UPDATE exchange_batches SET base_seq = $1 WHERE id = $2").bind(base).bind(batch).execute(ex.pool.pool()).await?;
            Staged { batch, parts: 0, base, received: 0, rejected: 0, started }
        }
        None => return Err(lost(&key, "it is not loading (it failed, or its first part never arrived)")),
    };
    let table = schema::table_name("xd", code, staged.batch);
    let append = part.number > 1;
    if append && ex.pool.backend() == Backend::Sqlite {
        // Rows of an earlier attempt at this part that broke off after some of its chunks committed.
        sqlx::query(&format!("DELETE FROM {table} WHERE s > $1")).bind(staged.base + staged.received).execute(ex.pool.pool()).await?;
    }
    let reported = staged.rejected.min(ex.settings.max_reported_rejects as i64) as usize;
    let stage = Stage { append, finish: part.last, row_offset: staged.received, reported };
    let loaded = load(ex, req, input, &columns, staged.batch, staged.base, staged.started, &table, stage).await;
    let (encoding, received, rejects, rejected) = match loaded {
        Ok(v) => v,
        Err(e) => {
            if !append {
                // The first part: nothing of the batch stays.
                drop_table(ex, &table).await;
                finish_failed(ex, staged.batch, &failure_text(&e), true).await;
            }
            return Err(e);
        }
    };
    if part.last {
        let l = Concluded {
            batch: staged.batch,
            base: staged.base,
            started: staged.started,
            encoding,
            received: staged.received + received,
            rejected: staged.rejected + rejected,
            parts: part.number,
        };
        return conclude(ex, ctx, req, provider, &columns, &table, &key, l, &rejects).await;
    }
    let mut tx = ex.pool.pool().begin().await?;
    let counted = sqlx::query(
        "UPDATE exchange_batches SET parts = $1, rows_received = rows_received + $2, rows_rejected = rows_rejected + $3, encoding = $4 \
         WHERE id = $5 AND parts = $6 AND status = 'loading'",
    )
    .bind(part.number)
    .bind(received)
    .bind(rejected)
    .bind(encoding)
    .bind(staged.batch)
    .bind(staged.parts)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if counted == 0 {
        // The same part, loaded twice at once by two deliveries: the other one counted it.
        return Err(ExchangeError::Conflict(format!(
            "part {} of batch '{key}' was received twice at once: ask for the batch's report",
            part.number
        )));
    }
    insert_rejects(&mut tx, staged.batch, &rejects).await?;
    sqlx::query("UPDATE exchange_bindings SET busy_since = $1 WHERE resource_code = $2 AND busy_batch = $3")
        .bind(now_ms())
        .bind(code)
        .bind(staged.batch)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    load_batch(ex, code, staged.batch).await
}

fn lost(key: &str, why: &str) -> ExchangeError {
    ExchangeError::PartsLost(format!("batch '{key}' cannot take this part: {why}; send it again from part 1"))
}
