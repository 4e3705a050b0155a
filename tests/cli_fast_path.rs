//! The clients' start-up shortcuts keep their behaviour: the fast path (`wbl credential <op>`
//! and `wbl --version` handled before clap) gives the same output, exit codes and errors as the
//! clap path it bypasses, anything else still reaches clap; and the helper programs' own C
//! `main` (`wbl::entry`, Linux, glibc) keeps what std's runtime start-up guarantees (and `wbl`,
//! on std's start-up, keeps too): closed standard fds are reopened on /dev/null, and a closed
//! pipe is an error, not a SIGPIPE death.

#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::*;

fn run(w: &World, args: &[&str], input: &[u8]) -> Output {
    let mut c = w.cmd(WBL);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

#[test]
fn version_is_clap_s_line() {
    let w = World::new(Backend::Keyutils);
    let want = format!("wbl {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = ok(run(&w, &[flag], b""));
        assert_eq!(stdout(&out), want);
        assert_eq!(stderr(&out), "");
    }
    // With anything more it is clap's business; clap prints the same line.
    let out = ok(run(&w, &["--version", "extra"], b""));
    assert_eq!(stdout(&out), want);
}

#[test]
fn credential_round_trip_and_errors_through_the_fast_path() {
    let w = World::new(Backend::Keyutils);
    let k = key(7);
    let store = format!("protocol=https\nhost=fast.path.test\nusername=u\npassword={k}\n\n");
    ok(run(&w, &["credential", "store"], store.as_bytes()));
    let out = ok(run(
        &w,
        &["credential", "get"],
        b"protocol=https\nhost=fast.path.test\n\n",
    ));
    assert_eq!(
        stdout(&out),
        format!("capability[]=authtype\nusername=u\npassword={k}\n")
    );
    // Unknown operations are ignored, as gitcredentials(7) asks.
    let out = ok(run(&w, &["credential", "frobnicate"], b"garbage"));
    assert_eq!(stdout(&out), "");
    // Bad input: one `wbl: error:` line and exit 1, never the input itself.
    let out = run(&w, &["credential", "get"], b"no equals sign here\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("wbl: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("no equals sign"), "{err}");
}

#[test]
fn other_command_lines_still_reach_clap() {
    let w = World::new(Backend::Keyutils);
    let out = ok(run(&w, &["credential", "--help"], b""));
    assert!(
        stdout(&out).contains("Usage: wbl credential"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Example:"));
    // An extra argument is clap's usage error (exit 2), not an operation.
    let out = run(&w, &["credential", "get", "extra"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A missing operation too.
    let out = run(&w, &["credential"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Nothing on stdin reached an agent: none was started.
    assert!(w.agent_pid().is_none());
    // Non-UTF-8 operations are left to clap as well.
    use std::os::unix::ffi::OsStrExt;
    let out = w
        .cmd(WBL)
        .arg("credential")
        .arg(std::ffi::OsStr::from_bytes(b"g\xffet"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Runs `program args` with `input` on stdin and the standard fds in `closed` closed.
fn run_with_closed(
    w: &World,
    program: &str,
    args: &[&str],
    input: &[u8],
    closed: &'static [i32],
) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = w.cmd(program);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for &fd in closed {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// The programs whose start-up is checked, with a `get` command line and one that prints.
const PROGRAMS: [(&str, &[&str], &[&str]); 3] = [
    (WBL, &["credential", "get"], &["credential", "capability"]),
    (GIT_HELPER, &["get"], &["capability"]),
    (DOCKER_HELPER, &["get"], &["version"]),
];

/// A one-connection stand-in for the agent on the world's socket: answers hello and one get
/// with `password`, then returns every byte the client sent after its get.
fn fake_agent(w: &World, password: &str) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::Read;
    use wbl_proto::{Connection, Credential, PROTOCOL_VERSION, Request, Response, Secret};
    let listener = std::os::unix::net::UnixListener::bind(w.socket()).unwrap();
    let password = password.to_owned();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut conn = Connection::new(stream);
        assert!(matches!(
            conn.recv::<Request>(),
            Ok(Some(Request::Hello { .. }))
        ));
        conn.send(&Response::Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "fake".into(),
            pid: std::process::id(),
        })
        .unwrap();
        let Ok(Some(Request::Get(q))) = conn.recv::<Request>() else {
            panic!("expected a get");
        };
        let cred = Credential::new(q.target, "u", Secret::new(password));
        conn.send(&Response::Credential(Some(cred))).unwrap();
        let mut rest = Vec::new();
        let _ = conn.into_inner().read_to_end(&mut rest);
        rest
    })
}

#[test]
fn closed_standard_fds_are_reopened_on_dev_null() {
    for (program, get, prints) in PROGRAMS {
        let w = World::new(Backend::Keyutils);
        // With stdout and stderr closed, the socket would be the lowest free fd, 1, and the
        // answer printed on "stdout" would go back into it. Reopened on /dev/null, they keep
        // the socket away from 0–2: the agent reads nothing after the get.
        let k = key(8);
        let agent = fake_agent(&w, &k);
        let query: &[u8] = if program == DOCKER_HELPER {
            b"fds.test\n"
        } else {
            b"protocol=https\nhost=fds.test\n\n"
        };
        let out = run_with_closed(&w, program, get, query, &[1, 2]);
        assert!(out.status.success(), "{program}: {:?}", out.status);
        let rest = agent.join().unwrap();
        assert_eq!(String::from_utf8_lossy(&rest), "", "{program}");
        // And with all three closed, commands that print still run to completion.
        let out = run_with_closed(&w, program, prints, b"", &[0, 1, 2]);
        assert!(
            out.status.success(),
            "{program} {prints:?}: {:?}",
            out.status
        );
    }
    let w = World::new(Backend::Keyutils);
    let out = run_with_closed(&w, WBL, &["--version"], b"", &[0, 1, 2]);
    assert!(out.status.success(), "{:?}", out.status);
}

#[test]
fn a_closed_pipe_is_an_error_not_sigpipe() {
    let w = World::new(Backend::Keyutils);
    // (clap's `--help` ignores write errors and exits 0; these report them.)
    let mut cases: Vec<(&str, &[&str])> = vec![(WBL, &["--version"])];
    cases.extend(PROGRAMS.iter().map(|(p, _, prints)| (*p, *prints)));
    for (program, args) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = w
            .cmd(program)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            None,
            "{program} {args:?} died of a signal"
        );
        assert_ne!(out.status.code(), Some(0), "{program} {args:?}");
    }
}
