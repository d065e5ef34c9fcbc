//! The store itself: damaged files left alone, reopening, retention, the
//! bounded queue, a full disk, closing.

use std::time::{Duration, SystemTime};

use super::*;
use crate::HistoryError;

fn assert_names_path(e: &HistoryError, path: &Path) {
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
}

fn assert_left_alone(path: &Path, before: &[u8]) {
    assert_eq!(read(path), before, "the file was changed");
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        assert!(!Path::new(&side).exists(), "{suffix} was created");
    }
}

#[test]
fn a_file_of_garbage_is_damaged_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    std::fs::create_dir_all(opts.path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&opts.path, &garbage).unwrap();
    let e = History::open(opts.clone()).unwrap_err();
    assert!(matches!(e, HistoryError::Damaged { .. }), "{e}");
    assert_names_path(&e, &opts.path);
    assert!(e.to_string().contains("move it aside"), "{e}");
    assert_left_alone(&opts.path, &garbage);
}

#[test]
fn a_truncated_database_is_damaged_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let h = History::open(opts.clone()).unwrap();
    for i in 0..5_000u64 {
        h.record(point(
            &format!("c{}", i % 50),
            at(DAY0 + i),
            Status::Healthy,
            5,
        ));
    }
    h.flush().unwrap();
    h.close();
    drop(h);
    let whole = read(&opts.path);
    assert!(
        whole.len() > 8 * 4096,
        "the test needs a file of several pages"
    );
    for cut in [whole.len() / 2, whole.len() / 2 + 1000] {
        let truncated = &whole[..cut];
        std::fs::write(&opts.path, truncated).unwrap();
        let e = History::open(opts.clone()).unwrap_err();
        assert!(
            matches!(e, HistoryError::Damaged { .. }),
            "cut at {cut}: {e}"
        );
        assert_names_path(&e, &opts.path);
        assert_left_alone(&opts.path, truncated);
    }
}

#[test]
fn a_file_that_cannot_be_read_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: unreadable even to root.
    let opts = options(dir.path());
    std::fs::create_dir_all(&opts.path).unwrap();
    let e = History::open(opts.clone()).unwrap_err();
    assert!(matches!(e, HistoryError::Io { .. }), "{e}");
    assert_names_path(&e, &opts.path);
    assert!(opts.path.is_dir());

    // A file without read permission, where permissions apply (not root).
    use std::os::unix::fs::PermissionsExt;
    let file = dir.path().join("locked.db");
    std::fs::write(&file, b"SQLite format 3\0 and more").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&file).is_err() {
        let e = History::open(HistoryOptions::new(&file)).unwrap_err();
        assert!(matches!(e, HistoryError::Io { .. }), "{e}");
        assert_names_path(&e, &file);
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(read(&file), b"SQLite format 3\0 and more");
}

#[test]
fn a_schema_from_the_future_or_a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let h = History::open(opts.clone()).unwrap();
    h.close();
    drop(h);
    let conn = rusqlite::Connection::open(&opts.path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let before = read(&opts.path);
    let e = History::open(opts.clone()).unwrap_err();
    assert!(matches!(e, HistoryError::Damaged { .. }), "{e}");
    assert!(e.to_string().contains("newer"), "{e}");
    assert_eq!(read(&opts.path), before);

    let foreign = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE t (x)").unwrap();
    drop(conn);
    let e = History::open(HistoryOptions::new(&foreign)).unwrap_err();
    assert!(
        e.to_string().contains("not a Sandport check history"),
        "{e}"
    );
}

#[test]
fn reopening_carries_on_where_the_last_run_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let now = at(DAY0 + 12 * HOUR);
    let h = open(dir.path());
    h.record(point("a", at(DAY0 + HOUR), Status::Healthy, 1));
    let mut p = point("a", at(DAY0 + 2 * HOUR), Status::Unhealthy, 1);
    p.message = Some("refused".into());
    h.record(p);
    h.record(point("a", at(DAY0 + 3 * HOUR), Status::Unhealthy, 1));
    h.flush().unwrap();
    let before = h.uptime("a", now).unwrap();
    drop(h);

    let h = open(dir.path());
    assert_eq!(h.uptime("a", now).unwrap(), before);
    assert_eq!(before.since, Some(at(DAY0 + 2 * HOUR)));
    assert_eq!(h.daily("a", 1, now).unwrap(), vec![Some(100.0 / 3.0)]);
    // The reported status and the message in force survived too.
    h.record(point("a", at(DAY0 + 4 * HOUR), Status::Healthy, 1));
    h.flush().unwrap();
    let incidents = h.incidents(at(DAY0), 10).unwrap();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0].previous, Status::Unhealthy);
    assert_eq!(incidents[0].message, "refused");
    assert_eq!(count(&h, "connector"), 1);
}

#[test]
fn retention_deletes_old_rows_in_chunks_and_keeps_the_message_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(HistoryOptions {
        raw_retention: Duration::from_secs(DAY),
        rollup_retention: Duration::from_secs(3 * DAY),
        ..options(dir.path())
    })
    .unwrap();
    // The writer's own walks use the clock, so this test does too.
    let now = SystemTime::now();
    let ago = |secs: u64| now - Duration::from_secs(secs);
    let mut older = point("a", ago(4 * DAY), Status::Healthy, 1);
    older.message = Some("older".into());
    h.record(older);
    // More old points than one DELETE removes.
    for i in 0..3_000u64 {
        let mut p = point(
            "a",
            ago(2 * DAY) + Duration::from_millis(i * 10),
            Status::Unhealthy,
            1,
        );
        if i == 0 {
            p.message = Some("old".into());
        }
        h.record(p);
    }
    h.record(point("a", ago(HOUR), Status::Unhealthy, 1));
    h.flush().unwrap();
    // The writer's first walk may already have begun; this one finishes.
    assert_eq!(h.stats().written, 3_002);
    h.maintain_now_for_test(now).unwrap();

    assert_eq!(count(&h, "point"), 1);
    let kept = h.points("a", ago(3 * DAY), now, 10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].message, "old", "the message in force is kept");
    assert_eq!(count(&h, "message"), 1);
    let cutoff_ms = crate::types::to_ms(ago(3 * DAY));
    let old_hour = crate::types::hour_of(cutoff_ms);
    let old_day = crate::types::day_of(cutoff_ms);
    assert_eq!(count(&h, &format!("hourly WHERE hour < {old_hour}")), 0);
    assert!(
        count(&h, "hourly") >= 2,
        "the rollups of 2 days ago and 1 hour ago stay"
    );
    assert_eq!(count(&h, &format!("daily WHERE day < {old_day}")), 0);
    assert!(count(&h, "daily") >= 1);
    assert_eq!(count(&h, "incident"), 1, "the change 2 days ago stays");
}

/// Points with distinct 1 KB messages, so any batch of them needs new
/// pages and fails under a page cap.
fn heavy(i: u64) -> Point {
    let mut p = point("a", at(DAY0 + 100 + i), Status::Healthy, 1);
    p.message = Some(format!("{i:04}").repeat(256));
    p
}

#[test]
fn a_full_queue_drops_the_oldest_points_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(HistoryOptions {
        queue: 10,
        ..options(dir.path())
    })
    .unwrap();
    h.record(point("a", at(DAY0), Status::Healthy, 1));
    h.flush().unwrap();
    // Writes fail from here, so everything stays queued.
    h.set_max_pages_for_test(Some(1));
    for i in 0..10 {
        h.record(heavy(i));
    }
    assert!(matches!(h.flush(), Err(HistoryError::Full { .. })));
    for i in 10..25 {
        h.record(heavy(i));
    }
    assert!(h.stats().queued <= 10 + crate::writer::BATCH as u64);
    h.set_max_pages_for_test(None);
    h.flush().unwrap();
    let stats = h.stats();
    assert_eq!(stats.dropped, 15);
    assert_eq!(stats.written, 11);
    assert_eq!(stats.queued, 0);
    let kept = h.points("a", at(DAY0 + 1), at(DAY0 + DAY), 100).unwrap();
    let times: Vec<SystemTime> = kept.iter().map(|p| p.at).collect();
    let newest: Vec<SystemTime> = (15..25).map(|i| at(DAY0 + 100 + i)).collect();
    assert_eq!(times, newest, "the newest 10 are kept");
}

#[test]
fn a_full_disk_keeps_points_in_memory_and_resumes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.record(point("a", at(DAY0), Status::Healthy, 1));
    h.flush().unwrap();
    h.set_max_pages_for_test(Some(1));
    for i in 0..20 {
        h.record(heavy(i));
    }
    let e = h.flush().unwrap_err();
    assert!(matches!(e, HistoryError::Full { .. }), "{e}");
    assert_names_path(&e, h.path());
    let stats = h.stats();
    assert!(stats.write_errors >= 1);
    assert!(
        stats.last_error.as_deref().unwrap_or("").contains("full"),
        "{stats:?}"
    );
    assert_eq!(stats.queued, 20);
    assert_eq!(stats.dropped, 0);
    // Space comes back: the writer retries by itself (flush only waits).
    h.set_max_pages_for_test(None);
    h.flush().unwrap();
    let stats = h.stats();
    assert_eq!(
        (stats.written, stats.queued, stats.last_error),
        (21, 0, None)
    );
    assert_eq!(count(&h, "message"), 20);
    assert!(stats.file_bytes > 20 * 1024);
}

#[test]
fn close_writes_what_is_queued_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let clone = h.clone();
    for i in 0..100 {
        clone.record(point("a", at(DAY0 + i), Status::Healthy, 1));
    }
    h.close();
    h.close();
    assert_eq!(h.stats().written, 100);
    h.record(point("a", at(DAY0 + 500), Status::Healthy, 1));
    assert_eq!(h.stats().dropped, 1, "a point after close is counted");
    h.flush().unwrap();
    assert_eq!(
        h.points("a", at(DAY0), at(DAY0 + DAY), 1000).unwrap().len(),
        100
    );
}

#[test]
fn dropping_the_last_clone_writes_the_queue_and_stops_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    for i in 0..1_000 {
        h.record(point("a", at(DAY0 + i), Status::Healthy, 1));
    }
    let clone = h.clone();
    drop(h);
    clone.record(point("a", at(DAY0 + 5_000), Status::Healthy, 1));
    drop(clone);
    let h = open(dir.path());
    assert_eq!(count(&h, "point"), 1_001);
}

#[test]
fn the_handle_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<History>();
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    h.record(point(&format!("t{t}"), at(DAY0 + i), Status::Healthy, 1));
                }
                h.flush().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.stats().written, 2_000);
    assert_eq!(h.uptime_all(at(DAY0 + 600)).unwrap().len(), 4);
}
