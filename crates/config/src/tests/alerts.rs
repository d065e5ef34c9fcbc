//! The `alerts:` and `history:` sections: the full example, defaults, one
//! test per kind of problem (each naming its full key, the good items still
//! loading), secrets, maintenance windows over time, and the shape written
//! back.

use std::time::{Duration, SystemTime};

use super::*;

const CONNECTORS: &str = "connectors:\n  - id: prometheus\n";

fn env(name: &str) -> Option<String> {
    match name {
        "HOOK_KEY" => Some("hook-key-9f3a".into()),
        "SLACK_WEBHOOK_URL" => {
            Some("https://hooks.slack.com/services/T0/B0/slack-secret-77".into())
        }
        "DISCORD_WEBHOOK_URL" => {
            Some("https://discord.com/api/webhooks/1/discord-secret-42".into())
        }
        "PD_KEY" => Some("pd-routing-key-c0de".into()),
        _ => None,
    }
}

const SECRETS: [&str; 4] = [
    "hook-key-9f3a",
    "slack-secret-77",
    "discord-secret-42",
    "pd-routing-key-c0de",
];

const FULL: &str = r#"
history:
  enabled: true
  raw: 2d
  rollups: 30d
alerts:
  providers:
    - {name: oncall, type: webhook, url: "https://hooks.example.com/x", headers: {X-Key: "${HOOK_KEY}"}}
    - {name: team, type: slack, url: "${SLACK_WEBHOOK_URL}"}
    - {name: chat, type: discord, url: "${DISCORD_WEBHOOK_URL}"}
    - {name: pager, type: pagerduty, routing_key: "${PD_KEY}"}
  routes:
    - {name: prod-db, match: {types: [database], tags: [prod]}, providers: [oncall, team], send_on_resolved: false, repeat_interval: 4h}
    - {providers: [pager, chat]}
  maintenance:
    - {name: db-upgrade, match: {ids: [postgres-main]}, start: "2026-12-24T02:00:00Z", end: "2026-12-24T04:00:00Z"}
    - {name: weekly, match: {tags: [batch]}, every: "sun 01:00-03:00 UTC"}
"#;

/// A file with one good connector and `sections` after it.
fn with_sections(sections: &str) -> Loaded {
    load_with_env(&format!("{CONNECTORS}{sections}"), &env)
}

/// Loads `sections`, expects exactly one problem, at `key`; returns its
/// message. The connector still loads.
fn one_problem(sections: &str, key: &str) -> (Loaded, String) {
    let loaded = with_sections(sections);
    assert_eq!(ids(&loaded), ["prometheus"]);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = loaded.problems[0].clone();
    assert_eq!(problem.entry, "", "{problem:?}");
    assert_eq!(problem.key, key, "{problem:?}");
    for secret in SECRETS {
        assert!(!problem.message.contains(secret), "{problem:?}");
    }
    (loaded, problem.message)
}

fn at(text: &str) -> SystemTime {
    parse_time(text).unwrap()
}

#[test]
fn the_full_example_loads_with_every_value() {
    let loaded = with_sections(FULL);
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    let history = &loaded.history;
    assert!(history.enabled);
    assert_eq!(history.raw_retention, Duration::from_secs(2 * 86_400));
    assert_eq!(history.rollup_retention, Duration::from_secs(30 * 86_400));

    let alerts = &loaded.alerts;
    let names: Vec<&str> = alerts.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["oncall", "team", "chat", "pager"]);
    let oncall = alerts.provider("oncall").unwrap();
    assert_eq!(oncall.provider_type, ProviderType::Webhook);
    assert_eq!(oncall.url.expose(), "https://hooks.example.com/x");
    assert_eq!(oncall.headers["X-Key"].expose(), "hook-key-9f3a");
    let team = alerts.provider("team").unwrap();
    assert_eq!(team.provider_type, ProviderType::Slack);
    assert_eq!(
        team.url.expose(),
        "https://hooks.slack.com/services/T0/B0/slack-secret-77"
    );
    assert_eq!(
        alerts.provider("chat").unwrap().provider_type,
        ProviderType::Discord
    );
    let pager = alerts.provider("pager").unwrap();
    assert_eq!(pager.provider_type, ProviderType::PagerDuty);
    assert_eq!(pager.url.expose(), PAGERDUTY_EVENTS_URL);
    assert_eq!(
        pager.routing_key.as_ref().unwrap().expose(),
        "pd-routing-key-c0de"
    );

    let prod = alerts.route("prod-db").unwrap();
    assert_eq!(prod.matcher.types, [ConnectorType::Database]);
    assert_eq!(prod.matcher.tags, ["prod"]);
    assert_eq!(prod.providers, ["oncall", "team"]);
    assert!(!prod.send_on_resolved);
    assert_eq!(prod.repeat_interval, Some(Duration::from_secs(4 * 3600)));
    let second = alerts.route("route-2").unwrap();
    assert!(second.matcher.is_empty());
    assert_eq!(second.providers, ["pager", "chat"]);
    assert!(second.send_on_resolved);
    assert_eq!(second.repeat_interval, None);

    let upgrade = &alerts.maintenance[0];
    assert_eq!(upgrade.name, "db-upgrade");
    assert_eq!(upgrade.matcher.ids, ["postgres-main"]);
    assert_eq!(
        upgrade.schedule,
        Schedule::Once {
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_077_600),
            end: SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_084_800),
        }
    );
    let weekly = &alerts.maintenance[1];
    assert_eq!(
        weekly.schedule,
        Schedule::Weekly(Weekly::parse("sun 01:00-03:00 UTC").unwrap())
    );
}

#[test]
fn a_file_without_the_sections_gets_the_defaults() {
    let loaded = with_sections("");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.alerts, AlertsConfig::default());
    assert_eq!(loaded.history, HistoryConfig::default());
    assert!(loaded.history.enabled);
    assert_eq!(
        loaded.history.raw_retention,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(
        loaded.history.rollup_retention,
        Duration::from_secs(90 * 86_400)
    );

    let loaded = with_sections("history:\n  enabled: false\nalerts:\n");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert!(!loaded.history.enabled);
}

#[test]
fn history_raw_must_be_at_least_an_hour_and_rollups_at_least_raw() {
    let (loaded, message) = one_problem("history:\n  raw: 30m\n", "history.raw");
    assert_contains(&message, "at least 1h");
    assert!(loaded.history.enabled);

    let (_, message) = one_problem("history:\n  raw: 10d\n  rollups: 5d\n", "history.rollups");
    assert_contains(&message, "shorter than `raw`");

    // A long raw retention alone lifts the rollups' default with it.
    let loaded = with_sections("history:\n  raw: 100d\n");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(
        loaded.history.rollup_retention,
        Duration::from_secs(100 * 86_400)
    );

    let (_, message) = one_problem("history:\n  raw: soon\n", "history.raw");
    assert_contains(&message, "not a duration");
    let (_, message) = one_problem("history: [1]\n", "history");
    assert_contains(&message, "expected a map");
}

#[test]
fn unknown_keys_are_reported_at_each_level_with_a_suggestion() {
    let (_, message) = one_problem("history:\n  rollup: 30d\n", "history.rollup");
    assert_contains(&message, "did you mean `rollups`?");
    let (_, message) = one_problem("alerts:\n  route: []\n", "alerts.route");
    assert_contains(&message, "did you mean `routes`?");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: a, type: webhook, url: 'https://x.example', header: {}}\n",
        "alerts.providers[0].header",
    );
    assert_contains(&message, "did you mean `headers`?");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: a, type: slack, url: 'https://x.example'}\n  routes:\n    - {providers: [a], match: {tag: [x]}}\n",
        "alerts.routes[0].match.tag",
    );
    assert_contains(&message, "did you mean `tags`?");
    let (_, message) = one_problem(
        "alerts:\n  maintenance:\n    - {every: 'daily 01:00-02:00 UTC', strat: x}\n",
        "alerts.maintenance[0].strat",
    );
    assert_contains(&message, "unknown key");
}

#[test]
fn one_bad_provider_does_not_hide_the_others_and_its_routes_keep_the_rest() {
    let (loaded, message) = one_problem(
        "alerts:
  providers:
    - {name: a, type: webhook, url: 'https://a.example/hook'}
    - {name: b, type: webhook, url: 'ftp://b.example/secret-path-1234'}
    - {name: c, type: discord, url: 'https://c.example/hook'}
  routes:
    - {providers: [a, b, c]}
",
        "alerts.providers[1].url",
    );
    assert_eq!(message, "must start with http:// or https://");
    let names: Vec<&str> = loaded
        .alerts
        .providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(loaded.alerts.routes[0].providers, ["a", "c"]);
    assert!(!loaded.problems[0].to_string().contains("secret-path-1234"));
}

#[test]
fn provider_url_problems_never_quote_the_url() {
    for (url, expected) in [
        ("https://not a url secret-1", "is not a valid URL"),
        ("https:///secret-1", ""),
        (
            "hooks.example.com/secret-1",
            "must start with http:// or https://",
        ),
        ("", "is empty"),
    ] {
        let (_, message) = one_problem(
            &format!("alerts:\n  providers:\n    - {{name: a, type: slack, url: '{url}'}}\n"),
            "alerts.providers[0].url",
        );
        assert_contains(&message, expected);
        assert!(!message.contains("secret-1"), "{message}");
    }
}

#[test]
fn a_missing_environment_variable_is_named_but_no_value_is_printed() {
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: a, type: slack, url: '${NOT_SET}'}\n",
        "alerts.providers[0].url",
    );
    assert_eq!(message, "environment variable `NOT_SET` is not set");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: a, type: webhook, url: 'https://x.example', headers: {X-Key: '${ALSO_NOT_SET}'}}\n",
        "alerts.providers[0].headers.X-Key",
    );
    assert_contains(&message, "`ALSO_NOT_SET` is not set");
    // `$${` is a literal `${`.
    let loaded = with_sections(
        "alerts:\n  providers:\n    - {name: a, type: webhook, url: 'https://x.example/$${X}'}\n",
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(
        loaded.alerts.providers[0].url.expose(),
        "https://x.example/${X}"
    );
}

#[test]
fn provider_keys_belong_to_their_types() {
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: p, type: pagerduty}\n",
        "alerts.providers[0].routing_key",
    );
    assert_contains(&message, "missing");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: s, type: slack, url: 'https://x.example', routing_key: k}\n",
        "alerts.providers[0].routing_key",
    );
    assert_contains(&message, "only pagerduty providers");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: s, type: discord, url: 'https://x.example', headers: {X-A: b}}\n",
        "alerts.providers[0].headers",
    );
    assert_contains(&message, "only webhook providers");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: s, type: teams, url: 'https://x.example'}\n",
        "alerts.providers[0].type",
    );
    assert_eq!(
        message,
        "`teams` is not one of: webhook, slack, discord, pagerduty"
    );
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: s, url: 'https://x.example'}\n",
        "alerts.providers[0].type",
    );
    assert_contains(&message, "missing; one of: webhook");
    let loaded = with_sections("alerts:\n  providers:\n    - {type: slack}\n");
    assert_eq!(loaded.problems.len(), 2, "{:#?}", loaded.problems);
    assert_eq!(loaded.problems[0].key, "alerts.providers[0].name");
    assert_contains(&loaded.problems[0].message, "missing");
    assert_eq!(loaded.problems[1].key, "alerts.providers[0].url");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - {name: 'a b', type: slack, url: 'https://x.example'}\n",
        "alerts.providers[0].name",
    );
    assert_contains(&message, "may only hold");
    let (_, message) = one_problem(
        "alerts:\n  providers:\n    - slack\n",
        "alerts.providers[0]",
    );
    assert_contains(&message, "expected a map");
}

#[test]
fn duplicate_provider_names_keep_the_first() {
    let (loaded, message) = one_problem(
        "alerts:\n  providers:\n    - {name: a, type: slack, url: 'https://one.example'}\n    - {name: a, type: slack, url: 'https://two.example'}\n",
        "alerts.providers[1].name",
    );
    assert_contains(&message, "duplicate provider name `a`");
    assert_eq!(loaded.alerts.providers.len(), 1);
    assert_eq!(
        loaded.alerts.providers[0].url.expose(),
        "https://one.example"
    );
}

const TWO_PROVIDERS: &str = "alerts:
  providers:
    - {name: a, type: slack, url: 'https://a.example'}
    - {name: b, type: discord, url: 'https://b.example'}
  routes:
";

#[test]
fn a_route_naming_an_unknown_provider_is_rejected_and_the_others_load() {
    let (loaded, message) = one_problem(
        &format!(
            "{TWO_PROVIDERS}    - {{providers: [a]}}\n    - {{providers: [a, nope]}}\n    - {{providers: [b]}}\n"
        ),
        "alerts.routes[1].providers[1]",
    );
    assert_eq!(message, "no provider is named `nope`; providers: a, b");
    let names: Vec<&str> = loaded
        .alerts
        .routes
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["route-1", "route-3"]);
}

#[test]
fn route_names_default_by_position_and_must_be_unique() {
    let (_, message) = one_problem(
        &format!(
            "{TWO_PROVIDERS}    - {{name: route-2, providers: [a]}}\n    - {{providers: [b]}}\n"
        ),
        "alerts.routes[1].name",
    );
    assert_contains(&message, "default name `route-2` is taken");
    let (_, message) = one_problem(
        &format!(
            "{TWO_PROVIDERS}    - {{name: x, providers: [a]}}\n    - {{name: x, providers: [b]}}\n"
        ),
        "alerts.routes[1].name",
    );
    assert_contains(&message, "duplicate route name `x`");
}

#[test]
fn route_values_are_checked() {
    let cases: &[(&str, &str, &str)] = &[
        ("{}", "alerts.routes[0].providers", "missing"),
        (
            "{providers: a}",
            "alerts.routes[0].providers",
            "expected a list",
        ),
        (
            "{providers: [a], repeat_interval: 30s}",
            "alerts.routes[0].repeat_interval",
            "at least 1m",
        ),
        (
            "{providers: [a], send_on_resolved: maybe}",
            "alerts.routes[0].send_on_resolved",
            "true or false",
        ),
        (
            "{providers: [a], match: {types: [databse]}}",
            "alerts.routes[0].match.types[0]",
            "not a connector type",
        ),
        (
            "{providers: [a], match: {ids: [[x]]}}",
            "alerts.routes[0].match.ids[0]",
            "expected a name",
        ),
        (
            "{providers: [a], match: [x]}",
            "alerts.routes[0].match",
            "expected a map",
        ),
    ];
    for (route, key, expected) in cases {
        let (_, message) = one_problem(&format!("{TWO_PROVIDERS}    - {route}\n"), key);
        assert_contains(&message, expected);
    }
}

#[test]
fn matches_need_every_given_list_to_match() {
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let all = Match::default();
    assert!(all.matches("x", "custom", &[]));
    let m = Match {
        ids: vec![],
        types: vec![ConnectorType::Database, ConnectorType::Storage],
        tags: tags(&["prod", "eu"]),
    };
    assert!(m.matches("pg", "database", &tags(&["prod"])));
    assert!(m.matches("s3", "storage", &tags(&["x", "eu"])));
    assert!(!m.matches("pg", "database", &tags(&["dev"])));
    assert!(!m.matches("pg", "database", &[]));
    assert!(!m.matches("nats", "messaging", &tags(&["prod"])));
    let by_id = Match {
        ids: vec!["a".into(), "b".into()],
        ..Match::default()
    };
    assert!(by_id.matches("b", "custom", &[]));
    assert!(!by_id.matches("c", "custom", &[]));
}

#[test]
fn maintenance_start_and_end_take_offsets_and_end_must_follow_start() {
    let loaded = with_sections(
        "alerts:\n  maintenance:\n    - {start: '2026-12-24T04:00:00+02:00', end: '2026-12-24t04:00:00z'}\n",
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    let window = &loaded.alerts.maintenance[0];
    assert_eq!(window.name, "maintenance-1");
    assert_eq!(
        window.schedule,
        Schedule::Once {
            start: at("2026-12-24T02:00:00Z"),
            end: at("2026-12-24T04:00:00Z")
        }
    );
    assert_eq!(at("2026-12-23T21:00:00-05:00"), at("2026-12-24T02:00:00Z"));
    assert_eq!(
        at("2026-12-24T02:00:00.5Z"),
        at("2026-12-24T02:00:00Z") + Duration::from_millis(500)
    );

    let cases: &[(&str, &str, &str)] = &[
        (
            "{start: '2026-12-24T04:00:00Z', end: '2026-12-24T03:00:00Z'}",
            "alerts.maintenance[0].end",
            "must be after `start`",
        ),
        (
            "{start: '2026-12-24T04:00:00Z'}",
            "alerts.maintenance[0].end",
            "missing",
        ),
        (
            "{end: '2026-12-24T04:00:00Z'}",
            "alerts.maintenance[0].start",
            "missing",
        ),
        (
            "{start: '2026-12-24 04:00', end: '2026-12-24T05:00:00Z'}",
            "alerts.maintenance[0].start",
            "not an RFC 3339 time",
        ),
        (
            "{start: '2026-12-24T04:00:00', end: '2026-12-24T05:00:00Z'}",
            "alerts.maintenance[0].start",
            "not an RFC 3339 time",
        ),
        (
            "{start: '2026-02-30T04:00:00Z', end: '2026-12-24T05:00:00Z'}",
            "alerts.maintenance[0].start",
            "not an RFC 3339 time",
        ),
        (
            "{name: x}",
            "alerts.maintenance[0]",
            "needs `start` and `end`",
        ),
        (
            "{every: 'daily 01:00-02:00 UTC', start: '2026-12-24T04:00:00Z'}",
            "alerts.maintenance[0].every",
            "not both",
        ),
    ];
    for (window, key, expected) in cases {
        let (_, message) = one_problem(&format!("alerts:\n  maintenance:\n    - {window}\n"), key);
        assert_contains(&message, expected);
    }
}

#[test]
fn every_is_parsed_or_says_what_to_write() {
    let ok: &[(&str, &str)] = &[
        ("sun 01:00-03:00 UTC", "sun 01:00-03:00 UTC"),
        ("sat,sun 01:00-03:00 +02:00", "sat,sun 01:00-03:00 +02:00"),
        (
            "Mon-Fri 22:00-02:00 -05:30",
            "mon,tue,wed,thu,fri 22:00-02:00 -05:30",
        ),
        ("fri-mon 00:00-24:00 Z", "mon,fri,sat,sun 00:00-24:00 UTC"),
        ("daily 03:00-04:00 utc", "daily 03:00-04:00 UTC"),
        ("mon-sun 03:00-04:00 +00:00", "daily 03:00-04:00 UTC"),
    ];
    for (text, canonical) in ok {
        let weekly = Weekly::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(weekly.to_string(), *canonical);
        assert_eq!(Weekly::parse(canonical).unwrap(), weekly);
    }
    let bad: &[(&str, &str)] = &[
        ("sat 01:00-03:00 Europe/Paris", "no time zone database"),
        ("sat 01:00-03:00 CET", "no time zone database"),
        ("sat 01:00-03:00", "no time zone"),
        ("weekend 01:00-03:00 UTC", "`weekend` is not a day"),
        ("sat 1:00-03:00 UTC", "not a time like"),
        ("sat 01:00-25:00 UTC", "not a time like"),
        ("sat 24:00-02:00 UTC", "not a time like"),
        ("sat 01:00-01:00 UTC", "same time"),
        ("sat 01:00 UTC", "not a time range"),
        ("sat 01:00-02:00 +19:00", "out of range"),
        ("sat 01:00-02:00 0200", "not a time zone"),
        ("", "not a weekly window"),
    ];
    for (text, expected) in bad {
        let message = Weekly::parse(text).expect_err(text);
        assert_contains(&message, expected);
    }
    let (_, message) = one_problem(
        "alerts:\n  maintenance:\n    - {every: 'sat 01:00-03:00 Europe/Paris'}\n",
        "alerts.maintenance[0].every",
    );
    assert_contains(&message, "fixed offset like `+01:00`");
}

#[test]
fn weekly_windows_are_active_on_their_days_and_hours() {
    // 2026-12-21 is a Monday.
    let cases: &[(&str, &str, bool)] = &[
        ("mon-fri 09:00-17:00 UTC", "2026-12-21T09:00:00Z", true),
        ("mon-fri 09:00-17:00 UTC", "2026-12-21T08:59:59Z", false),
        ("mon-fri 09:00-17:00 UTC", "2026-12-21T17:00:00Z", false),
        ("mon-fri 09:00-17:00 UTC", "2026-12-26T10:00:00Z", false),
        // Across midnight: opens Friday 22:00, closes Saturday 02:00.
        ("fri 22:00-02:00 UTC", "2026-12-25T22:30:00Z", true),
        ("fri 22:00-02:00 UTC", "2026-12-26T01:59:00Z", true),
        ("fri 22:00-02:00 UTC", "2026-12-26T02:00:00Z", false),
        ("fri 22:00-02:00 UTC", "2026-12-26T22:30:00Z", false),
        ("fri 22:00-02:00 UTC", "2026-12-25T01:00:00Z", false),
        // Sunday opens the window and Monday morning is still in it.
        ("sun 23:00-01:00 UTC", "2026-12-28T00:30:00Z", true),
        ("sun 23:00-01:00 UTC", "2026-12-21T00:30:00Z", true),
        // +02:00: Sunday 01:00 local is Saturday 23:00 UTC.
        ("sun 01:00-03:00 +02:00", "2026-12-26T23:00:00Z", true),
        ("sun 01:00-03:00 +02:00", "2026-12-27T01:00:00Z", false),
        // -05:00: Friday 22:00 local is Saturday 03:00 UTC.
        ("fri 22:00-23:00 -05:00", "2026-12-26T03:30:00Z", true),
        ("fri 22:00-23:00 -05:00", "2026-12-25T22:30:00Z", false),
        ("daily 03:00-04:00 UTC", "2026-12-24T03:15:00Z", true),
        ("daily 03:00-04:00 UTC", "2026-12-24T04:15:00Z", false),
        ("sat 00:00-24:00 UTC", "2026-12-26T23:59:59Z", true),
        ("sat 00:00-24:00 UTC", "2026-12-27T00:00:00Z", false),
        // Before 1970 the weekday still counts right: 1969-12-29 was a Monday.
        ("mon 00:00-24:00 UTC", "1969-12-29T12:00:00Z", true),
    ];
    for (every, time, expected) in cases {
        let weekly = Weekly::parse(every).unwrap();
        let when = if time.starts_with("1969") {
            SystemTime::UNIX_EPOCH - Duration::from_secs(3 * 86_400 - 12 * 3600)
        } else {
            at(time)
        };
        assert_eq!(weekly.active(when), *expected, "{every} at {time}");
    }
}

#[test]
fn a_once_window_is_active_from_start_to_just_before_end() {
    let window = MaintenanceWindow {
        name: "w".into(),
        matcher: Match::default(),
        schedule: Schedule::Once {
            start: at("2026-12-24T02:00:00Z"),
            end: at("2026-12-24T04:00:00Z"),
        },
    };
    assert!(!window.active(at("2026-12-24T01:59:59Z")));
    assert!(window.active(at("2026-12-24T02:00:00Z")));
    assert!(window.active(at("2026-12-24T03:59:59Z")));
    assert!(!window.active(at("2026-12-24T04:00:00Z")));
    let alerts = AlertsConfig {
        maintenance: vec![MaintenanceWindow {
            matcher: Match {
                ids: vec!["pg".into()],
                ..Match::default()
            },
            ..window
        }],
        ..AlertsConfig::default()
    };
    assert!(alerts.in_maintenance("pg", "database", &[], at("2026-12-24T03:00:00Z")));
    assert!(!alerts.in_maintenance("redis", "database", &[], at("2026-12-24T03:00:00Z")));
    assert!(!alerts.in_maintenance("pg", "database", &[], at("2026-12-24T05:00:00Z")));
}

#[test]
fn the_sections_written_back_parse_to_the_same_config() {
    let loaded = with_sections(FULL);
    let alerts = serde_norway::to_string(&loaded.alerts.to_value(Secrets::Keep)).unwrap();
    let history = serde_norway::to_string(&loaded.history.to_value()).unwrap();
    let text = format!(
        "alerts:\n{}\nhistory:\n{}\n",
        indent(&alerts),
        indent(&history)
    );
    let again = load(&format!("{CONNECTORS}{text}"));
    assert!(again.problems.is_empty(), "{:#?}\n{text}", again.problems);
    assert_eq!(again.alerts, loaded.alerts);
    assert_eq!(again.history, loaded.history);
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[test]
fn the_redacted_view_shows_every_secret_as_redacted() {
    let loaded = with_sections(FULL);
    let redacted = serde_norway::to_string(&loaded.alerts.to_value(Secrets::Redact)).unwrap();
    for secret in SECRETS.iter().chain(&["https://hooks.example.com/x"]) {
        assert!(!redacted.contains(secret), "{secret} in {redacted}");
    }
    let value = loaded.alerts.to_value(Secrets::Redact);
    let providers = value["providers"].as_sequence().unwrap();
    assert_eq!(providers[0]["url"].as_str(), Some(REDACTED));
    assert_eq!(providers[0]["headers"]["X-Key"].as_str(), Some(REDACTED));
    assert_eq!(providers[0]["name"].as_str(), Some("oncall"));
    assert_eq!(providers[3]["routing_key"].as_str(), Some(REDACTED));
    assert_eq!(value["routes"][0]["repeat_interval"].as_str(), Some("4h"));
    assert_eq!(
        value["maintenance"][1]["every"].as_str(),
        Some("sun 01:00-03:00 UTC")
    );
    assert_eq!(
        value["maintenance"][0]["start"].as_str(),
        Some("2026-12-24T02:00:00Z")
    );

    for debug in [format!("{loaded:?}"), format!("{loaded:#?}")] {
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{secret} in Debug");
        }
    }
}

#[test]
fn sections_of_the_wrong_shape_are_named() {
    let (_, message) = one_problem("alerts: [x]\n", "alerts");
    assert_contains(&message, "expected a map");
    let (_, message) = one_problem("alerts:\n  providers: {a: 1}\n", "alerts.providers");
    assert_contains(&message, "expected a list");
    let (_, message) = one_problem(
        "alerts:\n  maintenance:\n    - 3\n",
        "alerts.maintenance[0]",
    );
    assert_contains(&message, "expected a map");
}
