//! Running the agent with the login session: systemd user units (Linux) and a launchd
//! LaunchAgent (macOS), rendered from the templates in `systemd/` and `launchd/` with the path
//! of the installed `wbl-agent`. Pure text in, text out; `wbl agent install` writes the results.

pub mod launchd;
pub mod systemd;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why a service file cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "cannot find the wbl-agent program next to {beside} or on PATH; install both programs with `cargo install --locked --path .`"
    )]
    AgentNotFound { beside: String },
    #[error("the path {path:?} cannot go into a service file: {why}")]
    BadPath { path: PathBuf, why: &'static str },
}

/// The path as UTF-8 without control characters (newlines would break a unit file).
fn printable(path: &Path) -> Result<&str, ServiceError> {
    let s = path.to_str().ok_or_else(|| ServiceError::BadPath {
        path: path.to_owned(),
        why: "it is not valid UTF-8",
    })?;
    if s.chars().any(char::is_control) {
        return Err(ServiceError::BadPath {
            path: path.to_owned(),
            why: "it contains control characters",
        });
    }
    if !path.is_absolute() {
        return Err(ServiceError::BadPath {
            path: path.to_owned(),
            why: "it is not absolute",
        });
    }
    Ok(s)
}

/// The absolute path of the `wbl-agent` to run from a service: `$WBL_AGENT_BIN`, else the one
/// beside this program, else the first on `$PATH`.
pub fn installed_agent() -> Result<PathBuf, ServiceError> {
    let name = format!("wbl-agent{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok();
    let candidates = std::env::var_os("WBL_AGENT_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(exe.iter().map(|e| e.with_file_name(&name)))
        .chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|dir| dir.join(&name)),
        );
    for candidate in candidates {
        if candidate.is_file()
            && let Ok(abs) = candidate.canonicalize()
        {
            return Ok(abs);
        }
    }
    Err(ServiceError::AgentNotFound {
        beside: exe
            .map(|e| e.display().to_string())
            .unwrap_or_else(|| "wbl".into()),
    })
}

/// Whether (and where) the login-session service is installed.
#[derive(Serialize, Default)]
pub struct ServiceState {
    /// `systemd`, `launchd`, or `none` where neither applies.
    pub manager: &'static str,
    pub installed: bool,
    /// systemd: the socket unit is enabled (linked into `sockets.target.wants`).
    pub enabled: bool,
    pub path: Option<String>,
}

/// The login-session service as its files say (no service manager is asked).
pub fn service_state() -> ServiceState {
    #[cfg(target_os = "macos")]
    {
        let Some(home) = crate::dirs::home_dir() else {
            return ServiceState {
                manager: "launchd",
                ..Default::default()
            };
        };
        let path = launchd::plist_path(&home);
        let installed = path.exists();
        ServiceState {
            manager: "launchd",
            installed,
            enabled: installed,
            path: Some(path.display().to_string()),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        if cfg!(windows) {
            return ServiceState {
                manager: "none",
                ..Default::default()
            };
        }
        let Some(dir) = systemd::user_unit_dir() else {
            return ServiceState {
                manager: "systemd",
                ..Default::default()
            };
        };
        ServiceState {
            manager: "systemd",
            installed: dir.join(systemd::SOCKET_UNIT).exists()
                && dir.join(systemd::SERVICE_UNIT).exists(),
            enabled: dir
                .join("sockets.target.wants")
                .join(systemd::SOCKET_UNIT)
                .exists(),
            path: Some(dir.display().to_string()),
        }
    }
}

/// True when a systemd user manager answers for this session (its private socket exists).
#[cfg(not(any(target_os = "macos", windows)))]
pub fn user_manager_running() -> bool {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .is_some_and(|d| d.join("systemd").join("private").exists())
}
