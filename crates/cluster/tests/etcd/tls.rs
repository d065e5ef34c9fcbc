//! etcd over TLS with client certificates.

use sandport_cluster::{Cluster, ClusterError, Store, TlsFiles};

use crate::entry;
use crate::support::Etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_ca_and_a_client_certificate_gets_in() {
    let etcd = Etcd::start_tls();
    let pki = etcd.pki().unwrap();
    let mut options = etcd.options("node-a");
    options.tls = Some(TlsFiles {
        ca: pki.ca.clone(),
        cert: Some(pki.client_cert.clone()),
        key: Some(pki.client_key.clone()),
    });
    let cluster = Cluster::connect(&options).await.expect("connects over TLS");
    let store = Store::new(&cluster);
    store.create(&entry("grafana", 3000)).await.unwrap();
    assert_eq!(store.list().await.unwrap().entries.len(), 1);

    // Without a client certificate etcd refuses the handshake.
    options.tls = Some(TlsFiles {
        ca: pki.ca.clone(),
        cert: None,
        key: None,
    });
    let err = Cluster::connect(&options).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_tls_file_is_named() {
    let etcd = Etcd::start_tls();
    let pki = etcd.pki().unwrap();
    let mut options = etcd.options("node-a");
    options.tls = Some(TlsFiles {
        ca: pki.ca.with_file_name("nope.pem"),
        cert: None,
        key: None,
    });
    match Cluster::connect(&options).await {
        Err(ClusterError::TlsFile {
            what: "CA", path, ..
        }) => assert!(path.ends_with("nope.pem")),
        other => panic!("{other:?}"),
    }
    options.tls = Some(TlsFiles {
        ca: pki.ca.with_file_name("etcd.log"),
        cert: None,
        key: None,
    });
    let err = Cluster::connect(&options).await.unwrap_err();
    assert!(err.to_string().contains("not a PEM file"), "{err}");
}
