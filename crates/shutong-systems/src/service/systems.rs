//! 信息系统台账: register, edit (a new version each time), read, list, history.

use std::collections::BTreeMap;

use shutong_store::{AnyRow, Tx, now_ms};

use super::*;

/// The department's answer and the authority's decision on a zombie verdict, as they stand.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ZombieState {
    pub response: Option<ZombieResponse>,
    pub response_reason: Option<String>,
    pub decision: Option<ZombieDecision>,
    pub decision_reason: Option<String>,
}

/// 清理计划: how and by when a system is shut down, integrated or migrated, and how far it has come.
#[derive(Clone, Debug, Serialize)]
pub struct Cleanup {
    pub action: CleanupAction,
    pub due_on: chrono::NaiveDate,
    pub into_system_id: Option<SystemId>,
    pub progress: CleanupProgress,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// One system of the inventory as it stands.
#[derive(Clone, Debug, Serialize)]
pub struct SystemView {
    pub id: SystemId,
    pub department_id: DepartmentId,
    pub department_name: String,
    pub version: i64,
    pub document: SystemDocument,
    /// 以处室名义登记: why the system is to be merged into its department's, if it is.
    pub merger_flag: Option<String>,
    pub zombie: ZombieState,
    pub cleanup: Option<Cleanup>,
    pub created_at_ms: i64,
    pub created_by: String,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// A system in a list.
#[derive(Clone, Debug, Serialize)]
pub struct SystemSummary {
    pub id: SystemId,
    pub department_id: DepartmentId,
    pub department_name: String,
    pub name: String,
    pub status: SystemStatus,
    pub network: SystemNetwork,
    pub usage_scope: UsageScope,
    pub connected: bool,
    pub merger_flag: Option<String>,
    pub zombie_decision: Option<ZombieDecision>,
    pub version: i64,
    pub updated_at_ms: i64,
}

/// One version of a system's registration.
#[derive(Clone, Debug, Serialize)]
pub struct SystemVersion {
    pub version: i64,
    pub document: SystemDocument,
    pub changed_at_ms: i64,
    pub changed_by: String,
}

/// Which systems a list shows: by department, status, merger flag and a part of the name; keyset-paged.
#[derive(Clone, Debug, Default)]
pub struct SystemFilter {
    pub department: Option<DepartmentId>,
    pub status: Option<SystemStatus>,
    pub flagged: Option<bool>,
    pub q: Option<String>,
    pub after: Option<SystemId>,
    pub limit: i64,
}

const SYSTEM_COLUMNS: &str = "s.id, s.department_id, d.name AS department_name, s.version, s.document, s.merger_flag, \
    s.zombie_response, s.zombie_response_reason, s.zombie_decision, s.zombie_decision_reason, \
    s.created_at, s.created_by, s.updated_at, s.updated_by";

pub(crate) fn document_of(raw: &str) -> SystemsResult<SystemDocument> {
    serde_json::from_str(raw).map_err(|_| unreadable("info_systems", "document", raw))
}

fn parse_opt<T>(r: &AnyRow, column: &'static str, parse: fn(&str) -> Option<T>) -> SystemsResult<Option<T>> {
    match r.try_get::<Option<String>, _>(column)? {
        None => Ok(None),
        Some(v) => parse(&v).map(Some).ok_or_else(|| unreadable("info_systems", column, &v)),
    }
}

fn view_from_row(r: &AnyRow, cleanup: Option<Cleanup>) -> SystemsResult<SystemView> {
    Ok(SystemView {
        id: SystemId(r.try_get("id")?),
        department_id: DepartmentId(r.try_get("department_id")?),
        department_name: r.try_get("department_name")?,
        version: r.try_get("version")?,
        document: document_of(&r.try_get::<String, _>("document")?)?,
        merger_flag: r.try_get("merger_flag")?,
        zombie: ZombieState {
            response: parse_opt(r, "zombie_response", ZombieResponse::parse)?,
            response_reason: r.try_get("zombie_response_reason")?,
            decision: parse_opt(r, "zombie_decision", ZombieDecision::parse)?,
            decision_reason: r.try_get("zombie_decision_reason")?,
        },
        cleanup,
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at_ms: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

const CLEANUP_COLUMNS: &str = "system_id, action, due_on, into_system_id, progress, note, updated_at, updated_by";

fn cleanup_from_row(r: &AnyRow) -> SystemsResult<Cleanup> {
    let action: String = r.try_get("action")?;
    let due: String = r.try_get("due_on")?;
    let progress: String = r.try_get("progress")?;
    Ok(Cleanup {
        action: CleanupAction::parse(&action).ok_or_else(|| unreadable("system_cleanups", "action", &action))?,
        due_on: due.parse().map_err(|_| unreadable("system_cleanups", "due_on", &due))?,
        into_system_id: r.try_get::<Option<i64>, _>("into_system_id")?.map(SystemId),
        progress: CleanupProgress::parse(&progress).ok_or_else(|| unreadable("system_cleanups", "progress", &progress))?,
        note: r.try_get("note")?,
        updated_at_ms: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

async fn cleanup_of(conn: &mut shutong_store::AnyConnection, id: SystemId) -> SystemsResult<Option<Cleanup>> {
    sqlx::query(&format!("SELECT {CLEANUP_COLUMNS} FROM system_cleanups WHERE system_id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(cleanup_from_row)
        .transpose()
}

pub(crate) async fn load_system(conn: &mut shutong_store::AnyConnection, id: SystemId) -> SystemsResult<SystemView> {
    let row =
        sqlx::query(&format!("SELECT {SYSTEM_COLUMNS} FROM info_systems s JOIN departments d ON d.id = s.department_id WHERE s.id = $1"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(SystemsError::NotFound { what: "information system" })?;
    let cleanup = cleanup_of(conn, id).await?;
    view_from_row(&row, cleanup)
}

/// One system, to those who may read its department's inventory.
pub async fn get_system(ex: &Exchange, actor: &Principal, id: SystemId) -> SystemsResult<SystemView> {
    let mut conn = ex.db.pool().acquire().await?;
    let v = load_system(&mut conn, id).await?;
    if !standing(ex, actor).await?.may_read(actor, v.department_id) {
        return Err(SystemsError::NotFound { what: "information system" });
    }
    Ok(v)
}

/// The systems the principal may read, filtered, by ID, keyset-paged.
pub async fn list_systems(ex: &Exchange, actor: &Principal, f: &SystemFilter) -> SystemsResult<Page<SystemSummary>> {
    let page = list_views(ex, actor, f).await?;
    let items = page
        .items
        .into_iter()
        .map(|v| SystemSummary {
            id: v.id,
            department_id: v.department_id,
            department_name: v.department_name,
            name: v.document.name,
            status: v.document.status,
            network: v.document.network,
            usage_scope: v.document.usage_scope,
            connected: v.document.connected,
            merger_flag: v.merger_flag,
            zombie_decision: v.zombie.decision,
            version: v.version,
            updated_at_ms: v.updated_at_ms,
        })
        .collect();
    Ok(Page { items, next_cursor: page.next_cursor })
}

/// Every system the principal may read (of one department, or all), whole with its cleanup plan, in ID
/// order: each system read once and the plans in one query. For the verdict list, the asset register, the
/// export and the report's lists.
pub(crate) async fn every_system(ex: &Exchange, actor: &Principal, department: Option<DepartmentId>) -> SystemsResult<Vec<SystemView>> {
    let mut cleanups: BTreeMap<i64, Cleanup> = BTreeMap::new();
    for r in sqlx::query(&format!("SELECT {CLEANUP_COLUMNS} FROM system_cleanups")).fetch_all(ex.db.pool()).await? {
        cleanups.insert(r.try_get("system_id")?, cleanup_from_row(&r)?);
    }
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = list_views(ex, actor, &SystemFilter { department, after, limit: 1000, ..SystemFilter::default() }).await?;
        after = page.next_cursor.map(SystemId);
        out.extend(page.items.into_iter().map(|mut v| {
            v.cleanup = cleanups.remove(&v.id.0);
            v
        }));
        if after.is_none() {
            return Ok(out);
        }
    }
}

/// The systems of a list, whole but without their cleanup plans.
async fn list_views(ex: &Exchange, actor: &Principal, f: &SystemFilter) -> SystemsResult<Page<SystemView>> {
    let s = standing(ex, actor).await?;
    let department = match (s.reads_all, f.department, actor.department_id) {
        (true, d, _) => d,
        (false, Some(d), Some(own)) if d == own => Some(d),
        (false, None, Some(own)) => Some(own),
        _ => return Ok(Page { items: Vec::new(), next_cursor: None }),
    };
    let mut sql = format!("SELECT {SYSTEM_COLUMNS} FROM info_systems s JOIN departments d ON d.id = s.department_id WHERE s.id > $1");
    let mut n = 1;
    let mut arg = |sql: &mut String, clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if department.is_some() {
        arg(&mut sql, " AND s.department_id = ?");
    }
    if f.status.is_some() {
        arg(&mut sql, " AND s.status = ?");
    }
    match f.flagged {
        Some(true) => sql.push_str(" AND s.merger_flag IS NOT NULL"),
        Some(false) => sql.push_str(" AND s.merger_flag IS NULL"),
        None => {}
    }
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(|q| format!("%{}%", q.replace(['%', '_'], "")));
    if q.is_some() {
        arg(&mut sql, " AND s.name LIKE ?");
    }
    arg(&mut sql, " ORDER BY s.id LIMIT ?");
    let mut query = sqlx::query(&sql).bind(f.after.map_or(0, |a| a.0));
    if let Some(d) = department {
        query = query.bind(d.0);
    }
    if let Some(st) = f.status {
        query = query.bind(st.as_str());
    }
    if let Some(q) = &q {
        query = query.bind(q.clone());
    }
    let rows = query.bind(f.limit + 1).fetch_all(ex.db.pool()).await?;
    let items = rows.iter().map(|r| view_from_row(r, None)).collect::<SystemsResult<Vec<_>>>()?;
    Ok(page(items, f.limit, |s| s.id.0))
}

/// Every version of a system's registration, newest first.
pub async fn system_history(ex: &Exchange, actor: &Principal, id: SystemId) -> SystemsResult<Vec<SystemVersion>> {
    get_system(ex, actor, id).await?;
    let rows = sqlx::query(
        "SELECT version, document, changed_at, changed_by FROM info_system_versions WHERE system_id = $1 ORDER BY version DESC",
    )
    .bind(id.0)
    .fetch_all(ex.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SystemVersion {
                version: r.try_get("version")?,
                document: document_of(&r.try_get::<String, _>("document")?)?,
                changed_at_ms: r.try_get("changed_at")?,
                changed_by: r.try_get("changed_by")?,
            })
        })
        .collect()
}

/// The links of a document checked against the platform: resources it produces are the department's own
/// catalog entries, resources it consumes exist, its accounts are the department's system accounts, its nodes the department's registered nodes.
pub(crate) async fn link_problems(
    tx: &mut Tx,
    department: DepartmentId,
    doc: &SystemDocument,
    prefix: &str,
) -> SystemsResult<Vec<FieldProblem>> {
    let mut out = Vec::new();
    for (field, list, own) in [("produces", &doc.produces, true), ("consumes", &doc.consumes, false)] {
        for (i, code) in list.iter().enumerate() {
            let provider: Option<i64> = sqlx::query("SELECT provider_department_id FROM catalog_resources WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.get(0));
            let message = match provider {
                None => Some(format!("resource {code} is not in the catalog")),
                Some(p) if own && p != department.0 => Some(format!("resource {code} is provided by another department")),
                _ => None,
            };
            if let Some(message) = message {
                out.push(FieldProblem { field: format!("{prefix}{field}[{i}]"), message });
            }
        }
    }
    for (i, name) in doc.accounts.iter().enumerate() {
        let row =
            sqlx::query("SELECT department_id, is_system FROM users WHERE username = $1").bind(name).fetch_optional(&mut **tx).await?;
        let message = match row {
            None => Some(format!("account '{name}' does not exist")),
            Some(r) if r.try_get::<i64, _>("is_system")? == 0 => Some(format!("account '{name}' is a person's, not a system account")),
            Some(r) if r.try_get::<Option<i64>, _>("department_id")? != Some(department.0) => {
                Some(format!("account '{name}' belongs to another department"))
            }
            _ => None,
        };
        if let Some(message) = message {
            out.push(FieldProblem { field: format!("{prefix}accounts[{i}]"), message });
        }
    }
    for (i, name) in doc.nodes.iter().enumerate() {
        let owner: Option<i64> = sqlx::query("SELECT department_id FROM exchange_nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.get(0));
        let message = match owner {
            None => Some(format!("exchange node '{name}' is not registered with the platform")),
            Some(d) if d != department.0 => Some(format!("exchange node '{name}' belongs to another department")),
            _ => None,
        };
        if let Some(message) = message {
            out.push(FieldProblem { field: format!("{prefix}nodes[{i}]"), message });
        }
    }
    Ok(out)
}

/// A system that this one would repeat: the same name in the same department, or the same access address
/// anywhere. The error names it.
pub(crate) async fn duplicate_of(
    tx: &mut Tx,
    department: DepartmentId,
    doc: &SystemDocument,
    except: Option<SystemId>,
    prefix: &str,
) -> SystemsResult<Option<SystemsError>> {
    let except = except.map_or(0, |e| e.0);
    let same_name = sqlx::query(
        "SELECT s.id, s.name, d.name AS department FROM info_systems s JOIN departments d ON d.id = s.department_id \
         WHERE s.department_id = $1 AND s.name_key = $2 AND s.id <> $3",
    )
    .bind(department.0)
    .bind(name_key(&doc.name))
    .bind(except)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(r) = same_name {
        let (id, name): (i64, String) = (r.try_get("id")?, r.try_get("name")?);
        return Ok(Some(SystemsError::Duplicate {
            field: format!("{prefix}name"),
            message: format!("the department has registered this system already: '{name}' (system {id})"),
        }));
    }
    if let Some(url) = &doc.access_url {
        let same_url = sqlx::query(
            "SELECT s.id, s.name, d.name AS department FROM info_systems s JOIN departments d ON d.id = s.department_id \
             WHERE s.access_url = $1 AND s.id <> $2 AND s.status <> 'retired'",
        )
        .bind(url)
        .bind(except)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(r) = same_url {
            let (id, name, dept): (i64, String, String) = (r.try_get("id")?, r.try_get("name")?, r.try_get("department")?);
            return Ok(Some(SystemsError::Duplicate {
                field: format!("{prefix}access_url"),
                message: format!("{url} is the address of '{name}' (system {id}) of {dept}"),
            }));
        }
    }
    Ok(None)
}

/// Writes a system (new, or a new version of an existing one) with its links; returns its ID and version.
pub(crate) async fn write_system(
    change: &mut Change<'_>,
    department: DepartmentId,
    existing: Option<(SystemId, i64)>,
    doc: &SystemDocument,
    actor: &str,
) -> SystemsResult<(SystemId, i64)> {
    let now = now_ms();
    let raw = serde_json::to_string(doc).map_err(|e| SystemsError::State(e.to_string()))?;
    let flag = merger_flag(doc);
    let (id, version) = match existing {
        None => {
            let id: i64 = sqlx::query(
                "INSERT INTO info_systems (department_id, name, name_key, access_url, status, document, version, merger_flag, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $8, $9) RETURNING id",
            )
            .bind(department.0)
            .bind(&doc.name)
            .bind(name_key(&doc.name))
            .bind(&doc.access_url)
            .bind(doc.status.as_str())
            .bind(&raw)
            .bind(&flag)
            .bind(now)
            .bind(actor)
            .fetch_one(&mut **change.tx())
            .await?
            .try_get(0)?;
            (SystemId(id), 1)
        }
        Some((id, previous)) => {
            sqlx::query(
                "UPDATE info_systems SET name = $1, name_key = $2, access_url = $3, status = $4, document = $5, version = $6, merger_flag = $7, \
                 updated_at = $8, updated_by = $9 WHERE id = $10",
            )
            .bind(&doc.name)
            .bind(name_key(&doc.name))
            .bind(&doc.access_url)
            .bind(doc.status.as_str())
            .bind(&raw)
            .bind(previous + 1)
            .bind(&flag)
            .bind(now)
            .bind(actor)
            .bind(id.0)
            .execute(&mut **change.tx())
            .await?;
            sqlx::query("DELETE FROM info_system_links WHERE system_id = $1").bind(id.0).execute(&mut **change.tx()).await?;
            (id, previous + 1)
        }
    };
    sqlx::query("INSERT INTO info_system_versions (system_id, version, document, changed_at, changed_by) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.0)
        .bind(version)
        .bind(&raw)
        .bind(now)
        .bind(actor)
        .execute(&mut **change.tx())
        .await?;
    let mut links: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for c in &doc.produces {
        links.insert(("produces", c), ());
    }
    for c in &doc.consumes {
        links.insert(("consumes", c), ());
    }
    for a in &doc.accounts {
        links.insert(("account", a), ());
    }
    for n in &doc.nodes {
        links.insert(("node", n), ());
    }
    for (kind, target) in links.keys() {
        sqlx::query("INSERT INTO info_system_links (system_id, kind, target) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(*kind)
            .bind(*target)
            .execute(&mut **change.tx())
            .await?;
    }
    Ok((id, version))
}

/// Validates a document for `department`: fields, links, duplicates. Field names carry `prefix`.
pub(crate) async fn check_document(
    tx: &mut Tx,
    department: DepartmentId,
    doc: &SystemDocument,
    today: chrono::NaiveDate,
    except: Option<SystemId>,
    prefix: &str,
) -> SystemsResult<()> {
    let mut problems: Vec<FieldProblem> =
        doc.problems(today).into_iter().map(|p| FieldProblem { field: format!("{prefix}{}", p.field), ..p }).collect();
    problems.extend(link_problems(tx, department, doc, prefix).await?);
    if !problems.is_empty() {
        return Err(SystemsError::Invalid(problems));
    }
    if let Some(e) = duplicate_of(tx, department, doc, except, prefix).await? {
        return Err(e);
    }
    Ok(())
}

/// 登记信息系统: a department registers one of its systems.
pub async fn create_system(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    doc: SystemDocument,
) -> SystemsResult<SystemView> {
    if !standing(ex, actor).await?.may_keep(actor, department) {
        return Err(SystemsError::Forbidden("a department's systems are registered by its administrators and catalog editors".into()));
    }
    department_name(ex, department).await.map_err(|_| invalid("department_id", format!("department {department} does not exist")))?;
    let doc = doc.normalised();
    let mut change = Change::begin(&ex.db, ctx).await?;
    check_document(change.tx(), department, &doc, ex.sharing.today(), None, "").await?;
    let (id, version) = write_system(&mut change, department, None, &doc, &ctx.actor).await?;
    let flag = merger_flag(&doc);
    audit(
        &mut change,
        Action::SystemCreate,
        "info_system",
        id.0,
        department,
        json!({"name": doc.name, "version": version, "merger_flag": flag}),
    )
    .await?;
    change.commit().await?;
    let mut conn = ex.db.pool().acquire().await?;
    load_system(&mut conn, id).await
}

/// 修改登记: a new version of a system's registration; the former versions stay readable.
pub async fn update_system(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: SystemId,
    doc: SystemDocument,
) -> SystemsResult<SystemView> {
    let current = get_system(ex, actor, id).await?;
    if !standing(ex, actor).await?.may_keep(actor, current.department_id) {
        return Err(SystemsError::Forbidden("a department's systems are edited by its administrators and catalog editors".into()));
    }
    let doc = doc.normalised();
    if doc == current.document {
        return Ok(current);
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    let version: i64 =
        sqlx::query("SELECT version FROM info_systems WHERE id = $1").bind(id.0).fetch_one(&mut **change.tx()).await?.try_get(0)?;
    check_document(change.tx(), current.department_id, &doc, ex.sharing.today(), Some(id), "").await?;
    let (_, version) = write_system(&mut change, current.department_id, Some((id, version)), &doc, &ctx.actor).await?;
    audit(
        &mut change,
        Action::SystemUpdate,
        "info_system",
        id.0,
        current.department_id,
        json!({"name": doc.name, "version": version, "merger_flag": merger_flag(&doc)}),
    )
    .await?;
    change.commit().await?;
    let mut conn = ex.db.pool().acquire().await?;
    load_system(&mut conn, id).await
}
