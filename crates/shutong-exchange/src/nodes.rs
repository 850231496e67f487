//! 前置机: the exchange nodes that departments run beside their own databases (办法 第十五条 前置机共享;
//! SPEC C4 "Exchange node"). A node is a system account's process (`shutong node run`): its first signed
//! heartbeat registers it, every later one reports its version, the lag of its publications and
//! subscriptions, its outbox and its last error. The platform lists nodes with that state, and flags a node
//! whose last heartbeat is older than `exchange.node_silence_seconds`; its department's administrators see
//! it in 待办.
//!
//! Registration and a change of name or version are audited (`node.register`, `node.update`); the
//! heartbeats between are telemetry, kept on the node's row and not in the trail (one event every 30 s
//! per node would drown the trail without recording any decision).

use serde::{Deserialize, Serialize};
use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent};
use shutong_identity::{DepartmentId, Principal, Role};
use shutong_store::{AnyRow, Row};

use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

shutong_store::typed_id!(
    /// 前置机标识: one exchange node registered with the platform (办法 第十五条 前置机共享).
    NodeId
);

shutong_catalog::value_list!(
    /// 数据流方向 of a node's flow: a publication (提供) sends a local source to a dataset, a subscription
    /// (获取) keeps a local table in step with a granted dataset (办法 第十五条).
    FlowDirection {
        Publication => "publication" / "提供",
        Subscription => "subscription" / "获取",
    }
);

shutong_catalog::value_list!(
    /// 运行状态 of one flow of a node.
    FlowState {
        /// 运行中: in step, or catching up.
        Running => "running" / "运行中",
        /// 离线积压: the platform cannot be reached; changes are kept in the outbox.
        Offline => "offline" / "离线积压",
        /// 已停止: stopped on an error that needs a person (a column no longer mapped, a grant revoked).
        Stopped => "stopped" / "已停止",
    }
);

/// One flow of a node, as its heartbeat reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowReport {
    /// The flow's name in the node's configuration.
    pub name: String,
    pub direction: FlowDirection,
    pub resource_code: String,
    pub state: FlowState,
    /// Changes read from the source and not yet on the platform (publication), or on the platform and not
    /// yet in the local table (subscription).
    pub lag_rows: i64,
    /// Age of the oldest of those changes, seconds.
    pub lag_seconds: i64,
    /// Rows moved since the flow started.
    pub rows_total: i64,
    /// Rows the platform rejected (publication), kept in the node's rejects table.
    #[serde(default)]
    pub rejects: i64,
    pub last_transfer_at_ms: Option<i64>,
    pub error: Option<String>,
}

/// 前置机心跳: what a node reports every `heartbeat_seconds`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The node's name (its configuration's `node.name`): 1–64 of a–z 0–9 `-` `_` `.`.
    pub name: String,
    /// The node's software version.
    pub version: String,
    pub started_at_ms: i64,
    #[serde(default)]
    pub flows: Vec<FlowReport>,
    /// Batches waiting in the outbox, and their bytes.
    pub outbox_batches: i64,
    pub outbox_bytes: i64,
    /// The outbox's disk limit (`node.outbox_limit_mb`), bytes.
    pub outbox_limit_bytes: i64,
    pub last_error: Option<String>,
}

/// A node as the platform sees it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeView {
    pub id: NodeId,
    pub name: String,
    pub department_id: i64,
    pub department_name: String,
    /// The system account the node signs with.
    pub account: String,
    pub version: String,
    pub registered_at_ms: i64,
    pub last_seen_ms: i64,
    /// The last time one of its flows moved data.
    pub last_transfer_at_ms: Option<i64>,
    /// Silent longer than `exchange.node_silence_seconds`.
    pub silent: bool,
    pub last_error: Option<String>,
    /// The last heartbeat's report.
    pub report: Heartbeat,
}

const NAME_MAX: usize = 64;
const TEXT_MAX: usize = 2000;
const FLOWS_MAX: usize = 256;

fn check_line(field: &str, value: &str, max: usize) -> ExchangeResult<()> {
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks a node or flow name: 1–64 of a–z 0–9 `-` `_` `.`.
pub fn check_name(field: &str, name: &str) -> ExchangeResult<()> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(invalid(field, format!("'{name}' must be 1–{NAME_MAX} of a–z, 0–9, '-', '_' or '.'")));
    }
    Ok(())
}

impl Heartbeat {
    /// Every field checked; the first fault named by its path.
    pub fn check(&self) -> ExchangeResult<()> {
        check_name("name", &self.name)?;
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        check_line("version", &self.version, NAME_MAX)?;
        if let Some(e) = &self.last_error {
            check_line("last_error", e, TEXT_MAX)?;
        }
        if self.flows.len() > FLOWS_MAX {
            return Err(invalid("flows", format!("at most {FLOWS_MAX} flows")));
        }
        for (n, f) in
            [("outbox_batches", self.outbox_batches), ("outbox_bytes", self.outbox_bytes), ("outbox_limit_bytes", self.outbox_limit_bytes)]
        {
            if f < 0 {
                return Err(invalid(n, "must not be negative"));
            }
        }
        for (i, f) in self.flows.iter().enumerate() {
            check_name(&format!("flows[{i}].name"), &f.name)?;
            shutong_catalog::ResourceCode::parse(&f.resource_code)
                .map_err(|e| invalid(&format!("flows[{i}].resource_code"), e.to_string()))?;
            for (n, v) in [("lag_rows", f.lag_rows), ("lag_seconds", f.lag_seconds), ("rows_total", f.rows_total), ("rejects", f.rejects)] {
                if v < 0 {
                    return Err(invalid(&format!("flows[{i}]"), format!("{n} must not be negative")));
                }
            }
            if let Some(e) = &f.error {
                check_line(&format!("flows[{i}].error"), e, TEXT_MAX)?;
            }
        }
        Ok(())
    }

    fn last_transfer(&self) -> Option<i64> {
        self.flows.iter().filter_map(|f| f.last_transfer_at_ms).max()
    }
}

/// Whether the principal sees every node (the sharing authority's staff, platform administrators,
/// auditors) or only its own department's.
async fn sees_all(ex: &Exchange, p: &Principal) -> ExchangeResult<bool> {
    sees_all_nodes(&ex.db, p).await
}

async fn sees_all_nodes(db: &shutong_store::Db, p: &Principal) -> ExchangeResult<bool> {
    Ok(p.is_platform_admin() || p.is_auditor() || shutong_catalog::is_authority(db, p).await?)
}

/// Whether the principal sees some node: a department's users see their department's; the authority,
/// platform administrators and auditors every one.
pub async fn may_see_nodes(db: &shutong_store::Db, p: &Principal) -> ExchangeResult<bool> {
    Ok(p.department_id.is_some() || sees_all_nodes(db, p).await?)
}

const COLUMNS: &str = "n.id, n.name, n.department_id, d.name AS department_name, u.username AS account, n.version, n.report, \
     n.last_error, n.registered_at, n.last_seen_at, n.last_transfer_at";

fn node_from_row(ex: &Exchange, r: &AnyRow) -> ExchangeResult<NodeView> {
    let last_seen_ms: i64 = r.try_get("last_seen_at")?;
    let report: Heartbeat = shutong_store::parse_column(r, "exchange_nodes", "report", |s| serde_json::from_str(s).ok())?;
    Ok(NodeView {
        id: NodeId(r.try_get("id")?),
        name: r.try_get("name")?,
        department_id: r.try_get("department_id")?,
        department_name: r.try_get("department_name")?,
        account: r.try_get("account")?,
        version: r.try_get("version")?,
        registered_at_ms: r.try_get("registered_at")?,
        last_seen_ms,
        last_transfer_at_ms: r.try_get("last_transfer_at")?,
        silent: ex.sharing.clock.now_ms() - last_seen_ms > ex.settings.node_silence_ms,
        last_error: r.try_get("last_error")?,
        report,
    })
}

/// 前置机心跳: registers the calling system account's node on its first heartbeat, then keeps its state.
/// Only a department's system accounts run nodes; one node per account.
pub async fn heartbeat(ex: &Exchange, actor: &Principal, ctx: &AuditContext, hb: &Heartbeat) -> ExchangeResult<NodeView> {
    let (Some(user), Some(department)) = (actor.user_id, actor.department_id) else {
        return Err(ExchangeError::Forbidden("exchange nodes are run by a department's system accounts".into()));
    };
    if !actor.is_system || !actor.has_role_in(Role::SystemAccount, department) {
        return Err(ExchangeError::Forbidden("exchange nodes are run by a department's system accounts".into()));
    }
    hb.check()?;
    let now = ex.sharing.clock.now_ms();
    let report = json!(hb).to_string();
    let transfer = hb.last_transfer();
    let existing =
        sqlx::query("SELECT id, name, version FROM exchange_nodes WHERE account_id = $1").bind(user.0).fetch_optional(ex.db.pool()).await?;
    let taken: Option<i64> = sqlx::query("SELECT account_id FROM exchange_nodes WHERE name = $1")
        .bind(&hb.name)
        .fetch_optional(ex.db.pool())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    if taken.is_some_and(|a| a != user.0) {
        return Err(ExchangeError::Conflict(format!("another system account's node is already named '{}'", hb.name)));
    }
    let known = match &existing {
        Some(row) => Some((row.try_get::<i64, _>("id")?, row.try_get::<String, _>("name")?, row.try_get::<String, _>("version")?)),
        None => None,
    };
    let id = match known {
        // The same node reporting: telemetry, not a decision — kept on its row, outside the trail.
        Some((id, name, version)) if name == hb.name && version == hb.version => {
            sqlx::query(
                "UPDATE exchange_nodes SET report = $1, last_error = $2, last_seen_at = $3, last_transfer_at = COALESCE($4, last_transfer_at) \
                 WHERE id = $5",
            )
            .bind(&report)
            .bind(&hb.last_error)
            .bind(now)
            .bind(transfer)
            .bind(id)
            .execute(ex.db.pool())
            .await?;
            id
        }
        // Renamed or upgraded: audited.
        Some((id, name, version)) => {
            let mut change = shutong_audit::Change::begin(&ex.db, ctx).await?;
            sqlx::query(
                "UPDATE exchange_nodes SET name = $1, version = $2, report = $3, last_error = $4, last_seen_at = $5, \
                 last_transfer_at = COALESCE($6, last_transfer_at) WHERE id = $7",
            )
            .bind(&hb.name)
            .bind(&hb.version)
            .bind(&report)
            .bind(&hb.last_error)
            .bind(now)
            .bind(transfer)
            .bind(id)
            .execute(&mut **change.tx())
            .await?;
            change
                .record(NewAuditEvent {
                    action: shutong_audit::Action::NodeUpdate,
                    target_kind: "exchange_node",
                    target_id: id.to_string(),
                    department_id: Some(department.0),
                    detail: json!({"name": {"from": name, "to": hb.name}, "version": {"from": version, "to": hb.version}}),
                })
                .await?;
            change.commit().await?;
            id
        }
        // The first heartbeat registers the node: audited.
        None => {
            let mut change = shutong_audit::Change::begin(&ex.db, ctx).await?;
            let id: i64 = sqlx::query(
                "INSERT INTO exchange_nodes (name, department_id, account_id, version, report, last_error, registered_at, last_seen_at, last_transfer_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
            )
            .bind(&hb.name)
            .bind(department.0)
            .bind(user.0)
            .bind(&hb.version)
            .bind(&report)
            .bind(&hb.last_error)
            .bind(now)
            .bind(transfer)
            .fetch_one(&mut **change.tx())
            .await?
            .try_get(0)?;
            change
                .record(NewAuditEvent {
                    action: shutong_audit::Action::NodeRegister,
                    target_kind: "exchange_node",
                    target_id: id.to_string(),
                    department_id: Some(department.0),
                    detail: json!({"name": hb.name, "version": hb.version, "account": actor.username}),
                })
                .await?;
            change.commit().await?;
            id
        }
    };
    get_node(ex, actor, NodeId(id)).await
}

/// The nodes the principal may see: its department's, or all of them for the authority, administrators
/// and auditors; with `department`, one department's.
pub async fn list_nodes(ex: &Exchange, actor: &Principal, department: Option<DepartmentId>) -> ExchangeResult<Vec<NodeView>> {
    let all = sees_all(ex, actor).await?;
    let scope = if all {
        department
    } else {
        match actor.department_id {
            Some(d) if department.is_none_or(|x| x == d) => Some(d),
            _ => return Ok(Vec::new()),
        }
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM exchange_nodes n JOIN departments d ON d.id = n.department_id JOIN users u ON u.id = n.account_id \
         WHERE ($1 = 0 OR n.department_id = $1) ORDER BY d.name, n.name"
    );
    let rows = sqlx::query(&sql).bind(scope.map_or(0, |d| d.0)).fetch_all(ex.db.pool()).await?;
    rows.iter().map(|r| node_from_row(ex, r)).collect()
}

/// One node, if the principal may see it.
pub async fn get_node(ex: &Exchange, actor: &Principal, id: NodeId) -> ExchangeResult<NodeView> {
    let sql = format!(
        "SELECT {COLUMNS} FROM exchange_nodes n JOIN departments d ON d.id = n.department_id JOIN users u ON u.id = n.account_id WHERE n.id = $1"
    );
    let row = sqlx::query(&sql).bind(id.0).fetch_optional(ex.db.pool()).await?.ok_or(ExchangeError::NotFound { what: "exchange node" })?;
    let node = node_from_row(ex, &row)?;
    if actor.department_id != Some(DepartmentId(node.department_id)) && !sees_all(ex, actor).await? {
        return Err(ExchangeError::NotFound { what: "exchange node" });
    }
    Ok(node)
}

/// 待办: the silent nodes the principal answers for (its department's administrators; platform
/// administrators for every department).
pub async fn silent_nodes(ex: &Exchange, actor: &Principal) -> ExchangeResult<Vec<NodeView>> {
    let mine = |n: &NodeView| actor.is_platform_admin() || actor.has_role_in(Role::DepartmentAdmin, DepartmentId(n.department_id));
    if !actor.is_platform_admin() && !actor.has_role(Role::DepartmentAdmin) {
        return Ok(Vec::new());
    }
    let scope = if actor.is_platform_admin() { None } else { actor.department_id };
    Ok(list_nodes(ex, actor, scope).await?.into_iter().filter(|n| n.silent && mine(n)).collect())
}

/// Every node by name with its last heartbeat and last transfer (for the systems module's facts).
pub async fn node_activity(ex: &Exchange) -> ExchangeResult<Vec<(String, i64, Option<i64>)>> {
    let rows = sqlx::query("SELECT name, last_seen_at, last_transfer_at FROM exchange_nodes").fetch_all(ex.db.pool()).await?;
    rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("last_seen_at")?, r.try_get("last_transfer_at")?))).collect()
}
