//! The node's configuration file (`node.toml`): strict — an unknown key, a missing one or a malformed value
//! is refused naming the key at fault (`publication[1].change_column`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub platform: PlatformConfig,
    pub node: NodeSection,
    #[serde(default, rename = "publication")]
    pub publications: Vec<Publication>,
    #[serde(default, rename = "subscription")]
    pub subscriptions: Vec<Subscription>,
}

/// `[platform]`: where the platform is and who the node is there.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The platform's base URL (`http://…` or `https://…`).
    pub url: String,
    /// The node's system account (its username).
    pub account: String,
    /// The account's SM2 private key (PEM), relative to the configuration file. Default `node.key`.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// Timeout of one request to the platform, seconds. Default 60.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// `[node]`: the node itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The node's name on the platform: 1–64 of a–z 0–9 `-` `_` `.`.
    pub name: String,
    /// The node's own state (its SQLite: outbox, offsets, rejects), relative to the configuration file.
    /// Default `state`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Seconds between heartbeats. Default 30.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_seconds: u64,
    /// The outbox's disk limit, MiB: capture pauses (and the node says so) when it is reached. Default 10240.
    #[serde(default = "default_outbox_limit")]
    pub outbox_limit_mb: u64,
    /// `text` or `json`. Default `text`.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Where to serve Prometheus metrics (`127.0.0.1:9187`); none by default.
    #[serde(default)]
    pub metrics_listen: Option<String>,
}

/// How a publication finds changes in a table.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// An increasing number set on every insert and update (a sequence, a row version).
    Sequence,
    /// An update timestamp; rows are read with the key, and the last `safety_window_seconds` are read again
    /// for commits that land late with an earlier timestamp.
    Timestamp,
}

/// How a publication finds deletions.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeleteDetection {
    /// Rows are never deleted (or deletions are not shared).
    None,
    /// A column marks deleted rows (`soft_delete_column`): true, 1, 'y', 'yes', '是'.
    SoftDelete,
    /// The keys in the table are compared with the keys sent, every `compare_interval_seconds`.
    Compare,
}

/// What a folder's files are.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FolderMode {
    Full,
    Incremental,
    /// A file whose name contains `full` or `全量` is a full batch; others are incremental.
    ByName,
}

/// `[[publication]]`: one local source published to one bound resource's dataset (提供).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    /// 1–64 of a–z 0–9 `-` `_` `.`.
    pub name: String,
    /// The resource code (资源代码) of the dataset.
    pub resource: String,
    /// `table` (a table or view of the department's database) or `folder` (a drop folder).
    pub source: String,
    // --- table
    /// `postgres://…`, `mysql://…` (MySQL, MariaDB) or `sqlite://…`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The table or view, optionally with its schema (`hr.people`).
    #[serde(default)]
    pub table: Option<String>,
    /// The local key column (it must map to the resource's key item).
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub change_column: Option<String>,
    #[serde(default)]
    pub change_kind: Option<ChangeKind>,
    /// Seconds of timestamps read again (late commits), `timestamp` only. Default 5.
    #[serde(default = "default_window")]
    pub safety_window_seconds: u64,
    /// Default `none`.
    #[serde(default = "default_deletes")]
    pub deletes: DeleteDetection,
    #[serde(default)]
    pub soft_delete_column: Option<String>,
    /// Default 3600.
    #[serde(default = "default_compare")]
    pub compare_interval_seconds: u64,
    /// How often the table is read for changes, ms. Default 200.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// The most rows per batch. Default 5000.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Rows per chunk of the initial snapshot. Default 50000.
    #[serde(default = "default_chunk")]
    pub snapshot_chunk_rows: usize,
    /// Local column → resource item (信息项名称). Every mapped column is sent; the key's too.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    // --- folder
    #[serde(default)]
    pub folder: Option<PathBuf>,
    #[serde(default)]
    pub mode: Option<FolderMode>,
    /// `utf-8` or `gbk` for CSV files. Default `utf-8`.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// What happens to a subscription's local copy when its grant ends.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnRevoke {
    /// Emptied (第十七条: the data may be used only for the purpose granted). The default.
    Purge,
    Keep,
}

/// `[[subscription]]`: a granted dataset kept in a local table (获取).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub name: String,
    pub resource: String,
    /// One of several grants for the resource; default: the platform's choice.
    #[serde(default)]
    pub grant_id: Option<i64>,
    pub database_url: String,
    /// The local table, created by the node.
    pub table: String,
    /// The local column holding the record's key. Default `record_key`.
    #[serde(default = "default_key_column")]
    pub key_column: String,
    /// Item → local column; unmapped items keep their names.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default = "default_on_revoke")]
    pub on_revoke: OnRevoke,
    /// Long-poll wait of one change-feed read, ms. Default 25000.
    #[serde(default = "default_wait")]
    pub wait_ms: i64,
}

fn default_key_file() -> PathBuf {
    PathBuf::from("node.key")
}
fn default_timeout() -> u64 {
    60
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}
fn default_heartbeat() -> u64 {
    30
}
fn default_outbox_limit() -> u64 {
    10_240
}
fn default_log_format() -> String {
    "text".into()
}
fn default_window() -> u64 {
    5
}
fn default_deletes() -> DeleteDetection {
    DeleteDetection::None
}
fn default_compare() -> u64 {
    3600
}
fn default_poll() -> u64 {
    200
}
fn default_batch_rows() -> usize {
    5000
}
fn default_chunk() -> usize {
    50_000
}
fn default_key_column() -> String {
    "record_key".into()
}
fn default_on_revoke() -> OnRevoke {
    OnRevoke::Purge
}
fn default_wait() -> i64 {
    25_000
}

/// A configuration error: the key at fault and why.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn bad(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), message: message.into() }
}

/// A flow's or node's name: 1–64 of a–z 0–9 `-` `_` `.` (the platform's rule).
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

fn code_ok(code: &str) -> bool {
    match code.split_once('/') {
        Some((c, s)) => {
            !c.is_empty() && c.len() <= 30 && c.bytes().all(|b| b.is_ascii_digit()) && s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// A local identifier (table, column): letters (any script), digits, `_`, `.` for a schema; no quotes.
fn ident_ok(s: &str, dotted: bool) -> bool {
    !s.is_empty() && s.chars().count() <= 128 && s.chars().all(|c| c.is_alphanumeric() || c == '_' || (dotted && c == '.'))
}

fn url_ok(u: &str) -> bool {
    u.starts_with("postgres://") || u.starts_with("postgresql://") || u.starts_with("mysql://") || u.starts_with("sqlite:")
}

impl NodeConfig {
    /// Reads and checks a configuration file; relative paths are taken from the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(path.display().to_string(), format!("cannot be read: {e}")))?;
        let mut config = NodeConfig::parse(&text)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.platform.key_file);
        resolve(&mut config.node.state_dir);
        for p in &mut config.publications {
            if let Some(f) = &mut p.folder {
                resolve(f);
            }
        }
        Ok(config)
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| {
            // toml names the key and the line; keep its message whole.
            let message = e.message().to_string();
            let key = e.span().map(|s| {
                let start = s.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                let content = text.lines().nth(line - 1).unwrap_or("").trim();
                format!("line {line} ({content})")
            });
            bad(key.unwrap_or_else(|| "configuration".into()), message)
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let p = &self.platform;
        if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
            return Err(bad("platform.url", format!("'{}' is not an http:// or https:// URL", p.url)));
        }
        if p.account.trim().is_empty() {
            return Err(bad("platform.account", "must name the node's system account"));
        }
        if !(1..=3600).contains(&p.timeout_seconds) {
            return Err(bad("platform.timeout_seconds", "must be between 1 and 3600"));
        }
        let n = &self.node;
        if !name_ok(&n.name) {
            return Err(bad("node.name", format!("'{}' must be 1–64 of a–z, 0–9, '-', '_' or '.'", n.name)));
        }
        if !(1..=3600).contains(&n.heartbeat_seconds) {
            return Err(bad("node.heartbeat_seconds", "must be between 1 and 3600"));
        }
        if !(1..=1 << 24).contains(&n.outbox_limit_mb) {
            return Err(bad("node.outbox_limit_mb", "must be between 1 and 16777216"));
        }
        if n.log_format != "text" && n.log_format != "json" {
            return Err(bad("node.log_format", format!("'{}' is not text or json", n.log_format)));
        }
        if let Some(m) = &n.metrics_listen
            && m.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(bad("node.metrics_listen", format!("'{m}' is not an address and port (127.0.0.1:9187)")));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, f) in self.publications.iter().enumerate() {
            let k = |field: &str| format!("publication[{i}].{field}");
            if !name_ok(&f.name) {
                return Err(bad(k("name"), format!("'{}' must be 1–64 of a–z, 0–9, '-', '_' or '.'", f.name)));
            }
            if !names.insert(f.name.clone()) {
                return Err(bad(k("name"), format!("'{}' names another flow too", f.name)));
            }
            if !code_ok(&f.resource) {
                return Err(bad(k("resource"), format!("'{}' is not a resource code (101001/000042)", f.resource)));
            }
            match f.source.as_str() {
                "table" => {
                    let url = f.database_url.as_deref().ok_or_else(|| bad(k("database_url"), "a table publication needs its database"))?;
                    if !url_ok(url) {
                        return Err(bad(k("database_url"), "use postgres://…, mysql://… or sqlite://…"));
                    }
                    let table = f.table.as_deref().ok_or_else(|| bad(k("table"), "a table publication needs its table"))?;
                    if !ident_ok(table, true) {
                        return Err(bad(k("table"), format!("'{table}' is not a table name")));
                    }
                    let key = f.key.as_deref().ok_or_else(|| bad(k("key"), "a table publication needs its key column"))?;
                    let change =
                        f.change_column.as_deref().ok_or_else(|| bad(k("change_column"), "a table publication needs its change column"))?;
                    if f.change_kind.is_none() {
                        return Err(bad(k("change_kind"), "sequence or timestamp"));
                    }
                    if f.columns.is_empty() {
                        return Err(bad(k("columns"), "map the local columns to the resource's items"));
                    }
                    if !f.columns.contains_key(key) {
                        return Err(bad(k("columns"), format!("the key column '{key}' must be mapped to the resource's key item")));
                    }
                    for c in f.columns.keys().map(String::as_str).chain([key, change]) {
                        if !ident_ok(c, false) {
                            return Err(bad(k("columns"), format!("'{c}' is not a column name")));
                        }
                    }
                    match (f.deletes, &f.soft_delete_column) {
                        (DeleteDetection::SoftDelete, None) => {
                            return Err(bad(k("soft_delete_column"), "deletes = soft_delete needs the column"));
                        }
                        (DeleteDetection::SoftDelete, Some(c)) if !ident_ok(c, false) => {
                            return Err(bad(k("soft_delete_column"), format!("'{c}' is not a column name")));
                        }
                        (d, Some(_)) if d != DeleteDetection::SoftDelete => {
                            return Err(bad(k("soft_delete_column"), "only with deletes = soft_delete"));
                        }
                        _ => {}
                    }
                    for (field, set) in [("folder", f.folder.is_some()), ("mode", f.mode.is_some()), ("encoding", f.encoding.is_some())] {
                        if set {
                            return Err(bad(k(field), "is for folder publications"));
                        }
                    }
                }
                "folder" => {
                    if f.folder.is_none() {
                        return Err(bad(k("folder"), "a folder publication needs its folder"));
                    }
                    if f.mode.is_none() {
                        return Err(bad(k("mode"), "full, incremental or by_name"));
                    }
                    if let Some(e) = &f.encoding
                        && e != "utf-8"
                        && e != "gbk"
                    {
                        return Err(bad(k("encoding"), format!("'{e}' is not utf-8 or gbk")));
                    }
                    for (field, set) in [("database_url", f.database_url.is_some()), ("table", f.table.is_some()), ("key", f.key.is_some())]
                    {
                        if set {
                            return Err(bad(k(field), "is for table publications"));
                        }
                    }
                }
                other => return Err(bad(k("source"), format!("'{other}' is not table or folder"))),
            }
            if !(10..=3_600_000).contains(&f.poll_ms) {
                return Err(bad(k("poll_ms"), "must be between 10 and 3600000"));
            }
            if !(1..=100_000).contains(&f.batch_rows) {
                return Err(bad(k("batch_rows"), "must be between 1 and 100000"));
            }
            if !(1..=1_000_000).contains(&f.snapshot_chunk_rows) {
                return Err(bad(k("snapshot_chunk_rows"), "must be between 1 and 1000000"));
            }
            if f.safety_window_seconds > 3600 {
                return Err(bad(k("safety_window_seconds"), "must be at most 3600"));
            }
            if !(1..=86_400 * 7).contains(&f.compare_interval_seconds) {
                return Err(bad(k("compare_interval_seconds"), "must be between 1 and 604800"));
            }
        }
        for (i, s) in self.subscriptions.iter().enumerate() {
            let k = |field: &str| format!("subscription[{i}].{field}");
            if !name_ok(&s.name) {
                return Err(bad(k("name"), format!("'{}' must be 1–64 of a–z, 0–9, '-', '_' or '.'", s.name)));
            }
            if !names.insert(s.name.clone()) {
                return Err(bad(k("name"), format!("'{}' names another flow too", s.name)));
            }
            if !code_ok(&s.resource) {
                return Err(bad(k("resource"), format!("'{}' is not a resource code (101001/000042)", s.resource)));
            }
            if !url_ok(&s.database_url) {
                return Err(bad(k("database_url"), "use postgres://…, mysql://… or sqlite://…"));
            }
            if !ident_ok(&s.table, true) {
                return Err(bad(k("table"), format!("'{}' is not a table name", s.table)));
            }
            if !ident_ok(&s.key_column, false) {
                return Err(bad(k("key_column"), format!("'{}' is not a column name", s.key_column)));
            }
            for c in s.columns.values() {
                if !ident_ok(c, false) {
                    return Err(bad(k("columns"), format!("'{c}' is not a column name")));
                }
            }
            if !(0..=300_000).contains(&s.wait_ms) {
                return Err(bad(k("wait_ms"), "must be between 0 and 300000"));
            }
        }
        Ok(())
    }
}

/// The commented example that `shutong node init` writes.
pub fn example(platform: &str, account: &str, name: &str) -> String {
    format!(
        r#"# shutong exchange node (前置机) — `shutong node run --config node.toml`
# Every key is checked: an unknown or malformed one stops the node and is named.

[platform]
# The platform's base URL.
url = "{platform}"
# The node's system account on the platform. Register the public key (node.pub.pem) on it:
#   PUT /api/v1/users/{{id}}/sm2-key, or the account's page in the portal. No token is kept on disk.
account = "{account}"
# The account's SM2 private key, beside this file.
key_file = "node.key"
# timeout_seconds = 60

[node]
# The node's name on the platform (a–z 0–9 - _ .).
name = "{name}"
# The node's own state: outbox, offsets, rejects (SQLite).
state_dir = "state"
# heartbeat_seconds = 30
# Capture pauses, with an alarm, when the outbox (changes not yet on the platform) reaches this size.
# outbox_limit_mb = 10240
# log_format = "json"
# metrics_listen = "127.0.0.1:9187"

# A table of the department's database, published to a bound resource's dataset (提供).
# [[publication]]
# name = "people"
# resource = "101001/000042"
# source = "table"
# database_url = "postgres://user@127.0.0.1/department"   # or mysql://… or sqlite://…
# table = "people"
# key = "id_number"
# change_column = "row_version"     # an increasing sequence set on insert and update …
# change_kind = "sequence"          # … or an update timestamp: change_kind = "timestamp"
# safety_window_seconds = 5         # timestamps read again for late commits (timestamp only)
# deletes = "soft_delete"           # none, soft_delete (with soft_delete_column) or compare
# soft_delete_column = "deleted"
# compare_interval_seconds = 3600   # deletes = "compare": keys compared this often
# poll_ms = 200
# batch_rows = 5000
# snapshot_chunk_rows = 50000
# [publication.columns]             # local column = resource item
# id_number = "公民身份号码"
# name = "姓名"

# A drop folder: CSV (UTF-8 or GBK), XLSX or NDJSON files placed there become batches, then move to
# done/ or rejected/ with their batch report beside them.
# [[publication]]
# name = "licences"
# resource = "101001/000043"
# source = "folder"
# folder = "drop/licences"
# mode = "by_name"                  # full, incremental, or by_name (a name with "full" or 全量 is full)
# encoding = "gbk"

# A granted dataset kept in a local table (获取).
# [[subscription]]
# name = "population"
# resource = "101002/000001"
# database_url = "sqlite://local.db"
# table = "population"
# key_column = "record_key"
# on_revoke = "purge"               # purge (default) or keep the local copy when the grant ends
# [subscription.columns]            # item = local column (default: the item's name)
# "姓名" = "name"                  # a key in Chinese is quoted
"#
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = "[platform]\nurl = \"http://127.0.0.1:8080\"\naccount = \"rsj.node\"\n[node]\nname = \"rsj-01\"\n";

    #[test]
    fn the_example_parses_and_an_unknown_key_is_named() {
        let c = NodeConfig::parse(&example("http://127.0.0.1:8080", "rsj.node", "rsj-01")).unwrap();
        assert_eq!(c.node.name, "rsj-01");
        let e = NodeConfig::parse(&format!("{BASE}colour = 1\n")).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = NodeConfig::parse(&format!("{BASE}[[publication]]\nname = \"a\"\nresource = \"101001/000001\"\nsource = \"table\"\n"))
            .unwrap_err();
        assert_eq!(e.key, "publication[0].database_url");
        let e = NodeConfig::parse(&format!(
            "{BASE}[[publication]]\nname = \"a\"\nresource = \"101001/000001\"\nsource = \"table\"\ndatabase_url = \"sqlite://x.db\"\n\
             table = \"t\"\nkey = \"id\"\nchange_column = \"v\"\nchange_kind = \"sequence\"\n[publication.columns]\nname = \"姓名\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "publication[0].columns");
        assert!(e.message.contains("'id'"), "{e}");
        let e = NodeConfig::parse(&BASE.replace("rsj-01", "RSJ 01")).unwrap_err();
        assert_eq!(e.key, "node.name");
    }
}
