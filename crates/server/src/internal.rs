//! Errors the caller cannot act on: logged in full with an id, answered
//! with a generic message that carries the id, so that an operator can
//! find the log line and a client learns nothing of the host's internals
//! (paths, OS errors).

use std::hash::{BuildHasher, Hasher};

/// Logs `error` and returns the message for the client.
pub(crate) fn report(error: &dyn std::fmt::Display) -> String {
    let id = error_id();
    tracing::error!(error_id = %id, "internal error: {error}");
    format!("internal error (id {id}); the service's log has the details")
}

/// 16 hex digits, different for each call; std's hasher keys are random
/// per process and step on for every `RandomState`.
fn error_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_carries_an_id_and_none_of_the_error() {
        let message = super::report(&"cannot rename /var/lib/sandport/registry.json.tmp");
        assert!(!message.contains("/var/lib"), "{message}");
        let id = message
            .split("id ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("an id in the message");
        assert_eq!(id.len(), 16, "{message}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{message}");
        assert_ne!(message, super::report(&"the same error"), "ids repeat");
    }
}
