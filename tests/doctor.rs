//! `wbl doctor` against real setups: a private D-Bus with an unlocked (then locked)
//! gnome-keyring, no D-Bus at all, the real agent (and a fake one from an older build),
//! plaintext keys in real files, and the real git. Each check's verdict and fix is checked,
//! and so is the claim that the fix works: the suggested command is run and the check passes.

#![cfg(target_os = "linux")]

mod common;

use std::process::Output;

use common::*;
use serde_json::Value;

/// Every check, in the order the report lists them.
const CHECKS: [&str; 16] = [
    "dbus",
    "secret-service",
    "keyutils",
    "agent",
    "socket",
    "backend",
    "service",
    "openbao",
    "accounts",
    "access-log",
    "netrc",
    "wandb-settings",
    "git-credentials",
    "docker-logins",
    "wandb-api-key",
    "git-helper",
];

/// Environment that would change the hints or git's view; the world decides these.
const HOST_ENV: [&str; 5] = [
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "WSL_DISTRO_NAME",
    "WSL_INTEROP",
];

fn doctor(w: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = w.cmd(WBL);
    c.arg("doctor").args(args).env("GIT_CONFIG_NOSYSTEM", "1");
    for k in HOST_ENV {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `wbl doctor --json`, parsed, with its exit status.
fn report(w: &World, env: &[(&str, &str)]) -> (Value, Option<i32>) {
    let out = doctor(w, &["--json"], env);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(&out), stderr(&out)));
    (v, out.status.code())
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn verdict<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["verdict"].as_str().unwrap()
}

fn text<'a>(report: &'a Value, name: &str, field: &str) -> &'a str {
    check(report, name)[field].as_str().unwrap_or("")
}

/// A world with gnome-keyring, the agent running and git set up to ask wbl: all is well.
fn healthy() -> World {
    let w = World::new(Backend::SecretService);
    ok(w.wbl(&["agent", "start"]));
    ok(w.wbl_env(&["setup-git"], &[("GIT_CONFIG_NOSYSTEM", "1")]));
    w
}

#[test]
fn healthy_setup_is_healthy() {
    let w = healthy();
    let (r, code) = report(&w, &[]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["healthy"], true);
    assert_eq!(
        (r["problems"].as_u64(), r["warnings"].as_u64()),
        (Some(0), Some(0))
    );
    for name in CHECKS {
        assert_eq!(verdict(&r, name), "ok", "{name}: {:#}", check(&r, name));
    }
    assert!(
        text(&r, "secret-service", "detail").contains("gnome-keyring-daemon"),
        "{r:#}"
    );
    assert!(
        text(&r, "secret-service", "detail").ends_with("is unlocked"),
        "{r:#}"
    );
    let pid = w.agent_pid().unwrap();
    assert!(
        text(&r, "agent", "detail").starts_with(&format!(
            "running (pid {pid}, version {}, protocol ",
            env!("CARGO_PKG_VERSION")
        )),
        "{r:#}"
    );
    assert!(text(&r, "socket", "detail").contains("mode 0600"), "{r:#}");
    assert_eq!(
        text(&r, "backend", "detail"),
        "the agent uses secret-service (keys survive a reboot)"
    );
    assert!(
        text(&r, "git-helper", "detail").starts_with("git asks wbl ("),
        "{r:#}"
    );

    // The same, for people: one `ok` line per check and the verdict at the end.
    let out = doctor(&w, &[], &[]);
    assert_eq!(out.status.code(), Some(0));
    let t = stdout(&out);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), CHECKS.len() + 2, "{t}");
    for line in &lines[..CHECKS.len()] {
        assert!(line.starts_with("ok       "), "{t}");
        assert!(line.contains(" ms  "), "{t}");
    }
    assert_eq!(lines.last(), Some(&"wbl doctor: no problems found."));
    // It changed nothing: the same agent runs.
    assert_eq!(w.agent_pid(), Some(pid));
}

#[test]
fn json_has_the_documented_fields() {
    let w = World::new(Backend::SecretService);
    let (r, code) = report(&w, &[]);
    let mut top: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    top.sort_unstable();
    assert_eq!(
        top,
        ["checks", "healthy", "problems", "warnings", "wbl_version"]
    );
    assert_eq!(r["wbl_version"], env!("CARGO_PKG_VERSION"));
    let checks = r["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS);
    let (mut problems, mut warnings) = (0, 0);
    for c in checks {
        let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["detail", "fix", "ms", "name", "title", "verdict"],
            "{c}"
        );
        assert!(c["ms"].is_u64(), "{c}");
        assert!(!c["title"].as_str().unwrap().is_empty(), "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
        match c["verdict"].as_str().unwrap() {
            "problem" => problems += 1,
            "warning" => warnings += 1,
            "ok" | "skipped" => {}
            other => panic!("verdict {other}"),
        }
        // A fix exactly where something is wrong.
        let wrong = matches!(c["verdict"].as_str(), Some("problem" | "warning"));
        assert_eq!(c["fix"].is_string(), wrong, "{c}");
    }
    assert_eq!(r["problems"], problems);
    assert_eq!(r["warnings"], warnings);
    assert_eq!(r["healthy"], problems == 0);
    assert_eq!(code, Some(if problems == 0 { 0 } else { 1 }));
    // No agent ran, and wbl doctor did not start one.
    assert!(w.agent_pid().is_none());
    assert!(!w.socket().exists());
}

#[test]
fn no_dbus_session_is_a_problem_with_a_fix() {
    // No bus in this world; `auto` is what a user gets without WBL_BACKEND.
    let w = World::new(Backend::Keyutils);
    let (r, code) = report(&w, &[("WBL_BACKEND", "auto")]);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["healthy"], false);
    assert_eq!(verdict(&r, "dbus"), "problem");
    let run = w.dir.path().join("run");
    assert!(
        text(&r, "dbus", "detail").starts_with(&format!(
            "no session D-Bus: DBUS_SESSION_BUS_ADDRESS is not set and unix:path={}/bus does not answer",
            run.display()
        )),
        "{r:#}"
    );
    let fix = text(&r, "dbus", "fix");
    assert!(fix.contains("`exec dbus-run-session -- $SHELL`"), "{fix}");
    assert!(fix.contains("`export WBL_BACKEND=keyutils`"), "{fix}");
    assert!(
        !fix.contains("over SSH") && !fix.contains("on WSL"),
        "{fix}"
    );
    assert_eq!(verdict(&r, "secret-service"), "skipped");
    // Started now, the agent would fall back to the kernel keyring.
    assert_eq!(verdict(&r, "backend"), "warning");
    assert!(
        text(&r, "backend", "detail").contains("fall back to keyutils"),
        "{r:#}"
    );

    // For people: the problem line, then its fix.
    let out = doctor(&w, &[], &[("WBL_BACKEND", "auto")]);
    assert_eq!(out.status.code(), Some(1));
    let t = stdout(&out);
    let at = t
        .lines()
        .position(|l| l.starts_with("PROBLEM  session D-Bus"))
        .unwrap_or_else(|| panic!("{t}"));
    let fix_line = t.lines().nth(at + 1).unwrap();
    assert!(
        fix_line
            .trim_start()
            .starts_with("fix: log in through a session"),
        "{t}"
    );
    assert!(
        t.ends_with("Run the fixes above, then `wbl doctor` again.\n"),
        "{t}"
    );

    // A bus address that points nowhere; over SSH and on WSL the fix says what to do there.
    let nowhere = format!("unix:path={}/no-bus", run.display());
    let (r, code) = report(
        &w,
        &[
            ("WBL_BACKEND", "auto"),
            ("DBUS_SESSION_BUS_ADDRESS", &nowhere),
            ("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22"),
            ("WSL_DISTRO_NAME", "Debian"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        text(&r, "dbus", "detail").starts_with(&format!(
            "cannot connect to DBUS_SESSION_BUS_ADDRESS={nowhere}: "
        )),
        "{r:#}"
    );
    let fix = text(&r, "dbus", "fix");
    assert!(
        fix.contains("over SSH: ") && fix.contains("dbus-user-session"),
        "{fix}"
    );
    assert!(
        fix.contains("on WSL: ") && fix.contains("systemd=true"),
        "{fix}"
    );

    // With WBL_BACKEND=keyutils no bus is needed: only the warning that keys die at reboot
    // remains, and warnings alone keep exit status 0.
    let (r, code) = report(&w, &[]);
    assert_eq!(verdict(&r, "dbus"), "skipped", "{r:#}");
    assert_eq!(verdict(&r, "backend"), "warning");
    assert_eq!(r["problems"], 0, "{r:#}");
    assert_eq!(code, Some(0));
    // Nothing was started.
    assert!(w.agent_pid().is_none());
}

#[test]
fn locked_collection_is_a_problem_and_the_fix_unlocks_it() {
    let w = World::new(Backend::SecretService);
    w.lock_keyring();
    let (r, code) = report(&w, &[]);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(verdict(&r, "dbus"), "ok");
    assert_eq!(verdict(&r, "secret-service"), "problem");
    assert!(
        text(&r, "secret-service", "detail").contains("\"Login\" of gnome-keyring-daemon (pid "),
        "{r:#}"
    );
    assert!(
        text(&r, "secret-service", "detail").contains("is locked"),
        "{r:#}"
    );
    let fix = text(&r, "secret-service", "fix");
    assert!(fix.starts_with("`wbl keyring unlock`"), "{fix}");
    // What wbl itself says meanwhile: the keyring is locked, and how to unlock it.
    let out = run_with_stdin(
        w.cmd(WBL)
            .args(["login", "-"])
            .env("WBL_KEYCHAIN_TIMEOUT", "2"),
        key(83).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("wbl: error: ")
            && last.contains("the keyring is locked")
            && last.contains("`wbl keyring unlock`"),
        "{err}"
    );
    w.stop_agent();
    // Over SSH, the fix says why the keyring stayed locked.
    let (r, _) = report(&w, &[("SSH_TTY", "/dev/pts/0")]);
    assert!(text(&r, "secret-service", "fix").contains("over SSH: a login with an SSH key"));

    // The fix, with the password on stdin (tests/keyring.rs runs it from every state).
    ok(run_with_stdin(
        w.cmd(WBL).args(["keyring", "unlock"]),
        b"test-password\n",
    ));
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "secret-service"), "ok", "{r:#}");
    assert!(
        text(&r, "secret-service", "detail").ends_with("is unlocked"),
        "{r:#}"
    );
}

#[test]
fn plaintext_keys_are_problems_that_wbl_migrate_fixes() {
    let w = healthy();
    let k = key(81);
    let netrc = w.home().join(".netrc");
    std::fs::write(
        &netrc,
        format!("machine github.com login octo password gh\nmachine api.wandb.ai login user password {k}\n"),
    )
    .unwrap();
    set_mode(&netrc, 0o600);
    let out = doctor(&w, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&k), "wbl doctor printed the key: {all}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict(&r, "netrc"), "problem");
    assert_eq!(r["problems"], 1, "{r:#}");
    assert_eq!(
        text(&r, "netrc", "detail"),
        format!(
            "1 plaintext W&B key(s) in netrc: https://api.wandb.ai (user api) in {} (machine api.wandb.ai, line 2)",
            netrc.display()
        )
    );
    assert!(
        text(&r, "netrc", "fix").starts_with("`wbl migrate`"),
        "{r:#}"
    );
    // The other copies of the same key: `wbl scan` finds them.
    assert!(text(&r, "netrc", "fix").contains("`wbl scan`"), "{r:#}");

    // api_key in the W&B settings, and git's plaintext store.
    let settings = w.home().join(".config/wandb/settings");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, format!("[default]\napi_key = {k}\n")).unwrap();
    let store = w.home().join(".git-credentials");
    std::fs::write(&store, "https://octo:s3cr3t-pass@git.example.com\n").unwrap();
    let out = doctor(&w, &["--json"], &[]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&k) && !all.contains("s3cr3t-pass"), "{all}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict(&r, "wandb-settings"), "problem");
    assert!(text(&r, "wandb-settings", "detail").contains(&settings.display().to_string()));
    assert_eq!(verdict(&r, "git-credentials"), "problem");
    assert!(
        text(&r, "git-credentials", "detail").contains("https://git.example.com (user octo) in "),
        "{r:#}"
    );
    assert!(text(&r, "git-credentials", "fix").starts_with("`wbl migrate --git-credentials`"));
    assert_eq!(r["problems"], 3);

    // The fixes work: afterwards the three checks pass.
    ok(w.wbl(&["migrate", "--git-credentials"]));
    let (r, code) = report(&w, &[]);
    for name in ["netrc", "wandb-settings", "git-credentials"] {
        assert_eq!(verdict(&r, name), "ok", "{name}: {r:#}");
    }
    assert_eq!(code, Some(0), "{r:#}");
    // What migrate leaves alone (a `default` entry) is a warning, not a problem.
    std::fs::write(&netrc, "default login anonymous password anon@\n").unwrap();
    let (r, code) = report(&w, &[]);
    assert_eq!(verdict(&r, "netrc"), "warning", "{r:#}");
    assert!(
        text(&r, "netrc", "detail").contains("`default` entry"),
        "{r:#}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn wandb_api_key_in_the_environment_is_a_warning() {
    let w = healthy();
    let k = key(82);
    let out = doctor(&w, &["--json"], &[("WANDB_API_KEY", &k)]);
    assert!(!stdout(&out).contains(&k) && !stderr(&out).contains(&k));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict(&r, "wandb-api-key"), "warning");
    assert!(text(&r, "wandb-api-key", "fix").contains("`wbl exec -- python train.py`"));
    assert_eq!(
        (r["warnings"].as_u64(), r["problems"].as_u64()),
        (Some(1), Some(0))
    );
    // A warning alone keeps exit status 0.
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn git_without_the_wbl_helper_is_a_warning_until_setup_git() {
    let w = World::new(Backend::SecretService);
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "git-helper"), "warning");
    assert_eq!(
        text(&r, "git-helper", "detail"),
        "git does not ask wbl for credentials for https://api.wandb.ai"
    );
    assert_eq!(text(&r, "git-helper", "fix"), "`wbl setup-git`");
    ok(w.wbl_env(&["setup-git"], &[("GIT_CONFIG_NOSYSTEM", "1")]));
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "git-helper"), "ok", "{r:#}");
    // A `store` helper next to wbl's writes plaintext again.
    ok(w.cmd("git")
        .args(["config", "--global", "--add", "credential.helper", "store"])
        .output()
        .unwrap());
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "git-helper"), "warning");
    assert!(
        text(&r, "git-helper", "detail").contains("`store` helper"),
        "{r:#}"
    );
    // A self-hosted host is checked for its own URL.
    let (r, _) = report(&w, &[("WANDB_BASE_URL", "https://wandb.example.com")]);
    assert_eq!(
        text(&r, "git-helper", "fix"),
        "`wbl setup-git --host https://wandb.example.com`"
    );
}

#[test]
fn setup_git_with_the_helper_on_path_is_ok() {
    // With git-credential-wbl on PATH (an install), `wbl setup-git` writes the helper `wbl`,
    // which git runs as `git credential-wbl`: doctor looks for that on PATH, as git does.
    let w = World::new(Backend::SecretService);
    let path = path_with_bins();
    let path = path.to_str().unwrap();
    let env = [("PATH", path), ("GIT_CONFIG_NOSYSTEM", "1")];
    ok(w.wbl_env(&["setup-git"], &env));
    let helper = ok(w
        .cmd("git")
        .args([
            "config",
            "--global",
            "credential.https://api.wandb.ai.helper",
        ])
        .output()
        .unwrap());
    assert_eq!(stdout(&helper).trim(), "wbl");
    let (r, _) = report(&w, &env);
    assert_eq!(verdict(&r, "git-helper"), "ok", "{r:#}");
    assert_eq!(
        text(&r, "git-helper", "detail"),
        "git asks wbl (wbl) for credentials for https://api.wandb.ai"
    );
    // Without the helper on PATH, git cannot run it, and doctor says which program is missing.
    let (r, _) = report(&w, &[("PATH", path_without_bins().to_str().unwrap())]);
    assert_eq!(verdict(&r, "git-helper"), "warning", "{r:#}");
    assert_eq!(
        text(&r, "git-helper", "detail"),
        "git's wbl helper for https://api.wandb.ai runs git-credential-wbl, which is not on PATH"
    );
}

#[test]
fn agent_of_another_build_is_a_warning_and_is_left_running() {
    let w = World::new(Backend::SecretService);
    let mut old = w.spawn_old_agent();
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "agent"), "warning", "{r:#}");
    assert!(
        text(&r, "agent", "detail").contains(&format!("(pid {}) is version ", old.id())),
        "{r:#}"
    );
    assert!(
        text(&r, "agent", "detail").contains("with protocol 0"),
        "{r:#}"
    );
    assert_eq!(
        text(&r, "agent", "fix"),
        "`wbl agent stop && wbl agent start`"
    );
    assert_eq!(verdict(&r, "backend"), "skipped");
    // wbl doctor only looked.
    assert!(
        old.try_wait().unwrap().is_none(),
        "wbl doctor stopped the old agent"
    );
    let _ = old.kill();
    let _ = old.wait();
}

#[test]
fn unsafe_socket_modes_are_problems() {
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["agent", "start"]));
    set_mode(&w.socket(), 0o666);
    let (r, code) = report(&w, &[]);
    assert_eq!(verdict(&r, "socket"), "problem", "{r:#}");
    assert!(
        text(&r, "socket", "detail").contains("has mode 0666"),
        "{r:#}"
    );
    assert_eq!(
        text(&r, "socket", "fix"),
        format!(
            "`chmod 600 {}` (under systemd, `wbl agent install` rewrites wbl-agent.socket with SocketMode=0600)",
            w.socket().display()
        )
    );
    assert_eq!(code, Some(1));
    set_mode(&w.socket(), 0o600);
    set_mode(w.socket().parent().unwrap(), 0o755);
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "socket"), "warning", "{r:#}");
    assert!(
        text(&r, "socket", "detail").contains("is mode 0755"),
        "{r:#}"
    );
    set_mode(w.socket().parent().unwrap(), 0o700);
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "socket"), "ok", "{r:#}");
}

#[test]
fn installed_units_pointing_at_a_missing_agent_are_a_problem() {
    let w = World::new(Backend::Keyutils);
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "service"), "ok");
    assert!(
        text(&r, "service", "detail").starts_with("not installed (optional)"),
        "{r:#}"
    );
    ok(w.wbl(&["agent", "install"]));
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "service"), "warning", "{r:#}");
    assert_eq!(
        text(&r, "service", "fix"),
        "`systemctl --user enable --now wbl-agent.socket`"
    );
    // The real systemctl enables them (files only: no user manager runs here).
    ok(w.cmd("systemctl")
        .args(["--user", "--no-reload", "enable", "wbl-agent.socket"])
        .output()
        .unwrap());
    let (r, _) = report(&w, &[]);
    assert_eq!(verdict(&r, "service"), "ok", "{r:#}");
    assert!(
        text(&r, "service", "detail").contains("no systemd user manager"),
        "{r:#}"
    );
    // An upgrade moved wbl-agent: the unit now runs a program that is gone.
    let unit = w.home().join(".config/systemd/user/wbl-agent.service");
    let agent = std::fs::canonicalize(AGENT).unwrap();
    let text_before = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text_before.replace(&agent.display().to_string(), "/nonexistent/wbl-agent"),
    )
    .unwrap();
    let (r, code) = report(&w, &[]);
    assert_eq!(verdict(&r, "service"), "problem", "{r:#}");
    assert_eq!(
        text(&r, "service", "detail"),
        "wbl-agent.service runs /nonexistent/wbl-agent, which does not exist"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn hung_services_become_problems_not_a_hung_doctor() {
    // A bus and an agent that accept connections and never answer: each check gives up at its
    // deadline and says so.
    let w = World::new(Backend::Keyutils);
    let bus_path = w.dir.path().join("silent-bus");
    let _bus = std::os::unix::net::UnixListener::bind(&bus_path).unwrap();
    let _agent = std::os::unix::net::UnixListener::bind(w.socket()).unwrap();
    // A live process in the pid file, as an agent would be (the world stops it at the end).
    let mut holder = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = holder.id();
    std::fs::write(w.socket().with_extension("sock.pid"), format!("{pid}\n")).unwrap();
    let bus = format!("unix:path={}", bus_path.display());
    let (r, code) = report(
        &w,
        &[("WBL_BACKEND", "auto"), ("DBUS_SESSION_BUS_ADDRESS", &bus)],
    );
    assert_eq!(code, Some(1));
    assert_eq!(verdict(&r, "dbus"), "problem");
    assert_eq!(
        text(&r, "dbus", "detail"),
        format!("cannot connect to DBUS_SESSION_BUS_ADDRESS={bus}: no answer within 3 s")
    );
    assert_eq!(verdict(&r, "agent"), "problem");
    assert_eq!(
        text(&r, "agent", "detail"),
        format!(
            "wbl-agent (pid {pid}) does not answer on {} within 5 s",
            w.socket().display()
        )
    );
    assert!(
        text(&r, "agent", "fix").starts_with(&format!(
            "`kill {pid}` (it stops gracefully), then `wbl agent start`"
        )),
        "{r:#}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
}
