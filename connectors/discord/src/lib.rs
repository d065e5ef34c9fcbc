//! Discord: `GET /api/v10/users/@me` (or the configured path) with the
//! bot token, which the host attaches from the entry's
//! `auth: {headers: {Authorization: "Bot ${DISCORD_TOKEN}"}}`. Healthy when
//! Discord answers 2xx with the bot's user (`username` and `id` in the
//! details); 401 is unhealthy (Discord refused the bot token), 429 degraded
//! (rate limited, `retry_after` in the details).

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

struct Discord {
    request: http::Request,
}

impl Connector for Discord {
    const NAME: &'static str = "Discord";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "Discord API: the bot token works (users/@me)";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Discord {
            request: config.health_request("/api/v10/users/@me"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let what = response.describe_status();
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        let said = body
            .get("message")
            .and_then(Value::as_str)
            .map(|m| format!(" ({})", m.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        match response.status {
            401 => {
                return Err(Error::new(format!(
                    "Discord refused the bot token: {what}{said}"
                )));
            }
            429 => {
                // The body's retry_after is in seconds (fractional); the
                // Retry-After header is the fallback.
                let retry_after = match body.get("retry_after") {
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => response.header("retry-after").map(|s| s.trim().to_string()),
                };
                let scope = if body.get("global").and_then(Value::as_bool) == Some(true) {
                    " (global limit)"
                } else {
                    ""
                };
                return Ok(match retry_after {
                    Some(seconds) => HealthReport::degraded(format!(
                        "Discord rate limited the check{scope}: retry after {seconds}s"
                    ))
                    .detail("retry_after", seconds),
                    None => {
                        HealthReport::degraded(format!("Discord rate limited the check{scope}"))
                    }
                });
            }
            _ if !response.is_success() => return Err(Error::new(format!("{what}{said}"))),
            _ => {}
        }
        Ok(HealthReport::healthy().message(what).details_from(
            ["username", "id"].map(|key| (key, body.get(key).and_then(Value::as_str))),
        ))
    }
}

export_connector!(Discord);
