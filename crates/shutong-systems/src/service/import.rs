//! The inventory workbook: template, export, and import all or nothing with a report by sheet, row and
//! column (like the catalog's). A row with a 系统编号 updates that system (a new version if it changed); a
//! row without one registers a new system. An exported workbook imported again changes nothing.

use std::collections::BTreeMap;

use super::systems::{check_document, every_system, load_system, write_system};
use super::*;
use crate::spreadsheet::{self, SheetIssue, SheetSystem};

/// What an import did.
#[derive(Clone, Debug, Serialize)]
pub struct SystemImportReport {
    /// Rows read.
    pub systems: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// The systems' IDs, in the file's order.
    pub ids: Vec<SystemId>,
}

/// The template: the inventory sheet with its drop-down lists, no rows.
pub fn inventory_template() -> SystemsResult<Vec<u8>> {
    spreadsheet::write(&[]).map_err(SystemsError::State)
}

/// The inventory the principal may read (one department's, or all), as the workbook the import reads.
pub async fn export_inventory(ex: &Exchange, actor: &Principal, department: Option<DepartmentId>) -> SystemsResult<Vec<u8>> {
    let mut codes: BTreeMap<i64, String> = BTreeMap::new();
    for r in sqlx::query("SELECT id, credit_code FROM departments").fetch_all(ex.db.pool()).await? {
        codes.insert(r.try_get("id")?, r.try_get("credit_code")?);
    }
    let rows: Vec<SheetSystem> = every_system(ex, actor, department)
        .await?
        .into_iter()
        .map(|v| SheetSystem {
            row: 0,
            id: Some(v.id),
            department_code: codes.get(&v.department_id.0).cloned().unwrap_or_default(),
            document: v.document,
        })
        .collect();
    spreadsheet::write(&rows).map_err(SystemsError::State)
}

/// A row ready to write: its department, the system it updates (ID, version), and whether it is unchanged.
type Planned<'a> = (&'a SheetSystem, DepartmentId, Option<(SystemId, i64)>, bool);

fn sheet_issue(row: usize, field: &str, reason: impl Into<String>) -> SheetIssue {
    SheetIssue { sheet: spreadsheet::SHEET.into(), row, column: spreadsheet::column_of(field).into(), reason: reason.into() }
}

/// 导入信息系统台账: every row checked (fields, links, duplicates against the inventory and within the file,
/// the importer's right to keep each department's inventory); on any problem nothing is written and every
/// problem is reported by sheet, row and column.
pub async fn import_inventory(ex: &Exchange, actor: &Principal, ctx: &AuditContext, bytes: &[u8]) -> SystemsResult<SystemImportReport> {
    let rows = spreadsheet::parse(bytes).map_err(SystemsError::ImportRejected)?;
    let standing = standing(ex, actor).await?;
    let mut issues = Vec::new();
    let mut departments: BTreeMap<String, Option<DepartmentId>> = BTreeMap::new();
    let mut resolved = Vec::with_capacity(rows.len());
    for r in &rows {
        if !departments.contains_key(&r.department_code) {
            let id: Option<i64> = sqlx::query("SELECT id FROM departments WHERE credit_code = $1")
                .bind(&r.department_code)
                .fetch_optional(ex.db.pool())
                .await?
                .map(|row| row.get(0));
            departments.insert(r.department_code.clone(), id.map(DepartmentId));
        }
        let Some(department) = departments[&r.department_code] else {
            issues.push(sheet_issue(r.row, "department", format!("no department has the 统一社会信用代码 '{}'", r.department_code)));
            continue;
        };
        if !standing.may_keep(actor, department) {
            issues.push(sheet_issue(r.row, "department", format!("this account may not keep the inventory of '{}'", r.department_code)));
            continue;
        }
        resolved.push((r, department));
    }
    // Within the file: one row per system, one name per department, one system per access address.
    let mut seen_id: BTreeMap<SystemId, usize> = BTreeMap::new();
    let mut seen_name: BTreeMap<(DepartmentId, String), usize> = BTreeMap::new();
    let mut seen_url: BTreeMap<String, usize> = BTreeMap::new();
    for (r, department) in &resolved {
        if let Some(id) = r.id
            && let Some(first) = seen_id.insert(id, r.row)
        {
            issues.push(sheet_issue(r.row, "id", format!("system {id} is on row {first} already")));
        }
        if let Some(first) = seen_name.insert((*department, name_key(&r.document.name)), r.row) {
            issues.push(sheet_issue(r.row, "name", format!("the same system as row {first}")));
        }
        if let Some(url) = &r.document.access_url
            && let Some(first) = seen_url.insert(url.clone(), r.row)
        {
            issues.push(sheet_issue(r.row, "access_url", format!("the same access address as row {first}")));
        }
    }
    let today = ex.sharing.today();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let mut plan: Vec<Planned> = Vec::new();
    for (r, department) in &resolved {
        let mut existing = None;
        let mut same = false;
        if let Some(id) = r.id {
            match load_system(change.tx(), id).await {
                Ok(v) if v.department_id == *department => {
                    same = v.document == r.document;
                    existing = Some((id, v.version));
                }
                Ok(_) => {
                    issues.push(sheet_issue(r.row, "id", format!("system {id} belongs to another department")));
                    continue;
                }
                Err(SystemsError::NotFound { .. }) => {
                    issues.push(sheet_issue(r.row, "id", format!("system {id} is not in the inventory")));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if !same {
            match check_document(change.tx(), *department, &r.document, today, r.id, "").await {
                Ok(()) => {}
                Err(SystemsError::Invalid(problems)) => {
                    issues.extend(problems.into_iter().map(|p| sheet_issue(r.row, &p.field, p.message)));
                }
                Err(SystemsError::Duplicate { field, message }) => issues.push(sheet_issue(r.row, &field, message)),
                Err(e) => return Err(e),
            }
        }
        plan.push((r, *department, existing, same));
    }
    if !issues.is_empty() {
        issues.sort_by(|a, b| (a.row, &a.column).cmp(&(b.row, &b.column)));
        return Err(SystemsError::ImportRejected(issues));
    }
    let mut report = SystemImportReport { systems: rows.len(), created: 0, updated: 0, unchanged: 0, ids: Vec::with_capacity(rows.len()) };
    for (r, department, existing, same) in plan {
        if same {
            report.unchanged += 1;
            report.ids.extend(existing.map(|e| e.0));
            continue;
        }
        let (id, version) = write_system(&mut change, department, existing, &r.document, &ctx.actor).await?;
        let action = if existing.is_some() { Action::SystemUpdate } else { Action::SystemCreate };
        if existing.is_some() {
            report.updated += 1;
        } else {
            report.created += 1;
        }
        audit(
            &mut change,
            action,
            "info_system",
            id.0,
            department,
            json!({"name": r.document.name, "version": version, "merger_flag": merger_flag(&r.document), "row": r.row}),
        )
        .await?;
        report.ids.push(id);
    }
    change
        .record(NewAuditEvent {
            action: Action::SystemImport,
            target_kind: "info_system_import",
            target_id: report.ids.first().map(ToString::to_string).unwrap_or_default(),
            department_id: None,
            detail: json!({"systems": report.systems, "created": report.created, "updated": report.updated, "unchanged": report.unchanged}),
        })
        .await?;
    change.commit().await?;
    Ok(report)
}
