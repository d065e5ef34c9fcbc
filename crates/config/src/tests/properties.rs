//! Property tests of the parser: no input makes it panic, every problem it
//! returns says where, and every valid config written back with
//! [`to_value`] (secrets kept, or redacted and restored) parses to the same
//! config.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_norway::value::{Tag, TaggedValue};
use serde_norway::{Mapping, Number, Value};

use super::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// `prop_assert!` whose default message is the condition's text (which
/// `prop_assert!` itself cannot give when the condition holds a `format!`).
macro_rules! ensure {
    ($cond:expr) => {
        prop_assert!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($message:tt)*) => {
        prop_assert!($cond, $($message)*)
    };
}

// ---------------------------------------------------------------------------
// Arbitrary input
// ---------------------------------------------------------------------------

/// Every key the parser reads, from any section.
fn known_key() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = raw::KNOWN_KEYS
        .iter()
        .flat_map(|(_, keys)| keys.iter().copied())
        .chain(["connectors"])
        .collect();
    prop::sample::select(keys).prop_map(String::from)
}

/// Strings the parser gives meaning to, and any string.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => prop::sample::select(vec![
            "", " ", "30s", "0s", "1m30s", "500ms", "-1s", "1e400", "64MiB", "0", "-1", "1.5",
            "18446744073709551616", "${HOME}", "${", "$${", "${}", "${A-B}", "x${", "prometheus",
            "http", "slack", "basic", "bearer", "api_key", "aws_sigv4", "none", "NONE", "local",
            "remote", "https", "custom", "::1", "[::1]", "[::1", "localhost", "a b",
            "*.example.com:443", "tcp://10.0.0.5:5432", "http://x/y/", "x.wasm", "../x.wasm",
            "/abs/x.wasm", "a/b", "sha256:", "<redacted>", "X-Key", "bad header",
        ])
        .prop_map(String::from),
        1 => "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")),
        1 => known_key(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(|n| Value::Number(Number::from(n))),
        1 => any::<u64>().prop_map(|n| Value::Number(Number::from(n))),
        1 => (0u64..70_000).prop_map(|n| Value::Number(Number::from(n))),
        1 => any::<f64>().prop_map(|n| Value::Number(Number::from(n))),
        3 => text_value().prop_map(Value::String),
    ]
}

/// YAML values of any shape, with maps keyed mostly by the parser's keys.
fn any_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 96, 10, |inner| {
        let key = prop_oneof![
            4 => known_key().prop_map(Value::String),
            2 => text_value().prop_map(Value::String),
            1 => inner.clone(),
        ];
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Sequence),
            3 => prop::collection::vec((key, inner.clone()), 0..10)
                .prop_map(|pairs| Value::Mapping(pairs.into_iter().collect::<Mapping>())),
            1 => ("!?[a-z]{1,6}", inner).prop_map(|(tag, value)| Value::Tagged(Box::new(
                TaggedValue {
                    tag: Tag::new(tag),
                    value
                }
            ))),
        ]
    })
}

/// An entry: a map of the entry's keys to values of any shape.
fn any_entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => any_value(),
        3 => prop::collection::vec((known_key(), any_value()), 0..12).prop_map(|pairs| {
            Value::Mapping(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect(),
            )
        }),
    ]
}

/// Text built of YAML's syntax and the parser's keys and values.
fn yaml_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "connectors:\n",
            "\n",
            "  ",
            "    ",
            "- ",
            ": ",
            ":",
            "{",
            "}",
            "[",
            "]",
            ", ",
            "'",
            "\"",
            "&a ",
            "*a",
            "!tag ",
            "!!str ",
            "!!binary ",
            "---\n",
            "? ",
            "|\n",
            ">-\n",
            "# c\n",
            "~",
            "null",
            "true",
            "\\",
            "\t",
            "%YAML 1.2\n",
            "<<: ",
        ])
        .prop_map(String::from),
        known_key().prop_map(|k| format!("{k}: ")),
        text_value(),
    ];
    prop_oneof![
        1 => any::<String>(),
        4 => prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat()),
        // An arbitrary entry written as YAML by the serializer, then cut.
        2 => (any_entry(), any::<prop::sample::Index>()).prop_map(|(entry, cut)| {
            let mut doc = Mapping::new();
            doc.insert("connectors".into(), Value::Sequence(vec![entry]));
            let text = serde_norway::to_string(&Value::Mapping(doc)).unwrap_or_default();
            let mut end = cut.index(text.len() + 1);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_string()
        }),
    ]
}

/// Every problem of one entry names the entry and says something; the key
/// is empty only when the entry is not a map at all.
fn check_entry_problems(value: &Value, problems: &[Problem]) -> Result<(), TestCaseError> {
    ensure!(!problems.is_empty(), "an error with no problem");
    for problem in problems {
        ensure!(!problem.message.trim().is_empty(), "{problem:?}");
        ensure!(problem.entry.starts_with("connector"), "{problem:?}");
        ensure!(
            !problem.key.is_empty() || !matches!(value, Value::Mapping(_)),
            "a problem of a map entry names no key: {problem:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Any text given to `parse` is a file-level error with a message, or
    /// a load whose problems each name their entry and key, or a top-level
    /// key; what loads has unique ids.
    #[test]
    fn any_text_parses_or_says_where_it_is_wrong(text in yaml_like()) {
        match parse(&text, SOURCE, base_dir(), &TestBuiltins) {
            Err(e) => ensure!(!e.to_string().trim().is_empty()),
            Ok(loaded) => {
                for problem in &loaded.problems {
                    ensure!(!problem.message.trim().is_empty(), "{problem:?}");
                    if problem.entry.is_empty() {
                        // A file-level problem: an unknown top-level key.
                        ensure!(!problem.key.is_empty(), "{problem:?}");
                    } else {
                        ensure!(problem.entry.starts_with("connectors["), "{problem:?}");
                    }
                }
                let mut ids: Vec<&str> = loaded.connectors.iter().map(|c| c.id.as_str()).collect();
                ids.sort_unstable();
                let count = ids.len();
                ids.dedup();
                ensure!(ids.len() == count, "duplicate ids loaded");
            }
        }
    }

    /// Any text given to `parse_entry` is a config, or problems that name
    /// the entry, or one problem saying it is not YAML.
    #[test]
    fn any_entry_text_parses_or_says_where_it_is_wrong(text in yaml_like()) {
        if let Err(problems) = parse_entry(&text, base_dir(), &TestBuiltins) {
            match serde_norway::from_str::<Value>(&text) {
                Ok(value) => check_entry_problems(&value, &problems)?,
                Err(_) => {
                    ensure!(problems.len() == 1, "{problems:?}");
                    let problem = &problems[0];
                    ensure!(problem.entry.is_empty() && problem.key.is_empty(), "{problem:?}");
                    ensure!(problem.message.starts_with("not valid YAML or JSON: "), "{problem:?}");
                }
            }
        }
    }

    /// Any YAML value given to `parse_api_entry` or `parse_entry_value` is
    /// a config or problems naming the entry and key; what an API caller
    /// sends never names a component outside the components directory.
    #[test]
    fn any_value_parses_or_says_where_it_is_wrong(value in any_entry()) {
        match parse_api_entry(&value, &TestBuiltins) {
            Ok(config) => ensure!(
                !matches!(config.component, ComponentRef::Path(_)),
                "{:?}", config.component
            ),
            Err(problems) => check_entry_problems(&value, &problems)?,
        }
        for paths in [ComponentPaths::Anywhere(base_dir()), ComponentPaths::ComponentsDir] {
            if let Err(problems) = parse_entry_value(&value, paths, &TestBuiltins) {
                check_entry_problems(&value, &problems)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Valid configs
// ---------------------------------------------------------------------------

/// Text holding what `${VAR}` expansion looks at, and any text.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "$",
            "{",
            "}",
            "${",
            "$${",
            "${HOME}",
            "$$",
            "<redacted>"
        ])
        .prop_map(String::from),
        "\\PC{0,4}",
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
    ]
}

fn non_empty(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    text.prop_filter("empty", |t| !t.is_empty())
}

/// A valid header name, and a value `http` accepts (which may hold `${`).
fn headers() -> impl Strategy<Value = BTreeMap<String, Secret>> {
    prop::collection::btree_map(
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        prop_oneof!["[ -~\t]{0,24}", Just("a${b}$${".to_string())].prop_map(Secret::new),
        0..4,
    )
}

fn auth() -> impl Strategy<Value = Auth> {
    let secret = || tricky_text().prop_map(Secret::new);
    let required = || non_empty(tricky_text()).prop_map(Secret::new);
    prop_oneof![
        Just(Auth::None),
        (non_empty(tricky_text()), secret())
            .prop_map(|(username, password)| Auth::Basic { username, password }),
        required().prop_map(|token| Auth::Bearer { token }),
        required().prop_map(|key| Auth::ApiKey { key }),
        (
            non_empty(tricky_text()),
            required(),
            prop::option::of(required()),
            any::<String>(),
            any::<String>(),
        )
            .prop_map(
                |(access_key_id, secret_access_key, session_token, region, service)| {
                    Auth::AwsSigV4 {
                        access_key_id,
                        secret_access_key,
                        session_token,
                        region,
                        service,
                    }
                }
            ),
    ]
}

/// A host name (letters, digits, `-`, `_`, `.`) or an IP address.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}(\\.[a-zA-Z0-9_-]{1,12}){0,3}",
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

/// Rules of every shape: a name, a wildcard, an IP, with or without a
/// scheme, port and path prefix; and `tcp://` ones.
fn host_rule() -> impl Strategy<Value = HostRule> {
    // No hyphens: `xn--` would make a punycode label the URL parser checks.
    let name = "[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){0,2}\\.[a-z]{2,5}";
    let host = prop_oneof![
        name.prop_map(String::from),
        name.prop_map(|n| format!("*.{n}")),
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| format!("[{a}]")),
    ];
    (
        prop::option::of(prop::sample::select(vec!["http", "https", "tcp"])),
        host,
        prop::option::of(1u16..),
        prop::option::of("(/[a-z0-9]{1,6}){1,3}"),
    )
        .prop_map(|(scheme, host, port, path)| {
            let mut text = String::new();
            if let Some(scheme) = scheme {
                text.push_str(scheme);
                text.push_str("://");
            }
            text.push_str(&host);
            if let Some(port) = port.or((scheme == Some("tcp")).then_some(5432)) {
                text.push_str(&format!(":{port}"));
            }
            if scheme != Some("tcp") {
                text.push_str(path.as_deref().unwrap_or_default());
            }
            HostRule::parse(&text).unwrap_or_else(|e| panic!("the generator wrote a bad rule: {e}"))
        })
}

fn duration_up_to(max_secs: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0..=max_secs).prop_map(Duration::from_secs),
        (0..=max_secs, 0u32..1_000).prop_map(|(s, ms)| Duration::new(s, ms * 1_000_000)),
        (0..=max_secs, 0u32..1_000_000_000).prop_map(|(s, ns)| Duration::new(s, ns)),
    ]
}

fn health_check() -> impl Strategy<Value = HealthCheckConfig> {
    (
        any::<bool>(),
        duration_up_to(20 * 365 * 24 * 3600).prop_filter("at least 1s", |d| d.as_secs() >= 1),
        any::<prop::sample::Index>(),
        prop_oneof![
            Just(String::new()),
            any::<String>().prop_map(|p| format!("/{p}"))
        ],
        (
            1..=HealthCheckConfig::MAX_THRESHOLD,
            1..=HealthCheckConfig::MAX_THRESHOLD,
        ),
    )
        .prop_map(|(enabled, interval, fraction, path, thresholds)| {
            // Any timeout from 1ns up to the interval.
            let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
            let timeout = Duration::from_nanos(
                1 + fraction.index(usize::try_from(nanos).unwrap_or(usize::MAX)) as u64,
            );
            HealthCheckConfig {
                enabled,
                interval,
                timeout,
                path,
                failure_threshold: thresholds.0,
                success_threshold: thresholds.1,
            }
        })
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..1 << 20).prop_map(|n| n << 10),
        (0u64..1 << 20).prop_map(|n| n << 20),
        (0u64..1 << 20).prop_map(|n| n << 30),
    ]
}

fn sandbox() -> impl Strategy<Value = SandboxConfig> {
    (
        size().prop_filter("at least 1MiB", |s| *s >= 1 << 20),
        prop::collection::vec(host_rule(), 0..4),
        size(),
        size(),
        1u32..,
        0..=SandboxConfig::MAX_MAX_SOCKETS,
    )
        .prop_map(
            |(memory_limit, allowed_hosts, a, b, max_requests_per_call, max_sockets)| {
                SandboxConfig {
                    memory_limit,
                    allowed_hosts,
                    max_response_size: a.min(b),
                    max_requests_per_call,
                    max_bytes_per_call: a.max(b),
                    max_sockets,
                }
            },
        )
}

fn component() -> impl Strategy<Value = ComponentRef> {
    prop_oneof![
        3 => prop::sample::select(vec!["prometheus", "grafana", "jaeger", "http", "slack"])
            .prop_map(|name| ComponentRef::Builtin(name.into())),
        1 => "[0-9a-f]{64}".prop_map(ComponentRef::Uploaded),
    ]
}

/// A valid config, in the form the parser gives (paths and names trimmed,
/// base path with a leading `/` and none trailing).
fn valid_config() -> impl Strategy<Value = ConnectorConfig> {
    let identity = (
        "[a-z][a-z0-9-]{0,20}",
        any::<String>(),
        prop::sample::select(ConnectorType::ALL.to_vec()),
        prop::sample::select(vec![ConnectionMode::Local, ConnectionMode::Remote]),
        any::<bool>(),
        any::<String>(),
    );
    let endpoint = (
        host(),
        1u16..,
        prop::sample::select(vec![Scheme::Http, Scheme::Https]),
        prop::collection::vec("[A-Za-z0-9._~%-]{1,8}", 0..3),
    );
    let auth_config =
        (auth(), headers(), any::<bool>()).prop_map(|(auth, headers, share_with_connector)| {
            AuthConfig {
                auth,
                headers,
                share_with_connector,
            }
        });
    let rest = (
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..4),
        prop::collection::vec(any::<String>(), 0..4),
        health_check(),
        component(),
        prop::option::of("[0-9a-f]{64}"),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..5),
        sandbox(),
    );
    (identity, endpoint, auth_config, rest).prop_map(
        |(
            (id, name, connector_type, mode, enabled, description),
            (host, port, scheme, base_path),
            auth,
            (metadata, tags, health_check, component, component_sha256, settings, sandbox),
        )| ConnectorConfig {
            id,
            name,
            connector_type,
            mode,
            enabled,
            description,
            host,
            port,
            scheme,
            base_path: base_path.iter().map(|s| format!("/{s}")).collect(),
            auth,
            metadata,
            tags,
            health_check,
            component,
            component_sha256,
            settings,
            sandbox,
        },
    )
}

fn reparse(value: &Value, api: bool) -> Result<ConnectorConfig, TestCaseError> {
    let parsed = if api {
        parse_api_entry(value, &TestBuiltins)
    } else {
        raw::parse_value(
            value,
            ComponentPaths::Anywhere(base_dir()),
            &TestBuiltins,
            &no_env,
        )
    };
    parsed.map_err(|problems| TestCaseError::fail(format!("{problems:#?}\n{value:?}")))
}

proptest! {
    #![proptest_config(config())]

    /// A valid config written back with its secrets parses to the same
    /// config, from the operator's file and from an API caller, and so does
    /// the same entry written as YAML text and read again.
    #[test]
    fn a_config_written_back_parses_to_the_same_config(original in valid_config()) {
        let value = to_value(&original, Secrets::Keep);
        for api in [false, true] {
            prop_assert_eq!(&reparse(&value, api)?, &original);
        }
        let text = serde_norway::to_string(&value)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let read: Value = serde_norway::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&reparse(&read, false)?, &original, "{}", text);
    }

    /// A valid config written back redacted holds no secret, parses, and
    /// restored from the current config is that config again.
    #[test]
    fn a_redacted_config_restores_to_the_same_config(original in valid_config()) {
        let value = to_value(&original, Secrets::Redact);
        for api in [false, true] {
            let mut sent_back = reparse(&value, api)?;
            let fields = sent_back.auth.auth.fields();
            let secrets = [fields.password, fields.token, fields.api_key, fields.secret_access_key, fields.session_token];
            for secret in secrets.into_iter().flatten().chain(sent_back.auth.headers.values()) {
                prop_assert_eq!(secret.expose(), REDACTED);
            }
            restore_redacted(&mut sent_back, &original);
            prop_assert_eq!(&sent_back, &original);
        }
    }
}
