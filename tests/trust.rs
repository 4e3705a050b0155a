//! The client trusts only its own agent: another user posing as the agent in a shared temp
//! directory gets nothing, a pid is signalled only when it is our agent, every client wait is
//! bounded, and an auto-started agent keeps nothing of the client's environment. Real
//! processes, another real uid (`setpriv` to `nobody`), real sockets.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const NOBODY: &str = "65534";

/// A directory every user may create entries in, like `/tmp` (mode 1777, sticky).
fn shared_sticky_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("wbl-shared-")
        .tempdir_in("/tmp")
        .unwrap();
    set_mode(d.path(), 0o1777);
    d
}

/// Runs `tests/fixtures/impostor.py` as `nobody` and returns once it listens.
fn spawn_impostor(shared: &Path, dir: Option<&Path>, socket: &Path, claimed_pid: u32) -> Child {
    let script = shared.join("impostor.py");
    if !script.exists() {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/impostor.py"),
            &script,
        )
        .unwrap();
        set_mode(&script, 0o644);
    }
    let dir_arg = dir.map_or("-".to_owned(), |d| d.display().to_string());
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "/usr/bin/python3",
        ])
        .arg(&script)
        .arg(dir_arg)
        .arg(socket)
        .arg(shared.join("impostor.report"))
        .arg(claimed_pid.to_string())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "the impostor did not start");
    child
}

/// Bytes the impostor received, one entry per connection it accepted.
fn impostor_report(shared: &Path) -> Vec<usize> {
    std::fs::read_to_string(shared.join("impostor.report"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `wbl` command of the victim, whose socket falls back to `$TMPDIR/wbl-<uid>/agent.sock`
/// (no `XDG_RUNTIME_DIR`, no `WBL_SOCKET`), as under cron, `su` or `docker exec`.
fn victim(w: &World, tmpdir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = w.cmd(WBL);
    c.args(args)
        .env_remove("WBL_SOCKET")
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", tmpdir)
        .env("WBL_CLIENT_TIMEOUT", "5");
    run_with_stdin(c, stdin.as_bytes())
}

/// Every command that would talk to the agent, with a key or git password in hand.
fn every_victim_command(k: &str) -> Vec<(Vec<String>, String)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (s(&["login", k]), String::new()),
        (s(&["token"]), String::new()),
        (
            s(&["credential", "store"]),
            "protocol=https\nhost=git.example\nusername=me\npassword=git-secret-1\n".into(),
        ),
        (
            s(&["credential", "get"]),
            "protocol=https\nhost=git.example\n".into(),
        ),
        (s(&["status"]), String::new()),
        (s(&["agent", "status"]), String::new()),
        (s(&["agent", "start"]), String::new()),
    ]
}

#[test]
fn another_user_posing_as_the_agent_in_a_shared_temp_dir_gets_nothing() {
    let w = World::new(Backend::Keyutils);
    let shared = shared_sticky_dir();
    // The victim is the user running the tests; its fallback directory is wbl-<uid>.
    let uid = unsafe { libc::geteuid() };
    let victim_dir = shared.path().join(format!("wbl-{uid}"));
    let sleeper = Command::new("sleep").arg("120").spawn().unwrap();
    let impostor = spawn_impostor(
        shared.path(),
        Some(&victim_dir),
        &victim_dir.join("agent.sock"),
        sleeper.id(),
    );
    let k = key(120);
    for (args, input) in every_victim_command(&k) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = victim(&w, shared.path(), &args, &input);
        let err = stderr(&out);
        assert!(!out.status.success(), "wbl {args:?} succeeded: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "wbl {args:?} hung"
        );
        // A refusal that says what is wrong and how to fix it; never the key.
        assert!(err.contains("belongs to uid 65534"), "{args:?}: {err}");
        assert!(err.contains("WBL_SOCKET"), "{args:?}: {err}");
        assert!(!err.contains(&k) && !stdout(&out).contains(&k));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
    // The directory is refused before connecting: the impostor saw not even a connection.
    assert_eq!(impostor_report(shared.path()), Vec::<usize>::new());
    assert!(
        alive(sleeper.id()),
        "a pid named by the impostor was signalled"
    );
    // `wbl doctor` gives the same diagnosis.
    let out = victim(&w, shared.path(), &["doctor"], "");
    let text = stdout(&out);
    assert!(text.contains("belongs to uid 65534"), "{text}");
    assert!(text.contains("mkdir -m 700 ~/.wbl"), "{text}");
    stop(impostor);

    // The impostor swaps its directory for a symbolic link to one of the victim's own,
    // private directories: never followed, nothing started there.
    let private = w.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    set_mode(&private, 0o700);
    let swap = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "sh",
            "-c",
            "rm -rf \"$1\" && ln -s \"$2\" \"$1\"",
            "sh",
        ])
        .arg(&victim_dir)
        .arg(&private)
        .output()
        .unwrap();
    assert!(swap.status.success(), "{}", stderr(&swap));
    for args in [&["token"][..], &["login", &k][..]] {
        let out = victim(&w, shared.path(), args, "");
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("symbolic link"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read_dir(&private).unwrap().count(), 0);
    let mut sleeper = sleeper;
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn a_socket_served_by_another_user_is_refused_before_a_byte_is_sent() {
    // A private directory of ours whose socket path leads to another user's listener (here a
    // symbolic link at the socket path): the peer check, not the directory rule, refuses it.
    let w = World::new(Backend::Keyutils);
    let shared = shared_sticky_dir();
    let evil_dir = shared.path().join("evil");
    let evil_sock = evil_dir.join("agent.sock");
    let impostor = spawn_impostor(shared.path(), Some(&evil_dir), &evil_sock, 1);
    std::os::unix::fs::symlink(&evil_sock, w.socket()).unwrap();
    let k = key(121);
    for (args, input) in every_victim_command(&k) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_with_stdin(w.cmd(WBL).args(&args), input.as_bytes());
        assert!(!out.status.success(), "wbl {args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains("served by uid 65534, not by you"),
            "{args:?}: {err}"
        );
        assert!(err.contains("nothing was sent"), "{args:?}: {err}");
    }
    let report = impostor_report(shared.path());
    assert!(!report.is_empty(), "the test never reached the impostor");
    assert!(
        report.iter().all(|n| *n == 0),
        "the impostor received bytes: {report:?}"
    );
    stop(impostor);
}

#[test]
fn only_our_agent_is_ever_signalled() {
    let w = World::new(Backend::Keyutils);
    let k = key(122);
    ok(w.wbl(&["login", &k]));
    w.stop_agent();
    let mut sleeper = Command::new("sleep").arg("120").spawn().unwrap();
    // An agent of ours (it holds the pid-file lock) that names another pid of ours, then pid
    // 0, which would signal the client's whole process group.
    for claimed in [sleeper.id(), 0] {
        let mut old = w
            .cmd("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old_agent.py"))
            .arg(w.socket())
            .env("OLD_AGENT_CLAIMED_PID", claimed.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(old.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        let out = w.wbl(&["token"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("which wbl will not signal"),
            "{}",
            stderr(&out)
        );
        assert!(alive(sleeper.id()));
        assert!(
            old.try_wait().unwrap().is_none(),
            "the fake agent was stopped"
        );
        let _ = old.kill();
        let _ = old.wait();
    }
    // An agent of ours that names itself, but is not wbl-agent (plain python3): refused too.
    let mut old = w
        .cmd("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old_agent.py"))
        .arg(w.socket())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(old.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let out = w.wbl(&["token"]);
    assert!(stderr(&out).contains("not wbl-agent"), "{}", stderr(&out));
    assert!(old.try_wait().unwrap().is_none());
    let _ = old.kill();
    let _ = old.wait();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    // With the fakes gone, the real agent starts and serves the key.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn every_client_wait_is_bounded_when_the_agent_is_stopped() {
    let w = World::new(Backend::Keyutils);
    let k = key(123);
    ok(w.wbl(&["login", &k]));
    let pid = w.agent_pid().unwrap();
    signal(pid, "-STOP");
    let bounded = [("WBL_CLIENT_TIMEOUT", "1")];
    let cases: [(&[&str], &str); 4] = [
        (&["token"], ""),
        (
            &["credential", "get"],
            "protocol=https\nhost=api.wandb.ai\n",
        ),
        (&["status"], ""),
        (&["agent", "status"], ""),
    ];
    for (args, input) in cases {
        let started = Instant::now();
        let mut c = w.cmd(WBL);
        c.args(args)
            .envs(bounded)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        // Generous: proves "not hung", not a speed.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "wbl {args:?} took {:?}",
            started.elapsed()
        );
        assert!(!out.status.success(), "wbl {args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains("did not answer"), "{args:?}: {err}");
        assert!(err.contains("WBL_CLIENT_TIMEOUT"), "{args:?}: {err}");
        // Quiet, as git expects of a helper: one line, nothing on stdout.
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(stdout(&out).is_empty());
    }
    signal(pid, "-CONT");
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
}

/// `/proc/PID/environ` as (name, value) pairs.
fn environ(pid: u32) -> Vec<(String, String)> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            let (k, val) = v.split_once('=').unwrap_or((&v, ""));
            (k.to_owned(), val.to_owned())
        })
        .collect()
}

#[test]
fn an_auto_started_agent_keeps_nothing_of_the_clients_environment() {
    let w = World::new(Backend::Keyutils);
    let k = key(124);
    let elsewhere = w.dir.path().join("project");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = run_with_stdin(
        w.cmd(WBL)
            .args(["login", "--relogin", "-"])
            .env("WANDB_API_KEY", &k)
            .env("SOME_TOKEN", "secret-of-the-shell")
            .env("LANG", "C.UTF-8")
            .current_dir(&elsewhere),
        k.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = w.agent_pid().unwrap();
    let env = environ(pid);
    for (name, value) in &env {
        assert!(
            ["HOME", "PATH", "LANG", "DBUS_SESSION_BUS_ADDRESS"].contains(&name.as_str())
                || name.starts_with("XDG_")
                || name.starts_with("WBL_"),
            "the agent kept {name}"
        );
        assert!(!value.contains(&k), "{name} holds the key");
    }
    assert!(env.iter().any(|(n, v)| n == "LANG" && v == "C.UTF-8"));
    assert!(env.iter().any(|(n, _)| n == "HOME"));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        PathBuf::from("/")
    );
}

#[test]
fn the_agent_removes_only_a_stale_socket_of_ours() {
    let w = World::new(Backend::Keyutils);
    // A regular file at the socket path: left alone, with a clear refusal.
    std::fs::write(w.socket(), "precious").unwrap();
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a socket of yours"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(w.socket()).unwrap(), "precious");
    // A symbolic link: never followed, never removed.
    std::fs::remove_file(w.socket()).unwrap();
    let target = w.dir.path().join("target");
    std::fs::write(&target, "x").unwrap();
    std::os::unix::fs::symlink(&target, w.socket()).unwrap();
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(w.socket()).is_ok() && target.exists());
    std::fs::remove_file(w.socket()).unwrap();
    // A stale socket of ours (an agent killed with -9 left it): replaced.
    let k = key(125);
    ok(w.wbl(&["login", &k]));
    let pid = w.agent_pid().unwrap();
    signal(pid, "-KILL");
    wait_gone(pid);
    assert!(w.socket().exists());
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
}

#[test]
fn a_key_on_the_command_line_is_warned_about_and_the_safe_forms_named() {
    let w = World::new(Backend::Keyutils);
    let k = key(126);
    let out = ok(w.wbl(&["login", &k]));
    let err = stderr(&out);
    assert!(err.contains("process list"), "{err}");
    assert!(err.contains("wbl login -"), "{err}");
    assert!(!err.contains(&k));
    // Read from stdin: no warning.
    let out = run_with_stdin(
        w.cmd(WBL).args(["login", "--relogin", "-"]),
        key(127).as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("process list"), "{}", stderr(&out));
}

/// Starts `program args` under `sh` with an unlimited core size in `cwd`, stdin piped.
fn with_cores(w: &World, cwd: &Path, program: &str, args: &[&str]) -> Child {
    w.cmd("sh")
        .arg("-c")
        .arg("ulimit -c unlimited && exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `pid` sleeps, e.g. in a read of stdin.
fn wait_sleeping(pid: u32) {
    for _ in 0..500 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if !exe.ends_with("sh")
            && stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('S'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} never waited");
}

fn cores_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .count()
}

#[test]
fn a_client_holding_a_key_leaves_no_core_dump() {
    let w = World::new(Backend::Keyutils);
    let cwd = w.dir.path().join("cores");
    std::fs::create_dir(&cwd).unwrap();
    // Control: on this machine, a process that does nothing to prevent it dumps core.
    let mut control = with_cores(&w, &cwd, "cat", &[]);
    wait_sleeping(control.id());
    signal(control.id(), "-QUIT");
    let _ = control.wait();
    let machine_dumps = cores_in(&cwd) > 0;
    for f in std::fs::read_dir(&cwd).unwrap().flatten() {
        let _ = std::fs::remove_file(f.path());
    }

    // `wbl login -` with half a key read from stdin, then SIGQUIT.
    let mut client = with_cores(&w, &cwd, WBL, &["login", "-"]);
    let partial = &key(128)[..20];
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(partial.as_bytes())
        .unwrap();
    wait_sleeping(client.id());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", client.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().nth(4),
        Some("0"),
        "soft core limit: {core}"
    );
    signal(client.id(), "-QUIT");
    let _ = client.wait();
    assert_eq!(cores_in(&cwd), 0, "wbl left a core file");
    eprintln!("core dumps on this machine without protection: {machine_dumps}");
    assert!(
        w.files_containing(partial).is_empty(),
        "the partial key reached a file"
    );
}

#[test]
fn a_program_run_by_wbl_exec_gets_its_core_limit_back() {
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["login", &key(129)]));
    let out = w
        .cmd("sh")
        .arg("-c")
        .arg("ulimit -c unlimited && exec \"$0\" exec -- sh -c 'ulimit -c'")
        .arg(WBL)
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "unlimited", "{}", stderr(&out));
}

#[test]
fn a_server_address_with_a_password_is_refused_never_stored_or_printed() {
    let w = World::new(Backend::Keyutils);
    let k = key(131);
    let with_pw = "https://me:pw-in-url@wandb.example.com";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 4] = [
        (&["login", "--host", with_pw, &k], &[]),
        (&["login", &k], &[("WANDB_BASE_URL", with_pw)]),
        (&["token"], &[("WANDB_BASE_URL", with_pw)]),
        (&["token", "--host", with_pw], &[]),
    ];
    for (args, env) in cases {
        let out = w.wbl_env(args, env);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains("must not contain a user name or password"),
            "{err}"
        );
        assert!(err.contains("https://wandb.example.com"), "{err}");
        assert!(!err.contains("pw-in-url") && !stdout(&out).contains("pw-in-url"));
    }
    // In the settings file too (written by hand): refused the same way.
    let settings = w.home().join(".config/wandb/settings");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, format!("[default]\nbase_url = {with_pw}\n")).unwrap();
    let out = w.wbl(&["login", &k]);
    let err = stderr(&out);
    assert!(!err.contains("pw-in-url"), "{err}");
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("must not contain a user name or password"),
        "{err}"
    );
    // Nothing wbl wrote holds the password.
    assert_eq!(w.files_containing("pw-in-url"), vec![settings.clone()]);
}
