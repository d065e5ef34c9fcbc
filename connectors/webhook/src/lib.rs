//! A webhook endpoint: sends one request and is healthy when the answer's
//! status is one of `expected_status`; anything else is unhealthy.
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `method` | `POST` | request method |
//! | `path` | health path, else `/` | path below the base path |
//! | `body` | empty | request body, sent as it is |
//! | `content_type` | `application/json` when `body` is set, else none | `Content-Type` of the request |
//! | `expected_status` | `200-299` | codes and ranges, e.g. `200-299,400` |
//! | `headers.NAME` | | request header (a `headers:` map in YAML) |
//!
//! The default request is an empty `POST`, which a receiver has nothing to
//! act on; give `body` (a ping or test payload the receiver accepts) or
//! widen `expected_status` (e.g. `200-299,400,422` for receivers that
//! reject an empty payload) as the receiver needs.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Webhook {
    request: http::Request,
    expected: http::StatusRanges,
}

/// An HTTP method is a token: letters, digits and a few symbols.
fn is_method(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Connector for Webhook {
    const NAME: &'static str = "Webhook";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "Webhook endpoint: answers the expected status";

    fn new(config: &Config) -> Result<Self, String> {
        let method = config
            .setting("method")
            .unwrap_or("POST")
            .trim()
            .to_ascii_uppercase();
        if !is_method(&method) {
            return Err(format!("settings.method: `{method}` is not an HTTP method"));
        }
        let path = config
            .setting("path")
            .unwrap_or_else(|| config.health_path_or("/"));
        let mut request = http::Request::new(method.clone(), config.url(path));
        let body = config.setting("body");
        let content_type = config
            .setting("content_type")
            .or(body.map(|_| "application/json"));
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        for (name, value) in config.settings_under("headers") {
            request = request.header(name, value);
        }
        // Without a body the host still sends `Content-Length: 0` on a POST.
        if let Some(body) = body {
            request = request.body(body);
        }
        let expected = http::StatusRanges::from_setting(config, "expected_status", "200-299")?;
        Ok(Webhook { request, expected })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let what = response.describe_status();
        if !self.expected.contains(response.status) {
            let text = response.text();
            let said = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('<'))
                .map(|l| format!(" ({})", l.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(Error::new(format!(
                "{what}{said}, expected {}",
                self.expected
            )));
        }
        Ok(HealthReport::healthy()
            .message(what)
            .detail("status", response.status.to_string()))
    }
}

export_connector!(Webhook);
