//! Quality across records and datasets, through the API on both backends: objections, 一数一源, theme
//! databases, uniqueness and references.
//!
//! 疑义校核 (办法 第十八条; R-Q-1): a consumer objects to a record;
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

on_both_backends!(
    an_objection_flags_the_record_everywhere_until_it_is_answered,
    one_source_per_element_lists_exactly_the_conflicting_keys,
    a_theme_database_joins_three_members_and_follows_their_batches,
    uniqueness_and_references_are_judged_over_the_whole_dataset
);

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

/// Records flagged 户籍地址 in a consumer's query pages.
async fn flagged_in_query(c: &shutong_client::Client) -> usize {
    let mut flagged = 0;
    let mut spec = QuerySpec { limit: Some(1000), ..Default::default() };
    loop {
        let page = c.query(CODE, &spec).await.unwrap();
        flagged += page.records.iter().filter(|r| r.get(FLAG) == Some(&json!(["户籍地址"]))).count();
        match page.next_after {
            Some(a) => spec.after = Some(a),
            None => return flagged,
        }
    }
}

/// Records flagged 户籍地址 in a consumer's CSV and NDJSON downloads (the CSV's last column is the flag's).
async fn flagged_in_exports(c: &shutong_client::Client) -> (usize, usize) {
    let csv = String::from_utf8(c.export(CODE, DataFormat::Csv).await.unwrap().to_vec()).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",_校核中"), "the export's last column");
    let in_csv = lines.filter(|l| l.ends_with(",户籍地址")).count();
    let nd = String::from_utf8(c.export(CODE, DataFormat::Ndjson).await.unwrap().to_vec()).unwrap();
    (in_csv, nd.lines().filter(|l| l.contains("\"_校核中\":[\"户籍地址\"]")).count())
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
    // What the demo's own objections flag already: records flagged 户籍地址 in queries, CSV and NDJSON.
    let base = (flagged_in_query(&second).await, flagged_in_exports(&second).await.0, flagged_in_exports(&second).await.1);
    let provider_figures = |figures: &Value, dept: &Value| {
        figures["departments"].as_array().unwrap().iter().find(|d| d["department_id"] == *dept).cloned().unwrap_or(json!({}))
    };
    let figures_before = app.get("/api/v1/quality/objection-figures", &authority).await.body;
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

    // The second consumer sees the flag in every read, on that record only (beside the demo's objections).
    let found = second.lookup(CODE, &target[0], None).await.unwrap();
    assert_eq!(found.get(FLAG), Some(&json!(["户籍地址"])), "lookup: {found:?}");
    let clean = second.lookup(CODE, &untouched[0], None).await.unwrap();
    assert!(clean.get(FLAG).is_none(), "{clean:?}");
    assert_eq!(flagged_in_query(&second).await, base.0 + 1, "query");
    assert_eq!(flagged_in_exports(&second).await, (base.1 + 1, base.2 + 1), "exports");
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
    assert_eq!(flagged_in_exports(&second).await, (base.1, base.2), "the exports no longer flag it");

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
    let figures = app.get("/api/v1/quality/objection-figures", &authority).await.body;
    let dept = queue.body["objections"][0]["provider_department_id"].clone();
    let (was, now) = (provider_figures(&figures_before, &dept), provider_figures(&figures, &dept));
    let delta = |k: &str| now[k].as_i64().unwrap_or(0) - was[k].as_i64().unwrap_or(0);
    assert_eq!((delta("filed"), delta("open"), delta("overdue"), delta("corrected")), (2, 1, 1, 1), "{now}");
    let share = now["corrected"].as_f64().unwrap() * 100.0 / now["answered"].as_f64().unwrap();
    assert!((now["real_error_percent"].as_f64().unwrap() - share).abs() < 0.1, "{now}");

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

/// A published dataset of 示范省人力资源和社会保障厅 carrying 人口's 姓名 and 户籍地址 keyed by 公民身份号码; its code.
async fn carrier(app: &TestApp, editor: &str, authority: &str) -> String {
    let mut doc = app.get("/api/v1/catalog/resources/101/000001", editor).await.body["document"].clone();
    doc["name"] = json!("参保人员户籍信息");
    doc["sharing_type"] = json!("unconditional");
    doc["sharing_condition"] = Value::Null;
    doc["items"] = json!([
        {"name": "公民身份号码", "data_type": "C", "length": 18, "required": true, "is_key": true, "mask": "id_number",
         "sharing_type": "unconditional", "standard": "GB 11643-1999"},
        {"name": "姓名", "data_type": "C", "length": 50, "sharing_type": "unconditional", "mask": "name"},
        {"name": "户籍地址", "data_type": "C", "length": 200, "sharing_type": "unconditional", "mask": "address"}
    ]);
    let r = app.post("/api/v1/catalog/resources", editor, json!({"classification_code": "101", "document": doc})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_string();
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/submit"), editor, json!({})).await;
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/review"), authority, json!({"decision": "approve"})).await;
    let r = app.call(Method::PUT, &format!("/api/v1/data/{code}/binding"), Some(editor), Some(json!({"kind": "dataset"}))).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    code
}

async fn one_source_per_element_lists_exactly_the_conflicting_keys(backend: Backend) {
    let app = spawn_demo_app_with(backend, |_| {}).await;
    let authority = app.login("sq.reviewer", DEMO).await;
    let rs = app.login("rs.admin", DEMO).await;
    let ga = app.login("ga.reviewer", DEMO).await;
    let code = carrier(&app, &rs, &authority).await;
    // The demo's 2,000 people, 1 % of them (every 100th) with another 户籍地址.
    let people: Vec<[String; 6]> = (0..2000).map(|i| synth::person(i, 2026)).collect();
    let mut csv = String::from("公民身份号码,姓名,户籍地址\n");
    let mut changed = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let address = if i % 100 == 7 {
            changed.push(p[0].clone());
            format!("{}附{}号", p[5], i)
        } else {
            p[5].clone()
        };
        csv.push_str(&format!("{},{},{}\n", p[0], p[1], address));
    }
    let b = upload(&app, &rs, &format!("/api/v1/data/{code}"), "mode=full", "text/csv", csv.into_bytes()).await;
    assert!(b.status.is_success(), "{:?}", b.body);

    // Declared by the authority only, with items of the authoritative dataset.
    let element = json!({"name": "人口", "key_item": "公民身份号码", "resource_code": CODE, "items": ["姓名", "户籍地址"]});
    let r = app.post("/api/v1/quality/elements", &rs, element.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/quality/elements",
            &authority,
            json!({"name": "人口", "key_item": "公民身份号码", "resource_code": CODE, "items": ["不存在"]}),
        )
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("items[0]")), "{:?}", r.body);
    let r = app.post("/api/v1/quality/elements", &authority, element).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let carriers: Vec<&str> = r.body["carriers"].as_array().unwrap().iter().map(|c| c["resource_code"].as_str().unwrap()).collect();
    assert!(carriers.contains(&code.as_str()), "matched by item names: {carriers:?}");

    // Reconciled: exactly the changed keys differ, in 户籍地址 only.
    let r = app.post(&format!("/api/v1/quality/elements/{id}/reconcile"), &rs, json!({"resource_code": code})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let run = &r.body["runs"][0];
    assert_eq!((run["keys_compared"].as_i64(), run["differing_keys"].as_i64()), (Some(2000), Some(20)), "{run}");
    assert_eq!((run["missing_in_resource"].as_i64(), run["missing_in_authoritative"].as_i64()), (Some(0), Some(0)));
    let by_item = |name: &str| run["items"].as_array().unwrap().iter().find(|i| i["item"] == name).unwrap().clone();
    assert_eq!(by_item("户籍地址")["differing"], 20);
    assert_eq!(by_item("姓名")["differing"], 0);
    assert_eq!(run["rate"], 99.0);
    let detail = app.get(&format!("/api/v1/quality/reconciliations/{}", run["id"]), &ga).await;
    assert_eq!(detail.status, StatusCode::OK, "the authoritative provider reads it: {:?}", detail.body);
    let masks = shutong_reference::MaskRules::default();
    let mut listed: Vec<String> = detail.body["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!((c["kind"].as_str(), c["item"].as_str()), (Some("differs"), Some("户籍地址")));
            c["key"].as_str().unwrap().to_string()
        })
        .collect();
    let mut expected: Vec<String> = changed.iter().map(|k| masks.mask(shutong_reference::MaskKind::IdNumber, k)).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "exactly the conflicting keys");
    let stranger = app.login("xl.admin", DEMO).await;
    assert_eq!(app.get(&format!("/api/v1/quality/reconciliations/{}", run["id"]), &stranger).await.status, StatusCode::NOT_FOUND);

    // Reported to both providers.
    for token in [&rs, &ga] {
        let inbox = app.get("/api/v1/inbox", token).await;
        assert!(
            inbox.body["notifications"].as_array().unwrap().iter().any(|n| {
                n["kind"] == "consistency_conflict"
                    && n["message"].as_str().unwrap().contains(&format!("{code} 与权威来源 {CODE} 有 20 个主键不一致"))
            }),
            "{:?}",
            inbox.body["notifications"]
        );
    }

    // A conflict becomes an objection against the dataset that differs from the authoritative source.
    let conflict = detail.body["conflicts"][0]["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/quality/conflicts/{conflict}/objection"), &authority, json!({"side": "resource"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!((r.body["resource_code"].as_str(), r.body["reason"].as_str()), (Some(code.as_str()), Some("authority")));
    assert_eq!(r.body["items"], json!(["户籍地址"]));
    let queue = app.get("/api/v1/quality/objections?scope=received", &rs).await;
    assert!(queue.body["objections"].as_array().unwrap().iter().any(|o| o["id"] == r.body["id"]), "{:?}", queue.body);
    let r = app.post(&format!("/api/v1/quality/conflicts/{conflict}/objection"), &stranger, json!({"side": "resource"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    app.stop().await;
}

/// 主题库: 示范省人力资源和社会保障厅 builds 社会保障主题库 from three departments' datasets — 姓名 from 人口基本信息
/// (公安厅), 参保状态 from 社会保险参保信息 (its own, the demo's), 户籍地址 from a third pooled dataset — published
/// and refreshed, it answers a lookup with an item from each, and follows a member's incremental batch by
/// itself. Base templates compile a base resource of base items, 无条件共享.
async fn a_theme_database_joins_three_members_and_follows_their_batches(backend: Backend) {
    let app = spawn_demo_app_with(backend, |_| {}).await;
    let authority = app.login("sq.reviewer", DEMO).await;
    let rs = app.login("rs.admin", DEMO).await;
    let third = carrier(&app, &rs, &authority).await;
    let people: Vec<[String; 6]> = (0..2000).map(|i| synth::person(i, 2026)).collect();
    let mut csv = String::from("公民身份号码,姓名,户籍地址\n");
    for p in &people {
        csv.push_str(&format!("{},{},{}\n", p[0], p[1], p[5]));
    }
    let b = upload(&app, &rs, &format!("/api/v1/data/{third}"), "mode=full", "text/csv", csv.into_bytes()).await;
    assert!(b.status.is_success(), "{:?}", b.body);
    let insured: String = sqlx::Row::get(
        &sqlx::query("SELECT code FROM catalog_resources WHERE name = '社会保险参保信息'").fetch_one(app.db().pool()).await.unwrap(),
        0,
    );
    let item = |item: &str, code: &str, member: &str| json!({"item": item, "resource_code": code, "member_item": member});
    let theme = json!({"name": "社会保障主题库", "classification_code": "202", "key_item": "公民身份号码", "items": [
        item("姓名", CODE, "姓名"), item("参保状态", &insured, "参保状态"), item("户籍地址", &third, "户籍地址")]});

    // Bad input: one member only, an item a member does not have.
    let r = app
        .post(
            "/api/v1/quality/themes",
            &rs,
            json!({"name": "x", "classification_code": "202", "key_item": "公民身份号码",
        "items": [item("姓名", CODE, "姓名")]}),
        )
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("items")), "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/quality/themes",
            &rs,
            json!({"name": "x", "classification_code": "202", "key_item": "公民身份号码",
        "items": [item("姓名", CODE, "姓名"), item("状态", &insured, "没有")]}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "items[1].member_item", "{:?}", r.body);

    let r = app.post("/api/v1/quality/themes", &rs, theme).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let (id, code) = (r.body["id"].as_i64().unwrap(), r.body["resource_code"].as_str().unwrap().to_string());
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    let refresh = format!("/api/v1/quality/themes/{id}/refresh");
    let r = app.post(&refresh, &rs, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not published yet: {:?}", r.body);
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/submit"), &rs, json!({})).await;
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/review"), &authority, json!({"decision": "approve"})).await;
    let r = app.post(&refresh, &rs, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["mode"].as_str(), r.body["rows_written"].as_i64()), (Some("full"), Some(2000)), "{:?}", r.body);
    let versions: Vec<&str> = r.body["members"].as_array().unwrap().iter().map(|m| m["resource_code"].as_str().unwrap()).collect();
    assert_eq!(versions, [CODE, insured.as_str(), third.as_str()], "the lineage names every member");

    // A lookup on the theme, like any dataset: an item from each member.
    let p = &people[3];
    let rec = app.get(&format!("/api/v1/data/{code}/records/{}", p[0]), &rs).await;
    assert_eq!(rec.status, StatusCode::OK, "{:?}", rec.body);
    assert_eq!(
        (rec.body["姓名"].as_str(), rec.body["参保状态"].as_str(), rec.body["户籍地址"].as_str()),
        (Some(p[1].as_str()), Some("正常参保"), Some(p[5].as_str()))
    );

    // A member's incremental batch: the theme follows by itself.
    let moved = format!("{}（新址）", p[5]);
    let b = upload(
        &app,
        &rs,
        &format!("/api/v1/data/{third}"),
        "mode=incremental",
        "text/csv",
        format!("公民身份号码,姓名,户籍地址\n{},{},{}\n", p[0], p[1], moved).into_bytes(),
    )
    .await;
    assert!(b.status.is_success(), "{:?}", b.body);
    let mut seen = String::new();
    for _ in 0..150 {
        seen =
            app.get(&format!("/api/v1/data/{code}/records/{}", p[0]), &rs).await.body["户籍地址"].as_str().unwrap_or_default().to_string();
        if seen == moved {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(seen, moved, "the theme followed the member's batch");
    let t = app.get(&format!("/api/v1/quality/themes/{id}"), &authority).await;
    assert_eq!(
        (t.body["last_refresh"]["mode"].as_str(), t.body["last_refresh"]["rows_written"].as_i64()),
        (Some("incremental"), Some(1)),
        "{:?}",
        t.body
    );

    // Base templates: six, and a base resource compiled from one (base items, 无条件共享).
    let templates = app.get("/api/v1/quality/base-templates", &rs).await;
    assert_eq!(templates.body["templates"].as_array().unwrap().len(), 6);
    let r = app.post("/api/v1/quality/base-templates/population/compile", &rs, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let items = r.body["document"]["items"].as_array().unwrap().clone();
    assert!(items.iter().all(|i| i["is_base_item"] == true && i["sharing_type"] == "unconditional"), "{items:?}");
    assert!(items.iter().any(|i| i["name"] == "公民身份号码" && i["is_key"] == true));
    let r = app.post("/api/v1/quality/base-templates/nothing/compile", &rs, json!({})).await;
    assert_eq!(r.body["error"]["field"], "template", "{:?}", r.body);
    app.stop().await;
}

/// 唯一性 and 引用一致: a dataset of 示范省人力资源和社会保障厅 whose 参保编号 repeats in four records and whose
/// 单位统一社会信用代码 names five units that 法人单位基本信息 (the demo's 500 entities) does not hold; the rules
/// find exactly those, and refuse what they cannot judge.
async fn uniqueness_and_references_are_judged_over_the_whole_dataset(backend: Backend) {
    let app = spawn_demo_app_with(backend, |_| {}).await;
    let authority = app.login("sq.reviewer", DEMO).await;
    let rs = app.login("rs.admin", DEMO).await;
    let mut doc = app.get("/api/v1/catalog/resources/101/000001", &rs).await.body["document"].clone();
    doc["name"] = json!("参保单位登记测试");
    doc["sharing_type"] = json!("unconditional");
    doc["sharing_condition"] = Value::Null;
    doc["items"] = json!([
        {"name": "公民身份号码", "data_type": "C", "length": 18, "required": true, "is_key": true, "mask": "id_number",
         "sharing_type": "unconditional", "standard": "GB 11643-1999"},
        {"name": "参保编号", "data_type": "C", "length": 20, "sharing_type": "unconditional"},
        {"name": "单位统一社会信用代码", "data_type": "C", "length": 18, "sharing_type": "unconditional", "standard": "GB 32100-2015"}
    ]);
    let r = app.post("/api/v1/catalog/resources", &rs, json!({"classification_code": "202", "document": doc})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_string();
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/submit"), &rs, json!({})).await;
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/review"), &authority, json!({"decision": "approve"})).await;
    let r = app.call(Method::PUT, &format!("/api/v1/data/{code}/binding"), Some(&rs), Some(json!({"kind": "dataset"}))).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let mut csv = String::from("公民身份号码,参保编号,单位统一社会信用代码\n");
    for i in 0..100u64 {
        let number = match i {
            10 | 11 => "DUP-1".to_string(),
            12 | 13 => "DUP-2".to_string(),
            _ => format!("SB{i:06}"),
        };
        // Units 0–499 are registered; 90–94 name units beyond them.
        let unit = if (90..95).contains(&i) { synth::entity(100_000 + i, 2026)[0].clone() } else { synth::entity(i, 2026)[0].clone() };
        csv.push_str(&format!("{},{number},{unit}\n", synth::person(i, 2026)[0]));
    }
    let b = upload(&app, &rs, &format!("/api/v1/data/{code}"), "mode=full", "text/csv", csv.into_bytes()).await;
    assert!(b.status.is_success(), "{:?}", b.body);
    let rules = format!("/api/v1/data/{code}/quality/rules");
    let add = |rule: Value| {
        let (app, rules, rs) = (&app, rules.clone(), rs.clone());
        async move { app.post(&rules, &rs, json!({"rule": rule})).await }
    };
    let r = add(json!({"kind": "unique", "item": "公民身份号码"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("rule.item")), "{:?}", r.body);
    let r = add(json!({"kind": "reference", "item": "单位统一社会信用代码", "resource": code})).await;
    assert_eq!(r.body["error"]["field"], "rule.resource", "{:?}", r.body);
    let r = add(json!({"kind": "reference", "item": "单位统一社会信用代码", "resource": "109/000009"})).await;
    assert_eq!(r.body["error"]["field"], "rule.resource", "{:?}", r.body);
    let r = add(json!({"kind": "unique", "item": "参保编号"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["dimension"], "accuracy");
    let r = add(json!({"kind": "reference", "item": "单位统一社会信用代码", "resource": "102/000001"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["dimension"], "consistency");
    let check = app.post(&format!("/api/v1/data/{code}/quality/checks"), &rs, json!({})).await;
    assert_eq!(check.status, StatusCode::CREATED, "{:?}", check.body);
    let result = |kind: &str| check.body["results"].as_array().unwrap().iter().find(|r| r["kind"] == kind).cloned().unwrap();
    let unique = result("unique");
    assert_eq!(unique["rows_failing"], 4, "{unique}");
    assert_eq!(unique["samples"].as_array().unwrap().len(), 4);
    assert!(unique["samples"].as_array().unwrap().iter().all(|s| s.as_str().unwrap().contains('*')), "masked keys: {unique}");
    let reference = result("reference");
    assert_eq!(reference["rows_failing"], 5, "{reference}");
    assert_eq!(reference["score"], 95.0);

    // 阻断: a blocking 格式 rule refuses a batch whose rows fail it, whole, naming the rule; one that passes commits.
    let r = app
        .post(&rules, &rs, json!({"rule": {"kind": "pattern", "item": "参保编号", "pattern": "(SB[0-9]{6}|DUP-[0-9])"}, "blocking": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let person = synth::person(20, 2026)[0].clone();
    let unit = synth::entity(20, 2026)[0].clone();
    let bad =
        format!("公民身份号码,参保编号,单位统一社会信用代码\n{person},坏编号,{unit}\n{},SB777777,{unit}\n", synth::person(21, 2026)[0]);
    let b = upload(&app, &rs, &format!("/api/v1/data/{code}"), "mode=incremental", "text/csv", bad.into_bytes()).await;
    assert!(b.status.is_client_error(), "{:?}", b.body);
    let text = b.body.to_string();
    assert!(text.contains("格式") && text.contains("参保编号") && text.contains("1 row"), "names the rule: {text}");
    let rec = app.get(&format!("/api/v1/data/{code}/records/{person}"), &rs).await;
    assert_eq!(rec.body["参保编号"], "SB000020", "nothing applied: {:?}", rec.body);
    let good = format!("公民身份号码,参保编号,单位统一社会信用代码\n{person},SB999999,{unit}\n");
    let b = upload(&app, &rs, &format!("/api/v1/data/{code}"), "mode=incremental", "text/csv", good.into_bytes()).await;
    assert!(b.status.is_success(), "{:?}", b.body);
    assert_eq!(app.get(&format!("/api/v1/data/{code}/records/{person}"), &rs).await.body["参保编号"], "SB999999");
    app.stop().await;
}
