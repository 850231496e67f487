//! The CLI's exact forms, which other tools script.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

fn shutong(args: &[&str], data_dir: &std::path::Path, stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shutong"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SHUTONG_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run shutong");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_single_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(shutong(&["check", "id", " 11010519491231002x "], d, None), (0, "11010519491231002X\n".into(), String::new()));
    assert_eq!(shutong(&["check", "id", "110105491231002"], d, None).1, "11010519491231002X\n");
    let (code, out, _) = shutong(&["check", "id", "110105194912310021"], d, None);
    assert_eq!(code, 1);
    assert!(out.contains("check character is '1', expected 'X'"), "{out}");
    assert_eq!(shutong(&["check", "uscc", "91110000600037341L"], d, None).0, 0);
    assert_eq!(shutong(&["check", "uscc", "91110000600037341M"], d, None).0, 1);
    assert_eq!(shutong(&["check", "org", "D2143569-X"], d, None), (0, "D2143569X\n".into(), String::new()));
    assert_eq!(shutong(&["check", "region", "610200"], d, None).0, 0);
    assert_eq!(shutong(&["check", "region", "619999"], d, None).0, 1);
    let (code, _, err) = shutong(&["check", "passport", "x"], d, None);
    assert_eq!(code, 2);
    assert!(err.contains("kind"));
}

#[test]
fn check_batch_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let input =
        "11010519491231002X\n11010519491231002x\n\n１１０１05194912310021\n1101051949123100\n11010519491231002XX\r\n110105194912310021\n";
    let (code, out, _) = shutong(&["check", "id", "-"], dir.path(), Some(input));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    assert_eq!(lines[0], "11010519491231002X\tvalid\t11010519491231002X");
    assert_eq!(lines[1], "11010519491231002x\tvalid\t11010519491231002X");
    assert_eq!(lines[2], "\tinvalid\tempty value");
    assert!(lines[3].contains("\tinvalid\tcharacter 1 '１' is not ASCII (full-width"), "{}", lines[3]);
    assert!(lines[4].ends_with("\tinvalid\tlength is 16, expected 18 (or 15 for a legacy number)"));
    assert!(lines[5].starts_with("11010519491231002XX\tinvalid\tlength is 19"));
    assert!(lines[6].contains("\tinvalid\tcheck character"));
    // Lines of 18 characters are found without a search: one after a line of another width, one holding a
    // line end in its first 18 bytes, and a last line without a line end are cut as any others.
    let input = "110105\n11010519491231002X\n1101051949\n1231002X\n11010519491231002x";
    let (code, out, _) = shutong(&["check", "id", "-"], dir.path(), Some(input));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("110105\tinvalid\t"), "{out}");
    assert_eq!(lines[1], "11010519491231002X\tvalid\t11010519491231002X");
    assert!(lines[2].starts_with("1101051949\tinvalid\tlength is 10"), "{out}");
    assert!(lines[3].starts_with("1231002X\tinvalid\t"), "{out}");
    assert_eq!(lines[4], "11010519491231002x\tvalid\t11010519491231002X");
    // Invalid UTF-8 is reported, not a crash.
    let mut child = Command::new(env!("CARGO_BIN_EXE_shutong"))
        .args(["check", "uscc", "-", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\xfe\n91110000600037341L\n").unwrap();
    let out = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned();
    assert!(out.contains("invalid\tnot UTF-8"), "{out}");
    assert!(out.contains("91110000600037341L\tvalid\t91110000600037341L"));
}

#[test]
fn calendar_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(shutong(&["calendar", "is-workday", "2026-10-01"], d, None).1, "false\n");
    assert_eq!(shutong(&["calendar", "is-workday", "2026-10-10"], d, None).1, "true\n");
    assert_eq!(shutong(&["calendar", "add-workdays", "2026-09-28", "10"], d, None).1, "2026-10-16\n");
    assert_eq!(shutong(&["calendar", "between", "2026-09-28", "2026-10-16"], d, None).1, "10\n");
    let (_, out, err) = shutong(&["calendar", "is-workday", "2027-01-01"], d, None);
    assert_eq!(out, "true\n");
    assert!(err.contains("not known"), "{err}");
    // Import 2027; the answer changes.
    let file = d.join("2027.json");
    std::fs::write(&file, r#"{"year":2027,"papers":[],"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}"#).unwrap();
    let (code, out, err) = shutong(&["calendar", "import", file.to_str().unwrap()], d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2027"));
    let (_, out, err) = shutong(&["calendar", "is-workday", "2027-01-01"], d, None);
    assert_eq!(out, "false\n");
    assert!(err.is_empty(), "{err}");
    // A broken file names the problem.
    std::fs::write(&file, "{\"year\": 2027").unwrap();
    let (code, _, err) = shutong(&["calendar", "import", file.to_str().unwrap()], d, None);
    assert_eq!(code, 2);
    assert!(err.contains("schedule"), "{err}");
    // The import is in the audit trail with the CLI operator as actor.
    let (_, out, _) = shutong(&["audit", "list", "--action", "calendar.import_year"], d, None);
    assert!(out.contains("\"actor\":\"cli:"), "{out}");
}

#[test]
fn admin_commands_and_print_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = shutong(&["migrate"], d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sqlite"));
    let uscc = "91110000600037341L";
    let (code, out, err) = shutong(
        &["admin", "department", "create", "--name", "命令行测试局", "--credit-code", uscc, "--region", "110000", "--level", "province"],
        d,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("命令行测试局"));
    let (code, _, err) = shutong(
        &["admin", "department", "create", "--name", "坏", "--credit-code", "123", "--region", "110000", "--level", "province"],
        d,
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("credit_code"), "{err}");
    let (code, _, err) = shutong(
        &[
            "admin",
            "user",
            "create",
            "--username",
            "cli.user",
            "--display-name",
            "命令行用户",
            "--department",
            uscc,
            "--role",
            "catalog_editor",
        ],
        d,
        Some("Cli-User-Pass-1\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = shutong(&["admin", "token", "create", "--username", "cli.user", "--name", "脚本"], d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("st_"));
    let (_, out, _) = shutong(&["admin", "user", "list"], d, None);
    assert!(out.contains("cli.user"));
    // A system account's SM2 key for signed requests: from a PEM file, removed; a person cannot have one.
    let (code, _, err) = shutong(
        &[
            "admin",
            "user",
            "create",
            "--username",
            "cli.system",
            "--display-name",
            "前置机",
            "--department",
            uscc,
            "--role",
            "system_account",
            "--system",
        ],
        d,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let key = shutong_crypto::NodeKey::generate();
    let pem = d.join("client.pem");
    std::fs::write(&pem, key.public_key_pem()).unwrap();
    let (code, out, err) =
        shutong(&["admin", "user", "set-key", "--username", "cli.system", "--public-key", pem.to_str().unwrap()], d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&key.public_key_hex()), "{out}");
    let (code, out, _) = shutong(&["admin", "user", "set-key", "--username", "cli.system", "--remove"], d, None);
    assert_eq!(code, 0);
    assert!(out.contains("\"public_key\": null"), "{out}");
    let (code, _, err) = shutong(&["admin", "user", "set-key", "--username", "cli.user", "--public-key", &key.public_key_hex()], d, None);
    assert_eq!(code, 2);
    assert!(err.contains("system accounts"), "{err}");
    let (_, out, _) = shutong(&["audit", "list"], d, None);
    assert!(out.contains("token.create") && out.contains("user.create") && out.contains("department.create"));
    assert!(out.contains("user.sm2_key_set") && out.contains("user.sm2_key_removed"), "{out}");
    // The CLI seals and verifies the trail it wrote (no server running).
    let (code, _, err) = shutong(&["audit", "seal", "--checkpoint"], d, None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = shutong(&["audit", "verify"], d, None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: positions 1.."), "{out}");

    let (code, out, _) = shutong(&["serve", "--print-config"], d, None);
    assert_eq!(code, 0);
    assert!(out.contains("listen = \"127.0.0.1:8080\""), "{out}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shutong"));
    let out = cmd.args(["serve", "--print-config", "--database-url", "postgres://u:supersecret@db/x"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("supersecret") && text.contains("REDACTED"), "{text}");
    assert_eq!(shutong(&["version"], d, None).1, format!("shutong {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn catalog_import_search_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let uscc = "91110000600037341L";
    assert_eq!(
        shutong(
            &[
                "admin",
                "department",
                "create",
                "--name",
                "命令行目录局",
                "--credit-code",
                uscc,
                "--region",
                "110000",
                "--level",
                "province"
            ],
            d,
            None
        )
        .0,
        0
    );
    let entries = serde_json::json!([{
        "classification_code": "101",
        "provider_code": "",
        "document": {
            "name": "命令行人口信息", "summary": "测试", "format": "数据库", "update_cycle": "每日", "sharing_type": "无条件共享",
            "sharing_methods": ["联机查询"],
            "items": [{"name": "公民身份号码", "data_type": "C", "length": 18, "sharing_type": "无条件共享", "is_base_item": true}]
        }
    }]);
    let file = d.join("catalog.json");
    std::fs::write(&file, serde_json::to_vec(&entries).unwrap()).unwrap();
    // Without a provider the file is refused with a report, and nothing is written.
    let (code, _, err) = shutong(&["catalog", "import", file.to_str().unwrap()], d, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("提供方代码"), "{err}");
    let (code, out, err) = shutong(&["catalog", "import", file.to_str().unwrap(), "--department", uscc, "--submit"], d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 1 resources"), "{out}");
    // Submitted, not yet published: search finds nothing; export has it.
    let (_, out, _) = shutong(&["catalog", "search", "人口"], d, None);
    assert!(out.is_empty(), "{out}");
    let export = d.join("out.csv");
    let (code, out, _) = shutong(&["catalog", "export", "--output", export.to_str().unwrap()], d, None);
    assert_eq!(code, 0);
    assert!(out.contains("exported 1"));
    assert!(std::fs::read_to_string(&export).unwrap().contains("命令行人口信息"));
    let (_, out, _) = shutong(&["catalog", "reindex"], d, None);
    assert!(out.contains("indexed 0 published"), "{out}");
}

/// `shutong request …` and `shutong grant …` on the demo database: the same services as the API, acting
/// `--as` a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_grants_from_the_command_line() {
    let app = common::spawn_demo_app(common::Backend::Sqlite).await;
    let d = app.db.data_dir();
    let (code, out, err) = shutong(&["request", "list", "--as", "sq.reviewer", "--overdue"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("婚姻登记信息") && out.contains("2026-10-16") && out.contains("OVERDUE"), "{out}");
    let resource: String = {
        use shutong_store::Row;
        sqlx::query("SELECT code FROM catalog_resources WHERE name = '流动人口居住登记信息'")
            .fetch_one(app.db().pool())
            .await
            .unwrap()
            .get(0)
    };
    let to = (shutong_store::Clock::system().today() + chrono::Days::new(90)).to_string();
    let apply = ["request", "create", "--as", "dc.rs.editor", "--resource", &resource, "--item", "公民身份号码", "--item", "姓名"];
    let rest = ["--purpose", "工作参考", "--basis", "CLI 测试", "--to", &to, "--method", "online_query"];
    let args: Vec<&str> = apply.iter().chain(rest.iter()).copied().collect();
    let (code, out, err) = shutong(&args, &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("request ") && out.contains("pending due "), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    // The operator does not answer for the provider; the provider's reviewer does, and a refusal needs a reason.
    let (code, _, err) = shutong(&["request", "approve", &id], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("only 示范省公安厅 answers"), "{err}");
    let (code, _, err) = shutong(&["request", "reject", &id, "--as", "ga.reviewer", "--reason", " "], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("reason: required"), "{err}");
    let (code, out, err) = shutong(
        &[
            "request",
            "approve",
            &id,
            "--as",
            "ga.reviewer",
            "--item",
            "公民身份号码",
            "--filter",
            "居住地址 prefix 东川市",
            "--quota",
            "100",
        ],
        &d,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved: grant") && out.contains("items 公民身份号码 "), "{out}");
    let (code, out, _) = shutong(&["grant", "list", "--as", "dc.rs.editor", "--side", "consumer"], &d, None);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.contains(&resource) && l.contains("active") && l.ends_with(&to)), "{out}");
    let grant = out.lines().find(|l| l.contains(&resource)).unwrap().split('\t').next().unwrap().to_string();
    let (code, out, err) = shutong(&["grant", "revoke", &grant, "--as", "ga.reviewer", "--reason", "测试撤销"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("grant {grant} revoked"));
    let (_, out, _) = shutong(&["audit", "list", "--action", "grant.revoke"], &d, None);
    assert!(out.contains("cli:") && out.contains(" as ga.reviewer"), "{out}");
    app.stop().await;
}

/// `shutong data …`: the provider loads CSV and XLSX batches, a consumer queries under its grant, an
/// export without a grant for downloads is refused, and the batches are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_the_command_line() {
    let app = common::spawn_demo_app(common::Backend::Sqlite).await;
    let d = app.db.data_dir();
    // 法人单位基本信息 (102/000001) holds the demo's entities; an incremental XLSX batch adds one and updates one.
    let entity = |i: u64| shutong_exchange::synth::entity(i, 2026);
    let (new, old) = (shutong_exchange::synth::entity(900_001, 1), entity(0));
    let path = d.join("entities.xlsx");
    {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in shutong_exchange::synth::ENTITY_ITEMS.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in [&new, &old].iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                sheet.write_string(r as u32 + 1, c as u16, if c == 1 && r == 1 { "更名后的公司" } else { v.as_str() }).unwrap();
            }
        }
        sheet.write_string(3, 0, "91320102MA1XXXXXX0").unwrap();
        sheet.write_string(3, 1, "无效代码公司").unwrap();
        book.save(&path).unwrap();
    }
    let p = path.to_str().unwrap();
    let (code, out, err) =
        shutong(&["data", "load", "102/000001", p, "--mode", "incremental", "--batch-id", "xlsx-1", "--as", "sj.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((report["rows_upserted"].as_i64(), report["rows_rejected"].as_i64()), (Some(2), Some(1)), "{out}");
    assert!(report["rejects"][0]["reason"].as_str().unwrap().contains("统一社会信用代码"), "{out}");
    // The consumer (东川市公安局 subscribes to it) looks one up and queries; the key is normalised.
    let (code, out, err) = shutong(&["data", "query", "102/000001", "--key", &old[0].to_lowercase(), "--as", "dc.ga.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("更名后的公司"), "{out}");
    let (code, out, _) =
        shutong(&["data", "query", "102/000001", "--where", &format!("单位名称={}", new[1]), "--as", "dc.ga.editor"], &d, None);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    // The subscription does not include bulk download.
    let (code, _, err) = shutong(&["data", "export", "102/000001", "--as", "dc.ga.editor"], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("bulk_download"), "{err}");
    // The provider exports its own data; a bad file is refused with its reason.
    let out_file = d.join("out.ndjson");
    let (code, _, err) =
        shutong(&["data", "export", "102/000001", "--format", "ndjson", "-o", out_file.to_str().unwrap(), "--as", "sj.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap().lines().count(), 500 + 1);
    std::fs::write(d.join("bad.csv"), "统一社会信用代码;单位名称\n").unwrap();
    let (code, _, err) = shutong(&["data", "load", "102/000001", d.join("bad.csv").to_str().unwrap(), "--as", "sj.editor"], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("delimiter"), "{err}");
    let (code, out, _) = shutong(&["data", "batches", "102/000001", "--as", "sj.editor"], &d, None);
    assert_eq!(code, 0);
    assert!(out.contains("rows=501") && out.contains("xlsx-1") && out.contains("demo-initial-load"), "{out}");

    // Files (文件挂接): 流动人口居住登记信息 bound as files; the provider uploads one and downloads it intact;
    // a department without a grant is refused.
    let (code, _, err) = shutong(&["data", "bind", "101/000002", "--kind", "files", "--as", "ga.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    let src = d.join("登记表.csv");
    std::fs::write(&src, "公民身份号码,姓名\n".repeat(1000)).unwrap();
    let (code, out, err) = shutong(&["data", "put-file", "101/000002", src.to_str().unwrap(), "--as", "ga.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = stored["id"].as_i64().unwrap().to_string();
    let (code, out, _) = shutong(&["data", "files", "101/000002"], &d, None);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("{id}\t{}\t", "公民身份号码,姓名\n".len() * 1000)) && out.trim_end().ends_with("登记表.csv"), "{out}");
    let copy = d.join("copy.csv");
    let (code, _, err) = shutong(&["data", "get-file", "101/000002", &id, "-o", copy.to_str().unwrap(), "--as", "ga.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&src).unwrap());
    let (code, _, err) = shutong(&["data", "get-file", "101/000002", &id, "-o", copy.to_str().unwrap(), "--as", "xl.admin"], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("no grant"), "{err}");
    let (code, _, err) =
        shutong(&["data", "put-file", "101/000002", src.to_str().unwrap(), "--name", "../x", "--as", "ga.editor"], &d, None);
    assert_eq!(code, 2);
    assert!(err.contains("name"), "{err}");
    app.stop().await;
}

/// `shutong quality …`: a rule added and refused, a check, the checks over time, the scores, the dimensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_from_the_command_line() {
    let app = common::spawn_demo_app(common::Backend::Sqlite).await;
    let d = app.db.data_dir();
    // 法人单位基本信息 (102/000001), the demo's entities: every 法定代表人 is a name of Han characters.
    let rule = r#"{"kind":"pattern","item":"法定代表人","pattern":"\\p{Han}{2,4}"}"#;
    let (code, out, err) = shutong(&["quality", "add-rule", "102/000001", rule, "--as", "sj.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("custom:"), "{out}");
    let (code, _, err) = shutong(
        &["quality", "add-rule", "102/000001", r#"{"kind":"pattern","item":"法定代表人","pattern":"("}"#, "--as", "sj.editor"],
        &d,
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("rule.pattern"), "{err}");
    let (code, _, err) = shutong(&["quality", "add-rule", "102/000001", rule, "--as", "ga.editor"], &d, None);
    assert_ne!(code, 0);
    assert!(err.contains("forbidden"), "{err}");
    let (code, out, _) = shutong(&["quality", "rules", "102/000001"], &d, None);
    assert_eq!(code, 0);
    assert!(out.contains("格式") && out.contains("标识码校验") && out.contains("在用"), "{out}");
    let (code, out, err) = shutong(&["quality", "check", "102/000001", "--as", "sj.editor"], &d, None);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["rows_checked"], 500, "{out}");
    let pattern = run["results"].as_array().unwrap().iter().find(|r| r["kind"] == "pattern").unwrap();
    assert_eq!(pattern["rows_failing"], 0, "{out}");
    let (code, out, _) = shutong(&["quality", "checks", "102/000001"], &d, None);
    assert_eq!(code, 0);
    assert!(out.lines().next().is_some_and(|l| l.contains("手动检查") && l.contains("\t500\t")), "{out}");
    let (code, out, _) = shutong(&["quality", "scores"], &d, None);
    assert_eq!(code, 0);
    assert!(out.contains("102/000001") && out.contains("示范省市场监督管理局"), "{out}");
    let (code, out, err) = shutong(&["quality", "dimensions", "--set", "时效性", "--weight", "40"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "timeliness\t时效性\t40"), "{out}");
    // 疑义校核: 示范省民政厅 (a grant from the demo) objects; the provider sees it in its queue and answers.
    let key = shutong_exchange::synth::person(30, 2026)[0].clone();
    let args = ["quality", "object", "101/000001", "--key", &key, "--item", "户籍地址", "--reason", "wrong", "--description", "地址有误"];
    let (code, out, err) = shutong(&[&args[..], &["--as", "mz.reviewer"]].concat(), &d, None);
    assert_eq!(code, 0, "{err}");
    let id = out.split('\t').next().unwrap().to_string();
    let (code, _, err) = shutong(&[&args[..], &["--item", "民族", "--as", "mz.reviewer"]].concat(), &d, None);
    assert_ne!(code, 0);
    assert!(err.contains("民族"), "names the item outside the grant: {err}");
    let (code, out, _) = shutong(&["quality", "objections", "--scope", "received", "--as", "ga.reviewer"], &d, None);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with(&format!("{id}\t101/000001\t待核实"))), "{out}");
    let (code, out, err) =
        shutong(&["quality", "answer", &id, "--answer", "confirmed", "--note", "核实无误", "--as", "ga.reviewer"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("已答复"), "{out}");
    let (code, out, _) = shutong(&["quality", "objection-figures", "--as", "sq.reviewer"], &d, None);
    assert_eq!(code, 0);
    assert!(out.contains("确认无误"), "{out}");
    // 一数一源: the demo's element 人口, reconciled again from the command line (3 differing keys).
    let (code, out, _) = shutong(&["quality", "elements"], &d, None);
    assert_eq!(code, 0);
    let element = out.lines().find(|l| l.contains("\t人口\t")).unwrap_or_else(|| panic!("{out}")).split('\t').next().unwrap().to_string();
    let (code, out, err) = shutong(&["quality", "reconcile", &element, "--as", "rs.admin"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("不一致 3"), "{out}");
    // 主题库: the demo's, refreshed from the command line (the record objected to above went to the change feed
    // again with its flag: the one key an incremental refresh reads).
    let (code, out, _) = shutong(&["quality", "themes"], &d, None);
    assert_eq!(code, 0);
    let theme =
        out.lines().find(|l| l.contains("社会保障主题库")).unwrap_or_else(|| panic!("{out}")).split('\t').next().unwrap().to_string();
    let (code, out, err) = shutong(&["quality", "theme-refresh", &theme, "--as", "rs.admin"], &d, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("incremental\t1 条"), "{out}");
    let (code, out, _) = shutong(&["quality", "base-templates"], &d, None);
    assert_eq!((code, out.lines().count()), (0, 6), "{out}");
    app.stop().await;
}
