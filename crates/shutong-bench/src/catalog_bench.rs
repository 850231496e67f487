//! `shutong-bench catalog`: import throughput and search latency on N generated resources.

use anyhow::Context;
use shutong_audit::AuditContext;
use shutong_catalog::search::{CatalogIndex, SearchRequest};
use shutong_catalog::transfer::{self, CatalogEntry, ImportLimits, ImportOptions, TransferFormat};
use shutong_catalog::*;
use shutong_identity::{DepartmentKind, DepartmentLevel, NewDepartment, Principal};
use shutong_store::{Db, DbOptions};
use std::time::{Duration, Instant};

use crate::Rng;

const SUBJECTS: &[&str] = &[
    "人口",
    "户籍",
    "婚姻",
    "出生",
    "死亡",
    "社会保险",
    "养老",
    "医疗",
    "就业",
    "低保",
    "残疾人",
    "企业",
    "法人",
    "个体工商户",
    "社会组织",
    "不动产",
    "土地",
    "房屋",
    "车辆",
    "驾驶人",
    "税务",
    "发票",
    "信用",
    "行政许可",
    "行政处罚",
    "食品",
    "药品",
    "特种设备",
    "安全生产",
    "环境监测",
    "排污",
    "水质",
    "气象",
    "地质灾害",
    "学籍",
    "教师资格",
    "医师",
    "护士",
    "公积金",
    "住房",
    "公交",
    "出租车",
    "旅游",
    "文物",
    "宗教场所",
    "退役军人",
    "扶贫",
];
const KINDS: &[&str] =
    &["基本信息", "登记信息", "许可信息", "变更信息", "注销信息", "统计信息", "监测数据", "核查结果", "名录", "证照信息"];
const ITEMS: &[&str] = &[
    "公民身份号码",
    "姓名",
    "性别",
    "出生日期",
    "统一社会信用代码",
    "单位名称",
    "法定代表人",
    "登记日期",
    "有效期至",
    "地址",
    "联系电话",
    "状态",
    "金额",
    "数量",
    "类别",
    "编号",
    "发证机关",
    "备注",
    "经度",
    "纬度",
];
const CLASSES: &[&str] =
    &["101", "102", "103", "104", "105", "106", "201", "202", "203", "204", "205", "206", "207", "208", "209", "210", "211", "212", "213"];

/// N entries with about 10 items each, deterministic.
pub fn generate(n: usize, provider_codes: &[String]) -> Vec<CatalogEntry> {
    let mut rng = Rng(20_171_212);
    (0..n)
        .map(|i| {
            let subject = SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize];
            let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
            let class = CLASSES[rng.below(CLASSES.len() as u64) as usize];
            let conditional = rng.below(3) == 0;
            let t = if conditional { SharingType::Conditional } else { SharingType::Unconditional };
            let n_items = 8 + rng.below(5) as usize;
            let mut used = std::collections::HashSet::new();
            let items: Vec<InfoItem> = (0..n_items)
                .filter_map(|_| {
                    let name = ITEMS[rng.below(ITEMS.len() as u64) as usize];
                    used.insert(name).then(|| InfoItem {
                        name: name.into(),
                        data_type: DataType::Char,
                        length: Some(50),
                        required: false,
                        is_key: false,
                        mask: None,
                        sharing_type: t,
                        sharing_condition: None,
                        standard: None,
                        is_base_item: false,
                    })
                })
                .collect();
            CatalogEntry {
                code: None,
                classification_code: class.into(),
                provider_code: provider_codes[i % provider_codes.len()].clone(),
                document: ResourceDocument {
                    name: format!("{subject}{kind}（第{}批）", i / 1000 + 1),
                    summary: format!(
                        "全省{subject}{kind}，由提供部门按{}更新，用于政务服务和监管业务。",
                        if conditional { "每月" } else { "每日" }
                    ),
                    format: ResourceFormat::Database,
                    items,
                    sharing_type: t,
                    sharing_condition: conditional.then(|| "仅向承担相关职能的部门提供".into()),
                    permitted_usage: conditional.then(|| "仅用于申请载明的用途".into()),
                    legal_basis: None,
                    sharing_methods: vec![SharingMethod::OnlineQuery],
                    open_to_public: !conditional && rng.below(4) == 0,
                    open_condition: None,
                    update_cycle: if conditional { UpdateCycle::Monthly } else { UpdateCycle::Daily },
                    related_codes: vec![],
                    secrecy: Secrecy::NonClassified,
                    network: Network::Outer,
                    source_system: None,
                    contact: None,
                    record_count: Some(rng.below(10_000_000) as i64),
                    storage_mb: None,
                    tags: vec![],
                },
            }
        })
        .collect()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

struct Figures {
    backend: &'static str,
    parse_xlsx: f64,
    parse_json: f64,
    import: f64,
    publish: f64,
    index: f64,
    p50: Duration,
    p99: Duration,
    queries: usize,
}

async fn run_on(
    backend: &'static str,
    url: &str,
    entries_template: &[CatalogEntry],
    xlsx: &[u8],
    json: &[u8],
    n: usize,
) -> anyhow::Result<Figures> {
    let db = Db::connect(url, &DbOptions::default()).await?;
    db.migrate().await?;
    let regions = shutong_reference::RegionTable::builtin();
    let op = Principal::operator("bench");
    let ctx = AuditContext::system("bench");
    let mut codes = Vec::new();
    for i in 0..20u32 {
        let code = shutong::demo::demo_credit_code("320000", 500 + i);
        shutong_identity::create_department(
            &db,
            &regions,
            &op,
            &ctx,
            NewDepartment {
                name: format!("基准测试部门{i}"),
                credit_code: code.clone(),
                region_code: "320000".into(),
                level: DepartmentLevel::Province,
                kind: DepartmentKind::Government,
                parent_id: None,
            },
        )
        .await?;
        codes.push(code);
    }
    let _ = entries_template;
    let t = Instant::now();
    let parsed_xlsx =
        transfer::parse(TransferFormat::Xlsx, xlsx, &bench_limits()).map_err(|e| anyhow::anyhow!("{:?}", &e[..e.len().min(3)]))?;
    let parse_xlsx = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let parsed = transfer::parse(TransferFormat::Json, json, &bench_limits()).map_err(|e| anyhow::anyhow!("{:?}", &e[..e.len().min(3)]))?;
    let parse_json = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(parsed.len(), parsed_xlsx.len());
    let t = Instant::now();
    let report = transfer::import(&db, &op, &ctx, &parsed, ImportOptions { submit: true, department_code: None }, &|_| {}).await?;
    anyhow::ensure!(report.committed, "import refused: {:?}", &report.issues[..report.issues.len().min(3)]);
    let import = n as f64 / t.elapsed().as_secs_f64();
    // Publish everything (the authority's approvals), so that it is searchable.
    let t = Instant::now();
    for code in &report.codes {
        review(&db, &shutong_store::Clock::system(), &op, &ctx, code, ReviewDecision::Approve).await?;
    }
    let publish = n as f64 / t.elapsed().as_secs_f64();
    let index = CatalogIndex::new()?;
    let t = Instant::now();
    let indexed = index.rebuild(&db).await?;
    anyhow::ensure!(indexed == n, "indexed {indexed} of {n}");
    let index_rate = n as f64 / t.elapsed().as_secs_f64();
    // A fixed set of Chinese queries, with and without facet filters; each run 50 times.
    let queries: Vec<SearchRequest> = [
        ("人口", vec![]),
        ("企业法人", vec![]),
        ("社会保险 参保", vec![]),
        ("不动产登记", vec![("sharing", "conditional")]),
        ("食品 许可", vec![("class", "2")]),
        ("公民身份号码", vec![]),
        ("驾驶人", vec![("open", "false")]),
        ("", vec![("class", "101")]),
        ("地质灾害 监测数据", vec![]),
        ("行政处罚 名录", vec![("cycle", "daily")]),
    ]
    .into_iter()
    .map(|(q, f)| SearchRequest {
        q: q.into(),
        filters: f.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        limit: 20,
        cursor: None,
    })
    .collect();
    let mut times = Vec::new();
    for _ in 0..50 {
        for q in &queries {
            let t = Instant::now();
            let r = index.search(q)?;
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
    }
    times.sort();
    db.close().await;
    Ok(Figures {
        backend,
        parse_xlsx,
        parse_json,
        import,
        publish,
        index: index_rate,
        p50: pct(&times, 0.5),
        p99: pct(&times, 0.99),
        queries: times.len(),
    })
}

pub async fn run(n: usize, postgres: &str, sqlite_only: bool) -> anyhow::Result<()> {
    println!("shutong-bench catalog: N = {n} resources (≈10 items each, seed 20171212)");
    let providers: Vec<String> = (0..20u32).map(|i| shutong::demo::demo_credit_code("320000", 500 + i)).collect();
    let t = Instant::now();
    let entries = generate(n, &providers);
    let xlsx = transfer::write(TransferFormat::Xlsx, &entries)?;
    let json = transfer::write(TransferFormat::Json, &entries)?;
    println!(
        "  generated; XLSX {:.1} MB, JSON {:.1} MB, in {:.1} s",
        xlsx.len() as f64 / 1e6,
        json.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut figures = Vec::new();
    let dir = std::env::temp_dir().join(format!("shutong-bench-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    figures.push(run_on("SQLite", &format!("sqlite://{}", dir.join("bench.db").display()), &entries, &xlsx, &json, n).await?);
    let _ = std::fs::remove_dir_all(&dir);
    if !sqlite_only {
        sqlx::any::install_default_drivers();
        let name = format!("shutong_bench_{}", std::process::id());
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(postgres)
            .await
            .context("connecting to PostgreSQL (--sqlite-only skips it)")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        let base = postgres.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_default();
        let result = run_on("PostgreSQL", &format!("{base}/{name}"), &entries, &xlsx, &json, n).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
        figures.push(result?);
    }
    println!();
    println!(
        "| backend | parse XLSX | parse JSON | import (one transaction, submitted) | approve one by one | index build | search p50 | search p99 | ratio to targets |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for f in &figures {
        println!(
            "| {} | {:.0}/s | {:.0}/s | {:.0}/s | {:.0}/s | {:.0}/s | {:.2} ms | {:.2} ms ({} queries) | import {:.2}x of 5,000/s; p99 {:.2}x of 10 ms |",
            f.backend,
            f.parse_xlsx,
            f.parse_json,
            f.import,
            f.publish,
            f.index,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.queries,
            f.import / 5000.0,
            f.p99.as_secs_f64() * 1e3 / 10.0
        );
    }
    Ok(())
}

/// The import limits, raised to the benchmark's file sizes (the server keeps its own).
fn bench_limits() -> ImportLimits {
    ImportLimits { max_file_bytes: 1 << 30, max_unpacked_bytes: 4 << 30, max_resources: 1_000_000 }
}
