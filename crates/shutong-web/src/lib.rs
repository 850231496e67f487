#![doc = include_str!("../README.md")]

pub mod api;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod portal;
pub mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// The whole application: API, OpenAPI document and docs page, portal, and the layers around them.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    Router::new()
        .merge(api::routes())
        .merge(portal::routes())
        .merge(SwaggerUi::new("/api/v1/docs").external_url_unchecked("/api/v1/openapi.json", api::contract::document()))
        .route_layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::request_guard))
        .layer(axum::middleware::from_fn(middleware::envelope_plain_errors))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}

/// The OpenAPI document as JSON (for `shutong openapi` and tests).
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(&api::contract::document()).unwrap_or_default()
}

#[cfg(test)]
mod tidy {
    /// The portal's CSP forbids inline styles and scripts: the templates must not rely on them. The one
    /// script is the portal's own file, loaded from this origin by the base template.
    #[test]
    fn templates_have_no_inline_style_or_script() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap().replace("<script src=\"/static/portal.js\" defer></script>", "");
            for forbidden in [" style=", "<style", "<script", "javascript:", " onclick=", " onsubmit="] {
                assert!(!text.contains(forbidden), "{} contains {forbidden:?}", path.display());
            }
        }
    }
}
