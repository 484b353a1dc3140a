//! The state folder's files besides the journal: the run lock, the spool of received payloads
//! (mode None, where the server has forgotten a delivery once it has handed it out) and the
//! quarantine of deliveries that failed validation.

use crate::error::{EngineError, Result};
use crate::{fsops, state_access};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "run.lock";
pub const SPOOL_DIR: &str = "spool";
pub const QUARANTINE_DIR: &str = "quarantine";

/// Held for the whole run: one run at a time per state folder. An OS lock, so it is released
/// when the process dies, however it dies.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// `Ok(None)` when another run holds the lock.
    pub fn try_acquire(state_dir: &Path) -> Result<Option<RunLock>> {
        let path = state_dir.join(LOCK_FILE);
        let file = state_access::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::from_io(state_dir, &e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(EngineError::from_io(state_dir, &e)),
        }
    }
}

/// A file name in the state folder for an untrusted delivery id.
fn id_file_name(id: &str, extension: &str) -> String {
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("{}.{extension}", &digest[..32])
}

/// Payloads kept durable in the state folder until they are published.
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn open(state_dir: &Path) -> Result<Spool> {
        let dir = state_dir.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
        Ok(Spool { dir })
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id_file_name(id, "bin"))
    }

    /// Writes and fsyncs one payload. Call `sync` once after a batch to make the names durable.
    pub fn put(&self, id: &str, content: &mut dyn Read) -> Result<()> {
        write_synced(&self.path(id), content).map_err(|e| EngineError::from_io(&self.dir, &e))
    }

    pub fn sync(&self) -> Result<()> {
        fsops::sync_dir(&self.dir).map_err(|e| EngineError::from_io(&self.dir, &e))
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Spool files whose id is not in `keep` (left by a crash between spooling and journaling,
    /// or after publishing). Returns how many were removed.
    pub fn sweep(&self, keep: &[String]) -> usize {
        let keep: std::collections::HashSet<String> =
            keep.iter().map(|id| id_file_name(id, "bin")).collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| !keep.contains(&e.file_name().to_string_lossy().into_owned()))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }
}

/// Writes a quarantined delivery (as received, with the reason) for an administrator to inspect.
pub fn quarantine(state_dir: &Path, id: &str, document: &serde_json::Value) -> Result<PathBuf> {
    let dir = state_dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
    let path = dir.join(id_file_name(id, "json"));
    let bytes = serde_json::to_vec_pretty(document).expect("JSON value serialises");
    write_synced(&path, &mut bytes.as_slice()).map_err(|e| EngineError::from_io(&dir, &e))?;
    fsops::sync_dir(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
    Ok(path)
}

pub fn remove_quarantined(state_dir: &Path, id: &str) {
    let _ = std::fs::remove_file(
        state_dir
            .join(QUARANTINE_DIR)
            .join(id_file_name(id, "json")),
    );
}

/// Our own folder, our own names: write beside, fsync, rename over.
fn write_synced(path: &Path, content: &mut dyn Read) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = state_access::create_private(&temp)?;
    std::io::copy(content, &mut file)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::try_acquire(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(RunLock::try_acquire(dir.path()).unwrap().is_none());
        drop(first);
        assert!(RunLock::try_acquire(dir.path()).unwrap().is_some());
    }

    #[test]
    fn spool_round_trips_and_sweeps_what_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.put("../a", &mut &b"one"[..]).unwrap();
        spool.put("b", &mut &b"two"[..]).unwrap();
        spool.sync().unwrap();
        assert_eq!(std::fs::read(spool.path("../a")).unwrap(), b"one");
        assert!(spool.path("../a").starts_with(dir.path().join(SPOOL_DIR)));
        assert_eq!(spool.sweep(&["b".to_owned()]), 1);
        assert!(!spool.path("../a").exists());
        assert!(spool.path("b").exists());
    }

    #[test]
    fn quarantine_keeps_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = quarantine(dir.path(), "x", &serde_json::json!({"reason": "bad"})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("bad"));
        remove_quarantined(dir.path(), "x");
        assert!(!path.exists());
    }
}
