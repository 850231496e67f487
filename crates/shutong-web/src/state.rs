//! Shared state of the router.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use shutong_config::Config;
use shutong_identity::SecuritySettings;
use shutong_reference::{MaskRules, RegionTable, WorkCalendar};
use shutong_store::Db;
use std::ops::Deref;
use std::sync::{Arc, OnceLock, RwLock};

/// What every handler may reach: the database, the configuration, and the reference data snapshots.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub config: Arc<Config>,
    pub security: SecuritySettings,
    pub metrics: PrometheusHandle,
    pub mask_rules: MaskRules,
    /// The catalog's search index: a projection of the database.
    pub catalog_index: Arc<shutong_catalog::search::CatalogIndex>,
    calendar: RwLock<Arc<WorkCalendar>>,
    regions: RwLock<Arc<RegionTable>>,
    /// Catalog imports started from the portal, by job ID (progress and report).
    pub import_jobs: std::sync::Mutex<std::collections::HashMap<String, ImportJob>>,
    /// The business clock of deadlines; tests move it.
    pub clock: shutong_store::Clock,
    pub deadlines: shutong_sharing::Deadlines,
    /// The data plane (共享交换): pool database, access log, caches. Its business clock is `clock`.
    pub exchange: shutong_exchange::Exchange,
    /// Recently resolved bearer tokens (`security.principal_cache_ms`).
    pub principals: crate::extract::PrincipalCache,
    /// 节点密钥: signs the audit trail's checkpoints; its public half is published at `/api/v1/node`.
    pub node_key: Arc<shutong_crypto::NodeKey>,
    /// Requests per second per address and per credential (`security.rate_per_ip`, `rate_per_token`).
    pub rate_limits: crate::middleware::RateLimits,
    /// The machine's fonts for printed documents, discovered on first use (a machine without a CJK font
    /// still serves everything else; printing answers 503 naming the packages to install).
    fonts: std::sync::OnceLock<Arc<shutong_documents::Fonts>>,
}

/// A catalog import started from the portal: its progress while it runs, its report when done.
#[derive(Clone, Debug, Default)]
pub struct ImportJob {
    pub owner: Option<i64>,
    pub file_name: String,
    pub phase: String,
    pub done: usize,
    pub total: usize,
    pub finished: bool,
    pub summary: Option<String>,
    pub issues: Vec<shutong_catalog::transfer::ImportIssue>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The process-wide Prometheus recorder (a recorder can be installed once per process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Security settings from configuration.
pub fn security_settings(config: &Config) -> SecuritySettings {
    let s = &config.security;
    SecuritySettings {
        password_policy: shutong_identity::password::PasswordPolicy { min_length: s.password_min_length, min_classes: 3 },
        max_failed_logins: s.max_failed_logins,
        lockout_ms: s.lockout_minutes * 60_000,
        session_ttl_ms: s.session_ttl_minutes * 60_000,
        max_token_ttl_days: s.max_token_ttl_days,
    }
}

/// How objections are handled, from configuration.
pub fn objection_settings(config: &Config) -> shutong_quality::ObjectionSettings {
    shutong_quality::ObjectionSettings {
        answer_days: config.quality.objection_answer_days as i64,
        evidence_max_bytes: (config.quality.objection_evidence_max_mb * 1024 * 1024) as usize,
    }
}

/// When the sealer signs checkpoints, from configuration.
pub fn seal_options(config: &Config) -> shutong_audit::SealOptions {
    shutong_audit::SealOptions {
        batch: 5_000,
        checkpoint_every: config.audit.checkpoint_every,
        checkpoint_interval_ms: config.audit.checkpoint_interval_seconds * 1000,
    }
}

/// Sharing deadlines from configuration.
pub fn deadlines(config: &Config) -> shutong_sharing::Deadlines {
    let s = &config.sharing;
    shutong_sharing::Deadlines {
        answer: s.answer_workdays,
        negotiation: s.negotiation_workdays,
        coordination: s.coordination_workdays,
        leading_group: s.leading_group_workdays,
        reminder: s.reminder_workdays,
        expiry_notice_days: s.expiry_notice_days,
    }
}

impl AppState {
    /// The sharing services' context: database, calendar snapshot, clock, deadlines.
    pub fn sharing(&self) -> shutong_sharing::Sharing {
        shutong_sharing::Sharing { db: self.db.clone(), calendar: self.calendar(), clock: self.clock.clone(), deadlines: self.deadlines }
    }

    pub fn new(
        db: Db,
        config: Arc<Config>,
        calendar: WorkCalendar,
        regions: RegionTable,
        catalog_index: Arc<shutong_catalog::search::CatalogIndex>,
        mut exchange: shutong_exchange::Exchange,
        node_key: Arc<shutong_crypto::NodeKey>,
    ) -> Self {
        let clock = shutong_store::Clock::system();
        exchange.sharing.clock = clock.clone();
        register_effects(&db, &exchange, &catalog_index);
        let state = AppState(Arc::new(Inner {
            principals: crate::extract::PrincipalCache::new(config.security.principal_cache_ms),
            rate_limits: crate::middleware::RateLimits::new(config.security.rate_per_ip, config.security.rate_per_token),
            exchange,
            catalog_index,
            security: security_settings(&config),
            mask_rules: MaskRules { overrides: config.masking.clone() },
            deadlines: deadlines(&config),
            db,
            config,
            metrics: metrics_handle(),
            calendar: RwLock::new(Arc::new(calendar)),
            regions: RwLock::new(Arc::new(regions)),
            import_jobs: Default::default(),
            clock,
            node_key,
            fonts: std::sync::OnceLock::new(),
        }));
        register_state_effects(&state);
        register_quality_requests(&state);
        state
    }

    /// The fonts of printed documents, discovered once (on a blocking thread: it reads font files' tables).
    pub async fn fonts(&self) -> Result<Arc<shutong_documents::Fonts>, shutong_documents::DocumentError> {
        if let Some(f) = self.fonts.get() {
            return Ok(f.clone());
        }
        let found = tokio::task::spawn_blocking(|| shutong_documents::Fonts::discover(&shutong_documents::Fonts::default_dirs()))
            .await
            .map_err(|e| shutong_documents::DocumentError::Pdf(e.to_string()))??;
        Ok(self.fonts.get_or_init(|| Arc::new(found)).clone())
    }

    /// A snapshot of the working-day calendar.
    pub fn calendar(&self) -> Arc<WorkCalendar> {
        self.calendar.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_calendar(&self, cal: WorkCalendar) {
        match self.calendar.write() {
            Ok(mut c) => *c = Arc::new(cal),
            Err(p) => *p.into_inner() = Arc::new(cal),
        }
    }

    /// Changes a portal import job, if it exists.
    pub fn update_job(&self, id: &str, f: impl FnOnce(&mut ImportJob)) {
        if let Ok(mut jobs) = self.import_jobs.lock()
            && let Some(job) = jobs.get_mut(id)
        {
            f(job);
        }
    }

    /// A snapshot of the region table.
    pub fn regions(&self) -> Arc<RegionTable> {
        self.regions.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_regions(&self, table: RegionTable) {
        match self.regions.write() {
            Ok(mut c) => *c = Arc::new(table),
            Err(p) => *p.into_inner() = Arc::new(table),
        }
    }
}

/// The effects of committed changes on this state's snapshots: an identity change forgets the cached
/// principals (a disabled user, a revoked token or role, an ended session is refused at once), and a change
/// of reference data reloads the calendar and the region table. The handler holds the state weakly.
fn register_state_effects(state: &AppState) {
    use shutong_store::effects::Notice;
    let weak = Arc::downgrade(&state.0);
    state.db.effects().on_commit(move |db, notice| {
        let weak = weak.clone();
        async move {
            let Some(inner) = weak.upgrade() else { return };
            let state = AppState(inner);
            match notice {
                Notice::IdentityChanged => state.principals.clear(),
                Notice::ReferenceDataChanged => {
                    match shutong_refdata::load_calendar(&db).await {
                        Ok(c) => state.set_calendar(c),
                        Err(e) => tracing::warn!(error = %e, "reloading the calendar failed; the old one stays in use"),
                    }
                    match shutong_refdata::load_regions(&db).await {
                        Ok(r) => state.set_regions(r),
                        Err(e) => tracing::warn!(error = %e, "reloading the region table failed; the old one stays in use"),
                    }
                }
                Notice::CatalogChanged { .. } | Notice::CatalogImported | Notice::GrantsChanged | Notice::DataChanged { .. } => {}
            }
        }
    });
}

/// The job of the kind that refreshes a theme database after a member's batch (`shutong_quality::refresh_theme`).
pub const THEME_REFRESH_JOB: &str = "quality.theme_refresh";

/// The job of the kind that checks a dataset's quality (`shutong_quality::check`, run by the server's runner).
pub const QUALITY_CHECK_JOB: &str = "quality.check";

/// Every data change committed in the pool (a batch, a binding, files) asks for a quality check of its
/// dataset as a job of the runner (one per dataset; asked for again while one runs, it runs once more), so
/// that every accepted batch is checked (办法 第十七条). The handler holds the state weakly.
fn register_quality_requests(state: &AppState) {
    use shutong_store::effects::Notice;
    let weak = Arc::downgrade(&state.0);
    state.exchange.pool.effects().on_commit(move |_, notice| {
        let weak = weak.clone();
        async move {
            let Notice::DataChanged { code } = notice else { return };
            let Some(inner) = weak.upgrade() else { return };
            let state = AppState(inner);
            let at = state.clock.now_ms();
            // 主题库: the themes this dataset feeds follow its batch.
            if let Ok(c) = shutong_catalog::ResourceCode::parse(&code) {
                for theme in shutong_quality::themes_with_member(&state.exchange, &c).await.unwrap_or_default() {
                    let key = theme.0.to_string();
                    if let Err(e) = shutong_store::jobs::request(&state.db, THEME_REFRESH_JOB, &key, &serde_json::json!({}), at).await {
                        tracing::warn!(error = %e, theme = theme.0, "asking for a theme database's refresh failed");
                    }
                }
            }
            if !state.config.quality.check_after_batch {
                return;
            }
            if let Err(e) = shutong_store::jobs::request(&state.db, QUALITY_CHECK_JOB, &code, &serde_json::json!({}), at).await {
                tracing::warn!(error = %e, resource = %code, "asking for a quality check failed; the daily check will see the data");
            }
        }
    });
}

/// The effects of committed changes in this process (`shutong_store::effects`): a catalog change refreshes
/// the resource's search entry (an import rebuilds the index), and every catalog or grant change forgets
/// the cached access decisions. Registered once per database; the handlers keep neither the exchange nor
/// the index alive.
fn register_effects(db: &Db, exchange: &shutong_exchange::Exchange, index: &Arc<shutong_catalog::search::CatalogIndex>) {
    use shutong_store::effects::Notice;
    let invalidator = exchange.invalidator();
    let index = Arc::downgrade(index);
    db.effects().on_commit(move |db, notice| {
        let invalidator = invalidator.clone();
        let index = index.clone();
        async move {
            invalidator.invalidate();
            let Some(index) = index.upgrade() else { return };
            let refreshed = match &notice {
                // The notice carries the code as stored; one that no longer parses rebuilds the index.
                Notice::CatalogChanged { code } => match shutong_catalog::ResourceCode::parse(code) {
                    Ok(code) => index.refresh(&db, &code).await,
                    Err(_) => index.rebuild(&db).await.map(|_| ()),
                },
                Notice::CatalogImported => index.rebuild(&db).await.map(|_| ()),
                Notice::GrantsChanged | Notice::IdentityChanged | Notice::ReferenceDataChanged | Notice::DataChanged { .. } => Ok(()),
            };
            if let Err(e) = refreshed {
                tracing::warn!(error = %e, ?notice, "search index refresh failed; reconciliation will repair it");
            }
        }
    });
}
