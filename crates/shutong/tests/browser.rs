//! The portal in a real headless browser (Debian's chromium, driven through chromedriver).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ADMIN_PASSWORD, Backend, spawn_app, spawn_demo_app};
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
    wait_text(&c, ".flash.error", |t| t.contains("credit_code")).await;

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
