//! `shutong quality …`: data quality (数据质量, 办法 第十七条) from the command line — a dataset's rules, a check
//! now, its checks over time, the scores, the dimensions' weights, and objections (疑义校核, 第十八条). `--as USERNAME` acts as that user; every
//! rule and audit event is the same as through the API.

use anyhow::Context;
use clap::Subcommand;
use shutong_catalog::ResourceCode;
use shutong_identity::DepartmentId;
use shutong_quality::{self as quality, CheckCause, Dimension, QualityRunId, RuleKind};

use crate::cli::{Cli, load_config};
use crate::sharing_cli::{Acting, acting};
use shutong_web::state::objection_settings;

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
    /// Objections (疑义校核) the user sees, newest first: one line each (id, resource, state, due, overdue, keys).
    Objections {
        /// filed (by the user's department) or received (on its data, the queue ranked by impact).
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        overdue: bool,
        #[command(flatten)]
        acting: Acting,
    },
    /// File an objection on records of a dataset the user's department holds a grant for; prints its ID.
    Object {
        resource: String,
        /// A record's key (repeat for several).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// An item in doubt (repeat; none: the whole record).
        #[arg(long = "item")]
        items: Vec<String>,
        /// A reason's code: missing, wrong, duplicate, outdated, format, authority, other (or one the authority added).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        description: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// The provider answers an objection: corrected, confirmed or declined, with a note.
    Answer {
        id: i64,
        #[arg(long)]
        answer: String,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// The objection figures per provider department (filed, open, overdue, answers, median hours, real errors).
    ObjectionFigures {
        #[command(flatten)]
        acting: Acting,
    },
    /// 一数一源: the base elements with their authoritative resources and the datasets carrying them.
    Elements,
    /// Reconcile an element's carriers (or one) with its authoritative dataset now; one line per run.
    Reconcile {
        /// The element's ID.
        element: i64,
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// 主题库: the theme databases, their members and last refresh.
    Themes,
    /// Refresh a theme database now (its lead department or the authority).
    ThemeRefresh {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// 基础库: the six base templates, or with --compile CODE a base resource's draft from one.
    BaseTemplates {
        #[arg(long)]
        compile: Option<String>,
        #[command(flatten)]
        acting: Acting,
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
        QualityCommand::Objections { scope, overdue, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let scope = scope
                .as_deref()
                .map(|v| quality::ObjectionScope::parse(v).with_context(|| format!("--scope: '{v}' is not filed or received")))
                .transpose()?;
            let filter = quality::ObjectionFilter { scope, overdue: *overdue, ..Default::default() };
            for q in quality::objections(&ex, &p, &filter).await? {
                let o = q.objection;
                let keys: Vec<&str> = o.records.iter().map(|r| r.key.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    o.id,
                    o.resource_code,
                    o.state.label_zh(),
                    o.due_on,
                    if o.overdue { "逾期" } else { "" },
                    keys.join(",")
                );
            }
        }
        QualityCommand::Object { resource, keys, items, reason, description, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let settings = objection_settings(&config);
            let new = quality::NewObjection {
                resource: code(resource)?,
                grant: None,
                keys: keys.clone(),
                items: items.clone(),
                reason: reason.clone(),
                description: description.clone(),
            };
            let o = quality::file_objection(&ex, &p, &ctx, &settings, &new).await?;
            println!("{}\t{}", o.id, o.due_on);
        }
        QualityCommand::Answer { id, answer, note, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let answer = quality::ObjectionAnswer::parse(answer)
                .with_context(|| format!("--answer: '{answer}' is not one of {}", quality::ObjectionAnswer::expected()))?;
            let o = quality::answer_objection(&ex, &p, &ctx, quality::ObjectionId(*id), answer, note).await?;
            println!("{}\t{}", o.id, o.state.label_zh());
        }
        QualityCommand::ObjectionFigures { acting: a } => {
            let (p, _) = acting(&db, a).await?;
            for f in quality::objection_figures(&ex, &p).await? {
                let hours = |h: Option<f64>| h.map(|h| format!("{h:.1}")).unwrap_or_else(|| "-".into());
                println!(
                    "{}\t收到 {}\t待核实 {}\t逾期 {}\t已更正 {}\t确认无误 {}\t不予受理 {}\t答复 {} 小时\t办结 {} 小时",
                    f.department_id,
                    f.filed,
                    f.open,
                    f.overdue,
                    f.corrected,
                    f.confirmed,
                    f.declined,
                    hours(f.median_hours_to_answer),
                    hours(f.median_hours_to_close)
                );
            }
        }
        QualityCommand::Elements => {
            for e in quality::elements(&ex).await? {
                let carriers: Vec<&str> = e.carriers.iter().map(|c| c.resource_code.as_str()).collect();
                println!("{}\t{}\t{}\t{}\t{}\t{}", e.id, e.name, e.key_item, e.resource_code, e.items.join(","), carriers.join(","));
            }
        }
        QualityCommand::Reconcile { element, resource, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let only = resource.as_deref().map(code).transpose()?;
            let runs =
                quality::reconcile(&ex, &p, &ctx, quality::ElementId(*element), only.as_ref(), quality::ReconcileCause::Manual).await?;
            for r in runs {
                println!(
                    "{}\t{}\t主键 {}\t不一致 {}\t本数据集缺少 {}\t权威来源缺少 {}\t一致率 {}",
                    r.id,
                    r.resource_code,
                    r.keys_compared,
                    r.differing_keys,
                    r.missing_in_resource,
                    r.missing_in_authoritative,
                    points(r.rate)
                );
            }
        }
        QualityCommand::Themes => {
            for t in quality::themes(&ex).await? {
                let refreshed = t.last_refresh.map(|r| format!("{} {} 条", r.mode, r.rows_written)).unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.resource_code,
                    t.name,
                    t.members.join(","),
                    if t.published { "已发布" } else { "待发布" },
                    refreshed
                );
            }
        }
        QualityCommand::ThemeRefresh { id, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let r = quality::refresh_theme(&ex, &p, &ctx, quality::ThemeId(*id)).await?;
            println!("{}\t{} 条\t删除 {} 条\t批次 {}", r.mode, r.rows_written, r.rows_deleted, r.batch_id.unwrap_or_default());
        }
        QualityCommand::BaseTemplates { compile, acting: a } => match compile {
            Some(template) => {
                let (p, ctx) = acting(&db, a).await?;
                let view = quality::compile_base_resource(&ex, &p, &ctx, template, None).await?;
                println!("{}", view.code);
            }
            None => {
                for t in quality::base_templates() {
                    let items: Vec<&str> = t.items.iter().map(|i| i.name).collect();
                    println!("{}\t{}\t{}\t{}\t{}", t.code, t.name, t.classification, t.key_item, items.join(","));
                }
            }
        },
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
