//! The page spool (ack mode None). The server forgets a delivery the moment it hands it out, so
//! each page's response body is made durable in `<state>/spool/` exactly as it arrived, before
//! anything is parsed, validated or written anywhere else. A spooled page describes itself (ids,
//! systems, names, sha256, content): recovery processes it again after any crash or failure,
//! and it is removed only once every delivery in it is final in the journal.

use crate::error::{EngineError, Result};
use crate::fsops;
use crate::page_body::{Kept, PageBody};
use crate::state_dir::write_synced;
use std::path::{Path, PathBuf};

use crate::state_dir::SPOOL_DIR;
const PAGE_PREFIX: &str = "page-";
const PAGE_SUFFIX: &str = ".json";
/// A page the server sent that is not a valid page: kept for an administrator, never parsed
/// again (it would fail every run).
const UNREADABLE_SUFFIX: &str = ".unreadable";

pub struct PageSpool {
    dir: PathBuf,
}

/// One durable page in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledPage {
    pub path: PathBuf,
}

impl PageSpool {
    pub fn open(state_dir: &Path) -> Result<PageSpool> {
        let dir = state_dir.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, &e))?;
        Ok(PageSpool { dir })
    }

    /// Makes `body` durable as a new page: written beside (or already in a file beside, when it
    /// was large: `incoming_path`), fsynced, renamed into place and the folder flushed, so after
    /// a crash the page is either complete or not there at all.
    pub fn keep(&self, body: PageBody) -> Result<SpooledPage> {
        // uuid v7 sorts by time: recovery handles pages in the order they arrived.
        let name = format!("{PAGE_PREFIX}{}{PAGE_SUFFIX}", uuid::Uuid::now_v7());
        let path = self.dir.join(name);
        let io = |e: std::io::Error| EngineError::from_io(&self.dir, &e);
        match body.into_kept() {
            Kept::File(incoming) => {
                // Write access: FlushFileBuffers refuses a handle opened for reading (Windows).
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&incoming)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::rename(&incoming, &path))
                    .map_err(io)?;
            }
            Kept::Memory(bytes) => write_synced(&path, &mut &bytes[..]).map_err(io)?,
        }
        fsops::sync_dir(&self.dir).map_err(io)?;
        Ok(SpooledPage { path })
    }

    /// Where a large page goes while it arrives (`keep` renames it; a crash leaves it
    /// unfinished, for `remove_unfinished`).
    pub fn incoming_path(&self) -> PathBuf {
        self.dir.join(format!(
            "{PAGE_PREFIX}{}.incoming.tmp",
            uuid::Uuid::now_v7()
        ))
    }

    /// The pages waiting to be processed, oldest first.
    pub fn pages(&self) -> Result<Vec<SpooledPage>> {
        let mut pages: Vec<SpooledPage> = self
            .entries()?
            .into_iter()
            .filter(|name| is_page(name))
            .map(|name| SpooledPage {
                path: self.dir.join(name),
            })
            .collect();
        pages.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(pages)
    }

    /// Pages set aside as unreadable, for the administrator.
    pub fn unreadable(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|name| name.ends_with(UNREADABLE_SUFFIX))
            .map(|name| self.dir.join(name))
            .collect())
    }

    /// Every delivery in the page is final in the journal: the page has done its job. A removal
    /// lost to a power cut only means the page is read once more and found done.
    pub fn remove(&self, page: &SpooledPage) -> Result<()> {
        match std::fs::remove_file(&page.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::from_io(&self.dir, &e)),
        }
    }

    /// Keeps a page that cannot be parsed where an administrator finds it, out of the way of
    /// later runs. Returns where it now is.
    pub fn set_aside(&self, page: &SpooledPage) -> Result<PathBuf> {
        let mut name = page.path.as_os_str().to_owned();
        name.push(UNREADABLE_SUFFIX);
        let to = PathBuf::from(name);
        let io = |e: std::io::Error| EngineError::from_io(&self.dir, &e);
        std::fs::rename(&page.path, &to).map_err(io)?;
        fsops::sync_dir(&self.dir).map_err(io)?;
        Ok(to)
    }

    /// Half-written pages (a crash before the rename in `keep`): never complete, so never
    /// acknowledged by anything; the server-side loss they stand for is the page in flight.
    pub fn remove_unfinished(&self) -> Result<usize> {
        let mut removed = 0;
        for name in self.entries()? {
            if name.starts_with(PAGE_PREFIX) && name.ends_with(".tmp") {
                match std::fs::remove_file(self.dir.join(&name)) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(EngineError::from_io(&self.dir, &e)),
                }
            }
        }
        Ok(removed)
    }

    fn entries(&self) -> Result<Vec<String>> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| EngineError::from_io(&self.dir, &e))?;
        entries
            .map(|entry| {
                entry
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .map_err(|e| EngineError::from_io(&self.dir, &e))
            })
            .collect()
    }
}

/// How many pages wait in `state_dir`'s spool, without creating anything (status, preview).
pub fn waiting_pages(state_dir: &Path) -> Result<usize> {
    let dir = state_dir.join(SPOOL_DIR);
    match std::fs::read_dir(&dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .filter(|e| is_page(&e.file_name().to_string_lossy()))
            .count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(EngineError::from_io(&dir, &e)),
    }
}

fn is_page(name: &str) -> bool {
    name.starts_with(PAGE_PREFIX) && name.ends_with(PAGE_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &[u8]) -> PageBody {
        PageBody::new(bytes.to_vec(), "test".into())
    }

    #[test]
    fn pages_are_kept_whole_in_arrival_order_and_removed_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let spool = PageSpool::open(dir.path()).unwrap();
        let first = spool.keep(body(br#"{"deliveries":[]}"#)).unwrap();
        let second = spool.keep(body(b"second")).unwrap();
        assert_eq!(spool.pages().unwrap(), vec![first.clone(), second.clone()]);
        assert_eq!(std::fs::read(&first.path).unwrap(), br#"{"deliveries":[]}"#);
        assert_eq!(waiting_pages(dir.path()).unwrap(), 2);
        spool.remove(&first).unwrap();
        spool.remove(&first).unwrap();
        assert_eq!(spool.pages().unwrap(), vec![second]);
    }

    #[test]
    fn an_unreadable_page_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let spool = PageSpool::open(dir.path()).unwrap();
        let page = spool.keep(body(b"{not json")).unwrap();
        let kept = spool.set_aside(&page).unwrap();
        assert!(spool.pages().unwrap().is_empty());
        assert_eq!(spool.unreadable().unwrap(), vec![kept.clone()]);
        assert_eq!(std::fs::read(kept).unwrap(), b"{not json");
    }

    #[test]
    fn only_half_written_pages_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let spool = PageSpool::open(dir.path()).unwrap();
        let page = spool.keep(body(b"whole")).unwrap();
        std::fs::write(dir.path().join("spool/page-x.tmp"), b"half").unwrap();
        assert_eq!(spool.remove_unfinished().unwrap(), 1);
        assert_eq!(spool.pages().unwrap(), vec![page]);
    }

    #[test]
    fn counting_a_missing_spool_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(waiting_pages(&dir.path().join("state")).unwrap(), 0);
        assert!(!dir.path().join("state").exists());
    }
}
