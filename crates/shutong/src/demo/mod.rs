//! `shutong serve --demo`: a fictional province (示范省) with three cities, their departments and demo
//! accounts, so that a newcomer can log in and look around. The departments are invented; their region
//! codes are borrowed from Jiangsu's GB/T 2260 codes (320000 and its cities) so that every check passes.
//! Seeding is idempotent: it runs once per database.

use shutong_identity::Role;

pub const AUTHORITY_NAME: &str = "示范省大数据管理局";
pub const ADMIN_PASSWORD: &str = "Shutong-Demo-2026";
pub const DEMO_PASSWORD: &str = "Demo-Pass-2026";

/// The documented demo accounts: username, password, department, roles.
pub const DEMO_ACCOUNTS: &[(&str, &str, &str, &[Role])] = &[
    ("auditor", DEMO_PASSWORD, "示范省审计厅", &[Role::Auditor]),
    ("sq.reviewer", DEMO_PASSWORD, AUTHORITY_NAME, &[Role::Reviewer]),
    ("ga.admin", DEMO_PASSWORD, "示范省公安厅", &[Role::DepartmentAdmin]),
    ("ga.editor", DEMO_PASSWORD, "示范省公安厅", &[Role::CatalogEditor]),
    ("ga.reviewer", DEMO_PASSWORD, "示范省公安厅", &[Role::Reviewer]),
    ("rs.admin", DEMO_PASSWORD, "示范省人力资源和社会保障厅", &[Role::DepartmentAdmin, Role::CatalogEditor]),
    ("sj.editor", DEMO_PASSWORD, "示范省市场监督管理局", &[Role::CatalogEditor, Role::Reviewer]),
    ("dc.admin", DEMO_PASSWORD, "东川市大数据管理局", &[Role::DepartmentAdmin]),
    ("dc.ga.editor", DEMO_PASSWORD, "东川市公安局", &[Role::CatalogEditor, Role::Reviewer]),
    ("xl.admin", DEMO_PASSWORD, "西岭市大数据管理局", &[Role::DepartmentAdmin]),
    ("dc.rs.editor", DEMO_PASSWORD, "东川市人力资源和社会保障局", &[Role::CatalogEditor, Role::Reviewer]),
    ("mz.reviewer", DEMO_PASSWORD, "示范省民政厅", &[Role::Reviewer]),
    ("wj.reviewer", DEMO_PASSWORD, "示范省卫生健康委员会", &[Role::Reviewer]),
    ("zr.reviewer", DEMO_PASSWORD, "示范省自然资源厅", &[Role::Reviewer]),
    ("fgw.reviewer", DEMO_PASSWORD, "示范省发展和改革委员会", &[Role::Reviewer]),
    ("czt.reviewer", DEMO_PASSWORD, "示范省财政厅", &[Role::Reviewer]),
];

mod data;
mod quality;
mod scenarios;
mod systems;

pub use data::demo_credit_code;

/// A demo account as the principal it acts as, with its audit context (the seeding acts as its users).
pub(crate) async fn demo_user(
    db: &shutong_store::Db,
    name: &str,
) -> anyhow::Result<(shutong_identity::Principal, shutong_audit::AuditContext)> {
    let id = shutong_identity::user_id_by_username(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
    let p = shutong_identity::load_principal(db, id).await?.ok_or_else(|| anyhow::anyhow!("demo user {name}"))?;
    let ctx = shutong_audit::AuditContext { actor_user_id: Some(id.0), actor: name.to_string(), ..Default::default() };
    Ok((p, ctx))
}

/// A demo resource's code, by its name.
pub(crate) async fn demo_code(db: &shutong_store::Db, name: &str) -> anyhow::Result<shutong_catalog::ResourceCode> {
    shutong_catalog::code_by_name(db, name).await?.ok_or_else(|| anyhow::anyhow!("demo resource {name}"))
}
pub use quality::{seed_consistency, seed_objections, seed_quality, seed_themes};
pub use scenarios::{seed, seed_exchange};
pub use systems::{INVENTORY_DEPARTMENT, seed_systems};

#[cfg(test)]
mod tests {
    #[test]
    fn demo_catalog_obeys_the_rules() {
        for r in super::data::CATALOG {
            let doc = super::data::demo_document(r);
            let v = shutong_catalog::rules::check(&doc, r.class.starts_with('1'));
            assert!(v.is_empty(), "{}: {v:?}", r.name);
        }
    }

    #[test]
    fn demo_codes_are_valid() {
        for i in 1..100 {
            let c = super::demo_credit_code("320100", i);
            assert!(shutong_reference::CreditCode::parse(&c).is_ok(), "{c}");
        }
    }
}
