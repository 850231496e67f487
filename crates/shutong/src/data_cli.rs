//! `shutong data …`: the data plane from the command line (共享交换): bind a resource, load a file as a
//! batch, export, query and look up, list batches. `--as USERNAME` acts as that user; every grant check,
//! mask and audit event is the same as through the API.

use anyhow::Context;
use clap::Subcommand;
use shutong_exchange::{self as exchange, BatchRequest, BindingKind, DataFormat, IngestMode, Input, NewBinding, QuerySpec};
use shutong_sharing::{FilterOp, RowCondition};
use std::io::Write;

use crate::cli::{Cli, load_config};
use crate::sharing_cli::{Acting, acting};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Bind a published resource to a pooled dataset (default), the provider's service, or files.
    Bind {
        /// The resource code, e.g. 101/000001.
        code: String,
        /// dataset, service or files.
        #[arg(long, default_value = "dataset")]
        kind: String,
        /// The dataset's key item (default: the resource's first key item).
        #[arg(long)]
        key: Option<String>,
        /// The service base URL (http://…), for --kind service.
        #[arg(long)]
        service_url: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Load a file (CSV, NDJSON or XLSX, by extension or --format) as one batch; prints the report.
    /// Exit status 0 if committed (rows may have been rejected: see the report), 1 if refused.
    Load {
        code: String,
        file: std::path::PathBuf,
        /// full (default) or incremental.
        #[arg(long, default_value = "full")]
        mode: String,
        #[arg(long)]
        format: Option<String>,
        /// Re-sending the same batch ID is answered with the first delivery's report.
        #[arg(long)]
        batch_id: Option<String>,
        /// , (default) ; tab |
        #[arg(long)]
        delimiter: Option<String>,
        /// utf-8 or gbk (default: detected).
        #[arg(long)]
        encoding: Option<String>,
        /// Refuse the whole batch if any row is rejected.
        #[arg(long)]
        all_or_nothing: bool,
        #[command(flatten)]
        acting: Acting,
    },
    /// Export the dataset within your grant to a file or standard output.
    Export {
        code: String,
        /// csv (default), ndjson or parquet.
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        #[arg(long)]
        grant: Option<i64>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Look up one record by key, or query by conditions (ITEM=VALUE, ITEM^=PREFIX); prints NDJSON.
    Query {
        code: String,
        /// The record's key.
        #[arg(long)]
        key: Option<String>,
        /// A condition: ITEM=VALUE (equals) or ITEM^=PREFIX (starts with); repeat for AND.
        #[arg(long = "where")]
        conditions: Vec<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        grant: Option<i64>,
        #[command(flatten)]
        acting: Acting,
    },
    /// The dataset's binding and its last batches.
    Batches {
        code: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// The files of a resource bound as files: ID, size, SHA-256, name.
    Files {
        code: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Upload a file for a resource bound as files (the provider); a file of the same name is replaced.
    PutFile {
        code: String,
        file: std::path::PathBuf,
        /// The name to store it under (default: the file's own name).
        #[arg(long)]
        name: Option<String>,
        /// Its media type (default application/octet-stream).
        #[arg(long)]
        content_type: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Download one file under your grant (or as the provider), checking its SHA-256.
    GetFile {
        code: String,
        /// The file's ID (see `shutong data files`).
        id: i64,
        #[arg(long, short)]
        output: std::path::PathBuf,
        #[arg(long)]
        grant: Option<i64>,
        #[command(flatten)]
        acting: Acting,
    },
}

fn condition(c: &str) -> anyhow::Result<RowCondition> {
    if let Some((item, value)) = c.split_once("^=") {
        return Ok(RowCondition { item: item.trim().into(), op: FilterOp::Prefix, values: vec![value.trim().into()] });
    }
    let (item, value) = c.split_once('=').with_context(|| format!("--where: '{c}' is not ITEM=VALUE or ITEM^=PREFIX"))?;
    Ok(RowCondition { item: item.trim().into(), op: FilterOp::Eq, values: vec![value.trim().into()] })
}

pub async fn run(cli: &Cli, cmd: &DataCommand) -> anyhow::Result<i32> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let ex = crate::server::open_exchange(&config, &db, &calendar).await?;
    let code = match cmd {
        DataCommand::Bind { code, .. }
        | DataCommand::Load { code, .. }
        | DataCommand::Export { code, .. }
        | DataCommand::Query { code, .. }
        | DataCommand::Batches { code, .. }
        | DataCommand::Files { code, .. }
        | DataCommand::PutFile { code, .. }
        | DataCommand::GetFile { code, .. } => shutong_catalog::ResourceCode::parse(code).map_err(|e| anyhow::anyhow!("code: {e}"))?,
    };
    let status = match cmd {
        DataCommand::Bind { kind, key, service_url, acting: a, .. } => {
            let (p, ctx) = acting(&db, a).await?;
            let kind = BindingKind::parse(kind).with_context(|| format!("--kind: '{kind}' is not one of dataset, service, files"))?;
            let b = exchange::bind(
                &ex,
                &p,
                &ctx,
                &code,
                NewBinding { kind: Some(kind), key_item: key.clone(), service_url: service_url.clone() },
            )
            .await
            .map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&b)?);
            0
        }
        DataCommand::Load { file, mode, format, batch_id, delimiter, encoding, all_or_nothing, acting: a, .. } => {
            let (p, ctx) = acting(&db, a).await?;
            let mode = IngestMode::parse(mode).with_context(|| format!("--mode: '{mode}' is not full or incremental"))?;
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("csv").to_ascii_lowercase();
            let format = format.clone().unwrap_or(match ext.as_str() {
                "ndjson" | "jsonl" => "ndjson".into(),
                "xlsx" => "xlsx".into(),
                _ => "csv".into(),
            });
            let format = DataFormat::parse(&format).with_context(|| format!("--format: '{format}' is not csv, ndjson or xlsx"))?;
            let delimiter = match delimiter.as_deref() {
                None | Some(",") => None,
                Some(";") => Some(b';'),
                Some("tab") => Some(b'\t'),
                Some("|") => Some(b'|'),
                Some(d) => anyhow::bail!("--delimiter: '{d}' is not one of , ; tab |"),
            };
            if !file.exists() {
                anyhow::bail!("{}: no such file", file.display());
            }
            let req = BatchRequest {
                resource_code: code.clone(),
                mode,
                format,
                batch_id: batch_id.clone(),
                delimiter,
                encoding: encoding.clone(),
                all_or_nothing: *all_or_nothing,
                part: None,
            };
            match exchange::ingest(&ex, &p, &ctx, req, Input::File(file.clone())).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    0
                }
                Err(exchange::ExchangeError::BatchRejected { message, report }) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    eprintln!("refused: {message}");
                    1
                }
                Err(e) => return Err(explain(e)),
            }
        }
        DataCommand::Export { format, output, grant, acting: a, .. } => {
            let (p, ctx) = acting(&db, a).await?;
            let format = DataFormat::parse(format)
                .filter(|f| *f != DataFormat::Xlsx)
                .with_context(|| format!("--format: '{format}' is not csv, ndjson or parquet"))?;
            let mut e = exchange::export(&ex, &p, &ctx, &code, format, grant.map(shutong_sharing::GrantId)).await.map_err(explain)?;
            let mut out: Box<dyn Write> = match output {
                Some(path) => {
                    Box::new(std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?))
                }
                None => Box::new(std::io::stdout().lock()),
            };
            while let Some(chunk) = e.body.recv().await {
                out.write_all(&chunk.context("the export stopped")?)?;
            }
            out.flush()?;
            0
        }
        DataCommand::Query { key, conditions, limit, grant, acting: a, .. } => {
            let (p, ctx) = acting(&db, a).await?;
            if let Some(key) = key {
                let r = exchange::lookup(&ex, &p, &ctx, &code, key, grant.map(shutong_sharing::GrantId)).await.map_err(explain)?;
                println!("{}", serde_json::to_string(&r)?);
            } else {
                let spec = QuerySpec {
                    conditions: conditions.iter().map(|c| condition(c)).collect::<anyhow::Result<_>>()?,
                    limit: Some(*limit),
                    grant_id: grant.map(shutong_sharing::GrantId),
                    after: None,
                };
                let page = exchange::query(&ex, &p, &ctx, &code, &spec).await.map_err(explain)?;
                for r in &page.records {
                    println!("{}", serde_json::to_string(r)?);
                }
                if let Some(next) = page.next_after {
                    eprintln!("more records follow (after {next})");
                }
            }
            0
        }
        DataCommand::Batches { acting: a, .. } => {
            let (p, _) = acting(&db, a).await?;
            let b = exchange::get_binding(&ex, &code).await?.with_context(|| format!("{code} is not bound to data"))?;
            println!(
                "{code} {} key={} rows={} last_seq={}",
                b.kind.as_str(),
                b.key_item.as_deref().unwrap_or("-"),
                b.row_count,
                b.last_seq
            );
            for r in exchange::list_batches(&ex, &p, &code, 20).await.map_err(explain)? {
                println!(
                    "#{} {} {} {} received={} upserted={} deleted={} rejected={} by {}",
                    r.id,
                    r.batch_id,
                    r.mode.as_str(),
                    r.status.as_str(),
                    r.rows_received,
                    r.rows_upserted,
                    r.rows_deleted,
                    r.rows_rejected,
                    r.submitted_by
                );
            }
            0
        }
        DataCommand::Files { .. } => {
            for f in exchange::list_files(&ex, &code).await.map_err(explain)? {
                println!("{}\t{}\t{}\t{}", f.id, f.size, f.sha256, f.name);
            }
            0
        }
        DataCommand::PutFile { file, name, content_type, acting: a, .. } => {
            let (p, ctx) = acting(&db, a).await?;
            let name = match name {
                Some(n) => n.clone(),
                None => {
                    file.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: not a file name", file.display()))?.to_string()
                }
            };
            let f = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
            let stream = tokio_util::io::ReaderStream::new(f);
            let limit = config.exchange.max_upload_mb * 1024 * 1024;
            let new = exchange::NewFile { name: &name, media_type: content_type.as_deref(), limit };
            let v = exchange::upload_file(&ex, &p, &ctx, &code, new, stream).await.map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            0
        }
        DataCommand::GetFile { id, output, grant, acting: a, .. } => {
            use sha2::Digest;
            let (p, ctx) = acting(&db, a).await?;
            let d = exchange::download_file(&ex, &p, &ctx, &code, exchange::FileId(*id), grant.map(shutong_sharing::GrantId))
                .await
                .map_err(explain)?;
            // Streamed through the digest into a temporary file beside the output, renamed only if it matches.
            let tmp = output.with_extension("part");
            let mut hash = sha2::Sha256::new();
            {
                let mut src = std::io::BufReader::new(std::fs::File::open(&d.path).context("opening the stored file")?);
                let mut dst = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = std::io::Read::read(&mut src, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    dst.write_all(&buf[..n])?;
                }
                dst.flush()?;
            }
            let digest = hex::encode(hash.finalize());
            if digest != d.file.sha256 {
                let _ = std::fs::remove_file(&tmp);
                anyhow::bail!("the stored file does not match its SHA-256 ({digest} ≠ {}): not written", d.file.sha256);
            }
            std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
            eprintln!("{} bytes, sha256 {} → {}", d.file.size, d.file.sha256, output.display());
            0
        }
    };
    ex.log.flush().await;
    Ok(status)
}

fn explain(e: exchange::ExchangeError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
