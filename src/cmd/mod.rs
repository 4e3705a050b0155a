//! The client's subcommands, one module each. Each returns `anyhow::Result`; `main` prints
//! errors as one `wbl: error: …` line.

pub mod agent;
pub mod login;
pub mod logout;
pub mod status;
pub mod token;

use wbl_proto::{Query, Target};

use crate::wandb::host::{DEFAULT_BASE_URL, HostUrl};

/// The user name W&B keys are stored under (the SDK authenticates as `api:KEY`).
pub const WANDB_USER: &str = "api";

/// The host a command acts on: `--host`, else `WANDB_BASE_URL`, else the W&B cloud.
pub fn resolve_host(flag: Option<&str>) -> anyhow::Result<HostUrl> {
    let env = std::env::var("WANDB_BASE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let raw = flag.map(str::to_owned).or(env);
    let raw = raw.as_deref().unwrap_or(DEFAULT_BASE_URL);
    Ok(HostUrl::parse(raw)?)
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
