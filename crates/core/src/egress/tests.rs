//! The egress path against a real loopback server, with names resolved by a
//! stub so that they can point anywhere (as a hostile DNS server would).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use sandport_config as config;

struct StubLookup(HashMap<String, Vec<IpAddr>>);

impl Lookup for StubLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(&host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// A loopback server answering every request with `reply` (raw HTTP).
async fn server(reply: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

fn egress(entry: &str, names: &[(&str, &str)]) -> Egress {
    let lookup = StubLookup(
        names
            .iter()
            .map(|(n, ip)| (n.to_string(), vec![ip.parse().expect("ip")]))
            .collect(),
    );
    let client = HttpClient::with_lookup(Arc::new(lookup)).expect("client");
    let config = config::parse_entry(
        entry,
        std::path::Path::new("."),
        sandport_builtins::catalog(),
    )
    .expect("entry");
    Egress::new(&client, &config).expect("egress")
}

/// Sends `request` as a call of its own: nothing used yet, 5 s left.
async fn send(egress: &Egress, request: Request) -> Result<Response, EgressError> {
    send_within(egress, request, &mut CallUsage::default()).await
}

/// Sends `request` as the sandbox sends a one-off request (parsed, then
/// sent), with `usage` used so far and 5 s left.
async fn send_within(
    egress: &Egress,
    request: Request,
    usage: &mut CallUsage,
) -> Result<Response, EgressError> {
    let request = egress.prepare(request)?;
    egress
        .send_prepared(&request, Budget::new(Duration::from_secs(5)), usage)
        .await
}

async fn get(egress: &Egress, url: &str) -> Result<Response, EgressError> {
    send(egress, get_request(url)).await
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

#[tokio::test]
async fn a_wildcard_name_that_resolves_to_loopback_is_denied() {
    let port = server(OK).await;
    let e = egress(
        &format!(
            "{{id: x, component: http, host: 127.0.0.1, port: 1, sandbox: {{allowed_hosts: ['http://*.corp.example:{port}']}}}}"
        ),
        &[("evil.corp.example", "127.0.0.1")],
    );
    let err = get(&e, &format!("http://evil.corp.example:{port}/"))
        .await
        .expect_err("denied");
    let EgressError::Denied(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("127.0.0.1") && message.contains("wildcard"),
        "{message}"
    );
}

#[tokio::test]
async fn an_exactly_named_internal_host_is_reached_at_the_vetted_address() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: db.corp.example, port: {port}}}"),
        &[("db.corp.example", "127.0.0.1")],
    );
    let response = get(&e, &format!("http://db.corp.example:{port}/"))
        .await
        .expect("allowed");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
}

#[tokio::test]
async fn a_name_resolving_to_cloud_metadata_is_denied_even_when_named_exactly() {
    let e = egress(
        "{id: x, component: http, host: meta.corp.example, port: 80}",
        &[("meta.corp.example", "169.254.169.254")],
    );
    let err = get(&e, "http://meta.corp.example/latest/meta-data/")
        .await
        .expect_err("denied");
    let EgressError::Denied(message) = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("169.254.169.254"), "{message}");
}

#[tokio::test]
async fn ip_spellings_of_forbidden_addresses_are_all_denied() {
    // The connector's own endpoint is a public name; every spelling below
    // is either outside the allowlist or a forbidden address.
    let e = egress(
        "{id: x, component: http, host: public.example, port: 80, sandbox: {allowed_hosts: ['*.example']}}",
        &[],
    );
    for url in [
        "http://169.254.169.254/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0.0.0.0/",
        "http://0/",
        "http://127.1/",
        "http://public.example@169.254.169.254/",
        "http://[fd00:ec2::254]/",
    ] {
        let err = get(&e, url).await.expect_err(url);
        assert!(matches!(err, EgressError::Denied(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn an_exact_ip_rule_opens_that_address_only() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    assert_eq!(
        get(&e, &format!("http://127.0.0.1:{port}/"))
            .await
            .expect("own")
            .status,
        200
    );
    assert_eq!(
        get(&e, &format!("http://[::ffff:127.0.0.1]:{port}/"))
            .await
            .expect("same address")
            .status,
        200
    );
    assert!(matches!(
        get(&e, &format!("http://127.0.0.2:{port}/")).await,
        Err(EgressError::Denied(_))
    ));
}

#[tokio::test]
async fn a_trailing_dot_does_not_escape_the_rule() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: db.corp.example, port: {port}}}"),
        &[
            ("db.corp.example", "127.0.0.1"),
            ("db.corp.example.", "127.0.0.1"),
        ],
    );
    let response = get(&e, &format!("http://db.corp.example.:{port}/")).await;
    assert!(response.is_ok(), "{response:?}");
    let other = get(&e, &format!("http://db.corp.example.evil:{port}/")).await;
    assert!(matches!(other, Err(EgressError::Denied(_))), "{other:?}");
}

fn big_reply(size: usize) -> &'static str {
    let body = "x".repeat(size);
    Box::leak(
        format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n{body}")
            .into_boxed_str(),
    )
}

fn streamed_reply(size: usize) -> &'static str {
    // No content-length: the cap must hold while streaming.
    let body = "y".repeat(size);
    Box::leak(format!("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{body}").into_boxed_str())
}

#[tokio::test]
async fn bodies_past_the_cap_are_refused_whether_announced_or_streamed() {
    for reply in [big_reply(300 * 1024), streamed_reply(300 * 1024)] {
        let port = server(reply).await;
        let e = egress(
            &format!(
                "{{id: x, component: http, host: 127.0.0.1, port: {port}, sandbox: {{max_response_size: 256KiB}}}}"
            ),
            &[],
        );
        let err = get(&e, &format!("http://127.0.0.1:{port}/"))
            .await
            .expect_err("too large");
        let EgressError::TooLarge(message) = err else {
            panic!("{err:?}")
        };
        assert!(
            message.contains("256 KiB") && message.contains("max_response_size"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn requests_and_bytes_per_call_are_capped() {
    let port = server(big_reply(100 * 1024)).await;
    let e = egress(
        &format!(
            "{{id: x, component: http, host: 127.0.0.1, port: {port}, sandbox: {{max_requests_per_call: 5, max_response_size: 128KiB, max_bytes_per_call: 250KiB}}}}"
        ),
        &[],
    );
    let url = format!("http://127.0.0.1:{port}/");
    let mut usage = CallUsage::default();
    // Two fit in 250 KiB; the third passes the per-call byte cap.
    for _ in 0..2 {
        send_within(&e, get_request(&url), &mut usage)
            .await
            .expect("fits");
    }
    let err = send_within(&e, get_request(&url), &mut usage)
        .await
        .expect_err("over");
    let EgressError::TooLarge(message) = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("max_bytes_per_call"), "{message}");

    let mut usage = CallUsage {
        requests: 5,
        bytes: 0,
    };
    let err = send_within(&e, get_request(&url), &mut usage)
        .await
        .expect_err("over");
    assert!(err.to_string().contains("max_requests_per_call"), "{err}");
}

fn get_request(url: &str) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout: None,
    }
}

#[tokio::test]
async fn a_host_header_from_the_guest_is_refused() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    let mut request = get_request(&format!("http://127.0.0.1:{port}/"));
    request
        .headers
        .push(("Host".into(), "metadata.internal".into()));
    let err = send(&e, request).await.expect_err("refused");
    assert!(matches!(err, EgressError::Denied(_)), "{err:?}");
}

#[tokio::test]
async fn redirects_stop_after_five_hops() {
    let port = server(
        "HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    let err = get(&e, &format!("http://127.0.0.1:{port}/"))
        .await
        .expect_err("loop");
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
}

/// A server that answers 200 and reports the Authorization header it got.
async fn auth_echo() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    header_echo("authorization:").await
}

/// A server that answers 200 and reports the first request line starting
/// with `prefix` (lower-case), or "none".
async fn header_echo(prefix: &'static str) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let auth = text
                    .lines()
                    .find(|l| l.starts_with(prefix))
                    .unwrap_or("none")
                    .to_string();
                log.lock().expect("log").push(auth);
                let _ = stream.write_all(OK.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

/// One GET of `own_path` on the connector's own endpoint and one of `/` on
/// an allowed other host, for an entry with `auth`: the Authorization
/// lines each of the two servers saw.
async fn authorization_seen(auth: &str, own_path: &str) -> (Vec<String>, Vec<String>) {
    let (own, own_seen) = auth_echo().await;
    let (other, other_seen) = auth_echo().await;
    let e = egress(
        &format!(
            "{{id: x, component: http, host: 127.0.0.1, port: {own}, auth: {{{auth}}}, sandbox: {{allowed_hosts: ['http://127.0.0.1:{other}']}}}}"
        ),
        &[],
    );
    get(&e, &format!("http://127.0.0.1:{own}{own_path}"))
        .await
        .expect("own");
    get(&e, &format!("http://127.0.0.1:{other}/"))
        .await
        .expect("other");
    let own_seen = own_seen.lock().expect("log").clone();
    let other_seen = other_seen.lock().expect("log").clone();
    (own_seen, other_seen)
}

#[tokio::test]
async fn credentials_go_to_the_own_endpoint_only_even_across_redirects() {
    let (own_seen, other_seen) = authorization_seen("type: bearer, token: t0k", "/").await;
    assert_eq!(own_seen.as_slice(), ["authorization: bearer t0k"]);
    assert_eq!(other_seen.as_slice(), ["none"]);
}

#[tokio::test]
async fn aws_sigv4_signs_requests_to_the_own_endpoint_only() {
    let (own_seen, other_seen) = authorization_seen(
        "type: aws_sigv4, access_key_id: AKIDEXAMPLE, secret_access_key: sk, region: eu-west-1",
        "/bucket",
    )
    .await;
    assert_eq!(own_seen.len(), 1);
    assert!(
        own_seen[0].starts_with("authorization: aws4-hmac-sha256 credential=akidexample/")
            && own_seen[0].contains("/eu-west-1/s3/aws4_request"),
        "{own_seen:?}"
    );
    assert_eq!(other_seen.as_slice(), ["none"]);
}

#[tokio::test]
async fn the_urls_kept_from_recent_requests_are_used_only_for_the_same_text() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    let own = format!("http://127.0.0.1:{port}/");
    for _ in 0..2 {
        assert_eq!(get(&e, &own).await.expect("allowed").status, 200);
    }
    // A URL that differs, even only in its port, is parsed and judged anew.
    let other = format!("http://127.0.0.1:{}/", other_port(port));
    let err = get(&e, &other).await.expect_err("another port");
    assert!(matches!(err, EgressError::Denied(_)), "{err:?}");
    let err = get(&e, "http://[::1").await.expect_err("not a URL");
    assert!(matches!(err, EgressError::InvalidUrl(_)), "{err:?}");
    // The same text in another case is the same URL once parsed.
    let shouted = format!("HTTP://127.0.0.1:{port}/");
    assert_eq!(get(&e, &shouted).await.expect("allowed").status, 200);
    assert_eq!(get(&e, &own).await.expect("allowed").status, 200);
    let kept = |e: &Egress| -> Vec<String> {
        e.recent_urls
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|url| url.to_string())
            .collect()
    };
    // The upper-case spelling took the place of its URL: kept once.
    assert_eq!(kept(&e).iter().filter(|url| **url == own).count(), 1);
    let e = egress(
        &format!("{{id: y, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    // Two URLs in turn (as `prometheus` sends) are both kept, once each.
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    for _ in 0..3 {
        get(&e, &own).await.expect("allowed");
        get(&e, &ready).await.expect("allowed");
    }
    assert_eq!(kept(&e), [own.clone(), ready.clone()]);
    // Past four, the oldest goes.
    for path in ["a", "b", "c"] {
        get(&e, &format!("http://127.0.0.1:{port}/{path}"))
            .await
            .expect("allowed");
    }
    assert_eq!(kept(&e).len(), Egress::RECENT_URLS);
    assert!(!kept(&e).contains(&own), "{:?}", kept(&e));
    assert_eq!(get(&e, &own).await.expect("allowed").status, 200);
}

fn other_port(port: u16) -> u16 {
    if port == u16::MAX { port - 1 } else { port + 1 }
}

#[tokio::test]
async fn a_method_in_lower_case_is_sent_in_upper_case() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("a request");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.expect("read");
        let _ = stream.write_all(OK.as_bytes()).await;
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    let mut request = get_request(&format!("http://127.0.0.1:{port}/"));
    request.method = " head ".into();
    let response = send(&e, request).await.expect("sent");
    assert_eq!(response.status, 200);
    let seen = seen.await.expect("the server's task");
    assert!(seen.starts_with("HEAD / HTTP/1.1\r\n"), "{seen}");
    let mut request = get_request(&format!("http://127.0.0.1:{port}/"));
    request.method = "G\u{e9}T".into();
    let err = send(&e, request).await.expect_err("not a method");
    assert!(err.to_string().contains("is not an HTTP method"), "{err}");
}

#[tokio::test]
async fn a_prepared_request_is_sent_again_and_again_and_vetted_at_every_send() {
    let port = server(OK).await;
    let e = egress(
        &format!("{{id: x, component: http, host: 127.0.0.1, port: {port}}}"),
        &[],
    );
    let own = e
        .prepare(get_request(&format!("http://127.0.0.1:{port}/")))
        .expect("parses");
    let elsewhere = e
        .prepare(get_request("http://10.1.2.3/"))
        .expect("parses: the allowlist is asked at each send");
    for _ in 0..3 {
        let mut usage = CallUsage::default();
        let budget = Budget::new(Duration::from_secs(5));
        let response = e
            .send_prepared(&own, budget, &mut usage)
            .await
            .expect("sent");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"ok"[..])
        );
        let err = e
            .send_prepared(&elsewhere, budget, &mut usage)
            .await
            .expect_err("outside the allowlist");
        assert!(matches!(err, EgressError::Denied(_)), "{err:?}");
        assert_eq!(usage.requests, 1, "a denied request is not sent");
    }
}

#[test]
fn a_prepared_request_counts_its_url_headers_and_body() {
    let e = egress("{id: x, component: http, host: 127.0.0.1, port: 80}", &[]);
    let bare = e.prepare(get_request("http://127.0.0.1/")).expect("parses");
    let mut request = get_request("http://127.0.0.1/");
    request.headers.push(("x-a".into(), "1234".into()));
    request.body = Some(vec![0; 1000]);
    let fuller = e.prepare(request).expect("parses");
    assert_eq!(fuller.size() - bare.size(), 3 + 4 + HEADER_OVERHEAD + 1000);
}
