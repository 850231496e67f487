//! 数据资产登记 (贵州方案 四(八)): per department, its systems and the resources they produce, with totals.

use std::collections::BTreeMap;

use super::*;

/// One resource of the register: its catalog entry's items and the data the platform holds for it.
#[derive(Clone, Debug, Serialize)]
pub struct RegisterResource {
    pub code: String,
    pub name: String,
    /// 信息项数.
    pub items: i64,
    /// 记录数: rows of its dataset on the platform.
    pub records: i64,
    /// 存储量 (bytes): its pooled dataset (table and indexes) or the files held for it on the platform.
    pub storage_bytes: i64,
}

/// One system of the register with its resources.
#[derive(Clone, Debug, Serialize)]
pub struct RegisterSystem {
    pub id: SystemId,
    pub name: String,
    pub status: SystemStatus,
    pub resources: Vec<RegisterResource>,
}

/// The register's totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RegisterTotals {
    pub systems: i64,
    pub resources: i64,
    pub items: i64,
    pub records: i64,
    pub storage_bytes: i64,
}

/// 数据资产登记表 of one department.
#[derive(Clone, Debug, Serialize)]
pub struct AssetRegister {
    pub department_id: DepartmentId,
    pub department_name: String,
    pub systems: Vec<RegisterSystem>,
    /// Resources the department provides that no registered system produces.
    pub unattributed: Vec<RegisterResource>,
    pub totals: RegisterTotals,
}

/// The department's asset register, from its inventory, its catalog and the platform's data.
pub async fn asset_register(ex: &Exchange, actor: &Principal, department: DepartmentId) -> SystemsResult<AssetRegister> {
    if !standing(ex, actor).await?.may_read(actor, department) {
        return Err(SystemsError::NotFound { what: "department" });
    }
    let department_name = department_name(ex, department).await?;
    // The data the platform holds for each bound resource: a dataset's rows, a file store's bytes.
    let mut records: BTreeMap<String, i64> = BTreeMap::new();
    let mut storage: BTreeMap<String, i64> = BTreeMap::new();
    for b in shutong_exchange::binding::list_bindings(ex).await? {
        if b.provider_department_id != department.0 {
            continue;
        }
        records.insert(b.resource_code.as_str().to_string(), b.row_count);
        let bytes = match b.kind {
            shutong_exchange::BindingKind::Files => {
                shutong_exchange::files::list_files(ex, &b.resource_code).await?.iter().map(|f| f.size).sum()
            }
            _ => shutong_exchange::figures::dataset_bytes(ex, &b).await?.unwrap_or(0),
        };
        storage.insert(b.resource_code.as_str().to_string(), bytes);
    }
    let mut resources: BTreeMap<String, RegisterResource> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT r.code, r.name, v.document FROM catalog_resources r JOIN catalog_versions v ON v.code = r.code AND v.version = r.latest_version \
         WHERE r.provider_department_id = $1 AND r.status <> 'withdrawn' ORDER BY r.code",
    )
    .bind(department.0)
    .fetch_all(ex.db.pool())
    .await?
    {
        let code: String = r.try_get("code")?;
        let raw: String = r.try_get("document")?;
        let doc: shutong_catalog::ResourceDocument =
            serde_json::from_str(&raw).map_err(|_| unreadable("catalog_versions", "document", &raw))?;
        let storage_bytes = storage.get(&code).copied().unwrap_or(0);
        resources.insert(
            code.clone(),
            RegisterResource {
                records: records.get(&code).copied().unwrap_or(0),
                code,
                name: r.try_get("name")?,
                items: doc.items.len() as i64,
                storage_bytes,
            },
        );
    }
    let mut systems = Vec::new();
    let mut attributed = std::collections::BTreeSet::new();
    for v in super::systems::every_system(ex, actor, Some(department)).await? {
        if v.document.status == SystemStatus::Retired {
            continue;
        }
        let mut res = Vec::new();
        for code in &v.document.produces {
            if let Some(r) = resources.get(code) {
                attributed.insert(code.clone());
                res.push(r.clone());
            }
        }
        systems.push(RegisterSystem { id: v.id, name: v.document.name, status: v.document.status, resources: res });
    }
    let unattributed: Vec<RegisterResource> = resources.values().filter(|r| !attributed.contains(&r.code)).cloned().collect();
    let mut totals = RegisterTotals { systems: systems.len() as i64, ..RegisterTotals::default() };
    for r in resources.values() {
        totals.resources += 1;
        totals.items += r.items;
        totals.records += r.records;
        totals.storage_bytes += r.storage_bytes;
    }
    Ok(AssetRegister { department_id: department, department_name, systems, unattributed, totals })
}

/// The register as a workbook: one row per resource under its system, then the totals.
pub fn asset_register_xlsx(r: &AssetRegister) -> SystemsResult<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| SystemsError::State(e.to_string());
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet().set_name("数据资产登记").map_err(err)?;
    let header = ["系统编号", "信息系统", "系统状态", "资源代码", "信息资源", "信息项数", "记录数", "存储量（字节）"];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
        sheet.set_column_width(c as u16, 18).map_err(err)?;
    }
    let mut row = 1u32;
    let mut put = |sys: (&str, &str, &str), res: Option<&RegisterResource>| -> SystemsResult<()> {
        sheet.write_string(row, 0, sys.0).map_err(err)?;
        sheet.write_string(row, 1, sys.1).map_err(err)?;
        sheet.write_string(row, 2, sys.2).map_err(err)?;
        if let Some(x) = res {
            sheet.write_string(row, 3, &x.code).map_err(err)?;
            sheet.write_string(row, 4, &x.name).map_err(err)?;
            sheet.write_number(row, 5, x.items as f64).map_err(err)?;
            sheet.write_number(row, 6, x.records as f64).map_err(err)?;
            sheet.write_number(row, 7, x.storage_bytes as f64).map_err(err)?;
        }
        row += 1;
        Ok(())
    };
    for s in &r.systems {
        let id = s.id.to_string();
        if s.resources.is_empty() {
            put((&id, &s.name, s.status.label_zh()), None)?;
        }
        for x in &s.resources {
            put((&id, &s.name, s.status.label_zh()), Some(x))?;
        }
    }
    for x in &r.unattributed {
        put(("", "（未登记系统）", ""), Some(x))?;
    }
    let t = &r.totals;
    sheet.write_string_with_format(row, 0, "合计", &bold).map_err(err)?;
    sheet.write_string(row, 1, format!("{} 个系统", t.systems)).map_err(err)?;
    sheet.write_string(row, 4, format!("{} 项资源", t.resources)).map_err(err)?;
    sheet.write_number(row, 5, t.items as f64).map_err(err)?;
    sheet.write_number(row, 6, t.records as f64).map_err(err)?;
    sheet.write_number(row, 7, t.storage_bytes as f64).map_err(err)?;
    book.save_to_buffer().map_err(err)
}
