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

/// How long a command's end waits for the agent to end its proxy.
#[cfg(unix)]
const END_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// `wbl exec --proxy -- CMD [ARGS…]`.
pub fn run_exec(args: crate::cli::ExecArgs) -> anyhow::Result<()> {
    let c = super::exec::Chosen::of(&args.command, args.host, args.account)?;
    let program_path = super::exec::resolved(c.program);
    exec(&c.host, &c.choice, c.program, c.args, &program_path)
}

/// `wbl ssh --proxy [--hold NAME]`.
pub fn run_ssh(args: crate::cli::SshArgs) -> anyhow::Result<()> {
    #[cfg(unix)]
    if let Some(name) = super::ssh::hold_name(&args)? {
        return hold(name, &args);
    }
    ssh(&args)
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
    // Ends the proxy, and waits until the agent has ended it: once this exits, the
    // placeholder opens nothing.
    #[cfg(unix)]
    agent.end(END_WAIT);
    #[cfg(not(unix))]
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

/// The wrapper `sh` runs on the remote for `wbl ssh --proxy`: takes the placeholder from the
/// private directory's file (a builtin `read`: it is never in an argument list, which every
/// user of the remote may read), removes the file and the directory, and runs the user's
/// command with their shell (`$1`), or their login shell, surviving the interrupts meant for
/// it as the forward's wrapper does.
#[cfg(unix)]
const REMOTE_SCRIPT: &str = "d=$WBL_PROXY_DIR; unset WBL_PROXY_DIR; \
IFS= read -r WANDB_API_KEY < \"$d/key\"; export WANDB_API_KEY; rm -f \"$d/key\"; \
if [ -n \"${WBL_SOCKET:-}\" ]; then trap 'rm -f \"$WBL_SOCKET\"; rmdir \"$d\" 2>/dev/null' EXIT; \
else rmdir \"$d\" 2>/dev/null; fi; \
trap : INT QUIT; trap 'exit 129' HUP; trap 'exit 143' TERM; \
if [ $# -gt 0 ]; then \"${SHELL:-/bin/sh}\" -c \"$1\"; else \"${SHELL:-/bin/sh}\" -l; fi";

/// The remote command line of `wbl ssh --proxy`.
#[cfg(unix)]
fn remote_command(dir: &str, env: &[(&str, String)], user_command: Option<&str>) -> String {
    use crate::shell::quote_for_any_shell as quote;
    let mut line = format!("exec env WBL_PROXY_DIR={}", quote(dir));
    for (k, v) in env.iter().filter(|(k, _)| *k != "WANDB_API_KEY") {
        line.push_str(&format!(" {k}={}", quote(v)));
    }
    line.push_str(&format!(" sh -c {} wbl-ssh", quote(REMOTE_SCRIPT)));
    if let Some(cmd) = user_command {
        line.push(' ');
        line.push_str(&quote(cmd));
    }
    line
}

/// A loopback port on the remote for the forward, from the dynamic range's lower part (few
/// services listen there); ssh fails (`ExitOnForwardFailure`) if it is taken.
#[cfg(unix)]
fn remote_port() -> anyhow::Result<u16> {
    let mut b = [0u8; 2];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a port: {e}"))?;
    Ok(20000 + u16::from_le_bytes(b) % 30000)
}

/// `wbl ssh --proxy -- HOST [CMD]`: the remote gets the placeholder and a forwarded loopback
/// port of a proxy in the agent; nothing is installed or forwarded to the remote but that.
#[cfg(unix)]
pub fn ssh(args: &crate::cli::SshArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use std::process::{Command, Stdio};

    use super::ssh::ssh_program;
    use crate::shell::quote_for_any_shell as quote;

    let parsed = super::ssh::parse_ssh_args(&args.ssh_args).map_err(anyhow::Error::msg)?;
    if parsed.no_command {
        anyhow::bail!(
            "wbl ssh --proxy gives the remote command (or login shell) its variables; ssh -N \
             runs none: use `wbl ssh --proxy --hold NAME` with a RemoteForward instead"
        );
    }
    let host = super::resolve_host(None)?;
    let choice = crate::account::choose(&host, args.account.as_deref())?;
    let remote_dir = args
        .remote_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(super::ssh::DEFAULT_REMOTE_DIR));
    if !remote_dir.is_absolute() {
        anyhow::bail!("--remote-dir must be an absolute path on the remote machine");
    }
    let dir = remote_dir
        .join(format!(
            "{}{}",
            crate::rendezvous::FORWARD_PREFIX,
            super::ssh::random_hex()?
        ))
        .to_str()
        .context("--remote-dir is not valid UTF-8")?
        .to_owned();

    let (agent, info) = open(
        &host,
        &choice,
        format!("ssh:{}", parsed.destination),
        ProxyListen::Socket,
        args.ttl.map(|d| d.as_secs()),
        None,
    )?;
    if info.address.contains(':') || info.address.contains(char::is_whitespace) {
        anyhow::bail!(
            "the local socket path {} has a `:` or a space, which ssh -R cannot take",
            info.address
        );
    }
    // `--allow`: the other hosts' keys (git and the like) over a forward of their own, as
    // `wbl ssh` gives them; never the W&B host's, which only the proxy uses.
    let forward = if args.allow.is_empty() {
        None
    } else {
        let mut hosts: Vec<wbl_proto::Target> = Vec::new();
        for a in &args.allow {
            let t = super::ssh::allowed_target(a)?;
            if !hosts.contains(&t) {
                hosts.push(t);
            }
        }
        let (held, finfo) = super::ssh::open_forward(wbl_proto::ForwardRequest {
            destination: parsed.destination.clone(),
            hosts,
            account: None,
            ttl_secs: args.ttl.map(|d| d.as_secs()),
            name: None,
        })?;
        if finfo.socket.contains(':') || finfo.socket.contains(char::is_whitespace) {
            anyhow::bail!(
                "the local socket path {} has a `:` or a space, which ssh -R cannot take",
                finfo.socket
            );
        }
        Some((held, finfo))
    };
    let port = match args.proxy_port {
        Some(p) => p,
        None => remote_port()?,
    };
    let mut env = sdk_env(&info, &format!("http://127.0.0.1:{port}"), &host);
    let remote_socket = format!("{dir}/{}", super::ssh::REMOTE_SOCKET_NAME);
    if forward.is_some() {
        if remote_socket.len() > super::ssh::MAX_REMOTE_SOCKET_PATH {
            anyhow::bail!(
                "--remote-dir is too long: the forwarded socket's path {remote_socket} would be \
                 longer than the {} bytes a socket path may have",
                super::ssh::MAX_REMOTE_SOCKET_PATH
            );
        }
        env.push(("WBL_SOCKET", remote_socket.clone()));
    }

    // The private directory and the placeholder in it, before the session: the placeholder
    // goes on ssh's standard input, never on a command line.
    let mut mk = Command::new(ssh_program());
    mk.args(["-T", "-o", "ClearAllForwardings=yes"])
        .args(&args.ssh_args[..parsed.head])
        .arg(format!(
            "umask 077 && mkdir -m 700 {d} && cat > {d}/key",
            d = quote(&dir)
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = mk
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run ssh: {e}; wbl ssh needs the OpenSSH client"))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("ssh's standard input")?;
        let line = zeroize::Zeroizing::new(format!("{}\n", info.placeholder.expose()));
        // A failed write shows as ssh's failure below.
        let _ = stdin.write_all(line.as_bytes());
    }
    let status = child.wait().context("while waiting for ssh")?;
    if !status.success() {
        anyhow::bail!(
            "could not make the proxy's private directory {dir} on the remote ({status}); \
             nothing was forwarded. The remote needs a shell that runs commands, and \
             --remote-dir (default {}) a directory you may create in",
            super::ssh::DEFAULT_REMOTE_DIR
        );
    }

    let mut ssh = Command::new(ssh_program());
    ssh.arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-R")
        .arg(format!("127.0.0.1:{port}:{}", info.address));
    if let Some((_, finfo)) = &forward {
        ssh.arg("-R")
            .arg(format!("{remote_socket}:{}", finfo.socket));
    }
    let user_command: Vec<String> = args.ssh_args[parsed.head..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if parsed.tty.is_none() && user_command.is_empty() && std::io::stdin().is_terminal() {
        ssh.arg("-t");
    }
    ssh.args(&args.ssh_args[..parsed.head]);
    let joined = (!user_command.is_empty()).then(|| user_command.join(" "));
    ssh.arg(remote_command(&dir, &env, joined.as_deref()));

    let until = match args.ttl {
        Some(t) => format!("for {}", crate::term::human_duration(t.as_secs())),
        None => "until the session ends".to_owned(),
    };
    crate::term::log(&format!(
        "proxying {host} (account {}) for {} on its 127.0.0.1:{port} {until}; the remote gets \
         a placeholder, not the key",
        crate::text::printable(&info.account),
        parsed.destination
    ));
    let status = super::ssh::wait_ignoring_interrupts(ssh)?;
    // Ends the proxy (and the forward), and waits until the agent has ended it.
    agent.end(END_WAIT);
    drop(forward);
    super::ssh::passed_on(
        status,
        &parsed.destination,
        &format!(
            "ssh failed (exit 255); when it says the remote port forwarding failed, port \
             {port} may be taken on the remote: run it again for another; remove {dir} there \
             if it is left"
        ),
    )
}

/// `wbl ssh --proxy --hold NAME`: keeps a proxy open on the socket
/// `<agent socket>.fwd-proxy.NAME` until Ctrl-C or `--ttl`, for a `RemoteForward` in
/// `~/.ssh/config`; prints the variables for the remote on standard output.
#[cfg(unix)]
pub fn hold(name: String, args: &crate::cli::SshArgs) -> anyhow::Result<()> {
    let host = super::resolve_host(None)?;
    let choice = crate::account::choose(&host, args.account.as_deref())?;
    let port = args.proxy_port.unwrap_or(PROXY_HOLD_PORT);
    let (agent, info) = open(
        &host,
        &choice,
        format!("ssh:{name} (wbl ssh --proxy --hold)"),
        ProxyListen::Socket,
        args.ttl.map(|d| d.as_secs()),
        Some(name.clone()),
    )?;
    let env = sdk_env(&info, &format!("http://127.0.0.1:{port}"), &host);
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for (k, v) in &env {
            writeln!(out, "export {k}={}", crate::shell::quote_for_any_shell(v))?;
        }
        out.flush()?;
    }
    crate::term::log(&format!(
        "holding proxy {} for {host} until Ctrl-C: in ~/.ssh/config, RemoteForward \
         127.0.0.1:{port} {} and ExitOnForwardFailure yes; on the remote, the three variables \
         printed above (docs/proxy.md)",
        info.id, info.address
    ));
    let closed = agent
        .closed()
        .context("cannot watch the agent connection")?;
    let ended = super::ssh::wait_for_end(args.ttl, closed)?;
    // Ends the proxy, and waits until the agent has removed its socket.
    agent.end(END_WAIT);
    if ended == super::ssh::End::AgentGone {
        anyhow::bail!(
            "wbl-agent ended proxy {} (it stopped or restarted); run `wbl ssh --proxy --hold {}` \
             again",
            info.id,
            info.id
        );
    }
    Ok(())
}

/// The remote port `--hold` names in its hints unless `--proxy-port` says otherwise.
#[cfg(unix)]
pub const PROXY_HOLD_PORT: u16 = 48_080;

#[cfg(not(unix))]
pub fn ssh(_args: &crate::cli::SshArgs) -> anyhow::Result<()> {
    anyhow::bail!("wbl ssh forwards a Unix domain socket, which this platform does not have")
}

#[cfg(not(unix))]
pub fn hold(_name: String, _args: &crate::cli::SshArgs) -> anyhow::Result<()> {
    anyhow::bail!("wbl ssh forwards a Unix domain socket, which this platform does not have")
}
