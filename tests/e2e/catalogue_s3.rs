//! The `s3` connector against a real S3-compatible server (moto, with
//! signature checking on): the host signs with AWS Signature Version 4, so
//! the secret key never enters the guest, and the server's verdict on the
//! signature is what these tests rest on.

use sandport_core::HealthStatus;
use sandport_tests::servers::{Kind, RealServer};
use sandport_tests::{entry, runtime};

fn s3_entry(
    id: &str,
    port: u16,
    bucket: &str,
    key: &str,
    secret: &str,
) -> sandport_config::ConnectorConfig {
    entry(&format!(
        "{{id: {id}, component: s3, host: 127.0.0.1, port: {port}, scheme: http, \
         settings: {{bucket: {bucket}}}, \
         auth: {{type: aws_sigv4, access_key_id: '{key}', secret_access_key: '{secret}', region: us-east-1}}}}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_signed_by_the_host_is_healthy_and_says_what_is_wrong_otherwise() {
    let mut moto = tokio::task::spawn_blocking(|| RealServer::start(Kind::Moto))
        .await
        .expect("start moto");
    let (key, secret) = moto.moto_setup("sandport-health");
    let port = moto.port();
    let runtime = runtime();
    let wrong_secret: String = secret.chars().rev().collect();
    for config in [
        s3_entry("ok", port, "sandport-health", &key, &secret),
        s3_entry("missing", port, "no-such-bucket", &key, &secret),
        s3_entry("forged", port, "sandport-health", &key, &wrong_secret),
    ] {
        runtime.register(config).await.expect("registers");
    }

    let ok = runtime.check("ok").await.expect("known");
    assert_eq!(ok.status, HealthStatus::Healthy, "{ok:?}\n{}", moto.log());
    assert_eq!(ok.message, "bucket `sandport-health` is reachable");

    let missing = runtime.check("missing").await.expect("known");
    assert_eq!(missing.status, HealthStatus::Unhealthy, "{missing:?}");
    assert!(
        missing
            .message
            .starts_with("bucket `no-such-bucket` does not exist"),
        "{missing:?}"
    );

    // A wrong secret makes a signature the server rejects.
    let forged = runtime.check("forged").await.expect("known");
    assert_eq!(forged.status, HealthStatus::Unhealthy, "{forged:?}");
    assert!(
        forged.message.contains("refused the credentials"),
        "{forged:?}"
    );

    // The guest never saw the secret: its config carries the kind only.
    let (_, config) = runtime.get("ok").expect("known");
    assert_eq!(config.auth.auth.kind(), "aws_sigv4");

    moto.stop();
    let gone = runtime.check("ok").await.expect("known");
    assert_eq!(gone.status, HealthStatus::Unhealthy);
    assert!(gone.message.ends_with(": connection refused"), "{gone:?}");
}
