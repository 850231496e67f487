//! 全程留痕 (办法 第二十一条): no state change commits without its audit event. Every audited action is tried
//! with a failure injected between the change and its event (every insert into the trail fails): nothing of
//! the change remains; without the failure, it commits with its event. The test closes by checking that
//! every action of `shutong_audit::Action::ALL` was tried here or is named below with the test that covers
//! it, so a new action cannot be added without deciding how its atomicity is shown.

use crate::common::{self, Backend, PASSWORD, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutong_audit::Action;
use std::collections::BTreeSet;
use std::sync::Mutex;

on_both_backends!(no_change_commits_without_its_audit_event);

/// Actions whose failure injection lives in another test, because they are not reached over HTTP.
const ELSEWHERE: &[(&str, &str)] = &[
    ("keys.rotate", "at_rest::sensitive_items_are_encrypted_at_rest (the CLI, with the trail failing: the key ring is unchanged)"),
    ("keys.retire", "at_rest::sensitive_items_are_encrypted_at_rest (the CLI, with the trail failing: the key stays)"),
    ("data.rekey", "at_rest::sensitive_items_are_encrypted_at_rest (the CLI, with the trail failing: no value rewritten)"),
    ("audit.archive", "audit_chain::archive_keeps_the_chain_verifiable (with the trail failing: nothing archived or removed)"),
];

/// Reads, which change no state: their event is the access log, written by the exchange's log writer
/// (`exchange::grants_are_enforced_on_every_output`, `files_are_delivered_whole_or_not_at_all` and the
/// service binding's test check their records).
const READS: &[&str] = &["data.lookup", "data.query", "data.export", "data.changes", "data.proxy", "data.file_download"];

/// The rows of `table` a change could write: all of them, except the recurring jobs' rows, which the job
/// runner reschedules on its own as the business clock moves (the pool's audit outbox every 10 s), whatever
/// the request under test does.
fn changeable(table: &str, rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<String>>> {
    const EVERY_MS: usize = 5; // jobs.every_ms, in the table's column order
    rows.iter().filter(|r| table != "jobs" || r.get(EVERY_MS).is_none_or(Option::is_none)).cloned().collect()
}

/// What the second, untroubled call must answer.
#[derive(Clone, Copy)]
enum Expect {
    /// A success (2xx).
    Success,
    /// This refusal, which is itself audited (a failed login).
    Refused(StatusCode),
}

/// The atomicity check over one app, keeping the actions it tried.
struct Atomicity<'a> {
    app: &'a TestApp,
    tried: Mutex<BTreeSet<Action>>,
}

impl<'a> Atomicity<'a> {
    fn new(app: &'a TestApp) -> Self {
        Atomicity { app, tried: Mutex::new(BTreeSet::new()) }
    }

    fn actions(codes: &[&str]) -> Vec<Action> {
        codes.iter().map(|c| Action::parse(c).unwrap_or_else(|| panic!("{c} is not an audit action"))).collect()
    }

    async fn events(&self, action: Action) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = $1")
            .bind(action.code())
            .fetch_one(self.app.db().pool())
            .await
            .map(|r| sqlx::Row::get::<i64, _>(&r, 0))
            .unwrap()
    }

    /// Runs `call` twice: first with every audit insert failing, when it must fail and leave every platform
    /// table as it was (the change and its event are one transaction), then normally, when it must succeed
    /// and write one event of `action`.
    async fn check<F, Fut>(&self, action: &str, call: F) -> common::Resp
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = common::Resp>,
    {
        self.check_with(&[action], None, Expect::Success, call).await
    }

    /// As [`Self::check`], for a change that writes one event of each of `actions` (an approval creates
    /// its grant; an acceptance merges the project's entries).
    async fn check_all<F, Fut>(&self, actions: &[&str], call: F) -> common::Resp
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = common::Resp>,
    {
        self.check_with(actions, None, Expect::Success, call).await
    }

    /// The general form: `record_of_attempt` names one table that may keep a record of the failed attempt
    /// (a batch's own row, marked failed, with its reason); `expect` is the untroubled call's answer.
    async fn check_with<F, Fut>(&self, codes: &[&str], record_of_attempt: Option<&str>, expect: Expect, call: F) -> common::Resp
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = common::Resp>,
    {
        let actions = Self::actions(codes);
        let label = codes.join(" + ");
        let before = common::platform_snapshot(self.app.db()).await;
        let mut written = Vec::new();
        for a in &actions {
            written.push(self.events(*a).await);
        }
        common::fail_audit_inserts(self.app.db(), true).await;
        let refused = call().await;
        common::fail_audit_inserts(self.app.db(), false).await;
        assert!(refused.status.is_server_error(), "{label} with its event failing: {} {:?}", refused.status, refused.body);
        let after = common::platform_snapshot(self.app.db()).await;
        for (table, rows) in &before {
            if Some(table.as_str()) != record_of_attempt {
                assert_eq!(changeable(table, rows), changeable(table, &after[table]), "{label}: nothing of the change remains in {table}");
            }
        }
        let r = call().await;
        match expect {
            Expect::Success => assert!(r.status.is_success(), "{label}: {} {:?}", r.status, r.body),
            Expect::Refused(status) => assert_eq!(r.status, status, "{label}: {:?}", r.body),
        }
        for (a, n) in actions.iter().zip(written) {
            assert_eq!(self.events(*a).await, n + 1, "{label}: the event of {a}");
        }
        self.tried.lock().unwrap().extend(actions);
        r
    }

    /// Pool changes on SQLite, where the pool is a database of its own: with the trail failing each call
    /// still commits, its event held in the pool's outbox in the same transaction; once the trail works the
    /// outbox delivers each event exactly once (checked across two restarts by the caller).
    async fn through_the_outbox<F, Fut>(&self, action: &str, call: F) -> common::Resp
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = common::Resp>,
    {
        let a = Self::actions(&[action])[0];
        common::fail_audit_inserts(self.app.db(), true).await;
        let r = call().await;
        common::fail_audit_inserts(self.app.db(), false).await;
        assert!(r.status.is_success(), "{action}: the change and its event committed together in the pool: {} {:?}", r.status, r.body);
        self.tried.lock().unwrap().insert(a);
        r
    }

    fn tried(&self) -> BTreeSet<Action> {
        self.tried.lock().unwrap().clone()
    }
}

/// Every state change, reached through the API as its users reach it, with a failure injected between the
/// change and its audit event.
async fn no_change_commits_without_its_audit_event(backend: Backend) {
    // No scheduled archiving: moving the business clock (the deadline sweep below) would make it due, and its
    // run would change the job table while the platform's tables are compared.
    let mut app = common::spawn_demo_app_with(backend, |c| c.audit.archive_interval_seconds = 0).await;
    let t = Atomicity::new(&app);
    let demo = shutong::demo::DEMO_PASSWORD;
    let admin = app.admin_token().await;
    let editor = app.login("ga.editor", demo).await;
    let provider = app.login("ga.reviewer", demo).await;
    let authority = app.login("sq.reviewer", demo).await;
    let consumer = app.login("dc.rs.editor", demo).await;
    let today = app.clock().today();
    let code_of = |name: &'static str| {
        let db = app.db().clone();
        async move {
            sqlx::query("SELECT code FROM catalog_resources WHERE name = $1")
                .bind(name)
                .fetch_one(db.pool())
                .await
                .map(|r| sqlx::Row::get::<String, _>(&r, 0))
                .unwrap()
        }
    };
    let call = |method: Method, path: String, token: &str, body: Option<Value>| {
        let token = token.to_string();
        let app = &app;
        async move { app.call(method, &path, Some(&token), body).await }
    };
    // A request with a body that is not JSON (a file, a batch).
    let send = |path: String, token: &str, content_type: &'static str, body: Vec<u8>| {
        let token = token.to_string();
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}{path}", app.base))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            common::Resp { status, headers: r.headers().clone(), body: r.json().await.unwrap_or_default() }
        }
    };
    let login = |username: &'static str, password: &'static str| {
        let app = &app;
        async move { app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": username, "password": password}))).await }
    };

    // Identity.
    let credit = shutong::demo::demo_credit_code("320100", 91);
    let d = t
        .check("department.create", || {
            call(
                Method::POST,
                "/api/v1/departments".into(),
                &admin,
                Some(json!({"name": "原子性测试局", "credit_code": credit, "region_code": "320100", "level": "city"})),
            )
        })
        .await;
    let dept = d.body["id"].as_i64().unwrap();
    t.check("department.update", || {
        call(Method::PATCH, format!("/api/v1/departments/{dept}"), &admin, Some(json!({"name": "原子性测试局（更名）"})))
    })
    .await;
    let u = t
        .check("user.create", || {
            call(
                Method::POST,
                "/api/v1/users".into(),
                &admin,
                Some(json!({"username": "atomic.user", "display_name": "原子", "department_id": dept, "password": PASSWORD, "roles": ["catalog_editor"]})),
            )
        })
        .await;
    let user = u.body["user"]["id"].as_i64().unwrap();
    t.check("user.update", || call(Method::PATCH, format!("/api/v1/users/{user}"), &admin, Some(json!({"display_name": "原子二"})))).await;
    t.check("user.reset_password", || {
        call(Method::POST, format!("/api/v1/users/{user}/password"), &admin, Some(json!({"new_password": "Reset-Pass-2026"})))
    })
    .await;
    let role = t
        .check("role.assign", || call(Method::POST, format!("/api/v1/users/{user}/roles"), &admin, Some(json!({"role": "reviewer"}))))
        .await;
    let assignment = role.body["id"].as_i64().unwrap();
    t.check("role.revoke", || call(Method::DELETE, format!("/api/v1/users/{user}/roles/{assignment}"), &admin, None)).await;
    t.check("token.create", || call(Method::POST, "/api/v1/tokens".into(), &admin, Some(json!({"user_id": user, "name": "原子系统"}))))
        .await;
    let token = app.get("/api/v1/tokens", &admin).await.body["tokens"][0]["id"].as_i64().unwrap();
    t.check("token.revoke", || call(Method::DELETE, format!("/api/v1/tokens/{token}"), &admin, None)).await;
    // A verification is reported only once its record is on the trail.
    t.check("audit.verify", || call(Method::POST, "/api/v1/audit/verify".into(), &admin, None)).await;
    t.check("region.upsert", || call(Method::PUT, "/api/v1/reference/regions/320199".into(), &admin, Some(json!({"name": "原子新区"}))))
        .await;
    let year = json!({"year": 2030, "papers": [], "days": [{"name": "元旦", "date": "2030-01-01", "isOffDay": true}]});
    t.check("calendar.import_year", || call(Method::PUT, "/api/v1/calendar/years/2030".into(), &admin, Some(year.clone()))).await;
    let session = t.check("auth.login", || login("atomic.user", "Reset-Pass-2026")).await;
    let session = session.body["token"].as_str().unwrap().to_string();
    t.check("auth.logout", || call(Method::POST, "/api/v1/auth/logout".into(), &session, None)).await;
    let session = login("atomic.user", "Reset-Pass-2026").await.body["token"].as_str().unwrap().to_string();
    t.check("user.change_password", || {
        call(
            Method::POST,
            format!("/api/v1/users/{user}/password"),
            &session,
            Some(json!({"current_password": "Reset-Pass-2026", "new_password": "Changed-Pass-2027"})),
        )
    })
    .await;
    // Failed logins are counted, and the one that locks the account is its own action.
    app.create_user(&admin, "atomic.locked", dept, &["catalog_editor"]).await;
    t.check_with(&["auth.login_failed"], None, Expect::Refused(StatusCode::UNAUTHORIZED), || login("atomic.locked", "Wrong-Pass-1")).await;
    let max_failed = app.running.as_ref().unwrap().state.config.security.max_failed_logins;
    for _ in 1..max_failed - 1 {
        assert_eq!(login("atomic.locked", "Wrong-Pass-1").await.status, StatusCode::UNAUTHORIZED);
    }
    t.check_with(&["auth.locked"], None, Expect::Refused(StatusCode::UNAUTHORIZED), || login("atomic.locked", "Wrong-Pass-1")).await;
    assert_ne!(login("atomic.locked", PASSWORD).await.status, StatusCode::OK, "locked");
    // A system account's SM2 key, set and removed.
    let node = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "atomic.node", "display_name": "原子前置机", "department_id": dept, "is_system": true}),
        )
        .await;
    assert_eq!(node.status, StatusCode::CREATED, "{:?}", node.body);
    let node = node.body["user"]["id"].as_i64().unwrap();
    let key = shutong_crypto::NodeKey::generate().public_key_hex();
    t.check("user.sm2_key_set", || call(Method::PUT, format!("/api/v1/users/{node}/sm2-key"), &admin, Some(json!({"public_key": key}))))
        .await;
    t.check("user.sm2_key_removed", || {
        call(Method::PUT, format!("/api/v1/users/{node}/sm2-key"), &admin, Some(json!({"public_key": null})))
    })
    .await;
    // An exchange node (前置机): its first heartbeat registers it, a new version is recorded.
    let qzj = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "atomic.qzj", "display_name": "原子前置机二", "department_id": dept, "is_system": true, "roles": ["system_account"]}),
        )
        .await;
    assert_eq!(qzj.status, StatusCode::CREATED, "{:?}", qzj.body);
    let qzj = qzj.body["user"]["id"].as_i64().unwrap();
    let secret =
        app.post("/api/v1/tokens", &admin, json!({"user_id": qzj, "name": "前置机"})).await.body["secret"].as_str().unwrap().to_string();
    let beat = |version: &str| {
        json!({"name": "atomic-qzj", "version": version, "started_at_ms": 1, "flows": [], "outbox_batches": 0, "outbox_bytes": 0,
               "outbox_limit_bytes": 1, "last_error": null})
    };
    t.check("node.register", || call(Method::POST, "/api/v1/nodes/heartbeat".into(), &secret, Some(beat("1.0")))).await;
    t.check("node.update", || call(Method::POST, "/api/v1/nodes/heartbeat".into(), &secret, Some(beat("1.1")))).await;
    // The node's identity comes from configuration: a changed one is recorded at start, by bootstrap.
    let state = &app.running.as_ref().unwrap().state;
    let mut config = (*state.config).clone();
    config.node.name = "原子性测试节点".into();
    let bootstrap = shutong::server::bootstrap_of(&config, true).unwrap();
    t.check("node.set_identity", || async {
        let status = match shutong_identity::bootstrap(app.db(), &state.regions(), &state.security, &bootstrap).await {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        common::Resp { status, headers: Default::default(), body: Value::Null }
    })
    .await;

    // Catalog.
    t.check("catalog.classification_create", || {
        call(Method::POST, "/api/v1/catalog/classifications".into(), &authority, Some(json!({"code": "399", "name": "原子性测试"})))
    })
    .await;
    let mut doc = app.get("/api/v1/catalog/resources/101/000001", &editor).await.body["document"].clone();
    doc["name"] = json!("原子性测试资源");
    let created = t
        .check("catalog.create", || {
            call(Method::POST, "/api/v1/catalog/resources".into(), &editor, Some(json!({"classification_code": "101", "document": doc})))
        })
        .await;
    let p = format!("/api/v1/catalog/resources/{}", created.body["code"].as_str().unwrap());
    let mut doc2 = doc.clone();
    doc2["summary"] = json!("第二稿");
    t.check("catalog.update_draft", || call(Method::PUT, p.clone(), &editor, Some(doc2.clone()))).await;
    t.check("catalog.submit", || call(Method::POST, format!("{p}/submit"), &editor, Some(json!({})))).await;
    t.check("catalog.publish", || call(Method::POST, format!("{p}/review"), &authority, Some(json!({"decision": "approve"})))).await;
    t.check("catalog.revise", || call(Method::POST, format!("{p}/revise"), &editor, Some(json!({})))).await;
    t.check("catalog.withdraw", || call(Method::POST, format!("{p}/withdraw"), &editor, Some(json!({"reason": "职能划转"})))).await;
    doc["name"] = json!("原子性退回资源");
    let returned = app.post("/api/v1/catalog/resources", &editor, json!({"classification_code": "101", "document": doc})).await;
    let q = format!("/api/v1/catalog/resources/{}", returned.body["code"].as_str().unwrap());
    assert!(app.post(&format!("{q}/submit"), &editor, json!({})).await.status.is_success());
    t.check("catalog.return", || {
        call(Method::POST, format!("{q}/review"), &authority, Some(json!({"decision": "return", "reason": "摘要需写明数据范围"})))
    })
    .await;
    let me = app.get("/api/v1/me", &editor).await.body;
    let ga = me["department"]["id"].as_i64().unwrap();
    let ga_credit = me["department"]["credit_code"].as_str().expect("the department's credit code").to_string();
    t.check("catalog.change_event", || {
        call(
            Method::POST,
            "/api/v1/catalog/change-events".into(),
            &editor,
            Some(json!({"department_id": ga, "kind": "law_revised", "description": "修法", "occurred_on": today})),
        )
    })
    .await;
    {
        use shutong_catalog::transfer::{CatalogEntry, TransferFormat, write};
        let mut imported = doc.clone();
        imported["name"] = json!("原子性导入资源");
        let entry = CatalogEntry {
            code: None,
            classification_code: "101".into(),
            provider_code: String::new(),
            document: serde_json::from_value(imported).unwrap(),
        };
        let xlsx = write(TransferFormat::Xlsx, &[entry]).unwrap();
        let ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        t.check("catalog.import", || send(format!("/api/v1/catalog/import?department={ga_credit}"), &editor, ct, xlsx.clone())).await;
    }
    let project = t
        .check("catalog.project_create", || {
            call(Method::POST, "/api/v1/catalog/projects".into(), &editor, Some(json!({"department_id": ga, "name": "原子性工程"})))
        })
        .await;
    let project = project.body["id"].as_i64().unwrap();
    doc["name"] = json!("原子性工程资源");
    let entry =
        app.post("/api/v1/catalog/resources", &editor, json!({"classification_code": "101", "document": doc, "project_id": project})).await;
    assert_eq!(entry.status, StatusCode::CREATED, "{:?}", entry.body);
    t.check_all(&["catalog.project_accept", "catalog.merge"], || {
        call(Method::POST, format!("/api/v1/catalog/projects/{project}/accept"), &authority, Some(json!({})))
    })
    .await;

    // Data quality (the demo's population dataset, 101/000001, has data).
    t.check("quality.dimension_update", || {
        call(Method::PUT, "/api/v1/quality/dimensions/timeliness".into(), &authority, Some(json!({"weight": 20})))
    })
    .await;
    let rules = "/api/v1/data/101/000001/quality/rules";
    let rule = json!({"rule": {"kind": "pattern", "item": "姓名", "pattern": "\\p{Han}{2,4}"}});
    let added = t.check("quality.rule_create", || call(Method::POST, rules.into(), &editor, Some(rule.clone()))).await;
    let key = added.body["key"].as_str().unwrap().to_string();
    t.check("quality.rule_retire", || {
        call(Method::POST, format!("{rules}/retire"), &editor, Some(json!({"key": key, "reason": "原子性测试停用"})))
    })
    .await;
    t.check("quality.check", || call(Method::POST, "/api/v1/data/101/000001/quality/checks".into(), &editor, None)).await;

    // Information systems and projects.
    let keeper = app.login("ga.admin", demo).await;
    let approver = app.login("fgw.reviewer", demo).await;
    let system_doc = json!({"name": "原子性测试系统", "function": "测试", "usage_scope": "unit", "usage_frequency": "yearly",
        "build_cost": "100.00", "om_cost": "10", "funding_source": "budget", "network": "gov_outer", "status": "in_use",
        "om_status": "ongoing", "shares_across_departments": false, "connected": false});
    let created = t
        .check("system.create", || {
            call(Method::POST, "/api/v1/systems".into(), &keeper, Some(json!({"department_id": ga, "document": system_doc})))
        })
        .await;
    let sys = created.body["id"].as_i64().unwrap();
    let mut edited = system_doc.clone();
    edited["om_cost"] = json!("20.00");
    t.check("system.update", || call(Method::PUT, format!("/api/v1/systems/{sys}"), &keeper, Some(edited.clone()))).await;
    t.check("system.zombie_response", || {
        call(Method::POST, format!("/api/v1/systems/{sys}/zombie/response"), &keeper, Some(json!({"response": "confirm"})))
    })
    .await;
    t.check("system.zombie_decision", || {
        call(Method::POST, format!("/api/v1/systems/{sys}/zombie/decision"), &authority, Some(json!({"decision": "zombie"})))
    })
    .await;
    let due = today + chrono::Days::new(10);
    t.check("system.cleanup_plan", || {
        call(Method::PUT, format!("/api/v1/systems/{sys}/cleanup"), &keeper, Some(json!({"action": "shut_down", "due_on": due})))
    })
    .await;
    t.check("system.cleanup_progress", || {
        call(Method::POST, format!("/api/v1/systems/{sys}/cleanup/progress"), &keeper, Some(json!({"progress": "in_progress"})))
    })
    .await;
    {
        let mut imported = system_doc.clone();
        imported["name"] = json!("原子性导入系统");
        let row = shutong_systems::spreadsheet::SheetSystem {
            row: 0,
            id: None,
            department_code: ga_credit.clone(),
            document: serde_json::from_value(imported).unwrap(),
        };
        let xlsx = shutong_systems::spreadsheet::write(&[row]).unwrap();
        let ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        t.check_all(&["system.import", "system.create"], || send("/api/v1/systems/import".into(), &keeper, ct, xlsx.clone())).await;
    }
    let report = t
        .check("report.save", || {
            call(
                Method::POST,
                format!("/api/v1/departments/{ga}/self-inspection"),
                &keeper,
                Some(json!({"year": 2026, "overview": "自查", "problems": "无", "measures": "无"})),
            )
        })
        .await;
    let version = report.body["version"].as_i64().unwrap();
    t.check("report.submit", || {
        call(Method::POST, format!("/api/v1/departments/{ga}/self-inspection/{version}/submit"), &keeper, Some(json!({})))
    })
    .await;
    t.check("report.review", || {
        call(
            Method::POST,
            format!("/api/v1/departments/{ga}/self-inspection/{version}/review"),
            &authority,
            Some(json!({"decision": "accept"})),
        )
    })
    .await;
    let filing = json!({"department_id": ga, "filed_on": today, "application": "原子性立项申请", "document": {"name": "原子性备案项目",
        "construction_unit": "示范省公安厅", "total_investment": "1000.00", "om_budget": "100", "funding_channel": "budget", "content": "测试"}});
    let filed = t.check("project.file", || call(Method::POST, "/api/v1/projects".into(), &keeper, Some(filing.clone()))).await;
    let filed = filed.body["id"].as_i64().unwrap();
    t.check_all(&["project.advance", "project.gate_override"], || {
        call(
            Method::POST,
            format!("/api/v1/projects/{filed}/advance"),
            &approver,
            Some(json!({"stage": "approved", "entered_on": today, "document": "原子性批复", "override_reason": "应急项目先行审批"})),
        )
    })
    .await;

    // Sharing.
    let floating = code_of("流动人口居住登记信息").await;
    let application = json!({"resource_code": floating, "items": ["公民身份号码", "居住地址"], "purpose": "administrative_basis",
        "basis": "《社会保险法》第八条", "period_to": today + chrono::Days::new(200), "access_methods": ["online_query"]});
    let r = t.check("request.create", || call(Method::POST, "/api/v1/requests".into(), &consumer, Some(application.clone()))).await;
    let id = r.body["request"]["id"].as_i64().unwrap();
    t.check("request.message", || {
        call(Method::POST, format!("/api/v1/requests/{id}/messages"), &consumer, Some(json!({"body": "请尽快答复"})))
    })
    .await;
    t.check("request.reject", || {
        call(Method::POST, format!("/api/v1/requests/{id}/reject"), &provider, Some(json!({"reason": "用途不明"})))
    })
    .await;
    t.check("request.escalate", || {
        call(Method::POST, format!("/api/v1/requests/{id}/escalate"), &consumer, Some(json!({"reason": "请求协商"})))
    })
    .await;
    t.check("request.withdraw", || {
        call(Method::POST, format!("/api/v1/requests/{id}/withdraw"), &consumer, Some(json!({"reason": "不再需要"})))
    })
    .await;
    let r = app.post("/api/v1/requests", &consumer, application.clone()).await;
    let id = r.body["request"]["id"].as_i64().unwrap();
    let a = t
        .check_all(&["request.approve", "grant.create"], || {
            call(Method::POST, format!("/api/v1/requests/{id}/approve"), &provider, Some(json!({})))
        })
        .await;
    let grant = a.body["grant"]["id"].as_i64().unwrap();
    t.check("grant.renew", || {
        call(Method::POST, format!("/api/v1/grants/{grant}/renew"), &provider, Some(json!({"valid_to": today + chrono::Days::new(300)})))
    })
    .await;
    t.check("grant.revoke", || {
        call(Method::POST, format!("/api/v1/grants/{grant}/revoke"), &provider, Some(json!({"reason": "停止使用"})))
    })
    .await;
    // 疑义校核: a grant on the population dataset, then every step of an objection.
    let asked = app
        .post(
            "/api/v1/requests",
            &consumer,
            json!({"resource_code": "101/000001", "items": ["公民身份号码", "户籍地址"], "purpose": "data_verification",
                "basis": "《社会救助暂行办法》第十一条", "period_to": today + chrono::Days::new(200), "access_methods": ["online_query"]}),
        )
        .await;
    let asked = asked.body["request"]["id"].as_i64().unwrap();
    app.post_ok(&format!("/api/v1/requests/{asked}/approve"), &provider, json!({})).await;
    t.check("quality.objection_reason_update", || {
        call(Method::PUT, "/api/v1/quality/objection-reasons/atomic".into(), &authority, Some(json!({"name": "原子性原因"})))
    })
    .await;
    let key = shutong_exchange::synth::person(7, 2026)[0].clone();
    let objection =
        json!({"resource_code": "101/000001", "keys": [key], "items": ["户籍地址"], "reason": "atomic", "description": "原子性疑义"});
    let filed = t
        .check("quality.objection_file", || call(Method::POST, "/api/v1/quality/objections".into(), &consumer, Some(objection.clone())))
        .await;
    let o = format!("/api/v1/quality/objections/{}", filed.body["id"].as_i64().unwrap());
    t.check("quality.objection_evidence", || {
        let (app, token, path) = (&app, consumer.clone(), format!("{o}/evidence?file_name=a.txt"));
        async move {
            let r = app.http.put(format!("{}{path}", app.base)).bearer_auth(token).body("佐证").send().await.unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            common::Resp { status, body: r.json().await.unwrap_or(Value::Null), headers }
        }
    })
    .await;
    let answer = json!({"answer": "confirmed", "note": "核实无误"});
    t.check("quality.objection_answer", || call(Method::POST, format!("{o}/answer"), &editor, Some(answer.clone()))).await;
    t.check("quality.objection_escalate", || call(Method::POST, format!("{o}/escalate"), &consumer, Some(json!({"note": "仍有疑义"}))))
        .await;
    t.check("quality.objection_rule", || {
        call(Method::POST, format!("{o}/rule"), &authority, Some(json!({"ruling": "upheld", "note": "请再次核实"})))
    })
    .await;
    app.post_ok(&format!("{o}/answer"), &editor, answer.clone()).await;
    t.check("quality.objection_accept", || call(Method::POST, format!("{o}/accept"), &consumer, None)).await;

    let open = code_of("社会组织登记信息").await;
    t.check("request.subscribe", || {
        call(
            Method::POST,
            "/api/v1/subscriptions".into(),
            &consumer,
            Some(json!({"resource_code": open, "purpose": "work_reference", "basis": "参保核验", "access_methods": ["online_query"]})),
        )
    })
    .await;
    // The deadline sweep: a request left unanswered past its 10th working day is marked overdue. A first
    // sweep a month on settles what the demo left open; a request made then is overdue a month later.
    app.clock().set_date(today + chrono::Days::new(30));
    assert!(app.post("/api/v1/sharing/sweep", &admin, json!({})).await.status.is_success());
    let late = app.post("/api/v1/requests", &consumer, application.clone()).await;
    assert_eq!(late.status, StatusCode::CREATED, "{:?}", late.body);
    app.clock().set_date(today + chrono::Days::new(60));
    t.check("request.overdue", || call(Method::POST, "/api/v1/sharing/sweep".into(), &admin, Some(json!({})))).await;
    app.clock().set_date(today);

    // The data pool. On PostgreSQL it shares the platform's transaction; on SQLite, a database of its own,
    // its changes hold their events in its outbox, written in the same transaction.
    // Files are bound to the project's entry, published by the acceptance above.
    let migration = entry.body["code"].as_str().unwrap().to_string();
    let person = shutong_exchange::synth::person(3, 3);
    let csv = format!("公民身份号码,姓名,居住地址,登记日期\n{},{},{},2024-03-01\n", person[0], person[1], person[5]).into_bytes();
    let batch = || send("/api/v1/data/101/000002/batches?mode=full&batch_id=atomic".into(), &editor, "text/csv", csv.clone());
    let bind = || call(Method::PUT, "/api/v1/data/101/000002/binding".into(), &editor, Some(json!({"kind": "dataset"})));
    let bind_files = || call(Method::PUT, format!("/api/v1/data/{migration}/binding"), &editor, Some(json!({"kind": "files"})));
    let upload =
        || send(format!("/api/v1/data/{migration}/files?name=%E5%90%8D%E5%8D%95.csv"), &editor, "text/csv", b"a,b\n1,2\n".to_vec());
    let file_of = |r: &common::Resp| r.body["id"].as_i64().unwrap_or_else(|| panic!("the file's id: {:?}", r.body));
    if backend == Backend::Postgres {
        t.check("exchange.bind", bind).await;
        t.check_with(&["data.batch"], Some("exchange_batches"), Expect::Success, batch).await;
        let (status, failure): (String, String) =
            sqlx::query("SELECT status, failure FROM exchange_batches WHERE batch_key = 'atomic' ORDER BY id LIMIT 1")
                .fetch_one(app.db().pool())
                .await
                .map(|r| (sqlx::Row::get(&r, 0), sqlx::Row::get(&r, 1)))
                .unwrap();
        assert_eq!(status, "failed");
        assert!(!failure.contains("injected"), "the batch's report is opaque about the platform's own faults: {failure}");
        let r = bind_files().await;
        assert!(r.status.is_success(), "{} {:?}", r.status, r.body);
        let file = file_of(&t.check("exchange.file_upload", upload).await);
        t.check("exchange.file_delete", || call(Method::DELETE, format!("/api/v1/data/{migration}/files/{file}"), &editor, None)).await;
        base_elements(&t, &app, &authority).await;
        theme_database(&t, &app, &authority, &editor, backend).await;
    } else {
        let pool = ["exchange.bind", "data.batch", "exchange.file_upload", "exchange.file_delete"].map(|c| Atomicity::actions(&[c])[0]);
        let mut before = Vec::new();
        for a in pool {
            before.push(t.events(a).await);
        }
        t.through_the_outbox("exchange.bind", bind).await;
        t.through_the_outbox("data.batch", batch).await;
        let r = bind_files().await;
        assert!(r.status.is_success(), "{} {:?}", r.status, r.body);
        let file = file_of(&t.through_the_outbox("exchange.file_upload", upload).await);
        t.through_the_outbox("exchange.file_delete", || {
            call(Method::DELETE, format!("/api/v1/data/{migration}/files/{file}"), &editor, None)
        })
        .await;
        base_elements(&t, &app, &authority).await;
        let mut tried = t.tried();
        drop(t);
        // A start delivers what the outbox holds, each event once, however often it starts.
        for _ in 0..2 {
            app.restart_with(|_| {}).await;
            let t = Atomicity::new(&app);
            for (a, n) in pool.iter().zip(&before) {
                // The bind of the files binding, made with the trail working, is one more.
                let extra = i64::from(*a == Action::ExchangeBind);
                assert_eq!(t.events(*a).await, n + 1 + extra, "{a}: delivered from the outbox exactly once");
            }
        }
        // A theme database loads batches of its own (more pool events): after the count above.
        let t = Atomicity::new(&app);
        let (editor, authority) = (app.login("ga.editor", demo).await, app.login("sq.reviewer", demo).await);
        theme_database(&t, &app, &authority, &editor, backend).await;
        tried.extend(t.tried());
        drop(t);
        return every_action_is_covered(&tried, app).await;
    }
    let tried = t.tried();
    drop(t);
    every_action_is_covered(&tried, app).await;
}

/// 一数一源 on the pooled 101/000001 (authoritative) and 101/000002 (loaded above, keyed alike, carrying 姓名).
async fn base_elements(t: &Atomicity<'_>, app: &TestApp, authority: &str) {
    let call = |method: Method, path: String, body: Option<Value>| {
        let token = authority.to_string();
        async move { app.call(method, &path, Some(&token), body).await }
    };
    let element = json!({"name": "原子性人口", "key_item": "公民身份号码", "resource_code": "101/000001", "items": ["姓名"]});
    let e = t.check("quality.element_declare", || call(Method::POST, "/api/v1/quality/elements".into(), Some(element.clone()))).await;
    let id = e.body["id"].as_i64().unwrap();
    t.check("quality.element_map", || {
        call(Method::PUT, format!("/api/v1/quality/elements/{id}/mappings/101/000002"), Some(json!({"items": {"姓名": "姓名"}})))
    })
    .await;
    t.check("quality.reconcile", || {
        call(Method::POST, format!("/api/v1/quality/elements/{id}/reconcile"), Some(json!({"resource_code": "101/000002"})))
    })
    .await;
}

/// 主题库 from the pooled 101/000001 and 101/000002: created (its catalog entry and its definition), published,
/// refreshed (its batch and the refresh's record).
async fn theme_database(t: &Atomicity<'_>, app: &TestApp, authority: &str, editor: &str, backend: Backend) {
    let item = |item: &str, code: &str, member: &str| json!({"item": item, "resource_code": code, "member_item": member});
    let theme = json!({"name": "原子性主题库", "classification_code": "202", "key_item": "公民身份号码",
        "items": [item("姓名", "101/000001", "姓名"), item("居住地址", "101/000002", "居住地址")]});
    let token = editor.to_string();
    let created = t
        .check_all(&["catalog.create", "quality.theme_create"], || {
            let (token, body) = (token.clone(), theme.clone());
            async move { app.call(Method::POST, "/api/v1/quality/themes", Some(&token), Some(body)).await }
        })
        .await;
    let (id, code) = (created.body["id"].as_i64().unwrap(), created.body["resource_code"].as_str().unwrap().to_string());
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/submit"), editor, json!({})).await;
    app.post_ok(&format!("/api/v1/catalog/resources/{code}/review"), authority, json!({"decision": "approve"})).await;
    // The first refresh binds the theme's resource (audited apart, `exchange.bind`, as the first step), then
    // loads it as a batch and records the refresh.
    let refresh = || {
        let token = token.clone();
        async move { app.call(Method::POST, &format!("/api/v1/quality/themes/{id}/refresh"), Some(&token), Some(json!({}))).await }
    };
    let bound = app.call(Method::PUT, &format!("/api/v1/data/{code}/binding"), Some(editor), Some(json!({"kind": "dataset"}))).await;
    assert!(bound.status.is_success(), "{:?}", bound.body);
    if backend == Backend::Postgres {
        t.check_with(&["quality.theme_refresh", "data.batch"], Some("exchange_batches"), Expect::Success, refresh).await;
    } else {
        t.check("quality.theme_refresh", refresh).await;
    }
}

/// Every audited action was tried above, or is named with the test that covers it.
async fn every_action_is_covered(tried: &BTreeSet<Action>, app: TestApp) {
    let elsewhere: BTreeSet<&str> = ELSEWHERE.iter().map(|(a, _)| *a).collect();
    let reads: BTreeSet<&str> = READS.iter().copied().collect();
    for code in elsewhere.iter().chain(&reads) {
        assert!(Action::parse(code).is_some(), "{code} is not an audit action");
    }
    let missing: Vec<&str> = Action::ALL
        .iter()
        .filter(|a| !tried.contains(a) && !elsewhere.contains(a.code()) && !reads.contains(a.code()))
        .map(|a| a.code())
        .collect();
    assert!(missing.is_empty(), "audited actions whose atomicity no test shows: {missing:?}");
    let both: Vec<&str> = tried.iter().map(|a| a.code()).filter(|c| elsewhere.contains(c) || reads.contains(c)).collect();
    assert!(both.is_empty(), "tried here, yet listed as covered elsewhere: {both:?}");
    app.stop().await;
}
