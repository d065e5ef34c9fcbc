//! Which live node checks a connector: rendezvous (highest random weight)
//! hashing. Each (connector, node) pair gets a weight and the node with
//! the highest weight owns the connector, so every node computes the same
//! owner from the same member set with no coordination, and a node that
//! joins or leaves takes or gives up only its own share (about 1/N).
//!
//! The weight must be the same on every node, every build and every
//! release, so it is spelled out here rather than taken from std (whose
//! hasher is randomly keyed, and whose algorithm may change):
//!
//! `weight(c, n) = fmix64(fnv1a64(c ++ [0xff] ++ n))`
//!
//! FNV-1a 64 over the connector id, one `0xff` byte (no id holds it, so
//! `("ab", "c")` and `("a", "bc")` differ) and the node id, then
//! MurmurHash3's 64-bit finalizer, which spreads FNV's weak high bits so
//! that the ordering of weights is close to uniform. A tie (2^-64) goes to
//! the larger node id.

use crate::keys::NodeId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The weight of `node` for `connector_id`; see the module doc.
pub fn weight(connector_id: &str, node: &NodeId) -> u64 {
    let mut h = FNV_OFFSET;
    let bytes = connector_id
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(node.as_str().as_bytes());
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The member that checks `connector_id`, or `None` with no members.
pub fn owner<'a>(
    connector_id: &str,
    members: impl IntoIterator<Item = &'a NodeId>,
) -> Option<&'a NodeId> {
    members
        .into_iter()
        .max_by_key(|node| (weight(connector_id, node), *node))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn nodes(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId::new(n).unwrap()).collect()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("connector-{i}")).collect()
    }

    /// Pinned values, computed apart from this code (a few lines of
    /// Python over the formula in the module doc): a change of the hash
    /// would move connectors between the nodes of a cluster that runs two
    /// releases at once, so it must fail here first.
    #[test]
    fn the_weight_is_pinned() {
        let n = |s| NodeId::new(s).unwrap();
        let table = [
            ("grafana", "node-a", 0x6128_beaa_4b6d_4cae_u64),
            ("grafana", "node-b", 0xe2b6_bfe6_2e66_a99c),
            ("prometheus", "node-a", 0xf123_493a_d256_0962),
        ];
        for (connector, node, expected) in table {
            let got = weight(connector, &n(node));
            assert_eq!(got, expected, "weight({connector}, {node}) = {got:#x}");
        }
    }

    #[test]
    fn owners_are_pinned() {
        let members = nodes(&["node-a", "node-b", "node-c"]);
        let table = [
            ("grafana", "node-b"),
            ("prometheus", "node-a"),
            ("jaeger", "node-c"),
            ("postgres-main", "node-b"),
            ("redis", "node-b"),
            ("loki", "node-c"),
            ("minio", "node-b"),
        ];
        for (connector, expected) in table {
            assert_eq!(
                owner(connector, &members).map(NodeId::as_str),
                Some(expected),
                "{connector}"
            );
        }
    }

    #[test]
    fn no_members_means_no_owner_and_one_member_owns_everything() {
        assert_eq!(owner("grafana", &[]), None);
        let one = nodes(&["solo"]);
        for id in ids(100) {
            assert_eq!(owner(&id, &one), Some(&one[0]));
        }
    }

    #[test]
    fn the_owner_does_not_depend_on_the_order_of_members() {
        let mut members = nodes(&["a", "b", "c", "d", "e"]);
        let before: Vec<_> = ids(200)
            .iter()
            .map(|id| owner(id, &members).cloned())
            .collect();
        members.reverse();
        let after: Vec<_> = ids(200)
            .iter()
            .map(|id| owner(id, &members).cloned())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn a_joining_node_takes_about_one_nth_and_only_from_others() {
        let ids = ids(10_000);
        for n in [1usize, 2, 3, 5, 8] {
            let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
            let before = nodes(&names.iter().map(String::as_str).collect::<Vec<_>>());
            let mut after = before.clone();
            let newcomer = NodeId::new("newcomer").unwrap();
            after.push(newcomer.clone());
            let mut moved = 0usize;
            for id in &ids {
                let (old, new) = (owner(id, &before), owner(id, &after));
                if old != new {
                    // Whatever moves, moves to the newcomer.
                    assert_eq!(new, Some(&newcomer), "{id}");
                    moved += 1;
                }
            }
            let expected = ids.len() / (n + 1);
            let slack = expected / 10;
            assert!(
                moved.abs_diff(expected) <= slack,
                "{n} -> {}: {moved} moved, expected about {expected}",
                n + 1
            );
        }
    }

    #[test]
    fn the_load_is_even() {
        let members = nodes(&["a", "b", "c", "d"]);
        let mut counts = std::collections::BTreeMap::new();
        for id in ids(20_000) {
            *counts
                .entry(owner(&id, &members).unwrap().clone())
                .or_insert(0usize) += 1;
        }
        for (node, count) in counts {
            assert!(count.abs_diff(5_000) < 300, "{node}: {count}");
        }
    }

    proptest! {
        /// Removing one member moves exactly the connectors it owned, and
        /// each to a survivor; nothing else moves.
        #[test]
        fn removing_a_node_moves_only_its_connectors(
            names in prop::collection::btree_set("[a-z][a-z0-9-]{0,12}", 2..8),
            pick in any::<prop::sample::Index>(),
            connectors in prop::collection::vec("[a-z0-9._-]{1,20}", 1..200),
        ) {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let members = nodes(&names);
            let gone = members[pick.index(members.len())].clone();
            let survivors: Vec<NodeId> =
                members.iter().filter(|m| **m != gone).cloned().collect();
            let unique: BTreeSet<&String> = connectors.iter().collect();
            for id in unique {
                let before = owner(id, &members).cloned();
                let after = owner(id, &survivors).cloned();
                if before.as_ref() == Some(&gone) {
                    prop_assert!(after.is_some() && after != before);
                } else {
                    prop_assert_eq!(before, after);
                }
            }
        }
    }
}
