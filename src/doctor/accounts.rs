//! The `accounts` check: every `[[bind]]` and `[default_account]` of config.toml names an
//! account its host has (asked of a running agent, never started for it), so no directory's
//! commands fail on a missing account.

use super::{Ctx, Finding, TOOL_TIMEOUT, bounded};
use crate::account::tilde;
use crate::client::{AgentClient, ClientError};

pub(crate) fn accounts(ctx: &mut Ctx) -> Finding {
    let config = match crate::config::load() {
        Ok(Some(c)) => c,
        Ok(None) => return Finding::ok("no configuration file: no account bindings or defaults"),
        Err(_) => return Finding::skipped("config.toml cannot be used (see the openbao check)"),
    };
    if config.binds.is_empty() && config.default_accounts.is_empty() {
        return Finding::ok("no account bindings or defaults in config.toml");
    }
    let paths = ctx.paths.clone();
    let listed = bounded(TOOL_TIMEOUT, move || {
        let mut client = AgentClient::connect_within(&paths, TOOL_TIMEOUT)?;
        if client.forwarded() {
            return Ok(None);
        }
        client.list().map(Some)
    });
    let list = match listed {
        Some(Ok(Some(list))) => list,
        Some(Ok(None)) => {
            return Finding::skipped(
                "WBL_SOCKET is a forward: the accounts are on the other machine",
            );
        }
        Some(Err(ClientError::NotRunning { .. })) => {
            return Finding::skipped("the agent is not running: the accounts were not checked");
        }
        Some(Err(e)) => return Finding::skipped(format!("the accounts were not checked: {e}")),
        None => return Finding::skipped("the agent did not answer: the accounts were not checked"),
    };
    let has = |host: &crate::wandb::host::HostUrl, account: &str| {
        let target = crate::wandb::resolver::keychain_target(host);
        list.iter()
            .any(|c| c.target == target && wbl_proto::user_account(&c.username) == account)
    };
    let file = tilde(&config.file);
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    for b in &config.binds {
        if !has(&b.host, &b.account) {
            missing.push(format!(
                "{} is bound to account `{}` for {} ({file} line {}), which has no key",
                tilde(&b.dir),
                b.account,
                b.host,
                b.line
            ));
            fixes.push(format!(
                "`wbl login --account {}{}` or `wbl unbind {}`",
                b.account,
                crate::account::host_flag(&b.host),
                tilde(&b.dir)
            ));
        }
    }
    for d in &config.default_accounts {
        if !has(&d.host, &d.account) {
            missing.push(format!(
                "the default account of {} is `{}` ({file} line {}), which has no key",
                d.host, d.account, d.line
            ));
            fixes.push(format!(
                "`wbl login --account {}{}` or `wbl switch NAME` with an account of `wbl accounts`",
                d.account,
                crate::account::host_flag(&d.host)
            ));
        }
    }
    if missing.is_empty() {
        return Finding::ok(format!(
            "{} binding(s) and {} default(s), each naming an account that has a key",
            config.binds.len(),
            config.default_accounts.len()
        ));
    }
    Finding::warning(missing.join("; "), fixes.join("; "))
}
