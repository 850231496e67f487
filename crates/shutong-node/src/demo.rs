//! `shutong node init --demo`: a sample department database and the configuration of 示范省公安厅's demo
//! node (account `ga.exchange`, seeded by `serve --demo`), publishing 流动人口居住登记信息 from the database
//! and keeping 法人单位基本信息 (granted to 示范省公安厅 by subscription) in a local table.

use std::path::Path;

/// 流动人口居住登记信息 and 法人单位基本信息 in the demo catalog.
pub const DEMO_PUBLISHED: &str = "101/000002";
pub const DEMO_SUBSCRIBED: &str = "102/000001";

/// The demo's department database — 流动人口 with a row version and a deletion flag, one row per person
/// (公民身份号码, 姓名, 居住地址) — and a configuration that publishes it and keeps 法人单位基本信息 beside it.
pub async fn write(dir: &Path, platform: &str, account: &str, name: &str, people: &[[String; 3]]) -> anyhow::Result<()> {
    let dir = dir.canonicalize()?;
    let db = dir.join("department.db");
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&format!("sqlite://{}?mode=rwc", db.display())).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS liudong (sfzh TEXT PRIMARY KEY, xm TEXT NOT NULL, jzdz TEXT, djrq TEXT, \
         bbh INTEGER NOT NULL, scbz INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(&pool)
    .await?;
    let mut tx = pool.begin().await?;
    for (i, p) in people.iter().enumerate() {
        sqlx::query("INSERT OR IGNORE INTO liudong (sfzh, xm, jzdz, djrq, bbh) VALUES ($1, $2, $3, '2026-11-01', $4)")
            .bind(p[0].clone())
            .bind(p[1].clone())
            .bind(p[2].clone())
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    pool.close().await;
    let config = format!(
        r#"# The demo exchange node of 示范省公安厅 — `shutong node run --config {dir}/node.toml`
[platform]
url = "{platform}"
account = "{account}"
key_file = "node.key"

[node]
name = "{name}"
state_dir = "state"
heartbeat_seconds = 10

# 流动人口居住登记信息: the table liudong of department.db. A change sets bbh (the row version) to the next
# number; a deletion sets scbz = 1.
[[publication]]
name = "liudong"
resource = "{DEMO_PUBLISHED}"
source = "table"
database_url = "sqlite://{db}"
table = "liudong"
key = "sfzh"
change_column = "bbh"
change_kind = "sequence"
deletes = "soft_delete"
soft_delete_column = "scbz"
[publication.columns]
sfzh = "公民身份号码"
xm = "姓名"
jzdz = "居住地址"
djrq = "登记日期"

# 法人单位基本信息, granted to 示范省公安厅 by subscription: kept in the table faren of department.db.
[[subscription]]
name = "faren"
resource = "{DEMO_SUBSCRIBED}"
database_url = "sqlite://{db}"
table = "faren"
"#,
        dir = dir.display(),
        db = db.display()
    );
    crate::NodeConfig::parse(&config).map_err(|e| anyhow::anyhow!("the demo configuration: {e}"))?;
    std::fs::write(dir.join("node.toml"), config)?;
    Ok(())
}
