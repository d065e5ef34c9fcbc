//! The credentials the host attaches to requests for a connector's own
//! endpoint: headers built once from the entry's `auth`, or a SigV4 signer.
//! The secret values stay here; the guest never sees them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue};
use sandport_config::{Auth, ConnectorConfig, Secret};

use super::sigv4;

/// The headers the host adds to requests for the connector's own endpoint.
#[derive(Default)]
pub(super) struct Credentials {
    pub(super) headers: HeaderMap,
    /// Signs the whole request instead (`auth.type: aws_sigv4`).
    pub(super) sigv4: Option<sigv4::SigV4>,
}

impl Credentials {
    pub(super) fn from_config(config: &ConnectorConfig) -> Self {
        let mut headers = HeaderMap::new();
        let mut sigv4 = None;
        let mut put = |name: HeaderName, value: String| {
            if let Ok(mut value) = HeaderValue::from_str(&value) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        };
        match &config.auth.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose());
                put(
                    http::header::AUTHORIZATION,
                    format!("Basic {}", BASE64.encode(pair)),
                );
            }
            Auth::Bearer { token } => {
                put(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", token.expose()),
                );
            }
            Auth::ApiKey { key } => {
                put(
                    HeaderName::from_static("x-api-key"),
                    key.expose().to_string(),
                );
            }
            Auth::AwsSigV4 {
                access_key_id,
                secret_access_key,
                session_token,
                region,
                service,
            } => {
                sigv4 = Some(sigv4::SigV4::new(
                    access_key_id,
                    secret_access_key.expose(),
                    session_token.as_ref().map(Secret::expose),
                    region,
                    service,
                ));
            }
        }
        for (name, value) in &config.auth.headers {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                put(name, value.expose().to_string());
            }
        }
        Credentials { headers, sigv4 }
    }
}
