//! The state folder's files besides the journal and the page spool (`spool`): the run lock and
//! the quarantine of deliveries that failed validation.

use crate::error::{EngineError, Result};
use crate::page_body::Content;
use crate::{fsops, state_access};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
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

/// Writes a quarantined delivery (as received, with the reason) for an administrator to inspect:
/// `document` with the delivery's `content` (base64, as the server sent it) as its last member,
/// copied in pieces, so a large delivery is never held whole.
pub fn quarantine(
    state_dir: &Path,
    id: &str,
    document: &serde_json::Value,
    content: &Content<'_>,
) -> Result<PathBuf> {
    let dir = state_dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
    let path = dir.join(id_file_name(id, "json"));
    let mut head = serde_json::to_vec_pretty(document).expect("JSON value serialises");
    // An object's closing brace, taken off so the content can follow the other members.
    assert_eq!(head.pop(), Some(b'}'), "a quarantine document is an object");
    let empty = head.trim_ascii_end() == b"{";
    head.truncate(head.trim_ascii_end().len());
    head.extend_from_slice(if empty { b"\n" } else { b",\n" });
    head.extend_from_slice(b"  \"content\": \"");
    write_synced_with(&path, &mut |out| {
        out.write_all(&head)?;
        content.encoded(&mut |piece| write_json_escaped(out, piece))?;
        out.write_all(b"\"\n}")
    })
    .map_err(|e| EngineError::from_io(&dir, &e))?;
    fsops::sync_dir(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
    Ok(path)
}

/// The inside of a JSON string for UTF-8 text given in pieces (a piece may end inside a
/// character: bytes of 0x80 and above are copied as they are).
fn write_json_escaped(out: &mut dyn Write, text: &[u8]) -> std::io::Result<()> {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.write_all(&text[start..i])?;
            match b {
                b'"' => out.write_all(b"\\\"")?,
                b'\\' => out.write_all(b"\\\\")?,
                _ => write!(out, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
    }
    out.write_all(&text[start..])
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
    write_synced_with(path, &mut |out| std::io::copy(content, out).map(drop))
}

/// `write_synced` for content that `write` writes.
fn write_synced_with(
    path: &Path,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::new(state_access::create_private(&temp)?);
    write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
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
    fn quarantine_keeps_the_document_with_its_content_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let content = Content::Inline("not \"base64\" \\ \u{1}ø".into());
        let path = quarantine(
            dir.path(),
            "x",
            &serde_json::json!({"reason": "bad", "id": "x"}),
            &content,
        )
        .unwrap();
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(kept["reason"], "bad");
        assert_eq!(kept["content"], "not \"base64\" \\ \u{1}ø");
        let empty = quarantine(dir.path(), "y", &serde_json::json!({}), &content).unwrap();
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&empty).unwrap()).unwrap();
        assert_eq!(kept.as_object().unwrap().len(), 1);
        remove_quarantined(dir.path(), "x");
        assert!(!path.exists());
    }
}
