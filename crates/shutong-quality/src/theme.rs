//! 基础库与主题库 (SPEC C7; 办法 第十一条(二)(三); 贵州方案 四(七)).
//!
//! - **Base templates** ([`base_templates`]): the standard item sets of the six base databases (人口, 法人单位,
//!   自然资源和空间地理, 社会信用, 电子证照, 宏观经济). A lead department compiles its base resource from one
//!   ([`compile_base_resource`]): a catalog draft whose items are base items, 无条件共享 as R-CAT-2 requires,
//!   with the template's key; it is reviewed and published like any entry, and then bound and loaded.
//! - **Theme databases** (主题库, [`create_theme`]): a resource of its lead department assembled by key from
//!   several departments' pooled datasets, each item drawn from one member. A refresh ([`refresh_theme`])
//!   joins the members by key (`shutong_exchange::scan::join_many`) and loads the result as the lead
//!   department's batch: in full the first time or after a member's full replacement, otherwise only the
//!   keys the members changed since the last refresh. The server refreshes a theme after each committed
//!   batch of a member (the job `quality.theme_refresh`). Each refresh is appended with every member's
//!   catalog version, change sequence number and last batch time: the lineage of every value. The theme is
//!   then granted and read like any dataset.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shutong_audit::{Action, AuditContext, Change, NewAuditEvent};
use shutong_catalog::{
    DataType, InfoItem, Network, ResourceCode, ResourceDocument, ResourceFormat, Secrecy, SharingMethod, SharingType, UpdateCycle,
};
use shutong_exchange::{BatchRequest, BindingKind, DataFormat, Exchange, IngestMode, Input, NewBinding, sealed};
use shutong_identity::{DepartmentId, Principal};
use shutong_reference::MaskKind;
use shutong_store::Row;

use crate::service::{QualityError, QualityResult, invalid, unreadable};

shutong_store::typed_id!(
    /// 主题库标识: a theme database (办法 第十一条(三)).
    ThemeId
);

// ------------------------------------------------------------------ base templates

/// One item of a base template.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateItem {
    pub name: &'static str,
    pub data_type: DataType,
    pub length: Option<u32>,
    pub mask: Option<MaskKind>,
    pub standard: Option<&'static str>,
}

/// 基础库标准项集: the standard items of one base database.
#[derive(Clone, Debug, Serialize)]
pub struct BaseTemplate {
    pub code: &'static str,
    /// The base database, e.g. 人口基础信息库.
    pub name: &'static str,
    /// Its classification in the catalog (1xx: 基础信息资源).
    pub classification: &'static str,
    /// The resource it compiles, e.g. 人口基础信息.
    pub resource_name: &'static str,
    pub key_item: &'static str,
    pub items: Vec<TemplateItem>,
}

/// The six base databases' standard items (办法 第十一条(二)).
pub fn base_templates() -> Vec<BaseTemplate> {
    use DataType::{Char as C, Date as D, Numeric as N};
    let item = |name, data_type, length: u32, mask: Option<MaskKind>, standard: Option<&'static str>| TemplateItem {
        name,
        data_type,
        length: (length > 0).then_some(length),
        mask,
        standard,
    };
    vec![
        BaseTemplate {
            code: "population",
            name: "人口基础信息库",
            classification: "101",
            resource_name: "人口基础信息",
            key_item: "公民身份号码",
            items: vec![
                item("公民身份号码", C, 18, Some(MaskKind::IdNumber), Some("GB 11643-1999")),
                item("姓名", C, 50, Some(MaskKind::Name), None),
                item("性别", C, 2, None, Some("GB/T 2261.1-2003")),
                item("民族", C, 20, None, Some("GB/T 3304-1991")),
                item("出生日期", D, 0, None, None),
                item("户籍地址", C, 200, Some(MaskKind::Address), None),
                item("户籍地行政区划代码", C, 6, None, Some("GB/T 2260")),
            ],
        },
        BaseTemplate {
            code: "legal_entity",
            name: "法人单位基础信息库",
            classification: "102",
            resource_name: "法人单位基础信息",
            key_item: "统一社会信用代码",
            items: vec![
                item("统一社会信用代码", C, 18, None, Some("GB 32100-2015")),
                item("机构名称", C, 200, None, None),
                item("法定代表人", C, 50, Some(MaskKind::Name), None),
                item("机构类型", C, 20, None, None),
                item("住所", C, 200, None, None),
                item("成立日期", D, 0, None, None),
                item("登记机关", C, 100, None, None),
                item("住所行政区划代码", C, 6, None, Some("GB/T 2260")),
            ],
        },
        BaseTemplate {
            code: "geospatial",
            name: "自然资源和空间地理基础信息库",
            classification: "103",
            resource_name: "自然资源和空间地理基础信息",
            key_item: "要素编码",
            items: vec![
                item("要素编码", C, 50, None, None),
                item("要素名称", C, 200, None, None),
                item("要素类型", C, 50, None, None),
                item("行政区划代码", C, 6, None, Some("GB/T 2260")),
                item("坐标系", C, 50, None, Some("CGCS2000")),
                item("几何数据", C, 4000, None, None),
                item("更新日期", D, 0, None, None),
            ],
        },
        BaseTemplate {
            code: "credit",
            name: "社会信用基础信息库",
            classification: "104",
            resource_name: "社会信用基础信息",
            key_item: "统一社会信用代码",
            items: vec![
                item("统一社会信用代码", C, 18, None, Some("GB 32100-2015")),
                item("主体名称", C, 200, None, None),
                item("信用信息类别", C, 20, None, None),
                item("信用信息内容", C, 500, None, None),
                item("认定机关", C, 100, None, None),
                item("认定日期", D, 0, None, None),
            ],
        },
        BaseTemplate {
            code: "license",
            name: "电子证照基础信息库",
            classification: "105",
            resource_name: "电子证照基础信息",
            key_item: "证照编号",
            items: vec![
                item("证照编号", C, 64, None, None),
                item("证照类型代码", C, 20, None, Some("GB/T 36903-2018")),
                item("证照名称", C, 100, None, None),
                item("持证主体", C, 200, None, None),
                item("持证主体代码", C, 18, None, None),
                item("发证机构", C, 100, None, None),
                item("发证日期", D, 0, None, None),
                item("有效期截止日期", D, 0, None, None),
            ],
        },
        BaseTemplate {
            code: "macro_economy",
            name: "宏观经济基础信息库",
            classification: "106",
            resource_name: "宏观经济基础信息",
            key_item: "指标编码",
            items: vec![
                item("指标编码", C, 50, None, None),
                item("指标名称", C, 200, None, None),
                item("统计周期", C, 20, None, None),
                item("统计时间", C, 20, None, None),
                item("指标值", N, 18, None, None),
                item("计量单位", C, 20, None, None),
                item("行政区划代码", C, 6, None, Some("GB/T 2260")),
            ],
        },
    ]
}

/// Compiles a base resource from a template as a catalog draft of the lead department (the actor's, or the
/// one named by the sharing authority): base items, 无条件共享 (R-CAT-2), the template's key. It is submitted and
/// published like any entry. Audited by the catalog (`catalog.create`).
pub async fn compile_base_resource(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    template: &str,
    provider: Option<DepartmentId>,
) -> QualityResult<shutong_catalog::ResourceView> {
    let t = base_templates().into_iter().find(|t| t.code == template).ok_or_else(|| {
        let codes: Vec<&str> = base_templates().iter().map(|t| t.code).collect();
        invalid("template", format!("'{template}' is not one of {}", codes.join(", ")))
    })?;
    let items = t
        .items
        .iter()
        .map(|i| InfoItem {
            name: i.name.into(),
            data_type: i.data_type,
            length: i.length,
            required: i.name == t.key_item,
            is_key: i.name == t.key_item,
            mask: i.mask,
            sharing_type: SharingType::Unconditional,
            sharing_condition: None,
            standard: i.standard.map(str::to_string),
            is_base_item: true,
        })
        .collect();
    let document = ResourceDocument {
        name: t.resource_name.into(),
        summary: format!("按{}标准项集编制的基础信息资源（办法 第十一条（二））。", t.name),
        format: ResourceFormat::Database,
        items,
        sharing_type: SharingType::Unconditional,
        sharing_condition: None,
        permitted_usage: None,
        legal_basis: None,
        sharing_methods: vec![
            SharingMethod::OnlineQuery,
            SharingMethod::BulkDownload,
            SharingMethod::ExchangeNode,
            SharingMethod::SystemIntegration,
        ],
        open_to_public: false,
        open_condition: None,
        update_cycle: UpdateCycle::Daily,
        related_codes: Vec::new(),
        secrecy: Secrecy::NonClassified,
        network: Network::Outer,
        source_system: None,
        contact: None,
        record_count: None,
        storage_mb: None,
        tags: vec![t.name.to_string(), "基础库".to_string()],
    };
    let new = shutong_catalog::NewResource { classification_code: t.classification.into(), provider, document, project: None };
    Ok(shutong_catalog::create_resource(&ex.db, actor, ctx, new).await?)
}

// ------------------------------------------------------------------ theme databases

/// One item of a theme, drawn from one member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThemeItem {
    /// The item's name in the theme.
    pub item: String,
    /// The member resource it comes from.
    pub resource_code: String,
    /// Its name there.
    pub member_item: String,
}

/// A member's state as a refresh read it: the lineage of its values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberState {
    pub resource_code: String,
    /// The catalog version in force.
    pub version: i64,
    /// The change sequence number read up to.
    pub last_seq: i64,
    pub reset_seq: i64,
    /// Its last batch's time.
    pub last_batch_at_ms: Option<i64>,
}

/// 更新记录: one refresh of a theme.
#[derive(Clone, Debug, Serialize)]
pub struct ThemeRefresh {
    pub refreshed_at_ms: i64,
    /// `full` or `incremental`.
    pub mode: String,
    pub rows_written: i64,
    pub rows_deleted: i64,
    pub batch_id: Option<i64>,
    pub members: Vec<MemberState>,
    pub actor: String,
}

/// 主题库.
#[derive(Clone, Debug, Serialize)]
pub struct Theme {
    pub id: ThemeId,
    pub resource_code: String,
    pub name: String,
    pub lead_department_id: i64,
    pub key_item: String,
    pub items: Vec<ThemeItem>,
    /// The member resources, in the order they join.
    pub members: Vec<String>,
    pub published: bool,
    pub last_refresh: Option<ThemeRefresh>,
}

/// A theme to create.
#[derive(Clone, Debug)]
pub struct NewTheme {
    pub name: String,
    pub summary: String,
    /// A 主题信息资源 classification (2xx).
    pub classification_code: String,
    pub key_item: String,
    pub items: Vec<ThemeItem>,
}

fn members_of(items: &[ThemeItem]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i.resource_code) {
            out.push(i.resource_code.clone());
        }
    }
    out
}

fn code(v: &str, field: &str) -> QualityResult<ResourceCode> {
    ResourceCode::parse(v).map_err(|e| invalid(field, format!("'{v}': {e}")))
}

/// Creates a theme database: its catalog entry as a draft of the actor's department (the lead department;
/// its catalog editors), with the key item and the items drawn from at least two members — pooled datasets
/// keyed by the same item, items not 不予共享 — and the theme's definition. The entry is then submitted and
/// published like any other; the first refresh binds and loads it. Audited `catalog.create` and
/// `quality.theme_create`.
pub async fn create_theme(ex: &Exchange, actor: &Principal, ctx: &AuditContext, new: &NewTheme) -> QualityResult<Theme> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    if !new.classification_code.starts_with('2') {
        return Err(invalid("classification_code", "a theme database is a 主题信息资源 (2xx)"));
    }
    if new.items.is_empty() || new.items.len() > 200 {
        return Err(invalid("items", "name 1 to 200 items"));
    }
    let members = members_of(&new.items);
    if members.len() < 2 {
        return Err(invalid("items", "a theme database draws its items from at least two member datasets"));
    }
    let mut docs: BTreeMap<String, ResourceDocument> = BTreeMap::new();
    for m in &members {
        let c = code(m, "items.resource_code")?;
        let p = shutong_exchange::published(ex, &c)
            .await
            .map_err(|_| invalid("items.resource_code", format!("'{m}' is not a published resource")))?;
        let b = shutong_exchange::get_binding(ex, &c).await?.filter(|b| b.kind == BindingKind::Dataset && b.table_name.is_some());
        let b = b.ok_or_else(|| invalid("items.resource_code", format!("'{m}' is not a pooled dataset")))?;
        if b.key_item.as_deref() != Some(new.key_item.as_str()) {
            return Err(invalid("key_item", format!("'{m}' is not keyed by {}", new.key_item)));
        }
        docs.insert(m.clone(), p.document);
    }
    let mut doc_items = Vec::new();
    let first = &docs[&members[0]];
    let key = first
        .items
        .iter()
        .find(|i| i.name == new.key_item)
        .cloned()
        .ok_or_else(|| invalid("key_item", format!("'{}' is not an item of {}", new.key_item, members[0])))?;
    doc_items.push(InfoItem { is_key: true, required: true, is_base_item: false, ..key });
    for (n, t) in new.items.iter().enumerate() {
        let field = format!("items[{n}]");
        let item = t.item.trim();
        if item.is_empty() || item.chars().count() > 100 || item.starts_with('_') {
            return Err(invalid(&format!("{field}.item"), format!("'{item}' must be 1 to 100 characters, not beginning with '_'")));
        }
        if item == new.key_item || doc_items.iter().any(|d: &InfoItem| d.name == item) {
            return Err(invalid(&format!("{field}.item"), format!("'{item}' is the key or named twice")));
        }
        let source = docs[&t.resource_code].items.iter().find(|i| i.name == t.member_item).ok_or_else(|| {
            invalid(&format!("{field}.member_item"), format!("'{}' is not an item of {}", t.member_item, t.resource_code))
        })?;
        if source.sharing_type == SharingType::NotShared {
            return Err(invalid(&format!("{field}.member_item"), format!("'{}' of {} is 不予共享", t.member_item, t.resource_code)));
        }
        doc_items.push(InfoItem { name: item.to_string(), is_key: false, required: false, is_base_item: false, ..source.clone() });
    }
    let all = |s: SharingType| doc_items.iter().all(|i| i.sharing_type == s);
    let sharing_type = if all(SharingType::Unconditional) { SharingType::Unconditional } else { SharingType::Conditional };
    let document = ResourceDocument {
        name: name.to_string(),
        summary: if new.summary.trim().is_empty() {
            format!("由 {} 按{}汇聚的主题库。", members.join("、"), new.key_item)
        } else {
            new.summary.trim().to_string()
        },
        format: ResourceFormat::Database,
        items: doc_items,
        sharing_type,
        sharing_condition: (sharing_type == SharingType::Conditional).then(|| "部分信息项按其来源数据集的共享条件提供".to_string()),
        permitted_usage: (sharing_type == SharingType::Conditional).then(|| "仅用于申请时载明的用途".to_string()),
        legal_basis: None,
        sharing_methods: vec![SharingMethod::OnlineQuery, SharingMethod::BulkDownload, SharingMethod::ExchangeNode],
        open_to_public: false,
        open_condition: None,
        update_cycle: UpdateCycle::Realtime,
        related_codes: members.clone(),
        secrecy: Secrecy::NonClassified,
        network: Network::Outer,
        source_system: None,
        contact: None,
        record_count: None,
        storage_mb: None,
        tags: vec!["主题库".to_string()],
    };
    let view = shutong_catalog::create_resource(
        &ex.db,
        actor,
        ctx,
        shutong_catalog::NewResource { classification_code: new.classification_code.clone(), provider: None, document, project: None },
    )
    .await?;
    let items: Vec<ThemeItem> = new
        .items
        .iter()
        .map(|t| ThemeItem { item: t.item.trim().to_string(), resource_code: t.resource_code.clone(), member_item: t.member_item.clone() })
        .collect();
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO themes (resource_code, lead_department_id, key_item, items, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(view.code.as_str())
    .bind(view.provider_department_id)
    .bind(&new.key_item)
    .bind(serde_json::to_string(&items).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?;
    change
        .record(NewAuditEvent {
            action: Action::ThemeCreate,
            target_kind: "theme",
            target_id: id.to_string(),
            department_id: Some(view.provider_department_id),
            detail: json!({"resource": view.code.as_str(), "name": name, "key_item": new.key_item, "members": members, "items": items}),
        })
        .await?;
    change.commit().await?;
    theme(ex, ThemeId(id)).await
}

async fn last_refresh(ex: &Exchange, id: ThemeId) -> QualityResult<Option<ThemeRefresh>> {
    let row = sqlx::query(
        "SELECT refreshed_at, mode, rows_written, rows_deleted, batch_id, members, actor FROM theme_refreshes WHERE theme_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(id.0)
    .fetch_optional(ex.db.pool())
    .await?;
    row.map(|r| {
        let members: String = r.try_get("members")?;
        Ok(ThemeRefresh {
            refreshed_at_ms: r.try_get("refreshed_at")?,
            mode: r.try_get("mode")?,
            rows_written: r.try_get("rows_written")?,
            rows_deleted: r.try_get("rows_deleted")?,
            batch_id: r.try_get("batch_id")?,
            members: serde_json::from_str(&members).map_err(|_| unreadable("theme_refreshes", "members", &members))?,
            actor: r.try_get("actor")?,
        })
    })
    .transpose()
}

/// Every theme database, with its lineage as of its last refresh.
pub async fn themes(ex: &Exchange) -> QualityResult<Vec<Theme>> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM themes ORDER BY id").fetch_all(ex.db.pool()).await?;
    let mut out = Vec::new();
    for id in ids {
        out.push(theme(ex, ThemeId(id)).await?);
    }
    Ok(out)
}

pub async fn theme(ex: &Exchange, id: ThemeId) -> QualityResult<Theme> {
    let row = sqlx::query("SELECT id, resource_code, lead_department_id, key_item, items FROM themes WHERE id = $1")
        .bind(id.0)
        .fetch_optional(ex.db.pool())
        .await?
        .ok_or(QualityError::NotFound { what: "theme database" })?;
    let items: String = row.try_get("items")?;
    let items: Vec<ThemeItem> = serde_json::from_str(&items).map_err(|_| unreadable("themes", "items", &items))?;
    let resource_code: String = row.try_get("resource_code")?;
    let c = code(&resource_code, "resource_code")?;
    let entry = shutong_catalog::get_resource(&ex.db, &Principal::operator("system:quality"), &c, None).await.ok();
    let published = shutong_exchange::published(ex, &c).await.is_ok();
    Ok(Theme {
        id,
        name: entry.map(|e| e.document.name).unwrap_or_default(),
        resource_code,
        lead_department_id: row.try_get("lead_department_id")?,
        key_item: row.try_get("key_item")?,
        members: members_of(&items),
        items,
        published,
        last_refresh: last_refresh(ex, id).await?,
    })
}

/// The themes a member dataset feeds (refreshed after its batches): read from the definitions alone, since
/// every committed batch of every dataset asks.
pub async fn themes_with_member(ex: &Exchange, member: &ResourceCode) -> QualityResult<Vec<ThemeId>> {
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, items FROM themes ORDER BY id").fetch_all(ex.db.pool()).await?;
    let mut out = Vec::new();
    for (id, items) in rows {
        let items: Vec<ThemeItem> = serde_json::from_str(&items).map_err(|_| unreadable("themes", "items", &items))?;
        if items.iter().any(|i| i.resource_code == member.as_str()) {
            out.push(ThemeId(id));
        }
    }
    Ok(out)
}

/// The most keys an incremental refresh reads from a member's changes before it refreshes in full.
const INCREMENTAL_KEYS: usize = 200_000;

/// 更新主题库: joins the members by key and loads the result as the lead department's batch — in full the first
/// time, after a member's full replacement or beyond `INCREMENTAL_KEYS` changes, otherwise the keys changed
/// since the last refresh (a key no member has any longer is deleted). Binds the theme's resource first if it
/// is not yet. The lead department's keepers, the sharing authority, or the server's job. Audited
/// `quality.theme_refresh` (and the batch's own `data.batch`).
pub async fn refresh_theme(ex: &Exchange, actor: &Principal, ctx: &AuditContext, id: ThemeId) -> QualityResult<ThemeRefresh> {
    let t = theme(ex, id).await?;
    let lead = DepartmentId(t.lead_department_id);
    if !(shutong_exchange::may_load(actor, lead) || shutong_catalog::is_authority(&ex.db, actor).await?) {
        return Err(QualityError::Forbidden("a theme database is refreshed by its lead department or the sharing authority".into()));
    }
    let theme_code = code(&t.resource_code, "resource_code")?;
    if !t.published {
        return Err(QualityError::State("the theme database's catalog entry is not published yet: submit it for review first".into()));
    }
    // The platform loads the theme as its lead department's batch (as the operator when the actor is the authority).
    let loader = if shutong_exchange::may_load(actor, lead) { actor.clone() } else { Principal::operator("system:theme") };
    if shutong_exchange::get_binding(ex, &theme_code).await?.is_none() {
        shutong_exchange::bind(ex, &loader, ctx, &theme_code, NewBinding { kind: Some(BindingKind::Dataset), ..Default::default() })
            .await?;
    }
    // The members, their bindings and documents now.
    let mut bindings = Vec::new();
    let mut states = Vec::new();
    let mut key_columns = Vec::new();
    for m in &t.members {
        let c = code(m, "members")?;
        let p = shutong_exchange::published(ex, &c).await.map_err(|_| QualityError::State(format!("member {m} is no longer published")))?;
        let b =
            shutong_exchange::get_binding(ex, &c).await?.ok_or_else(|| QualityError::State(format!("member {m} is no longer pooled")))?;
        key_columns.push(
            b.columns
                .iter()
                .position(|x| *x == t.key_item)
                .ok_or_else(|| QualityError::State(format!("member {m} has no {} column", t.key_item)))?,
        );
        states.push(MemberState {
            resource_code: m.clone(),
            version: p.version,
            last_seq: b.last_seq,
            reset_seq: b.reset_seq,
            last_batch_at_ms: b.last_batch_at_ms,
        });
        bindings.push(b);
    }
    // Each member's columns: its key item's, then the theme items it gives.
    let mut columns: Vec<Vec<usize>> = Vec::new();
    let mut item_at: Vec<(usize, usize)> = Vec::new();
    for (mi, b) in bindings.iter().enumerate() {
        let mut cols = vec![key_columns[mi]];
        for (ti, item) in t.items.iter().enumerate() {
            if item.resource_code == t.members[mi] {
                let c = b
                    .columns
                    .iter()
                    .position(|x| *x == item.member_item)
                    .ok_or_else(|| QualityError::State(format!("member {} has no {} column", item.resource_code, item.member_item)))?;
                item_at.push((ti, mi));
                cols.push(c);
            }
        }
        columns.push(cols);
    }
    // Full or incremental: which keys changed since the last refresh read each member.
    let previous = t.last_refresh.as_ref();
    let mut changed: Option<Vec<String>> = None;
    if let Some(prev) = previous {
        let mut keys = Vec::new();
        let mut incremental = true;
        for (mi, b) in bindings.iter().enumerate() {
            match prev.members.iter().find(|s| s.resource_code == t.members[mi]) {
                Some(s) if b.reset_seq <= s.last_seq => {
                    match shutong_exchange::scan::changed_keys(ex, b, s.last_seq, INCREMENTAL_KEYS).await? {
                        Some(k) => keys.extend(k),
                        None => incremental = false,
                    }
                }
                _ => incremental = false,
            }
        }
        if incremental {
            keys.sort();
            keys.dedup();
            changed = Some(keys);
        }
    }
    if changed.as_ref().is_some_and(|k| k.is_empty()) {
        return previous.cloned().ok_or(QualityError::State("nothing to refresh".into()));
    }
    // The rows, assembled: the key in clear (from the first member that has the record), each item opened.
    let keys = ex.keys();
    // The rows go to a temporary file, not memory: a theme may hold millions of records.
    let mut file = tempfile::NamedTempFile::new().map_err(|e| QualityError::Exchange(io(e)))?;
    let mut csv = std::io::BufWriter::new(file.as_file_mut());
    let mut line = String::new();
    let header: Vec<String> = std::iter::once(t.key_item.clone()).chain(t.items.iter().map(|i| i.item.clone())).collect();
    line.push_str(&header.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(","));
    if changed.is_some() {
        line.push_str(",_op");
    }
    line.push('\n');
    csv.write_all(line.as_bytes()).map_err(|e| QualityError::Exchange(io(e)))?;
    let mut found: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut written = 0i64;
    let incremental = changed.is_some();
    {
        let members = &t.members;
        let items = &t.items;
        let item_at = &item_at;
        let csv_ref = &mut csv;
        let found_ref = &mut found;
        let written_ref = &mut written;
        let mut visit = |stored: &str, slots: &[Option<&[Option<&str>]>]| -> shutong_exchange::ExchangeResult<()> {
            let Some((mi, vals)) = slots.iter().enumerate().find_map(|(i, s)| s.map(|v| (i, v))) else { return Ok(()) };
            let key = match vals[0] {
                Some(raw) => sealed::open(keys.as_deref(), &members[mi], &t.key_item, raw)?.into_owned(),
                None => return Ok(()),
            };
            let mut row = vec![key];
            // Each item from its member's slot (position within that member's columns).
            let mut pos: Vec<usize> = vec![1; members.len()];
            let mut cells: Vec<Option<String>> = vec![None; items.len()];
            for (ti, mi) in item_at {
                let p = pos[*mi];
                pos[*mi] += 1;
                if let Some(v) = slots[*mi].and_then(|s| s[p]) {
                    cells[*ti] = Some(sealed::open(keys.as_deref(), &members[*mi], &items[*ti].member_item, v)?.into_owned());
                }
            }
            row.extend(cells.into_iter().map(|c| c.unwrap_or_default()));
            let mut line = row.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
            if incremental {
                line.push_str(",upsert");
                // Only an incremental refresh needs the keys it found (to delete those no member has).
                found_ref.insert(stored.to_string());
            }
            line.push('\n');
            csv_ref.write_all(line.as_bytes()).map_err(io)?;
            *written_ref += 1;
            Ok(())
        };
        let pairs: Vec<(&shutong_exchange::BindingView, Vec<usize>)> = bindings.iter().zip(columns.iter().cloned()).collect();
        shutong_exchange::scan::join_many(ex, &pairs, changed.as_deref(), &mut visit).await?;
    }
    let mut deleted = 0i64;
    if let Some(keys_changed) = &changed {
        // Keys no member has any longer: deleted from the theme. Their key in clear is in the theme itself.
        let gone: Vec<&String> = keys_changed.iter().filter(|k| !found.contains(*k)).collect();
        if !gone.is_empty() {
            let theme_binding = shutong_exchange::get_binding(ex, &theme_code).await?;
            if let Some(tb) = theme_binding {
                let kc = tb.columns.iter().position(|x| *x == t.key_item).unwrap_or(0);
                let gone_owned: Vec<String> = gone.iter().map(|k| (*k).clone()).collect();
                let mut visit = |_: &str, slots: &[Option<&[Option<&str>]>]| -> shutong_exchange::ExchangeResult<()> {
                    if let Some(Some(raw)) = slots[0].map(|v| v[0]) {
                        let key = sealed::open(keys.as_deref(), theme_code.as_str(), &t.key_item, raw)?;
                        let mut line = vec![csv_cell(&key)];
                        line.extend(std::iter::repeat_n(String::new(), t.items.len()));
                        csv.write_all(format!("{},delete\n", line.join(",")).as_bytes()).map_err(io)?;
                        deleted += 1;
                    }
                    Ok(())
                };
                shutong_exchange::scan::join_many(ex, &[(&tb, vec![kc])], Some(&gone_owned), &mut visit).await?;
            }
        }
    }
    let mode = if changed.is_some() { "incremental" } else { "full" };
    let now = ex.sharing.clock.now_ms();
    let req = BatchRequest {
        resource_code: theme_code.clone(),
        mode: if changed.is_some() { IngestMode::Incremental } else { IngestMode::Full },
        format: DataFormat::Csv,
        batch_id: Some(format!("theme-{}-{now}", id.0)),
        delimiter: None,
        encoding: None,
        all_or_nothing: false,
        part: None,
    };
    csv.flush().map_err(|e| QualityError::Exchange(io(e)))?;
    drop(csv);
    let report = shutong_exchange::ingest(ex, &loader, ctx, req, Input::File(file.path().to_path_buf())).await?;
    drop(file);
    let refresh = ThemeRefresh {
        refreshed_at_ms: now,
        mode: mode.to_string(),
        rows_written: written,
        rows_deleted: deleted,
        batch_id: Some(report.id),
        members: states,
        actor: ctx.actor.clone(),
    };
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query(
        "INSERT INTO theme_refreshes (theme_id, refreshed_at, mode, rows_written, rows_deleted, batch_id, members, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.0)
    .bind(now)
    .bind(mode)
    .bind(written)
    .bind(deleted)
    .bind(report.id)
    .bind(serde_json::to_string(&refresh.members).unwrap_or_else(|_| "[]".into()))
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    change
        .record(NewAuditEvent {
            action: Action::ThemeRefresh,
            target_kind: "theme",
            target_id: id.0.to_string(),
            department_id: Some(t.lead_department_id),
            detail: json!({"resource": t.resource_code, "mode": mode, "rows": written, "deleted": deleted, "batch": report.id,
                "rejected": report.rows_rejected, "members": refresh.members}),
        })
        .await?;
    change.commit().await?;
    Ok(refresh)
}

fn io(e: std::io::Error) -> shutong_exchange::ExchangeError {
    shutong_exchange::ExchangeError::Store(shutong_store::StoreError::Other(sqlx::Error::Io(e)))
}

/// A CSV cell (RFC 4180).
fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}
