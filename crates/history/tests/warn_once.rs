//! A failing disk is logged once when writing starts to fail and once when
//! it resumes, not once per batch. Its own test binary, because it installs
//! a process-wide log subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use sandport_history::{History, HistoryError, HistoryOptions, Point, Status};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts the writer's "cannot write" warnings and "resumed" notes.
#[derive(Default)]
struct Counter {
    failing: AtomicUsize,
    resumed: AtomicUsize,
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

struct Counting(Arc<Counter>);

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        if level == Level::WARN && message.0.contains("cannot write checks") {
            self.0.failing.fetch_add(1, Ordering::SeqCst);
        }
        if level == Level::INFO && message.0.contains("writing resumed") {
            self.0.resumed.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn point(i: u64, heavy: bool) -> Point {
    Point {
        connector: Arc::from("a"),
        at: UNIX_EPOCH + Duration::from_secs(1_749_945_600 + i),
        status: Status::Healthy,
        reported: Status::Healthy,
        latency: Duration::from_millis(1),
        failure: None,
        // Distinct 1 KB messages need new pages, which a page cap refuses.
        message: heavy.then(|| format!("{i:04}").repeat(256)),
    }
}

#[test]
fn a_full_disk_is_logged_once_per_change_of_state() {
    let counter = Arc::new(Counter::default());
    tracing::subscriber::set_global_default(Counting(counter.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(HistoryOptions {
        raw_retention: Duration::from_secs(100 * 365 * 86_400),
        rollup_retention: Duration::from_secs(100 * 365 * 86_400),
        ..HistoryOptions::new(dir.path().join("history.db"))
    })
    .unwrap();
    history.record(point(0, false));
    history.flush().unwrap();

    history.set_max_pages_for_test(Some(1));
    for i in 1..20 {
        history.record(point(i, true));
    }
    // Three failed attempts at least (each flush waits for one).
    for _ in 0..3 {
        assert!(matches!(history.flush(), Err(HistoryError::Full { .. })));
    }
    assert!(history.stats().write_errors >= 3);
    assert_eq!(counter.failing.load(Ordering::SeqCst), 1);

    history.set_max_pages_for_test(None);
    history.flush().unwrap();
    assert_eq!(counter.resumed.load(Ordering::SeqCst), 1);

    // Failing again is a new change of state: logged again, once.
    history.set_max_pages_for_test(Some(1));
    for i in 20..40 {
        history.record(point(i, true));
    }
    for _ in 0..2 {
        assert!(history.flush().is_err());
    }
    assert_eq!(counter.failing.load(Ordering::SeqCst), 2);
    history.set_max_pages_for_test(None);
    history.flush().unwrap();
    assert_eq!(counter.resumed.load(Ordering::SeqCst), 2);
}
