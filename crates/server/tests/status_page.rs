//! The status page in headless Chromium, as a person sees it: the page
//! router of `sandport_server::status_page` beside a mock of the two APIs
//! it reads (`GET /api/v1/status`, whose answer each test sets, and the
//! event stream `GET /api/v1/status/events`, into which a test pushes).
//!
//! Needs `chromium` and `chromedriver` (scripts/install-test-deps.sh); the
//! tests fail, rather than skip, without them.

mod browser;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use browser::Browser;

// ------------------------------------------------------------------ mock

#[derive(Clone)]
struct Mock {
    status: Arc<Mutex<(StatusCode, Value)>>,
    events: broadcast::Sender<(&'static str, String)>,
    /// How many more requests for the event stream get a 503.
    refuse_events: Arc<AtomicUsize>,
}

impl Mock {
    /// Serves the page and the mock APIs on 127.0.0.1; returns the base URL.
    async fn start(status: Value) -> (Mock, String) {
        let mock = Mock {
            status: Arc::new(Mutex::new((StatusCode::OK, status))),
            events: broadcast::channel(64).0,
            refuse_events: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/api/v1/status", get(status_json))
            .route("/api/v1/status/events", get(status_events))
            .merge(sandport_server::status_page::router())
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (mock, url)
    }

    fn set(&self, code: StatusCode, body: Value) {
        *self.status.lock().unwrap() = (code, body);
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) {
        change(&mut self.status.lock().unwrap().1);
    }

    /// Sends one event to every open stream; there must be one.
    fn push(&self, event: &'static str, data: Value) {
        let sent = self.events.send((event, data.to_string())).unwrap();
        assert!(sent > 0, "no page follows the event stream");
    }

    /// Waits until a page follows the event stream.
    async fn followed(&self) {
        let started = Instant::now();
        while self.events.receiver_count() == 0 {
            assert!(
                started.elapsed() < browser::WAIT_TIMEOUT,
                "the page never opened the event stream"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn status_json(State(mock): State<Mock>) -> Response {
    let (code, body) = mock.status.lock().unwrap().clone();
    (code, axum::Json(body)).into_response()
}

async fn status_events(State(mock): State<Mock>) -> Response {
    let refused = mock
        .refuse_events
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if refused.is_ok() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let events = BroadcastStream::new(mock.events.subscribe()).filter_map(|sent| {
        let (name, data) = sent.ok()?;
        Some(Ok::<_, Infallible>(Event::default().event(name).data(data)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

// ------------------------------------------------------------------ data

const NOW: &str = "2026-12-06T18:00:00Z";

/// A connector as `/api/v1/status` lists it, with 90 days and 24 hours of
/// history: no data for the first days, one bad day, one hour unchecked.
fn connector(id: &str, name: &str, kind: &str, tags: &[&str], status: &str) -> Value {
    let daily: Vec<Value> = (0..90)
        .map(|day| match day {
            0..=1 => Value::Null,
            60 => json!(97.1),
            89 => json!(99.2),
            _ => json!(100.0),
        })
        .collect();
    let latency: Vec<Value> = (0..24)
        .map(|hour| match hour {
            5 => Value::Null,
            _ => json!(10.0 + f64::from(hour % 6)),
        })
        .collect();
    json!({
        "id": id, "name": name, "type": kind, "tags": tags, "enabled": true,
        "status": status, "since": "2026-12-06T17:00:00Z",
        "message": format!("{name} answered"), "latency_ms": 12.5,
        "checked_at": "2026-12-06T17:59:58Z",
        "uptime": {"day": 99.95, "week": 99.9, "month": null},
        "daily": daily, "latency_24h": latency,
    })
}

fn status(connectors: Vec<Value>, incidents: Vec<Value>) -> Value {
    json!({"generated_at": NOW, "history": true, "connectors": connectors, "incidents": incidents})
}

fn four_connectors() -> Value {
    let mut unchecked = connector("mqtt", "Mosquitto", "broker", &[], "unknown");
    unchecked["since"] = Value::Null;
    unchecked["latency_ms"] = Value::Null;
    unchecked["checked_at"] = Value::Null;
    unchecked["message"] = json!("not checked yet");
    status(
        vec![
            connector("prom", "Prometheus", "observability", &["prod"], "healthy"),
            connector("pg", "PostgreSQL", "database", &["prod", "eu"], "degraded"),
            connector("redis", "Redis", "database", &["cache"], "unhealthy"),
            unchecked,
        ],
        vec![json!({
            "connector": "redis", "name": "Redis", "status": "unhealthy",
            "previous_status": "healthy", "message": "connection refused",
            "at": "2026-12-06T16:00:00Z",
        })],
    )
}

/// What a person reads in each row, in page order.
const ROWS: &str = "return [...document.querySelectorAll('#groups .row')].map(r => ({
    name: r.querySelector('.name').textContent,
    id: r.querySelector('.cid').textContent,
    word: r.querySelector('.word').textContent,
    message: r.querySelector('.message-text').textContent,
    uptime: [...r.querySelectorAll('.uptime dd')].map(d => d.textContent),
    days: r.querySelector('.days-svg').getAttribute('aria-label'),
    lines: r.querySelectorAll('.line-svg polyline').length,
    visible: r.offsetParent !== null,
}))";

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("no row named {name} in {rows:?}"))
}

async fn open(status: Value, width: u32, height: u32) -> (Mock, Browser) {
    let (mock, url) = Mock::start(status).await;
    let browser = Browser::start(width, height).await;
    browser.goto(&url).await;
    (mock, browser)
}

async fn loaded(browser: &Browser) {
    browser
        .wait_for(
            "the first render",
            "document.documentElement.dataset.ready === 'true'",
            "document.body.innerText",
        )
        .await;
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn shows_each_connector_and_follows_live_changes() {
    let (mock, browser) = open(four_connectors(), 1280, 1000).await;
    loaded(&browser).await;

    let rows: Vec<Value> = browser.js(ROWS).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let prom = row(&rows, "Prometheus");
    assert_eq!(prom["id"], "prom");
    assert_eq!(prom["word"], "Healthy");
    assert_eq!(prom["message"], "Prometheus answered");
    assert_eq!(prom["uptime"], json!(["99.95%", "99.9%", "—"]));
    // Every day's value is there as text, runs of equal days merged.
    let days = prom["days"].as_str().unwrap();
    for value in ["no data", "97.1%", "99.2%", "100%"] {
        assert!(days.contains(value), "{value} not in {days}");
    }
    assert_eq!(prom["lines"], 2, "the unchecked hour splits the line");
    assert_eq!(row(&rows, "PostgreSQL")["word"], "Degraded");
    assert_eq!(row(&rows, "Redis")["word"], "Unhealthy");
    assert_eq!(row(&rows, "Mosquitto")["word"], "Unknown");

    let summary: String = browser
        .js("return document.getElementById('overall').innerText")
        .await;
    for part in [
        "1 connector is failing",
        "1 healthy",
        "1 degraded",
        "1 failing",
        "1 not checked yet",
    ] {
        assert!(summary.contains(part), "{part} not in {summary:?}");
    }
    let incidents: String = browser
        .js("return document.getElementById('incidents').innerText")
        .await;
    assert!(incidents.contains("Redis"), "{incidents}");
    assert!(incidents.contains("connection refused"), "{incidents}");
    assert!(incidents.contains("Healthy") && incidents.contains("Unhealthy"));
    let path = browser.screenshot("status-page.png").await;
    println!("screenshot: {}", path.display());

    // A change of status arrives as an event and changes the row in place.
    mock.followed().await;
    browser
        .wait_for(
            "the live indicator",
            "document.documentElement.dataset.live === 'open'",
            "document.getElementById('live').innerText",
        )
        .await;
    let _: Value = browser.js("window.__samePage = true; return null").await;
    mock.edit(|s| {
        let prom = &mut s["connectors"][0];
        prom["status"] = json!("unhealthy");
        prom["message"] = json!("GET /-/healthy: connection refused");
        prom["since"] = json!("2026-12-06T18:00:30Z");
        let incident = json!({
            "connector": "prom", "name": "Prometheus", "status": "unhealthy",
            "previous_status": "healthy", "message": "GET /-/healthy: connection refused",
            "at": "2026-12-06T18:00:30Z",
        });
        s["incidents"].as_array_mut().unwrap().insert(0, incident);
    });
    mock.push(
        "health",
        json!({
            "id": "prom", "status": "unhealthy", "previous_status": "healthy",
            "message": "GET /-/healthy: connection refused",
            "checked_at": "2026-12-06T18:00:30Z", "since": "2026-12-06T18:00:30Z",
            "latency_ms": 3001.0,
        }),
    );
    let took = browser
        .wait_for(
            "Prometheus to turn unhealthy",
            "[...document.querySelectorAll('#groups .row')].some(r => \
             r.querySelector('.name').textContent === 'Prometheus' && \
             r.querySelector('.word').textContent === 'Unhealthy')",
            "document.getElementById('groups').innerText",
        )
        .await;
    println!("the row changed {took:?} after the event was sent");
    let rows: Vec<Value> = browser.js(ROWS).await;
    assert_eq!(
        row(&rows, "Prometheus")["message"],
        "GET /-/healthy: connection refused"
    );
    let same: bool = browser.js("return window.__samePage === true").await;
    assert!(same, "the page reloaded instead of updating in place");
    let summary: String = browser
        .js("return document.getElementById('overall').innerText")
        .await;
    assert!(summary.contains("2 failing"), "{summary:?}");
    let latest: String = browser
        .js("return document.querySelector('#incidents li').innerText")
        .await;
    assert!(latest.contains("Prometheus"), "{latest}");
    assert!(latest.contains("connection refused"), "{latest}");

    // `resync` makes the page read the whole state again.
    mock.edit(|s| {
        let kafka = connector("kafka", "Kafka", "broker", &["prod"], "healthy");
        s["connectors"].as_array_mut().unwrap().push(kafka);
    });
    mock.push("resync", json!({}));
    browser
        .wait_for(
            "Kafka after a resync",
            "[...document.querySelectorAll('#groups .name')].some(n => n.textContent === 'Kafka')",
            "document.getElementById('groups').innerText",
        )
        .await;

    // Grouped by tag, a connector is listed under each of its tags.
    browser.click("#by-tag").await;
    let groups: Vec<String> = browser
        .js("return [...document.querySelectorAll('.group h3')].map(h => h.textContent)")
        .await;
    assert_eq!(groups, ["cache", "eu", "prod", "Untagged"]);
    let prod: Vec<String> = browser
        .js("return [...document.querySelectorAll('.group')].find(g => \
             g.querySelector('h3').textContent === 'prod').querySelectorAll('.name') \
             .values().map(n => n.textContent).toArray()")
        .await;
    assert_eq!(prod, ["Kafka", "PostgreSQL", "Prometheus"]);
    let pressed: String = browser
        .js("return document.getElementById('by-tag').getAttribute('aria-pressed')")
        .await;
    assert_eq!(pressed, "true");
    browser.close().await;
}

/// A stream the browser gives up on (an error answer) is opened again, and
/// what changed meanwhile is read in full.
#[tokio::test]
async fn live_updates_come_back_after_the_stream_fails() {
    let (mock, url) = Mock::start(four_connectors()).await;
    mock.refuse_events.store(2, Ordering::SeqCst);
    let browser = Browser::start(1280, 1000).await;
    browser.goto(&url).await;
    loaded(&browser).await;
    browser
        .wait_for(
            "the page to say live updates are paused",
            "document.documentElement.dataset.live === 'down'",
            "document.getElementById('live').innerText",
        )
        .await;
    let paused: String = browser
        .js("return document.getElementById('live-text').textContent")
        .await;
    assert!(paused.contains("paused"), "{paused}");
    // Missed while the stream was down: no event will tell of it.
    mock.edit(|s| s["connectors"][0]["status"] = json!("unavailable"));
    browser
        .wait_for(
            "Prometheus to read unavailable after the stream is back",
            "[...document.querySelectorAll('#groups .row')].some(r => \
             r.querySelector('.name').textContent === 'Prometheus' && \
             r.querySelector('.word').textContent === 'Unavailable')",
            "[document.documentElement.dataset.live, document.getElementById('groups').innerText]",
        )
        .await;
    mock.followed().await;
    let live: String = browser
        .js("return document.documentElement.dataset.live")
        .await;
    assert_eq!(live, "open");
    browser.close().await;
}

#[tokio::test]
async fn text_from_connectors_stays_text() {
    const SCRIPT: &str = "<script>window.__pwned=1</script>";
    const IMG: &str = "<img src=x onerror=\"window.__pwned=1\">";
    const LINK: &str = "<a href=\"javascript:window.__pwned=1\">click me</a>";
    const SLACK: &str = "<!channel> look";
    const ID: &str = "x\"><svg onload=window.__pwned=1>";
    let mut hostile = connector(ID, SCRIPT, "<b>bold</b>", &[LINK, SLACK], "unhealthy");
    hostile["message"] = json!(IMG);
    let incident = json!({
        "connector": ID, "name": SCRIPT, "status": "unhealthy",
        "previous_status": "<i>healthy</i>", "message": LINK, "at": NOW,
    });
    let (mock, browser) = open(status(vec![hostile], vec![incident]), 1280, 1000).await;
    loaded(&browser).await;

    let rows: Vec<Value> = browser.js(ROWS).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], SCRIPT);
    assert_eq!(rows[0]["id"], ID);
    assert_eq!(rows[0]["message"], IMG);
    let tags: Vec<String> = browser
        .js("return [...document.querySelectorAll('.tags li')].map(t => t.textContent)")
        .await;
    assert_eq!(tags, [LINK, SLACK]);
    let group: String = browser
        .js("return document.querySelector('.group h3').textContent")
        .await;
    assert_eq!(group, "<b>bold</b>");
    let incident: String = browser
        .js("return document.querySelector('#incidents li').textContent")
        .await;
    assert!(
        incident.contains(SCRIPT) && incident.contains(LINK),
        "{incident}"
    );

    // The same text arriving live, and as the headings of tag groups.
    mock.followed().await;
    mock.push(
        "health",
        json!({"id": ID, "status": "healthy", "previous_status": "unhealthy",
               "message": SCRIPT, "checked_at": NOW, "since": NOW, "latency_ms": 1.0}),
    );
    browser
        .wait_for(
            "the hostile connector to turn healthy",
            "document.querySelector('#groups .word').textContent === 'Healthy'",
            "document.getElementById('groups').innerText",
        )
        .await;
    browser.click("#by-tag").await;
    let groups: Vec<String> = browser
        .js("return [...document.querySelectorAll('.group h3')].map(h => h.textContent)")
        .await;
    assert_eq!(groups, [SLACK, LINK]);

    let pwned: bool = browser
        .js("return typeof window.__pwned !== 'undefined'")
        .await;
    assert!(!pwned, "text from a connector ran as script");
    let injected: Vec<String> = browser
        .js(
            "return [...document.querySelectorAll('main img, main script, main a, main b, \
             main i, main svg[onload]')].map(e => e.outerHTML)",
        )
        .await;
    assert!(injected.is_empty(), "markup from a connector: {injected:?}");
    let handlers: Vec<String> = browser
        .js("return [...document.querySelectorAll('*')].flatMap(e => \
             [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name))")
        .await;
    assert!(
        handlers.is_empty(),
        "event-handler attributes: {handlers:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_thousand_connectors_render() {
    const KINDS: [&str; 6] = [
        "observability",
        "database",
        "broker",
        "storage",
        "http",
        "chat",
    ];
    let connectors = (0..1000)
        .map(|i| {
            let status = ["healthy", "healthy", "healthy", "degraded", "unhealthy"][i % 5];
            let id = format!("c{i:04}");
            let name = format!("Connector {i}");
            connector(&id, &name, KINDS[i % KINDS.len()], &["prod"], status)
        })
        .collect();
    let (_mock, url) = Mock::start(status(connectors, Vec::new())).await;
    let browser = Browser::start(1280, 1000).await;
    let started = Instant::now();
    browser.goto(&url).await;
    browser
        .wait_for(
            "1,000 rows",
            "document.querySelectorAll('#groups .row').length === 1000",
            "document.querySelectorAll('#groups .row').length",
        )
        .await;
    let wall = started.elapsed();
    let (fetched, rendered): (f64, f64) = browser
        .js(
            "return ['sandport-status-fetched', 'sandport-status-rendered'] \
             .map(mark => performance.getEntriesByName(mark)[0].startTime)",
        )
        .await;
    println!(
        "1,000 connectors: data read {fetched:.0} ms after navigation started, rendered \
         {:.0} ms later ({} ms from the WebDriver call to all rows)",
        rendered - fetched,
        wall.as_millis()
    );
    assert!(wall < Duration::from_secs(10), "took {wall:?}");
    let summary: String = browser
        .js("return document.getElementById('overall-counts').textContent")
        .await;
    assert_eq!(summary, "600 healthy · 200 degraded · 200 failing");
    browser.close().await;
}

#[tokio::test]
async fn a_narrow_screen_has_no_horizontal_scroll() {
    let mut data = four_connectors();
    let long = "a-very-long-connector-name-without-any-space-to-break-at-".repeat(4);
    data["connectors"][0]["name"] = json!(long);
    data["connectors"][1]["message"] = json!(format!("GET https://{}", "x".repeat(300)));
    let (_mock, browser) = open(data, 360, 740).await;
    loaded(&browser).await;
    let (inner, scroll): (u32, u32) = browser
        .js("return [window.innerWidth, document.documentElement.scrollWidth]")
        .await;
    assert_eq!(inner, 360, "the window is not phone-sized");
    assert!(
        scroll <= inner,
        "{scroll} px of content in a {inner} px window"
    );
    let rows: Vec<Value> = browser.js(ROWS).await;
    assert!(rows.iter().all(|row| row["visible"] == true), "{rows:?}");
    // Nor anything past the right edge, or cut off by a box that hides
    // what overflows it.
    let cut: Vec<String> = browser
        .js(
            "return [...document.querySelectorAll('body *')].filter(e => \
             e.getClientRects().length > 0 && (e.getBoundingClientRect().right > innerWidth + 0.5 \
             || (['hidden', 'clip'].includes(getComputedStyle(e).overflowX) \
                 && e.scrollWidth > e.clientWidth + 1))) \
             .map(e => e.className.baseVal ?? e.className)",
        )
        .await;
    assert!(cut.is_empty(), "cut off at the right edge: {cut:?}");
    let path = browser.screenshot("status-page-narrow.png").await;
    println!("screenshot: {}", path.display());
    browser.close().await;
}

#[tokio::test]
async fn a_page_without_access_asks_for_a_read_token() {
    let (mock, url) = Mock::start(Value::Null).await;
    mock.set(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": "unauthenticated", "message": "this call needs a token"}}),
    );
    let browser = Browser::start(1280, 1000).await;
    browser.goto(&url).await;
    browser
        .wait_for(
            "the read-token message",
            "document.getElementById('notice').textContent.includes('needs a read token')",
            "document.body.innerText",
        )
        .await;
    let notice_visible: bool = browser
        .js("return document.getElementById('notice').offsetParent !== null")
        .await;
    assert!(notice_visible);
    browser.close().await;
}

#[tokio::test]
async fn without_history_the_page_says_why_and_shows_no_bars() {
    let mut data = four_connectors();
    data["history"] = json!(false);
    data["connectors"][2]["enabled"] = json!(false);
    let (_mock, browser) = open(data, 1280, 1000).await;
    loaded(&browser).await;
    let (note_visible, history_visible, names): (bool, usize, Vec<String>) = browser
        .js("return [
            document.getElementById('history-note').offsetParent !== null,
            [...document.querySelectorAll('.history, .uptime')].filter(e => e.offsetParent !== null).length,
            [...document.querySelectorAll('#groups .name')].map(n => n.textContent)]")
        .await;
    assert!(note_visible, "no word on why uptime is missing");
    assert_eq!(history_visible, 0, "uptime, bars or lines shown");
    assert_eq!(names.len(), 4, "{names:?}");
    let text: String = browser.js("return document.body.innerText").await;
    assert!(text.contains("keeps no check history"), "{text}");
    assert!(!text.contains("99.95%"), "{text}");
    // A disabled connector is neither failing nor healthy, and says so.
    let counts: String = browser
        .js("return document.getElementById('overall-counts').textContent")
        .await;
    assert_eq!(
        counts,
        "1 healthy · 1 degraded · 0 failing · 1 not checked yet · 1 disabled"
    );
    let chip: bool = browser
        .js(
            "return [...document.querySelectorAll('#groups .row')].find(r => \
             r.querySelector('.name').textContent === 'Redis') \
             .querySelector('.disabled-chip').offsetParent !== null",
        )
        .await;
    assert!(chip, "Redis is not marked disabled");
    browser.close().await;
}

#[tokio::test]
async fn a_dark_system_theme_gets_the_dark_colours() {
    let (_mock, url) = Mock::start(four_connectors()).await;
    let browser = Browser::start_with(1280, 1000, &["--force-dark-mode"]).await;
    browser.goto(&url).await;
    loaded(&browser).await;
    let (dark, background): (bool, String) = browser
        .js(
            "return [matchMedia('(prefers-color-scheme: dark)').matches, \
             getComputedStyle(document.body).backgroundColor]",
        )
        .await;
    assert!(dark, "Chromium did not report a dark theme");
    assert_eq!(background, "rgb(14, 18, 23)");
    let path = browser.screenshot("status-page-dark.png").await;
    println!("screenshot: {}", path.display());
    browser.close().await;
}
