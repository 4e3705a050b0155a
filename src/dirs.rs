//! The user's home directory and configuration file. The agent's socket and the files beside it are
//! `crate::rendezvous`, which client and agent share.

use std::path::PathBuf;

/// Environment variable naming wbl's configuration file (it overrides the default path).
pub const CONFIG_ENV: &str = "WBL_CONFIG";

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
