//! Reference data: identifier checks, regions, masking.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use shutong_api_types::*;
use shutong_reference::{Checker, IdentifierKind, MaskKind, RegionCode, RegionEntry};

use super::views::region_view;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

fn run_check(checker: &Checker, kind: IdentifierKind, value: &str) -> IdentifierCheck {
    match checker.check(kind, value) {
        Ok(c) => IdentifierCheck {
            input: value.to_string(),
            valid: true,
            normalized: Some(c.normalized),
            reason: None,
            details: Some(c.details),
        },
        Err(reason) => IdentifierCheck { input: value.to_string(), valid: false, normalized: None, reason: Some(reason), details: None },
    }
}

fn check_one(state: &AppState, kind: IdentifierKind, value: &str) -> axum::Json<IdentifierCheck> {
    let regions = state.regions();
    axum::Json(run_check(&Checker::new(&regions), kind, value))
}

/// Checks a 公民身份号码 (GB 11643); 15-digit numbers are normalised to 18.
#[utoipa::path(get, path = "/api/v1/reference/id-numbers/{value}", tag = "reference", params(("value" = String, Path)),
    responses((status = 200, description = "valid or not, with the reason", body = IdentifierCheck)))]
pub async fn check_id_number(State(state): State<AppState>, Path(value): Path<String>) -> axum::Json<IdentifierCheck> {
    check_one(&state, IdentifierKind::IdNumber, &value)
}

/// Checks a 统一社会信用代码 (GB 32100).
#[utoipa::path(get, path = "/api/v1/reference/credit-codes/{value}", tag = "reference", params(("value" = String, Path)),
    responses((status = 200, body = IdentifierCheck)))]
pub async fn check_credit_code(State(state): State<AppState>, Path(value): Path<String>) -> axum::Json<IdentifierCheck> {
    check_one(&state, IdentifierKind::CreditCode, &value)
}

/// Checks a 组织机构代码 (GB 11714).
#[utoipa::path(get, path = "/api/v1/reference/org-codes/{value}", tag = "reference", params(("value" = String, Path)),
    responses((status = 200, body = IdentifierCheck)))]
pub async fn check_org_code(State(state): State<AppState>, Path(value): Path<String>) -> axum::Json<IdentifierCheck> {
    check_one(&state, IdentifierKind::OrgCode, &value)
}

/// Checks many identifiers of one kind (at most 10,000).
#[utoipa::path(post, path = "/api/v1/reference/validate", tag = "reference", request_body = ValidateBatchRequest,
    responses((status = 200, body = ValidateBatchResponse), (status = 422, body = ErrorEnvelope)))]
pub async fn validate_batch(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ValidateBatchRequest>,
) -> ApiResult<axum::Json<ValidateBatchResponse>> {
    let kind = IdentifierKind::parse(&req.kind).ok_or_else(|| {
        ApiError::validation("kind", format!("kind: '{}' is not one of id_number, credit_code, org_code, region_code", req.kind))
    })?;
    if req.values.len() > 10_000 {
        return Err(ApiError::validation("values", format!("values: at most 10000 per call, got {}", req.values.len())));
    }
    let regions = state.regions();
    let checker = Checker::new(&regions);
    let results: Vec<IdentifierCheck> = req.values.iter().map(|v| run_check(&checker, kind, v)).collect();
    let valid = results.iter().filter(|r| r.valid).count();
    Ok(axum::Json(ValidateBatchResponse { valid, invalid: results.len() - valid, results }))
}

/// One GB/T 2260 region (404 if the code is not in the table; 422 if it is malformed).
#[utoipa::path(get, path = "/api/v1/reference/regions/{code}", tag = "reference", params(("code" = String, Path)),
    responses((status = 200, body = RegionView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn get_region(State(state): State<AppState>, Path(code): Path<String>) -> ApiResult<axum::Json<RegionView>> {
    let c = RegionCode::parse(&code).map_err(|e| ApiError::validation("code", format!("code: {e}")))?;
    let regions = state.regions();
    let e = regions.get(&c).ok_or_else(|| ApiError::not_found("region"))?;
    Ok(axum::Json(region_view(e)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegionQuery {
    /// Children of this code; without it, the province-level regions.
    pub parent: Option<String>,
    /// Include codes no longer in force (default false).
    #[serde(default)]
    pub include_historical: bool,
}

/// Lists regions: the provinces, or the children of a region.
#[utoipa::path(get, path = "/api/v1/reference/regions", tag = "reference", params(RegionQuery), responses((status = 200, body = RegionList)))]
pub async fn list_regions(State(state): State<AppState>, Query(q): Query<RegionQuery>) -> ApiResult<axum::Json<RegionList>> {
    let regions = state.regions();
    let list: Vec<RegionView> = match &q.parent {
        Some(p) => {
            let c = RegionCode::parse(p).map_err(|e| ApiError::validation("parent", format!("parent: {e}")))?;
            regions.children(c.as_str()).filter(|e| q.include_historical || e.is_current()).map(region_view).collect()
        }
        None => regions
            .iter()
            .filter(|e| e.level == shutong_reference::RegionLevel::Province && (q.include_historical || e.is_current()))
            .map(region_view)
            .collect(),
    };
    Ok(axum::Json(RegionList { regions: list }))
}

/// Adds or changes a region (the yearly GB/T 2260 revision; platform administrators).
#[utoipa::path(put, path = "/api/v1/reference/regions/{code}", tag = "reference", security(("bearer" = [])), params(("code" = String, Path)),
    request_body = UpsertRegionRequest, responses((status = 200, body = RegionView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn upsert_region(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<UpsertRegionRequest>,
) -> ApiResult<axum::Json<RegionView>> {
    let c = RegionCode::parse(&code).map_err(|e| ApiError::validation("code", format!("code: {e}")))?;
    let entry = RegionEntry {
        code: c.to_string(),
        name: req.name,
        level: c.level(),
        parent: req.parent,
        valid_from: req.valid_from,
        valid_to: req.valid_to,
        former_names: req.former_names,
    };
    let saved = shutong_refdata::upsert_region(&state.db, &caller.principal, &caller.ctx(), entry).await?;
    Ok(axum::Json(region_view(&saved)))
}

/// Masks a value by the platform's rule for its kind.
#[utoipa::path(post, path = "/api/v1/reference/mask", tag = "reference", request_body = MaskRequest,
    responses((status = 200, body = MaskResponse), (status = 422, body = ErrorEnvelope)))]
pub async fn mask(State(state): State<AppState>, ApiJson(req): ApiJson<MaskRequest>) -> ApiResult<axum::Json<MaskResponse>> {
    let kind = MaskKind::parse(&req.kind).ok_or_else(|| {
        let all: Vec<&str> = MaskKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::validation("kind", format!("kind: '{}' is not one of {}", req.kind, all.join(", ")))
    })?;
    let rule = state.mask_rules.rule(kind);
    Ok(axum::Json(MaskResponse {
        kind: req.kind,
        masked: state.mask_rules.mask(kind, &req.value),
        keep_head: rule.keep_head,
        keep_tail: rule.keep_tail,
    }))
}

/// The masking rules in force, per item kind (defaults of SPEC §5 unless configured).
#[utoipa::path(get, path = "/api/v1/reference/masking", tag = "reference", responses((status = 200, body = MaskRuleList)))]
pub async fn list_mask_rules(State(state): State<AppState>) -> axum::Json<MaskRuleList> {
    let rules = MaskKind::ALL
        .iter()
        .map(|k| {
            let r = state.mask_rules.rule(*k);
            MaskRuleView {
                kind: k.as_str().into(),
                keep_head: r.keep_head,
                keep_tail: r.keep_tail,
                mask_char: r.mask_char.to_string(),
                configured: state.mask_rules.overrides.contains_key(k),
            }
        })
        .collect();
    axum::Json(MaskRuleList { rules })
}
