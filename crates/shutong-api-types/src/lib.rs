#![doc = include_str!("../README.md")]

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A closed list of values on the wire: the English code is what the API writes, and the Chinese name is
/// accepted on input too. The domain crates keep their own lists; `shutong-web` converts between the two
/// and a test holds them to the same codes and names.
#[macro_export]
macro_rules! wire_list {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:tt / $zh:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        pub enum $name { $($(#[$vdoc])* #[serde(rename = $s, alias = $zh)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The code written on the wire.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// The Chinese name, also accepted on input.
            pub fn label_zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

pub mod catalog;
#[cfg(feature = "domain")]
mod convert;
pub mod exchange;
pub mod quality;
pub mod sharing;
pub mod systems;

/// The one error envelope of the API.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `database_unavailable`.
    pub code: String,
    /// Human-readable message; for 4xx it names what is wrong.
    pub message: String,
    /// The request field (JSON path), query parameter or path segment at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request ID (also in the `x-request-id` header), to quote when reporting a 5xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Every violation, when several rules are broken at once (`rule`, `field`, `message` each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<serde_json::Value>,
}

// ------------------------------------------------------------------ auth

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token of the new session (`Authorization: Bearer …`).
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub must_change_password: bool,
    pub me: MeResponse,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    pub department: Option<DepartmentView>,
    pub roles: Vec<RoleView>,
}

// ------------------------------------------------------------------ departments

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentView {
    pub id: i64,
    pub name: String,
    /// 统一社会信用代码.
    pub credit_code: String,
    /// GB/T 2260 region code.
    pub region_code: String,
    /// The region's name from the GB/T 2260 table.
    pub region_name: Option<String>,
    /// `national`, `province`, `city` or `county`.
    pub level: String,
    /// `government`, `sharing_authority`, `audit_office`, `authorised_institution`, `development_reform` (发展改革部门)
    /// or `finance` (财政部门).
    pub kind: String,
    pub parent_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDepartmentRequest {
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub level: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub parent_id: Option<i64>,
}

fn default_kind() -> String {
    "government".into()
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateDepartmentRequest {
    pub name: Option<String>,
    pub region_code: Option<String>,
    pub level: Option<String>,
    pub kind: Option<String>,
    /// A department ID, or `null` to clear. Omit to leave unchanged.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<Option<i64>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DepartmentList {
    pub departments: Vec<DepartmentView>,
}

// ------------------------------------------------------------------ users

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub department_id: i64,
    pub is_system: bool,
    /// `active` or `disabled`.
    pub status: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub must_change_password: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    /// A system account's last SM2-signed request the platform accepted (recorded at most once a minute).
    pub last_signed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    pub id: i64,
    /// `platform_admin`, `department_admin`, `catalog_editor`, `reviewer`, `auditor`, `system_account`.
    pub role: String,
    pub role_zh: String,
    pub department_id: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub display_name: String,
    pub department_id: i64,
    /// Required for people; omitted for system accounts.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub is_system: bool,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub display_name: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
}

/// A system account's SM2 public key for signed requests (hex SEC1 point or SPKI PEM); `null` removes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sm2KeyRequest {
    pub public_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Sm2KeyView {
    pub user_id: i64,
    /// As stored: the uncompressed SEC1 point, hex; absent when removed.
    pub public_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    pub new_password: String,
    /// Required when changing one's own password.
    #[serde(default)]
    pub current_password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRoleRequest {
    pub role: String,
}

// ------------------------------------------------------------------ tokens

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// The user the token is for; defaults to the caller.
    #[serde(default)]
    pub user_id: Option<i64>,
    pub name: String,
    #[serde(default = "default_ttl")]
    pub ttl_days: i64,
}

fn default_ttl() -> i64 {
    90
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: TokenView,
    /// The secret, shown this once only.
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

// ------------------------------------------------------------------ audit, node, health

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub department_id: Option<i64>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    /// Position in the hash chain; absent until the event is sealed (within `audit.seal_interval_ms`).
    pub chain_seq: Option<i64>,
    /// `h_i`, hex (docs/AUDIT-FORMAT.md).
    pub chain_hash: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventList {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub name: String,
    pub level: String,
    pub zone: String,
    pub region_code: String,
    pub version: String,
    /// The node's SM2 public key (uncompressed SEC1 point, hex): it signs the audit trail's checkpoints.
    pub public_key: String,
    /// The same key as SubjectPublicKeyInfo PEM, for `openssl pkeyutl -verify -pubin -inkey`.
    pub public_key_pem: String,
    /// SM2 distinguishing identifier of the node's signatures.
    pub sm2_id: String,
    /// The SM4 data key this server encrypts sensitive items under (its number, not the key), and the
    /// numbers it can decrypt; absent when sensitive items are stored in clear. After `shutong keys rotate`,
    /// check that every replica shows the new active key before `shutong keys rekey`.
    pub data_key_active: Option<u32>,
    pub data_keys: Option<Vec<u32>>,
}

/// Events of one action on one China day (UTC+8).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditDayCount {
    pub day: NaiveDate,
    /// The action's code, e.g. `data.lookup`.
    pub action: String,
    /// Its Chinese name, e.g. 联机查询.
    pub action_zh: String,
    pub events: i64,
}

/// How often one resource's data was read in the period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourceAccessCount {
    pub resource_code: String,
    /// The resource's name in its published catalog entry; empty if it is no longer published.
    pub resource_name: String,
    pub accesses: i64,
}

/// 审计统计: the trail counted per day and action, and the resources read most, over `days` China days
/// ending with `last_day` (a department's staff count their own department's events).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditFigures {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Per day and action; days and actions without events are left out.
    pub days: Vec<AuditDayCount>,
    /// Data accesses (lookups, queries, exports, change feeds, service calls, file downloads) per
    /// resource, most first, at most 10.
    pub top_resources: Vec<ResourceAccessCount>,
}

/// A signed checkpoint of the audit chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditCheckpointView {
    pub chain_seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub public_key: String,
    /// DER-encoded SM2 signature, hex.
    pub signature: String,
}

/// The audit chain's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditChainView {
    /// Last sealed position.
    pub head: i64,
    pub head_hash: String,
    /// Positions up to here were archived out of the database.
    pub archived_through: i64,
    /// Events committed but not sealed yet.
    pub unsealed: i64,
    pub checkpoints: i64,
    pub last_checkpoint: Option<AuditCheckpointView>,
}

/// Where a verification failed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditFailureView {
    pub chain_seq: i64,
    pub seq: Option<i64>,
    pub reason: String,
}

/// The result of re-computing the chain and its signatures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyView {
    pub ok: bool,
    pub from: i64,
    pub through: i64,
    pub events: u64,
    pub checkpoints: u64,
    /// Last position covered by a valid signature.
    pub signed_through: i64,
    pub unsealed: i64,
    pub failure: Option<AuditFailureView>,
    pub elapsed_ms: u64,
}

/// An archived segment of the chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditArchiveView {
    pub from: i64,
    pub to: i64,
    pub last_hash: String,
    pub events: i64,
    pub file: String,
    pub file_sm3: String,
    pub archived_at: DateTime<Utc>,
    pub archived_by: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

// ------------------------------------------------------------------ reference data

/// The result of checking one identifier.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IdentifierCheck {
    pub input: String,
    pub valid: bool,
    /// The normalised value (upper-case check character, 15 digits converted to 18).
    pub normalized: Option<String>,
    /// Why it is invalid.
    pub reason: Option<String>,
    /// Facts read from a valid identifier (birth date, sex, region, registration authority …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBatchRequest {
    /// `id_number`, `credit_code`, `org_code` or `region_code`.
    pub kind: String,
    /// At most 10,000 values.
    pub values: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidateBatchResponse {
    pub valid: usize,
    pub invalid: usize,
    pub results: Vec<IdentifierCheck>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegionView {
    pub code: String,
    pub name: String,
    /// `province`, `prefecture` or `county`.
    pub level: String,
    pub parent: Option<String>,
    pub valid_from: Option<i32>,
    pub valid_to: Option<i32>,
    pub current: bool,
    pub former_names: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegionList {
    pub regions: Vec<RegionView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRegionRequest {
    pub name: String,
    pub parent: Option<String>,
    pub valid_from: Option<i32>,
    pub valid_to: Option<i32>,
    #[serde(default)]
    pub former_names: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskRequest {
    /// `id_number`, `mobile`, `landline`, `name`, `address`, `credit_code`, `bank_card` or `email`.
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MaskResponse {
    pub kind: String,
    pub masked: String,
    pub keep_head: usize,
    pub keep_tail: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MaskRuleView {
    pub kind: String,
    pub keep_head: usize,
    pub keep_tail: usize,
    pub mask_char: String,
    /// Whether configuration overrides the default of this kind.
    pub configured: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MaskRuleList {
    pub rules: Vec<MaskRuleView>,
}

// ------------------------------------------------------------------ calendar

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkdayView {
    pub date: NaiveDate,
    pub workday: bool,
    /// `official` (the year's published schedule) or `weekday_fallback` (year unknown: Monday–Friday).
    pub source: String,
    /// The holiday's name, for listed days.
    pub name: Option<String>,
    /// `off` (statutory holiday) or `work` (adjusted working day), for listed days.
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddWorkdaysView {
    pub from: NaiveDate,
    pub workdays: i64,
    /// The N-th working day after `from`.
    pub date: NaiveDate,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BetweenView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Working days d with from < d ≤ to (negative if to < from).
    pub workdays: i64,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarYears {
    pub years: Vec<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListedDayView {
    pub date: NaiveDate,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarYearView {
    pub year: i32,
    pub known: bool,
    pub days: Vec<ListedDayView>,
}
