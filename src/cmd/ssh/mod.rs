//! `wbl ssh [--allow HOST]... [--ttl DURATION] -- [ssh arguments...]`: the system's OpenSSH
//! client with a restricted agent socket forwarded to the remote, so that `wbl exec`, `wbl
//! token` and git there get keys for the granted hosts while nothing is stored on that machine.
//!
//! How: a first ssh connection makes a fresh private directory on the remote
//! (`mkdir -m 700 /tmp/wbl-fwd-<32 hex>`), because sshd binds a remote forward as soon as the
//! session is authenticated, before any command runs, with whatever mode its
//! `StreamLocalBindMask` gives (0000 makes the socket `srwxrwxrwx`): inside a directory only
//! the user can enter, the socket is theirs alone under any server setting. Then the agent
//! opens a forward (a restricted socket of its own, see `agent::forward`) for as long as this
//! process holds its connection; ssh gets `-R <dir>/wbl-fwd-agent.sock:<that socket>` and
//! `ExitOnForwardFailure=yes`; the remote command (or login shell) runs under
//! `env WBL_SOCKET=<remote path> sh -c …`, a small POSIX wrapper that removes the socket file
//! and the directory when the session ends (sshd leaves them behind). The grant ends when ssh
//! exits (this process then closes its connection) or at `--ttl`.

// Forwards are Unix domain sockets; elsewhere only the refusal is built.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod options;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use wbl_proto::{ErrorCode, ForwardRequest, Target};

pub(super) use self::options::parse_ssh_args;
use super::{resolve_host, target_of};
pub use crate::cli::SshArgs;
use crate::client::{ClientError, connect_or_start};
use crate::rendezvous::{FORWARD_PREFIX, RuntimePaths};
use crate::shell::quote_for_any_shell;

/// The directory on the remote in which the private directory of the forwarded socket is made
/// unless `--remote-dir` says otherwise; `/tmp`'s sticky bit keeps other users from removing or
/// replacing what is made there.
pub const DEFAULT_REMOTE_DIR: &str = "/tmp";

/// The forwarded socket's file name in its private directory (a `wbl-fwd-` name, so a client
/// there never starts an agent in its place: `rendezvous::is_forwarded`).
pub(super) const REMOTE_SOCKET_NAME: &str = "wbl-fwd-agent.sock";

/// The longest socket path every remote can bind (`sun_path` is 104 bytes on macOS and the
/// BSDs, 108 on Linux, with the final NUL).
pub(super) const MAX_REMOTE_SOCKET_PATH: usize = 103;

/// The wrapper run by `sh` on the remote: removes the forwarded socket and its private
/// directory at the end (sshd leaves them behind), survives the interrupts meant for the
/// command it waits for, and runs the user's command with their shell (`$1`), or their login
/// shell.
const REMOTE_SCRIPT: &str = "trap 'rm -f \"$WBL_SOCKET\"; rmdir \"${WBL_SOCKET%/*}\" 2>/dev/null' EXIT; \
trap : INT QUIT; \
trap 'exit 129' HUP; trap 'exit 143' TERM; \
if [ $# -gt 0 ]; then \"${SHELL:-/bin/sh}\" -c \"$1\"; else \"${SHELL:-/bin/sh}\" -l; fi";

/// The remote command line: what the remote user's shell runs (ssh sends one string).
fn remote_command(socket: &str, user_command: Option<&str>) -> String {
    let mut line = format!(
        "exec env WBL_SOCKET={} sh -c {} wbl-ssh",
        quote_for_any_shell(socket),
        quote_for_any_shell(REMOTE_SCRIPT)
    );
    if let Some(cmd) = user_command {
        line.push(' ');
        line.push_str(&quote_for_any_shell(cmd));
    }
    line
}

/// 128 random bits in hex: the remote socket's name cannot be guessed (or pre-created).
pub(super) fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the remote socket name: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A host named by `--allow` (the grammar: `crate::grant`).
pub(super) fn allowed_target(text: &str) -> anyhow::Result<Target> {
    crate::grant::allowed_target(text).with_context(|| format!("--allow {text}"))
}

pub fn run(args: SshArgs) -> anyhow::Result<()> {
    #[cfg(not(unix))]
    {
        let _ = args;
        bail!("wbl ssh forwards a Unix domain socket, which this platform does not have");
    }
    #[cfg(unix)]
    run_unix(args)
}

/// `--hold NAME`'s name, which runs no ssh (so takes no ssh arguments).
pub(super) fn hold_name(args: &SshArgs) -> anyhow::Result<Option<String>> {
    match &args.hold {
        Some(_) if !args.ssh_args.is_empty() => {
            bail!("--hold runs no ssh: give it no ssh arguments")
        }
        name => Ok(name.clone()),
    }
}

/// The granted hosts: the current W&B host, then every `--allow`.
fn granted_hosts(allow: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut hosts = vec![target_of(&resolve_host(None)?)];
    for a in allow {
        let t = allowed_target(a)?;
        if !hosts.contains(&t) {
            hosts.push(t);
        }
    }
    Ok(hosts)
}

/// The account the grant hands out for the W&B host: `--account`, else the one chosen here
/// (`WBL_ACCOUNT`, this directory's binding, the host's default); `None` when none is chosen,
/// so the remote gets the host's only account.
fn granted_account(args: &SshArgs) -> anyhow::Result<Option<String>> {
    let host = resolve_host(None)?;
    Ok(crate::account::choose(&host, args.account.as_deref())?.name)
}

/// Opens a forward on a connection that must then be held for as long as it should last.
pub(super) fn open_forward(
    req: ForwardRequest,
) -> anyhow::Result<(crate::client::AgentClient, wbl_proto::ForwardInfo)> {
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    if agent.forwarded() {
        bail!(
            "WBL_SOCKET is itself a forwarded socket; `wbl ssh` forwards from the machine that \
             keeps the keys"
        );
    }
    let info = agent.forward(req).map_err(|e| match e {
        ClientError::Agent {
            code: ErrorCode::BadRequest,
            message,
        } if message.starts_with("bad request") => anyhow::anyhow!(
            "the running wbl-agent does not know forwards; restart it with `wbl agent stop`"
        ),
        e => anyhow::Error::from(e).context("while opening the forward"),
    })?;
    Ok((agent, info))
}

/// `--hold NAME`: keeps a named forward open until Ctrl-C, SIGTERM or SIGHUP, or its TTL, for
/// plain ssh (and VS Code and the like) configured with `RemoteForward` in `~/.ssh/config`.
#[cfg(unix)]
fn hold(name: String, args: &SshArgs) -> anyhow::Result<()> {
    let (agent, info) = open_forward(ForwardRequest {
        destination: format!("{name} (wbl ssh --hold)"),
        hosts: granted_hosts(&args.allow)?,
        ttl_secs: args.ttl.map(|d| d.as_secs()),
        name: Some(name),
        account: granted_account(args)?,
    })?;
    let hosts: Vec<String> = info.hosts.iter().map(|t| t.to_string()).collect();
    let until = match args.ttl {
        Some(t) => format!(
            "for {} or until Ctrl-C",
            crate::term::human_duration(t.as_secs())
        ),
        None => "until Ctrl-C".to_owned(),
    };
    crate::term::log(&format!(
        "holding forward {} for {} {until}: {}",
        info.id,
        hosts.join(", "),
        info.socket
    ));
    // Not the client's StreamLocalBindUnlink: it covers only local forwards, and the
    // server's option is what lets the next session bind the path again (docs/ssh.md).
    crate::term::log(&format!(
        "in ~/.ssh/config: RemoteForward /tmp/{FORWARD_PREFIX}%r.sock {} and \
         ExitOnForwardFailure yes; on the remote: export WBL_SOCKET=/tmp/{FORWARD_PREFIX}$USER.sock \
         (docs/ssh.md, \"With plain ssh\", says how the next session gets that path again)",
        info.socket
    ));
    let closed = agent
        .closed()
        .context("cannot watch the agent connection")?;
    let ended = wait_for_end(args.ttl, closed)?;
    drop(agent);
    if ended == End::AgentGone {
        bail!(
            "wbl-agent ended forward {} (it stopped or restarted); run `wbl ssh --hold {}` again",
            info.id,
            info.id
        );
    }
    Ok(())
}

/// Why [`wait_for_end`] returned.
#[cfg(unix)]
#[derive(Debug, PartialEq)]
pub(super) enum End {
    /// SIGINT, SIGTERM or SIGHUP, or the time limit.
    Asked,
    /// The agent closed the connection that holds the grant.
    AgentGone,
}

/// Blocks until SIGINT, SIGTERM or SIGHUP arrives, `limit` passes, or the agent ends the
/// connection behind `closed`. The signals are blocked first and taken with `sigwait` on a
/// thread (macOS has no `sigtimedwait`); another thread watches the connection.
#[cfg(unix)]
pub(super) fn wait_for_end(
    limit: Option<Duration>,
    closed: crate::client::Closed,
) -> anyhow::Result<End> {
    // Blocked in this thread (inherited by the waiting thread) before that thread exists.
    let Ok(set) = crate::sys::BlockedSignals::block(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
    else {
        bail!("cannot block signals to wait for them");
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let signals = tx.clone();
    std::thread::spawn(move || {
        set.wait();
        let _ = signals.send(End::Asked);
    });
    std::thread::spawn(move || {
        closed.wait();
        let _ = tx.send(End::AgentGone);
    });
    let end = match limit {
        Some(t) => rx.recv_timeout(t).ok(),
        None => rx.recv().ok(),
    };
    Ok(end.unwrap_or(End::Asked))
}

#[cfg(unix)]
fn run_unix(args: SshArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    // `wbl ssh --proxy` is `super::proxy::run_ssh`, which the binary calls instead.
    anyhow::ensure!(!args.proxy, "`wbl ssh --proxy` is not run here");
    if let Some(name) = hold_name(&args)? {
        return hold(name, &args);
    }
    let parsed = parse_ssh_args(&args.ssh_args).map_err(anyhow::Error::msg)?;
    let hosts = granted_hosts(&args.allow)?;
    let remote_dir = args
        .remote_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_REMOTE_DIR));
    if !remote_dir.is_absolute() {
        bail!("--remote-dir must be an absolute path on the remote machine");
    }
    let private_dir = remote_dir.join(format!("{FORWARD_PREFIX}{}", random_hex()?));
    let private_dir = private_dir
        .to_str()
        .context("--remote-dir is not valid UTF-8")?
        .to_owned();
    let remote = format!("{private_dir}/{REMOTE_SOCKET_NAME}");
    if remote.len() > MAX_REMOTE_SOCKET_PATH {
        bail!(
            "--remote-dir is too long: the forwarded socket's path {remote} would be longer than \
             the {MAX_REMOTE_SOCKET_PATH} bytes a socket path may have"
        );
    }
    if remote.contains(':') || remote.contains(char::is_whitespace) {
        bail!("the remote socket path {remote} has a `:` or a space, which ssh -R cannot take");
    }
    // Before the grant exists: the directory must be there when sshd binds the forward.
    make_remote_dir(&args.ssh_args[..parsed.head], &private_dir)?;

    let (agent, info) = open_forward(ForwardRequest {
        destination: parsed.destination.clone(),
        hosts,
        ttl_secs: args.ttl.map(|d| d.as_secs()),
        name: None,
        account: granted_account(&args)?,
    })?;
    if info.socket.contains(':') || info.socket.contains(char::is_whitespace) {
        bail!(
            "the local socket path {} has a `:` or a space, which ssh -R cannot take",
            info.socket
        );
    }

    let mut ssh = Command::new(ssh_program());
    ssh.arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-R")
        .arg(format!("{remote}:{}", info.socket));
    let user_command: Vec<String> = args.ssh_args[parsed.head..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if parsed.tty.is_none() && user_command.is_empty() && !parsed.no_command {
        // ssh gives a login session a terminal by itself, but not a remote command (ours).
        if std::io::stdin().is_terminal() {
            ssh.arg("-t");
        }
    }
    ssh.args(&args.ssh_args[..parsed.head]);
    if !parsed.no_command {
        // ssh joins the words of a remote command with spaces; so do we.
        let joined = (!user_command.is_empty()).then(|| user_command.join(" "));
        ssh.arg(remote_command(&remote, joined.as_deref()));
    }

    let hosts: Vec<String> = info.hosts.iter().map(|t| t.to_string()).collect();
    let until = match args.ttl {
        Some(t) => format!("for {}", crate::term::human_duration(t.as_secs())),
        None => "until the session ends".to_owned(),
    };
    let account = info
        .account
        .as_deref()
        .map(|a| format!(" (account {})", crate::text::printable(a)))
        .unwrap_or_default();
    crate::term::log(&format!(
        "forwarding keys for {}{account} to {} {until}",
        hosts.join(", "),
        parsed.destination
    ));
    if parsed.no_command {
        crate::term::log(&format!(
            "on the remote, set WBL_SOCKET={remote} (ssh -N runs no command to set it); \
             remove {private_dir} there when done"
        ));
    }

    let status = wait_ignoring_interrupts(ssh)?;
    // Ends the grant: the agent removes the restricted socket when this connection closes.
    drop(agent);
    passed_on(
        status,
        &parsed.destination,
        "ssh failed (exit 255); when it says the remote forward failed, the server must allow \
         Unix-socket forwarding (sshd_config `AllowStreamLocalForwarding yes`, the default)",
    )
}

/// ssh's (the remote command's) exit status, passed on silently as ssh does, with a hint on
/// stderr for the two that mean wbl's part failed: 255 (ssh itself, `on_255` says what to
/// check) and 127 (the remote has no such command).
#[cfg(unix)]
pub(super) fn passed_on(
    status: std::process::ExitStatus,
    destination: &str,
    on_255: &str,
) -> anyhow::Result<()> {
    let code = status.code().unwrap_or(255);
    if code == 255 {
        crate::term::log(on_255);
    }
    if code == 127 {
        remote_not_found_hint(destination);
    }
    if code != 0 {
        return Err(super::ExitError {
            code: u8::try_from(code).unwrap_or(255),
            message: String::new(),
        }
        .into());
    }
    Ok(())
}

/// Makes `dir` on the remote, mode 0700, with a connection of its own (`ssh [options]
/// destination mkdir -m 700 DIR`) before the session that forwards: sshd binds a remote
/// forward right after authentication, before any command of that session runs, so the
/// private directory has to exist by then. `mkdir` without `-p` fails on a name that exists,
/// so nobody can have made it first (and its 128 random bits cannot be guessed). The user's
/// stdin stays for the session: this connection reads none.
#[cfg(unix)]
fn make_remote_dir(ssh_head: &[OsString], dir: &str) -> anyhow::Result<()> {
    let mut ssh = Command::new(ssh_program());
    // No tty, and none of the user's port forwards (`-L 8888:…` would be bound twice).
    ssh.args(["-T", "-o", "ClearAllForwardings=yes"])
        .args(ssh_head)
        .arg(format!("mkdir -m 700 {}", quote_for_any_shell(dir)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let status = wait_ignoring_interrupts(ssh)?;
    match status.code() {
        Some(0) => Ok(()),
        Some(255) => bail!(
            "ssh failed (exit 255) while making the forward's private directory on the remote; \
             nothing was forwarded"
        ),
        _ => bail!(
            "could not make the forward's private directory {dir} on the remote (`mkdir -m 700` \
             failed, {status}); nothing was forwarded. The remote needs a shell that runs \
             commands, and --remote-dir (default {DEFAULT_REMOTE_DIR}) a directory you may \
             create in"
        ),
    }
}

/// After exit status 127 (the remote shell's "command not found"): most often `wbl` itself,
/// not installed there or not on the `PATH` of a non-interactive shell.
pub(super) fn remote_not_found_hint(destination: &str) {
    crate::term::log(&format!(
        "the remote command exited 127 (command not found); if {destination} said \
         `wbl: command not found`, install wbl there with one command (docs/ssh.md, \"Installing \
         wbl on the remote\"): ssh {destination} 'mkdir -p ~/.local/bin && cat > ~/.local/bin/wbl && \
         chmod 755 ~/.local/bin/wbl' < \"$(command -v wbl-static)\"; then call it as \
         ~/.local/bin/wbl, or put ~/.local/bin on PATH at the top of the remote ~/.bashrc \
         (one-shot commands do not read ~/.profile)"
    ));
}

/// The ssh client: `$WBL_SSH` when set, else `ssh` from `PATH`.
pub(super) fn ssh_program() -> OsString {
    std::env::var_os("WBL_SSH")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OsStr::new("ssh").to_owned())
}

/// Runs ssh and waits for it. SIGINT, SIGQUIT and SIGHUP reach ssh (same process group) and it
/// decides; wbl outlives it to end the grant and pass on its status. A handler (not
/// `SIG_IGN`, which a child would inherit) is reset to the default in ssh when it execs.
#[cfg(unix)]
pub(super) fn wait_ignoring_interrupts(
    mut ssh: Command,
) -> anyhow::Result<std::process::ExitStatus> {
    let mut child = ssh.spawn().map_err(|e| {
        anyhow::anyhow!(
            "cannot run {}: {e}; wbl ssh needs the OpenSSH client",
            Path::new(&ssh_program()).display()
        )
    })?;
    outlive_interrupts();
    child.wait().context("while waiting for ssh")
}

/// From now on SIGINT, SIGQUIT and SIGHUP do not end this process (its child, in the same
/// process group, gets them and decides); a child started later gets the default back when
/// it execs.
#[cfg(unix)]
pub(super) fn outlive_interrupts() {
    crate::sys::outlive_signals(&[libc::SIGINT, libc::SIGQUIT, libc::SIGHUP]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_command_sets_the_socket_and_runs_the_command() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("wbl-fwd-x");
        std::fs::create_dir(&dir).unwrap();
        let sock = dir.join(REMOTE_SOCKET_NAME);
        std::fs::write(&sock, "").unwrap();
        let line = remote_command(
            sock.to_str().unwrap(),
            Some("printf '%s|' \"$WBL_SOCKET\"; exit 3"),
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("SHELL", "/bin/sh")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}|", sock.display())
        );
        assert!(!sock.exists(), "the wrapper removes the socket at the end");
        assert!(!dir.exists(), "and its private directory");
    }

    #[test]
    fn allowed_hosts() {
        assert_eq!(
            allowed_target("git.example.com").unwrap(),
            Target::new("https", "git.example.com")
        );
        assert_eq!(
            allowed_target("http://h:8080/").unwrap(),
            Target::new("http", "h:8080")
        );
        assert!(allowed_target("ftp://h").is_err());
    }
}
