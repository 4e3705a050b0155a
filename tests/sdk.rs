//! End-to-end tests with the released W&B SDK (`wandb==0.31.0` from PyPI, in the venv
//! `scripts/install-test-deps` builds): the SDK itself writes the netrc — for its default
//! server, CoreWeave Forge (`api.forge.coreweave.com`), and with `--host` — and wbl must see
//! that key everywhere (doctor, status, login, token) and `wbl migrate` must leave no key on
//! disk. Then the SDK runs under `wbl exec` and verifies the key wbl hands it against the fake
//! GraphQL server, whichever address of the deployment the key was stored for.
//!
//! The SDK never reaches the network: `--no-verify`, and the fake server on 127.0.0.1 for
//! `verify=True`. HOME and every W&B variable point into the test's temporary world.

#![cfg(target_os = "linux")]

mod common;
mod fake_wandb;

use std::path::Path;
use std::process::Output;

use common::*;
use fake_wandb::{Answer, FakeWandb};
use serde_json::Value;

const FORGE: &str = "https://api.forge.coreweave.com";
const CLOUD: &str = "https://api.wandb.ai";

/// Runs the SDK's CLI (`python -m wandb ARGS`) in the world.
fn wandb(w: &World, args: &[&str]) -> Output {
    let mut c = w.cmd(wandb_python().to_str().unwrap());
    c.arg("-m").arg("wandb").args(args);
    sdk_env(w, &mut c);
    c.output().unwrap()
}

/// What the SDK needs besides the world's environment: no proxy (the fake server is on
/// 127.0.0.1), no telemetry, its files inside the world.
fn sdk_env(w: &World, c: &mut std::process::Command) {
    common::sdk_offline_env(c);
    c.env("WANDB_DIR", w.home().join("work"));
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

fn host_row<'a>(status: &'a Value, url: &str) -> &'a Value {
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == url)
        .unwrap_or_else(|| panic!("no row for {url}: {status:#}"))
}

fn netrc_text(w: &World) -> String {
    std::fs::read_to_string(w.home().join(".netrc")).unwrap_or_default()
}

/// The doctor check `name`: (verdict, detail).
fn doctor_check(w: &World, name: &str) -> (String, String) {
    let out = w.wbl(&["doctor", "--json"]);
    let r = json(&out);
    let c = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {r:#}"));
    (
        c["verdict"].as_str().unwrap().to_owned(),
        c["detail"].as_str().unwrap_or("").to_owned(),
    )
}

fn assert_no_key_on_disk(path: &Path, k: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        !text.contains(k),
        "{} still holds the key:\n{text}",
        path.display()
    );
}

#[test]
fn netrc_written_by_the_sdk_for_forge_is_seen_and_migrated() {
    let w = World::new(Backend::SecretService);
    let k = key(1);
    let out = wandb(&w, &["login", "--no-verify", &k]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let netrc = netrc_text(&w);
    assert!(
        netrc.contains("machine api.forge.coreweave.com") && netrc.contains(&k),
        "the SDK's default is Forge: {netrc}"
    );

    // doctor: a plaintext key, on the Forge address.
    let (verdict, detail) = doctor_check(&w, "netrc");
    assert_eq!(verdict, "problem", "{detail}");
    assert!(
        detail.contains("https://api.forge.coreweave.com (user api)"),
        "{detail}"
    );
    assert!(!detail.contains(&k));

    // status: wbl's default host (the W&B cloud) and the Forge address both resolve from
    // that entry, and say so.
    let s = json(&w.wbl(&["status", "--json"]));
    for url in [CLOUD, FORGE] {
        let row = host_row(&s, url);
        assert_eq!(row["source"], "netrc", "{url}: {s:#}");
        assert!(
            row["source_detail"]
                .as_str()
                .unwrap()
                .ends_with("(machine api.forge.coreweave.com)"),
            "{url}: {s:#}"
        );
    }
    assert_eq!(
        host_row(&s, FORGE)["plaintext"].as_array().unwrap().len(),
        1
    );

    // login (wbl's default host, the W&B cloud) adopts the key and says the file still has it.
    let out = w.wbl(&["login"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Stored the API key for https://api.wandb.ai"),
        "{err}"
    );
    assert!(err.contains("is still in the netrc file"), "{err}");

    // migrate: no key left in the file the SDK wrote.
    let out = w.wbl(&["migrate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("moved:  https://api.forge.coreweave.com (user api)"),
        "{}",
        stdout(&out)
    );
    assert_no_key_on_disk(&w.home().join(".netrc"), &k);
    assert_eq!(doctor_check(&w, "netrc").0, "ok");

    // token: the key answers for both addresses.
    for args in [
        &["token"][..],
        &["token", "--host", FORGE],
        &["token", "--host", "https://forge.coreweave.com/api/wandb"],
    ] {
        let out = w.wbl(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), k, "{args:?}");
    }
    let s = json(&w.wbl(&["status", "--json"]));
    assert_eq!(host_row(&s, FORGE)["source"], "keychain", "{s:#}");
    assert!(
        host_row(&s, FORGE)["plaintext"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // And the SDK finds no key on disk any more.
    assert!(!netrc_text(&w).contains(&k));
}

#[test]
fn netrc_written_by_the_sdk_with_host_is_seen_and_migrated() {
    let w = World::new(Backend::SecretService);
    let (k1, k2) = (key(2), key(3));
    // The Forge proxy address, normalised by the SDK, and the W&B host itself.
    for (host, k) in [("https://forge.coreweave.com/api/wandb", &k1), (CLOUD, &k2)] {
        let out = wandb(&w, &["login", "--no-verify", "--host", host, k]);
        assert!(
            out.status.success(),
            "{host}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let netrc = netrc_text(&w);
    assert!(netrc.contains("machine api.forge.coreweave.com"), "{netrc}");
    assert!(netrc.contains("machine api.wandb.ai"), "{netrc}");

    let (verdict, detail) = doctor_check(&w, "netrc");
    assert_eq!(verdict, "problem");
    assert!(
        detail.starts_with("2 plaintext W&B key(s) in netrc"),
        "{detail}"
    );

    // Each address resolves to its own entry.
    let s = json(&w.wbl(&["status", "--json"]));
    assert!(
        host_row(&s, FORGE)["source_detail"]
            .as_str()
            .unwrap()
            .ends_with("(machine api.forge.coreweave.com)")
    );
    assert!(
        host_row(&s, CLOUD)["source_detail"]
            .as_str()
            .unwrap()
            .ends_with("(machine api.wandb.ai)")
    );

    // A refused Forge address is the SDK's message.
    let out = w.wbl(&["token", "--host", "https://forge.coreweave.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Invalid Forge server address; use https://api.forge.coreweave.com."),
        "{}",
        stderr(&out)
    );

    let out = w.wbl(&["migrate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_no_key_on_disk(&w.home().join(".netrc"), &k1);
    assert_no_key_on_disk(&w.home().join(".netrc"), &k2);
    let token = |h: &str| stdout(&w.wbl(&["token", "--host", h])).trim().to_owned();
    assert_eq!(token(FORGE), k1);
    assert_eq!(token(CLOUD), k2);
    // `wbl login` finds the stored key without prompting.
    let out = w.wbl(&["login", "--host", FORGE]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("from the keychain (already stored)"),
        "{}",
        stderr(&out)
    );
}

/// The SDK under `wbl exec`, logging in with `verify=True` against the fake server: the key
/// stored for one address of the deployment is handed over for the other too.
#[test]
fn sdk_under_wbl_exec_verifies_the_key_for_both_addresses() {
    let w = World::new(Backend::SecretService);
    let k = key(4);
    let server = FakeWandb::start(
        &k,
        Answer::Viewer {
            username: "ada",
            entity: "ada",
            teams: &[],
        },
        Answer::NullViewer,
    );
    let script = format!(
        "import wandb\nassert wandb.login(host={:?}, verify=True)\nprint('verified')\n",
        server.url
    );
    for (stored_for, asked) in [(FORGE, CLOUD), (CLOUD, FORGE)] {
        let out = w.wbl(&["logout", "--all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = w.wbl(&["login", "--host", stored_for, &k]);
        assert!(out.status.success(), "{}", stderr(&out));
        let before = server.seen().len();
        let mut c = w.cmd(WBL);
        c.args(["exec", "--host", asked, "--"])
            .arg(wandb_python())
            .args(["-c", &script]);
        sdk_env(&w, &mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success() && stdout(&out).contains("verified"),
            "stored for {stored_for}, asked {asked}: {}{}\nthe server saw: {:?}",
            stdout(&out),
            stderr(&out),
            server
                .seen()
                .iter()
                .map(|s| (&s.path, &s.body, s.key_ok))
                .collect::<Vec<_>>()
        );
        let seen = server.seen();
        assert!(seen.len() > before, "the SDK did not ask the server");
        assert!(seen[before..].iter().all(|s| s.key_ok), "{seen:?}");
        assert!(
            !netrc_text(&w).contains(&k),
            "the SDK wrote the key to disk"
        );
    }
}
