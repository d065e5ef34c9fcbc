//! What a connector author goes through: `sandport new`, `sandport build`
//! and the conformance kit, in every language the SDKs cover.

use std::path::{Path, PathBuf};

use sandport::conformance::{self, Report, rows};
use sandport::project::{self, BuildOptions, Lang};

use crate::languages::example;

/// target/guests/wasm32-wasip2/guest: where the Rust guests are built.
fn rust_guests() -> PathBuf {
    Path::new(env!("SANDPORT_HOSTILE_WASM"))
        .parent()
        .expect("guest dir")
        .to_path_buf()
}

/// target/guests: shared by every guest build, so a second test run reuses
/// the first one's work.
fn guests_root() -> PathBuf {
    rust_guests()
        .ancestors()
        .nth(2)
        .expect("guests root")
        .to_path_buf()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandport-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

async fn kit(component: &Path, entry: Option<&Path>) -> Report {
    let cache = Some(guests_root().join("kit-cache"));
    let report = conformance::run(component, entry, cache)
        .await
        .expect("the kit runs");
    println!("{}:\n{report}", component.display());
    report
}

fn failed<'r>(report: &'r Report, row: &str) -> &'r conformance::Outcome {
    let outcome = report
        .outcome(row)
        .unwrap_or_else(|| panic!("no row `{row}`:\n{report}"));
    assert!(!outcome.passed, "`{row}` passed:\n{report}");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_http_examples_in_every_language() {
    let components = [
        rust_guests().join("sandport_connector_http.wasm"),
        PathBuf::from(example!("SANDPORT_PYTHON_HTTP_WASM")),
        PathBuf::from(example!("SANDPORT_JS_HTTP_WASM")),
    ];
    for component in components {
        let report = kit(&component, None).await;
        assert!(report.passed(), "{}:\n{report}", component.display());
        assert_eq!(report.outcomes.len(), 12, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_fails_connectors_that_misbehave() {
    let hostile = PathBuf::from(env!("SANDPORT_HOSTILE_WASM"));
    let dir = scratch("kit-hostile");
    let entry = |name: &str, yaml: &str| {
        let path = dir.join(name);
        std::fs::write(&path, yaml).expect("write entry");
        path
    };

    // Says healthy whatever the target does.
    let report = kit(&hostile, None).await;
    assert!(!report.passed());
    assert!(
        report.outcome(rows::UP).is_some_and(|o| o.passed),
        "{report}"
    );
    for row in [rows::FAILING, rows::DOWN, rows::DENIED, rows::HANGING] {
        failed(&report, row);
    }

    // Keeps 256 KiB per check: it would reach its 64 MiB limit within hours.
    let leak = entry("leak.yaml", "settings: {mode: leak}\n");
    let report = kit(&hostile, Some(&leak)).await;
    let memory = failed(&report, rows::MEMORY);
    assert!(memory.detail.contains("B/check"), "{report}");
    assert!(
        report.outcome(rows::STEADY).is_some_and(|o| o.passed),
        "{report}"
    );

    // Refuses its config: the kit stops after saying why.
    let refuses = entry("refuses.yaml", "settings: {mode: fail-init}\n");
    let report = kit(&hostile, Some(&refuses)).await;
    assert!(
        failed(&report, rows::LOADS).detail.contains("fail-init"),
        "{report}"
    );
    assert_eq!(report.outcomes.len(), 1, "{report}");

    // An entry file that is not an entry is an error naming the file.
    let list = entry("list.yaml", "- a\n- b\n");
    let err = conformance::run(&hostile, Some(&list), None)
        .await
        .expect_err("a list is not an entry");
    assert!(err.to_string().contains("list.yaml"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_then_build_then_the_kit_pass_untouched_in_every_language() {
    let root = scratch("new");
    let options = BuildOptions {
        // Shared with the next run, so wit-bindgen is compiled once.
        target_dir: Some(guests_root().join("new-projects")),
        componentize_py: Some(example!("SANDPORT_COMPONENTIZE_PY").into()),
        js_tools: Some(example!("SANDPORT_JS_TOOLS").into()),
    };
    for lang in Lang::ALL {
        let dir = root.join(format!("hello-{lang}"));
        let created = project::new(lang, &dir).expect("new");
        let build = {
            let (dir, options) = (dir.clone(), options.clone());
            tokio::task::spawn_blocking(move || project::build(&dir, &options))
        };
        let component = build
            .await
            .expect("build task")
            .unwrap_or_else(|e| panic!("building the new {lang} project: {e}"));
        assert_eq!(
            component,
            dir.join("build").join(format!("{}.wasm", created.name))
        );
        let report = kit(&component, None).await;
        assert!(report.passed(), "the new {lang} project:\n{report}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
