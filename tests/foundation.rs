//! End-to-end tests of the foundation: real binaries, a real gnome-keyring Secret Service on a
//! private D-Bus, the real kernel keyring, real processes over a real socket.

#![cfg(target_os = "linux")]

mod common;

use common::*;

fn roundtrip_survives_restart(w: &World, lookup: impl Fn(&World) -> Option<String>) {
    let k = key(1);
    let out = ok(w.wbl(&["login", &k]));
    assert!(stderr(&out).contains("https://api.wandb.ai"));
    // Keys that die at reboot are announced where the user sees them.
    assert_eq!(
        stderr(&out).contains("does not survive a reboot"),
        w.backend == "keyutils",
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    let first = w.agent_pid().expect("agent running");
    w.stop_agent();
    assert!(w.agent_pid().is_none());
    // A new agent (auto-started) can only know the key from the keychain.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    let second = w.agent_pid().expect("agent restarted");
    assert_ne!(first, second);
    assert_eq!(lookup(w).as_deref().map(str::trim_end), Some(k.as_str()));
    // The key is in no file of this world (HOME, runtime dir, logs): gnome-keyring's own file
    // is encrypted.
    assert_eq!(w.files_containing(&k), Vec::<std::path::PathBuf>::new());

    ok(w.wbl(&["logout"]));
    assert_eq!(lookup(w), None);
    let out = w.wbl(&["token"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
}

#[test]
fn secret_service_key_lives_in_gnome_keyring() {
    let w = World::new(Backend::SecretService);
    roundtrip_survives_restart(&w, |w| w.secret_tool_lookup("https://api.wandb.ai", "api"));
}

#[test]
fn keyutils_key_lives_in_kernel_keyring() {
    let w = World::new(Backend::Keyutils);
    roundtrip_survives_restart(&w, |w| w.keyctl_lookup("https://api.wandb.ai", "api"));
}

#[test]
fn items_have_readable_labels_and_documented_attributes() {
    let w = World::new(Backend::SecretService);
    ok(w.wbl(&["login", &key(2), "--host", "https://wandb.example.com:8443"]));
    let out = ok(w
        .cmd("secret-tool")
        .args(["search", "--all", "application", &w.namespace])
        .output()
        .unwrap());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("label = W&B API key for wandb.example.com:8443"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "attribute.service = {}:https://wandb.example.com:8443",
        w.namespace
    )));
    assert!(text.contains("attribute.username = api"));
}

#[test]
fn key_never_in_trace_log() {
    let w = World::new(Backend::SecretService);
    let k = key_v1(3);
    let trace = [("WBL_LOG", "trace")];
    ok(w.wbl_env(&["login", &k], &trace));
    ok(w.wbl_env(&["token"], &trace));
    w.stop_agent();
    ok(w.wbl_env(&["token"], &trace));
    ok(w.wbl_env(&["logout"], &trace));
    w.stop_agent();
    let log = std::fs::read_to_string(w.log()).unwrap();
    // The log is really at trace level and really saw the requests…
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    assert!(log.contains("store"), "{log}");
    // …and never the key, nor a recognisable part of it.
    assert!(!log.contains(&k));
    assert!(!log.contains(&k[9..40]));
}

#[test]
fn bad_key_is_refused_before_anything_is_stored() {
    let w = World::new(Backend::SecretService);
    let out = w.wbl(&["login", "short"]);
    assert_eq!(out.status.code(), Some(1));
    // The last line is the error; before it, the warning about a key on the command line.
    assert!(
        stderr(&out).ends_with("\nwbl: error: API key must have 40+ characters, has 5.\n"),
        "{}",
        stderr(&out)
    );
    let out = w.wbl(&["login", &format!("bad key!{}", "a".repeat(40))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "API key may only contain the letters A-Z, digits, underscores and dashes (-)."
        )
    );
    // Nothing was stored (the agent may not even have been started).
    let st = ok(w.wbl(&["status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(
        v["credentials"].as_array().is_none_or(|c| c.is_empty()),
        "{v}"
    );
}

#[test]
fn two_clients_autostarting_at_once_leave_one_agent() {
    let w = World::new(Backend::SecretService);
    let children: Vec<_> = (0..6)
        .map(|_| {
            w.cmd(WBL)
                .arg("token")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        // No key stored yet: exit 1 with the "no API key" message, never a start-up error.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("no API key stored"),
            "{}",
            stderr(&out)
        );
    }
    let agents = agents_for(&w);
    assert_eq!(agents.len(), 1, "agents: {agents:?}");
    assert_eq!(Some(agents[0]), w.agent_pid());
}

/// Pids of wbl-agent processes whose environment names this world's socket.
fn agents_for(w: &World) -> Vec<u32> {
    let needle = format!("WBL_SOCKET={}", w.socket().display());
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains("wbl-agent") || !alive(pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn no_autostart_gives_a_clear_error() {
    let w = World::new(Backend::SecretService);
    let out = w.wbl_env(&["token"], &[("WBL_NO_AUTOSTART", "1")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("wbl: error: no wbl-agent is running"),
        "{err}"
    );
    assert!(err.contains("start one with `wbl-agent`"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert!(w.agent_pid().is_none());
}

#[test]
fn status_json_reports_agent_pid_socket_and_hosts() {
    let w = World::new(Backend::SecretService);
    ok(w.wbl(&["login", &key(4)]));
    let out = ok(w.wbl(&["status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agent_running"], true);
    assert_eq!(v["socket"], w.socket().display().to_string());
    assert_eq!(v["agent"]["pid"].as_u64().map(|p| p as u32), w.agent_pid());
    assert_eq!(v["agent"]["backend"], "secret-service");
    assert_eq!(v["credentials"][0]["url"], "https://api.wandb.ai");
    assert!(!stdout(&out).contains(&key(4)));
}

#[test]
fn stale_socket_is_replaced_and_live_agent_is_never_displaced() {
    let w = World::new(Backend::SecretService);
    // A stale socket file left by a killed agent.
    let stale = std::os::unix::net::UnixListener::bind(w.socket()).unwrap();
    drop(stale);
    assert!(w.socket().exists());
    ok(w.wbl(&["login", &key(5)]));
    let pid = w.agent_pid().unwrap();
    // A second agent against the live one exits 3 with a clear message; the first keeps going.
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    assert_eq!(w.agent_pid(), Some(pid));
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{}\n", key(5)));
}

#[test]
fn socket_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["status"]));
    ok(w.wbl(&["login", &key(6)]));
    let sock = std::fs::metadata(w.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(sock, 0o600);
    let dir = std::fs::metadata(w.socket().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir, 0o700);
}

/// The uid a process runs as (`/proc/<pid>/status`).
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn secret_service_as_an_ordinary_user() {
    let u = users::user();
    let w = World::new_as(Backend::SecretService, u.clone());
    roundtrip_survives_restart(&w, |w| w.secret_tool_lookup("https://api.wandb.ai", "api"));
    ok(w.wbl(&["login", &key(7)]));
    let pid = w.agent_pid().expect("agent running");
    assert_eq!(uid_of(pid), u.uid, "the agent runs as the ordinary user");
}

#[test]
fn keyutils_as_an_ordinary_user() {
    let u = users::user();
    let w = World::new_as(Backend::Keyutils, u.clone());
    roundtrip_survives_restart(&w, |w| w.keyctl_lookup("https://api.wandb.ai", "api"));
}

#[test]
fn another_user_cannot_reach_the_ordinary_users_agent() {
    let w = World::new_as(Backend::SecretService, users::user());
    ok(w.wbl(&["login", &key(8)]));
    // The other user, pointed at the user's socket, gets no key: the directory is not theirs
    // to enter, and the agent would refuse their uid anyway.
    let out = users::other()
        .command(WBL)
        .arg("token")
        .env("WBL_NO_AUTOSTART", "1")
        .env_clear()
        .env("HOME", "/tmp")
        .env("WBL_SOCKET", w.socket())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(!stdout(&out).contains(&key(8)));
    assert!(!stderr(&out).contains(&key(8)));
}
