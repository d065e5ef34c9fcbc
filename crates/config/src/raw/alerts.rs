//! The `alerts:` and `history:` sections -> [`AlertsConfig`] and
//! [`HistoryConfig`], collecting every problem.
//!
//! Each problem's key is the full path from the top of the file
//! (`alerts.providers[1].url`), since these sections are not connector
//! entries. A bad provider, route or window is left out and reported; the
//! others still load. A route naming a provider that was given but is bad
//! keeps its other providers without a second problem. Values that may be
//! secrets (URLs, header values, routing keys) expand `${VAR}` and are never
//! quoted in a message.

use std::collections::{BTreeMap, HashSet};

use serde_norway::{Mapping, Value};

use super::env::{Env, expand_env};
use super::fields::{Fields, describe, key_name, scalar};
use crate::alerts::{
    AlertsConfig, HistoryConfig, MaintenanceWindow, Match, PAGERDUTY_EVENTS_URL, Provider,
    ProviderType, Route, Schedule, Weekly, parse_time,
};
use crate::{ConnectorType, Problem, Secret, units};

pub const ALERTS_KEYS: &[&str] = &["providers", "routes", "maintenance"];
pub const HISTORY_KEYS: &[&str] = &["enabled", "raw", "rollups"];
pub const PROVIDER_KEYS: &[&str] = &["name", "type", "url", "headers", "routing_key"];
pub const ROUTE_KEYS: &[&str] = &[
    "name",
    "match",
    "providers",
    "send_on_resolved",
    "repeat_interval",
];
pub const MAINTENANCE_KEYS: &[&str] = &["name", "match", "start", "end", "every"];
pub const MATCH_KEYS: &[&str] = &["ids", "types", "tags"];

/// Problems found under `prefix` (e.g. `alerts.routes[0].`), as the
/// file-level [`Problem`]s they become; an empty key names the item itself.
fn report(prefix: &str, local: Vec<(String, String)>, out: &mut Vec<Problem>) {
    for (key, message) in local {
        let key = if key.is_empty() {
            prefix.trim_end_matches('.').to_string()
        } else {
            format!("{prefix}{key}")
        };
        out.push(Problem {
            entry: String::new(),
            key,
            message,
        });
    }
}

fn problem(out: &mut Vec<Problem>, key: impl Into<String>, message: impl Into<String>) {
    out.push(Problem {
        entry: String::new(),
        key: key.into(),
        message: message.into(),
    });
}

/// The `history:` section; defaults for what it does not say.
pub fn parse_history(value: Option<&Value>, out: &mut Vec<Problem>) -> HistoryConfig {
    let defaults = HistoryConfig::default();
    let map = match value {
        None | Some(Value::Null) => return defaults,
        Some(Value::Mapping(map)) => map,
        Some(other) => {
            let found = describe(other);
            problem(
                out,
                "history",
                format!("expected a map with `enabled`, `raw` and `rollups`, found {found}"),
            );
            return defaults;
        }
    };
    let mut local = Vec::new();
    let mut f = Fields::new(map, "", HISTORY_KEYS, &mut local);
    let enabled = f.boolean("enabled").unwrap_or(defaults.enabled);
    let raw = f.with("raw", units::duration);
    let rollups = f.with("rollups", units::duration);
    let raw_retention = raw.unwrap_or(defaults.raw_retention);
    let rollup_retention = rollups.unwrap_or(defaults.rollup_retention.max(raw_retention));
    if raw_retention < HistoryConfig::MIN_RAW_RETENTION {
        f.problem(
            "raw",
            "must be at least 1h; hourly rollups are made from the raw results",
        );
    } else if rollup_retention < raw_retention {
        f.problem(
            "rollups",
            format!(
                "{} is shorter than `raw` ({}); rollups must be kept at least as long as the raw results",
                units::format_duration(rollup_retention),
                units::format_duration(raw_retention)
            ),
        );
    }
    report("history.", local, out);
    HistoryConfig {
        enabled,
        raw_retention,
        rollup_retention,
    }
}

/// The `alerts:` section: its good providers, routes and windows.
pub fn parse_alerts(value: Option<&Value>, env: Env<'_>, out: &mut Vec<Problem>) -> AlertsConfig {
    let map = match value {
        None | Some(Value::Null) => return AlertsConfig::default(),
        Some(Value::Mapping(map)) => map,
        Some(other) => {
            let found = describe(other);
            problem(
                out,
                "alerts",
                format!(
                    "expected a map with `providers`, `routes` and `maintenance`, found {found}"
                ),
            );
            return AlertsConfig::default();
        }
    };
    let mut local = Vec::new();
    let f = Fields::new(map, "", ALERTS_KEYS, &mut local);
    let items = |key: &str, out: &mut Vec<Problem>| -> Vec<&Value> {
        match f.get(key) {
            None => Vec::new(),
            Some(Value::Sequence(items)) => items.iter().collect(),
            Some(other) => {
                let found = describe(other);
                problem(
                    out,
                    format!("alerts.{key}"),
                    format!("expected a list, found {found}"),
                );
                Vec::new()
            }
        }
    };
    let provider_items = items("providers", out);
    let route_items = items("routes", out);
    let window_items = items("maintenance", out);
    report("alerts.", local, out);

    let mut providers: Vec<Provider> = Vec::new();
    let mut declared = HashSet::new();
    for (index, value) in provider_items.into_iter().enumerate() {
        let prefix = format!("alerts.providers[{index}].");
        let mut local = Vec::new();
        let provider = parse_provider(value, env, &mut local);
        if let Some(name) = value.get("name").and_then(scalar)
            && !declared.insert(name.clone())
        {
            local.push((
                "name".into(),
                format!("duplicate provider name `{name}`; each provider needs its own name"),
            ));
        }
        match provider {
            Some(provider) if local.is_empty() => providers.push(provider),
            _ => report(&prefix, local, out),
        }
    }

    let mut routes: Vec<Route> = Vec::new();
    let mut route_names = HashSet::new();
    for (index, value) in route_items.into_iter().enumerate() {
        let prefix = format!("alerts.routes[{index}].");
        let mut local = Vec::new();
        let route = parse_route(value, index, &providers, &declared, &mut local);
        if let Some(route) = &route
            && !route_names.insert(route.name.clone())
        {
            let message = if value.get("name").is_some_and(|v| !v.is_null()) {
                format!(
                    "duplicate route name `{}`; each route needs its own name",
                    route.name
                )
            } else {
                format!(
                    "this route's default name `{}` is taken by another route; give it a `name`",
                    route.name
                )
            };
            local.push(("name".into(), message));
        }
        match route {
            Some(route) if local.is_empty() => routes.push(route),
            _ => report(&prefix, local, out),
        }
    }

    let mut maintenance: Vec<MaintenanceWindow> = Vec::new();
    let mut window_names = HashSet::new();
    for (index, value) in window_items.into_iter().enumerate() {
        let prefix = format!("alerts.maintenance[{index}].");
        let mut local = Vec::new();
        let window = parse_window(value, index, &mut local);
        if let Some(window) = &window
            && !window_names.insert(window.name.clone())
        {
            local.push((
                "name".into(),
                format!(
                    "duplicate maintenance window name `{}`; each window needs its own name",
                    window.name
                ),
            ));
        }
        match window {
            Some(window) if local.is_empty() => maintenance.push(window),
            _ => report(&prefix, local, out),
        }
    }
    AlertsConfig {
        providers,
        routes,
        maintenance,
    }
}

fn as_map<'a>(
    value: &'a Value,
    what: &str,
    problems: &mut Vec<(String, String)>,
) -> Option<&'a Mapping> {
    match value {
        Value::Mapping(map) => Some(map),
        other => {
            problems.push((
                String::new(),
                format!("expected a map with {what}, found {}", describe(other)),
            ));
            None
        }
    }
}

/// Letters, digits, `-`, `_` and `.`: names appear in URLs of the API and
/// in logs.
fn check_name(f: &mut Fields<'_, '_>, name: &str) {
    if name.is_empty() {
        f.problem("name", "is empty");
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        f.problem(
            "name",
            format!("`{name}` may only hold letters, digits, `-`, `_` and `.`"),
        );
    }
}

/// Why `url` is not a URL a provider can post to; the URL itself is never
/// quoted (a webhook URL is often its own credential).
fn check_url(url: &str) -> Result<(), &'static str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err("must start with http:// or https://");
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "is not a valid URL; write it like https://hooks.example.com/path")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://"),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err("has no host name"),
    }
}

fn parse_provider(
    value: &Value,
    env: Env<'_>,
    problems: &mut Vec<(String, String)>,
) -> Option<Provider> {
    let map = as_map(value, "`name`, `type` and `url`", problems)?;
    let mut f = Fields::new(map, "", PROVIDER_KEYS, problems);
    let name = match f.string("name") {
        Some(name) => {
            check_name(&mut f, &name);
            name
        }
        None => {
            f.problem(
                "name",
                "missing; every provider needs a name that routes use",
            );
            String::new()
        }
    };
    let options: Vec<(&str, ProviderType)> =
        ProviderType::ALL.iter().map(|t| (t.as_str(), *t)).collect();
    let provider_type = f.choice("type", &options);
    if f.get("type").is_none() {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        f.problem("type", format!("missing; one of: {}", names.join(", ")));
    }
    let secret = |f: &mut Fields<'_, '_>, key: &str| -> Option<Secret> {
        let raw = f.string(key)?;
        match expand_env(&raw, env) {
            Ok(value) if value.trim().is_empty() => {
                f.problem(key, "is empty");
                None
            }
            Ok(value) => Some(Secret::new(value.trim())),
            Err(message) => {
                f.problem(key, message);
                None
            }
        }
    };
    let url = secret(&mut f, "url");
    let routing_key = secret(&mut f, "routing_key");
    let raw_headers = f.string_map("headers");
    let provider_type = provider_type?;
    let url = match url {
        Some(url) => {
            if let Err(message) = check_url(url.expose()) {
                f.problem("url", message);
            }
            url
        }
        None if provider_type == ProviderType::PagerDuty => Secret::new(PAGERDUTY_EVENTS_URL),
        None => {
            if f.get("url").is_none() {
                f.problem(
                    "url",
                    format!("missing; a {provider_type} provider needs its URL"),
                );
            }
            Secret::default()
        }
    };
    let routing_key = match (provider_type, routing_key) {
        (ProviderType::PagerDuty, Some(key)) => Some(key),
        (ProviderType::PagerDuty, None) => {
            if f.get("routing_key").is_none() {
                f.problem(
                    "routing_key",
                    "missing; a pagerduty provider needs the integration's routing key",
                );
            }
            None
        }
        (_, _) => {
            if f.get("routing_key").is_some() {
                f.problem(
                    "routing_key",
                    format!(
                        "only pagerduty providers take a routing key; this one is {provider_type}"
                    ),
                );
            }
            None
        }
    };
    let mut headers = BTreeMap::new();
    if provider_type != ProviderType::Webhook && f.get("headers").is_some() {
        f.problem(
            "headers",
            format!("only webhook providers send extra headers; this one is {provider_type}"),
        );
    }
    for (header, value) in raw_headers {
        let key = format!("headers.{header}");
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            f.problem(&key, format!("`{header}` is not a valid HTTP header name"));
            continue;
        }
        match expand_env(&value, env) {
            Ok(v) if http::HeaderValue::from_str(&v).is_ok() => {
                headers.insert(header, Secret::new(v));
            }
            Ok(_) => f.problem(&key, "not a valid HTTP header value"),
            Err(message) => f.problem(&key, message),
        }
    }
    Some(Provider {
        name,
        provider_type,
        url,
        headers,
        routing_key,
    })
}

/// A list of plain values under `key`; each bad item is named by index.
fn string_list(f: &mut Fields<'_, '_>, key: &str) -> Vec<String> {
    let Some(value) = f.get(key) else {
        return Vec::new();
    };
    let Value::Sequence(items) = value else {
        let found = describe(value);
        f.problem(key, format!("expected a list, found {found}"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match scalar(item).filter(|s| !s.is_empty()) {
            Some(text) => out.push(text),
            None => {
                let found = describe(item);
                f.problem(
                    &format!("{key}[{index}]"),
                    format!("expected a name, found {found}"),
                );
            }
        }
    }
    out
}

fn parse_match(f: &mut Fields<'_, '_>) -> Match {
    let Some(map) = f.sub_map("match") else {
        return Match::default();
    };
    let mut local = Vec::new();
    let mut m = Fields::new(map, "", MATCH_KEYS, &mut local);
    let ids = string_list(&mut m, "ids");
    let tags = string_list(&mut m, "tags");
    let mut types = Vec::new();
    for (index, name) in string_list(&mut m, "types").into_iter().enumerate() {
        match ConnectorType::parse(name.trim()) {
            Some(t) => types.push(t),
            None => {
                let known: Vec<&str> = ConnectorType::ALL.iter().map(|t| t.as_str()).collect();
                m.problem(
                    &format!("types[{index}]"),
                    format!(
                        "`{name}` is not a connector type; types: {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    for (key, message) in local {
        f.problem(&format!("match.{key}"), message);
    }
    Match { ids, types, tags }
}

fn parse_route(
    value: &Value,
    index: usize,
    providers: &[Provider],
    declared: &HashSet<String>,
    problems: &mut Vec<(String, String)>,
) -> Option<Route> {
    let map = as_map(value, "`match` and `providers`", problems)?;
    let mut f = Fields::new(map, "", ROUTE_KEYS, problems);
    let name = match f.string("name") {
        Some(name) => {
            check_name(&mut f, &name);
            name
        }
        None => format!("route-{}", index + 1),
    };
    let matcher = parse_match(&mut f);
    let mut names = Vec::new();
    let listed = string_list(&mut f, "providers");
    if listed.is_empty() && f.get("providers").is_none() {
        f.problem(
            "providers",
            "missing; list the names of the providers to alert",
        );
    }
    for (i, provider) in listed.into_iter().enumerate() {
        if providers.iter().any(|p| p.name == provider) {
            if !names.contains(&provider) {
                names.push(provider);
            }
        } else if !declared.contains(&provider) {
            let known: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            let known = if known.is_empty() {
                "there are none under alerts.providers".to_string()
            } else {
                format!("providers: {}", known.join(", "))
            };
            f.problem(
                &format!("providers[{i}]"),
                format!("no provider is named `{provider}`; {known}"),
            );
        }
    }
    let send_on_resolved = f.boolean("send_on_resolved").unwrap_or(true);
    let repeat_interval = f.with("repeat_interval", units::duration);
    if let Some(every) = repeat_interval
        && every < Route::MIN_REPEAT_INTERVAL
    {
        f.problem(
            "repeat_interval",
            "must be at least 1m (leave it out for no reminders)",
        );
    }
    Some(Route {
        name,
        matcher,
        providers: names,
        send_on_resolved,
        repeat_interval,
    })
}

fn parse_window(
    value: &Value,
    index: usize,
    problems: &mut Vec<(String, String)>,
) -> Option<MaintenanceWindow> {
    let map = as_map(value, "`start` and `end`, or `every`", problems)?;
    let mut f = Fields::new(map, "", MAINTENANCE_KEYS, problems);
    let name = match f.string("name") {
        Some(name) => {
            check_name(&mut f, &name);
            name
        }
        None => format!("maintenance-{}", index + 1),
    };
    let matcher = parse_match(&mut f);
    let start = f.with("start", time_value);
    let end = f.with("end", time_value);
    let every = f.with("every", |v| match v {
        Value::String(text) => Weekly::parse(text),
        other => Err(format!(
            "expected text like `sat,sun 01:00-03:00 UTC`, found {}",
            describe(other)
        )),
    });
    let given = |key: &str| f.get(key).is_some();
    let (has_start, has_end, has_every) = (given("start"), given("end"), given("every"));
    let schedule = if has_every {
        if has_start || has_end {
            f.problem(
                "every",
                "give either `every` or `start` and `end`, not both",
            );
        }
        every.map(Schedule::Weekly)
    } else {
        match (has_start, has_end) {
            (false, false) => {
                f.problem(
                    "",
                    "needs `start` and `end` (RFC 3339 times), or `every` (like `sat,sun 01:00-03:00 UTC`)",
                );
                None
            }
            (true, false) => {
                f.problem("end", "missing; a window with `start` needs an `end`");
                None
            }
            (false, true) => {
                f.problem("start", "missing; a window with `end` needs a `start`");
                None
            }
            (true, true) => match (start, end) {
                (Some(start), Some(end)) if end <= start => {
                    f.problem("end", "must be after `start`");
                    None
                }
                (Some(start), Some(end)) => Some(Schedule::Once { start, end }),
                _ => None,
            },
        }
    };
    Some(MaintenanceWindow {
        name,
        matcher,
        schedule: schedule?,
    })
}

fn time_value(value: &Value) -> Result<std::time::SystemTime, String> {
    match value {
        Value::String(text) => parse_time(text),
        other => Err(format!(
            "expected an RFC 3339 time like `2026-12-24T02:00:00Z`, found {}",
            describe(other)
        )),
    }
}

/// Whether a top-level key is one of the sections this file parses.
pub fn is_section(key: &Value) -> bool {
    matches!(key_name(key).as_str(), "alerts" | "history")
}
