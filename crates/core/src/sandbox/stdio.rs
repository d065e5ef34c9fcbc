//! Guest stdout/stderr, line by line into the host's log, tagged with the
//! connector id. Lines longer than [`MAX_LOG_LINE`] are cut, and all of a
//! guest's output (stdio and `logging`) shares one [`LogLimiter`], so a guest
//! logging in a tight loop cannot flood the host's log.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The longest log line a guest may write; the rest is cut.
pub const MAX_LOG_LINE: usize = 4096;

/// A token bucket over the lines one guest may log.
pub struct LogLimiter {
    state: std::sync::Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: std::time::Instant,
    dropped: u64,
}

impl LogLimiter {
    /// Lines a guest may log at once.
    const BURST: f64 = 100.0;
    /// Lines per second it may log after that.
    const PER_SECOND: f64 = 20.0;

    pub fn new() -> Self {
        LogLimiter {
            state: std::sync::Mutex::new(Bucket {
                tokens: Self::BURST,
                refilled: std::time::Instant::now(),
                dropped: 0,
            }),
        }
    }

    /// Whether one more line may be logged; `Some(n)` also says that `n`
    /// lines were dropped since the last one that was.
    pub fn admit(&self) -> Option<u64> {
        let mut b = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        let earned = now.duration_since(b.refilled).as_secs_f64() * Self::PER_SECOND;
        b.tokens = (b.tokens + earned).min(Self::BURST);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += 1;
            None
        }
    }
}

/// Logs `message` for `connector` if the limiter admits it.
pub fn log_line(
    limiter: &LogLimiter,
    connector: &str,
    level: tracing::Level,
    stream: &str,
    message: &str,
) {
    let Some(dropped) = limiter.admit() else {
        return;
    };
    if dropped > 0 {
        tracing::warn!(
            connector,
            "dropped {dropped} log lines of this guest (rate limit)"
        );
    }
    // Control characters (line breaks, terminal escapes) would let a guest
    // forge or garble the host's log lines.
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let message = truncate(&clean, MAX_LOG_LINE);
    match level {
        tracing::Level::TRACE => tracing::trace!(connector, stream, "{message}"),
        tracing::Level::DEBUG => tracing::debug!(connector, stream, "{message}"),
        tracing::Level::INFO => tracing::info!(connector, stream, "{message}"),
        tracing::Level::WARN => tracing::warn!(connector, stream, "{message}"),
        _ => tracing::error!(connector, stream, "{message}"),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

/// The factory WASI asks for a stream each time the guest opens stdout.
#[derive(Clone)]
pub struct GuestOutput {
    connector_id: Arc<str>,
    stream: &'static str,
    limiter: Arc<LogLimiter>,
}

impl GuestOutput {
    pub fn new(connector_id: Arc<str>, stream: &'static str, limiter: Arc<LogLimiter>) -> Self {
        GuestOutput {
            connector_id,
            stream,
            limiter,
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger::new(self.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLogger::new(self.clone()))
    }
}

/// Buffers a partial line until its newline arrives (or the stream drops).
struct LineLogger {
    target: GuestOutput,
    pending: Vec<u8>,
    /// Bytes of the current line beyond what is kept.
    cut: usize,
}

impl LineLogger {
    fn new(target: GuestOutput) -> Self {
        LineLogger {
            target,
            pending: Vec::new(),
            cut: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.emit();
            } else if self.pending.len() < MAX_LOG_LINE - 32 {
                self.pending.push(b);
            } else {
                self.cut += 1;
            }
        }
    }

    fn emit(&mut self) {
        let mut line = String::from_utf8_lossy(&self.pending).into_owned();
        if self.cut > 0 {
            line.push_str(&format!("… ({} bytes cut)", self.cut));
            self.cut = 0;
        }
        log_line(
            &self.target.limiter,
            &self.target.connector_id,
            tracing::Level::INFO,
            self.target.stream,
            &line,
        );
        self.pending.clear();
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.pending.is_empty() || self.cut > 0 {
            self.emit();
        }
    }
}

impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLogger {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_burst_and_the_drops_are_counted() {
        let limiter = LogLimiter::new();
        let admitted = (0..10_000).filter(|_| limiter.admit().is_some()).count();
        assert!((100..=110).contains(&admitted), "admitted {admitted}");
        std::thread::sleep(std::time::Duration::from_millis(120));
        let dropped = limiter.admit().expect("a token came back");
        assert!(dropped >= 9_890, "dropped {dropped}");
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(5000);
        let cut = truncate(&line, 4096);
        assert!(
            cut.len() < 4200 && cut.contains("bytes cut"),
            "{}",
            cut.len()
        );
    }
}
