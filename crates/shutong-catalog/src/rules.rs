//! The catalog rules (SPEC C2, R-CAT-1 … R-CAT-4) as one pure function. Lifecycle (R-CAT-5), editing
//! rights (R-CAT-6), change deadlines (R-CAT-7) and project catalogs (R-CAT-8) are enforced by the
//! service functions.

use serde::Serialize;

use crate::model::{ResourceDocument, SharingType};

/// One broken rule: which, where, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule, e.g. `R-CAT-1`, or `FIELD` for a field-level check.
    pub rule: &'static str,
    /// The field at fault, as a path (`items[2].sharing_type`).
    pub field: String,
    pub message: String,
}

fn v(rule: &'static str, field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation { rule, field: field.into(), message: message.into() }
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().map(str::trim).is_none_or(str::is_empty)
}

/// Field checks that hold for every saved version, drafts included.
pub fn check_fields(doc: &ResourceDocument) -> Vec<Violation> {
    let mut out = Vec::new();
    let name_len = doc.name.trim().chars().count();
    if name_len == 0 || name_len > 200 {
        out.push(v("FIELD", "name", "信息资源名称 must be 1 to 200 characters"));
    }
    if doc.summary.chars().count() > 4000 {
        out.push(v("FIELD", "summary", "信息资源摘要 must be at most 4000 characters"));
    }
    if doc.items.len() > 2000 {
        out.push(v("FIELD", "items", "at most 2000 information items"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in doc.items.iter().enumerate() {
        let n = item.name.trim();
        if n.is_empty() || n.chars().count() > 200 {
            out.push(v("FIELD", format!("items[{i}].name"), "信息项名称 must be 1 to 200 characters"));
        } else if !seen.insert(n.to_string()) {
            out.push(v("FIELD", format!("items[{i}].name"), format!("信息项 '{n}' appears twice")));
        }
        if item.length == Some(0) || item.length.is_some_and(|l| l > 1_000_000) {
            out.push(v("FIELD", format!("items[{i}].length"), "length must be between 1 and 1000000"));
        }
    }
    if doc.record_count.is_some_and(|c| c < 0) {
        out.push(v("FIELD", "record_count", "记录数 must not be negative"));
    }
    if doc.storage_mb.is_some_and(|c| !(0.0..=1e12).contains(&c)) {
        out.push(v("FIELD", "storage_mb", "存储量 must be between 0 and 1e12 MB"));
    }
    out
}

/// Every rule a resource must satisfy to be submitted or published. `is_base_resource` is true for
/// resources classified under 1 基础信息资源.
pub fn check(doc: &ResourceDocument, is_base_resource: bool) -> Vec<Violation> {
    let mut out = check_fields(doc);
    if doc.summary.trim().is_empty() {
        out.push(v("FIELD", "summary", "信息资源摘要 is required"));
    }
    if doc.items.is_empty() {
        out.push(v("FIELD", "items", "a resource needs at least one 信息项"));
    }
    if doc.sharing_methods.is_empty() && doc.sharing_type != SharingType::NotShared {
        out.push(v("FIELD", "sharing_methods", "共享方式 is required for a shareable resource"));
    }
    // R-CAT-1: conditions and usage for 有条件共享; a legal basis for 不予共享 (第十条, 第十一条(一)).
    match doc.sharing_type {
        SharingType::Conditional => {
            if blank(&doc.sharing_condition) {
                out.push(v("R-CAT-1", "sharing_condition", "有条件共享 requires 共享条件"));
            }
            if blank(&doc.permitted_usage) {
                out.push(v("R-CAT-1", "permitted_usage", "有条件共享 requires the permitted usage (使用要求)"));
            }
        }
        SharingType::NotShared => {
            if blank(&doc.legal_basis) {
                out.push(v(
                    "R-CAT-1",
                    "legal_basis",
                    "不予共享 requires a basis in law, administrative regulation or central policy (第十一条(一))",
                ));
            }
        }
        SharingType::Unconditional => {}
    }
    for (i, item) in doc.items.iter().enumerate() {
        if item.sharing_type == SharingType::Conditional && blank(&item.sharing_condition) && blank(&doc.sharing_condition) {
            out.push(v("R-CAT-1", format!("items[{i}].sharing_condition"), format!("有条件共享 item '{}' requires 共享条件", item.name)));
        }
        // R-CAT-2: base items of base resources are unconditional (第十一条(二)).
        if item.is_base_item {
            if !is_base_resource {
                out.push(v("R-CAT-2", format!("items[{i}].is_base_item"), "基础信息项 exist only in base resources (classification 1)"));
            } else if item.sharing_type != SharingType::Unconditional {
                out.push(v(
                    "R-CAT-2",
                    format!("items[{i}].sharing_type"),
                    format!("基础信息项 '{}' of a base resource must be 无条件共享", item.name),
                ));
            }
        }
    }
    // R-CAT-3: the resource's type follows from its items (第十条 definitions).
    if !doc.items.is_empty() {
        let all = |t: SharingType| doc.items.iter().all(|i| i.sharing_type == t);
        let expected = if all(SharingType::Unconditional) {
            SharingType::Unconditional
        } else if all(SharingType::NotShared) {
            SharingType::NotShared
        } else {
            SharingType::Conditional
        };
        if doc.sharing_type != expected {
            out.push(v(
                "R-CAT-3",
                "sharing_type",
                format!("the items make this resource {}, not {}", expected.label_zh(), doc.sharing_type.label_zh()),
            ));
        }
    }
    // R-CAT-4: nothing 不予共享 is open to the public.
    if doc.open_to_public && doc.sharing_type == SharingType::NotShared {
        out.push(v("R-CAT-4", "open_to_public", "a 不予共享 resource is never open to the public"));
    }
    if doc.open_to_public && doc.secrecy == crate::model::Secrecy::Classified {
        out.push(v("R-CAT-4", "open_to_public", "a classified (涉密) resource is never open to the public"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    pub fn item(name: &str, t: SharingType) -> InfoItem {
        InfoItem {
            name: name.into(),
            data_type: DataType::Char,
            length: Some(18),
            required: true,
            is_key: false,
            mask: None,
            sharing_type: t,
            sharing_condition: None,
            standard: None,
            is_base_item: false,
        }
    }

    pub fn doc(t: SharingType, items: Vec<InfoItem>) -> ResourceDocument {
        ResourceDocument {
            name: "人口基本信息".into(),
            summary: "全省户籍人口基本信息".into(),
            format: ResourceFormat::Database,
            items,
            sharing_type: t,
            sharing_condition: None,
            permitted_usage: None,
            legal_basis: None,
            sharing_methods: vec![SharingMethod::OnlineQuery],
            open_to_public: false,
            open_condition: None,
            update_cycle: UpdateCycle::Daily,
            related_codes: vec![],
            secrecy: Secrecy::NonClassified,
            network: Network::Outer,
            source_system: None,
            contact: None,
            record_count: None,
            storage_mb: None,
            tags: vec![],
        }
    }

    fn rules_of(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|x| x.rule).collect()
    }

    #[test]
    fn r_cat_1() {
        let d = doc(SharingType::Conditional, vec![item("a", SharingType::Conditional)]);
        let v = check(&d, false);
        assert!(v.iter().any(|x| x.rule == "R-CAT-1" && x.field == "sharing_condition"), "{v:?}");
        assert!(v.iter().any(|x| x.rule == "R-CAT-1" && x.field == "permitted_usage"));
        let d = doc(SharingType::NotShared, vec![item("a", SharingType::NotShared)]);
        assert!(check(&d, false).iter().any(|x| x.rule == "R-CAT-1" && x.field == "legal_basis"));
        let mut d = doc(SharingType::NotShared, vec![item("a", SharingType::NotShared)]);
        d.legal_basis = Some("《中华人民共和国保守国家秘密法》".into());
        assert!(check(&d, false).is_empty(), "{:?}", check(&d, false));
    }

    #[test]
    fn r_cat_2() {
        let mut i = item("公民身份号码", SharingType::Conditional);
        i.is_base_item = true;
        let mut d = doc(SharingType::Conditional, vec![i.clone()]);
        d.sharing_condition = Some("x".into());
        d.permitted_usage = Some("y".into());
        assert!(rules_of(&check(&d, true)).contains(&"R-CAT-2"));
        i.sharing_type = SharingType::Unconditional;
        let d = doc(SharingType::Unconditional, vec![i]);
        assert!(check(&d, true).is_empty());
        assert!(rules_of(&check(&d, false)).contains(&"R-CAT-2"), "base items only in base resources");
    }

    #[test]
    fn r_cat_3() {
        let d = doc(SharingType::Unconditional, vec![item("a", SharingType::Unconditional), item("b", SharingType::NotShared)]);
        assert!(rules_of(&check(&d, false)).contains(&"R-CAT-3"));
        let d = doc(SharingType::Conditional, vec![item("a", SharingType::Unconditional)]);
        assert!(rules_of(&check(&d, false)).contains(&"R-CAT-3"));
    }

    #[test]
    fn r_cat_4() {
        let mut d = doc(SharingType::NotShared, vec![item("a", SharingType::NotShared)]);
        d.legal_basis = Some("x".into());
        d.open_to_public = true;
        assert!(rules_of(&check(&d, false)).contains(&"R-CAT-4"));
    }

    #[test]
    fn fields() {
        let mut d = doc(SharingType::Unconditional, vec![item("a", SharingType::Unconditional), item("a", SharingType::Unconditional)]);
        d.name = " ".into();
        let v = check(&d, false);
        assert!(v.iter().any(|x| x.field == "name"));
        assert!(v.iter().any(|x| x.field == "items[1].name"));
    }
}
