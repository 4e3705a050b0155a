//! `wbl logout`: remove a host's W&B key (both addresses of a Forge-served deployment) or, with
//! `--all`, every W&B key wbl holds, from the keychain and the agent's cache; git credentials
//! only with `--git`. Then say what would still log the SDK in (`WANDB_API_KEY`, plaintext
//! copies in any netrc or settings file), as the resolver finds them.

use anyhow::{Context, bail};
use wbl_proto::Query;

use super::{WANDB_USER, wandb_query};
use crate::cli::LogoutArgs;
use crate::client::connect_or_start;
use crate::rendezvous::RuntimePaths;
use crate::term;
use crate::wandb::resolver::{self, Place, Resolver};

pub fn run(LogoutArgs { host, all, git }: LogoutArgs) -> anyhow::Result<()> {
    let resolver = Resolver::from_env()?;
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    let hosts = if all {
        let list = agent.list().context("while listing the stored keys")?;
        let mut removed = 0;
        let mut kept = 0;
        for c in list {
            let url = c.target.to_string();
            // W&B keys are the `api` user's; anything else is a git credential.
            if c.username != WANDB_USER && !git {
                kept += 1;
                continue;
            }
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
            term::log(if git {
                "No keys were stored."
            } else {
                "No W&B keys were stored."
            });
        }
        if kept > 0 {
            term::log(&format!(
                "Kept {kept} git credential(s); `wbl logout --all --git` removes them too."
            ));
        }
        resolver.known_hosts().0
    } else {
        let host = resolver.pick_host(host.as_deref())?;
        if let Some(config) = crate::config::load()?
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
        let mut n = 0;
        let linked = resolver::keychain_hosts(&host);
        // Two addresses of one deployment (Forge): read both keys first, so that removing two
        // different keys is said (either one answered for both addresses until now).
        let mut removed = Vec::new();
        for h in &linked {
            // (Not over a forward, which may erase nothing: no key handed out for nothing.)
            let before = if linked.len() > 1 && !agent.forwarded() {
                crate::client::not_found_is_none(agent.get(wandb_query(h)))
                    .context("while reading the key")?
                    .map(|c| c.password)
            } else {
                None
            };
            let erased = agent
                .erase(wandb_query(h))
                .context("while removing the key")?;
            if erased > 0 {
                term::log(&format!("Removed the API key for {h} from the keychain."));
                removed.extend(before.map(|k| (h.clone(), k)));
            }
            n += erased;
        }
        if let [(a, ka), (b, kb)] = removed.as_slice()
            && ka.expose() != kb.expose()
        {
            term::log(&format!(
                "The keys for {a} and {b} were different keys; both are removed (one \
                 deployment: either answered for both addresses)."
            ));
        }
        if n == 0 {
            term::log(&format!("No API key was stored for {host}."));
        }
        resolver::with_aliases(std::slice::from_ref(&host))
    };
    let inv = resolver.inventory(&hosts);
    for k in &inv.keys {
        if let Place::Netrc { .. } = k.place {
            term::warn(&format!(
                "{} still has a plaintext key for {}, which the W&B SDK will use; remove it with `wbl migrate --host {}`.",
                k.place,
                k.host.netloc(),
                k.host
            ));
        }
    }
    for f in resolver.settings.api_key_files() {
        term::warn(&format!(
            "{} still has a plaintext api_key, which the W&B SDK will use; remove it with `wbl migrate`.",
            f.path.display()
        ));
    }
    if resolver.env.api_key.is_some() {
        term::warn("WANDB_API_KEY is set in this environment; the W&B SDK will still use it.");
    }
    Ok(())
}
