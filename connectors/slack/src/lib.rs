//! Slack: `POST /api/auth.test` (or the configured path) with the bot
//! token, which the host attaches from the entry's
//! `auth: {type: bearer, token: ...}`. Healthy when Slack answers
//! `"ok": true`; `"ok": false` is unhealthy with Slack's error code (e.g.
//! `Slack refused the token: invalid_auth`); HTTP 429 is degraded (rate
//! limited, `retry_after` in the details). Details: `team`, `user`,
//! `team_id`, `user_id`.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

/// Errors of `auth.test` that mean the token is the problem.
const TOKEN_ERRORS: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "not_allowed_token_type",
    "missing_scope",
    "org_login_required",
    "ekm_access_denied",
    "team_access_not_granted",
    "two_factor_setup_required",
];

struct Slack {
    request: http::Request,
}

fn rate_limited(retry_after: Option<&str>) -> HealthReport {
    match retry_after {
        Some(seconds) => HealthReport::degraded(format!(
            "Slack rate limited the check (retry after {seconds}s)"
        ))
        .detail("retry_after", seconds),
        None => HealthReport::degraded("Slack rate limited the check"),
    }
}

impl Connector for Slack {
    const NAME: &'static str = "Slack";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "Slack Web API: the bot token works (auth.test)";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Slack {
            request: http::Request::post(
                config.url(config.health_path_or("/api/auth.test")),
                Vec::new(),
            )
            .header("Content-Type", "application/x-www-form-urlencoded"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        if response.status == 429 {
            return Ok(rate_limited(
                response.header("retry-after").as_deref().map(str::trim),
            ));
        }
        let response = response.expect_success()?;
        let body: Value = serde_json::from_slice(response.body()).map_err(|_| {
            Error::new(format!(
                "{} but the body is not JSON",
                response.describe_status()
            ))
        })?;
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        match body.get("ok").and_then(Value::as_bool) {
            Some(true) => {
                let mut report = HealthReport::healthy().message(response.describe_status());
                for key in ["team", "user", "team_id", "user_id"] {
                    if let Some(value) = text(key) {
                        report = report.detail(key, value);
                    }
                }
                Ok(report)
            }
            Some(false) => {
                let error = text("error").unwrap_or("no error code");
                if error == "ratelimited" {
                    return Ok(rate_limited(
                        response.header("retry-after").as_deref().map(str::trim),
                    ));
                }
                let message = if error == "not_authed" {
                    "Slack refused the token: not_authed (no token was sent; \
                     set `auth: {type: bearer, token: ...}`)"
                        .to_string()
                } else if TOKEN_ERRORS.contains(&error) {
                    format!("Slack refused the token: {error}")
                } else {
                    format!("Slack answered error: {error}")
                };
                Ok(HealthReport::unhealthy(message).detail("error", error))
            }
            None => Err(Error::new(format!(
                "{} but the answer has no \"ok\" field",
                response.describe_status()
            ))),
        }
    }
}

export_connector!(Slack);
