//! The exchange node (前置机, `shutong-node`) against a running platform: a department's table published
//! (snapshot, then inserts, updates, soft deletions; a bad row kept aside while the rest flows), a granted
//! dataset kept in another department's local table through the long-poll change feed, the node's
//! heartbeat in the platform's list, a renamed column stopping the publication with its name, a revoked
//! grant emptying the local copy, an unregistered key refused with the platform's reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shutong_exchange::synth;
use sqlx::Row;

use crate::common::{Backend, TestApp, spawn_demo_app};

const DEMO: &str = shutong::demo::DEMO_PASSWORD;

/// A system account with an SM2 key in the department of `admin_user`; its key's PEM file in `dir`.
pub async fn node_account(app: &TestApp, department: i64, username: &str, dir: &Path) -> PathBuf {
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": username, "display_name": username, "department_id": department, "is_system": true, "roles": ["system_account"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["user"]["id"].as_i64().unwrap();
    let key_file = dir.join(format!("{username}.key"));
    let (key, _) = shutong_crypto::NodeKey::load_or_create(&key_file).unwrap();
    let r = app
        .call(reqwest::Method::PUT, &format!("/api/v1/users/{id}/sm2-key"), Some(&admin), Some(json!({"public_key": key.public_key_pem()})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    key_file
}

pub async fn department_of(app: &TestApp, user: &str) -> i64 {
    let token = app.login(user, DEMO).await;
    app.get("/api/v1/me", &token).await.body["user"]["department_id"].as_i64().unwrap()
}

/// Waits (at most `secs`) until `check` holds; panics with `what` otherwise.
pub async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {secs} s waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn sqlite(path: &Path) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new().max_connections(2).connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap()
}

pub(crate) fn started(path: &Path) -> (Arc<tokio::sync::Notify>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(tokio::sync::Notify::new());
    let (s, p) = (stop.clone(), path.to_path_buf());
    let task = tokio::spawn(async move {
        if let Err(e) = shutong_node::run(&p, s).await {
            panic!("node {}: {e:#}", p.display());
        }
    });
    (stop, task)
}

pub(crate) async fn platform_rows(app: &TestApp, token: &str, code: &str) -> i64 {
    app.get(&format!("/api/v1/data/{code}"), token).await.body["binding"]["row_count"].as_i64().unwrap_or(-1)
}

pub(crate) async fn flow(config: &Path, name: &str) -> shutong_node::state::FlowFigures {
    shutong_node::status(config).await.unwrap().flows.into_iter().find(|f| f.name == name).unwrap_or_default()
}

async fn a_node_publishes_a_table_and_another_keeps_a_granted_copy(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ga = department_of(&app, "ga.admin").await;
    let dc = department_of(&app, "dc.rs.editor").await;
    let ga_key = node_account(&app, ga, "ga.qzj", dir.path()).await;
    let dc_key = node_account(&app, dc, "dcrs.qzj", dir.path()).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let granted = app
        .approved_request(
            &app.login("dc.rs.editor", DEMO).await,
            &app.login("ga.reviewer", DEMO).await,
            json!({"resource_code": "101/000002", "items": ["公民身份号码", "姓名", "居住地址", "登记日期"], "purpose": "data_verification",
                   "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["subscription"]}),
            json!({"clear_text": true}),
        )
        .await;
    let grant_id = granted["grant"]["id"].as_i64().unwrap();

    // The department's own database: a table with a row version and a soft-deletion flag.
    let source_db = dir.path().join("gongan.db");
    let source = sqlite(&source_db).await;
    sqlx::query(
        "CREATE TABLE liudong (sfzh TEXT PRIMARY KEY, xm TEXT, dz TEXT, djrq TEXT, ver INTEGER NOT NULL, sc INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(&source)
    .await
    .unwrap();
    let people: Vec<[String; 6]> = (0..60).map(|i| synth::person(i + 90_000, 7)).collect();
    let mut version = 0;
    for p in &people[..50] {
        version += 1;
        sqlx::query("INSERT INTO liudong (sfzh, xm, dz, djrq, ver) VALUES ($1, $2, $3, '2024-05-01', $4)")
            .bind(&p[0])
            .bind(&p[1])
            .bind(&p[5])
            .bind(version)
            .execute(&source)
            .await
            .unwrap();
    }
    let publisher = dir.path().join("ga.toml");
    std::fs::write(
        &publisher,
        format!(
            r#"[platform]
url = "{base}"
account = "ga.qzj"
key_file = "{key}"
[node]
name = "ga-qzj-test"
state_dir = "ga-state"
heartbeat_seconds = 1
[[publication]]
name = "liudong"
resource = "101/000002"
source = "table"
database_url = "sqlite://{db}"
table = "liudong"
key = "sfzh"
change_column = "ver"
change_kind = "sequence"
deletes = "soft_delete"
soft_delete_column = "sc"
poll_ms = 50
batch_rows = 20
snapshot_chunk_rows = 30
[publication.columns]
sfzh = "公民身份号码"
xm = "姓名"
dz = "居住地址"
djrq = "登记日期"
"#,
            base = app.base,
            key = ga_key.display(),
            db = source_db.display()
        ),
    )
    .unwrap();
    let local_db = dir.path().join("renshe.db");
    let subscriber = dir.path().join("dc.toml");
    std::fs::write(
        &subscriber,
        format!(
            r#"[platform]
url = "{base}"
account = "dcrs.qzj"
key_file = "{key}"
[node]
name = "dcrs-qzj-01"
state_dir = "dc-state"
heartbeat_seconds = 1
[[subscription]]
name = "liudong-copy"
resource = "101/000002"
database_url = "sqlite://{db}?mode=rwc"
table = "liudong_copy"
wait_ms = 2000
[subscription.columns]
"姓名" = "xm"
"#,
            base = app.base,
            key = dc_key.display(),
            db = local_db.display()
        ),
    )
    .unwrap();
    let (stop_ga, ga_task) = started(&publisher);
    let (stop_dc, dc_task) = started(&subscriber);

    // The snapshot reaches the platform, and the subscriber's copy.
    until(60, "the snapshot on the platform", || async { platform_rows(&app, &editor, "101/000002").await == 50 }).await;
    let local = sqlite(&local_db).await;
    let local_count = |pool: sqlx::AnyPool| async move {
        sqlx::query("SELECT COUNT(*) FROM liudong_copy").fetch_one(&pool).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1)
    };
    until(60, "the subscriber's full copy", || local_count(local.clone()).map_eq(50)).await;

    // Updates, soft deletions, new rows — one of them with an invalid 公民身份号码.
    for p in &people[..5] {
        version += 1;
        sqlx::query("UPDATE liudong SET xm = $1, ver = $2 WHERE sfzh = $3")
            .bind(format!("{}改", p[1]))
            .bind(version)
            .bind(&p[0])
            .execute(&source)
            .await
            .unwrap();
    }
    for p in &people[5..8] {
        version += 1;
        sqlx::query("UPDATE liudong SET sc = 1, ver = $1 WHERE sfzh = $2").bind(version).bind(&p[0]).execute(&source).await.unwrap();
    }
    // The check character of a real number, changed: GB 11643 refuses it.
    let real = &people[51][0];
    let bad = format!("{}{}", &real[..17], if real.ends_with('0') { '1' } else { '0' });
    for (id, p) in [(people[50][0].as_str(), &people[50]), (bad.as_str(), &people[51]), (people[52][0].as_str(), &people[52])] {
        version += 1;
        sqlx::query("INSERT INTO liudong (sfzh, xm, dz, djrq, ver) VALUES ($1, $2, $3, '2024-06-01', $4)")
            .bind(id)
            .bind(&p[1])
            .bind(&p[5])
            .bind(version)
            .execute(&source)
            .await
            .unwrap();
    }
    // Every change through (the count alone may pass through 49 on the way), and the bad row set aside.
    let state = sqlite(&dir.path().join("ga-state/node.db")).await;
    until(60, "the changes on the platform, the bad row among the node's rejects", || {
        let (app, editor, state) = (&app, editor.clone(), state.clone());
        let (last, deleted) = (people[52][0].clone(), people[7][0].clone());
        async move {
            platform_rows(app, &editor, "101/000002").await == 49
                && app.get(&format!("/api/v1/data/101/000002/records/{last}"), &editor).await.status == StatusCode::OK
                && app.get(&format!("/api/v1/data/101/000002/records/{deleted}"), &editor).await.status == StatusCode::NOT_FOUND
                && sqlx::query("SELECT COUNT(*) FROM rejects").fetch_one(&state).await.map(|r| r.get::<i64, _>(0)).unwrap_or(0) == 1
        }
    })
    .await;
    let r = app.get(&format!("/api/v1/data/101/000002/records/{}", people[0][0]), &editor).await;
    assert_eq!(r.body["姓名"], json!(format!("{}改", people[0][1])), "{:?}", r.body);
    assert_eq!(app.get(&format!("/api/v1/data/101/000002/records/{}", people[6][0]), &editor).await.status, StatusCode::NOT_FOUND);
    // The bad row is kept aside with the platform's reason; the rest flowed.
    let rejects = sqlx::query("SELECT record_key, field, reason FROM rejects").fetch_all(&state).await.unwrap();
    assert_eq!(rejects.len(), 1, "one row rejected");
    assert_eq!(rejects[0].get::<String, _>(0), bad);
    assert_eq!(rejects[0].get::<Option<String>, _>(1).as_deref(), Some("公民身份号码"));
    // The subscriber's copy follows, in its mapped column.
    until(60, "the subscriber's copy after the changes", || local_count(local.clone()).map_eq(49)).await;
    let name: String =
        sqlx::query("SELECT xm FROM liudong_copy WHERE record_key = $1").bind(&people[0][0]).fetch_one(&local).await.unwrap().get(0);
    assert_eq!(name, format!("{}改", people[0][1]));
    let position: i64 = sqlx::query("SELECT position FROM shutong_node_positions WHERE subscription = 'liudong-copy'")
        .fetch_one(&local)
        .await
        .unwrap()
        .get(0);
    assert!(position > 0);

    // An objection (疑义校核) on a record: the subscriber's copy carries the 校核中 flag, then loses it with the
    // provider's answer, although the record's values did not change.
    let filer = app.login("dc.rs.editor", DEMO).await;
    let key = people[1][0].clone();
    let r = app
        .post(
            "/api/v1/quality/objections",
            &filer,
            json!({"resource_code": "101/000002", "keys": [key], "items": ["居住地址"], "reason": "outdated", "description": "已搬迁"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let objection = r.body["id"].as_i64().unwrap();
    let flag_of = |pool: sqlx::AnyPool, key: String| async move {
        sqlx::query("SELECT \"_校核中\" FROM liudong_copy WHERE record_key = $1")
            .bind(key)
            .fetch_one(&pool)
            .await
            .map(|r| r.get::<Option<String>, _>(0))
            .unwrap_or(Some("(no column yet)".into()))
    };
    until(60, "the flag in the subscriber's copy", || {
        let f = flag_of(local.clone(), key.clone());
        async move { f.await.as_deref() == Some("居住地址") }
    })
    .await;
    let answered = app
        .post(
            &format!("/api/v1/quality/objections/{objection}/answer"),
            &app.login("ga.reviewer", DEMO).await,
            json!({"answer": "confirmed", "note": "核实无误"}),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    until(60, "the flag gone from the subscriber's copy", || {
        let f = flag_of(local.clone(), key.clone());
        async move { f.await.is_none() }
    })
    .await;

    // Both nodes registered by their heartbeats; each department sees its own, the authority both.
    let ga_admin = app.login("ga.admin", DEMO).await;
    until(30, "the publisher's heartbeat with its flow", || {
        let (app, t) = (&app, ga_admin.clone());
        async move {
            let r = app.get("/api/v1/nodes", &t).await;
            // 省公安厅's own nodes only: this one, and the demo's ga-qzj-01.
            r.body["nodes"].as_array().is_some_and(|n| {
                n.iter().all(|n| n["department_name"] == "示范省公安厅")
                    && n.iter().any(|n| n["name"] == "ga-qzj-test" && n["report"]["flows"][0]["rows_total"].as_i64().unwrap_or(0) >= 52)
            })
        }
    })
    .await;
    let all = app.get("/api/v1/nodes", &app.admin_token().await).await;
    let names: Vec<&str> = all.body["nodes"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert!(names.contains(&"ga-qzj-test") && names.contains(&"dcrs-qzj-01"), "{names:?}");
    let test_node = all.body["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "ga-qzj-test").unwrap().clone();
    assert_eq!(test_node["silent"], json!(false));

    // A renamed column stops the publication, naming it.
    sqlx::query("ALTER TABLE liudong RENAME COLUMN xm TO xingming").execute(&source).await.unwrap();
    version += 1;
    sqlx::query("UPDATE liudong SET ver = $1 WHERE sfzh = $2").bind(version).bind(&people[1][0]).execute(&source).await.unwrap();
    until(30, "the publication stopped on the renamed column", || {
        let p = publisher.clone();
        async move {
            let f = flow(&p, "liudong").await;
            f.state == "stopped" && f.error.as_deref().is_some_and(|e| e.contains("'xm'") && e.contains("姓名"))
        }
    })
    .await;

    // The grant is revoked: the subscription stops and the local copy is emptied (on_revoke = purge).
    let r = app
        .post(&format!("/api/v1/grants/{grant_id}/revoke"), &app.login("ga.reviewer", DEMO).await, json!({"reason": "用途已结束"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    until(30, "the copy purged after the revocation", || local_count(local.clone()).map_eq(0)).await;
    until(10, "the subscription stopped, saying the copy was emptied", || {
        let s = subscriber.clone();
        async move {
            let f = flow(&s, "liudong-copy").await;
            f.state == "stopped" && f.error.as_deref().is_some_and(|e| e.contains("emptied"))
        }
    })
    .await;

    stop_ga.notify_one();
    stop_dc.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), ga_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), dc_task).await;

    // A key the platform does not know: `check` shows the platform's 401 reason.
    let stranger = dir.path().join("stranger.toml");
    let other_key = dir.path().join("other.key");
    shutong_crypto::NodeKey::load_or_create(&other_key).unwrap();
    std::fs::write(
        &stranger,
        std::fs::read_to_string(&publisher).unwrap().replace(&ga_key.display().to_string(), &other_key.display().to_string()),
    )
    .unwrap();
    let lines = shutong_node::check(&stranger).await.unwrap();
    let platform = lines.iter().find(|l| l.what.starts_with("platform")).unwrap();
    assert!(!platform.ok && platform.detail.contains("401"), "{platform:?}");
    let lines = shutong_node::check(&publisher).await.unwrap();
    let db = lines.iter().find(|l| l.what == "publication liudong: database").unwrap();
    assert!(!db.ok && db.detail.contains("'xm'"), "{db:?}");
    assert!(lines.iter().find(|l| l.what.starts_with("platform")).unwrap().ok, "{lines:?}");
}

trait MapEq {
    fn map_eq(self, want: i64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;
}

impl<F: std::future::Future<Output = i64> + Send + 'static> MapEq for F {
    fn map_eq(self, want: i64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
        Box::pin(async move { self.await == want })
    }
}

async fn the_change_feed_waits_for_the_next_commit(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let post = |body: String| {
        let (base, token) = (app.base.clone(), editor.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/v1/data/101/000002/batches?mode=incremental&format=ndjson"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{:?}", r.text().await);
        }
    };
    let line = |p: &[String; 6]| {
        format!("{{\"公民身份号码\":\"{}\",\"姓名\":\"{}\",\"居住地址\":\"{}\",\"登记日期\":\"2024-05-01\"}}\n", p[0], p[1], p[5])
    };
    post(line(&synth::person(0, 3))).await;
    let first = app.get("/api/v1/data/101/000002/changes?since=0", &editor).await;
    let last = first.body["last_seq"].as_i64().unwrap_or_else(|| panic!("{:?} {:?}", first.status, first.body));
    // A read that waits is answered by the next commit, long before its wait ends.
    let (base, token) = (app.base.clone(), editor.clone());
    let waiting = tokio::spawn(async move {
        let at = std::time::Instant::now();
        let r = reqwest::Client::new()
            .get(format!("{base}/api/v1/data/101/000002/changes?since={last}&wait_ms=20000"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (at.elapsed(), r.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = synth::person(1, 3);
    post(line(&p)).await;
    let (waited, page) = waiting.await.unwrap();
    assert_eq!(page["changes"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["changes"][0]["key"], json!(p[0]));
    assert!(waited < Duration::from_secs(15), "answered by the commit, not the timeout: {waited:?}");
    // Nothing new: the wait ends empty; a wait beyond the limit is refused naming the parameter.
    let r = app.get(&format!("/api/v1/data/101/000002/changes?since={}&wait_ms=300", page["next_since"]), &editor).await;
    assert_eq!(r.body["changes"].as_array().map(Vec::len), Some(0));
    let r = app.get("/api/v1/data/101/000002/changes?since=0&wait_ms=999999", &editor).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("wait_ms")), "{:?}", r.body);
}

on_both_backends!(a_node_publishes_a_table_and_another_keeps_a_granted_copy, the_change_feed_waits_for_the_next_commit);

fn shutong_cmd(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shutong"));
    cmd.args(args).env_remove("SHUTONG_DATABASE_URL").env_remove("SHUTONG_CONFIG");
    cmd
}

fn run_ok(args: &[&str]) -> String {
    let out = shutong_cmd(args).output().unwrap();
    assert!(out.status.success(), "shutong {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's demo, with the binary: `node init --demo`, the key registered with `admin user set-key`,
/// `node run` as a process — killed with SIGKILL mid-way and started again — publishing the sample
/// department database and keeping 法人单位基本信息 in a local table; `node status` and `node check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_demo_node_with_the_binary() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node-demo");
    let node_dir_s = node_dir.to_str().unwrap().to_string();
    let out = run_ok(&["node", "init", "--demo", "--dir", &node_dir_s, "--platform", &app.base]);
    assert!(out.contains("BEGIN PUBLIC KEY"), "{out}");
    let data_dir = app.db.data_dir();
    let pem = node_dir.join("node.pub.pem");
    run_ok(&[
        "admin",
        "user",
        "set-key",
        "--username",
        "ga.exchange",
        "--public-key",
        pem.to_str().unwrap(),
        "--database-url",
        &app.db.url,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    run_ok(&[
        "data",
        "bind",
        "101/000002",
        "--kind",
        "dataset",
        "--as",
        "ga.editor",
        "--database-url",
        &app.db.url,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    let config = node_dir.join("node.toml");
    let config_s = config.to_str().unwrap().to_string();
    tokio::time::sleep(crate::common::PRINCIPAL_CACHE).await;
    let check = shutong_cmd(&["--config", &config_s, "node", "check"]).output().unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "node check:\n{check_out}{}", String::from_utf8_lossy(&check.stderr));
    assert!(check_out.contains("signature accepted: ga.exchange"), "{check_out}");

    let editor = app.login("ga.editor", DEMO).await;
    let entities = platform_rows(&app, &app.login("sj.editor", DEMO).await, "102/000001").await;
    assert!(entities > 0);
    let spawn = || {
        shutong_cmd(&["--config", &config_s, "node", "run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut node = spawn();
    // Killed as soon as the first rows arrive, then started again: every row arrives once.
    until(60, "the first batch on the platform", || async { platform_rows(&app, &editor, "101/000002").await > 0 }).await;
    node.kill().unwrap();
    node.wait().unwrap();
    let mut node = spawn();
    until(60, "the sample department's 200 people on the platform", || async { platform_rows(&app, &editor, "101/000002").await == 200 })
        .await;
    let local = sqlite(&node_dir.join("department.db")).await;
    until(60, "法人单位基本信息 copied into the department database", || {
        let l = local.clone();
        async move { sqlx::query("SELECT COUNT(*) FROM faren").fetch_one(&l).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1) == entities }
    })
    .await;
    let batches = app.get("/api/v1/data/101/000002/batches", &editor).await;
    let upserted: i64 = batches.body["batches"].as_array().unwrap().iter().map(|b| b["rows_upserted"].as_i64().unwrap()).sum();
    assert_eq!(upserted, 200, "no row applied twice across the kill: {}", batches.body);
    let status = run_ok(&["--config", &config_s, "node", "status"]);
    assert!(status.contains("liudong") && status.contains("faren"), "{status}");
    node.kill().unwrap();
    node.wait().unwrap();
}

/// A node silent longer than `exchange.node_silence_seconds` is flagged, and its department's
/// administrators (not its other users) see it in 待办, through the API and the portal; a heartbeat from
/// another kind of account is refused.
async fn a_silent_node_shows_in_its_department_inbox(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let ga_admin = app.login("ga.admin", DEMO).await;
    let listed = app.get("/api/v1/nodes", &ga_admin).await;
    assert_eq!(listed.body["nodes"][0]["name"], json!("ga-qzj-01"), "the demo's node: {:?}", listed.body);
    assert_eq!(listed.body["nodes"][0]["silent"], json!(false));
    assert_eq!(app.get("/api/v1/inbox", &ga_admin).await.body["silent_nodes"], json!([]));
    // Eleven minutes later (the default silence is ten).
    app.clock().set_now_ms(app.clock().now_ms() + 11 * 60_000);
    let r = app.get("/api/v1/nodes?department_id=0", &ga_admin).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("department_id")), "{:?}", r.body);
    let silent = app.get("/api/v1/nodes?silent=true", &ga_admin).await;
    assert_eq!(silent.body["nodes"].as_array().map(Vec::len), Some(1), "{:?}", silent.body);
    let inbox = app.get("/api/v1/inbox", &ga_admin).await;
    assert_eq!(inbox.body["silent_nodes"][0]["name"], json!("ga-qzj-01"), "{:?}", inbox.body);
    // Not the department's editor, not another department's administrator.
    assert_eq!(app.get("/api/v1/inbox", &app.login("ga.editor", DEMO).await).await.body["silent_nodes"], json!([]));
    assert_eq!(app.get("/api/v1/inbox", &app.login("dc.admin", DEMO).await).await.body["silent_nodes"], json!([]));
    assert_eq!(app.get("/api/v1/nodes", &app.login("dc.admin", DEMO).await).await.body["nodes"], json!([]));
    // The portal's 待办 shows it to the administrator.
    let (portal, _) = crate::common::portal_login(&app, "ga.admin", DEMO).await;
    let page = portal.get(format!("{}/inbox", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("前置机失联") && page.contains("ga-qzj-01"), "{page}");
    let page = portal.get(format!("{}/nodes", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("ga-qzj-01") && page.contains("失联"), "{page}");
    // A person's account does not run a node.
    let r = app
        .post(
            "/api/v1/nodes/heartbeat",
            &ga_admin,
            json!({"name": "ga-person", "version": "1", "started_at_ms": 1, "flows": [], "outbox_batches": 0, "outbox_bytes": 0,
                   "outbox_limit_bytes": 0, "last_error": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // A bad figure is named by its path.
    let token = {
        let admin = app.admin_token().await;
        let id = crate::common::user_id(&app, &admin, "ga.exchange").await;
        app.post("/api/v1/tokens", &admin, json!({"user_id": id, "name": "前置机"})).await.body["secret"].as_str().unwrap().to_string()
    };
    let r = app
        .post(
            "/api/v1/nodes/heartbeat",
            &token,
            json!({"name": "ga-qzj-01", "version": "1", "started_at_ms": 1, "outbox_batches": 0, "outbox_bytes": 0, "outbox_limit_bytes": 0,
                   "last_error": null, "flows": [{"name": "x", "direction": "publication", "resource_code": "101/000002", "state": "running",
                   "lag_rows": -1, "lag_seconds": 0, "rows_total": 0, "last_transfer_at_ms": null, "error": null}]}),
        )
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("flows[0]")), "{:?}", r.body);
}

on_both_backends!(a_silent_node_shows_in_its_department_inbox);

/// A system of the inventory links its department's exchange nodes (前置机), and the idle criterion of the
/// zombie verdict reads them: a node that only sends heartbeats is idle, one that moved data is in use.
async fn a_system_links_its_exchange_nodes(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let ga_admin = app.login("ga.admin", DEMO).await;
    let ga = department_of(&app, "ga.admin").await;
    let doc = |nodes: Value| {
        json!({"department_id": ga, "document": {"name": "流动人口管理系统", "function": "流动人口居住登记", "usage_scope": "cross_department",
            "usage_frequency": "daily", "build_cost": "100.00", "om_cost": "10", "funding_source": "budget", "network": "gov_outer",
            "status": "in_use", "om_status": "ongoing", "last_update_date": app.clock().today().to_string(),
            "shares_across_departments": true, "connected": true, "nodes": nodes}})
    };
    let r = app.post("/api/v1/systems", &ga_admin, doc(json!(["no-such-node"]))).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("document.nodes[0]")),
        "{:?}",
        r.body
    );
    let r = app.post("/api/v1/systems", &ga_admin, doc(json!(["ga-qzj-01"]))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["document"]["nodes"], json!(["ga-qzj-01"]));
    // Another department cannot link 省公安厅's node.
    let dc_admin = app.login("dc.admin", DEMO).await;
    let dc = department_of(&app, "dc.admin").await;
    let mut other = doc(json!(["ga-qzj-01"]));
    other["department_id"] = json!(dc);
    let r = app.post("/api/v1/systems", &dc_admin, other).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("another department"), "{:?}", r.body);

    let idle = |v: &Value| v["criteria"].as_array().unwrap().iter().find(|c| c["criterion"] == "idle").unwrap().clone();
    let v = app.get(&format!("/api/v1/systems/{id}/zombie"), &ga_admin).await.body;
    let c = idle(&v);
    assert_eq!(c["met"], json!(true), "heartbeats only: {c}");
    assert!(c["evidence"].to_string().contains("ga-qzj-01 从未交换数据"), "{c}");
    // The node moves data: in use.
    let admin = app.admin_token().await;
    let account = crate::common::user_id(&app, &admin, "ga.exchange").await;
    let token = app.post("/api/v1/tokens", &admin, json!({"user_id": account, "name": "前置机"})).await.body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let now = app.clock().now_ms();
    let r = app
        .post(
            "/api/v1/nodes/heartbeat",
            &token,
            json!({"name": "ga-qzj-01", "version": env!("CARGO_PKG_VERSION"), "started_at_ms": now, "outbox_batches": 0, "outbox_bytes": 0,
                   "outbox_limit_bytes": 1024, "last_error": null, "flows": [{"name": "liudong", "direction": "publication",
                   "resource_code": "101/000002", "state": "running", "lag_rows": 0, "lag_seconds": 0, "rows_total": 10, "rejects": 0,
                   "last_transfer_at_ms": now, "error": null}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let c = idle(&app.get(&format!("/api/v1/systems/{id}/zombie"), &ga_admin).await.body);
    assert_eq!(c["met"], json!(false), "data moved: {c}");
    assert!(c["evidence"].to_string().contains("ga-qzj-01 最近交换数据于"), "{c}");
}

on_both_backends!(a_system_links_its_exchange_nodes);

async fn write_config(path: &Path, text: String) {
    std::fs::write(path, text).unwrap();
}

/// Department databases on the servers departments run: a PostgreSQL table published by an update
/// timestamp (deletions by key comparison), a MariaDB table by a row version (soft deletions), and each
/// dataset kept by another department's node in the other server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_and_writes_postgres_and_mariadb() {
    use crate::common::DepartmentDb;
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ga = department_of(&app, "ga.admin").await;
    let dc = department_of(&app, "dc.rs.editor").await;
    let ga_key = node_account(&app, ga, "ga.qzj", dir.path()).await;
    let dc_key = node_account(&app, dc, "dcrs.qzj", dir.path()).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (consumer, provider) = (app.login("dc.rs.editor", DEMO).await, app.login("ga.reviewer", DEMO).await);
    for (code, items) in [
        ("101/000002", json!(["公民身份号码", "姓名", "居住地址", "登记日期"])),
        ("101/000001", json!(["公民身份号码", "姓名", "出生日期"])),
    ] {
        app.approved_request(
            &consumer,
            &provider,
            json!({"resource_code": code, "items": items, "purpose": "data_verification", "basis": "《社会保险法》第五十八条",
                   "period_to": "2027-06-30", "access_methods": ["subscription"]}),
            json!({"clear_text": true}),
        )
        .await;
    }

    let pg = DepartmentDb::postgres().await;
    let my = DepartmentDb::mysql().await;
    let pgp = pg.pool().await;
    let myp = my.pool().await;
    sqlx::query("CREATE TABLE ldrk (sfzh VARCHAR(18) PRIMARY KEY, xm TEXT NOT NULL, dz TEXT, djrq DATE, gxsj TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())")
        .execute(&pgp)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE rkjb (sfzh VARCHAR(18) PRIMARY KEY, xm VARCHAR(50) NOT NULL, xb VARCHAR(2), mz VARCHAR(20), csrq DATE, hjdz VARCHAR(200), \
         bbh BIGINT NOT NULL, scbz TINYINT(1) NOT NULL DEFAULT 0)",
    )
        .execute(&myp)
        .await
        .unwrap();
    let people: Vec<[String; 6]> = (0..40).map(|i| synth::person(i + 300_000, 9)).collect();
    for (i, p) in people.iter().enumerate() {
        sqlx::query("INSERT INTO ldrk (sfzh, xm, dz, djrq) VALUES ($1, $2, $3, DATE '2024-03-01')")
            .bind(&p[0])
            .bind(&p[1])
            .bind(&p[5])
            .execute(&pgp)
            .await
            .unwrap();
        let birth = format!("{}-{}-{}", &p[0][6..10], &p[0][10..12], &p[0][12..14]);
        sqlx::query("INSERT INTO rkjb (sfzh, xm, xb, mz, csrq, hjdz, bbh) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&p[0])
            .bind(&p[1])
            .bind(&p[2])
            .bind(&p[3])
            .bind(birth)
            .bind(&p[5])
            .bind(i as i64 + 1)
            .execute(&myp)
            .await
            .unwrap();
    }
    let publisher = dir.path().join("ga.toml");
    write_config(
        &publisher,
        format!(
            r#"[platform]
url = "{base}"
account = "ga.qzj"
key_file = "{key}"
[node]
name = "ga-qzj-sql"
state_dir = "ga-state"
heartbeat_seconds = 1
[[publication]]
name = "ldrk"
resource = "101/000002"
source = "table"
database_url = "{pg}"
table = "ldrk"
key = "sfzh"
change_column = "gxsj"
change_kind = "timestamp"
safety_window_seconds = 2
deletes = "compare"
compare_interval_seconds = 1
poll_ms = 100
snapshot_chunk_rows = 7
[publication.columns]
sfzh = "公民身份号码"
xm = "姓名"
dz = "居住地址"
djrq = "登记日期"
[[publication]]
name = "rkjb"
resource = "101/000001"
source = "table"
database_url = "{my}"
table = "rkjb"
key = "sfzh"
change_column = "bbh"
change_kind = "sequence"
deletes = "soft_delete"
soft_delete_column = "scbz"
poll_ms = 100
[publication.columns]
sfzh = "公民身份号码"
xm = "姓名"
xb = "性别"
mz = "民族"
csrq = "出生日期"
hjdz = "户籍地址"
"#,
            base = app.base,
            key = ga_key.display(),
            pg = pg.url,
            my = my.url
        ),
    )
    .await;
    let subscriber = dir.path().join("dc.toml");
    write_config(
        &subscriber,
        format!(
            r#"[platform]
url = "{base}"
account = "dcrs.qzj"
key_file = "{key}"
[node]
name = "dcrs-qzj-sql"
state_dir = "dc-state"
heartbeat_seconds = 1
[[subscription]]
name = "ldrk-copy"
resource = "101/000002"
database_url = "{my}"
table = "ldrk_copy"
wait_ms = 2000
[[subscription]]
name = "rkjb-copy"
resource = "101/000001"
database_url = "{pg}"
table = "rkjb_copy"
key_column = "sfzh"
wait_ms = 2000
"#,
            base = app.base,
            key = dc_key.display(),
            pg = pg.url,
            my = my.url
        ),
    )
    .await;
    // The snapshot is a full batch: the demo's rows of 101/000001 give way to the table's.
    let (stop_ga, ga_task) = started(&publisher);
    let (stop_dc, dc_task) = started(&subscriber);
    until(60, "PostgreSQL's rows on the platform", || async { platform_rows(&app, &editor, "101/000002").await == 40 }).await;
    until(60, "MariaDB's rows on the platform", || async { platform_rows(&app, &editor, "101/000001").await == 40 }).await;
    let count = |pool: sqlx::AnyPool, table: &'static str| async move {
        sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1)
    };
    // The timestamp's safety window, read again after the snapshot, sends none of the snapshot's rows twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let batches = app.get("/api/v1/data/101/000002/batches", &editor).await;
    let applied: i64 = batches.body["batches"].as_array().unwrap().iter().map(|b| b["rows_upserted"].as_i64().unwrap()).sum();
    assert_eq!(applied, 40, "{}", batches.body);
    // PostgreSQL's snapshot is one COPY stream cut into parts of 7 records: 5 full parts and the last.
    let full: Vec<i64> =
        batches.body["batches"].as_array().unwrap().iter().filter(|b| b["mode"] == "full").map(|b| b["parts"].as_i64().unwrap()).collect();
    assert_eq!(full, vec![6], "{}", batches.body);
    until(60, "101/000002 copied into MariaDB", || count(myp.clone(), "ldrk_copy").map_eq(40)).await;
    until(60, "101/000001 copied into PostgreSQL", || count(pgp.clone(), "rkjb_copy").map_eq(40)).await;

    // Changes: an update and a hard deletion in PostgreSQL (found by comparison); an update and a soft
    // deletion in MariaDB.
    sqlx::query("UPDATE ldrk SET xm = '改名甲', gxsj = clock_timestamp() WHERE sfzh = $1").bind(&people[0][0]).execute(&pgp).await.unwrap();
    sqlx::query("DELETE FROM ldrk WHERE sfzh = $1").bind(&people[1][0]).execute(&pgp).await.unwrap();
    sqlx::query("UPDATE rkjb SET xm = '改名乙', bbh = 1000 WHERE sfzh = ?").bind(&people[2][0]).execute(&myp).await.unwrap();
    sqlx::query("UPDATE rkjb SET scbz = 1, bbh = 1001 WHERE sfzh = ?").bind(&people[3][0]).execute(&myp).await.unwrap();
    until(60, "the PostgreSQL deletion on the platform", || async { platform_rows(&app, &editor, "101/000002").await == 39 }).await;
    until(60, "the MariaDB deletion on the platform", || async { platform_rows(&app, &editor, "101/000001").await == 39 }).await;
    until(60, "the copies after the changes", || {
        let (m, p) = (myp.clone(), pgp.clone());
        async move { count(m, "ldrk_copy").await == 39 && count(p, "rkjb_copy").await == 39 }
    })
    .await;
    // The deletion and the update are changes to different keys: capture finds the one by comparison and
    // the other by its timestamp, in either order, so the counts above can be reached before the renames.
    // MariaDB reports a TEXT column as a BLOB with a character set: its bytes are UTF-8.
    let (first, third) = (people[0][0].clone(), people[2][0].clone());
    until(60, "the renamed rows in the copies", || {
        let (m, p, first, third) = (myp.clone(), pgp.clone(), first.clone(), third.clone());
        async move {
            let in_mariadb: Option<Vec<u8>> = sqlx::query("SELECT `姓名` FROM ldrk_copy WHERE record_key = ?")
                .bind(first)
                .fetch_optional(&m)
                .await
                .unwrap()
                .map(|r| r.get(0));
            let in_postgres: Option<String> = sqlx::query("SELECT \"姓名\" FROM rkjb_copy WHERE sfzh = $1")
                .bind(third)
                .fetch_optional(&p)
                .await
                .unwrap()
                .map(|r| r.get(0));
            in_mariadb.as_deref() == Some("改名甲".as_bytes()) && in_postgres.as_deref() == Some("改名乙")
        }
    })
    .await;
    let r = app.get(&format!("/api/v1/data/101/000002/records/{}", people[0][0]), &editor).await;
    assert_eq!(r.body["登记日期"], json!("2024-03-01"), "a PostgreSQL date as the item's date: {:?}", r.body);

    stop_ga.notify_one();
    stop_dc.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), ga_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), dc_task).await;
    pgp.close().await;
    myp.close().await;
}

/// A drop folder: a full CSV in GBK, an incremental NDJSON and an XLSX become batches and move to done/
/// with their reports; a file without the key column moves to rejected/ with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_folder_becomes_batches() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ga = department_of(&app, "ga.admin").await;
    let key = node_account(&app, ga, "ga.qzj", dir.path()).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let people: Vec<[String; 6]> = (0..30).map(|i| synth::person(i + 700_000, 5)).collect();
    // 1: a full batch, GBK, named as such.
    let csv: String = std::iter::once("公民身份号码,姓名,居住地址,登记日期".to_string())
        .chain(people[..20].iter().map(|p| format!("{},{},{},2024-05-01", p[0], p[1], p[5])))
        .collect::<Vec<_>>()
        .join("\r\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
    std::fs::write(drop.join("01-全量.csv"), &gbk).unwrap();
    // 2: an incremental NDJSON: five new people, one deletion.
    let mut nd = String::new();
    for p in &people[20..25] {
        nd.push_str(&format!("{}\n", json!({"公民身份号码": p[0], "姓名": p[1], "居住地址": p[5], "登记日期": "2024-06-01"})));
    }
    nd.push_str(&format!("{}\n", json!({"公民身份号码": people[0][0], "_op": "delete"})));
    std::fs::write(drop.join("02-changes.ndjson"), nd).unwrap();
    // 3: an XLSX with five more.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["公民身份号码", "姓名", "居住地址", "登记日期"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, p) in people[25..30].iter().enumerate() {
        for (c, v) in [&p[0], &p[1], &p[5], &"2024-07-01".to_string()].iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, v.as_str()).unwrap();
        }
    }
    std::fs::write(drop.join("03-more.xlsx"), book.save_to_buffer().unwrap()).unwrap();
    // 4: no key column.
    std::fs::write(drop.join("04-bad.csv"), "姓名,居住地址\n张三,南京\n").unwrap();
    // Files settle (not written in the last second) before the node takes them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let config = dir.path().join("folder.toml");
    write_config(
        &config,
        format!(
            r#"[platform]
url = "{base}"
account = "ga.qzj"
key_file = "{key}"
[node]
name = "ga-qzj-folder"
heartbeat_seconds = 1
[[publication]]
name = "drop"
resource = "101/000002"
source = "folder"
folder = "{drop}"
mode = "by_name"
encoding = "gbk"
poll_ms = 200
"#,
            base = app.base,
            key = key.display(),
            drop = drop.display()
        ),
    )
    .await;
    let (stop, task) = started(&config);
    until(60, "the folder emptied into done/ and rejected/", || {
        let d = drop.clone();
        async move { d.join("rejected/04-bad.csv").exists() && d.join("done/03-more.xlsx").exists() }
    })
    .await;
    assert_eq!(platform_rows(&app, &editor, "101/000002").await, 20 + 5 - 1 + 5);
    for f in ["01-全量.csv", "02-changes.ndjson", "03-more.xlsx"] {
        let report: Value = serde_json::from_slice(&std::fs::read(drop.join(format!("done/{f}.report.json"))).unwrap()).unwrap();
        assert_eq!(report["status"], json!("committed"), "{f}: {report}");
    }
    let full: Value = serde_json::from_slice(&std::fs::read(drop.join("done/01-全量.csv.report.json")).unwrap()).unwrap();
    assert_eq!((full["mode"].as_str(), full["encoding"].as_str(), full["rows_upserted"].as_i64()), (Some("full"), Some("gbk"), Some(20)));
    let bad: Value = serde_json::from_slice(&std::fs::read(drop.join("rejected/04-bad.csv.report.json")).unwrap()).unwrap();
    assert!(bad["error"].as_str().unwrap().contains("公民身份号码"), "{bad}");
    assert_eq!(std::fs::read_dir(&drop).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count(), 0);
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

/// Exactly once, under faults: 100,000 inserts, updates and deletions in random order in a department's
/// table while its node runs — the node killed with SIGKILL five times at random moments and its link cut
/// twice by a loopback proxy — and another department's node keeping a copy, killed and cut too. At the
/// end the platform's dataset equals the table row for row, the subscriber's copy equals the platform's,
/// and the platform applied exactly the rows the node captured, each once (the change sequence counts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_kills_and_cuts() {
    use rand::{Rng, SeedableRng};
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ga = department_of(&app, "ga.admin").await;
    let dc = department_of(&app, "dc.rs.editor").await;
    let ga_key = node_account(&app, ga, "ga.qzj", dir.path()).await;
    let dc_key = node_account(&app, dc, "dcrs.qzj", dir.path()).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.approved_request(
        &app.login("dc.rs.editor", DEMO).await,
        &app.login("ga.reviewer", DEMO).await,
        json!({"resource_code": "101/000002", "items": ["公民身份号码", "姓名", "居住地址", "登记日期"], "purpose": "data_verification",
               "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["subscription"]}),
        json!({"clear_text": true}),
    )
    .await;
    let proxy = crate::common::LinkProxy::start(&app.base).await;

    let source_db = dir.path().join("source.db");
    let source = sqlite(&source_db).await;
    sqlx::query("PRAGMA journal_mode = WAL").execute(&source).await.unwrap();
    sqlx::query(
        "CREATE TABLE liudong (sfzh TEXT PRIMARY KEY, xm TEXT, dz TEXT, djrq TEXT, ver INTEGER NOT NULL, sc INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(&source)
    .await
    .unwrap();
    sqlx::query("CREATE INDEX liudong_ver ON liudong (ver)").execute(&source).await.unwrap();
    // Rows before the node starts: its snapshot, sent as one full batch in parts of 1,000.
    const SEEDED: u64 = 40_000;
    let mut tx = source.begin().await.unwrap();
    for i in 0..SEEDED {
        let p = synth::person(i + 2_000_000, 13);
        sqlx::query("INSERT INTO liudong (sfzh, xm, dz, djrq, ver) VALUES ($1, $2, $3, '2024-05-01', $4)")
            .bind(&p[0])
            .bind(&p[1])
            .bind(&p[5])
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let local_db = dir.path().join("copy.db");
    let common = |account: &str, key: &Path, name: &str| {
        format!(
            "[platform]\nurl = \"{}\"\naccount = \"{account}\"\nkey_file = \"{}\"\ntimeout_seconds = 10\n[node]\nname = \"{name}\"\nstate_dir = \"{name}-state\"\nheartbeat_seconds = 1\n",
            proxy.url,
            key.display()
        )
    };
    let publisher = dir.path().join("pub.toml");
    std::fs::write(
        &publisher,
        common("ga.qzj", &ga_key, "ga-fault")
            + &format!(
                "[[publication]]\nname = \"liudong\"\nresource = \"101/000002\"\nsource = \"table\"\ndatabase_url = \"sqlite://{}\"\n\
                 table = \"liudong\"\nkey = \"sfzh\"\nchange_column = \"ver\"\nchange_kind = \"sequence\"\ndeletes = \"soft_delete\"\n\
                 soft_delete_column = \"sc\"\npoll_ms = 50\nbatch_rows = 2000\nsnapshot_chunk_rows = 1000\n\
                 [publication.columns]\nsfzh = \"公民身份号码\"\nxm = \"姓名\"\ndz = \"居住地址\"\ndjrq = \"登记日期\"\n",
                source_db.display()
            ),
    )
    .unwrap();
    let subscriber = dir.path().join("sub.toml");
    std::fs::write(
        &subscriber,
        common("dcrs.qzj", &dc_key, "dc-fault")
            + &format!(
                "[[subscription]]\nname = \"copy\"\nresource = \"101/000002\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\ntable = \"copy\"\nwait_ms = 2000\n",
                local_db.display()
            ),
    )
    .unwrap();
    let spawn = |config: &Path| {
        shutong_cmd(&["--config", config.to_str().unwrap(), "node", "run"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut pub_node = spawn(&publisher);
    let mut sub_node = spawn(&subscriber);

    // The workload, in transactions of 250 operations; the faults meanwhile.
    let writer = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(20261206);
            let mut keys: Vec<(String, bool)> = (0..SEEDED).map(|i| (synth::person(i + 2_000_000, 13)[0].clone(), true)).collect();
            let mut ver = SEEDED as i64;
            let mut next = 0u64;
            for _ in 0..400 {
                let mut tx = source.begin().await.unwrap();
                for _ in 0..250 {
                    ver += 1;
                    let roll: u32 = rng.gen_range(0..100);
                    if keys.is_empty() || roll < 40 {
                        let p = synth::person(next + 1_000_000, 13);
                        next += 1;
                        sqlx::query("INSERT INTO liudong (sfzh, xm, dz, djrq, ver) VALUES ($1, $2, $3, '2024-05-01', $4)")
                            .bind(&p[0])
                            .bind(&p[1])
                            .bind(&p[5])
                            .bind(ver)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        keys.push((p[0].clone(), true));
                    } else {
                        let i = rng.gen_range(0..keys.len());
                        let (key, live) = keys[i].clone();
                        if roll < 80 {
                            sqlx::query("UPDATE liudong SET xm = $1, sc = 0, ver = $2 WHERE sfzh = $3")
                                .bind(format!("名{ver}"))
                                .bind(ver)
                                .bind(&key)
                                .execute(&mut *tx)
                                .await
                                .unwrap();
                            keys[i].1 = true;
                        } else if live {
                            sqlx::query("UPDATE liudong SET sc = 1, ver = $1 WHERE sfzh = $2")
                                .bind(ver)
                                .bind(&key)
                                .execute(&mut *tx)
                                .await
                                .unwrap();
                            keys[i].1 = false;
                        }
                    }
                }
                tx.commit().await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
            }
        })
    };
    // A kill in the middle of the snapshot: the part on its way is read again over the same keys and sent
    // again, and the platform's batch holds every row once.
    let state_path = dir.path().join("ga-fault-state/node.db");
    let snapshot_at = |path: PathBuf| async move {
        if !path.exists() {
            return ("none".to_string(), 0i64);
        }
        let s = sqlite(&path).await;
        let r =
            sqlx::query("SELECT phase, snapshot_part FROM offsets WHERE publication = 'liudong'").fetch_optional(&s).await.ok().flatten();
        s.close().await;
        r.map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).unwrap_or(("none".into(), 0))
    };
    until(120, "the snapshot's third part taken", || {
        let f = snapshot_at(state_path.clone());
        async move { f.await.1 >= 3 }
    })
    .await;
    pub_node.kill().unwrap();
    pub_node.wait().unwrap();
    let (phase, parts) = snapshot_at(state_path.clone()).await;
    assert_eq!(phase, "snapshot", "the kill was to come in the middle of the snapshot, which had ended ({parts} parts)");
    pub_node = spawn(&publisher);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2500))).await;
        pub_node.kill().unwrap();
        pub_node.wait().unwrap();
        if round % 2 == 0 {
            sub_node.kill().unwrap();
            sub_node.wait().unwrap();
            sub_node = spawn(&subscriber);
        }
        pub_node = spawn(&publisher);
        if round == 1 || round == 3 {
            proxy.cut();
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..2500))).await;
            proxy.restore();
        }
    }
    writer.await.unwrap();

    // Everything arrives: the platform equals the table, the copy equals the platform.
    let live: i64 = sqlx::query("SELECT COUNT(*) FROM liudong WHERE sc = 0").fetch_one(&source).await.unwrap().get(0);
    until(240, "the platform caught up with the table", || async { platform_rows(&app, &editor, "101/000002").await == live }).await;
    let state = sqlite(&dir.path().join("ga-fault-state/node.db")).await;
    until(60, "the outbox emptied", || {
        let s = state.clone();
        async move { sqlx::query("SELECT COUNT(*) FROM outbox").fetch_one(&s).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1) == 0 }
    })
    .await;
    let export = reqwest::Client::new()
        .get(format!("{}/api/v1/data/101/000002/export?format=ndjson", app.base))
        .bearer_auth(&editor)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let platform: std::collections::BTreeMap<String, (String, String)> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["公民身份号码"].as_str().unwrap().to_string(),
                (v["姓名"].as_str().unwrap().to_string(), v["居住地址"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    let table: std::collections::BTreeMap<String, (String, String)> = sqlx::query("SELECT sfzh, xm, dz FROM liudong WHERE sc = 0")
        .fetch_all(&source)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), (r.get::<String, _>(1), r.get::<String, _>(2))))
        .collect();
    assert_eq!(platform.len(), table.len());
    assert!(platform == table, "the platform's dataset differs from the table");
    // Each captured row applied once: the platform gives every row it applies the next number of the
    // dataset's change sequence, so the sequence counts what was applied.
    let captured: i64 = sqlx::query("SELECT captured FROM offsets WHERE publication = 'liudong'").fetch_one(&state).await.unwrap().get(0);
    let last_seq = app.get("/api/v1/data/101/000002", &editor).await.body["binding"]["last_seq"].as_i64().unwrap();
    assert_eq!(last_seq, captured, "one change sequence number per captured row: none applied twice, none lost");
    let batches = app.get("/api/v1/data/101/000002/batches", &editor).await;
    let list = batches.body["batches"].as_array().unwrap();
    // (A batch cut off while it loaded failed, and was sent again under its ID.)
    let list: Vec<&Value> = list.iter().filter(|b| b["status"] == "committed").collect();
    let ids: std::collections::BTreeSet<&str> = list.iter().map(|b| b["batch_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), list.len(), "a batch ID committed twice");
    assert!(list.iter().all(|b| b["rows_rejected"] == json!(0) && b["replayed"] == json!(false)), "{}", batches.body);
    // The subscriber's copy.
    let copy = sqlite(&local_db).await;
    until(120, "the subscriber's copy caught up", || {
        let c = copy.clone();
        let n = platform.len() as i64;
        async move {
            let position = sqlx::query("SELECT position FROM shutong_node_positions WHERE subscription = 'copy'")
                .fetch_one(&c)
                .await
                .map(|r| r.get::<i64, _>(0))
                .unwrap_or(-1);
            let rows = sqlx::query("SELECT COUNT(*) FROM copy").fetch_one(&c).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1);
            position == last_seq && rows == n
        }
    })
    .await;
    let copied: std::collections::BTreeMap<String, (String, String)> = sqlx::query("SELECT record_key, `姓名`, `居住地址` FROM copy")
        .fetch_all(&copy)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), (r.get::<String, _>(1), r.get::<String, _>(2))))
        .collect();
    assert!(copied == platform, "the subscriber's copy differs from the platform's dataset");
    pub_node.kill().unwrap();
    sub_node.kill().unwrap();
    let _ = (pub_node.wait(), sub_node.wait());
}
