//! Sharing requests and grants through the API, on SQLite and PostgreSQL, on the demo province: the
//! 10-working-day answer, narrowing, refusals, overdue, escalation, grants, who may do what, bad input.

use crate::common::{Backend, TestApp, spawn_demo_app};
use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shutong::demo::DEMO_PASSWORD;
use shutong_client::types::sharing::Inbox;
use shutong_client::types::sharing::{
    AccessMethod, ApproveBody, CreateRequestBody, FilterOp, GrantList, GrantOrigin, GrantState, Purpose, RequestKind, RequestStatus,
    RowCondition, RowFilter, SharingStats, Stage,
};
use shutong_store::Row;

on_both_backends!(
    a_city_department_applies_and_the_provider_narrows_and_approves,
    the_answer_is_due_on_the_10th_working_day_across_holidays,
    overdue_requests_reach_the_authority_the_figures_and_the_consumer,
    a_refusal_needs_a_reason_and_escalation_walks_to_the_leading_group,
    a_city_dispute_is_coordinated_by_the_city_authority_and_ends_there,
    only_the_parties_act_and_see,
    bad_requests_are_refused_with_the_field_named,
    subscriptions_grants_revocation_renewal_and_expiry,
);

async fn code_of(app: &TestApp, name: &str) -> String {
    sqlx::query("SELECT code FROM catalog_resources WHERE name = $1").bind(name).fetch_one(app.db().pool()).await.unwrap().get(0)
}

async fn login(app: &TestApp, user: &str) -> String {
    app.login(user, DEMO_PASSWORD).await
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn application(code: &str, items: &[&str], purpose: &str, to: NaiveDate) -> Value {
    json!({
        "resource_code": code,
        "items": items,
        "purpose": purpose,
        "basis": "《社会保险法》第八条：经办机构核验参保人员身份",
        "period_to": to,
        "access_methods": ["online_query"],
        "expected_volume": "每日约 300 次",
    })
}

async fn audit_actions(app: &TestApp, kind: &str, id: i64) -> Vec<String> {
    sqlx::query("SELECT action FROM audit_events WHERE target_kind = $1 AND target_id = $2 ORDER BY seq")
        .bind(kind)
        .bind(id.to_string())
        .fetch_all(app.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A typed request body (the workflow tests speak the API through `shutong-client`).
fn typed_application(code: &str, items: &[&str], purpose: Purpose, to: NaiveDate) -> CreateRequestBody {
    CreateRequestBody {
        resource_code: code.to_string(),
        consumer_department_id: None,
        items: items.iter().map(|i| i.to_string()).collect(),
        purpose,
        purpose_detail: None,
        basis: "《社会保险法》第八条：经办机构核验参保人员身份".into(),
        period_from: None,
        period_to: Some(to),
        access_methods: vec![AccessMethod::OnlineQuery],
        expected_volume: Some("每日约 300 次".into()),
    }
}

async fn a_city_department_applies_and_the_provider_narrows_and_approves(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let code = code_of(&app, "流动人口居住登记信息").await;
    let consumer = app.client("dc.rs.editor").await;
    let provider = app.client("ga.reviewer").await;
    let to = app.clock().today() + chrono::Days::new(200);
    let asked = consumer
        .create_request(&typed_application(&code, &["公民身份号码", "姓名", "居住地址"], Purpose::AdministrativeBasis, to))
        .await
        .unwrap()
        .request;
    let id = asked.id;
    assert_eq!((asked.status, asked.kind, asked.purpose), (RequestStatus::Pending, RequestKind::Application, Purpose::AdministrativeBasis));
    assert_eq!(asked.consumer_name, "东川市人力资源和社会保障局");
    assert_eq!(asked.owner_name, "示范省公安厅");

    // The provider sees it in its inbox with the due date, and answers: two of three items, a row filter,
    // a shorter period, a quota.
    let inbox = provider.inbox().await.unwrap();
    let mine = inbox.waiting.iter().find(|i| i.request_id == Some(id)).expect("in the provider's inbox");
    assert_eq!((mine.kind.as_str(), mine.due_on), ("answer", Some(asked.due_on)));
    let valid_to = app.clock().today() + chrono::Days::new(100);
    let answered = provider
        .approve(
            id,
            &ApproveBody {
                items: Some(vec!["公民身份号码".into(), "居住地址".into()]),
                row_filter: Some(RowFilter {
                    conditions: vec![RowCondition { item: "居住地址".into(), op: FilterOp::Prefix, values: vec!["东川市".into()] }],
                }),
                valid_to: Some(valid_to),
                daily_quota: Some(1000),
                note: Some("姓名不予提供".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answered.request.status, RequestStatus::Approved);
    let grant = answered.grant.expect("a grant");
    assert_eq!(grant.items, ["公民身份号码", "居住地址"], "exactly the narrowed items");
    assert_eq!(grant.row_filter.conditions[0].values, ["东川市"]);
    assert_eq!((grant.valid_to, grant.daily_quota, grant.state), (valid_to, Some(1000), GrantState::Active));
    assert_eq!((grant.origin, grant.clear_text), (GrantOrigin::Approval, false));
    assert_eq!(grant.consumer_department_id, asked.consumer_department_id);

    // The consumer sees the grant; it is what later access is checked against.
    assert_eq!(consumer.get_grant(grant.id).await.unwrap().items, ["公民身份号码", "居住地址"]);
    let listed: GrantList =
        consumer.get(&["api", "v1", "grants"], &[("side", "consumer".into()), ("state", "active".into())]).await.unwrap();
    assert!(listed.grants.iter().any(|g| g.id == grant.id));
    // An approval can only narrow: a second answer is refused, and so is an item that was not asked for.
    let again = provider.approve(id, &ApproveBody::default()).await.unwrap_err();
    assert_eq!(again.status(), Some(StatusCode::CONFLICT));

    assert_eq!(audit_actions(&app, "sharing_request", id).await, ["request.create", "request.approve"]);
    assert_eq!(audit_actions(&app, "sharing_grant", grant.id).await, ["grant.create"]);
    // The consumer is told.
    let told = consumer.inbox().await.unwrap();
    assert!(told.notifications.iter().any(|n| n.kind == "approved" && n.target_id == id.to_string()));

    // Widening is refused, naming the field.
    let id2 =
        consumer.create_request(&typed_application(&code, &["公民身份号码"], Purpose::DataVerification, to)).await.unwrap().request.id;
    let wide = ApproveBody { items: Some(vec!["公民身份号码".into(), "姓名".into()]), ..Default::default() };
    let err = provider.approve(id2, &wide).await.unwrap_err();
    assert_eq!((err.status(), err.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("items[1]")), "{err}");
    let late = ApproveBody { valid_to: Some(to + chrono::Days::new(1)), ..Default::default() };
    let err = provider.approve(id2, &late).await.unwrap_err();
    assert_eq!((err.status(), err.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("valid_to")), "{err}");
    app.stop().await;
}

async fn the_answer_is_due_on_the_10th_working_day_across_holidays(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    // Monday 2026-09-28; 国庆 and 中秋 run 10-01 to 10-08 and Saturday 10-10 is an adjusted working day.
    app.clock().set_date(date(2026, 9, 28));
    let code = code_of(&app, "流动人口居住登记信息").await;
    let consumer = app.client("dc.rs.editor").await;
    let r =
        consumer.create_request(&typed_application(&code, &["公民身份号码"], Purpose::WorkReference, date(2026, 12, 31))).await.unwrap();
    assert_eq!((r.request.submitted_on, r.request.due_on, r.request.overdue), (date(2026, 9, 28), date(2026, 10, 16), false));
    // On the due date it is not yet overdue; the next day it is.
    let id = r.request.id;
    app.clock().set_date(date(2026, 10, 16));
    assert!(!consumer.get_request(id).await.unwrap().request.overdue);
    app.clock().set_date(date(2026, 10, 17));
    assert!(consumer.get_request(id).await.unwrap().request.overdue);
    app.stop().await;
}

async fn overdue_requests_reach_the_authority_the_figures_and_the_consumer(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let admin = shutong_client::Client::new(&app.base).unwrap().with_token(&app.admin_token().await);
    app.clock().set_date(date(2026, 9, 28));
    let code = code_of(&app, "流动人口居住登记信息").await;
    let consumer = app.client("dc.rs.editor").await;
    let provider = app.client("ga.reviewer").await;
    let authority = app.client("sq.reviewer").await;
    let r =
        consumer.create_request(&typed_application(&code, &["公民身份号码"], Purpose::WorkReference, date(2026, 12, 31))).await.unwrap();
    let (id, provider_id) = (r.request.id, r.request.provider_department_id);
    let figures = |s: &SharingStats| s.providers.iter().find(|p| p.department_id == provider_id).cloned().expect("the provider's figures");
    let told = |inbox: &Inbox, kind: &str| inbox.notifications.iter().any(|n| n.kind == kind && n.target_id == id.to_string());

    // A reminder goes out three working days before the due date (2026-10-13 is three working days before).
    app.clock().set_date(date(2026, 10, 13));
    assert_eq!(admin.sweep().await.unwrap().overdue, 0);
    assert!(told(&provider.inbox().await.unwrap(), "reminder"));

    app.clock().set_date(date(2026, 10, 19));
    assert!(authority.overdue_requests().await.unwrap().requests.iter().any(|x| x.id == id));
    assert!(authority.inbox().await.unwrap().overdue.iter().any(|x| x.request_id == Some(id)));
    let f = figures(&authority.sharing_stats().await.unwrap());
    assert_eq!((f.overdue_now, f.answered_late), (1, 1));
    // The provider sees its own figures, not others'.
    let own = provider.sharing_stats().await.unwrap();
    assert!(own.providers.iter().all(|p| p.department_id == provider_id));
    assert_eq!(figures(&own).overdue_now, 1);

    // The sweep records the overdue once and tells the consumer.
    assert!(admin.sweep().await.unwrap().overdue >= 1);
    assert_eq!(admin.sweep().await.unwrap().overdue, 0, "each overdue is recorded once");
    assert_eq!(audit_actions(&app, "sharing_request", id).await, ["request.create", "request.overdue"]);
    assert!(told(&consumer.inbox().await.unwrap(), "overdue"));
    // Only administrators run the sweep.
    assert_eq!(provider.sweep().await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));

    // A late answer stays counted against the provider.
    assert!(provider.approve(id, &ApproveBody::default()).await.unwrap().request.answered_late);
    let f = figures(&authority.sharing_stats().await.unwrap());
    assert_eq!((f.overdue_now, f.answered_late), (0, 1));
    app.stop().await;
}

async fn a_refusal_needs_a_reason_and_escalation_walks_to_the_leading_group(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let code = code_of(&app, "就业登记信息").await;
    let consumer = app.client("dc.rs.editor").await;
    let provider = app.client("rs.admin").await;
    let authority = app.client("sq.reviewer").await;
    let to = app.clock().today() + chrono::Days::new(300);
    let id = consumer
        .create_request(&typed_application(&code, &["公民身份号码", "就业状态"], Purpose::BusinessCollaboration, to))
        .await
        .unwrap()
        .request
        .id;

    // A refusal without a reason (absent, empty or blank) is refused, naming the field.
    let raw = provider.token().unwrap().to_string();
    let no = app.post(&format!("/api/v1/requests/{id}/reject"), &raw, json!({})).await;
    assert_eq!((no.status, no.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{:?}", no.body);
    for reason in ["", "   "] {
        let err = provider.reject(id, reason).await.unwrap_err();
        assert_eq!((err.status(), err.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("reason")), "{err}");
    }
    assert_eq!(audit_actions(&app, "sharing_request", id).await, ["request.create"], "a refused refusal writes nothing");
    // Escalating before a refusal is not possible.
    assert_eq!(consumer.escalate(id, "急需").await.unwrap_err().status(), Some(StatusCode::CONFLICT));

    let no = provider.reject(id, "就业状态仅用于就业服务").await.unwrap().request;
    assert_eq!((no.status, no.next_stage), (RequestStatus::Rejected, Some(Stage::Negotiation)));
    assert_eq!(no.answer_reason.as_deref(), Some("就业状态仅用于就业服务"));

    // 协商 with the provider.
    let e = consumer.escalate(id, "医保与就业联动需要").await.unwrap();
    assert_eq!((e.request.status, e.request.owner_name.as_str()), (RequestStatus::Negotiating, "示范省人力资源和社会保障厅"));
    assert_eq!(e.escalations[0].stage, Stage::Negotiation);
    let msg = provider.add_message(id, "可否只提供就业状态的汇总？").await.unwrap();
    assert_eq!(msg.messages.len(), 2);
    let no = provider.reject(id, "协商后维持原答复").await.unwrap().request;
    assert_eq!(no.next_stage, Some(Stage::Coordination));

    // 协调 by the provincial authority (a provincial department is involved).
    let e = consumer.escalate(id, "协商未果").await.unwrap().request;
    assert_eq!((e.status, e.owner_name.as_str()), (RequestStatus::Coordinating, "示范省大数据管理局"));
    // The provider no longer answers at this stage.
    assert_eq!(provider.approve(id, &ApproveBody::default()).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    let inbox = authority.inbox().await.unwrap();
    assert!(inbox.waiting.iter().any(|i| i.request_id == Some(id) && i.kind == "coordination"));
    let no = authority.reject(id, "建议通过业务协同平台解决").await.unwrap().request;
    assert_eq!(no.next_stage, Some(Stage::LeadingGroup));

    // 领导小组 decides, and its decision can create a grant.
    let e = consumer.escalate(id, "涉及省有关部门，提请领导小组").await.unwrap().request;
    assert_eq!(e.status, RequestStatus::LeadingGroup);
    let expected = app.running.as_ref().unwrap().state.calendar().add_workdays(app.clock().today(), 20).unwrap().0;
    assert_eq!(e.stage_due_on, expected, "the leading group's deadline is 20 working days by default");
    let decision =
        ApproveBody {
            items: Some(vec!["公民身份号码".into()]), note: Some("领导小组意见：提供身份号码".into()), ..Default::default()
        };
    let ok = authority.approve(id, &decision).await.unwrap();
    assert_eq!(ok.request.status, RequestStatus::Approved);
    let grant = ok.grant.expect("a grant");
    assert_eq!((grant.origin, grant.items.as_slice()), (GrantOrigin::LeadingGroup, ["公民身份号码".to_string()].as_slice()));
    let stages: Vec<Stage> = ok.escalations.iter().map(|s| s.stage).collect();
    assert_eq!(stages, [Stage::Negotiation, Stage::Coordination, Stage::LeadingGroup]);
    let outcomes: Vec<&str> = ok.escalations.iter().map(|s| s.outcome.as_deref().unwrap_or("")).collect();
    assert_eq!(outcomes, ["refused", "refused", "granted"]);
    assert_eq!(
        audit_actions(&app, "sharing_request", id).await,
        [
            "request.create",
            "request.reject",
            "request.escalate",
            "request.message",
            "request.reject",
            "request.escalate",
            "request.reject",
            "request.escalate",
            "request.approve"
        ]
    );
    app.stop().await;
}

async fn a_city_dispute_is_coordinated_by_the_city_authority_and_ends_there(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let code = code_of(&app, "东川市职业技能培训补贴信息").await;
    let consumer = app.client("dc.ga.editor").await;
    let provider = app.client("dc.rs.editor").await;
    let city_authority = app.client("dc.admin").await;
    let to = app.clock().today() + chrono::Days::new(90);
    let id = consumer.create_request(&typed_application(&code, &["公民身份号码"], Purpose::WorkReference, to)).await.unwrap().request.id;
    provider.reject(id, "内部审核使用").await.unwrap();
    // Negotiation that goes nowhere may be escalated while still open (协商未果).
    consumer.escalate(id, "请求协商").await.unwrap();
    let e = consumer.escalate(id, "协商未果").await.unwrap();
    assert_eq!(e.request.status, RequestStatus::Coordinating);
    assert_eq!(e.request.owner_name, "东川市大数据管理局", "本级主管部门");
    assert_eq!(e.escalations[0].outcome.as_deref(), Some("escalated"));
    let no = city_authority.reject(id, "协调意见：不予提供").await.unwrap();
    assert_eq!(no.request.next_stage, None, "no provincial department: the coordination is final");
    let again = consumer.escalate(id, "再次申请").await.unwrap_err();
    assert_eq!(again.status(), Some(StatusCode::CONFLICT));
    assert!(again.to_string().contains("final"), "{again}");
    app.stop().await;
}

async fn only_the_parties_act_and_see(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let code = code_of(&app, "流动人口居住登记信息").await;
    let to = app.clock().today() + chrono::Days::new(60);
    let consumer = login(&app, "dc.rs.editor").await;
    let r = app.post("/api/v1/requests", &consumer, application(&code, &["公民身份号码"], "work_reference", to)).await;
    let id = r.body["request"]["id"].as_i64().unwrap();
    let mut tokens = std::collections::HashMap::new();
    for u in ["dc.rs.editor", "ga.reviewer", "ga.editor", "xl.admin", "sq.reviewer", "auditor"] {
        tokens.insert(u, login(&app, u).await);
    }
    tokens.insert("admin", app.admin_token().await);
    // Neither consumer nor answering provider: (user, sees it (GET and list), approve, reject, withdraw).
    use StatusCode as S;
    let table: &[(&str, S, S, S, S)] = &[
        ("xl.admin", S::NOT_FOUND, S::NOT_FOUND, S::NOT_FOUND, S::NOT_FOUND),
        ("ga.editor", S::OK, S::FORBIDDEN, S::FORBIDDEN, S::FORBIDDEN),
        ("sq.reviewer", S::OK, S::FORBIDDEN, S::FORBIDDEN, S::FORBIDDEN),
        ("auditor", S::OK, S::FORBIDDEN, S::FORBIDDEN, S::FORBIDDEN),
        ("admin", S::OK, S::FORBIDDEN, S::FORBIDDEN, S::FORBIDDEN),
    ];
    for (user, see, approve, reject, withdraw) in table {
        let t = &tokens[user];
        assert_eq!(app.get(&format!("/api/v1/requests/{id}"), t).await.status, *see, "{user} GET");
        assert_eq!(app.post(&format!("/api/v1/requests/{id}/approve"), t, json!({})).await.status, *approve, "{user} approve");
        assert_eq!(app.post(&format!("/api/v1/requests/{id}/reject"), t, json!({"reason": "x"})).await.status, *reject, "{user} reject");
        assert_eq!(app.post(&format!("/api/v1/requests/{id}/withdraw"), t, json!({})).await.status, *withdraw, "{user} withdraw");
        let list = app.get("/api/v1/requests?limit=1000", t).await;
        let listed = list.body["requests"].as_array().unwrap().iter().any(|x| x["id"] == id);
        assert_eq!(listed, *see == S::OK, "{user} list");
    }
    for party in ["dc.rs.editor", "ga.reviewer"] {
        assert_eq!(app.get(&format!("/api/v1/requests/{id}"), &tokens[party]).await.status, S::OK, "{party} GET");
    }
    // The consumer cannot answer its own request; the provider cannot withdraw it.
    assert_eq!(app.post(&format!("/api/v1/requests/{id}/approve"), &tokens["dc.rs.editor"], json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("/api/v1/requests/{id}/withdraw"), &tokens["ga.reviewer"], json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(audit_actions(&app, "sharing_request", id).await, ["request.create"], "nothing refused left a trace");
    let w = app.post(&format!("/api/v1/requests/{id}/withdraw"), &consumer, json!({"reason": "不再需要"})).await;
    assert_eq!(w.status, StatusCode::OK);
    assert_eq!(w.body["request"]["status"], "withdrawn");
    // A closed request is not answered.
    assert_eq!(app.post(&format!("/api/v1/requests/{id}/approve"), &tokens["ga.reviewer"], json!({})).await.status, StatusCode::CONFLICT);
    // Grants follow the same visibility.
    let sub = app
        .post(
            "/api/v1/subscriptions",
            &consumer,
            json!({"resource_code": code_of(&app, "社会组织登记信息").await, "purpose": "work_reference", "basis": "社会组织参保核验", "access_methods": ["online_query"]}),
        )
        .await;
    let gid = sub.body["grant"]["id"].as_i64().unwrap();
    assert_eq!(app.get(&format!("/api/v1/grants/{gid}"), &tokens["xl.admin"]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/grants/{gid}"), &tokens["auditor"]).await.status, StatusCode::OK);
    assert_eq!(
        app.post(&format!("/api/v1/grants/{gid}/revoke"), &tokens["xl.admin"], json!({"reason": "x"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.post(&format!("/api/v1/grants/{gid}/revoke"), &consumer, json!({"reason": "x"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.post(&format!("/api/v1/grants/{gid}/revoke"), &tokens["auditor"], json!({"reason": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

async fn bad_requests_are_refused_with_the_field_named(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let consumer = login(&app, "dc.rs.editor").await;
    let code = code_of(&app, "流动人口居住登记信息").await;
    let open = code_of(&app, "法人单位基本信息").await;
    let today = app.clock().today();
    let to = today + chrono::Days::new(30);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (application("101/999999", &["公民身份号码"], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "resource_code"),
        (application("not-a-code", &["公民身份号码"], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "resource_code"),
        (application(&code, &["学历"], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "items[0]"),
        (application(&code, &["公民身份号码", "公民身份号码"], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "items[1]"),
        (application(&code, &[], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "items"),
        (
            application(&code, &["公民身份号码"], "work_reference", today - chrono::Days::new(1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "period_to",
        ),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b["period_from"] = json!(today - chrono::Days::new(10));
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "period_from",
        ),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b.as_object_mut().unwrap().remove("period_to");
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "period_to",
        ),
        (application(&code, &["公民身份号码"], "招商引资", to), StatusCode::BAD_REQUEST, "purpose"),
        (application(&code, &["公民身份号码"], "other", to), StatusCode::UNPROCESSABLE_ENTITY, "purpose_detail"),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b["basis"] = json!("");
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "basis",
        ),
        (
            {
                // 机动车驾驶人信息 (a thematic resource) is not offered for bulk download.
                let mut b = application(&code_of(&app, "机动车驾驶人信息").await, &["公民身份号码"], "work_reference", to);
                b["access_methods"] = json!(["bulk_download"]);
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "access_methods[0]",
        ),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b["access_methods"] = json!(["fax"]);
                b
            },
            StatusCode::BAD_REQUEST,
            "access_methods[0]",
        ),
        (application(&open, &["统一社会信用代码"], "work_reference", to), StatusCode::UNPROCESSABLE_ENTITY, "items"),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b["consumer_department_id"] = json!(2);
                b
            },
            StatusCode::FORBIDDEN,
            "",
        ),
        (
            {
                let mut b = application(&code, &["公民身份号码"], "work_reference", to);
                b["unexpected"] = json!(1);
                b
            },
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (body, status, field) in &cases {
        let r = app.post("/api/v1/requests", &consumer, body.clone()).await;
        assert_eq!(r.status, *status, "{body}: {:?}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["error"]["field"], *field, "{body}: {:?}", r.body);
        }
    }
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM sharing_requests WHERE consumer_department_id = (SELECT department_id FROM users WHERE username = 'dc.rs.editor')")
        .fetch_one(app.db().pool())
        .await
        .unwrap()
        .get(0);
    let before = n;
    // A second open request for the same resource and purpose is a conflict; another purpose is not.
    let first = app.post("/api/v1/requests", &consumer, application(&code, &["公民身份号码"], "work_reference", to)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = app.post("/api/v1/requests", &consumer, application(&code, &["姓名"], "work_reference", to)).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{:?}", second.body);
    assert!(second.body["error"]["message"].as_str().unwrap().contains("still open"));
    let other = app.post("/api/v1/requests", &consumer, application(&code, &["姓名"], "data_verification", to)).await;
    assert_eq!(other.status, StatusCode::CREATED);
    // A subscription to a conditional resource is refused, naming the route to take.
    let sub = app
        .post(
            "/api/v1/subscriptions",
            &consumer,
            json!({"resource_code": code, "purpose": "work_reference", "basis": "x", "access_methods": ["online_query"]}),
        )
        .await;
    assert_eq!(sub.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(sub.body["error"]["field"], "resource_code");
    // Unknown IDs.
    assert_eq!(app.get("/api/v1/requests/999999", &consumer).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/requests/abc", &consumer).await.status.as_u16() / 100, 4);
    assert_eq!(app.get("/api/v1/requests?status=lost", &consumer).await.body["error"]["field"], "status");
    // 不予共享 data opens a negotiation at once; a grant never includes a 不予共享 item.
    let secret = code_of(&app, "在押人员信息").await;
    let n_req =
        app.post("/api/v1/requests", &consumer, application(&secret, &["公民身份号码", "羁押状态"], "administrative_basis", to)).await;
    assert_eq!(n_req.status, StatusCode::CREATED, "{:?}", n_req.body);
    assert_eq!(n_req.body["request"]["kind"], "negotiation");
    assert_eq!(n_req.body["request"]["status"], "negotiating");
    let nid = n_req.body["request"]["id"].as_i64().unwrap();
    let ga = login(&app, "ga.reviewer").await;
    let refused = app.post(&format!("/api/v1/requests/{nid}/approve"), &ga, json!({})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("不予共享"));
    let after: i64 = sqlx::query("SELECT COUNT(*) FROM sharing_requests WHERE consumer_department_id = (SELECT department_id FROM users WHERE username = 'dc.rs.editor')")
        .fetch_one(app.db().pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, before + 3, "only the three accepted requests were stored");
    app.stop().await;
}

async fn subscriptions_grants_revocation_renewal_and_expiry(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let consumer = login(&app, "xl.admin").await;
    let provider = login(&app, "sj.editor").await;
    let code = code_of(&app, "食品生产许可信息").await;
    let today = app.clock().today();
    let sub = app
        .post(
            "/api/v1/subscriptions",
            &consumer,
            json!({"resource_code": code, "purpose": "业务协同", "basis": "食品安全联合检查", "access_methods": ["online_query", "subscription"], "period_to": today + chrono::Days::new(20)}),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{:?}", sub.body);
    assert_eq!(sub.body["request"]["kind"], "subscription");
    assert_eq!(sub.body["request"]["status"], "approved");
    let g = &sub.body["grant"];
    assert_eq!(g["origin"], "subscription");
    assert_eq!(g["purpose"], "business_collaboration");
    assert_eq!(g["items"], json!(["许可证编号", "统一社会信用代码", "食品类别", "有效期至"]), "every unconditional item by default");
    assert_eq!(g["access_methods"], json!(["online_query", "subscription"]));
    let gid = g["id"].as_i64().unwrap();
    // A second subscription for the same purpose is a conflict.
    let dup = app
        .post(
            "/api/v1/subscriptions",
            &consumer,
            json!({"resource_code": code, "purpose": "业务协同", "basis": "again", "access_methods": ["online_query"]}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    // Expiry notices, then expiry: the grant stops working the day after valid_to.
    let admin = app.admin_token().await;
    let sweep = app.post("/api/v1/sharing/sweep", &admin, json!({})).await;
    assert!(sweep.body["grants_expiring"].as_i64().unwrap() >= 1, "{:?}", sweep.body);
    app.clock().set_date(today + chrono::Days::new(21));
    assert_eq!(app.get(&format!("/api/v1/grants/{gid}"), &consumer).await.body["state"], "expired");
    let st = &app.running.as_ref().unwrap().state;
    let dept = shutong_identity::DepartmentId(sub.body["request"]["consumer_department_id"].as_i64().unwrap());
    assert!(
        shutong_sharing::grants_in_force(&st.sharing(), dept, &shutong_catalog::ResourceCode::parse(&code).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // Renewal: only forward, by the provider.
    let back = app.post(&format!("/api/v1/grants/{gid}/renew"), &provider, json!({"valid_to": today})).await;
    assert_eq!(back.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(back.body["error"]["field"], "valid_to");
    assert_eq!(
        app.post(&format!("/api/v1/grants/{gid}/renew"), &consumer, json!({"valid_to": today + chrono::Days::new(90)})).await.status,
        StatusCode::FORBIDDEN
    );
    let renewed = app.post(&format!("/api/v1/grants/{gid}/renew"), &provider, json!({"valid_to": today + chrono::Days::new(90)})).await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    assert_eq!(renewed.body["state"], "active");
    assert_eq!(
        shutong_sharing::grants_in_force(&st.sharing(), dept, &shutong_catalog::ResourceCode::parse(&code).unwrap()).await.unwrap().len(),
        1
    );
    // Revocation: a reason is required; then it stops at once and cannot be renewed.
    assert_eq!(
        app.post(&format!("/api/v1/grants/{gid}/revoke"), &provider, json!({"reason": ""})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let revoked = app.post(&format!("/api/v1/grants/{gid}/revoke"), &provider, json!({"reason": "超出用途使用"})).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["state"], "revoked");
    assert_eq!(revoked.body["revoke_reason"], "超出用途使用");
    assert!(
        shutong_sharing::grants_in_force(&st.sharing(), dept, &shutong_catalog::ResourceCode::parse(&code).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.post(&format!("/api/v1/grants/{gid}/renew"), &provider, json!({"valid_to": today + chrono::Days::new(120)})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(app.get("/api/v1/grants?state=revoked&side=consumer", &consumer).await.body["grants"][0]["id"], gid);
    assert_eq!(audit_actions(&app, "sharing_grant", gid).await, ["grant.create", "grant.renew", "grant.revoke"]);
    app.stop().await;
}
