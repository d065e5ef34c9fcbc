#![allow(
    clippy::disallowed_methods,
    reason = "tests read back the files a template wrote"
)]

use super::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_sdk_source_is_embedded() {
    for (dir, embedded) in files::embedded_sdk_files() {
        let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| [".rs", ".py", ".js"].iter().any(|ext| n.ends_with(ext)))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = embedded.iter().map(|s| s.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "{dir} and the files `sandport new` embeds"
        );
    }
}

#[test]
fn the_vendored_sdk_uses_the_workspace_wit_bindgen_and_wasip2() {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    for (crate_name, version) in [
        ("wit-bindgen", files::WIT_BINDGEN_VERSION),
        ("wasip2", files::WASIP2_VERSION),
    ] {
        let line = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{crate_name} =")))
            .unwrap_or_else(|| panic!("no {crate_name} in the workspace manifest"));
        assert!(line.contains(&format!("version = \"{version}\"")), "{line}");
    }
}

#[test]
fn names_come_from_the_directory() {
    assert_eq!(project_name(Path::new("/x/My-Check")).unwrap(), "my-check");
    for bad in ["/x/1st", "/x/a b", "/x/ü", "/"] {
        assert!(
            matches!(project_name(Path::new(bad)), Err(ProjectError::BadName(_))),
            "{bad}"
        );
    }
}

#[test]
fn languages_parse_by_name_and_alias() {
    assert_eq!("Python".parse::<Lang>().unwrap(), Lang::Python);
    assert_eq!("javascript".parse::<Lang>().unwrap(), Lang::Js);
    assert_eq!("rs".parse::<Lang>().unwrap(), Lang::Rust);
    let err = "go".parse::<Lang>().unwrap_err();
    assert!(err.contains("rust, python, js"), "{err}");
}

#[test]
fn new_writes_a_project_build_recognises() {
    let tmp = std::env::temp_dir().join(format!("sandport-new-{}", std::process::id()));
    for lang in Lang::ALL {
        let dir = tmp.join(format!("check-{lang}"));
        let created = new(lang, &dir).unwrap();
        assert_eq!(created.name, format!("check-{lang}"));
        assert!(created.files.contains(&PathBuf::from("wit/connector.wit")));
        assert_eq!(detect(&dir).unwrap(), lang);
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("build/check-{lang}.wasm")),
            "{readme}"
        );
        assert!(!readme.contains("{{"), "{readme}");
        // A second `new` into the same directory refuses, and leaves it be.
        let again = new(lang, &dir).unwrap_err();
        assert!(matches!(again, ProjectError::NotEmpty(_)), "{again}");
    }
    let rust = std::fs::read_to_string(tmp.join("check-rust/Cargo.toml")).unwrap();
    assert!(rust.contains("name = \"check-rust\""), "{rust}");
    let empty = tmp.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = build(&empty, &BuildOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a connector project"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
