//! A loopback HTTP/1.1 server for tests of what a connector holds: answers
//! every request with `200 ok`, keeps each connection open until the client
//! closes it, and counts the connections it accepted and saw closed, and
//! the requests it answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) struct KeepAliveServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl KeepAliveServer {
    pub async fn start() -> KeepAliveServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, c, r) = (accepted.clone(), closed.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, c.clone(), r.clone()));
            }
        });
        KeepAliveServer {
            port,
            accepted,
            closed,
            requests,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until the server has answered `n` requests; false if that
    /// takes longer than `within`.
    pub async fn wait_requests(&self, n: usize, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while self.requests() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .is_ok()
    }

    /// Waits until the server has seen `n` connections closed by the
    /// client. The bound only keeps a broken test from hanging.
    pub async fn wait_closed(&self, n: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while self.closed() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the client closed {} of the {n} connections expected",
            self.closed()
        );
    }
}

/// Answers each request (headers only; the tests send no body) until the
/// client closes the connection.
async fn serve(
    mut stream: tokio::net::TcpStream,
    closed: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            requests.fetch_add(1, Ordering::SeqCst);
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
            if stream.write_all(reply).await.is_err() {
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
    closed.fetch_add(1, Ordering::SeqCst);
}
