//! Reading uploads: CSV (UTF-8 or GBK, detected), NDJSON and XLSX, row by row, each row validated against
//! the resource's items. A problem with the file as a whole (unknown columns, missing key, wrong delimiter,
//! an encoding that is neither UTF-8 nor GBK) refuses the batch; a problem with a row rejects that row.

use std::io::Read;

use calamine::DataRef;
use shutong_catalog::spreadsheet::{MAX_ROW_BYTES, SheetRows, ZipLimits, ZipRefusal, check_archive, stream_first_sheet};
use shutong_reference::IdNumberValidator;

use crate::model::{DataFormat, IngestMode, RejectedRow};
use crate::validate::ItemCheck;
use crate::{ExchangeError, ExchangeResult, invalid};

/// One row read from an upload.
#[derive(Debug)]
pub enum Parsed {
    /// A valid row: its key, whether it deletes the record, and its values in binding column order.
    Row {
        row: i64,
        key: String,
        delete: bool,
        values: Vec<Option<String>>,
    },
    Reject(RejectedRow),
}

/// The columns of a batch: the binding's column order and the checks of the items in the resource's
/// published version (a column whose item has been removed is `None` and not accepted in uploads).
pub struct Columns {
    pub names: Vec<String>,
    pub checks: Vec<Option<ItemCheck>>,
    pub key: usize,
    /// The key is stored as its blind index (a sensitive key item with encryption at rest).
    pub key_sealed: bool,
}

impl Columns {
    fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name).filter(|&i| self.checks[i].is_some())
    }
    fn expected(&self) -> String {
        self.names.iter().zip(&self.checks).filter(|(_, c)| c.is_some()).map(|(n, _)| n.as_str()).collect::<Vec<_>>().join("、")
    }
}

pub struct ParseOptions {
    pub format: DataFormat,
    pub mode: IngestMode,
    /// The CSV delimiter (default `,`).
    pub delimiter: Option<u8>,
    /// Force an encoding (`utf-8` or `gbk`); default: detected.
    pub encoding: Option<String>,
}

const OP_COLUMN: &str = "_op";

/// The text encoding of an upload: the caller's choice, else UTF-8 if the first 64 KiB are UTF-8 (a BOM is
/// dropped), else GBK (GB 18030's subset common in government spreadsheets exported as CSV) if they decode
/// as GBK without error.
pub fn detect_encoding(prefix: &[u8], forced: Option<&str>) -> ExchangeResult<&'static encoding_rs::Encoding> {
    if let Some(f) = forced {
        return match f.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(encoding_rs::UTF_8),
            "gbk" | "gb2312" | "gb18030" | "cp936" => Ok(encoding_rs::GB18030),
            other => Err(invalid("encoding", format!("'{other}' is not supported: use utf-8 or gbk"))),
        };
    }
    let body = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    match std::str::from_utf8(body) {
        Ok(_) => return Ok(encoding_rs::UTF_8),
        // A character cut at the end of the prefix is not an error.
        Err(e) if e.error_len().is_none() => return Ok(encoding_rs::UTF_8),
        Err(_) => {}
    }
    let (_, had_errors) = encoding_rs::GBK.decode_without_bom_handling(trim_partial_gbk(body));
    if !had_errors {
        return Ok(encoding_rs::GB18030);
    }
    let at = std::str::from_utf8(body).err().map(|e| e.valid_up_to()).unwrap_or(0);
    Err(invalid(
        "encoding",
        format!(
            "the file is neither UTF-8 nor GBK (byte 0x{:02X} at offset {at} is invalid in both); save it as UTF-8 or pass encoding=gbk",
            body.get(at).copied().unwrap_or(0)
        ),
    ))
}

/// Drops a trailing lead byte cut off at the end of a prefix.
fn trim_partial_gbk(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    // Count trailing bytes >= 0x81: an odd run ends in a lone lead byte.
    let run = b.iter().rev().take_while(|&&x| x >= 0x81).count();
    if run % 2 == 1 {
        end -= 1;
    }
    &b[..end]
}

/// Reads the first up to 64 KiB of `r` for detection and returns them with the reader.
pub fn peek(mut r: impl Read) -> std::io::Result<(Vec<u8>, impl Read)> {
    let mut prefix = Vec::with_capacity(65_536);
    (&mut r).take(65_536).read_to_end(&mut prefix)?;
    Ok((prefix.clone(), std::io::Cursor::new(prefix).chain(r)))
}

/// A source of parsed rows.
pub trait RowSource: Send {
    fn next_row(&mut self) -> Option<std::io::Result<Parsed>>;
    fn encoding(&self) -> &'static str;
}

struct Validator<'a> {
    cols: &'a Columns,
    ids: IdNumberValidator,
    mode: IngestMode,
}

impl Validator<'_> {
    /// Validates one row given as (column index, raw value) pairs plus an optional op.
    fn row(&self, row: i64, fields: &[(usize, &str)], op: Option<&str>) -> Parsed {
        let key_raw = fields.iter().find(|(c, _)| *c == self.cols.key).map(|(_, v)| *v).unwrap_or("");
        let reject = |key: Option<String>, field: Option<&str>, reason: String| {
            Parsed::Reject(RejectedRow { row, key, field: field.map(str::to_string), reason })
        };
        let delete = match op.map(str::trim).unwrap_or("") {
            "" | "upsert" | "U" | "u" | "新增" | "更新" => false,
            "delete" | "D" | "d" | "删除" => true,
            other => {
                return reject(
                    Some(key_raw.trim().to_string()),
                    Some(OP_COLUMN),
                    format!("'{other}' is not an operation (upsert or delete)"),
                );
            }
        };
        if delete && self.mode == IngestMode::Full {
            return reject(
                Some(key_raw.trim().to_string()),
                Some(OP_COLUMN),
                "a full batch cannot delete: send deletions in an incremental batch".into(),
            );
        }
        let key_check = self.cols.checks[self.cols.key].as_ref();
        let key = match key_check.map(|c| c.check(key_raw, &self.ids)) {
            Some(Ok(Some(k))) => k,
            Some(Ok(None)) | None => return reject(None, Some(&self.cols.names[self.cols.key]), "the key is empty".into()),
            Some(Err(e)) => return reject(Some(key_raw.trim().to_string()), Some(&self.cols.names[self.cols.key]), e),
        };
        let mut values = vec![None; self.cols.names.len()];
        if delete {
            values[self.cols.key] = Some(key.clone());
            return Parsed::Row { row, key, delete, values };
        }
        for (c, raw) in fields {
            if *c == self.cols.key {
                continue;
            }
            if let Some(check) = &self.cols.checks[*c] {
                match check.check(raw, &self.ids) {
                    Ok(v) => values[*c] = v,
                    Err(e) => return reject(Some(key), Some(&check.name), e),
                }
            }
        }
        // Required items absent from this row (NDJSON rows name their own fields).
        for (c, check) in self.cols.checks.iter().enumerate() {
            if let Some(check) = check
                && check.required
                && values[c].is_none()
                && c != self.cols.key
                && !fields.iter().any(|(f, _)| *f == c)
            {
                return reject(Some(key), Some(&check.name), "is required and missing".into());
            }
        }
        values[self.cols.key] = Some(key.clone());
        Parsed::Row { row, key, delete, values }
    }
}

// ------------------------------------------------------------------ CSV

struct CsvSource<'a> {
    reader: csv::Reader<Box<dyn Read + Send + 'a>>,
    header: Vec<Option<usize>>,
    op_at: Option<usize>,
    v: Validator<'a>,
    record: csv::ByteRecord,
    row: i64,
    encoding: &'static str,
}

/// Opens a CSV upload: detects the encoding, reads and checks the header.
pub fn csv_source<'a>(
    input: Box<dyn Read + Send + 'a>,
    opts: &ParseOptions,
    cols: &'a Columns,
    ids: IdNumberValidator,
) -> ExchangeResult<Box<dyn RowSource + 'a>> {
    let (prefix, rest) = peek(input).map_err(io_err)?;
    let enc = detect_encoding(&prefix, opts.encoding.as_deref())?;
    let rest: Box<dyn Read + Send> = Box::new(rest);
    let decoded: Box<dyn Read + Send + 'a> = if enc == encoding_rs::UTF_8 {
        Box::new(encoding_rs_io::DecodeReaderBytesBuilder::new().bom_sniffing(true).utf8_passthru(true).strip_bom(true).build(rest))
    } else {
        Box::new(encoding_rs_io::DecodeReaderBytesBuilder::new().encoding(Some(enc)).build(rest))
    };
    let delimiter = opts.delimiter.unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(false).from_reader(decoded);
    let mut head = csv::ByteRecord::new();
    match reader.read_byte_record(&mut head) {
        Ok(true) => {}
        Ok(false) => return Err(invalid("file", "the file is empty: expected a header row naming the items")),
        Err(e) => return Err(invalid("file", format!("cannot read the header row: {e}"))),
    }
    let names: Vec<String> = head.iter().map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_string()).collect();
    if names.len() == 1 {
        for (d, label) in [(b';', ";"), (b'\t', "tab"), (b'|', "|"), (b',', ",")] {
            if d != delimiter && names[0].as_bytes().contains(&d) {
                return Err(invalid(
                    "delimiter",
                    format!(
                        "the header has a single column '{}': the file seems to be separated by '{label}', not '{}'; pass delimiter={label}",
                        names[0], delimiter as char
                    ),
                ));
            }
        }
    }
    let (header, op_at) = map_header(&names, cols)?;
    Ok(Box::new(CsvSource {
        reader,
        header,
        op_at,
        v: Validator { cols, ids, mode: opts.mode },
        record: csv::ByteRecord::new(),
        row: 0,
        encoding: if enc == encoding_rs::UTF_8 { "utf-8" } else { "gbk" },
    }))
}

fn map_header(names: &[String], cols: &Columns) -> ExchangeResult<(Vec<Option<usize>>, Option<usize>)> {
    let mut header = Vec::with_capacity(names.len());
    let mut op_at = None;
    for (i, n) in names.iter().enumerate() {
        if n == OP_COLUMN {
            op_at = Some(i);
            header.push(None);
            continue;
        }
        let Some(c) = cols.index_of(n) else {
            return Err(invalid(
                &format!("columns[{}]", i + 1),
                format!("column {} '{n}' is not an item of the resource; its items are {}", i + 1, cols.expected()),
            ));
        };
        if header.contains(&Some(c)) {
            return Err(invalid(&format!("columns[{}]", i + 1), format!("column {} '{n}' appears twice", i + 1)));
        }
        header.push(Some(c));
    }
    if !header.contains(&Some(cols.key)) {
        return Err(invalid("columns", format!("the key item '{}' has no column", cols.names[cols.key])));
    }
    for (c, check) in cols.checks.iter().enumerate() {
        if let Some(check) = check
            && check.required
            && !header.contains(&Some(c))
        {
            return Err(invalid("columns", format!("the required item '{}' has no column", check.name)));
        }
    }
    Ok((header, op_at))
}

fn io_err(e: std::io::Error) -> ExchangeError {
    if e.to_string().contains("length limit exceeded") {
        ExchangeError::TooLarge("the upload is larger than exchange.max_upload_bytes".into())
    } else {
        invalid("file", format!("cannot read the upload: {e}"))
    }
}

impl RowSource for CsvSource<'_> {
    fn encoding(&self) -> &'static str {
        self.encoding
    }

    fn next_row(&mut self) -> Option<std::io::Result<Parsed>> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    return match e.into_kind() {
                        csv::ErrorKind::Io(io) => Some(Err(io)),
                        other => {
                            self.row += 1;
                            Some(Ok(Parsed::Reject(RejectedRow { row: self.row, key: None, field: None, reason: format!("{other:?}") })))
                        }
                    };
                }
            }
            self.row += 1;
            let rec = &self.record;
            if rec.len() == 1 && rec.get(0).is_some_and(|f| f.iter().all(u8::is_ascii_whitespace)) && self.header.len() > 1 {
                // An empty line.
                self.row -= 1;
                continue;
            }
            if rec.len() != self.header.len() {
                return Some(Ok(Parsed::Reject(RejectedRow {
                    row: self.row,
                    key: None,
                    field: None,
                    reason: format!("the row has {} fields, the header has {}", rec.len(), self.header.len()),
                })));
            }
            let mut fields: Vec<(usize, &str)> = Vec::with_capacity(rec.len());
            let mut op = None;
            for (i, f) in rec.iter().enumerate() {
                let Ok(s) = std::str::from_utf8(f) else {
                    return Some(Ok(Parsed::Reject(RejectedRow {
                        row: self.row,
                        key: None,
                        field: None,
                        reason: format!("field {} is not valid text in the file's encoding", i + 1),
                    })));
                };
                match self.header[i] {
                    Some(c) => fields.push((c, s)),
                    None if Some(i) == self.op_at => op = Some(s),
                    None => {}
                }
            }
            return Some(Ok(self.v.row(self.row, &fields, op)));
        }
    }
}

// ------------------------------------------------------------------ NDJSON

struct NdjsonSource<'a> {
    lines: std::io::BufReader<Box<dyn Read + Send + 'a>>,
    buf: String,
    v: Validator<'a>,
    row: i64,
    encoding: &'static str,
}

pub fn ndjson_source<'a>(
    input: Box<dyn Read + Send + 'a>,
    opts: &ParseOptions,
    cols: &'a Columns,
    ids: IdNumberValidator,
) -> ExchangeResult<Box<dyn RowSource + 'a>> {
    let (prefix, rest) = peek(input).map_err(io_err)?;
    let enc = detect_encoding(&prefix, opts.encoding.as_deref())?;
    let rest: Box<dyn Read + Send> = Box::new(rest);
    let decoded: Box<dyn Read + Send + 'a> = if enc == encoding_rs::UTF_8 {
        rest
    } else {
        Box::new(encoding_rs_io::DecodeReaderBytesBuilder::new().encoding(Some(enc)).build(rest))
    };
    Ok(Box::new(NdjsonSource {
        lines: std::io::BufReader::with_capacity(256 * 1024, decoded),
        buf: String::new(),
        v: Validator { cols, ids, mode: opts.mode },
        row: 0,
        encoding: if enc == encoding_rs::UTF_8 { "utf-8" } else { "gbk" },
    }))
}

impl RowSource for NdjsonSource<'_> {
    fn encoding(&self) -> &'static str {
        self.encoding
    }

    fn next_row(&mut self) -> Option<std::io::Result<Parsed>> {
        use std::io::BufRead;
        loop {
            self.buf.clear();
            match self.lines.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.row += 1;
                    return Some(Ok(Parsed::Reject(RejectedRow {
                        row: self.row,
                        key: None,
                        field: None,
                        reason: "the line is not valid UTF-8".into(),
                    })));
                }
                Err(e) => return Some(Err(e)),
            }
            let line = self.buf.trim();
            if line.is_empty() {
                continue;
            }
            self.row += 1;
            let row = self.row;
            let reject = |field: Option<String>, reason: String| Some(Ok(Parsed::Reject(RejectedRow { row, key: None, field, reason })));
            let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
                Ok(o) => o,
                Err(e) => return reject(None, format!("not a JSON object: {e}")),
            };
            let mut owned: Vec<(usize, String)> = Vec::with_capacity(obj.len());
            let mut op = None;
            for (k, v) in &obj {
                let text = match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return reject(Some(k.clone()), format!("'{k}' must be a string, number, boolean or null")),
                };
                if k == OP_COLUMN {
                    op = Some(text);
                } else if k == "_delete" {
                    op = Some(if text == "true" { "delete".into() } else { String::new() });
                } else {
                    match self.v.cols.index_of(k) {
                        Some(c) => owned.push((c, text)),
                        None => {
                            return reject(
                                Some(k.clone()),
                                format!("'{k}' is not an item of the resource; its items are {}", self.v.cols.expected()),
                            );
                        }
                    }
                }
            }
            let fields: Vec<(usize, &str)> = owned.iter().map(|(c, s)| (*c, s.as_str())).collect();
            return Some(Ok(self.v.row(row, &fields, op.as_deref())));
        }
    }
}

// ------------------------------------------------------------------ XLSX

struct XlsxSource<'a> {
    rows: SheetRows,
    /// The header's first column: cells left of it are outside the table.
    origin: usize,
    header: Vec<Option<usize>>,
    op_at: Option<usize>,
    v: Validator<'a>,
    row: i64,
}

/// The text of a cell: numbers without a needless fraction, dates as `YYYY-MM-DD` (with the time when
/// there is one).
fn xlsx_cell_text(d: &DataRef<'_>) -> String {
    match d {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => s.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => dt
            .as_datetime()
            .map(|t| {
                if t.time() == chrono::NaiveTime::MIN {
                    t.format("%Y-%m-%d").to_string()
                } else {
                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                }
            })
            .unwrap_or_else(|| dt.to_string()),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

/// Why a workbook is refused before it is read, naming the setting that limits it.
fn zip_refusal(e: ZipRefusal, limits: &ZipLimits) -> ExchangeError {
    let mb = |b: u64| b >> 20;
    match e {
        ZipRefusal::NotZip(e) => invalid("file", format!("not a readable XLSX workbook: {e}")),
        ZipRefusal::Unpacked { .. } => ExchangeError::TooLarge(format!(
            "the workbook unpacks to more than {} MiB (exchange.xlsx_max_unpacked_mb): refused as a possible zip bomb, nothing was applied",
            mb(limits.max_unpacked_bytes)
        )),
        ZipRefusal::Ratio { part, limit } => ExchangeError::TooLarge(format!(
            "part '{part}' of the workbook unpacks to more than {limit} times its packed size (exchange.xlsx_max_ratio): \
             refused as a possible zip bomb, nothing was applied"
        )),
        ZipRefusal::WholePart { part, limit } => ExchangeError::TooLarge(format!(
            "part '{part}' of the workbook unpacks to more than {} MiB (exchange.xlsx_max_shared_strings_mb): nothing was applied",
            mb(limit)
        )),
        ZipRefusal::Token { part, limit } => ExchangeError::TooLarge(format!(
            "part '{part}' of the workbook holds a cell or tag longer than {} KiB: nothing was applied",
            limit >> 10
        )),
    }
}

/// Opens an XLSX upload (spooled to a file by the caller: a zip archive needs random access) and reads its
/// first sheet as a stream: the archive is checked against `limits` first (unpacked once, counted, in
/// bounded memory), then the header row is read and checked before any other row.
pub fn xlsx_source<'a>(
    mut file: std::fs::File,
    opts: &ParseOptions,
    cols: &'a Columns,
    ids: IdNumberValidator,
    limits: &ZipLimits,
) -> ExchangeResult<Box<dyn RowSource + 'a>> {
    use std::io::{BufReader, Seek, SeekFrom};
    check_archive(BufReader::new(&mut file), limits).map_err(|e| zip_refusal(e, limits))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| invalid("file", format!("cannot read the upload: {e}")))?;
    let mut rows = stream_first_sheet(BufReader::new(file), xlsx_cell_text);
    let first = match rows.next() {
        None => return Err(invalid("file", "the sheet is empty: expected a header row naming the items")),
        Some(Err(e)) => return Err(invalid("file", e)),
        Some(Ok(r)) => r,
    };
    if first.beyond || first.oversized {
        return Err(invalid("columns", "the header row is wider or longer than a sheet can be"));
    }
    let origin = first.cells.iter().position(|c| !c.trim().is_empty()).unwrap_or(0);
    let names: Vec<String> = first.cells[origin..].iter().map(|s| s.trim().to_string()).collect();
    // Trailing empty header cells are not columns.
    let width = names.iter().rposition(|n| !n.is_empty()).map(|p| p + 1).unwrap_or(0);
    let (header, op_at) = map_header(&names[..width], cols)?;
    Ok(Box::new(XlsxSource { rows, origin, header, op_at, v: Validator { cols, ids, mode: opts.mode }, row: 0 }))
}

impl RowSource for XlsxSource<'_> {
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    fn next_row(&mut self) -> Option<std::io::Result<Parsed>> {
        let r = match self.rows.next()? {
            Ok(r) => r,
            Err(e) => return Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        };
        self.row += 1;
        let reject = |reason: String| Some(Ok(Parsed::Reject(RejectedRow { row: self.row, key: None, field: None, reason })));
        if r.oversized {
            return reject(format!("row {} of the sheet holds more than {} MiB of text", r.number, MAX_ROW_BYTES >> 20));
        }
        let outside = |c: &(usize, &String)| (c.0 < self.origin || c.0 >= self.origin + self.header.len()) && !c.1.trim().is_empty();
        if r.beyond || r.cells.iter().enumerate().any(|c| outside(&c)) {
            return reject(format!("the row has values outside the header's {} columns", self.header.len()));
        }
        let cells = r.cells.get(self.origin..).unwrap_or(&[]);
        let mut fields = Vec::with_capacity(self.header.len());
        let mut op = None;
        for (i, h) in self.header.iter().enumerate() {
            let v = cells.get(i).map(String::as_str).unwrap_or("");
            match h {
                Some(c) => fields.push((*c, v)),
                None if Some(i) == self.op_at => op = Some(v),
                None => {}
            }
        }
        Some(Ok(self.v.row(self.row, &fields, op)))
    }
}
