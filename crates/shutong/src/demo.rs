//! `shutong serve --demo`: a fictional province (示范省) with three cities, their departments and demo
//! accounts, so that a newcomer can log in and look around. The departments are invented; their region
//! codes are borrowed from Jiangsu's GB/T 2260 codes (320000 and its cities) so that every check passes.
//! Seeding is idempotent: it runs once per database.

use shutong_audit::AuditContext;
use shutong_identity::{self as identity, DepartmentKind, DepartmentLevel, NewDepartment, NewUser, Principal, Role, SecuritySettings};
use shutong_reference::{CreditCode, OrgCode, RegionTable, WorkCalendar};
use shutong_store::Db;

pub const AUTHORITY_NAME: &str = "示范省大数据管理局";
pub const ADMIN_PASSWORD: &str = "Shutong-Demo-2026";
pub const DEMO_PASSWORD: &str = "Demo-Pass-2026";

/// The documented demo accounts: username, password, department, roles.
pub const DEMO_ACCOUNTS: &[(&str, &str, &str, &[Role])] = &[
    ("auditor", DEMO_PASSWORD, "示范省审计厅", &[Role::Auditor]),
    ("sq.reviewer", DEMO_PASSWORD, AUTHORITY_NAME, &[Role::Reviewer]),
    ("ga.admin", DEMO_PASSWORD, "示范省公安厅", &[Role::DepartmentAdmin]),
    ("ga.editor", DEMO_PASSWORD, "示范省公安厅", &[Role::CatalogEditor]),
    ("ga.reviewer", DEMO_PASSWORD, "示范省公安厅", &[Role::Reviewer]),
    ("rs.admin", DEMO_PASSWORD, "示范省人力资源和社会保障厅", &[Role::DepartmentAdmin, Role::CatalogEditor]),
    ("sj.editor", DEMO_PASSWORD, "示范省市场监督管理局", &[Role::CatalogEditor, Role::Reviewer]),
    ("dc.admin", DEMO_PASSWORD, "东川市大数据管理局", &[Role::DepartmentAdmin]),
    ("dc.ga.editor", DEMO_PASSWORD, "东川市公安局", &[Role::CatalogEditor, Role::Reviewer]),
    ("xl.admin", DEMO_PASSWORD, "西岭市大数据管理局", &[Role::DepartmentAdmin]),
    ("dc.rs.editor", DEMO_PASSWORD, "东川市人力资源和社会保障局", &[Role::CatalogEditor, Role::Reviewer]),
    ("mz.reviewer", DEMO_PASSWORD, "示范省民政厅", &[Role::Reviewer]),
    ("wj.reviewer", DEMO_PASSWORD, "示范省卫生健康委员会", &[Role::Reviewer]),
    ("zr.reviewer", DEMO_PASSWORD, "示范省自然资源厅", &[Role::Reviewer]),
];

/// A valid 统一社会信用代码 for a demo department: 机构编制/机关, the region, a made-up organisation code.
pub fn demo_credit_code(region: &str, serial: u32) -> String {
    let body = format!("MB{serial:06}");
    let org = format!("{body}{}", OrgCode::check_character(body.as_bytes()).unwrap_or('0'));
    let first17 = format!("11{region}{org}");
    format!("{first17}{}", CreditCode::check_character(first17.as_bytes()).unwrap_or('0'))
}

struct DemoDepartment {
    name: &'static str,
    region: &'static str,
    level: DepartmentLevel,
    kind: DepartmentKind,
    parent: Option<&'static str>,
}

const fn d(
    name: &'static str,
    region: &'static str,
    level: DepartmentLevel,
    kind: DepartmentKind,
    parent: Option<&'static str>,
) -> DemoDepartment {
    DemoDepartment { name, region, level, kind, parent }
}

use DepartmentKind::{AuditOffice, Government, SharingAuthority};
use DepartmentLevel::{City, Province};

const DEPARTMENTS: &[DemoDepartment] = &[
    d("示范省公安厅", "320000", Province, Government, None),
    d("示范省人力资源和社会保障厅", "320000", Province, Government, None),
    d("示范省市场监督管理局", "320000", Province, Government, None),
    d("示范省卫生健康委员会", "320000", Province, Government, None),
    d("示范省民政厅", "320000", Province, Government, None),
    d("示范省自然资源厅", "320000", Province, Government, None),
    d("示范省审计厅", "320000", Province, AuditOffice, None),
    d("东川市大数据管理局", "320100", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("东川市公安局", "320100", City, Government, Some("示范省公安厅")),
    d("东川市人力资源和社会保障局", "320100", City, Government, Some("示范省人力资源和社会保障厅")),
    d("东川市市场监督管理局", "320100", City, Government, Some("示范省市场监督管理局")),
    d("西岭市大数据管理局", "320200", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("西岭市公安局", "320200", City, Government, Some("示范省公安厅")),
    d("西岭市民政局", "320200", City, Government, Some("示范省民政厅")),
    d("南湖市大数据管理局", "320300", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("南湖市卫生健康委员会", "320300", City, Government, Some("示范省卫生健康委员会")),
];

/// Seeds the demo once. Returns whether anything was created.
pub async fn seed(db: &Db, regions: &RegionTable, security: &SecuritySettings, calendar: &WorkCalendar) -> anyhow::Result<bool> {
    let first_code = demo_credit_code(DEPARTMENTS[0].region, 101);
    if identity::find_department_by_credit_code(db, &first_code).await.is_ok() {
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
    let user = |name: &'static str| async move {
        let id = identity::user_id_by_username(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
        let p = identity::load_principal(db, id).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
        let ctx = AuditContext { actor_user_id: Some(id.0), actor: name.to_string(), ..Default::default() };
        anyhow::Ok((p, ctx))
    };
    let code = |name: &'static str| async move {
        shutong_catalog::code_by_name(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo resource {name}"))
    };
    let req = |resource: String, items: &[&str], purpose: Purpose, basis: &str| NewRequest {
        resource_code: resource,
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

/// An information item: name, data type code, length (0: none), sharing (`u`/`c`/`n`), base item, mask kind.
type DemoItem = (&'static str, &'static str, u32, char, bool, Option<&'static str>);

/// One demo resource: provider, classification, name, summary, items (name, type, length, sharing, base
/// item, mask), update cycle, open to the public, and the state to leave it in.
struct DemoResource {
    provider: &'static str,
    class: &'static str,
    name: &'static str,
    summary: &'static str,
    items: &'static [DemoItem],
    cycle: &'static str,
    open: bool,
    state: DemoState,
}

#[derive(Clone, Copy, PartialEq)]
enum DemoState {
    Published,
    Submitted,
    Returned,
    Draft,
}

use DemoState::{Draft, Published, Returned, Submitted};

/// `u` 无条件, `c` 有条件, `n` 不予共享.
const CATALOG: &[DemoResource] = &[
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "人口基本信息",
        summary: "全省户籍人口基本信息，含公民身份号码、姓名、性别、民族、出生日期、户籍地址，是人口基础信息库的核心资源。",
        items: &[
            ("公民身份号码", "C", 18, 'u', true, Some("id_number")),
            ("姓名", "C", 50, 'u', true, Some("name")),
            ("性别", "C", 1, 'u', true, None),
            ("民族", "C", 20, 'u', true, None),
            ("出生日期", "D", 8, 'u', true, None),
            ("户籍地址", "C", 200, 'c', false, Some("address")),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "流动人口居住登记信息",
        summary: "流动人口居住登记、居住证办理信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("姓名", "C", 50, 'c', false, Some("name")),
            ("居住地址", "C", 200, 'c', false, Some("address")),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "户籍迁移信息",
        summary: "户口迁入、迁出、注销登记信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("迁移类型", "C", 10, 'c', false, None),
            ("迁移日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Submitted,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "211",
        name: "机动车驾驶人信息",
        summary: "机动车驾驶证核发、换证、记分信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("准驾车型", "C", 10, 'c', false, None),
            ("累积记分", "I", 3, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "101",
        name: "婚姻登记信息",
        summary: "结婚、离婚登记信息，用于公积金、不动产等业务核验婚姻状况。",
        items: &[
            ("男方公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("女方公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("登记类型", "C", 10, 'c', false, None),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "202",
        name: "最低生活保障对象信息",
        summary: "城乡低保对象认定、救助金发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("保障类别", "C", 20, 'c', false, None),
            ("月保障金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "209",
        name: "社会组织登记信息",
        summary: "社会团体、民办非企业单位、基金会登记信息。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("组织名称", "C", 200, 'u', false, None),
            ("登记状态", "C", 10, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "102",
        name: "法人单位基本信息",
        summary: "企业法人、个体工商户、农民专业合作社的登记基本信息，是法人单位基础信息库的核心资源。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', true, None),
            ("单位名称", "C", 200, 'u', true, None),
            ("法定代表人", "C", 50, 'u', true, None),
            ("住所", "C", 200, 'u', true, None),
            ("成立日期", "D", 8, 'u', true, None),
            ("注册资本", "Y", 16, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "104",
        name: "企业经营异常名录",
        summary: "列入、移出经营异常名录的企业信息。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("列入原因", "C", 200, 'u', false, None),
            ("列入日期", "D", 8, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "203",
        name: "食品生产许可信息",
        summary: "食品生产许可证核发、变更、注销信息。",
        items: &[
            ("许可证编号", "C", 30, 'u', false, None),
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("食品类别", "C", 100, 'u', false, None),
            ("有效期至", "D", 8, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "205",
        name: "重要商品价格监测信息",
        summary: "粮油、肉禽蛋、蔬菜等重要民生商品价格监测数据。",
        items: &[("商品名称", "C", 50, 'u', false, None), ("监测价格", "Y", 12, 'u', false, None), ("监测日期", "D", 8, 'u', false, None)],
        cycle: "weekly",
        open: true,
        state: Draft,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "202",
        name: "社会保险参保信息",
        summary: "职工养老、医疗、失业、工伤保险参保登记与缴费信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("险种", "C", 20, 'c', false, None),
            ("参保状态", "C", 10, 'c', false, None),
            ("缴费基数", "Y", 12, 'n', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "202",
        name: "养老金领取信息",
        summary: "基本养老金领取资格认证与发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("领取月份", "C", 6, 'c', false, None),
            ("发放金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Returned,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "105",
        name: "职业资格证书信息",
        summary: "专业技术人员职业资格证书电子证照信息。",
        items: &[
            ("证书编号", "C", 30, 'u', true, None),
            ("持证人公民身份号码", "C", 18, 'u', true, Some("id_number")),
            ("资格名称", "C", 100, 'u', true, None),
            ("发证日期", "D", 8, 'u', true, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "213",
        name: "就业登记信息",
        summary: "城镇就业、失业登记信息，用于就业补贴审核。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("就业状态", "C", 10, 'c', false, None),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "出生医学证明信息",
        summary: "新生儿出生医学证明签发信息，用于户籍登记与社保参保。",
        items: &[
            ("出生医学证明编号", "C", 20, 'c', false, None),
            ("新生儿姓名", "C", 50, 'c', false, Some("name")),
            ("母亲公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("出生日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "医疗机构执业登记信息",
        summary: "医疗机构执业许可登记、校验信息。",
        items: &[
            ("医疗机构名称", "C", 200, 'u', false, None),
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("诊疗科目", "M", 0, 'u', false, None),
        ],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "死亡医学证明信息",
        summary: "居民死亡医学证明（推断）书信息，用于户籍注销、停发养老金。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("死亡日期", "D", 8, 'c', false, None),
            ("死亡原因", "C", 200, 'n', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "103",
        name: "不动产登记信息",
        summary: "土地、房屋等不动产权利登记信息。",
        items: &[
            ("不动产单元号", "C", 28, 'c', false, None),
            ("权利人证件号码", "C", 18, 'c', false, Some("id_number")),
            ("坐落", "C", 200, 'c', false, Some("address")),
            ("权利类型", "C", 20, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "103",
        name: "基础地理信息",
        summary: "1:10000 基础地理信息数据，含行政区划界线、道路、水系。",
        items: &[("要素编码", "C", 10, 'u', true, None), ("要素名称", "C", 100, 'u', true, None), ("几何数据", "G", 0, 'u', false, None)],
        cycle: "yearly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "210",
        name: "地质灾害隐患点信息",
        summary: "地质灾害隐患点位置、类型、威胁人数等信息。",
        items: &[
            ("隐患点编号", "C", 20, 'u', false, None),
            ("灾害类型", "C", 20, 'u', false, None),
            ("威胁人数", "I", 8, 'u', false, None),
        ],
        cycle: "quarterly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省大数据管理局",
        class: "106",
        name: "宏观经济主要指标",
        summary: "地区生产总值、固定资产投资、社会消费品零售总额等月度指标。",
        items: &[("指标名称", "C", 100, 'u', true, None), ("统计期", "C", 6, 'u', true, None), ("指标值", "B", 20, 'u', true, None)],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省大数据管理局",
        class: "213",
        name: "政务服务事项目录",
        summary: "全省政务服务事项清单，含事项名称、实施主体、办理时限。",
        items: &[("事项编码", "C", 30, 'u', false, None), ("事项名称", "C", 200, 'u', false, None), ("承诺时限", "I", 4, 'u', false, None)],
        cycle: "irregular",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "东川市公安局",
        class: "211",
        name: "东川市重点场所视频监控点位信息",
        summary: "重点场所视频监控点位分布信息。",
        items: &[("点位编号", "C", 20, 'n', false, None), ("点位坐标", "C", 50, 'n', false, None)],
        cycle: "irregular",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "东川市人力资源和社会保障局",
        class: "202",
        name: "东川市职业技能培训补贴信息",
        summary: "职业技能培训补贴申领与发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("培训项目", "C", 100, 'c', false, None),
            ("补贴金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "东川市市场监督管理局",
        class: "204",
        name: "东川市特种设备登记信息",
        summary: "电梯、锅炉、压力容器等特种设备使用登记信息。",
        items: &[
            ("设备注册代码", "C", 20, 'u', false, None),
            ("设备类别", "C", 20, 'u', false, None),
            ("使用单位统一社会信用代码", "C", 18, 'u', false, None),
        ],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "西岭市民政局",
        class: "209",
        name: "西岭市城乡社区信息",
        summary: "城乡社区（居委会、村委会）基本信息。",
        items: &[
            ("社区代码", "C", 12, 'u', false, None),
            ("社区名称", "C", 100, 'u', false, None),
            ("所属街道", "C", 100, 'u', false, None),
        ],
        cycle: "yearly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "西岭市公安局",
        class: "101",
        name: "西岭市居住证办理信息",
        summary: "居住证申领、签注信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("居住证号", "C", 20, 'c', false, None),
            ("签注日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Draft,
    },
    DemoResource {
        provider: "南湖市卫生健康委员会",
        class: "201",
        name: "南湖市预防接种信息",
        summary: "儿童预防接种记录，用于入托入学查验。",
        items: &[
            ("受种者公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("疫苗名称", "C", 50, 'c', false, None),
            ("接种日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "211",
        name: "在押人员信息",
        summary: "看守所在押人员信息。",
        items: &[("公民身份号码", "C", 18, 'n', false, Some("id_number")), ("羁押状态", "C", 10, 'n', false, None)],
        cycle: "daily",
        open: false,
        state: Published,
    },
];

fn demo_document(r: &DemoResource) -> shutong_catalog::ResourceDocument {
    use shutong_catalog::*;
    let sharing = |c: char| match c {
        'u' => SharingType::Unconditional,
        'n' => SharingType::NotShared,
        _ => SharingType::Conditional,
    };
    let items: Vec<InfoItem> = r
        .items
        .iter()
        .map(|(name, t, len, s, base, mask)| InfoItem {
            name: (*name).into(),
            data_type: DataType::parse(t).unwrap_or(DataType::Char),
            length: (*len > 0).then_some(*len),
            required: true,
            is_key: name.contains("公民身份号码") || name.contains("统一社会信用代码") || name.contains("编号") || name.contains("编码"),
            mask: mask.and_then(shutong_reference::MaskKind::parse),
            sharing_type: sharing(*s),
            sharing_condition: (*s == 'c').then(|| "仅向承担相关行政职能的部门提供".to_string()),
            standard: name.contains("公民身份号码").then(|| "GB 11643-1999".to_string()),
            is_base_item: *base,
        })
        .collect();
    let all = |t: SharingType| items.iter().all(|i| i.sharing_type == t);
    let sharing_type = if all(SharingType::Unconditional) {
        SharingType::Unconditional
    } else if all(SharingType::NotShared) {
        SharingType::NotShared
    } else {
        SharingType::Conditional
    };
    ResourceDocument {
        name: r.name.into(),
        summary: r.summary.into(),
        format: ResourceFormat::Database,
        sharing_condition: (sharing_type == SharingType::Conditional).then(|| "部分信息项仅向承担相关职能的部门提供".into()),
        permitted_usage: (sharing_type == SharingType::Conditional).then(|| "仅用于申请时载明的行政职能，不得向第三方提供".into()),
        legal_basis: (sharing_type == SharingType::NotShared).then(|| "《中华人民共和国保守国家秘密法》《公安机关执法细则》".into()),
        // 基础信息资源 (class 1xx) are also offered for bulk download; thematic and departmental ones are queried
        // and exchanged through nodes and system integration only.
        sharing_methods: if sharing_type == SharingType::NotShared {
            vec![]
        } else if r.class.starts_with('1') {
            vec![SharingMethod::OnlineQuery, SharingMethod::ExchangeNode, SharingMethod::BulkDownload, SharingMethod::SystemIntegration]
        } else {
            vec![SharingMethod::OnlineQuery, SharingMethod::ExchangeNode, SharingMethod::SystemIntegration]
        },
        open_to_public: r.open && sharing_type != SharingType::NotShared,
        open_condition: None,
        update_cycle: UpdateCycle::parse(r.cycle).unwrap_or(UpdateCycle::Irregular),
        related_codes: vec![],
        secrecy: Secrecy::NonClassified,
        network: Network::Outer,
        source_system: Some(format!("{}业务系统", r.provider)),
        contact: Some("数据管理处 025-8000 0000".into()),
        record_count: Some((r.name.len() as i64) * 137_000),
        storage_mb: None,
        tags: if r.class.starts_with('1') { vec!["基础".into()] } else { vec!["主题".into()] },
        sharing_type,
        items,
    }
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
    let code = |name: &'static str| async move {
        shutong_catalog::code_by_name(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo resource {name}"))
    };
    let user = |name: &'static str| async move {
        let id = identity::user_id_by_username(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
        let p = identity::load_principal(db, id).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
        let ctx = AuditContext { actor_user_id: Some(id.0), actor: name.to_string(), ..Default::default() };
        anyhow::Ok((p, ctx))
    };
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
        };
        exchange::ingest(ex, &p, &ctx, req, Input::Reader(Box::new(std::io::Cursor::new(csv)))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_catalog_obeys_the_rules() {
        for r in super::CATALOG {
            let doc = super::demo_document(r);
            let v = shutong_catalog::rules::check(&doc, r.class.starts_with('1'));
            assert!(v.is_empty(), "{}: {v:?}", r.name);
        }
    }

    #[test]
    fn demo_codes_are_valid() {
        for i in 1..100 {
            let c = super::demo_credit_code("320100", i);
            assert!(shutong_reference::CreditCode::parse(&c).is_ok(), "{c}");
        }
    }
}
