//! The client's subcommands, one module each. Each returns `anyhow::Result`; `main` prints
//! errors as one `wbl: error: …` line.

pub mod agent;
pub mod completions;
pub mod credential;
pub mod docker_credential;
pub mod doctor;
pub mod exec;
pub mod log;
pub mod login;
pub mod logout;
pub mod man;
pub mod migrate;
pub mod openbao;
pub mod setup_git;
pub mod status;
pub mod token;

use wbl_proto::{Query, Target};

use crate::wandb::host::HostUrl;
use crate::wandb::sources::{Settings, WandbEnv, pick_host};

/// The user name W&B keys are stored under (the SDK authenticates as `api:KEY`).
pub const WANDB_USER: &str = "api";

/// A fatal error with its own exit status (e.g. 127 for a command `wbl exec` cannot find).
/// `main` prints it like any other error and exits with `code`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub code: u8,
    pub message: String,
}

/// The host a command acts on, as the SDK picks it: `--host`, else `WANDB_BASE_URL`, else
/// `base_url` in the settings files (workspace over global), else the W&B cloud.
pub fn resolve_host(flag: Option<&str>) -> anyhow::Result<HostUrl> {
    let env = WandbEnv::from_env()?;
    let settings = Settings::load(&env);
    pick_host(flag, &env, &settings)
}

/// The keychain target of a W&B host: its scheme and `host[:port]`, as netrc names it.
pub fn target_of(host: &HostUrl) -> Target {
    Target::new(host.scheme(), host.netloc())
}

/// The query for a host's W&B key.
pub fn wandb_query(host: &HostUrl) -> Query {
    Query {
        target: target_of(host),
        username: Some(WANDB_USER.to_owned()),
    }
}
