//! The audit outbox: the audit events of changes made in a database other than the platform's.
//!
//! On SQLite the data pool is a database file of its own (`pool.db`), so a change there (a binding, a file,
//! a batch) cannot write its event into the platform's `audit_events` in its own transaction. It writes the
//! event into its own database's `audit_outbox` instead ([`enqueue`], in the change's transaction: a change
//! without its event cannot commit), and [`drain`] moves the events across: each move inserts the event and
//! records `(source, outbox id)` in `audit_outbox_applied` in one platform transaction, then removes it
//! from the outbox. A move interrupted anywhere is repeated without writing the event twice. The event keeps
//! the time and actor of the change.

use shutong_store::{AnyConnection, Backend, Db, Row, StoreResult, now_ms};

use crate::{AuditContext, NewAuditEvent, StampedEvent, record_stamped};

/// The outbox table, in the database whose changes it holds the events of.
pub fn create_table_sql(backend: Backend) -> String {
    let serial = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS audit_outbox (
            id {serial},
            at BIGINT NOT NULL,
            actor_user_id BIGINT,
            actor TEXT NOT NULL,
            department_id BIGINT,
            action TEXT NOT NULL,
            target_kind TEXT NOT NULL,
            target_id TEXT NOT NULL,
            detail TEXT NOT NULL,
            request_id TEXT,
            ip TEXT
        )"
    )
}

/// Writes a change's event into the outbox of the database the change is made in, on the change's own
/// transaction.
pub async fn enqueue(conn: &mut AnyConnection, ctx: &AuditContext, event: NewAuditEvent<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_outbox (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(now_ms())
    .bind(ctx.actor_user_id)
    .bind(&ctx.actor)
    .bind(event.department_id)
    .bind(event.action.code())
    .bind(event.target_kind)
    .bind(&event.target_id)
    .bind(event.detail.to_string())
    .bind(&ctx.request_id)
    .bind(&ctx.ip)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves every event of `source`'s outbox into the platform's audit trail, oldest first; returns how many
/// were written. `name` tells the sources apart in `audit_outbox_applied`.
pub async fn drain(platform: &Db, source: &Db, name: &str) -> StoreResult<usize> {
    let mut moved = 0;
    loop {
        let rows = sqlx::query(
            "SELECT id, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip \
             FROM audit_outbox ORDER BY id LIMIT 256",
        )
        .fetch_all(source.pool())
        .await?;
        if rows.is_empty() {
            return Ok(moved);
        }
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let detail: String = r.try_get("detail")?;
            let detail = serde_json::from_str(&detail)
                .map_err(|e| shutong_store::StoreError::Decode(format!("audit_outbox.detail of outbox event {id} is not JSON: {e}")))?;
            let action: String = r.try_get("action")?;
            let action =
                crate::Action::parse(&action).ok_or_else(|| shutong_store::StoreError::decode("audit_outbox", "action", &action))?;
            let target_kind: String = r.try_get("target_kind")?;
            let ctx = AuditContext {
                actor_user_id: r.try_get("actor_user_id")?,
                actor: r.try_get("actor")?,
                request_id: r.try_get("request_id")?,
                ip: r.try_get("ip")?,
            };
            let event = NewAuditEvent {
                action,
                target_kind: &target_kind,
                target_id: r.try_get("target_id")?,
                department_id: r.try_get("department_id")?,
                detail,
            };
            let mut tx = platform.pool().begin().await?;
            let fresh =
                sqlx::query("INSERT INTO audit_outbox_applied (source, outbox_id, applied_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(name)
                    .bind(id)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            if fresh {
                record_stamped(&mut tx, &[StampedEvent { at_ms: r.try_get("at")?, ctx: &ctx, event }]).await?;
                moved += 1;
            }
            tx.commit().await?;
            sqlx::query("DELETE FROM audit_outbox WHERE id = $1").bind(id).execute(source.pool()).await?;
        }
    }
}
