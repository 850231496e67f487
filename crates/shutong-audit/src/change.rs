//! The unit of work of one state change (一次状态变更): its transaction, the audit context of who makes it,
//! its audit events, and the notices whose effects run once it has committed.
//!
//! **Invariant:** a `Change` commits only with at least one audit event recorded in its own transaction
//! ([`Change::commit`] refuses otherwise and rolls back), and its effects ([`Notice`]) run only after the
//! commit succeeded, before the caller answers. Service functions open one with [`Change::begin`], write
//! through [`Change::tx`], record with [`Change::record`], announce with [`Change::notify`] and finish with
//! [`Change::commit`]; the HTTP handlers, the portal and the CLI never run effects themselves.

use shutong_store::effects::Notice;
use shutong_store::{Db, StoreError, StoreResult, Tx};

use crate::{AuditContext, NewAuditEvent, record};

/// Where a change's events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trail {
    /// Into `audit_events`, in the change's transaction: the change is in the platform database.
    Direct,
    /// Into the database's `audit_outbox`, in the change's transaction: the change is in another database
    /// (the SQLite data pool); `outbox::drain` moves the events into the trail after the commit.
    Outbox,
}

/// One state change in progress (see the module doc).
pub struct Change<'c> {
    db: Db,
    tx: Tx,
    ctx: &'c AuditContext,
    trail: Trail,
    recorded: usize,
    notices: Vec<Notice>,
}

impl<'c> Change<'c> {
    /// Opens the change's transaction (on SQLite with the write lock at once, as `Db::begin`).
    pub async fn begin(db: &Db, ctx: &'c AuditContext) -> StoreResult<Change<'c>> {
        Ok(Change { db: db.clone(), tx: db.begin().await?, ctx, trail: Trail::Direct, recorded: 0, notices: Vec::new() })
    }

    /// Opens a change in a database other than the platform's (the SQLite data pool): its events are written
    /// to that database's audit outbox in the change's transaction, so that neither commits without the
    /// other, and are moved into the trail afterwards ([`crate::outbox::drain`]).
    pub async fn begin_with_outbox(db: &Db, ctx: &'c AuditContext) -> StoreResult<Change<'c>> {
        Ok(Change { db: db.clone(), tx: db.begin().await?, ctx, trail: Trail::Outbox, recorded: 0, notices: Vec::new() })
    }

    async fn write(&mut self, ctx: &AuditContext, event: NewAuditEvent<'_>) -> StoreResult<i64> {
        match self.trail {
            Trail::Direct => record(&mut self.tx, ctx, event).await,
            Trail::Outbox => crate::outbox::enqueue(&mut self.tx, ctx, event).await.map(|()| 0),
        }
    }

    /// The transaction, for the change's own statements.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Who makes the change.
    pub fn ctx(&self) -> &'c AuditContext {
        self.ctx
    }

    /// Records an audit event of this change, in its transaction. Returns its number in the trail (0 when it
    /// goes through the outbox: it is numbered when drained).
    pub async fn record(&mut self, event: NewAuditEvent<'_>) -> StoreResult<i64> {
        let seq = self.write(self.ctx, event).await?;
        self.recorded += 1;
        Ok(seq)
    }

    /// Records an audit event of this change under another context: a change made on someone's behalf (a
    /// login records the user it authenticated as the actor) or by another part of the system (the
    /// configuration's node identity applied at start-up).
    pub async fn record_as(&mut self, ctx: &AuditContext, event: NewAuditEvent<'_>) -> StoreResult<i64> {
        let seq = self.write(ctx, event).await?;
        self.recorded += 1;
        Ok(seq)
    }

    /// Records several audit events of this change at once, in its transaction.
    pub async fn record_many(&mut self, events: &[NewAuditEvent<'_>]) -> StoreResult<()> {
        match self.trail {
            Trail::Direct => crate::record_many(&mut self.tx, self.ctx, events).await?,
            Trail::Outbox => {
                for e in events {
                    crate::outbox::enqueue(&mut self.tx, self.ctx, e.clone()).await?;
                }
            }
        }
        self.recorded += events.len();
        Ok(())
    }

    /// Announces what the change changed, for the effects that run after the commit.
    pub fn notify(&mut self, notice: Notice) {
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
    }

    /// Ends a change that may have turned out to change nothing (an idempotent repeat: revoking what is
    /// already revoked): with events it commits as [`commit`](Change::commit) does; without, it rolls back
    /// and leaves no trace.
    pub async fn commit_if_recorded(self) -> StoreResult<()> {
        if self.recorded == 0 {
            self.tx.rollback().await?;
            return Ok(());
        }
        self.commit().await
    }

    /// Commits the change with its events, then runs the effects of its notices. A change that recorded no
    /// event is rolled back and refused: it would be a change the audit trail does not show.
    pub async fn commit(self) -> StoreResult<()> {
        if self.recorded == 0 {
            self.tx.rollback().await?;
            return Err(StoreError::Unaudited);
        }
        self.tx.commit().await?;
        self.db.run_effects(&self.notices).await;
        Ok(())
    }
}
