use clap::Parser;
use shutong::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the C library's allocator: the server allocates many small, short-lived values per
/// request on every core, where glibc's malloc and free took about a tenth of a lookup load's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tantivy=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Serve(args) => {
            let config = shutong::cli::load_config(&cli, args.listen.as_deref())?;
            if args.print_config {
                print!("{}", config.to_redacted_toml());
                return Ok(0);
            }
            init_logging(config.log_format == "json");
            let backend = if config.effective_database_url().starts_with("sqlite:") { "sqlite" } else { "postgres" };
            let running = shutong::server::start(config, args.demo, true).await?;
            if let Some(p) = &running.generated_admin_password {
                eprintln!("================================================================");
                eprintln!("first start: platform administrator 'admin' created.");
                eprintln!("its password, shown this once: {p}");
                eprintln!("================================================================");
            }
            if args.demo {
                eprintln!("demo data ready: log in as admin / {} (more accounts in README)", shutong::demo::ADMIN_PASSWORD);
            }
            tracing::info!(addr = %running.addr, backend, "shutong listening: portal http://{}/ , API http://{}/api/v1/docs", running.addr, running.addr);
            running.wait().await?;
            Ok(0)
        }
        Command::Migrate => {
            let config = shutong::cli::load_config(&cli, None)?;
            let db = shutong::server::open_database(&config).await?;
            db.close().await;
            println!("migrations applied ({})", db.backend().as_str());
            Ok(0)
        }
        Command::Version => {
            println!("shutong {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Openapi => {
            println!("{}", shutong_web::openapi_json());
            Ok(0)
        }
        Command::Admin(cmd) => shutong::cli::run_admin(&cli, cmd).await.map(|_| 0),
        Command::Check { kind, value } => shutong::cli::run_check(&cli, kind, value).await,
        Command::Calendar(cmd) => shutong::cli::run_calendar(&cli, cmd).await.map(|_| 0),
        Command::Audit(cmd) => shutong::cli::run_audit(&cli, cmd).await,
        Command::Catalog(cmd) => shutong::cli::run_catalog(&cli, cmd).await.map(|_| 0),
        Command::Request(cmd) => shutong::sharing_cli::run_request(&cli, cmd).await.map(|_| 0),
        Command::Grant(cmd) => shutong::sharing_cli::run_grant(&cli, cmd).await.map(|_| 0),
        Command::Data(cmd) => shutong::data_cli::run(&cli, cmd).await,
        Command::Keys(cmd) => shutong::keys_cli::run(&cli, cmd).await,
        Command::System(cmd) => shutong::systems_cli::run_system(&cli, cmd).await,
        Command::Project(cmd) => shutong::systems_cli::run_project(&cli, cmd).await,
        Command::Node(cmd) => shutong::node_cli::run(&cli, cmd).await,
        Command::Quality(cmd) => shutong::quality_cli::run(&cli, cmd).await,
    }
}
