//! `shutong system …` and `shutong project …`: the inventory of information systems (信息系统台账), zombie
//! verdicts, the asset register, and filed projects with their gates, from the command line. `--as USERNAME`
//! acts as that user; every rule and audit event is the same as through the API.

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;
use shutong_identity::DepartmentId;
use shutong_systems::{self as systems, FiledProjectId, ProjectQueue, ProjectStage, SystemFilter, SystemId, SystemStatus};

use crate::cli::{Cli, load_config};
use crate::sharing_cli::{Acting, acting};

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// List systems: one line each (id, department, name, status, 处室 merger flag).
    List {
        /// A department's ID.
        #[arg(long)]
        department: Option<i64>,
        /// in_use, suspended or retired (or the Chinese names).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Show one system as JSON, with its zombie verdict.
    Show {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// Write the inventory template (XLSX with drop-down lists).
    Template {
        #[arg(long, short)]
        output: std::path::PathBuf,
    },
    /// Export the inventory as the workbook the import reads.
    Export {
        #[arg(long)]
        department: Option<i64>,
        #[arg(long, short)]
        output: std::path::PathBuf,
        #[command(flatten)]
        acting: Acting,
    },
    /// Import an inventory workbook, all or nothing; prints every problem by sheet, row and column.
    Import {
        file: std::path::PathBuf,
        #[command(flatten)]
        acting: Acting,
    },
    /// The zombie verdicts: one line per system with the criteria it meets.
    Zombies {
        #[arg(long)]
        department: Option<i64>,
        #[command(flatten)]
        acting: Acting,
    },
    /// A department's data asset register (数据资产登记) as JSON.
    Register {
        department: i64,
        #[command(flatten)]
        acting: Acting,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// List filed projects: one line each (id, department, name, stage, gates open/closed).
    List {
        /// all, approval, acceptance or funding.
        #[arg(long, default_value = "all")]
        queue: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Show one project as JSON with its gates and their reasons.
    Show {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// Move a project to its next stage; a closed gate refuses unless --override-reason is given.
    Advance {
        id: i64,
        /// approved, construction, accepted or operation (or the Chinese names).
        #[arg(long)]
        stage: String,
        /// The stage's date, default today.
        #[arg(long)]
        on: Option<NaiveDate>,
        /// 文件名称及文号.
        #[arg(long)]
        document: String,
        #[arg(long)]
        override_reason: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
}

fn explain(e: systems::SystemsError) -> anyhow::Error {
    match e {
        systems::SystemsError::ImportRejected(issues) => {
            let lines: Vec<String> = issues.iter().map(|i| format!("{}!{} row {}: {}", i.sheet, i.column, i.row, i.reason)).collect();
            anyhow::anyhow!("nothing imported, {} issue(s):\n{}", issues.len(), lines.join("\n"))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn open(cli: &Cli) -> anyhow::Result<(shutong_store::Db, shutong_exchange::Exchange)> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let ex = crate::server::open_exchange(&config, &db, &calendar).await?;
    Ok((db, ex))
}

pub async fn run_system(cli: &Cli, cmd: &SystemCommand) -> anyhow::Result<i32> {
    if let SystemCommand::Template { output } = cmd {
        std::fs::write(output, systems::inventory_template().map_err(explain)?).with_context(|| format!("writing {}", output.display()))?;
        return Ok(0);
    }
    let (db, ex) = open(cli).await?;
    match cmd {
        SystemCommand::Template { .. } => {}
        SystemCommand::List { department, status, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let status = status
                .as_deref()
                .map(|s| SystemStatus::parse(s).with_context(|| format!("--status: '{s}' is not one of {}", SystemStatus::expected())))
                .transpose()?;
            let mut after = None;
            loop {
                let filter =
                    SystemFilter { department: department.map(DepartmentId), status, after, limit: 1000, ..SystemFilter::default() };
                let page = systems::list_systems(&ex, &p, &filter).await.map_err(explain)?;
                for s in &page.items {
                    let flag = s.merger_flag.as_deref().map(|f| format!("  [{f}]")).unwrap_or_default();
                    println!("{}\t{}\t{}\t{}{flag}", s.id, s.department_name, s.name, s.status.label_zh());
                }
                match page.next_cursor {
                    Some(c) => after = Some(SystemId(c)),
                    None => break,
                }
            }
        }
        SystemCommand::Show { id, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let v = systems::get_system(&ex, &p, SystemId(*id)).await.map_err(explain)?;
            let verdict = systems::zombie_verdict(&ex, &p, SystemId(*id)).await.map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"system": v, "zombie": verdict}))?);
        }
        SystemCommand::Export { department, output, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let bytes = systems::export_inventory(&ex, &p, department.map(DepartmentId)).await.map_err(explain)?;
            std::fs::write(output, bytes).with_context(|| format!("writing {}", output.display()))?;
        }
        SystemCommand::Import { file, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            match systems::import_inventory(&ex, &p, &ctx, &bytes).await {
                Ok(r) => println!("imported {} system(s): {} new, {} updated, {} unchanged", r.systems, r.created, r.updated, r.unchanged),
                Err(e) => {
                    eprintln!("{}", explain(e));
                    return Ok(1);
                }
            }
        }
        SystemCommand::Zombies { department, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            for v in systems::zombie_verdicts(&ex, &p, department.map(DepartmentId)).await.map_err(explain)? {
                let met: Vec<&str> = v.criteria.iter().filter(|c| c.met).map(|c| c.criterion.label_zh()).collect();
                let state = v.state.decision.map(|d| d.label_zh()).or(v.state.response.map(|r| r.label_zh())).unwrap_or("");
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    v.system_id,
                    v.department_name,
                    v.system_name,
                    if met.is_empty() { "—".to_string() } else { met.join("、") },
                    state
                );
            }
        }
        SystemCommand::Register { department, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let r = systems::asset_register(&ex, &p, DepartmentId(*department)).await.map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
    }
    Ok(0)
}

pub async fn run_project(cli: &Cli, cmd: &ProjectCommand) -> anyhow::Result<i32> {
    let (db, ex) = open(cli).await?;
    match cmd {
        ProjectCommand::List { queue, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let queue =
                ProjectQueue::parse(queue).with_context(|| format!("--queue: '{queue}' is not one of {}", ProjectQueue::ALL.join(", ")))?;
            let mut after = None;
            loop {
                let page = systems::list_projects(&ex, &p, queue, None, after, 1000).await.map_err(explain)?;
                for pr in &page.items {
                    let gates: Vec<String> =
                        pr.gates.iter().map(|g| format!("{}:{}", g.gate.label_zh(), if g.open { "通过" } else { "未通过" })).collect();
                    println!("{}\t{}\t{}\t{}\t{}", pr.id, pr.department_name, pr.document.name, pr.stage.label_zh(), gates.join(" "));
                }
                match page.next_cursor {
                    Some(c) => after = Some(FiledProjectId(c)),
                    None => break,
                }
            }
        }
        ProjectCommand::Show { id, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            println!("{}", serde_json::to_string_pretty(&systems::get_project(&ex, &p, FiledProjectId(*id)).await.map_err(explain)?)?);
        }
        ProjectCommand::Advance { id, stage, on, document, override_reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let stage =
                ProjectStage::parse(stage).with_context(|| format!("--stage: '{stage}' is not one of {}", ProjectStage::expected()))?;
            let entry = systems::StageEntry {
                stage,
                entered_on: on.unwrap_or_else(|| ex.sharing.today()),
                document: document.clone(),
                override_reason: override_reason.clone(),
            };
            let pr = systems::advance_project(&ex, &p, &ctx, FiledProjectId(*id), entry).await.map_err(explain)?;
            println!("project {} is at {} ({})", pr.id, pr.stage.label_zh(), pr.stage);
        }
    }
    Ok(0)
}
