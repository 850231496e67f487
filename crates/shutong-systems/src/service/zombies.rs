//! 僵尸信息系统: the five criteria of the seeds computed from the platform's facts, each with the evidence it
//! used; the department's answer, the authority's decision, and the cleanup plan to its completion.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use shutong_store::{china_date, now_ms};

use super::systems::load_system;
use super::*;

/// 与业务长期脱节: none of the resources the system produces was updated (catalog or data) for this many days.
pub const DETACHED_DAYS: i64 = 365;
/// 资源长期空闲: none of the system's accounts used the platform, and none of its exchange nodes moved data,
/// for this many days.
pub const IDLE_DAYS: i64 = 180;
/// 超过一年未进行更新.
pub const UNMAINTAINED_DAYS: i64 = 365;
/// 已接入共享平台 (for the O&M funding gate): a system account used the platform within this many days, or a
/// resource it produces is published with its data on the platform.
pub const CONNECTED_DAYS: i64 = 180;

const DAY_MS: i64 = 86_400_000;

/// The platform's facts the criteria read, loaded once for every system judged.
pub struct Facts {
    now_ms: i64,
    /// Resource code → (name, last update: the catalog entry's or its data's, whichever is later).
    resources: BTreeMap<String, (String, i64)>,
    /// Published resources whose data is on the platform (bound to a dataset, a file store or a service).
    bound: BTreeSet<String>,
    /// System account → its last use of the platform (login, token or SM2-signed request), if ever.
    accounts: BTreeMap<String, Option<i64>>,
    /// Resource code → the systems in use that produce it (ID, name, department).
    producers: BTreeMap<String, Vec<(SystemId, String, String)>>,
    /// Exchange node (前置机) → its last heartbeat and the last time it moved data.
    nodes: BTreeMap<String, (i64, Option<i64>)>,
}

fn date_of(ms: i64) -> NaiveDate {
    china_date(ms)
}

impl Facts {
    pub async fn load(ex: &Exchange) -> SystemsResult<Facts> {
        let now_ms = ex.sharing.clock.now_ms();
        let mut resources = BTreeMap::new();
        for r in sqlx::query("SELECT code, name, updated_at FROM catalog_resources").fetch_all(ex.db.pool()).await? {
            resources.insert(r.try_get::<String, _>("code")?, (r.try_get::<String, _>("name")?, r.try_get::<i64, _>("updated_at")?));
        }
        let mut bound = BTreeSet::new();
        for b in shutong_exchange::binding::list_bindings(ex).await? {
            let code = b.resource_code.as_str().to_string();
            if let (Some(at), Some(entry)) = (b.last_batch_at_ms, resources.get_mut(&code)) {
                entry.1 = entry.1.max(at);
            }
            bound.insert(code);
        }
        let mut accounts = BTreeMap::new();
        for r in sqlx::query(
            "SELECT u.username, u.last_login_at, u.last_signed_at, (SELECT MAX(t.last_used_at) FROM api_tokens t WHERE t.user_id = u.id) AS token_used \
             FROM users u WHERE u.is_system = 1",
        )
        .fetch_all(ex.db.pool())
        .await?
        {
            let login: Option<i64> = r.try_get("last_login_at")?;
            let token: Option<i64> = r.try_get("token_used")?;
            let signed: Option<i64> = r.try_get("last_signed_at")?;
            accounts.insert(r.try_get::<String, _>("username")?, login.max(token).max(signed));
        }
        let mut producers: BTreeMap<String, Vec<(SystemId, String, String)>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT l.target, s.id, s.name, d.name AS department FROM info_system_links l JOIN info_systems s ON s.id = l.system_id \
             JOIN departments d ON d.id = s.department_id WHERE l.kind = 'produces' AND s.status = 'in_use'",
        )
        .fetch_all(ex.db.pool())
        .await?
        {
            producers.entry(r.try_get("target")?).or_default().push((
                SystemId(r.try_get("id")?),
                r.try_get("name")?,
                r.try_get("department")?,
            ));
        }
        let nodes =
            shutong_exchange::nodes::node_activity(ex).await?.into_iter().map(|(name, seen, transfer)| (name, (seen, transfer))).collect();
        Ok(Facts { now_ms, resources, bound, accounts, producers, nodes })
    }

    fn today(&self) -> NaiveDate {
        date_of(self.now_ms)
    }

    /// 已接入共享平台, from facts: the evidence if the system is connected, or why it is not.
    pub fn connection(&self, doc: &SystemDocument) -> (bool, Vec<String>) {
        let mut evidence = Vec::new();
        for code in &doc.produces {
            if self.bound.contains(code) {
                evidence.push(format!("产生的资源 {code} 已在平台挂接数据"));
            }
        }
        for a in &doc.accounts {
            if let Some(Some(at)) = self.accounts.get(a)
                && self.now_ms - at <= CONNECTED_DAYS * DAY_MS
            {
                evidence.push(format!("系统账户 {a} 于 {} 使用平台", date_of(*at)));
            }
        }
        for n in &doc.nodes {
            if let Some((_, Some(at))) = self.nodes.get(n)
                && self.now_ms - at <= CONNECTED_DAYS * DAY_MS
            {
                evidence.push(format!("前置机 {n} 于 {} 与平台交换数据", date_of(*at)));
            }
        }
        if evidence.is_empty() {
            let mut why = vec![format!("产生的资源均未在平台挂接数据，且系统账户和前置机 {CONNECTED_DAYS} 天内未使用平台")];
            if doc.produces.is_empty() && doc.accounts.is_empty() && doc.nodes.is_empty() {
                why = vec!["未登记产生的资源、系统账户和前置机，平台上没有接入的事实".into()];
            }
            (false, why)
        } else {
            (true, evidence)
        }
    }

    /// The five criteria for one system, each with the facts it used.
    pub fn judge(&self, id: SystemId, doc: &SystemDocument) -> Vec<CriterionResult> {
        let today = self.today();
        let mut out = Vec::new();

        // 1. 与业务长期脱节.
        let mut evidence = Vec::new();
        let mut fresh = false;
        for code in &doc.produces {
            match self.resources.get(code) {
                Some((name, at)) => {
                    evidence.push(format!("资源 {code}（{name}）最近更新于 {}", date_of(*at)));
                    fresh |= self.now_ms - at <= DETACHED_DAYS * DAY_MS;
                }
                None => evidence.push(format!("资源 {code} 已不在目录中")),
            }
        }
        if doc.produces.is_empty() {
            evidence.push("未登记产生的信息资源，无法据此判断".into());
        }
        out.push(CriterionResult { criterion: ZombieCriterion::Detached, met: !doc.produces.is_empty() && !fresh, evidence });

        // 2. 功能可被其他系统替代.
        let mut evidence = Vec::new();
        for code in &doc.produces {
            for (other, name, dept) in self.producers.get(code).into_iter().flatten() {
                if *other != id {
                    evidence.push(format!("在用系统“{name}”（{dept}，系统 {other}）同样产生资源 {code}"));
                }
            }
        }
        let met = !evidence.is_empty();
        if !met {
            evidence.push(if doc.produces.is_empty() {
                "未登记产生的信息资源，无法据此判断".into()
            } else {
                "没有其他在用系统产生相同的信息资源".into()
            });
        }
        out.push(CriterionResult { criterion: ZombieCriterion::Replaceable, met, evidence });

        // 3. 所占用资源长期处于空闲状态.
        let mut evidence = Vec::new();
        let mut used = false;
        for a in &doc.accounts {
            match self.accounts.get(a) {
                Some(Some(at)) => {
                    evidence.push(format!("系统账户 {a} 最近使用平台于 {}", date_of(*at)));
                    used |= self.now_ms - at <= IDLE_DAYS * DAY_MS;
                }
                Some(None) => evidence.push(format!("系统账户 {a} 从未使用平台")),
                None => evidence.push(format!("系统账户 {a} 已不存在")),
            }
        }
        // A node that only reports its heartbeat is running, not used: what counts is data moved.
        for n in &doc.nodes {
            match self.nodes.get(n) {
                Some((seen, Some(at))) => {
                    evidence.push(format!("前置机 {n} 最近交换数据于 {}，最近心跳于 {}", date_of(*at), date_of(*seen)));
                    used |= self.now_ms - at <= IDLE_DAYS * DAY_MS;
                }
                Some((seen, None)) => evidence.push(format!("前置机 {n} 从未交换数据（最近心跳于 {}）", date_of(*seen))),
                None => evidence.push(format!("前置机 {n} 已不在平台登记")),
            }
        }
        let linked = !doc.accounts.is_empty() || !doc.nodes.is_empty();
        if !linked {
            evidence.push("未登记系统账户和前置机，无法据此判断".into());
        }
        out.push(CriterionResult { criterion: ZombieCriterion::Idle, met: linked && !used, evidence });

        // 4. 运维服务已经停止或超过一年未进行更新.
        let mut evidence = vec![format!("运维状态：{}", doc.om_status.label_zh())];
        let stale = match doc.last_update_date {
            Some(d) => {
                evidence.push(format!("最近一次更新：{d}"));
                (today - d).num_days() > UNMAINTAINED_DAYS
            }
            None => {
                evidence.push("未填报最近一次更新日期".into());
                false
            }
        };
        out.push(CriterionResult { criterion: ZombieCriterion::Unmaintained, met: doc.om_status == OmStatus::Stopped || stale, evidence });

        // 5. 使用范围小、频度低.
        let small = matches!(doc.usage_scope, UsageScope::Unit | UsageScope::Department);
        let rare = matches!(doc.usage_frequency, UsageFrequency::Yearly | UsageFrequency::Rarely);
        out.push(CriterionResult {
            criterion: ZombieCriterion::LittleUsed,
            met: small && rare,
            evidence: vec![format!("使用范围：{}", doc.usage_scope.label_zh()), format!("使用频度：{}", doc.usage_frequency.label_zh())],
        });
        out
    }
}

/// One criterion for one system: met or not, and the facts it read.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CriterionResult {
    pub criterion: ZombieCriterion,
    pub met: bool,
    pub evidence: Vec<String>,
}

/// 僵尸系统研判: the criteria, whether any is met (疑似僵尸), the department's answer and the authority's decision.
#[derive(Clone, Debug, Serialize)]
pub struct ZombieVerdict {
    pub system_id: SystemId,
    pub system_name: String,
    pub department_id: DepartmentId,
    pub department_name: String,
    pub status: SystemStatus,
    pub suspected: bool,
    pub criteria: Vec<CriterionResult>,
    pub state: ZombieState,
    pub cleanup: Option<Cleanup>,
}

/// One step of a system's zombie review.
#[derive(Clone, Debug, Serialize)]
pub struct ZombieReviewStep {
    pub id: ZombieReviewId,
    /// `response` (部门意见) or `decision` (主管部门认定).
    pub step: String,
    pub value: String,
    pub reason: Option<String>,
    /// The criteria as they stood at this step.
    pub evidence: Vec<CriterionResult>,
    pub at_ms: i64,
    pub by: String,
}

fn verdict_of(facts: &Facts, v: SystemView) -> ZombieVerdict {
    let criteria = if v.document.status == SystemStatus::Retired { Vec::new() } else { facts.judge(v.id, &v.document) };
    ZombieVerdict {
        system_id: v.id,
        system_name: v.document.name,
        department_id: v.department_id,
        department_name: v.department_name,
        status: v.document.status,
        suspected: criteria.iter().any(|c| c.met),
        criteria,
        state: v.zombie,
        cleanup: v.cleanup,
    }
}

/// The verdict on one system, from the facts as they are now.
pub async fn zombie_verdict(ex: &Exchange, actor: &Principal, id: SystemId) -> SystemsResult<ZombieVerdict> {
    let v = get_system(ex, actor, id).await?;
    let facts = Facts::load(ex).await?;
    Ok(verdict_of(&facts, v))
}

/// The verdicts on every system the principal may read (of one department, or all), suspected first.
pub async fn zombie_verdicts(ex: &Exchange, actor: &Principal, department: Option<DepartmentId>) -> SystemsResult<Vec<ZombieVerdict>> {
    let facts = Facts::load(ex).await?;
    let mut out: Vec<ZombieVerdict> = every_system(ex, actor, department).await?.into_iter().map(|v| verdict_of(&facts, v)).collect();
    out.sort_by_key(|v| (!v.suspected, v.department_id, v.system_id));
    Ok(out)
}

/// The steps of a system's review, oldest first.
pub async fn zombie_reviews(ex: &Exchange, actor: &Principal, id: SystemId) -> SystemsResult<Vec<ZombieReviewStep>> {
    get_system(ex, actor, id).await?;
    let rows = sqlx::query("SELECT id, step, value, reason, evidence, at, by_user FROM zombie_reviews WHERE system_id = $1 ORDER BY id")
        .bind(id.0)
        .fetch_all(ex.db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let raw: String = r.try_get("evidence")?;
            Ok(ZombieReviewStep {
                id: ZombieReviewId(r.try_get("id")?),
                step: r.try_get("step")?,
                value: r.try_get("value")?,
                reason: r.try_get("reason")?,
                evidence: serde_json::from_str(&raw).map_err(|_| unreadable("zombie_reviews", "evidence", &raw))?,
                at_ms: r.try_get("at")?,
                by: r.try_get("by_user")?,
            })
        })
        .collect()
}

async fn record_step(
    change: &mut Change<'_>,
    id: SystemId,
    step: &str,
    value: &str,
    reason: Option<&str>,
    verdict: &ZombieVerdict,
    actor: &str,
) -> SystemsResult<()> {
    let evidence = serde_json::to_string(&verdict.criteria).map_err(|e| SystemsError::State(e.to_string()))?;
    sqlx::query("INSERT INTO zombie_reviews (system_id, step, value, reason, evidence, at, by_user) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id.0)
        .bind(step)
        .bind(value)
        .bind(reason)
        .bind(evidence)
        .bind(now_ms())
        .bind(actor)
        .execute(&mut **change.tx())
        .await?;
    Ok(())
}

fn met_codes(v: &ZombieVerdict) -> Vec<&'static str> {
    v.criteria.iter().filter(|c| c.met).map(|c| c.criterion.as_str()).collect()
}

/// 部门意见: the department confirms a suspected zombie or disputes it with a reason. It may answer again
/// until the authority has decided.
pub async fn respond_zombie(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: SystemId,
    response: ZombieResponse,
    reason: Option<&str>,
) -> SystemsResult<ZombieVerdict> {
    let verdict = zombie_verdict(ex, actor, id).await?;
    if !standing(ex, actor).await?.may_keep(actor, verdict.department_id) {
        return Err(SystemsError::Forbidden("the department's administrators answer for its systems".into()));
    }
    let reason = check_reason("reason", reason)?;
    if response == ZombieResponse::Dispute && reason.is_none() {
        return Err(invalid("reason", "a dispute needs its reason"));
    }
    if !verdict.suspected {
        return Err(SystemsError::State("no zombie criterion is met: there is nothing to answer".into()));
    }
    if verdict.state.decision.is_some() {
        return Err(SystemsError::State("the sharing authority has decided already".into()));
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query(
        "UPDATE info_systems SET zombie_response = $1, zombie_response_reason = $2, updated_at = $3, updated_by = $4 WHERE id = $5",
    )
    .bind(response.as_str())
    .bind(&reason)
    .bind(now_ms())
    .bind(&ctx.actor)
    .bind(id.0)
    .execute(&mut **change.tx())
    .await?;
    record_step(&mut change, id, "response", response.as_str(), reason.as_deref(), &verdict, &ctx.actor).await?;
    audit(
        &mut change,
        Action::SystemZombieResponse,
        "info_system",
        id.0,
        verdict.department_id,
        json!({"response": response.as_str(), "reason": reason, "criteria": met_codes(&verdict)}),
    )
    .await?;
    change.commit().await?;
    zombie_verdict(ex, actor, id).await
}

/// 主管部门认定: the sharing authority decides, after the department has answered. Deciding against the
/// department's answer (overruling it) needs a reason.
pub async fn decide_zombie(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: SystemId,
    decision: ZombieDecision,
    reason: Option<&str>,
) -> SystemsResult<ZombieVerdict> {
    if !standing(ex, actor).await?.authority {
        return Err(SystemsError::Forbidden("only the sharing authority decides whether a system is a zombie".into()));
    }
    let verdict = zombie_verdict(ex, actor, id).await?;
    let reason = check_reason("reason", reason)?;
    let Some(response) = verdict.state.response else {
        return Err(SystemsError::State("the department has not answered the verdict yet".into()));
    };
    let overrules = matches!(
        (response, decision),
        (ZombieResponse::Confirm, ZombieDecision::NotZombie) | (ZombieResponse::Dispute, ZombieDecision::Zombie)
    );
    if overrules && reason.is_none() {
        return Err(invalid("reason", "deciding against the department's answer needs a reason"));
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query(
        "UPDATE info_systems SET zombie_decision = $1, zombie_decision_reason = $2, updated_at = $3, updated_by = $4 WHERE id = $5",
    )
    .bind(decision.as_str())
    .bind(&reason)
    .bind(now_ms())
    .bind(&ctx.actor)
    .bind(id.0)
    .execute(&mut **change.tx())
    .await?;
    record_step(&mut change, id, "decision", decision.as_str(), reason.as_deref(), &verdict, &ctx.actor).await?;
    audit(
        &mut change,
        Action::SystemZombieDecision,
        "info_system",
        id.0,
        verdict.department_id,
        json!({"decision": decision.as_str(), "reason": reason, "overrules": overrules, "criteria": met_codes(&verdict)}),
    )
    .await?;
    change.commit().await?;
    zombie_verdict(ex, actor, id).await
}

/// 清理计划 as the department draws it up.
#[derive(Clone, Debug)]
pub struct CleanupPlan {
    pub action: CleanupAction,
    pub due_on: NaiveDate,
    /// For an integration: the system it goes into.
    pub into: Option<SystemId>,
    pub note: Option<String>,
}

/// 清理计划: how and by when a system judged a zombie, or flagged for merger, is shut down, integrated or
/// migrated. Integration names the system it goes into, of the same department.
pub async fn plan_cleanup(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: SystemId,
    plan: CleanupPlan,
) -> SystemsResult<SystemView> {
    let CleanupPlan { action, due_on, into, note } = plan;
    let note = note.as_deref();
    let v = get_system(ex, actor, id).await?;
    if !standing(ex, actor).await?.may_keep(actor, v.department_id) {
        return Err(SystemsError::Forbidden("the department's administrators plan the cleanup of its systems".into()));
    }
    let note = check_reason("note", note)?;
    if v.document.status == SystemStatus::Retired {
        return Err(SystemsError::State("the system is retired already".into()));
    }
    let eligible =
        v.zombie.decision == Some(ZombieDecision::Zombie) || v.merger_flag.is_some() || v.zombie.response == Some(ZombieResponse::Confirm);
    if !eligible {
        return Err(SystemsError::State(
            "a cleanup is planned for a system judged a zombie, confirmed by its department, or flagged for merger".into(),
        ));
    }
    if due_on < ex.sharing.today() {
        return Err(invalid("due_on", format!("{due_on} is in the past")));
    }
    if let Some(c) = &v.cleanup
        && c.progress != CleanupProgress::Planned
    {
        return Err(SystemsError::State("the cleanup is under way; record its progress instead".into()));
    }
    match (action, into) {
        (CleanupAction::Integrate, None) => return Err(invalid("into_system_id", "an integration names the system it goes into")),
        (CleanupAction::Integrate, Some(target)) => {
            let mut conn = ex.db.pool().acquire().await?;
            let t =
                load_system(&mut conn, target).await.map_err(|_| invalid("into_system_id", format!("system {target} does not exist")))?;
            if target == id || t.department_id != v.department_id || t.document.status == SystemStatus::Retired {
                return Err(invalid("into_system_id", "must be another system of the same department, not retired"));
            }
        }
        (_, Some(_)) => return Err(invalid("into_system_id", "only an integration names a target system")),
        _ => {}
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    let now = now_ms();
    sqlx::query("DELETE FROM system_cleanups WHERE system_id = $1").bind(id.0).execute(&mut **change.tx()).await?;
    sqlx::query(
        "INSERT INTO system_cleanups (system_id, action, due_on, into_system_id, progress, note, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, 'planned', $5, $6, $7, $6, $7)",
    )
    .bind(id.0)
    .bind(action.as_str())
    .bind(due_on.to_string())
    .bind(into.map(|i| i.0))
    .bind(&note)
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    audit(
        &mut change,
        Action::SystemCleanupPlan,
        "info_system",
        id.0,
        v.department_id,
        json!({"action": action.as_str(), "due_on": due_on.to_string(), "into": into.map(|i| i.0), "note": note}),
    )
    .await?;
    change.commit().await?;
    let mut conn = ex.db.pool().acquire().await?;
    load_system(&mut conn, id).await
}

/// 清理进展: under way, or done. A shutdown or integration done retires the system (a new version, status
/// 已下线, no longer connected); a migration done keeps it in use.
pub async fn record_cleanup(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: SystemId,
    progress: CleanupProgress,
    note: Option<&str>,
) -> SystemsResult<SystemView> {
    let v = get_system(ex, actor, id).await?;
    if !standing(ex, actor).await?.may_keep(actor, v.department_id) {
        return Err(SystemsError::Forbidden("the department's administrators record the cleanup of its systems".into()));
    }
    let note = check_reason("note", note)?;
    let Some(cleanup) = &v.cleanup else {
        return Err(SystemsError::State("the system has no cleanup plan".into()));
    };
    let order = |p: CleanupProgress| CleanupProgress::ALL.iter().position(|q| *q == p);
    if cleanup.progress == CleanupProgress::Done || order(progress) <= order(cleanup.progress) {
        return Err(SystemsError::State(format!("the cleanup is {} already; progress only moves forward", cleanup.progress.label_zh())));
    }
    let mut change = Change::begin(&ex.db, ctx).await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE system_cleanups SET progress = $1, note = COALESCE($2, note), updated_at = $3, updated_by = $4 WHERE system_id = $5",
    )
    .bind(progress.as_str())
    .bind(&note)
    .bind(now)
    .bind(&ctx.actor)
    .bind(id.0)
    .execute(&mut **change.tx())
    .await?;
    let mut retired = false;
    if progress == CleanupProgress::Done && cleanup.action != CleanupAction::Migrate {
        let doc = SystemDocument { status: SystemStatus::Retired, connected: false, ..v.document.clone() };
        write_system(&mut change, v.department_id, Some((id, v.version)), &doc, &ctx.actor).await?;
        retired = true;
    }
    audit(
        &mut change,
        Action::SystemCleanupProgress,
        "info_system",
        id.0,
        v.department_id,
        json!({"progress": progress.as_str(), "note": note, "retired": retired}),
    )
    .await?;
    change.commit().await?;
    let mut conn = ex.db.pool().acquire().await?;
    load_system(&mut conn, id).await
}
