//! The connector registry in etcd: one key per connector, its value the
//! entry as `sandport_config::to_value` writes it (secrets kept, `${`
//! escaped, so parsing it gives the same config back), in a small JSON
//! envelope that says where it came from.
//!
//! etcd's revisions make the writes safe across nodes: [`Store::create`]
//! only writes a key that does not exist (of two nodes registering one id
//! at once, exactly one wins), [`Store::update`] and [`Store::remove`]
//! only write the revision the caller read. Secrets are stored as in the
//! state file: etcd must be reachable by the cluster's nodes only (TLS
//! with client certificates, or a private network).

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use sandport_config::{ConnectorConfig, Secrets, to_value};
use serde::{Deserialize, Serialize};

use crate::connect::Cluster;
use crate::error::ClusterError;
use crate::keys::validate_connector_id;
use crate::watch::PrefixWatch;

/// The largest stored entry, in bytes. etcd refuses requests over 1.5 MiB
/// by default (`--max-request-bytes`); this leaves room for the key and
/// the rest of the request.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Entries per page when listing: a page of realistic entries is a few
/// hundred KiB; [`LIST_DECODE_LIMIT`] allows for large ones.
const LIST_PAGE: i64 = 100;
const LIST_DECODE_LIMIT: usize = 128 << 20;

/// Where an entry came from, so that the server parses it as it parses
/// that source (a file's entry may name a component anywhere; an API
/// entry only inside the components directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The operator's config file, through [`Store::seed`].
    File,
    /// Register or Update through an API.
    Api,
}

/// The value of a `connectors/<id>` key.
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: Origin,
    /// The entry as `to_value(config, Secrets::Keep)` gives it.
    entry: serde_norway::Value,
}

/// One registered connector as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub id: String,
    pub origin: Origin,
    /// The entry shape; `sandport_config::parse_entry_value` gives the
    /// config back.
    pub entry: serde_norway::Value,
    /// The revision of its last write: what [`Store::update`] and
    /// [`Store::remove`] compare against.
    pub mod_revision: i64,
}

/// Every entry at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub entries: Vec<StoredEntry>,
    /// Connectors whose value cannot be read: each id with why (a
    /// [`ClusterError::Corrupt`]'s text); the other entries still load.
    pub unreadable: Vec<(String, String)>,
    /// Watch from `revision + 1` to see every change after this listing.
    pub revision: i64,
}

/// A change to the registry, as a watch sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryEvent {
    Put(StoredEntry),
    Removed {
        id: String,
        mod_revision: i64,
    },
    /// A value this node cannot read was written (a newer node's format,
    /// or a hand-made key); the connector's last good entry stands.
    Unreadable {
        id: String,
        reason: String,
    },
}

/// The registry, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) cluster: Cluster,
}

impl Store {
    pub fn new(cluster: &Cluster) -> Store {
        Store {
            cluster: cluster.clone(),
        }
    }

    /// Registers a new connector; [`ClusterError::AlreadyExists`] if any
    /// node registered the id first. Returns the entry's revision.
    pub async fn create(&self, config: &ConnectorConfig) -> Result<i64, ClusterError> {
        self.create_as(config, Origin::Api).await
    }

    /// [`Store::create`], the entry marked as coming from `origin`.
    pub(crate) async fn create_as(
        &self,
        config: &ConnectorConfig,
        origin: Origin,
    ) -> Result<i64, ClusterError> {
        let key = self.cluster.keys.connector(&config.id);
        let value = encode(config, origin)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), value, None)]);
        let response = self.txn("registering a connector", txn).await?;
        if !response.succeeded() {
            return Err(ClusterError::AlreadyExists {
                id: config.id.clone(),
            });
        }
        Ok(revision_of(&response))
    }

    /// Replaces a connector's entry if it is still at
    /// `expected_mod_revision`; else [`ClusterError::Conflict`] (or
    /// [`ClusterError::NotFound`]). Returns the new revision.
    pub async fn update(
        &self,
        config: &ConnectorConfig,
        expected_mod_revision: i64,
    ) -> Result<i64, ClusterError> {
        self.update_as(config, expected_mod_revision, Origin::Api)
            .await
    }

    /// [`Store::update`], the entry marked as coming from `origin`.
    pub(crate) async fn update_as(
        &self,
        config: &ConnectorConfig,
        expected_mod_revision: i64,
        origin: Origin,
    ) -> Result<i64, ClusterError> {
        let key = self.cluster.keys.connector(&config.id);
        let value = encode(config, origin)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                expected_mod_revision,
            )])
            .and_then([TxnOp::put(key.as_str(), value, None)])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = self.txn("updating a connector", txn).await?;
        if response.succeeded() {
            return Ok(revision_of(&response));
        }
        Err(refusal(&config.id, expected_mod_revision, &response))
    }

    /// Removes a connector and its published status; with
    /// `expected_mod_revision`, only if it is still at that revision.
    pub async fn remove(
        &self,
        id: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<i64, ClusterError> {
        validate_connector_id(id)?;
        let key = self.cluster.keys.connector(id);
        let compare = match expected_mod_revision {
            Some(revision) => Compare::mod_revision(key.as_str(), CompareOp::Equal, revision),
            None => Compare::create_revision(key.as_str(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([
                TxnOp::delete(key.as_str(), None),
                TxnOp::delete(self.cluster.keys.status(id), None),
            ])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = self.txn("removing a connector", txn).await?;
        if response.succeeded() {
            return Ok(revision_of(&response));
        }
        Err(refusal(id, expected_mod_revision.unwrap_or(0), &response))
    }

    /// One connector's entry, if it is registered.
    pub async fn get(&self, id: &str) -> Result<Option<StoredEntry>, ClusterError> {
        validate_connector_id(id)?;
        let key = self.cluster.keys.connector(id);
        let mut kv = self.cluster.client.kv_client();
        let response = self
            .cluster
            .call("reading a connector", kv.get(key.as_str(), None))
            .await?;
        match response.kvs().first() {
            None => Ok(None),
            Some(kv) => decode(&key, id, kv.value(), kv.mod_revision()).map(Some),
        }
    }

    /// Every entry, read page by page at one revision.
    pub async fn list(&self) -> Result<Listing, ClusterError> {
        let prefix = self.cluster.keys.connectors();
        let end = prefix_end(&prefix);
        let mut kv = self
            .cluster
            .client
            .kv_client()
            .max_decoding_message_size(LIST_DECODE_LIMIT);
        let mut listing = Listing {
            entries: Vec::new(),
            unreadable: Vec::new(),
            revision: 0,
        };
        let mut start = prefix.clone().into_bytes();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if listing.revision > 0 {
                // Later pages at the first page's revision: one snapshot.
                options = options.with_revision(listing.revision);
            }
            let response = self
                .cluster
                .call(
                    "listing the connectors",
                    kv.get(start.clone(), Some(options)),
                )
                .await?;
            if listing.revision == 0 {
                listing.revision = response.header().map_or(0, |h| h.revision());
            }
            for kv in response.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let id = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
                match decode(&key, &id, kv.value(), kv.mod_revision()) {
                    Ok(entry) => listing.entries.push(entry),
                    Err(e) => listing.unreadable.push((id, e.to_string())),
                }
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok(listing),
            }
        }
    }

    /// The changes from `from_revision` on (a listing's `revision + 1`).
    pub fn watch(&self, from_revision: i64) -> RegistryWatch {
        let prefix = self.cluster.keys.connectors();
        RegistryWatch {
            watch: PrefixWatch::new(self.cluster.clone(), prefix.clone(), from_revision),
            prefix,
        }
    }

    pub(crate) async fn txn(
        &self,
        during: &'static str,
        txn: Txn,
    ) -> Result<etcd_client::TxnResponse, ClusterError> {
        let mut kv = self.cluster.client.kv_client();
        self.cluster.call(during, kv.txn(txn)).await
    }
}

/// Registry changes, resumable after errors (see [`RegistryWatch::next`]).
pub struct RegistryWatch {
    watch: PrefixWatch,
    prefix: String,
}

impl RegistryWatch {
    /// Waits for the next changes. After [`ClusterError::Unavailable`],
    /// calling again resumes with no change lost; after
    /// [`ClusterError::Compacted`], list again and watch anew.
    pub async fn next(&mut self) -> Result<Vec<RegistryEvent>, ClusterError> {
        let changes = self.watch.next().await?;
        Ok(changes
            .into_iter()
            .map(|change| match change.value {
                None => RegistryEvent::Removed {
                    id: change.name,
                    mod_revision: change.mod_revision,
                },
                Some(value) => {
                    let key = format!("{}{}", self.prefix, change.name);
                    match decode(&key, &change.name, &value, change.mod_revision) {
                        Ok(entry) => RegistryEvent::Put(entry),
                        Err(e) => RegistryEvent::Unreadable {
                            id: change.name,
                            reason: e.to_string(),
                        },
                    }
                }
            })
            .collect())
    }

    /// The first revision not yet seen: where a new watch would resume.
    pub fn next_revision(&self) -> i64 {
        self.watch.next_revision()
    }
}

/// The stored value of `config`.
pub(crate) fn encode(config: &ConnectorConfig, origin: Origin) -> Result<Vec<u8>, ClusterError> {
    validate_connector_id(&config.id)?;
    let envelope = Envelope {
        origin,
        entry: to_value(config, Secrets::Keep),
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| ClusterError::Refused {
        during: "encoding a connector",
        reason: e.to_string(),
    })?;
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(ClusterError::TooLarge {
            id: config.id.clone(),
            size: bytes.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(bytes)
}

fn decode(
    key: &str,
    id: &str,
    value: &[u8],
    mod_revision: i64,
) -> Result<StoredEntry, ClusterError> {
    let envelope: Envelope = serde_json::from_slice(value).map_err(|e| ClusterError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok(StoredEntry {
        id: id.to_string(),
        origin: envelope.origin,
        entry: envelope.entry,
        mod_revision,
    })
}

/// The revision a successful txn wrote at.
fn revision_of(response: &etcd_client::TxnResponse) -> i64 {
    response.header().map_or(0, |h| h.revision())
}

/// Why a compare failed: the key is gone, or at another revision.
fn refusal(id: &str, expected: i64, response: &etcd_client::TxnResponse) -> ClusterError {
    let current = response.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.mod_revision())),
        _ => None,
    });
    match current.flatten() {
        None => ClusterError::NotFound { id: id.to_string() },
        Some(actual) => ClusterError::Conflict {
            id: id.to_string(),
            expected,
            actual,
        },
    }
}

/// The end of the range of keys that start with `prefix` (its last byte
/// plus one; prefixes here end with `/`, so there is no carry).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}
