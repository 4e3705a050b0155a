//! Security and robustness of the agent against other users, hostile clients and a failing
//! keychain — with real processes, the real socket and a real gnome-keyring.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use wbl_proto::{ErrorCode, PROTOCOL_VERSION, Request, Response, decode, encode_frame};

/// A raw connection to the agent, speaking frames by hand.
struct Raw(UnixStream);

impl Raw {
    fn connect(w: &World) -> Raw {
        let s = UnixStream::connect(w.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw(s)
    }

    fn send_bytes(&mut self, b: &[u8]) {
        self.0.write_all(b).unwrap();
    }

    fn send(&mut self, r: &Request) {
        let frame = encode_frame(r).unwrap();
        self.send_bytes(&frame);
    }

    /// The next response, or `None` when the agent closed the connection.
    fn recv(&mut self) -> Option<Response> {
        let mut header = [0u8; 4];
        match self.0.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return None;
            }
            Err(e) => panic!("reading from the agent: {e}"),
        }
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        self.0.read_exact(&mut payload).unwrap();
        Some(decode(&payload).unwrap())
    }

    fn hello(&mut self) {
        self.send(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_version: "test".into(),
        });
        assert!(matches!(self.recv(), Some(Response::Hello { .. })));
    }
}

fn error_code(r: Option<Response>) -> ErrorCode {
    match r {
        Some(Response::Error { code, .. }) => code,
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// The agent still answers a normal client with the right key.
fn still_serves(w: &World, k: &str) {
    let out = ok(w.wbl(&["token", "--host", "https://api.wandb.ai"]));
    assert_eq!(stdout(&out), format!("{k}\n"));
}

/// `wbl login -` with `key` on stdin (no warning about a key on the command line).
fn login_stdin(w: &World, args: &[&str], key: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = w.cmd(WBL);
    c.arg("login")
        .args(args)
        .arg("-")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn started(backend: Backend, env: &[(&str, &str)]) -> (World, String) {
    let w = World::new(backend);
    let k = key(70);
    ok(w.wbl_env(&["login", &k], env));
    (w, k)
}

#[test]
fn another_uid_is_refused_even_with_a_loose_socket_mode() {
    let (w, k) = started(Backend::Keyutils, &[]);
    // Loosen every mode on the way so only the peer check stands in the way.
    set_mode(w.dir.path(), 0o755);
    set_mode(w.socket().parent().unwrap(), 0o755);
    set_mode(&w.socket(), 0o777);
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect({:?})\n\
         try:\n  s.sendall(bytes([0,0,0,8,0,1,5])+b'0.1.0')\n  d=s.recv(100)\n\
         except (ConnectionResetError, BrokenPipeError):\n  d=b''\n\
         print('ANSWERED' if d else 'REFUSED')",
        w.socket().display().to_string()
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "REFUSED", "{}", stderr(&out));
    // The agent logged who it turned away (uid and pid, never data) and goes on serving.
    let log = std::fs::read_to_string(w.log()).unwrap();
    assert!(
        log.contains("refused a connection from another user"),
        "{log}"
    );
    assert!(log.contains("peer_uid=Some(65534)"), "{log}");
    still_serves(&w, &k);
}

#[test]
fn agent_refuses_a_directory_writable_by_others_or_owned_by_someone_else() {
    let w = World::new(Backend::Keyutils);
    let dir = w.socket().parent().unwrap().to_owned();
    set_mode(&dir, 0o777);
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("writable by other users"),
        "{}",
        stderr(&out)
    );
    assert!(!w.socket().exists());

    set_mode(&dir, 0o700);
    ok(Command::new("chown")
        .args(["65534"])
        .arg(&dir)
        .output()
        .unwrap());
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("belongs to uid 65534"),
        "{}",
        stderr(&out)
    );
    // The client says so too, in one line.
    let out = w.wbl(&["token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("belongs to uid 65534"),
        "{}",
        stderr(&out)
    );
    ok(Command::new("chown")
        .args(["0"])
        .arg(&dir)
        .output()
        .unwrap());
}

#[test]
fn oversized_frame_gets_an_error_and_a_closed_connection() {
    let (w, k) = started(Backend::Keyutils, &[]);
    let mut raw = Raw::connect(&w);
    raw.hello();
    raw.send_bytes(&u32::MAX.to_be_bytes());
    assert_eq!(error_code(raw.recv()), ErrorCode::TooLarge);
    assert!(raw.recv().is_none());
    // Also before hello.
    let mut raw = Raw::connect(&w);
    raw.send_bytes(&(64 * 1024 + 1u32).to_be_bytes());
    assert_eq!(error_code(raw.recv()), ErrorCode::TooLarge);
    still_serves(&w, &k);
}

#[test]
fn garbage_and_unknown_requests_get_bad_request_and_the_connection_survives() {
    let (w, k) = started(Backend::Keyutils, &[]);
    let mut raw = Raw::connect(&w);
    raw.hello();
    for payload in [&[0xffu8, 0xff, 0xff][..], &[42], &[1, 200], &[4, 0, 0]] {
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        raw.send_bytes(&frame);
        assert_eq!(error_code(raw.recv()), ErrorCode::BadRequest, "{payload:?}");
    }
    raw.send(&Request::Status);
    assert!(matches!(raw.recv(), Some(Response::Status(_))));
    still_serves(&w, &k);
}

#[test]
fn requests_before_hello_are_refused_and_other_versions_are_told_ours() {
    let (w, k) = started(Backend::Keyutils, &[]);
    let mut raw = Raw::connect(&w);
    raw.send(&Request::List);
    assert_eq!(error_code(raw.recv()), ErrorCode::BadRequest);
    assert!(raw.recv().is_none());

    let mut raw = Raw::connect(&w);
    raw.send(&Request::Hello {
        protocol: 99,
        client_version: "future".into(),
    });
    match raw.recv() {
        Some(Response::Hello { protocol, .. }) => assert_eq!(protocol, PROTOCOL_VERSION),
        other => panic!("{other:?}"),
    }
    still_serves(&w, &k);
}

#[test]
fn truncated_frames_and_silent_clients_are_dropped_within_the_bound() {
    let env = [("WBL_HELLO_TIMEOUT", "1"), ("WBL_IDLE_TIMEOUT", "2")];
    let (w, k) = started(Backend::Keyutils, &env);
    // Connects and says nothing (slowloris).
    let mut silent = Raw::connect(&w);
    // Sends half a header.
    let mut half = Raw::connect(&w);
    half.send_bytes(&[0, 0]);
    // Announces 100 bytes, sends 10, then goes quiet.
    let mut partial = Raw::connect(&w);
    partial.hello();
    partial.send_bytes(&[0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Meanwhile everyone else is served.
    still_serves(&w, &k);
    // Each is closed by the agent (read returns end of stream, not our 20 s read timeout).
    assert!(silent.recv().is_none());
    assert!(half.recv().is_none());
    assert!(partial.recv().is_none());
    // A truncated frame followed by a close does not upset the agent either.
    let mut cut = Raw::connect(&w);
    cut.hello();
    cut.send_bytes(&[0, 0, 0, 50, 1, 2]);
    drop(cut);
    still_serves(&w, &k);
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_are_served() {
    let env = [("WBL_WRITE_TIMEOUT", "1")];
    let (w, k) = started(Backend::Keyutils, &env);
    let mut hog = Raw::connect(&w);
    hog.hello();
    hog.0
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let status = encode_frame(&Request::Status).unwrap();
    // Pipeline requests without reading a single answer until the agent gives up on us.
    let mut sent = 0usize;
    let gave_up = loop {
        match hog.0.write_all(&status) {
            Ok(()) => sent += 1,
            Err(_) => break true,
        }
        if sent > 2_000_000 {
            break false;
        }
        if sent.is_multiple_of(5000) {
            still_serves(&w, &k);
        }
    };
    assert!(
        gave_up,
        "the agent kept reading from a client that never reads"
    );
    still_serves(&w, &k);
}

#[test]
fn key_is_not_in_the_agents_command_line_environment_or_status() {
    let (w, k) = started(Backend::SecretService, &[]);
    let pid = w.agent_pid().unwrap();
    for f in ["cmdline", "environ"] {
        let bytes = std::fs::read(format!("/proc/{pid}/{f}")).unwrap();
        assert!(
            !bytes.windows(k.len()).any(|x| x == k.as_bytes()),
            "key found in /proc/{pid}/{f}"
        );
    }
    for args in [&["status"][..], &["status", "--json"]] {
        let out = ok(w.wbl(args));
        assert!(!stdout(&out).contains(&k) && !stderr(&out).contains(&k));
        assert!(!stdout(&out).contains(&k[4..36]));
    }
}

/// The pid of this world's gnome-keyring-daemon.
fn keyring_pid(w: &World) -> u32 {
    let needle = format!("HOME={}", w.home().display());
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.starts_with("gnome-keyring") || !alive(pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
        {
            return pid;
        }
    }
    panic!("no gnome-keyring-daemon for this world");
}

fn signal(pid: u32, sig: &str) {
    ok(Command::new("kill")
        .args([sig, &pid.to_string()])
        .output()
        .unwrap());
}

#[test]
fn a_hung_secret_service_gives_a_clear_error_in_bounded_time_and_the_agent_recovers() {
    let env = [("WBL_KEYCHAIN_TIMEOUT", "1")];
    let (w, k) = started(Backend::SecretService, &env);
    let gk = keyring_pid(&w);
    signal(gk, "-STOP");
    // Warm keys are served from memory: no D-Bus call.
    still_serves(&w, &k);
    let k2 = key(71);
    let out = login_stdin(&w, &["--host", "https://other.example"], &k2, &env);
    signal(gk, "-CONT");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("did not answer within 1 s"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains(&k2));
    // Back to normal once the keyring answers again.
    ok(w.wbl_env(&["login", "--host", "https://other.example", &k2], &env));
    assert_eq!(
        stdout(&ok(w.wbl(&["token", "--host", "https://other.example"]))),
        format!("{k2}\n")
    );
    assert_eq!(
        w.secret_tool_lookup("https://other.example", "api")
            .as_deref(),
        Some(k2.as_str())
    );
}

#[test]
fn secret_service_gone_gives_a_clear_error_and_the_agent_recovers_when_it_returns() {
    let env = [("WBL_KEYCHAIN_TIMEOUT", "2")];
    let (w, k) = started(Backend::SecretService, &env);
    let gk = keyring_pid(&w);
    signal(gk, "-KILL");
    wait_gone(gk);
    let k2 = key(72);
    let out = login_stdin(&w, &["--host", "https://gone.example"], &k2, &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("wbl: error: "), "{err}");
    assert!(err.contains("keychain"), "{err}");
    assert!(!err.contains(&k2));
    still_serves(&w, &k);
    // A new gnome-keyring, unlocked with the same password, brings the stored keys back.
    let mut gk = w
        .cmd("gnome-keyring-daemon")
        .args(["--replace", "--unlock", "--components=secrets"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    gk.stdin
        .take()
        .unwrap()
        .write_all(b"test-password")
        .unwrap();
    assert!(gk.wait().unwrap().success());
    ok(w.wbl_env(&["login", "--host", "https://gone.example", &k2], &env));
    w.stop_agent();
    still_serves(&w, &k);
    assert_eq!(
        stdout(&ok(w.wbl(&["token", "--host", "https://gone.example"]))),
        format!("{k2}\n")
    );
}

#[test]
fn panic_output_never_carries_the_payload() {
    let w = World::new(Backend::Keyutils);
    let k = key(73);
    for program in [WBL, AGENT] {
        let out = w
            .cmd(program)
            .arg("--help")
            .env("WBL_TEST_PANIC", &k)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("internal error at "), "{err}");
        assert!(!err.contains(&k) && !stdout(&out).contains(&k), "{err}");
    }
}
