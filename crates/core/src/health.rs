//! Health results: what one check found and what the cache keeps per
//! connector.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The status of a connector, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
    Unavailable,
    Unknown,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Unavailable => "unavailable",
            HealthStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check failed for reasons of the sandbox rather than of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The guest did not finish within the check's timeout.
    Deadline,
    /// The guest hit its memory limit.
    OutOfMemory,
    /// The guest trapped (panic, unreachable, stack overflow, ...).
    Trap,
    /// The guest returned an error instead of a report.
    GuestError,
    /// The instance could not be created or initialised.
    Instantiate,
    /// The check failed after the egress policy denied one of its requests.
    EgressDenied,
    /// The guest overran its deadline repeatedly; checks are skipped for a
    /// while (see the message).
    Quarantined,
}

impl FailureKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureKind::Deadline => "deadline",
            FailureKind::OutOfMemory => "out-of-memory",
            FailureKind::Trap => "trap",
            FailureKind::GuestError => "guest-error",
            FailureKind::Instantiate => "instantiate",
            FailureKind::EgressDenied => "egress-denied",
            FailureKind::Quarantined => "quarantined",
        }
    }
}

/// The result of one health check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    pub status: HealthStatus,
    pub message: String,
    pub details: Vec<(String, String)>,
    /// Set when the sandbox, not the target, caused the failure.
    pub failure: Option<FailureKind>,
    pub latency: Duration,
    pub checked_at: SystemTime,
}

/// What the cache holds for one connector.
///
/// `status` is the *reported* status: a passing connector (healthy or
/// degraded) is reported failing only after `failure_threshold` failed
/// checks in a row, and a failing one passing again only after
/// `success_threshold` passed checks in a row. The other fields describe the
/// latest check, so while a threshold holds the status they say what the
/// checks in between found.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot {
    pub status: HealthStatus,
    /// When the reported status began; `None` until the first check.
    pub since: Option<SystemTime>,
    pub message: String,
    pub details: Vec<(String, String)>,
    pub failure: Option<FailureKind>,
    pub latency: Option<Duration>,
    pub checked_at: Option<SystemTime>,
    /// Checks in a row that were not passing (degraded counts as passing).
    pub consecutive_failures: u32,
    /// Checks in a row that were passing.
    pub consecutive_successes: u32,
}

/// How many checks in a row turn the reported status; see
/// [`HealthSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failure: u32,
    pub success: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure: 1,
            success: 1,
        }
    }
}

impl HealthStatus {
    /// Healthy and degraded pass; the rest (unknown included, as a check's
    /// own answer) fail.
    pub fn passing(self) -> bool {
        matches!(self, HealthStatus::Healthy | HealthStatus::Degraded)
    }
}

impl HealthSnapshot {
    pub fn unknown() -> Self {
        HealthSnapshot {
            status: HealthStatus::Unknown,
            since: None,
            message: "not checked yet".into(),
            details: Vec::new(),
            failure: None,
            latency: None,
            checked_at: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        HealthSnapshot {
            status: HealthStatus::Unavailable,
            message: message.into(),
            ..Self::unknown()
        }
    }

    /// Folds a new outcome into the snapshot. Returns the reported status
    /// before it when this outcome changed it.
    pub fn record(
        &mut self,
        outcome: CheckOutcome,
        thresholds: Thresholds,
    ) -> Option<HealthStatus> {
        let passed = outcome.status.passing();
        if passed {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
        }
        let previous = self.status;
        // Within one side (healthy <-> degraded, unhealthy <-> unavailable)
        // and from "not checked yet" a check is reported as it is; crossing
        // sides waits for the threshold.
        let crosses = previous != HealthStatus::Unknown && previous.passing() != passed;
        let run_long_enough = if passed {
            self.consecutive_successes >= thresholds.success
        } else {
            self.consecutive_failures >= thresholds.failure
        };
        let reported = if !crosses || run_long_enough {
            outcome.status
        } else {
            previous
        };
        self.status = reported;
        self.message = outcome.message;
        self.details = outcome.details;
        self.failure = outcome.failure;
        self.latency = Some(outcome.latency);
        self.checked_at = Some(outcome.checked_at);
        if reported != previous || self.since.is_none() {
            self.since = Some(outcome.checked_at);
        }
        (reported != previous).then_some(previous)
    }
}

/// The longest message kept from a guest.
pub const MAX_MESSAGE: usize = 1024;

/// Makes a guest-supplied string fit for one log line or API field: control
/// characters and line breaks become spaces, runs of spaces collapse, and
/// the length is capped.
pub fn one_line(text: impl AsRef<str> + Into<String>) -> String {
    // Most messages are short printable ASCII with single spaces: as they
    // are, and an owned one without a copy.
    if is_one_line(text.as_ref().as_bytes()) {
        return text.into();
    }
    let text = text.as_ref();
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE));
    let mut last_space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if out.len() + c.len_utf8() > MAX_MESSAGE {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Whether `one_line` would return `bytes` unchanged (it may not when this
/// says no). Every check's report passes through here, so the scans are
/// folds without early exits, which the compiler turns into vector code.
fn is_one_line(bytes: &[u8]) -> bool {
    let unprintable = bytes
        .iter()
        .fold(false, |seen, &b| seen | !(b' '..=b'~').contains(&b));
    let double_space = bytes
        .iter()
        .zip(bytes.get(1..).unwrap_or_default())
        .fold(false, |seen, (&a, &b)| seen | ((a == b' ') & (b == b' ')));
    bytes.len() <= MAX_MESSAGE
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !unprintable
        && !double_space
}

/// Latency as people read it: `850µs`, `12ms`, `1.5s`, `5s`.
pub fn format_latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: HealthStatus) -> CheckOutcome {
        CheckOutcome {
            status,
            message: String::new(),
            details: Vec::new(),
            failure: None,
            latency: Duration::from_millis(3),
            checked_at: SystemTime::now(),
        }
    }

    #[test]
    fn consecutive_failures_count_up_and_reset_on_success() {
        let mut snap = HealthSnapshot::unknown();
        let t = Thresholds::default();
        snap.record(outcome(HealthStatus::Unhealthy), t);
        snap.record(outcome(HealthStatus::Unhealthy), t);
        assert_eq!(snap.consecutive_failures, 2);
        snap.record(outcome(HealthStatus::Degraded), t);
        assert_eq!(snap.consecutive_failures, 0);
        assert_eq!(snap.consecutive_successes, 1);
        assert_eq!(snap.status, HealthStatus::Degraded);
    }

    /// Feeds `checks` (H healthy, D degraded, U unhealthy, A unavailable)
    /// and returns the reported status after each, as the same letters.
    fn reported(checks: &str, failure: u32, success: u32) -> String {
        let mut snap = HealthSnapshot::unknown();
        let thresholds = Thresholds { failure, success };
        let letter = |s: HealthStatus| match s {
            HealthStatus::Healthy => 'H',
            HealthStatus::Degraded => 'D',
            HealthStatus::Unhealthy => 'U',
            HealthStatus::Unavailable => 'A',
            HealthStatus::Unknown => '?',
        };
        checks
            .chars()
            .map(|c| {
                let status = match c {
                    'H' => HealthStatus::Healthy,
                    'D' => HealthStatus::Degraded,
                    'U' => HealthStatus::Unhealthy,
                    _ => HealthStatus::Unavailable,
                };
                snap.record(outcome(status), thresholds);
                letter(snap.status)
            })
            .collect()
    }

    #[test]
    fn the_state_table_holds() {
        // (checks, failure_threshold, success_threshold, reported after each)
        for (checks, failure, success, expected) in [
            // Thresholds of 1: every check is reported as it is.
            ("HUHDA", 1, 1, "HUHDA"),
            // The first check is reported at once, whatever the thresholds.
            ("UUH", 3, 2, "UUU"),
            ("HUUUH", 3, 1, "HHHUH"),
            // A failure run shorter than the threshold is never reported.
            ("HUUHUUH", 3, 1, "HHHHHHH"),
            // Recovery waits for the success threshold; a failure resets it.
            ("HUHHUHHH", 1, 3, "HUUUUUUH"),
            // Within one side changes are reported at once.
            ("HDHUAU", 1, 1, "HDHUAU"),
            ("HDUUA", 2, 1, "HDDUA"),
            ("UAHH", 1, 2, "UAAH"),
        ] {
            assert_eq!(
                reported(checks, failure, success),
                expected,
                "checks {checks} with thresholds {failure}/{success}"
            );
        }
    }

    #[test]
    fn record_says_when_the_reported_status_changed_and_since_follows_it() {
        let mut snap = HealthSnapshot::unknown();
        let t = Thresholds {
            failure: 2,
            success: 1,
        };
        let mut first = outcome(HealthStatus::Healthy);
        first.checked_at = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(snap.record(first, t), Some(HealthStatus::Unknown));
        let mut down = outcome(HealthStatus::Unhealthy);
        down.checked_at = SystemTime::UNIX_EPOCH + Duration::from_secs(20);
        assert_eq!(snap.record(down.clone(), t), None);
        assert_eq!(
            snap.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
        down.checked_at = SystemTime::UNIX_EPOCH + Duration::from_secs(30);
        assert_eq!(snap.record(down, t), Some(HealthStatus::Healthy));
        assert_eq!(
            snap.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(30))
        );
    }

    #[test]
    fn plain_text_is_recognised_and_kept_as_it_is() {
        let long = "x".repeat(MAX_MESSAGE + 1);
        for plain in ["", "a", "GET http://h/ returned 200", "a b ~"] {
            assert!(is_one_line(plain.as_bytes()), "{plain:?}");
            assert_eq!(one_line(plain), plain);
        }
        for changed in [
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\nb",
            "é",
            "a\u{7f}",
            long.as_str(),
        ] {
            assert!(!is_one_line(changed.as_bytes()), "{changed:?}");
        }
    }

    #[test]
    fn guest_text_becomes_one_capped_line() {
        assert_eq!(one_line("  a\n\n  b\tc\u{7}d "), "a b c d");
        assert_eq!(
            one_line("GET http://h/ returned 200"),
            "GET http://h/ returned 200"
        );
        assert_eq!(one_line("a  b"), "a b");
        assert_eq!(one_line("é  b\u{a0}\u{a0}c "), "é b c");
        let long = "x".repeat(5000);
        assert!(one_line(&long).chars().count() <= MAX_MESSAGE + 1);
        assert!(one_line(long).chars().count() <= MAX_MESSAGE + 1);
        // A clean message the caller owns is kept, not copied.
        let clean = String::from("GET http://h/ returned 200");
        let at = clean.as_ptr();
        let kept = one_line(clean);
        assert_eq!(kept.as_ptr(), at);
    }

    #[test]
    fn latency_reads_naturally() {
        assert_eq!(format_latency(Duration::from_secs(5)), "5s");
        assert_eq!(format_latency(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_latency(Duration::from_millis(12)), "12ms");
        assert_eq!(format_latency(Duration::from_micros(850)), "850µs");
    }
}
