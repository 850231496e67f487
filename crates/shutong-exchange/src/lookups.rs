//! 按键查询 on PostgreSQL, batched: point lookups that arrive together on the same dataset (same table,
//! same columns, same row filter) are read with one statement, `WHERE k = ANY($n)`.
//!
//! A lookup's own work on the platform is a few microseconds; a round trip to the database costs more than
//! that in the server's parse-bind-execute and in the kernel on both sides. Batching needs no timer: a
//! lookup that finds fewer than [`PARALLEL`] statements of its group in flight starts one at once (so an
//! idle platform answers with no added wait), and lookups arriving meanwhile wait for the next statement,
//! which takes all of them (up to [`MAX_KEYS`]). Each lookup is still authorised, rate-limited, counted
//! and logged on its own ([`crate::read::lookup`]); only the read is shared, and each caller receives its
//! own row.
//!
//! The statements run on connections of the batcher's own, not on a pool: sqlx's pool tests a connection
//! with a round trip to the server when it hands it out and again when it takes it back, which made three
//! round trips of every statement. A statement that fails on a connection kept from before is tried once
//! more on a new one (it only reads), so a connection the server has closed meanwhile costs no lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use shutong_store::{Db, Row};
use sqlx::PgConnection;
use tokio::sync::{Semaphore, oneshot};

/// A row's values (columns `c0…`), as text.
pub(crate) type Values = Vec<Option<String>>;
type Reply = Result<Option<Values>, String>;

/// Statements in flight at once per group. One: the lookups that arrive during a statement's round trip
/// all go in the next (with `shutong-bench exchange`'s 32 clients, two in flight gave 14.8k lookups/s,
/// one 17.3k: smaller batches cost the database more per key; measured again on connections of the
/// batcher's own, two gave the same rate as one for a fifth more of the database's CPU).
const PARALLEL: usize = 1;
/// Keys per statement at most.
const MAX_KEYS: usize = 256;
/// Statements in flight at once over all groups, each on a connection of its own.
const CONNECTIONS: usize = 4;

/// Lookups that can share a statement: the statement (table, columns and row filter) and the filter's
/// parameters. The keys are bound last, as one array.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    sql: Arc<str>,
    params: Vec<String>,
}

#[derive(Default)]
struct Group {
    waiting: Vec<(String, oneshot::Sender<Reply>)>,
    in_flight: usize,
}

/// The batches being gathered, per group, and the connections their statements run on.
pub(crate) struct Lookups {
    groups: Mutex<HashMap<GroupKey, Group>>,
    /// Connections between two statements.
    idle: Mutex<Vec<PgConnection>>,
    /// One permit per connection in use.
    permits: Semaphore,
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups { groups: Mutex::default(), idle: Mutex::default(), permits: Semaphore::new(CONNECTIONS) }
    }
}

impl Lookups {
    fn idle(&self) -> MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a batch's statement on a connection kept from before, or on a new one; if one kept from before
    /// fails, once more on a new one.
    async fn read(
        &self,
        db: &Db,
        group: &GroupKey,
        batch: &[(String, oneshot::Sender<Reply>)],
        n: usize,
    ) -> Result<HashMap<String, Values>, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let kept = self.idle().pop();
        let (mut conn, fresh) = match kept {
            Some(conn) => (conn, false),
            None => (connect(db).await?, true),
        };
        let result = match read_on(&mut conn, group, batch, n).await {
            Err(e) if !fresh => {
                tracing::debug!(error = %e, "a batched lookup failed on a kept connection; once more on a new one");
                conn = connect(db).await?;
                read_on(&mut conn, group, batch, n).await
            }
            other => other,
        };
        match result {
            Ok(rows) => {
                self.idle().push(conn);
                Ok(rows)
            }
            // The connection may be in any state: not kept.
            Err(e) => Err(e.to_string()),
        }
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<GroupKey, Group>> {
        self.groups.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the row of `key` with `sql` (which selects `k` then `n` value columns, and takes `params`
    /// then the array of keys), batched with the group's other lookups. `Err` carries the database's
    /// message.
    pub(crate) async fn get(
        self: &Arc<Self>,
        db: &Db,
        sql: &str,
        params: Vec<String>,
        key: String,
        n: usize,
    ) -> Result<Option<Values>, String> {
        let (tx, rx) = oneshot::channel();
        let group = GroupKey { sql: sql.into(), params };
        let start = {
            let mut groups = self.groups();
            let g = groups.entry(group.clone()).or_default();
            g.waiting.push((key, tx));
            if g.in_flight < PARALLEL {
                g.in_flight += 1;
                Some(take_batch(&mut g.waiting))
            } else {
                None
            }
        };
        if let Some(batch) = start {
            // On a task of its own: the statement goes on for the others even if this caller goes away.
            tokio::spawn(self.clone().run(db.clone(), group, batch, n));
        }
        rx.await.unwrap_or_else(|_| Err("the batched lookup stopped".into()))
    }

    /// Runs a batch, then the lookups that gathered meanwhile, until none is waiting.
    async fn run(self: Arc<Self>, db: Db, group: GroupKey, mut batch: Vec<(String, oneshot::Sender<Reply>)>, n: usize) {
        // Should this task end without returning (a panic, or the runtime shutting down), the group must not
        // be left with a statement in flight that never ends: its waiting lookups would wait forever.
        let mut guard = InFlight { lookups: &self, group: &group, done: false };
        loop {
            match self.read(&db, &group, &batch, n).await {
                Ok(rows) => {
                    // Cloned, not moved: the same key may be asked twice in one batch.
                    for (key, tx) in batch.drain(..) {
                        let _ = tx.send(Ok(rows.get(&key).cloned()));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for (_, tx) in batch.drain(..) {
                        let _ = tx.send(Err(message.clone()));
                    }
                }
            }
            let mut groups = self.groups();
            let Some(g) = groups.get_mut(&group) else {
                guard.done = true;
                return;
            };
            if g.waiting.is_empty() {
                g.in_flight -= 1;
                if g.in_flight == 0 {
                    groups.remove(&group);
                }
                guard.done = true;
                return;
            }
            batch = take_batch(&mut g.waiting);
        }
    }
}

/// A group's statement in flight: released, and the lookups waiting behind it answered with an error, if
/// its task ends without finishing.
struct InFlight<'a> {
    lookups: &'a Lookups,
    group: &'a GroupKey,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut groups = self.lookups.groups();
        if let Some(g) = groups.get_mut(self.group) {
            for (_, tx) in g.waiting.drain(..) {
                let _ = tx.send(Err("a batched lookup failed".into()));
            }
            g.in_flight = g.in_flight.saturating_sub(1);
            if g.in_flight == 0 {
                groups.remove(self.group);
            }
        }
    }
}

fn take_batch(waiting: &mut Vec<(String, oneshot::Sender<Reply>)>) -> Vec<(String, oneshot::Sender<Reply>)> {
    if waiting.len() <= MAX_KEYS { std::mem::take(waiting) } else { waiting.drain(..MAX_KEYS).collect() }
}

async fn connect(db: &Db) -> Result<PgConnection, String> {
    match db.pg_short_connection().await {
        Ok(Some(conn)) => Ok(conn),
        Ok(None) => Err("batched lookups need PostgreSQL".into()),
        Err(e) => Err(e.to_string()),
    }
}

async fn read_on(
    conn: &mut PgConnection,
    group: &GroupKey,
    batch: &[(String, oneshot::Sender<Reply>)],
    n: usize,
) -> Result<HashMap<String, Values>, sqlx::Error> {
    let keys: Vec<&str> = batch.iter().map(|(k, _)| k.as_str()).collect();
    let mut q = sqlx::query(&group.sql);
    for p in &group.params {
        q = q.bind(p.as_str());
    }
    let rows = q.bind(keys).fetch_all(&mut *conn).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let key: String = r.try_get(0)?;
        let values = (1..=n).map(|i| r.try_get::<Option<String>, _>(i)).collect::<Result<Values, _>>()?;
        found.entry(key).or_insert(values);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement's task that ends without finishing releases its group and answers those waiting.
    #[tokio::test]
    async fn an_unfinished_statement_releases_its_group() {
        let lookups = Lookups::default();
        let group = GroupKey { sql: "SELECT k FROM t WHERE k = ANY($1)".into(), params: vec![] };
        let (tx, rx) = oneshot::channel();
        lookups.groups().insert(group.clone(), Group { waiting: vec![("k1".into(), tx)], in_flight: 1 });
        drop(InFlight { lookups: &lookups, group: &group, done: false });
        assert!(matches!(rx.await, Ok(Err(_))), "the waiting lookup is answered with an error");
        assert!(lookups.groups().is_empty(), "no statement is left in flight");

        // A finished one changes nothing.
        let (tx, mut rx) = oneshot::channel();
        lookups.groups().insert(group.clone(), Group { waiting: vec![("k2".into(), tx)], in_flight: 1 });
        drop(InFlight { lookups: &lookups, group: &group, done: true });
        assert!(rx.try_recv().is_err());
        assert_eq!(lookups.groups().get(&group).map(|g| (g.waiting.len(), g.in_flight)), Some((1, 1)));
    }
}
