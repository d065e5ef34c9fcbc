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
//! Regexes have the syntax of Rust's `regex` crate with ASCII classes. The
//! host searches the body (`http::Pattern`): the body stays out of the
//! instance's memory, and so does a regex engine, whose data every instance
//! would hold a copy of.

use sandport_sdk::http::Pattern;
use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct HttpCheck {
    request: http::Request,
    expected: http::StatusRanges,
    /// The body settings, in the order they are judged.
    body_rules: Vec<BodyRule>,
    /// The last healthy report and its status code. A target answers the
    /// same check the same way most of the time, and a copy of the report
    /// costs the guest less than formatting it again.
    healthy: Option<(u16, HealthReport)>,
}

/// One body setting: a pattern the body must (or must not) match.
struct BodyRule {
    pattern: Pattern,
    must_match: bool,
    /// What the body does when the rule fails: `does not contain "ok"`,
    /// `matches /error/`.
    failure: String,
}

impl BodyRule {
    /// The rules of the four body settings, in the order they are judged.
    fn from_settings(config: &Config) -> Result<Vec<BodyRule>, String> {
        let mut rules = Vec::new();
        for (key, must_match, failure) in [
            ("body_contains", true, "does not contain"),
            ("body_not_contains", false, "contains"),
            ("body_matches", true, "does not match"),
            ("body_not_matches", false, "matches"),
        ] {
            let Some(setting) = config.setting(key) else {
                continue;
            };
            let (pattern, failure) = if key.ends_with("contains") {
                let pattern =
                    Pattern::literal(setting).map_err(|e| format!("settings.{key}: {e}"))?;
                (pattern, format!("{failure} {setting:?}"))
            } else {
                let pattern = Pattern::new(setting)
                    .map_err(|e| format!("settings.{key}: invalid regex: {e}"))?;
                (pattern, format!("{failure} /{setting}/"))
            };
            rules.push(BodyRule {
                pattern,
                must_match,
                failure,
            });
        }
        Ok(rules)
    }
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
            body_rules: BodyRule::from_settings(config)?,
            healthy: None,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        if !self.expected.contains(response.status) {
            let what = response.describe_status();
            return Err(Error::new(format!("{what}, expected {}", self.expected)));
        }
        if let Some(why) = self.body_problem(&response)? {
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
    /// anything. The host searches the body; it is not copied in.
    fn body_problem(&self, response: &http::Response) -> Result<Option<String>, Error> {
        for rule in &self.body_rules {
            if response.body_matches(&rule.pattern)? != rule.must_match {
                return Ok(Some(rule.failure.clone()));
            }
        }
        Ok(None)
    }
}

export_connector!(HttpCheck);
