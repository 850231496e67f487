//! 数据质量 (SPEC C6; 办法 第十七条): rules derived from the catalog entry and added by the provider, checks after
//! every batch and on request, results kept as history that never changes, scores and grades.

use crate::common::{Backend, TestApp, spawn_demo_app_with};
use crate::exchange::upload;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DEMO: &str = shutong::demo::DEMO_PASSWORD;

on_both_backends!(each_rule_finds_its_defect_and_the_history_stays);

/// A published resource of 示范省公安厅 with an item for every rule kind, bound as a dataset; its code.
async fn resource(app: &TestApp, editor: &str, authority: &str) -> String {
    let mut doc = app.get("/api/v1/catalog/resources/101/000001", editor).await.body["document"].clone();
    doc["name"] = json!("人口质量测试信息");
    doc["update_cycle"] = json!("monthly");
    doc["sharing_type"] = json!("unconditional");
    doc["sharing_condition"] = Value::Null;
    doc["items"] = json!([
        {"name": "公民身份号码", "data_type": "C", "length": 18, "required": true, "is_key": true, "mask": "id_number",
         "sharing_type": "unconditional", "standard": "GB 11643-1999"},
        {"name": "姓名", "data_type": "C", "length": 4, "required": true, "sharing_type": "unconditional"},
        {"name": "性别", "data_type": "C", "length": 2, "sharing_type": "unconditional"},
        {"name": "出生日期", "data_type": "D", "sharing_type": "unconditional"},
        {"name": "行政区划代码", "data_type": "C", "length": 6, "sharing_type": "unconditional", "standard": "GB/T 2260"},
        {"name": "年龄", "data_type": "N", "length": 3, "sharing_type": "unconditional"},
        {"name": "学历", "data_type": "C", "length": 2, "sharing_type": "unconditional"}
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

/// Twenty people, clean: valid numbers, names of 2–4 Han characters, birth dates and sexes as the numbers say.
fn people(n: u64) -> Vec<[String; 7]> {
    (0..n)
        .map(|i| {
            let p = shutong_exchange::synth::person(i + 7_000, 11);
            let id = p[0].clone();
            let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
            let sex = if (id.as_bytes()[16] - b'0') % 2 == 1 { "男" } else { "女" };
            [id, "张小明".into(), sex.into(), birth, "320102".into(), "40".into(), "20".into()]
        })
        .collect()
}

fn csv(rows: &[[String; 7]]) -> Vec<u8> {
    let mut out = String::from("公民身份号码,姓名,性别,出生日期,行政区划代码,年龄,学历\n");
    for r in rows {
        out.push_str(&r.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn result<'a>(check: &'a Value, kind: &str, item: Option<&str>) -> &'a Value {
    check["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && item.is_none_or(|i| r["rule_key"].as_str().unwrap().contains(&format!("\"{i}\""))))
        .unwrap_or_else(|| panic!("no {kind} result for {item:?}: {check}"))
}

fn failing(check: &Value, kind: &str, item: Option<&str>) -> i64 {
    result(check, kind, item)["rows_failing"].as_i64().unwrap()
}

async fn wait_for_checks(app: &TestApp, path: &str, token: &str, n: usize) -> Value {
    for _ in 0..200 {
        let r = app.get(path, token).await;
        if r.body["checks"].as_array().is_some_and(|c| c.len() >= n) {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} quality checks at {path}");
}

async fn each_rule_finds_its_defect_and_the_history_stays(backend: Backend) {
    let app = spawn_demo_app_with(backend, |c| c.quality.check_after_batch = true).await;
    let editor = app.login("ga.editor", DEMO).await;
    let authority = app.login("sq.reviewer", DEMO).await;
    let other = app.login("rs.admin", DEMO).await;
    let code = resource(&app, &editor, &authority).await;
    let rules_path = format!("/api/v1/data/{code}/quality/rules");
    let checks_path = format!("/api/v1/data/{code}/quality/checks");

    // Rules derived from the entry: 必填 for the key and required items, 标识码 for the number, 长度 for character
    // items, 行政区划代码 for the GB/T 2260 item, 及时性 from 更新周期 (monthly: 31 days).
    let rules = app.get(&rules_path, &other).await;
    assert_eq!(rules.status, StatusCode::OK, "every user reads a published dataset's rules: {:?}", rules.body);
    let kinds: Vec<String> =
        rules.body["rules"].as_array().unwrap().iter().map(|r| r["rule"]["kind"].as_str().unwrap().to_string()).collect();
    for k in ["required", "identifier", "length", "region_code", "freshness"] {
        assert!(kinds.iter().any(|x| x == k), "derived {k}: {kinds:?}");
    }
    let freshness = rules.body["rules"].as_array().unwrap().iter().find(|r| r["rule"]["kind"] == "freshness").unwrap();
    assert_eq!(freshness["rule"]["max_age_days"], 31);
    assert_eq!(freshness["dimension"], "timeliness");

    // Bad rules are refused, the field named; others' departments may not add rules.
    let add = |token: String, rule: Value| {
        let (app, path) = (&app, rules_path.clone());
        async move { app.post(&path, &token, json!({"rule": rule})).await }
    };
    let r = add(editor.clone(), json!({"kind": "pattern", "item": "姓名", "pattern": "([a-z]"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("rule.pattern")), "{:?}", r.body);
    let r = add(editor.clone(), json!({"kind": "range", "item": "年龄", "min": "abc"})).await;
    assert_eq!(r.body["error"]["field"], "rule.min", "{:?}", r.body);
    let r = add(editor.clone(), json!({"kind": "range", "item": "年龄", "min": "1", "max": "2020-01-01"})).await;
    assert_eq!(r.body["error"]["field"], "rule.max", "{:?}", r.body);
    let r = add(editor.clone(), json!({"kind": "code_list", "item": "不存在的项", "values": ["1"]})).await;
    assert_eq!(r.body["error"]["field"], "rule.item", "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("不存在的项"), "{:?}", r.body);
    let r = add(other.clone(), json!({"kind": "code_list", "item": "学历", "values": ["10"]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app.post("/api/v1/data/101/999999/quality/rules", &editor, json!({"rule": {"kind": "required", "item": "姓名"}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // The provider's own rules.
    for rule in [
        json!({"kind": "code_list", "item": "学历", "values": ["10", "20", "30"]}),
        json!({"kind": "pattern", "item": "姓名", "pattern": "\\p{Han}{2,4}"}),
        json!({"kind": "range", "item": "年龄", "min": "0", "max": "150"}),
        json!({"kind": "id_consistency", "id_item": "公民身份号码", "birth_item": "出生日期", "sex_item": "性别"}),
        json!({"kind": "volume_change", "max_change_percent": 30}),
    ] {
        let r = add(editor.clone(), rule.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{rule}: {:?}", r.body);
        assert!(r.body["key"].as_str().unwrap().starts_with("custom:"));
    }

    // Bound but not loaded: nothing to check yet.
    let r = app.call(Method::POST, &checks_path, Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(app.get(&checks_path, &other).await.body["checks"].as_array().unwrap().is_empty());

    // A batch with one defect for each of the provider's rules and the region code; it is checked by itself.
    let mut rows = people(20);
    rows[1][6] = "99".into(); // not in the code list
    rows[2][1] = "Tom".into(); // not Han characters
    rows[3][5] = "200".into(); // out of range
    rows[4][3] = "1900-01-01".into(); // birth date against the number
    rows[5][4] = "999999".into(); // not a GB/T 2260 code
    let r = upload(&app, &editor, &format!("/api/v1/data/{code}"), "mode=full&batch_id=q-1", "text/csv", csv(&rows)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["rows_rejected"], 0, "{:?}", r.body);
    let list = wait_for_checks(&app, &checks_path, &other, 1).await;
    let first_id = list["checks"][0]["id"].as_i64().unwrap();
    assert_eq!(list["checks"][0]["cause"], "batch");
    let first = app.get(&format!("/api/v1/quality/checks/{first_id}"), &other).await.body;
    assert_eq!(first["rows_checked"], 20, "{first}");
    // (The provider's rules are one of each kind here, found by kind.)
    for (kind, item) in
        [("code_list", None), ("pattern", None), ("range", None), ("id_consistency", None), ("region_code", Some("行政区划代码"))]
    {
        assert_eq!(failing(&first, kind, item), 1, "{kind}: {first}");
    }
    // Clean data passes: the derived checks that the batch's validation already holds, and freshness.
    for (kind, item) in [("required", Some("姓名")), ("identifier", Some("公民身份号码")), ("length", Some("性别")), ("freshness", None)]
    {
        assert_eq!(failing(&first, kind, item), 0, "{kind}: {first}");
    }
    assert_eq!(result(&first, "freshness", None)["score"], 100.0);
    // Failing keys are masked.
    let sample = result(&first, "range", None)["samples"][0].as_str().unwrap().to_string();
    assert!(sample.contains('*') && !sample.contains(&rows[3][0]), "{sample}");
    assert!(first["score"].as_f64().unwrap() < 100.0 && first["grade"].is_string(), "{first}");

    // Data changed behind the platform (what an entry revised after the data was loaded also finds): a missing
    // name, a sex longer than its item, a number that fails its check character.
    let state = &app.running.as_ref().unwrap().state;
    let binding =
        shutong_exchange::get_binding(&state.exchange, &shutong_catalog::ResourceCode::parse(&code).unwrap()).await.unwrap().unwrap();
    let table = binding.table_name.clone().unwrap();
    let pool = state.exchange.pool.pool();
    // Rows are found by their 出生日期 (c3), which is stored in clear.
    for (set, birth) in [("c1 = NULL", &rows[6][3]), ("c2 = '男性别'", &rows[7][3]), ("c0 = '110105194912310021'", &rows[8][3])] {
        let n = sqlx::query(&format!("UPDATE {table} SET {set} WHERE c3 = $1"))
            .bind(birth.as_str())
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1, "{set}");
    }
    let second = app.call(Method::POST, &checks_path, Some(&editor), None).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let second = second.body;
    assert_eq!(second["cause"], "manual");
    for (kind, item) in [("required", "姓名"), ("length", "性别"), ("identifier", "公民身份号码")] {
        assert_eq!(failing(&second, kind, Some(item)), 1, "{kind}: {second}");
    }
    // Only the consumer's view: a manual check is the provider's or the authority's.
    assert_eq!(app.call(Method::POST, &checks_path, Some(&other), None).await.status, StatusCode::FORBIDDEN);

    // History: the earlier check reads as it did, and the database refuses to change it.
    let again = app.get(&format!("/api/v1/quality/checks/{first_id}"), &other).await.body;
    assert_eq!(again, first);
    let refused =
        sqlx::query("UPDATE quality_results SET rows_failing = 0 WHERE run_id = $1").bind(first_id).execute(app.db().pool()).await;
    assert!(refused.is_err(), "results are append-only");
    let refused = sqlx::query("DELETE FROM quality_runs WHERE id = $1").bind(first_id).execute(app.db().pool()).await;
    assert!(refused.is_err(), "checks are append-only");

    // Time passes and the dataset halves: freshness and volume fail; a retired rule is left out.
    let pattern_key = app.get(&rules_path, &editor).await.body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"]["kind"] == "pattern")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.post(&format!("{rules_path}/retire"), &editor, json!({"key": pattern_key, "reason": "短"})).await;
    assert_eq!(r.body["error"]["field"], "reason", "{:?}", r.body);
    let r = app.post(&format!("{rules_path}/retire"), &editor, json!({"key": pattern_key, "reason": "外籍人员姓名不适用"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["retired_at"].is_string());
    let r = app.post(&format!("{rules_path}/retire"), &editor, json!({"key": pattern_key, "reason": "外籍人员姓名不适用"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = upload(&app, &editor, &format!("/api/v1/data/{code}"), "mode=full&batch_id=q-2", "text/csv", csv(&rows[..10])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    wait_for_checks(&app, &checks_path, &other, 3).await;
    let today = app.clock().today();
    app.clock().set_date(today + chrono::Days::new(40));
    let late = app.call(Method::POST, &checks_path, Some(&editor), None).await.body;
    assert_eq!(failing(&late, "freshness", None), 1, "{late}");
    assert!(result(&late, "freshness", None)["detail"].as_str().unwrap().contains("40 天"), "{late}");
    assert!(!late["results"].as_array().unwrap().iter().any(|r| r["rule_key"] == pattern_key.as_str()), "the retired rule: {late}");
    let history = app.get(&checks_path, &other).await.body;
    let checks = history["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4, "{history}");
    let batch_after_halving = checks.iter().find(|c| c["cause"] == "batch" && c["id"].as_i64().unwrap() > first_id).unwrap();
    let halved = app.get(&format!("/api/v1/quality/checks/{}", batch_after_halving["id"]), &other).await.body;
    assert_eq!(failing(&halved, "volume_change", None), 1, "{halved}");
    assert!(result(&halved, "volume_change", None)["detail"].as_str().unwrap().contains("50%"), "{halved}");
    app.clock().set_date(today);

    // Dimensions are the authority's; scores by dataset and department.
    let r = app.call(Method::PUT, "/api/v1/quality/dimensions/timeliness", Some(&editor), Some(json!({"weight": 10}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call(Method::PUT, "/api/v1/quality/dimensions/timeliness", Some(&authority), Some(json!({"weight": 101}))).await;
    assert_eq!(r.body["error"]["field"], "weight", "{:?}", r.body);
    let r = app.call(Method::PUT, "/api/v1/quality/dimensions/nonsense", Some(&authority), Some(json!({"weight": 1}))).await;
    assert_eq!(r.body["error"]["field"], "dimension", "{:?}", r.body);
    let r = app
        .call(Method::PUT, "/api/v1/quality/dimensions/timeliness", Some(&authority), Some(json!({"weight": 30, "name": "及时性"})))
        .await;
    assert_eq!((r.status, r.body["name"].as_str(), r.body["weight"].as_i64()), (StatusCode::OK, Some("及时性"), Some(30)), "{:?}", r.body);
    let scores = app.get("/api/v1/quality/scores", &other).await.body;
    let mine = scores["datasets"].as_array().unwrap().iter().find(|d| d["resource_code"] == code.as_str()).unwrap();
    assert_eq!(mine["check_id"], late["id"], "the latest check: {scores}");
    assert_eq!(mine["score"], late["score"]);
    let ga = scores["departments"].as_array().unwrap().iter().find(|d| d["department_id"] == late["department_id"]).unwrap();
    assert!(ga["datasets"].as_i64().unwrap() >= 1 && ga["grade"].is_string(), "{scores}");
    let r = app.get("/api/v1/quality/scores?department_id=0", &other).await;
    assert_eq!(r.body["error"]["field"], "department_id");

    // Every change above is in the trail.
    let trail = app.get("/api/v1/audit/events?limit=200", &app.admin_token().await).await.body;
    let actions: Vec<&str> = trail["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["quality.rule_create", "quality.rule_retire", "quality.check", "quality.dimension_update"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    app.stop().await;
}
