//! The client's side of the key-injecting proxy (`wbl exec --proxy`, `wbl ssh --proxy`): asks
//! the agent for a proxy on a connection held for as long as the proxy is to last, and names
//! the variables the W&B SDK is given (a placeholder key, the proxy's address, the real app
//! URL). The key itself never reaches this process.

use std::ffi::OsString;

use anyhow::Context;
use wbl_proto::{ErrorCode, ProxyInfo, ProxyListen, ProxyRequest};

use crate::client::{AgentClient, ClientError, connect_or_start};
use crate::rendezvous::RuntimePaths;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver;

/// Opens a proxy for `host`'s key of the chosen account; the returned connection holds it.
pub fn open(
    host: &HostUrl,
    choice: &crate::account::Choice,
    destination: String,
    listen: ProxyListen,
    ttl_secs: Option<u64>,
    name: Option<String>,
) -> anyhow::Result<(AgentClient, ProxyInfo)> {
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    if agent.forwarded() {
        anyhow::bail!(
            "WBL_SOCKET is a forwarded socket; a proxy is opened on the machine that keeps the \
             keys (`wbl ssh --proxy` from there)"
        );
    }
    let account = choice.account();
    let queries = resolver::keychain_hosts(host)
        .iter()
        .map(|h| resolver::keychain_query(h, &account))
        .collect();
    let req = ProxyRequest {
        upstream: host.as_str().to_owned(),
        queries,
        destination,
        listen,
        ttl_secs,
        name,
    };
    let info = agent.proxy(req).map_err(|e| match e {
        ClientError::Agent {
            code: ErrorCode::BadRequest,
            message,
        } if message.starts_with("bad request") => anyhow::anyhow!(
            "the running wbl-agent does not know proxies; restart it with `wbl agent stop`"
        ),
        ClientError::Agent {
            code: ErrorCode::NotFound,
            ..
        } => {
            let login = if host.is_cloud() {
                "wbl login".to_owned()
            } else {
                format!("wbl login --host {host}")
            };
            anyhow::anyhow!("no API key stored for {host}; run `{login}` first")
        }
        e => super::account_error(anyhow::Error::from(e)).context("while opening the proxy"),
    })?;
    Ok((agent, info))
}

/// The SDK's variables for a proxy reached at `base_url` (`http://127.0.0.1:PORT`): the
/// placeholder as the key, the proxy as the server, and the real app for printed links.
pub fn sdk_env(info: &ProxyInfo, base_url: &str, host: &HostUrl) -> Vec<(&'static str, String)> {
    let app = host.app_url(std::env::var("WANDB_APP_URL").ok().as_deref());
    vec![
        ("WANDB_API_KEY", info.placeholder.expose().to_owned()),
        ("WANDB_BASE_URL", base_url.to_owned()),
        ("WANDB_APP_URL", app),
    ]
}

/// `wbl exec --proxy`: runs the command as a child with the placeholder, holding the proxy's
/// connection until it exits; exits with its status.
pub fn exec(
    host: &HostUrl,
    choice: &crate::account::Choice,
    program: &std::ffi::OsStr,
    args: &[OsString],
    program_path: &str,
) -> anyhow::Result<()> {
    let (agent, info) = open(
        host,
        choice,
        format!("exec:{program_path}"),
        ProxyListen::Loopback,
        None,
        None,
    )?;
    let base = format!("http://{}", info.address);
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for (k, v) in sdk_env(&info, &base, host) {
        cmd.env(k, v);
    }
    let name = program.to_string_lossy().into_owned();
    // The command may dump core as it could without wbl (wbl's own limit is 0).
    #[cfg(unix)]
    crate::client::restore_core_limit();
    let mut child = cmd
        .spawn()
        .map_err(|e| super::exec::launch_error(e, &name))?;
    #[cfg(unix)]
    super::ssh::outlive_interrupts();
    let status = child
        .wait()
        .with_context(|| format!("while waiting for {name}"))?;
    // Ends the proxy: the agent closes its listener when this connection closes.
    drop(agent);
    exit_like(status)
}

/// Exits as the child did: its status, or 128 + the signal that ended it.
fn exit_like(status: std::process::ExitStatus) -> anyhow::Result<()> {
    #[cfg(unix)]
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1)
    };
    #[cfg(not(unix))]
    let code = status.code().unwrap_or(1);
    if code == 0 {
        return Ok(());
    }
    Err(super::ExitError {
        code: u8::try_from(code).unwrap_or(255),
        message: String::new(),
    }
    .into())
}
