//! Platform file operations the publish protocol relies on: exclusive creation, a rename that
//! never replaces, and making a rename durable. Everything OS-specific lives here.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` exclusively (fails if it exists). On Windows the file is hidden, so Explorer
/// and importers that skip hidden files ignore it while it is being written.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_ATTRIBUTE_HIDDEN;
        options.attributes(FILE_ATTRIBUTE_HIDDEN);
    }
    options.open(long_path(path))
}

/// Renames `from` to `to`, failing with `ErrorKind::AlreadyExists` if `to` exists. Never an
/// exists-then-rename check: that races with a concurrent writer.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    imp::rename_noreplace(from, to)
}

/// Makes the renames done in `dir` durable. On Windows renames are issued with
/// MOVEFILE_WRITE_THROUGH instead, and directory handles cannot be flushed without admin rights.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Adds the `\\?\` (or `\\?\UNC\`) prefix on Windows so that paths longer than MAX_PATH work in
/// raw Win32 calls. A no-op elsewhere.
pub fn long_path(path: &Path) -> std::borrow::Cow<'_, Path> {
    #[cfg(windows)]
    {
        let text = path.as_os_str().to_string_lossy();
        if text.starts_with(r"\\?\") || !path.is_absolute() {
            return std::borrow::Cow::Borrowed(path);
        }
        let prefixed = match text.strip_prefix(r"\\") {
            Some(unc) => format!(r"\\?\UNC\{unc}"),
            None => format!(r"\\?\{text}"),
        };
        std::borrow::Cow::Owned(std::path::PathBuf::from(prefixed))
    }
    #[cfg(not(windows))]
    {
        std::borrow::Cow::Borrowed(path)
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        let c_from = CString::new(from.as_os_str().as_bytes())?;
        let c_to = CString::new(to.as_os_str().as_bytes())?;
        // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                c_from.as_ptr(),
                libc::AT_FDCWD,
                c_to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // NFS, some FUSE and ZFS refuse the flag; link fails atomically if `to` exists.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
                super::link_then_unlink(from, to)
            }
            _ => Err(err),
        }
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
mod imp {
    pub fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        super::link_then_unlink(from, to)
    }
}

#[cfg(unix)]
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// Windows: MoveFileExW without MOVEFILE_REPLACE_EXISTING. Written against the documented API;
/// it cannot be run on the Linux machines this project is built on.
#[cfg(windows)]
mod imp {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Storage::FileSystem::{MOVEFILE_WRITE_THROUGH, MoveFileExW};

    fn wide(path: &Path) -> Vec<u16> {
        super::long_path(path)
            .as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect()
    }

    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        let (w_from, w_to) = (wide(from), wide(to));
        // SAFETY: both buffers are NUL-terminated UTF-16 and outlive the call.
        let ok = unsafe { MoveFileExW(w_from.as_ptr(), w_to.as_ptr(), MOVEFILE_WRITE_THROUGH) };
        if ok != 0 {
            Ok(())
        } else {
            // ERROR_ALREADY_EXISTS / ERROR_FILE_EXISTS map to ErrorKind::AlreadyExists in std.
            Err(io::Error::last_os_error())
        }
    }
}

/// Whether a failed rename is worth retrying: antivirus scanners and the search indexer hold
/// freshly written files open for a while on Windows (access denied, sharing or lock violation).
pub fn is_transient_rename_error(err: &io::Error) -> bool {
    cfg!(windows) && err.raw_os_error().is_some_and(is_transient_windows_error)
}

/// Win32 error codes that mean "someone else holds the file right now".
fn is_transient_windows_error(code: i32) -> bool {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    matches!(
        code,
        ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"old").unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"old");
        assert_eq!(std::fs::read(&a).unwrap(), b"new");
    }

    #[test]
    fn rename_noreplace_moves_when_free() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("ø b"));
        std::fs::write(&a, b"x").unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn link_fallback_also_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"old").unwrap();
        let err = link_then_unlink(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"old");
        std::fs::remove_file(&b).unwrap();
        link_then_unlink(&a, &b).unwrap();
        assert!(!a.exists());
    }

    #[test]
    fn create_new_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".x.partial");
        create_new(&p).unwrap();
        assert_eq!(
            create_new(&p).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn windows_sharing_errors_are_transient_and_collisions_are_not() {
        for code in [5, 32, 33] {
            assert!(is_transient_windows_error(code), "{code}");
        }
        // ERROR_FILE_NOT_FOUND, ERROR_FILE_EXISTS, ERROR_ALREADY_EXISTS, ERROR_DISK_FULL
        for code in [2, 80, 183, 112] {
            assert!(!is_transient_windows_error(code), "{code}");
        }
        // On Linux errno 32 is EPIPE: never mistaken for a sharing violation.
        let epipe = io::Error::from_raw_os_error(32);
        assert_eq!(is_transient_rename_error(&epipe), cfg!(windows));
    }
}
