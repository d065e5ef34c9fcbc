//! Who may call the API: the tokens file, the roles, and the check of one
//! request's credentials.
//!
//! The file holds the SHA-256 of each token, never the token, so a leaked
//! file (or backup) gives no access:
//!
//! ```yaml
//! tokens:
//!   - {name: ci, role: admin, sha256: 9f86d0...}     # a bearer token
//!   - {name: dashboards, role: read, sha256: 2c26b4...}
//!   - {name: deployer, role: admin, client_cn: deployer.example.com}  # an mTLS client
//! ```
//!
//! A presented token is hashed and compared in constant time with every
//! entry (no early exit), and requests are attributed to the entry's `name`.
//! The file is reloaded when it changes ([`Tokens::reload_if_changed`]); a
//! file that no longer parses keeps the previous set and says why in the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::reload::{FileStamp, Reload};

/// Bytes of randomness in a token made by [`new_token`].
const TOKEN_BYTES: usize = 32;
/// Prefixes every token [`new_token`] makes, so that a token found in a log
/// or a repository is recognisable (and secret scanners can match it).
pub const TOKEN_PREFIX: &str = "sp_";
/// The largest tokens file read.
const MAX_TOKENS_FILE: u64 = 1 << 20;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// List, get, health, watch: every call that changes nothing.
    Read,
    /// Everything, including register, update and remove.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a route or method demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes: no credentials at all.
    Open,
    /// At least the `read` role.
    Read,
    /// The `admin` role.
    Admin,
}

/// The authenticated caller of one request, put in the request's
/// extensions for the handlers (and the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: Arc<str>,
    pub role: Role,
}

impl Caller {
    /// Whoever calls when authentication is off: an operator, as before
    /// tokens existed.
    pub fn anonymous() -> Caller {
        Caller {
            name: Arc::from("anonymous"),
            role: Role::Admin,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("`{name}` has the {} role; this call needs {}", .role.as_str(), .needed.as_str())]
    PermissionDenied {
        name: Arc<str>,
        role: Role,
        needed: Role,
    },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    #[error("cannot read the tokens file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: sandport_config::ReadError,
    },
    #[error("the tokens file {}: {}", .path.display(), .problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tokens: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    role: String,
    sha256: Option<String>,
    client_cn: Option<String>,
}

#[derive(Debug)]
struct Entry {
    caller: Caller,
    sha256: Option<[u8; 32]>,
    client_cn: Option<String>,
}

/// One parsed tokens file.
#[derive(Debug, Default)]
pub struct TokenSet {
    entries: Vec<Entry>,
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

impl TokenSet {
    /// Parses a tokens file's text; every problem names its entry.
    pub fn parse(text: &str) -> Result<TokenSet, Vec<String>> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| {
            vec![format!(
                "{e} (expected `tokens:` and a list of {{name, role, sha256 or client_cn}})"
            )]
        })?;
        let mut problems = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, raw) in raw.tokens.into_iter().enumerate() {
            let here = format!("tokens[{i}] (name {:?})", raw.name);
            let before = problems.len();
            if raw.name.trim().is_empty() {
                problems.push(format!("tokens[{i}]: name: must not be empty"));
            }
            let role = Role::parse(&raw.role);
            if role.is_none() {
                problems.push(format!(
                    "{here}: role: `{}` is not `read` or `admin`",
                    raw.role
                ));
            }
            let sha256 = match raw.sha256.as_deref().map(|t| (t, parse_digest(t))) {
                None => None,
                Some((_, Some(d))) => Some(d),
                Some((_, None)) => {
                    problems.push(format!(
                        "{here}: sha256: not 64 hex digits (write the SHA-256 of the token, e.g. from `sandport token new`)"
                    ));
                    None
                }
            };
            let client_cn = raw.client_cn.filter(|cn| !cn.is_empty());
            if raw.sha256.is_none() && client_cn.is_none() {
                problems.push(format!("{here}: needs `sha256` or `client_cn`"));
            }
            if entries.iter().any(|e| *e.caller.name == *raw.name) {
                problems.push(format!("{here}: name: a second entry with this name"));
            }
            if sha256.is_some() && entries.iter().any(|e| e.sha256 == sha256) {
                problems.push(format!(
                    "{here}: sha256: the same token as an earlier entry"
                ));
            }
            if client_cn.is_some() && entries.iter().any(|e| e.client_cn == client_cn) {
                problems.push(format!(
                    "{here}: client_cn: the same name as an earlier entry"
                ));
            }
            if let (Some(role), true) = (role, problems.len() == before) {
                entries.push(Entry {
                    caller: Caller {
                        name: Arc::from(raw.name),
                        role,
                    },
                    sha256,
                    client_cn,
                });
            }
        }
        if problems.is_empty() {
            Ok(TokenSet { entries })
        } else {
            Err(problems)
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry whose digest is the token's. Every entry is compared, in
    /// constant time, so the time taken says nothing of which one matched
    /// or how much of a digest did.
    fn by_token(&self, token: &str) -> Option<&Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            let Some(stored) = &entry.sha256 else {
                continue;
            };
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(&entry.caller);
            }
        }
        found
    }

    fn by_client_cn(&self, cn: &str) -> Option<&Caller> {
        self.entries
            .iter()
            .find(|e| e.client_cn.as_deref() == Some(cn))
            .map(|e| &e.caller)
    }

    /// The caller behind a request's credentials: the bearer token when
    /// there is one, else a verified client certificate's common name.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client_cn: Option<&str>,
    ) -> Result<Caller, Denied> {
        if let Some(header) = authorization {
            let token = bearer(header).ok_or(Denied::Unauthenticated(
                "the authorization header is not `Bearer <token>`",
            ))?;
            return self
                .by_token(token)
                .cloned()
                .ok_or(Denied::Unauthenticated("unknown token"));
        }
        if let Some(cn) = client_cn {
            return self
                .by_client_cn(cn)
                .cloned()
                .ok_or(Denied::Unauthenticated(
                    "the client certificate's name is not in the tokens file",
                ));
        }
        Err(Denied::Unauthenticated(
            "this call needs a token: send `authorization: Bearer <token>`",
        ))
    }
}

/// The token in `Bearer <token>` (the scheme in any case).
fn bearer(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Decides whether `caller` may make a call that demands `needed`.
pub fn authorize(caller: Caller, needed: Access) -> Result<Caller, Denied> {
    let needed = match needed {
        Access::Open | Access::Read => Role::Read,
        Access::Admin => Role::Admin,
    };
    if caller.role >= needed {
        Ok(caller)
    } else {
        Err(Denied::PermissionDenied {
            name: caller.name,
            role: caller.role,
            needed,
        })
    }
}

/// The tokens file, as last read successfully.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    current: RwLock<Arc<TokenSet>>,
    stamp: Mutex<Option<FileStamp>>,
}

fn read_set(path: &Path) -> Result<TokenSet, TokenFileError> {
    let text = sandport_config::read_bounded_text(path, MAX_TOKENS_FILE).map_err(|source| {
        TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    TokenSet::parse(&text).map_err(|problems| TokenFileError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

impl Tokens {
    /// Reads the file; any problem stops the start.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let stamp = FileStamp::of(path);
        let set = read_set(path)?;
        if set.is_empty() {
            tracing::warn!(path = %path.display(), "the tokens file has no entries: every API call but the probes will be refused");
        }
        Ok(Tokens {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(set)),
            stamp: Mutex::new(stamp),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn current(&self) -> Arc<TokenSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the file if its modification time or size changed. A file
    /// that cannot be read or parsed leaves the previous set in force.
    pub fn reload_if_changed(&self) {
        let now = FileStamp::of(&self.path);
        {
            let mut stamp = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
            if *stamp == now {
                return;
            }
            *stamp = now;
        }
        match read_set(&self.path) {
            Ok(set) => {
                tracing::info!(path = %self.path.display(), entries = set.len(), "reloaded the tokens file");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
            }
            Err(e) => {
                tracing::error!("{e}; keeping the previous tokens");
            }
        }
    }

    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client_cn: Option<&str>,
    ) -> Result<Caller, Denied> {
        self.current().authenticate(authorization, client_cn)
    }
}

/// A fresh token and the tokens-file line that admits it.
#[derive(Debug)]
pub struct NewToken {
    /// Shown once; kept nowhere.
    pub token: String,
    pub entry_line: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot get random bytes from the system: {0}")]
pub struct RandomError(String);

/// Makes a token of 32 random bytes (hex, with [`TOKEN_PREFIX`]) for
/// `name` with `role`.
pub fn new_token(name: &str, role: Role) -> Result<NewToken, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{TOKEN_PREFIX}{hex}");
    let entry_line = format!(
        "  - {{name: {}, role: {}, sha256: {}}}",
        serde_json::Value::String(name.to_string()),
        role.as_str(),
        digest_hex(&token)
    );
    Ok(NewToken { token, entry_line })
}

/// The hex SHA-256 of `token`, as the tokens file holds it.
pub fn digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Reload for Tokens {
    fn reload_if_changed(&self) {
        Tokens::reload_if_changed(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, &str)]) -> String {
        let mut text = String::from("tokens:\n");
        for (name, role, token) in entries {
            text.push_str(&format!(
                "  - {{name: {name}, role: {role}, sha256: {}}}\n",
                digest_hex(token)
            ));
        }
        text
    }

    #[test]
    fn a_known_token_is_its_entrys_caller_and_anything_else_is_unauthenticated() {
        let set = TokenSet::parse(&file(&[("ci", "admin", "sp_a"), ("dash", "read", "sp_b")]))
            .expect("parses");
        let caller = set.authenticate(Some(b"Bearer sp_b"), None).expect("known");
        assert_eq!((&*caller.name, caller.role), ("dash", Role::Read));
        assert_eq!(
            set.authenticate(Some(b"bearer   sp_a "), None)
                .map(|c| c.role),
            Ok(Role::Admin)
        );
        for header in [&b"Bearer sp_c"[..], b"Basic c3A6YQ==", b"Bearer", b"sp_a"] {
            assert!(
                matches!(
                    set.authenticate(Some(header), None),
                    Err(Denied::Unauthenticated(_))
                ),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
        assert!(matches!(
            set.authenticate(None, None),
            Err(Denied::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_client_certificate_name_maps_to_its_entry_unless_a_token_is_sent() {
        let text = format!(
            "{}  - {{name: deployer, role: admin, client_cn: deploy.example}}\n",
            file(&[("dash", "read", "sp_b")])
        );
        let set = TokenSet::parse(&text).expect("parses");
        let caller = set
            .authenticate(None, Some("deploy.example"))
            .expect("mapped");
        assert_eq!(&*caller.name, "deployer");
        assert!(set.authenticate(None, Some("other")).is_err());
        // A token, when sent, decides.
        assert_eq!(
            set.authenticate(Some(b"Bearer sp_b"), Some("deploy.example"))
                .map(|c| c.role),
            Ok(Role::Read)
        );
    }

    #[test]
    fn bad_entries_are_all_named() {
        let text = format!(
            "tokens:\n  - {{name: ci, role: admin, sha256: {d}}}\n  - {{name: ci, role: root, sha256: xyz}}\n  - {{name: other, role: read, sha256: {d}}}\n  - {{name: empty, role: read}}\n",
            d = digest_hex("t")
        );
        let problems = TokenSet::parse(&text).expect_err("invalid");
        let all = problems.join("\n");
        for expected in [
            "tokens[1] (name \"ci\"): role: `root`",
            "tokens[1] (name \"ci\"): sha256: not 64 hex digits",
            "tokens[1] (name \"ci\"): name: a second entry",
            "tokens[2] (name \"other\"): sha256: the same token",
            "tokens[3] (name \"empty\"): needs `sha256` or `client_cn`",
        ] {
            assert!(all.contains(expected), "{expected} missing from\n{all}");
        }
        assert!(TokenSet::parse("tokens:\n  - {name: a, role: read, sha: x}\n").is_err());
    }

    #[test]
    fn read_cannot_do_admin_calls_and_admin_can_do_all() {
        let read = Caller {
            name: Arc::from("r"),
            role: Role::Read,
        };
        assert!(authorize(read.clone(), Access::Read).is_ok());
        assert!(matches!(
            authorize(read, Access::Admin),
            Err(Denied::PermissionDenied { .. })
        ));
        assert!(authorize(Caller::anonymous(), Access::Admin).is_ok());
    }

    #[test]
    fn a_new_token_is_prefixed_random_hex_and_its_line_admits_it() {
        let made = new_token("ci", Role::Admin).expect("random");
        assert_eq!(made.token.len(), TOKEN_PREFIX.len() + 64);
        assert!(made.token.starts_with(TOKEN_PREFIX));
        assert_ne!(
            made.token,
            new_token("ci", Role::Admin).expect("random").token
        );
        let set = TokenSet::parse(&format!("tokens:\n{}\n", made.entry_line)).expect("parses");
        let header = format!("Bearer {}", made.token);
        assert_eq!(
            set.authenticate(Some(header.as_bytes()), None)
                .map(|c| c.name.to_string()),
            Ok("ci".to_string())
        );
        assert!(!made.entry_line.contains(&made.token));
    }
}
