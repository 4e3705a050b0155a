//! `wbl ssh` on a shared machine, as an ordinary user (`users::user()`) with another user
//! (`users::other()`) on the remote playing the attacker: a real OpenSSH server
//! (`tests/support/sshd.rs`) with a loose `StreamLocalBindMask`, which makes the forwarded
//! socket `srwxrwxrwx`. The remote side is this machine under an empty HOME of the user's, so
//! the only way to a key is the forwarded socket.

#![cfg(target_os = "linux")]

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Backend, WBL, World, ok, stderr, stdout, users};
use sshd::Sshd;
use wbl_proto::{PROTOCOL_VERSION, Query, Request, Target, encode_frame};

/// A key no other test uses.
fn unique_key(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:0>40}", format!("{tag}{}x{nanos}", std::process::id()))
}

/// Quotes for sh.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The value printed as `name=value` on its own line.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

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

/// Reads the child's stdout up to the line `checked` (bounded: 60 s).
fn read_until_checked(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line == "checked";
            text.push_str(&line);
            text.push('\n');
            if done {
                break;
            }
        }
        let _ = tx.send(text);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(text) => text,
        Err(_) => {
            common::terminate(child.id());
            panic!("the remote script did not finish its checks");
        }
    }
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
