//! The benchmark harness (see README.md).

use anyhow::Context;
use clap::{Parser, Subcommand};
use shutong_reference::{Checker, IdNumber, IdNumberValidator, IdentifierKind, RegionTable};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "shutong-bench", about = "shutong benchmark harness: figures and ratios, no assertions")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Identifier validation throughput, in process and in the batch mode of `shutong check`.
    Reference {
        /// How many identity numbers.
        #[arg(long, default_value_t = 10_000_000)]
        n: usize,
        /// The shutong binary for the end-to-end run (default: next to this one).
        #[arg(long)]
        shutong: Option<std::path::PathBuf>,
    },
    /// The audit trail: append, seal, verify and export rates on N events, on SQLite and PostgreSQL.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        #[arg(long)]
        sqlite_only: bool,
        /// Keep the PostgreSQL database afterwards (its name is printed), to look into it with psql.
        #[arg(long)]
        keep_database: bool,
    },
    /// The I/O-only baseline as a process: copies stdin lines to stdout in the batch output format.
    CopyLines,
    /// Catalog import throughput and search latency on N generated resources, on SQLite and PostgreSQL.
    Catalog {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// PostgreSQL server for the second run (a database is created and dropped).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        /// Skip the PostgreSQL run.
        #[arg(long)]
        sqlite_only: bool,
    },
    /// The data plane through the release server on SQLite and PostgreSQL: ingest and export of N generated
    /// population rows against PostgreSQL COPY, lookups under load against a trivial endpoint, peak RSS.
    Exchange {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        #[arg(long)]
        sqlite_only: bool,
        /// Skip the SQLite run.
        #[arg(long, conflicts_with = "sqlite_only")]
        postgres_only: bool,
        /// Concurrent clients of the lookup load.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds of each load run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The shutong binary (default: next to this one).
        #[arg(long)]
        shutong: Option<std::path::PathBuf>,
        /// Where the generated file and data directories go (default: the temp directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// The exchange node (前置机) between a department's PostgreSQL and the platform on PostgreSQL: the
    /// snapshot of ROWS rows against PostgreSQL COPY of the same table, change latency both ways at RATE
    /// changes/s, catch-up of QUEUED changes made while the node was stopped.
    Node {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 1_000_000)]
        queued: u64,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        /// The shutong binary (default: next to this one).
        #[arg(long)]
        shutong: Option<std::path::PathBuf>,
        /// Where the generated file and data directories go (default: the temp directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Data quality: every rule of the demo population's dataset over ROWS rows (loaded through the release
    /// server) against one pass over the same rows that checks nothing, on SQLite and PostgreSQL.
    Quality {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        #[arg(long)]
        sqlite_only: bool,
        /// The shutong binary (default: next to this one).
        #[arg(long)]
        shutong: Option<std::path::PathBuf>,
        /// Where the generated file and data directories go (default: the temp directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// XLSX uploads through the release server on SQLite: an honest workbook of N population rows and a
    /// spreadsheet bomb (a few MB unpacking to over a GB), each to a fresh server: time, answer, peak RSS.
    Xlsx {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        /// Rows of the bomb's one sheet (each about 300 bytes unpacked).
        #[arg(long, default_value_t = 4_000_000)]
        bomb_rows: usize,
        /// The shutong binary (default: next to this one).
        #[arg(long)]
        shutong: Option<std::path::PathBuf>,
        /// Where the generated files and data directories go (default: the temp directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

mod audit_bench;
mod catalog_bench;
mod exchange_bench;
mod node_bench;
mod quality_bench;
mod xlsx_bench;

/// A small deterministic generator (xorshift64*), so every run measures the same numbers.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// N valid identity numbers: regions from the GB/T 2260 table, birth dates 1930–2020, any sequence.
fn generate(n: usize, seed: u64) -> Vec<String> {
    let regions: Vec<String> = RegionTable::builtin()
        .iter()
        .filter(|e| e.level == shutong_reference::RegionLevel::County && e.is_current())
        .map(|e| e.code.clone())
        .collect();
    let mut rng = Rng(seed);
    let base = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default();
    (0..n)
        .map(|_| {
            let region = &regions[rng.below(regions.len() as u64) as usize];
            let birth = base + chrono::Duration::days(rng.below(90 * 365) as i64);
            let first17 = format!("{region}{}{:03}", birth.format("%Y%m%d"), rng.below(1000));
            let arr: [u8; 17] = first17.as_bytes().try_into().unwrap_or([b'0'; 17]);
            format!("{first17}{}", IdNumber::check_character(&arr).unwrap_or('0'))
        })
        .collect()
}

/// Counts what is written and discards it.
struct CountingSink(usize);
impl Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn millions(r: f64) -> String {
    format!("{:.1} M/s", r / 1e6)
}

/// The batch mode's loop with validation replaced by copying: the same reading, threading, line cutting
/// (lines of 18 characters found without a search) and writing.
fn copy_stream(input: &mut dyn std::io::Read, out: &mut dyn Write) -> std::io::Result<(u64, u64)> {
    fn copy_line(line: &[u8], buf: &mut Vec<u8>, counts: &mut (u64, u64)) {
        buf.extend_from_slice(line);
        buf.extend_from_slice(b"\tvalid\t");
        buf.extend_from_slice(line);
        buf.push(b'\n');
        counts.0 += 1;
    }
    shutong::lines::map_chunks(input, out, |chunk, buf, counts| {
        buf.reserve(chunk.len() / 19 * 44 + 64);
        shutong::lines::for_each_line_fixed::<18, _>(
            chunk,
            &mut (buf, counts),
            |(buf, counts), line| {
                // The one check a copy needs: that the line holds no line end.
                if line.iter().fold(false, |seen, &b| seen | (b == b'\n')) {
                    return false;
                }
                copy_line(line, buf, counts);
                true
            },
            |(buf, counts), line| copy_line(line, buf, counts),
        )
    })
}

fn time_command(cmd: &mut std::process::Command) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let status = cmd.status().context("running a command")?;
    anyhow::ensure!(status.success(), "command failed: {cmd:?}");
    Ok(t.elapsed())
}

fn reference(n: usize, shutong: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    println!(
        "shutong-bench reference: N = {n} identity numbers (seed 2017); validation on one thread, the batch mode on all cores ({})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let t = Instant::now();
    let numbers = generate(n, 2017);
    println!("  generated in {:.2} s", t.elapsed().as_secs_f64());
    let v = IdNumberValidator::today();

    // 1. In-process validation, best of three.
    let mut best = Duration::MAX;
    let mut valid = 0;
    for _ in 0..3 {
        let t = Instant::now();
        valid = numbers.iter().filter(|s| v.parse(s).is_ok()).count();
        best = best.min(t.elapsed());
    }
    let in_process = rate(n, best);
    // The batch fast path (no error values built).
    let mut fast_best = Duration::MAX;
    let mut fast_valid = 0;
    for _ in 0..3 {
        let t = Instant::now();
        fast_valid = numbers.iter().filter(|s| v.fast_normalize(s.as_bytes()).is_some()).count();
        fast_best = fast_best.min(t.elapsed());
    }
    let fast = rate(n, fast_best);

    // 2. With 10 % invalid.
    let mut mixed = numbers.clone();
    let mut rng = Rng(7);
    for i in (0..n).step_by(10) {
        let s = &mut mixed[i];
        match rng.below(3) {
            0 => {
                let last = if s.ends_with('0') { "1" } else { "0" };
                s.replace_range(17..18, last);
            }
            1 => s.replace_range(10..12, "13"),
            _ => {
                s.pop();
            }
        }
    }
    let (mut mixed_best, mut mixed_valid) = (Duration::MAX, 0);
    for _ in 0..3 {
        let t = Instant::now();
        mixed_valid = mixed.iter().filter(|s| v.parse(s).is_ok()).count();
        mixed_best = mixed_best.min(t.elapsed());
    }
    let mixed_rate = rate(n, mixed_best);

    // 3. The batch loop in memory, against the I/O-only loop.
    let mut input = Vec::with_capacity(n * 19);
    for s in &numbers {
        input.extend_from_slice(s.as_bytes());
        input.push(b'\n');
    }
    let regions = RegionTable::builtin();
    let checker = Checker::new(&regions);
    // Both write into a sink (as to /dev/null), best of three each.
    let (mut stream_best, mut copy_best) = (Duration::MAX, Duration::MAX);
    let mut counter = CountingSink(0);
    for _ in 0..3 {
        counter.0 = 0;
        let t = Instant::now();
        shutong::cli::check_stream(&checker, IdentifierKind::IdNumber, &mut &input[..], &mut counter)?;
        stream_best = stream_best.min(t.elapsed());
        let t = Instant::now();
        copy_stream(&mut &input[..], &mut CountingSink(0))?;
        copy_best = copy_best.min(t.elapsed());
    }
    let bytes_out = counter.0;
    let (stream, copy) = (rate(n, stream_best), rate(n, copy_best));

    // 4. End to end through the real command.
    let dir = std::env::temp_dir().join(format!("shutong-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("ids.txt");
    std::fs::write(&file, &input)?;
    let exe = std::env::current_exe()?;
    let shutong = shutong.unwrap_or_else(|| exe.with_file_name("shutong"));
    let devnull = || std::fs::File::create("/dev/null");
    let out_file = dir.join("out.tsv");
    // The command and the I/O-only process alternate, three times each, and each keeps its best run, so
    // that neither is favoured by the order or by page-cache writeback. Before a run that writes a file,
    // the previous output is deleted and dirty pages are flushed (`sync`), so every such run starts alike.
    let check_cmd = |stdout: std::fs::File| -> anyhow::Result<std::process::Command> {
        let mut c = std::process::Command::new(&shutong);
        c.args(["check", "id", "-", "--data-dir"]).arg(&dir).stdin(std::fs::File::open(&file)?).stdout(stdout);
        Ok(c)
    };
    let copy_cmd = |stdout: std::fs::File| -> anyhow::Result<std::process::Command> {
        let mut c = std::process::Command::new(&exe);
        c.arg("copy-lines").stdin(std::fs::File::open(&file)?).stdout(stdout);
        Ok(c)
    };
    let to_file = || -> anyhow::Result<std::fs::File> {
        let _ = std::fs::remove_file(&out_file);
        let _ = std::process::Command::new("sync").status();
        Ok(std::fs::File::create(&out_file)?)
    };
    // Until the output is on disk: the command, then fsync of its output file, timed together.
    let synced = |cmd: &mut std::process::Command| -> anyhow::Result<Duration> {
        let t = Instant::now();
        time_command(cmd)?;
        std::fs::File::open(&out_file)?.sync_all()?;
        Ok(t.elapsed())
    };
    let [mut e2e, mut copy_proc, mut e2e_file, mut copy_file, mut e2e_disk, mut copy_disk] = [Duration::MAX; 6];
    for _ in 0..3 {
        e2e = e2e.min(
            time_command(&mut check_cmd(devnull()?)?)
                .with_context(|| format!("{} (build it with cargo build --release -p shutong)", shutong.display()))?,
        );
        copy_proc = copy_proc.min(time_command(&mut copy_cmd(devnull()?)?)?);
        e2e_file = e2e_file.min(time_command(&mut check_cmd(to_file()?)?)?);
        copy_file = copy_file.min(time_command(&mut copy_cmd(to_file()?)?)?);
        e2e_disk = e2e_disk.min(synced(&mut check_cmd(to_file()?)?)?);
        copy_disk = copy_disk.min(synced(&mut copy_cmd(to_file()?)?)?);
    }
    let _ = std::fs::remove_file(&out_file);
    let cat = time_command(std::process::Command::new("cat").arg(&file).stdout(devnull()?))?;
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!("| measure | figure | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| in-process validation, all valid ({valid} of {n}) | {} | {:.2}x the 20 M/s target |",
        millions(in_process),
        in_process / 20e6
    );
    println!("| in-process validation, 10 % invalid ({mixed_valid} valid) | {} | |", millions(mixed_rate));
    println!(
        "| in-process batch fast path (`fast_normalize`, {fast_valid} valid) | {} | {:.2}x the 20 M/s target |",
        millions(fast),
        fast / 20e6
    );
    println!(
        "| batch loop in memory (`check_stream`, {} MB out) | {} | {:.2}x the I/O-only loop |",
        bytes_out / 1_000_000,
        millions(stream),
        stream / copy
    );
    println!("| I/O-only loop in memory (same reads and writes, no validation) | {} | 1.00 |", millions(copy));
    println!(
        "| `shutong check id -` file → /dev/null | {} | {:.2}x the I/O-only process |",
        millions(rate(n, e2e)),
        rate(n, e2e) / rate(n, copy_proc)
    );
    println!("| I/O-only process (`shutong-bench copy-lines`) | {} | 1.00 |", millions(rate(n, copy_proc)));
    println!(
        "| `shutong check id -` file → file | {} | {:.2}x the I/O-only process |",
        millions(rate(n, e2e_file)),
        rate(n, e2e_file) / rate(n, copy_file)
    );
    println!("| I/O-only process file → file | {} | 1.00 |", millions(rate(n, copy_file)));
    println!(
        "| `shutong check id -` file → file on disk (until its fsync returns) | {} | {:.2}x the I/O-only process |",
        millions(rate(n, e2e_disk)),
        rate(n, e2e_disk) / rate(n, copy_disk)
    );
    println!("| I/O-only process file → file on disk (until its fsync returns) | {} | 1.00 |", millions(rate(n, copy_disk)));
    println!("| `cat` file → /dev/null | {} | |", millions(rate(n, cat)));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Reference { n, shutong } => reference(n, shutong),
        Cmd::Catalog { n, postgres, sqlite_only } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(catalog_bench::run(n, &postgres, sqlite_only))
        }
        Cmd::Node { rows, rate, seconds, queued, postgres, shutong, dir } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(node_bench::run(node_bench::Options { rows, rate, seconds, queued, postgres, shutong, dir }))
        }
        Cmd::Exchange { n, postgres, sqlite_only, postgres_only, clients, seconds, shutong, dir } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(exchange_bench::run(exchange_bench::Options {
                n,
                postgres,
                sqlite_only,
                postgres_only,
                clients,
                seconds,
                shutong,
                dir,
            }))
        }
        Cmd::Quality { rows, postgres, sqlite_only, shutong, dir } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(quality_bench::run(quality_bench::Options { rows, postgres, sqlite_only, shutong, dir }))
        }
        Cmd::Xlsx { n, bomb_rows, shutong, dir } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(xlsx_bench::run(xlsx_bench::Options { n, bomb_rows, shutong, dir }))
        }
        Cmd::Audit { n, postgres, sqlite_only, keep_database } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(audit_bench::run(n, &postgres, sqlite_only, keep_database))
        }
        Cmd::CopyLines => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            copy_stream(&mut stdin.lock(), &mut stdout.lock())?;
            Ok(())
        }
    }
}
