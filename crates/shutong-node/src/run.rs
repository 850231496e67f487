//! `shutong node run`: every flow as a task of its own, the heartbeat to the platform, the figures kept
//! in the state database for `shutong node status`, and optional Prometheus metrics. Every write is a
//! transaction of its own, so the process may be killed at any point (`kill -9` included) and started again.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shutong_client::Client;
use shutong_client::types::exchange::{FlowDirection, FlowReport, FlowState, Heartbeat};
use tokio::sync::Notify;

use crate::config::{DeleteDetection, NodeConfig, Publication, Subscription};
use crate::folder::{self, FileOutcome};
use crate::publish::{self, Delivered, DeliveryError, TableCapture, nap};
use crate::state::{FlowFigures, State, now_ms};
use crate::subscribe::{Applied, LocalCopy, SubscriptionError};

/// The flows' figures, shared by the tasks, persisted every second and sent with each heartbeat.
#[derive(Clone, Default)]
pub struct Figures(Arc<Mutex<BTreeMap<String, FlowFigures>>>);

impl Figures {
    fn update(&self, name: &str, f: impl FnOnce(&mut FlowFigures)) {
        if let Ok(mut m) = self.0.lock() {
            let e = m.entry(name.to_string()).or_insert_with(|| FlowFigures {
                name: name.to_string(),
                state: "running".into(),
                ..Default::default()
            });
            f(e);
        }
    }

    /// A batch went through: the flow runs, its totals grow.
    fn transferred(&self, name: &str, rows: i64, rejected: i64) {
        self.update(name, |f| {
            f.state = "running".into();
            f.error = None;
            f.rows_total += rows;
            f.rejects += rejected;
            f.batches += 1;
            f.last_transfer_at = Some(now_ms());
        });
    }

    fn all(&self) -> Vec<FlowFigures> {
        self.0.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}

/// The signing client of a configuration.
pub fn client(config: &NodeConfig) -> anyhow::Result<Client> {
    let key = shutong_crypto::NodeKey::load(&config.platform.key_file).map_err(|e| anyhow::anyhow!("platform.key_file: {e}"))?;
    let base = Client::with_timeout(&config.platform.url, Duration::from_secs(config.platform.timeout_seconds))?;
    Ok(base.with_signing_key(&config.platform.account, key))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5000))
}

/// Runs the node until `stop` is notified (or forever).
pub async fn run(path: &Path, stop: Arc<Notify>) -> anyhow::Result<()> {
    let config = NodeConfig::load(path)?;
    let state = State::open(&config.node.state_dir).await?;
    let client = client(&config)?;
    let figures = Figures::default();
    // Totals carry over a restart.
    let saved = state.flows().await?;
    if let Ok(mut m) = figures.0.lock() {
        for f in saved {
            m.insert(f.name.clone(), FlowFigures { state: "running".into(), error: None, ..f });
        }
    }
    let tables: Arc<Vec<String>> = Arc::new(config.publications.iter().filter(|p| p.source == "table").map(|p| p.name.clone()).collect());
    let started = now_ms();
    let limit = (config.node.outbox_limit_mb as i64) << 20;
    let mut tasks = tokio::task::JoinSet::new();
    for p in config.publications.clone() {
        figures.update(&p.name, |f| {
            f.direction = "publication".into();
            f.resource = p.resource.clone();
        });
        if p.source == "table" {
            let wake = Arc::new(Notify::new());
            tasks.spawn(capture_loop(p.clone(), state.clone(), client.clone(), figures.clone(), limit, wake.clone()));
            tasks.spawn(delivery_loop(p, state.clone(), client.clone(), figures.clone(), wake));
        } else {
            tasks.spawn(folder_loop(p, state.clone(), client.clone(), figures.clone()));
        }
    }
    for s in config.subscriptions.clone() {
        figures.update(&s.name, |f| {
            f.direction = "subscription".into();
            f.resource = s.resource.clone();
        });
        tasks.spawn(subscription_loop(s, client.clone(), figures.clone()));
    }
    tasks.spawn(persist_loop(state.clone(), figures.clone(), tables.clone()));
    tasks.spawn(heartbeat_loop(config.clone(), state.clone(), client.clone(), figures.clone(), started, tables.clone()));
    if let Some(addr) = &config.node.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("node.metrics_listen {addr}: {e}"))?;
        let (st, fig) = (state.clone(), figures.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let (st, fig) = (st.clone(), fig.clone());
                async move { metrics_text(&st, &fig).await }
            }),
        );
        tasks.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    tracing::info!(node = %config.node.name, publications = config.publications.len(), subscriptions = config.subscriptions.len(), "exchange node running");
    stop.notified().await;
    tasks.abort_all();
    let _ = persist(&state, &figures, &tables).await;
    Ok(())
}

async fn capture_loop(p: Publication, state: State, client: Client, figures: Figures, limit: i64, wake: Arc<Notify>) {
    let mut attempt = 0;
    let (fig, name) = (figures.clone(), p.name.clone());
    let progress: publish::Progress = Arc::new(move |rows, rejected| fig.transferred(&name, rows, rejected));
    loop {
        let mut capture = match TableCapture::open(&p, &state, limit, wake.clone(), client.clone(), progress.clone()).await {
            Ok(c) => c,
            Err(e) => {
                stopped(&figures, &p.name, &e.to_string());
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        let mut last_compare = std::time::Instant::now();
        loop {
            // While delivery keeps up, changes wait in the table until the batch ahead is taken, so that a busy
            // table makes fewer, larger batches instead of a queue of small ones; cut off (the oldest batch
            // waiting for seconds), capture goes on filling the outbox.
            if let Ok((batches, _, Some(oldest))) = state.outbox_depth(Some(&p.name)).await
                && batches >= 2
                && now_ms() - oldest < 5_000
            {
                tokio::time::sleep(Duration::from_millis(p.poll_ms.min(50))).await;
                continue;
            }
            match capture.step().await {
                Ok(0) => {
                    attempt = 0;
                    tokio::time::sleep(Duration::from_millis(p.poll_ms)).await;
                }
                Ok(_) => attempt = 0,
                // The snapshot goes to the platform itself: what the platform answered, as delivery treats it.
                Err(e) if e.downcast_ref::<shutong_client::ClientError>().is_some() => {
                    let classified = e.downcast_ref::<shutong_client::ClientError>().map(publish::classify);
                    attempt += 1;
                    match classified {
                        Some(DeliveryError::Stopped(why)) => {
                            stopped(&figures, &p.name, &format!("the platform refused a part of the snapshot: {why}"));
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        _ => {
                            if attempt == 1 || attempt % 20 == 0 {
                                tracing::warn!(publication = %p.name, error = %format!("{e:#}"), "the platform did not take a part of the snapshot");
                            }
                            figures.update(&p.name, |f| {
                                f.state = "offline".into();
                                f.error = Some(format!("{e:#}"));
                            });
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                    }
                }
                Err(e) => {
                    // A column gone from the table stops the publication, naming it; anything else is retried.
                    match capture.check_columns().await {
                        Err(named) => {
                            stopped(&figures, &p.name, &named.to_string());
                            tokio::time::sleep(Duration::from_secs(10)).await;
                            break;
                        }
                        Ok(()) => {
                            tracing::warn!(publication = %p.name, error = %e, "capture");
                            figures.update(&p.name, |f| f.error = Some(e.to_string()));
                            attempt += 1;
                            tokio::time::sleep(backoff(attempt).max(Duration::from_millis(p.poll_ms))).await;
                        }
                    }
                }
            }
            if p.deletes == DeleteDetection::Compare && last_compare.elapsed() >= Duration::from_secs(p.compare_interval_seconds) {
                last_compare = std::time::Instant::now();
                match capture.compare().await {
                    Ok(n) if n > 0 => tracing::info!(publication = %p.name, deleted = n, "deletions found by comparison"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(publication = %p.name, error = %e, "key comparison"),
                }
            }
        }
    }
}

fn stopped(figures: &Figures, name: &str, error: &str) {
    tracing::error!(flow = name, error, "flow stopped");
    figures.update(name, |f| {
        f.state = "stopped".into();
        f.error = Some(error.to_string());
    });
}

async fn delivery_loop(p: Publication, state: State, client: Client, figures: Figures, wake: Arc<Notify>) {
    let key_item = p.key.as_ref().and_then(|k| p.columns.get(k)).cloned().unwrap_or_default();
    let mut attempt = 0;
    loop {
        match publish::deliver_one(&client, &state, &p.name, &p.resource, &key_item).await {
            Ok(Delivered::Batch { rows, rejected }) => {
                attempt = 0;
                figures.transferred(&p.name, rows, rejected);
            }
            Ok(Delivered::Idle) => {
                // Back online once the batches that waited went through (a snapshot part's failure is the
                // capture's to clear, when a part goes through).
                if attempt > 0 {
                    figures.update(&p.name, |f| {
                        if f.state == "offline" {
                            f.state = "running".into();
                            f.error = None;
                        }
                    });
                }
                attempt = 0;
                nap(&wake, Duration::from_millis(500)).await;
            }
            Err(DeliveryError::Offline(e)) | Err(DeliveryError::Refused(e)) => {
                attempt += 1;
                if attempt == 1 || attempt % 20 == 0 {
                    tracing::warn!(publication = %p.name, error = %e, "the platform did not take the batch; it stays in the outbox");
                }
                figures.update(&p.name, |f| {
                    f.state = "offline".into();
                    f.error = Some(e.clone());
                });
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(DeliveryError::Stopped(e)) => {
                stopped(&figures, &p.name, &format!("the platform refused a batch (kept in the outbox): {e}"));
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    }
}

async fn folder_loop(p: Publication, state: State, client: Client, figures: Figures) {
    let folder = p.folder.clone().unwrap_or_default();
    let mut attempt = 0;
    loop {
        let files = match folder::waiting(&folder) {
            Ok(f) => f,
            Err(e) => {
                stopped(&figures, &p.name, &format!("folder {}: {e}", folder.display()));
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        figures.update(&p.name, |f| f.lag_rows = files.len() as i64);
        for file in files {
            match folder::send_file(&client, &state.epoch, &p, &file).await {
                Ok(FileOutcome::Done { rows, rejected }) => {
                    attempt = 0;
                    figures.transferred(&p.name, rows, rejected);
                }
                Ok(FileOutcome::Rejected(reason)) => {
                    tracing::warn!(publication = %p.name, file = %file.display(), reason, "file rejected; moved to rejected/");
                    figures.update(&p.name, |f| f.error = Some(format!("{}: {reason}", file.display())));
                }
                Err(DeliveryError::Offline(e)) | Err(DeliveryError::Refused(e)) | Err(DeliveryError::Stopped(e)) => {
                    attempt += 1;
                    figures.update(&p.name, |f| {
                        f.state = "offline".into();
                        f.error = Some(e.clone());
                    });
                    tokio::time::sleep(backoff(attempt)).await;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(p.poll_ms.max(200))).await;
    }
}

async fn subscription_loop(s: Subscription, client: Client, figures: Figures) {
    let mut attempt = 0;
    loop {
        let mut copy = match LocalCopy::open(&s).await {
            Ok(c) => c,
            Err(e) => {
                stopped(&figures, &s.name, &e.to_string());
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        loop {
            match copy.step(&client, if attempt == 0 { s.wait_ms } else { 0 }).await {
                Ok(Applied::Changes { applied, more: _, lag_rows }) => {
                    attempt = 0;
                    figures.update(&s.name, |f| {
                        f.state = "running".into();
                        f.error = None;
                        f.rows_total += applied as i64;
                        f.lag_rows = lag_rows;
                        if applied > 0 {
                            f.last_transfer_at = Some(now_ms());
                        }
                    });
                }
                Ok(Applied::Reset) => {
                    tracing::info!(subscription = %s.name, "the dataset was replaced in full on the platform: the local copy is read again");
                }
                Err(SubscriptionError::GrantEnded(e)) => {
                    let purged = copy.grant_ended().await.unwrap_or(false);
                    let what =
                        if purged { "the local copy was emptied (on_revoke = purge)" } else { "the local copy is kept (on_revoke = keep)" };
                    stopped(&figures, &s.name, &format!("{e}; {what}"));
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Err(SubscriptionError::Delivery(DeliveryError::Stopped(e))) => {
                    stopped(&figures, &s.name, &e);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Err(SubscriptionError::Delivery(DeliveryError::Offline(e) | DeliveryError::Refused(e))) => {
                    attempt += 1;
                    if attempt == 1 || attempt % 20 == 0 {
                        tracing::warn!(subscription = %s.name, error = %e, "the change feed could not be read");
                    }
                    figures.update(&s.name, |f| {
                        f.state = "offline".into();
                        f.error = Some(e.clone());
                    });
                    tokio::time::sleep(backoff(attempt)).await;
                    if e.starts_with("local table") {
                        break;
                    }
                }
            }
        }
    }
}

/// Saves the figures; a table publication's lag is its outbox (rows, and the age of the oldest).
async fn persist(state: &State, figures: &Figures, tables: &[String]) -> anyhow::Result<()> {
    for mut f in figures.all() {
        if tables.contains(&f.name) {
            let (rows, oldest) = state.outbox_rows(&f.name).await?;
            f.lag_rows = rows;
            f.lag_seconds = oldest.map_or(0, |o| ((now_ms() - o) / 1000).max(0));
        }
        state.set_flow(&f).await?;
    }
    Ok(())
}

async fn persist_loop(state: State, figures: Figures, tables: Arc<Vec<String>>) {
    loop {
        if let Err(e) = persist(&state, &figures, &tables).await {
            tracing::warn!(error = %e, "node state: figures not saved");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The heartbeat of the node's state as the state database holds it.
pub async fn heartbeat_of(config: &NodeConfig, state: &State, started: i64, last_error: Option<String>) -> anyhow::Result<Heartbeat> {
    let (batches, bytes, _) = state.outbox_depth(None).await?;
    let flows = state
        .flows()
        .await?
        .into_iter()
        .filter(|f| config.publications.iter().any(|p| p.name == f.name) || config.subscriptions.iter().any(|s| s.name == f.name))
        .map(|f| FlowReport {
            direction: if f.direction == "subscription" { FlowDirection::Subscription } else { FlowDirection::Publication },
            state: match f.state.as_str() {
                "offline" => FlowState::Offline,
                "stopped" => FlowState::Stopped,
                _ => FlowState::Running,
            },
            lag_rows: f.lag_rows.max(0),
            lag_seconds: f.lag_seconds.max(0),
            rows_total: f.rows_total.max(0),
            rejects: f.rejects.max(0),
            last_transfer_at_ms: f.last_transfer_at,
            error: f.error.map(|e| e.chars().take(2000).collect()),
            resource_code: f.resource,
            name: f.name,
        })
        .collect();
    Ok(Heartbeat {
        name: config.node.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at_ms: started,
        flows,
        outbox_batches: batches,
        outbox_bytes: bytes,
        outbox_limit_bytes: (config.node.outbox_limit_mb as i64) << 20,
        last_error: last_error.map(|e| e.chars().take(2000).collect()),
    })
}

async fn heartbeat_loop(config: NodeConfig, state: State, client: Client, figures: Figures, started: i64, tables: Arc<Vec<String>>) {
    let mut last_error: Option<String> = None;
    loop {
        let _ = persist(&state, &figures, &tables).await;
        let flow_error = figures.all().into_iter().find_map(|f| f.error.map(|e| format!("{}: {e}", f.name)));
        match heartbeat_of(&config, &state, started, flow_error.or(last_error.clone())).await {
            Ok(hb) => match client.post::<_, serde_json::Value>(&["api", "v1", "nodes", "heartbeat"], &hb).await {
                Ok(_) => {
                    if last_error.take().is_some() {
                        tracing::info!("heartbeat accepted again");
                    }
                    let _ = state.set_meta("last_heartbeat_at", &now_ms().to_string()).await;
                    let _ = state.set_meta("last_heartbeat_error", "").await;
                }
                Err(e) => {
                    let message = match e.status().map(|s| s.as_u16()) {
                        Some(401) => format!("the platform refused the node's signature: {e}"),
                        _ => format!("heartbeat: {e}"),
                    };
                    tracing::warn!(error = %message, "heartbeat not accepted");
                    let _ = state.set_meta("last_heartbeat_error", &message).await;
                    last_error = Some(message);
                }
            },
            Err(e) => tracing::warn!(error = %e, "heartbeat: node state"),
        }
        tokio::time::sleep(Duration::from_secs(config.node.heartbeat_seconds)).await;
    }
}

async fn metrics_text(state: &State, figures: &Figures) -> String {
    let mut out = String::new();
    let (batches, bytes, _) = state.outbox_depth(None).await.unwrap_or_default();
    out.push_str("# HELP shutong_node_outbox_batches Batches waiting in the outbox.\n# TYPE shutong_node_outbox_batches gauge\n");
    out.push_str(&format!("shutong_node_outbox_batches {batches}\n"));
    out.push_str("# HELP shutong_node_outbox_bytes Bytes waiting in the outbox.\n# TYPE shutong_node_outbox_bytes gauge\n");
    out.push_str(&format!("shutong_node_outbox_bytes {bytes}\n"));
    for (metric, help, kind) in [
        ("lag_rows", "Changes not yet through.", "gauge"),
        ("lag_seconds", "Age of the oldest change not yet through.", "gauge"),
        ("rows_total", "Rows moved since start.", "counter"),
        ("rejects_total", "Rows the platform rejected since start.", "counter"),
    ] {
        out.push_str(&format!("# HELP shutong_node_flow_{metric} {help}\n# TYPE shutong_node_flow_{metric} {kind}\n"));
        for f in figures.all() {
            let v = match metric {
                "lag_rows" => f.lag_rows,
                "lag_seconds" => f.lag_seconds,
                "rows_total" => f.rows_total,
                _ => f.rejects,
            };
            out.push_str(&format!("shutong_node_flow_{metric}{{flow=\"{}\",direction=\"{}\"}} {v}\n", f.name, f.direction));
        }
    }
    out
}
