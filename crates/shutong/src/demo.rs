//! `shutong serve --demo`: a fictional province (示范省) with three cities, their departments and demo
//! accounts, so that a newcomer can log in and look around. The departments are invented; their region
//! codes are borrowed from Jiangsu's GB/T 2260 codes (320000 and its cities) so that every check passes.
//! Seeding is idempotent: it runs once per database.

use shutong_audit::AuditContext;
use shutong_identity::{self as identity, DepartmentKind, DepartmentLevel, NewDepartment, NewUser, Principal, Role, SecuritySettings};
use shutong_reference::{CreditCode, OrgCode, RegionTable};
use shutong_store::Db;

pub const AUTHORITY_NAME: &str = "示范省大数据管理局";
pub const ADMIN_PASSWORD: &str = "Shutong-Demo-2026";
pub const DEMO_PASSWORD: &str = "Demo-Pass-2026";

/// The documented demo accounts: username, password, department, roles.
pub const DEMO_ACCOUNTS: &[(&str, &str, &str, &[Role])] = &[
    ("auditor", DEMO_PASSWORD, "示范省审计厅", &[Role::Auditor]),
    ("ga.admin", DEMO_PASSWORD, "示范省公安厅", &[Role::DepartmentAdmin]),
    ("ga.editor", DEMO_PASSWORD, "示范省公安厅", &[Role::CatalogEditor]),
    ("ga.reviewer", DEMO_PASSWORD, "示范省公安厅", &[Role::Reviewer]),
    ("rs.admin", DEMO_PASSWORD, "示范省人力资源和社会保障厅", &[Role::DepartmentAdmin, Role::CatalogEditor]),
    ("sj.editor", DEMO_PASSWORD, "示范省市场监督管理局", &[Role::CatalogEditor, Role::Reviewer]),
    ("dc.admin", DEMO_PASSWORD, "东川市大数据管理局", &[Role::DepartmentAdmin]),
    ("dc.ga.editor", DEMO_PASSWORD, "东川市公安局", &[Role::CatalogEditor, Role::Reviewer]),
    ("xl.admin", DEMO_PASSWORD, "西岭市大数据管理局", &[Role::DepartmentAdmin]),
];

/// A valid 统一社会信用代码 for a demo department: 机构编制/机关, the region, a made-up organisation code.
pub fn demo_credit_code(region: &str, serial: u32) -> String {
    let body = format!("MB{serial:06}");
    let org = format!("{body}{}", OrgCode::check_character(body.as_bytes()).unwrap_or('0'));
    let first17 = format!("11{region}{org}");
    format!("{first17}{}", CreditCode::check_character(first17.as_bytes()).unwrap_or('0'))
}

struct DemoDepartment {
    name: &'static str,
    region: &'static str,
    level: DepartmentLevel,
    kind: DepartmentKind,
    parent: Option<&'static str>,
}

const fn d(
    name: &'static str,
    region: &'static str,
    level: DepartmentLevel,
    kind: DepartmentKind,
    parent: Option<&'static str>,
) -> DemoDepartment {
    DemoDepartment { name, region, level, kind, parent }
}

use DepartmentKind::{AuditOffice, Government, SharingAuthority};
use DepartmentLevel::{City, Province};

const DEPARTMENTS: &[DemoDepartment] = &[
    d("示范省公安厅", "320000", Province, Government, None),
    d("示范省人力资源和社会保障厅", "320000", Province, Government, None),
    d("示范省市场监督管理局", "320000", Province, Government, None),
    d("示范省卫生健康委员会", "320000", Province, Government, None),
    d("示范省民政厅", "320000", Province, Government, None),
    d("示范省自然资源厅", "320000", Province, Government, None),
    d("示范省审计厅", "320000", Province, AuditOffice, None),
    d("东川市大数据管理局", "320100", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("东川市公安局", "320100", City, Government, Some("示范省公安厅")),
    d("东川市人力资源和社会保障局", "320100", City, Government, Some("示范省人力资源和社会保障厅")),
    d("东川市市场监督管理局", "320100", City, Government, Some("示范省市场监督管理局")),
    d("西岭市大数据管理局", "320200", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("西岭市公安局", "320200", City, Government, Some("示范省公安厅")),
    d("西岭市民政局", "320200", City, Government, Some("示范省民政厅")),
    d("南湖市大数据管理局", "320300", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("南湖市卫生健康委员会", "320300", City, Government, Some("示范省卫生健康委员会")),
];

/// Seeds the demo once. Returns whether anything was created.
pub async fn seed(db: &Db, regions: &RegionTable, security: &SecuritySettings) -> anyhow::Result<bool> {
    let first_code = demo_credit_code(DEPARTMENTS[0].region, 101);
    if identity::find_department_by_credit_code(db, &first_code).await.is_ok() {
        return Ok(false);
    }
    let operator = Principal::operator("system:demo");
    let ctx = AuditContext::system("system:demo");
    let mut ids = std::collections::HashMap::new();
    for dept in identity::list_departments(db).await? {
        ids.insert(dept.name.clone(), dept.id);
    }
    for (i, dd) in DEPARTMENTS.iter().enumerate() {
        let parent_id = dd.parent.and_then(|p| ids.get(p).copied());
        let created = identity::create_department(
            db,
            regions,
            &operator,
            &ctx,
            NewDepartment {
                name: dd.name.into(),
                credit_code: demo_credit_code(dd.region, i as u32 + 101),
                region_code: dd.region.into(),
                level: dd.level,
                kind: dd.kind,
                parent_id,
            },
        )
        .await?;
        ids.insert(dd.name.to_string(), created.id);
    }
    for (username, password, dept, roles) in DEMO_ACCOUNTS {
        let Some(department_id) = ids.get(*dept).copied() else { continue };
        identity::create_user(
            db,
            security,
            &operator,
            &ctx,
            NewUser {
                username: (*username).into(),
                display_name: format!("{dept}{}", roles.first().map(|r| r.label_zh()).unwrap_or("")),
                department_id,
                password: Some((*password).into()),
                is_system: false,
                roles: roles.to_vec(),
            },
        )
        .await?;
    }
    if let Some(ga) = ids.get("示范省公安厅").copied() {
        identity::create_user(
            db,
            security,
            &operator,
            &ctx,
            NewUser {
                username: "ga.exchange".into(),
                display_name: "示范省公安厅前置机".into(),
                department_id: ga,
                password: None,
                is_system: true,
                roles: vec![Role::SystemAccount],
            },
        )
        .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_codes_are_valid() {
        for i in 1..100 {
            let c = super::demo_credit_code("320100", i);
            assert!(shutong_reference::CreditCode::parse(&c).is_ok(), "{c}");
        }
    }
}
