//! The portal in a real headless browser (Debian's chromium, driven through chromedriver).

use crate::common::{ADMIN_PASSWORD, Backend, spawn_app, spawn_demo_app};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    /// Ends the browser chromedriver started (its child) as well, even when a test failed before closing
    /// its session; the browser's own helper processes exit with it.
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-9", "-P", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find(binary: &str, candidates: &[&str]) -> String {
    candidates.iter().find(|c| std::path::Path::new(c).exists()).map(|c| c.to_string()).unwrap_or_else(|| {
        panic!("{binary} is required for the browser tests: install Debian's chromium and chromium-driver (scripts/test does this)")
    })
}

async fn start_browser() -> (Driver, Client) {
    let chromedriver = find("chromedriver", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let chromium = find("chromium", &["/usr/bin/chromium", "/usr/lib/chromium/chromium"]);
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                     "--lang=zh-CN", format!("--user-data-dir={}", profile.display())]
        }),
    );
    let mut last_err = None;
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) => {
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("cannot reach chromedriver: {last_err:?}");
}

async fn text_of(c: &Client, css: &str) -> String {
    wait_text(c, css, |_| true).await
}

/// Polls until the element exists and its text satisfies `ok` (pages navigate after a click, so an element
/// found a moment ago may belong to the page being left).
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if ok(&t) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: no element with the expected text within 10 s (last seen: {last:?})");
}

async fn save_screenshot(c: &Client, name: &str) {
    if let Ok(png) = c.screenshot().await {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

async fn log_in(c: &Client, base: &str, username: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Id("username")).await.unwrap().send_keys(username).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_login_shows_the_dashboard() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;

    // A wrong password is refused with a message in Chinese.
    log_in(&c, &app.base, "admin", "Wrong-Password-1").await;
    wait_text(&c, ".flash.error", |t| t.contains("用户名或密码错误")).await;

    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    assert_eq!(text_of(&c, "[data-testid=fig-departments]").await, "1");
    assert_eq!(text_of(&c, "[data-testid=fig-users]").await, "1");
    let events = text_of(&c, "[data-testid=recent-events]").await;
    assert!(events.contains("登录") && events.contains("auth.login"), "{events}");
    save_screenshot(&c, "dashboard").await;

    // Register a department through the form; it appears in the list and in the figures.
    c.goto(&format!("{}/departments", app.base)).await.unwrap();
    c.find(Locator::Id("name")).await.unwrap().send_keys("浏览器测试局").await.unwrap();
    c.find(Locator::Id("credit_code")).await.unwrap().send_keys(&shutong::demo::demo_credit_code("320100", 901)).await.unwrap();
    c.find(Locator::Id("region_code")).await.unwrap().send_keys("320100").await.unwrap();
    c.find(Locator::Css("form.grid button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_text(&c, "main h1", |t| t == "浏览器测试局").await;
    assert!(text_of(&c, ".flash.ok").await.contains("已创建"));
    // A bad credit code shows the reason.
    c.goto(&format!("{}/departments", app.base)).await.unwrap();
    c.find(Locator::Id("name")).await.unwrap().send_keys("错误局").await.unwrap();
    c.find(Locator::Id("credit_code")).await.unwrap().send_keys("11320100MB0000000X").await.unwrap();
    c.find(Locator::Id("region_code")).await.unwrap().send_keys("320100").await.unwrap();
    c.find(Locator::Css("form.grid button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_text(&c, ".flash.error", |t| t.contains("统一社会信用代码") && t.contains("校验码")).await;

    c.goto(&format!("{}/", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=fig-departments]", |t| t == "2").await;

    // Log out: back to the login page; the dashboard needs a login again.
    c.find(Locator::Css("header .who button")).await.unwrap().click().await.unwrap();
    wait_text(&c, ".login-box h1", |t| t == "数通").await;
    c.goto(&format!("{}/", app.base)).await.unwrap();
    wait_text(&c, ".login-box h1", |t| t == "数通").await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_department_admin_sees_only_its_department() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    log_in(&c, &app.base, "ga.admin", shutong::demo::DEMO_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    assert!(text_of(&c, "[data-testid=current-user]").await.contains("示范省公安厅"));
    // No audit link for a department administrator.
    assert!(c.find(Locator::Css("a[href='/audit']")).await.is_err());
    c.goto(&format!("{}/users", app.base)).await.unwrap();
    let users = wait_text(&c, "[data-testid=users]", |t| t.contains("ga.editor")).await;
    assert!(users.contains("ga.editor") && users.contains("ga.reviewer"), "{users}");
    assert!(!users.contains("rs.admin") && !users.contains("auditor"), "other departments' users leak: {users}");
    save_screenshot(&c, "users-department-admin").await;
    c.close().await.unwrap();
    app.stop().await;
}

async fn switch_user(c: &Client, base: &str, username: &str) {
    c.delete_all_cookies().await.unwrap();
    log_in(c, base, username, shutong::demo::DEMO_PASSWORD).await;
    wait_text(c, "main h1", |t| t == "工作台").await;
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn fill(c: &Client, id: &str, text: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_search_and_the_review_workflow() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let base = app.base.clone();

    // Search 人口, open a result, see its items.
    switch_user(&c, &base, "ga.editor").await;
    c.goto(&format!("{base}/catalog")).await.unwrap();
    fill(&c, "q", "人口").await;
    click(&c, ".searchbar button").await;
    // 人口基本信息, 流动人口居住登记信息, and the demo's 社会保障主题库 (drawn from 人口基本信息).
    wait_text(&c, "[data-testid=total]", |t| t.contains("共 3 条")).await;
    save_screenshot(&c, "catalog-search").await;
    click(&c, "[data-testid=hit] h2 a").await;
    let items = wait_text(&c, "[data-testid=items]", |t| t.contains("公民身份号码")).await;
    assert!(items.contains("姓名"), "{items}");
    save_screenshot(&c, "catalog-resource").await;

    // The editor compiles a new entry and submits it.
    c.goto(&format!("{base}/catalog/new")).await.unwrap();
    fill(&c, "name", "浏览器测试人口信息").await;
    fill(&c, "summary", "第一稿摘要").await;
    fill(&c, "items", "公民身份号码|C|18|无条件共享|是|id_number\n姓名|C|50|无条件共享|是|name").await;
    click(&c, "[data-testid=save]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "草稿").await;
    let url = c.current_url().await.unwrap();
    let resource_path = url.path().to_string();
    click(&c, "[data-testid=submit]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "待审核").await;

    // The authority returns it with a reason.
    switch_user(&c, &base, "sq.reviewer").await;
    c.goto(&format!("{base}/catalog/review")).await.unwrap();
    let queue = wait_text(&c, "[data-testid=review-queue]", |t| t.contains("浏览器测试人口信息")).await;
    assert!(queue.contains("第 1 版"), "{queue}");
    c.goto(&format!("{base}{resource_path}")).await.unwrap();
    fill(&c, "return-reason", "摘要请写明数据范围").await;
    click(&c, "[data-testid=return]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "已退回").await;

    // The editor revises the draft and resubmits.
    switch_user(&c, &base, "ga.editor").await;
    c.goto(&format!("{base}{resource_path}")).await.unwrap();
    wait_text(&c, "[data-testid=return-reason]", |t| t.contains("摘要请写明数据范围")).await;
    c.goto(&format!("{base}{resource_path}/edit")).await.unwrap();
    fill(&c, "summary", "全省户籍人口，第一版").await;
    click(&c, "[data-testid=save]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("已保存")).await;
    click(&c, "[data-testid=submit]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "待审核").await;

    // The authority publishes.
    switch_user(&c, &base, "sq.reviewer").await;
    c.goto(&format!("{base}{resource_path}")).await.unwrap();
    click(&c, "[data-testid=approve]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "已发布").await;

    // A revision (version 2) is published in turn; version 1 stays readable.
    switch_user(&c, &base, "ga.editor").await;
    c.goto(&format!("{base}{resource_path}")).await.unwrap();
    click(&c, "[data-testid=revise]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("新版本")).await;
    c.goto(&format!("{base}{resource_path}/edit")).await.unwrap();
    fill(&c, "summary", "全省户籍人口，第二版").await;
    click(&c, "[data-testid=save]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("已保存")).await;
    click(&c, "[data-testid=submit]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "待审核").await;
    switch_user(&c, &base, "sq.reviewer").await;
    c.goto(&format!("{base}{resource_path}")).await.unwrap();
    click(&c, "[data-testid=approve]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "已发布").await;
    let versions = wait_text(&c, "[data-testid=versions]", |t| t.contains("第 2 版")).await;
    assert!(versions.contains("已被新版本替代"), "{versions}");
    c.goto(&format!("{base}{resource_path}?version=1")).await.unwrap();
    wait_text(&c, "[data-testid=status]", |t| t == "已被新版本替代").await;
    assert!(text_of(&c, "main").await.contains("全省户籍人口，第一版"));
    let history = text_of(&c, "[data-testid=history]").await;
    assert!(history.contains("审核退回") && history.contains("摘要请写明数据范围") && history.contains("修订"), "{history}");
    save_screenshot(&c, "catalog-history").await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_import_reports_every_issue_or_imports_everything() {
    use shutong_catalog::transfer::{self, CatalogEntry, TransferFormat};
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let base = app.base.clone();
    let ga = shutong::demo::demo_credit_code("320000", 101);
    let doc = |name: &str, sharing: &str| {
        serde_json::from_value::<shutong_catalog::ResourceDocument>(json!({
            "name": name, "summary": "导入测试", "format": "数据库", "update_cycle": "每月", "sharing_type": sharing,
            "sharing_methods": ["联机查询"],
            "items": [{"name": "案件编号", "data_type": "C", "length": 30, "sharing_type": "无条件共享"}]
        }))
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xlsx");
    let good = dir.path().join("good.xlsx");
    let entries = |second: &str| {
        vec![
            CatalogEntry {
                code: None,
                classification_code: "211".into(),
                provider_code: ga.clone(),
                document: doc("导入测试甲", "无条件共享"),
            },
            CatalogEntry {
                code: None, classification_code: "211".into(), provider_code: ga.clone(), document: doc("导入测试乙", second)
            },
        ]
    };
    std::fs::write(&bad, transfer::write(TransferFormat::Xlsx, &entries("不予共享")).unwrap()).unwrap();
    std::fs::write(&good, transfer::write(TransferFormat::Xlsx, &entries("无条件共享")).unwrap()).unwrap();

    switch_user(&c, &base, "ga.editor").await;
    c.goto(&format!("{base}/catalog/import")).await.unwrap();
    c.find(Locator::Id("file")).await.unwrap().send_keys(bad.to_str().unwrap()).await.unwrap();
    click(&c, "[data-testid=upload]").await;
    wait_text(&c, "[data-testid=rejected]", |t| t.contains("未导入任何内容")).await;
    let issues = text_of(&c, "[data-testid=issues]").await;
    assert!(issues.contains("信息资源") && issues.contains("R-CAT-3") && issues.contains("共享类型"), "{issues}");
    save_screenshot(&c, "catalog-import-report").await;

    c.goto(&format!("{base}/catalog/import")).await.unwrap();
    c.find(Locator::Id("file")).await.unwrap().send_keys(good.to_str().unwrap()).await.unwrap();
    click(&c, "[data-testid=upload]").await;
    wait_text(&c, "[data-testid=summary]", |t| t.contains("已导入 2 条资源")).await;
    assert_eq!(text_of(&c, "[data-testid=progress]").await, "2 / 2");
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_department_applies_and_the_provider_narrows_and_approves_in_the_portal() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let base = app.base.clone();
    let code: String = {
        use shutong_store::Row;
        sqlx::query("SELECT code FROM catalog_resources WHERE name = '流动人口居住登记信息'")
            .fetch_one(app.db().pool())
            .await
            .unwrap()
            .get(0)
    };
    // Monday 2026-09-28: the answer is due on the 10th working day, across 国庆 and 中秋, on 2026-10-16.
    app.clock().set_date(chrono::NaiveDate::from_ymd_opt(2026, 9, 28).unwrap());

    // 东川市人社局 applies from the resource page.
    switch_user(&c, &base, "dc.rs.editor").await;
    c.goto(&format!("{base}/catalog/{code}")).await.unwrap();
    click(&c, "[data-testid=apply]").await;
    let preview = wait_text(&c, "[data-testid=due-preview]", |t| t.contains("2026-10-16")).await;
    assert!(preview.contains("10 个工作日"), "{preview}");
    fill(&c, "basis", "《社会保险法》第八条：核验参保人员居住信息").await;
    save_screenshot(&c, "sharing-apply").await;
    click(&c, "[data-testid=apply-submit]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "待答复").await;
    assert_eq!(text_of(&c, "[data-testid=due-on]").await, "2026-10-16");
    let request_path = c.current_url().await.unwrap().path().to_string();
    let requested = text_of(&c, "[data-testid=requested-items]").await;
    assert!(requested.contains("姓名") && requested.contains("登记日期"), "{requested}");

    // Unanswered past the due date: the authority sees it marked overdue.
    app.clock().set_date(chrono::NaiveDate::from_ymd_opt(2026, 10, 19).unwrap());
    switch_user(&c, &base, "sq.reviewer").await;
    c.goto(&format!("{base}/requests?side=all&overdue=1")).await.unwrap();
    let list = wait_text(&c, "[data-testid=requests]", |t| t.contains("流动人口居住登记信息")).await;
    assert!(list.contains("已逾期") && list.contains("2026-10-16"), "{list}");
    // And the provider's figures count it.
    let mut overdue_providers = Vec::new();
    for row in c.find_all(Locator::Css("[data-testid=figures] tr.overdue")).await.unwrap() {
        overdue_providers.push(row.text().await.unwrap());
    }
    assert!(overdue_providers.iter().any(|r| r.starts_with("示范省公安厅")), "{overdue_providers:?}");
    save_screenshot(&c, "sharing-overdue").await;

    // The provider narrows the items to two and approves.
    switch_user(&c, &base, "ga.reviewer").await;
    c.goto(&format!("{base}/requests?side=owner")).await.unwrap();
    wait_text(&c, "[data-testid=requests]", |t| t.contains("东川市人力资源和社会保障局")).await;
    c.goto(&format!("{base}{request_path}")).await.unwrap();
    wait_text(&c, "[data-testid=overdue-banner]", |t| t.contains("2026-10-16")).await;
    click(&c, "[data-testid=approve-form] input[value='姓名']").await;
    click(&c, "[data-testid=approve-form] input[value='登记日期']").await;
    fill(&c, "note", "姓名、登记日期不予提供").await;
    save_screenshot(&c, "sharing-answer").await;
    click(&c, "[data-testid=approve]").await;
    wait_text(&c, "[data-testid=status]", |t| t == "已同意").await;
    assert_eq!(text_of(&c, "[data-testid=granted-items]").await, "公民身份号码、居住地址");

    // The consumer holds a grant with exactly those items.
    switch_user(&c, &base, "dc.rs.editor").await;
    c.goto(&format!("{base}/grants")).await.unwrap();
    let grants = wait_text(&c, "[data-testid=grants]", |t| t.contains("流动人口居住登记信息")).await;
    assert!(grants.contains("公民身份号码、居住地址") && !grants.contains("姓名"), "{grants}");
    save_screenshot(&c, "sharing-grants").await;
    c.goto(&format!("{base}/inbox")).await.unwrap();
    wait_text(&c, "[data-testid=notices]", |t| t.contains("已同意")).await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_tab_downloads_within_the_grant_and_shows_the_providers_batch_report() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let base = app.base.clone();

    // A city department without a grant: the dataset's facts, and why it cannot download.
    switch_user(&c, &base, "dc.rs.editor").await;
    c.goto(&format!("{base}/catalog/101/000001")).await.unwrap();
    click(&c, "[data-testid=dataset-tab]").await;
    wait_text(&c, "[data-testid=row-count]", |t| t == "2000").await;
    assert_eq!(text_of(&c, "[data-testid=binding-kind]").await, "数据集");
    let note = text_of(&c, "[data-testid=no-download]").await;
    assert!(note.contains("没有") && note.contains("授权"), "{note}");
    assert!(c.find(Locator::Css("[data-testid=downloads]")).await.is_err());

    // Granted two items for bulk download: the buttons appear and the CSV holds exactly those items, masked.
    let consumer = app.login("dc.rs.editor", shutong::demo::DEMO_PASSWORD).await;
    let provider = app.login("ga.reviewer", shutong::demo::DEMO_PASSWORD).await;
    let r = app
        .post(
            "/api/v1/requests",
            &consumer,
            json!({"resource_code": "101/000001", "items": ["公民身份号码", "姓名", "户籍地址"], "purpose": "data_verification",
                   "basis": "《社会保险法》第五十八条", "period_to": "2027-06-30", "access_methods": ["bulk_download"]}),
        )
        .await;
    let id = r.body["request"]["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/requests/{id}/approve"), &provider, json!({"items": ["公民身份号码", "户籍地址"]})).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    c.goto(&format!("{base}/catalog/101/000001/data")).await.unwrap();
    let downloads = wait_text(&c, "[data-testid=downloads]", |t| t.contains("CSV")).await;
    assert!(downloads.contains("Parquet") && downloads.contains("NDJSON"), "{downloads}");
    let mut yours = Vec::new();
    for row in c.find_all(Locator::Css("[data-testid=schema] tbody tr")).await.unwrap() {
        let t = row.text().await.unwrap();
        if t.ends_with('✓') {
            yours.push(t.split_whitespace().next().unwrap_or_default().to_string());
        }
    }
    assert_eq!(yours, ["公民身份号码", "户籍地址"]);
    let href = c.find(Locator::Css("[data-testid=downloads] a")).await.unwrap().attr("href").await.unwrap().unwrap();
    let csv = c
        .execute_async(
            "const [href, done] = arguments; fetch(href).then(r => r.text()).then(done, e => done('error ' + e));",
            vec![json!(href)],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap().to_string();
    let mut lines = csv.lines();
    let start: String = csv.chars().take(100).collect();
    assert_eq!(lines.next(), Some("公民身份号码,户籍地址,_校核中"), "{start}");
    assert_eq!(lines.clone().count(), 2000);
    assert!(lines.all(|l| l.contains('*')), "masked");
    save_screenshot(&c, "data-consumer").await;

    // The provider uploads an incremental batch with one bad row: the report names it; the list shows it.
    switch_user(&c, &base, "ga.editor").await;
    c.goto(&format!("{base}/catalog/101/000001/data")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("增量.csv");
    let p = shutong_exchange::synth::person(9_000_001, 5);
    std::fs::write(
        &file,
        format!("公民身份号码,姓名,性别,民族,出生日期,户籍地址\n{}\n110101199003071235,李四,男,汉族,19900307,南京市\n", p.join(",")),
    )
    .unwrap();
    c.find(Locator::Id("file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    click(&c, "#mode option[value=incremental]").await;
    click(&c, "[data-testid=load]").await;
    wait_text(&c, "[data-testid=batch-status]", |t| t == "已提交").await;
    assert_eq!(text_of(&c, "[data-testid=batch-upserted]").await, "1");
    assert_eq!(text_of(&c, "[data-testid=batch-rejected]").await, "1");
    let rejects = text_of(&c, "[data-testid=rejects]").await;
    assert!(rejects.contains("110101199003071235") && rejects.contains("公民身份号码"), "{rejects}");
    save_screenshot(&c, "data-batch-report").await;
    c.goto(&format!("{base}/catalog/101/000001/data")).await.unwrap();
    wait_text(&c, "[data-testid=row-count]", |t| t == "2001").await;
    let batches = text_of(&c, "[data-testid=batches]").await;
    assert!(batches.contains("增量") && batches.contains("ga.editor"), "{batches}");
    save_screenshot(&c, "data-provider").await;

    // Files (文件挂接): 流动人口居住登记信息 bound as files; the provider uploads one from the tab and sees it
    // listed with its digest.
    let editor = app.login("ga.editor", shutong::demo::DEMO_PASSWORD).await;
    let r = app.call(reqwest::Method::PUT, "/api/v1/data/101/000002/binding", Some(&editor), Some(json!({"kind": "files"}))).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    c.goto(&format!("{base}/catalog/101/000002/data")).await.unwrap();
    wait_text(&c, "[data-testid=binding-kind]", |t| t == "文件").await;
    let doc = dir.path().join("居住登记汇总.csv");
    std::fs::write(&doc, "公民身份号码,姓名\n").unwrap();
    c.find(Locator::Id("file")).await.unwrap().send_keys(doc.to_str().unwrap()).await.unwrap();
    click(&c, "[data-testid=upload-file]").await;
    let files = wait_text(&c, "[data-testid=files]", |t| t.contains("居住登记汇总.csv")).await;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest("公民身份号码,姓名\n".as_bytes()));
    assert!(files.contains(&digest), "{files}");
    assert!(files.contains("ga.editor"), "{files}");
    assert_eq!(text_of(&c, "[data-testid=file-count]").await, "1");
    save_screenshot(&c, "data-files").await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_filters_verifies_and_exports_the_trail() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    switch_user(&c, &app.base, "auditor").await;
    c.goto(&format!("{}/audit", app.base)).await.unwrap();
    let chain = wait_text(&c, "[data-testid=audit-chain]", |t| t.contains("链末位置")).await;
    assert!(chain.contains("最近签名检查点") && chain.contains("节点公钥"), "{chain}");

    // Filters: an action, and a period (China dates).
    fill(&c, "action", "department.create").await;
    click(&c, "form.grid button[type=submit]").await;
    let rows = wait_text(&c, "[data-testid=audit-events]", |t| t.contains("登记部门")).await;
    assert!(!rows.contains("auth.login"), "{rows}");
    let today = shutong_store::china_date(shutong_store::now_ms()).to_string();
    c.goto(&format!("{}/audit?action=department.create&from={today}&to={today}", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=audit-events]", |t| t.contains("登记部门")).await;
    c.goto(&format!("{}/audit?action=department.create&from=2020-01-01&to=2020-01-02", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=audit-events]", |t| !t.contains("登记部门")).await;
    c.goto(&format!("{}/audit?from=2020-13-01", app.base)).await.unwrap();
    wait_text(&c, ".flash.error", |t| t.contains("起始日期")).await;

    // Readable records: the detail as labelled fields (the stored record behind a toggle, closed), the
    // target a link to its page, which the auditor follows.
    c.goto(&format!("{}/audit?action=department.create", app.base)).await.unwrap();
    let detail = wait_text(&c, "[data-testid=event-detail]", |t| t.contains("统一社会信用代码")).await;
    assert!(detail.contains("行政区划代码") && !detail.contains("credit_code"), "labelled, raw JSON hidden: {detail}");
    let raw = c.find(Locator::Css("[data-testid=event-detail] details.raw pre")).await.unwrap();
    assert!(!raw.is_displayed().await.unwrap());
    click(&c, "[data-testid=event-detail] details.raw summary").await;
    assert!(raw.text().await.unwrap().contains("\"credit_code\""), "the stored record behind the toggle");
    save_screenshot(&c, "audit-fields").await;
    let target = text_of(&c, "[data-testid=event-target]").await;
    assert!(target.starts_with("部门"), "{target}");
    click(&c, "[data-testid=event-target]").await;
    wait_text(&c, "main h1", |t| !t.is_empty() && t != "审计日志").await;
    assert!(c.current_url().await.unwrap().path().starts_with("/departments/"));
    c.goto(&format!("{}/audit", app.base)).await.unwrap();

    // A data subject: one person of the demo population is looked up; the auditor finds that access by
    // the ID number, and the trail shows the number only masked.
    let id = shutong_exchange::synth::person(0, 2026)[0].clone();
    let editor = app.login("ga.editor", shutong::demo::DEMO_PASSWORD).await;
    let r = app.call(reqwest::Method::GET, &format!("/api/v1/data/101/000001/records/{id}"), Some(&editor), None).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let admin = app.admin_token().await;
    for _ in 0..50 {
        let found = app.call(reqwest::Method::GET, &format!("/api/v1/audit/events?subject={id}"), Some(&admin), None).await;
        if found.body["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fill(&c, "subject", &id).await;
    click(&c, "form.grid button[type=submit]").await;
    let rows = wait_text(&c, "[data-testid=audit-events]", |t| t.contains("data.lookup")).await;
    assert!(!rows.contains(&id) && !rows.contains("登记部门"), "{rows}");
    assert!(rows.contains(&format!("{}*", &id[..6])), "the masked number: {rows}");
    c.goto(&format!("{}/audit?subject=1%25", app.base)).await.unwrap();
    wait_text(&c, ".flash.error", |t| t.contains("数据主体")).await;

    // Verify: the chain holds.
    c.goto(&format!("{}/audit", app.base)).await.unwrap();
    click(&c, "[data-testid=audit-verify]").await;
    let ok = wait_text(&c, "[data-testid=audit-verify-result]", |t| t.contains("核验通过")).await;
    assert!(ok.contains("签名检查点有效"), "{ok}");
    let href = c.find(Locator::Css("[data-testid=audit-export]")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("/api/v1/audit/export?from=1&to="), "{href}");
    save_screenshot(&c, "audit-verified").await;

    // Someone edits a sealed event in the database: the portal's verification names it.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE chain_seq = 2").execute(&mut conn).await.unwrap();
    click(&c, "[data-testid=audit-verify]").await;
    let failed = wait_text(&c, "[data-testid=audit-verify-result]", |t| t.contains("核验失败")).await;
    assert!(failed.contains("链位置 2"), "{failed}");
    save_screenshot(&c, "audit-tampered").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The groups of the bar this user sees, in order.
async fn bar_groups(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css("[data-testid^=nav-group-]")).await.unwrap() {
        out.push(e.attr("data-testid").await.unwrap().unwrap_or_default().trim_start_matches("nav-group-").to_string());
    }
    out
}

/// Whether the page scrolls sideways, and every resource it loaded came from the server itself.
async fn fits_and_stays_home(c: &Client, base: &str, page: &str) {
    let r = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
             performance.getEntriesByType('resource').map(e => e.name)]",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, width) = (r[0].as_i64().unwrap(), r[1].as_i64().unwrap());
    assert!(scroll <= width, "{page}: the page is {scroll} px wide in a {width} px window");
    for url in r[2].as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(base), "{page} loaded {url} from another host");
    }
}

/// The bar groups pages by task and shows a group only with a page the user's roles allow: the platform
/// administrator sees 目录, 共享, 审计 and 管理; a department's catalog editor no 审计 and no user list. A
/// group opens as a menu, its page shows the trail back to the home page, and the pages fit a 768 px
/// window without loading anything from another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bar_groups_pages_by_task_and_shows_only_what_roles_allow() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    assert_eq!(bar_groups(&c).await, ["catalog", "sharing", "exchange", "quality", "systems", "audit", "admin"]);
    // A group is a menu: closed until opened, then its pages are links.
    assert!(!c.find(Locator::Css("[data-testid=nav-group-sharing] a[href='/grants']")).await.unwrap().is_displayed().await.unwrap());
    click(&c, "[data-testid=nav-group-sharing] summary").await;
    click(&c, "[data-testid=nav-group-sharing] a[href='/requests']").await;
    wait_text(&c, "main h1", |t| t.contains("共享申请")).await;
    let crumbs = text_of(&c, "[data-testid=crumbs]").await;
    assert!(crumbs.contains("工作台") && crumbs.contains("共享") && crumbs.contains("共享申请"), "{crumbs}");
    let group = c.find(Locator::Css("[data-testid=nav-group-sharing]")).await.unwrap();
    assert!(group.attr("class").await.unwrap().unwrap_or_default().contains("active"), "the page's group is marked");
    save_screenshot(&c, "nav-1366").await;

    // A department's catalog editor: no audit group, no user list.
    switch_user(&c, &app.base, "ga.editor").await;
    assert_eq!(bar_groups(&c).await, ["catalog", "sharing", "exchange", "quality", "systems", "admin"]);
    assert!(c.find(Locator::Css("a[href='/audit']")).await.is_err());
    assert!(c.find(Locator::Css("[data-testid=nav-group-systems] a[href='/systems']")).await.is_ok(), "a department keeps its inventory");
    assert!(c.find(Locator::Css("a[href='/projects/review']")).await.is_err(), "the funding queues are the reviewers'");
    assert!(c.find(Locator::Css("[data-testid=nav-group-admin] a[href='/users']")).await.is_err());
    assert!(c.find(Locator::Css("[data-testid=nav-group-catalog] a[href='/catalog/import']")).await.is_ok(), "editors import");
    assert!(c.find(Locator::Css("[data-testid=nav-group-catalog] a[href='/catalog/review']")).await.is_err(), "only the authority reviews");
    switch_user(&c, &app.base, "czt.reviewer").await;
    assert!(c.find(Locator::Css("[data-testid=nav-group-systems] a[href='/projects/review']")).await.is_ok(), "finance works its queue");

    // 768 px: nothing scrolls sideways; everything comes from the server itself.
    switch_user(&c, &app.base, "sq.reviewer").await;
    c.set_window_size(768, 900).await.unwrap();
    for page in [
        "/",
        "/catalog",
        "/catalog/review",
        "/catalog/stats",
        "/requests",
        "/grants",
        "/inbox",
        "/departments",
        "/catalog/101/000001",
        "/systems",
        "/systems/1",
        "/systems/zombies",
        "/projects",
        "/projects/review",
        "/projects/1",
        "/nodes",
        "/nodes/1",
        "/quality",
        "/catalog/101/000001/quality",
    ] {
        c.goto(&format!("{}{page}", app.base)).await.unwrap();
        wait_text(&c, "main h1", |t| !t.is_empty()).await;
        fits_and_stays_home(&c, &app.base, page).await;
    }
    click(&c, "[data-testid=nav-group-catalog] summary").await;
    save_screenshot(&c, "nav-768").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The values a chart draws (its bars' or columns' `data-value`).
async fn chart_values(c: &Client, testid: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(&format!("[data-testid={testid}] svg rect[data-value]"))).await.unwrap() {
        out.push(e.attr("data-value").await.unwrap().unwrap_or_default().parse().unwrap());
    }
    out
}

/// Charts drawn on the server from the services' figures, with the demo's data: the dashboard's requests
/// by state, data accesses per day by method and audit events per day; the catalog statistics by class,
/// whose bars link to the catalog filtered by that class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_draw_the_demos_figures() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    // Two lookups today, so that the accesses chart has something to draw.
    let editor = app.login("ga.editor", shutong::demo::DEMO_PASSWORD).await;
    for i in 0..2 {
        let id = shutong_exchange::synth::person(i, 2026)[0].clone();
        let r = app.call(reqwest::Method::GET, &format!("/api/v1/data/101/000001/records/{id}"), Some(&editor), None).await;
        assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    }
    let (_driver, c) = start_browser().await;
    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    let requests = chart_values(&c, "chart-requests").await;
    assert_eq!(requests.len(), 7, "one bar per state");
    assert!(requests.iter().sum::<i64>() > 0, "the demo's requests: {requests:?}");
    let audit = chart_values(&c, "chart-audit").await;
    assert!(!audit.is_empty() && audit.iter().all(|v| *v > 0), "{audit:?}");
    let mut accesses = Vec::new();
    for _ in 0..50 {
        accesses = chart_values(&c, "chart-accesses").await;
        if accesses.iter().sum::<i64>() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.refresh().await.unwrap();
    }
    assert!(accesses.iter().sum::<i64>() >= 2, "the two lookups: {accesses:?}");
    let legend = text_of(&c, "[data-testid=chart-accesses] ul.legend").await;
    assert!(legend.contains("联机查询"), "{legend}");
    save_screenshot(&c, "dashboard-charts").await;

    c.goto(&format!("{}/catalog/stats", app.base)).await.unwrap();
    let by_class = chart_values(&c, "chart-by-class").await;
    let published: i64 = text_of(&c, "[data-testid=published]").await.parse().unwrap();
    assert!(by_class.iter().copied().max().unwrap_or(0) > 0 && by_class.iter().all(|v| *v <= published), "{by_class:?}");
    assert!(!chart_values(&c, "chart-by-type").await.is_empty());
    save_screenshot(&c, "catalog-stats-charts").await;
    click(&c, "[data-testid=chart-by-class] svg a").await;
    wait_text(&c, "main h1", |t| t.contains("目录")).await;
    assert!(c.current_url().await.unwrap().query().unwrap_or("").starts_with("class="));
    c.close().await.unwrap();
    app.stop().await;
}

/// axe-core's source: `AXE_CORE_JS` (scripts/test installs axe-core from the npm registry into target/axe
/// and sets it), else that place in the workspace.
fn axe_source() -> String {
    let path = std::env::var("AXE_CORE_JS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/axe/node_modules/axe-core/axe.min.js"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("axe-core is required for the accessibility check ({}: {e}): run scripts/test, which installs it", path.display())
    })
}

/// The serious and critical violations axe-core finds on the page shown, as `rule: elements`.
async fn axe_violations(c: &Client, axe: &str) -> Vec<String> {
    c.execute(&format!("{axe}\nreturn true;"), vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(' | '))));",
            vec![],
        )
        .await
        .unwrap();
    found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

/// axe-core over the main pages (22), as the platform administrator and as a department's editor: no serious or
/// critical violation (labels, contrast, names of links and buttons, language, landmarks …).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_pages_pass_axe_core() {
    let axe = axe_source();
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let mut found = Vec::new();
    c.goto(&format!("{}/login", app.base)).await.unwrap();
    wait_text(&c, ".login-box h1", |t| t == "数通").await;
    found.extend(axe_violations(&c, &axe).await.into_iter().map(|v| format!("/login: {v}")));
    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    let admin_pages = [
        "/",
        "/catalog",
        "/catalog/101/000001",
        "/catalog/review",
        "/catalog/stats",
        "/catalog/import",
        "/requests",
        "/requests/1",
        "/grants",
        "/inbox",
        "/departments",
        "/users",
        "/audit",
        "/account",
        "/search?q=%E5%85%AC%E5%AE%89",
        "/nodes",
        "/nodes/1",
        "/quality",
        "/quality/objections",
        "/quality/objections/1",
        "/quality/consistency",
        "/quality/consistency/1",
        "/quality/themes",
        "/quality/themes/1",
    ];
    for page in admin_pages {
        c.goto(&format!("{}{page}", app.base)).await.unwrap();
        wait_text(&c, "main h1", |t| !t.is_empty()).await;
        found.extend(axe_violations(&c, &axe).await.into_iter().map(|v| format!("{page}: {v}")));
    }
    switch_user(&c, &app.base, "dc.rs.editor").await;
    let rs = app.get("/api/v1/me", &app.login("dc.rs.editor", shutong::demo::DEMO_PASSWORD).await).await.body["department"]["id"].clone();
    let report_print = format!("/reports/{rs}/1/print");
    for page in [
        "/",
        "/catalog/new",
        "/requests/new?resource=101/000001",
        "/catalog/101/000001/data",
        "/catalog/101/000001/quality",
        "/catalog/101/000001/data/record?key=110101199001011237",
        "/systems",
        "/systems/1",
        "/systems/zombies",
        "/reports",
        report_print.as_str(),
        "/projects",
        "/projects/1",
    ] {
        c.goto(&format!("{}{page}", app.base)).await.unwrap();
        wait_text(&c, "main h1", |t| !t.is_empty()).await;
        found.extend(axe_violations(&c, &axe).await.into_iter().map(|v| format!("{page}: {v}")));
    }
    assert!(found.is_empty(), "axe-core: {} serious or critical violations:\n{}", found.len(), found.join("\n"));
    c.close().await.unwrap();
    app.stop().await;
}

/// The bar's search box: a department by name, a request by number and by its resource's code, and the
/// resources the catalog's index finds; a result followed to its page. A department's editor finds only
/// the requests it may see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_finds_resources_requests_and_departments() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    wait_text(&c, "main h1", |t| t == "工作台").await;
    c.find(Locator::Id("global-q")).await.unwrap().send_keys("公安\u{E007}").await.unwrap();
    let departments = wait_text(&c, "[data-testid=found-departments]", |t| t.contains("示范省公安厅")).await;
    assert!(departments.contains("东川市公安局"), "{departments}");
    assert!(c.current_url().await.unwrap().query().unwrap_or("").starts_with("q="), "a search is a URL");
    c.goto(&format!("{}/search?q=%E4%BA%BA%E5%8F%A3", app.base)).await.unwrap(); // 人口
    wait_text(&c, "[data-testid=found-resources]", |t| t.contains("人口基本信息")).await;
    c.goto(&format!("{}/search?q=101%2F000001", app.base)).await.unwrap();
    let requests = wait_text(&c, "[data-testid=found-requests]", |t| t.contains("人口基本信息")).await;
    assert!(requests.contains("共享申请"), "{requests}");
    c.goto(&format!("{}/search?q=1", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=found-requests]", |t| t.contains("共享申请 1 ")).await;
    click(&c, "[data-testid=found-requests] a[href='/requests/1']").await;
    wait_text(&c, "main h1", |t| t.contains("共享申请")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/requests/1");

    // A request between other departments is not found by a department's editor.
    let all = app.get("/api/v1/requests", &app.admin_token().await).await.body;
    let unrelated = all["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["consumer_name"] != "示范省市场监督管理局" && r["provider_name"] != "示范省市场监督管理局")
        .expect("a demo request between other departments")["id"]
        .as_i64()
        .unwrap();
    switch_user(&c, &app.base, "sj.editor").await;
    c.goto(&format!("{}/search?q={unrelated}", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=found-requests]", |t| t.contains("（0）")).await;
    c.close().await.unwrap();
    app.stop().await;
}

/// Each role's home page, from the demo: the provider's requests to answer with their due dates, the
/// consumer's own requests, every overdue request for the sharing authority, the audit chain for the auditor;
/// the charts on every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_has_its_home_page() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    switch_user(&c, &app.base, "ga.reviewer").await;
    let waiting = text_of(&c, "[data-testid=home-waiting]").await;
    assert!(waiting.contains("人口基本信息") && waiting.contains("剩"), "the provider's requests to answer, with due dates: {waiting}");
    assert!(c.find(Locator::Css("[data-testid=home-chain]")).await.is_err(), "no audit chain for a provider");
    assert!(c.find(Locator::Css("[data-testid=home-overdue]")).await.is_err(), "no province-wide list for a provider");
    let fresh = text_of(&c, "[data-testid=home-datasets]").await;
    assert!(fresh.contains("人口基本信息") && fresh.contains("每日") && fresh.contains("按时更新"), "its datasets' freshness: {fresh}");
    assert!(!fresh.contains("法人单位基本信息"), "another provider's dataset: {fresh}");
    save_screenshot(&c, "home-provider").await;

    switch_user(&c, &app.base, "dc.rs.editor").await;
    let mine = text_of(&c, "[data-testid=home-mine]").await;
    assert!(mine.contains("人口基本信息"), "the consumer's requests: {mine}");
    click(&c, "[data-testid=home-mine] a").await;
    wait_text(&c, "main h1", |t| t.contains("共享申请")).await;

    switch_user(&c, &app.base, "sq.reviewer").await;
    let overdue = text_of(&c, "[data-testid=home-overdue]").await;
    assert!(overdue.contains("已逾期"), "every overdue request for the authority: {overdue}");
    assert!(!chart_values(&c, "chart-requests").await.is_empty());
    let months = chart_values(&c, "chart-on-time").await;
    assert!(months.iter().sum::<i64>() > 0, "the on-time record month by month: {months:?}");
    assert!(text_of(&c, "[data-testid=chart-on-time] table").await.contains("按时率"));
    let datasets = text_of(&c, "[data-testid=home-datasets-summary]").await;
    assert!(datasets.contains("共 5 个数据集"), "the authority follows every dataset: {datasets}");
    save_screenshot(&c, "home-authority").await;

    switch_user(&c, &app.base, "auditor").await;
    let chain = text_of(&c, "[data-testid=home-chain]").await;
    assert!(chain.contains("链末位置") && chain.contains("签名检查点"), "{chain}");
    assert!(!chart_values(&c, "chart-audit").await.is_empty());
    assert!(text_of(&c, "[data-testid=home-last-verify]").await.contains("尚无核验记录"));
    c.goto(&format!("{}/audit", app.base)).await.unwrap();
    click(&c, "[data-testid=audit-verify]").await;
    wait_text(&c, "[data-testid=audit-verify-result]", |t| t.contains("核验通过")).await;
    c.goto(&app.base).await.unwrap();
    let last = text_of(&c, "[data-testid=home-last-verify]").await;
    assert!(last.contains("auditor") && last.contains("通过"), "the verification on record: {last}");
    save_screenshot(&c, "home-auditor").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// A filtered list is a URL: reloaded, it shows the same rows. A request prints as a document of its own,
/// and an error names its field and is shown beside it, in Chinese.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_stay_in_the_url_documents_print_and_errors_sit_by_their_field() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    switch_user(&c, &app.base, "sq.reviewer").await;
    c.goto(&format!("{}/requests?side=all", app.base)).await.unwrap();
    let all = c.find_all(Locator::Css("[data-testid=requests] tbody tr")).await.unwrap().len();
    c.find(Locator::Css("#request-status option[value=pending]")).await.unwrap().click().await.unwrap();
    click(&c, "[data-testid=request-filter] button").await;
    // The filtered page (its URL changes once it is there, not when the button is pressed).
    let mut url = String::new();
    for _ in 0..100 {
        url = c.current_url().await.unwrap().to_string();
        if url.contains("status=pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_text(&c, "main h1", |t| t.contains("共享申请")).await;
    assert!(url.contains("status=pending") && url.contains("side=all"), "{url}");
    let pending = text_of(&c, "[data-testid=requests] tbody").await;
    let rows = c.find_all(Locator::Css("[data-testid=requests] tbody tr")).await.unwrap().len();
    assert!(rows > 0 && rows < all, "{rows} of {all}");
    assert_eq!(pending.matches("待答复").count(), rows, "{pending}");
    // The URL, opened afresh (a bookmark, a link sent to a colleague): the same rows, the filter shown.
    c.goto(&app.base).await.unwrap();
    c.goto(&url).await.unwrap();
    assert_eq!(text_of(&c, "[data-testid=requests] tbody").await, pending);
    let chosen = c.find(Locator::Css("#request-status")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("pending"));

    // The printed 申请表: the request, its handling and answer, places for seals; no navigation or form.
    click(&c, "[data-testid=requests] tbody tr a").await;
    click(&c, "[data-testid=print]").await;
    let doc = wait_text(&c, "[data-testid=doc-request]", |t| t.contains("申请部门")).await;
    assert!(doc.contains("提供部门") && doc.contains("使用用途"), "{doc}");
    assert!(text_of(&c, "main").await.contains("盖章"));
    assert!(c.find(Locator::Css("[data-testid=nav]")).await.is_err() && c.find(Locator::Css("main form")).await.is_err());
    save_screenshot(&c, "print-request").await;
    c.goto(&format!("{}/grants?side=all", app.base)).await.unwrap();
    click(&c, "[data-testid=grants] tbody tr a").await;
    click(&c, "[data-testid=print]").await;
    let grant = wait_text(&c, "[data-testid=doc-grant]", |t| t.contains("使用部门")).await;
    assert!(grant.contains("有效期") && grant.contains("信息项"), "{grant}");

    // A refused value: the message, in Chinese, beside the field it names; the field marked and focused.
    c.delete_all_cookies().await.unwrap();
    log_in(&c, &app.base, "admin", ADMIN_PASSWORD).await;
    c.goto(&format!("{}/departments", app.base)).await.unwrap();
    fill(&c, "name", "示范省测试局").await;
    fill(&c, "credit_code", "91320000ABCDEFGHIJ").await;
    fill(&c, "region_code", "320000").await;
    click(&c, "form[action='/departments'] button[type=submit]").await;
    let note = wait_text(&c, "[data-testid=field-error]", |t| !t.is_empty()).await;
    assert!(note.contains("统一社会信用代码"), "{note}");
    let english = note.split(|ch: char| !ch.is_ascii_lowercase()).any(|w| w.len() >= 3);
    assert!(!english && note.contains("不允许使用"), "in Chinese: {note}");
    let field = c.find(Locator::Id("credit_code")).await.unwrap();
    assert_eq!(field.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(field.attr("aria-describedby").await.unwrap().as_deref(), Some("field-error"));
    let next = c.execute("return document.getElementById('credit_code').nextElementSibling.id", vec![]).await.unwrap();
    assert_eq!(next, serde_json::json!("field-error"), "beside the field");
    save_screenshot(&c, "field-error").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The funding gates in the portal (办法 第二十二条): each blocks the next stage with its reasons, then opens
/// as its fact changes — the project catalog compiled, merged, the system connected — on both backends.
async fn gates_open_as_facts_change_in_the_portal(backend: Backend) {
    let app = spawn_demo_app(backend).await;
    let demo = shutong::demo::DEMO_PASSWORD;
    let keeper = app.login("dc.rs.editor", demo).await;
    let authority = app.login("sq.reviewer", demo).await;
    let queue = app.get("/api/v1/projects?queue=approval", &app.login("fgw.reviewer", demo).await).await.body;
    let project = queue["items"].as_array().unwrap().iter().find(|p| p["document"]["name"] == "东川市智慧人社一期工程").unwrap().clone();
    let (id, catalog_project) = (project["id"].as_i64().unwrap(), project["catalog_project_id"].as_i64().unwrap());
    let system = project["document"]["systems"][0].as_i64().unwrap();
    let page = format!("{}/projects/{id}", app.base);
    let (_driver, c) = start_browser().await;
    let advance = |document: &'static str| {
        let c = c.clone();
        async move {
            fill(&c, "document", document).await;
            click(&c, "[data-testid=advance]").await;
        }
    };

    // 立项审批: the approver finds the project in its queue; the gate refuses with its reason.
    switch_user(&c, &app.base, "fgw.reviewer").await;
    c.goto(&format!("{}/projects/review?queue=approval", app.base)).await.unwrap();
    wait_text(&c, "[data-testid=projects]", |t| t.contains("东川市智慧人社一期工程")).await;
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-approval]", |t| t.contains("未通过") && t.contains("项目目录尚未编制")).await;
    advance("东发改审批〔2026〕60号").await;
    wait_text(&c, "[data-testid=flash-error]", |t| t.contains("立项审批关口未通过")).await;
    assert_eq!(text_of(&c, "[data-testid=stage]").await, "立项申请");
    // The department compiles its project catalog: the gate opens.
    let entry = json!({"classification_code": "202", "project_id": catalog_project, "document": {
        "name": "智慧人社业务办理信息", "summary": "智慧人社一期工程产生的业务办理信息", "format": "database",
        "items": [{"name": "业务流水号", "data_type": "C", "length": 32, "required": true, "sharing_type": "unconditional"}],
        "sharing_type": "unconditional", "permitted_usage": "业务协同", "sharing_methods": ["online_query"], "update_cycle": "daily"}});
    app.post_ok("/api/v1/catalog/resources", &keeper, entry).await;
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-approval]", |t| t.contains("通过") && !t.contains("未通过")).await;
    advance("东发改审批〔2026〕60号").await;
    wait_text(&c, "[data-testid=stage]", |t| t == "审批").await;
    app.post_ok(
        &format!("/api/v1/projects/{id}/advance"),
        &keeper,
        json!({"stage": "construction", "entered_on": app.clock().today(), "document": "合同"}),
    )
    .await;

    // 项目验收: refused until the project catalog is merged into the platform's.
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-acceptance]", |t| t.contains("未通过")).await;
    advance("东发改验收〔2026〕11号").await;
    wait_text(&c, "[data-testid=flash-error]", |t| t.contains("项目验收关口未通过")).await;
    app.post_ok(&format!("/api/v1/catalog/projects/{catalog_project}/accept"), &authority, json!({})).await;
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-acceptance]", |t| !t.contains("未通过")).await;
    advance("东发改验收〔2026〕11号").await;
    wait_text(&c, "[data-testid=stage]", |t| t == "验收").await;

    // 运维经费: the finance department sees the system is not connected; once its data is on the platform
    // (it produces a resource published with its files), the gate opens.
    switch_user(&c, &app.base, "czt.reviewer").await;
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-om_funding]", |t| t.contains("未通过") && t.contains("未接入共享平台")).await;
    advance("东财预〔2026〕130号").await;
    wait_text(&c, "[data-testid=flash-error]", |t| t.contains("运维经费关口未通过")).await;
    let mut doc = app.get(&format!("/api/v1/systems/{system}"), &keeper).await.body["document"].clone();
    let subsidy =
        app.get("/api/v1/catalog/search?q=%E5%9F%B9%E8%AE%AD%E8%A1%A5%E8%B4%B4&limit=5", &keeper).await.body["hits"][0]["code"].clone();
    doc["produces"] = json!([subsidy]);
    app.call_ok(reqwest::Method::PUT, &format!("/api/v1/systems/{system}"), Some(&keeper), Some(doc)).await;
    c.goto(&page).await.unwrap();
    wait_text(&c, "[data-testid=gate-om_funding]", |t| !t.contains("未通过") && t.contains("已接入共享平台")).await;
    advance("东财预〔2026〕130号").await;
    wait_text(&c, "[data-testid=stage]", |t| t == "运维").await;
    save_screenshot(&c, "project-gates").await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_open_as_facts_change_in_the_portal_on_sqlite() {
    gates_open_as_facts_change_in_the_portal(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_open_as_facts_change_in_the_portal_on_postgres() {
    gates_open_as_facts_change_in_the_portal(Backend::Postgres).await;
}

/// 数据质量 in the portal: the provider's editor sees the demo population's score, grade, dimensions and every
/// rule's result with masked failing keys, checks again (the check appears in the history), retires a rule
/// (a reason too short is shown beside its field); a consumer sees the tab without the forms; the overview
/// ranks the departments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quality_tab_shows_scores_and_results_and_the_provider_checks_again() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    log_in(&c, &app.base, "ga.editor", shutong::demo::DEMO_PASSWORD).await;
    wait_text(&c, "main h1", |t| !t.is_empty()).await;
    c.goto(&format!("{}/catalog/101/000001/data", app.base)).await.unwrap();
    click(&c, "[data-testid=quality-link]").await;
    wait_text(&c, "main h1", |t| t.contains("数据质量")).await;
    let score = text_of(&c, "[data-testid=quality-score]").await;
    assert!(score.parse::<f64>().is_ok_and(|s| (0.0..=100.0).contains(&s)), "{score}");
    let grade = text_of(&c, "[data-testid=quality-grade]").await;
    assert!(["优秀", "良好", "中等", "及格", "不及格"].contains(&grade.as_str()), "{grade}");
    let dims = text_of(&c, "[data-testid=quality-dimensions]").await;
    assert!(dims.contains("完整性") && dims.contains("规范性"), "{dims}");
    let results = text_of(&c, "[data-testid=quality-results]").await;
    assert!(results.contains("公民身份号码：有效的公民身份号码") && results.contains("代码表"), "{results}");
    let before = c.find_all(Locator::Css("[data-testid=quality-checks] tbody tr")).await.unwrap().len();
    click(&c, "[data-testid=check-now]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("已完成质量检查")).await;
    let after = c.find_all(Locator::Css("[data-testid=quality-checks] tbody tr")).await.unwrap().len();
    assert_eq!(after, before + 1);
    assert!(c.find(Locator::Css("[data-testid=chart-quality-trend]")).await.is_ok(), "two checks draw a trend");
    // Retiring a rule needs a reason: too short is refused beside the field, then accepted.
    let form = "[data-testid=quality-rules] tbody tr:first-child form";
    c.find(Locator::Css(&format!("{form} input[name=reason]"))).await.unwrap().send_keys("短").await.unwrap();
    click(&c, &format!("{form} button")).await;
    let error = wait_text(&c, ".flash.error, .field-error", |t| !t.is_empty()).await;
    assert!(error.contains("4 至 500"), "{error}");
    c.find(Locator::Css(&format!("{form} input[name=reason]"))).await.unwrap().send_keys("本规则不适用于历史数据").await.unwrap();
    click(&c, &format!("{form} button")).await;
    wait_text(&c, ".flash.ok", |t| t.contains("规则已停用")).await;
    let rules = text_of(&c, "[data-testid=quality-rules]").await;
    assert!(rules.contains("已停用") && rules.contains("本规则不适用于历史数据"), "{rules}");
    // A consumer reads the tab without the keeper's forms.
    switch_user(&c, &app.base, "dc.rs.editor").await;
    c.goto(&format!("{}/catalog/101/000001/quality", app.base)).await.unwrap();
    wait_text(&c, "main h1", |t| t.contains("数据质量")).await;
    assert!(c.find(Locator::Css("[data-testid=check-now]")).await.is_err());
    assert!(c.find(Locator::Css("[data-testid=quality-rules] form")).await.is_err());
    // The overview: departments by score, each dataset linked to its tab.
    c.goto(&format!("{}/quality", app.base)).await.unwrap();
    let departments = wait_text(&c, "[data-testid=quality-departments]", |t| !t.is_empty()).await;
    assert!(departments.contains("示范省公安厅") && departments.contains("示范省市场监督管理局"), "{departments}");
    assert!(!chart_values(&c, "chart-quality-departments").await.is_empty());
    c.close().await.unwrap();
    app.stop().await;
}

/// 疑义校核 in the portal: a consumer looks a record up by key and files an objection beside it (数据纠错); a
/// second consumer sees the record 校核中; the provider answers 已更正 once a batch changed the record, and the
/// flag is gone; the authority's list shows the demo's overdue objection and the figures per department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objection_is_filed_beside_a_record_and_answered_in_the_portal() {
    let app = spawn_demo_app(Backend::Sqlite).await;
    let (_driver, c) = start_browser().await;
    let person = shutong_exchange::synth::person(20, 2026);
    log_in(&c, &app.base, "mz.reviewer", shutong::demo::DEMO_PASSWORD).await;
    wait_text(&c, "main h1", |t| !t.is_empty()).await;
    c.goto(&format!("{}/catalog/101/000001/data", app.base)).await.unwrap();
    fill(&c, "lookup-key", &person[0]).await;
    click(&c, "[data-testid=record-lookup] button").await;
    wait_text(&c, "main h1", |t| t.contains("按键查询")).await;
    let record = text_of(&c, "[data-testid=record]").await;
    assert!(record.contains("户籍地址") && !record.contains("校核中"), "{record}");
    c.find(Locator::Css("[data-testid=objection-form] input[value=户籍地址]")).await.unwrap().click().await.unwrap();
    fill(&c, "description", "申请人已迁出，户籍地址未更新").await;
    click(&c, "[data-testid=file-objection]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("校核中")).await;
    assert_eq!(text_of(&c, "[data-testid=objection-state]").await, "待核实");
    let url = c.current_url().await.unwrap();
    let id: i64 = url.path().rsplit('/').next().unwrap().parse().unwrap();

    // Another consumer sees the flag on that item of the record.
    switch_user(&c, &app.base, "wj.reviewer").await;
    c.goto(&format!("{}/catalog/101/000001/data/record?key={}", app.base, person[0])).await.unwrap();
    let flag = wait_text(&c, "[data-testid=under-verification]", |t| !t.is_empty()).await;
    assert!(flag.contains("校核中") && flag.contains("户籍地址"), "{flag}");
    assert_eq!(c.find_all(Locator::Css("[data-testid=flagged-item]")).await.unwrap().len(), 1);

    // The provider corrects the record by a batch, then answers 已更正; the flag is gone.
    let editor = app.login("ga.editor", shutong::demo::DEMO_PASSWORD).await;
    let mut fixed = person.clone();
    fixed[5] = "南京市鼓楼区中山北路1号".into();
    let b = crate::exchange::upload(
        &app,
        &editor,
        "/api/v1/data/101/000001",
        "mode=incremental",
        "text/csv",
        crate::exchange::population_csv(&[fixed]),
    )
    .await;
    assert!(b.status.is_success(), "{:?}", b.body);
    switch_user(&c, &app.base, "ga.reviewer").await;
    c.goto(&format!("{}/quality/objections?scope=received", app.base)).await.unwrap();
    let queue = wait_text(&c, "[data-testid=objections]", |t| !t.is_empty()).await;
    assert!(queue.contains("逾期"), "the demo's overdue objection leads the queue: {queue}");
    c.goto(&format!("{}/quality/objections/{id}", app.base)).await.unwrap();
    c.find(Locator::Css("#answer option[value=corrected]")).await.unwrap().click().await.unwrap();
    fill(&c, "note", "已按户籍底册更正").await;
    click(&c, "[data-testid=answer]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("已答复")).await;
    let answer = text_of(&c, "[data-testid=objection-answer]").await;
    assert!(answer.contains("已更正") && answer.contains("更正批次"), "{answer}");
    switch_user(&c, &app.base, "wj.reviewer").await;
    c.goto(&format!("{}/catalog/101/000001/data/record?key={}", app.base, person[0])).await.unwrap();
    let record = wait_text(&c, "[data-testid=record]", |t| !t.is_empty()).await;
    assert!(record.contains("鼓楼区") || record.contains("南京市"), "{record}");
    assert!(c.find(Locator::Css("[data-testid=under-verification]")).await.is_err(), "the flag is gone");

    // The filer accepts; the authority sees the overdue one and the figures.
    switch_user(&c, &app.base, "mz.reviewer").await;
    c.goto(&format!("{}/quality/objections/{id}", app.base)).await.unwrap();
    click(&c, "[data-testid=accept]").await;
    wait_text(&c, "[data-testid=objection-state]", |t| t == "已办结").await;
    switch_user(&c, &app.base, "sq.reviewer").await;
    c.goto(&format!("{}/quality/objections?overdue=1", app.base)).await.unwrap();
    let overdue = wait_text(&c, "[data-testid=objections]", |t| !t.is_empty()).await;
    assert!(overdue.contains("逾期") && overdue.contains("示范省民政厅"), "{overdue}");
    let figures = text_of(&c, "[data-testid=objection-figures]").await;
    assert!(figures.contains("示范省公安厅"), "{figures}");
    // 一数一源: the demo's reconciliation of 社会保险参保信息 with 人口基本信息 lists its three conflicts; one
    // becomes an objection against 人社厅's dataset.
    c.goto(&format!("{}/quality/consistency", app.base)).await.unwrap();
    let runs = wait_text(&c, "[data-testid=consistency-runs]", |t| !t.is_empty()).await;
    assert!(runs.contains("人口") && runs.contains("101/000001"), "{runs}");
    click(&c, "[data-testid=consistency-runs] tbody tr:first-child a").await;
    wait_text(&c, "main h1", |t| t.contains("一数一源比对")).await;
    assert_eq!(text_of(&c, "[data-testid=differing-keys]").await, "3");
    assert_eq!(c.find_all(Locator::Css("[data-testid=conflict-row]")).await.unwrap().len(), 3);
    c.find(Locator::Css("[data-testid=conflict-row]:first-child select option[value=resource]")).await.unwrap().click().await.unwrap();
    click(&c, "[data-testid=conflict-row]:first-child [data-testid=object-conflict]").await;
    wait_text(&c, ".flash.ok", |t| t.contains("校核中")).await;
    let objection = text_of(&c, "[data-testid=objection]").await;
    assert!(objection.contains("202/") && objection.contains("与权威来源不一致") && objection.contains("户籍地址"), "{objection}");
    // 主题库: the demo's 社会保障主题库 with the lineage of every item, refreshed again from its page.
    c.goto(&format!("{}/quality/themes", app.base)).await.unwrap();
    click(&c, "[data-testid=themes] tbody tr:first-child a").await;
    wait_text(&c, "main h1", |t| t.contains("社会保障主题库")).await;
    let lineage = text_of(&c, "[data-testid=theme-lineage]").await;
    assert!(lineage.contains("参保状态") && lineage.contains("101/000001") && lineage.contains("第 1 版"), "{lineage}");
    assert_eq!(c.find_all(Locator::Css("[data-testid=theme-lineage] tbody tr")).await.unwrap().len(), 4);
    c.close().await.unwrap();
    app.stop().await;
}
