//! `wbl login KEY`: validate the key as the W&B SDK does and hand it to the agent.

use anyhow::{Context, bail};
use wbl_proto::{Credential, Secret};

use super::{WANDB_USER, resolve_host, target_of};
use crate::client::connect_or_start;
use crate::dirs::RuntimePaths;
use crate::wandb::apikey::check_api_key;

pub struct LoginArgs {
    pub key: Option<Secret>,
    pub host: Option<String>,
}

pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    let host = resolve_host(args.host.as_deref())?;
    let Some(key) = args.key else {
        bail!("No API key configured. Use `wbl login KEY` to log in.");
    };
    if let Some(problem) = check_api_key(key.expose()) {
        bail!("{problem}");
    }
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    agent
        .store(Credential::new(target_of(&host), WANDB_USER, key))
        .context("while storing the key")?;
    eprintln!(
        "wbl: Stored the API key for {} in the keychain.",
        host.as_str()
    );
    Ok(())
}
