//! 目录导入导出: the catalog as the spreadsheet departments fill in (XLSX: a sheet of resources and a
//! sheet of information items, headers in Chinese), as CSV (one row per item, resource columns repeated)
//! and as JSON. Import checks every row against the rules and reports sheet, row, column and reason;
//! by default nothing is imported if any row fails. Export writes the same shape, so that it round-trips.

use serde::{Deserialize, Serialize};
use shutong_audit::AuditContext;
use shutong_identity::{DepartmentId, Principal, Role};
use shutong_store::{Db, Row};
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};

use crate::model::*;
use crate::rules;
use crate::service::{CatalogError, CatalogResult, ResourceFilter, is_authority};
use crate::spreadsheet::{ZipLimits, ZipRefusal};

/// The formats of the catalog file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferFormat {
    Xlsx,
    Csv,
    Json,
}

impl TransferFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "xlsx" => Some(TransferFormat::Xlsx),
            "csv" => Some(TransferFormat::Csv),
            "json" => Some(TransferFormat::Json),
            _ => None,
        }
    }

    /// From a file name's extension.
    pub fn of_path(path: &str) -> Option<Self> {
        path.rsplit_once('.').and_then(|(_, ext)| Self::parse(ext))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            TransferFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            TransferFormat::Csv => "text/csv; charset=utf-8",
            TransferFormat::Json => "application/json",
        }
    }
}

pub const RESOURCE_SHEET: &str = "信息资源";
pub const ITEM_SHEET: &str = "信息项";

/// Resource columns, in order. The first is the key that links a resource to its items.
pub const RESOURCE_COLUMNS: &[&str] = &[
    "资源标识",
    "信息资源分类",
    "信息资源名称",
    "信息资源代码",
    "提供方代码",
    "信息资源摘要",
    "信息资源格式",
    "共享类型",
    "共享条件",
    "使用要求",
    "不予共享依据",
    "共享方式",
    "是否向社会开放",
    "开放条件",
    "更新周期",
    "关联资源代码",
    "涉密属性",
    "所属网络",
    "来源信息系统",
    "联系方式",
    "记录数",
    "存储量(MB)",
    "标签",
];

/// Item columns, in order.
pub const ITEM_COLUMNS: &[&str] =
    &["资源标识", "信息项名称", "数据类型", "长度", "是否必填", "是否主键", "共享类型", "共享条件", "标准依据", "基础信息项", "脱敏类型"];

/// Columns that may be absent from a file (optional metadata).
const OPTIONAL_COLUMNS: &[&str] = &[
    "信息资源代码",
    "开放条件",
    "关联资源代码",
    "涉密属性",
    "所属网络",
    "来源信息系统",
    "联系方式",
    "记录数",
    "存储量(MB)",
    "标签",
    "共享条件",
    "标准依据",
    "脱敏类型",
    "是否主键",
    "是否必填",
];

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportIssue {
    pub sheet: String,
    /// 1-based row number as the spreadsheet shows it (the header is row 1); 0 for the file itself.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// One resource read from a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The code, on export; ignored on import (the platform gives codes).
    #[serde(default)]
    pub code: Option<String>,
    pub classification_code: String,
    /// 提供方代码: the provider's 统一社会信用代码.
    pub provider_code: String,
    pub document: ResourceDocument,
}

/// What an import did, or would have done.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub format: String,
    pub resources: usize,
    pub items: usize,
    /// Whether anything was written.
    pub committed: bool,
    /// The codes given to the imported resources, in file order.
    pub codes: Vec<crate::ResourceCode>,
    pub issues: Vec<ImportIssue>,
}

/// Limits on what an import accepts.
#[derive(Clone, Copy, Debug)]
pub struct ImportLimits {
    /// Largest file, bytes.
    pub max_file_bytes: usize,
    /// Largest total of a spreadsheet's uncompressed parts, bytes (zip bombs).
    pub max_unpacked_bytes: u64,
    pub max_resources: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits { max_file_bytes: 64 << 20, max_unpacked_bytes: 512 << 20, max_resources: 200_000 }
    }
}

fn issue(sheet: &str, row: usize, column: &str, reason: impl Into<String>) -> ImportIssue {
    ImportIssue { sheet: sheet.into(), row, column: column.into(), reason: reason.into() }
}

/// A sheet as header → column index and rows of cells (row numbers as the spreadsheet shows them).
struct Table {
    sheet: String,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        self.columns.get(column).and_then(|i| row.get(*i)).map(|s| s.trim()).unwrap_or("")
    }

    fn check_columns(&self, expected: &[&str], issues: &mut Vec<ImportIssue>) {
        for c in expected {
            if !self.columns.contains_key(*c) && !OPTIONAL_COLUMNS.contains(c) {
                issues.push(issue(&self.sheet, 1, c, format!("missing column '{c}'")));
            }
        }
    }
}

fn table_from_rows(sheet: &str, mut rows: Vec<Vec<String>>) -> Table {
    let header = if rows.is_empty() { Vec::new() } else { rows.remove(0) };
    let columns = header.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect();
    let rows = rows.into_iter().enumerate().map(|(i, r)| (i + 2, r)).filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty())).collect();
    Table { sheet: sheet.to_string(), columns, rows }
}

/// Refuses archives whose parts would unpack to more than the limit (a zip bomb), before reading them: the
/// parts are unpacked once as a stream and counted (see `crate::spreadsheet`).
fn check_zip(bytes: &[u8], limits: &ImportLimits) -> Result<(), ImportIssue> {
    let zip_limits = ZipLimits { max_unpacked_bytes: limits.max_unpacked_bytes, ..ZipLimits::default() };
    crate::spreadsheet::check_archive(Cursor::new(bytes), &zip_limits).map_err(|e| match e {
        ZipRefusal::NotZip(e) => issue("", 0, "", format!("not an XLSX file (zip): {e}")),
        ZipRefusal::Unpacked { limit } => {
            issue("", 0, "", format!("the spreadsheet unpacks to more than {} MB (refused as a possible zip bomb)", limit >> 20))
        }
        other => issue("", 0, "", format!("{other} (refused as a possible zip bomb)")),
    })
}

fn cell_text(d: &calamine::Data) -> String {
    use calamine::Data;
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => {
            if *b {
                "是".into()
            } else {
                "否".into()
            }
        }
        Data::DateTime(dt) => dt.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

fn read_xlsx(bytes: &[u8], limits: &ImportLimits) -> Result<(Table, Table), Vec<ImportIssue>> {
    use calamine::Reader;
    check_zip(bytes, limits).map_err(|e| vec![e])?;
    let mut book =
        calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| vec![issue("", 0, "", format!("cannot read the spreadsheet: {e}"))])?;
    let mut sheet = |name: &str| -> Result<Table, ImportIssue> {
        let range = book.worksheet_range(name).map_err(|_| issue(name, 0, "", format!("missing sheet '{name}'")))?;
        let rows = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
        Ok(table_from_rows(name, rows))
    };
    let (resources, items) = (sheet(RESOURCE_SHEET), sheet(ITEM_SHEET));
    match (resources, items) {
        (Ok(r), Ok(i)) => Ok((r, i)),
        (r, i) => Err([r.err(), i.err()].into_iter().flatten().collect()),
    }
}

/// CSV: one row per information item, the resource's columns repeated (a resource without items has one
/// row with empty item columns).
fn read_csv(bytes: &[u8]) -> Result<(Table, Table), Vec<ImportIssue>> {
    let text = decode_text(bytes).map_err(|e| vec![issue("CSV", 0, "", e)])?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| vec![issue("CSV", i + 1, "", format!("unreadable CSV: {e}"))])?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    let all = table_from_rows("CSV", rows);
    let mut res_rows = Vec::new();
    let mut item_rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let pick = |row: &[String], cols: &[&str]| -> Vec<String> { cols.iter().map(|c| all.cell(row, c).to_string()).collect() };
    let item_cols: Vec<&str> = ITEM_COLUMNS.iter().map(|c| csv_item_header(c)).collect();
    for (n, row) in &all.rows {
        let key = all.cell(row, "资源标识").to_string();
        if seen.insert(key.clone()) {
            res_rows.push((*n, pick(row, RESOURCE_COLUMNS)));
        }
        if !all.cell(row, "信息项名称").is_empty() {
            item_rows.push((*n, pick(row, &item_cols)));
        }
    }
    let mut missing = Vec::new();
    for c in RESOURCE_COLUMNS.iter().chain(item_cols.iter()) {
        if !all.columns.contains_key(*c) && !OPTIONAL_COLUMNS.contains(c) && !["信息项共享条件"].contains(c) {
            missing.push(issue("CSV", 1, c, format!("missing column '{c}'")));
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let index = |cols: &[&str]| cols.iter().enumerate().map(|(i, c)| (c.to_string(), i)).collect::<HashMap<_, _>>();
    let mut item_index = index(ITEM_COLUMNS);
    item_index.retain(|_, _| true);
    Ok((
        Table { sheet: "CSV".into(), columns: index(RESOURCE_COLUMNS), rows: res_rows },
        Table { sheet: "CSV".into(), columns: item_index, rows: item_rows },
    ))
}

/// In the one-sheet CSV form, item columns whose names the resource columns also use are prefixed.
fn csv_item_header(column: &'static str) -> &'static str {
    match column {
        "共享类型" => "信息项共享类型",
        "共享条件" => "信息项共享条件",
        c => c,
    }
}

/// Text files come as UTF-8 (with or without BOM) or, as Excel in China saves CSV, GBK/GB18030; anything
/// else is refused with the offset of the first bad byte.
pub fn decode_text(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|s| s.into_owned())
            .ok_or_else(|| format!("the file is neither UTF-8 nor GBK text (first bad UTF-8 byte at offset {})", e.valid_up_to())),
    }
}

fn yes(s: &str) -> Option<bool> {
    match s {
        "是" | "Y" | "y" | "true" | "1" => Some(true),
        "否" | "N" | "n" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(['、', ',', '，', ';', '；']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Which column a rule's field comes from.
fn column_of(field: &str) -> (&'static str, Option<usize>) {
    if let Some(rest) = field.strip_prefix("items[") {
        let idx = rest.split(']').next().and_then(|n| n.parse().ok());
        let sub = rest.split("].").nth(1).unwrap_or("");
        let col = match sub {
            "name" => "信息项名称",
            "sharing_type" => "共享类型",
            "sharing_condition" => "共享条件",
            "is_base_item" => "基础信息项",
            "length" => "长度",
            _ => "信息项名称",
        };
        return (col, idx);
    }
    let col = match field {
        "name" => "信息资源名称",
        "summary" => "信息资源摘要",
        "sharing_type" => "共享类型",
        "sharing_condition" => "共享条件",
        "permitted_usage" => "使用要求",
        "legal_basis" => "不予共享依据",
        "sharing_methods" => "共享方式",
        "open_to_public" => "是否向社会开放",
        "record_count" => "记录数",
        "storage_mb" => "存储量(MB)",
        "items" => "信息项名称",
        _ => "信息资源名称",
    };
    (col, None)
}

/// Reads a catalog file into entries, or every issue found. Every row is checked against every rule.
pub fn parse(format: TransferFormat, bytes: &[u8], limits: &ImportLimits) -> Result<Vec<CatalogEntry>, Vec<ImportIssue>> {
    if bytes.len() > limits.max_file_bytes {
        return Err(vec![issue("", 0, "", format!("the file is larger than {} MB", limits.max_file_bytes >> 20))]);
    }
    let (entries, mut issues, rows) = match format {
        TransferFormat::Json => {
            let text = decode_text(bytes).map_err(|e| vec![issue("JSON", 0, "", e)])?;
            let de = &mut serde_json::Deserializer::from_str(&text);
            let entries: Vec<CatalogEntry> = serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                vec![issue("JSON", 0, &path, e.into_inner().to_string())]
            })?;
            let rows: Vec<(usize, Vec<usize>)> = (0..entries.len()).map(|i| (i + 1, Vec::new())).collect();
            (entries, Vec::new(), rows)
        }
        TransferFormat::Xlsx | TransferFormat::Csv => {
            let (res, items) = if format == TransferFormat::Xlsx { read_xlsx(bytes, limits)? } else { read_csv(bytes)? };
            tables_to_entries(&res, &items)
        }
    };
    if entries.len() > limits.max_resources {
        return Err(vec![issue(
            "",
            0,
            "",
            format!("at most {} resources per import, the file has {}", limits.max_resources, entries.len()),
        )]);
    }
    let sheet_res = if format == TransferFormat::Xlsx {
        RESOURCE_SHEET
    } else if format == TransferFormat::Csv {
        "CSV"
    } else {
        "JSON"
    };
    let sheet_items = if format == TransferFormat::Xlsx { ITEM_SHEET } else { sheet_res };
    for (e, (row, item_rows)) in entries.iter().zip(&rows) {
        if !is_classification_code(&e.classification_code) {
            issues.push(issue(sheet_res, *row, "信息资源分类", format!("'{}' is not a classification code", e.classification_code)));
        }
        for v in rules::check(&e.document, e.classification_code.starts_with('1')) {
            let (col, item) = column_of(&v.field);
            let (sheet, r) = match item.and_then(|i| item_rows.get(i)) {
                Some(ir) => (sheet_items, *ir),
                None => (sheet_res, *row),
            };
            issues.push(issue(sheet, r, col, format!("{}: {}", v.rule, v.message)));
        }
    }
    if issues.is_empty() { Ok(entries) } else { Err(issues) }
}

/// Builds entries from the two tables; returns them with the issues and, per entry, its row and its items' rows.
#[allow(clippy::type_complexity)]
fn tables_to_entries(res: &Table, items: &Table) -> (Vec<CatalogEntry>, Vec<ImportIssue>, Vec<(usize, Vec<usize>)>) {
    let mut issues = Vec::new();
    res.check_columns(RESOURCE_COLUMNS, &mut issues);
    items.check_columns(ITEM_COLUMNS, &mut issues);
    if !issues.is_empty() {
        return (Vec::new(), issues, Vec::new());
    }
    let mut by_key: BTreeMap<String, Vec<(usize, InfoItem)>> = BTreeMap::new();
    for (n, row) in &items.rows {
        let c = |col: &str| items.cell(row, col);
        let key = c("资源标识").to_string();
        let mut bad = |col: &str, reason: String| issues.push(issue(&items.sheet, *n, col, reason));
        let data_type = DataType::parse(c("数据类型")).unwrap_or_else(|| {
            bad("数据类型", format!("'{}' is not one of {}", c("数据类型"), DataType::expected()));
            DataType::Char
        });
        let length = match c("长度") {
            "" => None,
            l => l.parse::<u32>().map(Some).unwrap_or_else(|_| {
                bad("长度", format!("'{l}' is not a whole number"));
                None
            }),
        };
        let sharing_type = SharingType::parse(c("共享类型")).unwrap_or_else(|| {
            bad("共享类型", format!("'{}' is not one of {}", c("共享类型"), SharingType::expected()));
            SharingType::Conditional
        });
        let flag = |col: &str, bad: &mut dyn FnMut(&str, String)| {
            yes(c(col)).unwrap_or_else(|| {
                bad(col, format!("'{}' is not 是 or 否", c(col)));
                false
            })
        };
        let required = flag("是否必填", &mut bad);
        let is_key = flag("是否主键", &mut bad);
        let is_base_item = flag("基础信息项", &mut bad);
        let mask = match c("脱敏类型") {
            "" => None,
            m => shutong_reference::MaskKind::parse(m).or_else(|| {
                bad("脱敏类型", format!("'{m}' is not a masking kind"));
                None
            }),
        };
        if key.is_empty() {
            bad("资源标识", "required: the 资源标识 of the resource this item belongs to".into());
        }
        by_key.entry(key).or_default().push((
            *n,
            InfoItem {
                name: c("信息项名称").to_string(),
                data_type,
                length,
                required,
                is_key,
                mask,
                sharing_type,
                sharing_condition: opt(c("共享条件")),
                standard: opt(c("标准依据")),
                is_base_item,
            },
        ));
    }
    let mut entries = Vec::new();
    let mut rows = Vec::new();
    let mut keys = std::collections::HashSet::new();
    let mut codes = std::collections::HashSet::new();
    for (n, row) in &res.rows {
        let c = |col: &str| res.cell(row, col);
        let mut bad = |col: &str, reason: String| issues.push(issue(&res.sheet, *n, col, reason));
        let key = c("资源标识").to_string();
        if key.is_empty() {
            bad("资源标识", "required".into());
        } else if !keys.insert(key.clone()) {
            bad("资源标识", format!("'{key}' appears twice"));
        }
        let code = opt(c("信息资源代码"));
        if let Some(code) = &code
            && !codes.insert(code.clone())
        {
            bad("信息资源代码", format!("duplicate code '{code}'"));
        }
        let mut parse_enum = |col: &str, v: Option<String>, expected: String| {
            if v.is_none() {
                bad(col, format!("'{}' is not one of {expected}", c(col)));
            }
        };
        let format = ResourceFormat::parse(c("信息资源格式"));
        parse_enum("信息资源格式", format.map(|f| f.as_str().to_string()), ResourceFormat::expected());
        let sharing = SharingType::parse(c("共享类型"));
        parse_enum("共享类型", sharing.map(|f| f.as_str().to_string()), SharingType::expected());
        let cycle = UpdateCycle::parse(c("更新周期"));
        parse_enum("更新周期", cycle.map(|f| f.as_str().to_string()), UpdateCycle::expected());
        let secrecy = if c("涉密属性").is_empty() { Some(Secrecy::NonClassified) } else { Secrecy::parse(c("涉密属性")) };
        parse_enum("涉密属性", secrecy.map(|f| f.as_str().to_string()), Secrecy::expected());
        let network = if c("所属网络").is_empty() { Some(Network::Outer) } else { Network::parse(c("所属网络")) };
        parse_enum("所属网络", network.map(|f| f.as_str().to_string()), Network::expected());
        let mut methods = Vec::new();
        for m in list(c("共享方式")) {
            match SharingMethod::parse(&m) {
                Some(x) => methods.push(x),
                None => bad("共享方式", format!("'{m}' is not one of {}", SharingMethod::expected())),
            }
        }
        let open = yes(c("是否向社会开放")).unwrap_or_else(|| {
            bad("是否向社会开放", format!("'{}' is not 是 or 否", c("是否向社会开放")));
            false
        });
        let record_count = match c("记录数") {
            "" => None,
            v => v.parse::<i64>().map(Some).unwrap_or_else(|_| {
                bad("记录数", format!("'{v}' is not a whole number"));
                None
            }),
        };
        let storage_mb = match c("存储量(MB)") {
            "" => None,
            v => v.parse::<f64>().map(Some).unwrap_or_else(|_| {
                bad("存储量(MB)", format!("'{v}' is not a number"));
                None
            }),
        };
        let its = by_key.remove(&key).unwrap_or_default();
        rows.push((*n, its.iter().map(|(r, _)| *r).collect()));
        if let (Some(format), Some(sharing_type), Some(update_cycle), Some(secrecy), Some(network)) =
            (format, sharing, cycle, secrecy, network)
        {
            entries.push(CatalogEntry {
                code,
                classification_code: c("信息资源分类").to_string(),
                provider_code: c("提供方代码").to_ascii_uppercase(),
                document: ResourceDocument {
                    name: c("信息资源名称").to_string(),
                    summary: c("信息资源摘要").to_string(),
                    format,
                    items: its.into_iter().map(|(_, i)| i).collect(),
                    sharing_type,
                    sharing_condition: opt(c("共享条件")),
                    permitted_usage: opt(c("使用要求")),
                    legal_basis: opt(c("不予共享依据")),
                    sharing_methods: methods,
                    open_to_public: open,
                    open_condition: opt(c("开放条件")),
                    update_cycle,
                    related_codes: list(c("关联资源代码")),
                    secrecy,
                    network,
                    source_system: opt(c("来源信息系统")),
                    contact: opt(c("联系方式")),
                    record_count,
                    storage_mb,
                    tags: list(c("标签")),
                },
            });
        } else {
            rows.pop();
        }
    }
    for (key, its) in by_key {
        for (n, _) in its {
            issues.push(issue(&items.sheet, n, "资源标识", format!("no resource with 资源标识 '{key}'")));
        }
    }
    (entries, issues, rows)
}

/// Options of an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Submit every imported resource for review at once (they are drafts otherwise).
    pub submit: bool,
    /// The department whose catalog the file is: fills empty 提供方代码 cells, and every other row must
    /// name this department too.
    pub department_code: Option<String>,
}

/// Imports parsed entries in one transaction: every provider must exist and be one the principal may
/// compile for, every classification must exist; on any problem nothing is written. `progress` is called
/// with the count done so far.
pub async fn import(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    entries: &[CatalogEntry],
    options: ImportOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> CatalogResult<ImportReport> {
    let authority = is_authority(db, actor).await?;
    // Providers and classifications are resolved once.
    let depts: HashMap<String, i64> = sqlx::query("SELECT credit_code, id FROM departments")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect();
    let classes: HashMap<String, i64> = sqlx::query("SELECT code, level FROM catalog_classifications")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect();
    let mut issues = Vec::new();
    let filled: Vec<CatalogEntry>;
    let entries = match &options.department_code {
        Some(d) => {
            let d = d.trim().to_ascii_uppercase();
            filled = entries
                .iter()
                .cloned()
                .map(|mut e| {
                    if e.provider_code.is_empty() {
                        e.provider_code = d.clone();
                    }
                    e
                })
                .collect();
            for (i, e) in filled.iter().enumerate() {
                if e.provider_code != d {
                    issues.push(issue(
                        RESOURCE_SHEET,
                        i + 2,
                        "提供方代码",
                        format!("'{}' is not the department of this import ({d})", e.provider_code),
                    ));
                }
            }
            &filled[..]
        }
        None => entries,
    };
    for (i, e) in entries.iter().enumerate() {
        let row = i + 2;
        if e.provider_code.is_empty() {
            issues.push(issue(
                RESOURCE_SHEET,
                row,
                "提供方代码",
                "required: the provider's 统一社会信用代码 (or name the department for the whole file)",
            ));
            continue;
        }
        match depts.get(&e.provider_code) {
            None => issues.push(issue(RESOURCE_SHEET, row, "提供方代码", format!("no department with credit code '{}'", e.provider_code))),
            Some(d) if !(authority || actor.has_role_in(Role::CatalogEditor, DepartmentId(*d))) => {
                issues.push(issue(RESOURCE_SHEET, row, "提供方代码", "you may compile the catalog only of departments you edit for"))
            }
            _ => {}
        }
        match classes.get(&e.classification_code) {
            None => issues.push(issue(
                RESOURCE_SHEET,
                row,
                "信息资源分类",
                format!("classification '{}' does not exist", e.classification_code),
            )),
            Some(1) => issues.push(issue(RESOURCE_SHEET, row, "信息资源分类", "a resource belongs under a 项 or deeper")),
            _ => {}
        }
    }
    let items: usize = entries.iter().map(|e| e.document.items.len()).sum();
    if !issues.is_empty() {
        return Ok(ImportReport { format: String::new(), resources: entries.len(), items, committed: false, codes: vec![], issues });
    }
    let mut change = shutong_audit::Change::begin(db, ctx).await?;
    let mut codes = Vec::with_capacity(entries.len());
    for (i, batch) in entries.chunks(2000).enumerate() {
        let rows: Vec<(String, DepartmentId, ResourceDocument)> =
            batch.iter().map(|e| (e.classification_code.clone(), DepartmentId(depts[&e.provider_code]), e.document.clone())).collect();
        let created = crate::service::create_many_in_tx(&mut change, &rows, options.submit).await?;
        codes.extend(created);
        progress((i * 2000 + batch.len()).min(entries.len()));
    }
    change
        .record(shutong_audit::NewAuditEvent {
            action: shutong_audit::Action::CatalogImport,
            target_kind: "catalog_import",
            target_id: codes.first().map(ToString::to_string).unwrap_or_default(),
            department_id: None,
            detail: serde_json::json!({"resources": entries.len(), "items": items, "submitted": options.submit}),
        })
        .await?;
    change.notify(shutong_audit::Notice::CatalogImported);
    change.commit().await?;
    progress(entries.len());
    Ok(ImportReport { format: String::new(), resources: entries.len(), items, committed: true, codes, issues: vec![] })
}

/// The published catalog (or what the viewer may see, with `all_visible`) as entries for export.
pub async fn export_entries(db: &Db, viewer: &Principal, filter: &ResourceFilter) -> CatalogResult<Vec<CatalogEntry>> {
    let mut out = Vec::new();
    let mut after = filter.after.clone();
    loop {
        let page =
            crate::service::list_resources(db, viewer, &ResourceFilter { after: after.clone(), limit: 1000, ..filter.clone() }).await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let view = crate::service::get_resource(db, viewer, &r.code, None).await?;
            out.push(CatalogEntry {
                code: Some(view.code.into()),
                classification_code: view.classification_code,
                provider_code: view.provider_code,
                document: view.document,
            });
        }
        after = page.last().map(|r| r.code.to_string());
        if (page.len() as i64) < 1000 {
            break;
        }
    }
    Ok(out)
}

fn resource_cells(key: &str, e: &CatalogEntry) -> Vec<String> {
    let d = &e.document;
    vec![
        key.to_string(),
        e.classification_code.clone(),
        d.name.clone(),
        e.code.clone().unwrap_or_default(),
        e.provider_code.clone(),
        d.summary.clone(),
        d.format.label_zh().into(),
        d.sharing_type.label_zh().into(),
        d.sharing_condition.clone().unwrap_or_default(),
        d.permitted_usage.clone().unwrap_or_default(),
        d.legal_basis.clone().unwrap_or_default(),
        d.sharing_methods.iter().map(|m| m.label_zh()).collect::<Vec<_>>().join("、"),
        if d.open_to_public { "是" } else { "否" }.into(),
        d.open_condition.clone().unwrap_or_default(),
        d.update_cycle.label_zh().into(),
        d.related_codes.join("、"),
        d.secrecy.label_zh().into(),
        d.network.label_zh().into(),
        d.source_system.clone().unwrap_or_default(),
        d.contact.clone().unwrap_or_default(),
        d.record_count.map(|c| c.to_string()).unwrap_or_default(),
        d.storage_mb.map(|c| c.to_string()).unwrap_or_default(),
        d.tags.join("、"),
    ]
}

fn item_cells(key: &str, i: &InfoItem) -> Vec<String> {
    let yn = |b: bool| if b { "是" } else { "否" }.to_string();
    vec![
        key.to_string(),
        i.name.clone(),
        i.data_type.as_str().into(),
        i.length.map(|l| l.to_string()).unwrap_or_default(),
        yn(i.required),
        yn(i.is_key),
        i.sharing_type.label_zh().into(),
        i.sharing_condition.clone().unwrap_or_default(),
        i.standard.clone().unwrap_or_default(),
        yn(i.is_base_item),
        i.mask.map(|m| m.as_str()).unwrap_or("").into(),
    ]
}

/// Writes entries in a format.
pub fn write(format: TransferFormat, entries: &[CatalogEntry]) -> CatalogResult<Vec<u8>> {
    let key = |i: usize, e: &CatalogEntry| e.code.clone().unwrap_or_else(|| format!("R{}", i + 1));
    match format {
        TransferFormat::Json => serde_json::to_vec_pretty(entries).map_err(|e| CatalogError::State(e.to_string())),
        TransferFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let item_headers: Vec<&str> = ITEM_COLUMNS[1..].iter().map(|c| csv_item_header(c)).collect();
            let headers: Vec<&str> = RESOURCE_COLUMNS.iter().copied().chain(item_headers.iter().copied()).collect();
            let err = |e: csv::Error| CatalogError::State(e.to_string());
            w.write_record(&headers).map_err(err)?;
            for (i, e) in entries.iter().enumerate() {
                let k = key(i, e);
                let res = resource_cells(&k, e);
                if e.document.items.is_empty() {
                    let blanks = vec![String::new(); item_headers.len()];
                    w.write_record(res.iter().chain(blanks.iter())).map_err(err)?;
                }
                for it in &e.document.items {
                    let cells = item_cells(&k, it);
                    w.write_record(res.iter().chain(cells[1..].iter())).map_err(err)?;
                }
            }
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            bytes.extend(w.into_inner().map_err(|e| CatalogError::State(e.to_string()))?);
            Ok(bytes)
        }
        TransferFormat::Xlsx => {
            use rust_xlsxwriter::{Format, Workbook};
            let err = |e: rust_xlsxwriter::XlsxError| CatalogError::State(e.to_string());
            let mut book = Workbook::new();
            let bold = Format::new().set_bold();
            {
                let sheet = book.add_worksheet().set_name(RESOURCE_SHEET).map_err(err)?;
                for (c, h) in RESOURCE_COLUMNS.iter().enumerate() {
                    sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
                }
                for (i, e) in entries.iter().enumerate() {
                    for (c, v) in resource_cells(&key(i, e), e).iter().enumerate() {
                        sheet.write_string((i + 1) as u32, c as u16, v).map_err(err)?;
                    }
                }
            }
            {
                let sheet = book.add_worksheet().set_name(ITEM_SHEET).map_err(err)?;
                for (c, h) in ITEM_COLUMNS.iter().enumerate() {
                    sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
                }
                let mut r = 1u32;
                for (i, e) in entries.iter().enumerate() {
                    let k = key(i, e);
                    for it in &e.document.items {
                        for (c, v) in item_cells(&k, it).iter().enumerate() {
                            sheet.write_string(r, c as u16, v).map_err(err)?;
                        }
                        r += 1;
                    }
                }
            }
            book.save_to_buffer().map_err(err)
        }
    }
}

/// Reads any leading bytes to guess a format when no name or type says it (XLSX starts with a zip header).
pub fn sniff(bytes: &[u8]) -> TransferFormat {
    let mut head = [0u8; 4];
    let _ = Cursor::new(bytes).read(&mut head);
    if &head == b"PK\x03\x04" {
        TransferFormat::Xlsx
    } else if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'[') {
        TransferFormat::Json
    } else {
        TransferFormat::Csv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<CatalogEntry> {
        let item = |name: &str, base: bool| InfoItem {
            name: name.into(),
            data_type: DataType::Char,
            length: Some(18),
            required: true,
            is_key: base,
            mask: base.then_some(shutong_reference::MaskKind::IdNumber),
            sharing_type: SharingType::Unconditional,
            sharing_condition: None,
            standard: base.then(|| "GB 11643-1999".into()),
            is_base_item: base,
        };
        vec![CatalogEntry {
            code: Some("101/000001".into()),
            classification_code: "101".into(),
            provider_code: "11320000MB0001011Q".into(),
            document: ResourceDocument {
                name: "人口基本信息".into(),
                summary: "全省户籍人口".into(),
                format: ResourceFormat::Database,
                items: vec![item("公民身份号码", true), item("姓名", false)],
                sharing_type: SharingType::Unconditional,
                sharing_condition: None,
                permitted_usage: None,
                legal_basis: None,
                sharing_methods: vec![SharingMethod::OnlineQuery, SharingMethod::BulkDownload],
                open_to_public: false,
                open_condition: None,
                update_cycle: UpdateCycle::Daily,
                related_codes: vec!["102/000001".into()],
                secrecy: Secrecy::NonClassified,
                network: Network::Outer,
                source_system: Some("人口库".into()),
                contact: None,
                record_count: Some(80_000_000),
                storage_mb: Some(1.5),
                tags: vec!["基础".into()],
            },
        }]
    }

    #[test]
    fn round_trips_in_every_format() {
        let entries = sample();
        for f in [TransferFormat::Xlsx, TransferFormat::Csv, TransferFormat::Json] {
            let bytes = write(f, &entries).unwrap();
            assert_eq!(sniff(&bytes), f);
            let back = parse(f, &bytes, &ImportLimits::default()).unwrap_or_else(|e| panic!("{f:?}: {e:?}"));
            assert_eq!(back, entries, "{f:?}");
        }
    }

    #[test]
    fn accepts_gbk_csv() {
        let csv = String::from_utf8(write(TransferFormat::Csv, &sample()).unwrap()).unwrap();
        let (gbk, _, lossy) = encoding_rs::GBK.encode(csv.trim_start_matches('\u{feff}'));
        assert!(!lossy);
        assert_eq!(parse(TransferFormat::Csv, &gbk, &ImportLimits::default()).unwrap(), sample());
    }

    #[test]
    fn reports_name_sheet_row_column() {
        let mut entries = sample();
        entries[0].document.sharing_type = SharingType::Conditional; // R-CAT-3 and R-CAT-1
        let bytes = write(TransferFormat::Xlsx, &entries).unwrap();
        let issues = parse(TransferFormat::Xlsx, &bytes, &ImportLimits::default()).unwrap_err();
        assert!(
            issues.iter().any(|i| i.sheet == RESOURCE_SHEET && i.row == 2 && i.column == "共享类型" && i.reason.starts_with("R-CAT-3")),
            "{issues:?}"
        );
        assert!(issues.iter().any(|i| i.column == "共享条件" && i.reason.starts_with("R-CAT-1")), "{issues:?}");
    }

    #[test]
    fn refuses_oversized_files_and_zip_bombs() {
        let limits = ImportLimits { max_file_bytes: 10, ..Default::default() };
        assert!(parse(TransferFormat::Json, b"[                ]", &limits).unwrap_err()[0].reason.contains("larger"));
        let bytes = write(TransferFormat::Xlsx, &sample()).unwrap();
        let tight = ImportLimits { max_unpacked_bytes: 1000, ..Default::default() };
        assert!(parse(TransferFormat::Xlsx, &bytes, &tight).unwrap_err()[0].reason.contains("zip bomb"));
        assert!(parse(TransferFormat::Xlsx, b"PK\x03\x04garbage", &ImportLimits::default()).is_err());
        assert!(
            parse(TransferFormat::Csv, b"\xff\xfe\xff", &ImportLimits::default()).unwrap_err()[0].reason.contains("neither UTF-8 nor GBK")
        );
    }
}
