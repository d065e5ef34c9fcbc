//! A watch over one key prefix that can be resumed: it remembers the
//! revision after the last change it handed out, and after any error the
//! next call opens a new watch from there. A caller therefore sees every
//! change once and in order, or [`ClusterError::Compacted`] when etcd no
//! longer has the history (then it lists again).

use etcd_client::{EventType, WatchOptions, WatchStream};

use crate::connect::{Cluster, classify};
use crate::error::ClusterError;

/// One changed key: the rest of the key after the prefix, the new value
/// (`None` for a delete, an expired lease included) and its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) name: String,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) mod_revision: i64,
}

pub(crate) struct PrefixWatch {
    cluster: Cluster,
    prefix: String,
    /// The first revision not yet handed out.
    next_revision: i64,
    stream: Option<WatchStream>,
}

impl PrefixWatch {
    /// Watches the keys under `prefix`, from `from_revision` on
    /// (inclusive).
    pub(crate) fn new(cluster: Cluster, prefix: String, from_revision: i64) -> PrefixWatch {
        PrefixWatch {
            cluster,
            prefix,
            next_revision: from_revision.max(1),
            stream: None,
        }
    }

    /// The first revision not yet handed out.
    pub(crate) fn next_revision(&self) -> i64 {
        self.next_revision
    }

    /// Waits for the next changes (never an empty batch). An error ends
    /// the current stream; calling again resumes where it left off.
    pub(crate) async fn next(&mut self) -> Result<Vec<Change>, ClusterError> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => self.stream.insert(self.open().await?),
            };
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    self.stream = None;
                    return Err(ClusterError::Unavailable {
                        during: "watching",
                        reason: "etcd closed the watch".into(),
                    });
                }
                Err(e) => {
                    self.stream = None;
                    return Err(classify("watching", e));
                }
            };
            if response.canceled() {
                self.stream = None;
                if response.compact_revision() > 0 {
                    return Err(ClusterError::Compacted {
                        compacted: response.compact_revision(),
                    });
                }
                return Err(ClusterError::Unavailable {
                    during: "watching",
                    reason: format!("etcd cancelled the watch: {}", response.cancel_reason()),
                });
            }
            let mut changes = Vec::with_capacity(response.events().len());
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Some(name) = kv.key().strip_prefix(self.prefix.as_bytes()) else {
                    continue;
                };
                let name = String::from_utf8_lossy(name).into_owned();
                let value = match event.event_type() {
                    EventType::Put => Some(kv.value().to_vec()),
                    EventType::Delete => None,
                };
                self.next_revision = self.next_revision.max(kv.mod_revision() + 1);
                changes.push(Change {
                    name,
                    value,
                    mod_revision: kv.mod_revision(),
                });
            }
            // Created and progress responses carry no events.
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
    }

    async fn open(&self) -> Result<WatchStream, ClusterError> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.next_revision);
        let mut client = self.cluster.client.watch_client();
        self.cluster
            .call(
                "starting a watch",
                client.watch(self.prefix.clone(), Some(options)),
            )
            .await
    }
}
