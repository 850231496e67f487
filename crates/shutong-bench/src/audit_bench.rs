//! `shutong-bench audit`: the audit trail's append, seal and verify rates on N events, on SQLite and
//! PostgreSQL, and the in-memory chain rate (SM3 over canonical encodings) that bounds them.

use anyhow::Context;
use shutong_audit::{AuditContext, NewAuditEvent, SealOptions, StampedEvent};
use shutong_store::{Db, DbOptions};
use std::time::Instant;

struct Figures {
    backend: &'static str,
    append: f64,
    seal: f64,
    verify: f64,
    export: f64,
    verify_file: f64,
    file_mb: f64,
}

pub async fn run(n: usize, postgres: &str, sqlite_only: bool, keep_database: bool) -> anyhow::Result<()> {
    println!(
        "shutong-bench audit: N = {n} events (access-log shaped, {} per transaction as the access log groups them)",
        shutong_audit::GROUP_COMMIT_EVENTS
    );
    let chain_rate = in_memory_chain(n.min(2_000_000));
    let lanes_rate = in_memory_links(n.min(2_000_000));
    let key = shutong_crypto::NodeKey::generate();
    let mut figures = Vec::new();
    let dir = std::env::temp_dir().join(format!("shutong-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    figures.push(run_on("SQLite", &format!("sqlite://{}", dir.join("bench.db").display()), n, &key, &dir).await?);
    if !sqlite_only {
        sqlx::any::install_default_drivers();
        let name = format!("shutong_bench_audit_{}", std::process::id());
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(postgres)
            .await
            .context("connecting to PostgreSQL (--sqlite-only skips it)")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        let base = postgres.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_default();
        let result = run_on("PostgreSQL", &format!("{base}/{name}"), n, &key, &dir).await;
        if keep_database {
            println!("PostgreSQL database kept: {name}");
        } else {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
        }
        figures.push(result?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!("in-memory chain (canonical encoding + SM3 link, one core): {chain_rate:.0} events/s");
    println!("in-memory link check (stored links, multi-buffer SM3, one core): {lanes_rate:.0} events/s");
    println!();
    println!(
        "| backend | append (BatchWriter, chained as written) | seal (state-change events) | verify (database) | export | verify (file) | ratio to targets |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for f in &figures {
        println!(
            "| {} | {:.0}/s | {:.0}/s | {:.0}/s | {:.0}/s ({:.0} MB) | {:.0}/s | append {:.2}x, seal {:.2}x of 100,000/s; verify {:.2}x of 1,000,000/s |",
            f.backend,
            f.append,
            f.seal,
            f.verify,
            f.export,
            f.file_mb,
            f.verify_file,
            f.append / 100_000.0,
            f.seal / 100_000.0,
            f.verify / 1_000_000.0
        );
    }
    Ok(())
}

/// Encoding and hashing only: the ceiling of sealing and verification.
fn in_memory_chain(n: usize) -> f64 {
    let ev = sample(0);
    let t = Instant::now();
    let mut h = [0u8; 32];
    let mut buf = Vec::with_capacity(512);
    let mut e = shutong_audit::chain::SealedEvent {
        chain_seq: 0,
        seq: 0,
        at_ms: 1_764_000_000_000,
        actor_user_id: Some(7),
        actor: ev.0.actor.clone(),
        department_id: Some(3),
        action: "data.lookup".into(),
        target_kind: "data".into(),
        target_id: "320000-101-000001".into(),
        detail: ev.1.to_string(),
        request_id: ev.0.request_id.clone(),
        ip: ev.0.ip.clone(),
    };
    for i in 0..n as i64 {
        e.chain_seq = i + 1;
        e.seq = i + 1;
        buf.clear();
        e.encode_canonical(&mut buf);
        h = shutong_crypto::sm3_chain(&h, &buf);
    }
    std::hint::black_box(h);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Verification's hashing alone: links already encoded, each checked against the stored hash before it,
/// sixteen at a time.
fn in_memory_links(n: usize) -> f64 {
    let (ctx, detail) = sample(0);
    let detail = detail.to_string();
    let mut links = shutong_audit::chain::Links::with_capacity(n);
    let mut h = [0u8; 32];
    let mut buf = Vec::with_capacity(512);
    for i in 1..=n as i64 {
        let ev = shutong_audit::chain::EventRef {
            chain_seq: i,
            seq: i,
            at_ms: 1_764_000_000_000 + i,
            actor_user_id: ctx.actor_user_id,
            actor: &ctx.actor,
            department_id: Some(3),
            action: "data.lookup",
            target_kind: "data",
            target_id: "320000-101-000001",
            detail: &detail,
            request_id: ctx.request_id.as_deref(),
            ip: ctx.ip.as_deref(),
        };
        buf.clear();
        ev.encode(&mut buf);
        h = shutong_crypto::sm3_chain(&h, &buf);
        links.push(ev, h);
    }
    let zero = [0u8; 32];
    let mut out = Vec::with_capacity(n);
    let t = Instant::now();
    shutong_crypto::sm3_chain_many(n, |i| (if i == 0 { &zero } else { &links.items[i - 1].hash }, links.canonical(i)), &mut out);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let bad = out.iter().zip(&links.items).filter(|(a, l)| **a != l.hash).count();
    assert_eq!(bad, 0, "the multi-buffer links differ from the chain");
    rate
}

fn events<'a>(ctx: &'a AuditContext, detail: &serde_json::Value, from: usize, take: usize) -> Vec<StampedEvent<'a>> {
    (from..from + take)
        .map(|i| StampedEvent {
            at_ms: shutong_store::now_ms(),
            ctx,
            event: NewAuditEvent {
                action: shutong_audit::Action::DataLookup,
                target_kind: "data",
                target_id: format!("320000-101-{:06}", i % 1000),
                department_id: Some(3),
                detail: detail.clone(),
            },
        })
        .collect()
}

fn sample(i: usize) -> (AuditContext, serde_json::Value) {
    (
        AuditContext {
            actor_user_id: Some(7),
            actor: "dc.rs.system".into(),
            request_id: Some(format!("req-{i:012}")),
            ip: Some("10.32.1.17".into()),
        },
        serde_json::json!({"grant": 12, "purpose": "社会保险待遇资格认证", "items": ["公民身份号码", "姓名", "户籍地址"], "records": 1, "method": "lookup"}),
    )
}

async fn run_on(
    backend: &'static str,
    url: &str,
    n: usize,
    key: &shutong_crypto::NodeKey,
    dir: &std::path::Path,
) -> anyhow::Result<Figures> {
    let db = Db::connect(url, &DbOptions { slow_statement: None, ..Default::default() }).await?;
    db.migrate().await?;
    let (ctx, detail) = sample(0);

    // Append: the access log's path — events gathered from many requests, written in big transactions by
    // its batch writer, which chains them as it writes them.
    // As the access log does it: the next group is prepared (its details' JSON text) while the previous
    // one is written.
    let mut writer = shutong_audit::BatchWriter::new(db.clone());
    let t = Instant::now();
    let (groups_tx, mut groups) = tokio::sync::mpsc::channel::<shutong_audit::PreparedEvents>(1);
    let producer = {
        let (ctx, detail) = (ctx.clone(), detail.clone());
        tokio::spawn(async move {
            let mut made = 0;
            while made < n {
                let take = (n - made).min(shutong_audit::GROUP_COMMIT_EVENTS);
                let group = shutong_audit::PreparedEvents::new(&events(&ctx, &detail, made, take));
                if groups_tx.send(group).await.is_err() {
                    break;
                }
                made += take;
            }
        })
    };
    let mut write_time = 0.0;
    while let Some(group) = groups.recv().await {
        let tw = Instant::now();
        writer.write_prepared(&group).await?;
        write_time += tw.elapsed().as_secs_f64();
    }
    producer.await?;
    let append = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "  {backend}: appended {n} events, chained as written, at {append:.0}/s (write_prepared alone {:.0}/s)",
        n as f64 / write_time
    );

    // Seal: events written by state changes (in their own transactions, without the chain), chained
    // afterwards by the sealer. A tenth of N, written 1,000 per transaction.
    let m = (n / 10).max(1);
    let mut done = 0;
    while done < m {
        let take = (m - done).min(1_000);
        let stamped = events(&ctx, &detail, n + done, take);
        let mut tx = db.begin().await?;
        shutong_audit::record_stamped(&mut tx, &stamped).await?;
        tx.commit().await?;
        done += take;
    }
    let t = Instant::now();
    let report =
        shutong_audit::seal(&db, key, &SealOptions { batch: 10_000, checkpoint_every: 10_000, checkpoint_interval_ms: 60_000 }, true)
            .await?;
    let seal = report.sealed as f64 / t.elapsed().as_secs_f64();
    println!("  {backend}: sealed {} events written by state changes, {} checkpoints, at {seal:.0}/s", report.sealed, report.checkpoints);

    // Twice: the first read of freshly written rows also pays for the database's own first-read work
    // (PostgreSQL sets the rows' visibility hint bits and writes those pages again); an auditor's
    // verification of a trail written earlier is the second case. Both are printed; the table shows the
    // second.
    let t = Instant::now();
    let v = shutong_audit::verify_db(&db, vec![key.public_key_hex()]).await?;
    let verify_first = v.events as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(v.ok, "verification failed: {:?}", v.failure);
    let t = Instant::now();
    let v = shutong_audit::verify_db(&db, vec![key.public_key_hex()]).await?;
    let verify = v.events as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(v.ok, "verification failed: {:?}", v.failure);
    println!(
        "  {backend}: verified {} events and {} signatures at {verify_first:.0}/s right after writing them, {verify:.0}/s again",
        v.events, v.checkpoints
    );

    let file = dir.join(format!("export-{backend}.ndjson"));
    let (hex_key, pem) = (key.public_key_hex(), key.public_key_pem());
    let signer = shutong_audit::ExportSigner { node_name: "bench", public_key_hex: &hex_key, public_key_pem: &pem };
    let t = Instant::now();
    let (summary, _) = shutong_audit::export_to(&db, 1, report.head, &signer, std::fs::File::create(&file)?).await?;
    let export = summary.events as f64 / t.elapsed().as_secs_f64();
    let file_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    let t = Instant::now();
    let fv = shutong_audit::verify_file(std::io::BufReader::new(std::fs::File::open(&file)?), vec![hex_key.clone()])?;
    anyhow::ensure!(fv.ok, "file verification failed: {:?}", fv.failure);
    let verify_file = fv.events as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    println!("  {backend}: exported at {export:.0}/s ({file_mb:.0} MB), file verified at {verify_file:.0}/s");
    db.close().await;
    Ok(Figures { backend, append, seal, verify, export, verify_file, file_mb })
}
