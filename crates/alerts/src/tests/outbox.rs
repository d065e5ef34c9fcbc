//! The outbox file: what it keeps across a reopen, and what it does with a
//! file that is not a sound outbox.

use super::*;
use crate::AlertsError;
use crate::message::{Kind, Message};
use crate::outbox::{Incident, Outbox};

fn message(alert_id: &str) -> Message {
    let mut event = transition("pg", "healthy", "unhealthy");
    event.since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_077_600);
    Message {
        alert_id: alert_id.into(),
        incident_id: "inc-1".into(),
        kind: Kind::Firing,
        route: "all".into(),
        provider: "hook".into(),
        event,
    }
}

#[test]
fn messages_and_incidents_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let now = SystemTime::now();
    let incident = Incident {
        route: "all".into(),
        connector: "pg".into(),
        incident_id: "inc-1".into(),
        opened_at: now,
        last_sent: now,
        event: transition("pg", "healthy", "unhealthy"),
    };
    {
        let outbox = Outbox::open(&path).unwrap();
        outbox
            .save_incident(&incident, &[message("a"), message("b")], now)
            .unwrap();
        outbox
            .save_incident(&incident, &[message("c")], now)
            .unwrap();
        outbox.delete_message("b").unwrap();
        outbox.close_incident("all", "other", &[], now).unwrap();
    }
    let outbox = Outbox::open(&path).unwrap();
    let pending: Vec<String> = outbox
        .pending()
        .unwrap()
        .into_iter()
        .map(|s| s.message.alert_id)
        .collect();
    assert_eq!(pending, ["a", "c"]);
    assert_eq!(outbox.pending().unwrap()[0].message, message("a"));
    let incidents = outbox.incidents().unwrap();
    assert_eq!(incidents.len(), 1);
    let loaded = &incidents[0];
    assert_eq!(loaded.incident_id, "inc-1");
    assert_eq!(loaded.event, incident.event_rounded());
    outbox.close_incident("all", "pg", &[], now).unwrap();
    assert!(outbox.incidents().unwrap().is_empty());
}

impl Incident {
    /// The event as stored: times to the millisecond.
    fn event_rounded(&self) -> Transition {
        let mut event = self.event.clone();
        event.since = crate::message::from_millis(crate::message::to_millis(event.since));
        event
    }
}

#[test]
fn a_file_that_is_not_an_outbox_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let garbage = b"this is not a database, but someone's notes\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let err = Outbox::open(&path).err().expect("refused");
    assert!(matches!(err, AlertsError::Damaged { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("move it aside"), "{text}");
    #[allow(clippy::disallowed_methods, reason = "a test's own small file")]
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after, garbage);
}

#[tokio::test]
async fn start_on_a_damaged_outbox_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    std::fs::write(&path, [0xffu8; 8192]).unwrap();
    let rx: Arc<dyn Transport> = Recorder::new();
    let err = Alerts::start(config(), &path, rx).expect_err("refused");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_outbox_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Outbox::open(&path).err().expect("refused");
    assert!(
        matches!(err, AlertsError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/outbox.db");
    let err = Outbox::open(&path).err().expect("refused");
    assert!(matches!(err, AlertsError::Outbox { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}
