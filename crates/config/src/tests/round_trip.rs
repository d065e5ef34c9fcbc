//! The entry shape written back (state file, APIs) parses to the same config.

use super::*;

const ROUND_TRIP_ENTRY: &str = "connectors:
  - id: web
    name: Web
    type: messaging
    mode: local
    enabled: false
    description: d
    host: '::1'
    port: 8443
    scheme: https
    base_path: /api
    auth: {type: basic, username: admin, password: 'pa$${ss', headers: {X-Key: k}}
    metadata: {team: sre}
    tags: [a, b]
    health_check: {enabled: false, interval: 1m30s, timeout: 2s, path: /h, failure_threshold: 3, success_threshold: 2}
    component: http
    settings: {path: /x, headers: {Accept: text/plain}}
    sandbox: {memory_limit: 32MiB, allowed_hosts: ['*.example.com:443', 'http://10.0.0.5:9090/v1']}
";

#[test]
fn an_entry_written_back_parses_to_the_same_config() {
    let original = single(ROUND_TRIP_ENTRY);
    let value = to_value(&original, Secrets::Keep);
    let again = raw::parse_value(
        &value,
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        &no_env,
    )
    .expect("parses");
    assert_eq!(again, original);
    match &again.auth.auth {
        Auth::Basic { password, .. } => assert_eq!(password.expose(), "pa${ss"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_redacted_entry_holds_no_secret_and_restores_from_the_current_one() {
    let original = single(ROUND_TRIP_ENTRY);
    let value = to_value(&original, Secrets::Redact);
    let text = serde_norway::to_string(&value).expect("serialises");
    assert!(!text.contains("pa$"), "{text}");
    assert!(!text.contains(": k"), "{text}");
    let mut sent_back = raw::parse_value(
        &value,
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        &no_env,
    )
    .expect("parses");
    assert_ne!(sent_back, original);
    restore_redacted(&mut sent_back, &original);
    assert_eq!(sent_back, original);
}

#[test]
fn aws_sigv4_and_sharing_survive_the_round_trip_through_yaml_and_redaction() {
    let loaded = load(
        "connectors:\n  - id: bucket\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, secret_access_key: sk, region: eu-west-1, share_with_connector: true}\n",
    );
    let original = connector(&loaded, "bucket").clone();
    let yaml = to_value(&original, Secrets::Keep);
    let again =
        parse_entry_value(&yaml, ComponentPaths::ComponentsDir, &TestBuiltins).expect("parses");
    assert_eq!(again, original);
    let mut redacted = parse_entry_value(
        &to_value(&original, Secrets::Redact),
        ComponentPaths::ComponentsDir,
        &TestBuiltins,
    )
    .expect("parses");
    restore_redacted(&mut redacted, &original);
    assert_eq!(redacted, original);
}

// ---------------------------------------------------------------------------
// Fully-populated entries, one per auth kind: whole-config equality, so a
// field a converter forgets fails here without a line per field.
// ---------------------------------------------------------------------------

/// The `auth` of each kind with every key it takes; secrets hold `s3cret`.
const AUTH_KINDS: &[&str] = &[
    "type: none",
    "type: basic, username: 'adm$${in}', password: 's3cret-pa$${ss'",
    "type: bearer, token: s3cret-token",
    "type: api_key, api_key: s3cret-key",
    "type: aws_sigv4, access_key_id: 'AK$${ID}', secret_access_key: s3cret-sak, session_token: s3cret-st, region: eu-west-1, service: execute-api",
];

/// An entry that sets every key to a value other than its default, with
/// `auth` as given; a built-in, a path and an uploaded component by turns.
fn full_entry(index: usize, auth: &str) -> String {
    let uploaded = format!("sha256:{}", "cd".repeat(32));
    let component = match index % 3 {
        0 => "http",
        1 => "components/full.wasm",
        _ => uploaded.as_str(),
    };
    format!(
        "connectors:
  - id: full-{index}
    name: Full entry
    type: database
    mode: local
    enabled: false
    description: every key set
    host: db.example.com
    port: 8443
    scheme: https
    base_path: /api
    auth: {{{auth}, share_with_connector: true, headers: {{X-Tenant: s3cret-tenant, X-Other: 's3cret-$${{x}}'}}}}
    metadata: {{team: sre, tier: '1'}}
    tags: [a, b]
    health_check: {{enabled: false, interval: 1m30s, timeout: 2s, path: /h, failure_threshold: 3, success_threshold: 2}}
    component: {component}
    component_sha256: {sha}
    settings: {{path: /x, headers: {{Accept: text/plain}}, list: [1, 2]}}
    sandbox: {{memory_limit: 32MiB, allowed_hosts: ['*.example.com:443', 'http://10.0.0.5:9090/v1'], max_response_size: 2MiB, max_requests_per_call: 7, max_bytes_per_call: 4MiB, max_sockets: 3}}
",
        sha = "ab".repeat(32),
    )
}

fn full_entries() -> Vec<(String, ConnectorConfig)> {
    AUTH_KINDS
        .iter()
        .enumerate()
        .map(|(index, auth)| {
            let text = full_entry(index, auth);
            let config = single(&text);
            (text, config)
        })
        .collect()
}

/// The full entries as an API caller sends them: the path is one in the
/// components directory.
fn full_api_entries() -> Vec<(String, ConnectorConfig)> {
    AUTH_KINDS
        .iter()
        .enumerate()
        .map(|(index, auth)| {
            let text = full_entry(index, auth);
            let doc: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
            let config = parse_api_entry(&doc["connectors"][0], &TestBuiltins)
                .unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
            (text, config)
        })
        .collect()
}

#[test]
fn the_full_entries_set_every_key_the_parser_reads() {
    let mut auth_keys = std::collections::BTreeSet::new();
    for (text, _) in full_entries() {
        let doc: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
        let entry = &doc["connectors"][0];
        for (section, keys) in raw::KNOWN_KEYS {
            let map = if section.is_empty() {
                entry
            } else {
                &entry[*section]
            };
            let map = map.as_mapping().expect("a map");
            let set = |key: &&str| map.contains_key(*key);
            if *section == "auth" {
                auth_keys.extend(keys.iter().copied().filter(set));
            } else if let Some(missing) = keys.iter().find(|k| !set(k)) {
                panic!("the full entry leaves out `{section}.{missing}`:\n{text}");
            }
        }
    }
    let (_, all) = raw::KNOWN_KEYS
        .iter()
        .find(|(section, _)| *section == "auth")
        .expect("auth keys");
    let missing: Vec<&&str> = all.iter().filter(|k| !auth_keys.contains(*k)).collect();
    assert!(missing.is_empty(), "no full entry sets auth {missing:?}");
}

#[test]
fn every_full_entry_written_back_parses_to_the_same_config() {
    for (text, original) in full_entries() {
        let value = to_value(&original, Secrets::Keep);
        let again = parse_entry_value(&value, ComponentPaths::Anywhere(base_dir()), &TestBuiltins)
            .unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
        assert_eq!(again, original, "{text}");
    }
    for (text, original) in full_api_entries() {
        let value = to_value(&original, Secrets::Keep);
        let again =
            parse_api_entry(&value, &TestBuiltins).unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
        assert_eq!(again, original, "{text}");
    }
}

#[test]
fn every_full_entry_redacted_holds_no_secret_and_restores_from_the_current_one() {
    for (text, original) in full_api_entries() {
        let value = to_value(&original, Secrets::Redact);
        let written = serde_norway::to_string(&value).expect("serialises");
        assert!(!written.contains("s3cret"), "{written}");
        assert!(written.contains(REDACTED), "{written}");
        let mut sent_back =
            parse_api_entry(&value, &TestBuiltins).unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
        assert_ne!(sent_back, original, "{text}");
        restore_redacted(&mut sent_back, &original);
        assert_eq!(sent_back, original, "{text}");
    }
}
