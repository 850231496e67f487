//! 全站搜索: the search box in the bar. One query, three answers, each from its own service and under its
//! rule: catalog resources (the search index, published entries), sharing requests the user may see (by
//! number, or by the resource's code), and departments (by name, 统一社会信用代码 or region code).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::PortalSession;
use super::pages::{Flash, Layout, layout, render};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
}

pub struct Found {
    href: String,
    title: String,
    note: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    l: Layout,
    q: String,
    resources: Vec<Found>,
    requests: Vec<Found>,
    departments: Vec<Found>,
}

pub async fn search(State(state): State<AppState>, s: PortalSession, Query(p): Query<SearchParams>) -> Response {
    let q: String = p.q.trim().chars().take(100).collect();
    let (mut resources, mut requests, mut departments) = (Vec::new(), Vec::new(), Vec::new());
    if !q.is_empty() {
        let req = shutong_catalog::search::SearchRequest { q: q.clone(), filters: Vec::new(), limit: 10, cursor: None };
        if let Ok(r) = state.catalog_index.search(&req) {
            resources = r
                .hits
                .iter()
                .map(|h| Found {
                    href: format!("/catalog/{}", h.code),
                    title: h.name.clone(),
                    note: format!("{} · {}", h.code, h.provider_name),
                })
                .collect();
        }
        let sharing = state.sharing();
        let view = |r: &shutong_sharing::RequestView| Found {
            href: format!("/requests/{}", r.id),
            title: format!("共享申请 {} · {}", r.id, r.resource_name),
            note: format!("{} → {} · {}", r.consumer_name, r.provider_name, r.status.label_zh()),
        };
        if let Ok(id) = q.parse::<i64>()
            && let Ok(d) = shutong_sharing::get_request(&sharing, &s.principal, shutong_sharing::RequestId(id)).await
        {
            requests.push(view(&d.request));
        }
        if let Ok(code) = shutong_catalog::ResourceCode::parse(&q) {
            let f = shutong_sharing::RequestFilter { resource_code: Some(code.to_string()), limit: 20, ..Default::default() };
            if let Ok(list) = shutong_sharing::list_requests(&sharing, &s.principal, &f).await {
                requests.extend(list.iter().map(view));
            }
        }
        if let Ok(list) = shutong_identity::find_departments(&state.db, &q, 20).await {
            departments = list
                .iter()
                .map(|d| Found { href: format!("/departments/{}", d.id.0), title: d.name.clone(), note: d.credit_code.clone() })
                .collect();
        }
    }
    let title = if q.is_empty() { "搜索".to_string() } else { format!("搜索：{q}") };
    render(&SearchPage { l: layout(&state, &s, &title, "search", Flash::default()).await, q, resources, requests, departments })
}
