//! Data exchange (C4) through the HTTP API, on SQLite and PostgreSQL: grant enforcement on every output,
//! batches (validation, reports, idempotency, increments, the change feed), bad input, the service proxy,
//! and a server killed during a large batch. The workflows go through the typed client (`shutong-client`);
//! the tests of the wire itself (a file's parsing, uploads cut or over the limit, bad parameters) send raw
//! requests.

use crate::common;

use crate::common::{Backend, TestApp, spawn_demo_app, spawn_demo_app_with};
use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutong_client::types::exchange::{BatchStatus, BindingKind, DataFormat, ExemptionQuery, IngestMode, NewBinding, QuerySpec, Record};
use shutong_client::types::sharing::{
    AccessMethod, ApproveBody, CreateRequestBody, FilterOp, GrantState, Purpose, RowCondition, RowFilter,
};
use shutong_client::{AuditFilter, Client, ClientError};
use shutong_exchange::synth;
use shutong_reference::{MaskKind, MaskRules};

pub(crate) const DEMO: &str = shutong::demo::DEMO_PASSWORD;
pub(crate) const POPULATION: &str = "/api/v1/data/101/000001";
/// 人口基本信息, pooled by the demo.
const CODE: &str = "101/000001";

pub(crate) async fn upload(app: &TestApp, token: &str, path: &str, query: &str, content_type: &str, body: Vec<u8>) -> common::Resp {
    let res = app
        .http
        .post(format!("{}{path}/batches?{query}", app.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    common::Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
}

async fn raw_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(token).send().await.expect("get");
    (res.status(), res.bytes().await.unwrap_or_default().to_vec())
}

/// 东川市人社局 applies for three items of 人口基本信息; 省公安厅 grants two, for 玄武区 rows only, masked.
/// Returns the consumer, as a typed client, and the grant's ID.
async fn narrowed_grant(app: &TestApp) -> (Client, i64) {
    let consumer = app.client("dc.rs.editor").await;
    let provider = app.client("ga.reviewer").await;
    let asked = consumer
        .create_request(&CreateRequestBody {
            resource_code: CODE.into(),
            consumer_department_id: None,
            items: vec!["公民身份号码".into(), "姓名".into(), "户籍地址".into()],
            purpose: Purpose::DataVerification,
            purpose_detail: None,
            basis: "《社会保险法》第五十八条: 核验参保人户籍".into(),
            period_from: None,
            period_to: Some(NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()),
            access_methods: vec![AccessMethod::OnlineQuery, AccessMethod::BulkDownload, AccessMethod::Subscription],
            expected_volume: None,
        })
        .await
        .unwrap()
        .request;
    let approval = ApproveBody {
        items: Some(vec!["公民身份号码".into(), "户籍地址".into()]),
        row_filter: Some(RowFilter {
            conditions: vec![RowCondition { item: "户籍地址".into(), op: FilterOp::Prefix, values: vec!["南京市玄武区".into()] }],
        }),
        ..Default::default()
    };
    let grant = provider.approve(asked.id, &approval).await.unwrap().grant.expect("an approval carries its grant");
    (consumer, grant.id)
}

/// A record as the wire carries it, for comparing with what the client decoded.
fn record(value: Value) -> Record {
    value.as_object().expect("a record is an object").clone()
}

/// The status and error code of a refusal.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (Option<StatusCode>, Option<String>) {
    let e = r.expect_err("refused");
    (e.status(), e.code().map(str::to_string))
}

async fn grants_are_enforced_on_every_output(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let rows = 2000u64;
    let people: Vec<[String; 6]> = (0..rows).map(|i| synth::person(i, 2026)).collect();
    let in_xuanwu = |p: &[String; 6]| p[5].starts_with("南京市玄武区");
    let inside = people.iter().find(|p| in_xuanwu(p)).unwrap().clone();
    let outside = people.iter().find(|p| !in_xuanwu(p)).unwrap().clone();
    let expected_rows = people.iter().filter(|p| in_xuanwu(p)).count();
    let no_grant = (Some(StatusCode::FORBIDDEN), Some("no_grant".to_string()));

    // Without a grant: 403 on every way out, for any department; auditors read the trail, not the data.
    let stranger = app.client("xl.admin").await;
    assert_eq!(refusal(stranger.lookup(CODE, &inside[0], None).await), no_grant);
    assert_eq!(refusal(stranger.export(CODE, DataFormat::Csv).await), no_grant);
    assert_eq!(refusal(stranger.changes(CODE, 0, None).await), no_grant);
    assert_eq!(refusal(stranger.query(CODE, &QuerySpec::default()).await).0, Some(StatusCode::FORBIDDEN));
    let auditor = app.client("auditor").await;
    assert_eq!(refusal(auditor.lookup(CODE, &inside[0], None).await).0, Some(StatusCode::FORBIDDEN));

    let (consumer, grant) = narrowed_grant(&app).await;
    let masks = MaskRules::default();
    let id_masked = masks.mask(MaskKind::IdNumber, &inside[0]);
    let addr_masked = masks.mask(MaskKind::Address, &inside[5]);
    assert_ne!(id_masked, inside[0]);

    // Lookup: exactly the granted items, masked; a row outside the filter does not exist for this consumer.
    let found = consumer.lookup(CODE, &inside[0], None).await.unwrap();
    assert_eq!(found, record(json!({"公民身份号码": id_masked, "户籍地址": addr_masked})));
    assert_eq!(consumer.lookup(CODE, &inside[0], Some(grant)).await.unwrap(), found, "the same under the grant named");
    let e = consumer.lookup(CODE, &outside[0], None).await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND), "row filter: {e}");
    let e = consumer.lookup(CODE, "123", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("key")));

    // Query: only filtered rows, only granted items; conditions on items outside the grant are refused.
    let mut seen = 0;
    let mut spec = QuerySpec { limit: Some(500), ..Default::default() };
    loop {
        let page = consumer.query(CODE, &spec).await.unwrap();
        assert_eq!(page.items, ["公民身份号码", "户籍地址"]);
        assert_eq!(page.grant_id, Some(grant));
        for rec in &page.records {
            assert_eq!(rec.keys().collect::<Vec<_>>(), ["公民身份号码", "户籍地址"]);
            let address = rec["户籍地址"].as_str().unwrap();
            assert!(address.starts_with("南京") && address.contains('*'), "filtered and masked: {rec:?}");
            seen += 1;
        }
        match page.next_after {
            Some(a) => spec.after = Some(a),
            None => break,
        }
    }
    assert_eq!(seen, expected_rows);
    let outside_grant = QuerySpec {
        conditions: vec![RowCondition { item: "姓名".into(), op: FilterOp::Eq, values: vec![inside[1].clone()] }],
        ..Default::default()
    };
    let e = consumer.query(CODE, &outside_grant).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("conditions[0].item")));

    // Every download format: the granted items only, masked, filtered.
    let text = String::from_utf8(consumer.export(CODE, DataFormat::Csv).await.unwrap().to_vec()).unwrap();
    let mut lines = text.lines();
    // The last column is the 校核中 flag (疑义校核), always there.
    assert_eq!(lines.next(), Some("公民身份号码,户籍地址,_校核中"));
    assert_eq!(lines.clone().count(), expected_rows);
    assert!(text.contains(&id_masked) && !text.contains(&inside[0]) && !text.contains(&inside[1]) && !text.contains(&outside[5]));
    let nd = String::from_utf8(consumer.export(CODE, DataFormat::Ndjson).await.unwrap().to_vec()).unwrap();
    assert_eq!(nd.lines().count(), expected_rows);
    for line in nd.lines() {
        let v: Record = serde_json::from_str(line).unwrap();
        // `_校核中` only on a record under objection (the demo's).
        assert_eq!(v.keys().filter(|k| *k != "_校核中").collect::<Vec<_>>(), ["公民身份号码", "户籍地址"]);
    }
    assert!(!nd.contains("姓名") && !nd.contains(&inside[0]));
    let pq = consumer.export(CODE, DataFormat::Parquet).await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(pq).unwrap();
    let names: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["公民身份号码", "户籍地址", "_校核中"]);
    let mut total = 0;
    let mut parquet_ids = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        for i in 0..batch.num_rows() {
            assert!(ids.value(i).contains('*'), "masked in parquet");
            assert_ne!(ids.value(i), inside[0]);
            parquet_ids.push(ids.value(i).to_string());
        }
        total += batch.num_rows();
    }
    assert_eq!(total, expected_rows);
    // CSV and NDJSON are read in parallel segments on SQLite, Parquet by one reader: the same rows in the
    // same order.
    let csv_ids: Vec<String> = lines.map(|l| l.split(',').next().unwrap().to_string()).collect();
    let nd_ids: Vec<String> =
        nd.lines().map(|l| serde_json::from_str::<Record>(l).unwrap()["公民身份号码"].as_str().unwrap().to_string()).collect();
    assert_eq!(csv_ids, parquet_ids);
    assert_eq!(nd_ids, parquet_ids);

    // The change feed, same rules.
    let feed = consumer.changes(CODE, 0, Some(1000)).await.unwrap();
    assert!(!feed.changes.is_empty());
    for c in &feed.changes {
        assert_eq!(c.record.as_ref().map(|r| r.len()), Some(2), "{c:?}");
    }

    // The access log: consumer, grant, purpose, items, record count.
    let admin = app.admin_client().await;
    let exports = AuditFilter { action: Some("data.export".into()), limit: Some(10), ..Default::default() };
    let mut events = Vec::new();
    for _ in 0..50 {
        events = admin.audit_events(&exports).await.unwrap().events;
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let e = &events[0];
    assert_eq!(e.actor, "dc.rs.editor");
    assert_eq!(e.detail["grant"], grant);
    assert_eq!(e.detail["purpose"], "data_verification");
    assert_eq!(e.detail["items"], json!(["公民身份号码", "户籍地址"]));
    assert_eq!(e.detail["records"], expected_rows);

    // Revocation stops access at once.
    let provider = app.client("ga.reviewer").await;
    assert_eq!(provider.revoke_grant(grant, "核验任务已完成").await.unwrap().state, GrantState::Revoked);
    assert_eq!(refusal(consumer.lookup(CODE, &inside[0], None).await).0, Some(StatusCode::FORBIDDEN), "after revocation");
    assert_eq!(refusal(consumer.export(CODE, DataFormat::Csv).await).0, Some(StatusCode::FORBIDDEN));

    // The provider reads its own data in clear; a lower-case x is normalised like everywhere else.
    let own = app.client("ga.editor").await;
    assert_eq!(own.lookup(CODE, &inside[0].to_lowercase(), None).await.unwrap()["姓名"], inside[1]);
    app.stop().await;
}

pub(crate) fn population_csv(rows: &[[String; 6]]) -> Vec<u8> {
    let mut out = String::from("公民身份号码,姓名,性别,民族,出生日期,户籍地址\n");
    for p in rows {
        out.push_str(&p.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// Lookups arriving together (on PostgreSQL they share one statement per batch of keys) each get their own
/// row, with the grant's items, masking and row filter, or 404: keys inside and outside the filter, keys
/// asked twice at once, and keys of no row, all at the same time, twice over.
async fn concurrent_lookups_each_get_their_own_row(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let people: Vec<[String; 6]> = (0..2000u64).map(|i| synth::person(i, 2026)).collect();
    let (consumer, _) = narrowed_grant(&app).await;
    let masks = MaskRules::default();
    let mut asks: Vec<(String, Option<Record>)> = Vec::new();
    for p in people.iter().take(120) {
        let expected = p[5].starts_with("南京市玄武区").then(|| {
            record(json!({"公民身份号码": masks.mask(MaskKind::IdNumber, &p[0]), "户籍地址": masks.mask(MaskKind::Address, &p[5])}))
        });
        asks.push((p[0].clone(), expected));
    }
    // The first ten keys asked twice more, and valid numbers that are in no row.
    asks.extend(asks[..10].to_vec());
    asks.extend(asks[..10].to_vec());
    asks.extend((0..10u64).map(|i| (synth::person(5_000_000 + i, 2026)[0].clone(), None)));
    assert!(asks.iter().any(|(_, e)| e.is_some()) && asks.iter().filter(|(_, e)| e.is_none()).count() > 10);
    for round in 0..2 {
        let answers = futures_util::future::join_all(asks.iter().map(|(key, _)| consumer.lookup(CODE, key, None))).await;
        for ((key, expected), answer) in asks.iter().zip(answers) {
            match (expected, answer) {
                (Some(body), Ok(found)) => assert_eq!(&found, body, "round {round}, key {key}"),
                (None, Err(e)) => assert_eq!(e.status(), Some(StatusCode::NOT_FOUND), "round {round}, key {key}: {e}"),
                (expected, answer) => panic!("round {round}, key {key}: expected {expected:?}, answered {answer:?}"),
            }
        }
    }
}

async fn batches_are_validated_reported_and_idempotent(backend: Backend) {
    let mut app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    // 流动人口居住登记信息 (101/000002): bind it as a dataset keyed by 公民身份号码. The batch's life (report,
    // replay, increments, the feed) goes through the typed client; the file's parsing below sends raw bytes.
    let (path, code) = ("/api/v1/data/101/000002", "101/000002");
    let provider = app.client("ga.editor").await;
    let binding = provider.bind(code, &NewBinding { kind: Some(BindingKind::Dataset), ..Default::default() }).await.unwrap();
    assert_eq!(binding.key_item.as_deref(), Some("公民身份号码"));
    let p: Vec<[String; 6]> = (0..6).map(|i| synth::person(i + 50_000, 9)).collect();
    let good = |i: usize| format!("{},{},{},2024-03-0{}", p[i][0], p[i][1], p[i][5], i + 1);
    let bad_id = format!("{}1", &p[0][0][..17]);
    let csv = format!(
        "公民身份号码,姓名,居住地址,登记日期\n{}\n{}\n{bad_id},张三,某地,2024-01-01\n{},李四,某地,2024-13-01\n{},王五,某地,2024-01-01,多余\n{}\n{},重复,某地,2024-01-01\n",
        good(0),
        good(1),
        p[2][0],
        p[3][0],
        good(4),
        p[0][0]
    );
    let report = provider.post_batch(code, IngestMode::Full, DataFormat::Csv, "load-1", csv.clone()).await.unwrap();
    assert_eq!(report.status, BatchStatus::Committed);
    assert_eq!((report.rows_received, report.rows_upserted, report.rows_rejected), (7, 3, 4));
    assert!(!report.replayed);
    let reject = |row: i64| report.rejects.iter().find(|x| x.row == row).unwrap_or_else(|| panic!("row {row}: {:?}", report.rejects));
    assert!(reject(3).reason.contains("check character"), "{:?}", reject(3));
    assert_eq!(reject(4).field.as_deref(), Some("登记日期"));
    assert!(reject(5).reason.contains("5 fields, the header has 4"), "{:?}", reject(5));
    assert!(reject(7).reason.contains("repeats row 1"), "{:?}", reject(7));
    // Re-sent: the first delivery's report, nothing applied twice.
    let again = provider.post_batch(code, IngestMode::Full, DataFormat::Csv, "load-1", csv).await.unwrap();
    assert_eq!((again.replayed, again.id), (true, report.id));
    let binding = provider.dataset(code).await.unwrap().binding;
    assert_eq!((binding.row_count, binding.last_seq), (3, 6));
    assert_eq!(provider.list_batches(code).await.unwrap().batches.iter().filter(|b| b.batch_id == "load-1").count(), 1);

    // Incremental: an upsert and a deletion; the change feed shows both; a deletion in a full batch is refused.
    let inc = format!(
        "公民身份号码,姓名,居住地址,登记日期,_op\n{},新名字,\"新\\地址 \"\"甲\"\", 乙\",2024-05-01,upsert\n{},,,,delete\n",
        p[0][0], p[1][0]
    );
    let report = provider.post_batch(code, IngestMode::Incremental, DataFormat::Csv, "inc-1", inc).await.unwrap();
    assert_eq!((report.rows_upserted, report.rows_deleted, report.rows_after), (1, 1, 2));
    let since = report.first_seq.unwrap() - 1;
    let feed = provider.changes(code, since, None).await.unwrap();
    let ops: Vec<(&str, Option<&str>)> = feed.changes.iter().map(|c| (c.op.as_str(), c.key.as_deref())).collect();
    assert_eq!(ops, [("upsert", Some(p[0][0].as_str())), ("delete", Some(p[1][0].as_str()))]);
    assert!(!feed.reset);
    assert_eq!(provider.lookup(code, &p[1][0], None).await.unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    let record = provider.lookup(code, &p[0][0], None).await.unwrap();
    assert_eq!((record["姓名"].as_str(), record["居住地址"].as_str()), (Some("新名字"), Some("新\\地址 \"甲\", 乙")));
    // A backslash, quotes and a comma leave an export as they came in, quoted as CSV quotes them.
    let csv = String::from_utf8(provider.export(code, DataFormat::Csv).await.unwrap().to_vec()).unwrap();
    assert!(csv.contains(&format!("{},新名字,\"新\\地址 \"\"甲\"\", 乙\",2024-05-01", p[0][0])), "{csv}");
    let r = upload(
        &app,
        &editor,
        path,
        "mode=full",
        "text/csv",
        format!("公民身份号码,姓名,居住地址,登记日期,_op\n{},a,b,2024-01-01,delete\n", p[4][0]).into_bytes(),
    )
    .await;
    assert_eq!(r.body["error"]["code"], "batch_rejected", "{:?}", r.body);
    assert!(r.body["error"]["violations"]["rejects"][0]["reason"].as_str().unwrap().contains("incremental"), "{:?}", r.body);
    assert_eq!(app.get(path, &editor).await.body["binding"]["row_count"], 2, "a full batch without valid rows empties nothing");
    // A full replacement: a reader behind it is told to resync.
    let r =
        upload(&app, &editor, path, "mode=full", "text/csv", format!("公民身份号码,姓名,居住地址,登记日期\n{}\n", good(4)).into_bytes())
            .await;
    assert_eq!((r.status, r.body["rows_after"].as_i64()), (StatusCode::CREATED, Some(1)), "{:?}", r.body);
    let feed = app.get(&format!("{path}/changes?since={since}"), &editor).await;
    assert_eq!(feed.body["reset"], true, "{:?}", feed.body);

    // NDJSON and GBK CSV.
    let nd = format!(
        "{{\"公民身份号码\": \"{}\", \"姓名\": \"赵六\", \"居住地址\": \"某地\", \"登记日期\": \"20240102\"}}\nnot json\n",
        p[5][0]
    );
    let r = upload(&app, &editor, path, "mode=incremental", "application/x-ndjson", nd.into_bytes()).await;
    assert_eq!(
        (r.status, r.body["rows_upserted"].as_i64(), r.body["rows_rejected"].as_i64()),
        (StatusCode::CREATED, Some(1), Some(1)),
        "{:?}",
        r.body
    );
    let gbk_text = format!("公民身份号码,姓名,居住地址,登记日期\n{},钱七,玄武区珠江路,2024-02-02\n", p[4][0]);
    let (gbk, _, _) = encoding_rs::GBK.encode(&gbk_text);
    let r = upload(&app, &editor, path, "mode=incremental", "text/csv", gbk.to_vec()).await;
    assert_eq!((r.status, r.body["encoding"].as_str()), (StatusCode::CREATED, Some("gbk")), "{:?}", r.body);
    assert_eq!(app.get(&format!("{path}/records/{}", p[4][0]), &editor).await.body["居住地址"], "玄武区珠江路");

    // The file as a whole: wrong delimiter, unknown column, an encoding that is neither, all-or-nothing.
    let r = upload(&app, &editor, path, "", "text/csv", "公民身份号码;姓名;居住地址;登记日期\n".into()).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("delimiter")), "{:?}", r.body);
    let r = upload(&app, &editor, path, "", "text/csv", "公民身份号码,姓名,居住地址,登记日期,血型\n".into()).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("columns[5]")), "{:?}", r.body);
    let r = upload(&app, &editor, path, "", "text/csv", vec![0xff, 0xfe, 0xfd, 0x80, 0x0a, 0xff]).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("encoding")), "{:?}", r.body);
    let before = app.get(path, &editor).await.body["binding"]["row_count"].clone();
    let r = upload(
        &app,
        &editor,
        path,
        "mode=incremental&all_or_nothing=true",
        "text/csv",
        format!("公民身份号码,姓名,居住地址,登记日期\n{},a,b,2024-01-01\n{bad_id},a,b,2024-01-01\n", p[3][0]).into_bytes(),
    )
    .await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("batch_rejected")), "{:?}", r.body);
    assert_eq!(r.body["error"]["violations"]["rejects"][0]["row"], 2);
    assert_eq!(app.get(path, &editor).await.body["binding"]["row_count"], before);

    // On PostgreSQL dataset keys collate "C"; a dataset made before that keeps the database's default and
    // still takes increments (the staging keys are compared in its collation) and answers lookups.
    if backend == Backend::Postgres {
        let pool = app.db().pool();
        let table: String = sqlx::query_scalar("SELECT table_name FROM exchange_bindings WHERE resource_code = '101/000002'")
            .fetch_one(pool)
            .await
            .unwrap();
        let collation =
            format!("SELECT collation_name::text FROM information_schema.columns WHERE table_name = '{table}' AND column_name = 'k'");
        assert_eq!(sqlx::query_scalar::<_, Option<String>>(&collation).fetch_one(pool).await.unwrap().as_deref(), Some("C"));
        sqlx::query(&format!("ALTER TABLE {table} ALTER COLUMN k TYPE TEXT COLLATE \"default\"")).execute(pool).await.unwrap();
        assert_eq!(sqlx::query_scalar::<_, Option<String>>(&collation).fetch_one(pool).await.unwrap(), None);
        // As after an upgrade: a server started on the older table (none of its statements prepared before).
        app.restart_with(|_| {}).await;
        let inc = format!("公民身份号码,姓名,居住地址,登记日期,_op\n{},孙八,鼓楼区,2024-06-01,upsert\n{},,,,delete\n", p[3][0], p[5][0]);
        let r = upload(&app, &editor, path, "mode=incremental", "text/csv", inc.into_bytes()).await;
        assert_eq!(
            (r.status, r.body["rows_upserted"].as_i64(), r.body["rows_deleted"].as_i64(), r.body["rows_after"].as_i64()),
            (StatusCode::CREATED, Some(1), Some(1), before.as_i64()),
            "{:?}",
            r.body
        );
        assert_eq!(app.get(&format!("{path}/records/{}", p[3][0]), &editor).await.body["姓名"], "孙八");
        assert_eq!(app.get(&format!("{path}/records/{}", p[5][0]), &editor).await.status, StatusCode::NOT_FOUND);
    }

    // Only the provider loads; others are refused before anything is read.
    let other = app.login("dc.rs.editor", DEMO).await;
    let r = upload(&app, &other, path, "", "text/csv", "x".into()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.stop().await;
    // Over the upload limit: refused by its Content-Length, and (streamed without one) when the limit is crossed.
    app_over_limit(backend).await;
}

async fn app_over_limit(backend: Backend) {
    let mut app = spawn_demo_app(backend).await;
    app.restart_with(|c| c.exchange.max_upload_mb = 1).await;
    let editor = app.login("ga.editor", DEMO).await;
    let big = population_csv(&(0..40_000).map(|i| synth::person(i, 3)).collect::<Vec<_>>());
    assert!(big.len() > 2 * 1024 * 1024);
    let r = upload(&app, &editor, POPULATION, "batch_id=big", "text/csv", big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let stream = futures_util::stream::iter(big.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let res = app
        .http
        .post(format!("{}{POPULATION}/batches?batch_id=big", app.base))
        .bearer_auth(&editor)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The server may answer and close before the client has sent everything.
        Err(e) => eprintln!("the server closed the upload early: {e}"),
    }
    let d = app.get(POPULATION, &editor).await;
    assert_eq!(d.body["binding"]["row_count"], 2000, "nothing applied");
    app.stop().await;
}

async fn a_service_binding_is_proxied_and_filtered(backend: Backend) {
    // The provider's own service: answers with every item of 流动人口居住登记信息 and an envelope.
    let provider_service = axum::Router::new().route(
        "/persons/{id}",
        axum::routing::get(|axum::extract::Path(id): axum::extract::Path<String>, headers: axum::http::HeaderMap| async move {
            axum::Json(json!({"code": 0, "consumer": headers.get("x-shutong-consumer").and_then(|v| v.to_str().ok()),
                "data": [{"公民身份号码": id, "姓名": "张三", "居住地址": "南京市玄武区中山路1号", "登记日期": "2024-01-01"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, provider_service).await });

    let app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let path = "/api/v1/data/101/000002";
    let r = app
        .call(
            Method::PUT,
            &format!("{path}/binding"),
            Some(&editor),
            Some(json!({"kind": "service", "service_url": format!("http://{service_addr}/")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let consumer = app.login("dc.rs.editor", DEMO).await;
    let id = synth::person(1, 1)[0].clone();
    let r = app.get(&format!("/api/v1/services/101/000002/persons/{id}"), &consumer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no grant: {:?}", r.body);
    let r = app
        .post(
            "/api/v1/requests",
            &consumer,
            json!({"resource_code": "101/000002", "items": ["公民身份号码", "居住地址"], "purpose": "business_collaboration",
                   "basis": "流动人口服务协同", "period_to": "2027-06-30", "access_methods": ["system_integration"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let req = r.body["request"]["id"].as_i64().unwrap();
    let reviewer = app.login("ga.reviewer", DEMO).await;
    assert_eq!(app.post(&format!("/api/v1/requests/{req}/approve"), &reviewer, json!({})).await.status, StatusCode::OK);
    let r = app.get(&format!("/api/v1/services/101/000002/persons/{id}"), &consumer).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let rec = &r.body["data"][0];
    assert!(rec.get("姓名").is_none(), "ungranted item removed: {rec}");
    assert_eq!(rec["公民身份号码"], MaskRules::default().mask(MaskKind::IdNumber, &id));
    assert_eq!(r.body["code"], 0, "the envelope passes");
    assert!(r.body["consumer"].as_str().is_some_and(|c| c.len() == 18), "the provider learns the consumer: {:?}", r.body);
    let r = app.get("/api/v1/services/101/000002/../admin", &consumer).await;
    assert_ne!(r.status, StatusCode::OK);
    app.stop().await;
}

on_both_backends!(
    grants_are_enforced_on_every_output,
    batches_are_validated_reported_and_idempotent,
    a_service_binding_is_proxied_and_filtered,
    concurrent_lookups_each_get_their_own_row
);

// ------------------------------------------------------------------ kill -9 during a batch

struct Server {
    child: std::process::Child,
    base: String,
}

fn server_log(db: &common::TestDb, port: u16) -> String {
    std::fs::read_to_string(db.data_dir().join(format!("server-{port}.log"))).unwrap_or_default()
}

fn start_server(db: &common::TestDb, port: u16, demo: bool) -> Server {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shutong"));
    cmd.arg("serve");
    if demo {
        cmd.arg("--demo");
    }
    let child = cmd
        .env("SHUTONG_DATA_DIR", db.data_dir())
        .env("SHUTONG_DATABASE_URL", &db.url)
        .env("SHUTONG_LISTEN", format!("127.0.0.1:{port}"))
        .env("SHUTONG_EXCHANGE__DEMO_POPULATION_ROWS", "500")
        .env("SHUTONG_EXCHANGE__CLAIM_TIMEOUT_SECONDS", "1")
        .env("SHUTONG_SHARING__SWEEP_SECONDS", "0")
        .stdout(std::process::Stdio::null())
        // Kept for the failure message of a test that loses its server (see `server_log`).
        .stderr(std::fs::File::create(db.data_dir().join(format!("server-{port}.log"))).expect("server log"))
        .spawn()
        .expect("start shutong");
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

/// Files (文件挂接) leave the platform whole or not at all: to the provider, and to a consumer only under a
/// grant covering every item in clear text without a row filter. Every download is audited.
async fn files_are_delivered_whole_or_not_at_all(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let path = "/api/v1/data/101/000002";
    let put = |token: String, name: &'static str, body: Vec<u8>| {
        let app = &app;
        async move {
            let res = app
                .http
                .post(format!("{}{path}/files", app.base))
                .query(&[("name", name)])
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Not bound as files yet: 409.
    let (status, _) = put(editor.clone(), "名单.csv", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let r = app.call(Method::PUT, &format!("{path}/binding"), Some(&editor), Some(json!({"kind": "files"}))).await;
    assert_eq!((r.status, r.body["kind"].as_str()), (StatusCode::OK, Some("files")), "{:?}", r.body);

    let content = "公民身份号码,姓名,居住地址,登记日期\n110101199003071234,张三,玄武区,2024-01-01\n".as_bytes().to_vec();
    let (status, f) = put(editor.clone(), "名单.csv", content.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{f:?}");
    use sha2::Digest;
    assert_eq!(f["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(&content)));
    assert_eq!(f["size"], content.len());
    let id = f["id"].as_i64().unwrap();
    // Bad names and strangers are refused; nothing is stored.
    for bad in ["../etc/passwd", "a/b.csv", "..", " "] {
        let res =
            app.http.post(format!("{}{path}/files", app.base)).query(&[("name", bad)]).bearer_auth(&editor).body("x").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["field"], "name", "{bad}: {v}");
    }
    let stranger = app.login("rs.admin", DEMO).await;
    let (status, _) = put(stranger.clone(), "x.csv", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let list = app.get(&format!("{path}/files"), &stranger).await;
    assert_eq!(list.body["files"].as_array().unwrap().len(), 1, "{:?}", list.body);

    // The provider downloads it, byte for byte, with its digest.
    let res = app.http.get(format!("{}{path}/files/{id}", app.base)).bearer_auth(&editor).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-shutong-sha256"].to_str().unwrap(), f["sha256"].as_str().unwrap());
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''%E5%90%8D%E5%8D%95.csv"));
    assert_eq!(res.bytes().await.unwrap().to_vec(), content);

    // No grant: 403.
    let (status, body) = raw_get(&app, &stranger, &format!("{path}/files/{id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&body));
    // A grant for some items only, or masked: still 403, saying why.
    let provider = app.login("ga.reviewer", DEMO).await;
    let grant = |consumer: String, items: Vec<&'static str>, clear: bool| {
        let (app, provider) = (&app, provider.clone());
        async move {
            let r = app
                .post(
                    "/api/v1/requests",
                    &consumer,
                    json!({"resource_code": "101/000002", "items": items, "purpose": "data_verification",
                           "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["bulk_download"]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            let id = r.body["request"]["id"].as_i64().unwrap();
            let r = app.post(&format!("/api/v1/requests/{id}/approve"), &provider, json!({"clear_text": clear})).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["grant"]["id"].as_i64().unwrap()
        }
    };
    grant(stranger.clone(), vec!["公民身份号码", "姓名"], true).await;
    let r = app.get(&format!("{path}/files/{id}"), &stranger).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("whole"), "{:?}", r.body);
    let city = app.login("dc.rs.editor", DEMO).await;
    grant(city.clone(), vec!["公民身份号码", "姓名", "居住地址", "登记日期"], false).await;
    let r = app.get(&format!("{path}/files/{id}"), &city).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("masked"), "{:?}", r.body);
    // Every item in clear text: the file, audited with the grant.
    let full = grant(stranger.clone(), vec!["公民身份号码", "姓名", "居住地址", "登记日期"], true).await;
    let (status, body) = raw_get(&app, &stranger, &format!("{path}/files/{id}?grant_id={full}")).await;
    assert_eq!((status, body), (StatusCode::OK, content.clone()));
    let admin = app.admin_token().await;
    let audited = |e: &Value| e["detail"]["grant"] == full && e["detail"]["access"]["sha256"] == f["sha256"];
    let mut trail = Value::Null;
    for _ in 0..50 {
        // The access log is written in batches: give it a moment.
        trail = app.get("/api/v1/audit/events?action=data.file_download&limit=10", &admin).await.body;
        if trail["events"].as_array().is_some_and(|e| e.iter().any(audited)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(trail["events"].as_array().unwrap().iter().any(audited), "{trail}");

    // Replaced by a file of the same name; removed by the provider.
    let (status, f2) = put(editor.clone(), "名单.csv", b"v2".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.get(&format!("{path}/files"), &editor).await.body["files"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("{path}/files/{id}"), &editor).await.status, StatusCode::NOT_FOUND);
    let id2 = f2["id"].as_i64().unwrap();
    assert_eq!(app.call(Method::DELETE, &format!("{path}/files/{id2}"), Some(&stranger), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &format!("{path}/files/{id2}"), Some(&editor), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("{path}/files/{id2}"), &editor).await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// 免提交 (R-EX-6): which items the platform can provide for a subject under the caller's grants, and their
/// values in one call, masked and row-filtered like a lookup.
async fn the_exemption_check_answers_from_grants(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let people: Vec<[String; 6]> = (0..2000).map(|i| synth::person(i, 2026)).collect();
    let inside = people.iter().find(|p| p[5].starts_with("南京市玄武区")).unwrap().clone();
    let outside = people.iter().find(|p| !p[5].starts_with("南京市玄武区")).unwrap().clone();
    let (consumer, grant) = narrowed_grant(&app).await;
    let ask = |client: &Client, subject: &str, items: &[&str], fetch: bool| {
        let query = ExemptionQuery { subject: subject.to_string(), items: items.iter().map(|i| i.to_string()).collect(), fetch };
        let client = client.clone();
        async move { client.exemption_check(&query).await }
    };
    let wanted = ["户籍地址", "姓名", "学历"];
    let answer = ask(&consumer, &inside[0], &wanted, false).await.unwrap();
    assert_eq!(answer.subject_kind, "person");
    let items = &answer.items;
    assert_eq!((items[0].available, items[0].grant_id), (true, Some(grant)), "{items:?}");
    assert_eq!(items[0].resource_code.as_deref(), Some(CODE));
    assert_eq!(items[0].value, None, "not fetched");
    // 姓名 is pooled but not granted to this department; 学历 is pooled nowhere.
    assert_eq!((items[1].available, items[1].reason.as_deref()), (false, Some("no_grant")));
    assert_eq!((items[2].available, items[2].reason.as_deref()), (false, Some("not_pooled")));
    assert_eq!(answer.still_required, ["姓名", "学历"]);
    // Fetched: the value, masked as the grant requires.
    let answer = ask(&consumer, &format!(" {} ", inside[0].to_lowercase()), &wanted, true).await.unwrap();
    assert_eq!(answer.items[0].value, Some(json!(MaskRules::default().mask(MaskKind::Address, &inside[5]))), "{answer:?}");
    // Outside the grant's rows: the applicant must provide it.
    let answer = ask(&consumer, &outside[0], &wanted, true).await.unwrap();
    assert_eq!((answer.items[0].available, answer.items[0].reason.as_deref()), (false, Some("no_record")));
    assert_eq!(answer.still_required, wanted);
    // Bad input names the field.
    let e = ask(&consumer, "110101199003071235", &["姓名"], false).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("subject")), "{e}");
    let e = ask(&consumer, &inside[0], &[], false).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(StatusCode::UNPROCESSABLE_ENTITY), Some("items")));
    // Without any grant, nothing is available.
    let stranger = app.client("xl.admin").await;
    let answer = ask(&stranger, &inside[0], &["户籍地址"], true).await.unwrap();
    assert_eq!(answer.items[0].reason.as_deref(), Some("no_grant"), "{answer:?}");
    app.stop().await;
}

on_both_backends!(files_are_delivered_whole_or_not_at_all, the_exemption_check_answers_from_grants);

/// A full batch whose key repeats in a later chunk: the key index finds it when it is built, the first row
/// is kept and the later one is reported, and the dataset is whole (both indexes, lookups, the feed).
async fn a_key_repeated_across_chunks_is_rejected(backend: Backend) {
    let app = spawn_demo_app_with(backend, |c| c.exchange.chunk_rows = 2).await;
    let provider = app.login("ga.editor", DEMO).await;
    let people: Vec<[String; 6]> = (0..5).map(|i| synth::person(i, 7)).collect();
    let mut csv = format!("{}\n", synth::POPULATION_ITEMS.join(","));
    let mut row = |p: &[String; 6], name: &str| csv.push_str(&format!("{},{name},{},{},{},{}\n", p[0], p[2], p[3], p[4], p[5]));
    for p in &people[..3] {
        row(p, &p[1]);
    }
    row(&people[0], "后来者");
    row(&people[3], &people[3][1]);
    let r = upload(&app, &provider, POPULATION, "mode=full&batch_id=repeat-1", "text/csv", csv.into_bytes()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!((r.body["rows_upserted"].as_i64(), r.body["rows_rejected"].as_i64()), (Some(4), Some(1)), "{:?}", r.body);
    assert_eq!(r.body["rejects"][0]["row"], 4);
    assert!(r.body["rejects"][0]["reason"].as_str().unwrap().contains("repeats row 1"), "{:?}", r.body["rejects"]);

    let record = app.get(&format!("{POPULATION}/records/{}", people[0][0]), &provider).await;
    assert_eq!(record.status, StatusCode::OK, "{:?}", record.body);
    assert_eq!(record.body["姓名"].as_str(), Some(people[0][1].as_str()), "the first row wins");
    let feed = app.get(&format!("{POPULATION}/changes?since=0"), &provider).await;
    assert_eq!(feed.body["changes"].as_array().map(Vec::len), Some(4), "{:?}", feed.body);
    let (status, body) = raw_get(&app, &provider, &format!("{POPULATION}/export?format=csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 5, "a header and four rows");
}

on_both_backends!(a_key_repeated_across_chunks_is_rejected);

/// A full batch uploaded in parts (分片上传): each new part is taken (202) without changing what readers
/// see, a part re-sent is answered with the batch's report (200), a part out of order is refused, and the
/// last part commits the whole (201) — rejects numbered by their row in the batch, a key repeated across
/// parts found, the dataset replaced, its sequence one number per row. A part of a batch that is not
/// loading asks for the batch again from part 1.
async fn a_full_batch_uploaded_in_parts_commits_with_its_last_part(backend: Backend) {
    let app = spawn_demo_app_with(backend, |c| c.exchange.chunk_rows = 2).await;
    let provider = app.login("ga.editor", DEMO).await;
    let before = app.get(POPULATION, &provider).await.body["binding"].clone();
    let people: Vec<[String; 6]> = (100..106).map(|i| synth::person(i, 11)).collect();
    let head = format!("{}\n", synth::POPULATION_ITEMS.join(","));
    let line = |p: &[String; 6], id: &str| format!("{id},{},{},{},{},{}\n", p[1], p[2], p[3], p[4], p[5]);
    let part1 = format!("{head}{}{}", line(&people[0], &people[0][0]), line(&people[1], &people[1][0]));
    // Row 4 of the batch: a 公民身份号码 with a wrong check character.
    let mut bad = people[3][0].clone();
    let check = bad.pop().unwrap();
    bad.push(if check == '0' { '1' } else { '0' });
    let part2 = format!("{head}{}{}", line(&people[2], &people[2][0]), line(&people[3], &bad));
    // Row 6 repeats row 1's key.
    let part3 = format!("{head}{}{}{}", line(&people[4], &people[4][0]), line(&people[5], &people[0][0]), line(&people[3], &people[3][0]));
    let q = |n: i64, last: bool| format!("mode=full&format=csv&batch_id=parts-1&part={n}{}", if last { "&last=true" } else { "" });

    let r = upload(&app, &provider, POPULATION, &q(1, false), "text/csv", part1.clone().into_bytes()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["parts"].as_i64(), r.body["rows_received"].as_i64()),
        (Some("loading"), Some(1), Some(2))
    );
    let again = upload(&app, &provider, POPULATION, &q(1, false), "text/csv", part1.into_bytes()).await;
    assert_eq!((again.status, again.body["replayed"].as_bool()), (StatusCode::OK, Some(true)), "{:?}", again.body);
    assert_eq!(again.body["rows_received"], 2, "a part re-sent is not loaded again");
    let early = upload(&app, &provider, POPULATION, &q(3, true), "text/csv", part3.clone().into_bytes()).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{:?}", early.body);
    assert!(early.body["error"]["message"].as_str().unwrap().contains("before part 2"), "{:?}", early.body);
    // Meanwhile another batch waits for the dataset, and readers see the dataset as it was.
    let other = upload(
        &app,
        &provider,
        POPULATION,
        "mode=incremental&batch_id=meanwhile",
        "text/csv",
        format!("{head}{}", line(&people[0], &people[0][0])).into_bytes(),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{:?}", other.body);
    assert_eq!(app.get(POPULATION, &provider).await.body["binding"]["row_count"], before["row_count"]);

    let r = upload(&app, &provider, POPULATION, &q(2, false), "text/csv", part2.into_bytes()).await;
    assert_eq!(
        (r.status, r.body["parts"].as_i64(), r.body["rows_rejected"].as_i64()),
        (StatusCode::ACCEPTED, Some(2), Some(1)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["rejects"][0]["row"], 4, "{:?}", r.body["rejects"]);
    let r = upload(&app, &provider, POPULATION, &q(3, true), "text/csv", part3.clone().into_bytes()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "committed");
    assert_eq!(r.body["parts"], 3);
    assert_eq!(
        (r.body["rows_received"].as_i64(), r.body["rows_upserted"].as_i64(), r.body["rows_rejected"].as_i64()),
        (Some(7), Some(5), Some(2)),
        "{:?}",
        r.body
    );
    let rows: Vec<i64> = r.body["rejects"].as_array().unwrap().iter().map(|x| x["row"].as_i64().unwrap()).collect();
    assert_eq!(rows, vec![4, 6], "{:?}", r.body["rejects"]);
    assert!(r.body["rejects"][1]["reason"].as_str().unwrap().contains("repeats row 1"), "{:?}", r.body["rejects"]);
    let binding = app.get(POPULATION, &provider).await.body["binding"].clone();
    assert_eq!(binding["row_count"], 5, "the full batch replaced the dataset: {binding}");
    let record = app.get(&format!("{POPULATION}/records/{}", people[3][0]), &provider).await;
    assert_eq!(record.status, StatusCode::OK, "{:?}", record.body);
    let last = upload(&app, &provider, POPULATION, &q(3, true), "text/csv", part3.into_bytes()).await;
    assert_eq!((last.status, last.body["replayed"].as_bool()), (StatusCode::OK, Some(true)), "the last part re-sent: {:?}", last.body);

    // A part after the first of a batch that is not loading.
    let lost = upload(&app, &provider, POPULATION, "mode=full&batch_id=never-begun&part=2", "text/csv", head.clone().into_bytes()).await;
    assert_eq!((lost.status, lost.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("batch_parts_lost")), "{:?}", lost.body);
    // Parts are for full batches with an ID.
    let r = upload(&app, &provider, POPULATION, "mode=incremental&batch_id=x&part=1", "text/csv", head.clone().into_bytes()).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("part")), "{:?}", r.body);
    let r = upload(&app, &provider, POPULATION, "mode=full&part=1", "text/csv", head.clone().into_bytes()).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("batch_id")), "{:?}", r.body);
}

on_both_backends!(a_full_batch_uploaded_in_parts_commits_with_its_last_part);

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready");
}

async fn a_killed_server_loses_no_committed_batch(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let port = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() };
    // No kept-alive connections: the server is killed and restarted on the same port, and a pooled
    // connection to the dead one would fail the next request.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut server = start_server(&db, port, true);
    wait_ready(&http, &server.base).await;
    let token = {
        let r = http
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"username": "ga.editor", "password": DEMO}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    };
    let count = |base: String, token: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{base}{POPULATION}")).bearer_auth(token).send().await.unwrap();
            r.json::<Value>().await.unwrap()["binding"]["row_count"].as_i64().unwrap()
        }
    };
    assert_eq!(count(server.base.clone(), token.clone()).await, 500);
    // A large batch, streamed slowly enough that it is still loading when the server dies.
    let big = population_csv(&(0..60_000).map(|i| synth::person(i, 77)).collect::<Vec<_>>());
    let chunks: Vec<Vec<u8>> = big.chunks(256 * 1024).map(|c| c.to_vec()).collect();
    let slow = futures_util::stream::unfold(chunks.clone().into_iter(), |mut it| async move {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        it.next().map(|c| (Ok::<_, std::io::Error>(c), it))
    });
    let url = format!("{}{POPULATION}/batches?mode=full&batch_id=census-2026", server.base);
    let upload =
        tokio::spawn(http.post(&url).bearer_auth(&token).header("content-type", "text/csv").body(reqwest::Body::wrap_stream(slow)).send());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    let _ = upload.await;
    // Let the dead writer's claim lapse (exchange.claim_timeout_seconds = 1).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // After the restart: the committed data is intact, the interrupted batch left nothing behind.
    let mut server = start_server(&db, port, false);
    wait_ready(&http, &server.base).await;
    assert_eq!(count(server.base.clone(), token.clone()).await, 500);
    let batches: Value =
        http.get(format!("{}{POPULATION}/batches", server.base)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let census: Vec<&Value> = batches["batches"].as_array().unwrap().iter().filter(|b| b["batch_id"] == "census-2026").collect();
    assert_eq!(census.len(), 1, "{batches}");
    assert_eq!(census[0]["status"], "failed");

    // Re-sent: applied once; re-sent again: the same report.
    let r = match http.post(&url).bearer_auth(&token).header("content-type", "text/csv").body(big.clone()).send().await {
        Ok(r) => r,
        Err(e) => panic!("re-sending the batch: {e}\nserver log:\n{}", server_log(&db, port)),
    };
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["rows_upserted"], 60_000);
    let r = http.post(&url).bearer_auth(&token).header("content-type", "text/csv").body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(count(server.base.clone(), token.clone()).await, 60_000);
    server.child.kill().ok();
    let _ = server.child.wait();
}

on_both_backends!(a_killed_server_loses_no_committed_batch);

/// Sends a whole upload over a raw connection, as a client that does not read before it has written everything
/// (most do), and returns the status line and the body of the answer.
async fn send_whole(base: &str, path_and_query: &str, token: &str, body: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    if let Err(e) = s.write_all(body).await {
        panic!("the server closed the connection before the upload was sent: {e}");
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

async fn an_upload_answered_early_still_gets_its_answer(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let rows = population_csv(&(0..10).map(|i| synth::person(i, 5)).collect::<Vec<_>>());
    let r = upload(&app, &editor, POPULATION, "mode=incremental&batch_id=once", "text/csv", rows).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // 48 MB, far more than the socket buffers hold: the server answers before it has read them.
    let filler = vec![b'x'; 48 * 1024 * 1024];
    // A re-sent batch: the report of the first.
    let (status, body) = send_whole(&app.base, &format!("{POPULATION}/batches?mode=incremental&batch_id=once"), &editor, &filler).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");
    assert!(body.contains("\"replayed\":true"), "{body}");
    // A refusal: the error envelope.
    let other = app.login("dc.rs.editor", DEMO).await;
    let (status, body) = send_whole(&app.base, &format!("{POPULATION}/batches?batch_id=x"), &other, &filler).await;
    assert!(status.starts_with("HTTP/1.1 403"), "{status}\n{body}");
    assert!(body.contains("\"error\""), "{body}");
    // A file upload refused before its first byte is read.
    let (status, body) = send_whole(&app.base, &format!("{POPULATION}/files?name=a.bin"), &other, &filler).await;
    assert!(status.starts_with("HTTP/1.1 4"), "{status}\n{body}");
    assert!(body.contains("\"error\""), "{body}");
    app.stop().await;
}

on_both_backends!(an_upload_answered_early_still_gets_its_answer);

/// PostgreSQL closes the connections a batched lookup keeps (an administrator, a restart, a network cut): the
/// next lookups are read on new connections, not answered with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_outlive_their_connections_postgres() {
    let app = spawn_demo_app(Backend::Postgres).await;
    let (consumer, _) = narrowed_grant(&app).await;
    let person = (0..2000).map(|i| synth::person(i, 2026)).find(|p| p[5].starts_with("南京市玄武区")).unwrap();
    for _ in 0..3 {
        consumer.lookup(CODE, &person[0], None).await.unwrap();
    }

    let pool = app.db().pool();
    let others = "datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'";
    let pids: String = sqlx::query_scalar(&format!("SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE {others}"))
        .fetch_one(pool)
        .await
        .unwrap();
    let terminated: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE {others}) x WHERE t"
    ))
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(terminated >= 1, "the lookups' connection was open");
    for _ in 0..100 {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid::text = ANY(string_to_array($1, ','))")
            .bind(&pids)
            .fetch_one(pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    for _ in 0..3 {
        let found = consumer.lookup(CODE, &person[0], None).await.expect("after the server closed the connections");
        assert_eq!(found["公民身份号码"], MaskRules::default().mask(MaskKind::IdNumber, &person[0]));
    }
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// XLSX uploads are streamed: an honest workbook loads (its table may start right of column A; a value
/// outside the table rejects its row), a workbook that unpacks far beyond its size is refused before its
/// rows are read with an error naming the limit, whatever its header, and nothing of it is applied.
async fn xlsx_uploads_are_streamed_and_bombs_refused(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let before = app.get(POPULATION, &editor).await.body["binding"]["row_count"].as_i64().unwrap();

    let people: Vec<[String; 6]> = (0..300).map(|i| synth::person(i, 11)).collect();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, name) in synth::POPULATION_ITEMS.iter().enumerate() {
        sheet.write_string(0, c as u16 + 1, *name).unwrap();
    }
    for (r, p) in people.iter().enumerate() {
        for (c, v) in p.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16 + 1, v).unwrap();
        }
    }
    sheet.write_string(5, 0, "表外的值").unwrap();
    let honest = book.save_to_buffer().unwrap();
    let r = upload(&app, &editor, POPULATION, "mode=full&batch_id=xlsx-1", XLSX, honest).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!((r.body["rows_upserted"].as_i64(), r.body["rows_rejected"].as_i64()), (Some(299), Some(1)), "{:?}", r.body);
    assert_eq!(r.body["rejects"][0]["row"], 5);
    assert!(r.body["rejects"][0]["reason"].as_str().unwrap().contains("outside the header's 6 columns"), "{:?}", r.body["rejects"]);
    let record = app.get(&format!("{POPULATION}/records/{}", people[0][0]), &editor).await;
    assert_eq!(record.body["姓名"].as_str(), Some(people[0][1].as_str()), "{:?}", record.body);
    assert_eq!(app.get(POPULATION, &editor).await.body["binding"]["row_count"].as_i64(), Some(299));

    // Bombs: a few hundred kilobytes that unpack to a hundred times more and beyond, with a right header and
    // with a wrong one.
    let p = &people[0];
    let row: Vec<&str> = p.iter().map(String::as_str).collect();
    for (header, batch) in [(synth::POPULATION_ITEMS.to_vec(), "bomb-1"), (vec!["不是信息项"], "bomb-2")] {
        let bomb = shutong_catalog::spreadsheet::repeated_row_workbook(&header, &row, 300_000).unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let r = upload(&app, &editor, POPULATION, &format!("mode=full&batch_id={batch}"), XLSX, bomb).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("exchange.xlsx_max_ratio") && message.contains("xl/worksheets/sheet1.xml"), "{message}");
    }
    assert_eq!(app.get(POPULATION, &editor).await.body["binding"]["row_count"].as_i64(), Some(299), "nothing applied");
    assert_ne!(before, 299);

    // An honest workbook whose header names no item is refused naming the column.
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet().write_string(0, 0, "身份证").unwrap();
    let r = upload(&app, &editor, POPULATION, "mode=full&batch_id=xlsx-2", XLSX, book.save_to_buffer().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("'身份证' is not an item"), "{:?}", r.body);
}

/// With a lower total and no ratio limit, the total refuses the workbook and says which setting.
async fn an_xlsx_upload_is_bounded_by_its_unpacked_total(backend: Backend) {
    let app = spawn_demo_app_with(backend, |c| {
        c.exchange.xlsx_max_ratio = 1 << 20;
        c.exchange.xlsx_max_unpacked_mb = 8;
    })
    .await;
    let editor = app.login("ga.editor", DEMO).await;
    let p = synth::person(1, 11);
    let row: Vec<&str> = p.iter().map(String::as_str).collect();
    let bomb = shutong_catalog::spreadsheet::repeated_row_workbook(&synth::POPULATION_ITEMS, &row, 100_000).unwrap();
    let r = upload(&app, &editor, POPULATION, "mode=full&batch_id=total", XLSX, bomb).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("more than 8 MiB (exchange.xlsx_max_unpacked_mb)"), "{:?}", r.body);
}

on_both_backends!(xlsx_uploads_are_streamed_and_bombs_refused, an_xlsx_upload_is_bounded_by_its_unpacked_total);

/// A change in the data pool never commits without its audit event. On PostgreSQL the pool is the
/// platform database: a failing event insert rolls the binding back. On SQLite the pool is a database of
/// its own: the event is written into the pool's outbox with the binding and reaches the platform's trail
/// once it can (here: after a restart), exactly once.
async fn a_pool_change_never_commits_without_its_event(backend: Backend) {
    let mut app = spawn_demo_app(backend).await;
    let editor = app.login("ga.editor", DEMO).await;
    let path = "/api/v1/data/101/000002";
    let bind_events = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            sqlx::query("SELECT COUNT(*) FROM audit_events WHERE action = 'exchange.bind' AND target_id = '101/000002'")
                .fetch_one(db.pool())
                .await
                .map(|r| sqlx::Row::get::<i64, _>(&r, 0))
                .unwrap()
        }
    };
    common::fail_audit_inserts(app.db(), true).await;
    let r = app.call(Method::PUT, &format!("{path}/binding"), Some(&editor), Some(json!({"kind": "dataset"}))).await;
    let bound = app.get(path, &editor).await;
    match backend {
        Backend::Postgres => {
            assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
            assert_eq!(bound.status, StatusCode::NOT_FOUND, "nothing of the change remains: {:?}", bound.body);
        }
        Backend::Sqlite => {
            assert_eq!(r.status, StatusCode::OK, "the change and its event committed together in the pool: {:?}", r.body);
            assert_eq!(bound.status, StatusCode::OK, "{:?}", bound.body);
        }
    }
    common::fail_audit_inserts(app.db(), false).await;
    assert_eq!(bind_events(&app).await, 0);
    if backend == Backend::Sqlite {
        app.restart_with(|_| {}).await;
        assert_eq!(bind_events(&app).await, 1, "the outbox delivered the event at start");
        app.restart_with(|_| {}).await;
        assert_eq!(bind_events(&app).await, 1, "and only once");
        let admin = app.admin_token().await;
        let ev = app.get("/api/v1/audit/events?action=exchange.bind&target_id=101%2F000002", &admin).await;
        assert_eq!(ev.body["events"][0]["actor"], "ga.editor", "{:?}", ev.body);
    }
    app.stop().await;
}

on_both_backends!(a_pool_change_never_commits_without_its_event);
