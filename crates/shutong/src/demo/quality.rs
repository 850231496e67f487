//! The demo's data quality (数据质量): the population's provider adds its own rules, and both pooled datasets
//! are checked once, so that `serve --demo` shows rules, results and scores. Seeded once.

use shutong_quality::{self as quality, CheckCause, NewRule, RuleKind};

/// Adds the rules of 示范省公安厅 to 人口基本信息 and checks the demo's two datasets.
pub async fn seed_quality(ex: &shutong_exchange::Exchange, regions: &shutong_reference::RegionTable) -> anyhow::Result<()> {
    let db = &ex.db;
    let code = |name: &'static str| super::demo_code(db, name);
    let user = |name: &'static str| super::demo_user(db, name);
    let population = code("人口基本信息").await?;
    let (ga, ga_ctx) = user("ga.editor").await?;
    if !quality::runs(ex, &ga, &population, None, 1).await?.is_empty() {
        return Ok(());
    }
    for kind in [
        RuleKind::CodeList { item: "性别".into(), values: vec!["男".into(), "女".into()] },
        RuleKind::Pattern { item: "姓名".into(), pattern: "\\p{Han}{2,4}".into() },
        RuleKind::IdConsistency {
            id_item: "公民身份号码".into(), birth_item: Some("出生日期".into()), sex_item: Some("性别".into())
        },
        RuleKind::VolumeChange { max_change_percent: 20 },
    ] {
        quality::add_rule(ex, &ga, &ga_ctx, &population, NewRule { kind, dimension: None, blocking: false, note: None }).await?;
    }
    quality::check(ex, &ga, &ga_ctx, regions, &population, CheckCause::Manual, None).await?;
    let entities = code("法人单位基本信息").await?;
    let (sj, sj_ctx) = user("sj.editor").await?;
    quality::check(ex, &sj, &sj_ctx, regions, &entities, CheckCause::Manual, None).await?;
    Ok(())
}

/// 疑义校核 in the demo: 示范省民政厅 and 示范省卫生健康委员会 hold grants on 人口基本信息 and have objected to
/// records in every state: one filed 30 days ago and never answered (overdue), one open, one answered
/// 确认无误 and waiting for the filer, one escalated to the sharing authority, one accepted and closed.
/// Seeded once.
pub async fn seed_objections(ex: &shutong_exchange::Exchange) -> anyhow::Result<()> {
    use shutong_quality::{NewObjection, ObjectionAnswer, ObjectionSettings};
    use shutong_sharing::{self as sharing, AccessMethod::*, Approval, NewRequest, Purpose};
    let db = &ex.db;
    let population = super::demo_code(db, "人口基本信息").await?;
    let (ga, ga_ctx) = super::demo_user(db, "ga.reviewer").await?;
    if !quality::objections(ex, &ga, &Default::default()).await?.is_empty() {
        return Ok(());
    }
    let clock = &ex.sharing.clock;
    let today = clock.today();
    // Back 30 days: the grants and the overdue objection; then today again.
    clock.set_date(today - chrono::Days::new(30));
    let mut filers = Vec::new();
    for (name, basis) in
        [("mz.reviewer", "《社会救助暂行办法》第十一条: 核对救助申请人户籍"), ("wj.reviewer", "《母婴保健法》: 核验出生医学证明申领人身份")]
    {
        let (p, ctx) = super::demo_user(db, name).await?;
        let asked = sharing::create_request(
            &ex.sharing,
            &p,
            &ctx,
            NewRequest {
                resource_code: population.to_string(),
                items: ["公民身份号码", "姓名", "性别", "出生日期", "户籍地址"].iter().map(|i| i.to_string()).collect(),
                purpose: Some(Purpose::DataVerification),
                basis: basis.into(),
                period_to: Some(today + chrono::Days::new(365)),
                access_methods: vec![OnlineQuery, BulkDownload, Subscription],
                expected_volume: Some("每日约 200 次查询".into()),
                ..Default::default()
            },
        )
        .await?
        .request
        .id;
        sharing::approve(&ex.sharing, &ga, &ga_ctx, sharing::RequestId(asked), Approval::default()).await?;
        filers.push((p, ctx));
    }
    let settings = ObjectionSettings::default();
    let key = |i: u64| shutong_exchange::synth::person(i, 2026)[0].clone();
    let object = |i: u64, items: &[&str], reason: &str, description: &str| NewObjection {
        resource: population.clone(),
        grant: None,
        keys: vec![key(i)],
        items: items.iter().map(|s| s.to_string()).collect(),
        reason: reason.into(),
        description: description.into(),
    };
    let (mz, mz_ctx) = &filers[0];
    let (wj, wj_ctx) = &filers[1];
    quality::file_objection(ex, mz, mz_ctx, &settings, &object(11, &["户籍地址"], "outdated", "申请人已于去年迁出，户籍地址未更新"))
        .await?;
    clock.set_now_ms(shutong_store::now_ms());
    quality::file_objection(ex, wj, wj_ctx, &settings, &object(12, &["出生日期"], "wrong", "出生医学证明记载的出生日期与此不一致")).await?;
    let p = &ga;
    let answered =
        quality::file_objection(ex, mz, mz_ctx, &settings, &object(13, &["姓名"], "format", "姓名中含生僻字，显示为问号")).await?;
    quality::answer_objection(
        ex,
        p,
        &ga_ctx,
        answered.id,
        ObjectionAnswer::Confirmed,
        "经核对户籍底册，姓名登记无误；生僻字请使用 GB 18030 字库显示",
    )
    .await?;
    let escalated = quality::file_objection(ex, wj, wj_ctx, &settings, &object(14, &[], "duplicate", "同一人疑似登记两条记录")).await?;
    quality::answer_objection(ex, p, &ga_ctx, escalated.id, ObjectionAnswer::Declined, "公民身份号码唯一，不存在重复登记").await?;
    quality::escalate_objection(ex, wj, wj_ctx, escalated.id, "我委系统中同一出生医学证明对应两个公民身份号码，请协调核实").await?;
    let closed = quality::file_objection(ex, mz, mz_ctx, &settings, &object(15, &["性别"], "wrong", "性别与身份证号码不符")).await?;
    quality::answer_objection(ex, p, &ga_ctx, closed.id, ObjectionAnswer::Confirmed, "经核对，性别与公民身份号码第十七位一致").await?;
    quality::accept_answer(ex, mz, mz_ctx, closed.id).await?;
    Ok(())
}

/// 一数一源 in the demo: the authority declares the element 人口 (authoritative: 示范省公安厅's 人口基本信息;
/// 姓名, 性别, 出生日期, 户籍地址 keyed by 公民身份号码); 示范省人力资源和社会保障厅 pools 社会保险参保信息 for the
/// same people, three of them with another 户籍地址; the reconciliation lists those three and tells both.
/// Seeded once.
pub async fn seed_consistency(ex: &shutong_exchange::Exchange, population_rows: u64) -> anyhow::Result<()> {
    use shutong_exchange::{self as exchange, BatchRequest, BindingKind, DataFormat, IngestMode, Input, NewBinding};
    let db = &ex.db;
    if !quality::elements(ex).await?.is_empty() {
        return Ok(());
    }
    let population = super::demo_code(db, "人口基本信息").await?;
    let insured = super::demo_code(db, "社会保险参保信息").await?;
    let (rs, rs_ctx) = super::demo_user(db, "rs.admin").await?;
    exchange::bind(ex, &rs, &rs_ctx, &insured, NewBinding { kind: Some(BindingKind::Dataset), ..Default::default() }).await?;
    let mut csv = String::from("公民身份号码,险种,参保状态,缴费基数,姓名,户籍地址\n");
    for i in 0..population_rows {
        let p = exchange::synth::person(i, 2026);
        let address = if [5, 6, 9].contains(&i) { format!("{}（旧址）", p[5]) } else { p[5].clone() };
        csv.push_str(&format!("{},企业职工基本养老保险,正常参保,{}.00,{},{}\n", p[0], 4000 + (i % 50) * 100, p[1], address));
    }
    let req = BatchRequest {
        resource_code: insured.clone(),
        mode: IngestMode::Full,
        format: DataFormat::Csv,
        batch_id: Some("demo-initial-load".into()),
        delimiter: None,
        encoding: None,
        all_or_nothing: true,
        part: None,
    };
    exchange::ingest(ex, &rs, &rs_ctx, req, Input::Reader(Box::new(std::io::Cursor::new(csv.into_bytes())))).await?;
    let (sq, sq_ctx) = super::demo_user(db, "sq.reviewer").await?;
    let element = quality::NewElement {
        name: "人口".into(),
        key_item: "公民身份号码".into(),
        resource: population,
        items: ["姓名", "性别", "出生日期", "户籍地址"].iter().map(|s| s.to_string()).collect(),
    };
    let e = quality::declare_element(ex, &sq, &sq_ctx, &element).await?;
    quality::reconcile(ex, &sq, &sq_ctx, e.id, Some(&insured), quality::ReconcileCause::Manual).await?;
    Ok(())
}

/// 主题库 in the demo: 示范省人力资源和社会保障厅 assembles 社会保障主题库 from 人口基本信息 (公安厅: 姓名, 性别) and its
/// own 社会保险参保信息 (险种, 参保状态) by 公民身份号码, published and refreshed. Seeded once.
pub async fn seed_themes(ex: &shutong_exchange::Exchange) -> anyhow::Result<()> {
    let db = &ex.db;
    if !quality::themes(ex).await?.is_empty() {
        return Ok(());
    }
    let population = super::demo_code(db, "人口基本信息").await?.to_string();
    let insured = super::demo_code(db, "社会保险参保信息").await?.to_string();
    let (rs, rs_ctx) = super::demo_user(db, "rs.admin").await?;
    let item = |item: &str, code: &str, member: &str| quality::ThemeItem {
        item: item.into(),
        resource_code: code.into(),
        member_item: member.into(),
    };
    let new = quality::NewTheme {
        name: "社会保障主题库".into(),
        summary: "汇聚人口基础信息与社会保险参保信息，支撑社会保障业务协同（贵州方案 四（七））。".into(),
        classification_code: "202".into(),
        key_item: "公民身份号码".into(),
        items: vec![
            item("姓名", &population, "姓名"),
            item("性别", &population, "性别"),
            item("险种", &insured, "险种"),
            item("参保状态", &insured, "参保状态"),
        ],
    };
    let theme = quality::create_theme(ex, &rs, &rs_ctx, &new).await?;
    let code = shutong_catalog::ResourceCode::parse(&theme.resource_code).map_err(anyhow::Error::msg)?;
    shutong_catalog::submit(db, &rs, &rs_ctx, &code).await?;
    let (sq, sq_ctx) = super::demo_user(db, "sq.reviewer").await?;
    shutong_catalog::review(db, &ex.sharing.clock, &sq, &sq_ctx, &code, shutong_catalog::ReviewDecision::Approve).await?;
    quality::refresh_theme(ex, &rs, &rs_ctx, theme.id).await?;
    Ok(())
}
