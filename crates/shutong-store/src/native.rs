//! The native paths around the portable pool, kept here once: SQLite connections of rusqlite opened with
//! the pool's settings (for the data plane's and the audit trail's bulk reads and writes, which sqlx would
//! hand across threads statement by statement), and PostgreSQL's binary `COPY … FROM STDIN` as a writer
//! that sends its rows in parts (the encoding is [`crate::binary`]).

use std::path::Path;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

use crate::binary;

/// How long a native SQLite connection waits for the write lock, as the pool's connections do.
pub const SQLITE_BUSY: Duration = Duration::from_secs(10);

/// A read-only SQLite connection (no mutex: one thread uses it), waiting up to `busy` for a writer.
pub fn sqlite_reader(path: &Path, busy: Duration) -> rusqlite::Result<rusqlite::Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

/// A read-write SQLite connection with the pool's settings (busy timeout, `synchronous = NORMAL` under the
/// pool's WAL journal) and a page cache of `cache_kib` KiB when given (the b-trees a long writer keeps
/// going back to stay in memory).
pub fn sqlite_writer(path: &Path, cache_kib: Option<i64>) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(SQLITE_BUSY)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if let Some(kib) = cache_kib {
        conn.pragma_update(None, "cache_size", -kib)?;
    }
    Ok(conn)
}

/// `COPY table (columns) FROM STDIN` in binary, as a writer: rows are encoded into a buffer with
/// [`crate::binary`] and sent whenever the caller says (so that the server inserts while the next part is
/// prepared); [`finish`](CopyIn::finish) sends the trailer. Dropped or [`abort`](CopyIn::abort)ed, nothing is
/// written.
pub struct CopyIn<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: Vec<u8>,
    fields: i16,
}

impl<'c> CopyIn<'c> {
    /// Starts the copy. `freeze` writes the rows frozen (the table must have been created or truncated in
    /// the same transaction): no hint bits for the first readers to set and write back.
    pub async fn begin(conn: &'c mut PgConnection, table: &str, columns: &[&str], freeze: bool) -> sqlx::Result<CopyIn<'c>> {
        let options = if freeze { "FORMAT binary, FREEZE" } else { "FORMAT binary" };
        let copy = conn.copy_in_raw(&format!("COPY {table} ({}) FROM STDIN WITH ({options})", columns.join(", "))).await?;
        let mut buf = Vec::with_capacity(1 << 20);
        binary::header(&mut buf);
        Ok(CopyIn { copy, buf, fields: i16::try_from(columns.len()).unwrap_or(i16::MAX) })
    }

    /// Starts a row and returns the buffer to write its fields into, in the columns' order.
    pub fn row(&mut self) -> &mut Vec<u8> {
        binary::row(&mut self.buf, self.fields);
        &mut self.buf
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Sends what is buffered.
    pub async fn send(&mut self) -> sqlx::Result<()> {
        if !self.buf.is_empty() {
            self.copy.send(self.buf.as_slice()).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends the rest and the trailer; the rows are written. Returns how many.
    pub async fn finish(mut self) -> sqlx::Result<u64> {
        self.buf.extend_from_slice(&binary::TRAILER);
        if let Err(e) = self.copy.send(self.buf.as_slice()).await {
            let _ = self.copy.abort(e.to_string()).await;
            return Err(e);
        }
        self.copy.finish().await
    }

    /// Gives up: the server discards the rows.
    pub async fn abort(self, why: &str) {
        let _ = self.copy.abort(why).await;
    }
}
