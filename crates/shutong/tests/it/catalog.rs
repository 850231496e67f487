//! The resource catalog through the API, on SQLite and PostgreSQL: lifecycle, rules, rights, deadlines.
//! The workflows go through the typed client (`shutong-client`); the tests of who may act (a table of
//! statuses), of the rules' violations and of the files imported send raw requests.

use crate::common;

use crate::common::{Backend, PASSWORD, TestApp, spawn_app};
use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutong_client::types::catalog::{
    CreateChangeEventRequest, CreateProjectRequest, CreateResourceRequest, ResourceDocument, ReviewRequest, SharingType, VersionStatus,
};
use shutong_client::{Client, ClientError};

on_both_backends!(
    submit_return_revise_publish_keeps_old_versions,
    every_rule_is_enforced_on_submit,
    only_the_provider_and_the_authority_change_entries,
    codes_are_generated_unique_and_never_reused,
    change_events_have_a_15_working_day_deadline,
    change_event_deadlines_follow_the_business_clock,
    classification_and_statistics,
    search_in_chinese_with_facets_and_cursor,
    import_and_export_round_trip_and_refuse_bad_files,
    project_catalogs_merge_at_acceptance,
    outer_zone_refuses_classified_resources,
);

/// Departments A and B (with an editor each), and a reviewer of the sharing authority.
struct Fixture {
    admin: String,
    a: i64,
    editor_a: String,
    editor_b: String,
    reviewer: String,
    plain_reviewer_a: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin_token().await;
    let a = app.create_department(&admin, "甲省公安厅", 201, "320000").await;
    let b = app.create_department(&admin, "乙市民政局", 202, "320100").await;
    app.create_user(&admin, "editor.a", a, &["catalog_editor"]).await;
    app.create_user(&admin, "editor.b", b, &["catalog_editor"]).await;
    app.create_user(&admin, "reviewer.a", a, &["reviewer"]).await;
    // The bootstrap department (ID 1) is the sharing authority: its reviewers review the catalog.
    app.create_user(&admin, "auth.reviewer", 1, &["reviewer"]).await;
    Fixture {
        admin,
        a,
        editor_a: app.login("editor.a", PASSWORD).await,
        editor_b: app.login("editor.b", PASSWORD).await,
        reviewer: app.login("auth.reviewer", PASSWORD).await,
        plain_reviewer_a: app.login("reviewer.a", PASSWORD).await,
    }
}

fn item(name: &str, sharing: &str) -> Value {
    json!({"name": name, "data_type": "C", "length": 50, "required": true, "sharing_type": sharing})
}

fn population_doc() -> Value {
    json!({
        "name": "人口基本信息",
        "summary": "全省户籍人口的基本信息，包括姓名、公民身份号码、性别、出生日期、户籍地址。",
        "format": "database",
        "items": [
            {"name": "公民身份号码", "data_type": "C", "length": 18, "required": true, "is_key": true, "mask": "id_number",
             "sharing_type": "unconditional", "standard": "GB 11643-1999", "is_base_item": true},
            {"name": "姓名", "data_type": "C", "length": 50, "required": true, "mask": "name", "sharing_type": "unconditional", "is_base_item": true},
            {"name": "户籍地址", "data_type": "C", "length": 200, "sharing_type": "conditional", "sharing_condition": "用于社会保障业务"}
        ],
        "sharing_type": "conditional",
        "sharing_condition": "户籍地址仅向社会保障和民政部门提供",
        "permitted_usage": "仅用于行政审批中的身份核验",
        "sharing_methods": ["online_query", "exchange_node"],
        "open_to_public": false,
        "update_cycle": "daily",
        "tags": ["基础", "人口"]
    })
}

fn path_of(code: &str) -> String {
    format!("/api/v1/catalog/resources/{code}")
}

async fn create(app: &TestApp, token: &str, class: &str, doc: Value) -> String {
    let r = app.post("/api/v1/catalog/resources", token, json!({"classification_code": class, "document": doc})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["code"].as_str().unwrap().to_string()
}

/// The population entry as a typed document (the workflow tests speak the API through `shutong-client`).
fn typed_population_doc() -> ResourceDocument {
    serde_json::from_value(population_doc()).expect("the population entry is a valid document")
}

/// A user of the fixture as a typed client.
async fn client_of(app: &TestApp, username: &str) -> shutong_client::Client {
    shutong_client::Client::new(&app.base).unwrap().login(username, PASSWORD).await.unwrap()
}

async fn submit_return_revise_publish_keeps_old_versions(backend: Backend) {
    let app = spawn_app(backend).await;
    let _f = fixture(&app).await;
    let (editor_a, editor_b, reviewer) =
        (client_of(&app, "editor.a").await, client_of(&app, "editor.b").await, client_of(&app, "auth.reviewer").await);
    let create = CreateResourceRequest {
        classification_code: "101".into(),
        provider_department_id: None,
        document: typed_population_doc(),
        project_id: None,
    };
    let code = editor_a.create_resource(&create).await.unwrap().code;
    assert!(code.starts_with("101/"), "{code}");

    assert_eq!(editor_a.submit_resource(&code).await.unwrap().status, VersionStatus::Submitted);
    // A return needs its reason.
    let err = reviewer.review_resource(&code, &ReviewRequest { decision: "return".into(), reason: None }).await.unwrap_err();
    assert_eq!((err.status(), err.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("reason")), "{err}");
    let returned = ReviewRequest { decision: "return".into(), reason: Some("摘要需写明数据范围".into()) };
    let r = reviewer.review_resource(&code, &returned).await.unwrap();
    assert_eq!((r.status, r.return_reason.as_deref()), (VersionStatus::Returned, Some("摘要需写明数据范围")));
    // Approving a returned version is refused: it must be resubmitted.
    let approve = ReviewRequest { decision: "approve".into(), reason: None };
    assert_eq!(reviewer.review_resource(&code, &approve).await.unwrap_err().status(), Some(StatusCode::CONFLICT));

    let mut doc = typed_population_doc();
    doc.summary = "全省户籍人口（约 8000 万人）的基本信息。".into();
    assert_eq!(editor_a.update_resource(&code, &doc).await.unwrap().status, VersionStatus::Draft);
    editor_a.submit_resource(&code).await.unwrap();
    let r = reviewer.review_resource(&code, &approve).await.unwrap();
    assert_eq!((r.status, r.published_version), (VersionStatus::Published, Some(1)));
    assert!(r.published_at_ms.is_some());
    // A published version cannot be edited in place.
    assert_eq!(editor_a.update_resource(&code, &typed_population_doc()).await.unwrap_err().status(), Some(StatusCode::CONFLICT));

    // Revise: version 2 as a draft; version 1 stays in force for everyone else meanwhile.
    let r = editor_a.revise_resource(&code).await.unwrap();
    assert_eq!((r.version, r.status), (2, VersionStatus::Draft));
    let mut doc2 = typed_population_doc();
    doc2.summary = "第二版：增加户籍地址。".into();
    editor_a.update_resource(&code, &doc2).await.unwrap();
    let seen_by_b = editor_b.get_resource(&code).await.unwrap();
    assert_eq!((seen_by_b.version, seen_by_b.status), (1, VersionStatus::Published));
    let hidden = editor_b.get_resource_version(&code, 2).await.unwrap_err();
    assert_eq!(hidden.status(), Some(StatusCode::NOT_FOUND), "drafts are the provider's");
    editor_a.submit_resource(&code).await.unwrap();
    assert_eq!(reviewer.review_resource(&code, &approve).await.unwrap().version, 2);

    let v1 = editor_b.get_resource_version(&code, 1).await.unwrap();
    assert_eq!((v1.status, v1.document.summary.as_str()), (VersionStatus::Superseded, "全省户籍人口（约 8000 万人）的基本信息。"));
    assert_eq!(editor_b.get_resource(&code).await.unwrap().document.summary, "第二版：增加户籍地址。");
    let listed: Vec<(i64, VersionStatus)> = editor_b.list_versions(&code).await.unwrap().iter().map(|v| (v.version, v.status)).collect();
    assert_eq!(listed, [(2, VersionStatus::Published), (1, VersionStatus::Superseded)]);

    // Every transition is in the history, with who and why.
    let h = editor_b.resource_history(&code).await.unwrap();
    let actions: Vec<&str> = h.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "catalog.create",
            "catalog.submit",
            "catalog.return",
            "catalog.update_draft",
            "catalog.submit",
            "catalog.publish",
            "catalog.revise",
            "catalog.update_draft",
            "catalog.submit",
            "catalog.publish"
        ]
    );
    assert_eq!(h.events[2].detail["reason"], "摘要需写明数据范围");
    assert_eq!(h.events[2].actor, "auth.reviewer");

    // Withdraw, with a reason; it stays readable.
    assert_eq!(editor_a.withdraw_resource(&code, "").await.unwrap_err().status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(editor_a.withdraw_resource(&code, "职能划转").await.unwrap().status, VersionStatus::Withdrawn);
    assert_eq!(editor_b.get_resource(&code).await.unwrap().resource_status, VersionStatus::Withdrawn);
    app.stop().await;
}

async fn every_rule_is_enforced_on_submit(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        // R-CAT-1: conditional without condition or usage; not-shared without legal basis.
        (
            "201",
            "R-CAT-1",
            json!({"sharing_type": "conditional", "items": [item("a", "conditional")], "sharing_condition": null, "permitted_usage": null}),
            "R-CAT-1",
            "sharing_condition",
        ),
        (
            "201",
            "R-CAT-1",
            json!({"sharing_type": "not_shared", "items": [item("a", "not_shared")], "sharing_methods": []}),
            "R-CAT-1",
            "legal_basis",
        ),
        // R-CAT-2: a base item of a base resource that is not unconditional.
        (
            "101",
            "R-CAT-2",
            json!({"items": [{"name": "公民身份号码", "data_type": "C", "length": 18, "sharing_type": "conditional", "is_base_item": true}]}),
            "R-CAT-2",
            "items[0].sharing_type",
        ),
        // R-CAT-3: a resource called unconditional with a not-shared item.
        (
            "201",
            "R-CAT-3",
            json!({"sharing_type": "unconditional", "items": [item("a", "unconditional"), item("b", "not_shared")]}),
            "R-CAT-3",
            "sharing_type",
        ),
        // R-CAT-4: not shared yet open.
        (
            "201",
            "R-CAT-4",
            json!({"sharing_type": "not_shared", "items": [item("a", "not_shared")], "legal_basis": "《保守国家秘密法》", "open_to_public": true}),
            "R-CAT-4",
            "open_to_public",
        ),
    ];
    for (class, label, patch, rule, field) in cases {
        let mut doc = json!({
            "name": format!("规则测试 {label}"), "summary": "测试", "format": "database",
            "items": [item("a", "unconditional")], "sharing_type": "unconditional",
            "sharing_condition": "条件", "permitted_usage": "用途",
            "sharing_methods": ["online_query"], "update_cycle": "monthly"
        });
        for (k, v) in patch.as_object().unwrap() {
            doc[k] = v.clone();
        }
        let code = create(&app, &f.editor_a, class, doc).await;
        let r = app.post(&format!("{}/submit", path_of(&code)), &f.editor_a, json!({})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "rule_violation");
        let violations = r.body["error"]["violations"].as_array().unwrap();
        assert!(violations.iter().any(|v| v["rule"] == rule && v["field"] == field), "{label}: {violations:?}");
        // The entry stays a draft.
        assert_eq!(app.get(&path_of(&code), &f.editor_a).await.body["status"], "draft");
    }
    // Field errors on a draft name the field; unknown value-list entries are refused by the parser.
    let r = app.post("/api/v1/catalog/resources", &f.editor_a, json!({"classification_code": "201", "document": {"name": "x", "summary": "", "format": "纸质", "items": [], "sharing_type": "unconditional", "update_cycle": "daily"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "document.format");
    let mut doc = population_doc();
    doc["name"] = json!("  ");
    let r = app.post("/api/v1/catalog/resources", &f.editor_a, json!({"classification_code": "101", "document": doc})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "name");
    // Chinese value names are accepted as well as codes.
    let mut doc = population_doc();
    doc["format"] = json!("数据库");
    doc["update_cycle"] = json!("每日");
    doc["sharing_type"] = json!("有条件共享");
    let code = create(&app, &f.editor_a, "101", doc).await;
    assert_eq!(app.post(&format!("{}/submit", path_of(&code)), &f.editor_a, json!({})).await.status, StatusCode::OK);
    let _ = f.admin;
    app.stop().await;
}

async fn only_the_provider_and_the_authority_change_entries(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let code = create(&app, &f.editor_a, "101", population_doc()).await;
    let p = path_of(&code);
    // Another department neither sees the draft nor changes it.
    assert_eq!(app.get(&p, &f.editor_b).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::PUT, &p, Some(&f.editor_b), Some(population_doc())).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&format!("{p}/submit"), &f.editor_b, json!({})).await.status, StatusCode::NOT_FOUND);
    // Nor compiles in A's name.
    let r = app
        .post(
            "/api/v1/catalog/resources",
            &f.editor_b,
            json!({"classification_code": "101", "provider_department_id": f.a, "document": population_doc()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A's own reviewer is not the sharing authority; neither is A's editor.
    app.post_ok(&format!("{p}/submit"), &f.editor_a, json!({})).await;
    assert_eq!(app.post(&format!("{p}/review"), &f.plain_reviewer_a, json!({"decision": "approve"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("{p}/review"), &f.editor_a, json!({"decision": "approve"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("{p}/review"), &f.reviewer, json!({"decision": "approve"})).await.status, StatusCode::OK);
    // Published: B sees it but still cannot change it (403 now, as it is visible).
    assert_eq!(app.get(&p, &f.editor_b).await.status, StatusCode::OK);
    assert_eq!(app.post(&format!("{p}/revise"), &f.editor_b, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("{p}/withdraw"), &f.editor_b, json!({"reason": "x"})).await.status, StatusCode::FORBIDDEN);
    // The authority may revise anyone's entry.
    assert_eq!(app.post(&format!("{p}/revise"), &f.admin, json!({})).await.status, StatusCode::OK);
    // Lists: B sees only published resources of others.
    let mine = create(&app, &f.editor_a, "101", population_doc()).await;
    let listed = app.get("/api/v1/catalog/resources", &f.editor_b).await;
    let codes: Vec<&str> = listed.body["resources"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&code.as_str()) && !codes.contains(&mine.as_str()), "{codes:?}");
    let queue = app.get("/api/v1/catalog/resources?awaiting_review=true", &f.reviewer).await;
    assert_eq!(queue.body["resources"].as_array().unwrap().len(), 0);
    app.stop().await;
}

async fn codes_are_generated_unique_and_never_reused(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let c1 = create(&app, &f.editor_a, "202", population_doc()).await;
    let c2 = create(&app, &f.editor_a, "202", population_doc()).await;
    let c3 = create(&app, &f.editor_a, "101", population_doc()).await;
    assert_eq!((c1.as_str(), c2.as_str(), c3.as_str()), ("202/000001", "202/000002", "101/000001"));
    for (class, field) in [("999", "classification_code"), ("1", "classification_code"), ("208999", "classification_code")] {
        let r =
            app.post("/api/v1/catalog/resources", &f.editor_a, json!({"classification_code": class, "document": population_doc()})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{class}");
        assert_eq!(r.body["error"]["field"], field);
    }
    // A failed create does not consume a code.
    assert_eq!(create(&app, &f.editor_a, "202", population_doc()).await, "202/000003");
    assert_eq!(app.get("/api/v1/catalog/resources/202/00001x", &f.editor_a).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/catalog/resources/202/999999", &f.editor_a).await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// A change event of department `department` (目录更新事件, R-CAT-7).
fn change_event(department: i64, kind: &str, description: &str, occurred_on: &str) -> CreateChangeEventRequest {
    CreateChangeEventRequest {
        department_id: department,
        kind: kind.into(),
        description: description.into(),
        occurred_on: occurred_on.into(),
    }
}

/// Creates, submits and approves an entry through the typed clients; returns its code.
async fn publish_typed(editor: &Client, reviewer: &Client, class: &str, document: ResourceDocument) -> String {
    let create = CreateResourceRequest { classification_code: class.into(), provider_department_id: None, document, project_id: None };
    let code = editor.create_resource(&create).await.unwrap().code;
    editor.submit_resource(&code).await.unwrap();
    let approved = reviewer.review_resource(&code, &ReviewRequest { decision: "approve".into(), reason: None }).await.unwrap();
    assert_eq!(approved.status, VersionStatus::Published);
    code
}

async fn change_events_have_a_15_working_day_deadline(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let (editor_a, editor_b, reviewer) =
        (client_of(&app, "editor.a").await, client_of(&app, "editor.b").await, client_of(&app, "auth.reviewer").await);
    let event = editor_a.record_change_event(&change_event(f.a, "law_revised", "《居民身份证法》修订", "2026-09-28")).await.unwrap();
    // 15 working days after 2026-09-28 across 国庆/中秋 (10-10 a working Saturday): 2026-10-23.
    assert_eq!(event.due_on, NaiveDate::from_ymd_opt(2026, 10, 23).unwrap());
    assert!(event.overdue);
    assert_eq!((event.department_name.as_str(), event.resolution.as_deref()), ("甲省公安厅", None));
    let overdue = reviewer.change_events(None, true).await.unwrap();
    assert_eq!(overdue.iter().map(|e| e.id).collect::<Vec<_>>(), [event.id]);
    assert_eq!(reviewer.catalog_stats().await.unwrap().overdue_change_events, 1);
    // Another department cannot record events for A; bad input names the field.
    let e = editor_b.record_change_event(&change_event(f.a, "law_revised", "x", "2026-09-28")).await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::FORBIDDEN), "{e}");
    for (kind, occurred_on, field) in
        [("weather", "2026-09-28", "kind"), ("law_revised", "2026-13-01", "occurred_on"), ("law_revised", "2099-01-01", "occurred_on")]
    {
        let e = editor_a.record_change_event(&change_event(f.a, kind, "x", occurred_on)).await.unwrap_err();
        assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some(field)), "{kind} {occurred_on}: {e}");
    }
    // Publishing an update of A's catalog answers the event.
    let code = publish_typed(&editor_a, &reviewer, "101", typed_population_doc()).await;
    assert!(reviewer.change_events(None, true).await.unwrap().is_empty());
    assert_eq!(reviewer.catalog_stats().await.unwrap().overdue_change_events, 0);
    let all = reviewer.change_events(Some(f.a), false).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].resolution.as_deref().is_some_and(|r| r.contains(&code)), "{:?}", all[0]);
    assert_eq!(all[0].resolved_by.as_deref(), Some("auth.reviewer"));
    app.stop().await;
}

/// R-CAT-7's deadline reads the business clock, as every other deadline does: an event is not yet overdue
/// on the 15th working day, is overdue the next one across the holidays, and cannot have occurred after
/// the business clock's today.
async fn change_event_deadlines_follow_the_business_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let (editor_a, reviewer) = (client_of(&app, "editor.a").await, client_of(&app, "auth.reviewer").await);
    app.clock().set_date(NaiveDate::from_ymd_opt(2026, 10, 12).unwrap());
    let event = |occurred_on: &str| change_event(f.a, "functions_changed", "机构改革，职能调整", occurred_on);
    let e = editor_a.record_change_event(&event("2026-10-13")).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("occurred_on")), "{e}");
    let recorded = editor_a.record_change_event(&event("2026-09-28")).await.unwrap();
    assert_eq!((recorded.due_on, recorded.overdue), (NaiveDate::from_ymd_opt(2026, 10, 23).unwrap(), false));
    let overdue = || async {
        let listed = reviewer.change_events(None, true).await.unwrap().len();
        (listed, reviewer.catalog_stats().await.unwrap().overdue_change_events)
    };
    assert_eq!(overdue().await, (0, 0));
    app.clock().set_date(NaiveDate::from_ymd_opt(2026, 10, 23).unwrap());
    assert_eq!(overdue().await, (0, 0), "the due day itself is not late");
    app.clock().set_date(NaiveDate::from_ymd_opt(2026, 10, 24).unwrap());
    assert_eq!(overdue().await, (1, 1));
    app.stop().await;
}

async fn classification_and_statistics(backend: Backend) {
    let app = spawn_app(backend).await;
    let _f = fixture(&app).await;
    let (editor_a, reviewer) = (client_of(&app, "editor.a").await, client_of(&app, "auth.reviewer").await);
    let anyone = Client::new(&app.base).unwrap();
    let tree = anyone.classifications().await.unwrap();
    let names: Vec<&str> = tree.iter().map(|c| c.name.as_str()).collect();
    for n in ["基础信息资源", "主题信息资源", "部门信息资源", "人口", "法人单位", "宏观经济", "医疗健康", "政务服务"]
    {
        assert!(names.contains(&n), "{n} missing");
    }
    let e = editor_a.create_classification("301", "甲省公安厅").await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::FORBIDDEN));
    let node = reviewer.create_classification("301", "甲省公安厅").await.unwrap();
    assert_eq!((node.level, node.parent_code.as_deref()), (2, Some("3")));
    let node = reviewer.create_classification("301001", "治安管理").await.unwrap();
    assert_eq!((node.level, node.parent_code.as_deref()), (3, Some("301")));
    for code in ["4", "30", "999", "302001"] {
        let e = reviewer.create_classification(code, "x").await.unwrap_err();
        assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("code")), "{code}: {e}");
    }
    assert_eq!(anyone.classifications().await.unwrap().len(), tree.len() + 2);
    // Two published (one open), one draft.
    let mut open = typed_population_doc();
    open.items = vec![serde_json::from_value(item("a", "unconditional")).unwrap()];
    open.sharing_type = SharingType::Unconditional;
    open.open_to_public = true;
    publish_typed(&editor_a, &reviewer, "301001", open).await;
    publish_typed(&editor_a, &reviewer, "101", typed_population_doc()).await;
    let draft = CreateResourceRequest {
        classification_code: "201".into(),
        provider_department_id: None,
        document: typed_population_doc(),
        project_id: None,
    };
    editor_a.create_resource(&draft).await.unwrap();
    let s = anyone.catalog_stats().await.unwrap();
    assert_eq!((s.published, s.drafts_and_pending), (2, 1));
    assert_eq!((s.shareable_share, s.open_share), (1.0, 0.5));
    let class = |code: &str| s.by_class.iter().find(|c| c.key == code).unwrap_or_else(|| panic!("class {code}: {:?}", s.by_class)).count;
    assert_eq!((class("1"), class("101"), class("3"), class("301"), class("2")), (1, 1, 1, 1, 0));
    assert_eq!(s.by_department[0].label, "甲省公安厅");
    app.stop().await;
}

async fn publish(app: &TestApp, f: &Fixture, class: &str, doc: Value) -> String {
    let code = create(app, &f.editor_a, class, doc).await;
    let r = app.post(&format!("{}/submit", path_of(&code)), &f.editor_a, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post(&format!("{}/review", path_of(&code)), &f.reviewer, json!({"decision": "approve"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    code
}

fn named(name: &str, summary: &str, items: &[&str], unconditional: bool) -> Value {
    let t = if unconditional { "unconditional" } else { "conditional" };
    json!({
        "name": name, "summary": summary, "format": "database",
        "items": items.iter().map(|i| item(i, t)).collect::<Vec<_>>(),
        "sharing_type": t, "sharing_condition": "按需", "permitted_usage": "行政审批",
        "sharing_methods": ["online_query"], "update_cycle": "monthly"
    })
}

async fn search_in_chinese_with_facets_and_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let population = publish(&app, &f, "101", named("人口基本信息", "全省户籍人口基本信息", &["公民身份号码", "姓名"], true)).await;
    let deaths = publish(&app, &f, "101", named("死亡人口登记信息", "死亡登记", &["公民身份号码", "死亡日期"], false)).await;
    let companies = publish(&app, &f, "102", named("法人单位登记信息", "企业法人登记", &["统一社会信用代码", "法定代表人"], true)).await;
    let _draft = create(&app, &f.editor_a, "101", named("流动人口信息", "草稿不应被检索到", &["姓名"], true)).await;
    let search = |q: &str| {
        let path = format!("/api/v1/catalog/search?{q}");
        let app = &app;
        async move { app.call(Method::GET, &path, None, None).await }
    };

    let r = search("q=%E4%BA%BA%E5%8F%A3").await; // 人口
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let codes: Vec<&str> = r.body["hits"].as_array().unwrap().iter().map(|h| h["code"].as_str().unwrap()).collect();
    assert_eq!(r.body["total"], 2, "{codes:?}");
    assert!(codes.contains(&population.as_str()) && codes.contains(&deaths.as_str()));
    assert_eq!(r.body["hits"][0]["code"], population, "the name match ranks first");
    // Facets count over all hits, with names.
    let sharing = r.body["facets"]["sharing"].as_array().unwrap();
    assert!(sharing.iter().any(|x| x["value"] == "unconditional" && x["count"] == 1 && x["label"] == "无条件共享"), "{sharing:?}");
    let classes = r.body["facets"]["class"].as_array().unwrap();
    assert!(classes.iter().any(|x| x["value"] == "101" && x["count"] == 2 && x["label"] == "101 人口"), "{classes:?}");
    // Item names are searched too; filters narrow.
    let r = search("q=%E6%B3%95%E5%AE%9A%E4%BB%A3%E8%A1%A8%E4%BA%BA").await; // 法定代表人
    assert_eq!(r.body["hits"][0]["code"], companies);
    let r = search("q=%E4%BA%BA%E5%8F%A3&sharing=conditional").await;
    assert_eq!((r.body["total"].as_u64(), r.body["hits"][0]["code"].as_str()), (Some(1), Some(deaths.as_str())));
    let r = search("class=1").await;
    assert_eq!(r.body["total"], 3);
    let r = search("class=102").await;
    assert_eq!(r.body["total"], 1);
    // Cursor pagination covers every hit once.
    let p1 = search("limit=2").await;
    assert_eq!(p1.body["hits"].as_array().unwrap().len(), 2);
    let cursor = p1.body["next_cursor"].as_str().unwrap().to_string();
    let p2 = search(&format!("limit=2&cursor={cursor}")).await;
    assert_eq!(p2.body["hits"].as_array().unwrap().len(), 1);
    assert!(p2.body["next_cursor"].is_null());
    // Bad input names the parameter; query syntax never errors.
    // An unknown facet value is refused naming its parameter (the OpenAPI document lists the values).
    assert_eq!(search("sharing=maybe").await.body["error"]["field"], "sharing");
    assert_eq!(search("cycle=sometimes").await.body["error"]["field"], "cycle");
    assert_eq!(search("cursor=abc").await.body["error"]["field"], "cursor");
    assert_eq!(search("limit=0").await.body["error"]["field"], "limit");
    for bad in ["class=%E4%BA%BA%E5%8F%A3", "class=4", "class=10", "region=a%5Cb", "provider=a/b"] {
        let r = search(bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {:?}", r.body);
    }
    assert_eq!(search("q=%22%28%5B%3A%7E").await.status, StatusCode::OK);
    // Withdrawn resources leave the index at once.
    app.post_ok(&format!("{}/withdraw", path_of(&deaths)), &f.editor_a, json!({"reason": "停止采集"})).await;
    assert_eq!(search("q=%E4%BA%BA%E5%8F%A3").await.body["total"], 1);
    app.stop().await;
}

async fn post_file(app: &TestApp, token: &str, query: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let r = app.http.post(format!("{}/api/v1/catalog/import?{query}", app.base)).bearer_auth(token).body(bytes).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn import_and_export_round_trip_and_refuse_bad_files(backend: Backend) {
    use shutong_catalog::transfer::{self, CatalogEntry, ImportLimits, TransferFormat};
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let a_code = shutong::demo::demo_credit_code("320000", 201);
    let doc = |v: Value| serde_json::from_value::<shutong_catalog::ResourceDocument>(v).unwrap();
    let entries = vec![
        CatalogEntry { code: None, classification_code: "101".into(), provider_code: String::new(), document: doc(population_doc()) },
        CatalogEntry {
            code: None,
            classification_code: "202".into(),
            provider_code: a_code.clone(),
            document: doc(named("社会救助信息", "救助对象", &["公民身份号码", "救助金额"], false)),
        },
    ];
    let xlsx = transfer::write(TransferFormat::Xlsx, &entries).unwrap();
    let count = || async { shutong_catalog::stats(app.db(), app.clock()).await.unwrap().drafts_and_pending };
    let before = count().await;

    // Another department cannot import in A's name.
    let (s, b) = post_file(&app, &f.editor_b, &format!("department={a_code}"), xlsx.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["violations"].as_array().unwrap().iter().any(|v| v["column"] == "提供方代码"), "{b}");

    let (s, b) = post_file(&app, &f.editor_a, &format!("department={a_code}"), xlsx.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["resources"].as_u64(), b["items"].as_u64(), b["committed"].as_bool()), (Some(2), Some(5), Some(true)));
    assert_eq!(count().await, before + 2);

    // Export in each format: the same documents come back.
    for format in ["xlsx", "csv", "json"] {
        let r = app
            .http
            .get(format!("{}/api/v1/catalog/export?format={format}&provider_department_id={}", app.base, f.a))
            .bearer_auth(&f.editor_a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.bytes().await.unwrap();
        let back = transfer::parse(TransferFormat::parse(format).unwrap(), &bytes, &ImportLimits::default()).unwrap();
        let mut names: Vec<&str> = back.iter().map(|e| e.document.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["人口基本信息", "社会救助信息"], "{format}");
        let pop = back.iter().find(|e| e.document.name == "人口基本信息").unwrap();
        assert_eq!(pop.document, entries[0].document, "{format}");
        assert!(pop.code.as_deref().unwrap().starts_with("101/"));
    }

    // Bad files: a report naming sheet, row, column, reason; nothing imported.
    let mut broken = entries.clone();
    broken[1].document.sharing_type = shutong_catalog::SharingType::Unconditional; // R-CAT-3: its items are conditional
    broken[0].classification_code = "199".into();
    let (s, b) =
        post_file(&app, &f.editor_a, &format!("department={a_code}"), transfer::write(TransferFormat::Xlsx, &broken).unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let v = b["error"]["violations"].as_array().unwrap();
    assert!(
        v.iter().any(|i| i["sheet"] == "信息资源"
            && i["row"] == 3
            && i["column"] == "共享类型"
            && i["reason"].as_str().unwrap().starts_with("R-CAT-3")),
        "{v:?}"
    );
    let mut unknown_class = entries.clone();
    unknown_class[0].classification_code = "199".into();
    let (s, b) =
        post_file(&app, &f.editor_a, &format!("department={a_code}"), transfer::write(TransferFormat::Xlsx, &unknown_class).unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["violations"].as_array().unwrap().iter().any(|i| i["column"] == "信息资源分类" && i["row"] == 2), "{b}");
    // Missing column, wrong type, duplicate key (CSV).
    let csv = String::from_utf8(transfer::write(TransferFormat::Csv, &entries).unwrap()).unwrap();
    let no_sharing = csv.replacen(",共享类型,", ",共享类别,", 1);
    let (s, b) = post_file(&app, &f.editor_a, "format=csv", no_sharing.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["violations"][0]["reason"].as_str().unwrap().contains("missing column '共享类型'"), "{b}");
    let bad_length = csv.replacen(",C,18,", ",C,十八,", 1);
    let (s, b) = post_file(&app, &f.editor_a, "format=csv", bad_length.into_bytes()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        b["error"]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["column"] == "长度" && i["reason"].as_str().unwrap().contains("十八")),
        "{b}"
    );
    let same = |e: &CatalogEntry| CatalogEntry { code: Some("101/000001".into()), ..e.clone() };
    let dup = transfer::write(TransferFormat::Xlsx, &[same(&entries[0]), same(&entries[1])]).unwrap();
    let (s, b) = post_file(&app, &f.editor_a, "format=xlsx", dup).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let v = b["error"]["violations"].as_array().unwrap();
    assert!(
        v.iter().any(|i| i["row"] == 3 && i["column"] == "信息资源代码" && i["reason"].as_str().unwrap().contains("duplicate")),
        "{v:?}"
    );
    let json_dup =
        serde_json::to_vec(&json!([{"classification_code": "101", "provider_code": a_code, "document": population_doc(), "bogus": 1}]))
            .unwrap();
    let (s, b) = post_file(&app, &f.editor_a, "format=json", json_dup).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["violations"][0]["reason"].as_str().unwrap().contains("bogus"), "{b}");
    // Not a spreadsheet at all, and not UTF-8.
    let (s, _) = post_file(&app, &f.editor_a, "format=xlsx", b"PK\x03\x04 not really a zip".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = post_file(&app, &f.editor_a, "format=csv", vec![0xFF, 0xFE, 0xFF, 0x80]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["violations"][0]["reason"].as_str().unwrap().contains("neither UTF-8 nor GBK"));
    assert_eq!(count().await, before + 2, "no bad file imported anything");
    // Over the size limit: 413 from the declared length, before any of the body is read. (Sent by hand:
    // a client streaming the whole body may see the connection close before it reads the answer.)
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/catalog/import?format=json HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            f.editor_a,
            65u64 << 20
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    app.stop().await;
}

async fn project_catalogs_merge_at_acceptance(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let (editor_a, editor_b, reviewer) =
        (client_of(&app, "editor.a").await, client_of(&app, "editor.b").await, client_of(&app, "auth.reviewer").await);
    let registration = CreateProjectRequest { department_id: f.a, name: "甲省智慧公安二期工程".into() };
    let project = editor_a.create_project(&registration).await.unwrap().id;
    let other = CreateProjectRequest { department_id: f.a, name: "x".into() };
    assert_eq!(editor_b.create_project(&other).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    // A project without a catalog cannot be accepted.
    assert_eq!(reviewer.accept_project(project).await.unwrap_err().status(), Some(StatusCode::CONFLICT));
    let entry = |doc: Value| CreateResourceRequest {
        classification_code: "211".into(),
        provider_department_id: None,
        document: serde_json::from_value(doc).expect("a valid document"),
        project_id: Some(project),
    };
    let good = editor_a.create_resource(&entry(named("警情信息", "110 接处警信息", &["警情编号", "接警时间"], true))).await.unwrap().code;
    let mut bad_doc = named("案件信息", "刑事案件信息", &["案件编号"], false);
    bad_doc["sharing_condition"] = Value::Null; // R-CAT-1
    let bad = editor_a.create_resource(&entry(bad_doc)).await.unwrap().code;
    // Entries of a project are not submitted one by one.
    assert_eq!(editor_a.submit_resource(&good).await.unwrap_err().status(), Some(StatusCode::CONFLICT));
    // Only the authority accepts; a rule broken anywhere stops the whole merge.
    assert_eq!(editor_a.accept_project(project).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    let refused = reviewer.accept_project(project).await.unwrap_err();
    let ClientError::Api { status, error } = &refused else { panic!("{refused}") };
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY);
    let violations = error.violations.as_ref().and_then(Value::as_array).expect("the violations");
    assert!(violations.iter().any(|v| v["rule"] == "R-CAT-1" && v["field"].as_str().unwrap_or("").starts_with(&bad)), "{violations:?}");
    assert_eq!(editor_a.get_resource(&good).await.unwrap().status, VersionStatus::Draft, "nothing merged");
    let mut fixed = named("案件信息", "刑事案件信息", &["案件编号"], false);
    fixed["sharing_condition"] = json!("仅向司法机关提供");
    editor_a.update_resource(&bad, &serde_json::from_value(fixed).unwrap()).await.unwrap();
    let accepted = reviewer.accept_project(project).await.unwrap();
    assert_eq!((accepted.status.as_str(), accepted.resources), ("accepted", 2));
    for code in [&good, &bad] {
        assert_eq!(editor_b.get_resource(code).await.unwrap().status, VersionStatus::Published);
    }
    // Merged entries are searchable; the project is closed to new entries.
    let anyone = shutong_client::Client::new(&app.base).unwrap();
    assert_eq!(anyone.search("警情", 20).await.unwrap().hits[0].code, good);
    let late = editor_a.create_resource(&entry(population_doc())).await.unwrap_err();
    assert_eq!(late.status(), Some(StatusCode::CONFLICT));
    app.stop().await;
}

/// 网络分区: a node in the outer zone (the default) refuses a 涉密 resource, new or edited; an inner-zone node
/// accepts it.
async fn outer_zone_refuses_classified_resources(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = fixture(&app).await;
    let mut doc = population_doc();
    doc["secrecy"] = json!("classified");
    let r = app.post("/api/v1/catalog/resources", &f.editor_a, json!({"classification_code": "101", "document": doc.clone()})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let violations = r.body["error"]["violations"].as_array().unwrap();
    assert!(violations.iter().any(|v| v["rule"] == "R-SEC-ZONE" && v["field"] == "secrecy"), "{violations:?}");
    // Nor can a draft become classified by an edit.
    let code = create(&app, &f.editor_a, "101", population_doc()).await;
    let r = app.call(Method::PUT, &path_of(&code), Some(&f.editor_a), Some(doc.clone())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    app.stop().await;

    let app = common::spawn_app_with(backend, |c| c.node.zone = "inner".into()).await;
    let f = fixture(&app).await;
    let code = create(&app, &f.editor_a, "101", doc).await;
    assert_eq!(app.get(&path_of(&code), &f.editor_a).await.body["document"]["secrecy"], "classified");
    app.stop().await;
}
