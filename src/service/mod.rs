//! Running the agent with the login session: systemd user units (Linux) and a launchd
//! LaunchAgent (macOS), rendered from the templates in `systemd/` and `launchd/` with the path
//! of the installed `wbl-agent`. Pure text in, text out; `wbl agent install` writes the results.

pub mod launchd;
pub mod systemd;

use std::path::{Path, PathBuf};

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
