//! The `auth` section: credential kinds, headers and `${VAR}` expansion.

use std::cell::RefCell;

use super::*;

#[test]
fn bad_auth_type_lists_the_valid_auth_types() {
    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: oauth"],
        "connectors[1] (id \"x\")",
        "auth.type",
    );
    assert_eq!(
        message,
        "`oauth` is not one of: none, basic, bearer, api_key, aws_sigv4"
    );
}

#[test]
fn bearer_auth_without_a_token_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: bearer"],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_eq!(message, "required when auth.type is bearer");
}

#[test]
fn basic_auth_without_a_username_and_api_key_auth_without_a_key_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  password: pw",
        ],
        "connectors[1] (id \"x\")",
        "auth.username",
    );
    assert_eq!(message, "required when auth.type is basic");

    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: api_key"],
        "connectors[1] (id \"x\")",
        "auth.api_key",
    );
    assert_eq!(message, "required when auth.type is api_key");
}

#[test]
fn missing_environment_variable_in_a_password_is_named() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  username: admin",
            "  password: ${MISSING_VAR}",
        ],
        "connectors[1] (id \"x\")",
        "auth.password",
    );
    assert_eq!(message, "environment variable `MISSING_VAR` is not set");
}

#[test]
fn environment_variables_are_expanded_in_auth_fields_and_headers() {
    let asked = RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_string());
        match name {
            "PROM_USER" => Some("admin".to_string()),
            "PROM_PASS" => Some("s3cret".to_string()),
            "ORG_ID" => Some("42".to_string()),
            _ => None,
        }
    };
    let loaded = load_with_env(
        "connectors:
  - id: prometheus
    auth:
      type: basic
      username: ${PROM_USER}
      password: pre-${PROM_PASS}-post
      headers:
        X-Org: org-${ORG_ID}/${ORG_ID}
",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    let auth = &connector(&loaded, "prometheus").auth;
    match &auth.auth {
        Auth::Basic { username, password } => {
            assert_eq!(username, "admin");
            assert_eq!(password.expose(), "pre-s3cret-post");
        }
        other => panic!("expected basic auth, got {other:?}"),
    }
    assert_eq!(auth.headers["X-Org"].expose(), "org-42/42");
    let mut asked = asked.into_inner();
    asked.retain(|name| name != "HEALTH_INTERVAL");
    asked.sort();
    assert_eq!(asked, ["ORG_ID", "ORG_ID", "PROM_PASS", "PROM_USER"]);
}

#[test]
fn expanded_values_are_not_expanded_again() {
    let env = |name: &str| match name {
        "OUTER" => Some("${INNER}".to_string()),
        _ => None,
    };
    let loaded = load_with_env(
        "connectors:\n  - id: grafana\n    auth:\n      type: bearer\n      token: ${OUTER}\n",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    match &connector(&loaded, "grafana").auth.auth {
        Auth::Bearer { token } => assert_eq!(token.expose(), "${INNER}"),
        other => panic!("expected bearer auth, got {other:?}"),
    }
}

#[test]
fn malformed_environment_references_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  username: admin",
            "  password: abc${OOPS",
        ],
        "connectors[1] (id \"x\")",
        "auth.password",
    );
    assert_contains(&message, "without a closing `}`");
    assert!(
        !message.contains("abc"),
        "the secret is not echoed: {message}"
    );

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    X-Key: ${}",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.X-Key",
    );
    assert_contains(&message, "is not an environment variable name");
}

#[test]
fn missing_environment_variable_in_a_header_is_named() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    X-Key: ${NO_SUCH_KEY}",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.X-Key",
    );
    assert_eq!(message, "environment variable `NO_SUCH_KEY` is not set");
}

#[test]
fn invalid_header_name_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    Bad Header: v",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.Bad Header",
    );
    assert_eq!(message, "`Bad Header` is not a valid HTTP header name");
}

#[test]
fn credentials_the_auth_type_does_not_use_are_reported() {
    let message = rejected(
        &["id: x", "component: grafana", "auth: {token: abc}"],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_contains(&message, "auth.type is none");
    assert!(!message.contains("abc"));
}

#[test]
fn a_required_secret_whose_variable_is_missing_is_one_problem() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth: {type: bearer, token: '${MISSING_TOKEN}'}",
        ],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_contains(&message, "MISSING_TOKEN");
}

#[test]
fn a_double_dollar_writes_a_literal_placeholder() {
    let c = single("connectors:\n  - {id: grafana, auth: {type: bearer, token: 'a$${b}'}}\n");
    match &c.auth.auth {
        Auth::Bearer { token } => assert_eq!(token.expose(), "a${b}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn aws_sigv4_auth_takes_keys_region_and_service_with_defaults() {
    let loaded = load(
        "connectors:\n  - id: bucket\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, secret_access_key: sk}\n  - id: bad\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, token: t}\n",
    );
    let c = connector(&loaded, "bucket");
    match &c.auth.auth {
        Auth::AwsSigV4 {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            service,
        } => {
            assert_eq!(access_key_id, "AKID");
            assert_eq!(secret_access_key.expose(), "sk");
            assert!(session_token.is_none());
            assert_eq!((region.as_str(), service.as_str()), ("us-east-1", "s3"));
        }
        other => panic!("{other:?}"),
    }
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    let text = problems.join("\n");
    assert!(
        text.contains("auth.secret_access_key: required when auth.type is aws_sigv4"),
        "{text}"
    );
    assert!(
        text.contains("auth.token: is set, but auth.type is aws_sigv4"),
        "{text}"
    );
}

#[test]
fn an_api_entry_may_hold_a_placeholder_where_nothing_is_expanded() {
    // Found by the property tests: `region` and `service` are never
    // expanded, so an entry written back with `${` there was refused as an
    // environment reference when sent through the API.
    let entry = |region: &str, key: &str| -> serde_norway::Value {
        serde_norway::from_str(&format!(
            "{{id: bucket, component: http, port: 9000, auth: {{type: aws_sigv4, access_key_id: '{key}', secret_access_key: sk, region: '{region}', service: '${{s}}'}}}}"
        ))
        .expect("YAML")
    };
    let c = parse_api_entry(&entry("${r}", "AKID"), &TestBuiltins).expect("taken as written");
    match &c.auth.auth {
        Auth::AwsSigV4 {
            region, service, ..
        } => assert_eq!((region.as_str(), service.as_str()), ("${r}", "${s}")),
        other => panic!("{other:?}"),
    }
    let problems = parse_api_entry(&entry("eu-west-1", "${AKID}"), &TestBuiltins)
        .expect_err("an expanded key still may not name a variable");
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["auth.access_key_id"], "{problems:#?}");
}
