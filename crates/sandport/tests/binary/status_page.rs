//! The status page of a real `sandport serve`, in headless Chromium: what a
//! person sees (names, statuses, uptime), a target going down shown without
//! a reload, and a hostile guest's text shown as text with nothing run.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::browser::Browser;
use super::support::{Server, Target, guest_wasm, temp_dir, write};

/// What a person reads in each row.
const ROWS: &str = "return [...document.querySelectorAll('#groups .row')].map(r => ({
    name: r.querySelector('.name').textContent,
    id: r.querySelector('.cid').textContent,
    word: r.querySelector('.word').textContent,
    message: r.querySelector('.message-text').textContent,
    uptime: [...r.querySelectorAll('.uptime dd')].map(d => d.textContent),
}))";

const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=1</script> <a href=\"javascript:window.__pwned=1\">click</a> <!channel>";

async fn api(server: &Server, path: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("{}{path}", server.http))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows:?}"))
}

#[tokio::test]
async fn the_page_shows_what_the_checks_found_and_follows_a_target_going_down() {
    let web = Target::start(200);
    let api_target = Target::start(200);
    let down = Target::start(503);
    let dir = temp_dir("status-page");
    std::fs::copy(
        guest_wasm("sandport_guest_hostile"),
        dir.join("hostile.wasm"),
    )
    .expect("copy the hostile guest");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "connectors:\n  - {{id: web, name: Website, component: http, host: 127.0.0.1, port: {}, tags: [prod], health_check: {{interval: 1s, timeout: 1s}}}}\n  - {{id: api, name: API, component: http, host: 127.0.0.1, port: {}, tags: [prod], health_check: {{interval: 1s, timeout: 1s}}}}\n  - id: evil\n    component: ./hostile.wasm\n    host: 127.0.0.1\n    port: {}\n    health_check: {{interval: 1s, timeout: 1s}}\n    settings: {{mode: say, url: 'http://127.0.0.1:{}/', message: '{}', detail_key: k, detail: v}}\n",
            web.port,
            api_target.port,
            down.port,
            down.port,
            HOSTILE.replace('\'', "''"),
        ),
    );
    let server = Server::start(&config, &dir.join("data"));
    // Every connector checked and recorded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = api(&server, "/api/v1/status").await;
        let ready = status["connectors"].as_array().is_some_and(|list| {
            list.len() == 3 && list.iter().all(|c| !c["uptime"]["day"].is_null())
        });
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "not all checked: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{}/", server.http)).await;
    browser
        .wait_for(
            "the first render",
            "document.documentElement.dataset.ready === 'true'",
            "document.body.innerText",
        )
        .await;
    let rows: Vec<Value> = browser.js(ROWS).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let website = row(&rows, "web");
    assert_eq!(website["name"], "Website");
    assert_eq!(website["word"], "Healthy");
    assert_eq!(website["uptime"][0], "100%", "{website}");
    let evil = row(&rows, "evil");
    assert_eq!(evil["word"], "Unhealthy");
    assert_eq!(evil["message"], HOSTILE, "the guest's text shows as it is");
    assert_eq!(evil["uptime"][0], "0%", "{evil}");

    // The website goes down: its row changes without a reload.
    let _: Value = browser.js("window.__samePage = true; return null").await;
    browser
        .wait_for(
            "the live feed",
            "document.documentElement.dataset.live === 'open'",
            "document.getElementById('live').innerText",
        )
        .await;
    web.set_status(503);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = api(&server, "/api/v1/connectors/web/health?cached=true").await;
        if health["status"] == "unhealthy" {
            break;
        }
        assert!(Instant::now() < deadline, "never reported down: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = browser
        .wait_for(
            "the website's row to say Unhealthy",
            "[...document.querySelectorAll('#groups .row')].some(r => \
             r.querySelector('.cid').textContent === 'web' && \
             r.querySelector('.word').textContent === 'Unhealthy')",
            "document.getElementById('groups').innerText",
        )
        .await;
    println!("the page followed the service's change in {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the page took {took:?} after the service reported the change"
    );
    let same: bool = browser.js("return window.__samePage === true").await;
    assert!(same, "the page was reloaded");

    // Nothing the guest wrote ran or became markup.
    let pwned: bool = browser
        .js("return typeof window.__pwned !== 'undefined'")
        .await;
    assert!(!pwned, "the guest's text ran as script");
    let injected: Vec<String> = browser
        .js("return [...document.querySelectorAll('main img, main script, main a')].map(e => e.outerHTML)")
        .await;
    assert!(injected.is_empty(), "markup from a guest: {injected:?}");
    let path = browser.screenshot("status-page-live.png").await;
    println!("screenshot: {}", path.display());
    browser.close().await;
}
