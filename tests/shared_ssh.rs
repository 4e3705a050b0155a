//! `wbl ssh` on a shared machine, as an ordinary user (`users::user()`) with another user
//! (`users::other()`) on the remote playing the attacker: a real OpenSSH server
//! (`tests/support/sshd.rs`) with a loose `StreamLocalBindMask`, which makes the forwarded
//! socket `srwxrwxrwx`. The remote side is this machine under an empty HOME of the user's, so
//! the only way to a key is the forwarded socket. Also, as the same user: a client operation
//! against an agent that does not answer waits one bound, not one per attempt, and a
//! forward's refusal suggests only an `--allow` that `wbl ssh` takes.

#![cfg(target_os = "linux")]

mod common;
#[path = "support/remote.rs"]
mod remote;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Backend, DOCKER_HELPER, GIT_HELPER, WBL, World, ok, stderr, stdout, users};
use remote::{field, read_until_checked, sq, unique_key};
use sshd::Sshd;
use wbl_proto::{PROTOCOL_VERSION, Query, Request, Target, encode_frame};

/// The remote command for `script`, run by the user there: a clean environment (only the
/// forwarded `WBL_SOCKET`), an empty HOME of the user's, then `sh -c`.
fn remote_command(home: &Path, script: &str) -> String {
    let wbl = users::shared_bin(WBL.as_ref());
    let h = home.display();
    format!(
        "env -i HOME={h} PATH=/usr/bin:/bin XDG_CONFIG_HOME={h}/.config \
         XDG_RUNTIME_DIR={h}/run WBL=\"{wbl}\" WBL_SOCKET=\"$WBL_SOCKET\" sh -c {}",
        sq(script),
        wbl = wbl.display()
    )
}

/// Waits (bounded: 60 s) for our child to exit.
fn wait_within(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let pid = child.id();
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        let _ = tx.send((child.wait(), text));
    });
    match rx.recv_timeout(limit) {
        Ok((status, text)) => (status.unwrap(), text),
        Err(_) => {
            common::terminate(pid);
            panic!("wbl ssh did not end within {limit:?}");
        }
    }
}

/// What the other user does with a path to someone's forwarded socket: list its directory,
/// connect, send a hello and a `get` for the cloud's key (`request` on stdin), print what
/// comes back. Python from the system, so that no check of wbl's own client is in the way.
const ATTACK: &str = r#"
import os, socket, sys
path = sys.argv[1]
req = sys.stdin.buffer.read()
try:
    print("listed=%d" % len(os.listdir(os.path.dirname(path))))
except OSError as e:
    print("list_errno=%d" % e.errno)
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
try:
    s.connect(path)
except OSError as e:
    print("connect_errno=%d" % e.errno)
    sys.exit(0)
s.sendall(req)
s.shutdown(socket.SHUT_WR)
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError:
    pass
print("answer=" + data.decode("latin-1").replace("\n", " "))
"#;

fn attack(socket: &str) -> String {
    let mut request = Vec::new();
    request.extend_from_slice(
        &encode_frame(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_version: "0.1.0".into(),
        })
        .unwrap(),
    );
    request.extend_from_slice(
        &encode_frame(&Request::Get(Query {
            target: Target::new("https", "api.wandb.ai"),
            username: None,
            account: Default::default(),
        }))
        .unwrap(),
    );
    let mut c = users::other().command("/usr/bin/python3");
    c.env_clear()
        .env("HOME", "/tmp")
        .args(["-c", ATTACK, socket])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&request).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            common::terminate(pid);
            panic!("the attacker did not finish");
        }
    };
    format!("{}{}", stdout(&out), stderr(&out))
}

/// sshd with `StreamLocalBindMask 0000` binds the forward `srwxrwxrwx`: in `/tmp` anyone on the
/// remote could take the key. `wbl ssh` binds it in a fresh 0700 directory of the user's, so
/// the other user can neither list that directory nor connect, even knowing the path; the
/// user's own `wbl` there gets the key; directory and socket are gone after the session.
#[test]
fn another_remote_user_gets_nothing_from_a_forward_under_a_loose_bind_mask() {
    let user = users::user();
    let sshd = Sshd::start_for(&user, "StreamLocalBindMask 0000");
    let world = World::new_as(Backend::Keyutils, user.clone());
    let key = unique_key("sh1");
    ok(world.wbl(&["login", &key]));
    let remote = tempfile::Builder::new()
        .prefix("wbl-remote-")
        .tempdir()
        .unwrap();
    let home: PathBuf = remote.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    user.chown(remote.path());

    let script = r#"
        echo "sock=$WBL_SOCKET"
        echo "sock_mode=$(stat -c %a "$WBL_SOCKET")"
        echo "dir_mode=$(stat -c %a "${WBL_SOCKET%/*}")"
        echo "token=$("$WBL" token)"
        echo "doctor=$("$WBL" doctor 2>&1 | grep -c 'a forward, ours, mode 777 in a private directory')"
        echo checked
        read _ || true
    "#;
    let mut c = world.cmd(WBL);
    c.arg("ssh")
        .arg("--")
        .args(sshd.ssh_args())
        .arg(remote_command(&home, script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut session = c.spawn().unwrap();
    let text = read_until_checked(&mut session);
    let sock = field(&text, "sock").unwrap_or_default();
    // The attack runs while the session (and its grant) lives.
    let seen = attack(&sock);
    drop(session.stdin.take());
    let (status, err) = wait_within(session, Duration::from_secs(60));

    assert!(!seen.contains(&key), "the other user got the key: {seen}");
    assert!(
        seen.contains("list_errno=13") && seen.contains("connect_errno=13"),
        "the other user must be refused listing and connecting (EACCES): {seen}"
    );
    assert!(status.success(), "{text}\n{err}\nsshd: {}", sshd.log());
    // The server's loose mask took effect: the socket itself is open to everyone.
    assert_eq!(
        field(&text, "sock_mode").as_deref(),
        Some("777"),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "dir_mode").as_deref(),
        Some("700"),
        "{text}\n{err}"
    );
    assert_eq!(
        field(&text, "token").as_deref(),
        Some(key.as_str()),
        "the user's own wbl on the remote gets the key: {text}\n{err}"
    );
    assert_eq!(
        field(&text, "doctor").as_deref(),
        Some("1"),
        "wbl doctor there approves the socket: {text}\n{err}"
    );
    let dir = Path::new(&sock).parent().unwrap();
    assert!(!Path::new(&sock).exists(), "{sock} left behind");
    assert!(!dir.exists(), "{} left behind", dir.display());
    // The grant ended with the session.
    let status = ok(world.wbl(&["status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(v["forwards"].as_array().unwrap().is_empty(), "{v}");
}

/// Runs `cmd` with `input` on stdin to completion within `limit`, else kills it (our child,
/// by pid) and fails.
fn run_within(
    mut cmd: std::process::Command,
    input: &str,
    limit: Duration,
) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            common::terminate(pid);
            panic!("it did not finish within {limit:?}");
        }
    }
}

/// An "agent" that accepts every connection and never answers (as a stopped one does, or one
/// stuck in a keychain call), counting the connections: listening on `socket` as the world's
/// user until its stdin closes, then it takes what is still queued and prints
/// `connections=N`.
const SILENT_AGENT: &str = r#"
import os, select, socket, sys
path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(16)
print("listening", flush=True)
held = []
while True:
    r, _, _ = select.select([s, sys.stdin], [], [], 120)
    if not r or sys.stdin in r:
        break
    held.append(s.accept()[0])
s.setblocking(False)
try:
    while True:
        held.append(s.accept()[0])
except BlockingIOError:
    pass
print("connections=%d" % len(held), flush=True)
"#;

/// How many connections `client` (given `input`) makes to an agent that never answers, with
/// `WBL_CLIENT_TIMEOUT=1`; and its output. One operation, one bound: one connection.
fn connections_to_a_silent_agent(
    w: &World,
    client: &str,
    args: &[&str],
    input: &str,
) -> (usize, std::process::Output) {
    let mut agent = w
        .raw_cmd("/usr/bin/python3")
        .args(["-c", SILENT_AGENT])
        .arg(w.socket())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(
        first.as_deref(),
        Ok("listening"),
        "the silent agent did not start"
    );
    let mut c = w.cmd(client);
    c.args(args).env("WBL_CLIENT_TIMEOUT", "1");
    let out = run_within(c, input, Duration::from_secs(60));
    drop(agent.stdin.take());
    let last = rx.recv_timeout(Duration::from_secs(30));
    let _ = agent.wait();
    let n = last
        .ok()
        .and_then(|l| l.strip_prefix("connections=").and_then(|n| n.parse().ok()))
        .expect("the silent agent did not report");
    (n, out)
}

/// `git-credential-wbl get` (and `docker-credential-wbl get`, `wbl token`) against an agent
/// that accepts and never answers: one connection each, one bound (`WBL_CLIENT_TIMEOUT`)
/// waited, then one line saying so. Counting connections proves it without timing anything:
/// each connection waits the bound out. Before, the helpers' pipelined lookup timed out and
/// then connected once more, waiting a second bound.
#[test]
fn one_lookup_waits_one_bound_against_an_agent_that_never_answers() {
    let w = World::new_as(Backend::Keyutils, users::user());
    for (client, args, input) in [
        (
            GIT_HELPER,
            &["get"][..],
            "protocol=https\nhost=git.example.test\n\n",
        ),
        (DOCKER_HELPER, &["get"][..], "registry.example.test\n"),
        (WBL, &["token"][..], ""),
    ] {
        let (n, out) = connections_to_a_silent_agent(&w, client, args, input);
        // docker's helpers report errors on stdout (docker reads them there), the others on
        // stderr with nothing on stdout.
        let said = if client == DOCKER_HELPER {
            stdout(&out)
        } else {
            assert!(out.stdout.is_empty(), "{client}: {}", stdout(&out));
            stderr(&out)
        };
        assert_eq!(n, 1, "{client} {args:?} connected {n} times: {said}");
        assert!(!out.status.success(), "{client}: {said}");
        assert!(said.contains("within 1 s"), "{client}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "{client}: {said}");
    }
}

/// A forward refuses a host it was not granted with the `--allow` to add — only one that
/// `wbl ssh` takes (checked against the real parser: `wbl ssh --allow VALUE` gets past its
/// arguments), and for a host no `--allow` can grant (git's `smtp`) it says so instead of
/// suggesting one. The forward is held locally (`wbl ssh --hold`); its socket is what a
/// remote reaches through sshd.
#[test]
fn a_forwards_refusal_suggests_only_an_allow_that_wbl_ssh_takes() {
    let w = World::new_as(Backend::Keyutils, users::user());
    ok(w.wbl(&["login", &unique_key("sh9")]));
    let mut holder = w
        .cmd(WBL)
        .args(["ssh", "--hold", "h9", "--ttl", "10m"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fwd = w.socket().with_extension("sock.fwd-h9");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !fwd.exists() {
        if std::time::Instant::now() >= deadline {
            common::terminate(holder.id());
            panic!("the forward never appeared");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ask = |protocol: &str, host: &str| {
        let mut c = w.cmd(GIT_HELPER);
        c.arg("get").env("WBL_SOCKET", &fwd);
        let out = run_within(
            c,
            &format!("protocol={protocol}\nhost={host}\n\n"),
            Duration::from_secs(60),
        );
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        stderr(&out)
    };
    let https = ask("https", "git.example.test");
    let smtp = ask("smtp", "mail.example.test");
    common::terminate(holder.id());
    let _ = holder.wait();

    assert!(
        https.contains("is not granted to this forwarded wbl socket"),
        "{https}"
    );
    let allow = https
        .split("wbl ssh --allow ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no --allow suggested: {https}"));
    assert_eq!(allow, "https://git.example.test");
    assert!(
        smtp.contains("is not granted to this forwarded wbl socket"),
        "{smtp}"
    );
    assert!(!smtp.contains("wbl ssh --allow smtp"), "{smtp}");
    assert!(
        smtp.contains("`wbl ssh --allow` grants http and https hosts only"),
        "{smtp}"
    );
    // The real parser takes the suggestion: `wbl ssh` gets past its arguments to running ssh
    // (`false` here, so nothing is forwarded).
    let mut c = w.cmd(WBL);
    c.args(["ssh", "--allow", allow, "--", "nowhere.test"])
        .env("WBL_SSH", "/bin/false");
    let out = run_within(c, "", Duration::from_secs(60));
    let err = stderr(&out);
    assert!(
        !err.contains("--allow"),
        "wbl ssh refused its own suggestion: {err}"
    );
    assert!(err.contains("private directory"), "{err}");
    let mut c = w.cmd(WBL);
    c.args([
        "ssh",
        "--allow",
        "smtp://mail.example.test",
        "--",
        "nowhere.test",
    ])
    .env("WBL_SSH", "/bin/false");
    let out = run_within(c, "", Duration::from_secs(60));
    assert!(
        stderr(&out).contains("--allow smtp://mail.example.test"),
        "{}",
        stderr(&out)
    );
}
