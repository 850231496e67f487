//! The demo's scenarios: seeding the departments, accounts, catalog, requests in every state, and pooled
//! datasets, through the service functions as users would.

use shutong_audit::AuditContext;
use shutong_identity::{self as identity, NewDepartment, NewUser, Principal, Role, SecuritySettings};
use shutong_reference::{CreditCode, RegionTable, WorkCalendar};
use shutong_store::Db;

use super::data::*;
use super::*;

/// Seeds the demo once. Returns whether anything was created.
pub async fn seed(db: &Db, regions: &RegionTable, security: &SecuritySettings, calendar: &WorkCalendar) -> anyhow::Result<bool> {
    let first_code = demo_credit_code(DEPARTMENTS[0].region, 101);
    if identity::find_department_by_credit_code(db, &CreditCode::parse(&first_code)?).await.is_ok() {
        return Ok(false);
    }
    let operator = Principal::operator("system:demo");
    let ctx = AuditContext::system("system:demo");
    let mut ids = std::collections::HashMap::new();
    for dept in identity::list_departments(db).await? {
        ids.insert(dept.name.clone(), dept.id);
    }
    for (i, dd) in DEPARTMENTS.iter().enumerate() {
        let parent_id = dd.parent.and_then(|p| ids.get(p).copied());
        let created = identity::create_department(
            db,
            regions,
            &operator,
            &ctx,
            NewDepartment {
                name: dd.name.into(),
                credit_code: demo_credit_code(dd.region, i as u32 + 101),
                region_code: dd.region.into(),
                level: dd.level,
                kind: dd.kind,
                parent_id,
            },
        )
        .await?;
        ids.insert(dd.name.to_string(), created.id);
    }
    for (username, password, dept, roles) in DEMO_ACCOUNTS {
        let Some(department_id) = ids.get(*dept).copied() else { continue };
        identity::create_user(
            db,
            security,
            &operator,
            &ctx,
            NewUser {
                username: (*username).into(),
                display_name: format!("{dept}{}", roles.first().map(|r| r.label_zh()).unwrap_or("")),
                department_id,
                password: Some((*password).into()),
                is_system: false,
                roles: roles.to_vec(),
            },
        )
        .await?;
    }
    seed_catalog(db, &operator, &ctx, &ids).await?;
    if let Some(ga) = ids.get("示范省公安厅").copied() {
        identity::create_user(
            db,
            security,
            &operator,
            &ctx,
            NewUser {
                username: "ga.exchange".into(),
                display_name: "示范省公安厅前置机".into(),
                department_id: ga,
                password: None,
                is_system: true,
                roles: vec![Role::SystemAccount],
            },
        )
        .await?;
    }
    seed_sharing(db, calendar).await?;
    Ok(true)
}

/// Sharing requests in every state, some submitted in the past so that due dates, overdue answers and
/// escalations show: a subscription, pending (one overdue since 2026-10-16: submitted 2026-09-28, across
/// 国庆 and 中秋), approved with narrowing, refused, withdrawn, in 协商, in 协调 (by the province and by a
/// city), in 领导小组, a grant decided by coordination, and a revoked grant.
async fn seed_sharing(db: &Db, calendar: &WorkCalendar) -> anyhow::Result<()> {
    use shutong_sharing::{self as sharing, AccessMethod::*, Approval, NewRequest, Purpose, RowCondition, RowFilter};
    let s = sharing::Sharing {
        db: db.clone(),
        calendar: std::sync::Arc::new(calendar.clone()),
        clock: shutong_store::Clock::system(),
        deadlines: sharing::Deadlines::default(),
    };
    let user = |name: &'static str| super::demo_user(db, name);
    let code = |name: &'static str| super::demo_code(db, name);
    let req = |resource: shutong_catalog::ResourceCode, items: &[&str], purpose: Purpose, basis: &str| NewRequest {
        resource_code: resource.to_string(),
        items: items.iter().map(|i| i.to_string()).collect(),
        purpose: Some(purpose),
        basis: basis.into(),
        period_to: Some(s.today() + chrono::Days::new(365)),
        access_methods: vec![OnlineQuery],
        expected_volume: Some("每日约 500 次查询".into()),
        ..Default::default()
    };
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();

    // 无条件共享: a subscription, and one whose grant the provider later revoked.
    let (dcga, dcga_ctx) = user("dc.ga.editor").await?;
    let mut sub =
        req(code("法人单位基本信息").await?, &[], Purpose::BusinessCollaboration, "《东川市公安局职能配置》: 治安管理中核验单位身份");
    sub.access_methods = vec![OnlineQuery, Subscription];
    sharing::subscribe(&s, &dcga, &dcga_ctx, sub).await?;
    let revoked =
        sharing::subscribe(&s, &dcga, &dcga_ctx, req(code("企业经营异常名录").await?, &[], Purpose::WorkReference, "治安重点单位排查"))
            .await?;
    let (sj, sj_ctx) = user("sj.editor").await?;
    if let Some(g) = revoked.grant {
        sharing::revoke_grant(&s, &sj, &sj_ctx, sharing::GrantId(g.id), "使用部门调用量异常，经核查超出申请用途，撤销授权").await?;
    }

    // An application submitted on 2026-09-28 and never answered: due 2026-10-16, overdue since.
    s.clock.set_date(date(2026, 9, 28));
    let (xl, xl_ctx) = user("xl.admin").await?;
    let mut late = req(
        code("婚姻登记信息").await?,
        &["男方公民身份号码", "女方公民身份号码", "登记类型"],
        Purpose::DataVerification,
        "《西岭市公共租赁住房管理办法》第十二条: 核验申请家庭婚姻状况",
    );
    late.period_to = Some(date(2027, 9, 27));
    sharing::create_request(&s, &xl, &xl_ctx, late).await?;

    // Escalations that started in October 2026.
    s.clock.set_date(date(2026, 11, 13));
    let (dcrs, dcrs_ctx) = user("dc.rs.editor").await?;
    let (wj, wj_ctx) = user("wj.reviewer").await?;
    let (sq, sq_ctx) = user("sq.reviewer").await?;
    let (zr, zr_ctx) = user("zr.reviewer").await?;
    let (ga, ga_ctx) = user("ga.reviewer").await?;
    let (dc, dc_ctx) = user("dc.admin").await?;
    let mut birth = req(
        code("出生医学证明信息").await?,
        &["出生医学证明编号", "新生儿姓名", "母亲公民身份号码"],
        Purpose::AdministrativeBasis,
        "《社会保险法》第二十五条: 新生儿参加城乡居民医疗保险",
    );
    birth.period_to = Some(date(2027, 11, 12));
    let birth = sharing::RequestId(sharing::create_request(&s, &dcrs, &dcrs_ctx, birth).await?.request.id);
    sharing::reject(&s, &wj, &wj_ctx, birth, "出生医学证明信息涉及新生儿个人隐私，现阶段仅向公安机关提供").await?;
    sharing::escalate(&s, &dcrs, &dcrs_ctx, birth, "新生儿参保需核验出生证明，请求协商提供编号与姓名两项").await?;
    sharing::reject(&s, &wj, &wj_ctx, birth, "经研究，维持原答复").await?;
    sharing::escalate(&s, &dcrs, &dcrs_ctx, birth, "协商未果，提请省大数据管理局协调").await?;

    let mut land = req(
        code("不动产登记信息").await?,
        &["不动产单元号", "权利人证件号码", "坐落"],
        Purpose::AdministrativeBasis,
        "《西岭市城镇住房保障条例》: 核查保障对象住房情况",
    );
    land.period_to = Some(date(2027, 11, 12));
    let land = sharing::RequestId(sharing::create_request(&s, &xl, &xl_ctx, land).await?.request.id);
    sharing::reject(&s, &zr, &zr_ctx, land, "权利人信息属于有条件共享，申请用途与共享条件不符").await?;
    sharing::escalate(&s, &xl, &xl_ctx, land, "住房保障资格审核确需使用，请求协商").await?;
    sharing::escalate(&s, &xl, &xl_ctx, land, "协商未果").await?;
    sharing::reject(&s, &sq, &sq_ctx, land, "协调意见: 建议先通过不动产登记查询窗口办理").await?;
    sharing::escalate(&s, &xl, &xl_ctx, land, "涉及省级部门，提请领导小组协调解决（第十六条）").await?;

    let mut drivers = req(
        code("机动车驾驶人信息").await?,
        &["公民身份号码", "准驾车型", "累积记分"],
        Purpose::BusinessCollaboration,
        "《道路运输条例》: 营运驾驶员资格核查",
    );
    drivers.period_to = Some(date(2027, 11, 12));
    let drivers = sharing::RequestId(sharing::create_request(&s, &dc, &dc_ctx, drivers).await?.request.id);
    sharing::reject(&s, &ga, &ga_ctx, drivers, "累积记分属于执法信息，不予提供").await?;
    sharing::escalate(&s, &dc, &dc_ctx, drivers, "营运驾驶员资格核查需要，请求协商").await?;
    sharing::escalate(&s, &dc, &dc_ctx, drivers, "协商未果，提请协调").await?;
    sharing::approve(
        &s,
        &sq,
        &sq_ctx,
        drivers,
        Approval {
            items: Some(vec!["公民身份号码".into(), "准驾车型".into()]),
            note: Some("协调意见: 提供身份号码与准驾车型，累积记分不予提供".into()),
            ..Default::default()
        },
    )
    .await?;

    // A city-level dispute is coordinated by that city's authority (本级主管部门).
    let mut subsidy = req(
        code("东川市职业技能培训补贴信息").await?,
        &["公民身份号码", "培训项目"],
        Purpose::DataVerification,
        "打击骗取培训补贴专项行动",
    );
    subsidy.period_to = Some(date(2027, 11, 12));
    let subsidy = sharing::RequestId(sharing::create_request(&s, &dcga, &dcga_ctx, subsidy).await?.request.id);
    sharing::reject(&s, &dcrs, &dcrs_ctx, subsidy, "补贴发放信息仅用于人社部门内部审核").await?;
    sharing::escalate(&s, &dcga, &dcga_ctx, subsidy, "专项行动需要，请求协商").await?;
    sharing::escalate(&s, &dcga, &dcga_ctx, subsidy, "协商未果，提请东川市大数据管理局协调").await?;

    // Today: pending, approved with narrowing, refused, withdrawn, negotiating.
    s.clock.set_now_ms(shutong_store::now_ms());
    sharing::create_request(
        &s,
        &dcrs,
        &dcrs_ctx,
        req(
            code("人口基本信息").await?,
            &["公民身份号码", "姓名", "户籍地址"],
            Purpose::AdministrativeBasis,
            "《社会保险法》: 核验参保人户籍",
        ),
    )
    .await?;
    let (rs, rs_ctx) = user("rs.admin").await?;
    let ins = sharing::create_request(
        &s,
        &dc,
        &dc_ctx,
        req(code("社会保险参保信息").await?, &["公民身份号码", "险种", "参保状态"], Purpose::WorkReference, "东川市人才引进政策效果评估"),
    )
    .await?
    .request
    .id;
    sharing::approve(
        &s,
        &rs,
        &rs_ctx,
        sharing::RequestId(ins),
        Approval {
            items: Some(vec!["公民身份号码".into(), "参保状态".into()]),
            row_filter: Some(RowFilter {
                conditions: vec![RowCondition {
                    item: "险种".into(),
                    op: shutong_sharing::FilterOp::Eq,
                    values: vec!["企业职工基本养老保险".into()],
                }],
            }),
            daily_quota: Some(5000),
            note: Some("仅提供养老保险参保状态".into()),
            ..Default::default()
        },
    )
    .await?;
    let jobs = sharing::create_request(
        &s,
        &dcga,
        &dcga_ctx,
        req(code("就业登记信息").await?, &["公民身份号码", "就业状态"], Purpose::WorkReference, "流动人口就业情况摸排"),
    )
    .await?
    .request
    .id;
    sharing::reject(&s, &rs, &rs_ctx, sharing::RequestId(jobs), "申请用途不属于就业登记信息的共享条件范围").await?;
    let dibao = sharing::create_request(
        &s,
        &xl,
        &xl_ctx,
        req(code("最低生活保障对象信息").await?, &["公民身份号码", "保障类别"], Purpose::WorkReference, "西岭市社会救助统计"),
    )
    .await?
    .request
    .id;
    sharing::withdraw(&s, &xl, &xl_ctx, sharing::RequestId(dibao), Some("改为使用统计汇总数据")).await?;
    sharing::create_request(
        &s,
        &dc,
        &dc_ctx,
        req(
            code("在押人员信息").await?,
            &["公民身份号码", "羁押状态"],
            Purpose::AdministrativeBasis,
            "社会救助资格审核须排除在押人员（《社会救助暂行办法》）",
        ),
    )
    .await?;
    Ok(())
}

async fn seed_catalog(
    db: &Db,
    operator: &Principal,
    ctx: &AuditContext,
    ids: &std::collections::HashMap<String, identity::DepartmentId>,
) -> anyhow::Result<()> {
    use shutong_catalog::{NewResource, ReviewDecision};
    for r in CATALOG {
        let Some(provider) = ids.get(r.provider).copied() else { continue };
        let view = shutong_catalog::create_resource(
            db,
            operator,
            ctx,
            NewResource { classification_code: r.class.into(), provider: Some(provider), document: demo_document(r), project: None },
        )
        .await?;
        if r.state == Draft {
            continue;
        }
        shutong_catalog::submit(db, operator, ctx, &view.code).await?;
        match r.state {
            Published => {
                shutong_catalog::review(db, &shutong_store::Clock::system(), operator, ctx, &view.code, ReviewDecision::Approve).await?;
            }
            Returned => {
                shutong_catalog::review(
                    db,
                    &shutong_store::Clock::system(),
                    operator,
                    ctx,
                    &view.code,
                    ReviewDecision::Return {
                        reason: "发放金额属于个人敏感信息，请将其共享类型改为有条件共享并写明共享条件".into()
                    },
                )
                .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Pooled demo datasets (共享交换): a synthetic population bound to 人口基本信息 (示范省公安厅) and legal
/// entities bound to 法人单位基本信息 (示范省市场监督管理局), loaded as their providers' batches, with valid
/// identifiers. Seeded once.
pub async fn seed_exchange(ex: &shutong_exchange::Exchange, population_rows: u64) -> anyhow::Result<()> {
    use shutong_exchange::{self as exchange, BatchRequest, BindingKind, DataFormat, IngestMode, Input, NewBinding};
    let db = &ex.db;
    let code = |name: &'static str| super::demo_code(db, name);
    let user = |name: &'static str| super::demo_user(db, name);
    let population = code("人口基本信息").await?;
    if exchange::get_binding(ex, &population).await?.is_some() {
        return Ok(());
    }
    let entities = code("法人单位基本信息").await?;
    for (resource, editor, people) in [(&population, "ga.editor", true), (&entities, "sj.editor", false)] {
        let (p, ctx) = user(editor).await?;
        exchange::bind(ex, &p, &ctx, resource, NewBinding { kind: Some(BindingKind::Dataset), ..Default::default() }).await?;
        let mut csv = Vec::new();
        if people {
            exchange::synth::write_population_csv(&mut csv, population_rows, 2026)?;
        } else {
            exchange::synth::write_entities_csv(&mut csv, (population_rows / 4).max(100), 2026)?;
        }
        let req = BatchRequest {
            resource_code: resource.clone(),
            mode: IngestMode::Full,
            format: DataFormat::Csv,
            batch_id: Some("demo-initial-load".into()),
            delimiter: None,
            encoding: None,
            all_or_nothing: true,
            part: None,
        };
        exchange::ingest(ex, &p, &ctx, req, Input::Reader(Box::new(std::io::Cursor::new(csv)))).await?;
    }
    // For the demo exchange node (README, "Exchange node"): 省公安厅 subscribed to 法人单位基本信息 for its node to
    // keep a local copy (流动人口居住登记信息, which the node publishes, is bound by the README's first step).
    let (editor, editor_ctx) = user("ga.editor").await?;
    let request = shutong_sharing::NewRequest {
        resource_code: entities.to_string(),
        items: Vec::new(),
        purpose: Some(shutong_sharing::Purpose::BusinessCollaboration),
        basis: "《示范省流动人口服务管理条例》: 核验流动人口就业单位".into(),
        period_to: Some(ex.sharing.today() + chrono::Days::new(365)),
        access_methods: vec![shutong_sharing::AccessMethod::Subscription],
        expected_volume: Some("前置机每日同步".into()),
        ..Default::default()
    };
    shutong_sharing::subscribe(&ex.sharing, &editor, &editor_ctx, request).await?;
    // Its node as it reported once, before the demo started: registered, and silent since.
    let (node, node_ctx) = user("ga.exchange").await?;
    let now = ex.sharing.clock.now_ms();
    let flow = |name: &str, direction, resource: String| exchange::nodes::FlowReport {
        name: name.into(),
        direction,
        resource_code: resource,
        state: exchange::nodes::FlowState::Running,
        lag_rows: 0,
        lag_seconds: 0,
        rows_total: 0,
        rejects: 0,
        last_transfer_at_ms: None,
        error: None,
    };
    let beat = exchange::nodes::Heartbeat {
        name: "ga-qzj-01".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at_ms: now,
        flows: vec![
            flow("liudong", exchange::nodes::FlowDirection::Publication, code("流动人口居住登记信息").await?.to_string()),
            flow("faren", exchange::nodes::FlowDirection::Subscription, entities.to_string()),
        ],
        outbox_batches: 0,
        outbox_bytes: 0,
        outbox_limit_bytes: 10 << 30,
        last_error: None,
    };
    exchange::nodes::heartbeat(ex, &node, &node_ctx, &beat).await?;
    Ok(())
}
