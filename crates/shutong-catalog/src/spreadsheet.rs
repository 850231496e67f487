//! Reading spreadsheets (XLSX) that anyone may upload, in bounded memory.
//!
//! An XLSX workbook is a zip archive of XML parts. A few kilobytes can unpack to gigabytes (a "zip bomb"),
//! and a reader that builds the whole sheet in memory grows with the unpacked size, not the upload's. Two
//! pieces keep every spreadsheet reader of the platform (the catalog import, the exchange's data uploads)
//! within a bound whatever the file holds:
//!
//! - [`check_archive`] unpacks every part once as a stream, counting the bytes that really come out (the
//!   sizes an archive declares are the attacker's to choose), and refuses the workbook when the parts
//!   unpack to more than a total, when a part unpacks to more than a ratio of its packed size (after a first
//!   megabyte), when a part the reader keeps whole (shared strings, styles, the workbook) is larger than a
//!   limit, or when an XML tag or text runs longer than a limit (so that no single cell can be huge).
//! - [`stream_first_sheet`] then reads the first sheet cell by cell on a thread of its own and hands rows
//!   on through a bounded channel, each row holding at most [`MAX_COLUMNS`] cells and
//!   [`MAX_ROW_BYTES`] of text. A reader that stops early (a wrong header) stops the thread.
//!
//! The memory a reading needs is therefore at most about two and a half times the shared strings' limit
//! (calamine keeps each as a `String`: 24 bytes and its text, for at least 17 bytes of XML) plus a constant,
//! whatever the sheet's size.

use std::io::{Read, Seek};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{DataRef, Reader, Xlsx};

/// The most columns a row keeps (Excel's own limit, column XFD); cells further right mark the row as
/// [`SheetRow::beyond`].
pub const MAX_COLUMNS: usize = 16_384;
/// The most text a row keeps; a longer row is marked [`SheetRow::oversized`] and its cells dropped.
pub const MAX_ROW_BYTES: usize = 4 << 20;
/// How much a part must unpack to before the ratio check applies (small parts compress very well).
const RATIO_GRACE_BYTES: u64 = 1 << 20;
/// Rows read ahead of the consumer.
const ROWS_AHEAD: usize = 256;

/// What an uploaded workbook may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct ZipLimits {
    /// The most all parts together may unpack to, bytes.
    pub max_unpacked_bytes: u64,
    /// The most a part may unpack to as a multiple of its packed size (after its first megabyte).
    pub max_ratio: u64,
    /// The most a part read whole (shared strings, styles, the workbook, relationships) may unpack to, bytes.
    pub max_whole_part_bytes: u64,
    /// The longest XML tag or text run, bytes: the largest single cell value.
    pub max_token_bytes: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits { max_unpacked_bytes: 4 << 30, max_ratio: 200, max_whole_part_bytes: 256 << 20, max_token_bytes: 1 << 20 }
    }
}

/// Why a workbook is refused before it is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipRefusal {
    #[error("not an XLSX workbook (zip): {0}")]
    NotZip(String),
    #[error("the workbook unpacks to more than {limit} bytes")]
    Unpacked { limit: u64 },
    #[error("part '{part}' unpacks to more than {limit} times its packed size")]
    Ratio { part: String, limit: u64 },
    #[error("part '{part}' unpacks to more than {limit} bytes")]
    WholePart { part: String, limit: u64 },
    #[error("part '{part}' holds a value or tag longer than {limit} bytes")]
    Token { part: String, limit: u64 },
}

/// Whether the reader keeps a part whole in memory: everything but the worksheets, which are streamed.
fn read_whole(name: &str) -> bool {
    !name.starts_with("xl/worksheets/")
}

/// Unpacks every part of the archive once, streaming and counting, and refuses it as [`ZipRefusal`] says.
/// Memory: one 64 KiB buffer.
pub fn check_archive<R: Read + Seek>(reader: R, limits: &ZipLimits) -> Result<(), ZipRefusal> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| ZipRefusal::NotZip(e.to_string()))?;
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    for i in 0..archive.len() {
        let mut part = archive.by_index(i).map_err(|e| ZipRefusal::NotZip(e.to_string()))?;
        let name = part.name().to_string();
        let packed = part.compressed_size().max(1);
        let whole = read_whole(&name);
        let xml = name.ends_with(".xml") || name.ends_with(".rels");
        let mut unpacked = 0u64;
        // Bytes since the last '<' or '>': the length of the tag or text run being read.
        let mut run = 0u64;
        loop {
            let n = match part.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(ZipRefusal::NotZip(format!("part '{name}': {e}"))),
            };
            unpacked += n as u64;
            total += n as u64;
            if total > limits.max_unpacked_bytes {
                return Err(ZipRefusal::Unpacked { limit: limits.max_unpacked_bytes });
            }
            if unpacked > RATIO_GRACE_BYTES && unpacked / packed > limits.max_ratio {
                return Err(ZipRefusal::Ratio { part: name, limit: limits.max_ratio });
            }
            if whole && unpacked > limits.max_whole_part_bytes {
                return Err(ZipRefusal::WholePart { part: name, limit: limits.max_whole_part_bytes });
            }
            if xml {
                let chunk = &buf[..n];
                let mut from = 0;
                for at in memchr::memchr2_iter(b'<', b'>', chunk) {
                    run += (at - from) as u64;
                    if run > limits.max_token_bytes {
                        return Err(ZipRefusal::Token { part: name, limit: limits.max_token_bytes });
                    }
                    run = 0;
                    from = at + 1;
                }
                run += (n - from) as u64;
                if run > limits.max_token_bytes {
                    return Err(ZipRefusal::Token { part: name, limit: limits.max_token_bytes });
                }
            }
        }
    }
    Ok(())
}

/// One row of a sheet with at least one non-empty cell.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetRow {
    /// The row's number as the spreadsheet shows it (1-based).
    pub number: u32,
    /// The cells' text by column from A; a column without a cell is empty.
    pub cells: Vec<String>,
    /// A non-empty cell right of [`MAX_COLUMNS`].
    pub beyond: bool,
    /// The row's text is longer than [`MAX_ROW_BYTES`]; its cells are dropped.
    pub oversized: bool,
}

impl SheetRow {
    fn new(number: u32) -> SheetRow {
        SheetRow { number, cells: Vec::new(), beyond: false, oversized: false }
    }

    fn is_blank(&self) -> bool {
        !self.beyond && !self.oversized && self.cells.iter().all(|c| c.trim().is_empty())
    }
}

/// The rows of a sheet read on a thread of their own (see [`stream_first_sheet`]). An error ends the rows.
pub struct SheetRows {
    rx: Receiver<Result<SheetRow, String>>,
}

impl Iterator for SheetRows {
    type Item = Result<SheetRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

/// Reads the first sheet of a workbook row by row, skipping blank rows, on a thread that converts each
/// cell with `text`. Check the archive with [`check_archive`] first: this reader keeps the shared strings
/// whole. Opening errors arrive as the first item.
pub fn stream_first_sheet<R>(reader: R, text: fn(&DataRef<'_>) -> String) -> SheetRows
where
    R: Read + Seek + Send + 'static,
{
    let (tx, rx) = sync_channel(ROWS_AHEAD);
    std::thread::spawn(move || {
        if let Err(e) = read_sheet(reader, text, &tx) {
            let _ = tx.send(Err(e));
        }
    });
    SheetRows { rx }
}

/// The reading thread's work: `Err` is a message for the consumer; a consumer gone ends it quietly.
fn read_sheet<R: Read + Seek>(
    reader: R,
    text: fn(&DataRef<'_>) -> String,
    tx: &SyncSender<Result<SheetRow, String>>,
) -> Result<(), String> {
    let mut book: Xlsx<R> = Xlsx::new(reader).map_err(|e| format!("not a readable XLSX workbook: {e}"))?;
    let sheet = book.sheet_names().first().cloned().ok_or_else(|| "the workbook has no sheet".to_string())?;
    let mut cells = book.worksheet_cells_reader(&sheet).map_err(|e| format!("cannot read sheet '{sheet}': {e}"))?;
    let mut row: Option<SheetRow> = None;
    let mut row_bytes = 0usize;
    let send = |r: SheetRow| -> bool { r.is_blank() || tx.send(Ok(r)).is_ok() };
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(format!("sheet '{sheet}' is not readable: {e}")),
        };
        let (r, c) = cell.get_position();
        if row.as_ref().is_none_or(|cur| cur.number != r + 1) {
            if let Some(done) = row.take()
                && !send(done)
            {
                return Ok(());
            }
            row = Some(SheetRow::new(r + 1));
            row_bytes = 0;
        }
        let Some(cur) = row.as_mut() else { continue };
        let value = cell.get_value();
        if matches!(value, DataRef::Empty) || cur.oversized {
            continue;
        }
        let c = c as usize;
        if c >= MAX_COLUMNS {
            cur.beyond = true;
            continue;
        }
        let t = text(value);
        row_bytes += t.len();
        if row_bytes > MAX_ROW_BYTES {
            cur.oversized = true;
            cur.cells = Vec::new();
            continue;
        }
        if cur.cells.len() <= c {
            cur.cells.resize(c + 1, String::new());
        }
        cur.cells[c] = t;
    }
    if let Some(done) = row.take() {
        send(done);
    }
    Ok(())
}

/// A workbook whose one sheet is a header row and then `rows` copies of one row, packed as tightly as
/// deflate can: a few kilobytes per hundred megabytes unpacked. For tests and the benchmark harness (an
/// honest workbook with a constant column, or a zip bomb).
pub fn repeated_row_workbook(header: &[&str], row: &[&str], rows: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }
    fn xml_row(cells: &[&str]) -> String {
        let mut r = String::from("<row>");
        for c in cells {
            r.push_str(&format!(r#"<c t="inlineStr"><is><t>{}</t></is></c>"#, escape(c)));
        }
        r.push_str("</row>");
        r
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).compression_level(Some(9));
    let parts: [(&str, &str); 3] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    for (name, body) in parts {
        zip.start_file(name, opts)?;
        zip.write_all(body.as_bytes())?;
    }
    zip.start_file("xl/worksheets/sheet1.xml", opts)?;
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#)?;
    zip.write_all(xml_row(header).as_bytes())?;
    let per_block = rows.clamp(1, 1000);
    let block = xml_row(row).repeat(per_block);
    for _ in 0..rows / per_block {
        zip.write_all(block.as_bytes())?;
    }
    zip.write_all(xml_row(row).repeat(rows % per_block).as_bytes())?;
    zip.write_all(b"</sheetData></worksheet>")?;
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn bomb(rows: usize, text: &str) -> Vec<u8> {
        repeated_row_workbook(&[text], &[text], rows).expect("workbook")
    }

    fn cell(d: &DataRef<'_>) -> String {
        match d {
            DataRef::SharedString(s) => s.to_string(),
            DataRef::String(s) => s.clone(),
            DataRef::Float(f) => f.to_string(),
            DataRef::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }

    fn workbook(rows: &[&[&str]]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    sheet.write_string(r as u32, c as u16, *v).expect("write");
                }
            }
        }
        book.save_to_buffer().expect("save")
    }

    #[test]
    fn an_honest_workbook_passes_and_streams_its_rows() {
        let bytes = workbook(&[&["姓名", "", "证件号"], &[], &["张三", "x", "1"], &["李四", "", ""]]);
        check_archive(Cursor::new(bytes.clone()), &ZipLimits::default()).expect("honest");
        let rows: Vec<SheetRow> = stream_first_sheet(Cursor::new(bytes), cell).collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 3, "the blank row is skipped: {rows:?}");
        assert_eq!(rows[0].number, 1);
        assert_eq!(rows[0].cells, vec!["姓名", "", "证件号"]);
        assert_eq!(rows[1].number, 3);
        assert_eq!(rows[1].cells, vec!["张三", "x", "1"]);
        assert_eq!(rows[2].cells, vec!["李四"]);
    }

    #[test]
    fn a_bomb_is_refused_by_its_ratio_and_by_the_total() {
        let bytes = bomb(200_000, "x");
        assert!(bytes.len() < 200_000, "the bomb is small: {}", bytes.len());
        let err = check_archive(Cursor::new(bytes.clone()), &ZipLimits::default()).unwrap_err();
        assert_eq!(err, ZipRefusal::Ratio { part: "xl/worksheets/sheet1.xml".into(), limit: 200 });
        let total = ZipLimits { max_ratio: u64::MAX, max_unpacked_bytes: 4 << 20, ..ZipLimits::default() };
        assert_eq!(check_archive(Cursor::new(bytes), &total).unwrap_err(), ZipRefusal::Unpacked { limit: 4 << 20 });
    }

    #[test]
    fn a_huge_cell_and_large_whole_parts_are_refused() {
        let long = "y".repeat(3 << 20);
        let bytes = bomb(1, &long);
        let lax = ZipLimits { max_ratio: u64::MAX, ..ZipLimits::default() };
        let err = check_archive(Cursor::new(bytes), &lax).unwrap_err();
        assert_eq!(err, ZipRefusal::Token { part: "xl/worksheets/sheet1.xml".into(), limit: 1 << 20 });
        let many: Vec<String> = (0..20_000).map(|i| format!("共享字符串{i}")).collect();
        let rows: Vec<[&str; 1]> = many.iter().map(|s| [s.as_str()]).collect();
        let refs: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
        let bytes = workbook(&refs);
        let tight = ZipLimits { max_whole_part_bytes: 64 << 10, ..ZipLimits::default() };
        let err = check_archive(Cursor::new(bytes), &tight).unwrap_err();
        assert_eq!(err, ZipRefusal::WholePart { part: "xl/sharedStrings.xml".into(), limit: 64 << 10 });
        assert!(matches!(check_archive(Cursor::new(b"PK not a zip".to_vec()), &lax), Err(ZipRefusal::NotZip(_))));
    }

    #[test]
    fn a_reader_that_stops_early_stops_the_thread() {
        let bytes = bomb(100_000, "z");
        let mut rows = stream_first_sheet(Cursor::new(bytes), cell);
        let first = rows.next().expect("a row").expect("readable");
        assert_eq!(first.cells, vec!["z"]);
        drop(rows);
    }
}
