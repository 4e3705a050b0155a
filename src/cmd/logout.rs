//! `wbl logout`: remove a host's key (or, with `--all`, every key wbl holds) from the keychain
//! and the agent's cache, and say what would still log the SDK in (`WANDB_API_KEY`, plaintext
//! copies in netrc or the settings files).

use anyhow::{Context, bail};
use wbl_proto::Query;

use super::wandb_query;
use crate::cli::LogoutArgs;
use crate::client::connect_or_start;
use crate::rendezvous::RuntimePaths;
use crate::term;
use crate::wandb::sources::{Settings, WandbEnv, netrc_key, pick_host};

pub fn run(LogoutArgs { host, all }: LogoutArgs) -> anyhow::Result<()> {
    let env = WandbEnv::from_env()?;
    let settings = Settings::load(&env);
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    if all {
        let list = agent.list().context("while listing the stored keys")?;
        let mut removed = 0;
        for c in list {
            let url = c.target.to_string();
            let n = agent
                .erase(Query {
                    target: c.target,
                    username: Some(c.username.clone()),
                })
                .with_context(|| format!("while removing the key for {url}"))?;
            if n > 0 {
                term::log(&format!(
                    "Removed the key for {url} (user {}) from the keychain.",
                    c.username
                ));
                removed += n;
            }
        }
        if removed == 0 {
            term::log("No keys were stored.");
        }
    } else {
        let host = pick_host(host.as_deref(), &env, &settings)?;
        if let Ok(Some(config)) = crate::config::load()
            && let Some(route) = config.route(host.scheme(), host.netloc())
        {
            bail!(
                "the key of {host} is kept in OpenBao server `{}` ({}), shared with whoever \
                 reads it there; `wbl logout` does not delete it for everyone. To delete it: \
                 `bao kv delete -mount={} {}`",
                route.server.name,
                route.secret_name(),
                route.mount,
                route.path
            );
        }
        let n = agent
            .erase(wandb_query(&host))
            .context("while removing the key")?;
        if n == 0 {
            term::log(&format!("No API key was stored for {host}."));
        } else {
            term::log(&format!(
                "Removed the API key for {host} from the keychain."
            ));
        }
        let find = netrc_key(&env, host.netloc());
        if find.key.is_some() {
            term::warn(&format!(
                "{} still has a plaintext key for {}, which the W&B SDK will use; remove it with `wbl migrate --host {host}`.",
                find.path.display(),
                host.netloc()
            ));
        }
    }
    for f in settings.api_key_files() {
        term::warn(&format!(
            "{} still has a plaintext api_key, which the W&B SDK will use; remove it with `wbl migrate`.",
            f.path.display()
        ));
    }
    if env.api_key.is_some() {
        term::warn("WANDB_API_KEY is set in this environment; the W&B SDK will still use it.");
    }
    Ok(())
}
