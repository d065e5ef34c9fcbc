//! The TLS settings of calls to the other nodes, read again when their
//! files change: a renewed certificate (or CA) is used from the next call
//! on, as the API's own certificate is reloaded in place, without a
//! restart.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How often the files are looked at (their modification times).
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The largest CA, certificate or key file read.
const MAX_PEM_FILE: u64 = 1 << 20;

/// The CA the peers' certificates are checked against, and this node's
/// client certificate and key when the peers ask for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PeerTlsFiles {
    pub ca: PathBuf,
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl PeerTlsFiles {
    fn paths(&self) -> Vec<&PathBuf> {
        let mut paths = vec![&self.ca];
        if let Some((cert, key)) = &self.identity {
            paths.extend([cert, key]);
        }
        paths
    }

    /// The files' modification times (None: unreadable now).
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        self.paths()
            .into_iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// The client settings the files make, or which file cannot be read.
    fn read(&self) -> Result<ClientTlsConfig, String> {
        let read = |path: &PathBuf| {
            sandport_config::read_bounded(path, MAX_PEM_FILE)
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)?));
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(tls)
    }
}

pub(super) struct PeerTls {
    files: PeerTlsFiles,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    stamp: Vec<Option<SystemTime>>,
    config: ClientTlsConfig,
    looked: Instant,
    /// Set while a changed file cannot be read, so that it is warned
    /// about once.
    unreadable: bool,
}

impl PeerTls {
    /// Reads the files; Err names the one that cannot be read.
    pub(super) fn load(files: PeerTlsFiles) -> Result<PeerTls, String> {
        let stamp = files.stamp();
        let config = files.read()?;
        Ok(PeerTls {
            files,
            loaded: Mutex::new(Loaded {
                stamp,
                config,
                looked: Instant::now(),
                unreadable: false,
            }),
        })
    }

    /// The settings to use now, and whether they changed since the last
    /// call (channels made with the old ones are to be made again). A
    /// changed file that cannot be read (half written) leaves the old
    /// settings in use until it can.
    pub(super) fn current(&self) -> (ClientTlsConfig, bool) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.saturating_duration_since(loaded.looked) < LOOK_EVERY {
            return (loaded.config.clone(), false);
        }
        loaded.looked = now;
        let stamp = self.files.stamp();
        if stamp == loaded.stamp {
            return (loaded.config.clone(), false);
        }
        match self.files.read() {
            Ok(config) => {
                tracing::info!("the certificates for calls to the other nodes changed; using them");
                loaded.stamp = stamp;
                loaded.config = config;
                loaded.unreadable = false;
                (loaded.config.clone(), true)
            }
            Err(why) => {
                if !loaded.unreadable {
                    tracing::warn!(
                        "a certificate file for calls to the other nodes changed but cannot be read ({why}); the previous ones stay in use"
                    );
                    loaded.unreadable = true;
                }
                (loaded.config.clone(), false)
            }
        }
    }

    #[cfg(test)]
    fn look_now(&self) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        loaded.looked = Instant::now() - LOOK_EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("ca").pem()
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_half_written_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem("first")).expect("write");
        let tls = PeerTls::load(PeerTlsFiles {
            ca: ca.clone(),
            identity: None,
        })
        .expect("loads");
        tls.look_now();
        assert!(!tls.current().1, "nothing changed");

        // A renewed CA, written with a later modification time.
        std::fs::write(&ca, ca_pem("second")).expect("write");
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&ca)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        tls.look_now();
        assert!(tls.current().1, "the renewed file is read");
        tls.look_now();
        assert!(!tls.current().1, "and only once");

        // Missing mid-rotation: the settings in use stay.
        std::fs::remove_file(&ca).expect("remove");
        tls.look_now();
        assert!(!tls.current().1);
        assert!(
            PeerTls::load(PeerTlsFiles { ca, identity: None }).is_err(),
            "a missing file is named at start"
        );
    }
}
