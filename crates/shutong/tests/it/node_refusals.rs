//! The exchange node refused by the platform (a wrong key, a skewed clock) and rows the platform rejects:
//! what the node's status says, and that the rest flows.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shutong_exchange::synth;
use sqlx::Row;

use crate::common::{Backend, spawn_demo_app};
use crate::node::{department_of, flow, node_account, platform_rows, sqlite, started, until};

const DEMO: &str = shutong::demo::DEMO_PASSWORD;

fn config(key: &Path, db: &Path) -> String {
    format!(
        r#"[platform]
url = "{{base}}"
account = "ga.qzj"
key_file = "{key}"
[node]
name = "ga-qzj-refused"
state_dir = "state"
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
poll_ms = 50
snapshot_chunk_rows = 7
[publication.columns]
sfzh = "公民身份号码"
xm = "姓名"
dz = "居住地址"
djrq = "登记日期"
"#,
        key = key.display(),
        db = db.display()
    )
}

/// A key the platform does not know, then a clock eleven minutes apart from the platform's: each time the
/// publication waits, and its status carries the platform's 401 reason. With the right key and the clocks
/// agreeing, the table flows, and the rows the platform rejects — an invalid 公民身份号码, a name longer than
/// its item, the key missing — are kept in the node's rejects table with the item at fault and the reason,
/// while the other rows arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_show_in_the_status_and_bad_rows_are_kept_aside() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ga = department_of(&app, "ga.admin").await;
    let key = node_account(&app, ga, "ga.qzj", dir.path()).await;
    let editor = app.login("ga.editor", DEMO).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "dataset"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let source_db = dir.path().join("source.db");
    let source = sqlite(&source_db).await;
    sqlx::query("CREATE TABLE liudong (sfzh TEXT PRIMARY KEY, xm TEXT, dz TEXT, djrq TEXT, ver INTEGER NOT NULL)")
        .execute(&source)
        .await
        .unwrap();
    let people: Vec<[String; 6]> = (0..20).map(|i| synth::person(i + 500, 21)).collect();
    let mut wrong_check = people[0][0].clone();
    let check = wrong_check.pop().unwrap();
    wrong_check.push(if check == '0' { '1' } else { '0' });
    let mut rows: Vec<(String, String)> = people[1..].iter().map(|p| (p[0].clone(), p[1].clone())).collect();
    rows.push((wrong_check.clone(), people[0][1].clone()));
    let long_name = "很".repeat(51);
    let long_key = synth::person(900, 21)[0].clone();
    rows.push((long_key.clone(), long_name));
    rows.push((String::new(), "无号".into()));
    for (i, (id, name)) in rows.iter().enumerate() {
        sqlx::query("INSERT INTO liudong (sfzh, xm, dz, djrq, ver) VALUES ($1, $2, '示范路 1 号', '2024-05-01', $3)")
            .bind(id)
            .bind(name)
            .bind(i as i64 + 1)
            .execute(&source)
            .await
            .unwrap();
    }
    let good = people.len() as i64 - 1;

    // A key the platform does not know.
    let stranger_key = dir.path().join("stranger.key");
    shutong_crypto::NodeKey::load_or_create(&stranger_key).unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config(&stranger_key, &source_db).replace("{base}", &app.base)).unwrap();
    let (stop, task) = started(&path);
    until(30, "the platform's 401 reason for the unknown key in the status", || {
        let p = path.clone();
        async move {
            let f = flow(&p, "liudong").await;
            f.error.as_deref().is_some_and(|e| e.contains("401") && e.contains("X-Shutong-Signature does not verify"))
        }
    })
    .await;
    assert_eq!(flow(&path, "liudong").await.state, "offline");
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert_eq!(platform_rows(&app, &editor, "101/000002").await, 0, "nothing loaded");

    // The right key, the platform's clock eleven minutes ahead.
    std::fs::write(&path, config(&key, &source_db).replace("{base}", &app.base)).unwrap();
    app.clock().set_now_ms(shutong_store::now_ms() + 11 * 60_000);
    let (stop, task) = started(&path);
    until(30, "the platform's 401 reason for the skewed clock in the status", || {
        let p = path.clone();
        async move {
            let f = flow(&p, "liudong").await;
            f.error.as_deref().is_some_and(|e| e.contains("401") && e.contains("more than 5 minutes from the platform's clock"))
        }
    })
    .await;

    // The clocks agree: the table flows, the bad rows stay behind.
    app.clock().set_now_ms(shutong_store::now_ms());
    until(60, "the valid rows on the platform", || async { platform_rows(&app, &editor, "101/000002").await == good }).await;
    until(30, "the status back to running, the rejects counted", || {
        let p = path.clone();
        async move {
            let f = flow(&p, "liudong").await;
            f.state == "running" && f.error.is_none() && f.rejects == 3
        }
    })
    .await;
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let state = sqlite(&dir.path().join("state/node.db")).await;
    let kept: Vec<(Option<String>, Option<String>, String)> =
        sqlx::query("SELECT record_key, field, reason FROM rejects WHERE publication = 'liudong' ORDER BY row_number")
            .fetch_all(&state)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    let by_key = |k: &str| kept.iter().find(|r| r.0.as_deref() == Some(k)).cloned();
    let invalid = by_key(&wrong_check).unwrap_or_else(|| panic!("the invalid 公民身份号码 kept aside: {kept:?}"));
    assert_eq!(invalid.1.as_deref(), Some("公民身份号码"), "{invalid:?}");
    let long = by_key(&long_key).unwrap_or_else(|| panic!("the long name kept aside: {kept:?}"));
    assert_eq!(long.1.as_deref(), Some("姓名"), "{long:?}");
    let missing =
        kept.iter().find(|r| r.0.as_deref().is_none_or(str::is_empty)).unwrap_or_else(|| panic!("the row without a key: {kept:?}"));
    assert_eq!(missing.1.as_deref(), Some("公民身份号码"), "{missing:?}");
    for (_, _, reason) in &kept {
        assert!(!reason.is_empty());
    }
    let r = app.get(&format!("/api/v1/data/101/000002/records/{}", people[1][0]), &editor).await;
    assert_eq!(r.status, StatusCode::OK, "a valid row arrived: {:?}", r.body);
}

/// A grant that masks the key item (公民身份号码 of 人口基本信息, masked by default): the change feed keys each
/// record by its pseudonym, so the node keeps the copy by it — one local row per record on the platform,
/// the identity number masked in its column, pseudonyms that reveal nothing of it, and a change to a
/// record landing on its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_key_is_kept_by_its_pseudonym() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let dc = department_of(&app, "dc.rs.editor").await;
    let key = node_account(&app, dc, "dcrs.qzj", dir.path()).await;
    app.approved_request(
        &app.login("dc.rs.editor", DEMO).await,
        &app.login("ga.reviewer", DEMO).await,
        json!({"resource_code": "101/000001", "items": ["公民身份号码", "姓名"], "purpose": "data_verification",
               "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["subscription"]}),
        json!({}),
    )
    .await;
    let editor = app.login("ga.editor", DEMO).await;
    let rows = platform_rows(&app, &editor, "101/000001").await;
    assert!(rows > 0);
    let local_db = dir.path().join("copy.db");
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        format!(
            "[platform]\nurl = \"{}\"\naccount = \"dcrs.qzj\"\nkey_file = \"{}\"\n[node]\nname = \"dcrs-masked\"\nstate_dir = \"state\"\n\
             heartbeat_seconds = 1\n[[subscription]]\nname = \"people\"\nresource = \"101/000001\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\n\
             table = \"people\"\nkey_column = \"rid\"\nwait_ms = 2000\n",
            app.base,
            key.display(),
            local_db.display()
        ),
    )
    .unwrap();
    let (stop, task) = started(&path);
    let local = sqlite(&local_db).await;
    let count = |sql: &'static str| {
        let l = local.clone();
        async move { sqlx::query(sql).fetch_one(&l).await.map(|r| r.get::<i64, _>(0)).unwrap_or(-1) }
    };
    until(60, "the masked copy", || async { count("SELECT COUNT(*) FROM people").await == rows }).await;
    assert_eq!(count("SELECT COUNT(DISTINCT rid) FROM people").await, rows, "one pseudonym per record");
    let sample: Vec<(String, String)> = sqlx::query("SELECT rid, `公民身份号码` FROM people LIMIT 20")
        .fetch_all(&local)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (rid, id) in &sample {
        assert!(rid.starts_with('~') && rid.len() == 33, "a pseudonym: {rid}");
        assert!(id.contains('*'), "the identity number masked as the grant says: {id}");
        assert!(!rid.contains(&id.replace('*', "")), "the pseudonym reveals nothing of the key");
    }

    // The provider renames a person: the copy's row for that record changes, no row is added (the record
    // keeps its pseudonym).
    let named_before = count("SELECT COUNT(*) FROM people WHERE `姓名` LIKE '化%'").await;
    let feed = app.get("/api/v1/data/101/000001/changes?since=0&limit=1", &editor).await;
    let record = feed.body["changes"][0]["record"].clone();
    let values: Vec<String> = synth::POPULATION_ITEMS
        .iter()
        .map(|item| if *item == "姓名" { "化名测试".to_string() } else { record[*item].as_str().unwrap_or_default().to_string() })
        .collect();
    let csv = format!("{}\n{}\n", synth::POPULATION_ITEMS.join(","), values.join(","));
    let r = crate::exchange::upload(
        &app,
        &editor,
        "/api/v1/data/101/000001",
        "mode=incremental&batch_id=rename-1",
        "text/csv",
        csv.into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let last_seq = app.get("/api/v1/data/101/000001", &editor).await.body["binding"]["last_seq"].as_i64().unwrap();
    until(30, "the rename in the copy", || async {
        count("SELECT position FROM shutong_node_positions WHERE subscription = 'people'").await == last_seq
    })
    .await;
    // 姓名 is masked too (its first character kept).
    assert_eq!(count("SELECT COUNT(*) FROM people WHERE `姓名` LIKE '化%'").await, named_before + 1, "the renamed record");
    assert_eq!(count("SELECT COUNT(*) FROM people").await, rows, "no row added");
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
