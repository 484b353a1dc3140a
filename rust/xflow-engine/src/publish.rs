//! The publish protocol: a delivered file is never visible under its final name until it is
//! complete and durable, and an existing file is never replaced.
//!
//! 1. `stage`: create `.xflow-<id>-<random>.partial` exclusively in the target folder, write,
//!    fsync, close. A batch's files are staged several at a time (`STAGING_WORKERS`); where one flush
//!    of the file system covers them all (`BatchFlush`), that flush replaces theirs.
//! 2. `commit`: rename it to the final name without replacing; a taken name gets a distinct,
//!    deterministic name instead.
//! 3. `fsops::sync_dir` once per folder after a batch of commits, so a page of deliveries costs
//!    one directory flush.
//!
//! The caller journals before (1) and after (3); recovery uses the temp name to find leftovers.

use crate::crash::failure_point;
use crate::error::{EngineError, Result};
use crate::fsops;
use crate::names;
use crate::page_stream::Sink;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Every temp file we create starts with this and ends with `TEMP_SUFFIX`; nothing else in an
/// import folder is ever touched by recovery.
pub const TEMP_PREFIX: &str = ".xflow-";
pub const TEMP_SUFFIX: &str = ".partial";

/// How long a rename blocked by antivirus or the indexer is retried (Windows).
const TRANSIENT_RENAME_BUDGET: Duration = Duration::from_secs(60);

/// A complete, durable temp file waiting to be renamed into place.
#[derive(Debug)]
pub struct StagedFile {
    pub dir: PathBuf,
    pub temp_path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Where a committed file ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub path: PathBuf,
    pub file_name: String,
}

/// The temp file name for delivery `id` staged by the state folder `owner` (its journal's id):
/// recognisable as ours, hidden, never an import candidate. The owner lets recovery sweep only
/// its own leftovers when several state folders write into one import folder.
pub fn temp_name(owner: &str, id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!(
        "{TEMP_PREFIX}{owner}-{id}-{:016x}{TEMP_SUFFIX}",
        rand::random::<u64>()
    )
}

/// Any state folder's temp file (never reported as a stale import file).
pub fn is_temp_file(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A temp file staged by the state folder `owner`.
pub fn is_temp_file_of(name: &str, owner: &str) -> bool {
    is_temp_file(name)
        && name[TEMP_PREFIX.len()..]
            .strip_prefix(owner)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// When a staged file is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// By its own flush, before `stage_pieces` returns.
    Now,
    /// By its batch's `BatchFlush::finish`, before anything names it.
    ByFileSystem,
}

/// How a batch of staged files is made durable: one flush of each folder's file system where
/// that is known to cover every file written there (`fsops::FileSystemFlush`), else each file
/// by its own flush as it is staged.
#[derive(Debug)]
pub struct BatchFlush {
    folders: Vec<(PathBuf, fsops::FileSystemFlush)>,
}

impl BatchFlush {
    /// Begins before any file of the batch is written, so that `finish` reports every
    /// write-back error since.
    pub fn begin<'a>(folders: impl IntoIterator<Item = &'a Path>) -> BatchFlush {
        let mut folders: Vec<&Path> = folders.into_iter().collect();
        folders.sort();
        folders.dedup();
        BatchFlush {
            folders: folders
                .into_iter()
                .filter_map(|f| {
                    fsops::FileSystemFlush::begin(f).map(|flush| (f.to_path_buf(), flush))
                })
                .collect(),
        }
    }

    /// How a file staged into `folder` is to be made durable.
    pub fn flush_for(&self, folder: &Path) -> Flush {
        if self.folders.iter().any(|(f, _)| f == folder) {
            Flush::ByFileSystem
        } else {
            Flush::Now
        }
    }

    /// Makes the files staged with `Flush::ByFileSystem` durable. On error the caller discards
    /// the batch: a failed flush is never retried.
    pub fn finish(self) -> Result<()> {
        failure_point!("page-flush");
        for (folder, flush) in self.folders {
            flush
                .finish()
                .map_err(|e| EngineError::from_io(&folder, &e))?;
        }
        Ok(())
    }
}

/// Writes `content` to a new temp file in `dir` and makes it durable. A failed flush is never
/// retried on the same file (after a failed fsync the page cache state is unknown): the file is
/// discarded and written once more from the start.
pub fn stage(dir: &Path, owner: &str, id: &str, content: &mut dyn Read) -> Result<StagedFile> {
    stage_pieces(dir, owner, id, 0, Flush::Now, &mut |sink| {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match content.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => sink(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// `stage` for content handed out in pieces (`feed` calls its sink with each), about
/// `size_hint` bytes in all, made durable as `flush` says.
pub fn stage_pieces(
    dir: &Path,
    owner: &str,
    id: &str,
    size_hint: u64,
    flush: Flush,
    feed: &mut dyn FnMut(Sink<'_>) -> io::Result<()>,
) -> Result<StagedFile> {
    let temp_path = dir.join(temp_name(owner, id));
    match write_new(&temp_path, size_hint, flush, feed) {
        Ok((size, sha256)) => Ok(StagedFile {
            dir: dir.to_path_buf(),
            temp_path,
            size,
            sha256,
        }),
        Err(err) => {
            let _ = std::fs::remove_file(&temp_path);
            Err(EngineError::from_io(dir, &err))
        }
    }
}

fn write_new(
    path: &Path,
    size_hint: u64,
    flush: Flush,
    feed: &mut dyn FnMut(Sink<'_>) -> io::Result<()>,
) -> io::Result<(u64, String)> {
    // Pieces (a decoder's output) are merged into writes of up to 256 KiB; a small file gets a
    // buffer its own size, not a quarter of a megabyte to allocate and zero.
    let capacity = size_hint.clamp(4 * 1024, 256 * 1024) as usize;
    let mut out = io::BufWriter::with_capacity(capacity, fsops::create_new(path)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    feed(&mut |piece| {
        out.write_all(piece)?;
        hasher.update(piece);
        size += piece.len() as u64;
        Ok(())
    })?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    if flush == Flush::Now {
        file.sync_all()?;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// How many files of a batch the engine stages at once (`parallel::map_in_order`): one file's
/// decoding overlaps another's writing and, with `Flush::Now`, their flushes overlap (the file
/// system commits concurrent flushes together); each file is still complete and durable before
/// anything names it.
pub const STAGING_WORKERS: usize = 4;

/// Renames a staged file into place under `wanted` (already a safe name), or under a collision
/// name when `wanted` is taken by another file. Does not flush the folder: see `fsops::sync_dir`.
/// A cancellation ends a blocked rename's retries with `Cancelled`; the temp file stays for the
/// next run's recovery.
pub fn commit(staged: &StagedFile, wanted: &str, cancel: &CancellationToken) -> Result<Published> {
    const MAX_ATTEMPTS: u32 = 1000;
    for attempt in 0..MAX_ATTEMPTS {
        let file_name = if attempt == 0 {
            wanted.to_owned()
        } else {
            names::collision_name(wanted, &staged.sha256, attempt)
        };
        let target = staged.dir.join(&file_name);
        match rename_with_retry(staged, &target, cancel) {
            Ok(()) => {
                return Ok(Published {
                    path: target,
                    file_name,
                });
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if cancel.is_cancelled() => return Err(EngineError::Cancelled),
            Err(err) => return Err(EngineError::from_io(&staged.dir, &err)),
        }
    }
    Err(EngineError::PublishFailed {
        path: staged.dir.clone(),
        reason: format!("{MAX_ATTEMPTS} names derived from '{wanted}' are all taken"),
    })
}

/// Removes a staged file that will not be published (validation failed later, cancelled).
pub fn discard(staged: &StagedFile) {
    let _ = std::fs::remove_file(&staged.temp_path);
}

/// Retries renames that antivirus or the indexer blocked, for up to a minute.
fn rename_with_retry(staged: &StagedFile, to: &Path, cancel: &CancellationToken) -> io::Result<()> {
    retry_rename(
        || {
            if rename_blocked_by_fail_point() {
                Err(io::Error::other(RenameBlocked))
            } else {
                fsops::rename_noreplace(&staged.temp_path, to)
            }
        },
        |e| {
            fsops::is_transient_rename_error(e)
                || e.get_ref().is_some_and(|inner| inner.is::<RenameBlocked>())
        },
        staged,
        to,
        TRANSIENT_RENAME_BUDGET,
        cancel,
    )
}

/// With the `failpoints` feature, `rename-blocked` (action `return`) makes every rename fail as
/// antivirus holding the file does on Windows, so a run's retries can be exercised on Linux.
fn rename_blocked_by_fail_point() -> bool {
    fail::fail_point!("rename-blocked", |_| true);
    false
}

#[derive(Debug)]
struct RenameBlocked;

impl std::fmt::Display for RenameBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rename held up by another process (fail point rename-blocked)")
    }
}

impl std::error::Error for RenameBlocked {}

/// The retry policy, apart from the OS calls so that every platform tests it. A blocked rename
/// can still have happened (SMB reports errors for renames that went through), and the importer
/// may take the file at once: so when a retry finds the temp file gone, the rename happened,
/// the rule recovery follows too (only a rename removes our temp file). A cancellation ends the
/// waiting between retries within `CANCEL_POLL`, with the last error.
fn retry_rename(
    mut rename: impl FnMut() -> io::Result<()>,
    is_transient: impl Fn(&io::Error) -> bool,
    staged: &StagedFile,
    to: &Path,
    budget: Duration,
    cancel: &CancellationToken,
) -> io::Result<()> {
    const CANCEL_POLL: Duration = Duration::from_millis(50);
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut blocked_before = false;
    loop {
        match rename() {
            Ok(()) => return Ok(()),
            Err(err) if blocked_before && err.kind() == io::ErrorKind::NotFound => {
                return rename_took_place(staged, to, err);
            }
            Err(err) if is_transient(&err) => {
                if started.elapsed() >= budget {
                    return Err(err);
                }
                blocked_before = true;
                let until = Instant::now() + delay;
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    if cancel.is_cancelled() {
                        return Err(err);
                    }
                    std::thread::sleep(left.min(CANCEL_POLL));
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(err) => return Err(err),
        }
    }
}

/// A retry of a blocked rename found nothing to rename. Published when the folder is there and
/// our temp file is not; the target then holds our bytes, unless the importer has taken it.
fn rename_took_place(staged: &StagedFile, to: &Path, not_found: io::Error) -> io::Result<()> {
    let absent = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    };
    if absent(&staged.dir)? || !absent(&staged.temp_path)? {
        return Err(not_found);
    }
    if absent(to)? {
        return Ok(());
    }
    if std::fs::metadata(to)?.len() == staged.size && sha256_of_file(to)? == staged.sha256 {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "the temp file vanished while its rename to {} was being retried, and that file holds \
         other bytes",
        to.display()
    )))
}

/// The sha256 of a file, streamed.
pub fn sha256_of_file(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hex::encode(hasher.finalize())),
            n => hasher.update(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn stage_then_commit_publishes_byte_identical_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("SD Løn");
        std::fs::create_dir(&folder).unwrap();
        let content = "Medarbejder;Beløb\r\nÆrø;1200,50\r\n".as_bytes();
        let staged = stage(&folder, "test", "id-1", &mut &content[..]).unwrap();
        assert!(is_temp_file_of(
            staged.temp_path.file_name().unwrap().to_str().unwrap(),
            "test"
        ));
        assert_eq!(
            entries(&folder).len(),
            1,
            "only the temp file exists so far"
        );
        let published = commit(&staged, "løn.csv", &CancellationToken::new()).unwrap();
        fsops::sync_dir(&folder).unwrap();
        assert_eq!(published.file_name, "løn.csv");
        assert_eq!(std::fs::read(&published.path).unwrap(), content);
        assert_eq!(entries(&folder), vec!["løn.csv".to_owned()]);
        assert_eq!(staged.sha256, sha256_of_file(&published.path).unwrap());
    }

    #[test]
    fn taken_names_get_deterministic_distinct_names_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), b"someone else's").unwrap();
        let first = stage(dir.path(), "test", "id-1", &mut &b"one"[..]).unwrap();
        let p1 = commit(&first, "a.csv", &CancellationToken::new()).unwrap();
        let second = stage(dir.path(), "test", "id-2", &mut &b"one"[..]).unwrap();
        let p2 = commit(&second, "a.csv", &CancellationToken::new()).unwrap();
        let sha8 = &first.sha256[..8];
        assert_eq!(p1.file_name, format!("a~{sha8}.csv"));
        assert_eq!(p2.file_name, format!("a~{sha8}-2.csv"));
        assert_eq!(
            std::fs::read(dir.path().join("a.csv")).unwrap(),
            b"someone else's"
        );
        assert_eq!(entries(dir.path()).len(), 3);
    }

    #[test]
    fn staging_into_a_missing_folder_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = stage(&missing, "test", "id", &mut &b"x"[..]).unwrap_err();
        assert_eq!(err.error_id(), "FolderNotFound");
        assert!(err.to_string().contains("nope"));
    }

    /// A folder the account cannot write to. As root (CI) directory permissions do not apply,
    /// so the folder is a read-only tmpfs mount instead; as another user, a 0555 folder.
    #[cfg(target_os = "linux")]
    #[test]
    fn staging_into_a_read_only_folder_is_access_denied_and_leaves_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("read-only");
        std::fs::create_dir(&folder).unwrap();
        let mounted = unsafe { libc::geteuid() } == 0;
        if mounted {
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
                .arg(&folder)
                .status()
                .expect("mount runs");
            assert!(
                status.success(),
                "mounting a read-only tmpfs as root failed"
            );
        } else {
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let result = stage(&folder, "test", "id", &mut &b"x"[..]);
        let left = entries(&folder);
        if mounted {
            let _ = std::process::Command::new("umount").arg(&folder).status();
        }
        assert_eq!(result.unwrap_err().error_id(), "AccessDenied");
        assert!(left.is_empty(), "{left:?}");
    }

    /// Hands out at most 3 bytes per read, like a decoder with a small internal buffer.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn content_read_a_few_bytes_at_a_time_is_staged_whole() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut Trickle(&data)).unwrap();
        assert_eq!(std::fs::read(&staged.temp_path).unwrap(), data);
        assert_eq!(staged.size, 1000);
    }

    #[test]
    fn discard_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"x"[..]).unwrap();
        discard(&staged);
        assert!(entries(dir.path()).is_empty());
    }

    /// A sharing violation as Windows reports it (32), whatever this platform calls errno 32.
    fn blocked() -> io::Error {
        io::Error::from_raw_os_error(32)
    }
    fn is_blocked(e: &io::Error) -> bool {
        e.raw_os_error() == Some(32)
    }

    #[test]
    fn a_cancel_ends_the_retries_of_a_blocked_rename_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"payroll"[..]).unwrap();
        let target = dir.path().join("løn.csv");
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            canceller.cancel();
        });
        let started = Instant::now();
        let err = retry_rename(
            || Err(blocked()),
            is_blocked,
            &staged,
            &target,
            Duration::from_secs(60),
            &cancel,
        )
        .unwrap_err();
        assert!(is_blocked(&err));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(staged.temp_path.exists(), "left for recovery");
    }

    #[test]
    fn a_blocked_rename_that_went_through_counts_as_published() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"payroll"[..]).unwrap();
        let target = dir.path().join("løn.csv");
        // 1: blocked; 2: the rename happens but an error is reported; 3: the temp is gone.
        let mut calls = 0;
        let result = retry_rename(
            || {
                calls += 1;
                match calls {
                    1 => Err(blocked()),
                    2 => {
                        std::fs::rename(&staged.temp_path, &target).unwrap();
                        Err(blocked())
                    }
                    _ => fsops::rename_noreplace(&staged.temp_path, &target),
                }
            },
            is_blocked,
            &staged,
            &target,
            Duration::from_secs(60),
            &CancellationToken::new(),
        );
        result.unwrap();
        assert_eq!(calls, 3);
        assert_eq!(std::fs::read(&target).unwrap(), b"payroll");
    }

    #[test]
    fn a_blocked_rename_whose_file_the_importer_took_counts_as_published() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"payroll"[..]).unwrap();
        let target = dir.path().join("løn.csv");
        let mut calls = 0;
        retry_rename(
            || {
                calls += 1;
                if calls == 1 {
                    std::fs::rename(&staged.temp_path, &target).unwrap();
                    std::fs::remove_file(&target).unwrap(); // the importer took it
                    return Err(blocked());
                }
                fsops::rename_noreplace(&staged.temp_path, &target)
            },
            is_blocked,
            &staged,
            &target,
            Duration::from_secs(60),
            &CancellationToken::new(),
        )
        .unwrap();
    }

    #[test]
    fn a_vanished_temp_is_not_published_without_a_blocked_attempt_or_beside_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"payroll"[..]).unwrap();
        let target = dir.path().join("løn.csv");
        std::fs::remove_file(&staged.temp_path).unwrap();
        let first = retry_rename(
            || fsops::rename_noreplace(&staged.temp_path, &target),
            is_blocked,
            &staged,
            &target,
            Duration::from_secs(60),
            &CancellationToken::new(),
        );
        assert_eq!(first.unwrap_err().kind(), io::ErrorKind::NotFound);

        let staged = stage(dir.path(), "test", "id", &mut &b"payroll"[..]).unwrap();
        let mut calls = 0;
        let other = retry_rename(
            || {
                calls += 1;
                if calls == 1 {
                    std::fs::remove_file(&staged.temp_path).unwrap();
                    std::fs::write(&target, b"someone else").unwrap();
                    return Err(blocked());
                }
                fsops::rename_noreplace(&staged.temp_path, &target)
            },
            is_blocked,
            &staged,
            &target,
            Duration::from_secs(60),
            &CancellationToken::new(),
        );
        assert!(other.unwrap_err().to_string().contains("other bytes"));
    }

    #[test]
    fn a_rename_blocked_past_the_budget_fails_with_the_blocking_error() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"x"[..]).unwrap();
        let target = dir.path().join("x.csv");
        let err = retry_rename(
            || Err(blocked()),
            is_blocked,
            &staged,
            &target,
            Duration::from_millis(120),
            &CancellationToken::new(),
        )
        .unwrap_err();
        assert!(is_blocked(&err));
        assert!(staged.temp_path.exists());
    }

    #[cfg(windows)]
    #[test]
    fn published_files_are_not_hidden() {
        use std::os::windows::fs::MetadataExt;
        const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "test", "id", &mut &b"x"[..]).unwrap();
        let temp = std::fs::metadata(&staged.temp_path).unwrap();
        assert_ne!(temp.file_attributes() & FILE_ATTRIBUTE_HIDDEN, 0);
        let published = commit(&staged, "x.csv", &CancellationToken::new()).unwrap();
        fsops::sync_dir(dir.path()).unwrap();
        let meta = std::fs::metadata(&published.path).unwrap();
        assert_eq!(meta.file_attributes() & FILE_ATTRIBUTE_HIDDEN, 0);
    }

    #[test]
    fn temp_names_are_hidden_partial_and_unique() {
        let a = temp_name("0123abcd", "../evil id");
        let b = temp_name("0123abcd", "../evil id");
        assert_ne!(a, b);
        assert!(
            a.starts_with(".xflow-0123abcd-evilid-") && a.ends_with(".partial"),
            "{a}"
        );
        assert!(is_temp_file_of(&a, "0123abcd"));
        assert!(is_temp_file(&a));
        assert!(
            !is_temp_file_of(&a, "0123abc"),
            "an owner that is a prefix of ours"
        );
        assert!(!is_temp_file_of(&a, "99999999"));
        assert!(!is_temp_file(".other.partial"));
    }
}
