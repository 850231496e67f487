//! The API contract: the document utoipa derives from the handlers' annotations and the wire types,
//! completed with what holds for every operation alike — the error answers each one can give (all in the
//! one envelope), how callers authenticate, and the constraints the path parameters' parsers enforce.
//!
//! The rules here mirror the layers every request passes: the request guard (rate limits: 429), the
//! extractors (`Caller`: 401; `ApiJson`: 400, 413, 415; path and query parsing: 400, 422), the services
//! (403, 404, 409, 422) and the store (503). schemathesis checks the result against the running server
//! in `scripts/test`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::ApiDoc;

/// 分类代码: 1–3 (类), then 2 digits (项), 3 digits (目) and up to 24 more (细目) — the lengths
/// `shutong_catalog::is_classification_code` accepts (1, 3, 6, 7–30).
pub const CLASSIFICATION_PATTERN: &str = "^[1-3]([0-9]{2}([0-9]{3}([0-9]{1,24})?)?)?$";
/// 顺序码 of a resource code: six digits.
pub const SEQUENCE_PATTERN: &str = "^[0-9]{6}$";
/// 信息资源代码: classification code, "/", sequence code.
pub const RESOURCE_CODE_PATTERN: &str = "^[1-3]([0-9]{2}([0-9]{3}([0-9]{1,24})?)?)?/[0-9]{6}$";
/// GB/T 2260 行政区划代码: six digits under a province-level prefix (`shutong_reference::RegionCode`).
pub const REGION_CODE_PATTERN: &str = "^(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3])[0-9]{4}$";
/// A region prefix: a province (2 digits), a city (4) or a whole code (6).
pub const REGION_PREFIX_PATTERN: &str = "^(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3])([0-9]{2}){0,2}$";
/// A classification code that can be created: 项 (3 digits), 目 (6) or 细目 (7–30) under 1, 2 or 3.
pub const NEW_CLASSIFICATION_PATTERN: &str = "^[1-3][0-9]{2}([0-9]{3}([0-9]{1,24})?)?$";
/// 用户名: 3–64 ASCII letters, digits, '.', '_' and '-', starting with a letter or digit.
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$";
/// An exchange node's or flow's name (`shutong_exchange::nodes::check_name`).
pub const NODE_NAME_PATTERN: &str = "^[a-z0-9._-]{1,64}$";
/// A client's batch ID: 1–100 letters, digits, '.', '_', '-' or ':'.
pub const BATCH_ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,100}$";
/// A stored file name: no directory part, no control characters, not `.` or `..`.
pub const FILE_NAME_PATTERN: &str = "^([^/\\\\\\u0000-\\u001f\\u007f-\\u009f.][^/\\\\\\u0000-\\u001f\\u007f-\\u009f]*|\\.[^/\\\\\\u0000-\\u001f\\u007f-\\u009f.][^/\\\\\\u0000-\\u001f\\u007f-\\u009f]*|\\.\\.[^/\\\\\\u0000-\\u001f\\u007f-\\u009f]+)$";
/// A one-line text: not blank, no control characters.
pub const LINE_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A text of several lines: not blank, no control characters but tab, line feed and carriage return.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";
/// 统一社会信用代码 (GB 32100): 18 characters of its alphabet (the check character is checked by the API).
pub const CREDIT_CODE_PATTERN: &str = "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$";
/// A text that must not be blank: at least one character that is not white space.
/// An amount of 元 with at most two decimals, less than 一万亿元 (`shutong_systems::Money::parse`).
pub const MONEY_PATTERN: &str = "^[0-9]{1,12}(\\.[0-9]{1,2})?$";

pub const NOT_BLANK_PATTERN: &str = "\\S";

/// Request enums tagged by a field (`{"kind": …, …}`) whose variants take no other field.
const TAGGED_REQUEST_ENUMS: &[&str] = &["QualityRuleKind"];

/// The document served at `/api/v1/openapi.json`, shown by the docs page and printed by `shutong openapi`.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    complete(&mut doc);
    doc
}

/// Security schemes as the API accepts them (see `extract::Caller`).
fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http", "scheme": "bearer",
            "description": "A session token from `POST /api/v1/auth/login`, or an API token (`st_…`) issued with \
                `POST /api/v1/tokens` or `shutong admin token create`."
        },
        "session_cookie": {
            "type": "apiKey", "in": "cookie", "name": crate::extract::SESSION_COOKIE,
            "description": "The portal's session cookie (HttpOnly, SameSite=Strict). A request with a method other \
                than GET, HEAD or OPTIONS must also carry the session's CSRF token (scheme `csrf`)."
        },
        "csrf": {
            "type": "apiKey", "in": "header", "name": crate::extract::CSRF_HEADER,
            "description": "The CSRF token of the portal session, required with `session_cookie` on unsafe methods."
        },
        "sm2_signature": {
            "type": "apiKey", "in": "header", "name": shutong_identity::signing::HEADER_SIGNATURE,
            "description": format!(
                "签名请求 of a system account (系统账户): base64 of the DER SM2 signature (SM3, ID `1234567812345678`) of \
                 the lines `{}`, METHOD, PATH?QUERY, TIMESTAMP, NONCE, CONTENT-SM3 joined by `\\n`, with the headers \
                 `{}` (username), `{}` (Unix ms, within ±5 minutes), `{}` (16–64 of A–Z a–z 0–9 - _, used once) and \
                 `{}` (hex SM3 of the body). The platform keeps the account's public key (`PUT /api/v1/users/{{id}}/sm2-key`).",
                shutong_identity::signing::SCHEME,
                shutong_identity::signing::HEADER_ACCOUNT,
                shutong_identity::signing::HEADER_TIMESTAMP,
                shutong_identity::signing::HEADER_NONCE,
                shutong_identity::signing::HEADER_CONTENT_SM3,
            )
        }
    })
}

/// What each error status means, for every operation that can answer it.
const ERROR_STATUSES: &[(&str, &str)] = &[
    ("400", "The request cannot be read: malformed JSON, a body or parameter of the wrong type, an unknown field."),
    ("401", "No valid credentials: a missing, expired or revoked token or session, or a refused signature."),
    ("403", "The caller's roles do not allow this."),
    ("404", "Not found, or not visible to the caller."),
    ("409", "The request conflicts with the current state (a unique value taken, a step already done)."),
    ("413", "The body is larger than the limit."),
    ("415", "The body's Content-Type is not one this operation accepts."),
    ("422", "A value breaks a rule; `field` names it and `message` says why."),
    ("429", "A rate limit or quota is exceeded; `Retry-After` says when to try again."),
    ("503", "The database is unavailable; try again shortly."),
];

/// Adds to every operation the statuses it can answer, the security alternatives and the path parameters'
/// constraints.
pub fn complete(doc: &mut Value) {
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert("securitySchemes".into(), security_schemes());
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (schema, property, patch) in property_constraints() {
            if let Some(target) = schemas.get_mut(schema) {
                constrain_property(target, property, patch);
            }
        }
        // Internally tagged enums refuse unknown fields in each variant (serde's deny_unknown_fields), which
        // utoipa states for structs only.
        for name in TAGGED_REQUEST_ENUMS {
            if let Some(variants) = schemas.get_mut(*name).and_then(|s| s.get_mut("oneOf")).and_then(Value::as_array_mut) {
                for v in variants {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("additionalProperties".into(), Value::Bool(false));
                    }
                }
            }
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, method, fields) in REQUIRED_BODY_FIELDS {
        if let Some(schema) =
            paths.get_mut(*path).and_then(|i| i.pointer_mut(&format!("/{method}/requestBody/content/application~1json/schema")))
        {
            *schema = json!({"allOf": [schema.clone(), {"required": fields}]});
        }
    }
    for (path, method, types) in RESPONSE_CONTENT {
        if let Some(ok) = paths.get_mut(*path).and_then(|i| i.pointer_mut(&format!("/{method}/responses/200"))) {
            let content: Map<String, Value> = types
                .iter()
                .map(|t| {
                    // The catalog's JSON export is an array of entries; every other type is bytes to the document.
                    let schema = if *t == "application/json" {
                        json!({"type": "array", "items": {"type": "object"}})
                    } else {
                        json!({"type": "string", "format": "binary"})
                    };
                    (t.to_string(), json!({ "schema": schema }))
                })
                .collect();
            ok["content"] = Value::Object(content);
        }
    }
    if let Some(body) =
        paths.get_mut("/api/v1/calendar/years/{year}").and_then(|i| i.pointer_mut("/put/requestBody/content/application~1json"))
    {
        body["schema"] = holiday_cn_schema();
    }
    for (path, name, patch) in query_constraints() {
        let Some(item) = paths.get_mut(path).and_then(Value::as_object_mut) else { continue };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
            for p in params.iter_mut().filter(|p| p.get("name").and_then(Value::as_str) == Some(name)) {
                if let Some(schema) = p.get_mut("schema") {
                    merge(schema, &patch);
                }
            }
        }
    }
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            complete_operation(path, method, op);
        }
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Map<String, Value>) {
    let safe = matches!(method, "get" | "head" | "options");
    let authenticated = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
    if authenticated {
        let cookie = if safe { json!({"session_cookie": []}) } else { json!({"session_cookie": [], "csrf": []}) };
        op.insert("security".into(), json!([{"bearer": []}, cookie, {"sm2_signature": []}]));
    }
    let params = op.get_mut("parameters").and_then(Value::as_array_mut);
    let mut has_path_params = false;
    let mut has_params = false;
    if let Some(params) = params {
        for p in params.iter_mut() {
            has_params = true;
            if p.get("in").and_then(Value::as_str) == Some("path") {
                has_path_params = true;
                constrain_path_parameter(path, p);
            }
        }
    }
    let has_body = op.contains_key("requestBody");
    let is_api = path.starts_with("/api/");

    let mut statuses: Vec<&str> = Vec::new();
    if is_api {
        statuses.extend(["400", "429", "503"]);
    } else if path == "/readyz" {
        statuses.push("503");
    }
    if authenticated {
        statuses.extend(["401", "403"]);
    }
    if has_path_params {
        statuses.push("404");
    }
    if has_params || has_body {
        statuses.push("422");
    }
    if has_body {
        statuses.extend(["413", "415"]);
    }
    if is_api && !safe {
        statuses.push("409");
    }
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else { return };
    for (status, description) in ERROR_STATUSES {
        if !statuses.contains(status) {
            continue;
        }
        let entry = responses.entry(status.to_string()).or_insert_with(|| json!({}));
        if let Some(entry) = entry.as_object_mut() {
            entry.insert("description".into(), json!(description));
            entry.insert("content".into(), json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}));
            if matches!(*status, "429" | "503") {
                entry.insert(
                    "headers".into(),
                    json!({"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}),
                );
            }
        }
    }
}

/// The constraints that the path parameters' parsers enforce, by the parameter's name.
fn constrain_path_parameter(path: &str, p: &mut Value) {
    let name = p.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let schema = match name.as_str() {
        "classification" => json!({"type": "string", "pattern": CLASSIFICATION_PATTERN}),
        "sequence" => json!({"type": "string", "pattern": SEQUENCE_PATTERN}),
        "code" if path.contains("/regions/") => json!({"type": "string", "pattern": REGION_CODE_PATTERN}),
        "date" => json!({"type": "string", "format": "date"}),
        "key" | "value" | "path" => json!({"type": "string", "minLength": 1}),
        _ => return,
    };
    if let Some(p) = p.as_object_mut() {
        p.insert("schema".into(), schema);
    }
}

/// The wire names of a closed list, from its Rust type.
fn one_of<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Value {
    json!({"type": "string", "enum": all.iter().map(|v| name(*v)).collect::<Vec<_>>()})
}

/// A filter that the handler takes as absent when it is empty (`?classification=`).
fn or_empty(mut v: Value) -> Value {
    if let Some(p) = v.get("pattern").and_then(Value::as_str).map(|p| format!("^$|{p}")) {
        v["pattern"] = json!(p);
    }
    if let Some(values) = v.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(json!(""));
    }
    v
}

fn line(max: usize) -> Value {
    json!({"type": "string", "pattern": LINE_PATTERN, "maxLength": max})
}

fn text(max: usize) -> Value {
    json!({"type": "string", "pattern": TEXT_PATTERN, "maxLength": max})
}

fn date() -> Value {
    json!({"type": "string", "format": "date"})
}

/// Body fields: (component schema, property, constraint). The constraints are those the services check
/// (`shutong_identity` names and usernames, `shutong_sharing` texts, the catalog's codes …).
fn property_constraints() -> Vec<(&'static str, &'static str, Value)> {
    use shutong_identity::{DepartmentKind, DepartmentLevel, Role, UserStatus};
    use shutong_reference::masking::MaskKind;
    let level = one_of(DepartmentLevel::ALL, DepartmentLevel::as_str);
    let kind = one_of(DepartmentKind::ALL, DepartmentKind::as_str);
    vec![
        ("LoginRequest", "username", json!({"type": "string", "minLength": 1, "maxLength": 256})),
        ("LoginRequest", "password", json!({"type": "string", "minLength": 1, "maxLength": 256})),
        ("CreateDepartmentRequest", "name", line(200)),
        ("CreateDepartmentRequest", "credit_code", json!({"type": "string", "pattern": CREDIT_CODE_PATTERN})),
        ("CreateDepartmentRequest", "region_code", json!({"type": "string", "pattern": REGION_CODE_PATTERN})),
        ("CreateDepartmentRequest", "level", level.clone()),
        ("CreateDepartmentRequest", "kind", kind.clone()),
        ("UpdateDepartmentRequest", "name", line(200)),
        ("UpdateDepartmentRequest", "region_code", json!({"type": "string", "pattern": REGION_CODE_PATTERN})),
        ("UpdateDepartmentRequest", "level", level),
        ("UpdateDepartmentRequest", "kind", kind),
        ("CreateUserRequest", "username", json!({"type": "string", "pattern": USERNAME_PATTERN})),
        ("CreateUserRequest", "display_name", line(100)),
        ("CreateUserRequest", "password", json!({"type": "string", "minLength": 10, "maxLength": 256})),
        ("CreateUserRequest", "roles", json!({"type": "array", "items": one_of(Role::ALL, Role::as_str)})),
        ("UpdateUserRequest", "display_name", line(100)),
        ("UpdateUserRequest", "status", one_of(UserStatus::ALL, UserStatus::as_str)),
        ("SetPasswordRequest", "new_password", json!({"type": "string", "minLength": 10, "maxLength": 256})),
        ("AssignRoleRequest", "role", one_of(Role::ALL, Role::as_str)),
        ("CreateTokenRequest", "name", line(100)),
        ("CreateTokenRequest", "ttl_days", json!({"type": "integer", "minimum": 1, "maximum": 366})),
        ("UpsertRegionRequest", "name", line(100)),
        ("UpsertRegionRequest", "parent", json!({"type": "string", "pattern": REGION_CODE_PATTERN})),
        ("UpsertRegionRequest", "former_names", json!({"type": "array", "items": line(100)})),
        ("MaskRequest", "kind", one_of(&MaskKind::ALL, MaskKind::as_str)),
        ("ValidateBatchRequest", "kind", json!({"type": "string", "enum": ["id_number", "credit_code", "org_code", "region_code"]})),
        ("CreateChangeEventRequest", "kind", json!({"type": "string", "enum": ["law_revised", "functions_changed"]})),
        ("CreateChangeEventRequest", "description", text(2000)),
        ("CreateChangeEventRequest", "occurred_on", date()),
        ("CreateClassificationRequest", "code", json!({"type": "string", "pattern": NEW_CLASSIFICATION_PATTERN})),
        ("CreateClassificationRequest", "name", line(200)),
        ("CreateProjectRequest", "name", line(200)),
        ("CreateResourceRequest", "classification_code", json!({"type": "string", "pattern": CLASSIFICATION_PATTERN})),
        ("ReviewRequest", "decision", json!({"type": "string", "enum": ["approve", "return"]})),
        ("ReviewRequest", "reason", text(2000)),
        ("WithdrawRequest", "reason", text(2000)),
        ("ReasonBody", "reason", text(2000)),
        ("MessageBody", "body", text(2000)),
        ("RenewBody", "valid_to", date()),
        ("RenewBody", "note", text(2000)),
        ("CreateRequestBody", "resource_code", json!({"type": "string", "pattern": RESOURCE_CODE_PATTERN})),
        ("CreateRequestBody", "basis", json!({"type": "string", "maxLength": 2000})),
        ("CreateRequestBody", "purpose_detail", text(2000)),
        ("CreateRequestBody", "expected_volume", text(2000)),
        ("ApproveBody", "note", text(2000)),
        ("QuerySpec", "limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        ("InfoItem", "mask", one_of(&MaskKind::ALL, MaskKind::as_str)),
        ("InfoItem", "name", line(200)),
        ("InfoItem", "length", json!({"type": "integer", "minimum": 1, "maximum": 1000000})),
        ("ResourceDocument", "name", line(200)),
        ("ExemptionQuery", "items", json!({"type": "array", "minItems": 1, "items": line(200)})),
        ("SystemDocument", "name", line(200)),
        ("SystemDocument", "function", text(2000)),
        ("SystemDocument", "approving_department", line(200)),
        ("SystemDocument", "unit", line(200)),
        ("SystemDocument", "access_url", line(500)),
        ("SystemDocument", "build_cost", json!({"type": "string", "pattern": MONEY_PATTERN})),
        ("SystemDocument", "om_cost", json!({"type": "string", "pattern": MONEY_PATTERN})),
        ("SystemDocument", "ip_addresses", json!({"type": "array", "maxItems": 64, "items": {"type": "string"}})),
        ("SystemDocument", "host_instances", json!({"type": "array", "maxItems": 64, "items": line(200)})),
        (
            "SystemDocument",
            "produces",
            json!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": RESOURCE_CODE_PATTERN}}),
        ),
        (
            "SystemDocument",
            "consumes",
            json!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": RESOURCE_CODE_PATTERN}}),
        ),
        ("SystemDocument", "accounts", json!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": USERNAME_PATTERN}})),
        ("FlowReport", "resource_code", json!({"type": "string", "pattern": RESOURCE_CODE_PATTERN})),
        ("SystemDocument", "nodes", json!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": NODE_NAME_PATTERN}})),
        ("SystemDocument", "approval_date", date()),
        ("SystemDocument", "last_update_date", date()),
        ("SetQualityDimension", "name", line(20)),
        ("NewQualityRule", "note", json!({"type": "string", "maxLength": 500})),
        ("RetireQualityRule", "reason", json!({"type": "string", "pattern": "^\\s*\\S.{2,}\\S\\s*$", "maxLength": 500})),
        ("ZombieResponseBody", "reason", json!({"type": "string", "maxLength": 1000})),
        ("ZombieDecisionBody", "reason", json!({"type": "string", "maxLength": 1000})),
        ("CleanupPlanBody", "note", json!({"type": "string", "maxLength": 1000})),
        ("CleanupPlanBody", "due_on", date()),
        ("CleanupProgressBody", "note", json!({"type": "string", "maxLength": 1000})),
        ("ProjectDocument", "name", line(200)),
        ("ProjectDocument", "construction_unit", line(200)),
        ("ProjectDocument", "content", text(4000)),
        ("ProjectDocument", "total_investment", json!({"type": "string", "pattern": MONEY_PATTERN})),
        ("ProjectDocument", "om_budget", json!({"type": "string", "pattern": MONEY_PATTERN})),
        ("ProjectDocument", "protection_filing", line(64)),
        ("ProjectDocument", "classified_filing", line(64)),
        (
            "ProjectDocument",
            "systems",
            json!({"type": "array", "maxItems": 64, "items": {"type": "integer", "format": "int64", "minimum": 1}}),
        ),
        ("FileProjectRequest", "filed_on", date()),
        ("FileProjectRequest", "application", line(200)),
        ("AdvanceProjectBody", "entered_on", date()),
        ("ReportContent", "year", json!({"type": "integer", "minimum": 2000, "maximum": 2100})),
        ("ReportContent", "overview", text(20000)),
        ("ReportContent", "problems", text(20000)),
        ("ReportContent", "measures", text(20000)),
        ("ReportContent", "needs", json!({"type": "array", "maxItems": 200})),
        ("DeclaredNeed", "resource", line(500)),
        ("DeclaredNeed", "provider", line(500)),
        ("DeclaredNeed", "purpose", line(500)),
        ("ReviewReportBody", "decision", json!({"type": "string", "enum": ["accept", "return"]})),
        ("ReviewReportBody", "note", json!({"type": "string", "maxLength": 1000})),
        ("AdvanceProjectBody", "document", line(200)),
        ("AdvanceProjectBody", "override_reason", json!({"type": "string", "maxLength": 1000})),
    ]
}

/// The media types an operation's 200 answer really has, where it is not JSON.
const RESPONSE_CONTENT: &[(&str, &str, &[&str])] = &[
    (
        "/api/v1/catalog/export",
        "get",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/csv", "application/json"],
    ),
    ("/api/v1/systems/template", "get", &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]),
    ("/api/v1/systems/export", "get", &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]),
    ("/api/v1/departments/{id}/asset-register/export", "get", &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]),
    (
        "/api/v1/departments/{id}/self-inspection/{version}/lists.xlsx",
        "get",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    ),
    ("/api/v1/departments/{id}/self-inspection/{version}/report.pdf", "get", &["application/pdf"]),
    ("/api/v1/data/{classification}/{sequence}/export", "get", &["text/csv", "application/x-ndjson", "application/vnd.apache.parquet"]),
    // A bound file is sent with the media type recorded when it was uploaded; a proxied answer with the provider's.
    ("/api/v1/data/{classification}/{sequence}/files/{id}", "get", &["*/*"]),
];

/// holiday-cn's JSON form of one year's schedule (`shutong_reference::YearSchedule`).
fn holiday_cn_schema() -> Value {
    json!({
        "type": "object",
        "required": ["year", "days"],
        "properties": {
            "year": {"type": "integer", "minimum": 1949, "maximum": 9999},
            "papers": {"type": "array", "items": {"type": "string"}},
            "days": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "date", "isOffDay"],
                "properties": {"name": {"type": "string"}, "date": {"type": "string", "format": "date"}, "isOffDay": {"type": "boolean"}}
            }}
        }
    })
}

/// Body fields an operation requires although the shared body type leaves them optional.
const REQUIRED_BODY_FIELDS: &[(&str, &str, &[&str])] = &[
    ("/api/v1/requests/{id}/reject", "post", &["reason"]),
    ("/api/v1/requests/{id}/escalate", "post", &["reason"]),
    ("/api/v1/grants/{id}/revoke", "post", &["reason"]),
];

/// Query parameters: (path, parameter, constraint), as the handlers parse them.
fn query_constraints() -> Vec<(&'static str, &'static str, Value)> {
    use shutong_catalog::{ResourceFormat, SharingType, UpdateCycle, VersionStatus};
    use shutong_sharing::{GrantState, RequestKind, RequestStatus, Side, Stage};
    let limit = json!({"type": "integer", "minimum": 1, "maximum": 1000});
    let status = one_of(VersionStatus::ALL, VersionStatus::as_str);
    let classification = json!({"type": "string", "pattern": CLASSIFICATION_PATTERN});
    let resource_code = json!({"type": "string", "pattern": RESOURCE_CODE_PATTERN});
    let transfer = json!({"type": "string", "enum": ["xlsx", "csv", "json"]});
    vec![
        ("/api/v1/audit/events", "limit", limit.clone()),
        ("/api/v1/audit/export", "from", json!({"type": "integer", "minimum": 1})),
        ("/api/v1/audit/export", "to", json!({"type": "integer", "minimum": 1})),
        ("/api/v1/audit/figures", "days", json!({"type": "integer", "minimum": 1, "maximum": 366})),
        ("/api/v1/calendar/add-workdays", "from", date()),
        ("/api/v1/calendar/add-workdays", "n", json!({"type": "integer", "minimum": 0, "maximum": 100000})),
        ("/api/v1/calendar/between", "from", date()),
        ("/api/v1/calendar/between", "to", date()),
        ("/api/v1/catalog/resources", "status", status.clone()),
        ("/api/v1/catalog/resources", "classification", or_empty(classification.clone())),
        ("/api/v1/catalog/resources", "limit", limit.clone()),
        ("/api/v1/catalog/export", "format", transfer.clone()),
        ("/api/v1/catalog/export", "status", status),
        ("/api/v1/catalog/export", "classification", or_empty(classification.clone())),
        ("/api/v1/catalog/import", "format", transfer),
        ("/api/v1/catalog/search", "limit", json!({"type": "integer", "minimum": 1, "maximum": 100})),
        ("/api/v1/catalog/search", "class", or_empty(classification)),
        ("/api/v1/catalog/search", "region", or_empty(json!({"type": "string", "pattern": REGION_PREFIX_PATTERN}))),
        ("/api/v1/catalog/search", "provider", or_empty(json!({"type": "string", "pattern": "^[0-9]{1,18}$"}))),
        ("/api/v1/catalog/search", "sharing", or_empty(one_of(SharingType::ALL, SharingType::as_str))),
        ("/api/v1/catalog/search", "open", or_empty(json!({"type": "string", "enum": ["true", "false"]}))),
        ("/api/v1/catalog/search", "format", or_empty(one_of(ResourceFormat::ALL, ResourceFormat::as_str))),
        ("/api/v1/catalog/search", "cycle", or_empty(one_of(UpdateCycle::ALL, UpdateCycle::as_str))),
        ("/api/v1/data/{classification}/{sequence}/batches", "mode", json!({"type": "string", "enum": ["full", "incremental"]})),
        ("/api/v1/data/{classification}/{sequence}/batches", "format", json!({"type": "string", "enum": ["csv", "ndjson", "xlsx"]})),
        ("/api/v1/data/{classification}/{sequence}/batches", "batch_id", json!({"type": "string", "pattern": BATCH_ID_PATTERN})),
        ("/api/v1/data/{classification}/{sequence}/batches", "delimiter", json!({"type": "string", "enum": [",", ";", "tab", "|"]})),
        ("/api/v1/data/{classification}/{sequence}/batches", "encoding", json!({"type": "string", "enum": ["utf-8", "gbk"]})),
        ("/api/v1/data/{classification}/{sequence}/batches", "part", json!({"type": "integer", "minimum": 1, "maximum": 1_000_000})),
        ("/api/v1/data/{classification}/{sequence}/export", "format", json!({"type": "string", "enum": ["csv", "ndjson", "parquet"]})),
        ("/api/v1/data/{classification}/{sequence}/changes", "since", json!({"type": "integer", "minimum": 0})),
        ("/api/v1/data/{classification}/{sequence}/changes", "limit", limit.clone()),
        ("/api/v1/data/{classification}/{sequence}/changes", "wait_ms", json!({"type": "integer", "minimum": 0, "maximum": 30000})),
        ("/api/v1/nodes", "department_id", json!({"type": "integer", "minimum": 1})),
        (
            "/api/v1/quality/dimensions/{dimension}",
            "dimension",
            one_of(shutong_quality::Dimension::ALL, shutong_quality::Dimension::as_str),
        ),
        (
            "/api/v1/data/{classification}/{sequence}/files",
            "name",
            json!({"type": "string", "pattern": FILE_NAME_PATTERN, "maxLength": 200}),
        ),
        ("/api/v1/quality/objections", "resource_code", or_empty(resource_code.clone())),
        (
            "/api/v1/quality/objections/{id}/evidence",
            "file_name",
            json!({"type": "string", "pattern": FILE_NAME_PATTERN, "maxLength": 200}),
        ),
        ("/api/v1/quality/objection-reasons/{code}", "code", json!({"type": "string", "pattern": "^[a-z0-9_]{1,32}$"})),
        ("/api/v1/grants", "side", or_empty(one_of(Side::ALL, Side::as_str))),
        ("/api/v1/grants", "state", or_empty(one_of(GrantState::ALL, GrantState::as_str))),
        ("/api/v1/grants", "resource_code", or_empty(resource_code.clone())),
        ("/api/v1/grants", "limit", limit.clone()),
        ("/api/v1/requests", "side", or_empty(one_of(Side::ALL, Side::as_str))),
        ("/api/v1/requests", "status", or_empty(one_of(RequestStatus::ALL, RequestStatus::as_str))),
        ("/api/v1/requests", "stage", or_empty(one_of(Stage::ALL, Stage::as_str))),
        ("/api/v1/requests", "kind", or_empty(one_of(RequestKind::ALL, RequestKind::as_str))),
        ("/api/v1/requests", "resource_code", or_empty(resource_code)),
        ("/api/v1/requests", "limit", limit),
        ("/api/v1/reference/regions", "parent", json!({"type": "string", "pattern": REGION_CODE_PATTERN})),
        ("/api/v1/systems", "status", or_empty(one_of(shutong_systems::SystemStatus::ALL, shutong_systems::SystemStatus::as_str))),
        ("/api/v1/systems", "q", json!({"type": "string", "maxLength": 100})),
        ("/api/v1/systems", "limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        ("/api/v1/projects", "queue", or_empty(json!({"type": "string", "enum": shutong_systems::ProjectQueue::ALL}))),
        ("/api/v1/projects", "limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
    ]
}

/// Merges a constraint into a schema, keeping it nullable where it was (`Option` fields).
fn merge(schema: &mut Value, patch: &Value) {
    let nullable = schema.get("type").and_then(Value::as_array).is_some_and(|t| t.iter().any(|v| v == "null"))
        || schema.get("oneOf").and_then(Value::as_array).is_some_and(|o| o.iter().any(|v| v.get("type") == Some(&json!("null"))));
    let mut patch = patch.clone();
    if nullable {
        if let Some(t) = patch.get("type").cloned() {
            patch["type"] = json!([t, "null"]);
        }
        if let Some(values) = patch.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    if schema.get("$ref").is_some() || schema.get("oneOf").is_some() {
        *schema = patch;
        return;
    }
    if let (Some(target), Some(patch)) = (schema.as_object_mut(), patch.as_object()) {
        for (k, v) in patch {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn constrain_property(schema: &mut Value, property: &str, patch: Value) {
    if let Some(p) = schema.pointer_mut(&format!("/properties/{property}")) {
        merge(p, &patch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde writes for each value of a closed list, in order.
    fn wire<T: Copy + serde::Serialize>(all: &[T]) -> Vec<Value> {
        all.iter().map(|v| serde_json::to_value(v).unwrap()).collect()
    }

    /// The document's enum names are the names serde writes and reads, for every closed list the document
    /// holds: a list whose schema and serde disagree fails here, whether or not schemathesis reaches an
    /// operation that returns it. A new closed list in the document must be added here.
    #[test]
    fn every_enum_of_the_document_has_the_wire_names_serde_uses() {
        use shutong_catalog::*;
        use shutong_exchange::{BatchStatus, BindingKind, DataFormat, IngestMode};
        use shutong_sharing::{AccessMethod, FilterOp, GrantOrigin, GrantState, Purpose, RequestKind, RequestStatus, Stage};
        let lists: Vec<(&str, Vec<Value>)> = vec![
            ("SharingType", wire(SharingType::ALL)),
            ("DataType", wire(DataType::ALL)),
            ("UpdateCycle", wire(UpdateCycle::ALL)),
            ("ResourceFormat", wire(ResourceFormat::ALL)),
            ("SharingMethod", wire(SharingMethod::ALL)),
            ("Secrecy", wire(Secrecy::ALL)),
            ("Network", wire(Network::ALL)),
            ("VersionStatus", wire(VersionStatus::ALL)),
            ("RequestKind", wire(RequestKind::ALL)),
            ("RequestStatus", wire(RequestStatus::ALL)),
            ("Stage", wire(Stage::ALL)),
            ("Purpose", wire(Purpose::ALL)),
            ("AccessMethod", wire(AccessMethod::ALL)),
            ("GrantOrigin", wire(GrantOrigin::ALL)),
            ("GrantState", wire(GrantState::ALL)),
            ("FilterOp", wire(FilterOp::ALL)),
            ("BindingKind", wire(BindingKind::ALL)),
            ("FlowDirection", wire(shutong_exchange::nodes::FlowDirection::ALL)),
            ("FlowState", wire(shutong_exchange::nodes::FlowState::ALL)),
            ("IngestMode", wire(IngestMode::ALL)),
            ("DataFormat", wire(DataFormat::ALL)),
            ("BatchStatus", wire(BatchStatus::ALL)),
            ("Freshness", wire(shutong_exchange::figures::Freshness::ALL)),
            ("MaskKind", wire(&shutong_reference::MaskKind::ALL)),
            ("UsageScope", wire(shutong_systems::UsageScope::ALL)),
            ("UsageFrequency", wire(shutong_systems::UsageFrequency::ALL)),
            ("FundingSource", wire(shutong_systems::FundingSource::ALL)),
            ("SystemNetwork", wire(shutong_systems::SystemNetwork::ALL)),
            ("SystemStatus", wire(shutong_systems::SystemStatus::ALL)),
            ("OmStatus", wire(shutong_systems::OmStatus::ALL)),
            ("ZombieCriterion", wire(shutong_systems::ZombieCriterion::ALL)),
            ("ZombieResponse", wire(shutong_systems::ZombieResponse::ALL)),
            ("ZombieDecision", wire(shutong_systems::ZombieDecision::ALL)),
            ("CleanupAction", wire(shutong_systems::CleanupAction::ALL)),
            ("CleanupProgress", wire(shutong_systems::CleanupProgress::ALL)),
            ("ProjectStage", wire(shutong_systems::ProjectStage::ALL)),
            ("Gate", wire(shutong_systems::Gate::ALL)),
            ("ReportStatus", wire(shutong_systems::ReportStatus::ALL)),
            ("QualityDimension", wire(shutong_quality::Dimension::ALL)),
            ("RuleOrigin", wire(shutong_quality::RuleOrigin::ALL)),
            ("IdScheme", wire(shutong_quality::IdScheme::ALL)),
            ("CheckCause", wire(shutong_quality::CheckCause::ALL)),
            ("QualityGrade", wire(shutong_quality::Grade::ALL)),
            ("ObjectionState", wire(shutong_quality::ObjectionState::ALL)),
            ("ObjectionAnswer", wire(shutong_quality::ObjectionAnswer::ALL)),
            ("ObjectionRuling", wire(shutong_quality::ObjectionRuling::ALL)),
            ("ConflictKind", wire(shutong_quality::ConflictKind::ALL)),
            ("ReconcileCause", wire(shutong_quality::ReconcileCause::ALL)),
            ("ConflictSide", wire(shutong_quality::ConflictSide::ALL)),
        ];
        let doc = document();
        let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).unwrap();
        for (name, serde_names) in &lists {
            let documented = schemas[*name]["enum"].as_array().unwrap_or_else(|| panic!("{name} has no enum in the document"));
            assert_eq!(documented, serde_names, "{name}: the document's names differ from serde's");
        }
        let checked: Vec<&str> = lists.iter().map(|(n, _)| *n).collect();
        for (name, schema) in schemas {
            if schema.get("enum").is_some() {
                assert!(checked.contains(&name.as_str()), "{name} is a closed list of the document: compare it with serde here");
            }
        }
    }

    /// The enum names the contract adds to parameters and fields come from the same types' `ALL`.
    #[test]
    fn added_enums_are_the_types_wire_names() {
        let names = one_of(shutong_identity::DepartmentLevel::ALL, shutong_identity::DepartmentLevel::as_str);
        let serde: Vec<Value> = wire(shutong_identity::DepartmentLevel::ALL);
        assert_eq!(names["enum"].as_array().unwrap(), &serde);
    }

    /// Every operation answers its errors in the envelope, with the statuses the layers can give.
    #[test]
    fn every_operation_lists_its_error_statuses() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let has = |s: &str| responses.contains_key(s);
                if path.starts_with("/api/") {
                    assert!(has("400") && has("429") && has("503"), "{method} {path}");
                }
                if op.get("security").is_some() {
                    assert!(has("401") && has("403"), "{method} {path}");
                    assert_eq!(op["security"].as_array().unwrap().len(), 3, "{method} {path}: bearer, cookie, SM2");
                }
                if path.contains('{') {
                    assert!(has("404"), "{method} {path}");
                }
                for (status, r) in responses.iter().filter(|(s, _)| s.starts_with('4') || s.starts_with('5')) {
                    assert_eq!(
                        r.pointer("/content/application~1json/schema/$ref").and_then(Value::as_str),
                        Some("#/components/schemas/ErrorEnvelope"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    /// The patterns agree with the parsers they document, on samples of both kinds.
    #[test]
    fn patterns_agree_with_the_parsers() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let class = re(CLASSIFICATION_PATTERN);
        for c in [
            "1",
            "101",
            "101001",
            "1010011",
            "2",
            "3999999999",
            "0",
            "4",
            "10",
            "1010",
            "10100",
            "1x1",
            "",
            "1010011111111111111111111111111",
        ] {
            assert_eq!(class.is_match(c), shutong_catalog::is_classification_code(c), "{c}");
        }
        let region = re(REGION_CODE_PATTERN);
        for c in ["320000", "110101", "820000", "000000", "990000", "32000", "3200000", "72abcd"] {
            assert_eq!(region.is_match(c), shutong_reference::RegionCode::parse(c).is_ok(), "{c}");
        }
        let code = re(RESOURCE_CODE_PATTERN);
        for c in ["101/000001", "1/123456", "101/00001", "401/000001", "101000001"] {
            assert_eq!(code.is_match(c), shutong_catalog::ResourceCode::parse(c).is_ok(), "{c}");
        }
        let money = re(MONEY_PATTERN);
        for c in ["0", "1250000", "1250000.5", "999999999999.99", "1000000000000", "1.234", "-1", "1,000", ".5", "5.", " 1", "1e5"] {
            assert_eq!(money.is_match(c), shutong_systems::Money::parse(c).is_ok(), "{c}");
        }
    }
}
