//! The HTTP API under `/api/v1`, and its OpenAPI document.

pub mod auth;
pub mod calendar;
pub mod catalog;
pub mod contract;
pub mod data;
pub mod departments;
pub mod nodes;
pub mod objections;
pub mod quality;
pub mod reference;
pub mod sharing;
pub mod system;
pub mod systems;
pub mod tokens;
pub mod users;
pub mod views;

use axum::Router;
use axum::routing::{delete, get, post, put};
use utoipa::OpenApi;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "shutong 数通 API", description = "政务数据共享交换平台 — government data sharing and exchange platform. \
        Errors share one envelope: {\"error\": {\"code\", \"message\", \"field\", \"request_id\"}}."),
    paths(
        system::healthz, system::readyz, system::metrics, system::node, system::list_audit_events, system::audit_chain, system::audit_verify, system::audit_export, system::audit_archives, system::audit_figures,
        auth::login, auth::logout, auth::me,
        departments::list_departments, departments::create_department, departments::get_department, departments::update_department,
        users::list_users, users::create_user, users::get_user, users::update_user, users::set_password, users::set_sm2_key, users::assign_role, users::revoke_role,
        tokens::list_tokens, tokens::create_token, tokens::revoke_token,
        reference::check_id_number, reference::check_credit_code, reference::check_org_code, reference::validate_batch,
        reference::get_region, reference::list_regions, reference::upsert_region, reference::mask, reference::list_mask_rules,
        calendar::is_workday, calendar::add_workdays, calendar::between, calendar::list_years, calendar::get_year, calendar::import_year,
        catalog::create_resource, catalog::list_resources, catalog::get_resource, catalog::update_resource, catalog::list_versions,
        catalog::submit_resource, catalog::review_resource, catalog::revise_resource, catalog::withdraw_resource, catalog::resource_history,
        catalog::list_classifications, catalog::create_classification, catalog::stats, catalog::create_change_event, catalog::list_change_events, catalog::search, catalog::import, catalog::export, catalog::create_project, catalog::list_projects, catalog::accept_project,
        sharing::subscribe, sharing::create_request, sharing::list_requests, sharing::get_request, sharing::approve, sharing::reject,
        sharing::withdraw, sharing::escalate, sharing::add_message, sharing::stats, sharing::list_grants, sharing::get_grant,
        sharing::revoke_grant, sharing::renew_grant, sharing::inbox, sharing::mark_read, sharing::sweep,
        data::freshness, data::get_dataset, data::bind, data::post_batch, data::list_batches, data::get_batch, data::get_record, data::query,
        data::export, data::changes, data::service_proxy, data::exemption_check, data::list_files, data::upload_file, data::download_file, data::delete_file,
        nodes::heartbeat, nodes::list_nodes, nodes::get_node,
        quality::list_dimensions, quality::set_dimension, quality::list_rules, quality::add_rule, quality::retire_rule,
        quality::run_check, quality::list_checks, quality::get_check, quality::scores,
        objections::list_reasons, objections::set_reason, objections::list, objections::file, objections::get, objections::put_evidence,
        objections::get_evidence, objections::answer, objections::accept, objections::escalate, objections::rule, objections::figures,
        objections::list_elements, objections::declare_element, objections::map_element, objections::reconcile, objections::list_runs,
        objections::get_run, objections::object_to_conflict, objections::list_base_templates, objections::compile_base,
        objections::list_themes, objections::create_theme, objections::get_theme, objections::refresh_theme,
        systems::list_systems, systems::create_system, systems::get_system, systems::update_system, systems::system_history,
        systems::zombie_verdict, systems::zombie_verdicts, systems::zombie_reviews, systems::respond_zombie, systems::decide_zombie,
        systems::plan_cleanup, systems::record_cleanup, systems::asset_register,
        systems::inventory_template, systems::export_inventory, systems::import_inventory, systems::export_asset_register,
        systems::list_reports, systems::save_report, systems::get_report, systems::submit_report, systems::review_report,
        systems::report_pdf, systems::report_lists,
        systems::list_projects, systems::file_project, systems::get_project, systems::advance_project,
    ),
    tags(
        (name = "auth", description = "身份鉴别: login, sessions, the caller"),
        (name = "departments", description = "政务部门"),
        (name = "users", description = "用户与角色"),
        (name = "tokens", description = "系统 API 令牌"),
        (name = "audit", description = "审计日志"),
        (name = "reference", description = "参考数据: 身份证号, 统一社会信用代码, 组织机构代码, 行政区划, 脱敏"),
        (name = "calendar", description = "工作日历"),
        (name = "catalog", description = "政务信息资源目录: resources, versions, review, classification, change events, statistics"),
        (name = "sharing", description = "共享申请与授权: subscriptions, requests, answers within 10 working days, 协商/协调/领导小组, grants, inbox"),
        (name = "data", description = "共享交换: 挂接, 数据归集 (batches), 联机查询, 批量下载, 订阅 (change feed), 系统对接 (proxy), 免提交核验"),
        (name = "quality", description = "数据质量: 质量维度与权重 (GB/T 36344), 质量规则, 质量检查与结果, 数据集与部门得分 (办法 第十七条); 疑义校核 (办法 第十八条); 一数一源 (办法 第四条(三)); 基础库与主题库 (办法 第十一条)"),
        (name = "systems", description = "信息系统与项目: 信息系统台账, 僵尸系统研判与清理, 数据资产登记, 全口径备案, 审核关口 (办法 第二十二条)"),
        (name = "system", description = "health, readiness, metrics, node"),
    )
)]
pub struct ApiDoc;

/// The largest catalog file accepted through the API, bytes.
pub const IMPORT_LIMIT: usize = 64 << 20;

/// The API routes (without the docs, which the app adds).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/node", get(system::node))
        .route("/api/v1/audit/events", get(system::list_audit_events))
        .route("/api/v1/audit/chain", get(system::audit_chain))
        .route("/api/v1/audit/verify", post(system::audit_verify))
        .route("/api/v1/audit/export", get(system::audit_export))
        .route("/api/v1/audit/archives", get(system::audit_archives))
        .route("/api/v1/audit/figures", get(system::audit_figures))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/departments", get(departments::list_departments).post(departments::create_department))
        .route("/api/v1/departments/{id}", get(departments::get_department).patch(departments::update_department))
        .route("/api/v1/users", get(users::list_users).post(users::create_user))
        .route("/api/v1/users/{id}", get(users::get_user).patch(users::update_user))
        .route("/api/v1/users/{id}/password", post(users::set_password))
        .route("/api/v1/users/{id}/sm2-key", put(users::set_sm2_key))
        .route("/api/v1/users/{id}/roles", post(users::assign_role))
        .route("/api/v1/users/{id}/roles/{assignment_id}", delete(users::revoke_role))
        .route("/api/v1/tokens", get(tokens::list_tokens).post(tokens::create_token))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke_token))
        .route("/api/v1/reference/id-numbers/{value}", get(reference::check_id_number))
        .route("/api/v1/reference/credit-codes/{value}", get(reference::check_credit_code))
        .route("/api/v1/reference/org-codes/{value}", get(reference::check_org_code))
        .route("/api/v1/reference/validate", post(reference::validate_batch))
        .route("/api/v1/reference/regions", get(reference::list_regions))
        .route("/api/v1/reference/regions/{code}", get(reference::get_region).put(reference::upsert_region))
        .route("/api/v1/reference/mask", post(reference::mask))
        .route("/api/v1/reference/masking", get(reference::list_mask_rules))
        .route("/api/v1/calendar/workdays/{date}", get(calendar::is_workday))
        .route("/api/v1/calendar/add-workdays", get(calendar::add_workdays))
        .route("/api/v1/calendar/between", get(calendar::between))
        .route("/api/v1/calendar/years", get(calendar::list_years))
        .route("/api/v1/calendar/years/{year}", get(calendar::get_year).put(calendar::import_year))
        .route("/api/v1/catalog/resources", get(catalog::list_resources).post(catalog::create_resource))
        .route("/api/v1/catalog/resources/{classification}/{sequence}", get(catalog::get_resource).put(catalog::update_resource))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/versions", get(catalog::list_versions))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/history", get(catalog::resource_history))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/submit", post(catalog::submit_resource))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/review", post(catalog::review_resource))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/revise", post(catalog::revise_resource))
        .route("/api/v1/catalog/resources/{classification}/{sequence}/withdraw", post(catalog::withdraw_resource))
        .route("/api/v1/catalog/classifications", get(catalog::list_classifications).post(catalog::create_classification))
        .route("/api/v1/catalog/stats", get(catalog::stats))
        .route("/api/v1/catalog/search", get(catalog::search))
        // Files are larger than JSON bodies; the handler checks the declared length before reading.
        .route("/api/v1/catalog/import", post(catalog::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)))
        .route("/api/v1/catalog/export", get(catalog::export))
        .route("/api/v1/catalog/projects", get(catalog::list_projects).post(catalog::create_project))
        .route("/api/v1/catalog/projects/{id}/accept", post(catalog::accept_project))
        .route("/api/v1/catalog/change-events", get(catalog::list_change_events).post(catalog::create_change_event))
        .route("/api/v1/subscriptions", post(sharing::subscribe))
        .route("/api/v1/requests", get(sharing::list_requests).post(sharing::create_request))
        .route("/api/v1/requests/stats", get(sharing::stats))
        .route("/api/v1/requests/{id}", get(sharing::get_request))
        .route("/api/v1/requests/{id}/approve", post(sharing::approve))
        .route("/api/v1/requests/{id}/reject", post(sharing::reject))
        .route("/api/v1/requests/{id}/withdraw", post(sharing::withdraw))
        .route("/api/v1/requests/{id}/escalate", post(sharing::escalate))
        .route("/api/v1/requests/{id}/messages", post(sharing::add_message))
        .route("/api/v1/grants", get(sharing::list_grants))
        .route("/api/v1/grants/{id}", get(sharing::get_grant))
        .route("/api/v1/grants/{id}/revoke", post(sharing::revoke_grant))
        .route("/api/v1/grants/{id}/renew", post(sharing::renew_grant))
        .route("/api/v1/inbox", get(sharing::inbox))
        .route("/api/v1/inbox/read", post(sharing::mark_read))
        .route("/api/v1/sharing/sweep", post(sharing::sweep))
        .route("/api/v1/data/freshness", get(data::freshness))
        .route("/api/v1/data/{classification}/{sequence}", get(data::get_dataset))
        .route("/api/v1/data/{classification}/{sequence}/binding", axum::routing::put(data::bind))
        .route("/api/v1/data/{classification}/{sequence}/batches", get(data::list_batches).post(data::post_batch))
        .route("/api/v1/data/{classification}/{sequence}/batches/{id}", get(data::get_batch))
        .route("/api/v1/data/{classification}/{sequence}/records/{key}", get(data::get_record))
        .route("/api/v1/data/{classification}/{sequence}/query", post(data::query))
        .route("/api/v1/data/{classification}/{sequence}/export", get(data::export))
        .route("/api/v1/data/{classification}/{sequence}/changes", get(data::changes))
        .route(
            "/api/v1/data/{classification}/{sequence}/files",
            get(data::list_files).post(data::upload_file).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/data/{classification}/{sequence}/files/{id}", get(data::download_file).delete(data::delete_file))
        .route("/api/v1/services/{classification}/{sequence}/{*path}", axum::routing::any(data::service_proxy))
        .route("/api/v1/data/{classification}/{sequence}/quality/rules", get(quality::list_rules).post(quality::add_rule))
        .route("/api/v1/data/{classification}/{sequence}/quality/rules/retire", post(quality::retire_rule))
        .route("/api/v1/data/{classification}/{sequence}/quality/checks", get(quality::list_checks).post(quality::run_check))
        .route("/api/v1/quality/dimensions", get(quality::list_dimensions))
        .route("/api/v1/quality/dimensions/{dimension}", put(quality::set_dimension))
        .route("/api/v1/quality/checks/{id}", get(quality::get_check))
        .route("/api/v1/quality/scores", get(quality::scores))
        .route("/api/v1/quality/objection-reasons", get(objections::list_reasons))
        .route("/api/v1/quality/objection-reasons/{code}", put(objections::set_reason))
        .route("/api/v1/quality/objection-figures", get(objections::figures))
        .route("/api/v1/quality/objections", get(objections::list).post(objections::file))
        .route("/api/v1/quality/objections/{id}", get(objections::get))
        .route(
            "/api/v1/quality/objections/{id}/evidence",
            get(objections::get_evidence).put(objections::put_evidence).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/quality/objections/{id}/answer", post(objections::answer))
        .route("/api/v1/quality/objections/{id}/accept", post(objections::accept))
        .route("/api/v1/quality/objections/{id}/escalate", post(objections::escalate))
        .route("/api/v1/quality/objections/{id}/rule", post(objections::rule))
        .route("/api/v1/quality/elements", get(objections::list_elements).post(objections::declare_element))
        .route("/api/v1/quality/elements/{id}/mappings/{classification}/{sequence}", put(objections::map_element))
        .route("/api/v1/quality/elements/{id}/reconcile", post(objections::reconcile))
        .route("/api/v1/quality/reconciliations", get(objections::list_runs))
        .route("/api/v1/quality/reconciliations/{id}", get(objections::get_run))
        .route("/api/v1/quality/conflicts/{id}/objection", post(objections::object_to_conflict))
        .route("/api/v1/quality/base-templates", get(objections::list_base_templates))
        .route("/api/v1/quality/base-templates/{code}/compile", post(objections::compile_base))
        .route("/api/v1/quality/themes", get(objections::list_themes).post(objections::create_theme))
        .route("/api/v1/quality/themes/{id}", get(objections::get_theme))
        .route("/api/v1/quality/themes/{id}/refresh", post(objections::refresh_theme))
        .route("/api/v1/exemptions/check", post(data::exemption_check))
        .route("/api/v1/nodes", get(nodes::list_nodes))
        .route("/api/v1/nodes/heartbeat", post(nodes::heartbeat))
        .route("/api/v1/nodes/{id}", get(nodes::get_node))
        .route("/api/v1/systems", get(systems::list_systems).post(systems::create_system))
        .route("/api/v1/systems/zombies", get(systems::zombie_verdicts))
        .route("/api/v1/systems/template", get(systems::inventory_template))
        .route("/api/v1/systems/export", get(systems::export_inventory))
        .route(
            "/api/v1/systems/import",
            post(systems::import_inventory).layer(axum::extract::DefaultBodyLimit::max(systems::INVENTORY_LIMIT)),
        )
        .route("/api/v1/systems/{id}", get(systems::get_system).put(systems::update_system))
        .route("/api/v1/systems/{id}/history", get(systems::system_history))
        .route("/api/v1/systems/{id}/zombie", get(systems::zombie_verdict))
        .route("/api/v1/systems/{id}/zombie/reviews", get(systems::zombie_reviews))
        .route("/api/v1/systems/{id}/zombie/response", post(systems::respond_zombie))
        .route("/api/v1/systems/{id}/zombie/decision", post(systems::decide_zombie))
        .route("/api/v1/systems/{id}/cleanup", put(systems::plan_cleanup))
        .route("/api/v1/systems/{id}/cleanup/progress", post(systems::record_cleanup))
        .route("/api/v1/departments/{id}/asset-register", get(systems::asset_register))
        .route("/api/v1/departments/{id}/asset-register/export", get(systems::export_asset_register))
        .route("/api/v1/departments/{id}/self-inspection", get(systems::list_reports).post(systems::save_report))
        .route("/api/v1/departments/{id}/self-inspection/{version}", get(systems::get_report))
        .route("/api/v1/departments/{id}/self-inspection/{version}/submit", post(systems::submit_report))
        .route("/api/v1/departments/{id}/self-inspection/{version}/review", post(systems::review_report))
        .route("/api/v1/departments/{id}/self-inspection/{version}/report.pdf", get(systems::report_pdf))
        .route("/api/v1/departments/{id}/self-inspection/{version}/lists.xlsx", get(systems::report_lists))
        .route("/api/v1/projects", get(systems::list_projects).post(systems::file_project))
        .route("/api/v1/projects/{id}", get(systems::get_project))
        .route("/api/v1/projects/{id}/advance", post(systems::advance_project))
}
