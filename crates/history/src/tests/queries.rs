//! What the queries answer: rollups, uptime windows, daily bars, incidents,
//! raw points and their messages.

use std::time::Duration;

use super::*;
use crate::{HistoryError, MAX_MESSAGE_BYTES, StatusCounts};

#[test]
fn an_hour_rolls_up_to_exact_counts_and_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let start = DAY0 + 5 * HOUR;
    // 100 checks, latencies 1..=100 ms in shuffled order: 90 healthy,
    // 5 degraded, 3 unhealthy, 1 unavailable, 1 unknown.
    for i in 0..100u64 {
        let latency = (i * 37) % 100 + 1;
        let status = match i {
            0..90 => Status::Healthy,
            90..95 => Status::Degraded,
            95..98 => Status::Unhealthy,
            98 => Status::Unavailable,
            _ => Status::Unknown,
        };
        h.record(point("a", at(start + i * 30), status, latency));
    }
    // One check in the next hour, which the 1 h bucket must not see.
    h.record(point("a", at(start + HOUR), Status::Healthy, 500));
    h.flush().unwrap();
    let want = StatusCounts {
        healthy: 90,
        degraded: 5,
        unhealthy: 3,
        unavailable: 1,
        unknown: 1,
    };
    // Once from the raw points (hour not rolled up), once from the rollup.
    for rolled_up in [false, true] {
        if rolled_up {
            h.maintain_now_for_test(at(start + 3 * HOUR)).unwrap();
            assert_eq!(count(&h, "hourly WHERE pending = 0"), 2);
        }
        let r = h
            .rollups("a", at(start), at(start + HOUR), Duration::from_secs(HOUR))
            .unwrap();
        assert_eq!(r.len(), 1, "rolled up: {rolled_up}");
        assert_eq!(r[0].start, at(start));
        assert_eq!(r[0].step, Duration::from_secs(HOUR));
        assert_eq!(r[0].counts, want);
        assert_eq!(r[0].counts.passing(), 95);
        assert_eq!(r[0].p50, Some(Duration::from_millis(50)));
        assert_eq!(r[0].p95, Some(Duration::from_millis(95)));
        assert_eq!(r[0].max, Some(Duration::from_millis(100)));
    }
}

#[test]
fn buckets_of_several_hours_merge_counts_and_approximate_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let start = DAY0 + 4 * HOUR; // a multiple of 2 h
    for i in 0..60u64 {
        h.record(point("a", at(start + i * 60), Status::Healthy, 10));
        h.record(point(
            "a",
            at(start + HOUR + i * 60),
            Status::Unhealthy,
            200,
        ));
    }
    h.flush().unwrap();
    h.maintain_now_for_test(at(start + 3 * HOUR)).unwrap();
    let two = Duration::from_secs(2 * HOUR);
    // `since` inside the bucket is rounded down to its start.
    let r = h
        .rollups("a", at(start + 600), at(start + 2 * HOUR), two)
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].start, at(start));
    assert_eq!(r[0].counts.healthy, 60);
    assert_eq!(r[0].counts.unhealthy, 60);
    let p50 = r[0].p50.unwrap().as_micros() as i64;
    let p95 = r[0].p95.unwrap().as_micros() as i64;
    // Nearest rank: p50 is the 60th of 120 (10 ms), p95 the 114th (200 ms).
    assert!((p50 - 10_000).abs() * 16 <= 10_000, "p50 {p50}");
    assert!((p95 - 200_000).abs() * 16 <= 200_000, "p95 {p95}");
    assert_eq!(r[0].max, Some(Duration::from_millis(200)));
    // Empty buckets are left out; 1 h buckets of the same range are two.
    let hourly = h
        .rollups(
            "a",
            at(start - 10 * HOUR),
            at(start + 10 * HOUR),
            Duration::from_secs(HOUR),
        )
        .unwrap();
    assert_eq!(hourly.len(), 2);
    assert_eq!(hourly[1].start, at(start + HOUR));
    assert_eq!(hourly[1].p50, Some(Duration::from_millis(200)));
}

#[test]
fn a_step_that_is_not_whole_hours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    for step in [
        Duration::ZERO,
        Duration::from_secs(1800),
        Duration::from_secs(5400),
    ] {
        let e = h.rollups("a", at(DAY0), at(DAY0 + DAY), step).unwrap_err();
        assert!(matches!(e, HistoryError::BadRange(_)), "{step:?}: {e}");
    }
    let e = h.points("a", at(DAY0 + 1), at(DAY0), 10).unwrap_err();
    assert!(matches!(e, HistoryError::BadRange(_)));
    assert!(
        h.rollups(
            "nobody",
            at(DAY0),
            at(DAY0 + DAY),
            Duration::from_secs(HOUR)
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn uptime_windows_end_at_whole_utc_hours_and_days() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    // now: day 40, 10:30 UTC.
    let today = DAY0 + 40 * DAY;
    let now = today + 10 * HOUR + 1800;
    let day_start = today + 10 * HOUR - 23 * HOUR; // the oldest hour of `day`
    let week_start = today - 6 * DAY;
    let month_start = today - 29 * DAY;
    let pass = |h: &History, s: u64| h.record(point("a", at(s), Status::Healthy, 1));
    let fail = |h: &History, s: u64| h.record(point("a", at(s), Status::Unhealthy, 1));
    fail(&h, month_start - 1); // before every window
    pass(&h, month_start); // month only
    fail(&h, week_start - 1); // month only
    pass(&h, week_start); // week and month
    fail(&h, day_start - 1); // week and month
    pass(&h, day_start); // all three
    h.record(point("a", at(now), Status::Degraded, 1)); // all three, passing
    fail(&h, today + DAY); // tomorrow: in no window yet
    h.flush().unwrap();
    let u = h.uptime("a", at(now)).unwrap();
    assert_eq!(u.day, Some(100.0));
    assert_eq!(u.week, Some(75.0)); // 3 of 4
    assert_eq!(u.month, Some(400.0 / 6.0));
    assert_eq!(
        u.status,
        Some(Status::Unhealthy),
        "the last reported status"
    );
    assert_eq!(u.since, Some(at(today + DAY)));
    // Six days on, `week` holds only today's and tomorrow's checks.
    let later = h.uptime("a", at(today + 6 * DAY + 1)).unwrap();
    assert_eq!(later.day, None);
    assert_eq!(later.week, Some(50.0), "today's pass and tomorrow's fail");
    let nobody = h.uptime("nobody", at(now)).unwrap();
    assert_eq!(
        (nobody.day, nobody.status, nobody.since),
        (None, None, None)
    );
}

#[test]
fn tallies_are_the_counts_behind_uptime_and_the_daily_bar() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let today = DAY0 + 40 * DAY;
    let now = today + 10 * HOUR;
    h.record(point("a", at(today - 20 * DAY), Status::Unhealthy, 1));
    h.record(point("a", at(today - 2 * DAY), Status::Healthy, 1));
    h.record(point("a", at(today - 2 * DAY + 1), Status::Unhealthy, 1));
    h.record(point("a", at(now - 1), Status::Healthy, 1));
    h.flush().unwrap();
    let t = h.tallies("a", 30, at(now)).unwrap();
    assert_eq!((t.day.passing, t.day.total), (1, 1));
    assert_eq!((t.week.passing, t.week.total), (2, 3));
    assert_eq!((t.month.passing, t.month.total), (2, 4));
    let uptime = h.uptime("a", at(now)).unwrap();
    assert_eq!(
        (t.uptime().day, t.uptime().week, t.uptime().month),
        (uptime.day, uptime.week, uptime.month)
    );
    assert_eq!(t.daily(), h.daily("a", 30, at(now)).unwrap());
    let all = h.tallies_all(30, at(now)).unwrap();
    assert_eq!(all.get("a"), Some(&t));
    assert_eq!(all.len(), 1);
    let nobody = h.tallies("nobody", 30, at(now)).unwrap();
    assert_eq!((nobody.daily.len(), nobody.day.total), (30, 0));
    assert!(matches!(
        h.tallies("a", 93, at(now)),
        Err(HistoryError::BadRange(_))
    ));
}

#[test]
fn daily_bars_are_utc_days_with_none_for_days_without_checks() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let today = DAY0 + 10 * DAY;
    // The last millisecond of day -2 and the first of day -1.
    h.record(point(
        "a",
        at_ms((today - DAY) * 1000 - 1),
        Status::Unhealthy,
        1,
    ));
    h.record(point("a", at_ms((today - DAY) * 1000), Status::Healthy, 1));
    h.record(point("a", at(today - 4 * DAY + 5), Status::Healthy, 1));
    h.record(point("a", at(today - 4 * DAY + 6), Status::Unknown, 1));
    h.record(point("a", at(today + 7), Status::Healthy, 1));
    h.record(point("b", at(today + 8), Status::Unavailable, 1));
    h.flush().unwrap();
    let now = at(today + 12 * HOUR);
    let bar = h.daily("a", 5, now).unwrap();
    assert_eq!(
        bar,
        vec![Some(50.0), None, Some(0.0), Some(100.0), Some(100.0)]
    );
    // A bar longer than the summary holds is read from the file: same days.
    let long = h.daily("a", 200, now).unwrap();
    assert_eq!(long.len(), 200);
    assert_eq!(long[195..], bar[..]);
    assert!(long[..195].iter().all(Option::is_none));
    let all = h.daily_all(3, now).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["a"], vec![Some(0.0), Some(100.0), Some(100.0)]);
    assert_eq!(all["b"], vec![None, None, Some(0.0)]);
    assert_eq!(h.daily_all(200, now).unwrap()["b"][199], Some(0.0));
    assert_eq!(h.daily("nobody", 2, now).unwrap(), vec![None, None]);
    assert!(matches!(
        h.daily("a", 100_000, now),
        Err(HistoryError::BadRange(_))
    ));
}

#[test]
fn incidents_are_changes_of_the_reported_status_only() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let mut p = point("a", at(DAY0), Status::Healthy, 1);
    p.message = Some("all good".into());
    h.record(p); // first check: not an incident
    // The raw status flaps; flap control keeps reporting healthy.
    let mut flap = point("a", at(DAY0 + 10), Status::Unhealthy, 1);
    flap.reported = Status::Healthy;
    flap.message = Some("timeout".into());
    h.record(flap);
    // Reported turns unhealthy with the same message: no new message.
    let mut down = point("a", at(DAY0 + 20), Status::Unhealthy, 1);
    down.reported = Status::Unhealthy;
    h.record(down);
    h.record(point("a", at(DAY0 + 30), Status::Unhealthy, 1));
    let mut up = point("a", at(DAY0 + 40), Status::Healthy, 1);
    up.message = Some("back".into());
    h.record(up);
    h.record(point("b", at(DAY0 + 5), Status::Degraded, 1));
    let mut b_down = point("b", at(DAY0 + 25), Status::Unavailable, 1);
    b_down.message = Some("gone".into());
    h.record(b_down);
    h.flush().unwrap();
    let all = h.incidents(at(DAY0), 100).unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|i| {
            (
                i.connector.as_str(),
                i.previous,
                i.status,
                i.message.as_str(),
                i.at,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "a",
                Status::Unhealthy,
                Status::Healthy,
                "back",
                at(DAY0 + 40)
            ),
            (
                "b",
                Status::Degraded,
                Status::Unavailable,
                "gone",
                at(DAY0 + 25)
            ),
            (
                "a",
                Status::Healthy,
                Status::Unhealthy,
                "timeout",
                at(DAY0 + 20)
            ),
        ]
    );
    assert_eq!(h.incidents(at(DAY0 + 21), 100).unwrap().len(), 2);
    assert_eq!(h.incidents(at(DAY0), 1).unwrap()[0].at, at(DAY0 + 40));
    assert_eq!(
        h.uptime("a", at(DAY0 + 50)).unwrap().since,
        Some(at(DAY0 + 40))
    );
    assert_eq!(
        h.uptime("b", at(DAY0 + 50)).unwrap().since,
        Some(at(DAY0 + 25))
    );
}

#[test]
fn a_message_is_stored_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let texts = ["starting", "ok", "ok", "ok", "slow", "ok"];
    for (i, text) in texts.iter().enumerate() {
        for j in 0..10u64 {
            let mut p = point("a", at(DAY0 + i as u64 * 100 + j), Status::Healthy, 1);
            // The runtime sends the message on the first check after a
            // change; sending the same text again must not add a row.
            if j == 0 {
                p.message = Some((*text).to_owned());
            }
            h.record(p);
        }
    }
    h.flush().unwrap();
    assert_eq!(count(&h, "point"), 60);
    assert_eq!(count(&h, "message"), 4, "starting, ok, slow, ok");
    let points = h.points("a", at(DAY0), at(DAY0 + DAY), 1000).unwrap();
    let messages: Vec<&str> = points.iter().map(|p| p.message.as_str()).collect();
    for (i, text) in texts.iter().enumerate() {
        assert!(
            messages[i * 10..i * 10 + 10].iter().all(|m| m == text),
            "{i}: {messages:?}"
        );
    }
    // A window starting after the last change still shows the message in force.
    let later = h.points("a", at(DAY0 + 305), at(DAY0 + DAY), 2).unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].message, "ok");
    assert_eq!(later[0].at, at(DAY0 + 305));
}

#[test]
fn a_long_message_is_cut_at_a_character_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let mut p = point("a", at(DAY0), Status::Healthy, 1);
    p.message = Some("é".repeat(2000)); // 2 bytes each
    h.record(p);
    h.flush().unwrap();
    let got = &h.points("a", at(DAY0), at(DAY0 + 1), 1).unwrap()[0].message;
    assert_eq!(got.len(), MAX_MESSAGE_BYTES);
    assert!(got.chars().all(|c| c == 'é'));
    // A message of the longest kept length stays in its page.
    let overflow = count(
        &h,
        "dbstat WHERE name = 'message' AND pagetype = 'overflow'",
    );
    assert_eq!(overflow, 0);
}

#[test]
fn points_keep_their_fields_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let mut p = point("a", at_ms(DAY0 * 1000 + 5), Status::Unavailable, 0);
    p.reported = Status::Degraded;
    p.latency = Duration::from_micros(1_234_567);
    p.failure = Some("deadline");
    h.record(p);
    let mut trap = point("a", at_ms(DAY0 * 1000 + 9), Status::Unknown, 3);
    trap.failure = Some("trap");
    h.record(trap);
    // Two checks ending in the same millisecond are both kept, in order.
    h.record(point("a", at_ms(DAY0 * 1000 + 9), Status::Healthy, 4));
    h.record(point("other", at_ms(DAY0 * 1000 + 7), Status::Healthy, 4));
    h.flush().unwrap();
    let got = h.points("a", at(DAY0), at(DAY0 + 1), 10).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].at, at_ms(DAY0 * 1000 + 5));
    assert_eq!(
        (got[0].status, got[0].reported),
        (Status::Unavailable, Status::Degraded)
    );
    assert_eq!(got[0].latency, Duration::from_micros(1_234_567));
    assert_eq!(got[0].failure.as_deref(), Some("deadline"));
    assert_eq!(got[1].failure.as_deref(), Some("trap"));
    assert_eq!(got[2].failure, None);
    assert_eq!(got[2].at, at_ms(DAY0 * 1000 + 10));
    assert_eq!(got[2].status, Status::Healthy);
    // `until` is exclusive and `limit` keeps the oldest.
    assert_eq!(
        h.points("a", at(DAY0), at_ms(DAY0 * 1000 + 9), 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.points("a", at(DAY0), at(DAY0 + 1), 2).unwrap()[1].at,
        at_ms(DAY0 * 1000 + 9)
    );
    assert!(
        h.points("nobody", at(DAY0), at(DAY0 + 1), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.stats().written, 4);
}

#[test]
fn uptime_all_covers_many_connectors_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let now = DAY0 + 12 * HOUR;
    for c in 0..2_000u64 {
        let id = format!("c{c}");
        for i in 0..4u64 {
            // Connector c fails c % 5 of its 4 checks (0..=4).
            let status = if i < c % 5 {
                Status::Unhealthy
            } else {
                Status::Healthy
            };
            h.record(point(&id, at(now - 60 * (i + 1)), status, 1));
        }
    }
    h.flush().unwrap();
    let all = h.uptime_all(at(now)).unwrap();
    assert_eq!(all.len(), 2_000);
    for c in [0u64, 1, 2, 3, 4, 1_999] {
        let u = all[&format!("c{c}")];
        let want = (4 - c % 5) as f64 * 25.0;
        assert_eq!(
            (u.day, u.week, u.month),
            (Some(want), Some(want), Some(want)),
            "c{c}"
        );
        assert_eq!(u, h.uptime(&format!("c{c}"), at(now)).unwrap());
    }
    // 93 days later every connector is gone from the answer.
    assert!(h.uptime_all(at(now + 93 * DAY)).unwrap().is_empty());
}
