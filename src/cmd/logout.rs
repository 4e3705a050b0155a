//! `wbl logout`: remove a host's key from the keychain and the agent's cache.

use super::{resolve_host, wandb_query};
use crate::client::connect_or_start;
use crate::dirs::RuntimePaths;

pub fn run(host: Option<&str>) -> anyhow::Result<()> {
    let host = resolve_host(host)?;
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let n = agent.erase(wandb_query(&host))?;
    if n == 0 {
        eprintln!("wbl: No API key was stored for {}.", host.as_str());
    } else {
        eprintln!(
            "wbl: Removed the API key for {} from the keychain.",
            host.as_str()
        );
    }
    Ok(())
}
