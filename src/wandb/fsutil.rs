//! The file helpers of credential and settings files: crash-safe replacement, reading a file
//! that may hold secrets, hard-link counts and same-file checks.
//!
//! A netrc file holds every credential of the user, not just W&B's: a crash
//! or full disk halfway through rewriting it must never leave it truncated.
//! So we write a temporary file next to it, fsync it, give it the old file's
//! permissions (and owner, when allowed), rename it over the target and fsync
//! the directory so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Distinguishes temp files of concurrent writers in one process.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Follows a symlink at `path` so we replace the file it points to rather
/// than the link itself (people keep `.netrc` in dotfile repositories).
/// A dangling link or other failure falls back to `path`.
fn resolve_target(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Creates a fresh temp file (mode 0600 on Unix) in `dir`.
fn create_temp(dir: &Path, base: &str) -> io::Result<(File, PathBuf)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{base}.wbl-tmp.{pid}.{n}"));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("could not create a temporary file")))
}

/// Atomically replaces `path` with `contents`.
///
/// - The temp file is created in the same directory (so the rename cannot
///   cross filesystems) with mode 0600, written and fsynced.
/// - If `path` exists, its permission bits are kept (and, on Unix, its
///   owner/group when we are allowed to set them); otherwise the new file
///   gets exactly `mode_if_new` (not reduced by the umask; ignored on
///   Windows).
/// - A target that exists but is read-only is an error
///   (`PermissionDenied`), as is an unwritable directory; the target is
///   then left untouched and the temp file removed.
/// - The directory is fsynced after the rename (best effort: some
///   filesystems do not support it, and the data is already in place).
///
/// A symlink at `path` is followed, and the file it points to is replaced.
pub fn write_atomic(path: &Path, contents: &[u8], mode_if_new: u32) -> io::Result<()> {
    let target = resolve_target(path);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;

    let existing = match fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(m) = &existing {
        if !m.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", target.display()),
            ));
        }
        if m.permissions().readonly() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is read-only", target.display()),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = mode_if_new;

    let (mut file, tmp) = create_temp(&dir, &base)?;
    let result = (|| -> io::Result<()> {
        file.write_all(contents)?;
        file.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mode = match &existing {
                Some(m) => m.mode() & 0o7777,
                None => mode_if_new & 0o7777,
            };
            if let Some(m) = &existing {
                // Only root (or a member of the group) can do this; a
                // failure just leaves the file owned by us.
                let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
            }
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    {
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Whether two paths name the same file (or are equal when they do not exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The number of hard links of a file (1 where the platform does not say).
pub fn link_count(path: &Path) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).map(|m| m.nlink()).unwrap_or(1)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        1
    }
}

/// Reads a file that may hold secrets; `None` when it does not exist.
pub fn read_secret_file(path: &Path) -> anyhow::Result<Option<zeroize::Zeroizing<String>>> {
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = zeroize::Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow::anyhow!("{} is not valid UTF-8", path.display()))?;
            Ok(Some(zeroize::Zeroizing::new(text.to_owned())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("wbl-tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn creates_new_file() {
        let d = tmpdir();
        let p = d.path().join("netrc");
        write_atomic(&p, b"hello\n", 0o600).ok();
        assert_eq!(fs::read(&p).ok().as_deref(), Some(&b"hello\n"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o600));
        }
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn replaces_and_keeps_mode() {
        let d = tmpdir();
        let p = d.path().join("netrc");
        fs::write(&p, b"old contents that are longer").ok();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).ok();
        }
        assert!(write_atomic(&p, b"new", 0o600).is_ok());
        assert_eq!(fs::read(&p).ok().as_deref(), Some(&b"new"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o640));
        }
        assert!(leftovers(d.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlink() {
        let d = tmpdir();
        let real = d.path().join("real");
        let link = d.path().join("link");
        fs::write(&real, b"a").ok();
        std::os::unix::fs::symlink(&real, &link).ok();
        assert!(write_atomic(&link, b"b", 0o600).is_ok());
        assert!(
            fs::symlink_metadata(&link)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
        );
        assert_eq!(fs::read(&real).ok().as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn read_only_file_is_error_and_untouched() {
        let d = tmpdir();
        let p = d.path().join("netrc");
        fs::write(&p, b"keep").ok();
        let mut perms = match fs::metadata(&p) {
            Ok(m) => m.permissions(),
            Err(e) => panic!("{e}"),
        };
        perms.set_readonly(true);
        fs::set_permissions(&p, perms).ok();
        let r = write_atomic(&p, b"new", 0o600);
        assert_eq!(
            r.map_err(|e| e.kind()),
            Err(io::ErrorKind::PermissionDenied)
        );
        assert_eq!(fs::read(&p).ok().as_deref(), Some(&b"keep"[..]));
        assert!(leftovers(d.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn read_only_dir_is_error() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir();
        let sub = d.path().join("ro");
        fs::create_dir(&sub).ok();
        let p = sub.join("netrc");
        fs::write(&p, b"keep").ok();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).ok();
        // Root ignores directory permissions; nothing to test then.
        let probe = sub.join("probe");
        if fs::write(&probe, b"").is_ok() {
            let _ = fs::remove_file(&probe);
            fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).ok();
            return;
        }
        assert!(write_atomic(&p, b"new", 0o600).is_err());
        assert!(write_atomic(&sub.join("fresh"), b"new", 0o600).is_err());
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).ok();
        assert_eq!(fs::read(&p).ok().as_deref(), Some(&b"keep"[..]));
        assert!(!sub.join("fresh").exists());
        assert!(leftovers(&sub).is_empty());
    }

    #[test]
    fn missing_dir_is_error() {
        let d = tmpdir();
        let p = d.path().join("nope").join("netrc");
        assert!(write_atomic(&p, b"x", 0o600).is_err());
    }

    #[test]
    fn directory_target_is_error() {
        let d = tmpdir();
        assert!(write_atomic(d.path(), b"x", 0o600).is_err());
    }
}
