//! The entry's credentials, for protocols the host cannot authenticate for
//! the connector (TCP: Redis AUTH, NATS CONNECT, MQTT CONNECT, AMQP PLAIN).
//!
//! HTTP connectors do not need this: the host attaches the entry's
//! credentials to requests for the connector's own endpoint. The host shares
//! them with the guest only when the operator lets it (the built-in TCP
//! connectors, or `auth.share_with_connector: true` in the entry).

use crate::bindings::sandport::connector::credentials as wit;

/// A username (basic auth only) and a secret (password, token or key).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The username of `basic` auth; `None` for `bearer` and `api_key`.
    pub username: Option<String>,
    /// The password, token or key.
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The entry's credentials, if it has some and shares them.
pub fn get() -> Option<Credential> {
    wit::get().map(|c| Credential {
        username: c.username,
        secret: c.secret,
    })
}
