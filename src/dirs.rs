//! The user's home directory, wbl's configuration file and its state directory (the access
//! log). The agent's socket and the files beside it are `crate::rendezvous`, which client and
//! agent share.

use std::path::PathBuf;

/// Environment variable naming wbl's configuration file (it overrides the default path).
pub const CONFIG_ENV: &str = "WBL_CONFIG";

/// Where the agent keeps what outlives it (the access log): `$XDG_STATE_HOME/wbl` when that
/// is an absolute path, else `~/.local/state/wbl` (the XDG default) on Linux and other Unix,
/// `~/Library/Logs/wbl` on macOS (where launchd's logs of the agent already go), and
/// `%LOCALAPPDATA%\wbl` on Windows. `None` without a home directory.
pub fn state_dir() -> Option<PathBuf> {
    resolve_state_dir(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        home_dir(),
    )
}

/// The rule of [`state_dir`] without reading the environment (for tests).
pub fn resolve_state_dir(xdg_state: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = xdg_state.filter(|p| p.is_absolute()) {
        return Some(dir.join("wbl"));
    }
    #[cfg(windows)]
    {
        let _ = home;
        directories::BaseDirs::new().map(|d| d.data_local_dir().join("wbl"))
    }
    #[cfg(target_os = "macos")]
    {
        home.map(|h| h.join("Library/Logs/wbl"))
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        home.map(|h| h.join(".local/state/wbl"))
    }
}

/// The access log: `access.log` in [`state_dir`]; rotated copies are `access.log.1` (newest)
/// to `access.log.N` beside it.
pub fn access_log() -> Option<PathBuf> {
    state_dir().map(|d| d.join("access.log"))
}

/// wbl's configuration file (OpenBao servers and routes): `$WBL_CONFIG`, else
/// `$XDG_CONFIG_HOME/wbl/config.toml`, else `~/.config/wbl/config.toml` (the platform's
/// configuration directory off Linux). The second value is true when `WBL_CONFIG` named it.
pub fn config_file() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            if cfg!(target_os = "linux") {
                home_dir().map(|h| h.join(".config"))
            } else {
                directories::BaseDirs::new().map(|d| d.config_dir().to_path_buf())
            }
        })?;
    Some((base.join("wbl").join("config.toml"), false))
}

/// The user's home directory, from `directories` (which honours `$HOME` on Unix).
pub fn home_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;

    #[test]
    fn state_dir_follows_xdg() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            resolve_state_dir(Some("/s".into()), home.clone()),
            Some(PathBuf::from("/s/wbl"))
        );
        // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
        assert_eq!(
            resolve_state_dir(Some("rel".into()), home.clone()),
            Some(PathBuf::from("/home/u/.local/state/wbl"))
        );
        assert_eq!(
            resolve_state_dir(None, home),
            Some(PathBuf::from("/home/u/.local/state/wbl"))
        );
        assert_eq!(resolve_state_dir(None, None), None);
    }
}
