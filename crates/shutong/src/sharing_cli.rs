//! `shutong request …` and `shutong grant …`: the sharing services from the command line. `--as USERNAME`
//! acts as that user (the operator of the machine answers for it; the audit trail records
//! `cli:<os-user> as <username>`); without it, the operator acts with the platform administrator's rights.

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use shutong_audit::AuditContext;
use shutong_identity::{self as identity, Principal};
use shutong_sharing::{
    self as sharing, AccessMethod, Approval, FilterOp, GrantFilter, GrantState, NewRequest, Purpose, RequestFilter, RequestStatus,
    RowCondition, RowFilter, Side,
};

use crate::cli::{Cli, load_config};

#[derive(Args, Debug, Clone)]
pub struct Acting {
    /// Act as this user (username); default the operator with platform administrator rights.
    #[arg(long = "as", global = true)]
    pub as_user: Option<String>,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The resource code, e.g. 101/000001.
    #[arg(long)]
    pub resource: String,
    /// An information item (repeat); a subscription defaults to every unconditional item.
    #[arg(long = "item")]
    pub items: Vec<String>,
    /// administrative_basis, work_reference, data_verification, business_collaboration, other (or the Chinese names).
    #[arg(long)]
    pub purpose: String,
    #[arg(long)]
    pub purpose_detail: Option<String>,
    /// The legal or duty basis.
    #[arg(long)]
    pub basis: String,
    /// First day of use (YYYY-MM-DD), default today.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day of use (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// online_query, bulk_download, subscription, system_integration (repeat).
    #[arg(long = "method")]
    pub methods: Vec<String>,
    #[arg(long)]
    pub volume: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// List requests: one line each (id, status, stage, resource, consumer → owner, due date, OVERDUE).
    List {
        /// consumer, provider or owner.
        #[arg(long)]
        side: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Only open requests past their due date.
        #[arg(long)]
        overdue: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON lines instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        acting: Acting,
    },
    /// Show a request with its steps, messages and grant (JSON).
    Show {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// Apply for a conditional resource (or open a negotiation for 不予共享 data).
    Create {
        #[command(flatten)]
        args: RequestArgs,
        #[command(flatten)]
        acting: Acting,
    },
    /// Subscribe to an unconditional resource: the grant is given at once.
    Subscribe {
        #[command(flatten)]
        args: RequestArgs,
        #[command(flatten)]
        acting: Acting,
    },
    /// Approve, possibly narrowing items, rows, period and methods.
    Approve {
        id: i64,
        /// Grant only these items (repeat); default all requested.
        #[arg(long = "item")]
        items: Vec<String>,
        /// A row condition "ITEM OP VALUE[,VALUE…]" with OP eq, in or prefix (repeat).
        #[arg(long = "filter")]
        filters: Vec<String>,
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long)]
        to: Option<NaiveDate>,
        #[arg(long = "method")]
        methods: Vec<String>,
        /// Records per day.
        #[arg(long)]
        quota: Option<i64>,
        /// Deliver sensitive items in clear text.
        #[arg(long)]
        clear_text: bool,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Refuse, with the reason (mandatory).
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Withdraw an open request (the consumer).
    Withdraw {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
    /// Escalate: 协商 → 协调 → 领导小组 (the consumer).
    Escalate {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Add to the record of the exchange.
    Message {
        id: i64,
        body: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Answering figures per provider (JSON).
    Stats {
        #[command(flatten)]
        acting: Acting,
    },
    /// Run the deadline sweep now (overdue, reminders, expiries).
    Sweep,
}

#[derive(Subcommand, Debug)]
pub enum GrantCommand {
    /// List grants: one line each (id, state, resource, consumer, items, valid to).
    List {
        /// consumer or provider.
        #[arg(long)]
        side: Option<String>,
        /// active, not_yet_valid, expired, revoked.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        acting: Acting,
    },
    /// Show a grant (JSON).
    Show {
        id: i64,
        #[command(flatten)]
        acting: Acting,
    },
    /// Revoke, with a reason: access stops at once.
    Revoke {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: Acting,
    },
    /// Extend the validity.
    Renew {
        id: i64,
        #[arg(long)]
        to: NaiveDate,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        acting: Acting,
    },
}

pub(crate) async fn acting(db: &shutong_store::Db, a: &Acting) -> anyhow::Result<(Principal, AuditContext)> {
    let os = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    match &a.as_user {
        None => {
            let label = format!("cli:{os}");
            Ok((Principal::operator(&label), AuditContext::system(&label)))
        }
        Some(name) => {
            let id = crate::cli::find_user(db, name).await?;
            let p = identity::load_principal(db, id).await?.with_context(|| format!("--as: user {name} is disabled"))?;
            let ctx = AuditContext { actor_user_id: Some(id.0), actor: format!("cli:{os} as {}", p.username), ..Default::default() };
            Ok((p, ctx))
        }
    }
}

fn parse<T>(flag: &str, v: &str, f: fn(&str) -> Option<T>, expected: String) -> anyhow::Result<T> {
    f(v).with_context(|| format!("{flag}: '{v}' is not one of {expected}"))
}

fn methods(list: &[String]) -> anyhow::Result<Vec<AccessMethod>> {
    list.iter().map(|m| parse("--method", m, AccessMethod::parse, AccessMethod::expected())).collect()
}

fn new_request(a: &RequestArgs) -> anyhow::Result<NewRequest> {
    Ok(NewRequest {
        resource_code: a.resource.clone(),
        consumer: None,
        items: a.items.clone(),
        purpose: Some(parse("--purpose", &a.purpose, Purpose::parse, Purpose::expected())?),
        purpose_detail: a.purpose_detail.clone(),
        basis: a.basis.clone(),
        period_from: a.from,
        period_to: a.to,
        access_methods: methods(&a.methods)?,
        expected_volume: a.volume.clone(),
    })
}

fn filter(spec: &str) -> anyhow::Result<RowCondition> {
    let mut parts = spec.splitn(3, ' ');
    let (Some(item), Some(op), Some(values)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--filter: '{spec}' is not \"ITEM OP VALUE[,VALUE…]\"");
    };
    Ok(RowCondition {
        item: item.to_string(),
        op: parse("--filter", op, FilterOp::parse, "eq, in, prefix".into())?,
        values: values.split(',').map(|v| v.trim().to_string()).collect(),
    })
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// The database and the sharing services' context, from the configuration.
async fn context(cli: &Cli) -> anyhow::Result<(shutong_store::Db, sharing::Sharing)> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let s = sharing::Sharing {
        db: db.clone(),
        calendar: std::sync::Arc::new(calendar),
        clock: shutong_store::Clock::system(),
        deadlines: shutong_web::state::deadlines(&config),
    };
    Ok((db, s))
}

pub async fn run_request(cli: &Cli, cmd: &RequestCommand) -> anyhow::Result<()> {
    let (db, s) = context(cli).await?;
    match cmd {
        RequestCommand::List { side, status, overdue, limit, json, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let f = RequestFilter {
                side: side.as_deref().map(|v| parse("--side", v, Side::parse, "consumer, provider, owner".into())).transpose()?,
                status: status
                    .as_deref()
                    .map(|v| {
                        parse(
                            "--status",
                            v,
                            RequestStatus::parse,
                            RequestStatus::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", "),
                        )
                    })
                    .transpose()?,
                overdue: *overdue,
                limit: *limit,
                ..Default::default()
            };
            for r in sharing::list_requests(&s, &p, &f).await? {
                if *json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{} {}\t{} → {}\t{}{}",
                        r.id,
                        r.status.as_str(),
                        r.stage.as_str(),
                        r.resource_code,
                        r.resource_name,
                        r.consumer_name,
                        r.owner_name,
                        r.stage_due_on,
                        if r.overdue { "\tOVERDUE" } else { "" }
                    );
                }
            }
        }
        RequestCommand::Show { id, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            print_json(&sharing::get_request(&s, &p, sharing::RequestId(*id)).await?)?;
        }
        RequestCommand::Create { args, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let d = sharing::create_request(&s, &p, &ctx, new_request(args)?).await?;
            println!("request {} {} due {}", d.request.id, d.request.status.as_str(), d.request.due_on);
        }
        RequestCommand::Subscribe { args, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let d = sharing::subscribe(&s, &p, &ctx, new_request(args)?).await?;
            println!("request {} granted: grant {}", d.request.id, d.request.grant_id.unwrap_or_default());
        }
        RequestCommand::Approve { id, items, filters, from, to, methods: m, quota, clear_text, note, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let conditions = filters.iter().map(|f| filter(f)).collect::<anyhow::Result<Vec<_>>>()?;
            let approval = Approval {
                items: (!items.is_empty()).then(|| items.clone()),
                row_filter: (!conditions.is_empty()).then_some(RowFilter { conditions }),
                valid_from: *from,
                valid_to: *to,
                access_methods: if m.is_empty() { None } else { Some(methods(m)?) },
                daily_quota: *quota,
                clear_text: *clear_text,
                note: note.clone(),
            };
            let d = sharing::approve(&s, &p, &ctx, sharing::RequestId(*id), approval).await?;
            let g = d.grant.context("approved without a grant")?;
            println!("request {} approved: grant {} items {} valid {}..{}", id, g.id, g.items.join(","), g.valid_from, g.valid_to);
        }
        RequestCommand::Reject { id, reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let d = sharing::reject(&s, &p, &ctx, sharing::RequestId(*id), reason).await?;
            println!("request {} rejected at {}", id, d.request.stage.as_str());
        }
        RequestCommand::Withdraw { id, reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            sharing::withdraw(&s, &p, &ctx, sharing::RequestId(*id), reason.as_deref()).await?;
            println!("request {id} withdrawn");
        }
        RequestCommand::Escalate { id, reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let d = sharing::escalate(&s, &p, &ctx, sharing::RequestId(*id), reason).await?;
            println!("request {} now {} with {} due {}", id, d.request.stage.as_str(), d.request.owner_name, d.request.stage_due_on);
        }
        RequestCommand::Message { id, body, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            sharing::add_message(&s, &p, &ctx, sharing::RequestId(*id), body).await?;
            println!("message added to request {id}");
        }
        RequestCommand::Stats { acting: a } => {
            let (p, _) = acting(&db, a).await?;
            print_json(&sharing::stats(&s, &p).await?)?;
        }
        RequestCommand::Sweep => {
            let (p, _) = acting(&db, &Acting { as_user: None }).await?;
            print_json(&sharing::sweep(&s, &p).await?)?
        }
    }
    db.close().await;
    Ok(())
}

pub async fn run_grant(cli: &Cli, cmd: &GrantCommand) -> anyhow::Result<()> {
    let (db, s) = context(cli).await?;
    match cmd {
        GrantCommand::List { side, state, resource, limit, json, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            let f = GrantFilter {
                side: side.as_deref().map(|v| parse("--side", v, Side::parse, "consumer, provider".into())).transpose()?,
                state: state
                    .as_deref()
                    .map(|v| {
                        parse("--state", v, GrantState::parse, GrantState::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                    })
                    .transpose()?,
                resource_code: resource.clone(),
                limit: *limit,
                ..Default::default()
            };
            for g in sharing::list_grants(&s, &p, &f).await? {
                if *json {
                    println!("{}", serde_json::to_string(&g)?);
                } else {
                    println!(
                        "{}\t{}\t{} {}\t{}\t{}\t{}",
                        g.id,
                        g.state.as_str(),
                        g.resource_code,
                        g.resource_name,
                        g.consumer_name,
                        g.items.join(","),
                        g.valid_to
                    );
                }
            }
        }
        GrantCommand::Show { id, acting: a } => {
            let (p, _) = acting(&db, a).await?;
            print_json(&sharing::get_grant(&s, &p, sharing::GrantId(*id)).await?)?;
        }
        GrantCommand::Revoke { id, reason, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            sharing::revoke_grant(&s, &p, &ctx, sharing::GrantId(*id), reason).await?;
            println!("grant {id} revoked");
        }
        GrantCommand::Renew { id, to, note, acting: a } => {
            let (p, ctx) = acting(&db, a).await?;
            let g = sharing::renew_grant(&s, &p, &ctx, sharing::GrantId(*id), *to, note.as_deref()).await?;
            println!("grant {id} valid to {}", g.valid_to);
        }
    }
    db.close().await;
    Ok(())
}
