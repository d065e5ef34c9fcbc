//! What can go wrong, each error naming the file and what to do about it.

use std::path::PathBuf;

/// An error of the history store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file is not a history database this build can use. It is left
    /// exactly as it was.
    #[error(
        "the check history file {path} cannot be used: {reason}; move it aside (for example \
         rename it to {path}.damaged) and start again, and an empty history is created in its \
         place (the file is never deleted or replaced)",
        path = path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    /// The file or its directory could not be created, opened or read.
    #[error(
        "cannot use {path} for the check history: {source}; check that it is a file (or not \
         there yet), that its directory exists, and that the service may read and write both",
        path = path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed on the file.
    #[error("the check history file {path}: {source}", path = path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The disk holding the file is full (SQLITE_FULL). Checks are kept in
    /// memory (within the queue bound) and written once space is back.
    #[error(
        "the disk holding the check history file {path} is full; free space there: the history \
         resumes writing by itself",
        path = path.display()
    )]
    Full { path: PathBuf },
    /// Writing a batch failed for another reason; it is retried.
    #[error(
        "writing the check history file {path} failed: {reason}; it is retried with backoff",
        path = path.display()
    )]
    Write { path: PathBuf, reason: String },
    /// A query's arguments do not make sense; the message says which.
    #[error("{0}")]
    BadRange(String),
    /// The history was closed; nothing more is written.
    #[error("the check history is closed")]
    Closed,
}

impl HistoryError {
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> HistoryError {
        if is_full(&source) {
            return HistoryError::Full {
                path: path.to_path_buf(),
            };
        }
        HistoryError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

/// Whether SQLite said the file is not a database or is corrupt.
pub(crate) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}
