//! The socket directory's rule: the private-directory rule ([`crate::private_dir`]) choosing to
//! refuse, in the words the agent, the client and `wbl doctor` all use; and the rule for a
//! forwarded socket (`wbl ssh`), which lives in a shared directory such as /tmp.

use std::path::{Path, PathBuf};

use super::OWN_DIR_FIX;
use crate::private_dir::{self, DirProblem, DirState, Loose};

/// A socket directory the rule refuses, with what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to use {}: {}; {}", dir.display(), problem.why(), self.fix())]
pub struct UnsafeDir {
    pub dir: PathBuf,
    pub problem: DirProblem,
}

impl UnsafeDir {
    /// How to fix it.
    pub fn fix(&self) -> String {
        match self.problem {
            DirProblem::WritableByOthers { .. } => {
                format!("`chmod 700 {}`, or {OWN_DIR_FIX}", self.dir.display())
            }
            _ => format!("do not use it: {OWN_DIR_FIX}"),
        }
    }
}

/// Checks the socket's directory without following a symbolic link: a real directory, ours,
/// not writable by group or others (refused, never repaired). `Ok(false)` when it does not
/// exist yet.
pub fn check_dir(dir: &Path) -> Result<bool, UnsafeDir> {
    check_path(dir, true)
}

/// `path` under the refusing rule (a directory, when `dir`). `Ok(false)` when it does not
/// exist.
fn check_path(path: &Path, dir: bool) -> Result<bool, UnsafeDir> {
    match private_dir::check_entry(path, dir, Loose::Refuse) {
        Ok(state) => Ok(state != DirState::Missing),
        Err(problem) => Err(UnsafeDir {
            dir: path.to_owned(),
            problem,
        }),
    }
}

/// The rule for a forwarded socket, which sshd binds with the mode its `StreamLocalBindMask`
/// gives (0600 by default, `srwxrwxrwx` with a mask of 0000): the socket file itself, not
/// followed if a symbolic link, must be ours, and either not writable by group or others, or
/// in a directory only we can enter (`wbl ssh` binds it in a fresh 0700 directory: see
/// [`private_to_us`]). `Ok(false)` when it does not exist (the session has ended).
pub fn check_forward(socket: &Path) -> Result<bool, UnsafeDir> {
    match check_path(socket, false) {
        Err(UnsafeDir {
            problem: DirProblem::WritableByOthers { .. },
            ..
        }) if socket.parent().is_some_and(private_to_us) => Ok(true),
        r => r,
    }
}

/// True when `dir`, not followed if a symbolic link, is a directory of ours that group and
/// others may not enter, read or write (mode 0700 or tighter): whatever is inside is out of
/// other users' reach (root's aside), whatever its own mode.
fn private_to_us(dir: &Path) -> bool {
    // What the repairing rule would leave alone: exactly such a directory.
    cfg!(unix) && private_dir::check(dir, Loose::Report) == Ok(DirState::Private)
}

/// Why [`prepare_dir`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Unsafe(#[from] UnsafeDir),
    #[error("cannot create directory {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes the socket's directory (0700) when it is missing, then checks it with
/// [`check_dir`]. A directory someone else made first in the meantime is checked like any
/// other, so the race gains an attacker nothing.
pub fn prepare_dir(dir: &Path) -> Result<(), PrepareError> {
    match private_dir::prepare(dir, Loose::Refuse) {
        Ok(_) => Ok(()),
        Err(private_dir::PrepareError::Unsafe(problem)) => Err(PrepareError::Unsafe(UnsafeDir {
            dir: dir.to_owned(),
            problem,
        })),
        Err(private_dir::PrepareError::Create(source)) => Err(PrepareError::Create {
            path: dir.to_owned(),
            source,
        }),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_directory_rule_never_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        prepare_dir(&real).unwrap();
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(check_dir(&real).unwrap());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = check_dir(&link).unwrap_err();
        assert_eq!(e.problem, DirProblem::Symlink);
        assert!(prepare_dir(&link).is_err());
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&real).unwrap_err();
        assert_eq!(e.problem, DirProblem::WritableByOthers { mode: 0o777 });
        assert!(e.to_string().contains("chmod 700"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            check_dir(&file).unwrap_err().problem,
            DirProblem::NotADirectory
        );
        assert!(!check_dir(&t.path().join("missing")).unwrap());
    }

    /// A forward that sshd bound `srwxrwxrwx` (`StreamLocalBindMask 0000`) is usable only in a
    /// directory of ours that nobody else may enter.
    #[test]
    fn a_loose_forward_is_usable_only_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("wbl-fwd-x");
        std::fs::create_dir(&dir).unwrap();
        let sock = dir.join("wbl-fwd-agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        mode(&sock, 0o600).unwrap();
        mode(&dir, 0o755).unwrap();
        assert!(check_forward(&sock).unwrap(), "a private socket anywhere");
        mode(&sock, 0o777).unwrap();
        for shared in [0o755, 0o711, 0o750] {
            mode(&dir, shared).unwrap();
            let e = check_forward(&sock).unwrap_err();
            assert_eq!(e.problem, DirProblem::WritableByOthers { mode: 0o777 });
        }
        mode(&dir, 0o700).unwrap();
        assert!(
            check_forward(&sock).unwrap(),
            "a loose socket in a 0700 directory"
        );
        // A symbolic link to a private directory is not one.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check_forward(&link.join("wbl-fwd-agent.sock")).is_err());
        assert!(!check_forward(&dir.join("gone.sock")).unwrap());
    }
}
