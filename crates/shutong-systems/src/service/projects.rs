//! 全口径备案 (办法 第二十三条) and the funding gates (办法 第二十二条; 江苏方案 三(五)3): a project is filed with
//! its systems and its project catalog (R-CAT-8), moves through 立项申请 → 审批 → 建设 → 验收 → 运维, and the
//! entries into 审批, 验收 and 运维 are gated by facts; an override needs a reason and is audited.

use chrono::NaiveDate;
use shutong_store::now_ms;

use super::systems::load_system;
use super::zombies::Facts;
use super::*;

/// 项目备案表: what a department files for an informatisation project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectDocument {
    /// 项目名称.
    pub name: String,
    /// 建设单位.
    pub construction_unit: String,
    /// 总投资 (元).
    pub total_investment: Money,
    /// 年运维预算 (元).
    pub om_budget: Money,
    /// 资金渠道.
    pub funding_channel: FundingSource,
    /// 建设内容.
    pub content: String,
    /// 新建或改造的信息系统 (of the inventory).
    #[serde(default)]
    pub systems: Vec<SystemId>,
    /// 等级保护备案号.
    #[serde(default)]
    pub protection_filing: Option<String>,
    /// 分级保护备案号 (for classified systems).
    #[serde(default)]
    pub classified_filing: Option<String>,
}

impl ProjectDocument {
    fn normalised(mut self) -> Self {
        self.name = self.name.trim().into();
        self.construction_unit = self.construction_unit.trim().into();
        self.content = self.content.trim().into();
        for f in [&mut self.protection_filing, &mut self.classified_filing] {
            *f = f.take().map(|v| v.trim().to_string());
        }
        self.systems.sort();
        self.systems.dedup();
        self
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let mut check = |field: &str, v: &str, max: usize| {
            let bad = if v.is_empty() {
                Some("must not be empty".to_string())
            } else if v.chars().count() > max {
                Some(format!("must be at most {max} characters"))
            } else if v.chars().any(|c| c.is_control() && c != '\n') {
                Some("must not contain control characters".into())
            } else {
                None
            };
            if let Some(message) = bad {
                out.push(FieldProblem { field: field.into(), message });
            }
        };
        check("name", &self.name, 200);
        check("construction_unit", &self.construction_unit, 200);
        check("content", &self.content, 4000);
        if let Some(f) = &self.protection_filing {
            check("protection_filing", f, 64);
        }
        if let Some(f) = &self.classified_filing {
            check("classified_filing", f, 64);
        }
        if self.systems.len() > 64 {
            out.push(FieldProblem { field: "systems".into(), message: "at most 64 systems".into() });
        }
        out
    }
}

/// One stage reached: its date and document (文件名称及文号), and the override that let it in, if one did.
#[derive(Clone, Debug, Serialize)]
pub struct StageRecord {
    pub stage: ProjectStage,
    pub entered_on: NaiveDate,
    pub document: String,
    pub override_reason: Option<String>,
    pub at_ms: i64,
    pub by: String,
}

/// A gate as the facts make it now: open or closed, with its reasons and evidence.
#[derive(Clone, Debug, Serialize)]
pub struct GateState {
    pub gate: Gate,
    pub open: bool,
    pub reasons: Vec<String>,
}

/// A filed project as it stands, with its gates computed from facts.
#[derive(Clone, Debug, Serialize)]
pub struct FiledProject {
    pub id: FiledProjectId,
    pub department_id: DepartmentId,
    pub department_name: String,
    /// The project catalog (R-CAT-8) that entries are compiled into: `catalog_projects.id`.
    pub catalog_project_id: i64,
    pub stage: ProjectStage,
    pub document: ProjectDocument,
    pub stages: Vec<StageRecord>,
    pub gates: Vec<GateState>,
    /// The next stage and whether its gate (if any) lets it in.
    pub next_stage: Option<ProjectStage>,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// Which projects a list shows: the principal's queue, or all it may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectQueue {
    /// Every project the principal may read.
    All,
    /// 立项审批 queue (审批部门): projects filed, awaiting approval.
    Approval,
    /// 验收 queue (审批部门): projects under construction, awaiting acceptance.
    Acceptance,
    /// 运维经费 queue (财政部门): accepted projects awaiting O&M funding.
    Funding,
}

impl ProjectQueue {
    pub fn parse(s: &str) -> Option<ProjectQueue> {
        Some(match s {
            "all" => ProjectQueue::All,
            "approval" => ProjectQueue::Approval,
            "acceptance" => ProjectQueue::Acceptance,
            "funding" => ProjectQueue::Funding,
            _ => return None,
        })
    }
    pub const ALL: &'static [&'static str] = &["all", "approval", "acceptance", "funding"];
    fn stage(self) -> Option<ProjectStage> {
        match self {
            ProjectQueue::All => None,
            ProjectQueue::Approval => Some(ProjectStage::Filed),
            ProjectQueue::Acceptance => Some(ProjectStage::Construction),
            ProjectQueue::Funding => Some(ProjectStage::Accepted),
        }
    }
}

/// Computes one gate of a project from the facts.
async fn gate_state(ex: &Exchange, facts: &Facts, gate: Gate, catalog_project: i64, systems: &[SystemId]) -> SystemsResult<GateState> {
    let mut reasons = Vec::new();
    let open = match gate {
        Gate::Approval => {
            let codes: Vec<String> = sqlx::query("SELECT code FROM catalog_resources WHERE project_id = $1 ORDER BY code")
                .bind(catalog_project)
                .fetch_all(ex.db.pool())
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if codes.is_empty() {
                reasons.push("项目目录尚未编制：未编制信息资源目录的项目不予审批（办法第二十二条）".into());
                false
            } else {
                reasons.push(format!("项目目录已编制 {} 条：{}", codes.len(), codes.join("、")));
                true
            }
        }
        Gate::Acceptance => {
            let row = sqlx::query("SELECT status, accepted_at FROM catalog_projects WHERE id = $1")
                .bind(catalog_project)
                .fetch_one(ex.db.pool())
                .await?;
            let status: String = row.try_get("status")?;
            if status == "accepted" {
                let at: Option<i64> = row.try_get("accepted_at")?;
                reasons.push(format!(
                    "项目目录已于 {} 并入平台目录",
                    at.map(|a| shutong_store::china_date(a).to_string()).unwrap_or_default()
                ));
                true
            } else {
                reasons.push("项目目录尚未并入平台目录：目录未并入的项目不予验收（办法第二十二条）".into());
                false
            }
        }
        Gate::OmFunding => {
            let mut conn = ex.db.pool().acquire().await?;
            let mut open = true;
            if systems.is_empty() {
                reasons.push("项目未登记新建或改造的信息系统".into());
            }
            for id in systems {
                let v = load_system(&mut conn, *id).await?;
                let name = &v.document.name;
                if v.zombie.decision == Some(ZombieDecision::Zombie) {
                    open = false;
                    reasons.push(format!("系统“{name}”已被认定为僵尸系统，不予安排运维经费"));
                    continue;
                }
                if v.document.shares_across_departments {
                    let (connected, evidence) = facts.connection(&v.document);
                    if connected {
                        reasons.push(format!("系统“{name}”已接入共享平台：{}", evidence.join("；")));
                    } else {
                        open = false;
                        reasons.push(format!("系统“{name}”需跨部门共享数据但未接入共享平台：{}", evidence.join("；")));
                    }
                } else {
                    reasons.push(format!("系统“{name}”不涉及跨部门共享，无需接入"));
                }
            }
            open
        }
    };
    Ok(GateState { gate, open, reasons })
}

const PROJECT_COLUMNS: &str =
    "p.id, p.department_id, d.name AS department_name, p.catalog_project_id, p.stage, p.document, p.created_at, p.created_by";

async fn load_project(ex: &Exchange, facts: &Facts, id: FiledProjectId) -> SystemsResult<FiledProject> {
    let r = sqlx::query(&format!(
        "SELECT {PROJECT_COLUMNS} FROM filed_projects p JOIN departments d ON d.id = p.department_id WHERE p.id = $1"
    ))
    .bind(id.0)
    .fetch_optional(ex.db.pool())
    .await?
    .ok_or(SystemsError::NotFound { what: "project" })?;
    let raw: String = r.try_get("document")?;
    let document: ProjectDocument = serde_json::from_str(&raw).map_err(|_| unreadable("filed_projects", "document", &raw))?;
    let stage_raw: String = r.try_get("stage")?;
    let stage = ProjectStage::parse(&stage_raw).ok_or_else(|| unreadable("filed_projects", "stage", &stage_raw))?;
    let catalog_project_id: i64 = r.try_get("catalog_project_id")?;
    let mut stages = Vec::new();
    for s in sqlx::query(
        "SELECT stage, entered_on, document, override_reason, at, by_user FROM project_stages WHERE project_id = $1 ORDER BY at, stage",
    )
    .bind(id.0)
    .fetch_all(ex.db.pool())
    .await?
    {
        let st: String = s.try_get("stage")?;
        let on: String = s.try_get("entered_on")?;
        stages.push(StageRecord {
            stage: ProjectStage::parse(&st).ok_or_else(|| unreadable("project_stages", "stage", &st))?,
            entered_on: on.parse().map_err(|_| unreadable("project_stages", "entered_on", &on))?,
            document: s.try_get("document")?,
            override_reason: s.try_get("override_reason")?,
            at_ms: s.try_get("at")?,
            by: s.try_get("by_user")?,
        });
    }
    stages.sort_by_key(|s| ProjectStage::ALL.iter().position(|x| *x == s.stage));
    let mut gates = Vec::new();
    for g in Gate::ALL {
        gates.push(gate_state(ex, facts, *g, catalog_project_id, &document.systems).await?);
    }
    Ok(FiledProject {
        id,
        department_id: DepartmentId(r.try_get("department_id")?),
        department_name: r.try_get("department_name")?,
        catalog_project_id,
        stage,
        document,
        stages,
        gates,
        next_stage: stage.next(),
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// One project, to its department and the readers of all.
pub async fn get_project(ex: &Exchange, actor: &Principal, id: FiledProjectId) -> SystemsResult<FiledProject> {
    let facts = Facts::load(ex).await?;
    let p = load_project(ex, &facts, id).await?;
    if !standing(ex, actor).await?.may_read(actor, p.department_id) {
        return Err(SystemsError::NotFound { what: "project" });
    }
    Ok(p)
}

/// The projects of a queue (or all) that the principal may read, by ID, keyset-paged.
pub async fn list_projects(
    ex: &Exchange,
    actor: &Principal,
    queue: ProjectQueue,
    department: Option<DepartmentId>,
    after: Option<FiledProjectId>,
    limit: i64,
) -> SystemsResult<Page<FiledProject>> {
    let s = standing(ex, actor).await?;
    let department = match (s.reads_all, department, actor.department_id) {
        (true, d, _) => d,
        (false, Some(d), Some(own)) if d == own => Some(d),
        (false, None, Some(own)) => Some(own),
        _ => return Ok(Page { items: Vec::new(), next_cursor: None }),
    };
    let rows = sqlx::query(
        "SELECT id FROM filed_projects WHERE id > $1 AND ($2 = 0 OR department_id = $2) AND ($3 = '' OR stage = $3) ORDER BY id LIMIT $4",
    )
    .bind(after.map_or(0, |a| a.0))
    .bind(department.map_or(0, |d| d.0))
    .bind(queue.stage().map_or("", |s| s.as_str()))
    .bind(limit + 1)
    .fetch_all(ex.db.pool())
    .await?;
    let facts = Facts::load(ex).await?;
    let mut items = Vec::new();
    for r in &rows {
        items.push(load_project(ex, &facts, FiledProjectId(r.try_get(0)?)).await?);
    }
    Ok(page(items, limit, |p| p.id.0))
}

async fn check_systems(ex: &Exchange, department: DepartmentId, systems: &[SystemId]) -> SystemsResult<()> {
    let mut conn = ex.db.pool().acquire().await?;
    let mut problems = Vec::new();
    for (i, id) in systems.iter().enumerate() {
        match load_system(&mut conn, *id).await {
            Ok(v) if v.department_id == department => {}
            Ok(_) => problems
                .push(FieldProblem { field: format!("systems[{i}]"), message: format!("system {id} belongs to another department") }),
            Err(SystemsError::NotFound { .. }) => {
                problems.push(FieldProblem { field: format!("systems[{i}]"), message: format!("system {id} is not in the inventory") })
            }
            Err(e) => return Err(e),
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(SystemsError::Invalid(problems)) }
}

fn check_stage_document(field: &str, document: &str) -> SystemsResult<String> {
    let d = document.trim();
    if d.is_empty() || d.chars().count() > 200 || d.chars().any(char::is_control) {
        return Err(invalid(field, "the stage's document (文件名称及文号) must be 1 to 200 characters"));
    }
    Ok(d.to_string())
}

/// 全口径备案: a department files a project with its 立项申请 document. Its project catalog (R-CAT-8) is
/// opened in the same transaction, for the department's catalog editors to compile entries into.
pub async fn file_project(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    doc: ProjectDocument,
    filed_on: NaiveDate,
    application: &str,
) -> SystemsResult<FiledProject> {
    if !standing(ex, actor).await?.may_keep(actor, department) {
        return Err(SystemsError::Forbidden("a department's projects are filed by its administrators and catalog editors".into()));
    }
    department_name(ex, department).await.map_err(|_| invalid("department_id", format!("department {department} does not exist")))?;
    let doc = doc.normalised();
    let problems = doc.problems();
    if !problems.is_empty() {
        return Err(SystemsError::Invalid(problems));
    }
    let application = check_stage_document("application", application)?;
    if filed_on > ex.sharing.today() {
        return Err(invalid("filed_on", format!("{filed_on} is in the future")));
    }
    check_systems(ex, department, &doc.systems).await?;
    let raw = serde_json::to_string(&doc).map_err(|e| SystemsError::State(e.to_string()))?;
    let now = now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let catalog_project: i64 = sqlx::query(
        "INSERT INTO catalog_projects (name, department_id, status, created_at, created_by) VALUES ($1, $2, 'compiled', $3, $4) RETURNING id",
    )
    .bind(&doc.name)
    .bind(department.0)
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    let id: i64 = sqlx::query(
        "INSERT INTO filed_projects (department_id, catalog_project_id, name, stage, document, created_at, created_by, updated_at) \
         VALUES ($1, $2, $3, 'filed', $4, $5, $6, $5) RETURNING id",
    )
    .bind(department.0)
    .bind(catalog_project)
    .bind(&doc.name)
    .bind(&raw)
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    for s in &doc.systems {
        sqlx::query("INSERT INTO project_systems (project_id, system_id) VALUES ($1, $2)")
            .bind(id)
            .bind(s.0)
            .execute(&mut **change.tx())
            .await?;
    }
    sqlx::query("INSERT INTO project_stages (project_id, stage, entered_on, document, at, by_user) VALUES ($1, 'filed', $2, $3, $4, $5)")
        .bind(id)
        .bind(filed_on.to_string())
        .bind(&application)
        .bind(now)
        .bind(&ctx.actor)
        .execute(&mut **change.tx())
        .await?;
    audit(
        &mut change,
        Action::ProjectFile,
        "filed_project",
        id,
        department,
        json!({"name": doc.name, "catalog_project": catalog_project, "systems": doc.systems.iter().map(|s| s.0).collect::<Vec<_>>()}),
    )
    .await?;
    change.commit().await?;
    get_project(ex, actor, FiledProjectId(id)).await
}

/// Who moves a project into `stage`: 审批 and 验收 the development and reform department (or the authority),
/// 建设 the department itself, 运维 the finance department (or the authority).
fn may_enter(s: &Standing, actor: &Principal, department: DepartmentId, stage: ProjectStage) -> bool {
    match stage {
        ProjectStage::Filed => false,
        ProjectStage::Approved | ProjectStage::Accepted => s.approver || s.authority,
        ProjectStage::Construction => s.may_keep(actor, department) || s.approver,
        ProjectStage::Operation => s.finance || s.authority,
    }
}

/// The entry into a project's next stage: its date, its document (文件名称及文号), and the reason for passing
/// a closed gate, if it is passed so.
#[derive(Clone, Debug)]
pub struct StageEntry {
    pub stage: ProjectStage,
    pub entered_on: NaiveDate,
    pub document: String,
    pub override_reason: Option<String>,
}

/// Moves a project to its next stage, with that stage's date and document. A closed gate refuses, naming
/// its reasons, unless `override_reason` is given: then the stage is entered, the override is kept with it
/// and audited (`project.gate_override`).
pub async fn advance_project(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: FiledProjectId,
    entry: StageEntry,
) -> SystemsResult<FiledProject> {
    let StageEntry { stage: to, entered_on, document, override_reason } = entry;
    let (document, override_reason) = (document.as_str(), override_reason.as_deref());
    let p = get_project(ex, actor, id).await?;
    let s = standing(ex, actor).await?;
    if p.next_stage != Some(to) {
        return Err(SystemsError::State(format!(
            "the project is at {}; it can move to {} only",
            p.stage.label_zh(),
            p.next_stage.map_or("no further stage", |n| n.label_zh())
        )));
    }
    if !may_enter(&s, actor, p.department_id, to) {
        return Err(SystemsError::Forbidden(format!("{} is not decided by this account", to.label_zh())));
    }
    let document = check_stage_document("document", document)?;
    let override_reason = check_reason("override_reason", override_reason)?;
    let previous = p.stages.iter().map(|s| s.entered_on).max();
    if entered_on > ex.sharing.today() {
        return Err(invalid("entered_on", format!("{entered_on} is in the future")));
    }
    if previous.is_some_and(|d| entered_on < d) {
        return Err(invalid("entered_on", format!("{entered_on} is before the previous stage")));
    }
    let gate = to.gate().and_then(|g| p.gates.iter().find(|x| x.gate == g));
    let closed = gate.filter(|g| !g.open);
    if let Some(g) = closed
        && override_reason.is_none()
    {
        return Err(SystemsError::GateClosed { gate: g.gate, reasons: g.reasons.clone() });
    }
    let kept_override = closed.and(override_reason.clone());
    let now = now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let moved = sqlx::query("UPDATE filed_projects SET stage = $1, updated_at = $2 WHERE id = $3 AND stage = $4")
        .bind(to.as_str())
        .bind(now)
        .bind(id.0)
        .bind(p.stage.as_str())
        .execute(&mut **change.tx())
        .await?
        .rows_affected();
    if moved != 1 {
        return Err(SystemsError::State("the project moved meanwhile; reload it".into()));
    }
    sqlx::query(
        "INSERT INTO project_stages (project_id, stage, entered_on, document, override_reason, at, by_user) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.0)
    .bind(to.as_str())
    .bind(entered_on.to_string())
    .bind(&document)
    .bind(&kept_override)
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    if let (Some(g), Some(reason)) = (closed, &kept_override) {
        audit(
            &mut change,
            Action::ProjectGateOverride,
            "filed_project",
            id.0,
            p.department_id,
            json!({"gate": g.gate.as_str(), "reason": reason, "closed_because": g.reasons}),
        )
        .await?;
    }
    audit(
        &mut change,
        Action::ProjectAdvance,
        "filed_project",
        id.0,
        p.department_id,
        json!({"from": p.stage.as_str(), "to": to.as_str(), "entered_on": entered_on.to_string(), "document": document,
               "gate": gate.map(|g| json!({"gate": g.gate.as_str(), "open": g.open, "reasons": g.reasons}))}),
    )
    .await?;
    change.commit().await?;
    get_project(ex, actor, id).await
}
