//! Secrets never print: not in `Debug`, not in problems.

use super::*;

#[test]
fn secret_debug_and_display_print_redacted() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(format!("{secret}"), "<redacted>");
    assert_eq!(format!("{secret:#?}"), "<redacted>");
    assert_eq!(secret.expose(), "hunter2");
    assert!(!secret.is_empty());
    assert!(Secret::default().is_empty());
}

#[test]
fn parsed_config_debug_never_contains_a_secret_value() {
    let env = |name: &str| match name {
        "TOKEN" => Some("env-token-value-5150".to_string()),
        _ => None,
    };
    let loaded = load_with_env(
        "connectors:
  - id: prometheus
    auth:
      type: basic
      username: admin
      password: pw-value-8d1f
      headers:
        X-Api-Key: header-value-77aa
  - id: grafana
    auth:
      type: bearer
      token: ${TOKEN}
  - id: jaeger
    auth:
      type: api_key
      api_key: apikey-value-c0ff
",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.connectors.len(), 3);
    for debug in [format!("{loaded:?}"), format!("{loaded:#?}")] {
        for secret in [
            "pw-value-8d1f",
            "header-value-77aa",
            "env-token-value-5150",
            "apikey-value-c0ff",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked:\n{debug}");
        }
        assert_contains(&debug, "<redacted>");
        assert_contains(&debug, "admin");
    }
}

#[test]
fn problems_about_auth_never_contain_the_secret_value() {
    let loaded = load(
        "connectors:
  - id: prometheus
    auth:
      type: bearer
      token: tok-value-9a9a
      headers:
        X-Bad: \"line\\nbreak-value-3e3e\"
        Bad Name: name-value-4f4f
      passwrd: typo-value-1b1b
",
    );
    assert!(loaded.connectors.is_empty());
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "auth.passwrd",
            "auth.headers.Bad Name",
            "auth.headers.X-Bad"
        ]
    );
    let all = format!("{:?}", loaded.problems);
    for secret in ["tok-value", "break-value", "name-value", "typo-value"] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}
