//! The service files: the systemd units pass `systemd-analyze verify` (as in the repository
//! and as `wbl agent install` writes them), install/uninstall round-trip with the real
//! `systemctl`, and the launchd plist is well-formed with the expected keys (python3's
//! `plistlib`, a strict parser).

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use wbl::service::{launchd, systemd};

fn unit_dir(w: &World) -> PathBuf {
    w.home().join(".config/systemd/user")
}

/// `systemd-analyze verify --user` on `units` in `dir`: its stderr, empty when all is well.
/// (It exits 0 on most problems and only warns, so the warnings are what counts.)
fn verify(dir: &Path, units: &[&str]) -> String {
    let runtime = tempfile::tempdir().unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .args(units.iter().map(|u| dir.join(u)))
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("SYSTEMD_LOG_COLOR", "0")
        .current_dir(dir)
        .output()
        .expect("systemd-analyze must be installed (package systemd)");
    let mut text = stderr(&out);
    if !out.status.success() {
        text.push_str(&format!("\n(exit {})", out.status));
    }
    text
}

/// The repository's units with `ExecStart=` pointing at the built agent, in a fresh directory.
fn repo_units() -> (tempfile::TempDir, systemd::Units) {
    let dir = tempfile::tempdir().unwrap();
    let units = systemd::render(Path::new(AGENT), None).unwrap();
    std::fs::write(dir.path().join(systemd::SOCKET_UNIT), &units.socket).unwrap();
    std::fs::write(dir.path().join(systemd::SERVICE_UNIT), &units.service).unwrap();
    (dir, units)
}

#[test]
fn repository_units_pass_systemd_analyze_verify() {
    let (dir, units) = repo_units();
    // The repository files are what got rendered, ExecStart aside.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    assert_eq!(
        std::fs::read_to_string(repo.join(systemd::SOCKET_UNIT)).unwrap(),
        units.socket
    );
    let out = verify(dir.path(), &[systemd::SOCKET_UNIT, systemd::SERVICE_UNIT]);
    assert_eq!(out, "", "systemd-analyze verify complained");

    // The check sees mistakes: a misspelt option and a missing program are reported.
    let broken = units
        .service
        .replace("Restart=on-failure", "Restart=on-failur")
        .replace(AGENT, "/nonexistent/wbl-agent");
    std::fs::write(dir.path().join(systemd::SERVICE_UNIT), broken).unwrap();
    let out = verify(dir.path(), &[systemd::SERVICE_UNIT]);
    assert!(out.contains("on-failur"), "{out}");
    assert!(out.contains("/nonexistent/wbl-agent"), "{out}");
}

#[test]
fn agent_install_writes_units_that_verify_and_uninstall_removes_them() {
    let w = World::new(Backend::Keyutils);
    let out = ok(w.wbl(&["agent", "install"]));
    let dir = unit_dir(&w);
    let agent = std::fs::canonicalize(AGENT).unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "wrote {dir}/wbl-agent.socket\nwrote {dir}/wbl-agent.service\n\
             to start wbl-agent with your login session, run:\n  \
             systemctl --user daemon-reload && systemctl --user enable --now wbl-agent.socket\n\
             (or `wbl agent install --now`)\n",
            dir = dir.display()
        )
    );
    let service = std::fs::read_to_string(dir.join(systemd::SERVICE_UNIT)).unwrap();
    let socket = std::fs::read_to_string(dir.join(systemd::SOCKET_UNIT)).unwrap();
    assert!(
        service.contains(&format!("\nExecStart={} --foreground\n", agent.display())),
        "{service}"
    );
    // WBL_SOCKET is set in this world, so both units use it.
    let sock = w.socket().display().to_string();
    assert!(
        service.contains(&format!("\nEnvironment=\"WBL_SOCKET={sock}\"\n")),
        "{service}"
    );
    assert!(
        socket.contains(&format!("\nListenStream={sock}\n")),
        "{socket}"
    );
    assert_eq!(
        verify(&dir, &[systemd::SOCKET_UNIT, systemd::SERVICE_UNIT]),
        ""
    );

    let status = stdout(&w.wbl(&["agent", "status"]));
    assert!(
        status.contains(&format!(
            "service:  systemd units in {}, not enabled; run `systemctl --user enable --now wbl-agent.socket`",
            dir.display()
        )),
        "{status}"
    );
    // The real systemctl enables them (files only: no user manager runs here).
    ok(w.cmd("systemctl")
        .args(["--user", "--no-reload", "enable", systemd::SOCKET_UNIT])
        .output()
        .unwrap());
    let link = dir.join("sockets.target.wants").join(systemd::SOCKET_UNIT);
    assert!(link.exists());
    let status = stdout(&w.wbl(&["agent", "status"]));
    assert!(
        status.contains("service:  systemd, wbl-agent.socket enabled"),
        "{status}"
    );
    // An agent is running: the advice says to stop it first.
    ok(w.wbl(&["agent", "start"]));
    let out = ok(w.wbl(&["agent", "install"]));
    assert!(
        stdout(&out).contains("  wbl agent stop && systemctl --user daemon-reload"),
        "{}",
        stdout(&out)
    );

    let out = ok(w.wbl(&["agent", "uninstall"]));
    assert_eq!(
        stdout(&out),
        format!(
            "removed {link}\nremoved {dir}/wbl-agent.socket\nremoved {dir}/wbl-agent.service\n",
            link = link.display(),
            dir = dir.display()
        )
    );
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!dir.join(systemd::SERVICE_UNIT).exists());
    let out = ok(w.wbl(&["agent", "uninstall"]));
    assert!(
        stdout(&out).starts_with("nothing to remove"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn install_now_without_a_user_manager_says_what_to_do() {
    let w = World::new(Backend::Keyutils);
    let out = w.wbl(&["agent", "install", "--now"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    // One sentence that says what is missing and what happens instead; no systemctl output.
    assert_eq!(
        err,
        "wbl: error: no systemd user manager runs in this session, so --now cannot enable the \
         agent: the units are written (`systemctl --user enable --now wbl-agent.socket` once a \
         manager runs), and until then wbl starts the agent on first use\n"
    );
    // The units were written all the same.
    assert!(unit_dir(&w).join(systemd::SERVICE_UNIT).exists());
}

/// Parses plist XML with python3's plistlib; returns it as JSON.
fn parse_plist(text: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/install-test-deps)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = ok(child.wait_with_output().unwrap());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn launchd_plist_is_well_formed_with_the_expected_keys() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("launchd/ai.wbl.agent.plist");
    let template = std::fs::read_to_string(repo).unwrap();
    assert_eq!(template, launchd::TEMPLATE);
    let v = parse_plist(&template);
    assert_eq!(v["Label"], "ai.wbl.agent");
    assert_eq!(v["RunAtLoad"], true);
    assert_eq!(v["KeepAlive"], serde_json::json!({"SuccessfulExit": false}));
    assert_eq!(
        v["ProgramArguments"],
        serde_json::json!(["@WBL_AGENT@", "--foreground"])
    );
    assert_eq!(v["StandardErrorPath"], "@HOME@/Library/Logs/wbl/agent.log");

    // What `wbl agent install` writes on macOS, with paths that need escaping.
    let text = launchd::render(
        Path::new("/Users/R&D <x>/bin/wbl-agent"),
        Path::new("/Users/R&D <x>"),
        Path::new("/var/folders/xy/T/wbl-501/agent.sock"),
    )
    .unwrap();
    let v = parse_plist(&text);
    assert_eq!(v["Label"], launchd::LABEL);
    assert_eq!(
        v["ProgramArguments"],
        serde_json::json!(["/Users/R&D <x>/bin/wbl-agent", "--foreground"])
    );
    assert_eq!(
        v["EnvironmentVariables"]["WBL_SOCKET"],
        "/var/folders/xy/T/wbl-501/agent.sock"
    );
    assert_eq!(
        v["StandardOutPath"],
        "/Users/R&D <x>/Library/Logs/wbl/agent.log"
    );
    assert_eq!(v["StandardErrorPath"], v["StandardOutPath"]);
    assert_eq!(v["KeepAlive"]["SuccessfulExit"], false);
}
