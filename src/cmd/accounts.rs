//! `wbl accounts`, `wbl bind`, `wbl unbind` and `wbl switch`: list every host's accounts, the
//! default of each host and the bound directories; record or remove which account a directory
//! uses, or which one a host uses by default (config.toml, through `crate::account`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use wbl_proto::{Target, user_account};

use crate::account::{self, tilde};
use crate::cli::{AccountsArgs, BindArgs, SwitchArgs, UnbindArgs};
use crate::client::{AgentClient, connect_or_start};
use crate::rendezvous::RuntimePaths;
use crate::term;
use crate::text::printable;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{Resolver, WandbEnv};

/// The accounts the agent has for each target (credentials without a path), by target.
fn accounts_by_target(agent: &mut AgentClient) -> anyhow::Result<BTreeMap<Target, Vec<String>>> {
    let mut out: BTreeMap<Target, Vec<String>> = BTreeMap::new();
    for c in agent.list().context("while listing the stored keys")? {
        if c.target.path.is_none() {
            out.entry(c.target)
                .or_default()
                .push(user_account(&c.username).to_owned());
        }
    }
    for names in out.values_mut() {
        names.sort();
        names.dedup();
    }
    Ok(out)
}

pub fn run(args: AccountsArgs) -> anyhow::Result<()> {
    if args.names {
        // For completions: never starts the agent; nothing when it does not run.
        let Some(mut agent) = AgentClient::connect_if_running(&RuntimePaths::from_env())? else {
            return Ok(());
        };
        let host = Resolver::from_env()?.pick_host(args.host.as_deref())?;
        if let Some(names) = accounts_by_target(&mut agent)?.get(&super::target_of(&host)) {
            for n in names {
                println!("{}", printable(n));
            }
        }
        return Ok(());
    }
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    let by_target = accounts_by_target(&mut agent)?;
    let config = crate::config::load()?;
    let file = config.as_ref().map(|c| tilde(&c.file)).unwrap_or_default();
    let mut hosts: Vec<Target> = by_target.keys().cloned().collect();
    if let Some(c) = &config {
        for h in c
            .binds
            .iter()
            .map(|b| &b.host)
            .chain(c.default_accounts.iter().map(|d| &d.host))
        {
            let t = super::target_of(h);
            if !hosts.contains(&t) {
                hosts.push(t);
            }
        }
    }
    if hosts.is_empty() {
        println!("No accounts: no key is stored. `wbl login` stores one.");
        return Ok(());
    }
    for t in &hosts {
        println!("{}", printable(&t.to_string()));
        let names = by_target.get(t).cloned().unwrap_or_default();
        println!(
            "  accounts: {}",
            if names.is_empty() {
                "none stored".to_owned()
            } else {
                printable(&names.join(", ")).into_owned()
            }
        );
        let Some(c) = &config else { continue };
        let same = |h: &HostUrl| super::target_of(h) == *t;
        for d in c.default_accounts.iter().filter(|d| same(&d.host)) {
            let missing = if names.contains(&d.account) {
                ""
            } else {
                " (no such account)"
            };
            println!(
                "  default:  {}{missing} ({file} line {})",
                printable(&d.account),
                d.line
            );
        }
        for b in c.binds.iter().filter(|b| same(&b.host)) {
            let missing = if names.contains(&b.account) {
                ""
            } else {
                " (no such account)"
            };
            println!(
                "  bound:    {} -> {}{missing} ({file} line {})",
                printable(&tilde(&b.dir)),
                printable(&b.account),
                b.line
            );
        }
    }
    Ok(())
}

/// The directory a binding is about: `dir` or the working directory, made absolute with its
/// links resolved (as the working directory is reported when the binding is looked up).
fn directory(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let real =
        std::fs::canonicalize(&dir).with_context(|| format!("cannot use {}", dir.display()))?;
    if !real.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    Ok(real)
}

/// The W&B host of `dir` as the SDK run there picks it: `--host`, else its `wandb/settings`
/// `base_url`, `WANDB_BASE_URL`, the global settings, the cloud.
fn host_of(dir: &Path, flag: Option<&str>) -> anyhow::Result<HostUrl> {
    Resolver::load(WandbEnv::from_env()?.run_in(dir)).pick_host(flag)
}

pub fn bind(args: BindArgs) -> anyhow::Result<()> {
    account::checked_name(&args.account)?;
    let dir = directory(args.dir.as_deref())?;
    let host = host_of(&dir, args.host.as_deref())?;
    let (file, replaced) = account::bind(&dir, &host, &args.account)?;
    term::log(&format!(
        "{} {} to account {} for {host} in {}.",
        if replaced { "Rebound" } else { "Bound" },
        tilde(&dir),
        args.account,
        tilde(&file)
    ));
    warn_if_missing(&host, &args.account);
    Ok(())
}

pub fn unbind(args: UnbindArgs) -> anyhow::Result<()> {
    let dir = directory(args.dir.as_deref())?;
    let host = match &args.host {
        Some(h) => Some(HostUrl::parse(h)?),
        None => None,
    };
    let (file, n) = account::unbind(&dir, host.as_ref())?;
    if n == 0 {
        anyhow::bail!(
            "{} is not bound to an account{} in {}",
            tilde(&dir),
            host.map(|h| format!(" for {h}")).unwrap_or_default(),
            tilde(&file)
        );
    }
    term::log(&format!(
        "Removed {n} binding(s) of {} from {}.",
        tilde(&dir),
        tilde(&file)
    ));
    Ok(())
}

pub fn switch(args: SwitchArgs) -> anyhow::Result<()> {
    account::checked_name(&args.account)?;
    let host = super::resolve_host(args.host.as_deref())?;
    let file = account::switch(&host, &args.account)?;
    term::log(&format!(
        "Account {} is now the default for {host} (in {}); bindings and WBL_ACCOUNT still come \
         first.",
        args.account,
        tilde(&file)
    ));
    warn_if_missing(&host, &args.account);
    Ok(())
}

/// A warning when the agent runs and has no such account for the host (it is not started for
/// this: the binding is kept either way, and using it says what is missing).
fn warn_if_missing(host: &HostUrl, account: &str) {
    let Ok(Some(mut agent)) = AgentClient::connect_if_running(&RuntimePaths::from_env()) else {
        return;
    };
    let Ok(by_target) = accounts_by_target(&mut agent) else {
        return;
    };
    let names = by_target
        .get(&super::target_of(host))
        .cloned()
        .unwrap_or_default();
    if !names.iter().any(|n| n == account) {
        term::warn(&format!(
            "there is no account {account} for {host} yet; store its key with `wbl login \
             --account {account}{}`",
            account::host_flag(host)
        ));
    }
}
