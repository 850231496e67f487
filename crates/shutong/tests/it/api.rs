//! The HTTP API end to end, on SQLite and on PostgreSQL.

use crate::common;

use crate::common::{ADMIN_PASSWORD, Backend, PASSWORD, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    health_ready_and_node,
    login_me_and_lockout,
    bad_input_names_the_field,
    department_admin_is_confined_to_its_department,
    auditor_reads_but_cannot_change,
    tokens_work_until_revoked_or_expired,
    every_change_writes_its_audit_event_in_the_same_transaction,
    reference_and_calendar_endpoints,
    cookie_sessions_need_the_csrf_header,
    openapi_document_lists_every_route,
    migrations_apply_to_a_database_that_holds_data,
    masking_rules_are_configurable,
    node_identity_follows_configuration,
    rate_limits_per_address_and_per_credential,
    reading_the_trail_and_sweeping_are_ruled_by_the_services,
    stored_values_that_do_not_parse_are_errors,
    the_portal_refuses_what_it_cannot_parse_and_shows_the_services_rules,
    a_unit_of_work_commits_only_with_its_event_and_then_runs_its_effects,
    background_work_runs_as_jobs,
);

/// The job runner (`shutong_store::jobs`): a job is scheduled once per key; a failing job keeps its error
/// and is retried after its backoff until it succeeds; a job leased by a runner that died is taken over once
/// the lease lapses; a recurring job is rescheduled after each run. The server's deadline sweep is one.
async fn background_work_runs_as_jobs(backend: Backend) {
    use shutong_store::jobs::{JobRunner, backoff_ms, jobs_of, recur, schedule};
    let app = spawn_app_with(backend, |c| c.sharing.sweep_seconds = 1).await;
    let db = app.db().clone();
    let clock = shutong_store::Clock::system();
    let later = |ms: i64| clock.set_now_ms(clock.now_ms() + ms);
    assert!(schedule(&db, "test.flaky", "k1", &json!({"n": 1}), clock.now_ms()).await.unwrap());
    assert!(!schedule(&db, "test.flaky", "k1", &json!({"n": 2}), clock.now_ms()).await.unwrap(), "one job per key");
    let tries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut runner = JobRunner::new(db.clone(), clock.clone());
    let counted = tries.clone();
    runner.register("test.flaky", move |_, job| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            assert_eq!(job.payload, json!({"n": 1}));
            if n < 2 { Err(format!("attempt {} failed", job.attempts)) } else { Ok(()) }
        }
    });
    assert_eq!(runner.run_due().await.unwrap(), 1);
    let state = &jobs_of(&db, "test.flaky").await.unwrap()[0];
    assert_eq!((state.attempts, state.last_error.as_deref(), state.done), (1, Some("attempt 1 failed"), false));
    assert_eq!(runner.run_due().await.unwrap(), 0, "not before its backoff");
    later(backoff_ms(1) + 1);
    assert_eq!(runner.run_due().await.unwrap(), 1);
    later(backoff_ms(2) + 1);
    assert_eq!(runner.run_due().await.unwrap(), 1);
    let state = &jobs_of(&db, "test.flaky").await.unwrap()[0];
    assert_eq!((state.runs, state.attempts, state.last_error.as_deref(), state.done), (1, 3, None, true));
    assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 3);

    // A lease held by a runner that died.
    schedule(&db, "test.lease", "k", &json!({}), clock.now_ms()).await.unwrap();
    sqlx::query("UPDATE jobs SET leased_by = 'dead', leased_until = $1 WHERE kind = 'test.lease'")
        .bind(clock.now_ms() + 60_000)
        .execute(db.pool())
        .await
        .unwrap();
    let mut heir = JobRunner::new(db.clone(), clock.clone());
    heir.register("test.lease", |_, _| async { Ok(()) });
    heir.register("test.tick", |_, _| async { Ok(()) });
    assert_eq!(heir.run_due().await.unwrap(), 0, "leased by another");
    later(60_001);
    assert_eq!(heir.run_due().await.unwrap(), 1, "taken over once the lease lapsed");
    assert!(jobs_of(&db, "test.lease").await.unwrap()[0].done);

    // Recurring.
    recur(&db, "test.tick", "k", 60_000, clock.now_ms()).await.unwrap();
    assert_eq!(heir.run_due().await.unwrap(), 1);
    assert_eq!(heir.run_due().await.unwrap(), 0);
    later(60_001);
    assert_eq!(heir.run_due().await.unwrap(), 1);
    let tick = &jobs_of(&db, "test.tick").await.unwrap()[0];
    assert_eq!((tick.runs, tick.done), (2, false));

    // The server's own: the deadline sweep, every second here.
    let mut runs = 0;
    for _ in 0..50 {
        runs = jobs_of(&db, "sharing.sweep").await.unwrap().first().map_or(0, |j| j.runs);
        if runs >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(runs >= 1, "the sweep ran as a job");
    app.stop().await;
}

/// The unit of work (`shutong_audit::Change`): without an audit event it is refused and rolled back; with
/// one, it commits and then runs the effects of its notices, which see the committed change; a change that
/// fails to commit runs none. A catalog change made through the service function alone, not through an
/// HTTP handler, is in the running server's search at once (its effect refreshes the index).
async fn a_unit_of_work_commits_only_with_its_event_and_then_runs_its_effects(backend: Backend) {
    use shutong_audit::{AuditContext, Change, NewAuditEvent, Notice};
    let app = common::spawn_demo_app(backend).await;
    let db = app.db().clone();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Notice, i64)>::new()));
    let sink = seen.clone();
    db.effects().on_commit(move |db, notice| {
        let sink = sink.clone();
        async move {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM region_overrides WHERE code = '329901'")
                .fetch_one(db.pool())
                .await
                .map(|r| sqlx::Row::get(&r, 0))
                .unwrap_or(-1);
            sink.lock().unwrap().push((notice, n));
        }
    });
    let ctx = AuditContext::system("test");
    let insert = "INSERT INTO region_overrides (code, entry, updated_at) VALUES ('329901', '{}', 1)";
    let mut change = Change::begin(&db, &ctx).await.unwrap();
    sqlx::query(insert).execute(&mut **change.tx()).await.unwrap();
    change.notify(Notice::GrantsChanged);
    assert!(matches!(change.commit().await, Err(shutong_store::StoreError::Unaudited)));
    assert!(seen.lock().unwrap().is_empty(), "no effects without a commit");
    let mut change = Change::begin(&db, &ctx).await.unwrap();
    sqlx::query(insert).execute(&mut **change.tx()).await.unwrap();
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::RegionUpsert,
            target_kind: "region",
            target_id: "329901".into(),
            department_id: None,
            detail: json!({}),
        })
        .await
        .unwrap();
    change.notify(Notice::GrantsChanged);
    change.commit().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[(Notice::GrantsChanged, 1)], "the effect ran once, after the commit");

    // The catalog service alone (as the CLI, a future exchange node or federation would call it).
    let editor = shutong_identity::user_id_by_username(&db, "ga.editor").await.unwrap().unwrap();
    let editor = shutong_identity::load_principal(&db, editor).await.unwrap().unwrap();
    let reviewer = shutong_identity::user_id_by_username(&db, "sq.reviewer").await.unwrap().unwrap();
    let reviewer = shutong_identity::load_principal(&db, reviewer).await.unwrap().unwrap();
    let token = app.login("ga.editor", shutong::demo::DEMO_PASSWORD).await;
    let mut doc: shutong_catalog::ResourceDocument =
        serde_json::from_value(app.get("/api/v1/catalog/resources/101/000001", &token).await.body["document"].clone()).unwrap();
    doc.name = "效果测试独有资源".into();
    let new = shutong_catalog::NewResource { classification_code: "101".into(), provider: None, document: doc, project: None };
    let view = shutong_catalog::create_resource(&db, &editor, &ctx, new).await.unwrap();
    shutong_catalog::submit(&db, &editor, &ctx, &view.code).await.unwrap();
    shutong_catalog::review(&db, app.clock(), &reviewer, &ctx, &view.code, shutong_catalog::ReviewDecision::Approve).await.unwrap();
    let hits = app.call(Method::GET, "/api/v1/catalog/search?q=%E6%95%88%E6%9E%9C%E6%B5%8B%E8%AF%95%E7%8B%AC%E6%9C%89", None, None).await; // 效果测试独有
    assert_eq!(hits.body["hits"][0]["code"], view.code.as_str(), "searchable at once: {:?}", hits.body);
    app.stop().await;
}

/// The portal parses and asks the service; it never guesses: an unknown ingest mode is refused (it became a
/// full batch, which replaces the dataset), an unknown access method is refused naming it (it was dropped),
/// and the request form shows each item's sharing type as the service decides it (an unconditional item
/// of a conditional resource is conditional).
async fn the_portal_refuses_what_it_cannot_parse_and_shows_the_services_rules(backend: Backend) {
    let app = common::spawn_demo_app(backend).await;
    let demo = shutong::demo::DEMO_PASSWORD;
    let editor = app.login("ga.editor", demo).await;
    let rows = || async { app.get("/api/v1/data/101/000001", &editor).await.body["binding"]["row_count"].as_i64() };
    let before = rows().await;
    assert!(before.unwrap() > 1);
    let (provider, csrf) = common::portal_login(&app, "ga.editor", demo).await;
    let p = shutong_exchange::synth::person(1, 1);
    let csv = format!("{}\n{}\n", shutong_exchange::synth::POPULATION_ITEMS.join(","), p.join(","));
    for mode in ["replace", "全部"] {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("mode", mode.to_string())
            .part("file", reqwest::multipart::Part::bytes(csv.clone().into_bytes()).file_name("one.csv"));
        let r = provider.post(format!("{}/catalog/101/000001/data/batches", app.base)).multipart(form).send().await.unwrap();
        let url = r.url().to_string();
        let page = r.text().await.unwrap();
        assert!(page.contains(&format!("导入方式「{mode}」无效")), "{url}: {page}");
    }
    assert_eq!(rows().await, before, "nothing was loaded, nothing replaced");

    let (consumer, csrf) = common::portal_login(&app, "dc.rs.editor", demo).await;
    let page = consumer.get(format!("{}/requests/new?resource=101/000001", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("公民身份号码 <span class=\"muted\">（有条件共享）</span>"), "{page}");
    let r = consumer
        .post(format!("{}/requests", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("resource_code", "101/000001"),
            ("items", "姓名"),
            ("purpose", "data_verification"),
            ("basis", "《社会保险法》第五十八条"),
            ("period_to", "2027-06-30"),
            ("methods", "online_query"),
            ("methods", "teleport"),
        ])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("「teleport」不是共享方式之一"), "{page}");
    let consumer_token = app.login("dc.rs.editor", demo).await;
    let mine = app.get("/api/v1/requests?side=consumer", &consumer_token).await;
    assert!(
        !mine.body.to_string().contains("《社会保险法》第五十八条"),
        "no request was made with the known methods only: {:?}",
        mine.body
    );
    app.stop().await;
}

/// A stored code that no longer parses is an error (500, opaque to the client), never read as a default:
/// an unknown request status used to read as `pending`, an open state; an unknown department level as a
/// city; a malformed date as 1970-01-01.
async fn stored_values_that_do_not_parse_are_errors(backend: Backend) {
    let app = common::spawn_demo_app(backend).await;
    let admin = app.admin_token().await;
    let id: i64 =
        sqlx::query("SELECT MIN(id) FROM sharing_requests").fetch_one(app.db().pool()).await.map(|r| sqlx::Row::get(&r, 0)).unwrap();
    let path = format!("/api/v1/requests/{id}");
    assert_eq!(app.get(&path, &admin).await.status, StatusCode::OK);
    for (column, value) in [("status", "bogus"), ("due_on", "2026-02-30")] {
        let original: String = sqlx::query(&format!("SELECT {column} FROM sharing_requests WHERE id = $1"))
            .bind(id)
            .fetch_one(app.db().pool())
            .await
            .map(|r| sqlx::Row::get(&r, 0))
            .unwrap();
        let update = format!("UPDATE sharing_requests SET {column} = $1 WHERE id = $2");
        let set = |v: String| sqlx::query(&update).bind(v).bind(id);
        set(value.to_string()).execute(app.db().pool()).await.unwrap();
        let r = app.get(&path, &admin).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{column} = {value}: {:?}", r.body);
        assert!(!r.body.to_string().contains(value), "5xx are opaque: {:?}", r.body);
        set(original).execute(app.db().pool()).await.unwrap();
    }
    // A grant's row filter that no longer parses must not read as "no filter" (every row).
    let grant: i64 =
        sqlx::query("SELECT MIN(id) FROM sharing_grants").fetch_one(app.db().pool()).await.map(|r| sqlx::Row::get(&r, 0)).unwrap();
    sqlx::query("UPDATE sharing_grants SET row_filter = '{\"conditions\": 7' WHERE id = $1")
        .bind(grant)
        .execute(app.db().pool())
        .await
        .unwrap();
    assert_eq!(app.get(&format!("/api/v1/grants/{grant}"), &admin).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    let dept: i64 = sqlx::query("SELECT MAX(id) FROM departments").fetch_one(app.db().pool()).await.map(|r| sqlx::Row::get(&r, 0)).unwrap();
    sqlx::query("UPDATE departments SET level = 'galaxy' WHERE id = $1").bind(dept).execute(app.db().pool()).await.unwrap();
    let r = app.get(&format!("/api/v1/departments/{dept}"), &admin).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
    app.stop().await;
}

/// Who reads the audit trail and who runs the deadline sweep is decided by the service functions every
/// entry point calls: a department's staff read their own department's events and nothing else; only
/// platform administrators (and the server's schedule, an operator) sweep, whoever calls the service.
async fn reading_the_trail_and_sweeping_are_ruled_by_the_services(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let own = app.create_department(&admin, "读日志局", 61, "320100").await;
    let other = app.create_department(&admin, "别的局", 62, "320100").await;
    let editor_id = app.create_user(&admin, "dept.editor", own, &["catalog_editor"]).await;
    let editor = app.login("dept.editor", PASSWORD).await;
    let r = app.get(&format!("/api/v1/audit/events?department_id={own}"), &editor).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let events = r.body["events"].as_array().unwrap();
    assert!(!events.is_empty() && events.iter().all(|e| e["department_id"] == own), "{events:?}");
    for path in [format!("/api/v1/audit/events?department_id={other}"), "/api/v1/audit/events".to_string()] {
        assert_eq!(app.get(&path, &editor).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.get(&format!("/api/v1/audit/events?department_id={other}"), &admin).await.status, StatusCode::OK);

    let state = &app.running.as_ref().unwrap().state;
    let principal = shutong_identity::load_principal(app.db(), shutong_identity::UserId(editor_id)).await.unwrap().expect("an active user");
    let refused = shutong_sharing::sweep(&state.sharing(), &principal).await;
    assert!(matches!(refused, Err(shutong_sharing::SharingError::Forbidden(_))), "{refused:?}");
    let reader = shutong_audit::list(app.db(), &principal, &shutong_audit::AuditFilter { limit: 10, ..Default::default() }).await;
    assert!(matches!(reader, Err(shutong_audit::AuditError::Forbidden(_))), "{reader:?}");
    shutong_sharing::sweep(&state.sharing(), &shutong_identity::Principal::operator("test")).await.expect("an operator sweeps");
    assert_eq!(app.post("/api/v1/sharing/sweep", &editor, json!({})).await.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn health_ready_and_node(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["database"], if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    let r = app.call(Method::GET, "/api/v1/node", None, None).await;
    assert_eq!(r.body["level"], "province");
    assert_eq!(r.body["zone"], "outer");
    assert!(r.headers.get("x-request-id").is_some());
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert!(r.body.as_str().unwrap().contains("shutong_http_requests_total"));
    app.stop().await;
}

async fn login_me_and_lockout(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let me = app.get("/api/v1/me", &admin).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["username"], "admin");
    assert_eq!(me.body["roles"][0]["role"], "platform_admin");
    assert_eq!(me.body["department"]["kind"], "sharing_authority");

    let r = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "admin", "password": "wrong"}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "invalid_credentials");
    let r = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "nobody", "password": "wrong"}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "unknown users look the same as wrong passwords");

    // Five failures lock the account; even the right password is refused then.
    let d = app.create_department(&admin, "锁定测试局", 1, "320100").await;
    app.create_user(&admin, "locky", d, &["catalog_editor"]).await;
    for _ in 0..5 {
        let r = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "locky", "password": "Wrong-Pass-123"}))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "locky", "password": PASSWORD}))).await;
    assert_eq!(r.status, StatusCode::LOCKED, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "account_locked");

    // Logout ends the session.
    let r = app.call(Method::POST, "/api/v1/auth/logout", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &admin).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/me", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", "st_0000").await.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn bad_input_names_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let raw = |body: &'static str| {
        let req = app
            .http
            .post(format!("{}/api/v1/departments", app.base))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s, b) = raw("{\"name\": \"x\",").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"]["message"].as_str().unwrap().contains("malformed JSON"), "{b}");

    let (s, b) = raw(r#"{"name":"x","credit_code":"11320100MB0000035","region_code":"320100","level":"city","colour":"red"}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["field"], "colour", "{b}");

    let (s, b) = raw(r#"{"name":"x","region_code":"320100","level":"city"}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["field"], "credit_code", "{b}");

    let (s, b) = raw(r#"{"name":7,"credit_code":"x","region_code":"320100","level":"city"}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["field"], "name", "{b}");

    let good = shutong::demo::demo_credit_code("320100", 7);
    let mut bad_check = good.clone();
    bad_check.replace_range(17..18, if good.ends_with('0') { "1" } else { "0" });
    for (body, field) in [
        (json!({"name": "x", "credit_code": bad_check, "region_code": "320100", "level": "city"}), "credit_code"),
        (json!({"name": "x", "credit_code": "12345", "region_code": "320100", "level": "city"}), "credit_code"),
        (json!({"name": "x", "credit_code": good, "region_code": "329999", "level": "city"}), "region_code"),
        (json!({"name": "x", "credit_code": good, "region_code": "32010", "level": "city"}), "region_code"),
        (json!({"name": "x", "credit_code": good, "region_code": "320100", "level": "galaxy"}), "level"),
        (json!({"name": " ", "credit_code": good, "region_code": "320100", "level": "city"}), "name"),
        (json!({"name": "x", "credit_code": good, "region_code": "320100", "level": "city", "parent_id": 9999}), "parent_id"),
    ] {
        let r = app.post("/api/v1/departments", &admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {:?}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{body} -> {:?}", r.body);
        assert!(r.body["error"]["request_id"].is_string());
    }

    // Oversized body (the test server's limit is 64 KiB).
    let big = "x".repeat(100 * 1024);
    let r = app.post("/api/v1/departments", &admin, json!({"name": big})).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["error"]["code"], "payload_too_large");

    // Wrong content type, bad path and query values, unknown routes: all in the envelope.
    let r = app.http.post(format!("{}/api/v1/departments", app.base)).bearer_auth(&admin).body("name=x").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app.get("/api/v1/departments/abc", &admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["code"].is_string());
    let r = app.get("/api/v1/calendar/add-workdays?from=2026-09-28&n=ten", &admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "n");
    let r = app.get("/api/v1/no-such-thing", &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "not_found");

    // Users: weak password, bad username, unknown role.
    let d = app.create_department(&admin, "输入测试局", 2, "320100").await;
    for (body, field) in [
        (json!({"username": "weak", "display_name": "w", "department_id": d, "password": "short"}), "password"),
        (json!({"username": "a b", "display_name": "w", "department_id": d, "password": PASSWORD}), "username"),
        (json!({"username": "nopw", "display_name": "w", "department_id": d}), "password"),
        (json!({"username": "roley", "display_name": "w", "department_id": d, "password": PASSWORD, "roles": ["king"]}), "roles[0]"),
    ] {
        let r = app.post("/api/v1/users", &admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {:?}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{body} -> {:?}", r.body);
    }
    // Duplicates: 409 naming the field.
    let code = shutong::demo::demo_credit_code("320100", 2);
    let r = app
        .post("/api/v1/departments", &admin, json!({"name": "重复", "credit_code": code, "region_code": "320100", "level": "city"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["field"], "credit_code");
    app.stop().await;
}

/// Table-driven: what a department administrator of A may do to B's users, and to A's.
async fn department_admin_is_confined_to_its_department(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let a = app.create_department(&admin, "甲局", 11, "320100").await;
    let b = app.create_department(&admin, "乙局", 12, "320200").await;
    app.create_user(&admin, "a.admin", a, &["department_admin"]).await;
    let a_user = app.create_user(&admin, "a.user", a, &["catalog_editor"]).await;
    let b_user = app.create_user(&admin, "b.user", b, &["catalog_editor"]).await;
    let t = app.login("a.admin", PASSWORD).await;

    let listed = app.get("/api/v1/users", &t).await;
    let names: Vec<&str> = listed.body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"a.user") && names.contains(&"a.admin"), "{names:?}");
    assert!(!names.contains(&"b.user") && !names.contains(&"admin"), "B's users leak: {names:?}");
    let listed_b = app.get(&format!("/api/v1/users?department_id={b}"), &t).await;
    assert_eq!(listed_b.body["users"].as_array().unwrap().len(), 0);

    let cases: Vec<(Method, String, Option<serde_json::Value>, StatusCode)> = vec![
        (Method::GET, format!("/api/v1/users/{b_user}"), None, StatusCode::NOT_FOUND),
        (Method::PATCH, format!("/api/v1/users/{b_user}"), Some(json!({"status": "disabled"})), StatusCode::NOT_FOUND),
        (Method::POST, format!("/api/v1/users/{b_user}/roles"), Some(json!({"role": "reviewer"})), StatusCode::NOT_FOUND),
        (Method::POST, format!("/api/v1/users/{b_user}/password"), Some(json!({"new_password": "Another-Pass-99"})), StatusCode::NOT_FOUND),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"user_id": b_user, "name": "x"})), StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"username": "intruder", "display_name": "x", "department_id": b, "password": PASSWORD})),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            "/api/v1/departments".into(),
            Some(
                json!({"name": "x", "credit_code": shutong::demo::demo_credit_code("320100", 13), "region_code": "320100", "level": "city"}),
            ),
            StatusCode::FORBIDDEN,
        ),
        (Method::PATCH, format!("/api/v1/departments/{a}"), Some(json!({"name": "改名"})), StatusCode::FORBIDDEN),
        (Method::GET, "/api/v1/audit/events".into(), None, StatusCode::FORBIDDEN),
        (Method::POST, format!("/api/v1/users/{a_user}/roles"), Some(json!({"role": "auditor"})), StatusCode::FORBIDDEN),
        (Method::POST, format!("/api/v1/users/{a_user}/roles"), Some(json!({"role": "platform_admin"})), StatusCode::FORBIDDEN),
        // Allowed within A:
        (Method::GET, format!("/api/v1/users/{a_user}"), None, StatusCode::OK),
        (Method::PATCH, format!("/api/v1/users/{a_user}"), Some(json!({"display_name": "甲用户"})), StatusCode::OK),
        (Method::POST, format!("/api/v1/users/{a_user}/roles"), Some(json!({"role": "reviewer"})), StatusCode::CREATED),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"username": "a.new", "display_name": "x", "department_id": a, "password": PASSWORD, "roles": ["reviewer"]})),
            StatusCode::CREATED,
        ),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"user_id": a_user, "name": "A 系统"})), StatusCode::CREATED),
    ];
    for (method, path, body, expected) in cases {
        let r = app.call(method.clone(), &path, Some(&t), body.clone()).await;
        assert_eq!(r.status, expected, "{method} {path} {body:?} -> {:?}", r.body);
    }
    // B's user is unchanged.
    let b_view = app.get(&format!("/api/v1/users/{b_user}"), &admin).await;
    assert_eq!(b_view.body["user"]["status"], "active");
    assert_eq!(b_view.body["roles"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// Table-driven: an auditor reads everything and changes nothing.
async fn auditor_reads_but_cannot_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let audit_office = app.create_department(&admin, "审计厅", 21, "320000").await;
    let a = app.create_department(&admin, "丙局", 22, "320100").await;
    app.create_user(&admin, "aud", audit_office, &["auditor"]).await;
    let a_user = app.create_user(&admin, "c.user", a, &["catalog_editor"]).await;
    let (_, secret) = {
        let r = app.post("/api/v1/tokens", &admin, json!({"user_id": a_user, "name": "丙系统"})).await;
        (r.body["token"]["id"].as_i64().unwrap(), r.body["secret"].as_str().unwrap().to_string())
    };
    let token_id = app.get("/api/v1/tokens", &admin).await.body["tokens"][0]["id"].as_i64().unwrap();
    let t = app.login("aud", PASSWORD).await;

    let reads = [
        "/api/v1/departments".to_string(),
        format!("/api/v1/departments/{a}"),
        "/api/v1/users".into(),
        format!("/api/v1/users/{a_user}"),
        "/api/v1/tokens".into(),
        "/api/v1/audit/events".into(),
        "/api/v1/me".into(),
    ];
    for path in &reads {
        let r = app.get(path, &t).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path} -> {:?}", r.body);
    }
    assert!(app.get("/api/v1/users", &t).await.body["users"].as_array().unwrap().len() >= 3);

    let writes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::POST,
            "/api/v1/departments".into(),
            Some(
                json!({"name": "x", "credit_code": shutong::demo::demo_credit_code("320100", 23), "region_code": "320100", "level": "city"}),
            ),
        ),
        (Method::PATCH, format!("/api/v1/departments/{a}"), Some(json!({"name": "改"}))),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"username": "x1", "display_name": "x", "department_id": a, "password": PASSWORD})),
        ),
        (Method::PATCH, format!("/api/v1/users/{a_user}"), Some(json!({"status": "disabled"}))),
        (Method::POST, format!("/api/v1/users/{a_user}/roles"), Some(json!({"role": "reviewer"}))),
        (Method::DELETE, format!("/api/v1/users/{a_user}/roles/1"), None),
        (Method::POST, format!("/api/v1/users/{a_user}/password"), Some(json!({"new_password": "Another-Pass-99"}))),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"user_id": a_user, "name": "x"}))),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"name": "own"}))),
        (Method::DELETE, format!("/api/v1/tokens/{token_id}"), None),
        (Method::PUT, "/api/v1/reference/regions/320199".into(), Some(json!({"name": "测试区"}))),
    ];
    for (method, path, body) in writes {
        let r = app.call(method.clone(), &path, Some(&t), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} -> {:?}", r.body);
    }
    // The token still works: nothing changed.
    assert_eq!(app.get("/api/v1/me", &secret).await.status, StatusCode::OK);
    app.stop().await;
}

async fn tokens_work_until_revoked_or_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let d = app.create_department(&admin, "令牌局", 31, "320100").await;
    let r = app
        .post("/api/v1/users", &admin, json!({"username": "sys.node", "display_name": "前置机", "department_id": d, "is_system": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["roles"][0]["role"], "system_account");
    let sys = r.body["user"]["id"].as_i64().unwrap();
    let r = app.post("/api/v1/tokens", &admin, json!({"user_id": sys, "name": "前置机令牌", "ttl_days": 30})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let id = r.body["token"]["id"].as_i64().unwrap();
    assert!(secret.starts_with("st_") && secret.len() > 40);
    let me = app.get("/api/v1/me", &secret).await;
    assert_eq!(me.body["user"]["username"], "sys.node");
    // The secret is never listed.
    let list = app.get("/api/v1/tokens", &admin).await;
    assert!(!list.body.to_string().contains(&secret));
    // Revoked: stops at once.
    let r = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["revoked_at"].is_string());
    assert_eq!(app.get("/api/v1/me", &secret).await.status, StatusCode::UNAUTHORIZED);
    // Expired: stops too.
    let r = app.post("/api/v1/tokens", &admin, json!({"user_id": sys, "name": "短期"})).await;
    let secret2 = r.body["secret"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me", &secret2).await.status, StatusCode::OK);
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(shutong_store::now_ms() - 1000)
        .bind(r.body["token"]["id"].as_i64().unwrap())
        .execute(app.db().pool())
        .await
        .unwrap();
    // Changed in the database directly, not through the platform: seen once the principal cache lapses.
    tokio::time::sleep(common::PRINCIPAL_CACHE + std::time::Duration::from_millis(50)).await;
    assert_eq!(app.get("/api/v1/me", &secret2).await.status, StatusCode::UNAUTHORIZED);
    // A disabled account's tokens stop as well.
    let r = app.post("/api/v1/tokens", &admin, json!({"user_id": sys, "name": "三"})).await;
    let secret3 = r.body["secret"].as_str().unwrap().to_string();
    app.call_ok(Method::PATCH, &format!("/api/v1/users/{sys}"), Some(&admin), Some(json!({"status": "disabled"}))).await;
    assert_eq!(app.get("/api/v1/me", &secret3).await.status, StatusCode::UNAUTHORIZED);
    // Bad TTL.
    let r = app.post("/api/v1/tokens", &admin, json!({"name": "x", "ttl_days": 0})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "ttl_days");
    app.stop().await;
}

async fn every_change_writes_its_audit_event_in_the_same_transaction(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let count = || async { shutong_audit::count(app.db()).await.unwrap() };
    let before = count().await;
    let d = app.create_department(&admin, "审计测试局", 41, "320100").await;
    assert_eq!(count().await, before + 1);
    let events = app.get("/api/v1/audit/events?action=department.create&limit=1", &admin).await;
    let e = &events.body["events"][0];
    assert_eq!(e["target_id"], d.to_string());
    assert_eq!(e["actor"], "admin");
    assert!(e["request_id"].is_string());
    assert_eq!(e["ip"], "127.0.0.1");
    // A rejected change writes nothing.
    let before = count().await;
    let r =
        app.post("/api/v1/departments", &admin, json!({"name": "x", "credit_code": "bad", "region_code": "320100", "level": "city"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count().await, before);
    // Users, roles, tokens, passwords: one event each.
    let before = count().await;
    let u = app.create_user(&admin, "audited", d, &["catalog_editor"]).await;
    app.post_ok(&format!("/api/v1/users/{u}/roles"), &admin, json!({"role": "reviewer"})).await;
    app.post_ok("/api/v1/tokens", &admin, json!({"user_id": u, "name": "t"})).await;
    app.post_ok(&format!("/api/v1/users/{u}/password"), &admin, json!({"new_password": "Reset-Pass-2026"})).await;
    assert_eq!(count().await, before + 4);
    let actions: Vec<String> = app.get("/api/v1/audit/events?limit=4", &admin).await.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["user.reset_password", "token.create", "role.assign", "user.create"]);
    // Cursor pagination.
    let page = app.get("/api/v1/audit/events?limit=2", &admin).await;
    let next = page.body["next_before"].as_i64().unwrap();
    let page2 = app.get(&format!("/api/v1/audit/events?limit=2&before={next}"), &admin).await;
    assert!(page2.body["events"][0]["seq"].as_i64().unwrap() < next);
    app.stop().await;
}

async fn reference_and_calendar_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let get = |p: &'static str| app.call(Method::GET, p, None, None);
    let r = get("/api/v1/reference/id-numbers/%2011010519491231002x%20").await;
    assert_eq!(r.body["valid"], true);
    assert_eq!(r.body["normalized"], "11010519491231002X");
    assert_eq!(r.body["details"]["sex"], "female");
    let r = get("/api/v1/reference/id-numbers/110105194912310021").await;
    assert_eq!(r.body["valid"], false);
    assert!(r.body["reason"].as_str().unwrap().contains("expected 'X'"));
    let r = get("/api/v1/reference/credit-codes/91110000600037341L").await;
    assert_eq!(r.body["details"]["entity_type"], "企业");
    let r = get("/api/v1/reference/org-codes/D2143569-X").await;
    assert_eq!(r.body["normalized"], "D2143569X");
    let r = get("/api/v1/reference/regions/610200").await;
    assert_eq!(r.body["name"], "铜川市");
    assert_eq!(get("/api/v1/reference/regions/329999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get("/api/v1/reference/regions/abc").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = get("/api/v1/reference/regions?parent=610200").await;
    assert!(r.body["regions"].as_array().unwrap().iter().any(|e| e["name"] == "耀州区"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/reference/validate",
            None,
            Some(json!({"kind": "id_number", "values": ["11010519491231002X", "x", ""]})),
        )
        .await;
    assert_eq!((r.body["valid"].as_u64(), r.body["invalid"].as_u64()), (Some(1), Some(2)));
    let r = app.call(Method::POST, "/api/v1/reference/mask", None, Some(json!({"kind": "mobile", "value": "13812345678"}))).await;
    assert_eq!(r.body["masked"], "138****5678");

    // The 2026 national day: due date of a request submitted on 2026-09-28.
    let r = get("/api/v1/calendar/add-workdays?from=2026-09-28&n=10").await;
    assert_eq!(r.body["date"], "2026-10-16");
    assert_eq!(r.body["source"], "official");
    let r = get("/api/v1/calendar/workdays/2026-10-10").await;
    assert_eq!((r.body["workday"].as_bool(), r.body["kind"].as_str()), (Some(true), Some("work")));
    let r = get("/api/v1/calendar/between?from=2026-09-28&to=2026-10-16").await;
    assert_eq!(r.body["workdays"], 10);
    let r = get("/api/v1/calendar/workdays/2027-01-01").await;
    assert_eq!((r.body["workday"].as_bool(), r.body["source"].as_str()), (Some(true), Some("weekday_fallback")));

    // Import 2027 (admin only); the answer changes at once and survives a restart.
    let doc = r#"{"year":2027,"papers":[],"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}"#;
    let put = |token: &str| {
        app.http
            .put(format!("{}/api/v1/calendar/years/2027", app.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(doc)
            .send()
    };
    let d = app.create_department(&admin, "日历局", 51, "320100").await;
    app.create_user(&admin, "cal.editor", d, &["catalog_editor"]).await;
    let editor = app.login("cal.editor", PASSWORD).await;
    assert_eq!(put(&editor).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(put(&admin).await.unwrap().status(), StatusCode::OK);
    let r = get("/api/v1/calendar/workdays/2027-01-01").await;
    assert_eq!((r.body["workday"].as_bool(), r.body["source"].as_str()), (Some(false), Some("official")));
    let cal = shutong_refdata::load_calendar(app.db()).await.unwrap();
    assert!(cal.is_known_year(2027));
    let bad = app.http.put(format!("{}/api/v1/calendar/years/2028", app.base)).bearer_auth(&admin).body(doc).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Region update (admin).
    let r = app
        .call(
            Method::PUT,
            "/api/v1/reference/regions/320199",
            Some(&admin),
            Some(json!({"name": "示范新区", "parent": "320100", "valid_from": 2026})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(get("/api/v1/reference/regions/320199").await.body["name"], "示范新区");
    app.stop().await;
}

async fn cookie_sessions_need_the_csrf_header(backend: Backend) {
    let app = spawn_app(backend).await;
    // Log in through the portal form to get a cookie session.
    let page = app.http.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = app
        .http
        .post(format!("{}/login", app.base))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "redirected to the dashboard");
    // Reads work with the cookie; writes need the header.
    let r = app.http.get(format!("{}/api/v1/me", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = json!({"name": "x", "credit_code": shutong::demo::demo_credit_code("320100", 61), "region_code": "320100", "level": "city"});
    let r = app.http.post(format!("{}/api/v1/departments", app.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Portal forms without the right token are refused, and change nothing.
    let r = app
        .http
        .post(format!("{}/departments", app.base))
        .form(&[
            ("csrf", "forged"),
            ("name", "伪造"),
            ("credit_code", "x"),
            ("region_code", "320100"),
            ("level", "city"),
            ("kind", "government"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Security headers.
    let r = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // A login form posted without its double-submit cookie is refused.
    let fresh = reqwest::Client::new();
    let r = fresh
        .post(format!("{}/login", app.base))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn openapi_document_lists_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/departments",
        "/api/v1/departments/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}/roles",
        "/api/v1/tokens",
        "/api/v1/audit/events",
        "/api/v1/reference/id-numbers/{value}",
        "/api/v1/reference/validate",
        "/api/v1/calendar/add-workdays",
        "/api/v1/calendar/years/{year}",
        "/api/v1/subscriptions",
        "/api/v1/requests",
        "/api/v1/requests/{id}",
        "/api/v1/requests/{id}/approve",
        "/api/v1/requests/{id}/reject",
        "/api/v1/requests/{id}/withdraw",
        "/api/v1/requests/{id}/escalate",
        "/api/v1/requests/stats",
        "/api/v1/grants",
        "/api/v1/grants/{id}/revoke",
        "/api/v1/grants/{id}/renew",
        "/api/v1/inbox",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    let docs = app.http.get(format!("{}/api/v1/docs/", app.base)).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    app.stop().await;
}

/// Each migration applies to a database holding data written under the migration before it: every table
/// of that version gets a row, the migration runs, and every row is still there (a migration that loses
/// or refuses existing rows fails here). The old form of this test re-ran an applied migrator.
async fn migrations_apply_to_a_database_that_holds_data(backend: Backend) {
    let opts = shutong_store::DbOptions::default();
    let versions = {
        let probe = common::TestDb::new(backend).await;
        shutong_store::Db::connect(&probe.url, &opts).await.unwrap().migration_versions()
    };
    assert!(versions.len() >= 8, "{versions:?}");
    for pair in versions.windows(2) {
        let (before, next) = (pair[0], pair[1]);
        let test_db = common::TestDb::new(backend).await;
        let db = shutong_store::Db::connect(&test_db.url, &opts).await.unwrap();
        db.migrate_to(before).await.unwrap();
        let written = common::fill_every_table(&db).await;
        db.migrate_to(next).await.unwrap_or_else(|e| panic!("migration {next} on the data of {before}: {e}"));
        let after = common::row_counts(&db, written.keys()).await;
        assert_eq!(after, written, "migration {next} kept every row written under {before}");
        db.close().await;
    }
}

/// The SQLite and PostgreSQL migrations define the same tables, columns (name, NOT NULL, default, key) and
/// indexes: the one portable code path relies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_define_the_same_schema() {
    let opts = shutong_store::DbOptions::default();
    let mut shapes = Vec::new();
    let mut dbs = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let test_db = common::TestDb::new(backend).await;
        let db = shutong_store::Db::connect(&test_db.url, &opts).await.unwrap();
        db.migrate().await.unwrap();
        let shape: std::collections::BTreeMap<String, Vec<(String, bool, bool, bool)>> = common::schema_of(&db)
            .await
            .into_iter()
            .map(|(t, cols)| {
                let mut cols: Vec<_> =
                    cols.into_iter().map(|c| (c.name, c.not_null || c.primary_key, c.has_default, c.primary_key)).collect();
                cols.sort();
                (t, cols)
            })
            .collect();
        shapes.push((shape, common::indexes_of(&db).await));
        dbs.push(test_db);
    }
    let (sqlite, postgres) = (&shapes[0], &shapes[1]);
    assert_eq!(sqlite.0.keys().collect::<Vec<_>>(), postgres.0.keys().collect::<Vec<_>>(), "the same tables");
    for (table, cols) in &sqlite.0 {
        assert_eq!(cols, &postgres.0[table], "the columns of {table} (name, not null, default, key)");
    }
    assert_eq!(sqlite.1, postgres.1, "the same indexes");
}

/// The database unreachable: /readyz and API calls answer 503, not 500.
#[tokio::test]
async fn database_unreachable_gives_503() {
    for url in ["postgres://postgres@127.0.0.1:1/none", "sqlite:///nonexistent-dir/x/y.db?mode=rw"] {
        let db = shutong_store::Db::connect(
            url,
            &shutong_store::DbOptions { max_connections: 2, acquire_timeout: std::time::Duration::from_millis(500), ..Default::default() },
        )
        .await
        .unwrap();
        let config = shutong_config::Config { listen: "127.0.0.1:0".into(), ..Default::default() };
        let state = shutong_web::AppState::new(
            db.clone(),
            std::sync::Arc::new(config),
            shutong_reference::WorkCalendar::builtin(),
            shutong_reference::RegionTable::builtin(),
            std::sync::Arc::new(shutong_catalog::search::CatalogIndex::new().unwrap()),
            shutong_exchange::Exchange::with_defaults(db.clone()),
            std::sync::Arc::new(shutong_crypto::NodeKey::generate()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = shutong_web::app(state);
        tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await });
        let http = reqwest::Client::new();
        let r = http.get(format!("http://{addr}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
        let r = http
            .post(format!("http://{addr}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "database_unavailable");
        let r = http.get(format!("http://{addr}/api/v1/me")).bearer_auth("st_abc").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
        // The liveness probe still answers.
        assert_eq!(http.get(format!("http://{addr}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    }
}

/// The PostgreSQL tests really run against PostgreSQL.
#[tokio::test]
async fn postgres_backend_is_really_postgres() {
    let app = spawn_app_with(Backend::Postgres, |_| {}).await;
    assert_eq!(app.db().backend(), shutong_store::Backend::Postgres);
    let v: String = sqlx::Row::get(&sqlx::query("SELECT version()").fetch_one(app.db().pool()).await.unwrap(), 0);
    eprintln!("PostgreSQL under test: {v}");
    assert!(v.starts_with("PostgreSQL"));
    app.stop().await;
}

async fn masking_rules_are_configurable(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.masking.insert(shutong_reference::MaskKind::Mobile, shutong_reference::MaskRule { keep_head: 0, keep_tail: 4, mask_char: '#' });
    })
    .await;
    let r = app.call(Method::POST, "/api/v1/reference/mask", None, Some(json!({"kind": "mobile", "value": "13812345678"}))).await;
    assert_eq!(r.body["masked"], "#######5678");
    let r = app.call(Method::POST, "/api/v1/reference/mask", None, Some(json!({"kind": "id_number", "value": "11010519491231002X"}))).await;
    assert_eq!(r.body["masked"], "110105********002X");
    let r = app.call(Method::POST, "/api/v1/reference/mask", None, Some(json!({"kind": "passport", "value": "x"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "kind");
    let r = app.call(Method::GET, "/api/v1/reference/masking", None, None).await;
    let mobile = r.body["rules"].as_array().unwrap().iter().find(|x| x["kind"] == "mobile").unwrap().clone();
    assert_eq!((mobile["keep_head"].as_u64(), mobile["configured"].as_bool()), (Some(0), Some(true)));
    app.stop().await;
}

async fn node_identity_follows_configuration(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    app.restart_with(|c| {
        c.node.level = "city".into();
        c.node.region_code = "610200".into();
        c.node.name = "铜川市政务数据共享交换平台".into();
    })
    .await;
    let r = app.call(Method::GET, "/api/v1/node", None, None).await;
    assert_eq!((r.body["level"].as_str(), r.body["region_code"].as_str()), (Some("city"), Some("610200")));
    // The change is audited, and the first administrator is not created twice.
    let events = app.get("/api/v1/audit/events?action=node.set_identity", &admin).await;
    assert_eq!(events.body["events"].as_array().unwrap().len(), 2);
    assert_eq!(events.body["events"][0]["actor"], "system:config");
    assert_eq!(app.get("/api/v1/users", &admin).await.body["users"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// 限流: beyond the per-address or per-credential rate (burst twice the rate), 429 with `Retry-After` and the
/// envelope; health endpoints are never limited; one credential's excess does not limit another's.
async fn rate_limits_per_address_and_per_credential(backend: Backend) {
    let app = common::spawn_app_with(backend, |c| {
        c.security.rate_per_ip = 20;
        c.security.rate_per_token = 0;
    })
    .await;
    let mut limited = None;
    for _ in 0..80 {
        let r = app.http.get(format!("{}/api/v1/node", app.base)).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("80 requests at once from one address must exceed 20/s with a burst of 40");
    assert!(r.headers().get("retry-after").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("address"), "{body}");
    for _ in 0..50 {
        assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    }
    app.stop().await;

    let app = common::spawn_app_with(backend, |c| {
        c.security.rate_per_ip = 0;
        c.security.rate_per_token = 10;
    })
    .await;
    let admin = app.admin_token().await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(app.get("/api/v1/me", &admin).await.status);
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Another credential is not limited by the first one's excess.
    let other = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.get("/api/v1/me", &other).await.status, StatusCode::OK);
    app.stop().await;
}
