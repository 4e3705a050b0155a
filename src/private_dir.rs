//! The private-directory rule: a directory wbl keeps its own files in (the agent's socket
//! directory, the access log's state directory) is a real directory — never followed through
//! a symbolic link — owned by our effective uid, and closed to other users. Every caller
//! says at its call site what happens to a directory of ours that is too open ([`Loose`]):
//! refused (the socket's: nobody else may put or replace anything in it), repaired (the access
//! log's: the agent makes it 0700 again), or only reported (`wbl doctor`, which changes
//! nothing). Anything else wrong is always refused, in the same words everywhere
//! ([`DirProblem::why`]).
//!
//! Windows: directories in the profile are private by default; ACLs are not inspected, so
//! every existing directory passes.

use std::path::Path;

/// What to do with a directory of ours that other users may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loose {
    /// Refuse it when group or others may write it (reading it does no harm: the socket).
    Refuse,
    /// Make it 0700 when group or others have any access (what is inside must not be read:
    /// the access log).
    Repair,
    /// What [`Loose::Repair`] would find, changing nothing (`wbl doctor`).
    Report,
}

/// What the rule found about an acceptable directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// It does not exist (yet).
    Missing,
    /// It exists and passes as it is.
    Private,
    /// [`Loose::Repair`]: it was too open (`mode`, the permission bits before) and is 0700 now.
    Repaired { mode: u32 },
    /// [`Loose::Report`]: it is too open (`mode`), and [`Loose::Repair`] would make it 0700.
    WouldRepair { mode: u32 },
}

/// What is wrong with a directory (or, for a forwarded socket, the socket file) the rule
/// refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirProblem {
    /// A symbolic link: never followed, whoever made it.
    Symlink,
    /// Something other than a directory.
    NotADirectory,
    /// Owned by another user.
    NotOurs { owner: u32, me: u32 },
    /// Writable by group or others (`mode` is the permission bits).
    WritableByOthers { mode: u32 },
    /// Cannot be inspected.
    Inspect(String),
    /// [`Loose::Repair`]: its mode cannot be made 0700.
    Repair(String),
}

impl DirProblem {
    /// What is wrong, in a few words.
    pub fn why(&self) -> String {
        match self {
            DirProblem::Symlink => {
                "it is a symbolic link, which wbl never follows (someone may be \
                 trying to intercept your keys)"
                    .to_owned()
            }
            DirProblem::NotADirectory => "it is not a directory".to_owned(),
            DirProblem::NotOurs { owner, me } => format!(
                "it belongs to uid {owner}, not to you (uid {me}); another user may be trying to \
                 intercept your keys"
            ),
            DirProblem::WritableByOthers { mode } => {
                format!("it is writable by other users (mode {mode:04o})")
            }
            DirProblem::Inspect(e) => format!("cannot inspect it: {e}"),
            DirProblem::Repair(e) => format!("cannot make it private: {e}"),
        }
    }
}

/// The rule for directory `dir`, with `loose` deciding what a too-open directory of ours
/// gets. `Ok(DirState::Missing)` when it does not exist.
pub fn check(dir: &Path, loose: Loose) -> Result<DirState, DirProblem> {
    check_entry(dir, true, loose)
}

/// The rule for `path`, a directory when `dir` (anything else but a symbolic link
/// otherwise: a forwarded socket).
pub(crate) fn check_entry(path: &Path, dir: bool, loose: Loose) -> Result<DirState, DirProblem> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(DirProblem::Inspect(e.to_string())),
    };
    if meta.file_type().is_symlink() {
        return Err(DirProblem::Symlink);
    }
    if dir && !meta.is_dir() {
        return Err(DirProblem::NotADirectory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = crate::sys::euid();
        if meta.uid() != me {
            return Err(DirProblem::NotOurs {
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.mode() & 0o7777;
        match loose {
            Loose::Refuse if mode & 0o022 != 0 => {
                return Err(DirProblem::WritableByOthers { mode });
            }
            Loose::Repair if mode & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| DirProblem::Repair(e.to_string()))?;
                return Ok(DirState::Repaired { mode });
            }
            Loose::Report if mode & 0o077 != 0 => return Ok(DirState::WouldRepair { mode }),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, loose);
    Ok(DirState::Private)
}

/// Why [`prepare`] failed.
#[derive(Debug)]
pub enum PrepareError {
    /// The rule refuses the directory (someone else's, made first in the meantime, is checked
    /// like any other).
    Unsafe(DirProblem),
    /// It could not be made.
    Create(std::io::Error),
}

/// Makes `dir` (0700, and its missing parents 0700) when it is missing, then applies the rule
/// with `loose`. A directory someone else made first in the meantime is checked like any
/// other, so the race gains an attacker nothing.
pub fn prepare(dir: &Path, loose: Loose) -> Result<DirState, PrepareError> {
    match check(dir, loose).map_err(PrepareError::Unsafe)? {
        DirState::Missing => {}
        state => return Ok(state),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(parent).map_err(PrepareError::Create)?;
    }
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    match b.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(PrepareError::Create(e)),
    }
    match check(dir, loose).map_err(PrepareError::Unsafe)? {
        DirState::Missing => Err(PrepareError::Create(std::io::ErrorKind::NotFound.into())),
        state => Ok(state),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn each_call_site_chooses_what_a_loose_directory_gets() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        assert_eq!(check(&d, Loose::Refuse), Ok(DirState::Missing));
        assert_eq!(prepare(&d, Loose::Refuse).unwrap(), DirState::Private);
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        let set = |m| std::fs::set_permissions(&d, std::fs::Permissions::from_mode(m)).unwrap();
        // Readable by others: the socket's rule lets it be, the log's makes it private.
        set(0o755);
        assert_eq!(check(&d, Loose::Refuse), Ok(DirState::Private));
        assert_eq!(
            check(&d, Loose::Report),
            Ok(DirState::WouldRepair { mode: 0o755 })
        );
        assert_eq!(mode(&d), 0o755, "reporting changes nothing");
        assert_eq!(
            check(&d, Loose::Repair),
            Ok(DirState::Repaired { mode: 0o755 })
        );
        assert_eq!(mode(&d), 0o700);
        // Writable by others: refused, or repaired.
        set(0o777);
        assert_eq!(
            check(&d, Loose::Refuse),
            Err(DirProblem::WritableByOthers { mode: 0o777 })
        );
        assert_eq!(
            check(&d, Loose::Repair),
            Ok(DirState::Repaired { mode: 0o777 })
        );
        // A symbolic link or a file: refused whatever the choice.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        for loose in [Loose::Refuse, Loose::Repair, Loose::Report] {
            assert_eq!(check(&link, loose), Err(DirProblem::Symlink));
            assert!(matches!(
                prepare(&link, loose),
                Err(PrepareError::Unsafe(_))
            ));
            assert_eq!(check(&file, loose), Err(DirProblem::NotADirectory));
        }
    }
}
