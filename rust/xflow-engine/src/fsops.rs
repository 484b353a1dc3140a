//! Platform file operations the publish protocol relies on: exclusive creation, a rename that
//! never replaces, and making a rename durable. Everything OS-specific lives here.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` exclusively (fails if it exists). On Windows the file is hidden, so Explorer
/// and importers that skip hidden files ignore it while it is being written; `rename_noreplace`
/// clears the attribute before the file gets its final name.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_ATTRIBUTE_HIDDEN;
        options.attributes(FILE_ATTRIBUTE_HIDDEN);
    }
    // std adds the `\\?\` prefix itself where a path needs it.
    options.open(path)
}

/// One flush of a whole file system that stands in for the flushes of every file written to it
/// since `begin`: Linux `syncfs` on the file systems where it is documented to give "the same
/// guarantees as fsync() called on every file" (syncfs(2)) and where it reports write-back
/// errors (Linux 5.8 and later: before that it returned 0 whatever happened). Such a flush is
/// one journal commit and one device flush for any number of files; it also writes other
/// programs' unwritten data on that file system.
#[derive(Debug)]
pub struct FileSystemFlush {
    // Opened before the files are written: `syncfs` reports the write-back errors of the file
    // system since this descriptor was opened (and any earlier one nobody has seen yet).
    dir: File,
}

impl FileSystemFlush {
    /// `None` where that is not known to hold (another platform; FUSE, network, overlay and
    /// memory file systems; a kernel before 5.8) or `dir` cannot be examined: then each file
    /// is flushed by itself, and an error shows there.
    pub fn begin(dir: &Path) -> Option<FileSystemFlush> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let dir = File::open(dir).ok()?;
            // SAFETY: zeroed is a valid `statfs`; fstatfs only writes into it.
            let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
            // SAFETY: a valid open descriptor and a pointer to an owned, writable struct.
            if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut fs) } != 0 {
                return None;
            }
            syncfs_covers_every_file(fs.f_type as i64, kernel_release())
                .then_some(FileSystemFlush { dir })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = dir;
            None
        }
    }

    /// Flushes the file system; an error means some data written to it since `begin` may not be
    /// on disk.
    pub fn finish(self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open descriptor for the duration of the call.
            if unsafe { libc::syncfs(self.dir.as_raw_fd()) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = self.dir;
            unreachable!("begin returns None off Linux")
        }
    }
}

/// `uname -r`, read once per process (every page's `FileSystemFlush::begin` asks).
#[cfg(target_os = "linux")]
fn kernel_release() -> &'static str {
    static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        // SAFETY: zeroed is a valid `utsname`; uname only writes into it.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: a pointer to an owned, writable struct; on success `release` is NUL-terminated.
        if unsafe { libc::uname(&mut uts) } != 0 {
            return String::new(); // no version: never trusted
        }
        unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Whether Linux `syncfs` makes every file of a file system of type `f_type` (statfs(2))
/// durable and reports write-back errors, on kernel `release` (uname -r): ext2/3/4, XFS and
/// Btrfs, from Linux 5.8. Not FUSE (LazyFS kept every file of a page torn after a `syncfs`
/// and a power cut), network file systems, overlay or tmpfs.
pub fn syncfs_covers_every_file(f_type: i64, release: &str) -> bool {
    const EXT_SUPER_MAGIC: i64 = 0xEF53;
    const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
    const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    let version = match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => return false,
    };
    matches!(
        f_type,
        EXT_SUPER_MAGIC | XFS_SUPER_MAGIC | BTRFS_SUPER_MAGIC
    ) && version >= (5, 8)
}

/// Renames `from` to `to`, failing with `ErrorKind::AlreadyExists` if `to` exists, and makes the
/// new name durable where the platform can do that per file (Windows); elsewhere call
/// `sync_dir` on the folder afterwards. Atomic where the file system offers a no-replace rename
/// (Linux `RENAME_NOREPLACE`, Windows); elsewhere see `imp::check_then_rename`. On Windows the hidden attribute `create_new` set is cleared first, so the
/// published file is never hidden, whether the rename happens in a run or in recovery.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    imp::rename_noreplace(from, to)
}

/// Makes the renames done in `dir` durable: `fsync` of the directory on Unix; on Windows a
/// `FlushFileBuffers` of the directory, opened with write access and FILE_FLAG_BACKUP_SEMANTICS.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    imp::sync_dir(dir)
}

/// Whether `path` exists. Only "not found" means no: any other error (permissions, a share that
/// went away) is returned, never read as absence.
pub fn exists(path: &Path) -> io::Result<bool> {
    metadata_if_exists(path).map(|m| m.is_some())
}

/// The metadata of `path` (not following a final symlink), `None` only when it is not found.
pub fn metadata_if_exists(path: &Path) -> io::Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `path`; already gone is fine, any other failure is returned.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The `\\?\` (verbatim) form of an absolute Windows path, for raw Win32 calls that must work
/// beyond MAX_PATH. A verbatim path reaches the file system as it is, so it is first normalized
/// the way Win32 normalizes an ordinary path (GetFullPathNameW): `/` becomes `\`, repeated
/// separators collapse, `.` and `..` resolve (never above the root), and trailing dots and spaces
/// of each component go. Without that, `C:/Import/../x` would name a folder called `..`.
/// `None` for what is not an absolute drive or UNC path (device paths, relative paths): such a
/// path is passed to Win32 unprefixed. Pure string logic, compiled everywhere so it is tested
/// on Linux.
pub fn verbatim_windows_path(text: &str) -> Option<String> {
    if text.starts_with(r"\\?\") {
        return Some(text.to_owned());
    }
    let text = text.replace('/', r"\");
    if text.starts_with(r"\\.\") {
        return None;
    }
    let (root, rest): (String, Vec<&str>) = if let Some(unc) = text.strip_prefix(r"\\") {
        let mut parts = unc.split('\\').filter(|p| !p.is_empty());
        let (server, share) = (parts.next()?, parts.next()?);
        (format!(r"\\?\UNC\{server}\{share}"), parts.collect())
    } else {
        let bytes = text.as_bytes();
        if bytes.len() < 3
            || !bytes[0].is_ascii_alphabetic()
            || bytes[1] != b':'
            || bytes[2] != b'\\'
        {
            return None;
        }
        (
            format!(r"\\?\{}", &text[..2]),
            text[3..].split('\\').collect(),
        )
    };
    let mut components: Vec<&str> = Vec::new();
    for part in rest {
        match part {
            "." => {}
            ".." => {
                components.pop();
            }
            _ => match part.trim_end_matches(['.', ' ']) {
                "" => {}
                kept => components.push(kept),
            },
        }
    }
    Some(if components.is_empty() {
        format!(r"{root}\")
    } else {
        format!(r"{root}\{}", components.join(r"\"))
    })
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::path::Path;

    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    #[cfg(target_os = "linux")]
    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        use std::ffi::CString;
        // The crash tests run the fallback on file systems that have the flag.
        #[cfg(feature = "failpoints")]
        if std::env::var_os("XFLOW_RENAME_FALLBACK").is_some() {
            return check_then_rename(from, to);
        }
        use std::os::unix::ffi::OsStrExt;
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
            // NFS, CIFS, some FUSE and ZFS refuse the flag.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
                check_then_rename(from, to)
            }
            _ => Err(err),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        check_then_rename(from, to)
    }

    /// The fallback where the file system refuses a no-replace rename: make sure the name is
    /// free, then rename. Not link + unlink: a crash between those leaves the file under both
    /// names, and once the importer has taken the final one, recovery could not tell "linked,
    /// then consumed" from "never linked" (a duplicate or a loss). A rename is atomic by itself,
    /// so recovery's rule stays exact: temp present, not published; temp gone, published. The
    /// price is the instant between the check and the rename: a file another program creates
    /// under this very name in that instant would be replaced. No run of ours can (the run
    /// lock), and two installations writing one system into one folder are refused, so only a
    /// foreign writer choosing the same name could.
    pub(super) fn check_then_rename(from: &Path, to: &Path) -> io::Result<()> {
        if super::exists(to)? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", to.display()),
            ));
        }
        std::fs::rename(from, to)
    }
}

/// Windows. NOT COMPILED OR RUN HERE (no Windows target on the machines this project is built
/// on): written against Microsoft's documentation, cited per call; covered by the Windows CI
/// Pester tests listed in docs/design.md.
#[cfg(windows)]
mod imp {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Foundation::{
        CloseHandle, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, DELETE, FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_NORMAL, FILE_BASIC_INFO,
        FILE_FLAG_BACKUP_SEMANTICS, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ,
        FILE_SHARE_WRITE, FileBasicInfo, FileRenameInfo, FlushFileBuffers,
        GetFileInformationByHandleEx, OPEN_EXISTING, SetFileInformationByHandle,
    };

    /// NUL-terminated UTF-16, verbatim (`\\?\`) when the path is absolute: raw Win32 calls do
    /// not lift MAX_PATH by themselves.
    pub(super) fn wide(path: &Path) -> Vec<u16> {
        let verbatim = path.to_str().and_then(super::verbatim_windows_path);
        match verbatim {
            Some(text) => text.encode_utf16().chain(std::iter::once(0)).collect(),
            None => path
                .as_os_str()
                .encode_wide()
                .chain(std::iter::once(0))
                .collect(),
        }
    }

    pub(super) struct Handle(HANDLE);

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: the handle came from CreateFileW and is closed exactly once.
            unsafe { CloseHandle(self.0) };
        }
    }

    /// Opens an existing file or (with FILE_FLAG_BACKUP_SEMANTICS) folder. Sharing everything:
    /// only a process that itself denies sharing (antivirus, indexer) makes this fail, with
    /// ERROR_SHARING_VIOLATION, which the caller retries.
    pub(super) fn open(path: &Path, access: u32, flags: u32) -> io::Result<Handle> {
        let name = wide(path);
        // SAFETY: `name` is NUL-terminated and outlives the call; no security attributes or
        // template file.
        let handle = unsafe {
            CreateFileW(
                name.as_ptr(),
                access,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                std::ptr::null(),
                OPEN_EXISTING,
                flags,
                std::ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            Err(io::Error::last_os_error())
        } else {
            Ok(Handle(handle))
        }
    }

    /// FlushFileBuffers: "the file handle must have the GENERIC_WRITE access right"; it is the
    /// user-mode NtFlushBuffersFile, which with no flags writes "file data and metadata in the
    /// file cache" and has "the underlying storage ... synchronized to flush its cache"
    /// (learn.microsoft.com: FlushFileBuffers, NtFlushBuffersFileEx).
    fn flush(handle: &Handle) -> io::Result<()> {
        // SAFETY: a valid handle opened with GENERIC_WRITE.
        if unsafe { FlushFileBuffers(handle.0) } == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Renames through the open temp file: clear FILE_ATTRIBUTE_HIDDEN (a rename keeps
    /// attributes), rename with ReplaceIfExists = FALSE (an existing target fails with
    /// ERROR_ALREADY_EXISTS, AlreadyExists in std), then flush the same handle so the new name
    /// is on disk before anything is journaled or acknowledged. MoveFileExW's
    /// MOVEFILE_WRITE_THROUGH does not give that: it "has no effect if MOVEFILE_DELAY_UNTIL_REBOOT
    /// is set" and only waits for the copy+delete of a move across volumes (MoveFileExW docs).
    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        let file = open(from, DELETE | FILE_READ_ATTRIBUTES | GENERIC_WRITE, 0)?;
        clear_hidden(&file)?;
        rename_by_handle(&file, to)?;
        flush(&file)
    }

    /// FILE_BASIC_INFO: zero for a time "keeps a file's current value", and zero attributes
    /// keep the current ones, so clearing the last attribute sets FILE_ATTRIBUTE_NORMAL.
    fn clear_hidden(file: &Handle) -> io::Result<()> {
        let size = std::mem::size_of::<FILE_BASIC_INFO>() as u32;
        // SAFETY: FILE_BASIC_INFO is plain data; the pointer and size describe it exactly.
        let mut info: FILE_BASIC_INFO = unsafe { std::mem::zeroed() };
        let ok = unsafe {
            GetFileInformationByHandleEx(file.0, FileBasicInfo, (&raw mut info).cast(), size)
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        if info.FileAttributes & FILE_ATTRIBUTE_HIDDEN == 0 {
            return Ok(());
        }
        let attributes = info.FileAttributes & !FILE_ATTRIBUTE_HIDDEN;
        // SAFETY: as above.
        let mut update: FILE_BASIC_INFO = unsafe { std::mem::zeroed() };
        update.FileAttributes = if attributes == 0 {
            FILE_ATTRIBUTE_NORMAL
        } else {
            attributes
        };
        let ok = unsafe {
            SetFileInformationByHandle(file.0, FileBasicInfo, (&raw const update).cast(), size)
        };
        if ok == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// FILE_RENAME_INFO is { union { BOOLEAN ReplaceIfExists; DWORD Flags; }; HANDLE
    /// RootDirectory; DWORD FileNameLength; WCHAR FileName[1]; } with the name inline and of
    /// variable length, so the buffer is laid out here; RootDirectory NULL means FileName is a
    /// full path.
    fn rename_by_handle(file: &Handle, to: &Path) -> io::Result<()> {
        #[repr(C)]
        struct Header {
            flags: u32,
            root_directory: HANDLE,
            file_name_length: u32,
        }
        let name = wide(to); // NUL-terminated
        let name_bytes = (name.len() - 1) * 2;
        let name_offset = std::mem::offset_of!(Header, file_name_length) + 4;
        let size = (name_offset + name.len() * 2).max(std::mem::size_of::<Header>());
        let mut buffer = vec![0u64; size.div_ceil(8)];
        let base = buffer.as_mut_ptr().cast::<u8>();
        // SAFETY: the buffer is 8-aligned and at least `size` bytes; the header is written
        // first, then the name (with its NUL) from FileName's offset on.
        unsafe {
            base.cast::<Header>().write(Header {
                flags: 0, // ReplaceIfExists = FALSE
                root_directory: std::ptr::null_mut(),
                file_name_length: name_bytes as u32,
            });
            base.add(name_offset)
                .cast::<u16>()
                .copy_from_nonoverlapping(name.as_ptr(), name.len());
        }
        let ok =
            unsafe { SetFileInformationByHandle(file.0, FileRenameInfo, base.cast(), size as u32) };
        if ok == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// A folder can only be opened with FILE_FLAG_BACKUP_SEMANTICS (CreateFileW docs,
    /// "Directories"); write access is what FlushFileBuffers requires, and the task's account
    /// has it on a folder it publishes into. Each rename was already flushed through its own
    /// handle; a file system that has no flush for folders (ERROR_INVALID_FUNCTION,
    /// ERROR_NOT_SUPPORTED, ERROR_INVALID_PARAMETER, e.g. some SMB servers) adds nothing to that.
    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        let folder = open(dir, GENERIC_WRITE, FILE_FLAG_BACKUP_SEMANTICS)?;
        flush(&folder).or_else(|e| match e.raw_os_error() {
            Some(1 | 50 | 87) => Ok(()),
            _ => Err(e),
        })
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
    fn syncfs_stands_in_for_file_flushes_only_on_known_file_systems_from_linux_5_8() {
        const EXT4: i64 = 0xEF53;
        const XFS: i64 = 0x5846_5342;
        const BTRFS: i64 = 0x9123_683E;
        const FUSE: i64 = 0x6573_5546;
        const NFS: i64 = 0x6969;
        const OVERLAY: i64 = 0x794C_7630;
        const TMPFS: i64 = 0x0102_1994;
        for f_type in [EXT4, XFS, BTRFS] {
            for release in ["5.8.0", "5.15.0-91-generic", "6.18.44-fc-v1045", "10.0"] {
                assert!(
                    syncfs_covers_every_file(f_type, release),
                    "{f_type:#x} {release}"
                );
            }
            // Before 5.8 syncfs returned 0 even when write-back had failed.
            for release in [
                "5.7.19",
                "4.19.0-26-amd64",
                "3.10.0-1160.el7.x86_64",
                "",
                "x.y",
            ] {
                assert!(
                    !syncfs_covers_every_file(f_type, release),
                    "{f_type:#x} {release:?}"
                );
            }
        }
        for f_type in [FUSE, NFS, OVERLAY, TMPFS, 0] {
            assert!(!syncfs_covers_every_file(f_type, "6.18.44"), "{f_type:#x}");
        }
    }

    #[test]
    fn no_file_system_flush_is_offered_for_a_folder_that_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FileSystemFlush::begin(&dir.path().join("missing")).is_none());
    }

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
    fn the_fallback_refuses_to_replace_and_never_leaves_two_names() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"old").unwrap();
        let err = imp::check_then_rename(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"old");
        std::fs::remove_file(&b).unwrap();
        imp::check_then_rename(&a, &b).unwrap();
        assert!(!exists(&a).unwrap());
        assert_eq!(
            std::fs::metadata(&b).unwrap().nlink(),
            1,
            "renamed, never linked"
        );
    }

    #[cfg(unix)]
    #[test]
    fn only_not_found_counts_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!exists(&dir.path().join("x")).unwrap());
        remove_if_exists(&dir.path().join("x")).unwrap();
        // A path through a regular file is an error (ENOTDIR), not "absent".
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(exists(&file.join("x")).is_err());
        assert!(metadata_if_exists(&file.join("x")).is_err());
        assert!(remove_if_exists(&file.join("x")).is_err());
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
    fn verbatim_paths_are_normalized_first() {
        let cases = [
            (r"C:\Import\SD Løn", Some(r"\\?\C:\Import\SD Løn")),
            ("C:/Import/../Prisme/./x", Some(r"\\?\C:\Prisme\x")),
            (r"C:\a\\b\..\..\..\c", Some(r"\\?\C:\c")),
            (r"D:\", Some(r"\\?\D:\")),
            (r"D:\x\..", Some(r"\\?\D:\")),
            (r"C:\dir. \file.txt.", Some(r"\\?\C:\dir\file.txt")),
            (
                r"\\server\share\Import\..\x",
                Some(r"\\?\UNC\server\share\x"),
            ),
            ("//server/share", Some(r"\\?\UNC\server\share\")),
            (r"\\share\share\a", Some(r"\\?\UNC\share\share\a")),
            (r"\\?\C:\kept\..\as is", Some(r"\\?\C:\kept\..\as is")),
            (r"\\server", None),
            (r"\\.\pipe\x", None),
            (r"C:relative", None),
            (r"\rooted", None),
            ("relative/x", None),
            ("/tmp/x", None),
        ];
        for (input, expected) in cases {
            assert_eq!(verbatim_windows_path(input).as_deref(), expected, "{input}");
        }
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
