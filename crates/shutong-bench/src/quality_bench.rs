//! `shutong-bench quality`: every rule of the demo population's dataset over N rows, against one pass over the
//! same rows that checks nothing.
//!
//! 1. Generates N rows of the synthetic population as one CSV file (shared with `exchange`).
//! 2. For each backend starts `shutong serve --demo` (the release binary; its own checks after batches off)
//!    on a fresh data directory / database, uploads the file to 人口基本信息 as the provider, and stops it.
//! 3. In this process, over the same database: the pass that checks nothing (`scan_dataset` with a visitor
//!    that only counts), then `shutong_quality::check` with every rule in force (the ones derived from the
//!    catalog entry and the demo provider's own), each twice, the faster of each kept.

use anyhow::{Context, bail};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Options {
    pub rows: u64,
    pub postgres: String,
    pub sqlite_only: bool,
    pub shutong: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

struct Figures {
    backend: &'static str,
    rows: i64,
    record_rules: usize,
    dataset_rules: usize,
    pass: Duration,
    check: Duration,
    failing: i64,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("shutong-bench-exchange"));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join(format!("population-{}.csv", o.rows));
    if !csv.exists() {
        let t = Instant::now();
        let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&csv)?);
        shutong_exchange::synth::write_population_csv(f, o.rows, 42)?;
        eprintln!("generated {} rows in {:.1}s: {}", o.rows, t.elapsed().as_secs_f64(), csv.display());
    }
    let shutong = o.shutong.clone().unwrap_or_else(|| std::env::current_exe().unwrap_or_default().with_file_name("shutong"));
    if !shutong.exists() {
        bail!("{} not found: build it with cargo build --release -p shutong", shutong.display());
    }
    let mut results = vec![on_backend(&o, &shutong, &csv, &dir, None).await.context("SQLite run")?];
    if !o.sqlite_only {
        let name = format!("shutong_bench_q{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&o.postgres).await.context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let base = o.postgres.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(o.postgres.clone());
        let r = on_backend(&o, &shutong, &csv, &dir, Some(format!("{base}/{name}"))).await.context("PostgreSQL run");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
        results.push(r?);
    }
    println!();
    println!("shutong-bench quality: N = {} rows, {} cores", o.rows, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!();
    println!("| backend | rules (record + dataset) | pass that checks nothing, rows/s | every rule, rows/s | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for f in &results {
        let rate = |d: Duration| f.rows as f64 / d.as_secs_f64();
        println!(
            "| {} | {} + {} | {:.0} ({:.1} s) | {:.0} ({:.1} s) | {:.2}× | ≥ 0.5× |",
            f.backend,
            f.record_rules,
            f.dataset_rules,
            rate(f.pass),
            f.pass.as_secs_f64(),
            rate(f.check),
            f.check.as_secs_f64(),
            f.pass.as_secs_f64() / f.check.as_secs_f64()
        );
    }
    for f in &results {
        eprintln!("{}: {} records checked, {} rule failures in all", f.backend, f.rows, f.failing);
    }
    Ok(())
}

async fn on_backend(o: &Options, shutong: &Path, csv: &Path, dir: &Path, postgres: Option<String>) -> anyhow::Result<Figures> {
    let backend = if postgres.is_some() { "postgres" } else { "sqlite" };
    let data = dir.join(format!("quality-{backend}"));
    {
        let (child, base, http, _) = crate::exchange_bench::spawn_server(shutong, &data, postgres.as_deref()).await?;
        let token = crate::node_bench::login(&http, &base, "ga.editor").await?;
        let t = Instant::now();
        crate::exchange_bench::load_population(&http, &base, &token, csv, o.rows).await?;
        eprintln!("{backend}: loaded {} rows in {:.1}s", o.rows, t.elapsed().as_secs_f64());
        drop(child);
    }
    // The same database, opened here as the server opens it.
    let config = shutong_config::Config { data_dir: data.clone(), database_url: postgres.clone().map(Into::into), ..Default::default() };
    let db = shutong::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let regions = shutong_refdata::load_regions(&db).await?;
    let ex = shutong::server::open_exchange(&config, &db, &calendar).await?;
    let code = shutong_catalog::ResourceCode::parse("101/000001").map_err(|e| anyhow::anyhow!(e))?;
    let binding = shutong_exchange::get_binding(&ex, &code).await?.context("the population is bound")?;
    let operator = shutong_identity::Principal::operator("bench");
    let ctx = shutong_audit::AuditContext::system("bench");
    let rules = shutong_quality::rules(&ex, &operator, &code).await?;
    let in_force: Vec<_> = rules.iter().filter(|r| r.retired_at_ms.is_none()).collect();
    let dataset_rules = in_force.iter().filter(|r| r.kind.is_dataset_rule()).count();
    let (mut pass, mut check, mut rows, mut failing) = (Duration::MAX, Duration::MAX, 0i64, 0i64);
    for _ in 0..2 {
        let t = Instant::now();
        let mut n = 0i64;
        shutong_exchange::scan::scan_dataset(&ex, &binding, None, &mut |_| {
            n += 1;
            Ok(())
        })
        .await?;
        pass = pass.min(t.elapsed());
        let t = Instant::now();
        let run = shutong_quality::check(&ex, &operator, &ctx, &regions, &code, shutong_quality::CheckCause::Manual, None).await?;
        check = check.min(t.elapsed());
        if run.rows_checked != n {
            bail!("the check read {} rows, the pass {n}", run.rows_checked);
        }
        rows = n;
        failing = run.results.iter().map(|r| r.rows_failing).sum();
    }
    db.close().await;
    Ok(Figures { backend, rows, record_rules: in_force.len() - dataset_rules, dataset_rules, pass, check, failing })
}
