//! 一个报告、三个清单 (铜川方案 二(一)): a department's self-inspection report (自查报告) and its three lists —
//! systems to clean up or integrate (整合清理清单), systems to connect to the platform (接入清单), resources it
//! needs from other departments (需求清单) — generated from its inventory, its catalog and its requests when a
//! version is saved; the department edits and submits, the sharing authority accepts or returns; every
//! version is kept. The report prints as PDF (typst, `shutong-documents`) and the lists as XLSX.

use serde::Deserialize;
use shutong_store::now_ms;

use super::systems::every_system;
use super::zombies::Facts;
use super::*;

/// The report's template (typst), reading the version as `json("/data.json")`.
const REPORT_TEMPLATE: &str = include_str!("../report.typ");

/// What the department writes: its account of the self-inspection, and needs it declares beyond its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportContent {
    /// 年度.
    pub year: i32,
    /// 自查工作开展情况.
    pub overview: String,
    /// 存在的问题.
    pub problems: String,
    /// 整改措施.
    pub measures: String,
    /// 需求清单 entries the department declares (beyond its sharing requests).
    #[serde(default)]
    pub needs: Vec<DeclaredNeed>,
}

/// A need the department declares: what data, from whom, for what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredNeed {
    /// 所需信息资源.
    pub resource: String,
    /// 提供部门.
    pub provider: String,
    /// 用途.
    pub purpose: String,
}

/// One line of 整合清理清单.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CleanupLine {
    pub system_id: SystemId,
    pub name: String,
    /// Why: the criteria met, the decision, the merger flag.
    pub reasons: Vec<String>,
    /// 清理方式, 完成时限 and 进展, if planned.
    pub action: Option<String>,
    pub due_on: Option<chrono::NaiveDate>,
    pub progress: Option<String>,
}

/// One line of 接入清单.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectLine {
    pub system_id: SystemId,
    pub name: String,
    /// Why it is not connected, from the facts.
    pub reasons: Vec<String>,
}

/// One line of 需求清单.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NeedLine {
    pub resource_code: Option<String>,
    pub resource: String,
    pub provider: String,
    pub purpose: String,
    /// 来源: a sharing request (with its status) or the department's declaration.
    pub source: String,
}

/// The three lists and the figures of 基本情况, as generated when the version was saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportLists {
    pub systems: i64,
    pub in_use: i64,
    pub build_cost: Money,
    pub om_cost: Money,
    pub resources_provided: i64,
    pub cleanup: Vec<CleanupLine>,
    pub connect: Vec<ConnectLine>,
    pub needs: Vec<NeedLine>,
}

/// One version of a department's report.
#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub department_id: DepartmentId,
    pub department_name: String,
    pub version: i64,
    pub status: ReportStatus,
    pub content: ReportContent,
    pub lists: ReportLists,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
}

fn check_content(c: &ReportContent) -> SystemsResult<()> {
    let mut problems = Vec::new();
    if !(2000..=2100).contains(&c.year) {
        problems.push(FieldProblem { field: "year".into(), message: "must be between 2000 and 2100".into() });
    }
    for (field, v) in [("overview", &c.overview), ("problems", &c.problems), ("measures", &c.measures)] {
        if v.trim().is_empty() {
            problems.push(FieldProblem { field: field.into(), message: "must not be empty".into() });
        } else if v.chars().count() > 20_000 {
            problems.push(FieldProblem { field: field.into(), message: "must be at most 20000 characters".into() });
        } else if v.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\r' && ch != '\t') {
            problems.push(FieldProblem { field: field.into(), message: "must not contain control characters".into() });
        }
    }
    if c.needs.len() > 200 {
        problems.push(FieldProblem { field: "needs".into(), message: "at most 200 declared needs".into() });
    }
    for (i, n) in c.needs.iter().enumerate().take(200) {
        for (field, v) in [("resource", &n.resource), ("provider", &n.provider), ("purpose", &n.purpose)] {
            if v.trim().is_empty() || v.chars().count() > 500 || v.chars().any(char::is_control) {
                problems.push(FieldProblem { field: format!("needs[{i}].{field}"), message: "must be 1 to 500 characters".into() });
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(SystemsError::Invalid(problems)) }
}

/// Generates the three lists and the figures from the department's facts now.
async fn generate_lists(ex: &Exchange, actor: &Principal, department: DepartmentId, content: &ReportContent) -> SystemsResult<ReportLists> {
    let facts = Facts::load(ex).await?;
    let mut lists = ReportLists {
        systems: 0,
        in_use: 0,
        build_cost: Money::default(),
        om_cost: Money::default(),
        resources_provided: 0,
        cleanup: Vec::new(),
        connect: Vec::new(),
        needs: Vec::new(),
    };
    let mut build = 0i64;
    let mut om = 0i64;
    for v in every_system(ex, actor, Some(department)).await? {
        lists.systems += 1;
        if v.document.status == SystemStatus::Retired {
            continue;
        }
        if v.document.status == SystemStatus::InUse {
            lists.in_use += 1;
        }
        build += v.document.build_cost.fen();
        om += v.document.om_cost.fen();
        let mut reasons: Vec<String> =
            facts.judge(v.id, &v.document).into_iter().filter(|c| c.met).map(|c| c.criterion.label_zh().to_string()).collect();
        if let Some(d) = v.zombie.decision {
            reasons.push(d.label_zh().to_string());
        }
        if let Some(f) = &v.merger_flag {
            reasons.push(f.clone());
        }
        if !reasons.is_empty() || v.cleanup.is_some() {
            lists.cleanup.push(CleanupLine {
                system_id: v.id,
                name: v.document.name.clone(),
                reasons,
                action: v.cleanup.as_ref().map(|c| c.action.label_zh().to_string()),
                due_on: v.cleanup.as_ref().map(|c| c.due_on),
                progress: v.cleanup.as_ref().map(|c| c.progress.label_zh().to_string()),
            });
        }
        if v.document.shares_across_departments {
            let (connected, reasons) = facts.connection(&v.document);
            if !connected {
                lists.connect.push(ConnectLine { system_id: v.id, name: v.document.name.clone(), reasons });
            }
        }
    }
    lists.build_cost = Money::from_fen(build);
    lists.om_cost = Money::from_fen(om);
    lists.resources_provided =
        sqlx::query("SELECT COUNT(*) FROM catalog_resources WHERE provider_department_id = $1 AND status <> 'withdrawn'")
            .bind(department.0)
            .fetch_one(ex.db.pool())
            .await?
            .try_get(0)?;
    for r in sqlx::query(
        "SELECT q.id, q.resource_code, q.resource_name, q.status, q.purpose, q.purpose_detail, d.name AS provider FROM sharing_requests q \
         JOIN departments d ON d.id = q.provider_department_id WHERE q.consumer_department_id = $1 ORDER BY q.id",
    )
    .bind(department.0)
    .fetch_all(ex.db.pool())
    .await?
    {
        let id: i64 = r.try_get("id")?;
        let status: String = r.try_get("status")?;
        let purpose: String = r.try_get("purpose")?;
        let detail: Option<String> = r.try_get("purpose_detail")?;
        let purpose = shutong_sharing::Purpose::parse(&purpose).map_or(purpose, |p| p.label_zh().to_string());
        let status = shutong_sharing::RequestStatus::parse(&status).map_or(status, |s| s.label_zh().to_string());
        lists.needs.push(NeedLine {
            resource_code: Some(r.try_get("resource_code")?),
            resource: r.try_get("resource_name")?,
            provider: r.try_get("provider")?,
            purpose: detail.map_or(purpose.clone(), |d| format!("{purpose}：{d}")),
            source: format!("共享申请 {id}（{status}）"),
        });
    }
    for n in &content.needs {
        lists.needs.push(NeedLine {
            resource_code: None,
            resource: n.resource.clone(),
            provider: n.provider.clone(),
            purpose: n.purpose.clone(),
            source: "部门申报".into(),
        });
    }
    Ok(lists)
}

const REPORT_COLUMNS: &str = "r.department_id, d.name AS department_name, r.version, r.status, r.content, r.lists, r.created_at, r.created_by, \
    r.submitted_at, r.reviewed_at, r.reviewed_by, r.review_note";

fn report_from_row(r: &shutong_store::AnyRow) -> SystemsResult<ReportView> {
    let content: String = r.try_get("content")?;
    let lists: String = r.try_get("lists")?;
    let status: String = r.try_get("status")?;
    Ok(ReportView {
        department_id: DepartmentId(r.try_get("department_id")?),
        department_name: r.try_get("department_name")?,
        version: r.try_get("version")?,
        status: ReportStatus::parse(&status).ok_or_else(|| unreadable("self_inspection_reports", "status", &status))?,
        content: serde_json::from_str(&content).map_err(|_| unreadable("self_inspection_reports", "content", &content))?,
        lists: serde_json::from_str(&lists).map_err(|_| unreadable("self_inspection_reports", "lists", &lists))?,
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        submitted_at_ms: r.try_get("submitted_at")?,
        reviewed_at_ms: r.try_get("reviewed_at")?,
        reviewed_by: r.try_get("reviewed_by")?,
        review_note: r.try_get("review_note")?,
    })
}

/// Every version of a department's report, newest first.
pub async fn list_reports(ex: &Exchange, actor: &Principal, department: DepartmentId) -> SystemsResult<Vec<ReportView>> {
    if !standing(ex, actor).await?.may_read(actor, department) {
        return Err(SystemsError::NotFound { what: "department" });
    }
    let rows = sqlx::query(&format!(
        "SELECT {REPORT_COLUMNS} FROM self_inspection_reports r JOIN departments d ON d.id = r.department_id \
         WHERE r.department_id = $1 ORDER BY r.version DESC"
    ))
    .bind(department.0)
    .fetch_all(ex.db.pool())
    .await?;
    rows.iter().map(report_from_row).collect()
}

/// One version of a department's report.
pub async fn get_report(ex: &Exchange, actor: &Principal, department: DepartmentId, version: i64) -> SystemsResult<ReportView> {
    if !standing(ex, actor).await?.may_read(actor, department) {
        return Err(SystemsError::NotFound { what: "report" });
    }
    let row = sqlx::query(&format!(
        "SELECT {REPORT_COLUMNS} FROM self_inspection_reports r JOIN departments d ON d.id = r.department_id \
         WHERE r.department_id = $1 AND r.version = $2"
    ))
    .bind(department.0)
    .bind(version)
    .fetch_optional(ex.db.pool())
    .await?
    .ok_or(SystemsError::NotFound { what: "report" })?;
    report_from_row(&row)
}

/// 编制自查报告: saves a new version (草稿) with the department's text and the three lists generated now.
pub async fn save_report(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    content: ReportContent,
) -> SystemsResult<ReportView> {
    if !standing(ex, actor).await?.may_keep(actor, department) {
        return Err(SystemsError::Forbidden("a department's self-inspection report is written by its administrators".into()));
    }
    department_name(ex, department).await?;
    check_content(&content)?;
    let lists = generate_lists(ex, actor, department, &content).await?;
    let raw_content = serde_json::to_string(&content).map_err(|e| SystemsError::State(e.to_string()))?;
    let raw_lists = serde_json::to_string(&lists).map_err(|e| SystemsError::State(e.to_string()))?;
    let mut change = Change::begin(&ex.db, ctx).await?;
    let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM self_inspection_reports WHERE department_id = $1")
        .bind(department.0)
        .fetch_one(&mut **change.tx())
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO self_inspection_reports (department_id, version, status, content, lists, created_at, created_by) VALUES ($1, $2, 'draft', $3, $4, $5, $6)",
    )
    .bind(department.0)
    .bind(version)
    .bind(&raw_content)
    .bind(&raw_lists)
    .bind(now_ms())
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    audit(
        &mut change,
        Action::ReportSave,
        "self_inspection_report",
        version,
        department,
        json!({"version": version, "year": content.year, "cleanup": lists.cleanup.len(), "connect": lists.connect.len(), "needs": lists.needs.len()}),
    )
    .await?;
    change.commit().await?;
    get_report(ex, actor, department, version).await
}

/// 报送: the department submits a draft version.
pub async fn submit_report(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    version: i64,
) -> SystemsResult<ReportView> {
    let r = get_report(ex, actor, department, version).await?;
    if !standing(ex, actor).await?.may_keep(actor, department) {
        return Err(SystemsError::Forbidden("a department's self-inspection report is submitted by its administrators".into()));
    }
    if r.status != ReportStatus::Draft {
        return Err(SystemsError::State(format!("version {version} is {} already; save a new version", r.status.label_zh())));
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query("UPDATE self_inspection_reports SET status = 'submitted', submitted_at = $1, submitted_by = $2 WHERE department_id = $3 AND version = $4")
        .bind(now_ms())
        .bind(&ctx.actor)
        .bind(department.0)
        .bind(version)
        .execute(&mut **change.tx())
        .await?;
    audit(&mut change, Action::ReportSubmit, "self_inspection_report", version, department, json!({"version": version})).await?;
    change.commit().await?;
    get_report(ex, actor, department, version).await
}

/// 审核: the sharing authority accepts a submitted version or returns it with a note.
pub async fn review_report(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    version: i64,
    accept: bool,
    note: Option<&str>,
) -> SystemsResult<ReportView> {
    if !standing(ex, actor).await?.authority {
        return Err(SystemsError::Forbidden("self-inspection reports are reviewed by the sharing authority".into()));
    }
    let r = get_report(ex, actor, department, version).await?;
    let note = check_reason("note", note)?;
    if !accept && note.is_none() {
        return Err(invalid("note", "a returned report needs a note saying what to change"));
    }
    if r.status != ReportStatus::Submitted {
        return Err(SystemsError::State(format!("version {version} is {}, not submitted", r.status.label_zh())));
    }
    let status = if accept { ReportStatus::Accepted } else { ReportStatus::Returned };
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query(
        "UPDATE self_inspection_reports SET status = $1, reviewed_at = $2, reviewed_by = $3, review_note = $4 WHERE department_id = $5 AND version = $6",
    )
    .bind(status.as_str())
    .bind(now_ms())
    .bind(&ctx.actor)
    .bind(&note)
    .bind(department.0)
    .bind(version)
    .execute(&mut **change.tx())
    .await?;
    audit(
        &mut change,
        Action::ReportReview,
        "self_inspection_report",
        version,
        department,
        json!({"version": version, "decision": status.as_str(), "note": note}),
    )
    .await?;
    change.commit().await?;
    get_report(ex, actor, department, version).await
}

/// The data the report's template reads: the version with its labels in Chinese.
pub fn report_data(r: &ReportView) -> serde_json::Value {
    json!({
        "title": format!("{}{}年度政务信息系统整合共享自查报告", r.department_name, r.content.year),
        "department": r.department_name,
        "version": r.version,
        "status": r.status.label_zh(),
        "content": r.content,
        "lists": r.lists,
        "build_cost": r.lists.build_cost.to_string(),
        "om_cost": r.lists.om_cost.to_string(),
    })
}

/// The report as a PDF (typst). CPU-bound and blocking: call it off the async runtime.
pub fn report_pdf(fonts: &shutong_documents::Fonts, r: &ReportView) -> SystemsResult<Vec<u8>> {
    shutong_documents::render_pdf(fonts, REPORT_TEMPLATE, &report_data(r)).map_err(SystemsError::Document)
}

/// The three lists as one workbook: sheets 整合清理清单, 接入清单 and 需求清单.
pub fn report_lists_xlsx(r: &ReportView) -> SystemsResult<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| SystemsError::State(e.to_string());
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let mut sheet_of = |name: &str, header: &[&str], rows: Vec<Vec<String>>| -> SystemsResult<()> {
        let sheet = book.add_worksheet().set_name(name).map_err(err)?;
        for (c, h) in header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
            sheet.set_column_width(c as u16, 24).map_err(err)?;
        }
        for (i, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                sheet.write_string((i + 1) as u32, c as u16, v).map_err(err)?;
            }
        }
        Ok(())
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    sheet_of(
        LIST_SHEETS[0],
        &["系统编号", "系统名称", "认定情形与原因", "清理方式", "完成时限", "进展"],
        r.lists
            .cleanup
            .iter()
            .map(|l| {
                vec![
                    l.system_id.to_string(),
                    l.name.clone(),
                    l.reasons.join("；"),
                    opt(&l.action),
                    l.due_on.map(|d| d.to_string()).unwrap_or_default(),
                    opt(&l.progress),
                ]
            })
            .collect(),
    )?;
    sheet_of(
        LIST_SHEETS[1],
        &["系统编号", "系统名称", "未接入的事实"],
        r.lists.connect.iter().map(|l| vec![l.system_id.to_string(), l.name.clone(), l.reasons.join("；")]).collect(),
    )?;
    sheet_of(
        LIST_SHEETS[2],
        &["资源代码", "所需信息资源", "提供部门", "用途", "来源"],
        r.lists
            .needs
            .iter()
            .map(|l| vec![opt(&l.resource_code), l.resource.clone(), l.provider.clone(), l.purpose.clone(), l.source.clone()])
            .collect(),
    )?;
    book.save_to_buffer().map_err(err)
}

/// The sheets of the lists' workbook, in order.
pub const LIST_SHEETS: [&str; 3] = ["整合清理清单", "接入清单", "需求清单"];
