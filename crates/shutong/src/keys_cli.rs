//! `shutong keys …`: the data keys that encrypt sensitive items at rest (SM4-GCM) and their rotation.
//!
//! Rotation, in order: `keys rotate` (a new active key in the key file), wait until every server shows it
//! at `GET /api/v1/node` (they take a changed key file up within two seconds), `keys rekey` (every value
//! re-encrypted under the active key), `keys retire OLD` (refused while any value needs it).

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::cli::{Cli, load_config};
use crate::sharing_cli::{Acting, acting};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// The key ring (numbers, the active one) and, per dataset, how many values each key encrypts.
    Status,
    /// Add a new data key and make it the active one (key file only). Restart the servers, then `rekey`.
    Rotate,
    /// Re-encrypt under the active key, encrypt sensitive values found in clear, decrypt values of items no
    /// longer sensitive. Safe to interrupt and run again.
    Rekey {
        /// One dataset (resource code) instead of all.
        #[arg(long)]
        resource: Option<String>,
        /// Only count what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a key from the key file once no value is encrypted under it.
    Retire { id: u32 },
}

pub async fn run(cli: &Cli, cmd: &KeysCommand) -> anyhow::Result<i32> {
    let config = load_config(cli, None)?;
    if !config.security.encrypt_sensitive {
        bail!("security.encrypt_sensitive is off: sensitive items are stored in clear and there are no data keys");
    }
    let from_config = !config.security.data_keys.is_empty();
    let path = config.data_key_file();
    if matches!(cmd, KeysCommand::Rotate | KeysCommand::Retire { .. }) && from_config {
        bail!("the data keys come from configuration (security.data_keys): change them there");
    }
    let db = crate::server::open_database(&config).await?;
    let calendar = shutong_refdata::load_calendar(&db).await?;
    let ex = crate::server::open_exchange(&config, &db, &calendar).await?;
    let (actor, ctx) = acting(&db, &Acting { as_user: None }).await?;
    let ring = ex.keys().context("no data keys")?;
    let status = match cmd {
        KeysCommand::Status => {
            let reports =
                shutong_exchange::sealed::rekey(&ex, &actor, &ctx, None, true).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let out = serde_json::json!({
                "source": if from_config { "configuration".to_string() } else { path.display().to_string() },
                "active": ring.active(),
                "keys": ring.ids(),
                "datasets": reports,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            0
        }
        KeysCommand::Rekey { resource, dry_run } => {
            let code = resource
                .as_deref()
                .map(|c| shutong_catalog::ResourceCode::parse(c).map_err(|e| anyhow::anyhow!("--resource: {e}")))
                .transpose()?;
            let reports = shutong_exchange::sealed::rekey(&ex, &actor, &ctx, code.as_ref(), *dry_run)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            println!("{}", serde_json::to_string_pretty(&reports)?);
            0
        }
        KeysCommand::Rotate => {
            let mut ring = crate::server::load_data_keys(&config)?;
            let id = shutong_exchange::sealed::rotate_key(&db, &actor, &ctx, &mut ring, &path)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            println!(
                "key {id} is now the active data key ({}). Running servers take it up within two seconds: when every one shows \
                 data_key_active {id} at GET /api/v1/node, run `shutong keys rekey`.",
                path.display()
            );
            0
        }
        KeysCommand::Retire { id } => {
            let mut ring = crate::server::load_data_keys(&config)?;
            match shutong_exchange::sealed::retire_key(&ex, &actor, &ctx, &mut ring, &path, *id).await {
                Ok(()) => {
                    println!("key {id} retired; the key ring is now {:?} (active {})", ring.ids(), ring.active());
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
    };
    db.close().await;
    Ok(status)
}
