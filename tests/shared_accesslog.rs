//! The access log as an ordinary user sees it (CI is root, users never are): every client of
//! wbl's — `wbl token`, `wbl exec`, `git-credential-wbl` run by real git, `docker-credential-wbl`
//! — is named by its program (it was `null` for all of them: the clients made themselves
//! non-dumpable at start, which hides `/proc/<pid>/exe` from a process of the same user), `wbl exec` names the program that received the key, a key that
//! is only looked at (`wbl status`) is not a hand-out; text from outside (a git URL's host)
//! never reaches the terminal or the agent's log raw; a token used as a URL's user name is
//! never recorded whole.

#![cfg(target_os = "linux")]

#[path = "support/accesslog.rs"]
mod access;
mod common;

use std::path::PathBuf;

use access::{access_log, real, wait_entries, which};
use common::users::{self, shared_bin};
use common::{
    Backend, DOCKER_HELPER, GIT_HELPER, WBL, World, isolate_git, key, ok, run_with_stdin, stdout,
};
use serde_json::Value;

/// Where a program built here runs from as the test user (what its `/proc/<pid>/exe` says).
fn exe_of(built: &str) -> String {
    real(shared_bin(built.as_ref()))
}

/// `git credential <action>` with `credential.helper` set to the helper (as the world's user),
/// `input` on stdin.
fn git_credential(w: &World, action: &str, input: &str) -> std::process::Output {
    run_with_stdin(git_credential_cmd(w, action), input.as_bytes())
}

/// `git credential <action>` with `credential.helper` set to the helper (as the world's user),
/// not yet run.
fn git_credential_cmd(w: &World, action: &str) -> std::process::Command {
    std::fs::write(w.home().join(".gitconfig"), "").unwrap();
    if let Some(u) = w.user() {
        u.chown(&w.home().join(".gitconfig"));
    }
    let mut c = w.cmd("git");
    isolate_git(&mut c, w);
    c.args([
        "-c",
        "credential.helper=",
        "-c",
        &format!(
            "credential.helper={}",
            shared_bin(GIT_HELPER.as_ref()).display()
        ),
        "credential",
        action,
    ]);
    c
}

/// The one entry of `op` for `host` with this result.
fn find<'a>(e: &'a [Value], op: &str, host: &str) -> Vec<&'a Value> {
    e.iter()
        .filter(|e| e["op"] == op && e["host"] == host)
        .collect()
}

#[test]
fn every_client_is_named_for_an_ordinary_user() {
    let w = World::new_as(Backend::Keyutils, users::user());
    let (git_key, wandb_key, docker_key) = (key(41), key(42), key(43));

    // git stores and gets through git-credential-wbl.
    ok(git_credential(
        &w,
        "approve",
        &format!("protocol=https\nhost=git.example.com\nusername=alice\npassword={git_key}\n\n"),
    ));
    let filled = ok(git_credential(
        &w,
        "fill",
        "protocol=https\nhost=git.example.com\n\n",
    ));
    assert!(stdout(&filled).contains(&format!("password={git_key}")));

    // wbl login (from stdin), token, exec, status.
    ok(run_with_stdin(
        w.cmd(WBL).args(["login", "-"]),
        wandb_key.as_bytes(),
    ));
    let token = ok(w.wbl(&["token"]));
    assert_eq!(stdout(&token).trim(), wandb_key);
    ok(w.wbl(&["exec", "--", "sh", "-c", "test -n \"$WANDB_API_KEY\""]));
    ok(w.wbl(&["status"]));

    // Docker's helper stores and gets.
    let creds = format!(
        "{{\"ServerURL\":\"registry.example.com\",\"Username\":\"bob\",\"Secret\":\"{docker_key}\"}}"
    );
    ok(run_with_stdin(
        w.cmd(DOCKER_HELPER).arg("store"),
        creds.as_bytes(),
    ));
    let got = ok(run_with_stdin(
        w.cmd(DOCKER_HELPER).arg("get"),
        b"registry.example.com\n",
    ));
    assert!(stdout(&got).contains(&docker_key));

    // git: store, get; W&B: store, token, exec, status (three lookups); Docker: store, get.
    let e = wait_entries(&w, 10);
    let uid = u64::from(users::user().uid);
    for entry in &e {
        assert_eq!(entry["uid"].as_u64(), Some(uid), "{entry}");
    }

    // git: the helper, with git among its parents.
    let git = "git.example.com";
    let git_store = find(&e, "store", git);
    assert_eq!(git_store.len(), 1, "{e:#?}");
    assert_eq!(
        git_store[0]["exe"].as_str(),
        Some(exe_of(GIT_HELPER).as_str())
    );
    let git_get = find(&e, "get", git);
    assert_eq!(git_get.len(), 1, "{e:#?}");
    assert_eq!(git_get[0]["result"], "ok");
    assert_eq!(
        git_get[0]["exe"].as_str(),
        Some(exe_of(GIT_HELPER).as_str())
    );
    assert!(git_get[0]["use"].is_null(), "{}", git_get[0]);
    // W&B: login stores, token and exec get, status only checks.
    let wandb = "api.wandb.ai";
    let wbl = exe_of(WBL);
    let stores = find(&e, "store", wandb);
    assert_eq!(stores.len(), 1, "{e:#?}");
    assert_eq!(stores[0]["exe"].as_str(), Some(wbl.as_str()));
    let gets = find(&e, "get", wandb);
    assert!(
        gets.iter().all(|g| g["exe"].as_str() == Some(wbl.as_str())),
        "{gets:#?}"
    );
    let handed: Vec<&&Value> = gets.iter().filter(|g| g["use"].is_null()).collect();
    assert_eq!(
        handed.len(),
        1,
        "only `wbl token` handed the key to wbl: {gets:#?}"
    );
    let exec: Vec<&&Value> = gets.iter().filter(|g| g["use"] == "exec").collect();
    assert_eq!(exec.len(), 1, "{gets:#?}");
    assert_eq!(exec[0]["command"].as_str(), Some(which("sh").as_str()));
    assert!(
        gets.iter()
            .any(|g| g["use"] == "check" && g["command"].is_null()),
        "`wbl status` looked at the key: {gets:#?}"
    );

    // Docker's helper.
    let registry = "registry.example.com";
    for op in ["store", "get"] {
        let d = find(&e, op, registry);
        assert!(!d.is_empty(), "{op}: {e:?}");
        assert!(
            d.iter()
                .all(|d| d["exe"].as_str() == Some(exe_of(DOCKER_HELPER).as_str())),
            "{op}: {d:#?}"
        );
    }

    // The table names every program: nothing is `unknown`, exec names its command, and the
    // status check is no `get`.
    let table = stdout(&ok(w.wbl(&["log"])));
    // (Parents of another user, the test harness's, are `unknown (pid N)`: not a client.)
    assert!(
        !table.replace("unknown (pid ", "").contains("unknown"),
        "{table}"
    );
    assert!(
        table.contains(&format!("{wbl} exec → {}", which("sh"))),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains(" check ") && l.contains(wandb)),
        "{table}"
    );
    for k in [&git_key, &wandb_key, &docker_key] {
        assert_eq!(w.files_containing(k), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_control_character_in_a_git_host_reaches_no_terminal_and_no_log() {
    let w = World::new_as(Backend::Keyutils, users::user());
    let k = key(45);
    // git percent-decodes the host of a URL: the helper gets `evil<ESC>[2K.com`.
    let url = "https://evil%1b%5b2K.com/repo.git";
    let mut c = git_credential_cmd(&w, "approve");
    c.env("WBL_LOG", "debug");
    ok(run_with_stdin(
        c,
        format!("url={url}\nusername=alice\npassword={k}\n\n").as_bytes(),
    ));
    let filled = ok(git_credential(&w, "fill", &format!("url={url}\n\n")));
    assert!(stdout(&filled).contains(&k));
    let e = wait_entries(&w, 2);
    // Recorded as it came (the JSON escapes it), so `--json` is unchanged...
    assert!(e.iter().any(|e| e["host"] == "evil\u{1b}[2K.com"), "{e:#?}");
    let log_bytes = std::fs::read(access_log(&w)).unwrap();
    assert!(!log_bytes.contains(&0x1b), "raw ESC in the access log file");
    // ...and shown escaped to people.
    let table = ok(w.wbl(&["log"]));
    assert!(!table.stdout.contains(&0x1b), "{table:?}");
    let text = stdout(&table);
    assert!(text.contains("evil\\x1b[2K.com"), "{text}");
    // The agent's own log (debug: it names hosts) has no raw ESC either.
    let agent_log = std::fs::read(w.log()).unwrap();
    assert!(
        String::from_utf8_lossy(&agent_log).contains("evil\\x1b[2K.com"),
        "the agent's log did not name the host: {}",
        String::from_utf8_lossy(&agent_log)
    );
    assert!(
        !agent_log.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&agent_log)
    );
    assert_eq!(w.files_containing(&k), Vec::<PathBuf>::new());
}

#[test]
fn a_token_as_a_urls_user_name_is_recorded_masked() {
    let w = World::new_as(Backend::Keyutils, users::user());
    let token = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
    let password = key(46);
    let url = format!("https://{token}@github.example.com/org/repo.git");
    // wbl's own debug lines name user names; the keychain crates' (`WBL_LOG=debug`) name the
    // keychain entry, which holds the user name as the keychain does.
    let mut c = git_credential_cmd(&w, "approve");
    c.env("WBL_LOG", "wbl=debug,info");
    ok(run_with_stdin(
        c,
        format!("url={url}\npassword={password}\n\n").as_bytes(),
    ));
    let filled = ok(git_credential(&w, "fill", &format!("url={url}\n\n")));
    assert!(stdout(&filled).contains(&password));
    let e = wait_entries(&w, 2);
    for entry in &e {
        assert_eq!(entry["username"], "ghp_…6789", "{entry}");
    }
    // Never whole: not in the access log's bytes, not in the agent's log, not in `wbl log`.
    let log_text = String::from_utf8(std::fs::read(access_log(&w)).unwrap()).unwrap();
    assert!(log_text.contains("ghp_…6789"), "{log_text}");
    assert!(!log_text.contains(token), "{log_text}");
    assert!(!stdout(&ok(w.wbl(&["log"]))).contains(token));
    assert_eq!(w.files_containing(token), Vec::<PathBuf>::new());
    assert_eq!(w.files_containing(&password), Vec::<PathBuf>::new());
}
