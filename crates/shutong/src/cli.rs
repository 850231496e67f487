//! The command line: one binary, `shutong`, whose admin commands call the same service functions as the
//! API (so they write the same audit events, with `cli:<os-user>` as the actor).

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use shutong_audit::AuditContext;
use shutong_config::Config;
use shutong_identity::{self as identity, DepartmentId, DepartmentKind, DepartmentLevel, NewDepartment, NewUser, Principal, Role, UserId};
use shutong_reference::{Checker, DaySource, IdentifierKind, RegionTable, WorkCalendar};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "shutong", version, about = "数通 shutong — 政务数据共享交换平台 (government data sharing and exchange platform)")]
pub struct Cli {
    /// Configuration file (default: ./shutong.toml if present).
    #[arg(long, global = true, env = "SHUTONG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL (postgres://… or sqlite://…); overrides configuration.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Data directory; overrides configuration.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the platform (HTTP API and portal).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Print the version.
    Version,
    /// Print the OpenAPI document.
    Openapi,
    /// Administer departments, users and tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check identifiers: id (GB 11643), uscc (GB 32100), org (GB 11714), region (GB/T 2260).
    Check {
        /// id, uscc, org or region.
        kind: String,
        /// The value, or - to read one value per line from standard input.
        value: String,
    },
    /// The working-day calendar.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The resource catalog (政务信息资源目录).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Sharing requests (共享申请): subscribe, apply, answer, withdraw, escalate.
    #[command(subcommand)]
    Request(crate::sharing_cli::RequestCommand),
    /// Grants (授权): list, show, revoke, renew.
    #[command(subcommand)]
    Grant(crate::sharing_cli::GrantCommand),
    /// Data exchange (共享交换): bind, load, export, query, batches.
    #[command(subcommand)]
    Data(crate::data_cli::DataCommand),
    /// Data keys (SM4-GCM) of sensitive items at rest: status, rotate, rekey, retire.
    #[command(subcommand)]
    Keys(crate::keys_cli::KeysCommand),
    /// Information systems (信息系统台账): list, show, template, export, import, zombie verdicts, asset register.
    #[command(subcommand)]
    System(crate::systems_cli::SystemCommand),
    /// Filed projects (全口径备案): list a queue, show with gates, advance a stage.
    #[command(subcommand)]
    Project(crate::systems_cli::ProjectCommand),
    /// The exchange node (前置机): init, run, status, check. `--config` names the node's node.toml.
    #[command(subcommand)]
    Node(crate::node_cli::NodeCommand),
    /// Data quality (数据质量): a dataset's rules, a check now, its checks, the scores, the dimensions.
    #[command(subcommand)]
    Quality(crate::quality_cli::QualityCommand),
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Search the published catalog (Chinese full text); prints one line per hit.
    Search {
        /// The query, e.g. 人口.
        query: String,
        /// Facet filters as DIMENSION=VALUE (class, provider, region, sharing, open, format, cycle).
        #[arg(long = "filter")]
        filters: Vec<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Rebuild the search index from the database and report what it holds.
    Reindex,
    /// Import a catalog file (XLSX, CSV or JSON): all or nothing, with a report of every issue.
    Import {
        file: PathBuf,
        /// The department whose catalog this is (统一社会信用代码): fills empty 提供方代码 cells.
        #[arg(long)]
        department: Option<String>,
        /// Submit the imported resources for review at once.
        #[arg(long)]
        submit: bool,
        /// Check the file only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export the catalog (every resource at its latest version) as XLSX, CSV or JSON.
    Export {
        /// The output file; its extension chooses the format (default catalog.xlsx).
        #[arg(long, default_value = "catalog.xlsx")]
        output: PathBuf,
    },
    /// Print catalog statistics as JSON.
    Stats,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Seed the demo province, departments and accounts (see README).
    #[arg(long)]
    pub demo: bool,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Listen address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Departments.
    #[command(subcommand)]
    Department(DepartmentCommand),
    /// Users and system accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum DepartmentCommand {
    /// List departments.
    List,
    /// Register a department.
    Create {
        #[arg(long)]
        name: String,
        /// 统一社会信用代码.
        #[arg(long)]
        credit_code: String,
        /// GB/T 2260 region code.
        #[arg(long)]
        region: String,
        /// national, province, city or county.
        #[arg(long)]
        level: String,
        /// government, sharing_authority, audit_office, authorised_institution, development_reform or finance.
        #[arg(long, default_value = "government")]
        kind: String,
        /// Parent department (ID or credit code).
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users.
    List {
        /// Only this department (ID or credit code).
        #[arg(long)]
        department: Option<String>,
    },
    /// Create a user. The password is read from SHUTONG_NEW_PASSWORD or, if unset, from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// Department (ID or credit code).
        #[arg(long)]
        department: String,
        /// Roles (repeatable): platform_admin, department_admin, catalog_editor, reviewer, auditor.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A system account (token authentication, no password).
        #[arg(long)]
        system: bool,
    },
    /// Register a system account's SM2 public key for signed requests (hex, or a PEM file); --remove drops it.
    SetKey {
        #[arg(long)]
        username: String,
        /// The public key: hex (04…), or the path of a PEM file.
        #[arg(long, required_unless_present = "remove")]
        public_key: Option<String>,
        #[arg(long)]
        remove: bool,
    },
    /// Reset a password (read from SHUTONG_NEW_PASSWORD or standard input); unlocks the account.
    SetPassword {
        #[arg(long)]
        username: String,
    },
    /// Give a user a role in its department.
    Grant {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a token; the secret is printed once.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 90)]
        ttl_days: i64,
    },
    /// List tokens.
    List,
    /// Revoke a token.
    Revoke {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum CalendarCommand {
    /// Print true or false.
    IsWorkday { date: NaiveDate },
    /// Print the N-th working day after DATE.
    AddWorkdays { date: NaiveDate, n: i64 },
    /// Print the count of working days d with FROM < d <= TO.
    Between { from: NaiveDate, to: NaiveDate },
    /// Import a year's schedule (holiday-cn JSON form).
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the newest events as NDJSON.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        action: Option<String>,
        /// Only accesses to this data subject (公民身份号码, 统一社会信用代码 or another dataset key), which the
        /// trail records masked with an audit token (docs/DATA-AT-REST.md).
        #[arg(long)]
        subject: Option<String>,
    },
    /// The chain's state: end, last signed checkpoint, events not sealed yet (JSON).
    Status,
    /// Seal committed events into the chain now (the server does this every `audit.seal_interval_ms`).
    Seal {
        /// Also sign a checkpoint at the chain's end.
        #[arg(long)]
        checkpoint: bool,
    },
    /// Re-compute the chain (SM3) and the checkpoints' SM2 signatures; exit 1 naming the first place that
    /// does not match. Verifying the database records the outcome on the trail (`audit.verify`).
    Verify {
        /// Verify an export or archive file instead of the database.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Trust checkpoints signed by this SM2 public key (hex; repeatable). Default: this node's key (for
        /// a file without the node's key file: the key in the file's header).
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write positions FROM..TO of the chain as NDJSON (docs/AUDIT-FORMAT.md).
    Export {
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move sealed events older than the retention period (`audit.retention_days`) into a verified archive
    /// file, up to the last checkpoint signed before the cut-off.
    Archive {
        /// An earlier cut-off than the retention period allows (YYYY-MM-DD, China time).
        #[arg(long)]
        before: Option<chrono::NaiveDate>,
    },
}

/// The configuration with command-line overrides applied.
pub fn load_config(cli: &Cli, listen: Option<&str>) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(u) = &cli.database_url {
        config.database_url = Some(u.clone().into());
    }
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(l) = listen {
        config.listen = l.to_string();
    }
    config.validate()?;
    Ok(config)
}

fn operator() -> (Principal, AuditContext) {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let label = format!("cli:{user}");
    (Principal::operator(&label), AuditContext::system(&label))
}

async fn find_department(db: &shutong_store::Db, s: &str) -> anyhow::Result<DepartmentId> {
    if let Ok(id) = s.parse::<i64>() {
        return Ok(identity::get_department(db, DepartmentId(id)).await.with_context(|| format!("department {s}"))?.id);
    }
    let code =
        shutong_reference::CreditCode::parse(s).map_err(|e| anyhow::anyhow!("department {s}: neither an ID nor a credit code: {e}"))?;
    Ok(identity::find_department_by_credit_code(db, &code).await.with_context(|| format!("department {s}"))?.id)
}

pub(crate) async fn find_user(db: &shutong_store::Db, username: &str) -> anyhow::Result<UserId> {
    identity::user_id_by_username(db, username).await?.with_context(|| format!("no user named {username}"))
}

fn read_new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("SHUTONG_NEW_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        bail!("no password given: set SHUTONG_NEW_PASSWORD or pipe it on standard input");
    }
    Ok(p)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run_admin(cli: &Cli, cmd: &AdminCommand) -> anyhow::Result<()> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    let regions = shutong_refdata::load_regions(&db).await?;
    let security = shutong_web::state::security_settings(&config);
    let (op, ctx) = operator();
    match cmd {
        AdminCommand::Department(DepartmentCommand::List) => print_json(&identity::list_departments(&db).await?)?,
        AdminCommand::Department(DepartmentCommand::Create { name, credit_code, region, level, kind, parent }) => {
            let level = DepartmentLevel::parse(level)
                .with_context(|| format!("--level: '{level}' is not one of {}", DepartmentLevel::expected()))?;
            let kind =
                DepartmentKind::parse(kind).with_context(|| format!("--kind: '{kind}' is not one of {}", DepartmentKind::expected()))?;
            let parent_id = match parent {
                Some(p) => Some(find_department(&db, p).await?),
                None => None,
            };
            let d = identity::create_department(
                &db,
                &regions,
                &op,
                &ctx,
                NewDepartment { name: name.clone(), credit_code: credit_code.clone(), region_code: region.clone(), level, kind, parent_id },
            )
            .await?;
            print_json(&d)?;
        }
        AdminCommand::User(UserCommand::List { department }) => {
            let dept = match department {
                Some(d) => Some(find_department(&db, d).await?),
                None => None,
            };
            print_json(&identity::list_users(&db, &op, dept).await?)?;
        }
        AdminCommand::User(UserCommand::Create { username, display_name, department, roles, system }) => {
            let department_id = find_department(&db, department).await?;
            let roles = roles
                .iter()
                .map(|r| Role::parse(r).with_context(|| format!("--role: '{r}' is not one of {}", Role::expected())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = if *system { None } else { Some(read_new_password()?) };
            let u = identity::create_user(
                &db,
                &security,
                &op,
                &ctx,
                NewUser {
                    username: username.clone(),
                    display_name: display_name.clone(),
                    department_id,
                    password,
                    is_system: *system,
                    roles,
                },
            )
            .await?;
            print_json(&u)?;
        }
        AdminCommand::User(UserCommand::SetKey { username, public_key, remove }) => {
            let id = find_user(&db, username).await?;
            let key = match (public_key, remove) {
                (_, true) => None,
                (Some(k), false) if std::path::Path::new(k).is_file() => {
                    Some(std::fs::read_to_string(k).with_context(|| format!("reading --public-key {k}"))?)
                }
                (k, false) => k.clone(),
            };
            let stored = identity::signing::set_sm2_key(&db, &op, &ctx, id, key.as_deref()).await?;
            print_json(&serde_json::json!({"username": username, "public_key": stored}))?;
        }
        AdminCommand::User(UserCommand::SetPassword { username }) => {
            let id = find_user(&db, username).await?;
            let p = read_new_password()?;
            identity::set_password(&db, &security, &op, &ctx, id, &p, None).await?;
            eprintln!("password of {username} reset; it must be changed at next login");
        }
        AdminCommand::User(UserCommand::Grant { username, role }) => {
            let id = find_user(&db, username).await?;
            let role = Role::parse(role).with_context(|| format!("--role: '{role}' is not one of {}", Role::expected()))?;
            print_json(&identity::assign_role(&db, &op, &ctx, id, role).await?)?;
        }
        AdminCommand::Token(TokenCommand::Create { username, name, ttl_days }) => {
            let id = find_user(&db, username).await?;
            let (token, secret) = identity::create_token(&db, &security, &op, &ctx, id, name, *ttl_days).await?;
            eprintln!(
                "token {} for {username}, expires {}; the secret is shown once:",
                token.id,
                shutong_store::from_ms(token.expires_at_ms)
            );
            println!("{secret}");
        }
        AdminCommand::Token(TokenCommand::List) => print_json(&identity::list_tokens(&db, &op, None).await?)?,
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            print_json(&identity::revoke_token(&db, &op, &ctx, identity::TokenId(*id)).await?)?
        }
    }
    db.close().await;
    Ok(())
}

/// The region table and calendar with administrators' updates, if the configured database can be opened
/// quickly; the shipped data otherwise (said on standard error).
async fn reference_data(cli: &Cli, need_db: bool) -> (RegionTable, WorkCalendar) {
    if need_db && let Ok(config) = load_config(cli, None) {
        let url = config.effective_database_url();
        let sqlite_missing = url.starts_with("sqlite:") && !config.data_dir.join("shutong.db").exists();
        if !sqlite_missing {
            let opened = tokio::time::timeout(std::time::Duration::from_secs(5), crate::server::open_database(&config)).await;
            if let Ok(Ok(db)) = opened {
                let regions = shutong_refdata::load_regions(&db).await.unwrap_or_else(|_| RegionTable::builtin());
                let cal = shutong_refdata::load_calendar(&db).await.unwrap_or_else(|_| WorkCalendar::builtin());
                db.close().await;
                return (regions, cal);
            }
            eprintln!("note: the database could not be opened; using the shipped reference data");
        }
    }
    (RegionTable::builtin(), WorkCalendar::builtin())
}

/// `shutong check KIND VALUE|-`: exit 0 if valid, 1 if not; with `-`, one output line per input line and
/// exit 0.
pub async fn run_check(cli: &Cli, kind: &str, value: &str) -> anyhow::Result<i32> {
    let kind = IdentifierKind::parse(kind).with_context(|| format!("kind '{kind}' is not one of id, uscc, org, region"))?;
    let (regions, _) = reference_data(cli, kind == IdentifierKind::Region).await;
    let checker = Checker::new(&regions);
    if value != "-" {
        return Ok(match checker.check(kind, value) {
            Ok(c) => {
                println!("{}", c.normalized);
                0
            }
            Err(reason) => {
                println!("{reason}");
                1
            }
        });
    }
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    check_stream(&checker, kind, &mut stdin.lock(), &mut stdout.lock())?;
    Ok(0)
}

/// The batch mode: reads lines, writes `VALUE<TAB>valid<TAB>NORMALISED` or `VALUE<TAB>invalid<TAB>REASON`,
/// in input order. Returns the counts of valid and invalid lines.
pub fn check_stream(
    checker: &Checker,
    kind: IdentifierKind,
    input: &mut dyn std::io::Read,
    out: &mut dyn Write,
) -> anyhow::Result<(u64, u64)> {
    if kind != IdentifierKind::IdNumber {
        return Ok(crate::lines::map_lines(input, out, |line, buf, counts| check_line(checker, kind, line, buf, counts))?);
    }
    // 公民身份号码: the common line, a valid number of 18 characters, is found without a search and
    // written as one 44-byte record; any other line takes the general path.
    Ok(crate::lines::map_chunks(input, out, |chunk, buf, counts| {
        buf.reserve(chunk.len() / 19 * 44 + 64);
        crate::lines::for_each_line_fixed::<18, _>(
            chunk,
            &mut (buf, counts),
            |(buf, counts), line| {
                if !checker.id_validator.fast_check(line) {
                    return false;
                }
                push_valid_record(buf, line);
                counts.0 += 1;
                true
            },
            |(buf, counts), line| check_line(checker, kind, line, buf, counts),
        )
    })?)
}

/// Appends `VALUE<TAB>valid<TAB>NORMALISED` and the line end for an 18-character value that passed
/// [`shutong_reference::IdNumberValidator::fast_check`]: the value twice, then the normalised check
/// character mended in place.
#[inline(always)]
fn push_valid_record(buf: &mut Vec<u8>, line: &[u8; 18]) {
    buf.extend_from_slice(line);
    buf.extend_from_slice(b"\tvalid\t");
    buf.extend_from_slice(line);
    buf.push(b'\n');
    if line[17] == b'x' {
        let at = buf.len() - 2;
        buf[at] = b'X';
    }
}

fn check_line(checker: &Checker, kind: IdentifierKind, line: &[u8], out: &mut Vec<u8>, counts: &mut (u64, u64)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if kind == IdentifierKind::IdNumber
        && let Ok(b) = <&[u8; 18]>::try_from(line)
        && checker.id_validator.fast_check(b)
    {
        push_valid_record(out, b);
        counts.0 += 1;
        return;
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\tvalid\t");
    let mark = out.len();
    match checker.normalize_bytes(kind, line, out) {
        Ok(()) => counts.0 += 1,
        Err(reason) => {
            counts.1 += 1;
            out.truncate(mark - b"valid\t".len());
            out.extend_from_slice(b"invalid\t");
            out.extend_from_slice(reason.as_bytes());
        }
    }
    out.push(b'\n');
}

fn fallback_note(src: DaySource) {
    if src == DaySource::WeekdayFallback {
        eprintln!("note: the official schedule of that year is not known; Monday to Friday counted as working days");
    }
}

pub async fn run_calendar(cli: &Cli, cmd: &CalendarCommand) -> anyhow::Result<()> {
    if let CalendarCommand::Import { file } = cmd {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let config = load_config(cli, None)?;
        let db = crate::server::open_database(&config).await?;
        let (op, ctx) = operator();
        let s = shutong_refdata::import_calendar_year(&db, &op, &ctx, &text).await?;
        println!("imported {}: {} listed days", s.year, s.days.len());
        db.close().await;
        return Ok(());
    }
    let (_, cal) = reference_data(cli, true).await;
    match cmd {
        CalendarCommand::IsWorkday { date } => {
            let (w, src) = cal.is_workday(*date);
            fallback_note(src);
            println!("{w}");
        }
        CalendarCommand::AddWorkdays { date, n } => {
            let (d, src) = cal.add_workdays(*date, *n)?;
            fallback_note(src);
            println!("{d}");
        }
        CalendarCommand::Between { from, to } => {
            let (n, src) = cal.workdays_between(*from, *to)?;
            fallback_note(src);
            println!("{n}");
        }
        CalendarCommand::Import { .. } => {}
    }
    Ok(())
}

pub async fn run_audit(cli: &Cli, cmd: &AuditCommand) -> anyhow::Result<i32> {
    let config = load_config(cli, None)?;
    if let AuditCommand::Verify { file: Some(file), public_keys, json } = cmd {
        // A file verifies on its own, without the database (an auditor's copy, an archive).
        let mut keys = public_keys.clone();
        if keys.is_empty() && config.audit_key_file().exists() {
            keys.push(crate::server::load_node_key(&config)?.public_key_hex());
        }
        let reader = std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
        let report = shutong_audit::verify_file(reader, keys)?;
        return print_verify(&report, *json);
    }
    let db = crate::server::open_database(&config).await?;
    let code = run_audit_db(&config, &db, cmd).await;
    db.close().await;
    code
}

async fn run_audit_db(config: &Config, db: &shutong_store::Db, cmd: &AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::List { limit, action, subject } => {
            let detail_contains = match subject {
                Some(s) => {
                    let keys = if config.security.encrypt_sensitive { Some(crate::server::load_data_keys(config)?) } else { None };
                    let today = shutong_reference::id_number::china_today();
                    Some(shutong_exchange::sealed::subject_token(keys.as_ref(), today, s)?)
                }
                None => None,
            };
            let filter = shutong_audit::AuditFilter { limit: *limit, action: action.clone(), detail_contains, ..Default::default() };
            let reader = shutong_identity::Principal::operator("cli");
            let events = shutong_audit::list(db, &reader, &filter).await?;
            for e in events {
                println!("{}", serde_json::to_string(&e)?);
            }
        }
        AuditCommand::Status => print_json(&shutong_audit::status(db, &shutong_identity::Principal::operator("cli")).await?)?,
        AuditCommand::Seal { checkpoint } => {
            let key = crate::server::load_node_key(config)?;
            let report = shutong_audit::seal(db, &key, &shutong_web::state::seal_options(config), *checkpoint).await?;
            print_json(&report)?;
        }
        AuditCommand::Verify { public_keys, json, .. } => {
            let mut keys = public_keys.clone();
            if keys.is_empty() {
                keys.push(crate::server::load_node_key(config)?.public_key_hex());
            }
            let (principal, ctx) = operator();
            let report = shutong_audit::verify_recorded(db, &principal, &ctx, keys).await?;
            return print_verify(&report, *json);
        }
        AuditCommand::Export { from, to, out } => {
            let key = crate::server::load_node_key(config)?;
            let (from, to) = shutong_audit::resolve_range(db, *from, *to).await?;
            let name = identity::node_identity(db).await?.map(|n| n.name).unwrap_or_default();
            let (hex_key, pem) = (key.public_key_hex(), key.public_key_pem());
            let signer = shutong_audit::ExportSigner { node_name: &name, public_key_hex: &hex_key, public_key_pem: &pem };
            let writer: Box<dyn std::io::Write + Send> = match out {
                Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
                None => Box::new(std::io::stdout()),
            };
            let (summary, _) = shutong_audit::export_to(db, from, to, &signer, writer).await?;
            eprintln!(
                "exported positions {}..{}: {} events, {} checkpoints",
                summary.from, summary.to, summary.events, summary.checkpoints
            );
            if summary.signed_through < summary.to {
                eprintln!(
                    "note: positions {}..{} are chained but not covered by a checkpoint in this file yet; `shutong audit seal --checkpoint` signs one",
                    summary.signed_through + 1,
                    summary.to
                );
            }
        }
        AuditCommand::Archive { before } => {
            let key = crate::server::load_node_key(config)?;
            let retention_cutoff = config.audit_retention_cutoff_ms(shutong_store::now_ms());
            let cutoff = match before {
                Some(d) => {
                    let ms = shutong_store::china_midnight_ms(*d);
                    if ms > retention_cutoff {
                        bail!(
                            "--before {d}: later than the retention period allows ({} days: events after {} are kept)",
                            config.audit.retention_days,
                            shutong_store::from_ms(retention_cutoff).format("%Y-%m-%d %H:%M UTC")
                        );
                    }
                    ms
                }
                None => retention_cutoff,
            };
            let (_, ctx) = operator();
            match crate::server::archive_before(db, config, &key, cutoff, &ctx).await? {
                Some(a) => {
                    print_json(&a)?;
                }
                None => eprintln!("nothing to archive: no checkpoint was signed before the cut-off"),
            }
        }
    }
    Ok(0)
}

fn print_verify(report: &shutong_audit::VerifyReport, json: bool) -> anyhow::Result<i32> {
    if json {
        print_json(report)?;
    } else if report.ok {
        let rate = (report.events * 1000).checked_div(report.elapsed_ms).unwrap_or(report.events);
        println!(
            "ok: positions {}..{} verify ({} events, {} signed checkpoints, signed through {}, {} ms, {rate} events/s)",
            report.from, report.through, report.events, report.checkpoints, report.signed_through, report.elapsed_ms
        );
        if report.unsealed > 0 {
            println!("{} committed events are not sealed yet", report.unsealed);
        }
    }
    if let Some(f) = &report.failure {
        if !json {
            println!("FAILED at {f}");
        }
        return Ok(1);
    }
    Ok(0)
}

pub async fn run_catalog(cli: &Cli, cmd: &CatalogCommand) -> anyhow::Result<()> {
    let config = load_config(cli, None)?;
    let db = crate::server::open_database(&config).await?;
    match cmd {
        CatalogCommand::Search { query, filters, limit } => {
            let index = shutong_catalog::search::CatalogIndex::new()?;
            index.rebuild(&db).await?;
            let filters = filters
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .map(|(d, v)| (d.to_string(), v.to_string()))
                        .with_context(|| format!("--filter '{f}' is not DIMENSION=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let results =
                index.search(&shutong_catalog::search::SearchRequest { q: query.clone(), filters, limit: *limit, cursor: None })?;
            eprintln!("{} hit(s)", results.total);
            for h in results.hits {
                println!("{}\t{}\t{}\t{}", h.code, h.name, h.provider_name, h.sharing_type);
            }
        }
        CatalogCommand::Reindex => {
            let index = shutong_catalog::search::CatalogIndex::new()?;
            let started = std::time::Instant::now();
            let n = index.rebuild(&db).await?;
            println!("indexed {n} published resources in {:.2} s (the index holds {})", started.elapsed().as_secs_f64(), index.len());
        }
        CatalogCommand::Stats => print_json(&shutong_catalog::stats(&db, &shutong_store::Clock::system()).await?)?,
        CatalogCommand::Import { file, department, submit, dry_run } => {
            use shutong_catalog::transfer::{self, ImportLimits, ImportOptions, TransferFormat};
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let format = TransferFormat::of_path(&file.to_string_lossy()).unwrap_or_else(|| transfer::sniff(&bytes));
            let started = std::time::Instant::now();
            eprintln!("checking {} ({:?}, {} bytes)…", file.display(), format, bytes.len());
            let entries = match transfer::parse(format, &bytes, &ImportLimits::default()) {
                Ok(e) => e,
                Err(issues) => {
                    print_issues(&issues);
                    anyhow::bail!("nothing imported: {} issue(s)", issues.len());
                }
            };
            eprintln!(
                "{} resources, {} items checked in {:.2} s",
                entries.len(),
                entries.iter().map(|e| e.document.items.len()).sum::<usize>(),
                started.elapsed().as_secs_f64()
            );
            if !*dry_run {
                let (op, ctx) = operator();
                let total = entries.len();
                let progress = move |done: usize| eprint!("\rimporting: {done}/{total} ({}%)", done * 100 / total.max(1));
                let report = transfer::import(
                    &db,
                    &op,
                    &ctx,
                    &entries,
                    ImportOptions { submit: *submit, department_code: department.clone() },
                    &progress,
                )
                .await?;
                eprintln!();
                if !report.issues.is_empty() {
                    print_issues(&report.issues);
                    anyhow::bail!("nothing imported: {} issue(s)", report.issues.len());
                }
                println!("imported {} resources ({} items) in {:.2} s", report.resources, report.items, started.elapsed().as_secs_f64());
            }
        }
        CatalogCommand::Export { output } => {
            use shutong_catalog::transfer::{self, TransferFormat};
            let format = TransferFormat::of_path(&output.to_string_lossy()).context("--output must end in .xlsx, .csv or .json")?;
            let (op, _) = operator();
            let entries =
                transfer::export_entries(&db, &op, &shutong_catalog::ResourceFilter { limit: 1000, ..Default::default() }).await?;
            std::fs::write(output, transfer::write(format, &entries)?).with_context(|| format!("writing {}", output.display()))?;
            println!("exported {} resources to {}", entries.len(), output.display());
        }
    }
    db.close().await;
    Ok(())
}

fn print_issues(issues: &[shutong_catalog::transfer::ImportIssue]) {
    eprintln!("sheet\trow\tcolumn\treason");
    for i in issues {
        eprintln!("{}\t{}\t{}\t{}", i.sheet, i.row, i.column, i.reason);
    }
}
