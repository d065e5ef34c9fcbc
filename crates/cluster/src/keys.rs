//! Where everything lives in etcd. Under the prefix (default `/sandport/`):
//!
//! | key | value | lease |
//! |---|---|---|
//! | `members/<node-id>` | [`crate::MemberInfo`] as JSON | the node's |
//! | `connectors/<id>` | the entry, see [`crate::StoredEntry`] | none |
//! | `status/<id>` | [`crate::ConnectorStatus`] as JSON | the owner's |
//! | `seeded` | who seeded the registry from a config file, and when | none |
//!
//! Ids become one path segment each, so they are checked here: no `/`,
//! nothing outside the config's id alphabet, at most [`MAX_ID_LEN`] bytes.

use std::fmt;

use crate::error::{IdError, OptionsError};

/// The prefix every key lives under unless the operator picks another.
pub const DEFAULT_PREFIX: &str = "/sandport/";

/// The longest node or connector id, in bytes: far above any real name,
/// and it keeps keys (and the txns that hold many of them) small.
pub const MAX_ID_LEN: usize = 128;

/// The name a node joins under: unique among live members.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(id: &str) -> Result<NodeId, IdError> {
        check_id("node", id)?;
        Ok(NodeId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `id` can be a connector's key: the config's alphabet
/// (letters, digits, `-`, `_`, `.`) and at most [`MAX_ID_LEN`] bytes.
pub fn validate_connector_id(id: &str) -> Result<(), IdError> {
    check_id("connector", id)
}

fn check_id(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { what });
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            id: id.chars().take(32).collect::<String>() + "...",
            len: id.len(),
            max: MAX_ID_LEN,
        });
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(IdError::Characters {
            what,
            id: id.to_string(),
        });
    }
    Ok(())
}

/// The key layout under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Result<Keys, OptionsError> {
        // A prefix without the trailing `/` would also match the keys of a
        // neighbour (`/sandport` matches `/sandport-staging/...`).
        if prefix.len() < 2 || !prefix.starts_with('/') || !prefix.ends_with('/') {
            return Err(OptionsError::Prefix {
                prefix: prefix.to_string(),
            });
        }
        Ok(Keys {
            prefix: prefix.to_string(),
        })
    }

    pub(crate) fn members(&self) -> String {
        format!("{}members/", self.prefix)
    }

    pub(crate) fn member(&self, node: &NodeId) -> String {
        format!("{}members/{}", self.prefix, node.as_str())
    }

    pub(crate) fn connectors(&self) -> String {
        format!("{}connectors/", self.prefix)
    }

    /// The key of a connector whose id was already checked.
    pub(crate) fn connector(&self, id: &str) -> String {
        format!("{}connectors/{id}", self.prefix)
    }

    pub(crate) fn statuses(&self) -> String {
        format!("{}status/", self.prefix)
    }

    pub(crate) fn status(&self, id: &str) -> String {
        format!("{}status/{id}", self.prefix)
    }

    pub(crate) fn seeded(&self) -> String {
        format!("{}seeded", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lives_under_the_prefix() {
        let keys = Keys::new(DEFAULT_PREFIX).unwrap();
        let node = NodeId::new("node-1").unwrap();
        assert_eq!(keys.member(&node), "/sandport/members/node-1");
        assert_eq!(keys.connector("grafana"), "/sandport/connectors/grafana");
        assert_eq!(keys.status("grafana"), "/sandport/status/grafana");
        assert_eq!(keys.seeded(), "/sandport/seeded");
        assert!(keys.member(&node).starts_with(&keys.members()));
        assert!(keys.connector("a").starts_with(&keys.connectors()));
        assert!(keys.status("a").starts_with(&keys.statuses()));
    }

    #[test]
    fn a_prefix_must_be_a_directory() {
        for bad in ["", "/", "sandport/", "/sandport", "sandport"] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
        assert!(Keys::new("/team-a/sandport/").is_ok());
    }

    #[test]
    fn ids_that_would_leave_their_segment_are_refused() {
        for bad in ["", "a/b", "../x", "a b", "ä", "a\0"] {
            assert!(validate_connector_id(bad).is_err(), "{bad:?}");
            assert!(NodeId::new(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        let err = NodeId::new(&long).unwrap_err();
        assert!(err.to_string().contains("at most 128"), "{err}");
        assert!(NodeId::new(&long[1..]).is_ok());
        for good in ["grafana", "node-1", "db_2.prod"] {
            assert!(validate_connector_id(good).is_ok(), "{good}");
        }
    }
}
