//! `spawn_app`: the real server on a random port with a fresh database — a temporary SQLite file, or a
//! new PostgreSQL database created for the test and dropped after it.
#![allow(dead_code)]

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use shutong::server::Running;
use shutong_config::Config;
use std::sync::OnceLock;

pub const ADMIN_PASSWORD: &str = "Test-Root-Pass-1";
pub const PASSWORD: &str = "Test-User-Pass-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test function once per backend, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )+
    };
}

/// The PostgreSQL server for tests: `SHUTONG_TEST_POSTGRES_URL`, or the local one on 127.0.0.1:5432,
/// started with pg_ctlcluster if it is installed but down.
pub fn postgres_admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("SHUTONG_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), std::time::Duration::from_secs(2)).is_err()
            && std::env::var("SHUTONG_TEST_POSTGRES_URL").is_err()
        {
            start_local_postgres();
        }
        url
    })
    .clone()
}

fn start_local_postgres() {
    let Ok(entries) = std::fs::read_dir("/etc/postgresql") else { return };
    for e in entries.flatten() {
        let version = e.file_name().to_string_lossy().to_string();
        eprintln!("starting the local PostgreSQL {version} cluster for the tests");
        let _ = std::process::Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "start"]).status();
    }
    for _ in 0..30 {
        if std::net::TcpStream::connect("127.0.0.1:5432").is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb { url: format!("sqlite://{}", dir.path().join("shutong.db").display()), pg_name: None, _dir: dir },
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("shutong_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL is required for the postgres tests and is not reachable at {admin}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
                eprintln!("test database: PostgreSQL {base}/{name}");
                TestDb { url: format!("{base}/{name}"), pg_name: Some(name), _dir: dir }
            }
        }
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().to_path_buf()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = postgres_admin_url();
            // Drop runs outside any runtime guarantee (also while unwinding): use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub running: Option<Running>,
    pub backend: Backend,
    pub db: TestDb,
}

pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: db.data_dir(),
        database_url: Some(db.url.clone().into()),
        admin_password: Some(ADMIN_PASSWORD.to_string().into()),
        ..Default::default()
    };
    config.limits.max_body_bytes = 64 * 1024;
    // Tests run the deadline sweep themselves (POST /api/v1/sharing/sweep) after moving the clock.
    config.sharing.sweep_seconds = 0;
    config.exchange.demo_population_rows = 2000;
    // Quality checks after batches are background writes of their own; the quality tests turn them on.
    config.quality.check_after_batch = false;
    config.quality.freshness_interval_seconds = 0;
    // Short, so that tests which change credentials in the database directly wait little (see PRINCIPAL_CACHE).
    config.security.principal_cache_ms = PRINCIPAL_CACHE.as_millis() as u64;
    config
}

/// The principal cache's lifetime in tests: a credential changed behind the platform's back (in the
/// database directly) is seen after it; changes through the API or portal are seen at once.
pub const PRINCIPAL_CACHE: std::time::Duration = std::time::Duration::from_millis(300);

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, false, tweak).await
}

/// The app with the demo province seeded (`shutong serve --demo`).
pub async fn spawn_demo_app(backend: Backend) -> TestApp {
    spawn(backend, true, |_| {}).await
}

/// The demo app with configuration changes.
pub async fn spawn_demo_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, true, tweak).await
}

async fn spawn(backend: Backend, demo: bool, tweak: impl FnOnce(&mut Config)) -> TestApp {
    // Server logs (5xx causes among them) show in a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db);
    tweak(&mut config);
    let running = shutong::server::start(config, demo, false).await.expect("server starts");
    let base = format!("http://{}", running.addr);
    TestApp { base, http: Client::builder().cookie_store(true).build().unwrap(), running: Some(running), backend, db }
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// The server's business clock: tests move it to cross deadlines.
    pub fn clock(&self) -> &shutong_store::Clock {
        &self.running.as_ref().unwrap().state.clock
    }

    pub fn db(&self) -> &shutong_store::Db {
        &self.running.as_ref().unwrap().state.db
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// A call that sets up what a test goes on to check: it must succeed.
    pub async fn call_ok(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let r = self.call(method.clone(), path, token, body).await;
        assert!(r.status.is_success(), "{method} {path}: {} {:?}", r.status, r.body);
        r
    }

    /// A POST that sets up what a test goes on to check: it must succeed.
    pub async fn post_ok(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call_ok(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": username, "password": password}))).await;
        assert_eq!(r.status, StatusCode::OK, "login {username}: {:?}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// A typed client of this app (`shutong-client`), logged in as a demo user.
    pub async fn client(&self, username: &str) -> shutong_client::Client {
        shutong_client::Client::new(&self.base)
            .expect("the app's address")
            .login(username, shutong::demo::DEMO_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("login as {username}: {e}"))
    }

    /// A typed client of this app logged in as the platform administrator.
    pub async fn admin_client(&self) -> shutong_client::Client {
        shutong_client::Client::new(&self.base)
            .expect("the app's address")
            .login("admin", ADMIN_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("login as admin: {e}"))
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a department with a valid generated credit code; returns its ID.
    pub async fn create_department(&self, admin: &str, name: &str, serial: u32, region: &str) -> i64 {
        let code = shutong::demo::demo_credit_code(region, serial);
        let r = self
            .post("/api/v1/departments", admin, json!({"name": name, "credit_code": code, "region_code": region, "level": "city"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    /// A sharing request by `consumer`, approved by `provider` as `approval` says; returns the approval's
    /// answer (with the grant).
    pub async fn approved_request(&self, consumer: &str, provider: &str, request: Value, approval: Value) -> Value {
        let r = self.post("/api/v1/requests", consumer, request).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["request"]["id"].as_i64().unwrap();
        let r = self.post(&format!("/api/v1/requests/{id}/approve"), provider, approval).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body
    }

    /// Creates a user with roles; returns its ID.
    pub async fn create_user(&self, admin: &str, username: &str, department: i64, roles: &[&str]) -> i64 {
        let r = self
            .post(
                "/api/v1/users",
                admin,
                json!({"username": username, "display_name": username, "department_id": department, "password": PASSWORD, "roles": roles}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["user"]["id"].as_i64().unwrap()
    }

    /// Stops the server and starts it again on the same database with a changed configuration.
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut Config)) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        let mut config = test_config(&self.db);
        tweak(&mut config);
        let running = shutong::server::start(config, false, false).await.expect("server restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Makes every insert into the platform's `audit_events` fail (`on`), or lifts that: a failure injected
/// between a change and its audit event.
pub async fn fail_audit_inserts(db: &shutong_store::Db, on: bool) {
    let backend = match db.backend() {
        shutong_store::Backend::Sqlite => Backend::Sqlite,
        shutong_store::Backend::Postgres => Backend::Postgres,
    };
    // One connection, its view of the schema refreshed first: SQLite checks CREATE and DROP TRIGGER against
    // the schema the connection last read, which may predate the other connection's last change.
    let mut conn = db.pool().acquire().await.expect("a connection");
    if backend == Backend::Sqlite {
        sqlx::query("SELECT COUNT(*) FROM sqlite_master").fetch_one(&mut *conn).await.expect("the schema");
    }
    for s in audit_failure_sql(backend, on) {
        sqlx::query(s).execute(&mut *conn).await.expect("audit failure injection");
    }
}

/// The statements that make every insert into the audit trail fail (`on`), or that lift the failure, for
/// tests that hold no running server's database handle (the CLI's).
pub fn audit_failure_sql(backend: Backend, on: bool) -> &'static [&'static str] {
    match (backend, on) {
        (Backend::Sqlite, true) => {
            &["CREATE TRIGGER audit_fails BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END"]
        }
        (Backend::Sqlite, false) => &["DROP TRIGGER audit_fails"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION audit_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected audit failure'; END $$",
            "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_fails()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER audit_fails ON audit_events", "DROP FUNCTION audit_fails()"],
    }
}

/// A portal session of its own (a cookie client) for `username`, logged in through the login form; returns
/// the client and the session's CSRF token for forms.
pub async fn portal_login(app: &TestApp, username: &str, password: &str) -> (Client, String) {
    let http = Client::builder().cookie_store(true).build().unwrap();
    let token_of = |page: &str| page.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_string);
    let page = http.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = token_of(&page).expect("the login form's token");
    let r = http
        .post(format!("{}/login", app.base))
        .form(&[("username", username), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "portal login {username}");
    let page = http.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = token_of(&page).expect("a form with the session's token on the account page");
    (http, csrf)
}

/// A column as the database describes it: name, declared type, NOT NULL, has a default, part of the key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
    pub has_default: bool,
    pub primary_key: bool,
}

/// The platform tables of a database (not sqlx's own) with their columns, by name.
pub async fn schema_of(db: &shutong_store::Db) -> std::collections::BTreeMap<String, Vec<ColumnInfo>> {
    use sqlx::Row;
    let mut out = std::collections::BTreeMap::new();
    let tables: Vec<String> = match db.backend() {
        shutong_store::Backend::Sqlite => sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        ),
        shutong_store::Backend::Postgres => sqlx::query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_sqlx%'",
        ),
    }
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    for t in tables {
        let cols = match db.backend() {
            shutong_store::Backend::Sqlite => sqlx::query(
                "SELECT name, type, \"notnull\", CASE WHEN dflt_value IS NULL THEN 0 ELSE 1 END, pk FROM pragma_table_info($1) ORDER BY cid",
            ),
            shutong_store::Backend::Postgres => sqlx::query(
                "SELECT c.column_name::text, c.data_type::text, CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, \
                 CASE WHEN c.column_default IS NULL THEN 0 ELSE 1 END, \
                 CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints k JOIN information_schema.key_column_usage u \
                   ON u.constraint_name = k.constraint_name AND u.table_schema = k.table_schema \
                   WHERE k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.constraint_type = 'PRIMARY KEY' \
                   AND u.column_name = c.column_name) THEN 1 ELSE 0 END \
                 FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = $1 ORDER BY c.ordinal_position",
            ),
        }
        .bind(&t)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| ColumnInfo {
            name: r.get(0),
            data_type: r.get::<String, _>(1).to_ascii_lowercase(),
            not_null: r.get::<i64, _>(2) != 0,
            has_default: r.get::<i64, _>(3) != 0,
            primary_key: r.get::<i64, _>(4) != 0,
        })
        .collect();
        out.insert(t, cols);
    }
    out
}

/// The names of the platform's indexes (not the primary keys' or unique constraints' own).
pub async fn indexes_of(db: &shutong_store::Db) -> std::collections::BTreeSet<String> {
    use sqlx::Row;
    match db.backend() {
        shutong_store::Backend::Sqlite => {
            sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'")
        }
        shutong_store::Backend::Postgres => sqlx::query(
            "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename NOT LIKE '\\_sqlx%' \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        ),
    }
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

/// Writes one row into every platform table that has none (the migrations seed some): every column NOT NULL without a default, and every key
/// column, gets 1 (or '1'), so that references to other tables' first rows hold; tables are retried until
/// every reference finds its row. Returns each table's row count; panics naming the tables that took no row.
pub async fn fill_every_table(db: &shutong_store::Db) -> std::collections::BTreeMap<String, i64> {
    use sqlx::Row;
    let schema = schema_of(db).await;
    let mut pending: Vec<&String> = schema.keys().collect();
    let mut last_errors = Vec::new();
    for _ in 0..schema.len() + 1 {
        last_errors.clear();
        let mut still = Vec::new();
        for t in pending {
            let rows: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {t}")).fetch_one(db.pool()).await.unwrap().get(0);
            if rows > 0 {
                continue;
            }
            let cols: Vec<&ColumnInfo> = schema[t].iter().filter(|c| (c.not_null && !c.has_default) || c.primary_key).collect();
            let values: Vec<String> = cols
                .iter()
                .map(|c| if c.data_type.contains("int") || c.data_type.contains("serial") { "1".into() } else { "'1'".into() })
                .collect();
            let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
            let sql = format!("INSERT INTO {t} ({}) VALUES ({})", names.join(", "), values.join(", "));
            if let Err(e) = sqlx::query(&sql).execute(db.pool()).await {
                last_errors.push(format!("{t}: {e}"));
                still.push(t);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "tables that took no row: {last_errors:?}");
    let mut counts = std::collections::BTreeMap::new();
    for t in schema.keys() {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {t}")).fetch_one(db.pool()).await.unwrap().get(0);
        counts.insert(t.clone(), n);
    }
    counts
}

/// Row counts of the tables named.
pub async fn row_counts(db: &shutong_store::Db, tables: impl Iterator<Item = &String>) -> std::collections::BTreeMap<String, i64> {
    use sqlx::Row;
    let mut counts = std::collections::BTreeMap::new();
    for t in tables {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {t}")).fetch_one(db.pool()).await.unwrap().get(0);
        counts.insert(t.clone(), n);
    }
    counts
}

/// Every row of every platform table outside the audit trail, as text, sorted: what a state change
/// changes. Columns that record when a credential was last used (`last_*`) are left out: reading with a
/// credential touches them outside any change.
pub async fn platform_snapshot(db: &shutong_store::Db) -> std::collections::BTreeMap<String, Vec<Vec<Option<String>>>> {
    use sqlx::Row;
    let mut out = std::collections::BTreeMap::new();
    for (table, cols) in schema_of(db).await {
        if table.starts_with("audit_") {
            continue;
        }
        let names: Vec<String> = cols.iter().map(|c| c.name.clone()).filter(|n| !n.starts_with("last_")).collect();
        let select = names.iter().map(|n| format!("CAST(\"{n}\" AS TEXT)")).collect::<Vec<_>>().join(", ");
        let mut rows: Vec<Vec<Option<String>>> = sqlx::query(&format!("SELECT {select} FROM {table}"))
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (0..names.len()).map(|i| r.get::<Option<String>, _>(i)).collect())
            .collect();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// A user's ID by username (an administrator's token).
pub async fn user_id(app: &TestApp, admin: &str, username: &str) -> i64 {
    let r = app.get("/api/v1/users", admin).await;
    r.body["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == username))
        .and_then(|u| u["id"].as_i64())
        .unwrap_or_else(|| panic!("no user {username}: {:?}", r.body))
}

/// The MariaDB/MySQL server for tests: `SHUTONG_TEST_MYSQL_URL`, or the local one on 127.0.0.1:3306 (root,
/// no password), started with `service mariadb start` if it is installed but down.
pub fn mysql_admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("SHUTONG_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into());
        let up = || std::net::TcpStream::connect_timeout(&"127.0.0.1:3306".parse().unwrap(), std::time::Duration::from_secs(2)).is_ok();
        if !up() && std::env::var("SHUTONG_TEST_MYSQL_URL").is_err() {
            eprintln!("starting the local MariaDB server for the tests");
            let _ = std::process::Command::new("service").args(["mariadb", "start"]).status();
            for _ in 0..30 {
                if up() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        url
    })
    .clone()
}

/// A database of its own on the department-database servers (PostgreSQL or MariaDB), dropped afterwards:
/// what an exchange node reads and writes in the tests.
pub struct DepartmentDb {
    pub url: String,
    admin: String,
    name: String,
}

impl DepartmentDb {
    pub async fn postgres() -> DepartmentDb {
        DepartmentDb::create(postgres_admin_url()).await
    }

    pub async fn mysql() -> DepartmentDb {
        DepartmentDb::create(mysql_admin_url()).await
    }

    async fn create(admin: String) -> DepartmentDb {
        let name = format!("dept_{}", uuid::Uuid::new_v4().simple());
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("the department database server is required and is not reachable at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create department database");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
        DepartmentDb { url: format!("{base}/{name}"), admin, name }
    }

    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::AnyPoolOptions::new().max_connections(4).connect(&self.url).await.expect("department database")
    }
}

impl Drop for DepartmentDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await {
                    let force = if admin.starts_with("mysql") { "" } else { " WITH (FORCE)" };
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}{force}")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A loopback TCP proxy in front of a server, whose link the test cuts and restores: while cut, every open
/// connection is dropped and new ones are closed at once.
pub struct LinkProxy {
    pub url: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl LinkProxy {
    pub async fn start(target: &str) -> LinkProxy {
        let target = target.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut all = k.lock().unwrap();
                all.retain(|h| !h.is_finished());
                all.push(task.abort_handle());
            }
        });
        LinkProxy { url, cut, conns, accept }
    }

    /// Cuts the link: open connections dropped, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
