//! The tamper-evident audit trail (C5, issue #7), on SQLite and PostgreSQL: events are sealed into an SM3
//! chain with SM2-signed checkpoints; `shutong audit verify` names the first place where a stored event
//! was changed, deleted or reordered; an export verifies with OpenSSL; archiving removes only sealed,
//! verified, old segments; only auditors and platform administrators read the trail.

use crate::common;

use crate::common::{Backend, TestApp, spawn_app_with, spawn_demo_app_with};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use std::process::Command;

on_both_backends!(
    tampering_is_detected_and_named,
    export_verifies_with_openssl,
    archive_keeps_the_chain_verifiable,
    the_server_archives_past_retention_by_itself,
    auditors_only,
    the_access_log_is_chained_as_written,
    every_recorded_action_is_named
);

/// Every action the trail holds after the demo's seeding (identity, catalog, sharing in every state, the
/// pooled datasets, a data access) is one of `shutong_audit::Action`'s, so that the portal and reports can
/// name it; and the portal's audit page shows the Chinese names.
async fn every_recorded_action_is_named(backend: Backend) {
    let app = crate::common::spawn_demo_app(backend).await;
    let admin = app.admin_token().await;
    let r = app.get("/api/v1/data/101/000001/records/110101199003077777", &admin).await;
    assert!(r.status.is_client_error(), "an access attempt (refused or not): {}", r.status);
    let actions: Vec<String> = sqlx::query("SELECT DISTINCT action FROM audit_events ORDER BY action")
        .fetch_all(app.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    assert!(actions.len() >= 15, "the demo records many kinds of action: {actions:?}");
    let unknown: Vec<&String> = actions.iter().filter(|a| shutong_audit::Action::parse(a).is_none()).collect();
    assert!(unknown.is_empty(), "actions the list does not name: {unknown:?}");
    let (client, _) = crate::common::portal_login(&app, "auditor", shutong::demo::DEMO_PASSWORD).await;
    let page = client.get(format!("{}/audit", app.base)).send().await.unwrap().text().await.unwrap();
    let latest: String = sqlx::query("SELECT action FROM audit_events WHERE action <> 'auth.login' ORDER BY seq DESC LIMIT 1")
        .fetch_one(app.db().pool())
        .await
        .unwrap()
        .get(0);
    let label = shutong_audit::Action::parse(&latest).unwrap().label_zh();
    assert!(page.contains(label), "the audit page names the actions: {latest} as {label}");
    app.stop().await;
}

fn fast_sealing(c: &mut shutong_config::Config) {
    c.audit.seal_interval_ms = 50;
    c.audit.checkpoint_every = 4;
    c.audit.checkpoint_interval_seconds = 1;
}

fn shutong(app_db: &common::TestDb, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shutong"));
    cmd.arg("--database-url").arg(&app_db.url).arg("--data-dir").arg(app_db.data_dir()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run shutong");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Some activity (each call writes audit events), then waits until the sealer has chained all of it.
async fn activity_sealed(app: &TestApp, n: u32) -> Value {
    let admin = app.admin_token().await;
    for i in 0..n {
        app.create_department(&admin, &format!("审计测试部门{i}"), 100 + i, "320000").await;
    }
    for _ in 0..200 {
        let chain = app.get("/api/v1/audit/chain", &admin).await;
        assert_eq!(chain.status, StatusCode::OK, "{:?}", chain.body);
        if chain.body["unsealed"] == 0 && chain.body["last_checkpoint"]["chain_seq"] == chain.body["head"] {
            return chain.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the sealer did not seal and sign the trail");
}

/// The archives listed once one of them reaches `head` (waiting up to 10 s).
async fn archives_through(app: &TestApp, admin: &str, head: i64) -> Vec<Value> {
    for _ in 0..100 {
        let r = app.get("/api/v1/audit/archives", admin).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let list = r.body.as_array().unwrap();
        if list.iter().any(|a| a["to"].as_i64().unwrap() >= head) {
            return list.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no archive through {head} within 10 s");
}

async fn stop_server(app: &mut TestApp) {
    if let Some(r) = app.running.take() {
        r.stop().await;
    }
}

async fn conn(app: &TestApp) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap()
}

async fn exec(app: &TestApp, sql: &str) {
    let mut c = conn(app).await;
    sqlx::query(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn text_at(app: &TestApp, column: &str, chain_seq: i64) -> String {
    let mut c = conn(app).await;
    sqlx::query(&format!("SELECT {column} FROM audit_events WHERE chain_seq = {chain_seq}"))
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get::<String, _>(0)
}

/// Keeps a copy of the events at these positions, to put back after tampering.
async fn snapshot(app: &TestApp, positions: &[i64]) {
    let list = positions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    exec(app, "DROP TABLE IF EXISTS saved_events").await;
    exec(app, &format!("CREATE TABLE saved_events AS SELECT * FROM audit_events WHERE chain_seq IN ({list})")).await;
}

async fn restore(app: &TestApp, positions: &[i64]) {
    let list = positions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    exec(app, &format!("DELETE FROM audit_events WHERE chain_seq IN ({list}) OR seq IN (SELECT seq FROM saved_events) OR chain_seq < 0"))
        .await;
    exec(app, "INSERT INTO audit_events SELECT * FROM saved_events").await;
}

/// One byte changed: the lowest bit of the first ASCII byte, or (all Chinese) the last character's code point.
fn flip_first_byte(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    match b.iter().position(|c| c.is_ascii()) {
        Some(i) => {
            b[i] ^= 0x01;
            String::from_utf8(b).unwrap()
        }
        None => {
            let mut chars: Vec<char> = s.chars().collect();
            let last = chars.pop().expect("a non-empty value");
            chars.push(char::from_u32(last as u32 + 1).unwrap());
            chars.into_iter().collect()
        }
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `audit verify` fails (exit 1) and names `position`.
fn assert_fails_at(app: &TestApp, position: i64, what: &str) {
    let (code, out, err) = shutong(&app.db, &["audit", "verify"], &[]);
    assert_eq!(code, 1, "{what}: verification must fail\n{out}{err}");
    assert!(out.contains(&format!("FAILED at chain position {position}")), "{what}: must name position {position}: {out}{err}");
}

fn assert_verifies(app: &TestApp) -> String {
    let (code, out, err) = shutong(&app.db, &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: positions 1.."), "{out}");
    out
}

async fn tampering_is_detected_and_named(backend: Backend) {
    let mut app = spawn_app_with(backend, fast_sealing).await;
    let chain = activity_sealed(&app, 5).await;
    let head = chain["head"].as_i64().unwrap();
    assert!(head >= 8, "{chain}");
    // The API's verification agrees while the server runs.
    let admin = app.admin_token().await;
    let v = app.post("/api/v1/audit/verify", &admin, serde_json::json!({})).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.body["ok"], true, "{}", v.body);
    assert!(v.body["through"].as_i64().unwrap() >= head, "{}", v.body);
    assert!(v.body["checkpoints"].as_u64().unwrap() >= 2, "{}", v.body);
    stop_server(&mut app).await;
    let out = assert_verifies(&app);
    assert!(out.contains("signed through"), "{out}");

    // One byte flipped in each stored field of an event written by a request (all its fields set).
    let k: i64 = {
        let mut c = conn(&app).await;
        sqlx::query("SELECT MIN(chain_seq) FROM audit_events WHERE request_id IS NOT NULL AND ip IS NOT NULL AND department_id IS NOT NULL")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0)
    };
    for column in ["actor", "action", "target_kind", "target_id", "detail", "chain_hash", "request_id"] {
        snapshot(&app, &[k]).await;
        let original = text_at(&app, column, k).await;
        exec(&app, &format!("UPDATE audit_events SET {column} = {} WHERE chain_seq = {k}", sql_str(&flip_first_byte(&original)))).await;
        assert_fails_at(&app, k, column);
        restore(&app, &[k]).await;
    }
    for (column, change) in
        [("at", "at + 1"), ("seq", "seq + 100000"), ("department_id", "COALESCE(department_id, 0) + 1"), ("ip", "'10.0.0.1'")]
    {
        snapshot(&app, &[k]).await;
        exec(&app, &format!("UPDATE audit_events SET {column} = {change} WHERE chain_seq = {k}")).await;
        assert_fails_at(&app, k, column);
        restore(&app, &[k]).await;
    }
    assert_verifies(&app);

    // An event deleted: the gap is named.
    snapshot(&app, &[4]).await;
    exec(&app, "DELETE FROM audit_events WHERE chain_seq = 4").await;
    assert_fails_at(&app, 4, "deleted event");
    let (_, out, _) = shutong(&app.db, &["audit", "verify"], &[]);
    assert!(out.contains("missing"), "{out}");
    restore(&app, &[4]).await;
    assert_verifies(&app);

    // Two events reordered (their chain positions swapped, hashes and all).
    snapshot(&app, &[5, 6]).await;
    exec(&app, "UPDATE audit_events SET chain_seq = -6 WHERE chain_seq = 6").await;
    exec(&app, "UPDATE audit_events SET chain_seq = 6 WHERE chain_seq = 5").await;
    exec(&app, "UPDATE audit_events SET chain_seq = 5 WHERE chain_seq = -6").await;
    assert_fails_at(&app, 5, "reordered events");
    restore(&app, &[5, 6]).await;
    assert_verifies(&app);

    // A forged event placed past the chain's end.
    exec(
        &app,
        "INSERT INTO audit_events (at, actor, action, target_kind, target_id, detail, chain_seq, chain_hash) \
         VALUES (1, 'x', 'forged', 'x', 'x', '{}', 1000000, '00')",
    )
    .await;
    assert_fails_at(&app, 1_000_000, "forged event past the head");
    exec(&app, "DELETE FROM audit_events WHERE chain_seq = 1000000").await;
    assert_verifies(&app);

    // A checkpoint's signature forged (one byte changed), and events cut from the end.
    let mut c = conn(&app).await;
    let (cp, sig): (i64, String) = {
        let r =
            sqlx::query("SELECT chain_seq, signature FROM audit_checkpoints ORDER BY chain_seq LIMIT 1").fetch_one(&mut c).await.unwrap();
        (r.get(0), r.get(1))
    };
    let mut forged = hex::decode(&sig).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    exec(&app, &format!("UPDATE audit_checkpoints SET signature = '{}' WHERE chain_seq = {cp}", hex::encode(&forged))).await;
    assert_fails_at(&app, cp, "forged checkpoint");
    exec(&app, &format!("UPDATE audit_checkpoints SET signature = '{sig}' WHERE chain_seq = {cp}")).await;
    let last: i64 = sqlx::query("SELECT MAX(chain_seq) FROM audit_events").fetch_one(&mut c).await.unwrap().get(0);
    exec(&app, &format!("DELETE FROM audit_events WHERE chain_seq = {last}")).await;
    let (code, out, _) = shutong(&app.db, &["audit", "verify"], &[]);
    assert_eq!(code, 1, "a truncated chain must fail: {out}");
    assert!(out.contains("removed"), "{out}");
}

async fn export_verifies_with_openssl(backend: Backend) {
    let mut app = spawn_app_with(backend, fast_sealing).await;
    let chain = activity_sealed(&app, 3).await;
    let head = chain["head"].as_i64().unwrap();
    stop_server(&mut app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.ndjson");
    let (code, _, err) = shutong(&app.db, &["audit", "export", "--out", file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("exported positions 1..{head}")), "{err}");
    let (code, out, err) = shutong(&app.db, &["audit", "verify", "--file", file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");

    // The format, from docs/AUDIT-FORMAT.md alone: h_i = SM3(h_{i-1} || canonical_i), h_0 = 32 zero bytes;
    // the checkpoint message is the magic, i64 BE position, h, i64 BE time; SM2 with the default ID.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    assert_eq!(header["format"], "shutong-audit-export/1");
    assert_eq!(header["prev_hash"], "0".repeat(64));
    std::fs::write(dir.path().join("pub.pem"), header["public_key_pem"].as_str().unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut prev = vec![0u8; 32];
    let (mut events, mut checkpoints) = (0, 0);
    let have_openssl = Command::new("openssl").arg("version").output().is_ok();
    if !have_openssl {
        eprintln!("openssl not found: the export is checked with the built-in SM3/SM2 only");
    }
    for line in lines {
        match line["type"].as_str().unwrap() {
            "event" => {
                let mut data = prev.clone();
                data.extend(b64.decode(line["canonical"].as_str().unwrap()).unwrap());
                let expected = line["hash"].as_str().unwrap();
                if have_openssl {
                    let f = dir.path().join("link.bin");
                    std::fs::write(&f, &data).unwrap();
                    let out = Command::new("openssl").args(["dgst", "-sm3", "-r"]).arg(&f).output().unwrap();
                    let digest = String::from_utf8_lossy(&out.stdout);
                    assert!(digest.starts_with(expected), "openssl SM3 {digest} vs {expected} at {}", line["chain_seq"]);
                }
                assert_eq!(hex::encode(shutong_crypto::sm3(&data)), expected);
                prev = hex::decode(expected).unwrap();
                events += 1;
            }
            "checkpoint" => {
                let mut message = b"SHUTONG-AUDIT-CHECKPOINT-1".to_vec();
                message.extend(line["chain_seq"].as_i64().unwrap().to_be_bytes());
                message.extend(hex::decode(line["hash"].as_str().unwrap()).unwrap());
                message.extend(line["at"].as_i64().unwrap().to_be_bytes());
                assert_eq!(b64.encode(&message), line["message"].as_str().unwrap());
                assert_eq!(line["hash"].as_str().unwrap(), hex::encode(&prev), "a checkpoint signs the hash of the event before it");
                let sig = b64.decode(line["signature"].as_str().unwrap()).unwrap();
                if have_openssl {
                    std::fs::write(dir.path().join("msg.bin"), &message).unwrap();
                    std::fs::write(dir.path().join("sig.der"), &sig).unwrap();
                    let out = Command::new("openssl")
                        .current_dir(dir.path())
                        .args(["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg.bin", "-sigfile", "sig.der"])
                        .args(["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "openssl rejects checkpoint {}: {}",
                        line["chain_seq"],
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                checkpoints += 1;
            }
            other => panic!("unknown line type {other}"),
        }
    }
    assert_eq!(events, head);
    assert!(checkpoints >= 1);

    // The file tampered: one byte of one event's encoding. The file's verification names the place.
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if i == 2 {
            let mut bytes = b64.decode(v["canonical"].as_str().unwrap()).unwrap();
            let n = bytes.len() - 3;
            bytes[n] ^= 0x20;
            v["canonical"] = Value::String(b64.encode(bytes));
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, out).unwrap();
    let (code, out, _) = shutong(&app.db, &["audit", "verify", "--file", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED at chain position 2"), "{out}");
    // …and a file verified against a key that is not the node's fails at its first checkpoint.
    let other = shutong_crypto::NodeKey::generate().public_key_hex();
    let (code, out, _) = shutong(&app.db, &["audit", "verify", "--file", file.to_str().unwrap(), "--public-key", &other], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a trusted node key"), "{out}");
}

async fn archive_keeps_the_chain_verifiable(backend: Backend) {
    let mut app = spawn_app_with(backend, fast_sealing).await;
    let chain = activity_sealed(&app, 4).await;
    let head = chain["head"].as_i64().unwrap();
    stop_server(&mut app).await;
    // An event committed but not sealed (as if written the instant before a crash): never archived.
    exec(
        &app,
        "INSERT INTO audit_events (at, actor, action, target_kind, target_id, detail) VALUES (1, 'system', 'test.unsealed', 'test', 'x', '{}')",
    )
    .await;
    // The default retention (184 days) keeps everything this young.
    let (code, _, err) = shutong(&app.db, &["audit", "archive"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("nothing to archive"), "{err}");
    let (code, _, err) = shutong(&app.db, &["audit", "archive", "--before", "2099-01-01"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("retention"), "{err}");

    // The archive's own event is written in the transaction that removes the archived rows: with the trail
    // failing, nothing is removed or recorded, and no archive file is left (`atomicity` lists
    // `audit.archive` as covered here).
    let state = |app: &TestApp| {
        let url = app.db.url.clone();
        async move {
            sqlx::any::install_default_drivers();
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let mut out = Vec::new();
            for q in [
                "SELECT COUNT(*) FROM audit_events",
                "SELECT archived_through FROM audit_chain_head WHERE id = 1",
                "SELECT COUNT(*) FROM audit_archives",
            ] {
                out.push(sqlx::query(q).fetch_one(&mut c).await.unwrap().get::<i64, _>(0));
            }
            out
        }
    };
    let files = |app: &TestApp| std::fs::read_dir(app.db.data_dir().join("audit-archive")).map(|d| d.count()).unwrap_or(0);
    let (before, files_before) = (state(&app).await, files(&app));
    for s in common::audit_failure_sql(backend, true) {
        exec(&app, s).await;
    }
    let (code, out, err) = shutong(&app.db, &["audit", "archive"], &[("SHUTONG_AUDIT__RETENTION_DAYS", "0")]);
    for s in common::audit_failure_sql(backend, false) {
        exec(&app, s).await;
    }
    assert_ne!(code, 0, "an archive without its event: {out}{err}");
    assert_eq!(state(&app).await, before, "nothing archived");
    assert_eq!(files(&app), files_before, "no archive file left behind");

    let (code, out, err) = shutong(&app.db, &["audit", "archive"], &[("SHUTONG_AUDIT__RETENTION_DAYS", "0")]);
    assert_eq!(code, 0, "{out}{err}");
    let archived: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(archived["from"], 1);
    let to = archived["to"].as_i64().unwrap();
    assert_eq!(to, head, "archived through the last checkpoint");
    let file = archived["file"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&file).starts_with(app.db.data_dir().join("audit-archive")));

    let mut c = conn(&app).await;
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE chain_seq <= $1").bind(to).fetch_one(&mut c).await.unwrap().get(0);
    assert_eq!(left, 0, "archived events are removed from the database");
    let unsealed: i64 =
        sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = 'test.unsealed'").fetch_one(&mut c).await.unwrap().get(0);
    assert_eq!(unsealed, 1, "an unsealed event is never removed");

    // The archive verifies on its own; the database verifies from where the archive ends, after sealing
    // what came since (the archive's own audit event among it).
    let (code, out, err) = shutong(&app.db, &["audit", "verify", "--file", &file], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = shutong(&app.db, &["audit", "seal", "--checkpoint"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = shutong(&app.db, &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("ok: positions {}..", to + 1)), "{out}");
    let (code, out, _) = shutong(&app.db, &["audit", "list", "--action", "audit.archive"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("\"target_id\":\"1-{to}\"")), "{out}");
    // An export cannot start inside the archived part.
    let (code, _, err) = shutong(&app.db, &["audit", "export", "--from", "1"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("archived"), "{err}");
}

/// With `audit.archive_interval_seconds` set, the server archives what is past retention by itself, as
/// `shutong audit archive` would, while it keeps sealing what comes after.
async fn the_server_archives_past_retention_by_itself(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        fast_sealing(c);
        c.audit.retention_days = 0;
        c.audit.archive_interval_seconds = 1;
    })
    .await;
    let chain = activity_sealed(&app, 4).await;
    let head = chain["head"].as_i64().unwrap();
    let admin = app.admin_token().await;
    archives_through(&app, &admin, head).await;
    // More activity after the first archive: the schedule archives it in another one, from where the
    // first ended.
    app.create_department(&admin, "审计测试第二批", 200, "320000").await;
    let mut head = head;
    for _ in 0..200 {
        let chain = app.get("/api/v1/audit/chain", &admin).await.body;
        if chain["unsealed"] == 0 && chain["last_checkpoint"]["chain_seq"] == chain["head"] && chain["head"].as_i64() > Some(head) {
            head = chain["head"].as_i64().unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut archives = archives_through(&app, &admin, head).await;
    assert!(archives.len() >= 2, "{archives:?}");
    // However many times the schedule ran meanwhile, its archives together cover the chain from its start,
    // without a gap or an overlap, and each verifies on its own.
    archives.sort_by_key(|a| a["from"].as_i64());
    let mut next = 1;
    for a in &archives {
        assert_eq!((a["from"].as_i64(), a["archived_by"].as_str()), (Some(next), Some("system:retention")), "{archives:?}");
        next = a["to"].as_i64().unwrap() + 1;
        let file = a["file"].as_str().unwrap().to_string();
        assert!(std::path::Path::new(&file).starts_with(app.db.data_dir().join("audit-archive")), "{file}");
        let (code, out, err) = shutong(&app.db, &["audit", "verify", "--file", &file], &[]);
        assert_eq!(code, 0, "{file}: {out}{err}");
    }
    assert!(next > head, "{archives:?}");
    let (code, out, _) = shutong(&app.db, &["audit", "list", "--action", "audit.archive"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("system:retention"), "the archive is the retention schedule's: {out}");
    // What remains in the database still verifies, from where the archives end.
    let v = app.post("/api/v1/audit/verify", &admin, serde_json::json!({})).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}

async fn auditors_only(backend: Backend) {
    let app = spawn_app_with(backend, fast_sealing).await;
    let admin = app.admin_token().await;
    let dept = app.create_department(&admin, "审计厅", 7, "320000").await;
    app.create_user(&admin, "aud", dept, &["auditor"]).await;
    app.create_user(&admin, "editor", dept, &["catalog_editor"]).await;
    activity_sealed(&app, 2).await;
    let auditor = app.login("aud", common::PASSWORD).await;
    let editor = app.login("editor", common::PASSWORD).await;
    for path in ["/api/v1/audit/chain", "/api/v1/audit/export", "/api/v1/audit/archives", "/api/v1/audit/events"] {
        assert_eq!(app.get(path, &editor).await.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(app.get(path, &auditor).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(app.post("/api/v1/audit/verify", &editor, serde_json::json!({})).await.status, StatusCode::FORBIDDEN);
    let v = app.post("/api/v1/audit/verify", &auditor, serde_json::json!({})).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);

    // The auditor's export verifies against the key the node publishes.
    let node = app.get("/api/v1/node", &auditor).await.body;
    let key = node["public_key"].as_str().unwrap().to_string();
    assert_eq!(node["sm2_id"], "1234567812345678");
    let res = app.http.get(format!("{}/api/v1/audit/export", app.base)).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.bytes().await.unwrap();
    let report = shutong_audit::verify_file(std::io::Cursor::new(body.to_vec()), vec![key]).unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.events >= 3);
    let bad = app.get("/api/v1/audit/export?from=0", &auditor).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "from", "{}", bad.body);

    // Events carry their chain position; the trail filters by target.
    let events = app.get("/api/v1/audit/events?target_kind=department&limit=5", &auditor).await.body;
    let list = events["events"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|e| e["target_kind"] == "department"));
    assert!(list.iter().any(|e| e["chain_seq"].is_i64()), "{events}");

    // The key file is the node's, owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(app.db.data_dir().join("keys/node-sm2.pem")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

/// The data plane's access log chains its events as it writes them: with the sealer idle, data accesses are
/// in the chain at once, after the state changes' events that still wait for the sealer, and the chain
/// verifies; the sealer then chains those after them.
async fn the_access_log_is_chained_as_written(backend: Backend) {
    const DEMO: &str = shutong::demo::DEMO_PASSWORD;
    // The sealer runs once at start, then not for an hour: the test seals by hand.
    let app = spawn_demo_app_with(backend, |c| c.audit.seal_interval_ms = 3_600_000).await;
    let admin = app.admin_token().await;
    let (code, out, err) = shutong(&app.db, &["audit", "seal"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let chain = app.get("/api/v1/audit/chain", &admin).await.body;
    assert_eq!(chain["unsealed"], 0, "{chain}");
    let head_at_start = chain["head"].as_i64().unwrap();

    // A state change (a department): its event waits for the sealer.
    app.create_department(&admin, "访问日志测试部门", 190, "320000").await;
    // Accesses: a consumer granted the demo's pooled population dataset looks people up.
    let consumer = app.login("dc.rs.editor", DEMO).await;
    let provider = app.login("ga.reviewer", DEMO).await;
    app.approved_request(
        &consumer,
        &provider,
        serde_json::json!({"resource_code": "101/000001", "items": ["公民身份号码", "户籍地址"], "purpose": "data_verification",
               "basis": "《社会保险法》第五十八条: 核验参保人户籍", "period_to": "2027-06-30", "access_methods": ["online_query"]}),
        serde_json::json!({}),
    )
    .await;
    let lookups = 12u64;
    for i in 0..lookups {
        let person = shutong_exchange::synth::person(i, 2026);
        let r = app.get(&format!("/api/v1/data/101/000001/records/{}", person[0]), &consumer).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let mut c = conn(&app).await;
    let mut chained = 0;
    for _ in 0..200 {
        chained = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = 'data.lookup' AND chain_seq IS NOT NULL")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get::<i64, _>(0);
        if chained >= lookups as i64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(chained, lookups as i64, "every lookup is in the chain without the sealer");
    let unchained_lookups: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action LIKE 'data.%' AND chain_seq IS NULL")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    assert_eq!(unchained_lookups, 0);
    let chain = app.get("/api/v1/audit/chain", &admin).await.body;
    assert!(chain["unsealed"].as_i64().unwrap() >= 1, "the department's event waits for the sealer: {chain}");
    assert_eq!(chain["head"].as_i64().unwrap(), head_at_start + lookups as i64, "{chain}");
    // The lookups took the positions right after the start, before the earlier state change.
    let first: (i64, i64) = {
        let r = sqlx::query(&format!("SELECT seq, chain_seq FROM audit_events WHERE chain_seq = {}", head_at_start + 1))
            .fetch_one(&mut c)
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    let dept_seq: i64 =
        sqlx::query("SELECT MAX(seq) FROM audit_events WHERE action = 'department.create'").fetch_one(&mut c).await.unwrap().get(0);
    assert!(first.0 > dept_seq, "chain order is not seq order: position {} holds seq {}, the department's is {dept_seq}", first.1, first.0);
    let out = assert_verifies(&app);
    assert!(out.contains("not sealed yet") || out.contains("unsealed"), "verify reports what waits for the sealer: {out}");

    // The sealer chains the rest after them; everything verifies.
    let (code, out, err) = shutong(&app.db, &["audit", "seal", "--checkpoint"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let chain = app.get("/api/v1/audit/chain", &admin).await.body;
    assert_eq!(chain["unsealed"], 0, "{chain}");
    let dept_pos: Option<i64> =
        sqlx::query(&format!("SELECT chain_seq FROM audit_events WHERE seq = {dept_seq}")).fetch_one(&mut c).await.unwrap().get(0);
    assert!(dept_pos.unwrap() > head_at_start + lookups as i64);
    assert_verifies(&app);
}
