//! Seeding: the operator's config file fills an empty registry once per
//! cluster. The `seeded` key says it happened; every seeding write is
//! conditional on its absence, so a second node's file (the same file, or
//! a different one) changes nothing once the first seed is done.
//!
//! etcd caps a txn at 128 operations (`--max-txn-ops`) and a request at
//! 1.5 MiB (`--max-request-bytes`). A file that fits is seeded in one txn
//! with the marker: all or nothing. A larger one goes in batches, each
//! still conditional on the marker's absence, and the marker last: a node
//! that dies half-way leaves no marker, and the next node to start seeds
//! the whole file again over the partial one, so nothing is lost. (An API
//! change made to one of those ids in that window may be overwritten by
//! the repeat; the window is the few milliseconds of a seed.)

use std::collections::HashSet;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use sandport_config::ConnectorConfig;

use crate::error::ClusterError;
use crate::membership::now_ms;
use crate::store::{MAX_VALUE_BYTES, Origin, Store, encode};

/// etcd's default `--max-txn-ops`.
const MAX_TXN_OPS: usize = 128;
/// Bytes of keys and values in one seeding txn: under etcd's default
/// 1.5 MiB request limit with room for the request's own framing, and
/// never less than one entry of the largest size.
const MAX_TXN_BYTES: usize = MAX_VALUE_BYTES + (MAX_VALUE_BYTES / 4);

/// What [`Store::seed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOutcome {
    /// This node seeded the registry with its file's entries, in this
    /// many txns.
    Seeded { entries: usize, txns: usize },
    /// The registry was seeded before (by this node's file or another's);
    /// nothing was written.
    AlreadySeeded,
}

impl Store {
    /// Writes `configs` (the config file's entries) into the registry if
    /// no node has seeded it yet.
    pub async fn seed(&self, configs: &[ConnectorConfig]) -> Result<SeedOutcome, ClusterError> {
        let keys = &self.cluster.keys;
        let mut seen = HashSet::new();
        let mut puts = Vec::with_capacity(configs.len());
        for config in configs {
            if !seen.insert(config.id.as_str()) {
                return Err(ClusterError::Refused {
                    during: "seeding",
                    reason: format!(
                        "connector \"{}\" appears twice in the config file",
                        config.id
                    ),
                });
            }
            puts.push((keys.connector(&config.id), encode(config, Origin::File)?));
        }
        let seeded = keys.seeded();
        let marker = serde_json::json!({
            "by": self.cluster.node_id.as_str(),
            "at_ms": now_ms(),
            "entries": configs.len(),
        })
        .to_string();
        let absent = || Compare::create_revision(seeded.as_str(), CompareOp::Equal, 0);
        let batches = batches(&puts, MAX_TXN_OPS - 1, MAX_TXN_BYTES);
        if batches.len() <= 1 {
            let mut ops = vec![TxnOp::put(seeded.as_str(), marker.as_str(), None)];
            ops.extend(
                puts.iter()
                    .map(|(k, v)| TxnOp::put(k.as_str(), v.as_slice(), None)),
            );
            let response = self
                .txn("seeding", Txn::new().when([absent()]).and_then(ops))
                .await?;
            return Ok(if response.succeeded() {
                SeedOutcome::Seeded {
                    entries: puts.len(),
                    txns: 1,
                }
            } else {
                SeedOutcome::AlreadySeeded
            });
        }
        for batch in &batches {
            let ops: Vec<TxnOp> = batch
                .iter()
                .map(|(k, v)| TxnOp::put(k.as_str(), v.as_slice(), None))
                .collect();
            let response = self
                .txn("seeding", Txn::new().when([absent()]).and_then(ops))
                .await?;
            if !response.succeeded() {
                return Ok(SeedOutcome::AlreadySeeded);
            }
        }
        let mark = TxnOp::put(seeded.as_str(), marker.as_str(), None);
        let response = self
            .txn("seeding", Txn::new().when([absent()]).and_then([mark]))
            .await?;
        Ok(if response.succeeded() {
            SeedOutcome::Seeded {
                entries: puts.len(),
                txns: batches.len() + 1,
            }
        } else {
            SeedOutcome::AlreadySeeded
        })
    }
}

/// Splits `puts` into runs of at most `max_ops` entries and `max_bytes`
/// of keys and values (a run always holds at least one entry).
fn batches<T: AsRef<[u8]>>(
    puts: &[(String, T)],
    max_ops: usize,
    max_bytes: usize,
) -> Vec<&[(String, T)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (key, value)) in puts.iter().enumerate() {
        let size = key.len() + value.as_ref().len();
        if i > start && (i - start >= max_ops || bytes + size > max_bytes) {
            out.push(&puts[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < puts.len() {
        out.push(&puts[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puts(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("k{i}"), vec![b'x'; n]))
            .collect()
    }

    fn shape(p: &[(String, Vec<u8>)], ops: usize, bytes: usize) -> Vec<usize> {
        batches(p, ops, bytes).iter().map(|b| b.len()).collect()
    }

    #[test]
    fn batches_respect_the_op_count() {
        assert_eq!(shape(&puts(&[1; 300]), 127, 1 << 20), [127, 127, 46]);
        assert_eq!(shape(&puts(&[1; 127]), 127, 1 << 20), [127]);
        assert!(shape(&puts(&[]), 127, 1 << 20).is_empty());
    }

    #[test]
    fn batches_respect_the_byte_budget_and_always_take_one() {
        // Keys are 2 bytes ("k0".."k9"): each put is 2 + value.
        assert_eq!(shape(&puts(&[48, 48, 48]), 127, 100), [2, 1]);
        assert_eq!(shape(&puts(&[500, 10]), 127, 100), [1, 1]);
    }

    #[test]
    fn every_put_lands_in_exactly_one_batch_in_order() {
        let p = puts(&[30; 1000]);
        let flat: Vec<&String> = batches(&p, 127, 1000)
            .iter()
            .flat_map(|b| b.iter().map(|(k, _)| k))
            .collect();
        assert_eq!(flat, p.iter().map(|(k, _)| k).collect::<Vec<_>>());
    }
}
