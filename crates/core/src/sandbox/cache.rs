//! Compiled components kept on disk, so that a big guest (a Python or
//! JavaScript component takes seconds to compile) starts in milliseconds
//! the next time.
//!
//! An entry is keyed by the SHA-256 of the component's bytes and a hash of
//! everything that makes compiled code compatible (wasmtime's version and
//! the engine's configuration). It holds the SHA-256 of the compiled
//! artifact in front of it, checked before the artifact is loaded, so a
//! truncated or damaged file is recompiled rather than run. Writes go to a
//! temporary file that is renamed into place. The directory is kept under
//! a total size: past it, the entries used longest ago are deleted.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The largest compiled component the cache reads back: a component
/// compiles to a few times its size, and component files are capped at
/// 64 MiB by default.
const MAX_ENTRY_SIZE: u64 = 1 << 30;

/// The most the cache directory holds: old entries (of components no
/// longer used, or of an older wasmtime) would otherwise pile up forever.
const MAX_TOTAL_SIZE: u64 = 4 << 30;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    max_total: u64,
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            max_total: MAX_TOTAL_SIZE,
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `digest`, if a sound entry exists.
    /// An entry larger than [`MAX_ENTRY_SIZE`] is not read.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = sandport_config::read_bounded(&path, MAX_ENTRY_SIZE).ok()?;
        let loaded = (bytes.len() > 32)
            .then(|| bytes.split_at(32))
            .filter(|(sum, artifact)| Sha256::digest(artifact).as_slice() == *sum)
            .and_then(|(_, artifact)| deserialize(engine, artifact));
        if loaded.is_none() {
            tracing::warn!(path = %path.display(), "discarding a damaged or incompatible compiled component");
            let _ = std::fs::remove_file(&path);
        } else if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            // Used now: the last entry to go when the cache is pruned.
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        loaded
    }

    /// Keeps `component` for the next start; failures only cost that.
    pub fn store(&self, digest: &str, component: &Component) {
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|artifact| write(&self.dir, &self.path(digest), &artifact));
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), "cannot cache a compiled component: {e}");
        }
        self.prune();
    }

    /// Deletes the entries used longest ago until the directory holds at
    /// most `max_total` bytes of them.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut found: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let metadata = e.metadata().ok()?;
                Some((metadata.modified().ok()?, metadata.len(), e.path()))
            })
            .collect();
        let mut total: u64 = found.iter().map(|(_, len, _)| len).sum();
        found.sort();
        for (_, len, path) in found {
            if total <= self.max_total {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::info!(path = %path.display(), "pruned the compiled-component cache");
                total = total.saturating_sub(len);
            }
        }
    }
}

/// Loads compiled code written by [`ArtifactCache::store`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> Option<Component> {
    // SAFETY: `Component::deserialize` runs the machine code it is given, so
    // it must come from wasmtime's own serializer. The artifact was written
    // by `store` into a directory of this process's owner (0700), and its
    // SHA-256, written with it, was just checked; wasmtime itself refuses
    // artifacts of another version or engine configuration.
    unsafe { Component::deserialize(engine, artifact) }.ok()
}

fn write(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&Sha256::digest(artifact))?;
    file.write_all(artifact)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_under_its_size_by_deleting_the_entries_used_longest_ago() {
        let dir = tempfile::tempdir().expect("a dir");
        let engine = Engine::default();
        let mut cache = ArtifactCache::new(dir.path().to_path_buf(), &engine);
        let bytes = wat::parse_str("(component)").expect("component text");
        let component = Component::new(&engine, bytes).expect("compiles");
        cache.store("a", &component);
        let one = std::fs::metadata(cache.path("a")).expect("stored").len();
        cache.max_total = one * 2;
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let age = |name: &str, when| {
            let file = std::fs::File::options()
                .append(true)
                .open(cache.path(name))
                .expect("an entry");
            file.set_modified(when).expect("set the time");
        };
        age("a", old);
        cache.store("b", &component);
        age("b", old + std::time::Duration::from_secs(1));
        // Using `a` makes `b` the oldest.
        assert!(cache.load(&engine, "a").is_some());
        cache.store("c", &component);
        assert!(cache.path("a").exists(), "used last, kept");
        assert!(!cache.path("b").exists(), "used longest ago, deleted");
        assert!(cache.path("c").exists(), "just written, kept");
    }
}
