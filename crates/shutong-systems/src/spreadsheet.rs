//! The inventory as a workbook (信息系统台账.xlsx): the template with drop-down lists, the export, and the
//! reading of a filled-in workbook into documents with every problem named by sheet, row and column.

use std::io::Cursor;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::*;

/// The sheet the inventory is read from and written to.
pub const SHEET: &str = "信息系统台账";
/// The sheet of value lists the drop-downs read.
const LISTS_SHEET: &str = "代码表";
/// Rows of the template that carry the drop-down lists.
const TEMPLATE_ROWS: u32 = 2000;
/// The most systems one workbook may hold.
pub const MAX_SYSTEMS: usize = 20_000;
/// The largest workbook accepted, bytes.
pub const MAX_FILE_BYTES: usize = 32 << 20;
/// Separator of several values in one cell (IP addresses, host instances, resources, accounts, nodes).
const LIST_SEP: &str = "；";

/// The columns, in order: header, and whether the value is chosen from a list (the list's labels).
pub const COLUMNS: &[&str] = &[
    "系统编号",
    "部门统一社会信用代码",
    "系统名称",
    "主要功能",
    "使用范围",
    "使用频度",
    "审批部门",
    "审批时间",
    "建设经费（元）",
    "年运维经费（元）",
    "经费来源",
    "IP地址",
    "主机实例名称",
    "访问地址",
    "部署网络",
    "系统状态",
    "使用处室",
    "运维状态",
    "最近一次更新日期",
    "是否跨部门共享数据",
    "是否已接入共享平台",
    "产生的信息资源",
    "使用的信息资源",
    "系统账户",
    "前置机",
];

/// One problem of a workbook: where (sheet, 1-based row as the spreadsheet shows it, column header) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SheetIssue {
    pub sheet: String,
    /// The row as the spreadsheet numbers it (the header is row 1); 0 for the file itself.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// One row of the inventory: the system's ID (empty for a new one), its department's 统一社会信用代码, and
/// its document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SheetSystem {
    pub row: usize,
    pub id: Option<SystemId>,
    pub department_code: String,
    pub document: SystemDocument,
}

fn lists() -> Vec<(&'static str, Vec<&'static str>)> {
    fn labels<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| f(*v)).collect()
    }
    vec![
        ("使用范围", labels(UsageScope::ALL, UsageScope::label_zh)),
        ("使用频度", labels(UsageFrequency::ALL, UsageFrequency::label_zh)),
        ("经费来源", labels(FundingSource::ALL, FundingSource::label_zh)),
        ("部署网络", labels(SystemNetwork::ALL, SystemNetwork::label_zh)),
        ("系统状态", labels(SystemStatus::ALL, SystemStatus::label_zh)),
        ("运维状态", labels(OmStatus::ALL, OmStatus::label_zh)),
        ("是否跨部门共享数据", vec!["是", "否"]),
        ("是否已接入共享平台", vec!["是", "否"]),
    ]
}

fn yes_no(b: bool) -> &'static str {
    if b { "是" } else { "否" }
}

fn cells_of(id: Option<SystemId>, department_code: &str, d: &SystemDocument) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let date = |v: Option<NaiveDate>| v.map(|d| d.to_string()).unwrap_or_default();
    vec![
        id.map(|i| i.to_string()).unwrap_or_default(),
        department_code.to_string(),
        d.name.clone(),
        d.function.clone(),
        d.usage_scope.label_zh().into(),
        d.usage_frequency.label_zh().into(),
        opt(&d.approving_department),
        date(d.approval_date),
        d.build_cost.to_string(),
        d.om_cost.to_string(),
        d.funding_source.label_zh().into(),
        d.ip_addresses.join(LIST_SEP),
        d.host_instances.join(LIST_SEP),
        opt(&d.access_url),
        d.network.label_zh().into(),
        d.status.label_zh().into(),
        opt(&d.unit),
        d.om_status.label_zh().into(),
        date(d.last_update_date),
        yes_no(d.shares_across_departments).into(),
        yes_no(d.connected).into(),
        d.produces.join(LIST_SEP),
        d.consumes.join(LIST_SEP),
        d.accounts.join(LIST_SEP),
        d.nodes.join(LIST_SEP),
    ]
}

/// Writes the inventory sheet with `rows` (the template has none), every list column with its drop-down
/// (from the 代码表 sheet), text columns formatted as text so that codes keep their leading zeros.
pub fn write(rows: &[SheetSystem]) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{DataValidation, DataValidationErrorStyle, Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut book = Workbook::new();
    let bold = Format::new().set_bold().set_text_wrap();
    let text = Format::new().set_num_format("@");
    let lists = lists();
    {
        let sheet = book.add_worksheet().set_name(SHEET).map_err(err)?;
        for (c, h) in COLUMNS.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(err)?;
            sheet.set_column_width(c as u16, if matches!(*h, "系统名称" | "主要功能" | "访问地址") { 28 } else { 14 }).map_err(err)?;
            sheet.set_column_format(c as u16, &text).map_err(err)?;
        }
        sheet.set_freeze_panes(1, 3).map_err(err)?;
        for (i, r) in rows.iter().enumerate() {
            for (c, v) in cells_of(r.id, &r.department_code, &r.document).iter().enumerate() {
                sheet.write_string((i + 1) as u32, c as u16, v).map_err(err)?;
            }
        }
        let last = TEMPLATE_ROWS.max(rows.len() as u32 + 1);
        for (n, (header, values)) in lists.iter().enumerate() {
            let Some(c) = COLUMNS.iter().position(|h| h == header) else { continue };
            let col = (b'A' + n as u8) as char;
            let formula = format!("={LISTS_SHEET}!${col}$2:${col}${}", values.len() + 1);
            let v = DataValidation::new()
                .allow_list_formula(formula.as_str().into())
                .set_error_style(DataValidationErrorStyle::Stop)
                .set_error_title(*header)
                .map_err(err)?
                .set_error_message(format!("请从下拉列表中选择：{}", values.join("、")))
                .map_err(err)?;
            sheet.add_data_validation(1, c as u16, last, c as u16, &v).map_err(err)?;
        }
    }
    {
        let sheet = book.add_worksheet().set_name(LISTS_SHEET).map_err(err)?;
        for (n, (header, values)) in lists.iter().enumerate() {
            sheet.write_string_with_format(0, n as u16, *header, &bold).map_err(err)?;
            for (i, v) in values.iter().enumerate() {
                sheet.write_string((i + 1) as u32, n as u16, *v).map_err(err)?;
            }
        }
    }
    book.save_to_buffer().map_err(err)
}

fn cell_text(d: &calamine::Data) -> String {
    use calamine::Data;
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f:.2}"),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => yes_no(*b).into(),
        Data::DateTime(dt) => dt.as_datetime().map(|d| d.date().to_string()).unwrap_or_else(|| dt.to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

fn issue(row: usize, column: &str, reason: impl Into<String>) -> SheetIssue {
    SheetIssue { sheet: SHEET.into(), row, column: column.into(), reason: reason.into() }
}

/// The header of a document field, for issues the document's checks name by field.
pub fn column_of(field: &str) -> &'static str {
    let base = field.split(['[', '.']).next().unwrap_or(field);
    match base {
        "name" => "系统名称",
        "function" => "主要功能",
        "usage_scope" => "使用范围",
        "usage_frequency" => "使用频度",
        "approving_department" => "审批部门",
        "approval_date" => "审批时间",
        "build_cost" => "建设经费（元）",
        "om_cost" => "年运维经费（元）",
        "funding_source" => "经费来源",
        "ip_addresses" => "IP地址",
        "host_instances" => "主机实例名称",
        "access_url" => "访问地址",
        "network" => "部署网络",
        "status" => "系统状态",
        "unit" => "使用处室",
        "om_status" => "运维状态",
        "last_update_date" => "最近一次更新日期",
        "shares_across_departments" => "是否跨部门共享数据",
        "connected" => "是否已接入共享平台",
        "produces" => "产生的信息资源",
        "consumes" => "使用的信息资源",
        "accounts" => "系统账户",
        "nodes" => "前置机",
        "department_id" | "department" => "部门统一社会信用代码",
        "id" => "系统编号",
        _ => "",
    }
}

/// Reads a filled-in workbook: every row into a document, or every problem named by sheet, row and column.
/// The archive is checked first (no zip bomb), and the sheet's size is bounded.
pub fn parse(bytes: &[u8]) -> Result<Vec<SheetSystem>, Vec<SheetIssue>> {
    use calamine::Reader;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(vec![issue(0, "", format!("the file is larger than {} MB", MAX_FILE_BYTES >> 20))]);
    }
    let limits = shutong_catalog::spreadsheet::ZipLimits { max_unpacked_bytes: 256 << 20, ..Default::default() };
    shutong_catalog::spreadsheet::check_archive(Cursor::new(bytes), &limits)
        .map_err(|e| vec![issue(0, "", format!("not a readable XLSX workbook: {e}"))])?;
    let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| vec![issue(0, "", format!("not a readable XLSX workbook: {e}"))])?;
    let range = book.worksheet_range(SHEET).map_err(|_| vec![issue(0, "", format!("the workbook has no sheet '{SHEET}'"))])?;
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().map(|r| r.iter().map(cell_text).map(|h| h.trim().to_string()).collect()).unwrap_or_default();
    let mut index = Vec::with_capacity(COLUMNS.len());
    let mut issues = Vec::new();
    for c in COLUMNS {
        match header.iter().position(|h| h == c) {
            Some(i) => index.push(i),
            // Added after the first template: a workbook filled in on the older one is still read.
            None if *c == "前置机" => index.push(usize::MAX),
            None => issues.push(issue(1, c, format!("missing column '{c}'"))),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut out = Vec::new();
    for (i, r) in rows.enumerate() {
        let number = i + 2;
        let cells: Vec<String> = index.iter().map(|c| r.get(*c).map(cell_text).unwrap_or_default().trim().to_string()).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if out.len() + issues.len() >= MAX_SYSTEMS {
            issues.push(issue(number, "", format!("a workbook holds at most {MAX_SYSTEMS} systems")));
            break;
        }
        match parse_row(number, &cells) {
            Ok(s) => out.push(s),
            Err(mut e) => issues.append(&mut e),
        }
    }
    if out.is_empty() && issues.is_empty() {
        issues.push(issue(0, "", "the sheet has no system"));
    }
    if issues.is_empty() { Ok(out) } else { Err(issues) }
}

fn parse_row(row: usize, cells: &[String]) -> Result<SheetSystem, Vec<SheetIssue>> {
    let mut issues = Vec::new();
    let get = |h: &str| cells[COLUMNS.iter().position(|c| *c == h).unwrap_or(0)].as_str();
    fn listed<T>(issues: &mut Vec<SheetIssue>, row: usize, h: &str, v: &str, parse: fn(&str) -> Option<T>, expected: String) -> Option<T> {
        if v.is_empty() {
            issues.push(issue(row, h, format!("required: one of {expected}")));
            return None;
        }
        let p = parse(v);
        if p.is_none() {
            issues.push(issue(row, h, format!("'{v}' is not one of {expected}")));
        }
        p
    }
    let mut date = |h: &str| -> Option<NaiveDate> {
        let v = get(h);
        if v.is_empty() {
            return None;
        }
        let parsed = NaiveDate::parse_from_str(v, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(v, "%Y/%m/%d"));
        match parsed {
            Ok(d) => Some(d),
            Err(_) => {
                issues.push(issue(row, h, format!("'{v}' is not a date (YYYY-MM-DD)")));
                None
            }
        }
    };
    let approval_date = date("审批时间");
    let last_update_date = date("最近一次更新日期");
    let mut money = |h: &str| match Money::parse_typed(get(h)) {
        Ok(m) => m,
        Err(e) => {
            issues.push(issue(row, h, e));
            Money::default()
        }
    };
    let build_cost = money("建设经费（元）");
    let om_cost = money("年运维经费（元）");
    let mut flag = |h: &str| match get(h) {
        "是" | "true" | "TRUE" | "1" => true,
        "否" | "false" | "FALSE" | "0" | "" => false,
        v => {
            issues.push(issue(row, h, format!("'{v}' is not 是 or 否")));
            false
        }
    };
    let shares = flag("是否跨部门共享数据");
    let connected = flag("是否已接入共享平台");
    let scope = listed(&mut issues, row, "使用范围", get("使用范围"), UsageScope::parse, UsageScope::expected());
    let frequency = listed(&mut issues, row, "使用频度", get("使用频度"), UsageFrequency::parse, UsageFrequency::expected());
    let funding = listed(&mut issues, row, "经费来源", get("经费来源"), FundingSource::parse, FundingSource::expected());
    let network = listed(&mut issues, row, "部署网络", get("部署网络"), SystemNetwork::parse, SystemNetwork::expected());
    let status = listed(&mut issues, row, "系统状态", get("系统状态"), SystemStatus::parse, SystemStatus::expected());
    let om_status = listed(&mut issues, row, "运维状态", get("运维状态"), OmStatus::parse, OmStatus::expected());
    let id = match get("系统编号") {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(n) if n > 0 => Some(SystemId(n)),
            _ => {
                issues.push(issue(row, "系统编号", format!("'{v}' is not a system number")));
                None
            }
        },
    };
    let department_code = get("部门统一社会信用代码").to_string();
    if department_code.is_empty() {
        issues.push(issue(row, "部门统一社会信用代码", "required: the department's 统一社会信用代码"));
    }
    let list = |h: &str| -> Vec<String> {
        get(h).split(['；', ';', '\n', '，', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    };
    let opt = |h: &str| Some(get(h).to_string()).filter(|s| !s.is_empty());
    let (Some(usage_scope), Some(usage_frequency), Some(funding_source), Some(network), Some(status), Some(om_status)) =
        (scope, frequency, funding, network, status, om_status)
    else {
        return Err(issues);
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let document = SystemDocument {
        name: get("系统名称").to_string(),
        function: get("主要功能").to_string(),
        usage_scope,
        usage_frequency,
        approving_department: opt("审批部门"),
        approval_date,
        build_cost,
        om_cost,
        funding_source,
        ip_addresses: list("IP地址"),
        host_instances: list("主机实例名称"),
        access_url: opt("访问地址"),
        network,
        status,
        unit: opt("使用处室"),
        om_status,
        last_update_date,
        shares_across_departments: shares,
        connected,
        produces: list("产生的信息资源"),
        consumes: list("使用的信息资源"),
        accounts: list("系统账户"),
        nodes: list("前置机"),
    }
    .normalised();
    Ok(SheetSystem { row, id, department_code, document })
}
