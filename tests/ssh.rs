//! `wbl ssh` against a real OpenSSH server (`tests/support/sshd.rs`) on 127.0.0.1: the remote
//! side is this machine under a different, empty HOME with no agent, keychain or key file, so
//! the only way to a key is the forwarded socket. Checks what the remote may get (the granted
//! hosts' keys, through `wbl exec`, `wbl token` and git), what it may not (store, erase, list,
//! status, shutdown, ungranted hosts), that nothing is left on the remote, that the grant ends
//! with the session or its TTL, and that two forwards at once keep their grants apart.

#![cfg(target_os = "linux")]

mod common;
#[path = "support/remote.rs"]
mod remote;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, WBL, World, ok, stderr, stdout};
use remote::{field, read_until_checked, sq, unique_key};
use sshd::Sshd;

const OTHER_WANDB: &str = "https://wandb.other.test";
const GIT_HOST: &str = "git.other.test";

/// The "remote" machine: a HOME of its own holding nothing.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("wbl-remote-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Remote { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The remote command for `script`: a clean environment (no agent, keychain, bus or local
    /// socket; only the forwarded `WBL_SOCKET` from `wbl ssh`), the empty HOME, then `sh -c`.
    fn command(&self, script: &str) -> String {
        let h = self.home();
        format!(
            "env -i HOME={h} PATH=/usr/bin:/bin XDG_CONFIG_HOME={h}/.config \
             XDG_RUNTIME_DIR={h}/run GIT_CONFIG_NOSYSTEM=1 WBL=\"{WBL}\" \
             WBL_SOCKET=\"$WBL_SOCKET\" sh -c {}",
            sq(script),
            h = h.display()
        )
    }
}

fn wbl_ssh(world: &World, sshd: &Sshd, flags: &[&str], remote_command: &str) -> Command {
    let mut c = world.cmd(WBL);
    c.arg("ssh").args(flags).arg("--").args(sshd.ssh_args());
    c.arg(remote_command);
    c
}

/// Runs to completion within `limit`, else kills it (our child, by pid) and fails.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("wbl ssh did not finish within {limit:?}");
        }
    }
}

fn store(world: &World, protocol: &str, host: &str, user: &str, password: &str) {
    let mut c = world.cmd(WBL);
    c.args(["credential", "store"]).stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    write!(
        child.stdin.take().unwrap(),
        "protocol={protocol}\nhost={host}\nusername={user}\npassword={password}\n\n"
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A world with the cloud key, another W&B host's key and a git password stored locally.
fn world_with_keys(tag: &str) -> (World, String, String, String) {
    let world = World::new(Backend::Keyutils);
    let (key, other, git) = (
        unique_key(&format!("{tag}a")),
        unique_key(&format!("{tag}b")),
        unique_key(&format!("{tag}c")),
    );
    ok(world.wbl(&["login", &key]));
    store(&world, "https", "wandb.other.test", "api", &other);
    store(&world, "https", GIT_HOST, "alice", &git);
    (world, key, other, git)
}

fn forwards(world: &World) -> Vec<serde_json::Value> {
    let out = ok(world.wbl(&["status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["forwards"].as_array().unwrap().clone()
}

/// Every regular file below `dir` whose bytes contain one of `needles` (std's substring search:
/// a byte-window loop is far too slow in a debug build for all of /tmp).
fn files_containing(dir: &Path, needles: &[&str], hits: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_containing(&p, needles, hits),
            Ok(t) if t.is_file() => {
                if let Ok(bytes) = std::fs::read(&p) {
                    let text = String::from_utf8_lossy(&bytes);
                    if needles.iter().any(|n| text.contains(n)) {
                        hits.push(p);
                    }
                }
            }
            _ => {}
        }
    }
}

fn forward_sockets(world: &World) -> Vec<PathBuf> {
    std::fs::read_dir(world.socket().parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".sock.fwd-"))
        .collect()
}

#[test]
fn remote_gets_granted_keys_only_and_keeps_nothing() {
    let sshd = Sshd::start();
    let (world, key, other, git) = world_with_keys("s1");
    let remote = Remote::new();
    let script = r#"
        echo "sock=$WBL_SOCKET"
        "$WBL" exec -- sh -c 'echo "exec=$WANDB_API_KEY"'
        echo "token=$("$WBL" token)"
        "$WBL" token --host https://wandb.other.test; echo "other=$?"
        "$WBL" login 0123456789012345678901234567890123456789; echo "login=$?"
        "$WBL" login; echo "login_found=$?"
        "$WBL" logout; echo "logout=$?"
        "$WBL" logout --all; echo "logout_all=$?"
        "$WBL" agent stop; echo "stop=$?"
        printf 'protocol=https\nhost=git.other.test\n\n' | "$WBL" credential get; echo "git=$?"
        "$WBL" status; echo "status=$?"
        "$WBL" doctor > "$HOME/doctor.out" 2>&1; grep -c 'forwarded by `wbl ssh`' "$HOME/doctor.out" | sed 's/^/doctor=/'; cat "$HOME/doctor.out" >&2; rm "$HOME/doctor.out"
        ls -A "$HOME"; echo "home_listed"
    "#;
    let out = output_within(
        wbl_ssh(&world, &sshd, &[], &remote.command(script)),
        Duration::from_secs(60),
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
    assert!(
        err.contains("forwarding keys for https://api.wandb.ai to"),
        "{err}"
    );
    let sock = field(&text, "sock").unwrap();
    // A fresh private directory with 128 random bits in its name, the socket inside.
    let dir = sock
        .strip_suffix("/wbl-fwd-agent.sock")
        .and_then(|d| d.strip_prefix("/tmp/wbl-fwd-"))
        .unwrap_or_else(|| panic!("{sock}"));
    assert!(
        dir.len() == 32 && dir.chars().all(|c| c.is_ascii_hexdigit()),
        "{sock}"
    );
    assert_eq!(
        field(&text, "exec").as_deref(),
        Some(key.as_str()),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "token").as_deref(),
        Some(key.as_str()),
        "{text}\n{err}"
    );
    // Refused, each with its own clear error on the remote.
    for (name, what) in [
        ("other", "is not granted to this forwarded wbl socket"),
        (
            "login",
            "storing a credential is not allowed over a forwarded wbl socket",
        ),
        (
            "logout",
            "erasing credentials is not allowed over a forwarded wbl socket",
        ),
        (
            "logout_all",
            "listing credentials is not allowed over a forwarded wbl socket",
        ),
        ("stop", "is a forwarded socket"),
        ("git", "https://git.other.test is not granted"),
    ] {
        assert_eq!(
            field(&text, name).as_deref(),
            Some("1"),
            "{name}: {text}\n{err}"
        );
        assert!(err.contains(what), "{name}: no `{what}` in\n{err}");
    }
    assert!(!text.contains(&other) && !text.contains(&git), "{text}");
    assert!(text.contains("agent:    forwarded by `wbl ssh`"), "{text}");
    // login and status name the forwarded agent, not a keychain the remote does not have.
    assert_eq!(field(&text, "login_found").as_deref(), Some("0"), "{err}");
    assert!(
        err.contains(
            "Loaded credentials for https://api.wandb.ai from the forwarded agent (`wbl ssh`)"
        ),
        "{err}"
    );
    assert!(
        err.contains("while storing the key through the forwarded agent (`wbl ssh`)"),
        "{err}"
    );
    assert!(
        text.contains("from the forwarded agent (served by the forwarded agent)"),
        "{text}"
    );
    assert!(!text.contains("keychain"), "{text}");
    assert!(
        !err.lines()
            .any(|l| l.starts_with("wbl: ") && l.contains("keychain")),
        "{err}"
    );
    assert_eq!(
        field(&text, "status").as_deref(),
        Some("0"),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "doctor").as_deref(),
        Some("1"),
        "{text}\n{err}"
    );
    assert!(err.contains("a forward, ours, mode 600"), "{err}");
    assert!(!err.contains("PROBLEM"), "doctor through a forward: {err}");

    // The local side is untouched and recorded what went out, with the destination.
    assert_eq!(stdout(&ok(world.wbl(&["token"]))).trim(), key);
    assert_eq!(
        stdout(&ok(world.wbl(&["token", "--host", OTHER_WANDB]))).trim(),
        other
    );
    let log = std::fs::read_to_string(world.log()).unwrap();
    let handed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("credential handed out over a forward"))
        .collect();
    // exec, token, login (finding it), and status (which shows the key masked).
    assert_eq!(handed.len(), 4, "{log}");
    assert!(
        handed
            .iter()
            .all(|l| l.contains("destination=wbl-test-remote")),
        "{log}"
    );
    assert!(log.contains("refused a request over a forward"), "{log}");
    for secret in [&key, &other, &git] {
        assert!(!log.contains(secret.as_str()), "a key in the agent's log");
    }

    // The grant died with the session: no forward, no restricted socket, nothing to reach.
    assert!(forwards(&world).is_empty());
    assert!(
        forward_sockets(&world).is_empty(),
        "{:?}",
        forward_sockets(&world)
    );
    assert!(log.contains("forward closed"), "{log}");
    // Nothing of it on the remote: no socket file, no file holding a key under its HOME or
    // /tmp, no agent started there.
    assert!(!Path::new(&sock).exists(), "{sock} left behind");
    let sock_dir = Path::new(&sock).parent().unwrap();
    assert!(!sock_dir.exists(), "{} left behind", sock_dir.display());
    let mut hits = Vec::new();
    for dir in [remote.home(), PathBuf::from("/tmp")] {
        files_containing(&dir, &[&key, &other, &git], &mut hits);
    }
    // The local world (under /tmp too) keeps its keys in the kernel keyring, not in files.
    assert!(hits.is_empty(), "files holding a key: {hits:?}");
    assert!(
        common::processes_with_env(&format!("HOME={}", remote.home().display())).is_empty(),
        "a process was left running on the remote side"
    );
}

#[test]
fn allow_grants_more_hosts_and_git_works_over_the_forward() {
    let sshd = Sshd::start();
    let (world, key, other, git) = world_with_keys("s2");
    let remote = Remote::new();
    let script = r#"
        echo "other=$("$WBL" token --host https://wandb.other.test)"
        echo "cloud=$("$WBL" token)"
        git config --global credential.helper "$WBL credential"
        printf 'protocol=https\nhost=git.other.test\n\n' | git credential fill > "$HOME/fill.out"; echo "fill=$?"
        grep '^password=' "$HOME/fill.out" | sed 's/^password=/git=/'; rm -f "$HOME/fill.out"
        printf 'protocol=https\nhost=git.other.test\nusername=alice\npassword=changed\n\n' | git credential approve; echo "approve=$?"
        printf 'protocol=https\nhost=git.other.test\nusername=alice\npassword=changed\n\n' | git credential reject; echo "reject=$?"
        rm -f "$HOME/.gitconfig"
    "#;
    let out = output_within(
        wbl_ssh(
            &world,
            &sshd,
            &["--allow", OTHER_WANDB, "--allow", GIT_HOST],
            &remote.command(script),
        ),
        Duration::from_secs(60),
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
    assert_eq!(
        field(&text, "other").as_deref(),
        Some(other.as_str()),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "cloud").as_deref(),
        Some(key.as_str()),
        "{text}\n{err}"
    );
    assert_eq!(field(&text, "fill").as_deref(), Some("0"), "{text}\n{err}");
    assert_eq!(
        field(&text, "git").as_deref(),
        Some(git.as_str()),
        "{text}\n{err}"
    );
    // git's store and erase over a forward change nothing (and say nothing).
    assert_eq!(
        field(&text, "approve").as_deref(),
        Some("0"),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "reject").as_deref(),
        Some("0"),
        "{text}\n{err}"
    );
    assert!(!err.contains("error"), "{err}");
    let mut c = world.cmd(WBL);
    c.args(["credential", "get"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    write!(
        child.stdin.take().unwrap(),
        "protocol=https\nhost={GIT_HOST}\n\n"
    )
    .unwrap();
    let local = child.wait_with_output().unwrap();
    assert!(
        stdout(&local).contains(&format!("password={git}\n")),
        "git's store/erase over the forward changed the local key"
    );
    assert!(forwards(&world).is_empty());
}

#[test]
fn the_grant_ends_at_its_ttl_while_the_session_goes_on() {
    let sshd = Sshd::start();
    let (world, key, _other, _git) = world_with_keys("s4");
    let remote = Remote::new();
    // Polls (bounded: 30 s) until the grant refuses, then asks once more for the message. The
    // TTL leaves room for a slow ssh set-up on a loaded machine (it runs from the grant).
    let script = r#"
        echo "first=$("$WBL" token)"
        n=0
        while "$WBL" token >/dev/null 2>&1 && [ $n -lt 100 ]; do sleep 0.3; n=$((n+1)); done
        "$WBL" token; echo "after_ttl=$?"
        echo "still_connected=yes"
    "#;
    let out = output_within(
        wbl_ssh(&world, &sshd, &["--ttl", "8s"], &remote.command(script)),
        Duration::from_secs(60),
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
    assert!(err.contains("to wbl-test-remote for 8s"), "{err}");
    assert_eq!(
        field(&text, "first").as_deref(),
        Some(key.as_str()),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "after_ttl").as_deref(),
        Some("1"),
        "{text}\n{err}"
    );
    assert!(
        err.contains("this forward's grant has ended (its --ttl passed)"),
        "{err}"
    );
    assert_eq!(field(&text, "still_connected").as_deref(), Some("yes"));
    assert!(forwards(&world).is_empty());
    assert!(forward_sockets(&world).is_empty());
}

/// Runs `wbl ssh` whose remote script prints lines, then `checked`, then waits for its stdin
/// to close.
fn spawn_waiting(world: &World, sshd: &Sshd, remote: &Remote, allow: &str, script: &str) -> Child {
    let script = format!("{script}\necho checked\nread _ || true\n");
    let mut c = wbl_ssh(world, sshd, &["--allow", allow], &remote.command(&script));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn two_forwards_at_once_each_see_only_their_own_grants() {
    let sshd = Sshd::start();
    let (world, _key, other, git) = world_with_keys("s3");
    let remote = Remote::new();
    let probe = r#"
        echo "other=$("$WBL" token --host https://wandb.other.test 2>/dev/null)"
        echo "git=$(printf 'protocol=https\nhost=git.other.test\n\n' | "$WBL" credential get 2>/dev/null | grep '^password=' | cut -d= -f2)"
    "#;
    let mut a = spawn_waiting(&world, &sshd, &remote, OTHER_WANDB, probe);
    let mut b = spawn_waiting(&world, &sshd, &remote, GIT_HOST, probe);
    let (ta, tb) = (read_until_checked(&mut a), read_until_checked(&mut b));
    assert_eq!(field(&ta, "other").as_deref(), Some(other.as_str()), "{ta}");
    assert_eq!(field(&ta, "git").as_deref(), Some(""), "{ta}");
    assert_eq!(field(&tb, "other").as_deref(), Some(""), "{tb}");
    assert_eq!(field(&tb, "git").as_deref(), Some(git.as_str()), "{tb}");

    // Both are live, each with its own grant and count.
    let live = forwards(&world);
    assert_eq!(live.len(), 2, "{live:?}");
    let hosts: Vec<Vec<String>> = live
        .iter()
        .map(|f| {
            assert_eq!(f["destination"], "wbl-test-remote");
            assert_eq!(f["handed_out"], 1, "{f}");
            serde_json::from_value(f["hosts"].clone()).unwrap()
        })
        .collect();
    assert!(
        hosts.contains(&vec![
            "https://api.wandb.ai".to_owned(),
            OTHER_WANDB.to_owned()
        ]),
        "{hosts:?}"
    );
    assert!(
        hosts.contains(&vec![
            "https://api.wandb.ai".to_owned(),
            format!("https://{GIT_HOST}")
        ]),
        "{hosts:?}"
    );
    let text = stdout(&ok(world.wbl(&["status"])));
    assert!(
        text.contains("forwards:") && text.contains("until the session ends"),
        "{text}"
    );

    // Ending one session ends its grant only.
    let started = Instant::now();
    drop(a.stdin.take());
    assert!(a.wait().unwrap().success());
    let live = forwards(&world);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["hosts"][1], format!("https://{GIT_HOST}"));
    drop(b.stdin.take());
    assert!(b.wait().unwrap().success());
    assert!(forwards(&world).is_empty());
    assert!(forward_sockets(&world).is_empty());
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The `~/.ssh/config` route of docs/ssh.md: `wbl ssh --hold NAME` keeps a named forward, plain
/// `ssh` forwards it with `RemoteForward` (the server has `StreamLocalBindUnlink yes`), the
/// remote names it in `WBL_SOCKET`; the grant ends when the holder is stopped.
#[test]
fn hold_serves_a_remote_forward_from_ssh_config() {
    let sshd = Sshd::start();
    let (world, key, other, _git) = world_with_keys("s5");
    let remote = Remote::new();
    let name = format!("t{}", std::process::id());
    let mut holder = world
        .cmd(WBL)
        .args(["ssh", "--hold", &name, "--ttl", "10m"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line says it holds the forward (bounded wait).
    let err = holder.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(err).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert!(
        first.contains(&format!("holding forward {name}")),
        "{first}"
    );
    // The ssh_config hint: the client's StreamLocalBindUnlink would break the next
    // connection's forward (docs/ssh.md), so it is not suggested.
    let hint = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert!(
        hint.contains("RemoteForward /tmp/wbl-fwd-%r.sock"),
        "{hint}"
    );
    assert!(hint.contains("ExitOnForwardFailure yes"), "{hint}");
    assert!(!hint.contains("StreamLocalBindUnlink"), "{hint}");
    let local = world.socket().with_extension(format!("sock.fwd-{name}"));
    assert!(first.ends_with(&local.display().to_string()), "{first}");
    let live = forwards(&world);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["destination"], format!("{name} (wbl ssh --hold)"));
    assert!(live[0]["expires_unix"].as_u64().is_some());

    let remote_sock = format!("/tmp/wbl-fwd-{name}.sock");
    let script = r#"
        echo "cloud=$("$WBL" token)"
        "$WBL" token --host https://wandb.other.test; echo "other=$?"
    "#;
    let run_ssh = || {
        let mut ssh = Command::new("ssh");
        ssh.args([
            "-o",
            &format!("RemoteForward {remote_sock} {}", local.display()),
            "-o",
            "ExitOnForwardFailure yes",
        ])
        .args(sshd.ssh_args())
        .arg(
            remote
                .command(script)
                .replace("\"$WBL_SOCKET\"", &remote_sock),
        )
        .stdin(Stdio::null());
        output_within(ssh, Duration::from_secs(60))
    };
    // Twice: the second session rebinds the path the first left behind.
    for _ in 0..2 {
        let out = run_ssh();
        let (text, err) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
        assert_eq!(
            field(&text, "cloud").as_deref(),
            Some(key.as_str()),
            "{text}\n{err}"
        );
        assert_eq!(field(&text, "other").as_deref(), Some("1"), "{text}\n{err}");
        assert!(!text.contains(&other));
    }
    let _ = std::fs::remove_file(&remote_sock);

    // Stopping the holder (our child, by pid) ends the grant.
    common::terminate(holder.id());
    assert!(holder.wait().unwrap().success());
    assert!(forwards(&world).is_empty());
    assert!(!local.exists());
}

/// Without a remote command: an interactive login shell on a terminal (`-t` added), with
/// `WBL_SOCKET` set; Ctrl-C interrupts the command in the shell, not the session; the socket
/// file is gone after `exit`.
#[test]
fn an_interactive_login_shell_gets_the_forward() {
    let remote = Remote::new();
    // The login shell must not read or write the real home (history, rc files).
    let sshd = Sshd::start_with(&format!(
        "SetEnv HOME={} HISTFILE=/dev/null ENV=/dev/null",
        remote.home().display()
    ));
    let (world, key, _other, _git) = world_with_keys("s6");
    let mut c = Command::new(WBL);
    world.apply_env(&mut c);
    c.env("TERM", "dumb")
        .arg("ssh")
        .arg("--")
        .args(sshd.ssh_args());
    // The timeout bounds each wait for output; it is not a speed requirement.
    let mut p = rexpect::session::spawn_command(c, Some(30_000)).unwrap();
    p.send_line("PS1='rem> '; echo \"sock=$WBL_SOCKET\"")
        .unwrap();
    p.exp_string("sock=/tmp/wbl-fwd-").unwrap();
    let (_, sock_rest) = p.exp_regex(r"[0-9a-f]{32}/wbl-fwd-agent\.sock").unwrap();
    p.send_line(&format!(
        "env -i PATH=/usr/bin:/bin HOME=\"$HOME\" WBL_SOCKET=\"$WBL_SOCKET\" {WBL} token | sed 's/^/tok=/'"
    ))
    .unwrap();
    p.exp_string(&format!("tok={key}")).unwrap();
    p.send_line("sleep 30").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.send_control('c').unwrap();
    p.send_line("echo alive-$((40+2))").unwrap();
    p.exp_string("alive-42").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
    let status = format!("{:?}", p.process_mut().wait().unwrap());
    assert!(
        status.starts_with("Exited(") && status.ends_with(", 0)"),
        "{status}"
    );
    let sock = format!("/tmp/wbl-fwd-{sock_rest}");
    assert!(!Path::new(&sock).exists(), "{sock} left behind");
    assert!(
        !Path::new(&sock).parent().unwrap().exists(),
        "{sock}'s directory left behind"
    );
    assert!(forwards(&world).is_empty());
    assert!(forward_sockets(&world).is_empty());
}

/// A holder (`wbl ssh --hold`) whose agent dies says so and exits with an error; the forward
/// socket that agent leaves is removed by the next one, and a client meets no stale
/// restricted socket.
#[test]
fn a_killed_agents_forward_ends_its_holder_and_its_socket_goes() {
    let (world, key, _other, _git) = world_with_keys("s7");
    let holder = world
        .cmd(WBL)
        .args(["ssh", "--hold", "stale"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let holder_pid = holder.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(holder.wait_with_output());
    });
    let local = world.socket().with_extension("sock.fwd-stale");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !local.exists() {
        if Instant::now() >= deadline {
            common::terminate(holder_pid);
            panic!("the forward never appeared");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = world.agent_pid().unwrap();
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    common::wait_gone(pid);
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            common::terminate(holder_pid);
            panic!("the holder went on holding a forward its dead agent had ended");
        }
    };
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wbl-agent ended forward stale (it stopped or restarted)"),
        "{}",
        stderr(&out)
    );
    assert!(local.exists(), "SIGKILL leaves the socket file");
    assert_eq!(stdout(&ok(world.wbl(&["token"]))).trim(), key);
    assert!(
        !local.exists(),
        "the next agent removed the stale forward socket"
    );
}

/// A remote client asks for a host with an escape sequence in its name (git percent-decodes
/// `https://evil%1b%5b2K.com/`): the refusal it prints, `wbl log` and the agent's log show the
/// name escaped; no ESC byte reaches a terminal or a log.
#[test]
fn a_remote_hosts_escape_sequence_is_shown_escaped() {
    let sshd = Sshd::start();
    let (world, _key, _other, _git) = world_with_keys("s9");
    let remote = Remote::new();
    let script = r#"printf 'protocol=https\nhost=evil\033[2K.com\n\n' | "$WBL" credential get; echo "status=$?""#;
    let out = output_within(
        wbl_ssh(&world, &sshd, &[], &remote.command(script)),
        Duration::from_secs(60),
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
    assert_eq!(
        field(&text, "status").as_deref(),
        Some("1"),
        "{text}\n{err}"
    );
    assert!(
        err.contains("https://evil\\x1b[2K.com is not granted"),
        "{err}"
    );
    assert!(!out.stderr.contains(&0x1b), "{err:?}");
    // The refusal is in the access log, shown escaped.
    let mut table = String::new();
    for _ in 0..500 {
        let log = ok(world.wbl(&["log"]));
        assert!(!log.stdout.contains(&0x1b), "{log:?}");
        table = stdout(&log);
        if table.contains("refused") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(table.contains("evil\\x1b[2K.com"), "{table}");
    let agent_log = std::fs::read(world.log()).unwrap();
    assert!(
        String::from_utf8_lossy(&agent_log).contains("evil\\x1b[2K.com"),
        "{}",
        String::from_utf8_lossy(&agent_log)
    );
    assert!(!agent_log.contains(&0x1b));
}

/// A remote without wbl: the shell's "command not found" (exit 127) is passed on, and wbl ssh
/// says how to install wbl there and put it on PATH.
#[test]
fn a_remote_without_wbl_gets_the_install_hint() {
    let sshd = Sshd::start();
    let (world, _key, _other, _git) = world_with_keys("s10");
    let remote = Remote::new();
    // No wbl on this PATH: the remote shell cannot find it, as on a fresh cluster node.
    let command = format!(
        "env -i HOME={} PATH=/nonexistent-wbl-test /bin/sh -c 'wbl token'",
        remote.home().display()
    );
    let out = output_within(
        wbl_ssh(&world, &sshd, &[], &command),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(127), "{err}\nsshd: {}", sshd.log());
    assert!(
        err.contains("wbl: not found") || err.contains("wbl: command not found"),
        "{err}"
    );
    assert!(
        err.contains("wbl: the remote command exited 127 (command not found)"),
        "{err}"
    );
    assert!(err.contains("~/.local/bin/wbl"), "{err}");
    assert!(err.contains("PATH"), "{err}");
}

#[test]
fn the_grant_carries_the_account_chosen_where_wbl_ssh_runs() {
    let sshd = Sshd::start();
    let world = World::new(Backend::Keyutils);
    let (default_key, work_key) = (unique_key("s9a"), unique_key("s9b"));
    ok(world.wbl(&["login", &default_key]));
    store(&world, "https", "api.wandb.ai", "work", &work_key);
    let remote = Remote::new();
    let script = r#"
        echo "plain=$("$WBL" token)"
        echo "named=$("$WBL" token --account default)"
    "#;
    let run = |flags: &[&str], dir: &Path| {
        let mut c = wbl_ssh(&world, &sshd, flags, &remote.command(script));
        c.current_dir(dir);
        let out = output_within(c, Duration::from_secs(60));
        (stdout(&out), stderr(&out))
    };
    // --account: the remote gets that account's key, and no other by name.
    let (text, err) = run(&["--account", "work"], &world.home());
    assert!(err.contains("(account work)"), "{err}");
    assert_eq!(
        field(&text, "plain").as_deref(),
        Some(work_key.as_str()),
        "{text}\n{err}"
    );
    assert_eq!(field(&text, "named").as_deref(), Some(""), "{text}\n{err}");
    assert!(err.contains("hands out the account `work` only"), "{err}");
    // The binding of the directory `wbl ssh` runs in.
    let bound = world.home().join("proj");
    std::fs::create_dir_all(&bound).unwrap();
    ok(world.wbl(&["bind", "work", bound.to_str().unwrap()]));
    let (text, err) = run(&[], &bound);
    assert_eq!(
        field(&text, "plain").as_deref(),
        Some(work_key.as_str()),
        "{text}\n{err}"
    );
    // Chosen nowhere: the remote chooses, and with two accounts and none chosen it is told so.
    let (text, err) = run(&[], &world.home());
    assert_eq!(field(&text, "plain").as_deref(), Some(""), "{text}\n{err}");
    assert!(
        err.contains("2 accounts for https://api.wandb.ai (default, work)"),
        "{err}"
    );
    assert_eq!(
        field(&text, "named").as_deref(),
        Some(default_key.as_str()),
        "{text}\n{err}"
    );
    assert!(!err.contains(&work_key) && !err.contains(&default_key));
}
