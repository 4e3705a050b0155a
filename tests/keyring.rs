//! The Secret Service in the states a real machine leaves it in — locked, without a default
//! collection, not running — with the real gnome-keyring: wbl says which state it is and how
//! to leave it (never a silent switch to the kernel keyring), and the fix `wbl doctor` prints
//! works from that state, as root and as an ordinary user.

#![cfg(target_os = "linux")]

mod common;

use std::process::Output;

use common::*;
use serde_json::Value;

/// The password `World` gives gnome-keyring's login keyring.
const PASSWORD: &str = "test-password";

/// `wbl doctor --json` with the backend users get (`auto`), no display, not over SSH.
fn doctor(w: &World) -> Value {
    let mut c = w.cmd(WBL);
    c.args(["doctor", "--json"])
        .env("WBL_BACKEND", "auto")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for k in [
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "SSH_CONNECTION",
        "SSH_CLIENT",
        "SSH_TTY",
    ] {
        c.env_remove(k);
    }
    let out = c.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(&out), stderr(&out)))
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

/// `wbl ARGS` with the backend users get (`auto`).
fn wbl(w: &World, args: &[&str]) -> Output {
    w.wbl_env(args, &[("WBL_BACKEND", "auto")])
}

fn login(w: &World, key: &str) -> Output {
    run_with_stdin(
        w.cmd(WBL)
            .args(["login", "-"])
            .env("WBL_BACKEND", "auto")
            .env("WBL_KEYCHAIN_TIMEOUT", "10"),
        key.as_bytes(),
    )
}

/// The commands between backticks in `text`.
fn commands(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Runs the fix doctor printed for the Secret Service — it must be `wbl keyring unlock` —
/// with `password` on stdin, as a user pipes it.
fn apply_fix(w: &World, fix: &str, password: &str) -> Output {
    let cmds = commands(fix);
    assert_eq!(cmds.first(), Some(&"wbl keyring unlock"), "{fix}");
    run_with_stdin(
        w.cmd(WBL).args(["keyring", "unlock"]),
        format!("{password}\n").as_bytes(),
    )
}

/// Every backend-switching symptom of issue 28 at once: the agent started with `auto` on a
/// locked keyring uses the Secret Service, and `token`, `exec`, `login` and doctor say it is
/// locked and how to unlock it; nothing goes to the kernel keyring.
fn locked_keyring_is_reported(user: Option<users::User>) {
    let w = World::with_keyring(Keyring::Locked, user);
    // The client that starts the agent shows what the agent found.
    let out = wbl(&w, &["token"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("wbl-agent: WARNING the keyring is locked (\"Login\" of gnome-keyring-daemon"),
        "{err}"
    );
    assert!(
        err.contains("wbl: error: the keyring is locked (") && err.contains("`wbl keyring unlock`"),
        "{err}"
    );
    assert!(!err.contains("no API key stored"), "{err}");
    let status: Value =
        serde_json::from_slice(&ok(wbl(&w, &["agent", "status", "--json"])).stdout).unwrap();
    assert_eq!(status["backend"], "secret-service", "{status:#}");
    // A running agent: no warning again, the error each time.
    let out = wbl(&w, &["exec", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(!err.contains("WARNING"), "{err}");
    assert!(err.contains("the keyring is locked"), "{err}");
    let out = login(&w, &key(1));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("the keyring is locked"), "{out:?}");
    // Nothing went to the kernel keyring.
    assert_eq!(w.keyctl_lookup("https://api.wandb.ai", "api"), None);
    let r = doctor(&w);
    assert_eq!(check(&r, "secret-service")["verdict"], "problem", "{r:#}");
    assert_ne!(check(&r, "backend")["detail"], "keyutils", "{r:#}");

    // The fix doctor printed, from this state: then a key can be stored and read.
    let fix = check(&r, "secret-service")["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = ok(apply_fix(&w, &fix, PASSWORD));
    assert!(
        stderr(&out).contains("unlocked the keyring \"Login\""),
        "{out:?}"
    );
    ok(login(&w, &key(1)));
    assert_eq!(stdout(&ok(wbl(&w, &["token"]))).trim(), key(1));
    assert_eq!(
        w.secret_tool_lookup("https://api.wandb.ai", "api")
            .as_deref(),
        Some(key(1).as_str())
    );
    assert_eq!(w.keyctl_lookup("https://api.wandb.ai", "api"), None);
    let r = doctor(&w);
    assert_eq!(check(&r, "secret-service")["verdict"], "ok", "{r:#}");
}

#[test]
fn locked_keyring_is_reported_and_unlocked_by_the_fix() {
    locked_keyring_is_reported(None);
}

#[test]
fn locked_keyring_is_reported_and_unlocked_by_the_fix_as_a_user() {
    locked_keyring_is_reported(Some(users::user()));
}

#[test]
fn a_wrong_password_leaves_it_locked_and_says_so() {
    let w = World::with_keyring(Keyring::Locked, None);
    let out = run_with_stdin(
        w.cmd(WBL).args(["keyring", "unlock"]),
        b"not-the-password\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.starts_with("wbl: error: gnome-keyring-daemon (pid ") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    let r = doctor(&w);
    assert_eq!(check(&r, "secret-service")["verdict"], "problem", "{r:#}");
}

/// No default collection (gnome-keyring started without a login password): a problem for
/// doctor, a login error that says what is wrong and how to fix it, and the fix creates it.
fn no_default_collection(user: Option<users::User>) {
    let w = World::with_keyring(Keyring::NoDefaultCollection, user);
    let r = doctor(&w);
    let ss = check(&r, "secret-service");
    assert_eq!(ss["verdict"], "problem", "{r:#}");
    assert!(
        ss["detail"]
            .as_str()
            .unwrap()
            .contains("has no default collection (no login keyring): no key can be stored, and without a display"),
        "{r:#}"
    );
    assert_eq!(r["healthy"], false);
    let out = login(&w, &key(2));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(
            "wbl: error: while storing the key in the keychain: gnome-keyring-daemon (pid "
        ) && err.contains(
            ") has no default keyring to keep keys in: create one with `wbl keyring unlock`"
        ),
        "{err}"
    );
    assert!(!err.contains("SS error"), "{err}");
    assert_eq!(w.keyctl_lookup("https://api.wandb.ai", "api"), None);

    let fix = ss["fix"].as_str().unwrap().to_owned();
    let out = ok(apply_fix(&w, &fix, "a-new-password"));
    assert!(
        stderr(&out).contains("created the keyring \"Login\""),
        "{out:?}"
    );
    ok(login(&w, &key(2)));
    assert_eq!(stdout(&ok(wbl(&w, &["token"]))).trim(), key(2));
    let r = doctor(&w);
    assert_eq!(check(&r, "secret-service")["verdict"], "ok", "{r:#}");
    // Asked again, it changes nothing.
    let out = ok(run_with_stdin(w.cmd(WBL).args(["keyring", "unlock"]), b""));
    assert!(stderr(&out).contains("is unlocked already"), "{out:?}");
}

#[test]
fn no_default_collection_is_a_problem_and_the_fix_creates_it() {
    no_default_collection(None);
}

#[test]
fn no_default_collection_is_a_problem_and_the_fix_creates_it_as_a_user() {
    no_default_collection(Some(users::user()));
}

/// Nothing runs; D-Bus can start gnome-keyring. The fix starts it and creates the keyring.
fn not_running(user: Option<users::User>) {
    let w = World::with_keyring(Keyring::NotRunning, user);
    let r = doctor(&w);
    let ss = check(&r, "secret-service");
    assert_eq!(ss["verdict"], "warning", "{r:#}");
    let fix = ss["fix"].as_str().unwrap().to_owned();
    let out = ok(apply_fix(&w, &fix, "a-new-password"));
    assert!(
        stderr(&out).contains("created the keyring \"Login\""),
        "{out:?}"
    );
    ok(login(&w, &key(3)));
    assert_eq!(stdout(&ok(wbl(&w, &["token"]))).trim(), key(3));
    let r = doctor(&w);
    assert_eq!(check(&r, "secret-service")["verdict"], "ok", "{r:#}");
}

#[test]
fn secret_service_not_running_is_started_by_the_fix() {
    not_running(None);
}

#[test]
fn secret_service_not_running_is_started_by_the_fix_as_a_user() {
    not_running(Some(users::user()));
}

#[test]
fn the_client_that_starts_the_agent_shows_the_kernel_keyring_fallback() {
    // No session bus at all: the one case for the kernel keyring, and the user is told.
    let w = World::new(Backend::Keyutils);
    let out = login(&w, &key(4));
    assert!(out.status.success(), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("wbl-agent: WARNING no usable Secret Service (")
            && err.contains("no session D-Bus"),
        "{err}"
    );
    assert!(err.contains("using the kernel keyring (keyutils)"), "{err}");
}

#[test]
fn a_keyring_locked_while_the_agent_runs_is_reported_then_unlocked() {
    let w = World::new(Backend::SecretService);
    ok(login(&w, &key(5)));
    w.lock_keyring();
    // The key the agent holds in memory is still served; a new one cannot be stored.
    assert_eq!(stdout(&ok(wbl(&w, &["token"]))).trim(), key(5));
    let out = login(&w, &key(6));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("the keyring is locked (\"Login\" of gnome-keyring-daemon (pid ")
            && err.contains("`wbl keyring unlock`"),
        "{err}"
    );
    ok(run_with_stdin(
        w.cmd(WBL).args(["keyring", "unlock"]),
        format!("{PASSWORD}\n").as_bytes(),
    ));
    ok(login(&w, &key(6)));
    assert_eq!(stdout(&ok(wbl(&w, &["token"]))).trim(), key(6));
    assert_eq!(
        w.secret_tool_lookup("https://api.wandb.ai", "api")
            .as_deref(),
        Some(key(6).as_str())
    );
}
