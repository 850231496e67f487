//! 获取: a dataset the department holds a grant for, kept in a local table. The change feed is read from
//! the node's position (a full copy first: the feed from 0 holds every live record), each page applied in
//! one local transaction together with the new position (`shutong_node_positions` in the same database),
//! so that a crash repeats a page, never half of one. While connected the feed is read with `wait_ms`
//! (long-poll): a change reaches the local table moments after its commit on the platform. A feed that
//! reports a full replacement (`reset`) empties the table and reads again from 0; a grant that ends stops
//! the subscription and, unless `on_revoke = "keep"`, empties the local copy.

use std::collections::BTreeSet;

use serde_json::Value;
use shutong_client::types::exchange::ChangePage;
use shutong_client::{Client, ClientError};
use sqlx::{AnyPool, Row};

use crate::config::{OnRevoke, Subscription};
use crate::publish::{DeliveryError, classify};
use crate::source::{self, Dialect};
use crate::state::now_ms;

const POSITIONS: &str = "shutong_node_positions";

/// One subscription's local side.
pub struct LocalCopy {
    pub cfg: Subscription,
    dialect: Dialect,
    pub pool: AnyPool,
    /// Local columns of the table (the key column first), as they are now.
    columns: Vec<String>,
}

/// What one read of the feed did.
pub enum Applied {
    /// Changes applied (how many), and whether more are waiting.
    Changes { applied: usize, more: bool, lag_rows: i64 },
    /// A full replacement on the platform: the local copy was emptied to be read again.
    Reset,
}

pub enum SubscriptionError {
    Delivery(DeliveryError),
    /// The grant is gone (revoked, expired, not covering the feed): the subscription stops.
    GrantEnded(String),
}

impl LocalCopy {
    pub async fn open(cfg: &Subscription) -> anyhow::Result<LocalCopy> {
        let dialect = Dialect::of(&cfg.database_url);
        let pool = source::connect(&cfg.database_url, 2).await?;
        let d = dialect;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({} VARCHAR(64) NOT NULL PRIMARY KEY, {} VARCHAR(64) NOT NULL, {} BIGINT NOT NULL, {} BIGINT NOT NULL)",
            d.quote(POSITIONS),
            d.quote("subscription"),
            d.quote("resource"),
            d.quote("position"),
            d.quote("updated_at")
        ))
        .execute(&pool)
        .await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({} {} NOT NULL PRIMARY KEY)",
            d.quote(&cfg.table),
            d.quote(&cfg.key_column),
            d.key_type()
        ))
        .execute(&pool)
        .await?;
        let mut copy = LocalCopy { cfg: cfg.clone(), dialect, pool, columns: vec![cfg.key_column.clone()] };
        copy.columns = copy.existing_columns().await?;
        Ok(copy)
    }

    /// The local table's columns, the key first, by probing the ones the node may have added.
    async fn existing_columns(&self) -> anyhow::Result<Vec<String>> {
        let d = self.dialect;
        let sql = match d {
            Dialect::Postgres => "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position".to_string(),
            Dialect::MySql => "SELECT CAST(column_name AS CHAR) FROM information_schema.columns WHERE table_name = ? AND table_schema = DATABASE() ORDER BY ordinal_position".to_string(),
            Dialect::Sqlite => "SELECT name FROM pragma_table_info($1)".to_string(),
        };
        let table = self.cfg.table.rsplit('.').next().unwrap_or(&self.cfg.table).to_string();
        let rows = sqlx::query(&sql).bind(table).fetch_all(&self.pool).await?;
        let mut out = vec![self.cfg.key_column.clone()];
        for r in rows {
            let c: String = r.try_get(0)?;
            if c != self.cfg.key_column {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn column_of(&self, item: &str) -> String {
        self.cfg.columns.get(item).cloned().unwrap_or_else(|| item.to_string())
    }

    pub async fn position(&self) -> anyhow::Result<i64> {
        let d = self.dialect;
        let row = sqlx::query(&format!(
            "SELECT {} FROM {} WHERE {} = {}",
            d.quote("position"),
            d.quote(POSITIONS),
            d.quote("subscription"),
            d.param(1)
        ))
        .bind(self.cfg.name.clone())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// Rows in the local copy.
    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query(&format!("SELECT COUNT(*) FROM {}", self.dialect.quote(&self.cfg.table))).fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Reads one page of the feed and applies it.
    pub async fn step(&mut self, client: &Client, wait_ms: i64) -> Result<Applied, SubscriptionError> {
        let local = |e: anyhow::Error| SubscriptionError::Delivery(DeliveryError::Offline(format!("local table: {e}")));
        let since = self.position().await.map_err(local)?;
        let page = match self.read(client, since, wait_ms).await {
            Ok(p) => p,
            Err(e) => {
                return Err(match e.status().map(|s| s.as_u16()) {
                    Some(403) if e.code() == Some("no_grant") => SubscriptionError::GrantEnded(e.to_string()),
                    // Bound, and no batch loaded yet: nothing to copy so far.
                    Some(404) if e.to_string().contains("no batch") => {
                        SubscriptionError::Delivery(DeliveryError::Offline(format!("waiting for the dataset's first batch: {e}")))
                    }
                    _ => SubscriptionError::Delivery(classify(&e)),
                });
            }
        };
        if page.reset {
            self.reset().await.map_err(local)?;
            return Ok(Applied::Reset);
        }
        let applied = page.changes.len();
        let more = page.next_since < page.last_seq && applied > 0;
        self.apply(&page, since).await.map_err(local)?;
        Ok(Applied::Changes { applied, more, lag_rows: (page.last_seq - page.next_since).max(0) })
    }

    async fn read(&self, client: &Client, since: i64, wait_ms: i64) -> Result<ChangePage, ClientError> {
        let [c, s] = match self.cfg.resource.split_once('/') {
            Some((c, s)) => [c.to_string(), s.to_string()],
            None => [self.cfg.resource.clone(), String::new()],
        };
        let mut q = vec![("since", since.to_string()), ("limit", "1000".to_string()), ("wait_ms", wait_ms.to_string())];
        if let Some(g) = self.cfg.grant_id {
            q.push(("grant_id", g.to_string()));
        }
        client.get(&["api", "v1", "data", &c, &s, "changes"], &q).await
    }

    /// Applies a page and moves the position, in one local transaction.
    async fn apply(&mut self, page: &ChangePage, since: i64) -> anyhow::Result<()> {
        let d = self.dialect;
        // New items (a grant widened, a catalog version added one): new columns first.
        let mut wanted = BTreeSet::new();
        for c in &page.changes {
            if let Some(r) = &c.record {
                for k in r.keys() {
                    wanted.insert(self.column_of(k));
                }
            }
        }
        // A table that holds the 校核中 flag keeps it current: a record delivered without it is no longer under
        // verification.
        let flag_column = self.column_of(shutong_client::types::exchange::UNDER_VERIFICATION_FIELD);
        if self.columns.contains(&flag_column) && page.changes.iter().any(|c| c.record.is_some()) {
            wanted.insert(flag_column);
        }
        // The columns this page writes: the key and its items' columns (others the department added stay
        // untouched).
        let mut page_columns = vec![self.cfg.key_column.clone()];
        page_columns.extend(wanted.iter().filter(|c| **c != self.cfg.key_column).cloned());
        for col in wanted {
            if !self.columns.contains(&col) {
                sqlx::query(&format!("ALTER TABLE {} ADD COLUMN {} TEXT", d.quote(&self.cfg.table), d.quote(&col)))
                    .execute(&self.pool)
                    .await?;
                self.columns.push(col);
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut upserts: Vec<Vec<Option<String>>> = Vec::new();
        for c in &page.changes {
            let Some(key) = &c.key else {
                anyhow::bail!(
                    "the platform gives these records no key (the grant masks or leaves out the key item, and the platform keeps no data keys for pseudonyms): records cannot be kept by key"
                );
            };
            match &c.record {
                None => {
                    if !upserts.is_empty() {
                        self.upsert(&mut tx, &page_columns, &upserts).await?;
                        upserts.clear();
                    }
                    sqlx::query(&format!(
                        "DELETE FROM {} WHERE {} = {}",
                        d.quote(&self.cfg.table),
                        d.quote(&self.cfg.key_column),
                        d.param(1)
                    ))
                    .bind(key.clone())
                    .execute(&mut *tx)
                    .await?;
                }
                Some(r) => {
                    let mut values = vec![Some(key.clone())];
                    for col in &page_columns[1..] {
                        let item = self.cfg.columns.iter().find(|(_, c)| *c == col).map(|(i, _)| i.as_str()).unwrap_or(col);
                        values.push(r.get(item).and_then(|v| {
                            match v {
                                Value::Null => None,
                                Value::String(s) => Some(s.clone()),
                                // The flag's objected items (none listed: the whole record).
                                Value::Array(items) if items.is_empty() => Some("全部".to_string()),
                                Value::Array(items) => Some(
                                    items
                                        .iter()
                                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                                        .collect::<Vec<_>>()
                                        .join("、"),
                                ),
                                other => Some(other.to_string()),
                            }
                        }));
                    }
                    upserts.push(values);
                    if upserts.len() >= 200 {
                        self.upsert(&mut tx, &page_columns, &upserts).await?;
                        upserts.clear();
                    }
                }
            }
        }
        if !upserts.is_empty() {
            self.upsert(&mut tx, &page_columns, &upserts).await?;
        }
        self.set_position(&mut tx, page.next_since.max(since)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        columns: &[String],
        rows: &[Vec<Option<String>>],
    ) -> anyhow::Result<()> {
        let sql = self.dialect.upsert(&self.cfg.table, columns, rows.len());
        let mut q = sqlx::query(&sql);
        for r in rows {
            for v in r {
                q = q.bind(v.clone());
            }
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }

    async fn set_position(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, position: i64) -> anyhow::Result<()> {
        let d = self.dialect;
        let cols = vec!["subscription".to_string(), "resource".to_string(), "position".to_string(), "updated_at".to_string()];
        let sql = d.upsert(POSITIONS, &cols, 1);
        sqlx::query(&sql)
            .bind(self.cfg.name.clone())
            .bind(self.cfg.resource.clone())
            .bind(position)
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Empties the local copy and sets the position to 0, in one transaction.
    pub async fn reset(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("DELETE FROM {}", self.dialect.quote(&self.cfg.table))).execute(&mut *tx).await?;
        self.set_position(&mut tx, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The grant ended: the local copy emptied unless kept by configuration.
    pub async fn grant_ended(&self) -> anyhow::Result<bool> {
        if self.cfg.on_revoke == OnRevoke::Purge {
            self.reset().await?;
            return Ok(true);
        }
        Ok(false)
    }
}
