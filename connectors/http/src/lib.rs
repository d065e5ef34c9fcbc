//! A generic HTTP check, configured through `settings`:
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `method` | `GET` | request method |
//! | `path` | health path, else `/` | path below the base path |
//! | `expected_status` | `200-299` | codes and ranges, e.g. `200-299,401` |
//! | `body_contains` / `body_not_contains` | | substring the body must / must not hold |
//! | `body_matches` / `body_not_matches` | | regex the body must / must not match |
//! | `body` | | request body |
//! | `headers.NAME` | | request header (a `headers:` map in YAML) |
//!
//! Regexes are `regex-lite`'s (ASCII classes, no `\p{..}`): its tables are a
//! fraction of `regex`'s, and every instance holds its own copy of the
//! component's data in linear memory.

use regex_lite::Regex;
use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct HttpCheck {
    request: http::Request,
    expected: http::StatusRanges,
    contains: Option<String>,
    not_contains: Option<String>,
    matches: Option<Regex>,
    not_matches: Option<Regex>,
    /// The last healthy report and its status code. A target answers the
    /// same check the same way most of the time, and a copy of the report
    /// costs the guest less than formatting it again.
    healthy: Option<(u16, HealthReport)>,
}

fn regex_setting(config: &Config, key: &str) -> Result<Option<Regex>, String> {
    config
        .setting(key)
        .map(|pattern| {
            Regex::new(pattern).map_err(|e| format!("settings.{key}: invalid regex: {e}"))
        })
        .transpose()
}

impl Connector for HttpCheck {
    const NAME: &'static str = "HTTP";
    const TYPE: ConnectorType = ConnectorType::Custom;
    const DESCRIPTION: &'static str = "Generic HTTP endpoint check";

    fn new(config: &Config) -> Result<Self, String> {
        let path = config
            .setting("path")
            .unwrap_or_else(|| config.health_path_or("/"));
        let method = config
            .setting("method")
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let mut request = http::Request::new(method, config.url(path));
        for (name, value) in config.settings_under("headers") {
            request = request.header(name, value);
        }
        if let Some(body) = config.setting("body") {
            request = request.body(body);
        }
        let expected = http::StatusRanges::from_setting(config, "expected_status", "200-299")?;
        Ok(HttpCheck {
            request,
            expected,
            contains: config.setting("body_contains").map(str::to_string),
            not_contains: config.setting("body_not_contains").map(str::to_string),
            matches: regex_setting(config, "body_matches")?,
            not_matches: regex_setting(config, "body_not_matches")?,
            healthy: None,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        if !self.expected.contains(response.status) {
            let what = response.describe_status();
            return Err(Error::new(format!("{what}, expected {}", self.expected)));
        }
        if let Some(why) = self.body_problem(&response) {
            let what = response.describe_status();
            return Err(Error::new(format!("{what} but the body {why}")));
        }
        if let Some((status, report)) = &self.healthy
            && *status == response.status
        {
            return Ok(report.clone());
        }
        let report = HealthReport::healthy()
            .message(response.describe_status())
            .detail("status", response.status.to_string());
        self.healthy = Some((response.status, report.clone()));
        Ok(report)
    }
}

impl HttpCheck {
    /// What the body settings find wrong with the response's body, if
    /// anything. The body is fetched from the host only if a setting reads it.
    fn body_problem(&self, response: &http::Response) -> Option<String> {
        if self.contains.is_none()
            && self.not_contains.is_none()
            && self.matches.is_none()
            && self.not_matches.is_none()
        {
            return None;
        }
        // Borrowed unless the body is not UTF-8.
        let body = String::from_utf8_lossy(response.body());
        if let Some(needle) = &self.contains
            && !body.contains(needle.as_str())
        {
            return Some(format!("does not contain {needle:?}"));
        }
        if let Some(needle) = &self.not_contains
            && body.contains(needle.as_str())
        {
            return Some(format!("contains {needle:?}"));
        }
        if let Some(re) = &self.matches
            && !re.is_match(&body)
        {
            return Some(format!("does not match /{re}/"));
        }
        if let Some(re) = &self.not_matches
            && re.is_match(&body)
        {
            return Some(format!("matches /{re}/"));
        }
        None
    }
}

export_connector!(HttpCheck);
