//! The client's fast path (`wbl credential <op>` and `wbl --version` handled before clap, for
//! start-up time) behaves exactly like the clap path it bypasses: same output, same exit
//! codes, same errors, and anything else still reaches clap.

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
    assert_eq!(stdout(&out), format!("username=u\npassword={k}\n"));
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
