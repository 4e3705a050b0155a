//! `wbl credential get|store|erase`: a git credential helper (gitcredentials(7)) whose store is
//! the keychain, through the agent — the same store as `wbl login` keys.
//!
//! git runs it with the operation as the last argument and the request on stdin. The request is
//! read (at most [`MAX_INPUT`] bytes) and checked before anything is sent to the agent, so
//! garbage never reaches the socket; for `store` and `erase`, whose requests carry a password,
//! the connection is made first (see [`run`]). `get` prints nothing when nothing matches, as git expects; operations this
//! helper does not know are ignored, as gitcredentials(7) asks.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use wbl_proto::{CredentialInfo, Query, Target};
use zeroize::Zeroizing;

use crate::cli::CredentialArgs;
use crate::client::{connect_or_start, get_once_by, not_found_is_none};
use crate::git::credential::{CAPABILITIES, GitCredential, MAX_INPUT, get_response};
use crate::rendezvous::{Deadline, RuntimePaths};
use crate::wandb::resolver::{Lookup, keychain_alias};

/// Reads stdin up to [`MAX_INPUT`] bytes; more is an error (and is not read).
fn read_request(input: impl Read) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let Some(buf) = super::read_at_most(input, MAX_INPUT)
        .context("while reading the credential request from stdin")?
    else {
        bail!(
            "the credential request on stdin is larger than {} KiB; `wbl credential` reads \
             git's credential format (see `git help credential`) and is meant to be run by git \
             (set it up with `wbl setup-git`)",
            MAX_INPUT / 1024
        );
    };
    Ok(buf)
}

pub fn run(args: &CredentialArgs) -> anyhow::Result<()> {
    let operation = args.operation.as_str();
    match operation {
        "get" | "store" | "erase" => {}
        "capability" => {
            let mut out = std::io::stdout().lock();
            out.write_all(CAPABILITIES.as_bytes())?;
            return Ok(out.flush()?);
        }
        // gitcredentials(7): "If a helper receives any other operation, it should silently
        // ignore the request."
        _ => return Ok(()),
    }
    let paths = RuntimePaths::from_env();
    // `store` and `erase` requests carry the password: the agent is connected first (it reads
    // which program this is while it still can) and this process is sealed before the
    // password is read (`client::seal`). A `get` request carries no secret.
    let agent = match operation {
        "get" => None,
        _ => {
            let agent = connect_or_start(&paths)?;
            crate::client::seal();
            Some(agent)
        }
    };
    let input = read_request(std::io::stdin().lock())?;
    let req = GitCredential::parse(&input).context(
        "while reading the credential request from stdin (git's format: `key=value` lines, \
         see `git help credential`)",
    )?;
    let query = req
        .query()
        .context("while reading the credential request")?;
    if query.target.host.is_empty() {
        // e.g. `cert:///path`: nothing is stored without a host.
        return Ok(());
    }
    match (operation, agent) {
        (_, None) => {
            let Some(cred) = lookup(&paths, query)? else {
                return Ok(());
            };
            if let Some(text) = get_response(&cred, req.capability_authtype) {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
        }
        ("store", Some(mut agent)) => {
            let Some(cred) = req.to_store()? else {
                if !req.ephemeral {
                    eprintln!(
                        "wbl: warning: not storing a partial credential for {} (it needs a \
                         username and a password, or a pre-encoded credential)",
                        crate::text::printable(&query.target.to_string())
                    );
                }
                return Ok(());
            };
            if agent.forwarded() {
                // git stores after every successful use; over a forward (`wbl ssh`) the key
                // stays where it is kept, on the other machine. Quietly, as git expects.
                tracing::debug!("not storing over a forwarded socket");
                return Ok(());
            }
            agent
                .store(cred)
                .with_context(|| format!("while storing the credential for {}", query.target))?;
        }
        (_, Some(mut agent)) => {
            if agent.forwarded() {
                // A rejected key is not erased from the other machine's keychain by a remote.
                tracing::debug!("not erasing over a forwarded socket");
                return Ok(());
            }
            if req.password.is_some() || req.credential.is_some() {
                erase_matching(&mut agent, &req, &query)?;
                return Ok(());
            }
            agent
                .erase(query.clone())
                .with_context(|| format!("while erasing the credential for {}", query.target))?;
        }
    }
    Ok(())
}

/// The credential for a request: stored for its URL, else — for a W&B address served by
/// Forge and not routed to a store — stored for the other address of the same deployment (the
/// resolver's rule). A routed host is answered by its store only: its miss is git's "none".
/// Both lookups are one operation for git: they share one bound.
fn lookup(
    paths: &RuntimePaths,
    query: wbl_proto::Query,
) -> anyhow::Result<Option<wbl_proto::Credential>> {
    let deadline = &mut Deadline::from_env();
    match super::lookup(get_once_by(paths, query.clone(), deadline))
        .context("while looking up the credential")?
    {
        Lookup::Found(c) => return Ok(Some(c)),
        Lookup::RoutedMiss(why) => {
            tracing::debug!(%why, "the routed store has no such credential");
            return Ok(None);
        }
        Lookup::Missing => {}
    }
    let Some(alias) = keychain_alias(&query.target) else {
        return Ok(None);
    };
    let q = wbl_proto::Query {
        target: alias,
        username: query.username,
        account: Default::default(),
    };
    not_found_is_none(get_once_by(paths, q, deadline)).context("while looking up the credential")
}

/// git's erase with a password, as its credential-cache does it: every stored credential the
/// request matches is compared with the password on its own, and only those holding that
/// password are erased — a credential replaced since git read it, or another user's, stays.
fn erase_matching(
    agent: &mut crate::client::AgentClient,
    req: &GitCredential,
    query: &Query,
) -> anyhow::Result<()> {
    let candidates: Vec<CredentialInfo> = agent
        .list()
        .context("while looking up the credentials to erase")?
        .into_iter()
        .filter(|c| matches_query(query, &c.target, &c.username))
        .collect();
    if candidates.is_empty() {
        // A host routed to OpenBao is not in the list (its secret lives on the team's
        // server): compare the one credential the agent answers for the query.
        // Only compared with the rejected password: not a hand-out in the access log.
        agent.purpose(wbl_proto::Purpose::Check);
        let current = not_found_is_none(agent.get(query.clone()))
            .context("while looking up the credential to erase")?;
        if current.is_some_and(|cur| req.secrets_match(&cur)) {
            agent
                .erase(query.clone())
                .with_context(|| format!("while erasing the credential for {}", query.target))?;
        }
        return Ok(());
    }
    // Compare each candidate: (path, user, holds the password).
    let mut verdicts = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let exact = Query {
            target: c.target.clone(),
            username: Some(c.username.clone()),
            account: Default::default(),
        };
        let current = agent
            .get(exact)
            .context("while looking up a credential to erase")?;
        let same = current.is_some_and(|cur| {
            cur.target.path == c.target.path
                && cur.username == c.username
                && req.secrets_match(&cur)
        });
        verdicts.push((c, same));
    }
    for (c, same) in &verdicts {
        if !same {
            continue;
        }
        // A query without a path matches every path of that user: erase a path-less entry
        // only when every entry of that user holds the password too.
        if c.target.path.is_none()
            && verdicts
                .iter()
                .any(|(o, s)| !s && o.username == c.username && o.target.path.is_some())
        {
            continue;
        }
        agent
            .erase(Query {
                target: c.target.clone(),
                username: Some(c.username.clone()),
                account: Default::default(),
            })
            .with_context(|| format!("while erasing the credential for {}", c.target))?;
    }
    Ok(())
}

/// git's matching rule: protocol and host always; path and user name when the query has them.
fn matches_query(query: &Query, target: &Target, username: &str) -> bool {
    query.target.protocol == target.protocol
        && query.target.host == target.host
        && query
            .target
            .path
            .as_ref()
            .is_none_or(|p| Some(p) == target.path.as_ref())
        && query.username.as_ref().is_none_or(|u| u == username)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_bounded() {
        assert_eq!(read_request(&b"protocol=https\n"[..]).unwrap().len(), 15);
        assert_eq!(
            read_request(&vec![b'x'; MAX_INPUT][..]).unwrap().len(),
            MAX_INPUT
        );
        let e = read_request(&vec![b'x'; MAX_INPUT + 1][..]).unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }
}
