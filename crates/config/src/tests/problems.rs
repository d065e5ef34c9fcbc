//! Problems with an entry's own keys: each names its entry and key, and the
//! other entries still load.

use super::*;

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let message = rejected(
        &["id: x", "component: grafana", "prot: 3001"],
        "connectors[1] (id \"x\")",
        "prot",
    );
    assert_contains(&message, "unknown key (did you mean `port`?)");
    assert_contains(&message, "known keys: id, name, type, mode, enabled");
}

#[test]
fn unknown_nested_keys_carry_their_section_prefix_and_a_suggestion() {
    for (lines, key, suggestion) in [
        (
            ["health_check:", "  intervall: 10s"],
            "health_check.intervall",
            "did you mean `interval`?",
        ),
        (
            ["auth:", "  pasword: x"],
            "auth.pasword",
            "did you mean `password`?",
        ),
        (
            ["sandbox:", "  memory_limt: 32MiB"],
            "sandbox.memory_limt",
            "did you mean `memory_limit`?",
        ),
    ] {
        let mut entry = vec!["id: x", "component: grafana"];
        entry.extend(lines);
        let message = rejected(&entry, "connectors[1] (id \"x\")", key);
        assert_contains(&message, suggestion);
    }
}

#[test]
fn unknown_key_far_from_every_known_key_gets_no_suggestion() {
    let message = rejected(
        &["id: x", "component: grafana", "colour: red"],
        "connectors[1] (id \"x\")",
        "colour",
    );
    assert!(!message.contains("did you mean"), "{message}");
    assert_contains(&message, "unknown key; known keys: id, name,");
}

#[test]
fn an_empty_key_is_named_as_such() {
    // Found by the property tests: an empty key gave a problem with an
    // empty `key`, which means the entry (or file) as a whole.
    let message = rejected(
        &["id: x", "component: grafana", "'': red"],
        "connectors[1] (id \"x\")",
        "\"\"",
    );
    assert_contains(&message, "unknown key");
    let loaded = load("'': 1\nconnectors:\n  - id: grafana\n");
    assert_eq!(ids(&loaded), ["grafana"]);
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["\"\""], "{:#?}", loaded.problems);
}

#[test]
fn unknown_top_level_key_is_reported_for_the_file_and_the_entries_still_load() {
    let loaded = load("version: 2\nconnectors:\n  - id: grafana\n");
    assert_eq!(ids(&loaded), ["grafana"]);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, "");
    assert_eq!(problem.key, "version");
    assert_contains(&problem.message, "unknown top-level key");
    assert_eq!(
        problem.to_string(),
        "version: unknown top-level key; the file holds `connectors`, `alerts` and `history`"
    );
}

#[test]
fn port_above_65535_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 70000"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(message, "70000 is out of range; a port is 1 to 65535");
}

#[test]
fn port_zero_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 0"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(message, "0 is out of range; a port is 1 to 65535");
}

#[test]
fn negative_port_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: -1"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_contains(&message, "-1 is out of range");
}

#[test]
fn port_that_is_not_a_number_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: abc"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(
        message,
        "expected a number from 1 to 65535, found the string `abc`"
    );
}

#[test]
fn duplicate_id_rejects_the_second_entry_and_keeps_the_first() {
    let loaded = load(
        "connectors:
  - id: prometheus
    port: 9090
  - id: prometheus
    port: 9191
  - id: grafana
",
    );
    assert_eq!(ids(&loaded), ["prometheus", "grafana"]);
    assert_eq!(connector(&loaded, "prometheus").port, 9090);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, "connectors[1] (id \"prometheus\")");
    assert_eq!(problem.key, "id");
    assert_contains(&problem.message, "duplicate id `prometheus`");
}

#[test]
fn missing_component_for_an_id_that_is_no_builtin_is_reported() {
    let message = rejected(
        &["id: mystery", "port: 8080"],
        "connectors[1] (id \"mystery\")",
        "component",
    );
    assert_contains(&message, "no built-in named like the id `mystery`");
    assert_contains(&message, "prometheus, grafana, jaeger, http");
    assert_contains(&message, ".wasm");
}

#[test]
fn unknown_builtin_component_name_lists_the_builtins() {
    let message = rejected(
        &["id: x", "port: 8080", "component: prometheous"],
        "connectors[1] (id \"x\")",
        "component",
    );
    assert_contains(&message, "no built-in component named `prometheous`");
    assert_contains(&message, "built-ins: prometheus, grafana, jaeger, http");
}

#[test]
fn bad_type_lists_the_valid_types() {
    let message = rejected(
        &["id: x", "component: grafana", "type: metrics"],
        "connectors[1] (id \"x\")",
        "type",
    );
    assert_eq!(
        message,
        "`metrics` is not one of: observability, agent, storage, messaging, database, custom"
    );
}

#[test]
fn bad_mode_lists_the_valid_modes() {
    let message = rejected(
        &["id: x", "component: grafana", "mode: hybrid"],
        "connectors[1] (id \"x\")",
        "mode",
    );
    assert_eq!(message, "`hybrid` is not one of: local, remote");
}

#[test]
fn bad_scheme_lists_the_valid_schemes() {
    let message = rejected(
        &["id: x", "component: grafana", "scheme: ftp"],
        "connectors[1] (id \"x\")",
        "scheme",
    );
    assert_eq!(message, "`ftp` is not one of: http, https");
}

#[test]
fn id_with_invalid_characters_is_rejected() {
    let message = rejected(
        &["id: my connector!", "component: grafana"],
        "connectors[1] (id \"my connector!\")",
        "id",
    );
    assert_eq!(
        message,
        "`my connector!` may only hold letters, digits, `-`, `_` and `.`"
    );
}

#[test]
fn id_with_dots_dashes_and_underscores_is_accepted() {
    let c = single("connectors:\n  - id: eu-west_1.prom\n    component: prometheus\n");
    assert_eq!(c.id, "eu-west_1.prom");
}

#[test]
fn missing_id_is_rejected_and_the_entry_is_labelled_by_index() {
    let message = rejected(&["component: grafana"], "connectors[1]", "id");
    assert_eq!(message, "missing; every connector needs an id");
}

#[test]
fn entry_that_is_not_a_map_is_rejected_as_a_whole() {
    let message = rejected(&["just-a-string"], "connectors[1]", "");
    assert_eq!(
        message,
        "expected a map of keys, found the string `just-a-string`"
    );
}

#[test]
fn invalid_host_is_rejected() {
    for host in [
        "http://example.com",
        "exa mple.com",
        "user@example.com",
        "''",
    ] {
        let line = format!("host: {host}");
        let message = rejected(
            &["id: x", "component: grafana", &line],
            "connectors[1] (id \"x\")",
            "host",
        );
        assert_contains(&message, "is not a host name or IP address");
    }
}

#[test]
fn values_of_the_wrong_kind_are_described() {
    for (line, key, expected) in [
        (
            "enabled: yes",
            "enabled",
            "expected true or false, found the string `yes`",
        ),
        (
            "tags: metrics",
            "tags",
            "expected a list of tags, found the string `metrics`",
        ),
        ("tags: [[a]]", "tags", "tags must be plain values"),
        (
            "metadata: [a, b]",
            "metadata",
            "expected a map of names to values, found a list",
        ),
        (
            "auth: basic",
            "auth",
            "expected a map, found the string `basic`",
        ),
        ("settings: [a]", "settings", "expected a map, found a list"),
        ("name: {first: a}", "name", "expected a string, found a map"),
    ] {
        let message = rejected(
            &["id: x", "component: grafana", line],
            "connectors[1] (id \"x\")",
            key,
        );
        assert_eq!(message, expected, "{line}");
    }
}

#[test]
fn nested_values_in_metadata_and_lists_of_maps_in_settings_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "metadata:",
            "  owner: {team: sre}",
        ],
        "connectors[1] (id \"x\")",
        "metadata.owner",
    );
    assert_eq!(message, "expected a plain value, found a map");

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "settings:",
            "  query:",
            "    targets: [{a: 1}]",
        ],
        "connectors[1] (id \"x\")",
        "settings.query.targets",
    );
    assert_eq!(message, "lists in settings may only hold plain values");
}

#[test]
fn every_problem_of_one_entry_is_reported_together() {
    let loaded = load(&between_good_entries(&[
        "id: x",
        "component: grafana",
        "port: 0",
        "scheme: gopher",
        "health_check:",
        "  interval: soon",
    ]));
    assert_eq!(ids(&loaded), ["prometheus", "grafana"]);
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["scheme", "port", "health_check.interval"]);
    for problem in &loaded.problems {
        assert_eq!(problem.entry, "connectors[1] (id \"x\")");
    }
}

#[test]
fn problems_of_several_entries_are_each_labelled_with_their_own_entry() {
    let loaded = load(
        "connectors:
  - id: a
    port: 1
  - id: grafana
  - id: b
    component: grafana
    port: 99999
",
    );
    assert_eq!(ids(&loaded), ["grafana"]);
    let found: Vec<(&str, &str)> = loaded
        .problems
        .iter()
        .map(|p| (p.entry.as_str(), p.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("connectors[0] (id \"a\")", "component"),
            ("connectors[2] (id \"b\")", "port"),
        ]
    );
}

#[test]
fn problem_display_joins_entry_key_and_message() {
    let problem = Problem {
        entry: "connectors[1] (id \"x\")".into(),
        key: "health_check.interval".into(),
        message: "must be at least 1s".into(),
    };
    assert_eq!(
        problem.to_string(),
        "connectors[1] (id \"x\"): health_check.interval: must be at least 1s"
    );
    let whole_entry = Problem {
        key: String::new(),
        ..problem.clone()
    };
    assert_eq!(
        whole_entry.to_string(),
        "connectors[1] (id \"x\"): must be at least 1s"
    );
}

#[test]
fn a_host_with_a_port_or_stray_brackets_is_rejected() {
    for host in ["localhost:9090", "'[::1'", "'a b'", "'evil/path'"] {
        let message = rejected(
            &["id: x", "component: grafana", &format!("host: {host}")],
            "connectors[1] (id \"x\")",
            "host",
        );
        assert_contains(&message, "is not a host name or IP address");
    }
    let c = single("connectors:\n  - {id: grafana, host: '[::1]'}\n");
    assert_eq!(c.host, "::1");
    assert_eq!(c.endpoint(), "http://[::1]:3000");
}

#[test]
fn a_numeric_id_labels_its_problems() {
    let loaded = load("connectors:\n  - {id: 42, port: 0}\n");
    assert_eq!(loaded.problems[0].entry, "connectors[0] (id \"42\")");
}

#[test]
fn a_fractional_port_is_not_called_out_of_range() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 80.5"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_contains(&message, "not a whole number");
}
