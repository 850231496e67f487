//! `shutong node …`: the exchange node (前置机) a department runs beside its own database — `init` writes a
//! commented configuration and the SM2 key pair, `run` runs it, `status` reads its state, `check` tests its
//! configuration against the databases and the platform. The global `--config` names the node's
//! configuration (default `node.toml`), not the server's.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::cli::Cli;

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Write a commented node.toml and a new SM2 key pair (node.key, node.pub.pem) into a directory.
    Init {
        /// The directory (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The platform's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        platform: String,
        /// The node's system account on the platform.
        #[arg(long, required_unless_present = "demo")]
        account: Option<String>,
        /// The node's name on the platform (a–z 0–9 - _ .).
        #[arg(long, required_unless_present = "demo")]
        name: Option<String>,
        /// For `serve --demo`: 省公安厅's node (account ga.exchange) with a sample department database
        /// (department.db) published to 流动人口居住登记信息, and 法人单位基本信息 kept in a local table.
        #[arg(long)]
        demo: bool,
    },
    /// Run the node: publications, subscriptions, heartbeat (until interrupted).
    Run,
    /// The node's state: each flow, the outbox, the rejects, the last heartbeat.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Test the configuration: databases reachable, columns mapped, the account's signature accepted, each
    /// dataset bound and each grant in force. Exits 1 if anything fails.
    Check,
}

/// The demo's system account of 示范省公安厅 (seeded by `serve --demo`).
const DEMO_ACCOUNT: &str = "ga.exchange";

/// The demo's department database with 200 synthetic people (valid 公民身份号码), and its configuration.
async fn demo_department(dir: &std::path::Path, platform: &str, account: &str, name: &str) -> anyhow::Result<()> {
    let people: Vec<[String; 3]> = (0..200u64)
        .map(|i| {
            let p = shutong_exchange::synth::person(i + 500_000, 2026);
            [p[0].clone(), p[1].clone(), p[5].clone()]
        })
        .collect();
    shutong_node::demo::write(dir, platform, account, name, &people).await
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(|| PathBuf::from("node.toml"))
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

fn china() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"))
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&china()).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

pub async fn run(cli: &Cli, cmd: &NodeCommand) -> anyhow::Result<i32> {
    match cmd {
        NodeCommand::Init { dir, platform, account, name, demo } => {
            let account = account.clone().unwrap_or_else(|| DEMO_ACCOUNT.into());
            let name = name.clone().unwrap_or_else(|| "ga-qzj-demo".into());
            let public = shutong_node::init(dir, platform, &account, &name)?;
            if *demo {
                demo_department(dir, platform, &account, &name).await?;
                println!("wrote {0}/node.toml for the demo, {0}/department.db (a sample department database)", dir.display());
            } else {
                println!("wrote {}/node.toml, node.key (owner-only) and node.pub.pem", dir.display());
            }
            println!(
                "register the public key on the system account '{account}' (PUT /api/v1/users/{{id}}/sm2-key, or its page in the portal):"
            );
            print!("{public}");
            Ok(0)
        }
        NodeCommand::Run => {
            let path = config_path(cli);
            let config = shutong_node::NodeConfig::load(&path)?;
            init_logging(config.node.log_format == "json");
            let stop = Arc::new(tokio::sync::Notify::new());
            let signal = stop.clone();
            tokio::spawn(async move {
                crate::server::shutdown_signal().await;
                signal.notify_waiters();
                signal.notify_one();
            });
            shutong_node::run(&path, stop).await?;
            Ok(0)
        }
        NodeCommand::Status { json } => {
            let s = shutong_node::status(&config_path(cli)).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(0);
            }
            println!("node {} → {}", s.node, s.platform);
            println!(
                "outbox: {} batches, {:.1} MiB of {:.0} MiB; rejected rows kept: {}",
                s.outbox_batches,
                s.outbox_bytes as f64 / 1048576.0,
                s.outbox_limit_bytes as f64 / 1048576.0,
                s.rejects
            );
            println!(
                "last heartbeat: {}{}",
                fmt_ms(s.last_heartbeat_at_ms),
                s.last_heartbeat_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
            );
            for f in &s.flows {
                println!(
                    "{:<12} {:<24} {:<16} {:<8} lag {} rows / {} s, {} rows moved, {} rejected, last transfer {}{}",
                    f.direction,
                    f.name,
                    f.resource,
                    f.state,
                    f.lag_rows,
                    f.lag_seconds,
                    f.rows_total,
                    f.rejects,
                    fmt_ms(f.last_transfer_at),
                    f.error.as_ref().map(|e| format!("\n             error: {e}")).unwrap_or_default()
                );
            }
            Ok(0)
        }
        NodeCommand::Check => {
            let lines = shutong_node::check(&config_path(cli)).await?;
            let mut failed = 0;
            for l in &lines {
                println!("{} {}: {}", if l.ok { "ok  " } else { "FAIL" }, l.what, l.detail);
                failed += usize::from(!l.ok);
            }
            Ok(i32::from(failed > 0))
        }
    }
}
