//! The state folder's files besides the journal and the page spool (`spool`): the run lock and
//! the quarantine of deliveries that failed validation.

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

impl RunLock {
    /// Waits up to `patience` for a run to release the lock; `StateFolderBusy` after that.
    pub fn wait(state_dir: &Path, patience: std::time::Duration) -> Result<RunLock> {
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = RunLock::try_acquire(state_dir)? {
                return Ok(lock);
            }
            if started.elapsed() >= patience {
                return Err(EngineError::StateFolderBusy {
                    path: state_dir.to_path_buf(),
                    seconds: patience.as_secs(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// A file name in the state folder for an untrusted delivery id.
fn id_file_name(id: &str, extension: &str) -> String {
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("{}.{extension}", &digest[..32])
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
pub(crate) fn write_synced(path: &Path, content: &mut dyn Read) -> std::io::Result<()> {
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
    fn waiting_for_the_lock_gives_up_with_state_folder_busy() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::try_acquire(dir.path()).unwrap().unwrap();
        let err = RunLock::wait(dir.path(), std::time::Duration::from_millis(300))
            .err()
            .unwrap();
        assert_eq!(err.error_id(), "StateFolderBusy");
        drop(held);
        assert!(RunLock::wait(dir.path(), std::time::Duration::from_millis(300)).is_ok());
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
