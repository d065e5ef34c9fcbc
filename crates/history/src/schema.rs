//! Opening the file: telling a damaged or foreign file from a usable one
//! before anything is written to it, creating the schema, and the
//! connection settings of the writer and the readers.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{HistoryError, is_damage};

/// The schema this build writes (`PRAGMA user_version`). A file with a
/// higher number was written by a newer build and is refused, not guessed at.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id`: "SPHS", so a history file is recognisable and a
/// foreign SQLite database is not mistaken for one.
pub(crate) const APPLICATION_ID: i64 = 0x5350_4853;

const DDL: &str = include_str!("schema.sql");

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The largest file whose integrity SQLite checks in full at open (about
/// half a second of reading).
const FULL_CHECK_MAX_BYTES: u64 = 64 << 20;

/// How long a connection waits for a lock another one holds; in WAL mode
/// only checkpoints and recovery take one that readers or the writer wait on.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if missing) the file for the writer and brings the
/// schema up to date. Nothing is written to an existing file until it has
/// passed the checks, so a damaged file is left exactly as it was.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, HistoryError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    check_header(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    // SQLite's integrity check reads the whole file: seconds for a small
    // node's history, minutes for a large one's (16 GB at 10,000
    // connectors), and the service waits for this open. A large file gets
    // the cheap checks (header, size, schema); damage past them shows as
    // errors of the queries and writes that meet it, logged with the path.
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size <= FULL_CHECK_MAX_BYTES {
        check_integrity(path, &conn)?;
    } else {
        tracing::info!(
            path = %path.display(),
            bytes = size,
            "the check history is large: its full integrity check is skipped at start"
        );
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    if tables > 0 && app != APPLICATION_ID {
        return Err(damaged(
            path,
            format!(
                "it is a SQLite database but not a Sandport check history (application_id {app:#x})"
            ),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(damaged(
            path,
            format!(
                "it was written by a newer Sandport (history schema {version}; this build reads up \
                 to {SCHEMA_VERSION})"
            ),
        ));
    }
    let settings = "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;";
    conn.execute_batch(settings)
        .map_err(|e| HistoryError::sqlite(path, e))?;
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(|e| HistoryError::sqlite(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(HistoryError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!(
                "the file system does not support SQLite's write-ahead log (journal mode stays {mode}); put the data directory on a local file system"
            )),
        });
    }
    if version == 0 {
        create(path, &conn)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A connection for queries. `query_only` makes sure a bug in a read path
/// can never write; WAL lets it read while the writer commits.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, HistoryError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| HistoryError::sqlite(path, e))?;
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -16384;")
        .map_err(|e| HistoryError::sqlite(path, e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn create(path: &Path, conn: &Connection) -> Result<(), HistoryError> {
    let sql = format!(
        "BEGIN IMMEDIATE;
         {DDL}
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;"
    );
    conn.execute_batch(&sql).map_err(|e| {
        // Leave no half-made schema behind: the next open would take it for
        // a finished one.
        let _ = conn.execute_batch("ROLLBACK");
        HistoryError::sqlite(path, e)
    })
}

/// Reads the first bytes ourselves: SQLite would happily "open" any file
/// and only fail later, and a file we cannot read should be reported as
/// such, naming the path.
fn check_header(path: &Path) -> Result<(), HistoryError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(HistoryError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = [0u8; 100];
    let mut len = 0;
    while len < header.len() {
        match file.read(&mut header[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(HistoryError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    // An empty file is what SQLite itself would make of a new database.
    if len == 0 {
        return Ok(());
    }
    if len < header.len() || &header[..16] != SQLITE_MAGIC {
        return Err(damaged(
            path,
            "it is not a SQLite database (its first bytes are not a SQLite header)".to_owned(),
        ));
    }
    // A file shorter than the pages its header counts was cut off. The
    // count is valid only when the header says so (offsets 24 and 92 agree);
    // a page size of 1 means 65,536.
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    let actual = file.metadata().map_or(0, |m| m.len());
    // With a write-ahead log present, a checkpoint cut short by a power
    // loss is finished by SQLite's recovery: not damage.
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_pending = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if !wal_pending && be32(24) == be32(92) && pages > 0 && actual < pages * page_size {
        return Err(damaged(
            path,
            format!(
                "it is cut short: its header counts {pages} pages of {page_size} bytes, but it holds {actual} bytes"
            ),
        ));
    }
    Ok(())
}

fn check_integrity(path: &Path, conn: &Connection) -> Result<(), HistoryError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| classify(path, e))?;
    let found: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| classify(path, e))?;
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    Err(damaged(
        path,
        format!("SQLite's integrity check failed ({})", found.join("; ")),
    ))
}

fn classify(path: &Path, e: rusqlite::Error) -> HistoryError {
    if is_damage(&e) {
        return damaged(path, format!("SQLite cannot read it ({e})"));
    }
    HistoryError::sqlite(path, e)
}

fn damaged(path: &Path, reason: String) -> HistoryError {
    HistoryError::Damaged {
        path: path.to_path_buf(),
        reason,
    }
}
