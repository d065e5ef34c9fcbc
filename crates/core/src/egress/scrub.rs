//! Scrubbing: the entry's secret values taken out of what the host hands a
//! guest (response headers, body and error messages), so that a target that
//! echoes the request it received (`/anything`-style endpoints, error pages
//! quoting the `Authorization` header) does not give the guest the
//! credentials the host attached.
//!
//! Every secret value of the entry is searched for as written, as a JSON
//! string escapes it, and with `/` written `\/` (as some JSON encoders do);
//! basic auth also as the base64 of `user:password` the header carries.
//! A match becomes [`MARKER`]. Values shorter than [`MIN_SECRET_LEN`] bytes
//! are left alone: they would match ordinary text and break answers, and
//! a guest could guess them anyway. A target that transforms what it echoes
//! (re-encodes, splits, reverses it) is not covered.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue};
use sandport_config::{Auth, ConnectorConfig};

/// What a secret value becomes in what the guest sees.
pub const MARKER: &str = "[redacted]";

/// Shorter values are not scrubbed (see the module doc).
pub const MIN_SECRET_LEN: usize = 4;

/// The name a header gets whose name held a secret.
const REDACTED_NAME: &str = "x-sandport-redacted";

/// The secret values of one entry, as one multi-pattern searcher.
pub(super) struct Scrubber {
    finder: AhoCorasick,
}

impl Scrubber {
    /// A scrubber for `config`'s secrets; `None` when it has none worth
    /// searching for, so that an entry without secrets pays nothing.
    pub(super) fn from_config(config: &ConnectorConfig) -> Option<Scrubber> {
        let mut values: Vec<String> = Vec::new();
        match &config.auth.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                values.push(password.expose().to_string());
                values.push(BASE64.encode(format!("{username}:{}", password.expose())));
            }
            Auth::Bearer { token } => values.push(token.expose().to_string()),
            Auth::ApiKey { key } => values.push(key.expose().to_string()),
            Auth::AwsSigV4 {
                secret_access_key,
                session_token,
                ..
            } => {
                values.push(secret_access_key.expose().to_string());
                if let Some(token) = session_token {
                    values.push(token.expose().to_string());
                }
            }
        }
        values.extend(
            config
                .auth
                .headers
                .values()
                .map(|value| value.expose().to_string()),
        );
        Self::new(values)
    }

    fn new(values: Vec<String>) -> Option<Scrubber> {
        let mut patterns: Vec<String> = Vec::new();
        for value in values {
            let value = value.trim().to_string();
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            let json = serde_json::to_string(&value).unwrap_or_default();
            let json = json
                .strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .unwrap_or(&value)
                .to_string();
            let slashed = json.replace('/', "\\/");
            for pattern in [value, json, slashed] {
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
            }
        }
        if patterns.is_empty() {
            return None;
        }
        // A contiguous NFA is the smallest automaton (a connector may keep
        // one for its lifetime) and fast enough for a few patterns; longest
        // first, so that a secret inside another is not half replaced.
        let finder = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()?;
        Some(Scrubber { finder })
    }

    /// `input` with every secret replaced, or `None` if it holds none (the
    /// common case, which allocates nothing).
    fn replaced(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut matches = self.finder.find_iter(input).peekable();
        matches.peek()?;
        let mut out = Vec::with_capacity(input.len());
        let mut last = 0;
        for found in matches {
            out.extend_from_slice(&input[last..found.start()]);
            out.extend_from_slice(MARKER.as_bytes());
            last = found.end();
        }
        out.extend_from_slice(&input[last..]);
        Some(out)
    }

    /// Scrubs a body in place.
    pub(super) fn body(&self, body: &mut Vec<u8>) {
        if let Some(clean) = self.replaced(body) {
            *body = clean;
        }
    }

    /// Scrubs header values (and names) in place; the map is rebuilt only
    /// when one of them holds a secret.
    pub(super) fn headers(&self, headers: &mut HeaderMap) {
        let dirty = headers.iter().any(|(name, value)| {
            self.finder.is_match(name.as_str().as_bytes()) || self.finder.is_match(value.as_bytes())
        });
        if !dirty {
            return;
        }
        let mut clean = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            let name = if self.finder.is_match(name.as_str().as_bytes()) {
                HeaderName::from_static(REDACTED_NAME)
            } else {
                name.clone()
            };
            let value = match self.replaced(value.as_bytes()) {
                // The marker is valid in a header value, and so were the
                // bytes around it.
                Some(bytes) => HeaderValue::from_bytes(&bytes)
                    .unwrap_or_else(|_| HeaderValue::from_static(MARKER)),
                None => value.clone(),
            };
            clean.append(name, value);
        }
        *headers = clean;
    }

    /// `text` with every secret replaced.
    pub(super) fn text(&self, text: String) -> String {
        match self.replaced(text.as_bytes()) {
            // Replacing whole UTF-8 sequences with ASCII keeps it UTF-8.
            Some(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| MARKER.to_string()),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(entry_auth: &str) -> Option<Scrubber> {
        let config = sandport_config::parse_entry(
            &format!("{{id: x, component: http, host: 127.0.0.1, port: 1, auth: {entry_auth}}}"),
            std::path::Path::new("."),
            sandport_builtins::catalog(),
        )
        .expect("entry");
        Scrubber::from_config(&config)
    }

    fn scrubbed(scrubber: &Scrubber, text: &str) -> String {
        scrubber.text(text.to_string())
    }

    #[test]
    fn an_entry_without_secrets_has_no_scrubber() {
        assert!(scrubber("{type: none}").is_none());
        // Too short to search for without breaking ordinary text.
        assert!(scrubber("{type: bearer, token: abc}").is_none());
    }

    #[test]
    fn a_bearer_token_is_replaced_as_written_and_as_json_escapes_it() {
        let s = scrubber(r#"{type: bearer, token: 'to/ken"1234'}"#).expect("a scrubber");
        assert_eq!(
            scrubbed(&s, "Authorization: Bearer to/ken\"1234!"),
            "Authorization: Bearer [redacted]!"
        );
        assert_eq!(
            scrubbed(&s, r#"{"Authorization": "Bearer to/ken\"1234"}"#),
            r#"{"Authorization": "Bearer [redacted]"}"#
        );
        assert_eq!(
            scrubbed(&s, r#"{"a": "to\/ken\"1234"}"#),
            r#"{"a": "[redacted]"}"#
        );
        assert_eq!(scrubbed(&s, "nothing here"), "nothing here");
    }

    #[test]
    fn basic_auth_is_replaced_as_the_password_and_as_the_header_carries_it() {
        let s = scrubber("{type: basic, username: ops, password: hunter22}").expect("a scrubber");
        let header = BASE64.encode("ops:hunter22");
        assert_eq!(
            scrubbed(&s, &format!("Basic {header} and hunter22 by ops")),
            "Basic [redacted] and [redacted] by ops"
        );
    }

    #[test]
    fn api_keys_extra_headers_and_aws_secrets_are_replaced() {
        let s = scrubber("{type: api_key, api_key: key-0001, headers: {X-Tenant: tenant-secret}}")
            .expect("a scrubber");
        assert_eq!(
            scrubbed(&s, "key-0001 tenant-secret"),
            "[redacted] [redacted]"
        );
        let s = scrubber(
            "{type: aws_sigv4, access_key_id: AKIDEXAMPLE, secret_access_key: wJalrXUtnFEMI, session_token: sess-token}",
        )
        .expect("a scrubber");
        assert_eq!(
            scrubbed(&s, "AKIDEXAMPLE wJalrXUtnFEMI sess-token"),
            "AKIDEXAMPLE [redacted] [redacted]"
        );
    }

    #[test]
    fn headers_are_rebuilt_only_around_a_secret() {
        let s = scrubber("{type: bearer, token: tok-secret}").expect("a scrubber");
        let mut headers = HeaderMap::new();
        headers.append("x-echo", HeaderValue::from_static("Bearer tok-secret"));
        headers.append("x-echo", HeaderValue::from_static("plain"));
        headers.append("x-tok-secret", HeaderValue::from_static("1"));
        s.headers(&mut headers);
        let values: Vec<_> = headers.get_all("x-echo").iter().collect();
        assert_eq!(values, ["Bearer [redacted]", "plain"]);
        assert_eq!(
            headers.get(REDACTED_NAME).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert!(!format!("{headers:?}").contains("tok-secret"));
        let mut body = b"{\"token\": \"tok-secret\"}".to_vec();
        s.body(&mut body);
        assert_eq!(body, b"{\"token\": \"[redacted]\"}");
    }
}
