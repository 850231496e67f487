//! `shutong-bench exchange`: the data plane through the release server, against PostgreSQL's own COPY.
//!
//! 1. Generates N rows of the synthetic population (valid 公民身份号码, deterministic seed) as one CSV file.
//! 2. For each backend (SQLite, PostgreSQL) starts `shutong serve --demo` (the release binary next to this
//!    one) on a fresh data directory / database, and as the provider (ga.editor) uploads the file as one full
//!    batch through the API; as a consumer with a grant (东川市人社局, all items, masked) downloads it as
//!    CSV, then runs concurrent lookups by key through the full stack (auth, grant, masking, access log), and
//!    the same load against `/healthz`. The server's peak RSS is read from /proc.
//! 3. Baseline: `COPY … FROM STDIN` of the same file into a PostgreSQL table whose primary key is the key
//!    item, and `COPY … TO STDOUT` of it.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Options {
    pub n: u64,
    pub postgres: String,
    pub sqlite_only: bool,
    pub postgres_only: bool,
    pub clients: usize,
    pub seconds: u64,
    pub shutong: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

struct Figures {
    backend: &'static str,
    ingest: Duration,
    export: Duration,
    export_rows: u64,
    lookups: Load,
    health: Load,
    rss_mb: f64,
}

struct Load {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = o.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("shutong-bench-exchange"));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join(format!("population-{}.csv", o.n));
    if !csv.exists() {
        let t = Instant::now();
        let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&csv)?);
        shutong_exchange::synth::write_population_csv(f, o.n, 42)?;
        eprintln!("generated {} rows in {:.1}s: {}", o.n, t.elapsed().as_secs_f64(), csv.display());
    }
    let bytes = std::fs::metadata(&csv)?.len();
    let exe = std::env::current_exe()?;
    let shutong = o.shutong.clone().unwrap_or_else(|| exe.with_file_name("shutong"));
    if !shutong.exists() {
        bail!("{} not found: build it with cargo build --release -p shutong", shutong.display());
    }
    let mut results = Vec::new();
    if !o.postgres_only {
        results.push(on_backend(&o, &shutong, &csv, &dir, None).await.context("SQLite run")?);
    }
    let mut baseline = None;
    if !o.sqlite_only {
        let name = format!("shutong_bench_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&o.postgres).await.context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let base = o.postgres.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(o.postgres.clone());
        let url = format!("{base}/{name}");
        let run = async {
            let r = on_backend(&o, &shutong, &csv, &dir, Some(url.clone())).await.context("PostgreSQL run")?;
            let b = copy_baseline(&url, &csv).await.context("COPY baseline")?;
            anyhow::Ok((r, b))
        }
        .await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
        let (r, b) = run?;
        results.push(r);
        baseline = Some(b);
    }
    print_table(o.n, bytes, &results, baseline, o.clients);
    Ok(())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn print_table(n: u64, bytes: u64, results: &[Figures], baseline: Option<(Duration, Duration)>, clients: usize) {
    println!();
    println!("shutong-bench exchange: N = {n} rows ({:.0} MB CSV), {clients} concurrent clients, {} cores", bytes as f64 / 1e6, num_cpus());
    println!();
    println!("| figure | SQLite | PostgreSQL | PostgreSQL COPY | target |");
    println!("|---|---|---|---|---|");
    let cell = |f: Option<&Figures>, g: &dyn Fn(&Figures) -> String| f.map(g).unwrap_or_else(|| "–".into());
    let s = results.iter().find(|f| f.backend == "sqlite");
    let p = results.iter().find(|f| f.backend == "postgres");
    let (copy_in, copy_out) = baseline.map(|(a, b)| (rate(n, a), rate(n, b))).unwrap_or((f64::NAN, f64::NAN));
    let vs = |r: f64, base: f64| if base.is_nan() { String::new() } else { format!(" ({:.2}× COPY)", r / base) };
    println!(
        "| ingest, rows/s (API, full batch) | {} | {} | {:.0} | ≥ 1.0× COPY |",
        cell(s, &|f| format!("{:.0}{}", rate(n, f.ingest), vs(rate(n, f.ingest), copy_in))),
        cell(p, &|f| format!("{:.0}{}", rate(n, f.ingest), vs(rate(n, f.ingest), copy_in))),
        copy_in
    );
    println!(
        "| export, rows/s (API, CSV, masked) | {} | {} | {:.0} | ≥ 1.0× COPY |",
        cell(s, &|f| format!("{:.0}{}", rate(f.export_rows, f.export), vs(rate(f.export_rows, f.export), copy_out))),
        cell(p, &|f| format!("{:.0}{}", rate(f.export_rows, f.export), vs(rate(f.export_rows, f.export), copy_out))),
        copy_out
    );
    println!(
        "| lookups by key, req/s (full stack) | {} | {} | | ≥ 20,000 and ≥ 0.3× trivial |",
        cell(s, &|f| format!("{:.0} ({:.2}× trivial)", f.lookups.rate(), f.lookups.rate() / f.health.rate())),
        cell(p, &|f| format!("{:.0} ({:.2}× trivial)", f.lookups.rate(), f.lookups.rate() / f.health.rate()))
    );
    println!(
        "| lookups p50 / p99 | {} | {} | | p99 ≤ 10 ms |",
        cell(s, &|f| format!("{:.2} / {:.2} ms", ms(f.lookups.p50), ms(f.lookups.p99))),
        cell(p, &|f| format!("{:.2} / {:.2} ms", ms(f.lookups.p50), ms(f.lookups.p99)))
    );
    println!("| lookup errors | {} | {} | | 0 |", cell(s, &|f| f.lookups.errors.to_string()), cell(p, &|f| f.lookups.errors.to_string()));
    println!(
        "| trivial endpoint (/healthz), req/s, p99 | {} | {} | | |",
        cell(s, &|f| format!("{:.0}, {:.2} ms", f.health.rate(), ms(f.health.p99))),
        cell(p, &|f| format!("{:.0}, {:.2} ms", f.health.rate(), ms(f.health.p99)))
    );
    println!(
        "| server peak RSS | {} | {} | | ≤ 512 MB |",
        cell(s, &|f| format!("{:.0} MB", f.rss_mb)),
        cell(p, &|f| format!("{:.0} MB", f.rss_mb))
    );
    for f in results {
        eprintln!("{}: ingest {:.1}s, export {:.1}s", f.backend, f.ingest.as_secs_f64(), f.export.as_secs_f64());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub(crate) struct Child(pub(crate) std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `shutong serve --demo` of its own on a fresh data directory (and database): the child, its base URL, its
/// client and its process ID, once it answers `/readyz`.
pub(crate) async fn spawn_server(
    shutong: &Path,
    data: &Path,
    postgres: Option<&str>,
) -> anyhow::Result<(Child, String, reqwest::Client, u32)> {
    let _ = std::fs::remove_dir_all(data);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    start_server(shutong, data, postgres, port).await
}

/// Starts the release server on `port` over the data directory and database as they are (a restart).
pub(crate) async fn start_server(
    shutong: &Path,
    data: &Path,
    postgres: Option<&str>,
    port: u16,
) -> anyhow::Result<(Child, String, reqwest::Client, u32)> {
    let mut cmd = std::process::Command::new(shutong);
    cmd.args(["serve", "--demo"])
        .env("SHUTONG_DATA_DIR", data)
        .env("SHUTONG_LISTEN", format!("127.0.0.1:{port}"))
        .env("SHUTONG_EXCHANGE__DEMO_POPULATION_ROWS", "1000")
        .env("SHUTONG_EXCHANGE__GRANT_RATE_PER_SECOND", "0")
        // The load generator is one address and one token: the per-address and per-credential limits would cap it.
        .env("SHUTONG_SECURITY__RATE_PER_IP", "0")
        .env("SHUTONG_SECURITY__RATE_PER_TOKEN", "0")
        .env("SHUTONG_EXCHANGE__MAX_UPLOAD_MB", "100000")
        .env("SHUTONG_SHARING__SWEEP_SECONDS", "0")
        // A quality check after a batch would share the cores with what is measured after it; `quality` runs
        // its checks itself.
        .env("SHUTONG_QUALITY__CHECK_AFTER_BATCH", "false")
        .env("SHUTONG_QUALITY__FRESHNESS_INTERVAL_SECONDS", "0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    if let Some(url) = postgres {
        cmd.env("SHUTONG_DATABASE_URL", url);
    }
    let child = Child(cmd.spawn().context("starting shutong")?);
    let pid = child.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    for _ in 0..1200 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok((child, base, http, pid));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become ready")
}

/// Uploads the population file to 人口基本信息 (101/000001) as one full batch, streamed; fails unless all `n`
/// rows were taken.
pub(crate) async fn load_population(http: &reqwest::Client, base: &str, token: &str, csv: &Path, n: u64) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(csv).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    let r = http
        .post(format!("{base}/api/v1/data/101/000001/batches?mode=full&batch_id=bench"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await?;
    let status = r.status();
    let report: Value = r.json().await?;
    if !status.is_success() || report["rows_upserted"].as_u64() != Some(n) {
        bail!("ingest failed ({status}): {report}");
    }
    Ok(())
}

/// A process's resident set now and at its peak, MB (from /proc).
pub(crate) fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn on_backend(o: &Options, shutong: &Path, csv: &Path, dir: &Path, postgres: Option<String>) -> anyhow::Result<Figures> {
    let backend = if postgres.is_some() { "postgres" } else { "sqlite" };
    let data = dir.join(format!("data-{backend}"));
    let (child, base, http, pid) = spawn_server(shutong, &data, postgres.as_deref()).await?;
    let login = |user: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r: Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": user, "password": shutong::demo::DEMO_PASSWORD}))
                .send()
                .await?
                .json()
                .await?;
            r["token"].as_str().map(str::to_string).context("login")
        }
    };
    let provider = login("ga.editor").await?;
    let consumer = login("dc.rs.editor").await?;
    let reviewer = login("ga.reviewer").await?;

    // Ingest: the file streamed as one full batch.
    let t = Instant::now();
    load_population(&http, &base, &provider, csv, o.n).await?;
    let ingest = t.elapsed();

    // A grant for the consumer: every conditional and unconditional item, online query and bulk download.
    let r: Value = http
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(&consumer)
        .json(&json!({"resource_code": "101/000001", "items": shutong_exchange::synth::POPULATION_ITEMS, "purpose": "data_verification",
            "basis": "基准测试", "period_to": (chrono::Utc::now().date_naive() + chrono::Days::new(300)).to_string(),
            "access_methods": ["online_query", "bulk_download"]}))
        .send()
        .await?
        .json()
        .await?;
    let request = r["request"]["id"].as_i64().with_context(|| format!("request: {r}"))?;
    let r: Value =
        http.post(format!("{base}/api/v1/requests/{request}/approve")).bearer_auth(&reviewer).json(&json!({})).send().await?.json().await?;
    r["grant"]["id"].as_i64().with_context(|| format!("approve: {r}"))?;

    // Export: CSV, streamed, counted.
    let t = Instant::now();
    let r = http.get(format!("{base}/api/v1/data/101/000001/export?format=csv")).bearer_auth(&consumer).send().await?;
    if !r.status().is_success() {
        bail!("export failed: {}", r.text().await?);
    }
    let mut stream = r.bytes_stream();
    let mut lines = 0u64;
    while let Some(chunk) = stream.next().await {
        lines += memchr::memchr_iter(b'\n', &chunk?).count() as u64;
    }
    let export = t.elapsed();
    let export_rows = lines.saturating_sub(1);

    // Lookups by key, then the trivial endpoint, with the same load.
    let keys: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new((0..10_000u64).map(|i| shutong_exchange::synth::person((i * 7919) % o.n, 42)[0].clone()).collect());
    let lookups = load(
        &http,
        o.clients,
        o.seconds,
        {
            let base = base.clone();
            let keys = keys.clone();
            move |i| format!("{base}/api/v1/data/101/000001/records/{}", keys[i % keys.len()])
        },
        &consumer,
    )
    .await;
    let health = load(
        &http,
        o.clients,
        o.seconds,
        {
            let base = base.clone();
            move |_| format!("{base}/healthz")
        },
        &consumer,
    )
    .await;
    let rss_mb = rss_mb(pid).1;
    drop(child);
    Ok(Figures { backend, ingest, export, export_rows, lookups, health, rss_mb })
}

async fn load(
    http: &reqwest::Client,
    clients: usize,
    seconds: u64,
    url: impl Fn(usize) -> String + Send + Sync + Clone + 'static,
    token: &str,
) -> Load {
    let until = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = url.clone();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0;
            let mut i = c * 7;
            while Instant::now() < until {
                let t = Instant::now();
                match http.get(url(i)).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
                i += clients;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    Load { requests: all.len(), errors, elapsed, p50: pct(0.50), p99: pct(0.99) }
}

/// `COPY … FROM STDIN` and `COPY … TO STDOUT` of the same file, with the key as primary key.
async fn copy_baseline(url: &str, csv: &Path) -> anyhow::Result<(Duration, Duration)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_copy").execute(&mut conn).await?;
    sqlx::query("CREATE TABLE bench_copy (公民身份号码 TEXT PRIMARY KEY, 姓名 TEXT, 性别 TEXT, 民族 TEXT, 出生日期 TEXT, 户籍地址 TEXT)")
        .execute(&mut conn)
        .await?;
    let t = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)").await?;
    let file = tokio::fs::File::open(csv).await?;
    copy.read_from(file).await?;
    copy.finish().await?;
    let copy_in = t.elapsed();
    let t = Instant::now();
    let mut out = conn.copy_out_raw("COPY bench_copy TO STDOUT WITH (FORMAT csv, HEADER true)").await?;
    // The client counts the lines, as the export's client does.
    let (mut n, mut lines) = (0u64, 0u64);
    while let Some(chunk) = out.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
    }
    anyhow::ensure!(lines > 0, "COPY gave no lines");
    drop(out);
    let copy_out = t.elapsed();
    eprintln!("COPY: in {:.1}s, out {:.1}s ({n} bytes)", copy_in.as_secs_f64(), copy_out.as_secs_f64());
    Ok((copy_in, copy_out))
}
