//! Who may read the state folder, and where it may be. It holds personal data (payroll and
//! postings in the spool and the quarantine, file names in the journal), so it is readable by its
//! owner only: 0700 folders and 0600 files on Unix; on Windows a protected ACL (inheritance from
//! the parent removed) granting SYSTEM, Administrators and the account that runs, which every
//! file created inside inherits. It must be on a local disk: the run lock and SQLite's WAL (shared
//! memory beside the journal) are not reliable over SMB or NFS. Import folders may be shares.
//!
//! The run calls `prepare` when it starts; queries call `require_local` and report `exposure`.

use crate::error::{EngineError, Result};
use crate::journal::JOURNAL_FILE;
use crate::state_dir::{QUARANTINE_DIR, SPOOL_DIR};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Refuses a state folder on a network file system; creates the folder, its spool and quarantine
/// folders and the journal file readable by the owner only, or tightens an existing folder that
/// others can read. SQLite gives the journal's `-wal` and `-shm` files the journal file's
/// permissions, so creating that file first covers them. Returns warnings for the run to report.
/// With `what_if` an exposed folder is reported, not changed.
pub fn prepare(state: &Path, what_if: bool) -> Result<Vec<String>> {
    require_local(state)?;
    let io_error = |e: io::Error| EngineError::from_io(state, &e);
    let mut warnings = Vec::new();
    if let Some(others) = exposure(state)? {
        let tightened = if what_if {
            Err(io::Error::other("-WhatIf"))
        } else {
            imp::tighten(state)
        };
        warnings.push(match tightened {
            Ok(()) => format!(
                "the state folder {} could be read by other accounts ({others}); it holds \
                 personal data and is now restricted to its owner",
                state.display()
            ),
            Err(e) => format!(
                "the state folder {} can be read by other accounts ({others}) and could not be \
                 restricted ({e}); it holds personal data: restrict it to the task's account",
                state.display()
            ),
        });
    }
    for dir in [
        state.to_path_buf(),
        state.join(SPOOL_DIR),
        state.join(QUARANTINE_DIR),
    ] {
        imp::create_private_dir(&dir).map_err(io_error)?;
    }
    let journal = state.join(JOURNAL_FILE);
    private_file_options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&journal)
        .map_err(io_error)?;
    Ok(warnings)
}

/// Options that create a file readable by its owner only (mode 0600 from the first byte; on
/// Windows the file inherits the state folder's ACL). The caller adds write/create flags.
pub fn private_file_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates (or truncates) a file readable by its owner only.
pub fn create_private(path: &Path) -> io::Result<File> {
    private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Refuses a state folder on a network file system, with the reason.
pub fn require_local(state: &Path) -> Result<()> {
    match imp::network_file_system(state) {
        Ok(None) => Ok(()),
        Ok(Some(file_system)) => Err(EngineError::StateFolderOnNetworkShare {
            path: state.to_path_buf(),
            file_system,
        }),
        Err(e) => Err(EngineError::from_io(state, &e)),
    }
}

/// Who besides the owner can read the state folder (or anything in it), in words; `None` when
/// nobody can or the folder does not exist yet.
pub fn exposure(state: &Path) -> Result<Option<String>> {
    match std::fs::symlink_metadata(state) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::from_io(state, &e)),
        Ok(_) => imp::exposure(state).map_err(|e| EngineError::from_io(state, &e)),
    }
}

/// The nearest existing folder at or above `path`: what a file-system query can ask about
/// before the state folder exists.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
}

/// Linux `statfs.f_type` values of network file systems (linux/magic.h). FUSE (0x65735546) is
/// not one of them: LazyFS, used for the power-cut tests, is a local FUSE file system.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn network_file_system_name(f_type: u32) -> Option<&'static str> {
    match f_type {
        0x6969 => Some("NFS"),
        0x517B => Some("SMB"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x5346_414F => Some("AFS"),
        0x00C3_6400 => Some("Ceph"),
        _ => None,
    }
}

/// A UNC path (`\\server\share`, `//server/share`, `\\?\UNC\...`), i.e. an SMB share, as
/// opposed to a drive path, a verbatim drive path (`\\?\C:\`) or a device path (`\\.\`).
#[cfg_attr(not(windows), allow(dead_code))]
fn is_unc_path(text: &str) -> bool {
    let text = text.replace('/', "\\");
    if let Some(rest) = text.strip_prefix(r"\\?\") {
        return rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(r"UNC\");
    }
    text.starts_with(r"\\") && !text.starts_with(r"\\.\")
}

/// The DACL this module gives the state folder: SYSTEM, Administrators and `user_sid` (the
/// account that runs), full control, inherited by files and folders created inside (OICI);
/// protected (`P`), so nothing is inherited from the parent.
#[cfg_attr(not(windows), allow(dead_code))]
fn private_sddl(user_sid: &str) -> String {
    format!("D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{user_sid})")
}

/// The trustees that an SDDL DACL allows anything, besides SYSTEM, Administrators, the owner
/// (OW, CO) and `user_sid`. Pure, so it is tested everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
fn other_trustees(sddl: &str, user_sid: &str) -> Vec<String> {
    // Windows prints well-known SIDs as their alias; the built-in Administrator account (RID
    // 500, e.g. a CI runner's account) as LA.
    let alias = match user_sid {
        "S-1-5-18" => "SY",
        "S-1-5-19" => "LS",
        "S-1-5-20" => "NS",
        sid if sid.starts_with("S-1-5-21-") && sid.ends_with("-500") => "LA",
        _ => user_sid,
    };
    let dacl = sddl.find("D:").map_or("", |i| &sddl[i + 2..]);
    let dacl = dacl.find("S:").map_or(dacl, |i| &dacl[..i]);
    let mut others = Vec::new();
    for ace in dacl.split('(').skip(1) {
        let fields: Vec<&str> = ace.trim_end_matches(')').split(';').collect();
        let (Some(kind), Some(trustee)) = (fields.first(), fields.get(5)) else {
            continue;
        };
        let allows = matches!(*kind, "A" | "OA" | "XA" | "ZA");
        let ours = ["SY", "BA", "OW", "CO", user_sid, alias].contains(trustee);
        if allows && !ours && !others.iter().any(|o| o == trustee) {
            others.push((*trustee).to_owned());
        }
    }
    others
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    pub fn create_private_dir(dir: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }

    /// Everything in the folder (and the folder) whose mode gives group or others any access.
    /// What is inside may go while it is walked (a run holding the lock removes its spool's
    /// temp files, SQLite its `-shm`): what is gone exposes nothing.
    fn exposed(state: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
        let mut found = Vec::new();
        let mut pending = vec![state.to_path_buf()];
        while let Some(path) = pending.pop() {
            let meta = match std::fs::symlink_metadata(&path) {
                Err(e) if went_meanwhile(&e, &path, state) => continue,
                meta => meta?,
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                found.push((path.clone(), mode));
            }
            if meta.is_dir() {
                let entries = match std::fs::read_dir(&path) {
                    Err(e) if went_meanwhile(&e, &path, state) => continue,
                    entries => entries?,
                };
                for entry in entries {
                    pending.push(entry?.path());
                }
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn exposure(state: &Path) -> io::Result<Option<String>> {
        let found = exposed(state)?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut words: Vec<String> = found
            .iter()
            .take(3)
            .map(|(path, mode)| format!("mode {mode:04o} on {}", path.display()))
            .collect();
        if found.len() > 3 {
            words.push(format!("{} more", found.len() - 3));
        }
        Ok(Some(words.join(", ")))
    }

    /// Something inside the state folder that was removed while it was checked (not the folder).
    fn went_meanwhile(e: &io::Error, path: &Path, state: &Path) -> bool {
        e.kind() == io::ErrorKind::NotFound && path != state
    }

    /// Removes group and other access from the folder and everything in it.
    pub fn tighten(state: &Path) -> io::Result<()> {
        for (path, mode) in exposed(state)? {
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o077)) {
                Err(e) if went_meanwhile(&e, &path, state) => {}
                result => result?,
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    pub fn network_file_system(path: &Path) -> io::Result<Option<String>> {
        use std::os::unix::ffi::OsStrExt;
        let existing = super::existing_ancestor(path);
        let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes())?;
        // SAFETY: a valid NUL-terminated path and a zeroed statfs for the kernel to fill.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Magic numbers are 32-bit; f_type is a signed word whose width varies by architecture.
        #[allow(clippy::unnecessary_cast)]
        let f_type = stat.f_type as u32;
        Ok(super::network_file_system_name(f_type).map(str::to_owned))
    }

    #[cfg(not(target_os = "linux"))]
    pub fn network_file_system(_path: &Path) -> io::Result<Option<String>> {
        Ok(None)
    }
}

/// Windows. NOT COMPILED OR RUN HERE (no Windows target on the machines this project is built
/// on): written against Microsoft's documentation; covered by the Windows CI Pester tests listed
/// in docs/design.md.
#[cfg(windows)]
mod imp {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_ALREADY_EXISTS, ERROR_INSUFFICIENT_BUFFER, HANDLE, LocalFree,
    };
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetTokenInformation,
        PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES,
        TOKEN_QUERY, TOKEN_USER, TokenUser,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateDirectoryW, GetDriveTypeW, GetVolumePathNameW,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// GetDriveTypeW: "The drive is a remote (network) drive."
    const DRIVE_REMOTE: u32 = 4;

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// A NUL-terminated UTF-16 string that LocalFree releases.
    unsafe fn take_local_string(text: *mut u16) -> String {
        let mut len = 0;
        // SAFETY: the caller passes a NUL-terminated string from a Win32 allocation.
        unsafe {
            while *text.add(len) != 0 {
                len += 1;
            }
            let value = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text.cast());
            value
        }
    }

    /// The account this process runs as, as a SID string (S-1-5-21-…).
    fn current_user_sid() -> io::Result<String> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: GetCurrentProcess returns a pseudo handle; `token` receives a real one, closed
        // below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let result = (|| {
            let mut needed = 0u32;
            // SAFETY: a size query: no buffer, the size is written to `needed`.
            let ok = unsafe {
                GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed)
            };
            let err = io::Error::last_os_error();
            if ok == 0 && err.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32) {
                return Err(err);
            }
            let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
            // SAFETY: the buffer is 8-aligned and `needed` bytes long.
            if unsafe {
                GetTokenInformation(
                    token,
                    TokenUser,
                    buffer.as_mut_ptr().cast(),
                    needed,
                    &mut needed,
                )
            } == 0
            {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: GetTokenInformation(TokenUser) filled a TOKEN_USER at the buffer's start.
            let user = unsafe { &*buffer.as_ptr().cast::<TOKEN_USER>() };
            let mut text: *mut u16 = std::ptr::null_mut();
            // SAFETY: the SID lives in `buffer`; `text` receives a LocalAlloc'ed string.
            if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut text) } == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a NUL-terminated string from ConvertSidToStringSidW.
            Ok(unsafe { take_local_string(text) })
        })();
        // SAFETY: the token handle from OpenProcessToken, closed once.
        unsafe { CloseHandle(token) };
        result
    }

    /// The private security descriptor, freed on drop.
    struct Descriptor(PSECURITY_DESCRIPTOR);

    impl Descriptor {
        fn private() -> io::Result<Descriptor> {
            let sddl = wide(super::private_sddl(&current_user_sid()?).as_ref());
            let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
            // SAFETY: a NUL-terminated SDDL string; the descriptor is LocalAlloc'ed for us.
            if unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    sddl.as_ptr(),
                    SDDL_REVISION_1,
                    &mut descriptor,
                    std::ptr::null_mut(),
                )
            } == 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(Descriptor(descriptor))
        }
    }

    impl Drop for Descriptor {
        fn drop(&mut self) {
            // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
            unsafe { LocalFree(self.0) };
        }
    }

    /// Parents are created as usual (inheriting); the folder itself gets the private ACL at
    /// creation (CreateDirectoryW with SECURITY_ATTRIBUTES), so there is no moment in which
    /// it inherits a readable one.
    pub fn create_private_dir(dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let descriptor = Descriptor::private()?;
        let attributes = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: descriptor.0,
            bInheritHandle: 0,
        };
        let name = wide(dir.as_os_str());
        // SAFETY: a NUL-terminated path and attributes that outlive the call.
        if unsafe { CreateDirectoryW(name.as_ptr(), &attributes) } == 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(ERROR_ALREADY_EXISTS as i32) {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Replaces the folder's DACL with the private one, protected. SetNamedSecurityInfoW
    /// propagates the new inheritable entries to the files and folders inside (which
    /// SetFileSecurityW would not).
    pub fn tighten(state: &Path) -> io::Result<()> {
        let descriptor = Descriptor::private()?;
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: `dacl` points into `descriptor`, which outlives its use.
        if unsafe {
            GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted)
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let name = wide(state.as_os_str());
        // SAFETY: a NUL-terminated path; owner, group and SACL are left as they are.
        let status = unsafe {
            SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        };
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        Ok(())
    }

    /// The folder's DACL as SDDL; the trustees in it besides ours. Files inside inherit it.
    pub fn exposure(state: &Path) -> io::Result<Option<String>> {
        let name = wide(state.as_os_str());
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path; the descriptor is LocalAlloc'ed and freed below.
        let status = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut dacl,
                std::ptr::null_mut(),
                &mut descriptor,
            )
        };
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        let descriptor = Descriptor(descriptor);
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: a valid descriptor; `text` receives a LocalAlloc'ed string.
        if unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor.0,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a NUL-terminated string from the conversion.
        let sddl = unsafe { take_local_string(text) };
        let others = super::other_trustees(&sddl, &current_user_sid()?);
        Ok((!others.is_empty()).then(|| format!("its ACL also grants {}", others.join(", "))))
    }

    /// A UNC path, or a drive whose volume GetDriveTypeW calls remote (a mapped share).
    pub fn network_file_system(path: &Path) -> io::Result<Option<String>> {
        if super::is_unc_path(&path.to_string_lossy()) {
            return Ok(Some("an SMB share (UNC path)".into()));
        }
        let name = wide(super::existing_ancestor(path).as_os_str());
        let mut volume = vec![0u16; 32 * 1024];
        // SAFETY: a NUL-terminated path and a buffer of the length given.
        if unsafe { GetVolumePathNameW(name.as_ptr(), volume.as_mut_ptr(), volume.len() as u32) }
            == 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: GetVolumePathNameW wrote a NUL-terminated root path.
        let kind = unsafe { GetDriveTypeW(volume.as_ptr()) };
        Ok((kind == DRIVE_REMOTE).then(|| "a network drive".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_named_and_local_ones_including_fuse_are_not() {
        for (magic, name) in [
            (0x6969, "NFS"),
            (0x517B, "SMB"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
        ] {
            assert_eq!(network_file_system_name(magic), Some(name));
        }
        // ext4, tmpfs, xfs, btrfs, overlayfs, FUSE (LazyFS)
        for magic in [
            0xEF53,
            0x0102_1994,
            0x5846_5342,
            0x9123_683E,
            0x794C_7630,
            0x6573_5546,
        ] {
            assert_eq!(network_file_system_name(magic), None, "{magic:#x}");
        }
    }

    #[test]
    fn unc_paths_are_shares_and_drive_paths_are_not() {
        for share in [
            r"\\fil01\xflow\state",
            "//fil01/xflow/state",
            r"\\?\UNC\fil01\xflow",
            r"\\?\unc\fil01\xflow",
        ] {
            assert!(is_unc_path(share), "{share}");
        }
        for local in [
            r"D:\XFlowDelivery\State",
            r"\\?\D:\State",
            r"\\.\pipe\x",
            "/var/lib/x",
        ] {
            assert!(!is_unc_path(local), "{local}");
        }
    }

    #[test]
    fn the_private_acl_admits_only_system_administrators_and_the_account() {
        let me = "S-1-5-21-1-2-3-1105";
        let sddl = private_sddl(me);
        assert!(
            sddl.starts_with("D:P("),
            "protected: nothing inherited from the parent"
        );
        assert!(other_trustees(&sddl, me).is_empty());
        // What Windows reports for a folder under C:\ProgramData (inherited, readable by Users).
        let program_data = "D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)\
                            (A;OICIID;0x1200a9;;;BU)(A;CIID;DCLCRPCR;;;BU)";
        assert_eq!(other_trustees(program_data, me), vec!["BU".to_owned()]);
        // A deny entry grants nothing; another account's allow entry does.
        let mixed =
            format!("D:P(D;;FA;;;WD)(A;;FR;;;S-1-5-21-9-9-9-500)(A;;FA;;;{me})S:(AU;;;;;WD)");
        assert_eq!(
            other_trustees(&mixed, me),
            vec!["S-1-5-21-9-9-9-500".to_owned()]
        );
        // Running as LocalSystem: its SID prints as SY; the built-in Administrator as LA.
        assert!(other_trustees("D:P(A;OICI;FA;;;SY)", "S-1-5-18").is_empty());
        let admin = "S-1-5-21-1-2-3-500";
        assert!(other_trustees("D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;LA)", admin).is_empty());
        assert_eq!(
            other_trustees("D:P(A;OICI;FA;;;LA)", me),
            vec!["LA".to_owned()]
        );
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn a_new_state_folder_and_its_journal_are_private_without_touching_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a").join("state");
        let warnings = prepare(&state, false).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(SPOOL_DIR)), 0o700);
        assert_eq!(mode(&state.join(QUARANTINE_DIR)), 0o700);
        assert_eq!(mode(&state.join(JOURNAL_FILE)), 0o600);
        // SQLite's -wal and -shm take the journal file's mode.
        drop(crate::journal::Journal::open(&state).unwrap());
        let _reader = crate::journal::Journal::open(&state).unwrap();
        for name in ["journal.sqlite3-wal", "journal.sqlite3-shm"] {
            let path = state.join(name);
            if path.exists() {
                assert_eq!(mode(&path), 0o600, "{name}");
            }
        }
        assert_eq!(exposure(&state).unwrap(), None);
        create_private(&state.join("spool").join("x.tmp")).unwrap();
        assert_eq!(mode(&state.join("spool").join("x.tmp")), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_readable_state_folder_is_reported_tightened_and_said_so() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("spool")).unwrap();
        std::fs::write(state.join("spool").join("p.bin"), b"CPR;salary").unwrap();
        std::fs::write(state.join(JOURNAL_FILE), b"").unwrap();
        for (path, m) in [
            (state.clone(), 0o755),
            (state.join("spool"), 0o755),
            (state.join("spool").join("p.bin"), 0o644),
            (state.join(JOURNAL_FILE), 0o640),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        let before = exposure(&state).unwrap().expect("readable by others");
        assert!(before.contains("mode 0755"), "{before}");
        let warnings = prepare(&state, false).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("now restricted to its owner"),
            "{}",
            warnings[0]
        );
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("spool")), 0o700);
        assert_eq!(mode(&state.join("spool").join("p.bin")), 0o600);
        assert_eq!(mode(&state.join(JOURNAL_FILE)), 0o600);
        assert_eq!(exposure(&state).unwrap(), None);
        assert!(
            prepare(&state, false).unwrap().is_empty(),
            "said once, not on every run"
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_that_come_and_go_while_the_folder_is_checked_are_no_error() {
        // A run that finds the lock held still checks the folder first, while the run holding
        // it creates and removes files there (page spool, SQLite's -shm). Seen in CI as a run
        // that failed with "folder .../state does not exist" instead of ending Locked.
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        prepare(&state, false).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let churn = state
                        .join(SPOOL_DIR)
                        .join(format!("page-{}.incoming.tmp", n % 8));
                    let _ = create_private(&churn);
                    let _ = std::fs::remove_file(&churn);
                    let folder = state.join(format!("gone-{}", n % 4));
                    let _ = imp::create_private_dir(&folder);
                    let _ = std::fs::remove_dir(&folder);
                }
            });
            let failure = (0..3000).find_map(|_| match (exposure(&state), imp::tighten(&state)) {
                (Ok(None), Ok(())) => None,
                other => Some(format!("{other:?}")),
            });
            stop.store(true, Ordering::Relaxed);
            assert_eq!(failure, None);
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_local_state_folder_is_accepted_even_before_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        require_local(&dir.path().join("not").join("yet")).unwrap();
        let err = EngineError::StateFolderOnNetworkShare {
            path: dir.path().into(),
            file_system: "NFS".into(),
        };
        assert_eq!(err.error_id(), "StateFolderOnNetworkShare");
        assert!(err.to_string().contains("local disk"), "{err}");
    }
}
