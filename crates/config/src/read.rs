//! Reading a file someone else named (the operator's config, an entry, a
//! component, the state file) without trusting it: only a regular file,
//! and no more than a cap, so that `/dev/zero`, a FIFO or a huge file
//! cannot take the process's memory or hang the caller.

use std::io::Read;
use std::path::Path;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is not a regular file (a directory, device, FIFO or socket)")]
    NotAFile,
    #[error("it is larger than the {} allowed", crate::format_size(*.0))]
    TooLarge(u64),
    #[error("it is not UTF-8 text (bad byte at offset {0})")]
    NotUtf8(usize),
}

/// The whole of the regular file at `path`, if it holds at most `max`
/// bytes. Opened without blocking, so a FIFO is refused rather than
/// waited on.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(ReadError::TooLarge(max));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // A file that grows while it is read is cut at the cap plus one byte,
    // which is then refused.
    #[allow(clippy::disallowed_methods, reason = "bounded by take()")]
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(max));
    }
    Ok(bytes)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_bounded_text(path: &Path, max: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, max)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// The file and its length, if it is a regular file.
fn open_regular(path: &Path) -> Result<(std::fs::File, u64), ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO with no writer would otherwise block.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(ReadError::NotAFile);
    }
    Ok((file, metadata.len()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sandport-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir.join(name)
    }

    #[test]
    fn a_file_within_the_cap_is_read_whole() {
        let path = scratch("small");
        std::fs::write(&path, b"0123456789").expect("written");
        assert_eq!(read_bounded(&path, 10).expect("read"), b"0123456789");
        assert_eq!(read_bounded_text(&path, 10).expect("read"), "0123456789");
    }

    #[test]
    fn a_file_past_the_cap_is_refused_with_the_cap_named() {
        let path = scratch("large");
        std::fs::write(&path, [0u8; 11]).expect("written");
        let error = read_bounded(&path, 10).expect_err("refused");
        assert!(matches!(error, ReadError::TooLarge(10)), "{error:?}");
        assert_eq!(error.to_string(), "it is larger than the 10 B allowed");
    }

    #[test]
    fn devices_and_directories_are_refused_without_reading() {
        // /dev/zero would never end; a directory has no bytes to read.
        for path in ["/dev/zero", "/dev/urandom", "/"] {
            let path = Path::new(path);
            if path.exists() {
                let error = read_bounded(path, 1 << 20).expect_err("refused");
                assert!(matches!(error, ReadError::NotAFile), "{path:?}: {error:?}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let path = scratch("fifo");
        let _ = std::fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            // mkfifo is part of coreutils; without it there is nothing to test.
            return;
        }
        let (done, result) = std::sync::mpsc::channel();
        let reader = path.clone();
        std::thread::spawn(move || {
            let _ = done.send(read_bounded(&reader, 1 << 20).map(|_| ()));
        });
        let outcome = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the read of a FIFO returned instead of blocking");
        assert!(matches!(outcome, Err(ReadError::NotAFile)), "{outcome:?}");
    }

    #[test]
    fn text_that_is_not_utf8_says_so() {
        let path = scratch("binary");
        std::fs::write(&path, [0xff, 0xfe]).expect("written");
        let error = read_bounded_text(&path, 10).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "it is not UTF-8 text (bad byte at offset 0)"
        );
    }
}
