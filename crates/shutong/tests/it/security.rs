//! The security suite (issue #7), on SQLite and PostgreSQL: every endpoint of the OpenAPI document × every
//! role (allowed, 401 or 403, never 5xx); SQL-injection strings in text fields, path segments and query
//! parameters (stored verbatim or refused, never executed, nothing leaked); malformed and expired
//! credentials; oversized bodies; path traversal.

use crate::common;

use crate::common::{Backend, TestApp, spawn_demo_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DEMO: &str = shutong::demo::DEMO_PASSWORD;

on_both_backends!(every_endpoint_by_every_role, injection_strings_are_data, credentials_and_bodies, signed_requests_are_accepted_once);

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\" OR 1=1 --",
    "1; SELECT pg_sleep(10)",
    "%' OR 1=1 --",
    "admin'--",
    "') UNION SELECT username, password_hash FROM users --",
    "\\' ; --",
    "$1",
    "?1",
    "😀'\u{0}x",
];

async fn app(backend: Backend) -> TestApp {
    spawn_demo_app_with(backend, |c| {
        // The suite sends hundreds of requests at once from one address.
        c.security.rate_per_ip = 0;
        c.security.rate_per_token = 0;
    })
    .await
}

fn is_envelope(v: &Value) -> bool {
    v["error"]["code"].is_string() && v["error"]["message"].is_string()
}

/// The OpenAPI document's operations, with sample path parameters.
fn operations(app_doc: &Value) -> Vec<(Method, String, bool)> {
    let mut ops = Vec::new();
    for (path, item) in app_doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op.get("security").is_some();
            let concrete = path
                .replace("{classification}", "101")
                .replace("{sequence}", "000001")
                .replace("{assignment_id}", "1")
                .replace("{id}", "1")
                .replace("{key}", "11010519491231002X")
                .replace("{dimension}", "timeliness")
                .replace("{value}", "x")
                .replace("{date}", "2026-01-01")
                .replace("{year}", "2026")
                .replace("{code}", "320000")
                .replace("{path}", "x");
            ops.push((method.to_uppercase().parse().unwrap(), concrete, secured));
        }
    }
    ops
}

async fn every_endpoint_by_every_role(backend: Backend) {
    let app = app(backend).await;
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None, None).await.body;
    let ops = operations(&doc);
    assert!(ops.len() > 80, "{} operations", ops.len());
    let anonymous = reqwest::Client::new();
    let mut tokens = vec![("admin".to_string(), app.admin_token().await)];
    for user in ["ga.admin", "ga.editor", "auditor", "dc.rs.editor", "sq.reviewer"] {
        tokens.push((user.to_string(), app.login(user, DEMO).await));
    }
    let mut calls = 0;
    for (method, path, secured) in &ops {
        if path == "/api/v1/auth/logout" {
            continue; // would end the sessions the rest of the loop uses; checked below
        }
        // Anonymous: 401 with the envelope wherever a credential is required.
        let res = anonymous.request(method.clone(), format!("{}{path}", app.base)).json(&json!({})).send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.as_u16() < 500, "{method} {path} anonymous: {status} {body}");
        if *secured {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without a credential: {body}");
            assert!(is_envelope(&body), "{method} {path}: {body}");
        }
        for (user, token) in &tokens {
            let r = app.call(method.clone(), path, Some(token), Some(json!({}))).await;
            calls += 1;
            assert!(r.status.as_u16() < 500, "{method} {path} as {user}: {} {}", r.status, r.body);
            assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} as {user}: a valid credential was refused: {}", r.body);
            if !r.status.is_success() && r.status != StatusCode::NOT_MODIFIED {
                assert!(is_envelope(&r.body), "{method} {path} as {user}: {} {}", r.status, r.body);
            }
        }
    }
    assert!(calls > 500, "{calls}");

    // Auditing and node-wide administration are refused to department staff: 403, not a quiet empty answer.
    let editor = &tokens.iter().find(|(u, _)| u == "ga.editor").unwrap().1;
    let dept_admin = &tokens.iter().find(|(u, _)| u == "ga.admin").unwrap().1;
    for (method, path) in [
        (Method::GET, "/api/v1/audit/events"),
        (Method::GET, "/api/v1/audit/chain"),
        (Method::GET, "/api/v1/audit/export"),
        (Method::GET, "/api/v1/audit/archives"),
        (Method::POST, "/api/v1/audit/verify"),
        (Method::POST, "/api/v1/sharing/sweep"),
    ] {
        for t in [editor, dept_admin] {
            let r = app.call(method.clone(), path, Some(t), Some(json!({}))).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.body);
        }
    }
    // Logout ends exactly the session it is called with.
    let own = app.login("ga.editor", DEMO).await;
    assert_eq!(app.call(Method::POST, "/api/v1/auth/logout", Some(&own), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &own).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", editor).await.status, StatusCode::OK);
    app.stop().await;
}

fn enc(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn injection_strings_are_data(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let auditor = app.login("auditor", DEMO).await;
    let ga_admin = app.login("ga.admin", DEMO).await;
    let consumer = app.login("dc.rs.editor", DEMO).await;
    let users_before = app.get("/api/v1/users?limit=1000", &admin).await.body;
    let seen_by_ga = |v: &Value| v.as_array().map(|a| a.len()).unwrap_or_else(|| v["users"].as_array().map(|a| a.len()).unwrap_or(0));
    let ga_before = seen_by_ga(&app.get("/api/v1/users", &ga_admin).await.body);

    for (i, payload) in INJECTIONS.iter().enumerate() {
        let p = *payload;
        let q = enc(p);
        let calls: Vec<(Method, String, Option<&str>, Option<Value>)> = vec![
            (Method::POST, "/api/v1/auth/login".into(), None, Some(json!({"username": p, "password": p}))),
            (
                Method::POST,
                "/api/v1/departments".into(),
                Some(&admin),
                Some(json!({"name": p, "credit_code": p, "region_code": p, "level": p})),
            ),
            (
                Method::POST,
                "/api/v1/users".into(),
                Some(&admin),
                Some(json!({"username": p, "display_name": p, "department_id": 1, "password": p})),
            ),
            (Method::GET, format!("/api/v1/catalog/search?q={q}"), None, None),
            (Method::GET, format!("/api/v1/catalog/resources?q={q}&status={q}&provider={q}"), Some(&consumer), None),
            (Method::GET, format!("/api/v1/audit/events?action={q}&actor={q}&target_kind={q}&target_id={q}"), Some(&auditor), None),
            (Method::GET, format!("/api/v1/audit/events?department_id={q}&before={q}"), Some(&auditor), None),
            (Method::GET, format!("/api/v1/reference/regions?q={q}"), None, None),
            (Method::GET, format!("/api/v1/reference/id-numbers/{q}"), None, None),
            (Method::GET, format!("/api/v1/reference/credit-codes/{q}"), None, None),
            (Method::GET, format!("/api/v1/calendar/workdays/{q}"), None, None),
            (Method::GET, format!("/api/v1/data/{q}/{q}"), Some(&consumer), None),
            (Method::GET, format!("/api/v1/data/101/000001/records/{q}"), Some(&consumer), None),
            (
                Method::POST,
                "/api/v1/data/101/000001/query".into(),
                Some(&consumer),
                Some(json!({"where": [{"item": p, "op": "eq", "value": p}]})),
            ),
            (
                Method::POST,
                "/api/v1/data/101/000001/query".into(),
                Some(&consumer),
                Some(json!({"where": [{"item": "公民身份号码", "op": "eq", "value": p}]})),
            ),
            (Method::GET, format!("/api/v1/data/101/000001/changes?since={q}"), Some(&consumer), None),
            (Method::GET, format!("/api/v1/users?department_id={q}"), Some(&ga_admin), None),
            (Method::GET, format!("/api/v1/requests?status={q}&side={q}"), Some(&consumer), None),
            (Method::GET, format!("/api/v1/grants?state={q}&resource={q}"), Some(&consumer), None),
            (Method::POST, "/api/v1/exemptions/check".into(), Some(&consumer), Some(json!({"subject": p, "items": [p]}))),
        ];
        for (method, path, token, body) in calls {
            let r = app.call(method.clone(), &path, token, body).await;
            assert!(r.status.as_u16() < 500, "{method} {path} with {p:?}: {} {}", r.status, r.body);
            if !r.status.is_success() {
                assert!(is_envelope(&r.body), "{method} {path}: {}", r.body);
            }
        }
        // Where the value is legal, it is stored verbatim (parameters, not SQL).
        let name = format!("注入测试部门{i}{p}");
        let r = app
            .post(
                "/api/v1/departments",
                &admin,
                json!({"name": name, "credit_code": shutong::demo::demo_credit_code("320000", 700 + i as u32), "region_code": "320000", "level": "province"}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            assert_eq!(r.body["name"], name.trim(), "{}", r.body);
        } else {
            assert!(r.status.is_client_error() && is_envelope(&r.body), "{}: {}", r.status, r.body);
        }
    }
    // Nothing was dropped or widened: the users are all still there, and a department administrator still
    // sees only its own.
    let users_after = app.get("/api/v1/users?limit=1000", &admin).await.body;
    assert_eq!(seen_by_ga(&users_after), seen_by_ga(&users_before));
    assert_eq!(seen_by_ga(&app.get("/api/v1/users", &ga_admin).await.body), ga_before);
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    let n: i64 = sqlx::Row::get(&sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&mut c).await.unwrap(), 0);
    assert!(n > 10);
    app.stop().await;
}

async fn credentials_and_bodies(backend: Backend) {
    let app = app(backend).await;
    let http = reqwest::Client::new();
    let long = format!("Bearer st_{}", "A".repeat(8000));
    let headers: Vec<reqwest::header::HeaderValue> = vec![
        "Bearer".parse().unwrap(),
        "Bearer ".parse().unwrap(),
        "Bearer x".parse().unwrap(),
        "Basic YWRtaW46eA==".parse().unwrap(),
        "Bearer ' OR 1=1 --".parse().unwrap(),
        "Bearer st_0000000000000000000000000000000000000000000000".parse().unwrap(),
        long.parse().unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
    ];
    for h in headers {
        let r = http.get(format!("{}/api/v1/me", app.base)).header("authorization", h.clone()).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST, "{h:?}: {status} {body}");
        assert!(is_envelope(&body), "{h:?}: {body}");
    }
    // A cookie that is not a session.
    let r = http.get(format!("{}/api/v1/me", app.base)).header("cookie", "shutong_session=' OR 1=1 --").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An expired API token stops working (within the principal cache's lifetime).
    let admin = app.admin_token().await;
    let me = app.get("/api/v1/me", &admin).await.body;
    let t = app.post("/api/v1/tokens", &admin, json!({"user_id": me["user"]["id"], "name": "short", "ttl_days": 1})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    let token = t.body["secret"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = 1").execute(&mut c).await.unwrap();
    tokio::time::sleep(common::PRINCIPAL_CACHE + std::time::Duration::from_millis(100)).await;
    let r = app.get("/api/v1/me", &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    // Oversized bodies: 413 with the envelope (the test limit is 64 KiB), JSON nested deeply: 4xx.
    let big = json!({"name": "x".repeat(200_000), "credit_code": "x", "region_code": "320000"});
    let r = app.post("/api/v1/departments", &admin, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(is_envelope(&r.body), "{}", r.body);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = http
        .post(format!("{}/api/v1/departments", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    // Path traversal: nothing outside the served routes.
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/../../Cargo.toml",
        "/catalog/..%2f..%2fCargo.toml",
    ] {
        let r = http.get(format!("{}{path}", app.base)).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.as_u16() < 500, "{path}: {status}");
        assert!(!text.contains("[workspace]") && !text.contains("root:x:0:0"), "{path} leaked a file");
    }
    app.stop().await;
}

/// A signed request, as a client builds it (`shutong_crypto::request_signing`), with the timestamp and nonce
/// chosen by the test.
struct Signer {
    key: shutong_crypto::NodeKey,
    account: String,
}

impl Signer {
    fn headers(&self, method: &str, path: &str, body: &[u8], timestamp: i64, nonce: &str) -> Vec<(&'static str, String)> {
        shutong_crypto::request_signing::sign(&self.key, &self.account, method, path, body, timestamp, nonce).to_vec()
    }
}

async fn send(app: &TestApp, method: Method, path: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> (StatusCode, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}{path}", app.base)).header("content-type", "application/json").body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// 签名请求: a system account with a registered SM2 key signs instead of sending a token; each request is
/// accepted once, within five minutes, with its exact body, and only for system accounts.
async fn signed_requests_are_accepted_once(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let ga = app.get("/api/v1/me", &app.login("ga.admin", DEMO).await).await.body["user"]["department_id"].as_i64().unwrap();
    let r = app.post("/api/v1/users", &admin, json!({"username": "ga.qianzhiji", "display_name": "公安厅前置机", "department_id": ga, "is_system": true, "roles": ["system_account"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sys = r.body["user"]["id"].as_i64().unwrap();
    let signer = Signer { key: shutong_crypto::NodeKey::generate(), account: "ga.qianzhiji".into() };
    let now = shutong_store::now_ms();
    let me = signer.headers("GET", "/api/v1/me", b"", now, "nonce-0000000000001");
    // No key registered yet.
    assert_eq!(send(&app, Method::GET, "/api/v1/me", &me, vec![]).await.0, StatusCode::UNAUTHORIZED);
    // Registered as PEM by the department's administrator; stored as hex.
    let ga_admin = app.login("ga.admin", DEMO).await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{sys}/sm2-key"),
            Some(&ga_admin),
            Some(json!({"public_key": signer.key.public_key_pem()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["public_key"], signer.key.public_key_hex());
    // A person cannot register a key: people log in.
    let person = app.get("/api/v1/me", &app.login("ga.editor", DEMO).await).await.body["user"]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{person}/sm2-key"),
            Some(&admin),
            Some(json!({"public_key": signer.key.public_key_hex()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app.call(Method::PUT, &format!("/api/v1/users/{sys}/sm2-key"), Some(&admin), Some(json!({"public_key": "04abcd"}))).await;
    assert_eq!(r.body["error"]["field"], "public_key", "{}", r.body);

    // Accepted, as the account; the account's use of the platform is recorded (the zombie verdict reads it).
    let user_path = format!("/api/v1/users/{sys}");
    assert_eq!(app.get(&user_path, &admin).await.body["user"]["last_signed_at"], Value::Null);
    let (status, body) = send(&app, Method::GET, "/api/v1/me", &me, vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "ga.qianzhiji");
    let used = app.get(&user_path, &admin).await.body["user"]["last_signed_at"].clone();
    let at = chrono::DateTime::parse_from_rfc3339(used.as_str().unwrap_or_default()).map(|t| t.timestamp_millis());
    assert!(at.is_ok_and(|t| (t - shutong_store::now_ms()).abs() < 600_000), "{used}");
    // The same request again: a replay.
    let (status, body) = send(&app, Method::GET, "/api/v1/me", &me, vec![]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "bad_signature");
    assert!(body["error"]["message"].as_str().unwrap().contains("nonce"), "{body}");
    // Too old, signed by another key, for another path, malformed.
    let stale = signer.headers("GET", "/api/v1/me", b"", now - 10 * 60 * 1000, "nonce-0000000000002");
    let (status, body) = send(&app, Method::GET, "/api/v1/me", &stale, vec![]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("Timestamp"), "{body}");
    let other = Signer { key: shutong_crypto::NodeKey::generate(), account: "ga.qianzhiji".into() };
    let forged = other.headers("GET", "/api/v1/me", b"", now, "nonce-0000000000003");
    assert_eq!(send(&app, Method::GET, "/api/v1/me", &forged, vec![]).await.0, StatusCode::UNAUTHORIZED);
    let elsewhere = signer.headers("GET", "/api/v1/users", b"", now, "nonce-0000000000004");
    assert_eq!(send(&app, Method::GET, "/api/v1/me", &elsewhere, vec![]).await.0, StatusCode::UNAUTHORIZED);
    let mut bad = signer.headers("GET", "/api/v1/me", b"", now, "nonce-0000000000005");
    bad[2].1 = "short".into();
    assert_eq!(send(&app, Method::GET, "/api/v1/me", &bad, vec![]).await.0, StatusCode::UNAUTHORIZED);

    // A body is part of what is signed: the exact body is accepted, another one refused.
    let body = serde_json::to_vec(&json!({"subject": "11010519491231002X", "items": ["姓名"]})).unwrap();
    let h = signer.headers("POST", "/api/v1/exemptions/check", &body, now, "nonce-0000000000006");
    let (status, answer) = send(&app, Method::POST, "/api/v1/exemptions/check", &h, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let h = signer.headers("POST", "/api/v1/exemptions/check", &body, now, "nonce-0000000000007");
    let tampered = serde_json::to_vec(&json!({"subject": "11010519491231002X", "items": ["公民身份号码"]})).unwrap();
    let (status, answer) = send(&app, Method::POST, "/api/v1/exemptions/check", &h, tampered).await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(answer.to_string().contains("X-Shutong-Content-SM3"), "{answer}");

    // The key removed: signatures stop working.
    let r = app.call(Method::PUT, &format!("/api/v1/users/{sys}/sm2-key"), Some(&admin), Some(json!({"public_key": null}))).await;
    assert_eq!(r.status, StatusCode::OK);
    let again = signer.headers("GET", "/api/v1/me", b"", now, "nonce-0000000000008");
    assert_eq!(send(&app, Method::GET, "/api/v1/me", &again, vec![]).await.0, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
