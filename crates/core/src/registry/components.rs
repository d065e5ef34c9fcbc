//! Components compiled once: built-ins by name (the sandbox caches them),
//! files by identity (10,000 entries of one file read and hash it once),
//! each checked against its `component_sha256` pin.

use std::sync::Arc;
use std::time::SystemTime;

use sandport_builtins as builtin;
use sandport_config::{ComponentRef, ConnectorConfig};

use super::{RegisterError, Runtime, lock};
use crate::sandbox::Prepared;

/// The largest component file read: several times the largest built
/// with the SDKs (a Python component is about 18 MiB).
pub(super) const MAX_COMPONENT_SIZE: u64 = 256 << 20;

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
            }
            ComponentRef::Path(path) => {
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
                let file = path.clone();
                let bytes = tokio::task::spawn_blocking(move || {
                    sandport_config::read_bounded(&file, MAX_COMPONENT_SIZE)
                })
                .await
                .map_err(|e| format!("cannot read the file: {e}"))?
                .map_err(|e| format!("cannot read the file: {e}"))?;
                let what = format!("component {}", path.display());
                let prepared = self.inner.sandbox.prepare(&what, &bytes).await;
                if let Ok(prepared) = &prepared {
                    let mut by_path = lock(&self.inner.by_path);
                    by_path.retain(|_, (_, p)| p.strong_count() > 0);
                    by_path.insert(path.clone(), (stamp, Arc::downgrade(prepared)));
                }
                prepared
            }
        }
        .map_err(|e| e.to_string())
    }
}
