//! Noticing that the files the API reads at start (tokens, certificate,
//! key) changed, by polling their modification time and size.
//!
//! Polling rather than inotify: it sees a file replaced by rename, a
//! symlink swapped by a secret mounter (metadata follows the link), and a
//! file on a network filesystem alike, and costs a `stat` per file per
//! second.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// What is compared to decide that a file changed; `None` from
/// [`FileStamp::of`] when it cannot be read (a change too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// Something that re-reads its files when they changed, and logs (rather
/// than fails) when the new files are bad.
pub trait Reload: Send + Sync {
    fn reload_if_changed(&self);
}

/// Looks at `watched` every [`RELOAD_INTERVAL`] until dropped.
pub async fn watch(watched: Vec<std::sync::Arc<dyn Reload>>) {
    if watched.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for item in &watched {
            item.reload_if_changed();
        }
    }
}
