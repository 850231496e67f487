//! 工作台 (江苏方案 三(二)3): the home page by role. What waits for the user's department (requests to answer
//! with their due dates, grants about to expire, its own requests, its datasets' freshness, its open
//! catalog change events), what the sharing authority watches (overdue requests across the platform,
//! escalations, change events due), what auditors watch (the chain, the last verification, accesses that
//! delivered sensitive items in clear), and charts. Each part comes from its service under that service's
//! rule, the same functions the API's statistics endpoints serve; a part with nothing in it is not shown.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shutong_audit::AuditFilter;
use shutong_identity as identity;

use super::pages::{EventRow, Flash, Layout, event_row, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    l: Layout,
    figures: identity::IdentityFigures,
    audit_total: i64,
    node_name: String,
    node_level: &'static str,
    node_zone: &'static str,
    node_region: String,
    backend: &'static str,
    events_title: &'static str,
    events: Vec<EventRow>,
    /// Charts (`chart`), each left out when its service refuses the user: requests by state, data accesses
    /// per day by method, audit events per day.
    charts: Vec<String>,
    home: Home,
}

/// One line of a home page's list: what, with whom, until when, and where to act on it.
pub struct HomeRow {
    href: String,
    title: String,
    counterpart: String,
    due: String,
    overdue: bool,
}

/// 工作台 by role (江苏方案 三(二)3): what waits for the user's department (to answer, with due dates), the
/// grants it holds that expire soon, its own recent requests as consumer, every overdue request for the
/// authority, and the audit chain for auditors. Each part comes from its service under its rule, and a part
/// with nothing in it is not shown.
pub struct Home {
    waiting: Vec<HomeRow>,
    expiring: Vec<HomeRow>,
    mine: Vec<HomeRow>,
    overdue: Vec<HomeRow>,
    /// Requests in 协商, 协调 or before the leading group (the authority's).
    escalations: Vec<HomeRow>,
    /// Open catalog change events (目录更新事由), due within 15 working days: the department's own, or all.
    change_events: Vec<HomeRow>,
    /// Datasets against their 更新周期, most overdue first, and how many are overdue or never loaded.
    datasets: Vec<HomeRow>,
    datasets_late: usize,
    datasets_total: usize,
    chain: Option<shutong_audit::ChainStatus>,
    /// The last 核验 on record: when, by whom, and what it found.
    last_verify: Option<(String, String, bool, String)>,
    /// Accesses that delivered sensitive items in clear text (auditors').
    sensitive: Vec<EventRow>,
}

async fn home(state: &AppState, s: &PortalSession) -> Home {
    let mut h = Home {
        waiting: Vec::new(),
        expiring: Vec::new(),
        mine: Vec::new(),
        overdue: Vec::new(),
        escalations: Vec::new(),
        change_events: Vec::new(),
        datasets: Vec::new(),
        datasets_late: 0,
        datasets_total: 0,
        chain: None,
        last_verify: None,
        sensitive: Vec::new(),
    };
    let sharing = state.sharing();
    let row = |i: &shutong_sharing::InboxItem| HomeRow {
        href: match (i.request_id, i.grant_id) {
            (Some(r), _) => format!("/requests/{r}"),
            (None, Some(g)) => format!("/grants/{g}"),
            (None, None) => format!("/catalog/{}", i.resource_code),
        },
        title: format!("{} · {}", i.title, i.resource_name),
        counterpart: i.counterpart.clone(),
        due: match (i.due_on, i.workdays_left) {
            (Some(d), Some(n)) if n >= 0 => format!("{d}（剩 {n} 个工作日）"),
            (Some(d), Some(n)) => format!("{d}（逾期 {} 个工作日）", -n),
            (Some(d), None) => d.to_string(),
            _ => "—".into(),
        },
        overdue: i.overdue,
    };
    if let Ok(inbox) = shutong_sharing::inbox(&sharing, &s.principal).await {
        h.waiting = inbox.waiting.iter().filter(|i| i.kind != "grant_expiring").take(10).map(row).collect();
        h.expiring = inbox.waiting.iter().filter(|i| i.kind == "grant_expiring").take(10).map(row).collect();
        h.overdue = inbox.overdue.iter().take(10).map(row).collect();
    }
    let mine = shutong_sharing::RequestFilter { side: Some(shutong_sharing::Side::Consumer), limit: 5, ..Default::default() };
    if s.principal.department_id.is_some()
        && let Ok(list) = shutong_sharing::list_requests(&sharing, &s.principal, &mine).await
    {
        h.mine = list
            .iter()
            .map(|r| HomeRow {
                href: format!("/requests/{}", r.id),
                title: format!("共享申请 {} · {}", r.id, r.resource_name),
                counterpart: r.provider_name.clone(),
                due: r.status.label_zh().to_string(),
                overdue: false,
            })
            .collect();
    }
    let authority = shutong_catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false);
    if authority {
        for status in [
            shutong_sharing::RequestStatus::Negotiating,
            shutong_sharing::RequestStatus::Coordinating,
            shutong_sharing::RequestStatus::LeadingGroup,
        ] {
            let f = shutong_sharing::RequestFilter { status: Some(status), limit: 10, ..Default::default() };
            if let Ok(list) = shutong_sharing::list_requests(&sharing, &s.principal, &f).await {
                h.escalations.extend(list.iter().map(|r| HomeRow {
                    href: format!("/requests/{}", r.id),
                    title: format!("共享申请 {} · {}", r.id, r.resource_name),
                    counterpart: format!("{} → {}", r.provider_name, r.consumer_name),
                    due: format!("{}，{} 前", r.status.label_zh(), r.stage_due_on),
                    overdue: r.stage_due_on < state.clock.today(),
                }));
            }
        }
        h.escalations.truncate(10);
    }
    // Change events: the authority follows every department's, a department's staff their own.
    let scope = if authority { Some(None) } else { s.principal.department_id.map(Some) };
    if let Some(department) = scope
        && let Ok(events) = shutong_catalog::list_change_events(&state.db, &state.clock, department, false).await
    {
        h.change_events = events
            .iter()
            .filter(|e| e.resolved_at_ms.is_none())
            .take(10)
            .map(|e| HomeRow {
                href: "/catalog/stats".into(),
                title: format!("{}：{}", if e.kind == "law_revised" { "法律法规修订" } else { "行政管理职能变化" }, e.description),
                counterpart: e.department_name.clone(),
                due: format!("{} 前更新目录", e.due_on),
                overdue: e.overdue,
            })
            .collect();
    }
    if let Ok(list) = shutong_exchange::figures::freshness(&state.exchange, &s.principal).await {
        use shutong_exchange::figures::Freshness;
        h.datasets_total = list.len();
        h.datasets_late = list.iter().filter(|d| matches!(d.freshness, Freshness::Overdue | Freshness::NeverLoaded)).count();
        h.datasets = list
            .iter()
            .take(10)
            .map(|d| HomeRow {
                href: format!("/catalog/{}/data", d.resource_code),
                title: format!("{} · {}", d.resource_name, d.update_cycle.label_zh()),
                counterpart: d.last_batch_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
                due: match d.due_on {
                    Some(due) => format!("{}（{due} 前应更新）", d.freshness.label_zh()),
                    None => d.freshness.label_zh().to_string(),
                },
                overdue: d.freshness == Freshness::Overdue,
            })
            .collect();
    }
    h.chain = shutong_audit::status(&state.db, &s.principal).await.ok();
    if h.chain.is_some() {
        let last = AuditFilter { action: Some(shutong_audit::Action::AuditVerify.code().into()), limit: 1, ..Default::default() };
        h.last_verify = shutong_audit::list(&state.db, &s.principal, &last).await.ok().and_then(|l| l.into_iter().next()).map(|e| {
            let ok = e.detail.get("ok").and_then(serde_json::Value::as_bool).unwrap_or(false);
            let through = e.detail.get("through").and_then(serde_json::Value::as_i64).unwrap_or(0);
            let found = if ok {
                format!("通过，核验至第 {through} 号")
            } else {
                let at = e.detail.pointer("/failure/chain_seq").and_then(serde_json::Value::as_i64).unwrap_or(0);
                format!("未通过：链位置 {at} 不符")
            };
            (fmt_time(e.at_ms), e.actor.clone(), ok, found)
        });
        let sensitive = AuditFilter { clear_text: true, limit: 10, ..Default::default() };
        h.sensitive = shutong_audit::list(&state.db, &s.principal, &sensitive).await.unwrap_or_default().iter().map(event_row).collect();
    }
    h
}

/// The dashboard's charts for this user, each asked of its service under that service's rule.
async fn dashboard_charts(state: &AppState, s: &PortalSession) -> Vec<String> {
    use super::chart::{Bar, BarChart, ColumnChart, DayChart, day_series};
    let mut charts = Vec::new();
    if let Ok(st) = shutong_sharing::stats(&state.sharing(), &s.principal).await {
        let t = &st.totals;
        let bars = [
            ("待答复", t.pending),
            ("其中逾期", t.overdue_now),
            ("协商协调中", t.in_escalation),
            ("已同意", t.approved),
            ("不予同意", t.rejected),
            ("已撤回", t.withdrawn),
            ("订阅（无条件共享）", t.subscriptions),
        ]
        .into_iter()
        .map(|(label, value)| {
            let href = if label == "其中逾期" { "/requests?side=all&overdue=1" } else { "/requests" };
            Bar { label: label.into(), value, href: Some(href.into()) }
        })
        .collect();
        let on_time = t.answered_on_time + t.answered_late;
        let rate = if on_time == 0 { "—".to_string() } else { format!("{:.0}%", t.answered_on_time as f64 * 100.0 / on_time as f64) };
        charts.push(BarChart { testid: "chart-requests", title: format!("共享申请（按状态；按时答复率 {rate}）"), bars }.html());
        let columns = st
            .months
            .iter()
            .map(|m| {
                let all = m.answered_on_time + m.answered_late;
                let rate = if all == 0 { "—".to_string() } else { format!("{:.0}%", m.answered_on_time as f64 * 100.0 / all as f64) };
                (format!("{}（按时率 {rate}）", m.month), m.month.get(5..).map(|mm| format!("{mm}月")).unwrap_or_default())
            })
            .collect();
        let series = vec![
            ("按时答复".to_string(), st.months.iter().map(|m| m.answered_on_time).collect()),
            ("逾期或超期未答复".to_string(), st.months.iter().map(|m| m.answered_late).collect()),
        ];
        charts.push(
            ColumnChart {
                testid: "chart-on-time",
                title: "按时答复（近 12 个月，按到期月份）".into(),
                column_head: "月份",
                columns,
                series,
            }
            .html(),
        );
    }
    let today = state.clock.today();
    let days: Vec<chrono::NaiveDate> = (0..30).rev().filter_map(|i| today.checked_sub_days(chrono::Days::new(i))).collect();
    // One count of the trail per day and action feeds both day charts.
    if let Ok(counts) = shutong_audit::figures::events_per_day(&state.db, &s.principal, today, 30).await {
        let order: Vec<(shutong_audit::Action, String)> =
            shutong_audit::figures::DATA_ACCESSES.iter().map(|a| (*a, a.label_zh().to_string())).collect();
        let series = day_series(&days, &order, counts.iter().map(|c| (c.day, c.action, c.events)));
        charts.push(DayChart { testid: "chart-accesses", title: "数据访问（近 30 日，按方式）".into(), days: days.clone(), series }.html());
        let series = day_series(&days, &[((), "审计事件".to_string())], counts.iter().map(|c| (c.day, (), c.events)));
        charts.push(DayChart { testid: "chart-audit", title: "审计事件（近 30 日）".into(), days, series }.html());
    }
    if let Ok(top) = shutong_exchange::figures::top_consumed(&state.exchange, &s.principal, today, 30, 10).await {
        let bars = top
            .into_iter()
            .map(|t| Bar {
                label: if t.resource_name.is_empty() { t.resource_code.clone() } else { t.resource_name },
                value: t.accesses,
                href: Some(format!("/catalog/{}", t.resource_code)),
            })
            .collect();
        charts.push(BarChart { testid: "chart-top-resources", title: "使用最多的资源（近 30 日，数据访问次数）".into(), bars }.html());
    }
    charts
}

pub async fn dashboard(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let figures = match identity::figures(&state.db).await {
        Ok(f) => f,
        Err(_) => return plain_error(StatusCode::SERVICE_UNAVAILABLE, "数据库暂时不可用，请稍后再试。"),
    };
    let audit_total = shutong_audit::count(&state.db).await.unwrap_or(0);
    let node = identity::node_identity(&state.db).await.ok().flatten();
    let regions = state.regions();
    let (filter, title) = if s.principal.can_read_audit() {
        (AuditFilter { limit: 10, ..Default::default() }, "最近操作（全平台）")
    } else {
        (AuditFilter { limit: 10, department_id: s.principal.department_id.map(|d| d.0), ..Default::default() }, "最近操作（本部门）")
    };
    let events = shutong_audit::list(&state.db, &s.principal, &filter).await.unwrap_or_default().iter().map(event_row).collect();
    let page = DashboardPage {
        l: layout(&state, &s, "工作台", "dashboard", flash).await,
        figures,
        audit_total,
        node_name: node.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        node_level: node.as_ref().map(|n| n.level.label_zh()).unwrap_or(""),
        node_zone: node.as_ref().map(|n| n.zone.label_zh()).unwrap_or(""),
        node_region: node
            .as_ref()
            .map(|n| format!("{} {}", n.region_code, regions.lookup(&n.region_code).map(|(_, e)| e.name.clone()).unwrap_or_default()))
            .unwrap_or_default(),
        backend: if state.db.backend() == shutong_store::Backend::Sqlite { "SQLite（内嵌）" } else { "PostgreSQL" },
        events_title: title,
        events,
        charts: dashboard_charts(&state, &s).await,
        home: home(&state, &s).await,
    };
    render(&page)
}
