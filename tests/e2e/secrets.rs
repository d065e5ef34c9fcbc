//! The credentials the host attaches never come back to the guest: a target
//! that echoes the request it received shows the guest `[redacted]` where
//! the secret was, in the body and in the headers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use sandport_core::HealthStatus;
use sandport_tests::{HOSTILE_WASM, detail, entry, runtime};

/// An httpbin-style `/anything` on loopback: every request's headers come
/// back as `name: value` lines in the body, and its `Authorization` and
/// `X-Api-Key` in the response headers `X-Echo-Authorization` and
/// `X-Echo-Key`. Keeps what it received, to prove the secret was sent.
async fn echo_server() -> (u16, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let kept = seen.clone();
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let kept = kept.clone();
        async move {
            let body: String = headers
                .iter()
                .map(|(name, value)| {
                    format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes()))
                })
                .collect();
            let mut answer = HeaderMap::new();
            for (from, to) in [
                ("authorization", "x-echo-authorization"),
                ("x-api-key", "x-echo-key"),
            ] {
                if let Some(value) = headers.get(from) {
                    answer.insert(to, value.clone());
                }
            }
            kept.lock().expect("seen").push(headers);
            (answer, body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

/// Registers a `raw-send` guest fetching the echo server's `/anything`
/// with `auth`, checks it once, and returns what it saw and what the server
/// received.
async fn echoed(id: &str, auth: &str) -> (sandport_core::HealthSnapshot, HeaderMap) {
    let (port, seen) = echo_server().await;
    let runtime = runtime();
    runtime
        .register(entry(&format!(
            "{{id: {id}, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {port}, settings: {{mode: raw-send, url: 'http://127.0.0.1:{port}/anything'}}, auth: {auth}}}"
        )))
        .await
        .expect("registers");
    let snap = runtime.check(id).await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let received = seen.lock().expect("seen").pop().expect("a request");
    (snap, received)
}

#[tokio::test]
async fn a_bearer_token_echoed_by_the_target_reaches_the_guest_redacted() {
    let token = "tok-3f9a1c77e2";
    let (snap, received) = echoed("bearer", &format!("{{type: bearer, token: {token}}}")).await;
    // The host did attach it...
    assert_eq!(
        received.get("authorization").map(|v| v.as_bytes()),
        Some(format!("Bearer {token}").as_bytes())
    );
    // ...and the guest saw only the marker, in the body and the headers.
    let body = detail(&snap, "body").expect("a body");
    assert!(body.contains("authorization: Bearer [redacted]"), "{body}");
    assert_eq!(
        detail(&snap, "x-echo-authorization"),
        Some("Bearer [redacted]"),
        "{snap:?}"
    );
    assert!(!format!("{snap:?}").contains(token), "{snap:?}");
}

#[tokio::test]
async fn basic_auth_echoed_by_the_target_reaches_the_guest_redacted() {
    let (snap, received) = echoed(
        "basic",
        "{type: basic, username: ops, password: pa55-word-9}",
    )
    .await;
    // `ops:pa55-word-9` in base64.
    let header = "Basic b3BzOnBhNTUtd29yZC05";
    assert_eq!(
        received.get("authorization").map(|v| v.as_bytes()),
        Some(header.as_bytes())
    );
    let body = detail(&snap, "body").expect("a body");
    assert!(body.contains("authorization: Basic [redacted]"), "{body}");
    assert_eq!(
        detail(&snap, "x-echo-authorization"),
        Some("Basic [redacted]"),
        "{snap:?}"
    );
    let all = format!("{snap:?}");
    assert!(
        !all.contains("b3BzOnBhNTUtd29yZC05") && !all.contains("pa55-word-9"),
        "{all}"
    );
}

#[tokio::test]
async fn api_keys_and_extra_auth_headers_echoed_by_the_target_reach_the_guest_redacted() {
    let (snap, received) = echoed(
        "keyed",
        "{type: api_key, api_key: key-77d0b1, headers: {X-Tenant: tenant-5e1b}}",
    )
    .await;
    assert_eq!(
        received.get("x-api-key").map(|v| v.as_bytes()),
        Some(&b"key-77d0b1"[..])
    );
    let body = detail(&snap, "body").expect("a body");
    assert!(body.contains("x-api-key: [redacted]"), "{body}");
    assert!(body.contains("x-tenant: [redacted]"), "{body}");
    assert_eq!(detail(&snap, "x-echo-key"), Some("[redacted]"), "{snap:?}");
    let all = format!("{snap:?}");
    assert!(
        !all.contains("key-77d0b1") && !all.contains("tenant-5e1b"),
        "{all}"
    );
}
