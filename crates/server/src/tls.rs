//! TLS for both APIs (rustls, ring): the certificate and key read from PEM
//! files and swapped in place when they change, optional client
//! certificates (mTLS), and the listeners that hand the servers decrypted
//! connections.
//!
//! The certificate is served through [`CertStore`], a `ResolvesServerCert`
//! holding the current `CertifiedKey`: a reload replaces it for new
//! handshakes while established connections keep theirs. A pair that does
//! not load (a half-written file, a key of another certificate) leaves the
//! previous one in force and is logged.
//!
//! With a client CA, a client may present a certificate; a verified one's
//! subject common name is looked up among the tokens file's `client_cn`
//! entries ([`PeerInfo::client_cn`]). A client without a certificate is
//! still let in, to be judged by its token.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::reload::{FileStamp, Reload};

/// The largest certificate, key or CA file read.
const MAX_PEM_FILE: u64 = 1 << 20;
/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPT_BACKLOG: usize = 64;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: sandport_config::ReadError,
    },
    #[error("{}: {message}", .path.display())]
    Pem { path: PathBuf, message: String },
    #[error("{} and {}: the key does not belong to the certificate ({message})", .cert.display(), .key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    sandport_config::read_bounded(path, MAX_PEM_FILE).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no `BEGIN CERTIFICATE` block".into(),
        });
    }
    Ok(certs)
}

/// The certificate chain and key, checked to belong together.
fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(cert)?;
    let pem = read_pem(key)?;
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: key.to_path_buf(),
        message: format!("no private key ({e})"),
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Pem {
            path: key.to_path_buf(),
            message: e.to_string(),
        })?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Arc::new(pair))
}

/// The served certificate, reloaded when its files change.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<[Option<FileStamp>; 2]>,
}

impl CertStore {
    pub fn load(cert: &Path, key: &Path) -> Result<CertStore, TlsError> {
        let stamps = [FileStamp::of(cert), FileStamp::of(key)];
        let pair = load_pair(cert, key)?;
        Ok(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(pair),
            stamps: Mutex::new(stamps),
        })
    }

    /// Loads the pair again if either file changed; a pair that does not
    /// load keeps the current one. The certificate and key are often
    /// rewritten one after the other: a first look may see a new
    /// certificate with the old key, which fails to match, and the next
    /// look (the key's stamp having changed) loads the pair.
    pub fn reload_if_changed(&self) {
        let now = [FileStamp::of(&self.cert), FileStamp::of(&self.key)];
        {
            let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if *stamps == now {
                return;
            }
            *stamps = now;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = pair;
                tracing::info!(cert = %self.cert.display(), "reloaded the TLS certificate");
            }
            Err(e) => tracing::error!("{e}; keeping the previous TLS certificate"),
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The TLS set-up of both APIs.
pub struct Tls {
    store: Arc<CertStore>,
    grpc: TlsAcceptor,
    http: TlsAcceptor,
}

impl Tls {
    /// Reads the certificate and key (and the client CA, for mTLS).
    pub fn new(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Tls, TlsError> {
        let store = Arc::new(CertStore::load(cert, key)?);
        let verifier = match client_ca {
            None => WebPkiClientVerifier::no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for ca in load_certs(path)? {
                    roots.add(ca).map_err(|e| TlsError::Pem {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?;
                }
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?
            }
        };
        let config = |alpn: &[u8]| -> Result<TlsAcceptor, TlsError> {
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_client_cert_verifier(verifier.clone())
                .with_cert_resolver(store.clone());
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(Tls {
            grpc: config(b"h2")?,
            http: config(b"http/1.1")?,
            store,
        })
    }

    pub fn store(&self) -> Arc<CertStore> {
        self.store.clone()
    }

    /// gRPC's connections (HTTP/2), for `serve_with_incoming_shutdown`.
    pub fn grpc_incoming(
        &self,
        listener: TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
        let (tx, rx) = mpsc::channel(ACCEPT_BACKLOG);
        tokio::spawn(accept_loop(listener, self.grpc.clone(), tx, Ok));
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// REST's connections (HTTP/1.1), for `axum::serve`.
    pub fn http_listener(&self, listener: TcpListener) -> TlsListener {
        let local = listener.local_addr().ok();
        let (tx, rx) = mpsc::channel(ACCEPT_BACKLOG);
        tokio::spawn(accept_loop(listener, self.http.clone(), tx, |c| c));
        TlsListener { rx, local }
    }
}

/// Accepts TCP connections and runs each handshake on a task of its own,
/// so that a slow client does not hold up the others, until the server
/// stops taking connections.
async fn accept_loop<T: Send + 'static>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<T>,
    wrap: fn(TlsConn) -> T,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send(wrap(TlsConn::new(stream, remote))).await;
                }
                Ok(Err(e)) => tracing::debug!(%remote, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    /// The subject common name of a client certificate the client CA
    /// verified.
    pub client_cn: Option<Arc<str>>,
}

fn common_name(cert: &CertificateDer<'_>) -> Option<Arc<str>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(Arc::from(cn))
}

/// A decrypted connection, with what is known of its peer.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl TlsConn {
    fn new(stream: TlsStream<TcpStream>, remote: SocketAddr) -> TlsConn {
        // rustls shows peer certificates only once they verified.
        let client_cn = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(common_name);
        TlsConn {
            stream,
            peer: PeerInfo {
                remote: Some(remote),
                client_cn,
            },
        }
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// gRPC puts the peer in each request's extensions.
impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

/// REST's listener of decrypted connections.
pub struct TlsListener {
    rx: mpsc::Receiver<TlsConn>,
    local: Option<SocketAddr>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConn;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (TlsConn, PeerInfo) {
        match self.rx.recv().await {
            Some(conn) => {
                let peer = conn.peer.clone();
                (conn, peer)
            }
            // The accept loop ended (it only does once this listener is
            // gone), so no connection will ever come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<PeerInfo> {
        Ok(PeerInfo {
            remote: self.local,
            client_cn: None,
        })
    }
}

/// REST puts the peer in each request's extensions (as `ConnectInfo`).
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> PeerInfo {
        stream.remote_addr().clone()
    }
}

impl Reload for CertStore {
    fn reload_if_changed(&self) {
        CertStore::reload_if_changed(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![format!("{name}.test")]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        (c, k)
    }

    fn served_der(store: &CertStore) -> Vec<u8> {
        store
            .current
            .read()
            .expect("lock")
            .end_entity_cert()
            .expect("cert")
            .to_vec()
    }

    #[test]
    fn a_changed_pair_is_served_and_a_bad_one_keeps_the_old() {
        let dir = std::env::temp_dir().join(format!("sandport-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = write_pair(&dir, "one");
        let store = CertStore::load(&cert, &key).expect("loads");
        let first = served_der(&store);

        // A key that is not the certificate's is refused at load...
        let (_, other_key) = write_pair(&dir, "two");
        assert!(matches!(
            CertStore::load(&cert, &other_key),
            Err(TlsError::Mismatch { .. })
        ));
        // ...and on reload, keeping the served pair.
        std::fs::write(&cert, "not a certificate").expect("write");
        store.reload_if_changed();
        assert_eq!(served_der(&store), first);

        let (new_cert, new_key) = write_pair(&dir, "three");
        std::fs::copy(&new_cert, &cert).expect("copy");
        std::fs::copy(&new_key, &key).expect("copy");
        store.reload_if_changed();
        assert_ne!(served_der(&store), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
