//! `shutong-bench xlsx`: XLSX uploads through the release server on SQLite, in bounded memory.
//!
//! 1. An honest workbook: N rows of the synthetic population written as Excel writes them (shared strings),
//!    uploaded as one full batch by the provider (ga.editor): the time, the rows loaded, the server's peak RSS.
//! 2. A spreadsheet bomb: a workbook of a few megabytes whose one sheet unpacks to more than a gigabyte
//!    (one valid population row repeated), uploaded the same way to a fresh server: the answer (refused,
//!    naming the limit), how long the refusal took, the server's peak RSS.
//!
//! Each upload goes to a server of its own, so that each peak is its own.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::exchange_bench::{rss_mb, spawn_server};

pub struct Options {
    pub n: u64,
    /// Rows of the bomb's sheet.
    pub bomb_rows: usize,
    pub shutong: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

struct Outcome {
    what: String,
    file_mb: f64,
    unpacked_mb: f64,
    status: u16,
    answer: String,
    seconds: f64,
    rss_before: f64,
    rss_peak: f64,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("shutong-bench-xlsx"));
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let shutong = o.shutong.clone().unwrap_or_else(|| exe.with_file_name("shutong"));
    if !shutong.exists() {
        bail!("{} not found: build it with cargo build --release -p shutong", shutong.display());
    }
    let honest = dir.join(format!("population-{}.xlsx", o.n));
    if !honest.exists() {
        let t = Instant::now();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, name) in shutong_exchange::synth::POPULATION_ITEMS.iter().enumerate() {
            sheet.write_string(0, c as u16, *name)?;
        }
        for i in 0..o.n {
            for (c, v) in shutong_exchange::synth::person(i, 42).iter().enumerate() {
                sheet.write_string(i as u32 + 1, c as u16, v)?;
            }
        }
        book.save(&honest)?;
        eprintln!("generated {} rows in {:.1}s: {}", o.n, t.elapsed().as_secs_f64(), honest.display());
    }
    let bomb = dir.join(format!("bomb-{}.xlsx", o.bomb_rows));
    if !bomb.exists() {
        let p = shutong_exchange::synth::person(7, 42);
        let row: Vec<&str> = p.iter().map(String::as_str).collect();
        let bytes = shutong_catalog::spreadsheet::repeated_row_workbook(&shutong_exchange::synth::POPULATION_ITEMS, &row, o.bomb_rows)?;
        std::fs::write(&bomb, bytes)?;
    }
    let mut outcomes = Vec::new();
    for (what, file) in [("spreadsheet bomb", &bomb), ("honest workbook", &honest)] {
        outcomes.push(upload(&shutong, &dir, what, file).await.with_context(|| what.to_string())?);
    }
    println!();
    println!("shutong-bench xlsx: honest N = {} rows, bomb {} rows, SQLite, {} cores", o.n, o.bomb_rows, num_cpus());
    println!();
    println!("| upload | file | unpacked | answer | time | server RSS before → peak |");
    println!("|---|---|---|---|---|---|");
    for x in &outcomes {
        println!(
            "| {} | {:.1} MB | {:.0} MB | {} {} | {:.2} s | {:.0} → {:.0} MB |",
            x.what, x.file_mb, x.unpacked_mb, x.status, x.answer, x.seconds, x.rss_before, x.rss_peak
        );
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The sum of the sizes the archive's parts declare (for the table only; the server counts what comes out).
fn declared_unpacked(file: &Path) -> anyhow::Result<u64> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(file)?)?;
    let mut total = 0;
    for i in 0..archive.len() {
        total += archive.by_index_raw(i)?.size();
    }
    Ok(total)
}

async fn upload(shutong: &Path, dir: &Path, what: &str, file: &Path) -> anyhow::Result<Outcome> {
    let data = dir.join("data");
    let (_child, base, http, pid) = spawn_server(shutong, &data, None).await?;
    let token: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "ga.editor", "password": shutong::demo::DEMO_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"].as_str().context("login")?.to_string();
    let (rss_before, _) = rss_mb(pid);
    let body = tokio::fs::read(file).await?;
    let file_mb = body.len() as f64 / 1e6;
    let t = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/data/101/000001/batches?mode=full&batch_id=xlsx-bench"))
        .bearer_auth(&token)
        .header("content-type", XLSX)
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let answer: Value = r.json().await.unwrap_or(Value::Null);
    let seconds = t.elapsed().as_secs_f64();
    let (_, rss_peak) = rss_mb(pid);
    let answer = match answer["rows_upserted"].as_u64() {
        Some(n) => format!("{n} rows loaded, {} rejected", answer["rows_rejected"]),
        None => answer["error"]["message"].as_str().unwrap_or("?").to_string(),
    };
    Ok(Outcome {
        what: what.to_string(),
        file_mb,
        unpacked_mb: declared_unpacked(file)? as f64 / 1e6,
        status,
        answer,
        seconds,
        rss_before,
        rss_peak,
    })
}
