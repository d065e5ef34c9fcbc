//! File-level errors, and one entry parsed on its own (`parse_single`).

use super::*;

#[test]
fn text_that_is_not_yaml_is_a_syntax_error() {
    match load_err("connectors: [unclosed\n") {
        ConfigError::Syntax {
            source_name,
            message,
        } => {
            assert_eq!(source_name, SOURCE);
            assert!(!message.is_empty());
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let text = load_err("connectors:\n  - id: a\n bad indent: [\n").to_string();
    assert_contains(&text, "test.yaml is not valid YAML");
}

#[test]
fn empty_file_is_a_shape_error() {
    for text in ["", "\n", "# only a comment\n"] {
        match load_err(text) {
            ConfigError::Shape {
                source_name,
                message,
            } => {
                assert_eq!(source_name, SOURCE);
                assert_contains(&message, "the file is empty");
            }
            other => panic!("expected a shape error for {text:?}, got {other:?}"),
        }
    }
}

#[test]
fn top_level_list_is_a_shape_error() {
    let err = load_err("- id: prometheus\n- id: grafana\n");
    assert!(matches!(err, ConfigError::Shape { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "test.yaml: expected a map with a `connectors:` list, found a list"
    );
}

#[test]
fn top_level_scalar_is_a_shape_error() {
    let err = load_err("just text\n");
    assert_contains(&err.to_string(), "found the string `just text`");
}

#[test]
fn connectors_that_is_not_a_list_is_a_shape_error() {
    let err = load_err("connectors:\n  id: prometheus\n");
    assert!(matches!(err, ConfigError::Shape { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "test.yaml: `connectors` must be a list of entries, found a map"
    );
    let err = load_err("connectors: prometheus\n");
    assert_contains(&err.to_string(), "found the string `prometheus`");
}

#[test]
fn file_without_a_connectors_key_is_a_shape_error() {
    let err = load_err("services:\n  - id: prometheus\n");
    assert_eq!(err.to_string(), "test.yaml: no `connectors:` list");
}

#[test]
fn empty_connectors_list_loads_nothing_without_problems() {
    for text in ["connectors: []\n", "connectors:\n"] {
        let loaded = load(text);
        assert!(loaded.connectors.is_empty(), "{text:?}");
        assert!(
            loaded.problems.is_empty(),
            "{text:?}: {:#?}",
            loaded.problems
        );
    }
}

#[test]
fn load_file_resolves_component_paths_next_to_the_file_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("sandport-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connectors.yaml");
    std::fs::write(
        &path,
        "connectors:\n  - id: custom\n    port: 8080\n    component: custom.wasm\n",
    )
    .unwrap();
    let result = load_file(&path, &TestBuiltins);
    let missing = load_file(&dir.join("absent.yaml"), &TestBuiltins);
    std::fs::remove_dir_all(&dir).unwrap();

    let loaded = result.expect("the file loads");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(
        connector(&loaded, "custom").component,
        ComponentRef::Path(dir.join("custom.wasm"))
    );

    match missing {
        Err(ConfigError::Read { path, .. }) => assert_eq!(path, dir.join("absent.yaml")),
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn single_entry_parses_from_json() {
    let c = raw::parse_single(
        r#"{"id": "grafana", "port": 3001, "tags": ["a"]}"#,
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        &no_env,
    )
    .expect("the entry parses");
    assert_eq!(c.id, "grafana");
    assert_eq!(c.port, 3001);
    assert_eq!(c.tags, ["a"]);
    assert_eq!(c.connector_type, ConnectorType::Observability);
}

#[test]
fn single_entry_problems_are_labelled_by_id_without_an_index() {
    let problems = raw::parse_single(
        "id: grafana\nport: 0\nhealth_check:\n  path: x\n",
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        &no_env,
    )
    .unwrap_err();
    let found: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.entry.as_str(), p.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("connector \"grafana\"", "port"),
            ("connector \"grafana\"", "health_check.path"),
        ]
    );
}

#[test]
fn single_entry_that_is_not_yaml_is_one_problem() {
    let problems = raw::parse_single(
        "{id: [",
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        &no_env,
    )
    .unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].entry, "");
    assert_eq!(problems[0].key, "");
    assert_contains(&problems[0].message, "not valid YAML or JSON");
}
