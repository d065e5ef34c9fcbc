//! What protects the APIs of `serve` (tokens, TLS, limits, the loopback
//! rule) as command-line flags, and `sandport token new`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use sandport_server::auth::{self, Role, Tokens};
use sandport_server::cluster::{ApiProtection, ApiTlsFiles};
use sandport_server::limits::Limits;
use sandport_server::tls::Tls;
use sandport_server::{ApiOptions, check_exposure};

/// The flags of `serve` that protect its APIs.
#[derive(Args)]
pub struct ApiFlags {
    /// Tokens file: `tokens: [{name, role: read|admin, sha256}]`, reloaded
    /// when it changes [default: no authentication]
    #[arg(long, value_name = "FILE", env = "SANDPORT_TOKENS")]
    tokens: Option<PathBuf>,
    /// Serve both APIs over TLS with this certificate chain (PEM), reloaded
    /// when it changes
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Accept client certificates signed by this CA (PEM); a certificate's
    /// common name is looked up among the tokens file's `client_cn` entries
    #[arg(long, value_name = "FILE", requires = "tls_cert", requires = "tokens")]
    client_ca: Option<PathBuf>,
    /// Serve a non-loopback address without TLS or tokens
    #[arg(long)]
    insecure: bool,
    /// Largest gRPC message, e.g. 4MiB [default: 4MiB]
    #[arg(long, value_name = "SIZE")]
    max_message_size: Option<bytesize::ByteSize>,
    /// Largest REST request body [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    max_body_size: Option<bytesize::ByteSize>,
    /// Longest time one API call may take, WatchHealth excepted [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// API calls in flight before more are refused (429 / RESOURCE_EXHAUSTED) [default: 512]
    #[arg(long, value_name = "N")]
    max_concurrent_requests: Option<usize>,
}

fn size(value: Option<bytesize::ByteSize>, default: usize) -> usize {
    value.map_or(default, |v| {
        usize::try_from(v.as_u64()).unwrap_or(usize::MAX)
    })
}

impl ApiFlags {
    /// Reads the tokens and certificates; refuses a non-loopback address
    /// that would be served without them.
    pub fn options(
        &self,
        grpc: std::net::SocketAddr,
        http: std::net::SocketAddr,
    ) -> anyhow::Result<ApiOptions> {
        let defaults = Limits::default();
        let limits = Limits {
            max_message_size: size(self.max_message_size, defaults.max_message_size),
            max_body_size: size(self.max_body_size, defaults.max_body_size),
            request_timeout: self.request_timeout.unwrap_or(defaults.request_timeout),
            max_concurrent_requests: self
                .max_concurrent_requests
                .unwrap_or(defaults.max_concurrent_requests),
            ..defaults
        };
        let (has_tls, has_tokens) = (self.tls_cert.is_some(), self.tokens.is_some());
        check_exposure("gRPC", grpc, has_tls, has_tokens, self.insecure)?;
        check_exposure("REST", http, has_tls, has_tokens, self.insecure)?;
        if self.insecure && !(grpc.ip().is_loopback() && http.ip().is_loopback()) {
            tracing::warn!(
                tls = has_tls,
                tokens = has_tokens,
                "--insecure: serving a non-loopback address without full protection"
            );
        }
        let tokens = self
            .tokens
            .as_deref()
            .map(Tokens::load)
            .transpose()?
            .map(Arc::new);
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                Tls::new(cert, key, self.client_ca.as_deref()).context("TLS")?,
            )),
            _ => None,
        };
        Ok(ApiOptions {
            tokens,
            tls,
            limits,
            metrics: None,
            public_status: false,
            collectors: Vec::new(),
        })
    }

    /// How the API is protected, so that a cluster node calls its peers'
    /// APIs alike.
    pub fn protection(&self) -> ApiProtection {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ApiTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.client_ca.clone(),
            }),
            _ => None,
        };
        ApiProtection {
            tls,
            tokens: self.tokens.is_some(),
        }
    }

    /// The metrics listener has neither TLS nor tokens: off loopback only
    /// when the operator says `--insecure`.
    pub fn check_metrics_exposure(&self, addr: std::net::SocketAddr) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.insecure || addr.ip().is_loopback(),
            "refusing to serve metrics on {addr}: it is not a loopback address and the metrics listener takes no TLS or token, \
             so anyone who can reach it could read every connector's id and health; scrape /metrics on the REST address \
             (which takes tokens and TLS), or add --insecure to serve it like this anyway"
        );
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a random token; prints it (once: it is kept nowhere) and the
    /// line that admits it, to add under `tokens:` in the tokens file.
    New {
        /// Who the token is for; the audit log names callers by it
        #[arg(long)]
        name: String,
        /// read (list, get, health, watch) or admin (everything)
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("`{text}` is not `read` or `admin`"))
}

pub fn token(command: &TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::New { name, role } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let made = auth::new_token(name, *role)?;
            println!("{}", made.token);
            println!("{}", made.entry_line);
            eprintln!(
                "the first line is the token: give it to `{name}` now, it is not kept anywhere; \
                 add the second line under `tokens:` in the tokens file (the file holds its SHA-256 only)"
            );
            Ok(())
        }
    }
}
