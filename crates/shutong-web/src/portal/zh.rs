//! The portal's message catalogue: the Chinese the portal shows for what the services say in English.
//!
//! The services (identity, catalog, sharing, exchange, refdata, reference, audit, crypto) name the field at
//! fault by its wire name (`valid_from`, `items[3].name`) and explain in English, often with values built in
//! by `format!` (`"{valid_from} is before the requested period ({})"`). The portal translates both at the
//! edge instead of the services speaking Chinese: the API keeps its English messages, and one table here
//! covers every message.
//!
//! - [`MESSAGES`] pairs each English template with its Chinese. `{}` in the English marks a part built by
//!   `format!`; the Chinese places the captured parts by position, `{0}`, `{1}` …, in any order. A
//!   placeholder may ask for the captured part to be translated in turn: `{0:m}` as a message (an error's
//!   `Display` wrapped into another's), `{0:f}` as a field name, `{0:w}` as the thing not found, `{0:v}` as
//!   a list of catalog rule violations. Matching takes the literal pieces in order, each capture non-empty
//!   and as short as the rest allows; the first entry that matches wins, so specific templates come before
//!   general ones (a test checks that no entry hides a later one).
//! - [`FIELDS`] names fields; [`field_text`] also reads paths with an index (`items[3].name` → 第 4 个信息项的
//!   名称; the index base follows how the services build each path) and falls back on the audit trail's
//!   labels ([`shutong_audit::labels::field_label_zh`]).
//! - A message that is already Chinese (the portal's own, or one quoting Chinese values only) is shown as
//!   it is; the `field: message` form of a field error wrapped into another error is split and translated.
//!
//! The test reads the services' sources, extracts every message passed to an error constructor and every
//! field name, and requires a rendering for each: a new message without its Chinese fails it.

use super::zh_table::{FIELDS, INDEXED, MESSAGES, NOT_FOUND};

/// The Chinese label of a field as the services name it (`purpose` → 用途). Indices are ignored
/// (`items[3].name` → 信息项名称); [`field_text`] keeps them.
pub fn field_label(field: &str) -> Option<&'static str> {
    let key = unindexed(&canonical(field.trim()));
    FIELDS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).or_else(|| shutong_audit::labels::field_label_zh(&key))
}

/// The Chinese name of a field path, indices included (`row_filter.conditions[1].values` → 第 2 个行过滤条件的
/// 取值); a resource's code before the path (`101001/000042: items[0].name`) is kept.
pub fn field_text(field: &str) -> Option<String> {
    let field = field.trim();
    if let Some((code, rest)) = field.split_once(": ") {
        return field_text(rest).map(|t| format!("{code} {t}"));
    }
    let canonical = canonical(field);
    let Some((base, index, rest)) = first_index(&canonical) else {
        return field_label(field).map(str::to_string);
    };
    let head = match INDEXED.iter().find(|(b, _, _)| *b == base) {
        Some((_, pattern, one_based)) => pattern.replace("{}", &(if *one_based { index } else { index + 1 }).to_string()),
        None => format!("{}第 {} 项", field_label(base)?, index + 1),
    };
    if rest.is_empty() { Some(head) } else { field_text(rest).map(|tail| format!("{head}的{tail}")) }
}

/// One service message (without its field) in Chinese; `None` when no template matches. A message that is
/// Chinese already comes back as it is; `field: message` (a field error's `Display` wrapped into another
/// error) comes back as `「label」translated`.
pub fn message(message: &str) -> Option<String> {
    let m = message.trim();
    if m.is_empty() {
        return None;
    }
    if let Some(t) = lookup(m) {
        return Some(t);
    }
    // `field: message`, the `Display` of a field error wrapped into another error.
    m.match_indices(": ").find_map(|(i, _)| {
        let (field, rest) = (&m[..i], &m[i + 2..]);
        Some(format!("「{}」{}", field_text(field)?, self::message(rest)?))
    })
}

/// What the portal shows for a service error: `「label」translated` with a field, the translation alone
/// without one. A message no template matches is quoted as it is.
pub fn error_text(field: Option<&str>, message: &str) -> String {
    let text = self::message(message).unwrap_or_else(|| format!("填写或操作有误（{}）", message.trim()));
    match field.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => format!("「{}」{text}", field_text(f).unwrap_or_else(|| f.to_string())),
        None => text,
    }
}

/// The sentence for `NotFound { what }`: the thing does not exist or the principal may not see it.
pub fn not_found(what: &str) -> String {
    match NOT_FOUND.iter().find(|(w, _)| *w == what) {
        Some((_, text)) => (*text).to_string(),
        None => format!("所查找的对象（{what}）不存在，或无权查看。"),
    }
}

/// One broken catalog rule (`Violation { rule, field, message }`): the field error, then the rule unless it
/// is a plain field check (`FIELD`).
pub fn violation(rule: &str, field: &str, message: &str) -> String {
    let text = error_text(Some(field), message);
    if rule.is_empty() || rule == "FIELD" { text } else { format!("{text}（{rule}）") }
}

/// `R-CAT-1 items[2].sharing_condition: …; FIELD name: …`, the list in `CatalogError::Rules`' `Display`.
fn violations(list: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for piece in list.split("; ") {
        match parts.last_mut() {
            Some(last) if !(piece.starts_with("FIELD ") || piece.starts_with("R-")) => {
                last.push_str("; ");
                last.push_str(piece);
            }
            _ => parts.push(piece.to_string()),
        }
    }
    let one = |v: &str| {
        let Some((rule, rest)) = v.split_once(' ') else { return error_text(None, v) };
        // The field may hold ": " itself (a project's resource code before the path): split where the
        // message begins, the first split whose right side is a message of the table.
        let split = rest.match_indices(": ").find(|(i, _)| lookup(&rest[i + 2..]).is_some()).map(|(i, _)| i);
        match split.or_else(|| rest.find(": ")) {
            Some(i) => violation(rule, &rest[..i], &rest[i + 2..]),
            None => error_text(None, v),
        }
    };
    parts.iter().map(|p| one(p)).collect::<Vec<_>>().join("；")
}

/// The table's rendering of `m`, or `m` itself when it is Chinese already.
fn lookup(m: &str) -> Option<String> {
    MESSAGES.iter().find_map(|(en, zh)| captures(en, m).map(|caps| render(zh, &caps))).or_else(|| is_chinese(m).then(|| m.to_string()))
}

/// The parts of `text` at the `{}` of `template`, or `None` if it does not match.
fn captures<'a>(template: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let mut pieces = template.split("{}");
    let rest = text.strip_prefix(pieces.next().unwrap_or(""))?;
    let pieces: Vec<&str> = pieces.collect();
    let mut caps = Vec::with_capacity(pieces.len());
    match_pieces(&pieces, rest, &mut caps).then_some(caps)
}

/// Matches a capture followed by each piece in turn, backtracking over where each capture ends.
fn match_pieces<'a>(pieces: &[&str], text: &'a str, caps: &mut Vec<&'a str>) -> bool {
    let Some((lit, more)) = pieces.split_first() else { return text.is_empty() };
    if more.is_empty() {
        return match text.strip_suffix(lit) {
            Some(cap) if !cap.is_empty() => {
                caps.push(cap);
                true
            }
            _ => false,
        };
    }
    for (at, _) in text.match_indices(lit).filter(|(at, _)| *at > 0) {
        caps.push(&text[..at]);
        if match_pieces(more, &text[at + lit.len()..], caps) {
            return true;
        }
        caps.pop();
    }
    false
}

/// The Chinese template with the captured parts in place (`{0}`, `{1:m}` …).
fn render(template: &str, caps: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        let spec = &rest[open + 1..close];
        let (index, how) = spec.split_once(':').unwrap_or((spec, ""));
        let cap = index.parse::<usize>().ok().and_then(|i| caps.get(i)).copied().unwrap_or("");
        match how {
            "m" => out.push_str(&message(cap).unwrap_or_else(|| cap.to_string())),
            "f" => out.push_str(&field_text(cap).unwrap_or_else(|| cap.to_string())),
            "w" => out.push_str(&not_found(cap)),
            "v" => out.push_str(&violations(cap)),
            _ => out.push_str(cap),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Chinese already: some Chinese and, outside quoted values, no English word.
fn is_chinese(m: &str) -> bool {
    let mut outside = String::with_capacity(m.len());
    let mut quote: Option<char> = None;
    for c in m.chars() {
        match (quote, c) {
            (None, '\'') => quote = Some('\''),
            (None, '“') => quote = Some('”'),
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c) => outside.push(c),
        }
    }
    let english = outside.as_bytes().windows(2).any(|w| w.iter().all(u8::is_ascii_lowercase));
    m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) && !english
}

/// `items.3.name` as `items[3].name`.
fn canonical(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 2);
    for (i, seg) in field.split('.').enumerate() {
        if i > 0 && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// The path without its indices: `items[3].name` → `items.name`.
fn unindexed(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut depth = 0;
    for c in field.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `items[3].name` → (`items`, 3, `name`).
fn first_index(field: &str) -> Option<(&str, usize, &str)> {
    let open = field.find('[')?;
    let close = open + field[open..].find(']')?;
    let index = field[open + 1..close].trim().parse().ok()?;
    let rest = &field[close + 1..];
    Some((&field[..open], index, rest.strip_prefix('.').unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    /// The crates whose messages reach the portal.
    const CRATES: [&str; 10] = [
        "shutong-identity",
        "shutong-catalog",
        "shutong-sharing",
        "shutong-exchange",
        "shutong-systems",
        "shutong-quality",
        "shutong-refdata",
        "shutong-reference",
        "shutong-audit",
        "shutong-crypto",
    ];

    #[derive(Clone, Debug, PartialEq)]
    enum Tok {
        Ident(String),
        Str(String),
        Punct(char),
        Other,
    }

    /// Rust source as tokens with their lines: identifiers, string literals (escapes resolved, byte strings
    /// as `Other`), punctuation; comments dropped.
    fn lex(src: &str) -> Vec<(Tok, usize)> {
        let c: Vec<char> = src.chars().collect();
        let mut out = Vec::new();
        let (mut i, mut line) = (0, 1);
        while i < c.len() {
            let ch = c[i];
            let at = line;
            let next = |k: usize| c.get(i + k).copied();
            if ch == '\n' {
                line += 1;
                i += 1;
            } else if ch.is_whitespace() {
                i += 1;
            } else if ch == '/' && next(1) == Some('/') {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            } else if ch == '/' && next(1) == Some('*') {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(c[i] == '\n');
                        i += 1;
                    }
                }
            } else if let Some((j, hashes, byte)) = raw_string_start(&c, i) {
                let mut k = j;
                let mut s = String::new();
                while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'))) {
                    line += usize::from(c[k] == '\n');
                    s.push(c[k]);
                    k += 1;
                }
                out.push((if byte { Tok::Other } else { Tok::Str(s) }, at));
                i = k + 1 + hashes;
            } else if ch == '"' || (ch == 'b' && next(1) == Some('"')) {
                let byte = ch == 'b';
                let mut k = i + 1 + usize::from(byte);
                let mut s = String::new();
                while k < c.len() && c[k] != '"' {
                    if c[k] == '\\' {
                        k += 1;
                        match c.get(k) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('0') => s.push('\0'),
                            Some('u') => {
                                let end = (k..c.len()).find(|&e| c[e] == '}').unwrap_or(k);
                                let hex: String = c[(k + 2).min(end)..end].iter().collect();
                                s.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                                k = end;
                            }
                            Some('\n') => {
                                // A line continuation: the newline and the next line's indentation go.
                                line += 1;
                                while c.get(k + 1).is_some_and(|x| x.is_whitespace()) {
                                    k += 1;
                                    line += usize::from(c[k] == '\n');
                                }
                            }
                            Some(&x) => s.push(x),
                            None => {}
                        }
                    } else {
                        line += usize::from(c[k] == '\n');
                        s.push(c[k]);
                    }
                    k += 1;
                }
                out.push((if byte { Tok::Other } else { Tok::Str(s) }, at));
                i = k + 1;
            } else if ch == '\'' {
                // A character literal, or a lifetime.
                if next(1) == Some('\\') {
                    i = (i + 2..c.len()).find(|&e| c[e] == '\'').map_or(c.len(), |e| e + 1);
                } else if next(2) == Some('\'') {
                    i += 3;
                } else {
                    i += 1;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                }
                out.push((Tok::Other, at));
            } else if ch.is_alphanumeric() || ch == '_' {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                out.push((if ch.is_ascii_digit() { Tok::Other } else { Tok::Ident(word) }, at));
            } else {
                out.push((Tok::Punct(ch), at));
                i += 1;
            }
        }
        out
    }

    /// At a raw string (`r"…"`, `r#"…"#`, `br"…"`): where its text begins, its `#`s, whether it is bytes.
    fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize, bool)> {
        let byte = c[i] == 'b';
        let mut j = i + usize::from(byte);
        if c.get(j) != Some(&'r') || (i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')) {
            return None;
        }
        j += 1;
        let hashes = c[j..].iter().take_while(|x| **x == '#').count();
        (c.get(j + hashes) == Some(&'"')).then_some((j + hashes + 1, hashes, byte))
    }

    /// The tokens without the items under `#[cfg(test)]` (each up to its closing brace or semicolon).
    fn without_tests(t: Vec<(Tok, usize)>) -> Vec<(Tok, usize)> {
        let attr = [
            Tok::Punct('#'),
            Tok::Punct('['),
            Tok::Ident("cfg".into()),
            Tok::Punct('('),
            Tok::Ident("test".into()),
            Tok::Punct(')'),
            Tok::Punct(']'),
        ];
        let mut out = Vec::with_capacity(t.len());
        let mut i = 0;
        while i < t.len() {
            if t[i..].iter().map(|x| &x.0).take(attr.len()).eq(attr.iter()) {
                i += attr.len();
                let mut depth = 0;
                while i < t.len() {
                    let tok = &t[i].0;
                    i += 1;
                    match tok {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') if depth == 1 => break,
                        Tok::Punct('}') => depth -= 1,
                        Tok::Punct(';') if depth == 0 => break,
                        _ => {}
                    }
                }
            } else {
                out.push(t[i].clone());
                i += 1;
            }
        }
        out
    }

    /// A `format!` string with each `{…}` replaced by a sample value, X1, X2 …
    fn sample(fmt: &str) -> String {
        let mut out = String::new();
        let (mut n, mut chars) = (0, fmt.chars().peekable());
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => out.extend(chars.next()),
                '}' if chars.peek() == Some(&'}') => out.extend(chars.next()),
                '{' => {
                    chars.by_ref().find(|x| *x == '}');
                    n += 1;
                    out.push_str(&format!("X{n}"));
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The text of an argument that is a string literal (`"…"`, `"…".into()`, `&"…"`) or `format!("…", …)`.
    fn text_of(arg: &[(Tok, usize)]) -> Option<String> {
        let toks: Vec<&Tok> = arg.iter().map(|x| &x.0).skip_while(|t| **t == Tok::Punct('&')).collect();
        match toks.as_slice() {
            [Tok::Str(s)] | [Tok::Str(s), Tok::Punct('.'), ..] => Some(s.clone()),
            [Tok::Ident(f), Tok::Punct('!'), Tok::Punct('('), Tok::Str(s), ..] if f == "format" => Some(sample(s)),
            _ => None,
        }
    }

    /// The arguments between the bracket at `open` and its match, split at top-level commas.
    fn arguments(t: &[(Tok, usize)], open: usize) -> Vec<&[(Tok, usize)]> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0, open + 1);
        for (i, (tok, _)) in t.iter().enumerate().skip(open) {
            match tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth -= 1;
                    if depth == 0 {
                        if i > start {
                            out.push(&t[start..i]);
                        }
                        break;
                    }
                }
                Tok::Punct(',') if depth == 1 => {
                    out.push(&t[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out
    }

    /// What the sources say: messages, field names and the things `NotFound` names.
    #[derive(Default)]
    struct Found {
        messages: Vec<(String, String)>,
        fields: Vec<(String, String)>,
        whats: Vec<(String, String)>,
    }

    /// Helpers taking a field name, with the argument positions that are field names.
    const FIELD_ARGUMENTS: [(&str, usize, &[usize]); 8] = [
        ("invalid", 2, &[0]),
        ("v", 3, &[1]),
        ("trimmed_name", 3, &[0]),
        ("text", 4, &[0]),
        ("dept", 3, &[2]),
        ("check_items", 3, &[2]),
        ("check_methods", 3, &[2]),
        ("conditions_sql", 4, &[3]),
    ];
    /// Calls whose string arguments are messages (except those listed as fields or skipped).
    const MESSAGE_CALLS: [&str; 11] = ["invalid", "forbidden", "refusal", "v", "issue", "bad", "reject", "err", "Err", "ok_or", "error"];
    /// Macros whose strings are no messages to users: logs, panics, JSON, output.
    const NOT_MESSAGE_MACROS: [&str; 15] = [
        "info",
        "warn",
        "error",
        "debug",
        "trace",
        "panic",
        "assert",
        "assert_eq",
        "unreachable",
        "json",
        "include_str",
        "concat",
        "println",
        "eprintln",
        "writeln",
    ];
    /// Calls whose strings are no messages to users: SQL, lookups, panics, file contents.
    const NOT_MESSAGE_CALLS: [&str; 13] = [
        "expect",
        "contains",
        "starts_with",
        "ends_with",
        "query",
        "query_scalar",
        "query_as",
        "execute",
        "bind",
        "try_get",
        "push_str",
        "from",
        "write",
    ];

    /// Looks like a sentence to a user, not SQL or a code: two English words at least.
    fn reads_as_message(s: &str) -> bool {
        let sql = ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "SET ", " FROM ", " WHERE ", " AND ", " ON CONFLICT", "PRAGMA "];
        let words = s.split(' ').filter(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase())).count();
        words >= 2 && !sql.iter().any(|k| s.contains(k))
    }

    fn scan(src: &str, file: &str, found: &mut Found) {
        let t = without_tests(lex(src));
        let at = |i: usize| format!("{file}:{}", t[i].1);
        let is_error_path = |i: usize| {
            i >= 3
                && t[i - 1].0 == Tok::Punct(':')
                && t[i - 2].0 == Tok::Punct(':')
                && matches!(&t[i - 3].0, Tok::Ident(p) if p.ends_with("Error") || p.ends_with("Refusal"))
        };
        // 1. Error constructors and the helpers that build them.
        for i in 0..t.len().saturating_sub(1) {
            let Tok::Ident(name) = &t[i].0 else { continue };
            let variant = is_error_path(i) && name.starts_with(|c: char| c.is_ascii_uppercase());
            if variant && t[i + 1].0 == Tok::Punct('{') {
                for arg in arguments(&t, i + 1) {
                    if let [(Tok::Ident(f), _), (Tok::Punct(':'), _), value @ ..] = arg
                        && let Some(s) = text_of(value)
                    {
                        let list = match f.as_str() {
                            "field" => &mut found.fields,
                            "what" => &mut found.whats,
                            _ => &mut found.messages,
                        };
                        list.push((s, at(i)));
                    }
                }
            }
            if t[i + 1].0 != Tok::Punct('(') {
                continue;
            }
            let args = arguments(&t, i + 1);
            let fields = FIELD_ARGUMENTS.iter().find(|(f, n, _)| f == name && *n == args.len()).map(|(_, _, k)| *k);
            let messages = variant || MESSAGE_CALLS.contains(&name.as_str());
            for (k, arg) in args.iter().enumerate() {
                let Some(s) = text_of(arg) else { continue };
                let text = if name == "error" { sample(&s) } else { s };
                match (name.as_str(), args.len(), k) {
                    _ if fields.is_some_and(|f| f.contains(&k)) => found.fields.push((text, at(i))),
                    ("check_period", 5, 3 | 4) => found.fields.push((text, at(i))),
                    // refusal(visible, message, what) in identity; the rule of a violation; an import issue's sheet and column.
                    ("refusal", 3, 2) => found.whats.push((text, at(i))),
                    ("v", 3, 0) | ("issue", 4, 0..=2) | ("bad", 2, 0) => {}
                    _ if messages && fields.is_none_or(|_| k > 0) => found.messages.push((text, at(i))),
                    _ => {}
                }
            }
        }
        // 2. Any other sentence in a string or `format!` outside logs, SQL and panics (a message built in a
        //    closure or a match arm, a `#[error]` template).
        let mut open: Vec<Option<(String, bool)>> = Vec::new();
        for (i, (tok, _)) in t.iter().enumerate() {
            match tok {
                Tok::Punct('(' | '[' | '{') => open.push(match (i.checked_sub(1).map(|k| &t[k].0), i.checked_sub(2).map(|k| &t[k].0)) {
                    (Some(Tok::Punct('!')), Some(Tok::Ident(m))) => Some((m.clone(), true)),
                    (Some(Tok::Ident(m)), _) => Some((m.clone(), false)),
                    _ => None,
                }),
                Tok::Punct(')' | ']' | '}') => {
                    open.pop();
                }
                Tok::Str(s) => {
                    let attribute =
                        matches!(open.last(), Some(Some((m, false))) if m == "error") && i >= 3 && t[i - 3].0 == Tok::Punct('[');
                    let excluded = open.iter().flatten().any(|(m, is_macro)| {
                        if *is_macro { NOT_MESSAGE_MACROS.contains(&m.as_str()) } else { NOT_MESSAGE_CALLS.contains(&m.as_str()) }
                    });
                    let format = matches!(open.last(), Some(Some((m, true))) if m == "format" || m == "write");
                    let text = if format || attribute { sample(s) } else { s.clone() };
                    if (attribute || !excluded) && reads_as_message(&text) {
                        found.messages.push((text, at(i)));
                    }
                }
                _ => {}
            }
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }

    fn found_in_sources() -> Found {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Found::default();
        for name in CRATES {
            let mut files = Vec::new();
            rust_files(&root.join(name).join("src"), &mut files);
            assert!(!files.is_empty(), "no sources under {name}/src");
            for f in files {
                let src = std::fs::read_to_string(&f).unwrap();
                let rel = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
                scan(&src, &rel, &mut found);
            }
        }
        found
    }

    /// Text with something to translate: a letter besides the sample values.
    fn has_words(s: &str) -> bool {
        let mut rest = s.to_string();
        for n in (1..10).rev() {
            rest = rest.replace(&format!("X{n}"), "");
        }
        rest.chars().any(|c| c.is_alphabetic())
    }

    #[test]
    fn every_service_message_has_a_chinese_rendering() {
        let found = found_in_sources();
        let whats: BTreeMap<&str, &str> = found.whats.iter().map(|(w, at)| (w.as_str(), at.as_str())).collect();
        // Each message once, with the first place that says it; the names of things not found are no messages.
        let mut messages: BTreeMap<&str, &str> = BTreeMap::new();
        for (m, at) in found.messages.iter().filter(|(m, _)| has_words(m) && !whats.contains_key(m.as_str())) {
            messages.entry(m.as_str()).or_insert(at.as_str());
        }
        // Fields with sample indices; a path whose base is a parameter (`{field}[{i}]`) is named where it is passed.
        let mut fields: BTreeMap<String, &str> = BTreeMap::new();
        for (f, at) in found.fields.iter().filter(|(f, _)| !f.starts_with('X')) {
            fields.entry(f.replace("X1", "0").replace("X2", "1")).or_insert(at.as_str());
        }
        let mut misses: Vec<String> = messages.iter().filter(|(m, _)| message(m).is_none()).map(|(m, at)| format!("{at}: {m:?}")).collect();
        misses.extend(fields.iter().filter(|(f, _)| field_text(f).is_none()).map(|(f, at)| format!("{at}: field {f:?}")));
        misses
            .extend(whats.iter().filter(|(w, _)| !NOT_FOUND.iter().any(|(k, _)| k == *w)).map(|(w, at)| format!("{at}: not found {w:?}")));
        println!(
            "{} service messages, {} field names and {} things not found, each rendered in Chinese",
            messages.len(),
            fields.len(),
            whats.len()
        );
        assert!(misses.is_empty(), "{} without a Chinese rendering:\n{}", misses.len(), misses.join("\n"));
        // The extractor must see the messages, or the test above proves nothing.
        assert!(messages.len() >= 150, "only {} messages found in the sources", messages.len());
        for known in
            ["must not be empty", "X1 is before the requested period (X2)", "only a published resource can be withdrawn", "empty value"]
        {
            assert!(messages.contains_key(known), "the extractor missed {known:?}");
        }
        assert!(fields.contains_key("row_filter.conditions[0].values"), "the extractor missed a field");
        assert!(whats.contains_key("request"), "the extractor missed a thing not found");
    }

    #[test]
    fn the_table_is_consistent() {
        for (i, (en, zh)) in MESSAGES.iter().enumerate() {
            let holes = en.matches("{}").count();
            assert!(!en.contains("{}{}"), "{en:?}: two captures side by side");
            let used: Vec<usize> = zh
                .split('{')
                .skip(1)
                .filter_map(|s| s.split('}').next())
                .map(|spec| spec.split(':').next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX))
                .collect();
            assert!(used.iter().all(|n| *n < holes), "{en:?}: {zh:?} places a capture the English does not have");
            assert!((0..holes).all(|n| used.contains(&n)), "{en:?}: {zh:?} drops a captured value");
            // No earlier entry takes this one's messages.
            let sample: String =
                en.split("{}").enumerate().map(|(k, piece)| if k == 0 { piece.to_string() } else { format!("V{k}{piece}") }).collect();
            let first = MESSAGES.iter().position(|(e, _)| captures(e, &sample).is_some());
            assert_eq!(first, Some(i), "{en:?} is hidden by {:?}", first.map(|f| MESSAGES[f].0));
            assert!(!is_chinese(en), "{en:?} is Chinese already");
        }
        for (k, _) in FIELDS {
            assert_eq!(FIELDS.iter().filter(|(x, _)| x == k).count(), 1, "{k} is labelled twice");
        }
    }

    #[test]
    fn translations_and_fallbacks() {
        assert_eq!(message("must not be empty").as_deref(), Some("不能为空"));
        assert_eq!(error_text(Some("purpose"), "must not be empty"), "「用途」不能为空");
        assert_eq!(
            error_text(Some("valid_from"), "2024-01-01 is before the requested period (2024-02-01)"),
            "「授权起始日期」2024-01-01 早于申请的使用期限（2024-02-01）"
        );
        assert_eq!(
            message("grant 7 has a daily quota of 100 records; 3 are left today and this access needs 5").as_deref(),
            Some("授权 7 每日限额 100 条，今日剩余 3 条，本次访问需要 5 条")
        );
        // A nested message, and the `field: message` of a field error wrapped into another.
        assert_eq!(
            message("'110101199003077777' is not a valid 公民身份号码: check character is '7', expected 'X'").as_deref(),
            Some("“110101199003077777”不是有效的公民身份号码：校验码为“7”，应为“X”")
        );
        assert_eq!(
            message("resource_code: resource '101001/000001' does not exist or is not published").as_deref(),
            Some("「资源代码」信息资源“101001/000001”不存在或未发布")
        );
        assert_eq!(message("forbidden: you may not change this user").as_deref(), Some("无权操作：无权修改该用户"));
        assert_eq!(
            message("2 rule violation(s): R-CAT-1 items[2].sharing_condition: 有条件共享 item '住址' requires 共享条件; FIELD name: 信息资源名称 must be 1 to 200 characters").as_deref(),
            Some("未通过目录规则校验（共 2 项）：「第 3 个信息项的共享条件」有条件共享的信息项“住址”须填写共享条件（R-CAT-1）；「名称」信息资源名称应为 1 至 200 个字符")
        );
        // Already Chinese: as it is.
        assert_eq!(message("'2024-13-01' 不是 YYYY-MM-DD 格式的日期").as_deref(), Some("'2024-13-01' 不是 YYYY-MM-DD 格式的日期"));
        // Fields: labels, indices, the audit trail's labels, the name itself.
        assert_eq!(field_label("resource_code"), Some("资源代码"));
        assert_eq!(field_label("items[3].name"), Some("信息项名称"));
        assert_eq!(field_text("items[3]").as_deref(), Some("第 4 个信息项"));
        assert_eq!(field_text("items.3.name").as_deref(), Some("第 4 个信息项的名称"));
        assert_eq!(field_text("columns[2]").as_deref(), Some("第 2 列"));
        assert_eq!(field_text("row_filter.conditions[0].values").as_deref(), Some("第 1 个行过滤条件的取值"));
        assert_eq!(field_label("previous_valid_to"), Some("原有效期至"));
        assert_eq!(error_text(Some("no_such_field"), "must not be empty"), "「no_such_field」不能为空");
        assert_eq!(error_text(None, "something nobody wrote"), "填写或操作有误（something nobody wrote）");
        assert_eq!(not_found("request"), "共享申请不存在，或无权查看。");
        assert_eq!(message("request not found").as_deref(), Some("共享申请不存在，或无权查看。"));
        assert_eq!(
            message("character 3 'Ａ' is not ASCII (full-width character 全角; use half-width ASCII)").as_deref(),
            Some("第 3 个字符“Ａ”为全角字符，请改用半角字符")
        );
    }
}
