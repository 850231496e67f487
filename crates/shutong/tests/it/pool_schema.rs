//! The pool database's schema (`shutong_exchange::schema`): versioned by migrations of its own, applied once
//! each and in order; a pool from before the schema was versioned is adopted where it stands and brought
//! up to date with its data kept. On both backends, each on a database of its own.

use shutong_exchange::schema::{self, MIGRATIONS};
use shutong_store::{Db, DbOptions, Row};

use crate::common::{Backend, TestDb};

async fn pool(db: &TestDb) -> Db {
    Db::connect(&db.url, &DbOptions::default()).await.expect("pool database")
}

fn last_version() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

async fn columns(pool: &Db, table: &str) -> Vec<String> {
    let sql = match pool.backend() {
        shutong_store::Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY name"),
        shutong_store::Backend::Postgres => format!(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY column_name"
        ),
    };
    sqlx::query(&sql).fetch_all(pool.pool()).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect()
}

/// Lays the pool out as a release before versioning did: the first `n` migrations' tables, no record of them,
/// and a binding and a batch in them.
async fn unversioned_pool(pool: &Db, n: usize) {
    for m in &MIGRATIONS[..n] {
        for s in m.statements(pool.backend()) {
            sqlx::query(&s).execute(pool.pool()).await.unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO exchange_bindings (resource_code, provider_department_id, kind, created_at, created_by, updated_at) \
         VALUES ('101/000001', 7, 'dataset', 1, 'ga.editor', 1)",
    )
    .execute(pool.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO exchange_batches (resource_code, batch_key, mode, format, encoding, status, started_at, submitted_by, provider_department_id) \
         VALUES ('101/000001', 'load-1', 'full', 'csv', 'utf-8', 'committed', 1, 'ga.editor', 7)",
    )
    .execute(pool.pool())
    .await
    .unwrap();
}

async fn a_new_pool_gets_every_migration_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pool = pool(&db).await;
    assert_eq!(schema::applied_versions(&pool).await.unwrap(), Vec::<i64>::new());
    schema::ensure(&pool, 60_000).await.unwrap();
    assert_eq!(schema::applied_versions(&pool).await.unwrap(), last_version());
    assert!(columns(&pool, "exchange_bindings").await.contains(&"key_sealed".to_string()));
    assert!(!columns(&pool, "audit_outbox").await.is_empty());
    // Again (the next start, another replica): nothing to apply, nothing fails.
    assert_eq!(schema::migrate(&pool).await.unwrap(), Vec::<i64>::new());
    schema::ensure(&pool, 60_000).await.unwrap();
    assert_eq!(schema::applied_versions(&pool).await.unwrap(), last_version());
}

async fn an_unversioned_pool_is_adopted_and_brought_up_to_date(backend: Backend) {
    // The first release (no blind-index column, no outbox) and the one after it (the column, no outbox).
    for released in [1, 2] {
        let db = TestDb::new(backend).await;
        let pool = pool(&db).await;
        unversioned_pool(&pool, released).await;
        let applied = schema::migrate(&pool).await.unwrap();
        assert_eq!(applied, MIGRATIONS[released..].iter().map(|m| m.version).collect::<Vec<_>>(), "release {released}");
        assert_eq!(schema::applied_versions(&pool).await.unwrap(), last_version());
        let row = sqlx::query("SELECT kind, key_sealed FROM exchange_bindings WHERE resource_code = '101/000001'")
            .fetch_one(pool.pool())
            .await
            .unwrap();
        assert_eq!((row.get::<String, _>(0), row.get::<i64, _>(1)), ("dataset".to_string(), 0));
        let batches: i64 = sqlx::query("SELECT COUNT(*) FROM exchange_batches").fetch_one(pool.pool()).await.unwrap().get(0);
        assert_eq!(batches, 1, "release {released}: the data is kept");
        schema::ensure(&pool, 60_000).await.unwrap();
        assert_eq!(schema::applied_versions(&pool).await.unwrap(), last_version());
    }
}

on_both_backends!(a_new_pool_gets_every_migration_once, an_unversioned_pool_is_adopted_and_brought_up_to_date);
