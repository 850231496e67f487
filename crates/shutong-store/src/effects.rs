//! What a committed change tells the rest of the process (变更通知): the effects that run after a state
//! change commits — the search index refreshed, cached access decisions forgotten — registered once at
//! start-up by the layers that own them and run by the change's unit of work (`shutong_audit::Change`)
//! right after its commit, before the caller answers. Handlers registered on one `Db` serve every clone of it.
//! (Other replicas learn of changes through the reconciliation and cache lifetimes ARCHITECTURE.md states.)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

/// A change that others in this process act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A catalog resource changed (created, edited, submitted, reviewed, revised, withdrawn, imported):
    /// its search entry and the access decisions that read its items.
    CatalogChanged { code: String },
    /// Many catalog resources changed at once (an import): the whole search index and every access decision.
    CatalogImported,
    /// A grant came into force, changed or ended: the access decisions that read grants.
    GrantsChanged,
    /// A department, user, role, password, key, token or session changed: the principals resolved from
    /// credentials and kept for `security.principal_cache_ms`.
    IdentityChanged,
    /// A dataset's binding, data or files changed in the data pool: the access decisions that read bindings.
    DataChanged { code: String },
    /// Reference data changed (a year's working-day calendar, a region): the snapshots read from it.
    ReferenceDataChanged,
}

type Handler = Arc<dyn Fn(crate::Db, Notice) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The effect handlers of a database's changes.
#[derive(Default)]
pub struct Effects {
    handlers: RwLock<Vec<Handler>>,
}

impl Effects {
    /// Registers a handler; it sees every notice of every change committed afterwards, with the database
    /// (handed in, so that a handler holds no `Db` of its own and no cycle keeps the pool alive).
    pub fn on_commit<F, Fut>(&self, handler: F)
    where
        F: Fn(crate::Db, Notice) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: Handler = Arc::new(move |db, n| Box::pin(handler(db, n)));
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.push(h);
        }
    }

    /// Runs every handler on every notice, in order (after the change committed).
    pub async fn run(&self, db: &crate::Db, notices: &[Notice]) {
        let handlers: Vec<Handler> = self.handlers.read().map(|h| h.clone()).unwrap_or_default();
        for n in notices {
            for h in &handlers {
                h(db.clone(), n.clone()).await;
            }
        }
    }
}

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.handlers.read().map(|h| h.len()).unwrap_or(0);
        f.debug_struct("Effects").field("handlers", &n).finish()
    }
}
