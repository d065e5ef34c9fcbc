//! The files `sandport new` writes: templates, and this sandport's own WIT
//! contract and SDK sources, embedded at compile time.

use super::Lang;

/// wit-bindgen and wasip2 as the workspace pins them (checked by a test).
pub const WIT_BINDGEN_VERSION: &str = "0.62";
pub const WASIP2_VERSION: &str = "2";
/// The componentize-py the Python SDK is tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The componentize-js the JavaScript SDK is tested with.
pub const COMPONENTIZE_JS: &str =
    "@bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0";

macro_rules! embed {
    ($to:literal, $from:literal) => {
        ($to, include_str!(concat!("../../../../", $from)))
    };
}

const COMMON: &[(&str, &str)] = &[
    embed!("wit/connector.wit", "wit/connector.wit"),
    (".gitignore", include_str!("templates/gitignore.tmpl")),
    ("README.md", include_str!("templates/README.md.tmpl")),
];

const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("templates/rust/lib.rs.tmpl")),
    (
        "sdk/Cargo.toml",
        include_str!("templates/rust/sdk-Cargo.toml.tmpl"),
    ),
    embed!("sdk/src/config.rs", "guest-sdk/src/config.rs"),
    embed!("sdk/src/credentials.rs", "guest-sdk/src/credentials.rs"),
    embed!("sdk/src/error.rs", "guest-sdk/src/error.rs"),
    embed!("sdk/src/http.rs", "guest-sdk/src/http.rs"),
    embed!("sdk/src/lib.rs", "guest-sdk/src/lib.rs"),
    embed!("sdk/src/log.rs", "guest-sdk/src/log.rs"),
    embed!("sdk/src/net.rs", "guest-sdk/src/net.rs"),
    embed!("sdk/src/report.rs", "guest-sdk/src/report.rs"),
    embed!("sdk/src/shim.rs", "guest-sdk/src/shim.rs"),
    embed!("sdk/src/socket.rs", "guest-sdk/src/socket.rs"),
    embed!("sdk/src/tcp.rs", "guest-sdk/src/tcp.rs"),
];

const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("templates/python/app.py.tmpl")),
    embed!(
        "sandport_sdk/__init__.py",
        "guest-sdk/python/sandport_sdk/__init__.py"
    ),
    embed!(
        "sandport_sdk/_wit.py",
        "guest-sdk/python/sandport_sdk/_wit.py"
    ),
    embed!(
        "sandport_sdk/config.py",
        "guest-sdk/python/sandport_sdk/config.py"
    ),
    embed!(
        "sandport_sdk/connector.py",
        "guest-sdk/python/sandport_sdk/connector.py"
    ),
    embed!(
        "sandport_sdk/error.py",
        "guest-sdk/python/sandport_sdk/error.py"
    ),
    embed!(
        "sandport_sdk/http.py",
        "guest-sdk/python/sandport_sdk/http.py"
    ),
    embed!(
        "sandport_sdk/log.py",
        "guest-sdk/python/sandport_sdk/log.py"
    ),
    embed!(
        "sandport_sdk/net.py",
        "guest-sdk/python/sandport_sdk/net.py"
    ),
    embed!(
        "sandport_sdk/report.py",
        "guest-sdk/python/sandport_sdk/report.py"
    ),
];

const JS: &[(&str, &str)] = &[
    ("app.js", include_str!("templates/js/app.js.tmpl")),
    (
        "package.json",
        include_str!("templates/js/package.json.tmpl"),
    ),
    embed!("sandport-sdk/build.mjs", "guest-sdk/js/build.mjs"),
    embed!("sandport-sdk/package.json", "guest-sdk/js/package.json"),
    embed!("sandport-sdk/src/config.js", "guest-sdk/js/src/config.js"),
    embed!(
        "sandport-sdk/src/connector.js",
        "guest-sdk/js/src/connector.js"
    ),
    embed!("sandport-sdk/src/error.js", "guest-sdk/js/src/error.js"),
    embed!("sandport-sdk/src/http.js", "guest-sdk/js/src/http.js"),
    embed!("sandport-sdk/src/index.js", "guest-sdk/js/src/index.js"),
    embed!("sandport-sdk/src/log.js", "guest-sdk/js/src/log.js"),
    embed!("sandport-sdk/src/net.js", "guest-sdk/js/src/net.js"),
    embed!("sandport-sdk/src/report.js", "guest-sdk/js/src/report.js"),
    embed!("sandport-sdk/src/utf8.js", "guest-sdk/js/src/utf8.js"),
    embed!("sandport-sdk/src/wit.js", "guest-sdk/js/src/wit.js"),
];

/// Every file of a new `lang` project: (path in the project, contents).
pub fn template(lang: Lang) -> impl Iterator<Item = (&'static str, &'static str)> {
    let own = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    COMMON.iter().chain(own).copied()
}

/// The SDK directories embedded above, with the files each must list.
#[cfg(test)]
pub fn embedded_sdk_files() -> Vec<(&'static str, Vec<&'static str>)> {
    let under = |list: &'static [(&'static str, &'static str)], prefix: &'static str| {
        list.iter()
            .filter_map(|(to, _)| to.strip_prefix(prefix))
            .collect::<Vec<_>>()
    };
    vec![
        ("guest-sdk/src", under(RUST, "sdk/src/")),
        (
            "guest-sdk/python/sandport_sdk",
            under(PYTHON, "sandport_sdk/"),
        ),
    ]
}
