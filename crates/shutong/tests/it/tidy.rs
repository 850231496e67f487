//! The architecture's invariants, checked over the source tree (as rust-analyzer's `tidy` does): each test
//! names the files and lines at fault. ARCHITECTURE.md states these; a change that breaks one fails here.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

fn crate_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// The crates that hold a capability's rules (not the web layer, the binary, wire types or the bench).
const DOMAIN: [&str; 11] = [
    "shutong-reference",
    "shutong-store",
    "shutong-audit",
    "shutong-crypto",
    "shutong-identity",
    "shutong-refdata",
    "shutong-catalog",
    "shutong-sharing",
    "shutong-exchange",
    "shutong-systems",
    "shutong-quality",
];

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace()).unwrap_or(p).display().to_string()
}

/// Lines of `text` that contain `needle`, outside comments, as `file:line`.
fn lines_with(path: &Path, text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//") && l.contains(needle))
        .map(|(i, _)| format!("{}:{}", rel(path), i + 1))
        .collect()
}

#[test]
fn no_sql_in_the_web_layer_or_the_binary() {
    let mut found = Vec::new();
    for dir in ["crates/shutong-web/src", "crates/shutong/src"] {
        for (p, text) in sources(&workspace().join(dir)) {
            found.extend(lines_with(&p, &text, "sqlx::"));
        }
    }
    assert!(found.is_empty(), "SQL belongs in a service: {found:?}");
}

#[test]
fn no_system_clock_in_deadline_code() {
    let mut found = Vec::new();
    for dir in [
        "crates/shutong-catalog/src",
        "crates/shutong-sharing/src",
        "crates/shutong-exchange/src",
        "crates/shutong-systems/src",
        "crates/shutong-quality/src",
    ] {
        for (p, text) in sources(&workspace().join(dir)) {
            for needle in ["china_today(", "Utc::now(", "Local::now(", "SystemTime::now("] {
                found.extend(lines_with(&p, &text, needle));
            }
        }
    }
    assert!(found.is_empty(), "deadlines read the business clock (shutong_store::Clock): {found:?}");
}

/// Queries name their columns: SQLite prepares a statement against the schema its connection last read, so
/// a `SELECT *` prepared before a migration added a column returns more columns than it was prepared with
/// (sqlx then fails on the row; seen as a demo start failing under load).
#[test]
fn no_select_star() {
    let mut found = Vec::new();
    for name in crate_names() {
        for (p, text) in sources(&workspace().join("crates").join(&name).join("src")) {
            for needle in ["SELECT *", "RETURNING *"] {
                found.extend(lines_with(&p, &text, needle));
            }
        }
    }
    assert!(found.is_empty(), "name the columns: {found:?}");
}

/// A stored value parsed with a fallback (`parse(…).unwrap_or(…)` on a column) reads a broken or unknown
/// value as something else; NULL handled as an `Option` is not what this looks for.
#[test]
fn no_silent_default_in_a_row_decoder() {
    let mut found = Vec::new();
    for name in crate_names() {
        for (p, text) in sources(&workspace().join("crates").join(&name).join("src")) {
            for (i, line) in text.lines().enumerate() {
                let parses = line.contains("parse(") || line.contains("from_str(");
                if line.contains(".try_get") && parses && (line.contains(".unwrap_or") || line.contains(".unwrap_or_default()")) {
                    found.push(format!("{}:{}: {}", rel(&p), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "a stored value that does not parse is an error (shutong_store::parse_column): {found:?}");
}

/// Service functions that record an audit event also take the acting principal and authorise it, except
/// where the credential itself is the authority.
#[test]
fn every_audited_service_function_takes_its_principal() {
    const CREDENTIAL_IS_THE_AUTHORITY: [&str; 2] = ["login", "end_session"];
    let mut found = Vec::new();
    for name in DOMAIN.iter().filter(|n| **n != "shutong-audit") {
        for (p, text) in sources(&workspace().join("crates").join(name).join("src")) {
            let mut from = 0;
            while let Some(at) = text[from..].find("pub async fn ") {
                let start = from + at + "pub async fn ".len();
                let fn_name: String = text[start..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let open = start + text[start..].find('(').unwrap();
                let mut depth = 0;
                let mut end = open;
                for (i, c) in text[open..].char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        end = open + i;
                        break;
                    }
                }
                let signature = &text[open..end];
                if signature.contains("AuditContext")
                    && !signature.contains("Principal")
                    && !CREDENTIAL_IS_THE_AUTHORITY.contains(&fn_name.as_str())
                {
                    found.push(format!("{} {fn_name}", rel(&p)));
                }
                from = end;
            }
        }
    }
    assert!(found.is_empty(), "these take an AuditContext but no Principal: {found:?}");
}

/// The domain crates know nothing of HTTP: no axum and no OpenAPI. The JSON shapes of the API, with their
/// schemas, live in shutong-api-types, and the web layer declares none of its own (its query-string structs
/// are extractors, not bodies).
#[test]
fn domain_crates_know_nothing_of_http() {
    for name in DOMAIN {
        let manifest = std::fs::read_to_string(workspace().join("crates").join(name).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        assert!(!deps.lines().any(|l| l.trim_start().starts_with("axum")), "{name} depends on axum");
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with("utoipa")),
            "{name} depends on utoipa: wire types live in shutong-api-types"
        );
    }
    let mut found = Vec::new();
    for (p, text) in sources(&workspace().join("crates/shutong-web/src")) {
        if text.lines().any(|l| l.trim_start().starts_with("#[derive(") && l.contains("ToSchema")) {
            found.push(rel(&p));
        }
    }
    assert!(found.is_empty(), "request or response bodies declared in the web layer, not in shutong-api-types: {found:?}");
}

#[test]
fn architecture_lists_every_crate_and_only_those() {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let mut listed: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("- `crates/"))
        .map(|l| l.split('`').next().unwrap_or("").trim_end_matches('/').to_string())
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed, crate_names(), "ARCHITECTURE.md's code map lists exactly the crates under crates/");
}

#[test]
fn every_crate_has_its_readme_as_its_doc() {
    for name in crate_names() {
        let dir = workspace().join("crates").join(&name);
        assert!(dir.join("README.md").exists(), "{name} has no README.md");
        let lib = dir.join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(text.contains("#![doc = include_str!(\"../README.md\")]"), "{name}'s README is not its crate doc");
        }
    }
}

/// No source file grows past this many lines; split along the seams first (issue #18 item 5 lowers it).
const MAX_LINES: usize = 1_300;

#[test]
fn no_source_file_is_too_long() {
    let mut found = Vec::new();
    for name in crate_names() {
        for (p, text) in sources(&workspace().join("crates").join(&name)) {
            let n = text.lines().count();
            if n > MAX_LINES {
                found.push(format!("{} ({n} lines)", rel(&p)));
            }
        }
    }
    assert!(found.is_empty(), "longer than {MAX_LINES} lines: {found:?}");
}

/// Background work runs in the one job runner (`shutong_store::jobs`), not in loops of its own.
#[test]
fn no_background_loop_outside_the_job_runner() {
    let mut found = Vec::new();
    for name in crate_names().iter().filter(|n| *n != "shutong-bench") {
        for (p, text) in sources(&workspace().join("crates").join(name).join("src")) {
            if p.ends_with("shutong-store/src/jobs.rs") {
                continue;
            }
            found.extend(lines_with(&p, &text, "time::interval("));
        }
    }
    assert!(found.is_empty(), "periodic work is a job or a local task of shutong_store::jobs::JobRunner: {found:?}");
}

/// Parameters named after a table's rows: an integer under one of these names is that row's ID.
const ROW_NAMES: [&str; 9] = ["project", "grant", "request", "batch", "file", "user", "department", "token", "notification"];
/// Functions whose code parameter is the input they validate (a new classification node's code, an objection
/// reason's code), refused
/// with a field error by the function itself.
const CODE_IS_THE_INPUT: [&str; 2] = ["create_classification", "set_objection_reason"];

/// Public service functions take typed IDs (`RequestId`, `GrantId`, `BatchId`, `FileId`, `ProjectId`,
/// `DepartmentId` …) and typed codes (`ResourceCode`, `CreditCode`), never a bare `i64` named like an ID or
/// a string named like a code: a request's ID cannot be passed where a grant's is meant, and a code is
/// parsed once, where it enters.
#[test]
fn public_service_functions_take_typed_ids() {
    let mut found = Vec::new();
    for name in DOMAIN {
        for (p, text) in sources(&workspace().join("crates").join(name).join("src")) {
            let mut from = 0;
            while let Some(at) = text[from..].find("pub async fn ") {
                let start = from + at + "pub async fn ".len();
                let fn_name: String = text[start..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let open = start + text[start..].find('(').unwrap();
                // The signature ends at the first `) ->` or `) {`, whichever comes first.
                let close = open + [text[open..].find(") ->"), text[open..].find(") {")].into_iter().flatten().min().unwrap_or(0);
                let signature = &text[open..close];
                for param in signature.split(',') {
                    let param = param.trim();
                    let Some((name, ty)) = param.split_once(':') else { continue };
                    let (name, ty) = (name.trim(), ty.trim());
                    let bare_integer = ty == "i64" || ty == "Option<i64>";
                    let named_like_an_id = name == "id" || name.ends_with("_id") || ROW_NAMES.contains(&name);
                    let bare_code = matches!(ty, "&str" | "String" | "Option<&str>")
                        && (name == "code" || name.ends_with("_code"))
                        && !CODE_IS_THE_INPUT.contains(&fn_name.as_str());
                    if (bare_integer && named_like_an_id) || bare_code {
                        found.push(format!("{} {fn_name}({param})", rel(&p)));
                    }
                }
                from = close.max(start);
            }
        }
    }
    assert!(found.is_empty(), "bare integer IDs or string codes in public service functions: {found:?}");
}

/// The capabilities' state changes commit through the unit of work (`shutong_audit::Change`: its events in
/// its transaction, its effects after the commit), never through a bare transaction of their own. The one
/// bare transaction left is a read: a request with its steps read as one snapshot, then rolled back.
#[test]
fn state_changes_open_a_change_not_a_transaction() {
    const READ_SNAPSHOTS: [&str; 1] = ["crates/shutong-sharing/src/service/reading.rs"];
    let mut found = Vec::new();
    for name in ["shutong-identity", "shutong-refdata", "shutong-catalog", "shutong-sharing", "shutong-systems", "shutong-quality"] {
        for (p, text) in sources(&workspace().join("crates").join(name).join("src")) {
            if READ_SNAPSHOTS.iter().any(|r| p.ends_with(r)) {
                continue;
            }
            for (i, line) in text.lines().enumerate() {
                if line.contains(".begin().await") && !line.contains("Change::begin") {
                    found.push(format!("{}:{}", rel(&p), i + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "bare transactions in service code (open a shutong_audit::Change): {found:?}");
}
