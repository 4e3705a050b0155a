//! Two real unprivileged users for the tests of what holds on a shared machine: `wbl-test-user`
//! plays the ordinary user who runs wbl (CI is root, users never are), `wbl-test-other` the
//! other user on the machine. `scripts/install-test-deps` creates both; the test process (root)
//! runs commands as either through `setpriv`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The ordinary user wbl runs as in these tests.
pub const USER: &str = "wbl-test-user";
/// The other user on the machine: the attacker.
pub const OTHER: &str = "wbl-test-other";

#[derive(Clone, Debug)]
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

fn lookup(name: &'static str) -> User {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the shared-machine tests run commands as {name} and need root (CI is root): \
         run scripts/test as root"
    );
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).arg(name).output().unwrap();
        assert!(
            out.status.success(),
            "test user {name} does not exist: run scripts/install-test-deps"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    User {
        name,
        uid: id("-u"),
        gid: id("-g"),
    }
}

/// `wbl-test-user`, the ordinary user.
pub fn user() -> User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| lookup(USER)).clone()
}

/// `wbl-test-other`, the other user on the machine.
pub fn other() -> User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| lookup(OTHER)).clone()
}

impl User {
    /// `program` run as this user: real and effective uid and gid, its own supplementary
    /// groups, no capabilities. The environment is what the returned command is given, with
    /// `USER` and `LOGNAME` set to this user.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(shared_bin(program.as_ref()))
            .env("USER", self.name)
            .env("LOGNAME", self.name);
        c
    }

    /// Gives `path` and everything below it to this user.
    pub fn chown(&self, path: &Path) {
        let out = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "chown {}: {out:?}", path.display());
    }
}

/// A path of `program` that every user can execute: the program itself when every directory
/// above it is searchable by others, else (a checkout under a private home) a hard link (or
/// copy) in a per-run directory under `/tmp`. Programs not built by this workspace are
/// returned as they are.
pub fn shared_bin(program: &OsStr) -> PathBuf {
    let path = Path::new(program);
    let built = [
        super::WBL,
        super::AGENT,
        super::GIT_HELPER,
        super::DOCKER_HELPER,
    ];
    if !built.iter().any(|b| Path::new(b) == path) || reachable_by_others(path) {
        return path.to_owned();
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        super::remove_stale_dirs("wbl-test-bins-");
        let dir = PathBuf::from(format!("/tmp/wbl-test-bins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        super::set_mode(&dir, 0o755);
        for b in built {
            let to = dir.join(Path::new(b).file_name().unwrap());
            if std::fs::hard_link(b, &to).is_err() {
                std::fs::copy(b, &to).unwrap();
            }
            super::set_mode(&to, 0o755);
        }
        dir
    });
    dir.join(path.file_name().unwrap())
}

fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors().skip(1).all(|d| {
        d.as_os_str().is_empty()
            || std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}
