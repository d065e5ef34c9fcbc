use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, header};
use tower::ServiceExt;

use super::*;

async fn call(method: Method, path: &str, if_none_match: Option<&str>) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    router::<()>()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body_of(response: Response<Body>) -> Vec<u8> {
    to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec()
}

fn assert_secure(path: &str, response: &Response<Body>) {
    let headers = response.headers();
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY,
        "{path}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
}

#[test]
fn the_policy_is_the_strict_one() {
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            CONTENT_SECURITY_POLICY
                .split("; ")
                .any(|have| have == directive),
            "{directive} missing from {CONTENT_SECURITY_POLICY}"
        );
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[tokio::test]
async fn each_asset_is_served_with_its_type_and_the_headers() {
    let expected = [
        ("/", "text/html; charset=utf-8", "<!doctype html>"),
        ("/status/app.js", "text/javascript; charset=utf-8", "//"),
        ("/status/view.js", "text/javascript; charset=utf-8", "//"),
        ("/status/format.js", "text/javascript; charset=utf-8", "//"),
        ("/status/style.css", "text/css; charset=utf-8", "/*"),
        ("/status/favicon.svg", "image/svg+xml", "<svg"),
    ];
    for (path, content_type, starts) in expected {
        let response = call(Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_secure(path, &response);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let body = String::from_utf8(body_of(response).await).unwrap();
        assert!(body.trim_start().starts_with(starts), "{path}: {body:.40}");

        // Revalidation: the same tag (also weak, also in a list) is a 304
        // with no body and the same headers; another tag is the file again.
        for tag in [etag.clone(), format!("\"x\", W/{etag}"), "*".into()] {
            let response = call(Method::GET, path, Some(&tag)).await;
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path} {tag}");
            assert_secure(path, &response);
            assert_eq!(response.headers()[header::ETAG], etag.as_str());
            assert!(body_of(response).await.is_empty());
        }
        let response = call(Method::GET, path, Some("\"other\"")).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn assets_differ_in_their_tags() {
    let mut tags = Vec::new();
    for asset in ASSETS {
        let response = call(Method::GET, asset.path, None).await;
        tags.push(response.headers()[header::ETAG].clone());
    }
    tags.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    tags.dedup();
    assert_eq!(tags.len(), ASSETS.len());
}

#[tokio::test]
async fn unknown_paths_under_status_are_404_with_the_headers() {
    for path in [
        "/status",
        "/status/",
        "/status/app.js.map",
        "/status/index.html",
        "/status/%2e%2e/Cargo.toml",
        "/status/assets/app.js",
        "/status/APP.JS",
    ] {
        let response = call(Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_secure(path, &response);
    }
}

#[tokio::test]
async fn other_methods_are_refused_with_the_headers() {
    let response = call(Method::POST, "/", None).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_secure("POST /", &response);
    let response = call(Method::HEAD, "/status/app.js", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body_of(response).await.is_empty());
}

/// What the page links to is what the router serves, and nothing else.
#[test]
fn the_page_links_only_to_served_assets() {
    let html = std::str::from_utf8(ASSETS[0].body).unwrap();
    let mut linked = 0;
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            let target = &rest[..rest.find('"').unwrap()];
            if target.starts_with('#') {
                continue;
            }
            assert!(
                ASSETS.iter().any(|asset| asset.path == target),
                "index.html links to {target}, which the router does not serve"
            );
            linked += 1;
        }
    }
    assert!(linked >= 3, "index.html links to {linked} assets");
}

/// The CSP would stop inline code, but a page that relies on it breaks
/// instead of working; and markup built from strings is how guest text
/// would become markup.
#[test]
fn the_assets_have_no_inline_code_and_no_html_sinks() {
    let html = std::str::from_utf8(ASSETS[0].body)
        .unwrap()
        .to_ascii_lowercase();
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!html.contains("<style"), "inline <style> in index.html");
    assert!(!html.contains(" style="), "style attribute in index.html");
    assert!(!html.contains("javascript:"));
    for (at, _) in html.match_indices(" on") {
        let word: String = html[at + 1..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let attribute = html[at + 1 + word.len()..].starts_with('=');
        assert!(!attribute, "inline handler {word}= in index.html");
    }
    let scripts = ASSETS.iter().filter(|asset| asset.path.ends_with(".js"));
    let js: String = scripts
        .map(|asset| std::str::from_utf8(asset.body).unwrap())
        .collect();
    assert!(js.contains("textContent"), "no scripts checked");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setTimeout(\"",
        "createContextualFragment",
        "DOMParser",
    ] {
        assert!(!js.contains(sink), "a script uses {sink}");
    }
}
