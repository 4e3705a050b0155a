//! A bounded load test against the real agent: many concurrent clients doing mixed
//! get/store/erase; zero errors and zero lost or mixed-up keys. Figures come from
//! `cargo bench --bench agent` (see SECURITY.md), never from assertions here.

#![cfg(target_os = "linux")]

mod common;
#[path = "support/loadgen.rs"]
mod loadgen;

use std::time::Duration;

use common::*;
use loadgen::{LoadConfig, Mode};

fn mixed_load(backend: Backend, clients: usize, requests: usize) {
    let w = World::new(backend);
    ok(w.wbl(&["status"]));
    ok(w.wbl(&["login", &key(80)])); // starts the agent
    let cfg = LoadConfig {
        socket: w.socket(),
        clients,
        requests,
        hosts: 100,
        mode: Mode::Mixed,
        time_limit: Duration::from_secs(120),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(loadgen::run(cfg));
    eprintln!("{}", report.summary());
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert_eq!(report.mismatches, 0, "{:?}", report.first_error);
    assert_eq!(
        report.requests as usize,
        clients * requests,
        "run was cut short"
    );
    // The agent is still healthy and the unrelated key untouched.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{}\n", key(80)));
}

#[test]
fn mixed_load_on_keyutils_loses_and_mixes_up_nothing() {
    mixed_load(Backend::Keyutils, 200, 50);
}

#[test]
fn mixed_load_on_secret_service_loses_and_mixes_up_nothing() {
    mixed_load(Backend::SecretService, 50, 20);
}
