//! Reading the access log in tests (tests/accesslog.rs, tests/shared_accesslog.rs): where it
//! is, its entries through `wbl log --json` (as the world's user), a bounded wait for entries
//! the agent writes off the request path, and the real paths programs are recorded by.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{World, ok, stdout};

pub fn access_log(w: &World) -> PathBuf {
    w.home().join(".local/state/wbl/access.log")
}

/// `wbl log --json` (run as the world's user), parsed.
pub fn entries(w: &World) -> Vec<Value> {
    let out = ok(w.wbl(&["log", "--json"]));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The agent writes off the request path: wait (bounded) until `n` entries are there.
pub fn wait_entries(w: &World, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let e = entries(w);
        if e.len() >= n {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("fewer than {n} entries: {:?}", entries(w));
}

/// The canonical path, as `/proc/<pid>/exe` names a program.
pub fn real(p: impl AsRef<Path>) -> String {
    std::fs::canonicalize(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .to_string_lossy()
        .into_owned()
}

/// The real path of `program` as `sh` finds it on PATH.
pub fn which(program: &str) -> String {
    let out = ok(std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap());
    real(stdout(&out).trim())
}
