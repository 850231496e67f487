//! The typed client (`shutong-client`) against a running platform, on SQLite and PostgreSQL: a system
//! account's exchange node signs its batches with SM2, a consumer applies with typed bodies, the provider
//! answers with a narrowed grant, and the consumer reads within it; refusals come back as the error
//! envelope with their status, code and field. No JSON is written or read by hand here.

use reqwest::StatusCode;
use shutong_client::types::exchange::{BatchStatus, BindingKind, DataFormat, IngestMode, NewBinding, QuerySpec};
use shutong_client::types::sharing::{
    AccessMethod, ApproveBody, CreateRequestBody, FilterOp, GrantState, Purpose, RequestStatus, RowCondition, RowFilter,
};
use shutong_client::types::{CreateUserRequest, Sm2KeyRequest, Sm2KeyView, UserDetail};
use shutong_client::{Client, ClientError};
use shutong_exchange::synth;

use crate::common::{Backend, spawn_demo_app};

const DEMO: &str = shutong::demo::DEMO_PASSWORD;

async fn the_typed_client_drives_a_whole_exchange(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let platform = Client::new(&app.base).unwrap();

    // A wrong password is the envelope's 401, not a transport error.
    let err = platform.login("admin", "wrong password").await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err}");

    // 省公安厅's 前置机: a system account with an SM2 key, registered by the department's administrator.
    let ga_admin = platform.login("ga.admin", DEMO).await.unwrap();
    let ga = ga_admin.me().await.unwrap().user.department_id;
    let created: UserDetail = ga_admin
        .post(
            &["api", "v1", "users"],
            &CreateUserRequest {
                username: "ga.node".into(),
                display_name: "省公安厅前置机".into(),
                department_id: ga,
                password: None,
                is_system: true,
                roles: vec!["system_account".into()],
            },
        )
        .await
        .unwrap();
    let key = shutong_crypto::NodeKey::generate();
    let id = created.user.id.to_string();
    let stored: Sm2KeyView =
        ga_admin.put(&["api", "v1", "users", &id, "sm2-key"], &Sm2KeyRequest { public_key: Some(key.public_key_pem()) }).await.unwrap();
    assert_eq!(stored.public_key, Some(key.public_key_hex()));
    let node = platform.with_signing_key("ga.node", key);
    assert_eq!(node.me().await.unwrap().user.username, "ga.node");

    // The editor binds 流动人口居住登记信息; the node delivers its batches, signed; a re-sent batch is applied once.
    let editor = platform.login("ga.editor", DEMO).await.unwrap();
    let binding = editor.bind("101/000002", &NewBinding { kind: Some(BindingKind::Dataset), ..Default::default() }).await.unwrap();
    assert_eq!(binding.key_item.as_deref(), Some("公民身份号码"));
    let people: Vec<[String; 6]> = (0..3).map(|i| synth::person(i + 70_000, 11)).collect();
    let csv: String = std::iter::once("公民身份号码,姓名,居住地址,登记日期".to_string())
        .chain(people.iter().map(|p| format!("{},{},{},2024-05-01", p[0], p[1], p[5])))
        .collect::<Vec<_>>()
        .join("\n");
    let report = node.post_batch("101/000002", IngestMode::Full, DataFormat::Csv, "node-1", csv.clone()).await.unwrap();
    assert_eq!((report.status, report.rows_upserted, report.replayed), (BatchStatus::Committed, 3, false), "{report:?}");
    let again = node.post_batch("101/000002", IngestMode::Full, DataFormat::Csv, "node-1", csv).await.unwrap();
    assert_eq!((again.id, again.replayed), (report.id, true));
    assert_eq!(node.list_batches("101/000002").await.unwrap().batches.len(), 1);
    assert_eq!(editor.dataset("101/000002").await.unwrap().binding.row_count, 3);
    // A batch whose header lacks the key is refused naming it, whoever signs it.
    let err = node.post_batch("101/000002", IngestMode::Full, DataFormat::Csv, "node-2", "姓名\n张三\n").await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY), "{err}");
    assert!(err.to_string().contains("公民身份号码"), "{err}");

    // 东川市人社局 applies for three items of 人口基本信息; 省公安厅 grants two, for 玄武区 rows only.
    let consumer = platform.login("dc.rs.editor", DEMO).await.unwrap();
    let provider = platform.login("ga.reviewer", DEMO).await.unwrap();
    let asked = consumer
        .create_request(&CreateRequestBody {
            resource_code: "101/000001".into(),
            consumer_department_id: None,
            items: vec!["公民身份号码".into(), "姓名".into(), "户籍地址".into()],
            purpose: Purpose::DataVerification,
            purpose_detail: None,
            basis: "《社会保险法》第五十八条: 核验参保人户籍".into(),
            period_from: None,
            period_to: Some(chrono::NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()),
            access_methods: vec![AccessMethod::OnlineQuery, AccessMethod::Subscription],
            expected_volume: None,
        })
        .await
        .unwrap();
    assert_eq!(asked.request.status, RequestStatus::Pending);
    let pending = provider.list_requests(Some("provider")).await.unwrap();
    assert!(pending.requests.iter().any(|r| r.id == asked.request.id));
    let answered = provider
        .approve(
            asked.request.id,
            &ApproveBody {
                items: Some(vec!["公民身份号码".into(), "户籍地址".into()]),
                row_filter: Some(RowFilter {
                    conditions: vec![RowCondition {
                        item: "户籍地址".into(), op: FilterOp::Prefix, values: vec!["南京市玄武区".into()]
                    }],
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answered.request.status, RequestStatus::Approved);
    let grant = answered.grant.expect("a grant");
    assert_eq!((grant.state, grant.items.len()), (GrantState::Active, 2));
    assert_eq!(consumer.get_grant(grant.id).await.unwrap().row_filter.conditions[0].op, FilterOp::Prefix);

    // Reads within the grant: the granted items only, masked, filtered.
    let population: Vec<[String; 6]> = (0..2000).map(|i| synth::person(i, 2026)).collect();
    let inside = population.iter().find(|p| p[5].starts_with("南京市玄武区")).unwrap();
    let outside = population.iter().find(|p| !p[5].starts_with("南京市玄武区")).unwrap();
    let record = consumer.lookup("101/000001", &inside[0], None).await.unwrap();
    assert_eq!(record.keys().collect::<Vec<_>>(), ["公民身份号码", "户籍地址"]);
    assert_ne!(record["公民身份号码"], inside[0].as_str(), "masked");
    let err = consumer.lookup("101/000001", &outside[0], None).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "row filter: {err}");
    let page = consumer.query("101/000001", &QuerySpec { limit: Some(50), ..Default::default() }).await.unwrap();
    assert!(!page.records.is_empty());
    assert!(page.records.iter().all(|r| r["户籍地址"].as_str().is_some_and(|a| a.starts_with("南京"))));
    assert_eq!(page.grant_id, Some(grant.id));
    let spec = QuerySpec {
        conditions: vec![RowCondition { item: "姓名".into(), op: FilterOp::Eq, values: vec![inside[1].clone()] }],
        ..Default::default()
    };
    let err = consumer.query("101/000001", &spec).await.unwrap_err();
    assert_eq!((err.status(), err.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("conditions[0].item")), "{err}");
    let feed = consumer.changes("101/000001", 0, Some(20)).await.unwrap();
    assert!(feed.changes.iter().filter_map(|c| c.record.as_ref()).all(|r| r.len() == 2));
    let err = consumer.export("101/000001", DataFormat::Csv).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(StatusCode::FORBIDDEN), Some("no_grant")), "bulk download was not granted: {err}");

    // Another department holds no grant: refused on every way out, with the envelope's code.
    let stranger = platform.login("xl.admin", DEMO).await.unwrap();
    let err = stranger.lookup("101/000001", &inside[0], None).await.unwrap_err();
    assert!(matches!(&err, ClientError::Api { status, error } if *status == StatusCode::FORBIDDEN && error.code == "no_grant"), "{err}");
    app.stop().await;
}

on_both_backends!(the_typed_client_drives_a_whole_exchange);
