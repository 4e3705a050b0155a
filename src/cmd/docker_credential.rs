//! `docker-credential-wbl store|get|erase|list|version`: a Docker credential helper
//! (docker/docker-credential-helpers' protocol) whose store is the keychain, through the agent.
//!
//! `store` reads `{"ServerURL","Username","Secret"}` on stdin; `get` reads a server URL and
//! prints the same JSON; `erase` reads a server URL; `list` prints `{"<ServerURL>":"<Username>"}`
//! for the registry credentials only; `version` prints a line. As the helpers do, an error is
//! one line of text on **stdout** and exit status 1, and a miss is exactly
//! `credentials not found in native keychain`, which clients compare verbatim. The user name
//! `<token>` marks the secret as an identity token; it is stored and given back as it is.
//! Mapping of server URLs onto keychain targets: [`crate::docker`].

use std::io::Write;

use anyhow::{Context, anyhow, bail};
use wbl_proto::{Credential, Query, Target};
use zeroize::Zeroizing;

use crate::client::{connect_or_start, get_once, not_found_is_none};
use crate::docker::{self, Credentials, MISSING_USERNAME, NOT_FOUND};
use crate::rendezvous::RuntimePaths;

/// The largest request read from stdin.
const MAX_INPUT: usize = 64 * 1024;

/// Usage line, printed on stdout as the helpers do.
pub const USAGE: &str = "Usage: docker-credential-wbl <store|get|erase|list|version>";

/// What `version` (and `--version`) prints.
pub fn version_line() -> String {
    format!(
        "docker-credential-wbl (wbl) {}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn read_stdin() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let Some(buf) =
        super::read_at_most(std::io::stdin().lock(), MAX_INPUT).context("reading stdin")?
    else {
        bail!(
            "the request on stdin is larger than {} KiB",
            MAX_INPUT / 1024
        );
    };
    Ok(buf)
}

/// The server URL sent on stdin (`get`, `erase`), as the helpers read it: every line joined,
/// surrounding white space trimmed.
fn read_server_url() -> anyhow::Result<String> {
    let input = read_stdin()?;
    let text = std::str::from_utf8(&input).map_err(|_| anyhow!("the server URL is not UTF-8"))?;
    let url: String = text.lines().collect();
    Ok(url.trim().to_owned())
}

fn target_of(server_url: &str) -> anyhow::Result<Target> {
    Ok(docker::target(server_url)?)
}

fn write_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(out.flush()?)
}

/// Runs one action. The caller prints an error on stdout and exits 1.
pub fn run(action: &str) -> anyhow::Result<()> {
    match action {
        "store" => store(),
        "get" => get(),
        "erase" => erase(),
        "list" => list(),
        "version" => write_out(&version_line()),
        other => bail!("docker-credential-wbl: unknown action: {other}"),
    }
}

fn store() -> anyhow::Result<()> {
    // The secret comes on stdin: connected first (the agent reads which program this is while
    // it still can), sealed before it is read (`client::seal`).
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    crate::client::seal();
    let input = read_stdin()?;
    // serde_json's messages can quote the input (a secret): say only where it went wrong.
    let creds: Credentials = serde_json::from_slice(&input).map_err(|e| {
        anyhow!(
            "the credentials on stdin are not the helpers' JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let target = target_of(&creds.server_url)?;
    if creds.username.is_empty() {
        bail!("{MISSING_USERNAME}");
    }
    if creds.secret.expose().contains('\0') || creds.username.contains('\0') {
        bail!("the credentials contain a NUL byte");
    }
    // One credential per registry, as the other helpers keep it: logging in as another user
    // replaces the old one.
    let others: Vec<String> = agent
        .list()?
        .into_iter()
        .filter(|c| c.target == target && c.username != creds.username)
        .map(|c| c.username)
        .collect();
    for user in others {
        agent.erase(Query {
            target: target.clone(),
            username: Some(user),
            account: Default::default(),
        })?;
    }
    agent.store(Credential::new(target, creds.username, creds.secret))?;
    Ok(())
}

fn get() -> anyhow::Result<()> {
    let server_url = read_server_url()?;
    let target = target_of(&server_url)?;
    let found = not_found_is_none(get_once(
        &RuntimePaths::from_env(),
        Query {
            target: target.clone(),
            username: None,
            account: Default::default(),
        },
    ))?;
    // A query without a path matches every path; only this registry's own entry counts (an
    // entry without a path sorts first, so it is the one found when it exists).
    let Some(cred) = found.filter(|c| c.target.path == target.path) else {
        bail!("{NOT_FOUND}");
    };
    let mut text = Zeroizing::new(serde_json::to_string(&Credentials {
        server_url,
        username: cred.username.clone(),
        secret: cred.password.clone(),
    })?);
    text.push('\n');
    write_out(&text)
}

fn erase() -> anyhow::Result<()> {
    let server_url = read_server_url()?;
    let target = target_of(&server_url)?;
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let count = agent.erase(Query {
        target,
        username: None,
        account: Default::default(),
    })?;
    if count == 0 {
        bail!("{NOT_FOUND}");
    }
    Ok(())
}

fn list() -> anyhow::Result<()> {
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let map: std::collections::BTreeMap<String, String> = agent
        .list()?
        .into_iter()
        .filter(|c| c.target.protocol == docker::PROTOCOL)
        .map(|c| (docker::server_url(&c.target), c.username))
        .collect();
    let mut text = serde_json::to_string(&map)?;
    text.push('\n');
    write_out(&text)
}
