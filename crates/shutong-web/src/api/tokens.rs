//! API tokens for systems.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shutong_api_types::*;
use shutong_identity::{self as identity, TokenId, UserId};

use super::views::token_view;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only tokens of this user.
    pub user_id: Option<i64>,
}

/// Lists the tokens the caller may see (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), params(TokenQuery),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_tokens(State(state): State<AppState>, caller: Caller, Query(q): Query<TokenQuery>) -> ApiResult<axum::Json<TokenList>> {
    let tokens = identity::list_tokens(&state.db, &caller.principal, q.user_id.map(UserId)).await?;
    Ok(axum::Json(TokenList { tokens: tokens.iter().map(token_view).collect() }))
}

/// Issues a token; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let user = match req.user_id {
        Some(u) => UserId(u),
        None => caller.principal.user_id.ok_or_else(|| ApiError::validation("user_id", "user_id: required"))?,
    };
    let (token, secret) =
        identity::create_token(&state.db, &state.security, &caller.principal, &caller.ctx(), user, &req.name, req.ttl_days).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token: token_view(&token), secret })))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = TokenView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn revoke_token(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<TokenView>> {
    let t = identity::revoke_token(&state.db, &caller.principal, &caller.ctx(), TokenId(id)).await?;
    Ok(axum::Json(token_view(&t)))
}
