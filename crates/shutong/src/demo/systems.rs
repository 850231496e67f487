//! The demo's information systems and projects: systems in every state of the inventory and the zombie
//! review, a self-inspection report, and projects at each stage (filed, approved, under construction,
//! accepted and waiting for O&M funding, in operation) with their gates, through the same services the API
//! uses. Idempotent: it runs once per database.

use shutong_identity::{self as identity};
use shutong_systems::{self as systems, SystemDocument, SystemFilter};

/// The demo department whose inventory shows every state.
pub const INVENTORY_DEPARTMENT: &str = "东川市人力资源和社会保障局";

fn doc(name: &str, function: &str, patch: serde_json::Value) -> anyhow::Result<SystemDocument> {
    let mut d = serde_json::json!({
        "name": name, "function": function, "usage_scope": "cross_department", "usage_frequency": "daily",
        "approving_department": "东川市发展和改革委员会", "approval_date": "2019-06-18",
        "build_cost": "860000.00", "om_cost": "120000.00", "funding_source": "budget",
        "ip_addresses": ["10.51.3.21"], "host_instances": ["rs-app-01"], "network": "gov_outer", "status": "in_use",
        "om_status": "ongoing", "shares_across_departments": false, "connected": false
    });
    for (k, v) in patch.as_object().into_iter().flatten() {
        d[k] = v.clone();
    }
    Ok(serde_json::from_value(d)?)
}

pub async fn seed_systems(ex: &shutong_exchange::Exchange) -> anyhow::Result<()> {
    let db = &ex.db;
    let user = |name: &'static str| super::demo_user(db, name);
    let department = |name: &'static str| async move {
        identity::list_departments(db)
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .map(|d| d.id)
            .ok_or_else(|| anyhow::anyhow!("demo department {name}"))
    };
    let code = |name: &'static str| async move {
        shutong_catalog::code_by_name(db, name).await?.map(|c| c.to_string()).ok_or_else(|| anyhow::anyhow!("demo resource {name}"))
    };
    let rs = department(INVENTORY_DEPARTMENT).await?;
    let (keeper, keeper_ctx) = user("dc.rs.editor").await?;
    let existing = systems::list_systems(ex, &keeper, &SystemFilter { department: Some(rs), limit: 1, ..SystemFilter::default() }).await?;
    if !existing.items.is_empty() {
        return Ok(());
    }
    let (authority, authority_ctx) = user("sq.reviewer").await?;
    let (approver, approver_ctx) = user("fgw.reviewer").await?;
    let (finance, finance_ctx) = user("czt.reviewer").await?;
    let today = ex.sharing.today();
    let subsidy = code("东川市职业技能培训补贴信息").await?;
    // The subsidy records are published on the platform as files (挂接): a fact that the systems producing
    // them are connected.
    let subsidy_code = shutong_catalog::ResourceCode::parse(&subsidy).map_err(anyhow::Error::msg)?;
    if shutong_exchange::get_binding(ex, &subsidy_code).await?.is_none() {
        let binding = shutong_exchange::NewBinding { kind: Some(shutong_exchange::BindingKind::Files), key_item: None, service_url: None };
        shutong_exchange::bind(ex, &keeper, &keeper_ctx, &subsidy_code, binding).await?;
    }
    let add = |d: SystemDocument| {
        let (keeper, keeper_ctx) = (&keeper, &keeper_ctx);
        async move { anyhow::Ok(systems::create_system(ex, keeper, keeper_ctx, rs, d).await?.id) }
    };

    // In use and linked to the catalog; a second system produces the same resource (功能可被替代).
    let insurance = add(doc(
        "社会保险经办管理系统",
        "社会保险登记、缴费核定、待遇审核与发放",
        serde_json::json!({"produces": [subsidy], "shares_across_departments": true, "connected": true,
            "access_url": "https://si.dongchuan.example.gov.cn/", "last_update_date": today.to_string()}),
    )?)
    .await?;
    add(doc(
        "职业培训补贴审核系统",
        "职业技能培训补贴申领审核",
        serde_json::json!({"produces": [subsidy], "usage_frequency": "monthly", "last_update_date": today.to_string()}),
    )?)
    .await?;
    // Shares data with other departments but is not connected: on the 接入清单, and it blocks O&M funding.
    let employment = add(doc(
        "就业服务信息系统",
        "就业登记、失业登记与职业介绍",
        serde_json::json!({"shares_across_departments": true, "access_url": "https://jy.dongchuan.example.gov.cn/",
            "last_update_date": today.to_string()}),
    )?)
    .await?;
    // Registered under a 处室: flagged for merger, with an integration planned.
    let payroll = add(doc(
        "人事科工资管理系统",
        "机关工作人员工资核算",
        serde_json::json!({"usage_scope": "department", "usage_frequency": "monthly", "network": "gov_inner",
            "last_update_date": today.to_string()}),
    )?)
    .await?;
    systems::plan_cleanup(
        ex,
        &keeper,
        &keeper_ctx,
        payroll,
        systems::CleanupPlan {
            action: systems::CleanupAction::Integrate,
            due_on: today + chrono::Days::new(90),
            into: Some(insurance),
            note: Some("并入局统一业务平台".into()),
        },
    )
    .await?;
    // O&M stopped: suspected, confirmed by the department, decided a zombie, its shutdown under way.
    let arbitration = add(doc(
        "劳动仲裁案件管理系统（旧版）",
        "劳动人事争议仲裁立案与结案",
        serde_json::json!({"om_status": "stopped", "last_update_date": "2021-03-01", "om_cost": "0"}),
    )?)
    .await?;
    systems::respond_zombie(ex, &keeper, &keeper_ctx, arbitration, systems::ZombieResponse::Confirm, None).await?;
    systems::decide_zombie(ex, &authority, &authority_ctx, arbitration, systems::ZombieDecision::Zombie, None).await?;
    systems::plan_cleanup(
        ex,
        &keeper,
        &keeper_ctx,
        arbitration,
        systems::CleanupPlan {
            action: systems::CleanupAction::ShutDown,
            due_on: today + chrono::Days::new(30),
            into: None,
            note: Some("案件数据迁入新仲裁平台后关停".into()),
        },
    )
    .await?;
    systems::record_cleanup(ex, &keeper, &keeper_ctx, arbitration, systems::CleanupProgress::InProgress, None).await?;
    // Little used: suspected, disputed by the department, awaiting the authority.
    let titles = add(doc(
        "职称评审申报系统",
        "专业技术职称评审申报",
        serde_json::json!({"usage_scope": "department", "usage_frequency": "yearly", "last_update_date": today.to_string()}),
    )?)
    .await?;
    systems::respond_zombie(
        ex,
        &keeper,
        &keeper_ctx,
        titles,
        systems::ZombieResponse::Dispute,
        Some("职称评审每年集中开展一次，系统在评审期内使用频繁"),
    )
    .await?;
    // Retired: shut down and done.
    let old = add(doc(
        "农民工工资支付监控系统",
        "农民工工资支付预警",
        serde_json::json!({"usage_scope": "unit", "usage_frequency": "rarely", "unit": "劳动监察科", "om_status": "stopped",
            "last_update_date": "2020-05-10"}),
    )?)
    .await?;
    systems::respond_zombie(ex, &keeper, &keeper_ctx, old, systems::ZombieResponse::Confirm, None).await?;
    systems::decide_zombie(ex, &authority, &authority_ctx, old, systems::ZombieDecision::Zombie, None).await?;
    systems::plan_cleanup(
        ex,
        &keeper,
        &keeper_ctx,
        old,
        systems::CleanupPlan { action: systems::CleanupAction::ShutDown, due_on: today, into: None, note: None },
    )
    .await?;
    systems::record_cleanup(ex, &keeper, &keeper_ctx, old, systems::CleanupProgress::Done, Some("已于本月关停并归档数据")).await?;

    // Projects at each stage.
    let project = |name: &str, systems: Vec<systems::SystemId>| systems::ProjectDocument {
        name: name.into(),
        construction_unit: INVENTORY_DEPARTMENT.into(),
        total_investment: systems::Money::from_fen(380_000_000),
        om_budget: systems::Money::from_fen(36_000_000),
        funding_channel: systems::FundingSource::Budget,
        content: "建设内容详见立项申请书".into(),
        systems,
        protection_filing: Some("32010050001-00023".into()),
        classified_filing: None,
    };
    let file = |d: systems::ProjectDocument, application: &'static str| {
        let (keeper, keeper_ctx) = (&keeper, &keeper_ctx);
        async move { anyhow::Ok(systems::file_project(ex, keeper, keeper_ctx, rs, d, today, application).await?) }
    };
    let step = |stage: systems::ProjectStage, document: &str, override_reason: Option<&str>| systems::StageEntry {
        stage,
        entered_on: today,
        document: document.into(),
        override_reason: override_reason.map(str::to_string),
    };
    // 1. Filed, awaiting approval: its project catalog is not compiled (the approval gate is closed).
    file(project("东川市智慧人社一期工程", vec![employment]), "东人社〔2026〕31号 立项申请").await?;
    // 2. Approved through an audited override, now under construction.
    let p2 = file(project("就业服务平台升级项目", vec![employment]), "东人社〔2026〕12号 立项申请").await?;
    systems::advance_project(
        ex,
        &approver,
        &approver_ctx,
        p2.id,
        step(systems::ProjectStage::Approved, "东发改审批〔2026〕45号", Some("稳就业专项，目录与建设同步编制")),
    )
    .await?;
    systems::advance_project(ex, &keeper, &keeper_ctx, p2.id, step(systems::ProjectStage::Construction, "合同 DCRS-2026-007", None))
        .await?;
    // 3. In operation: the system connected, every gate passed by override or fact, O&M funded.
    let p3 = file(project("社会保险经办系统运维项目", vec![insurance]), "东人社〔2025〕77号 立项申请").await?;
    for (who, ctx, stage, document, reason) in [
        (&approver, &approver_ctx, systems::ProjectStage::Approved, "东发改审批〔2025〕88号", Some("存量系统运维项目，沿用原系统目录")),
        (&keeper, &keeper_ctx, systems::ProjectStage::Construction, "运维合同 DCRS-2025-031", None),
        (&approver, &approver_ctx, systems::ProjectStage::Accepted, "东发改验收〔2026〕9号", Some("运维类项目，目录已随原系统并入")),
        (&finance, &finance_ctx, systems::ProjectStage::Operation, "东财预〔2026〕102号", None),
    ] {
        let entry = step(stage, document, reason);
        if systems::advance_project(ex, who, ctx, p3.id, entry.clone()).await.is_err() {
            // The O&M gate reads the platform's facts; if the system's data is not on the platform, the
            // finance department passes it with a recorded reason.
            let entry = systems::StageEntry {
                override_reason: Some("运维经费按合同先行拨付，接入整改限期完成".into()), ..entry
            };
            systems::advance_project(ex, who, ctx, p3.id, entry).await?;
        }
    }

    // 4. Approved by fact: its project catalog compiled before approval (R-CAT-8); awaiting construction.
    let compile = |project: i64, name: &'static str| {
        let (keeper, keeper_ctx) = (&keeper, &keeper_ctx);
        async move {
            let document = serde_json::from_value(serde_json::json!({
                "name": name, "summary": format!("{name}：项目建成后产生的业务信息"), "format": "database",
                "items": [{"name": "业务编号", "data_type": "C", "length": 32, "required": true, "sharing_type": "unconditional"}],
                "sharing_type": "unconditional", "permitted_usage": "业务协同", "sharing_methods": ["online_query"], "update_cycle": "monthly"
            }))?;
            let new = shutong_catalog::NewResource {
                classification_code: "202".into(),
                provider: None,
                document,
                project: Some(shutong_catalog::ProjectId(project)),
            };
            shutong_catalog::create_resource(db, keeper, keeper_ctx, new).await?;
            anyhow::Ok(())
        }
    };
    let p4 = file(project("社会保障卡应用扩展项目", vec![insurance]), "东人社〔2026〕40号 立项申请").await?;
    compile(p4.catalog_project_id, "社会保障卡用卡环境信息").await?;
    systems::advance_project(ex, &approver, &approver_ctx, p4.id, step(systems::ProjectStage::Approved, "东发改审批〔2026〕52号", None))
        .await?;
    // 5. Accepted by fact (its catalog merged into the platform's), in the finance queue: its system shares
    // data but is not connected, so the O&M gate is closed.
    let p5 = file(project("就业服务信息系统运维项目", vec![employment]), "东人社〔2026〕18号 立项申请").await?;
    compile(p5.catalog_project_id, "就业服务运维工单信息").await?;
    systems::advance_project(ex, &approver, &approver_ctx, p5.id, step(systems::ProjectStage::Approved, "东发改审批〔2026〕21号", None))
        .await?;
    systems::advance_project(ex, &keeper, &keeper_ctx, p5.id, step(systems::ProjectStage::Construction, "运维合同 DCRS-2026-015", None))
        .await?;
    shutong_catalog::accept_project(db, &authority, &authority_ctx, shutong_catalog::ProjectId(p5.catalog_project_id)).await?;
    systems::advance_project(ex, &approver, &approver_ctx, p5.id, step(systems::ProjectStage::Accepted, "东发改验收〔2026〕14号", None))
        .await?;

    // The self-inspection report, submitted.
    let report = systems::save_report(
        ex,
        &keeper,
        &keeper_ctx,
        rs,
        systems::ReportContent {
            year: chrono::Datelike::year(&today),
            overview: "按照政务信息系统整合共享工作要求，我局对在用、停用的信息系统逐一登记，核对了系统与信息资源、系统账户的关联。".into(),
            problems: "部分系统以处室名义建设运行；个别系统运维已停止但未下线；就业服务信息系统尚未接入共享平台。".into(),
            measures: "人事科工资管理系统并入局统一业务平台；劳动仲裁旧系统数据迁移后关停；就业服务信息系统年内接入共享平台。".into(),
            needs: vec![systems::DeclaredNeed {
                resource: "企业登记注册信息".into(),
                provider: "东川市市场监督管理局".into(),
                purpose: "社会保险单位参保登记核验".into(),
            }],
        },
    )
    .await?;
    systems::submit_report(ex, &keeper, &keeper_ctx, rs, report.version).await?;
    Ok(())
}
