//! The statistics endpoints the portal's charts and homes read (#20): the on-time record month by month,
//! the trail counted per day and action with the resources read most, datasets' freshness against their
//! update cycle, accesses that delivered sensitive items in clear, and verifications on record.

use crate::common::{Backend, TestApp, spawn_demo_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shutong_exchange::synth;

const CODE: &str = "101/000001";
const DEMO: &str = "Demo-Pass-2026";

/// Waits (bounded) until the access log has written what `ok` looks for in the trail.
async fn trail_until(app: &TestApp, token: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut body = Value::Null;
    for _ in 0..50 {
        body = app.get(path, token).await.body;
        if ok(&body) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    body
}

async fn figures_come_from_the_trail_and_the_data_plane(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let admin = app.admin_token().await;
    let today = app.clock().today();

    // The on-time record: twelve months ending with this one, by due month.
    let stats = app.get("/api/v1/requests/stats", &admin).await;
    assert_eq!(stats.status, StatusCode::OK, "{:?}", stats.body);
    let months = stats.body["months"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    assert_eq!(months[11]["month"], today.format("%Y-%m").to_string());
    let counted: i64 = months.iter().map(|m| m["answered_on_time"].as_i64().unwrap() + m["answered_late"].as_i64().unwrap()).sum();
    let totals = &stats.body["totals"];
    assert!(counted > 0, "the demo's answered and overdue applications are counted: {months:?}");
    assert!(counted <= totals["answered_on_time"].as_i64().unwrap() + totals["answered_late"].as_i64().unwrap());

    // Two consumers read 人口基本信息: one masked, one in clear text.
    let provider = app.login("ga.reviewer", DEMO).await;
    let mut grants = Vec::new();
    for (consumer, clear) in [("dc.rs.editor", false), ("xl.admin", true)] {
        let token = app.login(consumer, DEMO).await;
        let answer = app
            .approved_request(
                &token,
                &provider,
                json!({"resource_code": CODE, "items": ["公民身份号码", "姓名", "户籍地址"], "purpose": "data_verification",
                       "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["online_query"]}),
                json!({"clear_text": clear}),
            )
            .await;
        grants.push((token, answer["grant"]["id"].as_i64().unwrap()));
    }
    let people: Vec<[String; 6]> = (0..3).map(|i| synth::person(i, 2026)).collect();
    for (token, grant) in &grants {
        for p in &people {
            let r = app.get(&format!("/api/v1/data/{CODE}/records/{}?grant_id={grant}", p[0]), token).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    }

    // Accesses in clear: only the clear-text grant's, each naming the items delivered in clear.
    let clear =
        trail_until(&app, &admin, "/api/v1/audit/events?clear_text=true", |b| b["events"].as_array().is_some_and(|e| e.len() >= 3)).await;
    let clear = clear["events"].as_array().unwrap();
    assert_eq!(clear.len(), 3, "{clear:?}");
    for e in clear {
        assert_eq!(e["detail"]["grant"], grants[1].1);
        assert_eq!(e["detail"]["clear"], json!(["公民身份号码", "姓名", "户籍地址"]));
    }
    let all = app.get(&format!("/api/v1/audit/events?action=data.lookup&target_id={CODE}"), &admin).await.body;
    assert_eq!(all["events"].as_array().unwrap().len(), 6, "the masked reads are not counted as clear: {all}");

    // The trail per day and action, and the resources read most.
    let f = app.get("/api/v1/audit/figures?days=7", &admin).await;
    assert_eq!(f.status, StatusCode::OK, "{:?}", f.body);
    assert_eq!(f.body["last_day"], today.to_string());
    assert_eq!(f.body["first_day"], (today - chrono::Days::new(6)).to_string());
    let lookups: i64 =
        f.body["days"].as_array().unwrap().iter().filter(|d| d["action"] == "data.lookup").map(|d| d["events"].as_i64().unwrap()).sum();
    assert_eq!(lookups, 6);
    assert!(f.body["days"].as_array().unwrap().iter().any(|d| d["action"] == "data.lookup" && d["action_zh"] == "联机查询"));
    assert_eq!(f.body["top_resources"][0], json!({"resource_code": CODE, "resource_name": "人口基本信息", "accesses": 6}));
    // A department's staff count their own department's reads only.
    let consumer = app.get("/api/v1/audit/figures", &grants[0].0).await;
    assert_eq!(consumer.status, StatusCode::OK, "{:?}", consumer.body);
    assert_eq!(consumer.body["top_resources"][0]["accesses"], 3);
    let bad = app.get("/api/v1/audit/figures?days=0", &admin).await;
    assert_eq!((bad.status, bad.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days")));

    // Freshness: the provider follows its datasets, the authority and auditors every one; loaded today on a
    // daily cycle it is fresh until tomorrow, overdue the day after.
    let editor = app.login("ga.editor", DEMO).await;
    let mine = app.get("/api/v1/data/freshness", &editor).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    let list = mine.body["datasets"].as_array().unwrap();
    assert_eq!(list.iter().map(|d| d["resource_code"].as_str().unwrap()).collect::<Vec<_>>(), [CODE]);
    assert_eq!((list[0]["freshness"].as_str(), list[0]["update_cycle"].as_str()), (Some("fresh"), Some("daily")));
    let due = list[0]["due_on"].as_str().unwrap().to_string();
    let auditor = app.login("auditor", DEMO).await;
    // The demo binds five resources: four pooled datasets (人口, 法人, 社会保险参保信息 for 一数一源, and the theme
    // database 社会保障主题库) and 东川市人社局's subsidy files.
    assert_eq!(app.get("/api/v1/data/freshness", &auditor).await.body["datasets"].as_array().unwrap().len(), 5);
    assert_eq!(app.get("/api/v1/data/freshness", &grants[1].0).await.body["datasets"], json!([]), "a consumer follows none");
    let due = chrono::NaiveDate::parse_from_str(&due, "%Y-%m-%d").unwrap();
    app.clock().set_date(due + chrono::Days::new(1));
    let later = app.get("/api/v1/data/freshness", &editor).await;
    assert_eq!(later.body["datasets"][0]["freshness"], "overdue", "{:?}", later.body);

    // A verification is on the trail, with what it found.
    let v = app.call_ok(reqwest::Method::POST, "/api/v1/audit/verify", Some(&auditor), None).await;
    assert_eq!(v.body["ok"], true);
    let rec = app.get("/api/v1/audit/events?action=audit.verify", &admin).await.body;
    let rec = &rec["events"][0];
    assert_eq!((rec["actor"].as_str(), rec["detail"]["ok"].as_bool()), (Some("auditor"), Some(true)), "{rec}");
    assert_eq!(rec["detail"]["through"], v.body["through"]);
    // A department's staff do not verify the trail, and nothing is recorded for them.
    let refused = app.call(reqwest::Method::POST, "/api/v1/audit/verify", Some(&editor), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/audit/events?action=audit.verify", &admin).await.body["events"].as_array().unwrap().len(), 1);
}

on_both_backends!(figures_come_from_the_trail_and_the_data_plane);
