//! Sensitive items at rest (办法 第二十一条: 安全保障): values of sensitive items are stored SM4-encrypted with
//! their masked forms, the key column as a blind index; the access log records them masked; data keys rotate,
//! values are re-encrypted (`keys rekey`) and old keys retired, each step audited and, with the trail failing,
//! refused without a trace.

use crate::common;

use crate::common::{Backend, TestApp, spawn_demo_app};
use crate::exchange::{DEMO, POPULATION, population_csv, upload};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shutong_exchange::synth;

/// Runs the `shutong` binary against the test app's database and data directory.
fn shutong_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shutong"))
        .args(args)
        .arg("--data-dir")
        .arg(app.db.data_dir())
        .env("SHUTONG_DATABASE_URL", &app.db.url)
        .output()
        .expect("run shutong");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The stored rows of a dataset, straight from its table: (k, values).
async fn stored_rows(app: &TestApp, code: &str) -> Vec<(String, Vec<Option<String>>)> {
    use sqlx::Row;
    let ex = &app.running.as_ref().unwrap().state.exchange;
    let b = shutong_exchange::get_binding(ex, &shutong_catalog::ResourceCode::parse(code).unwrap()).await.unwrap().unwrap();
    let n = b.columns.len();
    let cols: String = (0..n).map(|i| format!(", c{i}")).collect();
    let sql = format!("SELECT k{cols} FROM {} WHERE d = 0 ORDER BY k", b.table_name.unwrap());
    sqlx::query(&sql)
        .fetch_all(ex.pool.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), (0..n).map(|i| r.get::<Option<String>, _>(i + 1)).collect()))
        .collect()
}

async fn sensitive_items_are_encrypted_at_rest(backend: Backend) {
    let mut app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let people: Vec<[String; 6]> = (0..20).map(|i| synth::person(i, 4242)).collect();
    let r = upload(&app, &editor, POPULATION, "mode=incremental&batch_id=at-rest-1", "text/csv", population_csv(&people)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // In the database: no sensitive value in clear, the key as its 64-hex-digit blind index.
    let rows = stored_rows(&app, "101/000001").await;
    assert!(rows.len() >= 2020, "{}", rows.len());
    let dump: String = rows.iter().map(|(k, v)| format!("{k}|{v:?}\n")).collect();
    for p in &people {
        for clear in [&p[0], &p[1], &p[5]] {
            assert!(!dump.contains(clear.as_str()), "{clear} is stored in clear");
        }
        assert!(dump.contains(&p[2]), "性别 is not sensitive and stays in clear");
    }
    assert!(rows.iter().all(|(k, _)| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit())), "{}", &rows[0].0);
    assert!(rows.iter().all(|(_, v)| [0usize, 1, 5].iter().all(|&c| v[c].as_deref().is_none_or(|s| s.starts_with('\u{1}')))));
    let b = app.get(POPULATION, &editor).await;
    assert_eq!(b.body["binding"]["key_sealed"], true, "{:?}", b.body);

    // Through the API: the provider reads clear text, by key and by a condition on an encrypted item.
    let r = app.get(&format!("{POPULATION}/records/{}", people[3][0]), &editor).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["姓名"].as_str(), r.body["户籍地址"].as_str()),
        (Some(people[3][1].as_str()), Some(people[3][5].as_str())),
        "{:?}",
        r.body
    );
    let q = app
        .post(
            &format!("{POPULATION}/query"),
            &editor,
            json!({"conditions": [{"item": "户籍地址", "op": "eq", "values": [people[7][5]]}], "limit": 100}),
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{:?}", q.body);
    let found: Vec<&str> = q.body["records"].as_array().unwrap().iter().filter_map(|r| r["公民身份号码"].as_str()).collect();
    assert!(found.contains(&people[7][0].as_str()), "{:?}", q.body);
    assert!(q.body["records"].as_array().unwrap().iter().all(|r| r["户籍地址"] == people[7][5].as_str()));
    let q = app.post(&format!("{POPULATION}/query"), &editor, json!({"conditions": [{"item": "姓名", "op": "prefix", "values": [people[9][1].chars().next().unwrap().to_string()]}], "limit": 5})).await;
    assert_eq!(q.status, StatusCode::OK, "{:?}", q.body);
    assert!(!q.body["records"].as_array().unwrap().is_empty());
    // Paged through with the cursor: every record once.
    let (mut seen, mut after) = (std::collections::HashSet::new(), None::<String>);
    loop {
        let mut body = json!({"limit": 500});
        if let Some(a) = &after {
            body["after"] = json!(a);
        }
        let q = app.post(&format!("{POPULATION}/query"), &editor, body).await;
        for r in q.body["records"].as_array().unwrap() {
            assert!(seen.insert(r["公民身份号码"].as_str().unwrap().to_string()), "a record twice");
        }
        match q.body["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), rows.len());
    // The export: the same clear values.
    let e = app.http.get(format!("{}{POPULATION}/export?format=csv", app.base)).bearer_auth(&editor).send().await.unwrap();
    let csv = e.text().await.unwrap();
    assert!(csv.contains(&people[11][5]) && csv.contains(&people[11][0]));

    // The access log holds no sensitive value in clear either (the trail is kept for years and exported
    // to third parties): looked-up keys and condition values of sensitive items are recorded masked, with
    // an audit token; an auditor finds every access to one person by the subject.
    let admin = app.admin_token().await;
    let q = app
        .post(
            &format!("{POPULATION}/query"),
            &editor,
            json!({"conditions": [{"item": "公民身份号码", "op": "eq", "values": [people[3][0]]}], "limit": 5}),
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{:?}", q.body);
    let mut found = Value::Null;
    for _ in 0..50 {
        found = app.get(&format!("/api/v1/audit/events?subject={}&limit=100", people[3][0]), &admin).await.body;
        if found["events"].as_array().is_some_and(|e| e.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events = found["events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"data.lookup") && actions.contains(&"data.query"), "{found}");
    let key = events.iter().find(|e| e["action"] == "data.lookup").unwrap()["detail"]["access"]["key"].as_str().unwrap().to_string();
    let (masked, token) = key.split_once('#').unwrap();
    assert!(masked.contains('*') && token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    // The same search from the CLI.
    let (code, out, err) = shutong_cli(&app, &["audit", "list", "--limit", "100", "--subject", &people[3][0].to_lowercase()]);
    assert_eq!(code, 0, "{out}{err}");
    let listed: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), events.len(), "{out}");
    assert!(!out.contains(people[3][0].as_str()), "{out}");
    let none = app.get(&format!("/api/v1/audit/events?subject={}&limit=100", people[4][0]), &admin).await;
    assert_eq!(none.body["events"].as_array().map(Vec::len), Some(0), "{:?}", none.body);
    let trail = app.get("/api/v1/audit/events?target_kind=resource&limit=1000", &admin).await.body.to_string();
    for clear in [&people[3][0], &people[7][5]] {
        assert!(!trail.contains(clear.as_str()), "{clear} is in the access log in clear");
    }
    let bad = app.get("/api/v1/audit/events?subject=1%25", &admin).await;
    assert_eq!((bad.status, bad.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("subject")), "{:?}", bad.body);

    // A value altered at rest is refused with an opaque 500, never delivered.
    {
        let ex = &app.running.as_ref().unwrap().state.exchange;
        let b = shutong_exchange::get_binding(ex, &shutong_catalog::ResourceCode::parse("101/000001").unwrap()).await.unwrap().unwrap();
        let (k, v) = rows.iter().find(|(_, v)| v[0].as_deref().is_some()).unwrap().clone();
        let mut bad = v[1].clone().unwrap();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        sqlx::query(&format!("UPDATE {} SET c1 = $1 WHERE k = $2", b.table_name.unwrap()))
            .bind(bad)
            .bind(&k)
            .execute(ex.pool.pool())
            .await
            .unwrap();
        let id_number = shutong_exchange::sealed::open(ex.keys().as_deref(), "101/000001", "公民身份号码", v[0].as_deref().unwrap())
            .unwrap()
            .into_owned();
        let r = app.get(&format!("{POPULATION}/records/{id_number}"), &editor).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")),
            "{:?}",
            r.body
        );
        // Restore it (the rekey below must be able to read every value).
        sqlx::query(&format!(
            "UPDATE {} SET c1 = $1 WHERE k = $2",
            shutong_exchange::get_binding(ex, &shutong_catalog::ResourceCode::parse("101/000001").unwrap())
                .await
                .unwrap()
                .unwrap()
                .table_name
                .unwrap()
        ))
        .bind(v[1].clone())
        .bind(&k)
        .execute(ex.pool.pool())
        .await
        .unwrap();
    }

    // Rotation: a new active key, taken up by the running server from the key file (no restart); new
    // values use it, old ones still read.
    let node = app.get("/api/v1/node", &editor).await;
    assert_eq!((node.body["data_key_active"].as_i64(), node.body["data_keys"].clone()), (Some(1), json!([1])), "{:?}", node.body);
    // With the trail failing, no key changes: each key command writes its event in a transaction that
    // commits only once the key file is saved (`atomicity` lists these three actions as covered here).
    let active_key = |app: &TestApp| {
        let (code, out, err) = shutong_cli(app, &["keys", "status"]);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()["active"].as_i64()
    };
    common::fail_audit_inserts(app.db(), true).await;
    let (code, _, err) = shutong_cli(&app, &["keys", "rotate"]);
    common::fail_audit_inserts(app.db(), false).await;
    assert_ne!(code, 0, "a rotation without its event: {err}");
    assert_eq!(active_key(&app), Some(1), "the key ring is unchanged");
    let (code, out, err) = shutong_cli(&app, &["keys", "rotate"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut node = Value::Null;
    for _ in 0..100 {
        node = app.get("/api/v1/node", &editor).await.body;
        if node["data_key_active"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!((node["data_key_active"].as_i64(), node["data_keys"].clone()), (Some(2), json!([1, 2])), "{node}");
    let more: Vec<[String; 6]> = (100..105).map(|i| synth::person(i, 4242)).collect();
    let r = upload(&app, &editor, POPULATION, "mode=incremental&batch_id=at-rest-2", "text/csv", population_csv(&more)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let (code, out, err) = shutong_cli(&app, &["keys", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["active"], 2, "{status}");
    let population = status["datasets"].as_array().unwrap().iter().find(|d| d["resource_code"] == "101/000001").unwrap().clone();
    let (k1, k2) = (population["values_by_key"]["1"].as_i64().unwrap(), population["values_by_key"]["2"].as_i64().unwrap());
    assert!(k1 > 0 && k2 == 15, "the five new rows' three sensitive values under key 2: {population}");
    // Every row counted once: three sensitive values each.
    assert_eq!((k1 + k2, population["rows"].as_i64().unwrap()), (3 * (rows.len() as i64 + 5), rows.len() as i64 + 5));
    // Key 1 cannot be retired while values need it.
    let (code, _, err) = shutong_cli(&app, &["keys", "retire", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rekey"), "{err}");
    // A rekey pass begins with its event, in the transaction that claims the dataset: with the trail
    // failing, nothing is rewritten where the pool shares the platform's database (PostgreSQL); where the
    // pool is a database of its own (SQLite) the event waits in the pool's outbox and the pass goes on.
    let stored = stored_rows(&app, "101/000001").await;
    common::fail_audit_inserts(app.db(), true).await;
    let (code, out, err) = shutong_cli(&app, &["keys", "rekey"]);
    common::fail_audit_inserts(app.db(), false).await;
    let mut passes = 0;
    match backend {
        Backend::Postgres => {
            assert_ne!(code, 0, "a rekey without its event: {out}{err}");
            assert_eq!(stored_rows(&app, "101/000001").await, stored, "no value rewritten");
        }
        Backend::Sqlite => {
            assert_eq!(code, 0, "{out}{err}");
            passes += serde_json::from_str::<Vec<Value>>(&out).unwrap().len();
        }
    }
    let (code, out, err) = shutong_cli(&app, &["keys", "rekey"]);
    assert_eq!(code, 0, "{out}{err}");
    passes += serde_json::from_str::<Vec<Value>>(&out).unwrap().len();
    common::fail_audit_inserts(app.db(), true).await;
    let (code, _, err) = shutong_cli(&app, &["keys", "retire", "1"]);
    common::fail_audit_inserts(app.db(), false).await;
    assert_ne!(code, 0, "a retirement without its event: {err}");
    let (code, out, err) = shutong_cli(&app, &["keys", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["keys"], json!([1, 2]), "key 1 is still in the ring");
    let (code, out, err) = shutong_cli(&app, &["keys", "retire", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    for _ in 0..100 {
        node = app.get("/api/v1/node", &editor).await.body;
        if node["data_keys"] == json!([2]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(node["data_keys"], json!([2]), "the retired key is dropped by the running server: {node}");
    app.restart_with(|_| {}).await;
    let editor = app.login("ga.editor", DEMO).await;
    for p in [&people[3], &more[2]] {
        let r = app.get(&format!("{POPULATION}/records/{}", p[0]), &editor).await;
        assert_eq!(r.body["姓名"].as_str(), Some(p[1].as_str()), "{:?}", r.body);
    }
    let after = stored_rows(&app, "101/000001").await;
    assert!(after.iter().all(|(_, v)| v[1].as_deref().is_none_or(|s| s.starts_with("\u{1}2:"))), "everything under key 2");
    // The rekey is audited.
    let admin = app.login("admin", common::ADMIN_PASSWORD).await;
    let ev = app.get("/api/v1/audit/events?action=data.rekey&limit=100", &admin).await;
    assert_eq!(ev.body["events"].as_array().unwrap().len(), passes, "one event per dataset's pass: {:?}", ev.body);
    // So are the rotation and the retirement (once: the refused retirement wrote nothing).
    for (action, key) in [("keys.rotate", "2"), ("keys.retire", "1")] {
        let ev = app.get(&format!("/api/v1/audit/events?action={action}"), &admin).await;
        let events = ev.body["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{action}: {:?}", ev.body);
        assert_eq!((events[0]["target_kind"].as_str(), events[0]["target_id"].as_str()), (Some("data_key"), Some(key)), "{:?}", events[0]);
        assert!(events[0]["actor"].as_str().unwrap().starts_with("cli:"), "{:?}", events[0]);
    }
    app.stop().await;
}

on_both_backends!(sensitive_items_are_encrypted_at_rest);
