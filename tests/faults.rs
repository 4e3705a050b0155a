//! Faults: the agent killed with SIGKILL in the middle of a storm of stores. Every store the
//! agent acknowledged must be in the keychain afterwards, intact.

#![cfg(target_os = "linux")]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use wbl::client::AgentClient;
use wbl::rendezvous::RuntimePaths;
use wbl_proto::{Credential, Query, Secret, Target};

fn value(i: usize) -> String {
    format!("wandb_v1_{i:08}_{}", "s".repeat(70))
}

fn target(i: usize) -> Target {
    Target::new("https", format!("storm{i}.example"))
}

fn storm_then_kill(backend: Backend) {
    let w = World::new(backend);
    ok(w.wbl(&["login", &key(90)]));
    let pid = w.agent_pid().unwrap();
    let paths = RuntimePaths { socket: w.socket() };
    let acked = Arc::new(Mutex::new(Vec::new()));
    let storm = {
        let acked = Arc::clone(&acked);
        let paths = paths.clone();
        std::thread::spawn(move || {
            let mut client = AgentClient::connect(&paths).unwrap();
            for i in 0..100_000 {
                let cred = Credential::new(target(i), "api", Secret::new(value(i)));
                match client.store(cred) {
                    Ok(_) => acked.lock().unwrap().push(i),
                    Err(_) => return,
                }
            }
        })
    };
    // Let the storm run, then kill the agent without warning.
    while acked.lock().unwrap().len() < 40 {
        std::thread::yield_now();
    }
    signal_kill(pid);
    storm.join().unwrap();
    wait_gone(pid);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);
    // A fresh agent (auto-started through the client) must have every acknowledged key.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{}\n", key(90)));
    let mut client = AgentClient::connect(&paths).unwrap();
    assert_ne!(client.agent_pid, pid);
    for &i in &acked {
        let got = client
            .get(Query {
                target: target(i),
                username: Some("api".into()),
                account: Default::default(),
            })
            .unwrap()
            .map(|c| c.password.expose().to_owned());
        assert_eq!(got.as_deref(), Some(value(i).as_str()), "store {i} lost");
    }
    // The one in flight when the agent died is either absent or intact, never corrupt.
    let next = acked.iter().max().unwrap() + 1;
    let got = client
        .get(Query {
            target: target(next),
            username: Some("api".into()),
            account: Default::default(),
        })
        .unwrap();
    if let Some(c) = got {
        assert_eq!(c.password.expose(), value(next));
    }
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{}\n", key(90)));
}

fn signal_kill(pid: u32) {
    ok(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .unwrap());
}

#[test]
fn kill_9_during_a_store_storm_loses_no_acknowledged_key_secret_service() {
    storm_then_kill(Backend::SecretService);
}

#[test]
fn kill_9_during_a_store_storm_loses_no_acknowledged_key_keyutils() {
    storm_then_kill(Backend::Keyutils);
}
