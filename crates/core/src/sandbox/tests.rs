//! The sandbox's own tests: contract versions, headers, loading.

use super::*;

#[test]
fn the_contract_version_is_the_one_in_wit() {
    let wit = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../wit/connector.wit"
    ));
    let package = format!("package sandport:connector@{CONTRACT_VERSION};");
    assert!(wit.lines().any(|line| line == package), "{package}");
}

#[test]
fn only_another_version_of_the_contract_is_found() {
    let ours = format!("sandport:connector/logging@{CONTRACT_VERSION}");
    let names = [
        "wasi:cli/environment@0.2.0",
        ours.as_str(),
        "sandport:connector/http-client",
        "sandport:connector/http-client@0.1.0",
        "sandport:connector/logging@0.3.0",
        "sandport:connector/network@0.2.0",
        "sandport:connector/network@0.2.2",
    ];
    assert_eq!(other_contract_version(names), Some("0.1.0"));
    assert_eq!(other_contract_version(names.into_iter().take(3)), None);
    // The version before this one loads; a later one does not.
    assert_eq!(
        other_contract_version(names.into_iter().skip(5)),
        Some("0.2.2")
    );
    assert_eq!(
        other_contract_version(["evil:sandport:connector/x@9.9.9"]),
        None
    );
}

#[tokio::test]
async fn a_compile_past_its_time_cap_is_refused_and_keeps_its_slot_until_done() {
    let limits = CompileLimits {
        slots: 1,
        timeout: Duration::from_millis(1),
    };
    let sandbox = Sandbox::new(None, limits, 16).expect("a sandbox");
    let builtin = sandport_builtins::find("http").expect("a built-in");
    let error = sandbox
        .prepare("built-in `http`", builtin.component)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, SandboxError::CompileTimeout { .. }),
        "{error}"
    );
    // The abandoned compile still runs and holds the only slot.
    let other = sandport_builtins::find("prometheus").expect("a built-in");
    let error = sandbox
        .prepare("built-in `prometheus`", other.component)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, SandboxError::CompileBusy { slots: 1, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn what_is_not_a_component_is_named_without_quoting_it() {
    let sandbox = Sandbox::new(None, CompileLimits::default(), 16).expect("a sandbox");
    let error = sandbox
        .prepare(
            "component /etc/passwd",
            b"root:x:0:0:root:/root:/bin/bash\n",
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        "component /etc/passwd is not a WebAssembly component (bad magic number)"
    );
    let module = wat::parse_str("(module)").expect("a core module");
    let error = sandbox
        .prepare("component m.wasm", &module)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("core WebAssembly module"),
        "{error}"
    );
}

/// Compiles `text` in a fresh sandbox; the error it is refused with.
async fn refusal(text: &str) -> SandboxError {
    let bytes = wat::parse_str(text).expect("valid component text");
    let sandbox = Sandbox::new(None, CompileLimits::default(), 16).expect("a sandbox");
    match sandbox.prepare("component old.wasm", &bytes).await {
        Ok(_) => panic!("{text} was accepted"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_component_built_for_the_previous_contract_is_refused_with_both_versions() {
    let error = refusal(
        r#"(component
            (import "wasi:cli/environment@0.2.0" (instance))
            (import "sandport:connector/logging@0.1.0" (instance))
        )"#,
    )
    .await;
    assert!(
        matches!(&error, SandboxError::ContractVersion { found, expected, .. }
            if found == "0.1.0" && expected == CONTRACT_VERSION),
        "{error:?}"
    );
    let text = error.to_string();
    for part in [
        "component old.wasm was built for sandport:connector@0.1.0",
        "this Sandport runs sandport:connector@0.2.1",
        "rebuild it with the SDK of this release",
        "wit/connector.wit",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
}

#[tokio::test]
async fn a_component_built_for_a_later_contract_is_refused_the_same_way() {
    let error = refusal(
        r#"(component
            (instance $api)
            (export "sandport:connector/connector-api@0.3.0" (instance $api))
        )"#,
    )
    .await;
    let text = error.to_string();
    assert!(
        matches!(&error, SandboxError::ContractVersion { found, .. } if found == "0.3.0"),
        "{error:?}"
    );
    assert!(
        text.contains("built for sandport:connector@0.3.0")
            && text.contains("runs sandport:connector@0.2.1"),
        "{text}"
    );
}
