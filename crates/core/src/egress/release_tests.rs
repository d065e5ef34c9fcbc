//! A connector's pooled connections live as long as its client.

use std::time::Duration;

use super::test_server::KeepAliveServer;
use super::*;

fn egress_to(port: u16) -> Egress {
    let config = sandport_config::parse_entry(
        &format!("{{id: t, component: http, host: 127.0.0.1, port: {port}}}"),
        std::path::Path::new("."),
        sandport_builtins::catalog(),
    )
    .expect("entry");
    Egress::new(&HttpClient::new().expect("client"), &config).expect("egress")
}

async fn get(egress: &Egress, port: u16) {
    let request = egress
        .prepare(Request {
            method: "GET".into(),
            url: format!("http://127.0.0.1:{port}/"),
            headers: Vec::new(),
            body: None,
            timeout: None,
        })
        .expect("a valid request");
    let response = egress
        .send_prepared(
            &request,
            Budget::new(Duration::from_secs(10)),
            &mut CallUsage::default(),
        )
        .await
        .expect("an answer");
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn released_connections_are_closed_and_the_next_request_opens_one() {
    let server = KeepAliveServer::start().await;
    let egress = egress_to(server.port);
    get(&egress, server.port).await;
    get(&egress, server.port).await;
    assert_eq!(server.accepted(), 1, "the connection was pooled and reused");
    assert_eq!(server.closed(), 0);

    egress.release_connections();
    assert!(!egress.holds_client());
    server.wait_closed(1).await;

    get(&egress, server.port).await;
    assert!(egress.holds_client());
    assert_eq!(server.accepted(), 2, "a new client opens a new connection");
}
