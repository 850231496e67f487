//! Starting the platform: data directory, database, migrations, reference data, first-start bootstrap,
//! optional demo data, and the HTTP server.

use anyhow::Context;
use secrecy::ExposeSecret;
use shutong_config::Config;
use shutong_identity::{Bootstrap, DepartmentLevel, NodeIdentity, Zone};
use shutong_store::{Db, DbOptions};
use shutong_web::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Opens the database of a configuration (creating the data directory for SQLite) and migrates it.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        restrict_permissions(&config.data_dir);
    }
    let db = Db::connect(
        &url,
        &DbOptions {
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_secs(config.database_timeout_seconds),
            ..Default::default()
        },
    )
    .await
    .context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// The data plane: its pool database (the platform database on PostgreSQL, `pool.db` on SQLite), its
/// schema and crash clean-up, the access log writer, and the batch audit outbox.
pub async fn open_exchange(
    config: &Config,
    db: &Db,
    calendar: &shutong_reference::WorkCalendar,
) -> anyhow::Result<shutong_exchange::Exchange> {
    // A pool of its own even when the data lives in the platform database (PostgreSQL): bulk loads and
    // exports do not take the platform's connections, and their long statements are not logged as slow.
    let url = config.effective_pool_url().unwrap_or_else(|| config.effective_database_url());
    let pool = Db::connect(
        &url,
        &DbOptions {
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_secs(config.database_timeout_seconds.max(10)),
            slow_statement: None,
        },
    )
    .await
    .context("connecting to the pool database")?;
    let ex = &config.exchange;
    shutong_exchange::schema::ensure(&pool, ex.claim_timeout_seconds * 1000).await.context("preparing the pool database")?;
    let settings = shutong_exchange::Settings {
        chunk_rows: ex.chunk_rows,
        max_reported_rejects: ex.max_reported_rejects,
        claim_timeout_ms: ex.claim_timeout_seconds * 1000,
        grant_rate_per_second: ex.grant_rate_per_second,
        max_page: ex.max_page,
        access_cache_ms: ex.access_cache_ms,
        files_dir: config.data_dir.join("exchange-files"),
        proxy_timeout_ms: ex.proxy_timeout_seconds * 1000,
        node_silence_ms: ex.node_silence_seconds * 1000,
        changes_max_wait_ms: ex.changes_max_wait_ms,
        xlsx_limits: shutong_catalog::spreadsheet::ZipLimits {
            max_unpacked_bytes: ex.xlsx_max_unpacked_mb << 20,
            max_ratio: ex.xlsx_max_ratio,
            max_whole_part_bytes: ex.xlsx_max_shared_strings_mb << 20,
            ..Default::default()
        },
    };
    let log = shutong_exchange::AccessLog::start(db.clone(), pool.clone());
    let sharing = shutong_sharing::Sharing {
        db: db.clone(),
        calendar: Arc::new(calendar.clone()),
        clock: shutong_store::Clock::system(),
        deadlines: shutong_web::state::deadlines(config),
    };
    let mut exchange = shutong_exchange::Exchange::new(
        db.clone(),
        pool,
        sharing,
        shutong_reference::MaskRules { overrides: config.masking.clone() },
        settings,
        log,
    );
    exchange.pool_in_platform_db &= config.exchange.pool_url.is_none();
    if config.security.encrypt_sensitive {
        exchange.data_keys = Some(Arc::new(shutong_exchange::KeyRing::new(load_data_keys(config)?)));
    }
    // 阻断: a batch failing a blocking quality rule is refused before it commits.
    let regions = shutong_refdata::load_regions(db).await.context("loading the region table")?;
    exchange.set_batch_gate(Arc::new(shutong_quality::BlockingRules::new(regions)));
    shutong_exchange::audit_outbox(&exchange).await;
    Ok(exchange)
}

#[cfg(unix)]
fn restrict_permissions(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}
#[cfg(not(unix))]
fn restrict_permissions(_: &std::path::Path) {}

/// The node identity and first administrator from configuration. A level or zone that does not parse is
/// an error naming the setting (configuration loading checks them too), never a default.
pub fn bootstrap_of(config: &Config, demo: bool) -> anyhow::Result<Bootstrap> {
    let n = &config.node;
    let level = DepartmentLevel::parse(&n.level)
        .with_context(|| format!("node.level: '{}' is not one of {}", n.level, DepartmentLevel::expected()))?;
    let zone = Zone::parse(&n.zone).with_context(|| format!("node.zone: '{}' is not one of {}", n.zone, Zone::expected()))?;
    Ok(Bootstrap {
        node: NodeIdentity { name: n.name.clone(), level, zone, region_code: n.region_code.clone() },
        authority_name: if demo { crate::demo::AUTHORITY_NAME.to_string() } else { n.authority_name.clone() },
        authority_credit_code: n.authority_credit_code.clone(),
        admin_username: config.admin_username.clone(),
        admin_password: config
            .admin_password
            .as_ref()
            .map(|p| p.expose_secret().to_string())
            .or_else(|| demo.then(|| crate::demo::ADMIN_PASSWORD.to_string())),
    })
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The first administrator's generated password, to print once.
    pub generated_admin_password: Option<String>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    jobs_stop: tokio::sync::watch::Sender<bool>,
    jobs: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, writes the access log, seals the audit trail, and
    /// closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.handle.await;
        let _ = self.jobs_stop.send(true);
        let _ = self.jobs.await;
        Self::drain(&self.state).await;
        self.state.db.close().await;
    }

    /// Waits until the server ends (on Ctrl-C or SIGTERM in `shutong serve`).
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.handle.await.context("server task")?.context("server");
        let _ = self.jobs_stop.send(true);
        let _ = self.jobs.await;
        Self::drain(&self.state).await;
        served?;
        Ok(())
    }

    /// Writes what the access log holds, then seals the trail once more (with a checkpoint).
    async fn drain(state: &AppState) {
        state.exchange.log.flush().await;
        let opts = shutong_web::state::seal_options(&state.config);
        if let Err(e) = shutong_audit::seal(&state.db, &state.node_key.clone(), &opts, true).await {
            tracing::warn!(error = %e, "sealing the audit trail at shutdown failed");
        }
    }
}

/// Everything `shutong serve` does before it answers requests; returns once the listener is bound.
pub async fn start(config: Config, demo: bool, stop_on_signal: bool) -> anyhow::Result<Running> {
    let db = open_database(&config).await?;
    let regions = shutong_refdata::load_regions(&db).await.context("loading the region table")?;
    let calendar = shutong_refdata::load_calendar(&db).await.context("loading the working-day calendar")?;
    let security = shutong_web::state::security_settings(&config);
    let outcome =
        shutong_identity::bootstrap(&db, &regions, &security, &bootstrap_of(&config, demo)?).await.context("first-start bootstrap")?;
    if demo {
        crate::demo::seed(&db, &regions, &security, &calendar).await.context("seeding demo data")?;
    }
    let catalog_index = Arc::new(shutong_catalog::search::CatalogIndex::new()?);
    let indexed = catalog_index.rebuild(&db).await.context("building the catalog search index")?;
    tracing::info!(resources = indexed, "catalog search index built");
    let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let exchange = open_exchange(&config, &db, &calendar).await?;
    if demo {
        crate::demo::seed_exchange(&exchange, config.exchange.demo_population_rows).await.context("seeding demo datasets")?;
        crate::demo::seed_systems(&exchange).await.context("seeding demo information systems and projects")?;
        crate::demo::seed_quality(&exchange, &regions).await.context("seeding demo data quality")?;
        crate::demo::seed_objections(&exchange).await.context("seeding demo objections")?;
        crate::demo::seed_consistency(&exchange, config.exchange.demo_population_rows).await.context("seeding demo 一数一源")?;
        crate::demo::seed_themes(&exchange).await.context("seeding demo theme databases")?;
    }
    let key_watch = data_key_watch(&config, &exchange);
    let node_key = Arc::new(load_node_key(&config)?);
    let state = AppState::new(db, Arc::new(config), calendar, regions, catalog_index.clone(), exchange, node_key.clone());
    // Background work, one runner (shutong_store::jobs): the deadline sweep, retention archiving and the pool's
    // audit outbox as recurring jobs that the replicas lease in turn; the search index's reconciliation and
    // the data key file's watch as this process's own tasks.
    let (jobs_stop, jobs_rx) = tokio::sync::watch::channel(false);
    let jobs = background_jobs(&state, catalog_index, key_watch, node_key).await?.start(jobs_rx);
    let app = shutong_web::app(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                if stop_on_signal {
                    tokio::select! {
                        _ = rx => {}
                        _ = shutdown_signal() => {}
                    }
                } else {
                    let _ = rx.await;
                }
            })
            .await
    });
    Ok(Running { addr, state, generated_admin_password: outcome.generated_password, shutdown: tx, handle, jobs_stop, jobs })
}

/// The node's SM2 key pair, created at first start (owner-only permissions).
pub fn load_node_key(config: &Config) -> anyhow::Result<shutong_crypto::NodeKey> {
    let path = config.audit_key_file();
    let (key, created) = shutong_crypto::NodeKey::load_or_create(&path)?;
    if created {
        tracing::info!(path = %path.display(), public_key = %key.public_key_hex(), "node SM2 key pair created");
    }
    Ok(key)
}

/// How often a server looks at the data key file for changes.
const KEY_FILE_POLL: Duration = Duration::from_secs(2);

/// Takes up changes of the data key file (`shutong keys rotate|retire` on any host sharing `data_dir/keys`)
/// without a restart: a local task of the job runner looks at the file every two seconds and, when its
/// modification time or size changed, reads it again and puts it in use. A file that is missing, unreadable, readable by others, malformed,
/// or has another blind-index key is not used: the ring in use stays, and the log says why. Keys from
/// configuration change with the configuration, at a restart.
fn data_key_watch(
    config: &Config,
    exchange: &shutong_exchange::Exchange,
) -> Option<impl Fn() -> std::future::Ready<()> + Send + Sync + 'static> {
    let ring = exchange.data_keys.clone()?;
    let exchange = exchange.clone();
    if !config.security.data_keys.is_empty() {
        return None;
    }
    let path = config.data_key_file();
    let stamp = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
    let seen = std::sync::Mutex::new(stamp(&path));
    Some(move || {
        let now = stamp(&path);
        let Ok(mut seen) = seen.lock() else { return std::future::ready(()) };
        if now == *seen || now.is_none() {
            return std::future::ready(());
        }
        *seen = now;
        let loaded = shutong_crypto::DataKeys::load(&path).map_err(|e| e.to_string());
        match loaded.and_then(|keys| {
            let (active, ids) = (keys.active(), keys.ids());
            ring.replace(keys).map(|()| (active, ids))
        }) {
            Ok((active, ids)) => {
                // Cached access decisions hold the ring they were made with.
                exchange.invalidate();
                tracing::info!(path = %path.display(), active, keys = ?ids, "data key ring reloaded")
            }
            Err(e) => tracing::error!(path = %path.display(), error = %e, "the changed data key file is not used"),
        }
        std::future::ready(())
    })
}

/// The runner of the server's background work, with its jobs registered and scheduled as the
/// configuration says (a period of 0 stops a recurring job).
async fn background_jobs(
    state: &AppState,
    catalog_index: Arc<shutong_catalog::search::CatalogIndex>,
    key_watch: Option<impl Fn() -> std::future::Ready<()> + Send + Sync + 'static>,
    node_key: Arc<shutong_crypto::NodeKey>,
) -> anyhow::Result<shutong_store::jobs::JobRunner> {
    use shutong_store::jobs::{JobRunner, recur, stop_recurring};
    let db = state.db.clone();
    let now = state.clock.now_ms();
    let mut runner = JobRunner::new(db.clone(), state.clock.clone());

    // The deadline sweep: overdue stages, reminders, grant expiries (R-REQ-3); idempotent.
    let sweep_every = state.config.sharing.sweep_seconds;
    let sweeping = state.clone();
    runner.register("sharing.sweep", move |_, _| {
        let state = sweeping.clone();
        async move {
            let schedule = shutong_identity::Principal::operator("system:deadline-sweep");
            match shutong_sharing::sweep(&state.sharing(), &schedule).await {
                Ok(r) if r.overdue + r.reminders + r.grants_expiring + r.grants_expired > 0 => {
                    tracing::info!(?r, "deadline sweep");
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    if sweep_every > 0 {
        recur(&db, "sharing.sweep", "node", sweep_every as i64 * 1000, now).await?;
    } else {
        stop_recurring(&db, "sharing.sweep", "node").await?;
    }

    // Retention: what is past `audit.retention_days` is archived, as `shutong audit archive` does (an archive
    // that meets another's at the same time removes nothing and says so). The first one interval after start.
    let archive_every = state.config.audit.archive_interval_seconds;
    let config = state.config.clone();
    runner.register("audit.archive", move |db, _| {
        let (config, node_key) = (config.clone(), node_key.clone());
        async move {
            let ctx = shutong_audit::AuditContext::system("system:retention");
            let cutoff = config.audit_retention_cutoff_ms(shutong_store::now_ms());
            match archive_before(&db, &config, &node_key, cutoff, &ctx).await {
                Ok(Some(a)) => {
                    tracing::info!(from = a.from, to = a.to, events = a.events, file = %a.file.display(), "audit trail archived");
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    if archive_every > 0 {
        let every = archive_every as i64 * 1000;
        recur(&db, "audit.archive", "node", every, now + every).await?;
    } else {
        stop_recurring(&db, "audit.archive", "node").await?;
    }

    // The pool's audit outbox (SQLite: the pool is a database of its own): what a drain right after a
    // commit could not move is moved here.
    let exchange = state.exchange.clone();
    runner.register("exchange.audit_outbox", move |_, _| {
        let exchange = exchange.clone();
        async move {
            shutong_exchange::audit_outbox(&exchange).await;
            Ok(())
        }
    });
    if state.exchange.same_database() {
        stop_recurring(&db, "exchange.audit_outbox", "pool").await?;
    } else {
        recur(&db, "exchange.audit_outbox", "pool", 10_000, now).await?;
    }

    // Data quality (办法 第十七条): a dataset is checked after every committed batch (asked for by the pool's
    // effects, shutong_web::state::QUALITY_CHECK_JOB), and every dataset's freshness daily.
    let checking = state.clone();
    runner.register(shutong_web::state::QUALITY_CHECK_JOB, move |_, job| {
        let state = checking.clone();
        async move {
            let Ok(code) = shutong_catalog::ResourceCode::parse(&job.key) else { return Ok(()) };
            let operator = shutong_identity::Principal::operator("system:quality");
            let ctx = shutong_audit::AuditContext::system("system:quality");
            let regions = state.regions();
            match shutong_quality::check(&state.exchange, &operator, &ctx, &regions, &code, shutong_quality::CheckCause::Batch, None).await
            {
                // A resource withdrawn, unbound, or bound to a service or files has nothing to check.
                Ok(_) | Err(shutong_quality::QualityError::NotFound { .. } | shutong_quality::QualityError::State(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
            // 一数一源: the elements the dataset carries or is authoritative for, reconciled after its batch.
            match shutong_quality::reconcile_involving(&state.exchange, &code, shutong_quality::ReconcileCause::Batch).await {
                Ok(_) | Err(shutong_quality::QualityError::NotFound { .. } | shutong_quality::QualityError::Validation { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    let freshness = state.clone();
    runner.register("quality.freshness", move |_, _| {
        let state = freshness.clone();
        async move {
            let regions = state.regions();
            shutong_quality::check_all_scheduled(&state.exchange, &regions).await.map_err(|e| e.to_string())?;
            shutong_quality::reconcile_all(&state.exchange).await.map(|_| ()).map_err(|e| e.to_string())
        }
    });
    // 主题库: a theme database follows its members' batches.
    let refreshing = state.clone();
    runner.register(shutong_web::state::THEME_REFRESH_JOB, move |_, job| {
        let state = refreshing.clone();
        async move {
            let Ok(id) = job.key.parse::<i64>() else { return Ok(()) };
            let operator = shutong_identity::Principal::operator("system:theme");
            let ctx = shutong_audit::AuditContext::system("system:theme");
            match shutong_quality::refresh_theme(&state.exchange, &operator, &ctx, shutong_quality::ThemeId(id)).await {
                // Not yet published, or gone: nothing to load.
                Ok(_) | Err(shutong_quality::QualityError::NotFound { .. } | shutong_quality::QualityError::State(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    // 校核中 flags raised or lowered while a batch held the dataset reach its change feed once it is free.
    let carrying = state.clone();
    runner.register(shutong_quality::FLAG_FEED_JOB, move |_, job| {
        let state = carrying.clone();
        async move {
            let Ok(code) = shutong_catalog::ResourceCode::parse(&job.key) else { return Ok(()) };
            shutong_quality::carry_flags(&state.exchange, &code).await
        }
    });
    let fresh_every = state.config.quality.freshness_interval_seconds as i64 * 1000;
    if fresh_every > 0 {
        recur(&db, "quality.freshness", "node", fresh_every, now + fresh_every).await?;
    } else {
        stop_recurring(&db, "quality.freshness", "node").await?;
    }

    // The sealer: chains committed audit events and signs checkpoints (docs/AUDIT-FORMAT.md); one per node
    // at a time (it holds the chain head's lock), at start and then every `audit.seal_interval_ms`.
    let (sealing, seal_opts) = (db.clone(), shutong_web::state::seal_options(&state.config));
    let seal_key = state.node_key.clone();
    runner.every("audit.seal", Duration::from_millis(state.config.audit.seal_interval_ms), move || {
        let (db, key, opts) = (sealing.clone(), seal_key.clone(), seal_opts.clone());
        async move {
            if let Err(e) = shutong_audit::seal(&db, &key, &opts, false).await {
                tracing::warn!(error = %e, "sealing the audit trail failed; retrying");
            }
        }
    });
    // This process's search index meets the database again now and then: other replicas change the catalog.
    let reconciling = db.clone();
    runner.every("catalog.reconcile", Duration::from_secs(10), move || {
        let (db, index) = (reconciling.clone(), catalog_index.clone());
        async move {
            if let Err(e) = index.reconcile(&db).await {
                tracing::warn!(error = %e, "catalog index reconciliation failed");
            }
        }
    });
    if let Some(watch) = key_watch {
        runner.every("data_keys.watch", KEY_FILE_POLL, watch);
    }
    Ok(runner)
}

/// The data keys: from configuration, or from the key file (created at first start).
pub fn load_data_keys(config: &Config) -> anyhow::Result<shutong_crypto::DataKeys> {
    let sec = &config.security;
    if !sec.data_keys.is_empty() {
        let index = sec.index_key.as_deref().ok_or_else(|| anyhow::anyhow!("security.index_key is required with security.data_keys"))?;
        return shutong_crypto::DataKeys::from_config(&sec.data_keys, index).map_err(|e| anyhow::anyhow!(e));
    }
    let path = config.data_key_file();
    let (keys, created) = shutong_crypto::DataKeys::load_or_create(&path)?;
    if created {
        tracing::info!(path = %path.display(), "data key ring created (SM4-GCM for sensitive items at rest)");
    }
    Ok(keys)
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}

/// Archives the chain's sealed events signed before `cutoff_ms` into `audit.archive_dir` (a file that
/// verifies on its own), then removes them from the database: `shutong audit archive` and the server's
/// retention schedule.
pub async fn archive_before(
    db: &shutong_store::Db,
    config: &Config,
    key: &shutong_crypto::NodeKey,
    cutoff_ms: i64,
    ctx: &shutong_audit::AuditContext,
) -> anyhow::Result<Option<shutong_audit::Archived>> {
    let name = shutong_identity::node_identity(db).await?.map(|n| n.name).unwrap_or_default();
    let (hex_key, pem) = (key.public_key_hex(), key.public_key_pem());
    let signer = shutong_audit::ExportSigner { node_name: &name, public_key_hex: &hex_key, public_key_pem: &pem };
    Ok(shutong_audit::archive(db, &signer, vec![hex_key.clone()], cutoff_ms, &config.audit_archive_dir(), ctx).await?)
}
