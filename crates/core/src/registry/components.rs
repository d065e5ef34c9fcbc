//! Components compiled once: built-ins by name (the sandbox caches them),
//! files by identity (10,000 entries of one file read and hash it once),
//! each checked against its `component_sha256` pin. Where an API caller's
//! component is: a file inside the components directory (no way out, not
//! even by a symbolic link) or an uploaded one, checked against its digest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sandport_builtins as builtin;
use sandport_config::{ComponentRef, ConnectorConfig, DIGEST_PREFIX};

use super::{RegisterError, Runtime, lock};
use crate::sandbox::Prepared;

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode and change time: a file replaced by another of the
    /// same size within the same modification second still differs here.
    #[cfg(unix)]
    identity: (u64, u64, i64, i64),
}

impl FileStamp {
    pub(super) fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            identity: (
                metadata.dev(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec(),
            ),
        }
    }
}

impl Runtime {
    pub(super) async fn prepare(
        &self,
        config: &ConnectorConfig,
    ) -> Result<Arc<Prepared>, RegisterError> {
        let fail = |message: String| RegisterError::Component {
            id: config.id.clone(),
            component: config.component.to_string(),
            message,
        };
        let prepared = self.compile(config).await.map_err(fail)?;
        if let Some(pinned) = &config.component_sha256
            && pinned != prepared.digest()
        {
            return Err(fail(format!(
                "its SHA-256 is {}, but component_sha256 pins {pinned}; refusing to load it",
                prepared.digest()
            )));
        }
        Ok(prepared)
    }

    /// The digest of the component `config` names as it is now, or `None`
    /// when it cannot be loaded. A file read before and unchanged since is
    /// not read again.
    pub async fn component_digest(&self, config: &ConnectorConfig) -> Option<String> {
        let prepared = self.prepare(config).await.ok()?;
        Some(prepared.digest().to_string())
    }

    async fn compile(&self, config: &ConnectorConfig) -> Result<Arc<Prepared>, String> {
        match &config.component {
            ComponentRef::Builtin(name) => {
                let builtin = builtin::find(name).ok_or_else(|| {
                    format!(
                        "no such built-in; built-ins: {}",
                        builtin::names().join(", ")
                    )
                })?;
                self.inner
                    .sandbox
                    .prepare_builtin(builtin.name, builtin.component)
                    .await
                    .map_err(|e| e.to_string())
            }
            ComponentRef::Path(path) => self.compile_file(path, &config.component).await,
            ComponentRef::InComponentsDir(relative) => {
                let path = self.in_components_dir(relative).await?;
                self.compile_file(&path, &config.component).await
            }
            ComponentRef::Uploaded(digest) => {
                let store = self.inner.options.uploads.as_ref().ok_or(
                    "this service takes no uploaded components; name a built-in or a file",
                )?;
                let path = store.path(digest);
                if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                    return Err(format!(
                        "no uploaded component {DIGEST_PREFIX}{digest}; upload it first"
                    ));
                }
                let prepared = self.compile_file(&path, &config.component).await?;
                if prepared.digest() != digest {
                    return Err(format!(
                        "the stored file no longer matches its digest ({DIGEST_PREFIX}{}); upload the component again",
                        prepared.digest()
                    ));
                }
                Ok(prepared)
            }
        }
    }

    /// Where `relative` leads inside the components directory, refusing
    /// any way out (`..` was refused when the entry was parsed; a symbolic
    /// link is caught here).
    async fn in_components_dir(&self, relative: &Path) -> Result<PathBuf, String> {
        let dir = self.inner.options.components_dir.as_ref().ok_or(
            "this service has no components directory; name a built-in or an uploaded component",
        )?;
        let shown = relative.display();
        let dir = tokio::fs::canonicalize(dir)
            .await
            .map_err(|e| format!("the components directory cannot be read: {e}"))?;
        let path = tokio::fs::canonicalize(dir.join(relative))
            .await
            .map_err(|e| format!("cannot read `{shown}` in the components directory: {e}"))?;
        if !path.starts_with(&dir) {
            return Err(format!(
                "`{shown}` leads out of the components directory (a symbolic link?); refusing it"
            ));
        }
        Ok(path)
    }

    async fn compile_file(
        &self,
        path: &Path,
        component: &ComponentRef,
    ) -> Result<Arc<Prepared>, String> {
        let stamp = tokio::fs::metadata(path)
            .await
            .map(|m| FileStamp::of(&m))
            .map_err(|e| format!("cannot read the file: {e}"))?;
        let known = lock(&self.inner.by_path)
            .get(path)
            .filter(|(seen, _)| *seen == stamp)
            .and_then(|(_, prepared)| prepared.upgrade());
        if let Some(prepared) = known {
            return Ok(prepared);
        }
        let file = path.to_path_buf();
        let limit = self.inner.options.max_component_size;
        let bytes =
            tokio::task::spawn_blocking(move || sandport_config::read_bounded(&file, limit))
                .await
                .map_err(|e| format!("cannot read the file: {e}"))?
                .map_err(|e| format!("cannot read the file: {e}"))?;
        let what = match component {
            ComponentRef::Uploaded(_) => component.to_string(),
            _ => format!("component {component}"),
        };
        let prepared = self
            .inner
            .sandbox
            .prepare(&what, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        let mut by_path = lock(&self.inner.by_path);
        by_path.retain(|_, (_, p)| p.strong_count() > 0);
        by_path.insert(path.to_path_buf(), (stamp, Arc::downgrade(&prepared)));
        Ok(prepared)
    }
}
