#![doc = include_str!("../README.md")]

pub mod config;
pub mod demo;
pub mod folder;
pub mod publish;
pub mod run;
pub mod source;
pub mod state;
pub mod subscribe;

use std::path::Path;

pub use config::NodeConfig;
pub use run::run;

/// `shutong node init`: a commented example configuration and a new SM2 key pair in `dir` (refused where a
/// configuration or key is already there).
pub fn init(dir: &Path, platform: &str, account: &str, name: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("node.toml");
    let key = dir.join("node.key");
    for p in [&config, &key] {
        if p.exists() {
            anyhow::bail!("{} exists: not overwritten", p.display());
        }
    }
    let text = config::example(platform, account, name);
    NodeConfig::parse(&text).map_err(|e| anyhow::anyhow!("the example does not parse ({e}): check --platform, --account and --name"))?;
    std::fs::write(&config, text)?;
    let (pair, _) = shutong_crypto::NodeKey::load_or_create(&key)?;
    let public = pair.public_key_pem();
    std::fs::write(dir.join("node.pub.pem"), &public)?;
    Ok(public)
}

/// `shutong node status`: what the state database says — each flow, the outbox, the last heartbeat.
#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub node: String,
    pub platform: String,
    pub flows: Vec<state::FlowFigures>,
    pub outbox_batches: i64,
    pub outbox_bytes: i64,
    pub outbox_limit_bytes: i64,
    pub rejects: i64,
    pub last_heartbeat_at_ms: Option<i64>,
    pub last_heartbeat_error: Option<String>,
}

pub async fn status(path: &Path) -> anyhow::Result<Status> {
    let config = NodeConfig::load(path)?;
    let state = state::State::open_for_reading(&config.node.state_dir).await?;
    let (batches, bytes, _) = state.outbox_depth(None).await?;
    let rejects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rejects").fetch_one(&state.pool).await?;
    Ok(Status {
        node: config.node.name.clone(),
        platform: config.platform.url.clone(),
        flows: state.flows().await?,
        outbox_batches: batches,
        outbox_bytes: bytes,
        outbox_limit_bytes: (config.node.outbox_limit_mb as i64) << 20,
        rejects,
        last_heartbeat_at_ms: state.get_meta("last_heartbeat_at").await?.and_then(|v| v.parse().ok()),
        last_heartbeat_error: state.get_meta("last_heartbeat_error").await?.filter(|e| !e.is_empty()),
    })
}

/// One line of `shutong node check`.
#[derive(Debug, serde::Serialize)]
pub struct CheckLine {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// `shutong node check`: the configuration against the world — the state directory, each database and its
/// columns, the platform accepting the account's signature, each publication's binding and each
/// subscription's grant.
pub async fn check(path: &Path) -> anyhow::Result<Vec<CheckLine>> {
    let config = NodeConfig::load(path)?;
    let mut out = Vec::new();
    let mut line = |what: String, r: Result<String, String>| {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        out.push(CheckLine { what, ok, detail });
    };
    line(
        "state directory".into(),
        state::State::open(&config.node.state_dir)
            .await
            .map(|s| format!("{} (epoch {})", config.node.state_dir.display(), s.epoch))
            .map_err(|e| e.to_string()),
    );
    let client = run::client(&config);
    let me = match &client {
        Ok(c) => c.me().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    line(
        format!("platform {} as {}", config.platform.url, config.platform.account),
        me.as_ref().map(|m| format!("signature accepted: {} ({})", m.user.username, m.user.display_name)).map_err(Clone::clone),
    );
    for p in &config.publications {
        if p.source == "table" {
            let url = p.database_url.clone().unwrap_or_default();
            let db = async {
                let pool = source::connect(&url, 1).await?;
                let dialect = source::Dialect::of(&url);
                let table = p.table.clone().unwrap_or_default();
                let mut cols: Vec<&str> = p.columns.keys().map(String::as_str).collect();
                if let Some(c) = &p.change_column {
                    cols.push(c);
                }
                if let Some(c) = &p.soft_delete_column {
                    cols.push(c);
                }
                let missing = source::missing_columns(&pool, dialect, &table, &cols).await?;
                if let Some(c) = missing.first() {
                    anyhow::bail!("column '{c}' is not in table '{table}'");
                }
                Ok::<_, anyhow::Error>(format!("{}: table {table}, {} columns mapped", source::redact(&url), p.columns.len()))
            };
            line(format!("publication {}: database", p.name), db.await.map_err(|e| e.to_string()));
        } else {
            let f = p.folder.clone().unwrap_or_default();
            line(
                format!("publication {}: folder", p.name),
                folder::waiting(&f)
                    .map(|w| format!("{} ({} files waiting)", f.display(), w.len()))
                    .map_err(|e| format!("{}: {e}", f.display())),
            );
        }
        if let Ok(c) = &client {
            let binding = c.dataset(&p.resource).await.map_err(|e| e.to_string()).and_then(|d| {
                let b = d.binding;
                let items: Vec<&String> = if p.source == "table" { p.columns.values().collect() } else { Vec::new() };
                let unknown: Vec<&&String> = items.iter().filter(|i| !b.columns.contains(i)).collect();
                if let Some(u) = unknown.first() {
                    return Err(format!("item '{u}' is not a column of the dataset ({})", b.columns.join(", ")));
                }
                let key_item = p.key.as_ref().and_then(|k| p.columns.get(k));
                if p.source == "table" && key_item != b.key_item.as_ref() {
                    return Err(format!(
                        "the key column maps to '{}', the dataset is keyed by '{}'",
                        key_item.cloned().unwrap_or_default(),
                        b.key_item.unwrap_or_default()
                    ));
                }
                Ok(format!("bound as {:?}, keyed by {}, {} rows", b.kind, b.key_item.unwrap_or_default(), b.row_count))
            });
            line(format!("publication {}: dataset {}", p.name, p.resource), binding);
        }
    }
    for s in &config.subscriptions {
        let db = async {
            let pool = source::connect(&s.database_url, 1).await?;
            sqlx::query("SELECT 1").fetch_one(&pool).await?;
            Ok::<_, anyhow::Error>(source::redact(&s.database_url))
        };
        line(format!("subscription {}: database", s.name), db.await.map_err(|e| e.to_string()));
        if let Ok(c) = &client {
            let r = c.changes(&s.resource, i64::MAX / 2, Some(1)).await;
            line(
                format!("subscription {}: grant for {}", s.name, s.resource),
                r.map(|p| format!("the change feed is open to the node (last sequence {})", p.last_seq)).map_err(|e| e.to_string()),
            );
        }
    }
    Ok(out)
}
