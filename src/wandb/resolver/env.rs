//! The environment variables and directories the SDK consults (`WANDB_*`, `NETRC`, `~`, the
//! current directory), read once.
//!
//! Invariant: read only by [`WandbEnv::from_env`]; everything else asks this value.

use std::path::{Path, PathBuf};

use wbl_proto::Secret;

use crate::wandb::netrc::netrc_path;

/// The environment variables and directories the SDK consults, read once.
#[derive(Debug, Clone)]
pub struct WandbEnv {
    /// `~`.
    pub(super) home: PathBuf,
    /// `WANDB_API_KEY`, when set and non-empty.
    pub(super) api_key: Option<Secret>,
    /// `WANDB_IDENTITY_TOKEN_FILE`, when set and non-empty.
    pub(super) identity_token_file: Option<String>,
    /// `WANDB_BASE_URL`, when set and non-empty.
    pub(super) base_url: Option<String>,
    /// `WANDB_APP_URL`, when set and non-empty (the web app, for the authorize link).
    pub(super) app_url: Option<String>,
    /// `WANDB_CONFIG_DIR`, when set and non-empty.
    pub(super) config_dir: Option<String>,
    /// `WANDB_DIR`, else the current directory: where `wandb/settings` is looked for.
    pub(super) root_dir: PathBuf,
    /// `NETRC`, when set and non-empty.
    pub(super) netrc: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl WandbEnv {
    /// Reads the process environment. Fails only when there is no home directory at all.
    pub fn from_env() -> anyhow::Result<WandbEnv> {
        let home = crate::dirs::home_dir().ok_or_else(|| {
            anyhow::anyhow!("cannot find your home directory; set HOME and try again")
        })?;
        let root_dir = match var("WANDB_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Ok(WandbEnv {
            home,
            api_key: var("WANDB_API_KEY").map(Secret::new),
            identity_token_file: var("WANDB_IDENTITY_TOKEN_FILE"),
            base_url: var("WANDB_BASE_URL"),
            app_url: var("WANDB_APP_URL"),
            config_dir: var("WANDB_CONFIG_DIR"),
            root_dir,
            netrc: var("NETRC"),
        })
    }

    /// The same environment as run in `dir`: the workspace settings file is looked for
    /// there, unless `WANDB_DIR` names another place.
    pub fn run_in(mut self, dir: &Path) -> WandbEnv {
        if var("WANDB_DIR").is_none() {
            self.root_dir = dir.to_owned();
        }
        self
    }

    /// `~`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `WANDB_API_KEY`, when set and non-empty.
    pub fn api_key(&self) -> Option<&Secret> {
        self.api_key.as_ref()
    }

    /// `WANDB_BASE_URL`, when set and non-empty.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// `WANDB_APP_URL`, when set and non-empty.
    pub fn app_url(&self) -> Option<&str> {
        self.app_url.as_deref()
    }

    /// The netrc file the SDK would use (it need not exist).
    pub fn netrc_path(&self) -> PathBuf {
        netrc_path(self.netrc.as_deref(), &self.home, cfg!(windows))
    }
}
