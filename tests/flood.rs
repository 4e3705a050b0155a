//! Floods from a process of the same user — 20 000 connections that say nothing, send half a
//! frame before the hello, or say hello and then half of a 64 KiB request — against the real
//! agent: it stays under 64 MiB of resident memory (its peak, `VmHWM`, read from /proc), a
//! normal `wbl token` is answered meanwhile, and everything works as before once the flood
//! ends. Latencies are printed for SECURITY.md, never asserted beyond "not hung".

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The cap the issue sets on the agent's memory under a flood.
const RSS_CAP_KIB: u64 = 64 * 1024;
/// Connections per flood; split over two processes (a process may hold 20 000 descriptors).
const FLOOD: usize = 20_000;

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn spawn_flood(w: &World, mode: &str, count: usize) -> Child {
    w.cmd("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flood.py"))
        .arg(mode)
        .arg(w.socket())
        .arg(count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `wbl token`, timed; panics unless it printed the key.
fn timed_token(w: &World, k: &str) -> Duration {
    let started = Instant::now();
    let out = w.wbl(&["token"]);
    let took = started.elapsed();
    assert_eq!(stdout(&out), format!("{k}\n"), "{}", stderr(&out));
    took
}

/// Runs one flood to the end while a normal client keeps asking, then ends it.
fn flood(w: &World, k: &str, agent: u32, mode: &str) {
    let mut floods: Vec<Child> = (0..2).map(|_| spawn_flood(w, mode, FLOOD / 2)).collect();
    let mut readers: Vec<_> = floods
        .iter_mut()
        .map(|f| BufReader::new(f.stdout.take().unwrap()))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    for mut r in readers.drain(..) {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
        });
    }
    // While the flood runs, and once more when every connection is open.
    let mut worst = Duration::ZERO;
    let mut asked = 0;
    let mut done = Vec::new();
    while done.len() < 2 {
        worst = worst.max(timed_token(w, k));
        asked += 1;
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            done.push(line);
        }
    }
    worst = worst.max(timed_token(w, k));
    let peak = status_kib(agent, "VmHWM:");
    eprintln!(
        "flood {mode}: {FLOOD} connections ({done:?}); {asked} tokens during it, slowest {worst:?}; agent peak RSS {} MiB, fds open {}",
        peak / 1024,
        open_fds(agent)
    );
    assert!(
        worst < Duration::from_secs(30),
        "a normal request hung during the {mode} flood"
    );
    assert!(
        peak < RSS_CAP_KIB,
        "the agent reached {peak} KiB during the {mode} flood"
    );
    // End the flood: its connections close, the agent lets go of them.
    for mut f in floods {
        drop(f.stdin.take());
        let _ = f.wait();
    }
}

#[test]
fn same_user_floods_leave_the_agent_small_and_serving() {
    let w = World::new(Backend::Keyutils);
    let k = key(130);
    ok(w.wbl(&["login", &k]));
    let agent = w.agent_pid().unwrap();
    let fds_before = open_fds(agent);
    for mode in ["idle", "partial", "big", "greeted"] {
        flood(&w, &k, agent, mode);
        // Recovery: every flood connection is gone (bounded wait), requests are answered.
        let deadline = Instant::now() + Duration::from_secs(30);
        while open_fds(agent) > fds_before + 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            open_fds(agent) <= fds_before + 2,
            "the agent still holds {} descriptors after the {mode} flood (had {fds_before})",
            open_fds(agent)
        );
        timed_token(&w, &k);
    }
    assert_eq!(w.agent_pid(), Some(agent), "the agent restarted");
    eprintln!(
        "after the floods: agent RSS {} MiB (peak {} MiB)",
        status_kib(agent, "VmRSS:") / 1024,
        status_kib(agent, "VmHWM:") / 1024
    );
}
