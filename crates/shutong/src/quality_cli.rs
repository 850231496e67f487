//! `shutong quality …`: data quality (数据质量, 办法 第十七条) from the command line — a dataset's rules, a check
//! now, its checks over time, the scores, the dimensions' weights. `--as USERNAME` acts as that user; every
//! rule and audit event is the same as through the API.

use anyhow::Context;
use clap::Subcommand;
use shutong_catalog::ResourceCode;
use shutong_identity::DepartmentId;
use shutong_quality::{self as quality, CheckCause, Dimension, QualityRunId, RuleKind};

use crate::cli::{Cli, load_config};
use crate::sharing_cli::{Acting, acting};

#[derive(Subcommand, Debug)]
pub enum QualityCommand {
    /// A dataset's rules: one line each (key, dimension, kind, in force or retired).
    Rules {
        /// The resource code, e.g. 101/000001.
        resource: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Add a rule to a dataset, given as JSON, e.g. '{"kind":"pattern","item":"邮政编码","pattern":"[0-9]{6}"}'.
    AddRule {
        resource: String,
        /// The rule as JSON (its `kind` and what the kind needs).
        rule: String,
        /// completeness, conformity, accuracy, consistency, timeliness (or the Chinese names); default the kind's.
        #[arg(long)]
        dimension: Option<String>,
        #[arg(long)]
        blocking: bool,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Retire a rule by its key, with a reason.
    RetireRule {
        resource: String,
        key: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Check a dataset now; prints the check as JSON (its score, grade and every rule's result).
    Check {
        resource: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Run the scheduled freshness check of every dataset now (as the server does daily).
    CheckScheduled,
    /// A dataset's checks, newest first: one line each (id, time, cause, records, score, grade).
    Checks {
        resource: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// One check with its results, as JSON.
    Show {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// The latest scores: one line per dataset, then one per department.
    Scores {
        #[arg(long)]
        department: Option<i64>,
    },
    /// The dimensions and their weights; with --set DIMENSION --weight N, set one (the authority).
    Dimensions {
        #[arg(long)]
        set: Option<String>,
        #[arg(long, requires = "set")]
        weight: Option<i64>,
        #[arg(long, requires = "set")]
        name: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
}

fn code(v: &str) -> anyhow::Result<ResourceCode> {
    ResourceCode::parse(v).map_err(|e| anyhow::anyhow!("resource: {e}"))
}

fn points(bp: i64) -> String {
    format!("{:.2}", bp as f64 / 100.0)
}

pub async fn run(cli: &Cli, cmd: &QualityCommand) -> anyhow::Result<i32> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let ex = crate::server::open_exchange(&config, &db, &calendar).await?;
    let regions = shutong_refdata::load_regions(&db).await.context("loading the region table")?;
    match cmd {
        QualityCommand::Rules { resource, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            for r in quality::rules(&ex, &p, &code(resource)?).await? {
                let state = if r.retired_at_ms.is_some() { "已停用" } else { "在用" };
                println!("{}\t{}\t{}\t{}\t{}", r.key, r.dimension.label_zh(), r.kind.label_zh(), r.origin.label_zh(), state);
            }
        }
        QualityCommand::AddRule { resource, rule, dimension, blocking, note, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let kind: RuleKind = serde_json::from_str(rule).context("rule: not a rule as JSON")?;
            let dimension = dimension
                .as_deref()
                .map(|d| Dimension::parse(d).with_context(|| format!("--dimension: '{d}' is not one of {}", Dimension::expected())))
                .transpose()?;
            let new = quality::NewRule { kind, dimension, blocking: *blocking, note: note.clone() };
            let r = quality::add_rule(&ex, &p, &ctx, &code(resource)?, new).await?;
            println!("{}", r.key);
        }
        QualityCommand::RetireRule { resource, key, reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            quality::retire_rule(&ex, &p, &ctx, &code(resource)?, key, reason).await?;
        }
        QualityCommand::Check { resource, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let run = quality::check(&ex, &p, &ctx, &regions, &code(resource)?, CheckCause::Manual, None).await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        QualityCommand::CheckScheduled => {
            let n = quality::check_all_scheduled(&ex, &regions).await?;
            println!("checked {n} dataset(s)");
        }
        QualityCommand::Checks { resource, limit, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            if !(1..=500).contains(limit) {
                anyhow::bail!("--limit: must be between 1 and 500");
            }
            for r in quality::runs(&ex, &p, &code(resource)?, None, *limit).await? {
                let at = chrono::DateTime::from_timestamp_millis(r.finished_at_ms).unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    at.to_rfc3339(),
                    r.cause.label_zh(),
                    r.rows_checked,
                    points(r.score),
                    r.grade.label_zh()
                );
            }
        }
        QualityCommand::Show { id, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            println!("{}", serde_json::to_string_pretty(&quality::run(&ex, &p, QualityRunId(*id)).await?)?);
        }
        QualityCommand::Scores { department } => {
            let (datasets, departments) = quality::scores(&ex, department.map(DepartmentId)).await?;
            for d in datasets {
                println!("{}\t{}\t{}\t{}", d.resource_code, d.resource_name, points(d.score), d.grade.label_zh());
            }
            for d in departments {
                println!(
                    "{}\t{}\t{} 个数据集\t{}\t{}",
                    d.department_id,
                    d.department_name,
                    d.datasets,
                    points(d.score),
                    d.grade.label_zh()
                );
            }
        }
        QualityCommand::Dimensions { set, weight, name, acting: a } => {
            if let Some(dim) = set {
                let (p, ctx) = acting(&db, a).await?;
                let dim = Dimension::parse(dim).with_context(|| format!("--set: '{dim}' is not one of {}", Dimension::expected()))?;
                let weight = weight.context("--weight: needed with --set")?;
                quality::set_dimension(&ex, &p, &ctx, dim, name.as_deref(), weight).await?;
            }
            for d in quality::dimensions(&ex).await? {
                println!("{}\t{}\t{}", d.dimension.as_str(), d.name, d.weight);
            }
        }
    }
    Ok(0)
}
