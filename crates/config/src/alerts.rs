//! The typed `alerts:` and `history:` sections: where alerts go
//! ([`Provider`]), which connectors each route covers ([`Route`], [`Match`]),
//! when alerts are silenced ([`MaintenanceWindow`], with the pure
//! [`MaintenanceWindow::active`]), how long check history is kept
//! ([`HistoryConfig`]), and both written back to the file's shape
//! ([`AlertsConfig::to_value`], [`HistoryConfig::to_value`]).
//!
//! Parsing lives in `raw/alerts.rs`; this file holds what the parser
//! produces and what the alerting engine asks of it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_norway::{Mapping, Value};

use crate::{ConnectorType, Secret, Secrets, units};

/// How long check history is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// `false`: no history is written.
    pub enabled: bool,
    /// Raw check results are kept this long (`raw`).
    pub raw_retention: Duration,
    /// Hourly rollups are kept this long (`rollups`).
    pub rollup_retention: Duration,
}

impl HistoryConfig {
    pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const DEFAULT_ROLLUP_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
    /// Below an hour no hourly rollup could be made from the raw results.
    pub const MIN_RAW_RETENTION: Duration = Duration::from_secs(3600);

    /// The `history:` section as an operator would write it.
    pub fn to_value(&self) -> Value {
        let HistoryConfig {
            enabled,
            raw_retention,
            rollup_retention,
        } = self;
        let mut map = Mapping::new();
        put(&mut map, "enabled", *enabled);
        put(&mut map, "raw", units::format_duration(*raw_retention));
        put(
            &mut map,
            "rollups",
            units::format_duration(*rollup_retention),
        );
        Value::Mapping(map)
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            raw_retention: Self::DEFAULT_RAW_RETENTION,
            rollup_retention: Self::DEFAULT_ROLLUP_RETENTION,
        }
    }
}

/// Where alerts go, which connectors they cover, and when they are silenced.
/// Empty (the default) when the file has no `alerts:` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsConfig {
    pub providers: Vec<Provider>,
    pub routes: Vec<Route>,
    pub maintenance: Vec<MaintenanceWindow>,
}

impl AlertsConfig {
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Whether a maintenance window covering this connector is active at `at`.
    pub fn in_maintenance(
        &self,
        id: &str,
        connector_type: &str,
        tags: &[String],
        at: SystemTime,
    ) -> bool {
        self.maintenance
            .iter()
            .any(|w| w.matcher.matches(id, connector_type, tags) && w.active(at))
    }

    /// The `alerts:` section as an operator would write it; parsing it
    /// again gives the same config (with [`Secrets::Keep`]). With
    /// [`Secrets::Redact`] every URL, header value and routing key is
    /// [`crate::REDACTED`], for API answers.
    pub fn to_value(&self, secrets: Secrets) -> Value {
        // Each part is destructured so that a new field fails to compile
        // here until it is written back.
        let AlertsConfig {
            providers,
            routes,
            maintenance,
        } = self;
        let providers = providers.iter().map(|provider| {
            let Provider {
                name,
                provider_type,
                url,
                headers,
                routing_key,
            } = provider;
            let mut map = Mapping::new();
            put(&mut map, "name", name.clone());
            put(&mut map, "type", provider_type.as_str());
            put(&mut map, "url", secrets.write(url));
            if !headers.is_empty() {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (Value::String(k.clone()), secrets.write(v).into()))
                    .collect();
                put(&mut map, "headers", Value::Mapping(headers));
            }
            if let Some(key) = routing_key {
                put(&mut map, "routing_key", secrets.write(key));
            }
            Value::Mapping(map)
        });
        let routes = routes.iter().map(|route| {
            let Route {
                name,
                matcher,
                providers,
                send_on_resolved,
                repeat_interval,
            } = route;
            let mut map = Mapping::new();
            put(&mut map, "name", name.clone());
            if !matcher.is_empty() {
                put(&mut map, "match", matcher.to_value());
            }
            put(&mut map, "providers", strings(providers));
            put(&mut map, "send_on_resolved", *send_on_resolved);
            if let Some(every) = repeat_interval {
                put(&mut map, "repeat_interval", units::format_duration(*every));
            }
            Value::Mapping(map)
        });
        let maintenance = maintenance.iter().map(|window| {
            let MaintenanceWindow {
                name,
                matcher,
                schedule,
            } = window;
            let mut map = Mapping::new();
            put(&mut map, "name", name.clone());
            if !matcher.is_empty() {
                put(&mut map, "match", matcher.to_value());
            }
            match schedule {
                Schedule::Once { start, end } => {
                    put(&mut map, "start", format_time(*start));
                    put(&mut map, "end", format_time(*end));
                }
                Schedule::Weekly(weekly) => put(&mut map, "every", weekly.to_string()),
            }
            Value::Mapping(map)
        });
        let mut map = Mapping::new();
        put(&mut map, "providers", Value::Sequence(providers.collect()));
        put(&mut map, "routes", Value::Sequence(routes.collect()));
        put(
            &mut map,
            "maintenance",
            Value::Sequence(maintenance.collect()),
        );
        Value::Mapping(map)
    }
}

/// RFC 3339 in UTC, as the config and the alert payloads write times.
pub fn format_time(at: SystemTime) -> String {
    humantime::format_rfc3339(at).to_string()
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::String(key.into()), value.into());
}

fn strings(items: &[String]) -> Value {
    Value::Sequence(items.iter().cloned().map(Value::String).collect())
}

/// The kind of receiver a provider posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderType {
    /// Any HTTP endpoint: the alert as JSON, with the provider's headers.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord channel webhook.
    Discord,
    /// PagerDuty Events API v2.
    PagerDuty,
}

impl ProviderType {
    pub const ALL: [ProviderType; 4] = [
        ProviderType::Webhook,
        ProviderType::Slack,
        ProviderType::Discord,
        ProviderType::PagerDuty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Webhook => "webhook",
            ProviderType::Slack => "slack",
            ProviderType::Discord => "discord",
            ProviderType::PagerDuty => "pagerduty",
        }
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a PagerDuty provider posts when it gives no `url`.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One receiver of alerts. The URL is a secret: Slack and Discord webhook
/// URLs carry their own credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    pub provider_type: ProviderType,
    /// An `http` or `https` URL.
    pub url: Secret,
    /// Extra headers (webhook providers only).
    pub headers: BTreeMap<String, Secret>,
    /// PagerDuty's integration key (PagerDuty providers only).
    pub routing_key: Option<Secret>,
}

/// Which connectors a route or a maintenance window covers: a connector
/// matches when each list given holds its id, its type or one of its tags.
/// An empty match covers every connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub ids: Vec<String>,
    pub types: Vec<ConnectorType>,
    pub tags: Vec<String>,
}

impl Match {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.types.is_empty() && self.tags.is_empty()
    }

    pub fn matches(&self, id: &str, connector_type: &str, tags: &[String]) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|i| i == id))
            && (self.types.is_empty() || self.types.iter().any(|t| t.as_str() == connector_type))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }

    fn to_value(&self) -> Value {
        let Match { ids, types, tags } = self;
        let mut map = Mapping::new();
        if !ids.is_empty() {
            put(&mut map, "ids", strings(ids));
        }
        if !types.is_empty() {
            let types = types
                .iter()
                .map(|t| Value::String(t.as_str().into()))
                .collect();
            put(&mut map, "types", Value::Sequence(types));
        }
        if !tags.is_empty() {
            put(&mut map, "tags", strings(tags));
        }
        Value::Mapping(map)
    }
}

/// Which connectors alert which providers.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Given, or `route-N` for the N-th route (from 1).
    pub name: String,
    pub matcher: Match,
    /// Names of providers in [`AlertsConfig::providers`].
    pub providers: Vec<String>,
    /// Send a "resolved" message when the connector passes again.
    pub send_on_resolved: bool,
    /// Remind the providers this often while the incident is open; `None`
    /// sends no reminders.
    pub repeat_interval: Option<Duration>,
}

impl Route {
    pub const MIN_REPEAT_INTERVAL: Duration = Duration::from_secs(60);
}

/// A time when no alert is raised for the connectors it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// Given, or `maintenance-N` for the N-th window (from 1).
    pub name: String,
    pub matcher: Match,
    pub schedule: Schedule,
}

impl MaintenanceWindow {
    pub fn active(&self, at: SystemTime) -> bool {
        self.schedule.active(at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// From `start` (included) to `end` (excluded).
    Once { start: SystemTime, end: SystemTime },
    /// The same hours on some days of each week.
    Weekly(Weekly),
}

impl Schedule {
    pub fn active(&self, at: SystemTime) -> bool {
        match self {
            Schedule::Once { start, end } => *start <= at && at < *end,
            Schedule::Weekly(weekly) => weekly.active(at),
        }
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_A_DAY: u16 = 24 * 60;

/// `every: "<days> HH:MM-HH:MM <zone>"`: a window that opens on each of
/// `days` at `start` and closes at `end`, the next day when `end` is not
/// after `start` (`22:00-02:00`). The zone is a fixed offset from UTC, so
/// daylight saving time never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekly {
    /// Monday first: the days on which the window opens.
    pub days: [bool; 7],
    /// Minutes after local midnight.
    pub start: u16,
    /// Minutes after local midnight, up to 1440 (`24:00`).
    pub end: u16,
    /// Local time minus UTC, in minutes.
    pub offset_minutes: i16,
}

impl Weekly {
    /// Parses the `every` text; the error says what to write instead.
    pub fn parse(text: &str) -> Result<Weekly, String> {
        const FORM: &str = "write it like `mon-fri 22:00-02:00 UTC`, `sat,sun 01:00-03:00 +02:00` or `daily 03:00-04:00 UTC`";
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, range, zone] = parts[..] else {
            if parts.len() == 2 {
                return Err(format!(
                    "`{text}` has no time zone; add `UTC` or an offset like `+02:00` ({FORM})"
                ));
            }
            return Err(format!("`{text}` is not a weekly window; {FORM}"));
        };
        let days = parse_days(days).map_err(|e| format!("{e}; {FORM}"))?;
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| format!("`{range}` is not a time range like `22:00-02:00`"))?;
        let start = parse_clock(start, false)?;
        let end = parse_clock(end, true)?;
        if start == end {
            return Err(format!(
                "`{range}` starts and ends at the same time; for a whole day write `00:00-24:00`"
            ));
        }
        let offset_minutes = parse_zone(zone)?;
        Ok(Weekly {
            days,
            start,
            end,
            offset_minutes,
        })
    }

    pub fn active(&self, at: SystemTime) -> bool {
        let unix = match at.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        let local = unix.saturating_add(i64::from(self.offset_minutes) * 60);
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
        let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7) as usize;
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        let yesterday = (weekday + 6) % 7;
        if self.start < self.end {
            self.days[weekday] && self.start <= minute && minute < self.end
        } else {
            (self.days[weekday] && minute >= self.start)
                || (self.days[yesterday] && minute < self.end)
        }
    }
}

impl fmt::Display for Weekly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days.iter().all(|d| *d) {
            f.write_str("daily")?;
        } else {
            let names: Vec<&str> = DAY_NAMES
                .iter()
                .zip(self.days)
                .filter(|(_, on)| *on)
                .map(|(name, _)| *name)
                .collect();
            f.write_str(&names.join(","))?;
        }
        let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, " {}-{} ", clock(self.start), clock(self.end))?;
        match self.offset_minutes {
            0 => f.write_str("UTC"),
            m => {
                let sign = if m < 0 { '-' } else { '+' };
                let m = m.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
            }
        }
    }
}

fn day_index(name: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "`{name}` is not a day; days are {} (or `daily`)",
                DAY_NAMES.join(", ")
            )
        })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    for item in text.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day_index(first)?, day_index(last)?);
                // `fri-mon` wraps over the weekend.
                let mut day = first;
                loop {
                    days[day] = true;
                    if day == last {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[day_index(item)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_clock(text: &str, is_end: bool) -> Result<u16, String> {
    let bad = || format!("`{text}` is not a time like `02:00` (24-hour clock)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    match (h, m) {
        (24, 0) if is_end => Ok(MINUTES_A_DAY),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// `UTC`, `Z` or `+HH:MM` / `-HH:MM`, as minutes east of UTC.
fn parse_zone(text: &str) -> Result<i16, String> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(0);
    }
    let bad = || {
        if text.contains('/') || text.chars().all(|c| c.is_ascii_alphabetic()) {
            format!(
                "`{text}` is a named time zone; Sandport has no time zone database, so write `UTC` or a fixed offset like `+01:00` (which does not follow daylight saving time)"
            )
        } else {
            format!(
                "`{text}` is not a time zone; write `UTC` or an offset like `+02:00` or `-05:00`"
            )
        }
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i16 = h.parse().map_err(|_| bad())?;
    let m: i16 = m.parse().map_err(|_| bad())?;
    if h > 18 || m > 59 || (h == 18 && m > 0) {
        return Err(format!(
            "`{text}` is out of range; offsets go from -18:00 to +18:00"
        ));
    }
    Ok(sign * (h * 60 + m))
}

/// An RFC 3339 time (`2026-12-24T02:00:00Z`, `2026-12-24T04:00:00+02:00`).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let bad = |why: &str| {
        format!(
            "`{text}` is not an RFC 3339 time{why}; write it like `2026-12-24T02:00:00Z` or `2026-12-24T04:00:00+02:00`"
        )
    };
    let text = text.trim();
    let upper = text.to_ascii_uppercase();
    if upper.ends_with('Z') {
        return humantime::parse_rfc3339(&upper).map_err(|e| bad(&format!(" ({e})")));
    }
    // humantime reads UTC only: move the offset onto the time ourselves.
    let split = upper
        .len()
        .checked_sub(6)
        .filter(|&i| upper.is_char_boundary(i));
    let Some(split) = split else {
        return Err(bad(""));
    };
    let (local, zone) = upper.split_at(split);
    if !zone.starts_with(['+', '-']) || local.len() < 19 {
        return Err(bad(" (it needs `Z` or an offset like `+02:00` at the end)"));
    }
    let offset = parse_zone(zone).map_err(|_| bad(""))?;
    let at = humantime::parse_rfc3339(&format!("{local}Z")).map_err(|e| bad(&format!(" ({e})")))?;
    let shift = Duration::from_secs(u64::from(offset.unsigned_abs()) * 60);
    let utc = if offset >= 0 {
        at.checked_sub(shift)
    } else {
        at.checked_add(shift)
    };
    utc.ok_or_else(|| bad(" (out of range)"))
}
