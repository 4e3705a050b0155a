//! What wbl says where a newcomer first meets it (issue 28): a broken config.toml in
//! `wbl status`, two different Forge-linked keys removed by `wbl logout`, a bare host for
//! `--host`, clap's errors with the `wbl: error:` prefix, `wbl man` in `--help`, the README's
//! first five minutes and the end of `scripts/install`.

#![cfg(target_os = "linux")]

mod common;

use common::{Backend, World, key, ok, run_with_stdin, stderr, stdout};

fn login(w: &World, host: &str, k: &str) {
    let mut c = w.cmd(common::WBL);
    c.args(["login", "--host", host, "-"]);
    let out = run_with_stdin(c, format!("{k}\n").as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A config.toml that does not parse: status says so where it shows the agent, and does not
/// call a running agent "not running" on the host rows.
#[test]
fn status_names_a_broken_config_file() {
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["agent", "start"]));
    let dir = w.home().join(".config/wbl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "garbage = [\n").unwrap();
    let out = ok(w.wbl(&["status"]));
    let text = stdout(&out);
    assert!(text.contains("agent:    running"), "{text}");
    assert!(
        text.contains("config:   PROBLEM ") && text.contains("config.toml line 1:"),
        "{text}"
    );
    assert!(
        text.contains("the agent serves no key until the file is fixed"),
        "{text}"
    );
    assert!(!text.contains("not running"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ok(w.wbl(&["status", "--json"])))).unwrap();
    assert!(
        json["config_error"]
            .as_str()
            .is_some_and(|e| e.contains("line 1")),
        "{json}"
    );
    w.stop_agent();
}

/// Two addresses of one deployment holding different keys: logout removes both and says that
/// they differed; the same key twice is not remarked on.
#[test]
fn logout_says_when_the_two_forge_linked_keys_differed() {
    let w = World::new(Backend::Keyutils);
    login(&w, "https://api.wandb.ai", &key(1));
    login(&w, "https://api.forge.coreweave.com", &key(2));
    let out = ok(w.wbl(&["logout"]));
    let err = stderr(&out);
    assert!(
        err.contains("Removed the API key for https://api.wandb.ai")
            && err.contains("Removed the API key for https://api.forge.coreweave.com"),
        "{err}"
    );
    // (The current host is the Forge address: its login recorded it as base_url.)
    assert!(
        err.contains(
            "The keys for https://api.forge.coreweave.com and https://api.wandb.ai were different \
             keys; both are removed"
        ),
        "{err}"
    );
    login(&w, "https://api.wandb.ai", &key(3));
    login(&w, "https://api.forge.coreweave.com", &key(3));
    let err = stderr(&ok(w.wbl(&["logout"])));
    assert!(!err.contains("different"), "{err}");
    w.stop_agent();
}

/// `--host` takes a bare host name as `wbl ssh --allow` does (https).
#[test]
fn token_host_accepts_a_bare_host_name() {
    let w = World::new(Backend::Keyutils);
    login(&w, "https://wandb.example.com", &key(4));
    let out = ok(w.wbl(&["token", "--host", "wandb.example.com"]));
    assert_eq!(stdout(&out).trim(), key(4));
    // A bare wandb.ai is still refused with the SDK's advice.
    let out = w.wbl(&["token", "--host", "wandb.ai"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("api.wandb.ai"), "{}", stderr(&out));
    w.stop_agent();
}

/// Usage errors carry the prefix of every other wbl error; help is shown as it is.
#[test]
fn usage_errors_have_the_wbl_prefix() {
    let w = World::new(Backend::Keyutils);
    let out = w.wbl(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("wbl: error: unexpected argument '--bogus' found"),
        "{}",
        stderr(&out)
    );
    let out = w.wbl(&["token", "--host"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("wbl: error: "), "{}", stderr(&out));
    // `wbl` alone shows the help (clap's exit 2), unprefixed.
    let out = w.wbl(&[]);
    assert!(stderr(&out).starts_with("Keep W&B"), "{}", stderr(&out));
    let out = ok(w.wbl(&["--help"]));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.trim_start().starts_with("man ")),
        "`wbl man` is not listed in --help:\n{}",
        stdout(&out)
    );
}

/// The README's first five minutes: no `wbl login KEY` (which warns), and why a W&B user
/// would run `setup-git`.
#[test]
fn readme_first_five_minutes_are_what_a_newcomer_should_run() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## The first five minutes").unwrap();
    let end = start + 1 + readme[start + 1..].find("\n## ").unwrap();
    let section = &readme[start..end];
    let block_end = section.find("```\n\n").unwrap();
    let commands = &section[..block_end];
    assert!(!commands.contains("wbl login KEY"), "{commands}");
    assert!(!commands.contains("(or: wbl login"), "{commands}");
    assert!(
        section.contains("`wbl setup-git` is optional for W&B"),
        "{section}"
    );
}

/// `scripts/install` ends by saying what to run next.
#[test]
fn install_script_ends_with_the_next_step() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install")).unwrap();
    let last = script.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(last.contains("wbl login"), "{last}");
}
