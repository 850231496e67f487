//! 前置机: the exchange nodes the user may see, with their state (silent, version, outbox, last error) and
//! each flow's lag; one node's page with its flows.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use shutong_exchange::nodes::{self, NodeView};

use super::pages::{Flash, Layout, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

pub struct NodeRow {
    id: i64,
    name: String,
    department: String,
    account: String,
    version: String,
    last_seen: String,
    last_transfer: String,
    silent: bool,
    flows: usize,
    outbox: String,
    error: String,
}

pub struct FlowRow {
    name: String,
    direction: &'static str,
    resource: String,
    state: &'static str,
    stopped: bool,
    lag_rows: i64,
    lag_seconds: i64,
    rows_total: i64,
    rejects: i64,
    last_transfer: String,
    error: String,
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn row(n: &NodeView) -> NodeRow {
    NodeRow {
        id: n.id.0,
        name: n.name.clone(),
        department: n.department_name.clone(),
        account: n.account.clone(),
        version: n.version.clone(),
        last_seen: fmt_time(n.last_seen_ms),
        last_transfer: n.last_transfer_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
        silent: n.silent,
        flows: n.report.flows.len(),
        outbox: format!("{} 批 / {}", n.report.outbox_batches, mib(n.report.outbox_bytes)),
        error: n.last_error.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "nodes.html")]
struct NodesPage {
    l: Layout,
    nodes: Vec<NodeRow>,
}

pub async fn nodes_list(State(state): State<AppState>, s: PortalSession) -> Response {
    let list = match nodes::list_nodes(&state.exchange, &s.principal, None).await {
        Ok(l) => l,
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::exchange(&e).text),
    };
    let page = NodesPage { l: layout(&state, &s, "前置机", "nodes", Flash::default()).await, nodes: list.iter().map(row).collect() };
    render(&page)
}

#[derive(Template)]
#[template(path = "node.html")]
struct NodePage {
    l: Layout,
    n: NodeRow,
    started: String,
    outbox_limit: String,
    flows: Vec<FlowRow>,
}

pub async fn node(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>) -> Response {
    let n = match nodes::get_node(&state.exchange, &s.principal, nodes::NodeId(id)).await {
        Ok(n) => n,
        Err(e) => return plain_error(StatusCode::NOT_FOUND, &super::errors::exchange(&e).text),
    };
    let flows = n
        .report
        .flows
        .iter()
        .map(|f| FlowRow {
            name: f.name.clone(),
            direction: f.direction.label_zh(),
            resource: f.resource_code.clone(),
            state: f.state.label_zh(),
            stopped: f.state == nodes::FlowState::Stopped,
            lag_rows: f.lag_rows,
            lag_seconds: f.lag_seconds,
            rows_total: f.rows_total,
            rejects: f.rejects,
            last_transfer: f.last_transfer_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
            error: f.error.clone().unwrap_or_default(),
        })
        .collect();
    let page = NodePage {
        l: layout(&state, &s, &format!("前置机 {}", n.name), "nodes", Flash::default()).await,
        started: fmt_time(n.report.started_at_ms),
        outbox_limit: mib(n.report.outbox_limit_bytes),
        n: row(&n),
        flows,
    };
    render(&page)
}
