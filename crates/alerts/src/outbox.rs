//! The outbox: one SQLite file (WAL) holding the messages not delivered yet
//! and the incidents open now, so that a restart redelivers the one and
//! resolves the other.
//!
//! Each change is one transaction: an incident opens together with its
//! firing messages, closes together with its resolved ones. A file that is
//! not a database, or fails SQLite's check, is reported with its path and
//! left as it is: it may hold alerts an operator wants to read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use crate::AlertsError;
use crate::Transition;
use crate::message::{Message, event_from_value, event_to_json, from_millis, to_millis};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   TEXT NOT NULL UNIQUE,
    provider   TEXT NOT NULL,
    queued_at  INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    route       TEXT NOT NULL,
    connector   TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    opened_at   INTEGER NOT NULL,
    last_sent   INTEGER NOT NULL,
    event       TEXT NOT NULL,
    PRIMARY KEY (route, connector)
);
";

/// A message read back from the outbox.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub message: Message,
    pub queued_at: SystemTime,
}

/// An open incident: one connector failing, as one route sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incident {
    pub route: String,
    pub connector: String,
    pub incident_id: String,
    pub opened_at: SystemTime,
    /// When the firing or the last reminder was queued.
    pub last_sent: SystemTime,
    /// The latest failing transition, which reminders repeat.
    pub event: Transition,
}

#[derive(Clone)]
pub(crate) struct Outbox {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

type Result<T> = std::result::Result<T, rusqlite::Error>;

impl Outbox {
    /// `source` as the error of the outbox at `path`: damaged, or not
    /// usable for another reason (permissions, a missing directory, ...).
    pub(crate) fn error(path: &Path, source: rusqlite::Error) -> AlertsError {
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => AlertsError::Damaged {
                path: path.to_path_buf(),
                reason: source.to_string(),
            },
            _ => AlertsError::Outbox {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    pub(crate) fn open(path: &Path) -> std::result::Result<Outbox, AlertsError> {
        let fail = |source| Outbox::error(path, source);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(fail)?;
        if check != "ok" {
            return Err(AlertsError::Damaged {
                path: path.to_path_buf(),
                reason: check,
            });
        }
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(AlertsError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        // WAL: a send's delete does not wait on a reader; FULL: a queued
        // message survives a power cut, which is what the outbox is for.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        Ok(Outbox {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done
        // transaction (SQLite rolls it back), so the connection is fine.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything pending, oldest first. A row that cannot be read (from a
    /// damaged or hand-edited file) is skipped and named in the log.
    pub(crate) fn pending(&self) -> Result<Vec<Stored>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT alert_id, queued_at, body FROM messages ORDER BY seq")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (alert_id, queued_at, body) = row?;
            match Message::from_json(&body) {
                Ok(message) => out.push(Stored {
                    message,
                    queued_at: from_millis(queued_at),
                }),
                Err(reason) => tracing::error!(
                    outbox = %self.path.display(),
                    alert_id,
                    "skipping an unreadable message in the alert outbox: {reason}"
                ),
            }
        }
        Ok(out)
    }

    pub(crate) fn incidents(&self) -> Result<Vec<Incident>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT route, connector, incident_id, opened_at, last_sent, event FROM incidents",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (route, connector, incident_id, opened_at, last_sent, event) = row?;
            let event = serde_json::from_str(&event)
                .map_err(|e| e.to_string())
                .and_then(|value| event_from_value(&value));
            match event {
                Ok(event) => out.push(Incident {
                    route,
                    connector,
                    incident_id,
                    opened_at: from_millis(opened_at),
                    last_sent: from_millis(last_sent),
                    event,
                }),
                Err(reason) => tracing::error!(
                    outbox = %self.path.display(),
                    route,
                    connector,
                    "skipping an unreadable incident in the alert outbox: {reason}"
                ),
            }
        }
        Ok(out)
    }

    /// Saves `incident` (new, or with a new event or reminder time) and
    /// queues `messages`, at once.
    pub(crate) fn save_incident(
        &self,
        incident: &Incident,
        messages: &[Message],
        now: SystemTime,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO incidents (route, connector, incident_id, opened_at, last_sent, event)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                incident.route,
                incident.connector,
                incident.incident_id,
                to_millis(incident.opened_at),
                to_millis(incident.last_sent),
                event_to_json(&incident.event).to_string(),
            ],
        )?;
        insert_messages(&tx, messages, now)?;
        tx.commit()
    }

    /// Forgets the incident of `route` and `connector` and queues
    /// `messages`, at once.
    pub(crate) fn close_incident(
        &self,
        route: &str,
        connector: &str,
        messages: &[Message],
        now: SystemTime,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM incidents WHERE route = ?1 AND connector = ?2",
            params![route, connector],
        )?;
        insert_messages(&tx, messages, now)?;
        tx.commit()
    }

    pub(crate) fn delete_message(&self, alert_id: &str) -> Result<()> {
        self.lock()
            .execute(
                "DELETE FROM messages WHERE alert_id = ?1",
                params![alert_id],
            )
            .map(drop)
    }
}

fn insert_messages(
    tx: &rusqlite::Transaction<'_>,
    messages: &[Message],
    now: SystemTime,
) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT OR IGNORE INTO messages (alert_id, provider, queued_at, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for message in messages {
        stmt.execute(params![
            message.alert_id,
            message.provider,
            to_millis(now),
            message.to_json()
        ])?;
    }
    Ok(())
}
