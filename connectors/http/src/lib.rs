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

use regex::Regex;
use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct HttpCheck {
    request: http::Request,
    expected: Vec<(u16, u16)>,
    contains: Option<String>,
    not_contains: Option<String>,
    matches: Option<Regex>,
    not_matches: Option<Regex>,
}

fn parse_status_ranges(spec: &str) -> Result<Vec<(u16, u16)>, String> {
    let bad = |part: &str| {
        format!("settings.expected_status: `{part}` is not a status code or range like 200-299")
    };
    spec.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let low: u16 = low.trim().parse().map_err(|_| bad(part))?;
            let high: u16 = high.trim().parse().map_err(|_| bad(part))?;
            if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
                return Err(bad(part));
            }
            Ok((low, high))
        })
        .collect()
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
        let expected = parse_status_ranges(config.setting("expected_status").unwrap_or("200-299"))?;
        if expected.is_empty() {
            return Err("settings.expected_status: names no status code".into());
        }
        Ok(HttpCheck {
            request,
            expected,
            contains: config.setting("body_contains").map(str::to_string),
            not_contains: config.setting("body_not_contains").map(str::to_string),
            matches: regex_setting(config, "body_matches")?,
            not_matches: regex_setting(config, "body_not_matches")?,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.clone().send()?;
        let what = response.describe_status();
        if !self
            .expected
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&response.status))
        {
            return Err(Error::new(format!(
                "{what}, expected {}",
                expected_text(&self.expected)
            )));
        }
        let body = response.text();
        let fail = |why: String| Err(Error::new(format!("{what} but the body {why}")));
        if let Some(needle) = &self.contains
            && !body.contains(needle.as_str())
        {
            return fail(format!("does not contain {needle:?}"));
        }
        if let Some(needle) = &self.not_contains
            && body.contains(needle.as_str())
        {
            return fail(format!("contains {needle:?}"));
        }
        if let Some(re) = &self.matches
            && !re.is_match(&body)
        {
            return fail(format!("does not match /{re}/"));
        }
        if let Some(re) = &self.not_matches
            && re.is_match(&body)
        {
            return fail(format!("matches /{re}/"));
        }
        Ok(HealthReport::healthy()
            .message(what)
            .detail("status", response.status.to_string()))
    }
}

fn expected_text(ranges: &[(u16, u16)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    parts.join(",")
}

export_connector!(HttpCheck);
