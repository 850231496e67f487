//! Information systems and projects (SPEC C8, C9): the inventory with its checks and history, the five zombie
//! criteria each computed from facts, the review and cleanup, and the funding gates that open as facts change.

use crate::common::{self, Backend, PASSWORD, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    the_inventory_checks_fields_flags_units_keeps_history_and_refuses_duplicates,
    each_zombie_criterion_is_computed_from_facts_and_reviewed,
    funding_gates_block_then_open_as_facts_change,
    an_inventory_workbook_of_500_systems_imports_all_or_nothing_and_round_trips,
    the_demo_departments_report_and_three_lists_print_and_read_back,
);

const DAY_MS: i64 = 86_400_000;

/// Department A (with a keeper, a catalog editor and two system accounts), department B (a keeper), the
/// sharing authority's reviewer, a development and reform department's reviewer, a finance department's
/// reviewer and an auditor.
struct Fixture {
    admin: String,
    a: i64,
    b: i64,
    keeper_a: String,
    editor_a: String,
    keeper_b: String,
    authority: String,
    approver: String,
    finance: String,
    auditor: String,
}

async fn department(app: &TestApp, admin: &str, name: &str, serial: u32, kind: &str) -> i64 {
    let code = shutong::demo::demo_credit_code("320000", serial);
    let r = app
        .post(
            "/api/v1/departments",
            admin,
            json!({"name": name, "credit_code": code, "region_code": "320000", "level": "province", "kind": kind}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin_token().await;
    let a = department(app, &admin, "甲省住房和城乡建设厅", 301, "government").await;
    let b = department(app, &admin, "乙省交通运输厅", 302, "government").await;
    let dr = department(app, &admin, "甲省发展和改革委员会", 303, "development_reform").await;
    let fin = department(app, &admin, "甲省财政厅", 304, "finance").await;
    let audit = department(app, &admin, "甲省审计厅", 305, "audit_office").await;
    app.create_user(&admin, "keeper.a", a, &["department_admin"]).await;
    app.create_user(&admin, "editor.a", a, &["catalog_editor"]).await;
    app.create_user(&admin, "keeper.b", b, &["department_admin"]).await;
    app.create_user(&admin, "auth.reviewer", 1, &["reviewer"]).await;
    app.create_user(&admin, "dr.reviewer", dr, &["reviewer"]).await;
    app.create_user(&admin, "fin.reviewer", fin, &["reviewer"]).await;
    app.create_user(&admin, "auditor", audit, &["auditor"]).await;
    for account in ["sys.fresh", "sys.stale", "sys.signer"] {
        let r = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": account, "display_name": account, "department_id": a, "is_system": true, "roles": ["system_account"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    Fixture {
        a,
        b,
        keeper_a: app.login("keeper.a", PASSWORD).await,
        editor_a: app.login("editor.a", PASSWORD).await,
        keeper_b: app.login("keeper.b", PASSWORD).await,
        authority: app.login("auth.reviewer", PASSWORD).await,
        approver: app.login("dr.reviewer", PASSWORD).await,
        finance: app.login("fin.reviewer", PASSWORD).await,
        auditor: app.login("auditor", PASSWORD).await,
        admin,
    }
}

/// A system that meets no zombie criterion on its own declarations.
fn system(name: &str) -> Value {
    json!({
        "name": name,
        "function": "受理和审批住房公积金业务",
        "usage_scope": "cross_department",
        "usage_frequency": "daily",
        "approving_department": "甲省发展和改革委员会",
        "approval_date": "2019-05-20",
        "build_cost": "1250000.00",
        "om_cost": "180000",
        "funding_source": "budget",
        "ip_addresses": ["10.32.1.15", "2001:db8::15"],
        "host_instances": ["gjj-app-01"],
        "network": "gov_outer",
        "status": "in_use",
        "om_status": "ongoing",
        "shares_across_departments": false,
        "connected": false
    })
}

/// Creates and publishes a catalog entry of department A; returns its code.
async fn publish(app: &TestApp, f: &Fixture, name: &str) -> String {
    let doc = json!({
        "name": name, "summary": format!("{name}的基本情况"), "format": "database",
        "items": [{"name": "编号", "data_type": "C", "length": 50, "required": true, "sharing_type": "unconditional"}],
        "sharing_type": "unconditional", "permitted_usage": "行政审批", "sharing_methods": ["online_query"], "update_cycle": "monthly"
    });
    let r = app.post("/api/v1/catalog/resources", &f.editor_a, json!({"classification_code": "211", "document": doc})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_string();
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/submit"), &f.editor_a, json!({})).await;
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/review"), &f.authority, json!({"decision": "approve"})).await;
    code
}

async fn register(app: &TestApp, token: &str, department: i64, doc: Value) -> common::Resp {
    app.post("/api/v1/systems", token, json!({"department_id": department, "document": doc})).await
}

async fn register_ok(app: &TestApp, token: &str, department: i64, doc: Value) -> i64 {
    let r = register(app, token, department, doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn fields(r: &common::Resp) -> Vec<String> {
    r.body["error"]["violations"]
        .as_array()
        .map(|v| v.iter().map(|p| p["field"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn the_inventory_checks_fields_flags_units_keeps_history_and_refuses_duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let today = app.clock().today();

    // Bad input: every field at fault named.
    let mut bad = system("住房公积金管理系统");
    bad["ip_addresses"] = json!(["10.32.1.15", "10.32.1.300"]);
    bad["access_url"] = json!("ftp://gjj.example.gov.cn");
    bad["approval_date"] = json!((today + chrono::Days::new(3)).to_string());
    bad["last_update_date"] = json!("1970-01-01");
    let r = register(&app, &f.keeper_a, f.a, bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let named = fields(&r);
    for field in ["document.ip_addresses[1]", "document.access_url", "document.approval_date", "document.last_update_date"] {
        assert!(named.iter().any(|n| n == field), "{field} in {named:?}");
    }
    assert!(r.body["error"]["message"].as_str().unwrap().contains("10.32.1.300"), "{:?}", r.body);
    let mut bad = system("住房公积金管理系统");
    bad["build_cost"] = json!("12.345");
    bad["om_cost"] = json!("-5");
    let r = register(&app, &f.keeper_a, f.a, bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&r), ["document.build_cost", "document.om_cost"], "{:?}", r.body);
    let mut bad = system("住房公积金管理系统");
    bad["network"] = json!("卫星网");
    let r = register(&app, &f.keeper_a, f.a, bad).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("document.network")), "{:?}", r.body);

    // Links are checked against the platform: the department's own resources and system accounts.
    let code = publish(&app, &f, "住房公积金缴存信息").await;
    let mut linked = system("住房公积金管理系统");
    linked["produces"] = json!([code, "211/999999"]);
    linked["accounts"] = json!(["sys.fresh", "keeper.a", "nobody"]);
    let r = register(&app, &f.keeper_b, f.b, linked.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&r),
        ["document.produces[0]", "document.produces[1]", "document.accounts[0]", "document.accounts[1]", "document.accounts[2]"]
    );
    linked["produces"] = json!([code]);
    linked["accounts"] = json!(["sys.fresh"]);
    linked["access_url"] = json!("https://gjj.example.gov.cn/");
    // Only the department's keepers (or the authority) register its systems.
    assert_eq!(register(&app, &f.keeper_b, f.a, linked.clone()).await.status, StatusCode::FORBIDDEN);
    let r = register(&app, &f.keeper_a, f.a, linked.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!((r.body["version"].as_i64(), &r.body["merger_flag"]), (Some(1), &Value::Null));
    assert_eq!(r.body["document"]["build_cost"], "1250000.00");
    assert_eq!(r.body["document"]["ip_addresses"], json!(["10.32.1.15", "2001:db8::15"]));

    // Duplicates refused, the existing system named: same name (spacing and width aside), same address.
    let r = register(&app, &f.keeper_a, f.a, system(" 住房公积金 管理系统 ")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "document.name");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&format!("system {id}")), "{:?}", r.body);
    let mut same_address = system("交通运输综合执法系统");
    same_address["access_url"] = json!("https://gjj.example.gov.cn/");
    let r = register(&app, &f.keeper_b, f.b, same_address).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "document.access_url");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("住房公积金管理系统"), "{:?}", r.body);

    // Systems run under a 处室 are flagged for merger, by name or by a unit-only scope.
    let r = register(&app, &f.keeper_a, f.a, system("人事处工资管理系统")).await;
    assert!(r.body["merger_flag"].as_str().unwrap().contains("人事处"), "{:?}", r.body);
    let mut unit_only = system("档案数字化系统");
    unit_only["usage_scope"] = json!("unit");
    unit_only["unit"] = json!("档案室");
    let r = register(&app, &f.keeper_a, f.a, unit_only).await;
    assert!(r.body["merger_flag"].as_str().unwrap().contains("档案室"), "{:?}", r.body);
    let ordinary = register_ok(&app, &f.keeper_a, f.a, system("行政处罚办案系统")).await;
    assert_eq!(app.get(&format!("/api/v1/systems/{ordinary}"), &f.keeper_a).await.body["merger_flag"], Value::Null);
    let flagged = app.get(&format!("/api/v1/systems?department_id={}&flagged=true", f.a), &f.keeper_a).await;
    assert_eq!(flagged.body["items"].as_array().unwrap().len(), 2, "{:?}", flagged.body);

    // Edits make versions; the history keeps each.
    linked["om_cost"] = json!("200000.00");
    linked["status"] = json!("suspended");
    let r = app.call(Method::PUT, &format!("/api/v1/systems/{id}"), Some(&f.keeper_a), Some(linked.clone())).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::OK, Some(2)), "{:?}", r.body);
    let history = app.get(&format!("/api/v1/systems/{id}/history"), &f.keeper_a).await.body;
    let costs: Vec<&str> = history.as_array().unwrap().iter().map(|v| v["document"]["om_cost"].as_str().unwrap()).collect();
    assert_eq!(costs, ["200000.00", "180000.00"]);

    // Who reads: the department, the authority, the approving and finance departments, auditors; not others.
    for token in [&f.keeper_a, &f.authority, &f.approver, &f.finance, &f.auditor] {
        assert_eq!(app.get(&format!("/api/v1/systems/{id}"), token).await.status, StatusCode::OK);
    }
    assert_eq!(app.get(&format!("/api/v1/systems/{id}"), &f.keeper_b).await.status, StatusCode::NOT_FOUND);
    let r = app.call(Method::PUT, &format!("/api/v1/systems/{id}"), Some(&f.auditor), Some(linked)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let all = app.get("/api/v1/systems?limit=2", &f.auditor).await.body;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let rest = app.get(&format!("/api/v1/systems?limit=100&after={}", all["next_cursor"]), &f.auditor).await.body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2, "four systems in all: {rest:?}");
    let _ = &f.admin;
    app.stop().await;
}

/// The criteria met by each system of the verdict list, by name.
fn met_by_name(verdicts: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    verdicts
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let met =
                v["criteria"].as_array().unwrap().iter().filter(|c| c["met"] == true).map(|c| c["criterion"].as_str().unwrap().to_string());
            (v["system_name"].as_str().unwrap().to_string(), met.collect())
        })
        .collect()
}

fn evidence_of(verdicts: &Value, system: &str, criterion: &str) -> String {
    let v = verdicts.as_array().unwrap().iter().find(|v| v["system_name"] == system).unwrap();
    let c = v["criteria"].as_array().unwrap().iter().find(|c| c["criterion"] == criterion).unwrap();
    c["evidence"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect::<Vec<_>>().join("；")
}

async fn each_zombie_criterion_is_computed_from_facts_and_reviewed(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let now = app.clock().now_ms();
    let fresh = publish(&app, &f, "住房保障对象信息").await;
    let old = publish(&app, &f, "房屋白蚁防治信息").await;
    let shared = publish(&app, &f, "建筑企业资质信息").await;
    // The facts: the old resource last changed two years ago; one account used the platform today, the other
    // ten months ago.
    let two_years_ago = now - 730 * DAY_MS;
    sqlx::query("UPDATE catalog_resources SET updated_at = $1 WHERE code = $2")
        .bind(two_years_ago)
        .bind(&old)
        .execute(app.db().pool())
        .await
        .unwrap();
    for (account, at) in [("sys.fresh", now - DAY_MS), ("sys.stale", now - 300 * DAY_MS)] {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE username = $2")
            .bind(at)
            .bind(account)
            .execute(app.db().pool())
            .await
            .unwrap();
    }
    // A third account never logged in and holds no token; it signs its requests with SM2 (前置机, 接口调用).
    sqlx::query("UPDATE users SET last_signed_at = $1 WHERE username = 'sys.signer'")
        .bind(now - 2 * DAY_MS)
        .execute(app.db().pool())
        .await
        .unwrap();
    let with = |name: &str, patch: Value| {
        let mut doc = system(name);
        for (k, v) in patch.as_object().unwrap() {
            doc[k] = v.clone();
        }
        doc["last_update_date"] = json!(app.clock().today().to_string());
        doc
    };
    let none = with("住房保障管理系统", json!({"produces": [fresh], "accounts": ["sys.fresh"]}));
    let detached = with("白蚁防治管理系统", json!({"produces": [old], "accounts": ["sys.fresh"]}));
    let replaceable = with("建筑市场监管系统", json!({"produces": [shared]}));
    let twin = with("建筑业企业资质审批系统", json!({"produces": [shared], "usage_frequency": "rarely", "usage_scope": "department"}));
    let idle = with("燃气经营许可系统", json!({"accounts": ["sys.stale"]}));
    let mut unmaintained = with("城建档案查询系统", json!({"om_status": "stopped"}));
    unmaintained["last_update_date"] = Value::Null;
    let little = with("物业企业年报系统", json!({"usage_scope": "unit", "usage_frequency": "yearly"}));
    let signing = with("供热计量监管系统", json!({"accounts": ["sys.signer"]}));
    let mut ids = std::collections::BTreeMap::new();
    for doc in [none, detached, replaceable, twin, idle, unmaintained, little, signing] {
        let name = doc["name"].as_str().unwrap().to_string();
        ids.insert(name, register_ok(&app, &f.keeper_a, f.a, doc).await);
    }
    let verdicts = app.get(&format!("/api/v1/systems/zombies?department_id={}", f.a), &f.authority).await.body;
    let met = met_by_name(&verdicts);
    let expect = |name: &str, criteria: &[&str]| assert_eq!(met[name], criteria, "{name}: {}", verdicts);
    expect("住房保障管理系统", &[]);
    expect("白蚁防治管理系统", &["detached"]);
    expect("建筑市场监管系统", &["replaceable"]);
    expect("燃气经营许可系统", &["idle"]);
    expect("城建档案查询系统", &["unmaintained"]);
    expect("物业企业年报系统", &["little_used"]);
    expect("供热计量监管系统", &[]);
    // The evidence is the facts used.
    let date = |ms: i64| shutong_store::china_date(ms).to_string();
    assert!(evidence_of(&verdicts, "白蚁防治管理系统", "detached").contains(&date(two_years_ago)), "{verdicts}");
    assert!(evidence_of(&verdicts, "住房保障管理系统", "idle").contains(&date(now - DAY_MS)), "{verdicts}");
    assert!(evidence_of(&verdicts, "燃气经营许可系统", "idle").contains(&date(now - 300 * DAY_MS)), "{verdicts}");
    assert!(evidence_of(&verdicts, "供热计量监管系统", "idle").contains(&date(now - 2 * DAY_MS)), "{verdicts}");
    assert!(evidence_of(&verdicts, "建筑市场监管系统", "replaceable").contains("建筑业企业资质审批系统"), "{verdicts}");
    assert!(evidence_of(&verdicts, "城建档案查询系统", "unmaintained").contains("运维已停止"), "{verdicts}");
    assert!(evidence_of(&verdicts, "物业企业年报系统", "little_used").contains("处室内部"), "{verdicts}");
    // Suspected systems come first.
    assert_eq!(verdicts[0]["suspected"], true);
    let order: Vec<&str> = verdicts.as_array().unwrap().iter().map(|v| v["system_name"].as_str().unwrap()).collect();
    assert_eq!(order[order.len() - 2..], ["住房保障管理系统", "供热计量监管系统"], "{verdicts}");

    // Facts change, the verdict follows: the old resource updated today is no longer detached.
    sqlx::query("UPDATE catalog_resources SET updated_at = $1 WHERE code = $2")
        .bind(now)
        .bind(&old)
        .execute(app.db().pool())
        .await
        .unwrap();
    let v = app.get(&format!("/api/v1/systems/{}/zombie", ids["白蚁防治管理系统"]), &f.keeper_a).await.body;
    assert_eq!(v["suspected"], false, "{v}");

    // The review: the department answers, the authority decides, a cleanup follows to its end.
    let sys = ids["燃气经营许可系统"];
    let path = |p: &str| format!("/api/v1/systems/{sys}/{p}");
    let r = app.post(&path("zombie/response"), &f.keeper_a, json!({"response": "dispute"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")));
    let r = app
        .post(&format!("/api/v1/systems/{}/zombie/response", ids["住房保障管理系统"]), &f.keeper_a, json!({"response": "confirm"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing to answer: {:?}", r.body);
    assert_eq!(app.post(&path("zombie/decision"), &f.authority, json!({"decision": "zombie"})).await.status, StatusCode::CONFLICT);
    assert_eq!(app.post(&path("zombie/response"), &f.keeper_b, json!({"response": "confirm"})).await.status, StatusCode::NOT_FOUND);
    app.post_ok(&path("zombie/response"), &f.keeper_a, json!({"response": "dispute", "reason": "系统账户改用新账户，业务仍在办理"})).await;
    assert_eq!(app.post(&path("zombie/decision"), &f.keeper_a, json!({"decision": "zombie"})).await.status, StatusCode::FORBIDDEN);
    let r = app.post(&path("zombie/decision"), &f.authority, json!({"decision": "zombie"})).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "overruling needs a reason"
    );
    let r = app.post_ok(&path("zombie/decision"), &f.authority, json!({"decision": "zombie", "reason": "核查半年无业务办理记录"})).await;
    assert_eq!(r.body["state"]["decision"], "zombie");
    let steps = app.get(&path("zombie/reviews"), &f.auditor).await.body;
    assert_eq!(steps.as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect::<Vec<_>>(), ["response", "decision"]);
    assert_eq!(steps[0]["evidence"][2]["criterion"], "idle", "the criteria as they stood are kept: {steps}");
    let tomorrow = (app.clock().today() + chrono::Days::new(30)).to_string();
    let r = app.call(Method::PUT, &path("cleanup"), Some(&f.keeper_a), Some(json!({"action": "integrate", "due_on": tomorrow}))).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("into_system_id")));
    let r = app.call(Method::PUT, &path("cleanup"), Some(&f.keeper_a), Some(json!({"action": "shut_down", "due_on": "2001-01-01"}))).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("due_on")));
    app.call_ok(
        Method::PUT,
        &path("cleanup"),
        Some(&f.keeper_a),
        Some(json!({"action": "shut_down", "due_on": tomorrow, "note": "数据迁移后关停"})),
    )
    .await;
    app.post_ok(&path("cleanup/progress"), &f.keeper_a, json!({"progress": "in_progress"})).await;
    assert_eq!(app.post(&path("cleanup/progress"), &f.keeper_a, json!({"progress": "in_progress"})).await.status, StatusCode::CONFLICT);
    let done = app.post_ok(&path("cleanup/progress"), &f.keeper_a, json!({"progress": "done"})).await.body;
    assert_eq!((done["document"]["status"].as_str(), done["version"].as_i64()), (Some("retired"), Some(2)), "{done}");
    assert_eq!(done["cleanup"]["progress"], "done");
    let v = app.get(&path("zombie"), &f.keeper_a).await.body;
    assert_eq!(
        (v["suspected"].as_bool(), v["criteria"].as_array().map(Vec::len)),
        (Some(false), Some(0)),
        "a retired system is not judged"
    );
    let actions: Vec<String> =
        sqlx::query("SELECT action FROM audit_events WHERE target_kind = 'info_system' AND target_id = $1 ORDER BY seq")
            .bind(sys.to_string())
            .fetch_all(app.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get(r, 0))
            .collect();
    assert_eq!(
        actions,
        [
            "system.create",
            "system.zombie_response",
            "system.zombie_decision",
            "system.cleanup_plan",
            "system.cleanup_progress",
            "system.cleanup_progress"
        ]
    );
    app.stop().await;
}

async fn funding_gates_block_then_open_as_facts_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let today = app.clock().today().to_string();
    let mut doc = system("工程建设项目审批管理系统");
    doc["shares_across_departments"] = json!(true);
    let sys = register_ok(&app, &f.keeper_a, f.a, doc.clone()).await;
    let project = |name: &str| {
        json!({"department_id": f.a, "filed_on": today, "application": "甲建信〔2026〕12号 立项申请书", "document": {
            "name": name, "construction_unit": "甲省住房和城乡建设厅", "total_investment": "3200000.00", "om_budget": "260000",
            "funding_channel": "budget", "content": "建设工程建设项目审批管理系统二期", "systems": [sys], "protection_filing": "32010099001-00001"
        }})
    };
    let r = app.post("/api/v1/projects", &f.keeper_a, project("工程审批二期")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let catalog_project = r.body["catalog_project_id"].as_i64().unwrap();
    let gates = |p: &Value| -> Vec<bool> { p["gates"].as_array().unwrap().iter().map(|g| g["open"].as_bool().unwrap()).collect() };
    assert_eq!(gates(&r.body), [false, false, false], "{:?}", r.body);
    let advance = |stage: &str, doc: &str| json!({"stage": stage, "entered_on": today, "document": doc});
    let path = format!("/api/v1/projects/{id}/advance");

    // 立项审批: closed without a compiled project catalog; opens once an entry is compiled into it.
    assert_eq!(app.post(&path, &f.keeper_a, advance("approved", "甲发改〔2026〕8号")).await.status, StatusCode::FORBIDDEN);
    let r = app.post(&path, &f.approver, advance("approved", "甲发改〔2026〕8号")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("gate_closed")), "{:?}", r.body);
    assert!(r.body["error"]["violations"][0].as_str().unwrap().contains("项目目录尚未编制"), "{:?}", r.body);
    let entry = json!({"classification_code": "211", "project_id": catalog_project, "document": {
        "name": "工程建设项目审批信息", "summary": "工程建设项目审批的办理信息", "format": "database",
        "items": [{"name": "项目代码", "data_type": "C", "length": 24, "required": true, "sharing_type": "unconditional"}],
        "sharing_type": "unconditional", "permitted_usage": "并联审批", "sharing_methods": ["online_query"], "update_cycle": "daily"}});
    let r = app.post("/api/v1/catalog/resources", &f.editor_a, entry).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_string();
    let p = app.get(&format!("/api/v1/projects/{id}"), &f.approver).await.body;
    assert_eq!(gates(&p), [true, false, false]);
    assert!(p["gates"][0]["reasons"][0].as_str().unwrap().contains(&code), "{p}");
    app.post_ok(&path, &f.approver, advance("approved", "甲发改〔2026〕8号")).await;
    app.post_ok(&path, &f.keeper_a, advance("construction", "施工合同 JS-2026-031")).await;

    // 项目验收: closed until the project catalog is merged into the platform's.
    let queue = app.get("/api/v1/projects?queue=acceptance", &f.approver).await.body;
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    let r = app.post(&path, &f.approver, advance("accepted", "验收意见")).await;
    assert_eq!(r.body["error"]["code"], "gate_closed", "{:?}", r.body);
    app.post_ok(&format!("/api/v1/catalog/projects/{catalog_project}/accept"), &f.authority, json!({})).await;
    app.post_ok(&path, &f.approver, advance("accepted", "甲发改验收〔2026〕3号")).await;

    // 运维经费: the system shares data across departments but is not connected: closed; it connects (its
    // account uses the platform), the gate opens.
    let r = app.post(&path, &f.finance, advance("operation", "甲财预〔2026〕40号")).await;
    assert_eq!(r.body["error"]["code"], "gate_closed", "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("未接入共享平台"), "{:?}", r.body);
    assert_eq!(app.get("/api/v1/projects?queue=funding", &f.finance).await.body["items"].as_array().unwrap().len(), 1);
    doc["accounts"] = json!(["sys.fresh"]);
    doc["connected"] = json!(true);
    app.call_ok(Method::PUT, &format!("/api/v1/systems/{sys}"), Some(&f.keeper_a), Some(doc)).await;
    let p = app.get(&format!("/api/v1/projects/{id}"), &f.finance).await.body;
    assert!(!gates(&p)[2], "declared, not yet a fact: {p}");
    let now = app.clock().now_ms();
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE username = 'sys.fresh'").bind(now).execute(app.db().pool()).await.unwrap();
    let p = app.get(&format!("/api/v1/projects/{id}"), &f.finance).await.body;
    assert_eq!(gates(&p), [true, true, true], "{p}");
    let done = app.post_ok(&path, &f.finance, advance("operation", "甲财预〔2026〕40号")).await.body;
    assert_eq!(done["stage"], "operation");
    assert_eq!(done["stages"].as_array().unwrap().len(), 5);
    assert_eq!(app.post(&path, &f.finance, advance("operation", "x")).await.status, StatusCode::CONFLICT);

    // An override passes a closed gate with its reason, kept with the stage and audited.
    let r = app.post("/api/v1/projects", &f.keeper_a, project("应急维修项目")).await;
    let second = r.body["id"].as_i64().unwrap();
    let mut body = advance("approved", "甲发改〔2026〕9号");
    body["override_reason"] = json!("抢险救灾应急项目，目录于验收前补编");
    let r = app.post(&format!("/api/v1/projects/{second}/advance"), &f.approver, body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stages"][1]["override_reason"], "抢险救灾应急项目，目录于验收前补编");
    let overrides: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = 'project.gate_override' AND target_id = $1")
        .bind(second.to_string())
        .fetch_one(app.db().pool())
        .await
        .map(|r| sqlx::Row::get(&r, 0))
        .unwrap();
    assert_eq!(overrides, 1);
    // Other departments neither see nor file.
    assert_eq!(app.get(&format!("/api/v1/projects/{id}"), &f.keeper_b).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/api/v1/projects", &f.keeper_b, project("越权项目")).await.status, StatusCode::FORBIDDEN);
    let mut bad = project("金额有误项目");
    bad["document"]["total_investment"] = json!("三百万");
    let r = app.post("/api/v1/projects", &f.keeper_a, bad).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("document.total_investment")));
    let _ = (&f.admin, f.b, &f.auditor);
    app.stop().await;
}

async fn post_workbook(app: &TestApp, token: &str, bytes: Vec<u8>) -> common::Resp {
    let r = app
        .http
        .post(format!("{}/api/v1/systems/import", app.base))
        .bearer_auth(token)
        .header("content-type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status();
    common::Resp { status, headers: r.headers().clone(), body: r.json().await.unwrap_or_default() }
}

async fn get_bytes(app: &TestApp, path: &str, token: &str) -> Vec<u8> {
    let r = app.http.get(format!("{}{path}", app.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert!(r.headers()["content-type"].to_str().unwrap().contains("spreadsheetml"));
    r.bytes().await.unwrap().to_vec()
}

async fn an_inventory_workbook_of_500_systems_imports_all_or_nothing_and_round_trips(backend: Backend) {
    use shutong_systems::spreadsheet::{self, SheetSystem};
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let mut codes = Vec::new();
    for i in 0..20u32 {
        let code = shutong::demo::demo_credit_code("320000", 401 + i);
        let r = app
            .post(
                "/api/v1/departments",
                &f.admin,
                json!({"name": format!("示范部门{i:02}"), "credit_code": code, "region_code": "320000", "level": "province"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        codes.push(code);
    }
    let doc = |n: usize| {
        let mut d = system(&format!("业务系统{n:03}"));
        d["ip_addresses"] = json!([format!("10.{}.{}.{}", n / 250, n % 250, 10)]);
        d["access_url"] = json!(format!("https://app{n}.example.gov.cn/"));
        d["host_instances"] = json!([format!("app-{n:03}-a"), format!("app-{n:03}-b")]);
        serde_json::from_value::<shutong_systems::SystemDocument>(d).unwrap()
    };
    let rows: Vec<SheetSystem> =
        (0..500).map(|n| SheetSystem { row: 0, id: None, department_code: codes[n % 20].clone(), document: doc(n) }).collect();
    let good = spreadsheet::write(&rows).unwrap();

    // The template has the columns and a drop-down list on each closed list.
    let template = get_bytes(&app, "/api/v1/systems/template", &f.keeper_a).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(template)).unwrap();
    let mut sheet = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(), &mut sheet).unwrap();
    assert_eq!(sheet.matches("<dataValidation ").count(), 8, "{sheet}");

    // A workbook with errors: each named by sheet, row and column; nothing imported.
    let mut bad_rows = rows.clone();
    bad_rows[6].document.ip_addresses = vec!["10.0.0.999".into()];
    bad_rows[41].department_code = "91320000MA1XXXXXXX".into();
    bad_rows[77].document.name = bad_rows[76].document.name.clone();
    bad_rows[77].department_code = bad_rows[76].department_code.clone();
    bad_rows[123].document.produces = vec!["211/999999".into()];
    let mut bytes = spreadsheet::write(&bad_rows).unwrap();
    // A money cell typed wrong, written by hand into the sheet's XML is awkward: use the parser's own path.
    let r = post_workbook(&app, &f.admin, std::mem::take(&mut bytes)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("import_rejected")), "{:?}", r.body);
    let issues: Vec<(String, i64, String)> = r.body["error"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sheet"].as_str().unwrap().to_string(), i["row"].as_i64().unwrap(), i["column"].as_str().unwrap().to_string()))
        .collect();
    let at = |row: i64, column: &str| (spreadsheet::SHEET.to_string(), row, column.to_string());
    for expected in [at(8, "IP地址"), at(43, "部门统一社会信用代码"), at(79, "系统名称"), at(125, "产生的信息资源")]
    {
        assert!(issues.contains(&expected), "{expected:?} in {issues:?}");
    }
    assert_eq!(issues.len(), 4, "{issues:?}");
    assert_eq!(app.get("/api/v1/systems?limit=1", &f.admin).await.body["items"].as_array().unwrap().len(), 0, "nothing imported");
    // Not a workbook at all.
    let r = post_workbook(&app, &f.admin, b"PK\x03\x04 not really".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    // A department's keeper imports only its own department's systems.
    let r = post_workbook(&app, &f.keeper_a, good.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The good workbook: 500 systems of 20 departments.
    let r = post_workbook(&app, &f.admin, good).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["systems"].as_i64(), r.body["created"].as_i64()), (Some(500), Some(500)), "{:?}", r.body);
    let sample = r.body["ids"][137].as_i64().unwrap();
    let v = app.get(&format!("/api/v1/systems/{sample}"), &f.admin).await.body;
    assert_eq!(v["document"]["name"], "业务系统137");
    assert_eq!(v["document"]["host_instances"], json!(["app-137-a", "app-137-b"]));
    assert_eq!(v["document"]["build_cost"], "1250000.00");

    // Exported, the workbook imports again unchanged: no new version anywhere.
    let exported = get_bytes(&app, "/api/v1/systems/export", &f.admin).await;
    let reread = spreadsheet::parse(&exported).unwrap();
    assert_eq!(reread.len(), 500);
    let r = post_workbook(&app, &f.admin, exported.clone()).await;
    assert_eq!((r.status, r.body["unchanged"].as_i64(), r.body["created"].as_i64()), (StatusCode::OK, Some(500), Some(0)), "{:?}", r.body);
    assert_eq!(app.get(&format!("/api/v1/systems/{sample}"), &f.admin).await.body["version"], 1);
    // An edited export updates what changed, and only that.
    let mut edited = reread.clone();
    edited[3].document.om_cost = shutong_systems::Money::parse("99.50").unwrap();
    let r = post_workbook(&app, &f.admin, spreadsheet::write(&edited).unwrap()).await;
    assert_eq!((r.body["updated"].as_i64(), r.body["unchanged"].as_i64()), (Some(1), Some(499)), "{:?}", r.body);
    let id = edited[3].id.unwrap();
    assert_eq!(app.get(&format!("/api/v1/systems/{id}"), &f.admin).await.body["document"]["om_cost"], "99.50");
    app.stop().await;
}

/// `pdftotext -layout` of a PDF (poppler-utils, installed by scripts/test), white space removed.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().chars().filter(|c| !c.is_whitespace()).collect()
}

fn sheet_rows(xlsx: &[u8], sheet: &str) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    let range = book.worksheet_range(sheet).unwrap_or_else(|e| panic!("sheet {sheet}: {e}"));
    range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

async fn the_demo_departments_report_and_three_lists_print_and_read_back(backend: Backend) {
    let app = common::spawn_demo_app(backend).await;
    let demo = shutong::demo::DEMO_PASSWORD;
    let keeper = app.login("dc.rs.editor", demo).await;
    let authority = app.login("sq.reviewer", demo).await;
    let other = app.login("ga.admin", demo).await;
    let me = app.get("/api/v1/me", &keeper).await.body;
    let rs = me["department"]["id"].as_i64().unwrap();
    assert_eq!(me["department"]["name"], shutong::demo::INVENTORY_DEPARTMENT);
    let base = format!("/api/v1/departments/{rs}/self-inspection");
    // The demo's report was submitted; its lists were generated from the demo's facts.
    let seeded = app.get(&base, &keeper).await.body;
    assert_eq!((seeded[0]["version"].as_i64(), seeded[0]["status"].as_str()), (Some(1), Some("submitted")), "{seeded}");
    assert_eq!(app.get(&base, &other).await.status, StatusCode::NOT_FOUND);

    let content = json!({"year": 2026, "overview": "本年度共登记信息系统七个，逐一核对了系统账户与信息资源。",
        "problems": "就业服务信息系统尚未接入共享平台。", "measures": "年内完成接入；旧系统按计划关停。",
        "needs": [{"resource": "企业登记注册信息", "provider": "东川市市场监督管理局", "purpose": "参保登记核验"}]});
    let r = app.post(&base, &keeper, content.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!((r.body["version"].as_i64(), r.body["status"].as_str()), (Some(2), Some("draft")));
    let lists = &r.body["lists"];
    let names =
        |list: &str| -> Vec<String> { lists[list].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_string()).collect() };
    for name in ["人事科工资管理系统", "劳动仲裁案件管理系统（旧版）", "职称评审申报系统"] {
        assert!(names("cleanup").iter().any(|n| n == name), "{name}: {lists}");
    }
    assert!(!names("cleanup").iter().any(|n| n == "农民工工资支付监控系统"), "a retired system is done with: {lists}");
    assert_eq!(names("connect"), ["就业服务信息系统"], "{lists}");
    let needs: Vec<&str> = lists["needs"].as_array().unwrap().iter().map(|n| n["resource"].as_str().unwrap()).collect();
    assert!(needs.contains(&"出生医学证明信息") && needs.contains(&"企业登记注册信息"), "from requests and declared: {needs:?}");

    // The report as PDF, read back.
    let pdf = app.http.get(format!("{}{base}/2/report.pdf", app.base)).bearer_auth(&keeper).send().await.unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let text = pdf_text(&pdf.bytes().await.unwrap());
    for expected in [
        "东川市人力资源和社会保障局2026年度政务信息系统整合共享自查报告",
        "一、基本情况",
        "本年度共登记信息系统七个",
        "附件1：整合清理清单",
        "人事科工资管理系统",
        "附件2：接入清单",
        "就业服务信息系统",
        "附件3：需求清单",
        "企业登记注册信息",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // The lists as XLSX, read back with calamine.
    let xlsx = get_bytes(&app, &format!("{base}/2/lists.xlsx"), &keeper).await;
    let cleanup = sheet_rows(&xlsx, "整合清理清单");
    assert_eq!(cleanup[0][1], "系统名称");
    assert_eq!(cleanup.len() - 1, lists["cleanup"].as_array().unwrap().len());
    assert!(cleanup.iter().any(|r| r[1] == "劳动仲裁案件管理系统（旧版）" && r[3] == "关停下线" && r[5] == "实施中"), "{cleanup:?}");
    assert_eq!(sheet_rows(&xlsx, "接入清单")[1][1], "就业服务信息系统");
    assert!(sheet_rows(&xlsx, "需求清单").iter().any(|r| r[1] == "出生医学证明信息" && r[4].starts_with("共享申请")));

    // Submit, return with a note, versions kept.
    app.post_ok(&format!("{base}/2/submit"), &keeper, json!({})).await;
    assert_eq!(app.post(&format!("{base}/2/submit"), &keeper, json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(app.post(&format!("{base}/2/review"), &keeper, json!({"decision": "accept"})).await.status, StatusCode::FORBIDDEN);
    let r = app.post(&format!("{base}/2/review"), &authority, json!({"decision": "return"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")));
    let r = app.post_ok(&format!("{base}/2/review"), &authority, json!({"decision": "return", "note": "请补充接入时间表"})).await;
    assert_eq!(r.body["status"], "returned");
    assert_eq!(app.get(&base, &authority).await.body.as_array().unwrap().len(), 2);

    // The asset register, as JSON and as a workbook.
    let register = app.get(&format!("/api/v1/departments/{rs}/asset-register"), &keeper).await.body;
    assert!(register["totals"]["systems"].as_i64().unwrap() >= 6, "{register}");
    let xlsx = get_bytes(&app, &format!("/api/v1/departments/{rs}/asset-register/export"), &keeper).await;
    let rows = sheet_rows(&xlsx, "数据资产登记");
    let last = rows.last().unwrap();
    assert_eq!(last[0], "合计");
    assert_eq!(last[6], register["totals"]["records"].as_i64().unwrap().to_string());
    // A pooled dataset's register line: its records and the bytes its table takes in the pool.
    let ga = app.get("/api/v1/me", &other).await.body["department"]["id"].as_i64().unwrap();
    let register = app.get(&format!("/api/v1/departments/{ga}/asset-register"), &other).await.body;
    let population = register["unattributed"].as_array().unwrap().iter().find(|r| r["name"] == "人口基本信息").unwrap();
    assert!(population["records"].as_i64().unwrap() > 0 && population["storage_bytes"].as_i64().unwrap() > 0, "{population}");
    assert!(register["totals"]["storage_bytes"].as_i64().unwrap() >= population["storage_bytes"].as_i64().unwrap());
    app.stop().await;
}
