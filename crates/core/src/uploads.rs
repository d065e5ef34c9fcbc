//! Components uploaded through the API, kept by the SHA-256 of their bytes
//! (`<hex>.wasm`) in a directory of the service's own, so that an API
//! caller names a component by digest and never by a path of the host.
//!
//! Each file is written under a temporary name, synced and renamed, so a
//! crash leaves either the whole component or nothing under its name; the
//! digest is checked again whenever the file is read. The store is capped
//! twice: one component's size and the sum of all.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::sandbox::check_component_header;

/// One stored component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredComponent {
    /// Hex SHA-256 of its bytes.
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("the component is larger than the {} a component may take", sandport_config::format_size(*.limit))]
    TooLarge { limit: u64 },
    #[error("the upload is not a WebAssembly component ({0})")]
    NotAComponent(&'static str),
    #[error(
        "the uploaded components already take {} of the {} allowed; delete unused ones first",
        sandport_config::format_size(*.used),
        sandport_config::format_size(*.limit)
    )]
    Full { used: u64, limit: u64 },
    #[error("no uploaded component sha256:{0}")]
    NotFound(String),
    #[error("component sha256:{digest} is used by {}; remove or update those connectors first", .ids.join(", "))]
    InUse { digest: String, ids: Vec<String> },
    #[error("cannot use the component store {}: {source}", .dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where uploaded components live, and how much they may take.
#[derive(Debug)]
pub struct ComponentStore {
    dir: PathBuf,
    max_size: u64,
    max_total: u64,
    /// Keeps an ephemeral service's store alive; deleted with it.
    _temporary: Option<tempfile::TempDir>,
}

impl ComponentStore {
    /// The store in `dir`, created (owner-only) if missing. Leftovers of
    /// uploads a crash interrupted are deleted.
    pub fn open(dir: &Path, max_size: u64, max_total: u64) -> Result<Self, UploadError> {
        let io = |source| UploadError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
        for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(ComponentStore {
            dir: dir.to_path_buf(),
            max_size,
            max_total,
            _temporary: None,
        })
    }

    /// A store that lasts as long as this value (for a service that keeps
    /// no state).
    pub fn temporary(max_size: u64, max_total: u64) -> Result<Self, UploadError> {
        let temporary = tempfile::Builder::new()
            .prefix("sandport-components-")
            .tempdir()
            .map_err(|source| UploadError::Io {
                dir: std::env::temp_dir(),
                source,
            })?;
        Ok(ComponentStore {
            dir: temporary.path().to_path_buf(),
            max_size,
            max_total,
            _temporary: Some(temporary),
        })
    }

    /// The largest component accepted, in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Where the component `digest` is kept (it may not exist).
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }

    /// Stores `bytes` and returns its digest. Storing the same bytes again
    /// is not an error. Blocking: call it off the async threads.
    pub fn put(&self, bytes: &[u8]) -> Result<StoredComponent, UploadError> {
        let size = bytes.len() as u64;
        if size > self.max_size {
            return Err(UploadError::TooLarge {
                limit: self.max_size,
            });
        }
        check_component_header(bytes).map_err(UploadError::NotAComponent)?;
        let digest = hex(&Sha256::digest(bytes));
        let path = self.path(&digest);
        if path.is_file() {
            return Ok(StoredComponent { digest, size });
        }
        let used: u64 = self.list()?.iter().map(|c| c.size).sum();
        if used.saturating_add(size) > self.max_total {
            return Err(UploadError::Full {
                used,
                limit: self.max_total,
            });
        }
        let io = |source| UploadError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .suffix(".part")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        std::io::Write::write_all(&mut file, bytes).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&path).map_err(|e| io(e.error))?;
        // The rename is durable only once the directory is.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(StoredComponent { digest, size })
    }

    /// Every stored component, by digest.
    pub fn list(&self) -> Result<Vec<StoredComponent>, UploadError> {
        let io = |source| UploadError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)?.flatten() {
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(|n| n.strip_suffix(".wasm")) else {
                continue;
            };
            if sandport_config::parse_digest(digest).is_err() {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_file() {
                found.push(StoredComponent {
                    digest: digest.to_string(),
                    size: metadata.len(),
                });
            }
        }
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }

    /// Deletes the component `digest` (the caller has checked that no
    /// connector uses it).
    pub fn remove(&self, digest: &str) -> Result<(), UploadError> {
        match std::fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(UploadError::NotFound(digest.to_string()))
            }
            Err(source) => Err(UploadError::Io {
                dir: self.dir.clone(),
                source,
            }),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the header alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn store(max_size: u64, max_total: u64) -> ComponentStore {
        ComponentStore::temporary(max_size, max_total).expect("a store")
    }

    #[test]
    fn a_component_is_kept_by_its_digest_and_listed() {
        let store = store(1 << 20, 1 << 20);
        let stored = store.put(EMPTY_COMPONENT).expect("stored");
        assert_eq!(stored.digest, hex(&Sha256::digest(EMPTY_COMPONENT)));
        assert_eq!(store.put(EMPTY_COMPONENT).expect("again"), stored);
        assert_eq!(store.list().expect("listed"), vec![stored.clone()]);
        assert_eq!(
            sandport_config::read_bounded(&store.path(&stored.digest), 1 << 20).expect("the file"),
            EMPTY_COMPONENT
        );
        store.remove(&stored.digest).expect("removed");
        assert!(store.list().expect("listed").is_empty());
        assert!(matches!(
            store.remove(&stored.digest),
            Err(UploadError::NotFound(_))
        ));
    }

    #[test]
    fn what_is_not_a_component_is_refused_without_quoting_it() {
        let store = store(1 << 20, 1 << 20);
        let error = store.put(b"root:x:0:0:root:/root:/bin/bash\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the upload is not a WebAssembly component (bad magic number)"
        );
        let core_module = b"\0asm\x01\x00\x00\x00";
        assert!(matches!(
            store.put(core_module),
            Err(UploadError::NotAComponent(why)) if why.contains("core WebAssembly module")
        ));
        assert!(store.list().expect("listed").is_empty());
    }

    #[test]
    fn the_size_caps_hold() {
        let store = store(16, 20);
        let mut big = EMPTY_COMPONENT.to_vec();
        big.resize(17, 0);
        assert!(matches!(
            store.put(&big),
            Err(UploadError::TooLarge { limit: 16 })
        ));
        let mut first = EMPTY_COMPONENT.to_vec();
        first.resize(12, 1);
        store.put(&first).expect("fits");
        let mut second = EMPTY_COMPONENT.to_vec();
        second.resize(12, 2);
        assert!(matches!(
            store.put(&second),
            Err(UploadError::Full {
                used: 12,
                limit: 20
            })
        ));
    }

    #[test]
    fn interrupted_uploads_are_cleared_at_open() {
        let dir = tempfile::tempdir().expect("a dir");
        std::fs::write(dir.path().join("x.part"), b"half").expect("written");
        let store = ComponentStore::open(dir.path(), 1 << 20, 1 << 20).expect("opened");
        assert!(!dir.path().join("x.part").exists());
        assert!(store.list().expect("listed").is_empty());
    }
}
