//! 数据归集: a provider's batch, streamed from the upload into a table of its own, then made visible in one
//! short transaction.
//!
//! A full batch loads into a new generation table (`xd_<code>_b<batch>`); an incremental batch into a
//! staging table (`xs_…`). Readers keep using the binding's current table until the final transaction
//! points the binding at the new generation (or merges the staging rows into it), records the batch and its
//! report, and releases the dataset's claim. A crash before that transaction leaves an orphan table that
//! the next start drops, and the batch `failed`; after it, the batch is complete. A batch ID that committed
//! once is answered with its report and not applied again.

use std::io::Read;

use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent};
use shutong_identity::{DepartmentId, Principal};
use shutong_store::{Backend, Row, now_ms};

use crate::binding::{get_binding, load_batch, may_load, published};
use crate::model::*;
use crate::parse::Columns;
use crate::validate::ItemCheck;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid, schema};

mod load;
pub mod parts;
mod writers;

use load::{Stage, load};

/// What a batch is.
#[derive(Clone, Debug)]
pub struct BatchRequest {
    pub resource_code: shutong_catalog::ResourceCode,
    pub mode: IngestMode,
    pub format: DataFormat,
    /// The client's batch ID (letters, digits, `.`, `_`, `-`, `:`; up to 100): re-sending it is safe.
    pub batch_id: Option<String>,
    pub delimiter: Option<u8>,
    pub encoding: Option<String>,
    /// Refuse the whole batch if any row is rejected (default: apply the valid rows, report the others).
    pub all_or_nothing: bool,
    /// One part of a full batch uploaded in parts (see [`parts`]); `None`: the batch is sent whole.
    pub part: Option<Part>,
}

/// 分片: one part of a full batch uploaded in parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// 1, 2, …: taken in order; a part already received is answered with the batch's report.
    pub number: i64,
    /// The last part: the batch commits with it.
    pub last: bool,
}

/// The most parts a batch may have.
pub const MAX_PARTS: i64 = 1_000_000;

/// The upload: a reader (CSV, NDJSON), or a file on disk (XLSX needs random access).
pub enum Input {
    Reader(Box<dyn Read + Send + 'static>),
    File(std::path::PathBuf),
}

/// Checks a client batch ID.
pub fn check_batch_id(id: &str) -> ExchangeResult<()> {
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')) {
        return Err(invalid("batch_id", format!("'{id}' must be 1–100 letters, digits, '.', '_', '-' or ':'")));
    }
    Ok(())
}

/// The report of a committed batch with this ID, if there is one.
pub async fn committed_batch(
    ex: &Exchange,
    resource: &shutong_catalog::ResourceCode,
    batch_id: &str,
) -> ExchangeResult<Option<BatchReport>> {
    let code = resource.as_str();
    let id: Option<i64> =
        sqlx::query("SELECT id FROM exchange_batches WHERE resource_code = $1 AND batch_key = $2 AND status = 'committed'")
            .bind(code)
            .bind(batch_id)
            .fetch_optional(ex.pool.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    match id {
        Some(id) => {
            let mut r = load_batch(ex, code, id).await?;
            r.replayed = true;
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Everything a batch needs before reading its input: authorisation, the binding, an idempotency check.
/// Returns `Ok(Err(report))` when the batch ID already committed.
pub async fn prepare(ex: &Exchange, actor: &Principal, req: &BatchRequest) -> ExchangeResult<Result<(), BatchReport>> {
    if let Some(id) = &req.batch_id {
        check_batch_id(id)?;
    }
    let binding = get_binding(ex, &req.resource_code).await?.ok_or_else(|| ExchangeError::NotFound { what: "binding" })?;
    if !may_load(actor, DepartmentId(binding.provider_department_id)) {
        return Err(ExchangeError::Forbidden(
            "only the provider's catalog editors, administrators and system accounts load its data".into(),
        ));
    }
    if binding.kind != BindingKind::Dataset {
        return Err(ExchangeError::Conflict(format!("{} is bound as {}, not as a dataset", req.resource_code, binding.kind.label_zh())));
    }
    if req.format == DataFormat::Parquet {
        return Err(invalid("format", "Parquet is a download format; upload CSV, NDJSON or XLSX"));
    }
    if let Some(part) = req.part {
        if !(1..=MAX_PARTS).contains(&part.number) {
            return Err(invalid("part", format!("{} is not between 1 and {MAX_PARTS}", part.number)));
        }
        if req.mode != IngestMode::Full {
            return Err(invalid("part", "only a full batch is uploaded in parts: send an incremental batch whole"));
        }
        if req.batch_id.is_none() {
            return Err(invalid("batch_id", "a batch uploaded in parts needs a batch ID, the same for every part"));
        }
        if req.all_or_nothing {
            return Err(invalid(
                "all_or_nothing",
                "a batch uploaded in parts applies its valid rows: all_or_nothing is for a batch sent whole",
            ));
        }
    }
    if let Some(id) = &req.batch_id
        && let Some(done) = committed_batch(ex, &req.resource_code, id).await?
    {
        return Ok(Err(done));
    }
    Ok(Ok(()))
}

/// Runs a batch: reads, validates and loads `input`, then commits it atomically. See the module comment.
pub async fn ingest(ex: &Exchange, actor: &Principal, ctx: &AuditContext, req: BatchRequest, input: Input) -> ExchangeResult<BatchReport> {
    if let Err(done) = prepare(ex, actor, &req).await? {
        return Ok(done);
    }
    let (provider, columns) = batch_columns(ex, &req).await?;
    if let Some(part) = req.part {
        return parts::ingest_part(ex, ctx, &req, part, input, &provider, columns).await;
    }
    // The batch record and the dataset's claim.
    let started = now_ms();
    let batch_key = req.batch_id.clone().unwrap_or_else(|| format!("auto-{}", uuid::Uuid::new_v4().simple()));
    let (batch, base) = open_batch(ex, ctx, &req, &batch_key, provider.0, started).await?;
    let load_table = schema::table_name(if req.mode == IngestMode::Full { "xd" } else { "xs" }, req.resource_code.as_str(), batch);
    let result = load(ex, &req, input, &columns, batch, base, started, &load_table, Stage::WHOLE).await;
    let (encoding, received, rejects, rejected_count) = match result {
        Ok(v) => v,
        Err(e) => {
            drop_table(ex, &load_table).await;
            finish_failed(ex, batch, &failure_text(&e), true).await;
            return Err(e);
        }
    };
    let loaded = Concluded { batch, base, started, encoding, received, rejected: rejected_count, parts: 0 };
    conclude(ex, ctx, &req, &provider, &columns, &load_table, &batch_key, loaded, &rejects).await
}

/// The columns a batch loads (the binding's, then items added by later catalog versions, with their checks),
/// and the provider.
async fn batch_columns(ex: &Exchange, req: &BatchRequest) -> ExchangeResult<(DepartmentId, Columns)> {
    let resource = &req.resource_code;
    let p = published(ex, resource).await?;
    let binding = get_binding(ex, resource).await?.ok_or(ExchangeError::NotFound { what: "binding" })?;
    let key_item = binding.key_item.clone().ok_or_else(|| ExchangeError::Conflict("the dataset has no key item".into()))?;
    // Columns: the binding's, then items added by later catalog versions.
    let mut names = binding.columns.clone();
    for i in &p.document.items {
        if !names.contains(&i.name) {
            names.push(i.name.clone());
        }
    }
    let checks: Vec<Option<ItemCheck>> = names.iter().map(|n| p.document.items.iter().find(|i| &i.name == n).map(ItemCheck::of)).collect();
    let key = names
        .iter()
        .position(|n| *n == key_item)
        .ok_or_else(|| ExchangeError::Conflict(format!("the key item '{key_item}' is no longer an item")))?;
    if checks[key].is_none() {
        return Err(ExchangeError::Conflict(format!("the key item '{key_item}' is no longer in the published catalog entry")));
    }
    // A sensitive key is stored as its blind index. The table's choice stands until a full batch replaces it.
    let key_sealed = if req.mode == IngestMode::Full || binding.table_name.is_none() {
        ex.data_keys.is_some() && checks[key].as_ref().is_some_and(|c| c.mask.is_some())
    } else {
        binding.key_sealed
    };
    Ok((p.provider, Columns { names, checks, key, key_sealed }))
}

/// Records a new batch as loading and takes the dataset's claim. Returns the batch and the dataset's last
/// sequence number (the batch's rows follow it).
async fn open_batch(
    ex: &Exchange,
    ctx: &AuditContext,
    req: &BatchRequest,
    batch_key: &str,
    provider: i64,
    started: i64,
) -> ExchangeResult<(i64, i64)> {
    let code = req.resource_code.as_str();
    let batch: i64 = sqlx::query(
        "INSERT INTO exchange_batches (resource_code, batch_key, mode, format, encoding, status, started_at, submitted_by, provider_department_id) \
         VALUES ($1, $2, $3, $4, '', 'loading', $5, $6, $7) RETURNING id",
    )
    .bind(code)
    .bind(batch_key)
    .bind(req.mode.as_str())
    .bind(req.format.as_str())
    .bind(started)
    .bind(&ctx.actor)
    .bind(provider)
    .fetch_one(ex.pool.pool())
    .await?
    .try_get(0)?;
    if !claim(ex.pool.pool(), ex, code, batch, started).await? {
        finish_failed(ex, batch, "another batch of this dataset is being loaded", false).await;
        return Err(ExchangeError::Conflict(format!("another batch of {code} is being loaded: try again when it has finished")));
    }
    let base: i64 = sqlx::query("SELECT last_seq FROM exchange_bindings WHERE resource_code = $1")
        .bind(code)
        .fetch_one(ex.pool.pool())
        .await?
        .try_get(0)?;
    Ok((batch, base))
}

/// What a batch's loads read, ready for its final transaction.
struct Concluded {
    batch: i64,
    base: i64,
    started: i64,
    encoding: &'static str,
    /// Rows received and rejected by the whole batch (all its parts).
    received: i64,
    rejected: i64,
    parts: i64,
}

/// Ends a loaded batch: refused as a whole (all-or-nothing with rejects, or a full batch without a valid
/// row), or committed. `rejects` are those not yet recorded (a batch in parts recorded its earlier parts').
#[allow(clippy::too_many_arguments)]
async fn conclude(
    ex: &Exchange,
    ctx: &AuditContext,
    req: &BatchRequest,
    provider: &DepartmentId,
    columns: &Columns,
    load_table: &str,
    batch_key: &str,
    l: Concluded,
    rejects: &[RejectedRow],
) -> ExchangeResult<BatchReport> {
    let Concluded { batch, base, started, encoding, received, rejected: rejected_count, parts } = l;
    let accepted = received - rejected_count;
    let empty_full = req.mode == IngestMode::Full && accepted == 0;
    if (req.all_or_nothing && rejected_count > 0) || empty_full {
        drop_table(ex, load_table).await;
        let message = if empty_full {
            format!("the full batch has no valid rows ({rejected_count} rejected): it would empty the dataset, so nothing was applied")
        } else {
            format!("{rejected_count} of {received} rows were rejected and all_or_nothing is set: nothing was applied")
        };
        let report = finish_rejected(ex, batch, encoding, received, rejected_count, rejects, &message).await?;
        return Err(ExchangeError::BatchRejected { message, report: Box::new(report) });
    }
    // 阻断: the blocking quality rules over the rows the batch writes.
    if let Some(gate) = ex.batch_gate()
        && let Some(mut view) = get_binding(ex, &req.resource_code).await?
    {
        view.table_name = Some(load_table.to_string());
        view.columns = columns.names.clone();
        if let Err(why) = gate.check(ex, &view).await {
            drop_table(ex, load_table).await;
            let message = format!("a blocking quality rule failed: {why}; nothing was applied");
            let report = finish_rejected(ex, batch, encoding, received, rejected_count, rejects, &message).await?;
            return Err(ExchangeError::BatchRejected { message, report: Box::new(report) });
        }
    }
    let totals = (received, rejected_count, parts);
    match commit(ex, ctx, req, provider, columns, batch, base, started, load_table, encoding, totals, rejects).await {
        Ok(report) => Ok(report),
        Err(e) => {
            drop_table(ex, load_table).await;
            let duplicate = matches!(&e, ExchangeError::Store(shutong_store::StoreError::Conflict { .. }));
            finish_failed(ex, batch, &failure_text(&e), true).await;
            if duplicate {
                // The same batch ID committed concurrently: answer with that batch's report.
                if let Some(done) = committed_batch(ex, &req.resource_code, batch_key).await? {
                    return Ok(done);
                }
            }
            Err(e)
        }
    }
}

/// The key column's type. On PostgreSQL keys collate "C" (byte order, as on SQLite): the key index is
/// built and searched with plain byte comparisons instead of the locale's, which made a full batch's index
/// build and every lookup slower, and gave no order anyone relies on.
fn key_type(ex: &Exchange) -> &'static str {
    match ex.pool.backend() {
        Backend::Postgres => "TEXT COLLATE \"C\"",
        Backend::Sqlite => "TEXT",
    }
}

/// Takes the dataset's claim for `holder` (a batch, or -1 for a re-encryption pass) unless another holder's
/// claim is younger than `exchange.claim_timeout_seconds`. Returns whether it was taken.
pub(crate) async fn claim<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::Any>,
    ex: &Exchange,
    code: &str,
    holder: i64,
    now: i64,
) -> ExchangeResult<bool> {
    let claimed = sqlx::query(
        "UPDATE exchange_bindings SET busy_batch = $1, busy_since = $2 WHERE resource_code = $3 AND (busy_batch IS NULL OR busy_since < $4)",
    )
    .bind(holder)
    .bind(now)
    .bind(code)
    .bind(now - ex.settings.claim_timeout_ms)
    .execute(on)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

/// The final transaction: the loaded rows become the dataset (full) or are merged into it (incremental).
#[allow(clippy::too_many_arguments)]
async fn commit(
    ex: &Exchange,
    ctx: &AuditContext,
    req: &BatchRequest,
    provider: &DepartmentId,
    columns: &Columns,
    batch: i64,
    base: i64,
    started: i64,
    load_table: &str,
    encoding: &str,
    (received, rejected, parts): (i64, i64, i64),
    rejects: &[RejectedRow],
) -> ExchangeResult<BatchReport> {
    let code = req.resource_code.as_str();
    let ncols = columns.names.len();
    let mut change = crate::binding::pool_change(ex, ctx).await?;
    // Still ours? (A claim lapses if this writer stalled past the timeout and another batch took over.)
    let row = sqlx::query("SELECT busy_batch, table_name, last_seq, row_count, columns FROM exchange_bindings WHERE resource_code = $1")
        .bind(code)
        .fetch_one(&mut **change.tx())
        .await?;
    if row.try_get::<Option<i64>, _>("busy_batch")? != Some(batch) {
        return Err(ExchangeError::Conflict(
            "the batch lost its claim on the dataset (it stalled past exchange.claim_timeout_seconds)".into(),
        ));
    }
    let old_table: Option<String> = row.try_get("table_name")?;
    let last_seq: i64 = row.try_get("last_seq")?;
    let old_count: i64 = row.try_get("row_count")?;
    let old_columns: Vec<String> = shutong_store::parse_column(&row, "exchange_bindings", "columns", |s| serde_json::from_str(s).ok())?;
    let now = now_ms();
    let (upserted, deleted, rows_after, first_seq, max_seq, table, reset_seq, drop_after) = if req.mode == IngestMode::Full {
        let r = sqlx::query(&format!("SELECT COUNT(*), MIN(s), MAX(s) FROM {load_table}")).fetch_one(&mut **change.tx()).await?;
        let n: i64 = r.try_get(0)?;
        let min: Option<i64> = r.try_get(1)?;
        let max: Option<i64> = r.try_get(2)?;
        (n, 0, n, min, max, load_table.to_string(), Some(min.unwrap_or(last_seq + 1)), old_table.clone())
    } else {
        // The dataset's table: the current one, extended by new columns, or a new one for a first batch.
        let target = match &old_table {
            Some(t) => {
                for i in old_columns.len()..ncols {
                    sqlx::query(&format!("ALTER TABLE {t} ADD COLUMN c{i} TEXT")).execute(&mut **change.tx()).await?;
                }
                t.clone()
            }
            None => {
                let t = schema::table_name("xd", code, batch);
                let cols_sql: String = (0..ncols).map(|i| format!(", c{i} TEXT")).collect();
                sqlx::query(&format!(
                    "CREATE TABLE {t} (k {} NOT NULL, s BIGINT NOT NULL, b BIGINT NOT NULL, t BIGINT NOT NULL, d BIGINT NOT NULL{cols_sql})",
                    key_type(ex)
                ))
                .execute(&mut **change.tx())
                .await?;
                sqlx::query(&format!("CREATE UNIQUE INDEX {t}_k ON {t} (k)")).execute(&mut **change.tx()).await?;
                sqlx::query(&format!("CREATE INDEX {t}_s ON {t} (s)")).execute(&mut **change.tx()).await?;
                t
            }
        };
        // The staging keys compare in the target's collation, so that its key index serves the join: a
        // dataset created before keys collated "C" keeps the database's default.
        let collate = match ex.pool.backend() {
            Backend::Postgres => {
                let c: Option<String> = sqlx::query(
                    "SELECT collation_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'k'",
                )
                .bind(&target)
                .fetch_optional(&mut **change.tx())
                .await?
                .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten());
                if c.as_deref() == Some("C") { "" } else { " COLLATE \"default\"" }
            }
            Backend::Sqlite => "",
        };
        let r = sqlx::query(&format!(
            "SELECT COALESCE(SUM(CASE WHEN st.d = 0 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 1 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 0 AND (t.k IS NULL OR t.d = 1) THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 1 AND t.k IS NOT NULL AND t.d = 0 THEN 1 ELSE 0 END), 0), \
                    MIN(st.s), MAX(st.s) \
             FROM {load_table} st LEFT JOIN {target} t ON t.k = st.k{collate}"
        ))
        .fetch_one(&mut **change.tx())
        .await?;
        let (ups, dels, added, removed): (i64, i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let (min, max): (Option<i64>, Option<i64>) = (r.try_get(4)?, r.try_get(5)?);
        let names: String = (0..ncols).map(|i| format!(", c{i}")).collect();
        let sets: String = (0..ncols).map(|i| format!(", c{i} = excluded.c{i}")).collect();
        sqlx::query(&format!(
            "INSERT INTO {target} (k, s, b, t, d{names}) SELECT k, s, b, t, d{names} FROM {load_table} WHERE true \
             ON CONFLICT (k) DO UPDATE SET s = excluded.s, b = excluded.b, t = excluded.t, d = excluded.d{sets}"
        ))
        .execute(&mut **change.tx())
        .await?;
        (ups, dels, old_count + added - removed, min, max, target, None, Some(load_table.to_string()))
    };
    let new_last = max_seq.unwrap_or(last_seq).max(last_seq);
    sqlx::query(
        "UPDATE exchange_bindings SET table_name = $1, columns = $2, last_seq = $3, reset_seq = COALESCE($4, reset_seq), row_count = $5, \
         last_batch_at = $6, busy_batch = NULL, busy_since = NULL, updated_at = $6, key_sealed = $8 WHERE resource_code = $7",
    )
    .bind(&table)
    .bind(json!(columns.names).to_string())
    .bind(new_last)
    .bind(reset_seq)
    .bind(rows_after)
    .bind(now)
    .bind(code)
    .bind(columns.key_sealed as i64)
    .execute(&mut **change.tx())
    .await?;
    // `audited` marked batches whose event was still to be written by an older release; the event is now
    // written with the batch, in its transaction or through the pool's audit outbox.
    let audited = true;
    sqlx::query(
        "UPDATE exchange_batches SET status = 'committed', encoding = $1, rows_received = $2, rows_upserted = $3, rows_deleted = $4, \
         rows_rejected = $5, rows_after = $6, first_seq = $7, last_seq = $8, finished_at = $9, audited = $10, parts = $12 WHERE id = $11",
    )
    .bind(encoding)
    .bind(received)
    .bind(upserted)
    .bind(deleted)
    .bind(rejected)
    .bind(rows_after)
    .bind(first_seq)
    .bind(max_seq)
    .bind(now)
    .bind(audited as i64)
    .bind(batch)
    .bind(parts)
    .execute(&mut **change.tx())
    .await?;
    insert_rejects(change.tx(), batch, rejects).await?;
    let detail = json!({
        "batch": batch, "batch_id": req.batch_id, "mode": req.mode, "format": req.format, "received": received,
        "upserted": upserted, "deleted": deleted, "rejected": rejected, "rows_after": rows_after,
        "first_seq": first_seq, "last_seq": max_seq, "started_at": started, "base_seq": base, "parts": parts,
    });
    change.record(batch_event(code, provider, detail)).await?;
    change.notify(shutong_audit::Notice::DataChanged { code: code.to_string() });
    crate::binding::commit_pool_change(ex, change).await?;
    if let Some(t) = drop_after {
        drop_table(ex, &t).await;
    }
    load_batch(ex, code, batch).await
}

fn batch_event(code: &str, provider: &DepartmentId, detail: serde_json::Value) -> NewAuditEvent<'static> {
    NewAuditEvent {
        action: shutong_audit::Action::DataBatch,
        target_kind: "resource",
        target_id: code.to_string(),
        department_id: Some(provider.0),
        detail,
    }
}

/// Moves the events of the pool's audit outbox into the platform's trail (SQLite: the pool is a database of
/// its own), and writes those of committed batches left unaudited by an older release. Run after every
/// commit and at start; what fails stays for the next run.
pub async fn audit_outbox(ex: &Exchange) {
    if ex.same_database() {
        return;
    }
    if let Err(e) = shutong_audit::outbox::drain(&ex.db, &ex.pool, "pool").await {
        tracing::warn!(error = %e, "pool audit outbox: will retry");
    }
    let run = async {
        let rows = sqlx::query(concat!(
            "SELECT ",
            crate::batch_columns!(),
            " FROM exchange_batches WHERE status = 'committed' AND audited = 0 ORDER BY id LIMIT 100"
        ))
        .fetch_all(ex.pool.pool())
        .await?;
        for r in rows {
            let report = crate::binding::report_from_row(&r)?;
            let provider = DepartmentId(r.try_get("provider_department_id")?);
            let ctx = AuditContext { actor: report.submitted_by.clone(), ..Default::default() };
            let detail = json!({
                "batch": report.id, "batch_id": report.batch_id, "mode": report.mode, "format": report.format,
                "received": report.rows_received, "upserted": report.rows_upserted, "deleted": report.rows_deleted,
                "rejected": report.rows_rejected, "rows_after": report.rows_after, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "started_at": report.started_at_ms,
            });
            let mut conn = ex.db.pool().acquire().await.map_err(shutong_store::StoreError::from)?;
            shutong_audit::record(&mut conn, &ctx, batch_event(&report.resource_code, &provider, detail)).await?;
            sqlx::query("UPDATE exchange_batches SET audited = 1 WHERE id = $1").bind(report.id).execute(ex.pool.pool()).await?;
        }
        ExchangeResult::Ok(())
    };
    if let Err(e) = run.await {
        tracing::warn!(error = %e, "batch audit outbox: will retry");
    }
}

async fn insert_rejects(tx: &mut shutong_store::Tx, batch: i64, rejects: &[RejectedRow]) -> ExchangeResult<()> {
    for part in rejects.chunks(500) {
        let mut sql = String::from("INSERT INTO exchange_rejects (batch_id, row_no, record_key, field, reason) VALUES ");
        for i in 0..part.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 4;
            sql.push_str(&format!("({batch}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        let mut q = sqlx::query(&sql);
        for r in part {
            q = q.bind(r.row).bind(r.key.as_deref()).bind(r.field.as_deref()).bind(r.reason.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn drop_table(ex: &Exchange, table: &str) {
    if schema::is_pool_table_name(table)
        && let Err(e) = sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(ex.pool.pool()).await
    {
        tracing::warn!(error = %e, table, "could not drop a dataset table; the next start drops it");
    }
}

/// Why a batch failed, as its report shows it to the provider: the error for what the provider can mend,
/// opaque for the platform's own faults (they are logged, as a 5xx answer is).
fn failure_text(e: &ExchangeError) -> String {
    match e {
        ExchangeError::Store(shutong_store::StoreError::Unavailable(_)) => "the database was unavailable: send the batch again".into(),
        ExchangeError::Store(_) | ExchangeError::Sealed(_) => "an internal error stopped the batch (see the server log)".into(),
        other => other.to_string(),
    }
}

/// Marks a batch failed and releases its claim (if `release`).
async fn finish_failed(ex: &Exchange, batch: i64, why: &str, release: bool) {
    let run = async {
        sqlx::query("UPDATE exchange_batches SET status = 'failed', failure = $1, finished_at = $2 WHERE id = $3")
            .bind(why)
            .bind(now_ms())
            .bind(batch)
            .execute(ex.pool.pool())
            .await?;
        if release {
            sqlx::query("UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL WHERE busy_batch = $1")
                .bind(batch)
                .execute(ex.pool.pool())
                .await?;
        }
        ExchangeResult::Ok(())
    };
    if let Err(e) = run.await {
        tracing::warn!(error = %e, batch, "could not record a failed batch; the next start cleans it up");
    }
}

async fn finish_rejected(
    ex: &Exchange,
    batch: i64,
    encoding: &str,
    received: i64,
    rejected: i64,
    rejects: &[RejectedRow],
    why: &str,
) -> ExchangeResult<BatchReport> {
    let mut tx = ex.pool.pool().begin().await?;
    sqlx::query(
        "UPDATE exchange_batches SET status = 'rejected', encoding = $1, rows_received = $2, rows_rejected = $3, failure = $4, finished_at = $5 WHERE id = $6",
    )
    .bind(encoding)
    .bind(received)
    .bind(rejected)
    .bind(why)
    .bind(now_ms())
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    insert_rejects(&mut tx, batch, rejects).await?;
    sqlx::query("UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL WHERE busy_batch = $1")
        .bind(batch)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let code: String =
        sqlx::query("SELECT resource_code FROM exchange_batches WHERE id = $1").bind(batch).fetch_one(ex.pool.pool()).await?.try_get(0)?;
    load_batch(ex, &code, batch).await
}

fn keep_reject(rejects: &mut Vec<RejectedRow>, rejected: &mut i64, max: usize, r: RejectedRow) {
    *rejected += 1;
    if rejects.len() < max {
        rejects.push(r);
    }
}
