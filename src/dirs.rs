//! The user's home directory. The agent's socket and the files beside it are
//! `crate::rendezvous`, which client and agent share.

use std::path::PathBuf;

/// The user's home directory, from `directories` (which honours `$HOME` on Unix).
pub fn home_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}
