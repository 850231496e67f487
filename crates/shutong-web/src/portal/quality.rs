//! 数据质量: a dataset's quality tab (its latest score and grade by dimension, the trend of its checks, every
//! rule's result with masked failing keys, its rules with the keeper's forms) and the overview of scores by
//! department and dataset. Every figure and permission comes from `shutong_quality`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use shutong_quality::{self as quality, CheckCause, QualityError, Rule, RuleKind};

use super::chart::{Bar, BarChart, ColumnChart};
use super::pages::{Flash, Layout, done, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

fn back_with(to: &str, e: &QualityError) -> Response {
    super::errors::back(to, super::errors::quality(e))
}

/// Points with two decimals, from hundredths.
fn points(bp: i64) -> String {
    format!("{:.2}", bp as f64 / 100.0)
}

/// What a rule tests, in words: its kind and what it reads.
fn describe(kind: &RuleKind) -> String {
    let items = kind.items().join("、");
    let what = match kind {
        RuleKind::Length { max, .. } => format!("不超过 {max} 个字符"),
        RuleKind::Identifier { scheme, .. } => format!("有效的{}", scheme.label_zh()),
        RuleKind::CodeList { values, .. } => {
            let shown: Vec<&str> = values.iter().take(8).map(String::as_str).collect();
            format!("取值为 {}{}", shown.join("、"), if values.len() > 8 { " 等" } else { "" })
        }
        RuleKind::Pattern { pattern, .. } => format!("符合 {pattern}"),
        RuleKind::Range { min, max, .. } => format!("介于 {} 与 {}", min.as_deref().unwrap_or("—"), max.as_deref().unwrap_or("—")),
        RuleKind::Freshness { max_age_days } => format!("最近归集不超过 {max_age_days} 天"),
        RuleKind::VolumeChange { max_change_percent } => format!("记录数变化不超过 {max_change_percent}%"),
        RuleKind::Required { .. } => "有值".into(),
        RuleKind::RegionCode { .. } => "现行 GB/T 2260 代码".into(),
        RuleKind::IdConsistency { .. } => "与公民身份号码一致".into(),
        RuleKind::Unique { .. } => "各记录取值不重复".into(),
        RuleKind::Reference { resource, .. } => format!("为 {resource} 的现有主键"),
    };
    if items.is_empty() { what } else { format!("{items}：{what}") }
}

pub struct DimensionRow {
    name: String,
    score: String,
    rules: i64,
}

pub struct ResultRow {
    rule: String,
    kind: &'static str,
    dimension: String,
    checked: i64,
    failing: i64,
    score: String,
    samples: String,
    detail: String,
}

pub struct RuleRow {
    key: String,
    kind: &'static str,
    what: String,
    dimension: String,
    origin: &'static str,
    retired: bool,
    retired_note: String,
}

pub struct CheckRow {
    id: i64,
    at: String,
    cause: &'static str,
    rows: i64,
    score: String,
    grade: &'static str,
}

#[derive(Template)]
#[template(path = "quality.html")]
struct QualityPage {
    l: Layout,
    code: String,
    name: String,
    checked: bool,
    score: String,
    grade: &'static str,
    checked_at: String,
    cause: &'static str,
    rows: i64,
    dimensions: Vec<DimensionRow>,
    trend: String,
    results: Vec<ResultRow>,
    rules: Vec<RuleRow>,
    checks: Vec<CheckRow>,
    can_keep: bool,
}

pub async fn dataset_quality(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Query(f): Query<Flash>,
) -> Response {
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let (ex, p) = (&state.exchange, &s.principal);
    let published = match shutong_exchange::published(ex, &code).await {
        Ok(pb) => pb,
        Err(_) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或尚未发布。"),
    };
    let rules = match quality::rules(ex, p, &code).await {
        Ok(r) => r,
        Err(QualityError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "资源不存在或尚未发布。"),
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::quality(&e).text),
    };
    let names: Vec<(quality::Dimension, String)> =
        quality::dimensions(ex).await.unwrap_or_default().into_iter().map(|d| (d.dimension, d.name)).collect();
    let dim_name = |d: quality::Dimension| names.iter().find(|(x, _)| *x == d).map(|(_, n)| n.clone()).unwrap_or(d.label_zh().into());
    let runs = quality::runs(ex, p, &code, None, 30).await.unwrap_or_default();
    let latest = match runs.first() {
        Some(r) => quality::run(ex, p, r.id).await.ok(),
        None => None,
    };
    let by_key = |key: &str| rules.iter().find(|r| r.key == key);
    let results = latest
        .as_ref()
        .map(|run| {
            run.results
                .iter()
                .map(|r| ResultRow {
                    rule: by_key(&r.rule_key).map(|x| describe(&x.kind)).unwrap_or_else(|| r.rule_key.clone()),
                    kind: by_key(&r.rule_key).map(|x| x.kind.label_zh()).unwrap_or(""),
                    dimension: dim_name(r.dimension),
                    checked: r.rows_checked,
                    failing: r.rows_failing,
                    score: points(r.score),
                    samples: r.samples.join("，"),
                    detail: r.detail.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    // The trend: the last checks, oldest first.
    let trend = if runs.len() >= 2 {
        let ordered: Vec<&quality::Run> = runs.iter().rev().collect();
        ColumnChart {
            testid: "chart-quality-trend",
            title: "质量得分（最近的检查）".into(),
            column_head: "检查时间",
            columns: ordered.iter().map(|r| (fmt_time(r.finished_at_ms), String::new())).collect(),
            series: vec![("得分".into(), ordered.iter().map(|r| r.score / 100).collect())],
        }
        .html()
    } else {
        String::new()
    };
    let rule_rows = rules
        .iter()
        .map(|r: &Rule| RuleRow {
            key: r.key.clone(),
            kind: r.kind.label_zh(),
            what: describe(&r.kind),
            dimension: dim_name(r.dimension),
            origin: r.origin.label_zh(),
            retired: r.retired_at_ms.is_some(),
            retired_note: match (&r.retired_at_ms, &r.retire_reason) {
                (Some(at), reason) => format!("{} 停用：{}", fmt_time(*at), reason.as_deref().unwrap_or("")),
                _ => String::new(),
            },
        })
        .collect();
    let checks = runs
        .iter()
        .map(|r| CheckRow {
            id: r.id.0,
            at: fmt_time(r.finished_at_ms),
            cause: r.cause.label_zh(),
            rows: r.rows_checked,
            score: points(r.score),
            grade: r.grade.label_zh(),
        })
        .collect();
    let can_keep = quality::may_keep(ex, p, &code).await.unwrap_or(false);
    let page = QualityPage {
        l: layout(&state, &s, &format!("{} · 数据质量", published.document.name), "catalog", f).await,
        code: code.to_string(),
        name: published.document.name.clone(),
        checked: latest.is_some(),
        score: latest.as_ref().map(|r| points(r.score)).unwrap_or_default(),
        grade: latest.as_ref().map(|r| r.grade.label_zh()).unwrap_or(""),
        checked_at: latest.as_ref().map(|r| fmt_time(r.finished_at_ms)).unwrap_or_default(),
        cause: latest.as_ref().map(|r| r.cause.label_zh()).unwrap_or(""),
        rows: latest.as_ref().map(|r| r.rows_checked).unwrap_or(0),
        dimensions: latest
            .as_ref()
            .map(|r| {
                r.dimensions.iter().map(|d| DimensionRow { name: dim_name(d.dimension), score: points(d.score), rules: d.rules }).collect()
            })
            .unwrap_or_default(),
        trend,
        results,
        rules: rule_rows,
        checks,
        can_keep,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct CheckForm {
    csrf: String,
}

/// 立即检查: the keeper asks for a check now.
pub async fn check_now(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Form(f): Form<CheckForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let back = format!("/catalog/{code}/quality");
    let regions = state.regions();
    match quality::check(&state.exchange, &s.principal, &s.ctx(), &regions, &code, CheckCause::Manual, None).await {
        Ok(_) => done(&back, "checked"),
        Err(e) => back_with(&back, &e),
    }
}

#[derive(Deserialize)]
pub struct RetireForm {
    csrf: String,
    key: String,
    #[serde(default)]
    reason: String,
}

/// 停用规则, with its reason.
pub async fn retire(
    State(state): State<AppState>,
    s: PortalSession,
    Path((class, seq)): Path<(String, String)>,
    Form(f): Form<RetireForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let code = match super::resource_code(&class, &seq) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let back = format!("/catalog/{code}/quality");
    match quality::retire_rule(&state.exchange, &s.principal, &s.ctx(), &code, &f.key, &f.reason).await {
        Ok(_) => done(&back, "retired"),
        Err(e) => back_with(&back, &e),
    }
}

pub struct DepartmentRow {
    name: String,
    datasets: i64,
    score: String,
    grade: &'static str,
}

pub struct DatasetRow {
    code: String,
    name: String,
    department: String,
    score: String,
    grade: &'static str,
    at: String,
}

#[derive(Template)]
#[template(path = "quality_overview.html")]
struct OverviewPage {
    l: Layout,
    chart: String,
    departments: Vec<DepartmentRow>,
    datasets: Vec<DatasetRow>,
    weights: Vec<(String, i64)>,
}

/// 数据质量概览: every department's score and its datasets' latest checks.
pub async fn overview(State(state): State<AppState>, s: PortalSession) -> Response {
    let ex = &state.exchange;
    let (datasets, departments) = match quality::scores(ex, None).await {
        Ok(x) => x,
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &super::errors::quality(&e).text),
    };
    let chart = if departments.is_empty() {
        String::new()
    } else {
        let mut bars: Vec<Bar> =
            departments.iter().map(|d| Bar { label: d.department_name.clone(), value: d.score / 100, href: None }).collect();
        bars.sort_by_key(|b| std::cmp::Reverse(b.value));
        BarChart { testid: "chart-quality-departments", title: "各部门数据质量得分".into(), bars }.html()
    };
    let dept_name = |id: i64| departments.iter().find(|d| d.department_id == id).map(|d| d.department_name.clone()).unwrap_or_default();
    let page = OverviewPage {
        l: layout(&state, &s, "数据质量", "quality", Flash::default()).await,
        chart,
        datasets: datasets
            .iter()
            .map(|d| DatasetRow {
                code: d.resource_code.clone(),
                name: d.resource_name.clone(),
                department: dept_name(d.department_id),
                score: points(d.score),
                grade: d.grade.label_zh(),
                at: fmt_time(d.checked_at_ms),
            })
            .collect(),
        departments: departments
            .iter()
            .map(|d| DepartmentRow {
                name: d.department_name.clone(),
                datasets: d.datasets,
                score: points(d.score),
                grade: d.grade.label_zh(),
            })
            .collect(),
        weights: quality::dimensions(ex).await.unwrap_or_default().into_iter().map(|d| (d.name, d.weight)).collect(),
    };
    render(&page)
}
