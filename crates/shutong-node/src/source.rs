//! A department's database, read (publications) or written (subscriptions) through sqlx: PostgreSQL,
//! MySQL/MariaDB and SQLite, each with its quoting, placeholders and casts. Values are read as text and
//! sent as text; the platform checks and normalises each against its item's data type. Oracle and 达梦
//! (DM) would be further dialects here: both read through ODBC or their own drivers, with `"x"` quoting,
//! `:n` placeholders and `TO_CHAR` for text.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// A department database's SQL dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    pub fn of(url: &str) -> Dialect {
        if url.starts_with("mysql:") {
            Dialect::MySql
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// A quoted identifier; `schema.table` quoted part by part.
    pub fn quote(self, ident: &str) -> String {
        ident
            .split('.')
            .map(|part| match self {
                // SQLite takes a double-quoted name that matches no column for a string literal; a
                // backquoted one is always a name, so a dropped column is an error, not a constant.
                Dialect::MySql | Dialect::Sqlite => format!("`{}`", part.replace('`', "``")),
                Dialect::Postgres => format!("\"{}\"", part.replace('"', "\"\"")),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// A column read as text.
    pub fn text(self, column: &str) -> String {
        let c = self.quote(column);
        match self {
            Dialect::MySql => format!("CAST({c} AS CHAR)"),
            _ => format!("CAST({c} AS TEXT)"),
        }
    }

    /// The `n`th placeholder (1-based). MySQL's are positional `?`: bind in order, once each.
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::MySql => "?".into(),
            _ => format!("${n}"),
        }
    }

    /// A parameter compared with a timestamp column.
    pub fn ts_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS TIMESTAMPTZ)"),
            Dialect::MySql => "CAST(? AS DATETIME(6))".into(),
            Dialect::Sqlite => format!("${n}"),
        }
    }

    /// A timestamp parameter moved back by `seconds`.
    pub fn ts_minus(self, n: usize, seconds: u64) -> String {
        match self {
            Dialect::Postgres => format!("(CAST(${n} AS TIMESTAMPTZ) - INTERVAL '{seconds} seconds')"),
            Dialect::MySql => format!("(CAST(? AS DATETIME(6)) - INTERVAL {seconds} SECOND)"),
            Dialect::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', ${n}, '-{seconds} seconds')"),
        }
    }

    /// The key column's type for a table the node creates.
    pub fn key_type(self) -> &'static str {
        match self {
            Dialect::MySql => "VARCHAR(255)",
            _ => "TEXT",
        }
    }

    /// `INSERT … ON CONFLICT` for a table the node keeps: `columns[0]` is the key.
    pub fn upsert(self, table: &str, columns: &[String], rows: usize) -> String {
        let t = self.quote(table);
        let cols: Vec<String> = columns.iter().map(|c| self.quote(c)).collect();
        let mut n = 0;
        let values: Vec<String> = (0..rows)
            .map(|_| {
                let ps: Vec<String> = columns
                    .iter()
                    .map(|_| {
                        n += 1;
                        self.param(n)
                    })
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let head = format!("INSERT INTO {t} ({}) VALUES {}", cols.join(", "), values.join(", "));
        match self {
            Dialect::MySql => {
                let sets: Vec<String> = cols[1..].iter().map(|c| format!("{c} = VALUES({c})")).collect();
                if sets.is_empty() {
                    format!("{head} ON DUPLICATE KEY UPDATE {0} = {0}", cols[0])
                } else {
                    format!("{head} ON DUPLICATE KEY UPDATE {}", sets.join(", "))
                }
            }
            _ => {
                let sets: Vec<String> = cols[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
                if sets.is_empty() {
                    format!("{head} ON CONFLICT ({}) DO NOTHING", cols[0])
                } else {
                    format!("{head} ON CONFLICT ({}) DO UPDATE SET {}", cols[0], sets.join(", "))
                }
            }
        }
    }
}

/// Opens a department database: PostgreSQL sessions in China time (timestamps read as text keep their
/// wall-clock meaning), SQLite with a busy timeout.
pub async fn connect(url: &str, max: u32) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::of(url);
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                match dialect {
                    Dialect::Postgres => {
                        conn.execute("SET TIME ZONE 'Asia/Shanghai'").await?;
                    }
                    Dialect::MySql => {
                        conn.execute("SET time_zone = '+08:00'").await?;
                    }
                    Dialect::Sqlite => {
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                    }
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", redact(url)))?;
    Ok(pool)
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// A value as read: text or NULL. Timestamps lose their fraction and zone (`2026-12-06 10:00:00`), in the
/// session's China time, which is what the platform's date-and-time items take.
pub fn text_at(row: &AnyRow, i: usize) -> anyhow::Result<Option<String>> {
    let v: Option<String> = match row.try_get(i) {
        Ok(v) => v,
        // MySQL reports a long text (TEXT, a cast of one) as a BLOB with a character set: its bytes are UTF-8.
        Err(_) => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map(|b| String::from_utf8(b).map_err(|e| anyhow::anyhow!("column {i}: {e}")))
            .transpose()?,
    };
    Ok(v.map(normalise))
}

fn normalise(v: String) -> String {
    let b = v.as_bytes();
    let stamp = b.len() > 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':'
        && b[..19].iter().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit())
        && b[19..].iter().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-' | b':' | b'Z'));
    if stamp { v[..19].replace('T', " ") } else { v }
}

/// Which mapped columns a table lacks (a renamed or dropped column), by probing each one.
pub async fn missing_columns(pool: &AnyPool, dialect: Dialect, table: &str, columns: &[&str]) -> anyhow::Result<Vec<String>> {
    let t = dialect.quote(table);
    sqlx::query(&format!("SELECT 1 FROM {t} WHERE 1 = 0"))
        .fetch_optional(pool)
        .await
        .map_err(|e| anyhow::anyhow!("table '{table}' cannot be read: {e}"))?;
    let mut out = Vec::new();
    for c in columns {
        if sqlx::query(&format!("SELECT {} FROM {t} WHERE 1 = 0", dialect.quote(c))).fetch_optional(pool).await.is_err() {
            out.push(c.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_quote_and_place() {
        assert_eq!(Dialect::Postgres.quote("hr.people"), "\"hr\".\"people\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
        assert_eq!(
            Dialect::MySql.upsert("t", &["k".into(), "v".into()], 2),
            "INSERT INTO `t` (`k`, `v`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)"
        );
        assert_eq!(
            Dialect::Sqlite.upsert("t", &["k".into(), "v".into()], 1),
            "INSERT INTO `t` (`k`, `v`) VALUES ($1, $2) ON CONFLICT (`k`) DO UPDATE SET `v` = excluded.`v`"
        );
        assert_eq!(Dialect::Postgres.upsert("t", &["k".into()], 1), "INSERT INTO \"t\" (\"k\") VALUES ($1) ON CONFLICT (\"k\") DO NOTHING");
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn timestamps_lose_fraction_and_zone_only() {
        assert_eq!(normalise("2026-12-06 10:00:00.123456+08".into()), "2026-12-06 10:00:00");
        assert_eq!(normalise("2026-12-06T10:00:00Z".into()), "2026-12-06 10:00:00");
        assert_eq!(normalise("2026-12-06 10:00:00".into()), "2026-12-06 10:00:00");
        assert_eq!(normalise("2026-12-06 10:00:00 办结".into()), "2026-12-06 10:00:00 办结");
        assert_eq!(normalise("110101199003070018".into()), "110101199003070018");
    }
}
