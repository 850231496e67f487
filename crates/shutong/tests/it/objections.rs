//! 疑义校核 (办法 第十八条; R-Q-1) end to end through the API, on both backends: a consumer objects to a record;
//! a second consumer sees the 校核中 flag in lookup, query, export and change feed; the provider's answer
//! 已更正 is refused until a batch changed the record, then lowers the flag; the filer accepts; an unanswered
//! objection is overdue on the right working day across 国庆; an escalation is ruled on; bad input is refused
//! with the field, item or size at fault.

use crate::common::{Backend, TestApp, spawn_demo_app_with};
use crate::exchange::{DEMO, POPULATION, population_csv, upload};
use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutong_client::types::exchange::{DataFormat, QuerySpec};
use shutong_client::types::sharing::{AccessMethod, ApproveBody, CreateRequestBody, Purpose};
use shutong_exchange::synth;

on_both_backends!(an_objection_flags_the_record_everywhere_until_it_is_answered);

const CODE: &str = "101/000001";
const FLAG: &str = "_校核中";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A consumer's grant on 人口基本信息: the items asked for, approved as asked (masked, every row).
async fn grant(app: &TestApp, consumer: &str, items: &[&str]) -> shutong_client::Client {
    let client = app.client(consumer).await;
    let provider = app.client("ga.reviewer").await;
    let asked = client
        .create_request(&CreateRequestBody {
            resource_code: CODE.into(),
            consumer_department_id: None,
            items: items.iter().map(|i| i.to_string()).collect(),
            purpose: Purpose::DataVerification,
            purpose_detail: None,
            basis: "《社会救助暂行办法》第十一条: 核对申请人户籍".into(),
            period_from: None,
            period_to: Some(date(2027, 6, 30)),
            access_methods: vec![AccessMethod::OnlineQuery, AccessMethod::BulkDownload, AccessMethod::Subscription],
            expected_volume: None,
        })
        .await
        .unwrap()
        .request;
    provider.approve(asked.id, &ApproveBody::default()).await.unwrap();
    client
}

async fn evidence(app: &TestApp, token: &str, id: i64, name: &str, bytes: Vec<u8>) -> crate::common::Resp {
    let res = app
        .http
        .put(format!("{}/api/v1/quality/objections/{id}/evidence?file_name={name}", app.base))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    crate::common::Resp { status, body, headers }
}

async fn an_objection_flags_the_record_everywhere_until_it_is_answered(backend: Backend) {
    let app = spawn_demo_app_with(backend, |c| c.quality.objection_evidence_max_mb = 1).await;
    // Monday 2026-09-28: 国庆 runs 10-01 to 10-07 and Saturday 10-10 is an adjusted working day, so the fifth
    // working day after it is that Saturday (09-29, 09-30, 10-08, 10-09, 10-10).
    app.clock().set_date(date(2026, 9, 28));
    let filer = app.login("dc.rs.editor", DEMO).await;
    let other_token = app.login("mz.reviewer", DEMO).await;
    let provider = app.login("ga.editor", DEMO).await;
    let authority = app.login("sq.reviewer", DEMO).await;
    let stranger = app.login("xl.admin", DEMO).await;
    let _ = grant(&app, "dc.rs.editor", &["公民身份号码", "姓名", "户籍地址"]).await;
    let second = grant(&app, "mz.reviewer", &["公民身份号码", "姓名", "户籍地址"]).await;
    let people: Vec<[String; 6]> = (0..2000).map(|i| synth::person(i, 2026)).collect();
    let target = people[7].clone();
    let untouched = people[8].clone();

    // Bad input: a record the filer may not see, an item outside its grant, a reason not on the list, no
    // grant at all; the provider does not object to its own data.
    let body = |keys: Vec<&str>, items: Vec<&str>, reason: &str| json!({"resource_code": CODE, "keys": keys, "items": items, "reason": reason, "description": "户籍地址与实际居住地不符"});
    let r = app.post("/api/v1/quality/objections", &filer, body(vec!["110101199001011237"], vec!["户籍地址"], "wrong")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.post("/api/v1/quality/objections", &filer, body(vec![&target[0]], vec!["民族"], "wrong")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("民族"), "names the item: {:?}", r.body);
    let r = app.post("/api/v1/quality/objections", &filer, body(vec![&target[0]], vec!["户籍地址"], "no_such")).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{:?}", r.body);
    let r = app.post("/api/v1/quality/objections", &filer, body(vec!["12"], vec![], "wrong")).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("keys[0]")), "{:?}", r.body);
    let r = app.post("/api/v1/quality/objections", &stranger, body(vec![&target[0]], vec![], "wrong")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app.post("/api/v1/quality/objections", &provider, body(vec![&target[0]], vec![], "wrong")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // Filed: due on the fifth working day, across the holidays.
    let before = second.changes(CODE, 0, Some(1)).await.unwrap().last_seq;
    let r = app.post("/api/v1/quality/objections", &filer, body(vec![&target[0]], vec!["户籍地址"], "wrong")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (r.body["state"].as_str(), r.body["due_on"].as_str(), r.body["overdue"].as_bool()),
        (Some("open"), Some("2026-10-10"), Some(false))
    );

    // Evidence: over the limit 413, within it kept with its SM3.
    let r = evidence(&app, &filer, id, "big.png", vec![0u8; 1024 * 1024 + 1]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = evidence(&app, &filer, id, "photo.png", b"\x89PNG evidence".to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["evidence"]["size"], 13);
    let r = evidence(&app, &other_token, id, "photo.png", b"x".to_vec()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another consumer does not see the objection: {:?}", r.body);

    // The second consumer sees the flag in every read, on that record only.
    let found = second.lookup(CODE, &target[0], None).await.unwrap();
    assert_eq!(found.get(FLAG), Some(&json!(["户籍地址"])), "lookup: {found:?}");
    let clean = second.lookup(CODE, &untouched[0], None).await.unwrap();
    assert!(clean.get(FLAG).is_none(), "{clean:?}");
    let mut flagged = 0;
    let mut spec = QuerySpec { limit: Some(1000), ..Default::default() };
    loop {
        let page = second.query(CODE, &spec).await.unwrap();
        flagged += page.records.iter().filter(|r| r.get(FLAG) == Some(&json!(["户籍地址"]))).count();
        match page.next_after {
            Some(a) => spec.after = Some(a),
            None => break,
        }
    }
    assert_eq!(flagged, 1, "query");
    let csv = String::from_utf8(second.export(CODE, DataFormat::Csv).await.unwrap().to_vec()).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",_校核中"), "the export's last column");
    assert_eq!(lines.filter(|l| l.ends_with(",户籍地址")).count(), 1, "one row flagged in the export");
    let nd = String::from_utf8(second.export(CODE, DataFormat::Ndjson).await.unwrap().to_vec()).unwrap();
    assert_eq!(nd.lines().filter(|l| l.contains("\"_校核中\":[\"户籍地址\"]")).count(), 1);
    let feed = second.changes(CODE, before, Some(100)).await.unwrap();
    assert_eq!(feed.changes.len(), 1, "the flag carried the record to the feed again: {feed:?}");
    assert_eq!(feed.changes[0].record.as_ref().unwrap().get(FLAG), Some(&json!(["户籍地址"])));
    let since = feed.next_since;

    // 已更正 before the data changed: refused. A batch changes the address; then the answer stands, linked.
    let answer = |kind: &str| json!({"answer": kind, "note": "已按户籍底册更正"});
    let r = app.post(&format!("/api/v1/quality/objections/{id}/answer"), &provider, answer("corrected")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = app.post(&format!("/api/v1/quality/objections/{id}/answer"), &filer, answer("confirmed")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the filer does not answer: {:?}", r.body);
    let mut fixed = target.clone();
    fixed[5] = "南京市玄武区珠江路1号".into();
    let b = upload(&app, &provider, POPULATION, "mode=incremental", "text/csv", population_csv(&[fixed.clone()])).await;
    assert!(b.status.is_success(), "{:?}", b.body);
    let r = app.post(&format!("/api/v1/quality/objections/{id}/answer"), &provider, answer("corrected")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["state"].as_str(), r.body["answer"].as_str()), (Some("answered"), Some("corrected")));
    assert_eq!(r.body["corrected_batch"], b.body["id"], "linked to the batch");
    let found = second.lookup(CODE, &target[0], None).await.unwrap();
    assert!(found.get(FLAG).is_none(), "the flag is lowered: {found:?}");
    let feed = second.changes(CODE, since, Some(100)).await.unwrap();
    let last = feed.changes.last().unwrap().record.clone().unwrap();
    assert!(last.get(FLAG).is_none(), "the feed carries the record without its flag: {feed:?}");
    let csv = String::from_utf8(second.export(CODE, DataFormat::Csv).await.unwrap().to_vec()).unwrap();
    assert!(!csv.lines().next().unwrap().contains(FLAG), "no flag column once nothing is under verification");

    // The filer accepts: closed.
    let r = app.post(&format!("/api/v1/quality/objections/{id}/accept"), &filer, json!({})).await;
    assert_eq!(r.body["state"], "closed", "{:?}", r.body);

    // An objection left unanswered: not overdue on its due date, overdue the next day, for the authority too.
    let r = app.post("/api/v1/quality/objections", &filer, body(vec![&untouched[0]], vec![], "outdated")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let late = r.body["id"].as_i64().unwrap();
    app.clock().set_date(date(2026, 10, 10));
    let r = app.get(&format!("/api/v1/quality/objections/{late}"), &authority).await;
    assert_eq!(r.body["overdue"], false, "{:?}", r.body);
    app.clock().set_date(date(2026, 10, 11));
    let r = app.get("/api/v1/quality/objections?overdue=true", &authority).await;
    let ids: Vec<i64> = r.body["objections"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![late], "{:?}", r.body);
    let queue = app.get("/api/v1/quality/objections?scope=received", &provider).await;
    assert_eq!(queue.body["objections"][0]["id"], late, "overdue first in the provider's queue: {:?}", queue.body);
    assert!(queue.body["objections"][0]["impact"]["grants_in_force"].as_i64().unwrap() >= 2);
    let figures = app.get("/api/v1/quality/objection-figures", &authority).await;
    let ga = figures.body["departments"].as_array().unwrap().iter().find(|d| d["filed"] == 2).cloned().unwrap();
    assert_eq!((ga["open"].as_i64(), ga["overdue"].as_i64(), ga["corrected"].as_i64()), (Some(1), Some(1), Some(1)));
    assert_eq!(ga["real_error_percent"], 100.0);

    // Confirmed, escalated (flagged again), dismissed by the authority (flag lowered, closed).
    let r = app.post(&format!("/api/v1/quality/objections/{late}/answer"), &provider, answer("confirmed")).await;
    assert_eq!(r.body["state"], "answered", "{:?}", r.body);
    let r = app.post(&format!("/api/v1/quality/objections/{late}/escalate"), &filer, json!({"note": "社区走访核实已迁出"})).await;
    assert_eq!(r.body["state"], "escalated", "{:?}", r.body);
    assert_eq!(second.lookup(CODE, &untouched[0], None).await.unwrap().get(FLAG), Some(&json!([])), "the whole record");
    let r = app.post(&format!("/api/v1/quality/objections/{late}/rule"), &provider, json!({"ruling": "dismissed", "note": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .post(&format!("/api/v1/quality/objections/{late}/rule"), &authority, json!({"ruling": "dismissed", "note": "以户籍底册为准"}))
        .await;
    assert_eq!((r.body["state"].as_str(), r.body["ruling"].as_str()), (Some("closed"), Some("dismissed")), "{:?}", r.body);
    assert!(second.lookup(CODE, &untouched[0], None).await.unwrap().get(FLAG).is_none());

    // Every step is in the trail.
    let admin = app.admin_token().await;
    for action in [
        "quality.objection_file",
        "quality.objection_evidence",
        "quality.objection_answer",
        "quality.objection_accept",
        "quality.objection_escalate",
        "quality.objection_rule",
    ] {
        let r = app.call(Method::GET, &format!("/api/v1/audit/events?action={action}"), Some(&admin), None).await;
        assert!(!r.body["events"].as_array().unwrap().is_empty(), "{action}: {:?}", r.body);
    }
    app.stop().await;
}
