//! `wbl logout`: remove a host's W&B key (both addresses of a Forge-served deployment) or, with
//! `--all`, every W&B key wbl holds, from the keychain and the agent's cache; git credentials
//! only with `--git`. Then say what would still log the SDK in (`WANDB_API_KEY`, plaintext
//! copies in any netrc or settings file), as the resolver finds them.

use anyhow::{Context, bail};
use wbl_proto::{Account, DEFAULT_ACCOUNT, Query, Target, user_account};

use super::{WANDB_USER, wandb_query};
use crate::cli::LogoutArgs;
use crate::client::connect_or_start;
use crate::rendezvous::RuntimePaths;
use crate::term;
use crate::wandb::resolver::{self, Resolver};

pub fn run(
    LogoutArgs {
        host,
        all,
        git,
        account,
    }: LogoutArgs,
) -> anyhow::Result<()> {
    if let Some(a) = &account {
        crate::account::checked_name(a)?;
    }
    let resolver = Resolver::from_env()?;
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    let hosts = if all {
        let list = agent.list().context("while listing the stored keys")?;
        // W&B keys: the `api` user's (the account `default`), and every account of a host that
        // has one or that the W&B settings name; anything else is a git credential.
        let known: Vec<Target> = resolver
            .known_hosts()
            .0
            .iter()
            .map(super::target_of)
            .collect();
        let wandb_hosts: Vec<Target> = list
            .iter()
            .filter(|c| c.username == WANDB_USER && c.target.path.is_none())
            .map(|c| c.target.clone())
            .chain(known)
            .collect();
        let mut removed = 0;
        let mut kept = 0;
        for c in list {
            let url = c.target.to_string();
            let is_wandb = c.username == WANDB_USER
                || (c.target.path.is_none() && wandb_hosts.contains(&c.target));
            if !is_wandb && !git {
                kept += 1;
                continue;
            }
            let n = agent
                .erase(Query {
                    target: c.target,
                    username: Some(c.username.clone()),
                    account: Default::default(),
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
        let account = match account {
            Some(a) => Some(a),
            None => which_account(&mut agent, &host)?,
        };
        match account {
            None => term::log(&format!("No API key was stored for {host}.")),
            Some(account) => {
                let query = |h: &crate::wandb::host::HostUrl| Query {
                    account: Account::Named(account.clone()),
                    ..wandb_query(h)
                };
                let of = if account == DEFAULT_ACCOUNT {
                    String::new()
                } else {
                    format!(" of account {account}")
                };
                let mut n = 0;
                let linked = resolver::keychain_hosts(&host);
                // Two addresses of one deployment (Forge): read both keys first, so that
                // removing two different keys is said (either one answered for both addresses
                // until now).
                let mut removed = Vec::new();
                for h in &linked {
                    // (Not over a forward, which may erase nothing: no key handed out for
                    // nothing.)
                    let before = if linked.len() > 1 && !agent.forwarded() {
                        crate::client::not_found_is_none(agent.get(query(h)))
                            .context("while reading the key")?
                            .map(|c| c.password)
                    } else {
                        None
                    };
                    let erased = agent.erase(query(h)).context("while removing the key")?;
                    if erased > 0 {
                        term::log(&format!(
                            "Removed the API key{of} for {h} from the keychain."
                        ));
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
                    let under = if account == DEFAULT_ACCOUNT {
                        String::new()
                    } else {
                        format!(" under account {account}")
                    };
                    term::log(&format!("No API key was stored for {host}{under}."));
                }
            }
        }
        resolver::with_aliases(std::slice::from_ref(&host))
    };
    for w in resolver.plaintext_warnings(&hosts) {
        term::warn(&w);
    }
    if resolver.env().api_key().is_some() {
        term::warn("WANDB_API_KEY is set in this environment; the W&B SDK will still use it.");
    }
    Ok(())
}

/// The account `wbl logout` without `--account` removes: the host's only one; with several,
/// the one the user names on a terminal, else an error naming them. `None`: it has none.
fn which_account(
    agent: &mut crate::client::AgentClient,
    host: &crate::wandb::host::HostUrl,
) -> anyhow::Result<Option<String>> {
    // A forward lists nothing (and erases nothing): let the erase be refused for what it is.
    if agent.forwarded() {
        return Ok(Some(DEFAULT_ACCOUNT.to_owned()));
    }
    let target = super::target_of(host);
    let mut names: Vec<String> = agent
        .list()
        .context("while listing the stored keys")?
        .into_iter()
        .filter(|c| c.target == target)
        .map(|c| user_account(&c.username).to_owned())
        .collect();
    names.sort();
    names.dedup();
    match names.len() {
        0 => return Ok(None),
        1 => return Ok(names.pop()),
        _ => {}
    }
    let list = names.join(", ");
    if !term::can_prompt() {
        bail!(
            "{} accounts for {host} ({list}); say which to remove with `wbl logout --account NAME`",
            names.len()
        );
    }
    eprint!(
        "{}{} accounts for {host} ({list}); which one to remove? ",
        term::PREFIX,
        names.len()
    );
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("while reading the account name")?;
    let answer = line.trim();
    if !names.iter().any(|n| n == answer) {
        bail!(
            "`{}` is not one of {list}; nothing removed",
            crate::text::printable(answer)
        );
    }
    Ok(Some(answer.to_owned()))
}
