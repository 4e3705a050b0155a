//! Whether git asks wbl for the W&B host's credentials: the helpers git would run for that
//! URL, worked out from `git config` the way git does it (every `credential.helper` and
//! `credential.<url>.helper` whose URL matches, in config order; an empty value clears the
//! list).

use std::path::{Path, PathBuf};
use std::process::Command;

use url::Url;

use super::{Ctx, Finding, TOOL_TIMEOUT, run_bounded};
use crate::git::is_wbl_helper;
use crate::shell::shlex_split;

/// `*` in a pattern's host label matches any run of characters within that label.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(text),
        Some((head, rest)) => {
            let Some(after) = text
                .get(..head.len())
                .filter(|h| h.eq_ignore_ascii_case(head))
                .map(|_| &text[head.len()..])
            else {
                return false;
            };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

/// git's `credential.<url>` matching for a request without a path or user name: same scheme,
/// host (with `*` wildcards per label) and port; the pattern may have no path or `/`, and no
/// user name.
fn url_matches(pattern: &str, target: &Url) -> bool {
    let Ok(p) = Url::parse(pattern) else {
        return false;
    };
    if !p.scheme().eq_ignore_ascii_case(target.scheme())
        || !p.username().is_empty()
        || p.port_or_known_default() != target.port_or_known_default()
        || !p.path().trim_end_matches('/').is_empty()
    {
        return false;
    }
    let (Some(ph), Some(th)) = (p.host_str(), target.host_str()) else {
        return false;
    };
    let (pl, tl): (Vec<&str>, Vec<&str>) = (ph.split('.').collect(), th.split('.').collect());
    pl.len() == tl.len() && pl.iter().zip(&tl).all(|(p, t)| glob(p, t))
}

/// The helpers git runs for `url`, from `git config --null --get-regexp` output.
pub(crate) fn helpers_for(config: &str, url: &str) -> Vec<String> {
    let Ok(target) = Url::parse(url) else {
        return Vec::new();
    };
    let mut helpers = Vec::new();
    for record in config.split('\0').filter(|r| !r.is_empty()) {
        let (key, value) = record.split_once('\n').unwrap_or((record, ""));
        let Some(middle) = key.strip_prefix("credential.") else {
            continue;
        };
        let applies = middle == "helper"
            || middle
                .strip_suffix(".helper")
                .is_some_and(|pattern| url_matches(pattern, &target));
        if !applies {
            continue;
        }
        if value.is_empty() {
            helpers.clear();
        } else {
            helpers.push(value.to_owned());
        }
    }
    helpers
}

/// The program a helper value runs (`!'/a b/wbl' credential` → `/a b/wbl`).
fn helper_program(value: &str) -> Option<String> {
    let command = value.strip_prefix('!').unwrap_or(value);
    shlex_split(command)?.into_iter().next()
}

/// What is missing for git to run the helper `value`, the way git finds it: a value starting
/// with `!` is a shell command (its program is looked up on `PATH` unless it has a `/`), an
/// absolute path is run as it is, and any other value `NAME` runs `git credential-NAME`, that
/// is `git-credential-NAME` from git's exec-path or `PATH`. `None` when the program is there.
fn missing_program(value: &str, exec_path: Option<&Path>) -> Option<String> {
    let program = helper_program(value)?;
    let shell = value.starts_with('!');
    if program.contains('/') || (!shell && Path::new(&program).is_absolute()) {
        return (!Path::new(&program).is_file())
            .then(|| format!("{program}, which does not exist"));
    }
    let name = if shell {
        program
    } else {
        format!("git-credential-{program}")
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = exec_path
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .any(|dir| {
            let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            p.is_file()
        });
    (!found).then(|| format!("{name}, which is not on PATH"))
}

/// git's exec-path (`git --exec-path`), where it finds its own `git-credential-*` programs.
fn exec_path() -> Option<PathBuf> {
    let mut cmd = Command::new("git");
    cmd.arg("--exec-path");
    let out = run_bounded(cmd, TOOL_TIMEOUT).ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches(['\r', '\n'])))
}

/// git's own plaintext helper.
fn is_store_helper(value: &str) -> bool {
    helper_program(value).is_some_and(|p| p == "store" || p.ends_with("git-credential-store"))
}

pub(super) fn helper(_ctx: &mut Ctx) -> Finding {
    let host = match crate::wandb::resolver::Resolver::from_env().and_then(|r| r.pick_host(None)) {
        Ok(h) => h,
        Err(e) => {
            return Finding::warning(
                format!("cannot tell which W&B host to check: {e:#}"),
                "fix WANDB_BASE_URL or base_url in your W&B settings (`wbl status` shows them)",
            );
        }
    };
    let url = host.as_str();
    let mut cmd = Command::new("git");
    cmd.args([
        "config",
        "--null",
        "--get-regexp",
        r"^credential\..*helper$",
    ]);
    let out = match run_bounded(cmd, TOOL_TIMEOUT) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::skipped("git is not installed");
        }
        Err(e) => {
            return Finding::warning(
                format!("`git config` failed: {e}"),
                "`git config --get-regexp credential` shows git's credential settings",
            );
        }
    };
    // Exit status 1: no such key.
    if !out.status.success() && out.status.code() != Some(1) {
        return Finding::warning(
            format!(
                "`git config` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "`git config --get-regexp credential` shows git's credential settings",
        );
    }
    let helpers = helpers_for(&String::from_utf8_lossy(&out.stdout), url);
    let setup = if host.is_cloud() {
        "`wbl setup-git`".to_owned()
    } else {
        format!("`wbl setup-git --host {url}`")
    };
    let Some(ours) = helpers.iter().find(|h| is_wbl_helper(h)) else {
        let others = if helpers.is_empty() {
            String::new()
        } else {
            format!(" (its helpers for that URL: {})", helpers.join(", "))
        };
        return Finding::warning(
            format!("git does not ask wbl for credentials for {url}{others}"),
            setup,
        );
    };
    if let Some(missing) = missing_program(ours, exec_path().as_deref()) {
        return Finding::warning(
            format!("git's wbl helper for {url} runs {missing}"),
            format!("{setup} (replaces the old entry)"),
        );
    }
    if helpers.iter().any(|h| is_store_helper(h)) {
        return Finding::warning(
            format!(
                "git asks wbl for {url}, but also its `store` helper, which writes every password to ~/.git-credentials in plaintext"
            ),
            "remove it: `git config --global --fixed-value --unset-all credential.helper store`, then `wbl migrate --git-credentials`",
        );
    }
    Finding::ok(format!("git asks wbl ({ours}) for credentials for {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entries: &[(&str, &str)]) -> String {
        entries.iter().map(|(k, v)| format!("{k}\n{v}\0")).collect()
    }

    #[test]
    fn helpers_follow_gits_matching() {
        // The same entries, in the same order, as a real git run showed them applied
        // (A, B, cleared, E, D, W; X has a path and does not match a request without one).
        let text = config(&[
            ("credential.https://api.wandb.ai.helper", "A"),
            ("credential.helper", "B"),
            ("credential.helper", ""),
            ("credential.helper", "E"),
            ("credential.https://API.wandb.ai/.helper", "D"),
            ("credential.https://*.wandb.ai.helper", "W"),
            ("credential.https://api.wandb.ai/x.helper", "X"),
            ("credential.http://api.wandb.ai.helper", "H"),
            ("credential.https://api.wandb.ai:8443.helper", "P"),
            ("credential.https://u@api.wandb.ai.helper", "U"),
            ("credential.https://*.ai.helper", "S"),
            ("credential.usehttppath", "true"),
        ]);
        assert_eq!(helpers_for(&text, "https://api.wandb.ai"), ["E", "D", "W"]);
        assert_eq!(helpers_for(&text, "https://api.wandb.ai:8443"), ["E", "P"]);
        assert_eq!(
            helpers_for("", "https://api.wandb.ai"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn globs_stay_within_a_label() {
        assert!(glob("*", "api"));
        assert!(glob("a*i", "api"));
        assert!(glob("*pi", "API"));
        assert!(!glob("a*x", "api"));
        assert!(!glob("", "api"));
    }

    #[test]
    fn helpers_are_found_where_git_looks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("git-credential-wbl"), "").unwrap();
        // A plain name runs `git credential-NAME`: git-credential-NAME, not NAME.
        assert_eq!(missing_program("wbl", Some(dir.path())), None);
        assert_eq!(
            missing_program("wbl-no-such-helper", Some(dir.path())).as_deref(),
            Some("git-credential-wbl-no-such-helper, which is not on PATH")
        );
        let abs = dir.path().join("git-credential-wbl");
        assert_eq!(missing_program(abs.to_str().unwrap(), None), None);
        assert_eq!(
            missing_program("!/no/such/dir/wbl credential", None).as_deref(),
            Some("/no/such/dir/wbl, which does not exist")
        );
    }

    #[test]
    fn helper_programs() {
        assert_eq!(
            helper_program("!'/opt/my tools/wbl' credential").as_deref(),
            Some("/opt/my tools/wbl")
        );
        assert!(is_store_helper("store --file ~/.creds"));
        assert!(is_store_helper("/usr/lib/git-core/git-credential-store"));
        assert!(!is_store_helper("cache"));
    }
}
