//! The status page a person opens in a browser: `GET /` and its assets
//! under `/status/`, embedded in the binary so the page works with no
//! network beyond this server; and [`badge`], the SVG a README embeds.
//!
//! The page itself (`assets/app.js`) reads `GET /api/v1/status` and the
//! server-sent events of `GET /api/v1/status/events`; those routes belong
//! to the REST API, not to this module.
//!
//! Every answer of [`router`] carries [`CONTENT_SECURITY_POLICY`]: the page
//! shows text that connectors (guests) control, and the policy is the
//! second wall should the page ever put such text into markup.

mod badge;

use axum::Router;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use sha2::{Digest, Sha256};

pub use badge::{BADGE_CONTENT_TYPE, badge, badge_response};

/// What the page may load and run: its own script and styles, nothing
/// inline, no frames, no forms, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file and the path it is served at.
#[derive(Clone, Copy)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 6] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        path: "/status/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        path: "/status/view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/view.js"),
    },
    Asset {
        path: "/status/format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/format.js"),
    },
    Asset {
        path: "/status/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/style.css"),
    },
    Asset {
        path: "/status/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// `GET /` (the page) and, under `/status/`, its script (`app.js`, which
/// imports `view.js` and `format.js`), `style.css` and `favicon.svg`. Any
/// other path under `/status/` is a 404. Each
/// answer has `Cache-Control: no-cache` and an `ETag`, so a browser
/// revalidates (a 304 when nothing changed) and never runs a stale script
/// after an upgrade; and the headers of [`secure_headers`].
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for asset in ASSETS {
        let etag = etag_of(asset.body);
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| {
                std::future::ready(serve(asset, etag.as_ref(), &headers))
            }),
        );
    }
    router
        .route("/status", any(not_found))
        .route("/status/", any(not_found))
        .route("/status/{*rest}", any(not_found))
        .layer(axum::middleware::map_response(with_secure_headers))
}

/// The headers every answer of the page carries; [`badge_response`] and a
/// caller serving anything else to a browser can reuse them.
pub fn secure_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

async fn with_secure_headers(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in secure_headers() {
        headers.insert(name, value);
    }
    response
}

/// A strong validator from the content: the first 16 bytes of its SHA-256.
fn etag_of(body: &[u8]) -> Option<HeaderValue> {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).ok()
}

fn serve(asset: Asset, etag: Option<&HeaderValue>, request: &HeaderMap) -> Response<Body> {
    let fresh = etag.is_some_and(|etag| matches_if_none_match(request, etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(asset.body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag.clone());
    }
    response
}

/// `If-None-Match: "a", W/"b"` or `*`: a weak match is enough for a GET
/// (RFC 9110, 13.1.2).
fn matches_if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such file on the status page\n",
    )
}

#[cfg(test)]
mod tests;
