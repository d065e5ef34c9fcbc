//! The durable part of the registry: connectors registered, updated or
//! removed through an API survive a restart.
//!
//! The operator's YAML is never rewritten. Changes live in one JSON file in
//! the data directory, `registry.json`: the entries registered or updated
//! through the API (in the YAML entry shape, secrets included, so the file is
//! created readable by its owner only), and the ids of YAML entries removed
//! through the API. At start-up the YAML is loaded first, then this file is
//! laid over it.
//!
//! Every change is written to a temporary file, fsynced, and renamed over the
//! old file (then the directory is fsynced), so a crash at any point leaves
//! either the old or the new state, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sandport_config::{
    self as config, BuiltinCatalog, ComponentPaths, ConnectorConfig, Loaded, Problem, Secrets,
};

const FILE_NAME: &str = "registry.json";
const VERSION: u32 = 1;

/// The largest state file read back: about 100 times what 10,000
/// API-registered connectors take.
const MAX_STATE_SIZE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot use the data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: sandport_config::ReadError,
    },
    #[error(
        "the state file {path} is damaged ({message}); move it away to start without the connectors registered through the API"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot write the state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    /// By id, in the YAML entry shape.
    registered: BTreeMap<String, serde_norway::Value>,
    /// Ids of YAML entries removed through the API.
    removed: BTreeSet<String>,
}

pub struct StateFile {
    dir: PathBuf,
    path: PathBuf,
    doc: tokio::sync::Mutex<Document>,
}

impl StateFile {
    /// Opens the state in `dir` (created at the first change). A damaged
    /// file is an error, never silently replaced.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join(FILE_NAME);
        let doc = match sandport_config::read_bounded(&path, MAX_STATE_SIZE) {
            Ok(bytes) => {
                let doc: Document =
                    serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if doc.version != VERSION {
                    return Err(StateError::Corrupt {
                        path,
                        message: format!(
                            "version {} is not the supported version {VERSION}",
                            doc.version
                        ),
                    });
                }
                doc
            }
            Err(sandport_config::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Document {
                    version: VERSION,
                    ..Document::default()
                }
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        Ok(StateFile {
            dir: dir.to_path_buf(),
            path,
            doc: tokio::sync::Mutex::new(doc),
        })
    }

    /// The data directory the state file lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lays the saved changes over the config loaded from YAML.
    pub async fn apply(&self, loaded: &mut Loaded, builtins: &dyn BuiltinCatalog) {
        let doc = self.doc.lock().await;
        loaded
            .connectors
            .retain(|c| !doc.removed.contains(&c.id) && !doc.registered.contains_key(&c.id));
        for (id, value) in &doc.registered {
            // Saved from the API, so read as the API reads.
            match config::parse_entry_value(value, ComponentPaths::ComponentsDir, builtins) {
                Ok(config) => loaded.connectors.push(config),
                Err(problems) => loaded
                    .problems
                    .extend(problems.into_iter().map(|p| Problem {
                        entry: format!("{} (registered connector \"{id}\")", self.path.display()),
                        ..p
                    })),
            }
        }
    }

    /// The ids the saved changes decide: registered or updated through the
    /// API, or removed through it.
    pub async fn api_ids(&self) -> std::collections::HashSet<String> {
        let doc = self.doc.lock().await;
        doc.registered.keys().chain(&doc.removed).cloned().collect()
    }

    /// Records that `config` was registered or updated.
    pub async fn record_put(&self, config: &ConnectorConfig) -> Result<(), StateError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        next.removed.remove(&config.id);
        next.registered
            .insert(config.id.clone(), config::to_value(config, Secrets::Keep));
        self.write(&next).await?;
        *doc = next;
        Ok(())
    }

    /// Records that `id` was removed; `from_yaml` says whether the YAML
    /// defines it (and so must be told to skip it at the next start).
    pub async fn record_remove(&self, id: &str, from_yaml: bool) -> Result<(), StateError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        next.registered.remove(id);
        if from_yaml {
            next.removed.insert(id.to_string());
        }
        self.write(&next).await?;
        *doc = next;
        Ok(())
    }

    async fn write(&self, doc: &Document) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| StateError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let dir = self.dir.clone();
        let path = self.path.clone();
        create_private_dir(&dir).map_err(|source| StateError::Dir {
            path: dir.clone(),
            source,
        })?;
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(|source| StateError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sandport-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn entry(yaml: &str) -> ConnectorConfig {
        config::parse_entry(yaml, Path::new("."), sandport_builtins::catalog())
            .expect("valid entry")
    }

    fn yaml_with(ids: &[&str]) -> Loaded {
        let mut text = String::from("connectors:\n");
        for id in ids {
            text.push_str(&format!("  - {{id: {id}, component: http, port: 80}}\n"));
        }
        config::parse(&text, "test", Path::new("."), sandport_builtins::catalog()).expect("parses")
    }

    #[tokio::test]
    async fn registered_and_removed_connectors_survive_reopening() {
        let dir = temp_dir("survive");
        let state = StateFile::open(&dir).expect("opens");
        state
            .record_put(&entry(
                "{id: added, component: http, port: 81, auth: {type: bearer, token: 't$${x'}}",
            ))
            .await
            .expect("written");
        state.record_remove("gone", true).await.expect("written");
        drop(state);

        let state = StateFile::open(&dir).expect("reopens");
        let mut loaded = yaml_with(&["kept", "gone"]);
        state.apply(&mut loaded, sandport_builtins::catalog()).await;
        let ids: Vec<&str> = loaded.connectors.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["kept", "added"]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        match &loaded.connectors[1].auth.auth {
            config::Auth::Bearer { token } => assert_eq!(token.expose(), "t${x"),
            other => panic!("{other:?}"),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(FILE_NAME))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the state file holds secrets: {mode:o}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_update_of_a_yaml_entry_overrides_it_and_a_removal_of_an_api_entry_leaves_no_tombstone()
     {
        let dir = temp_dir("override");
        let state = StateFile::open(&dir).expect("opens");
        state
            .record_put(&entry("{id: kept, component: http, port: 9999}"))
            .await
            .expect("written");
        state
            .record_put(&entry("{id: temp, component: http, port: 1}"))
            .await
            .expect("written");
        state.record_remove("temp", false).await.expect("written");
        let mut loaded = yaml_with(&["kept", "temp"]);
        state.apply(&mut loaded, sandport_builtins::catalog()).await;
        let ports: Vec<(&str, u16)> = loaded
            .connectors
            .iter()
            .map(|c| (c.id.as_str(), c.port))
            .collect();
        assert_eq!(ports, [("temp", 80), ("kept", 9999)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_state_file_is_an_error_not_a_fresh_start() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(FILE_NAME), b"{\"version\": 1, \"registered\": ").expect("write");
        let err = StateFile::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("damaged"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_leftover_temporary_file_does_not_matter() {
        let dir = temp_dir("leftover");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("registry.json.tmp"), b"half-writ").expect("write");
        assert!(StateFile::open(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
