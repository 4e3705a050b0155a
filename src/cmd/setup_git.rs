//! `wbl setup-git`: make git ask wbl for the credentials of one URL, by adding
//! `credential.<url>.helper = wbl` (git runs `git-credential-wbl`; its absolute path when it
//! is not on `PATH`) to the global (or repository) git config.
//!
//! Runs the real `git config` (the value names a program, never a secret). Idempotent: the
//! entry is added once; other helpers of the URL are left alone, except older wbl entries (a
//! `wbl credential` helper or a `git-credential-wbl` at another path, e.g. before a reinstall
//! or from before the helper had its own program), which are replaced.
//! `--remove` deletes wbl's entries only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

use super::resolve_host;
use crate::cli::SetupGitArgs;
use crate::git::is_wbl_helper;
use crate::shell::shell_quote;

/// Which git config file to edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    Local,
}

impl Scope {
    fn flag(self) -> &'static str {
        match self {
            Scope::Global => "--global",
            Scope::Local => "--local",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Scope::Global => "your global git config",
            Scope::Local => "this repository's git config",
        }
    }
}

/// The name of wbl's git helper program; git runs it for `credential.helper = wbl`.
pub use crate::git::GIT_HELPER;

/// The helper value that makes git run this install's helper:
/// - `wbl`, git's short form (as `libsecret`, `osxkeychain` or `manager`), when
///   `git-credential-wbl` is on `PATH` (`helper_on_path`);
/// - else the absolute path of the `git-credential-wbl` beside `exe` (this `wbl`);
/// - else `<exe> credential`, the same helper as a subcommand of `wbl`.
///
/// A path is written as it is when it needs no quoting (git runs absolute helper paths
/// through the shell as they are), else as `!'/path with space/…'`.
pub fn helper_value(exe: &Path, helper_on_path: bool) -> anyhow::Result<String> {
    if helper_on_path {
        return Ok("wbl".to_owned());
    }
    let beside = exe.with_file_name(format!("{GIT_HELPER}{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        return command_value(&beside, "");
    }
    command_value(exe, " credential")
}

fn command_value(program: &Path, args: &str) -> anyhow::Result<String> {
    let path = program
        .to_str()
        .with_context(|| format!("the path of wbl ({}) is not valid UTF-8", program.display()))?;
    // git for Windows runs helpers with its POSIX shell, which takes forward slashes.
    #[cfg(windows)]
    let forward = path.replace('\\', "/");
    #[cfg(windows)]
    let path = forward.as_str();
    let quoted = shell_quote(path);
    if quoted == path && path.starts_with('/') {
        Ok(format!("{path}{args}"))
    } else {
        Ok(format!("!{quoted}{args}"))
    }
}

/// Whether an executable `git-credential-wbl` is on `PATH`, where git looks for `wbl`.
fn helper_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    let name = format!("{GIT_HELPER}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(&name))
        .any(|p| is_executable(&p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The running executable, without Linux's ` (deleted)` suffix after a reinstall.
fn current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("while finding the path of wbl")?;
    if !exe.exists()
        && let Some(s) = exe.to_str()
        && let Some(stripped) = s.strip_suffix(" (deleted)")
    {
        return Ok(PathBuf::from(stripped));
    }
    Ok(exe)
}

fn git(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("git")
        .args(args)
        .output()
        .context("while running `git config` (is git installed and on PATH?)")
}

fn git_ok(args: &[&str]) -> anyhow::Result<()> {
    let out = git(args)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            msg.trim().trim_start_matches("fatal: ")
        );
    }
    Ok(())
}

pub fn run(args: SetupGitArgs) -> anyhow::Result<()> {
    let host = resolve_host(args.host.as_deref())?;
    let url = host.as_str();
    let key = format!("credential.{url}.helper");
    let ours = helper_value(&current_exe()?, helper_on_path())?;
    // `--global` is the default; clap refuses it together with `--local`.
    let config = if args.local {
        Scope::Local
    } else {
        Scope::Global
    };
    let scope = config.flag();

    let out = git(&["config", scope, "--get-all", &key])?;
    let existing: Vec<String> = match out.status.code() {
        Some(0) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        // 1: the key is not set.
        Some(1) => Vec::new(),
        _ => bail!(
            "`git config {scope} --get-all {key}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("fatal: ")
        ),
    };
    let stale: Vec<&String> = existing
        .iter()
        .filter(|v| **v != ours && is_wbl_helper(v))
        .collect();
    let present = existing.contains(&ours);

    if args.remove {
        let mut removed = 0;
        for value in stale
            .iter()
            .map(|s| s.as_str())
            .chain(present.then_some(ours.as_str()))
        {
            git_ok(&["config", scope, "--fixed-value", "--unset-all", &key, value])?;
            removed += 1;
        }
        if removed == 0 {
            eprintln!("wbl: git was not set up to use wbl for {url}; nothing to remove.");
        } else {
            eprintln!(
                "wbl: git no longer asks wbl for credentials for {url} ({key} removed from {}).",
                config.describe()
            );
        }
        return Ok(());
    }

    if present && stale.is_empty() {
        eprintln!(
            "wbl: git already asks wbl for credentials for {url} ({key} in {}).",
            config.describe()
        );
        return Ok(());
    }
    if !present {
        git_ok(&["config", scope, "--add", &key, &ours])?;
    }
    for value in &stale {
        git_ok(&["config", scope, "--fixed-value", "--unset-all", &key, value])?;
        eprintln!("wbl: replaced an older wbl helper: {value}");
    }
    eprintln!(
        "wbl: git now asks wbl for credentials for {url} ({key} = {ours} in {}).",
        config.describe()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn helper_values_are_quoted_for_the_shell() {
        assert_eq!(helper_value(Path::new("/x/wbl"), true).unwrap(), "wbl");
        assert_eq!(
            helper_value(Path::new("/usr/local/bin/wbl"), false).unwrap(),
            "/usr/local/bin/wbl credential"
        );
        assert_eq!(
            helper_value(Path::new("/opt/my tools/wbl"), false).unwrap(),
            "!'/opt/my tools/wbl' credential"
        );
        assert_eq!(
            helper_value(Path::new("/o'brien/wbl"), false).unwrap(),
            "!'/o'\"'\"'brien/wbl' credential"
        );
        // The helper program beside wbl, when there is one.
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join(GIT_HELPER);
        std::fs::write(&helper, "").unwrap();
        // (a temporary directory's path needs no quoting)
        assert_eq!(
            helper_value(&dir.path().join("wbl"), false).unwrap(),
            helper.to_str().unwrap()
        );
    }

    #[test]
    fn recognises_wbl_helpers_only() {
        assert!(is_wbl_helper("wbl"));
        assert!(is_wbl_helper("/usr/local/bin/git-credential-wbl"));
        assert!(is_wbl_helper("!'/opt/my tools/git-credential-wbl'"));
        assert!(is_wbl_helper("/usr/local/bin/wbl credential"));
        assert!(is_wbl_helper("!'/opt/my tools/wbl' credential"));
        assert!(is_wbl_helper("!'C:/Program Files/wbl/wbl.exe' credential"));
        assert!(is_wbl_helper("C:/wbl/git-credential-wbl.exe"));
        assert!(!is_wbl_helper("store"));
        assert!(!is_wbl_helper("wbl2"));
        assert!(!is_wbl_helper("cache --timeout 300"));
        assert!(!is_wbl_helper("/usr/bin/wbl-other credential"));
        assert!(!is_wbl_helper("/usr/local/bin/wbl credential --extra"));
        assert!(!is_wbl_helper("/usr/local/bin/git-credential-wbl --extra"));
        assert!(!is_wbl_helper("!f() { echo password=x; }; f"));
    }
}
