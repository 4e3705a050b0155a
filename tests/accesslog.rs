//! The access log end to end: real clients (git, `wbl exec`, a Python script running
//! `wbl token`) through the real agent, each entry naming the right program and parents; a
//! pid-reuse attempt in a private pid namespace; rotation; a read-only state directory; and
//! the key in no file at all.

#![cfg(target_os = "linux")]

#[path = "support/accesslog.rs"]
mod access;
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use access::{access_log, entries, real, wait_entries, which};
use common::{Backend, WBL, World, key, ok, stdout};
use serde_json::Value;

fn store(w: &World, host: &str, secret: &str) {
    let mut c = w.cmd(WBL);
    c.args(["credential", "store"]).stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!("protocol=https\nhost={host}\nusername=api\npassword={secret}\n\n").as_bytes(),
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Linux 6.5 added `SO_PEERPIDFD`; before it the agent falls back to start times.
fn kernel_has_peer_pidfd() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 5)
}

fn expected_check() -> &'static str {
    if kernel_has_peer_pidfd() {
        "pidfd"
    } else {
        "start-time"
    }
}

fn parent_exes(e: &Value) -> Vec<String> {
    e["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["exe"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The key appears in no file of the world: access log, agent log, anything.
fn assert_key_nowhere(w: &World, key: &str) {
    assert_eq!(w.files_containing(key), Vec::<PathBuf>::new());
}

#[test]
fn git_credential_fill_names_wbl_and_git() {
    let w = World::new(Backend::Keyutils);
    let k = key(1);
    store(&w, "git.example.com", &k);
    let gitconfig = w.home().join(".gitconfig");
    std::fs::write(&gitconfig, "").unwrap();
    let out = ok(w
        .cmd("git")
        .args([
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={WBL} credential"),
            "credential",
            "fill",
        ])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin({
            let f = w.home().join("query");
            std::fs::write(&f, "protocol=https\nhost=git.example.com\n\n").unwrap();
            std::fs::File::open(f).unwrap()
        })
        .output()
        .unwrap());
    assert!(stdout(&out).contains(&format!("password={k}")));
    let e = wait_entries(&w, 2);
    let store_entry = &e[0];
    assert_eq!(store_entry["op"], "store");
    assert_eq!(store_entry["result"], "ok");
    let get = &e[1];
    assert_eq!(get["op"], "get");
    assert_eq!(get["result"], "ok");
    assert_eq!(get["host"], "git.example.com");
    assert_eq!(get["username"], "api");
    assert_eq!(get["channel"], "local");
    assert_eq!(get["check"], expected_check());
    assert_eq!(get["exe"].as_str(), Some(real(WBL).as_str()));
    // git runs the helper through `sh -c` (a shell may exec it directly): git is the parent
    // or the grandparent.
    let parents = parent_exes(get);
    assert!(parents.len() >= 2, "{parents:?}");
    assert!(parents[..2].contains(&which("git")), "{parents:?}");
    assert!(get["time"].as_str().unwrap().ends_with('Z'));
    assert_key_nowhere(&w, &k);
}

#[test]
fn wbl_exec_names_wbl_and_this_test() {
    let w = World::new(Backend::Keyutils);
    let k = key(2);
    store(&w, "api.wandb.ai", &k);
    ok(w.wbl(&["exec", "--", "sh", "-c", "test -n \"$WANDB_API_KEY\""]));
    // A host with no key: a miss.
    let out = w.wbl(&["token", "--host", "https://nothing.example"]);
    assert!(!out.status.success());
    let e = wait_entries(&w, 3);
    let get = &e[1];
    assert_eq!(
        (get["op"].as_str(), get["result"].as_str()),
        (Some("get"), Some("ok"))
    );
    assert_eq!(get["exe"].as_str(), Some(real(WBL).as_str()));
    let parents = get["parents"].as_array().unwrap();
    assert_eq!(parents[0]["pid"], std::process::id());
    assert_eq!(
        parents[0]["exe"].as_str(),
        Some(real(std::env::current_exe().unwrap()).as_str())
    );
    let miss = &e[2];
    assert_eq!(
        (miss["host"].as_str(), miss["result"].as_str()),
        (Some("nothing.example"), Some("miss"))
    );
    // The table for people, filtered by host.
    let table = stdout(&ok(w.wbl(&["log", "--host", "https://api.wandb.ai"])));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[2].contains(" get ") && lines[2].contains(&real(WBL)),
        "{table}"
    );
    assert_key_nowhere(&w, &k);
}

#[test]
fn a_python_script_calling_wbl_token_is_its_parent() {
    let w = World::new(Backend::Keyutils);
    let k = key(3);
    store(&w, "api.wandb.ai", &k);
    let script = "import os, subprocess, sys\n\
                  print(os.getpid(), os.path.realpath(sys.executable), flush=True)\n\
                  r = subprocess.run([sys.argv[1], 'token'], capture_output=True, text=True)\n\
                  sys.exit(0 if r.stdout.strip() else 1)\n";
    let out = ok(w.cmd("python3").args(["-c", script, WBL]).output().unwrap());
    let printed = stdout(&out);
    let (python_pid, python_exe) = printed.trim().split_once(' ').unwrap();
    let python_pid: u64 = python_pid.parse().unwrap();
    let e = wait_entries(&w, 2);
    let get = &e[1];
    assert_eq!(get["exe"].as_str(), Some(real(WBL).as_str()));
    let parents = get["parents"].as_array().unwrap();
    assert_eq!(parents[0]["pid"], python_pid);
    // The interpreter itself, not a wrapper that started it (pyenv's shim, say).
    assert_eq!(parents[0]["exe"].as_str(), Some(python_exe));
    assert_eq!(parents[1]["pid"], std::process::id());
    assert_key_nowhere(&w, &k);
}

/// Runs `program args…` as pid 1 of a private pid (and mount) namespace: `unshare` as root,
/// with a user namespace of its own otherwise.
fn in_pid_namespace(w: &World, args: &[&str]) -> std::process::Output {
    let mut c = w.cmd("unshare");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        c.arg("--user").arg("--map-root-user");
    }
    c.args(["--pid", "--fork", "--mount-proc", "--"]).args(args);
    c.output().unwrap()
}

#[test]
fn a_reused_pid_never_names_the_new_program() {
    let w = World::new(Backend::Keyutils);
    let k = key(4);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pid_reuse.py");
    let out = ok(in_pid_namespace(
        &w,
        &[
            "python3",
            script.to_str().unwrap(),
            WBL,
            w.socket().to_str().unwrap(),
            &wbl_proto::PROTOCOL_VERSION.to_string(),
            &k,
        ],
    ));
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // The attempt was real: the client that connected exited, `sleep` got its pid, and the
    // request on its connection was answered.
    assert!(report["sleeper_exe"].as_str().unwrap().ends_with("/sleep"));
    assert_eq!(report["got_key"], true);
    let a_pid = report["a_pid"].as_u64().unwrap();
    let e = wait_entries(&w, 2);
    let get: Vec<&Value> = e.iter().filter(|e| e["op"] == "get").collect();
    assert_eq!(get.len(), 1, "{e:?}");
    assert_eq!(get[0]["pid"], a_pid);
    assert_eq!(get[0]["result"], "ok");
    if !kernel_has_peer_pidfd() {
        // The start-time fallback cannot see a pid reused before the connection was
        // accepted (SECURITY.md); the guarantee below needs SO_PEERPIDFD.
        eprintln!("kernel without SO_PEERPIDFD: only the fallback is in use");
        assert_eq!(get[0]["check"], "start-time");
        return;
    }
    assert_eq!(get[0]["check"], "pidfd");
    // Not `sleep`, not anything: the program is unknown, and so is its chain.
    assert!(get[0]["exe"].is_null(), "{:?}", get[0]);
    assert!(get[0]["parents"].as_array().unwrap().is_empty());
    let table = stdout(&ok(w.wbl(&["log"])));
    assert!(
        table.contains("unknown") && !table.contains("sleep"),
        "{table}"
    );
    assert_key_nowhere(&w, &k);
}

#[test]
fn the_log_rotates_and_keeps_three_files() {
    let w = World::new(Backend::Keyutils);
    let k = key(5);
    let limit = 1500;
    let env = [("WBL_ACCESS_LOG_MAX_BYTES", "1500")];
    ok(w.wbl_env(&["login", &k], &env));
    for _ in 0..30 {
        ok(w.wbl_env(&["token"], &env));
    }
    let log = access_log(&w);
    let e = wait_entries(&w, 1);
    w.stop_agent();
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    for p in [log.clone(), numbered(1), numbered(2), numbered(3)] {
        let meta = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(meta.len() <= limit, "{}: {} bytes", p.display(), meta.len());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    assert!(!numbered(4).exists());
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(log.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    // Read across the files, oldest first; the oldest entries were rotated away.
    let e = entries(&w).len().max(e.len());
    assert!(e < 31, "{e} entries, none rotated away");
    let times: Vec<String> = entries(&w)
        .iter()
        .map(|e| e["time"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert_key_nowhere(&w, &k);
}

#[test]
fn a_read_only_state_directory_warns_and_get_still_works() {
    let w = World::new(Backend::Keyutils);
    let k = key(6);
    let state = w.home().join(".local/state");
    std::fs::create_dir_all(&state).unwrap();
    // Everything in a mount namespace where the state directory is a read-only mount (root
    // writes through any mode), or with mode 0555 for anyone else.
    let script = format!(
        "set -e\n\
         if [ \"$(id -u)\" = 0 ]; then mount --bind '{s}' '{s}' && mount -o remount,bind,ro '{s}'; \
         else chmod 555 '{s}'; fi\n\
         printf 'protocol=https\\nhost=api.wandb.ai\\nusername=api\\npassword=%s\\n\\n' \"$KEY\" | '{wbl}' credential store\n\
         printf 'protocol=https\\nhost=api.wandb.ai\\n\\n' | '{wbl}' credential get\n\
         '{wbl}' doctor --json > '{home}/doctor.json' || true\n",
        s = state.display(),
        wbl = WBL,
        home = w.home().display(),
    );
    let mut c = w.cmd("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .env("KEY", &k);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        c = w.cmd("sh");
        c.args(["-c", &script]).env("KEY", &k);
    }
    let out = ok(c.output().unwrap());
    assert!(
        stdout(&out).contains(&format!("password={k}")),
        "the get failed"
    );
    let doctor: Value =
        serde_json::from_str(&std::fs::read_to_string(w.home().join("doctor.json")).unwrap())
            .unwrap();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "access-log")
        .unwrap();
    assert_eq!(check["verdict"], "warning", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("cannot write"),
        "{check}"
    );
    // The agent's own log says it too (once it tried: it writes after a short linger).
    let mut agent_log = String::new();
    for _ in 0..500 {
        agent_log = std::fs::read_to_string(w.log()).unwrap();
        if agent_log.contains("cannot write the access log") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        agent_log.contains("cannot write the access log"),
        "{agent_log}"
    );
    assert!(!access_log(&w).exists());
    w.stop_agent();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::set_mode(&state, 0o755);
    }
    assert_key_nowhere(&w, &k);
}

#[test]
fn follow_prints_entries_as_they_are_written() {
    use std::io::{BufRead, BufReader};
    let w = World::new(Backend::Keyutils);
    let k = key(7);
    store(&w, "api.wandb.ai", &k);
    wait_entries(&w, 1);
    let mut follow = w
        .cmd(WBL)
        .args([
            "log",
            "--follow",
            "-n",
            "1",
            "--json",
            "--host",
            "api.wandb.ai",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait = std::time::Duration::from_secs(10);
    // What was there first (`-n 1`), then what comes later.
    let first: Value = serde_json::from_str(&rx.recv_timeout(wait).unwrap()).unwrap();
    assert_eq!(first["op"], "store");
    ok(w.wbl(&["token"]));
    assert!(
        !w.wbl(&["token", "--host", "https://other.example"])
            .status
            .success()
    );
    let next: Value = serde_json::from_str(&rx.recv_timeout(wait).unwrap()).unwrap();
    assert_eq!(
        (next["op"].as_str(), next["host"].as_str()),
        (Some("get"), Some("api.wandb.ai"))
    );
    // The other host's miss is filtered out.
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(600))
            .is_err()
    );
    let _ = follow.kill();
    let _ = follow.wait();
    assert_key_nowhere(&w, &k);
}

/// One access-log line as the agent writes it.
fn line(time: &str, result: &str, code: Option<&str>, exe: Option<&str>) -> String {
    serde_json::json!({
        "time": time, "op": "get", "result": result, "code": code, "protocol": "https",
        "host": "api.wandb.ai", "username": "api", "uid": 1000, "pid": 4242, "exe": exe,
        "parents": [{"pid": 4241, "exe": "/usr/bin/python3"}, {"pid": 1, "exe": null}],
        "check": "pidfd", "channel": "local"
    })
    .to_string()
        + "\n"
}

/// Where each column starts in a table line: after a run of two spaces or more.
fn column_starts(row: &str) -> Vec<usize> {
    let chars: Vec<char> = row.chars().collect();
    let mut starts = Vec::new();
    for i in 2..chars.len() {
        if chars[i] != ' ' && chars[i - 1] == ' ' && chars[i - 2] == ' ' {
            starts.push(i);
        }
    }
    starts
}

/// The table keeps its columns whatever the result text, names unknown parents plainly, and
/// `-n N` shows the last N.
#[test]
fn the_table_stays_aligned_and_names_unknowns() {
    let w = World::new(Backend::Keyutils);
    let log = access_log(&w);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let text = [
        line("2026-11-29T14:03:12.000Z", "ok", None, Some("/usr/bin/wbl")),
        line(
            "2026-11-29T14:03:13.000Z",
            "error",
            Some("keychain_timeout"),
            Some("/usr/bin/wbl"),
        ),
        line(
            "2026-11-29T14:03:14.000Z",
            "refused",
            Some("forbidden"),
            None,
        ),
    ]
    .concat();
    std::fs::write(&log, text).unwrap();
    let out = ok(w.wbl(&["log"]));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    // Every row's columns start where the header's do (OP to USER; PID is right-aligned) and
    // where each other's do (up to CHANNEL; PARENTS holds spaces of its own).
    let header = column_starts(rows[0]);
    let first = column_starts(rows[1]);
    for r in &rows[1..] {
        assert_eq!(column_starts(r)[..4], header[..4], "{table}");
        assert_eq!(column_starts(r)[..7], first[..7], "{table}");
    }
    assert!(rows[3].ends_with("python3 < unknown (pid 1)"), "{table}");
    assert!(!table.contains('?'), "{table}");
    let out = ok(w.wbl(&["log", "-n", "1"]));
    let rows: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains("refused (forbidden)"), "{rows:?}");
}

/// `--follow` starts at the end (as `tail -f`): history only with `-n`; the RESULT column is
/// wide enough for any result written later.
#[test]
fn follow_starts_at_the_tail_and_keeps_alignment() {
    use std::io::{BufRead, BufReader, Write};
    let w = World::new(Backend::Keyutils);
    let log = access_log(&w);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(
        &log,
        line("2026-11-29T14:03:12.000Z", "ok", None, Some("/usr/bin/old")),
    )
    .unwrap();
    /// Ends the follower (our child, by its handle) however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut follow = Stop(
        w.cmd(WBL)
            .args(["log", "--follow"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait = std::time::Duration::from_secs(10);
    let header = rx.recv_timeout(wait).unwrap();
    assert!(header.starts_with("TIME"), "{header}");
    // The header is printed once following has started: what is appended now is new.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(
        line(
            "2026-11-29T14:05:00.000Z",
            "refused",
            Some("version_mismatch"),
            Some("/usr/bin/new"),
        )
        .as_bytes(),
    )
    .unwrap();
    drop(f);
    let row = rx.recv_timeout(wait).unwrap();
    assert!(row.contains("/usr/bin/new"), "history was shown: {row}");
    assert_eq!(
        column_starts(&row)[..4],
        column_starts(&header)[..4],
        "{header}\n{row}"
    );
}
