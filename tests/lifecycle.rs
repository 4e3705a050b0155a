//! The agent's lifecycle with real processes: graceful stop during a burst of requests,
//! kill -9 and restart, two agents racing, the upgrade restart of an older agent, systemd-style
//! socket activation (`systemd-socket-activate`), idle exit and `wbl agent start|stop|status`.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::*;
use wbl::client::{AgentClient, ClientError};
use wbl::rendezvous::RuntimePaths;
use wbl_proto::{Credential, ErrorCode, PROTOCOL_VERSION, ProtoError, Query, Secret, Target};

/// Bound on anything that must not hang; reaching it fails the test (it is not a speed check).
const HANG_GUARD: Duration = Duration::from_secs(60);

fn paths(w: &World) -> RuntimePaths {
    RuntimePaths { socket: w.socket() }
}

fn pidfile(w: &World) -> PathBuf {
    paths(w).pidfile()
}

fn wandb_query() -> Query {
    Query {
        target: Target::new("https", "api.wandb.ai"),
        username: Some("api".into()),
        account: Default::default(),
    }
}

fn credential(host: &str, password: &str) -> Credential {
    Credential::new(
        Target::new("https", host),
        "api",
        Secret::new(password.to_owned()),
    )
}

fn dev_ino(p: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn new(w: &World, name: &str) -> Notify {
        let path = w.dir.path().join(name);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(HANG_GUARD)).unwrap();
        Notify { socket, path }
    }

    /// The next message (panics when none comes before the hang guard).
    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("no message on NOTIFY_SOCKET: {e}"),
            }
        }
    }
}

/// `wbl-agent --foreground` with `NOTIFY_SOCKET`, returned once it reported `READY=1`.
fn spawn_ready(w: &World) -> Child {
    let notify = Notify::new(w, &format!("notify-{}", rand_tag()));
    let child = w
        .cmd(AGENT)
        .arg("--foreground")
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let msg = notify.recv();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    child
}

fn rand_tag() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Waits for `child` to exit, failing the test if it has not within the hang guard.
fn wait_exit(child: &mut Child) -> ExitStatus {
    for _ in 0..(HANG_GUARD.as_millis() / 10) {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("process {} did not exit", child.id());
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

// ---------------------------------------------------------------------------------------------
// Graceful stop during a burst of requests

#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    refused: usize,
    /// Stores the agent acknowledged: (host, password).
    stored: Vec<(String, String)>,
}

/// How a request ended. Anything but an answer or a clean refusal fails the test.
fn classify<T>(r: Result<T, ClientError>) -> Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Agent {
            code: ErrorCode::ShuttingDown,
            ..
        }) => Ok(None),
        // The agent closed the connection before reading the request (it had already said
        // ShuttingDown, or never accepted it): refused, nothing was done.
        Err(ClientError::Protocol(ProtoError::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("neither answered nor cleanly refused: {e:?}")),
    }
}

/// One client of the burst: its own connection, stores and gets until refused; then one more
/// connection attempt, which must fail (the agent no longer accepts).
fn burst_client(
    paths: RuntimePaths,
    thread: usize,
    key: String,
    progress: Arc<AtomicUsize>,
) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut agent =
        AgentClient::connect(&paths).map_err(|e| format!("thread {thread}: connect: {e}"))?;
    for i in 0..100_000 {
        let done = if i % 2 == 0 {
            let host = format!("burst-{thread}-{i}.example");
            let password = format!("pw-{thread}-{i}-{}", "x".repeat(20));
            match classify(agent.store(credential(&host, &password)))? {
                Some(_) => {
                    tally.stored.push((host, password));
                    false
                }
                None => true,
            }
        } else {
            match classify(agent.get(wandb_query()))? {
                Some(Some(c)) if c.password.expose() == key => false,
                Some(other) => return Err(format!("wrong answer to get: {other:?}")),
                None => true,
            }
        };
        if done {
            tally.refused += 1;
            break;
        }
        tally.answered += 1;
        progress.fetch_add(1, Ordering::SeqCst);
    }
    if tally.refused == 0 {
        return Err(format!("thread {thread} was never refused"));
    }
    match AgentClient::connect(&paths) {
        Err(_) => Ok(tally),
        Ok(a) => Err(format!(
            "a stopping agent (pid {}) accepted a new connection",
            a.agent_pid
        )),
    }
}

/// Runs 8 clients against a foreground agent, stops it with `stop` once they are in full
/// swing, and checks: every request answered or cleanly refused, the agent exits 0, removes
/// its socket, and every acknowledged store is in the keychain afterwards.
fn stop_during_burst(backend: Backend, stop: impl FnOnce(&World, u32)) {
    let w = World::new(backend);
    let k = key(10);
    ok(w.wbl_env(&["login", &k], &[("WBL_NO_AUTOSTART", "")]));
    w.stop_agent();
    let mut agent = spawn_ready(&w);
    let pid = agent.id();
    let progress = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for t in 0..8 {
        let (paths, key, progress, tx) = (paths(&w), k.clone(), progress.clone(), tx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(burst_client(paths, t, key, progress));
        });
    }
    drop(tx);
    // Stop once the clients have had 40 answers between them.
    for _ in 0..(HANG_GUARD.as_millis() / 5) {
        if progress.load(Ordering::SeqCst) >= 40 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        progress.load(Ordering::SeqCst) >= 40,
        "the burst never got going"
    );
    stop(&w, pid);
    let mut total = Tally::default();
    for _ in 0..8 {
        let tally = rx
            .recv_timeout(HANG_GUARD)
            .expect("a client hung while the agent stopped")
            .unwrap_or_else(|e| panic!("{e}"));
        total.answered += tally.answered;
        total.refused += tally.refused;
        total.stored.extend(tally.stored);
    }
    assert_eq!(total.refused, 8);
    assert!(wait_exit(&mut agent).success(), "the agent did not exit 0");
    assert!(!w.socket().exists(), "the agent left its socket behind");
    assert!(!pidfile(&w).exists(), "the agent left its pid file behind");
    // A new agent finds every store the old one acknowledged: they were in the keychain.
    let mut new = spawn_ready(&w);
    let mut client = AgentClient::connect(&paths(&w)).unwrap();
    assert!(!total.stored.is_empty());
    for (host, password) in &total.stored {
        let got = client
            .get(Query {
                target: Target::new("https", host.as_str()),
                username: None,
                account: Default::default(),
            })
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged store of {host} was lost"));
        assert_eq!(got.password.expose(), password);
    }
    drop(client);
    signal(new.id(), "-TERM");
    assert!(wait_exit(&mut new).success());
}

#[test]
fn sigterm_during_a_burst_answers_or_cleanly_refuses_every_request() {
    stop_during_burst(Backend::SecretService, |_, pid| signal(pid, "-TERM"));
}

#[test]
fn sigint_during_a_burst_answers_or_cleanly_refuses_every_request() {
    stop_during_burst(Backend::Keyutils, |_, pid| signal(pid, "-INT"));
}

#[test]
fn wbl_agent_stop_during_a_burst_is_graceful() {
    stop_during_burst(Backend::Keyutils, |w, pid| {
        let out = ok(w.wbl(&["agent", "stop"]));
        assert_eq!(stdout(&out), format!("stopped wbl-agent (pid {pid})\n"));
    });
}

// ---------------------------------------------------------------------------------------------
// Crashes, races, upgrades

#[test]
fn kill_9_leaves_stale_files_that_never_block_a_new_agent() {
    let w = World::new(Backend::SecretService);
    let k = key(11);
    ok(w.wbl(&["login", &k]));
    for round in 0..2 {
        let pid = w.agent_pid().expect("agent running");
        signal(pid, "-KILL");
        wait_gone(pid);
        // What a crash leaves: the socket file and a pid file naming a dead process…
        assert!(w.socket().exists());
        assert_eq!(
            std::fs::read_to_string(pidfile(&w)).unwrap().trim(),
            pid.to_string()
        );
        if round == 1 {
            // …or even a live, unrelated one (pids are reused): only the lock counts.
            std::fs::write(pidfile(&w), format!("{}\n", std::process::id())).unwrap();
            let mut agent = spawn_ready(&w);
            assert_eq!(w.agent_pid(), Some(agent.id()));
            assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
            signal(agent.id(), "-TERM");
            assert!(wait_exit(&mut agent).success());
        } else {
            // The client's auto-start gets past them too.
            assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
            assert_ne!(w.agent_pid(), Some(pid));
        }
    }
}

#[test]
fn two_agents_racing_exactly_one_serves_and_the_other_exits_3() {
    let w = World::new(Backend::Keyutils);
    for _round in 0..3 {
        let spawn = || {
            w.cmd(AGENT)
                .arg("--foreground")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (spawn(), spawn());
        // Whoever won answers hello with its pid.
        let winner = (0..HANG_GUARD.as_millis() / 10)
            .find_map(|_| {
                let c = AgentClient::connect(&paths(&w)).ok();
                if c.is_none() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                c
            })
            .expect("neither agent came up")
            .agent_pid;
        let (win, lose) = if winner == a.id() {
            (&mut a, &mut b)
        } else {
            assert_eq!(winner, b.id());
            (&mut b, &mut a)
        };
        let status = wait_exit(lose);
        let mut err = String::new();
        lose.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(3), "{err}");
        assert!(
            err.contains("another wbl-agent is already running"),
            "{err}"
        );
        // It names the winner (unless it looked in the instant between lock and pid write).
        assert!(
            !err.contains("(pid ") || err.contains(&format!("(pid {})", win.id())),
            "{err}"
        );
        assert_eq!(w.agent_pid(), Some(win.id()));
        signal(win.id(), "-TERM");
        assert!(wait_exit(win).success());
    }
    // The same through the detaching launcher: one exits 0 (ready), the other 3.
    let spawn = || {
        w.cmd(AGENT)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(3)], "{} / {}", stderr(&a), stderr(&b));
    let loser = if a.status.code() == Some(3) { &a } else { &b };
    assert!(
        stderr(loser).contains("already running"),
        "{}",
        stderr(loser)
    );
    assert!(w.agent_pid().is_some());
}

#[test]
fn an_agent_of_an_older_protocol_is_restarted_without_losing_keys() {
    let w = World::new(Backend::SecretService);
    let k = key(12);
    ok(w.wbl(&["login", &k]));
    w.stop_agent();
    let mut old = w.spawn_old_agent();
    let seen = AgentClient::connect(&paths(&w)).unwrap();
    assert_eq!((seen.agent_protocol, seen.agent_pid), (0, old.id()));
    drop(seen);
    let out = ok(w.wbl(&["agent", "status"]));
    assert!(
        stdout(&out).contains("from another build"),
        "{}",
        stdout(&out)
    );

    // The next command meets the old agent, stops it, starts ours and gets the key.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    assert!(
        wait_exit(&mut old).success(),
        "the old agent was not stopped"
    );
    let now = AgentClient::connect(&paths(&w)).unwrap();
    assert_eq!(now.agent_protocol, PROTOCOL_VERSION);
    assert_ne!(now.agent_pid, old.id());
    assert_eq!(w.agent_pid(), Some(now.agent_pid));
}

#[test]
fn a_client_waits_for_an_agent_that_is_on_its_way_out() {
    // An agent that holds the pid-file lock but no longer listens (it is exiting): the
    // launcher's agent exits 3; the client waits for the lock, then starts one.
    let w = World::new(Backend::Keyutils);
    let k = key(13);
    ok(w.wbl(&["login", &k]));
    w.stop_agent();
    let lock = std::fs::File::create(pidfile(&w)).unwrap();
    lock.lock().unwrap();
    let client = w
        .cmd(WBL)
        .arg("token")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first agent has given up, let go of the lock.
    for _ in 0..(HANG_GUARD.as_millis() / 10) {
        if std::fs::read_to_string(w.log()).is_ok_and(|l| l.contains("already running")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        std::fs::read_to_string(w.log())
            .unwrap()
            .contains("already running")
    );
    drop(lock);
    let out = ok(client.wait_with_output().unwrap());
    assert_eq!(stdout(&out), format!("{k}\n"));
}

// ---------------------------------------------------------------------------------------------
// Socket activation (what systemd does), idle exit, `wbl agent`

/// `systemd-socket-activate -l SOCKET wbl-agent --foreground`: the socket exists before the
/// agent, the first connection starts it (as systemd does) and must be served.
#[test]
fn socket_activated_agent_serves_the_first_connection() {
    let w = World::new(Backend::SecretService);
    let notify = Notify::new(&w, "notify");
    let mut activate = w.cmd("systemd-socket-activate");
    activate.arg("-l").arg(w.socket());
    for var in [
        "HOME",
        "XDG_RUNTIME_DIR",
        "WBL_SOCKET",
        "WBL_BACKEND",
        "WBL_KEYCHAIN_NAMESPACE",
        "DBUS_SESSION_BUS_ADDRESS",
        "NOTIFY_SOCKET",
    ] {
        activate.args(["-E", var]);
    }
    let mut activate = activate
        .args([AGENT, "--foreground"])
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate must be installed (package systemd)");
    // Its stderr (then the agent's log): wait for "Listening on …", keep the rest.
    let (tx, rx) = mpsc::channel();
    let err = BufReader::new(activate.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in err.lines().map_while(Result::ok) {
            if line.starts_with("Listening on") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(HANG_GUARD)
        .expect("systemd-socket-activate did not listen");
    let socket_id = dev_ino(&w.socket());
    assert!(w.agent_pid().is_none(), "no agent before the first client");

    // The first connection is queued on the inherited socket while the agent starts.
    let (tx, rx) = mpsc::channel();
    let p = paths(&w);
    let k = key(14);
    let k2 = k.clone();
    std::thread::spawn(move || {
        let r = (|| -> Result<_, String> {
            let mut c = AgentClient::connect(&p).map_err(|e| e.to_string())?;
            c.store(credential("api.wandb.ai", &k2))
                .map_err(|e| e.to_string())?;
            Ok(c.agent_pid)
        })();
        let _ = tx.send(r);
    });
    let pid = rx
        .recv_timeout(HANG_GUARD)
        .expect("the first connection hung")
        .expect("the first connection failed");
    // systemd-socket-activate execs the agent: same process.
    assert_eq!(pid, activate.id());
    let msg = notify.recv();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    assert_eq!(
        dev_ino(&w.socket()),
        socket_id,
        "the agent replaced the inherited socket"
    );
    assert_eq!(w.agent_pid(), Some(pid));
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    // A second agent against it exits 3.
    let out = w.cmd(AGENT).arg("--foreground").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // SIGTERM: exit 0, and the socket (systemd's) stays, untouched.
    signal(pid, "-TERM");
    assert!(wait_exit(&mut activate).success());
    let log = log.join().unwrap();
    assert!(
        log.contains("using the socket passed by the service manager"),
        "{log}"
    );
    assert!(notify.recv().contains("STOPPING=1"));
    assert_eq!(dev_ino(&w.socket()), socket_id);
    assert!(!pidfile(&w).exists());
}

#[test]
fn an_inherited_socket_that_is_not_a_listener_is_refused() {
    let w = World::new(Backend::Keyutils);
    let file = w.dir.path().join("not-a-socket");
    std::fs::write(&file, "").unwrap();
    // fd 3 is a plain file and LISTEN_PID names the agent (exec keeps the shell's pid).
    let out = w
        .cmd("sh")
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --foreground 3<"$1""#)
        .arg(AGENT)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "wbl-agent: the socket passed by the service manager (fd 3) is not a socket: Socket operation on non-socket (os error 88)\n"
    );
    assert!(!w.socket().exists());
    assert!(!pidfile(&w).exists());
}

#[test]
fn idle_exit_stops_an_unused_agent_and_the_next_client_starts_one() {
    let w = World::new(Backend::Keyutils);
    let k = key(15);
    ok(w.wbl_env(&["login", &k], &[("WBL_IDLE_EXIT", "1")]));
    let pid = w.agent_pid().expect("agent running");
    // It goes by itself (bounded wait), removing its socket.
    wait_gone(pid);
    assert!(!w.socket().exists());
    let log = std::fs::read_to_string(w.log()).unwrap();
    assert!(log.contains("idle_exit_secs=1"), "{log}");
    assert!(
        log.contains("no connection for the idle-exit period"),
        "{log}"
    );
    // Without WBL_IDLE_EXIT the next agent stays, and the key is still there.
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    assert!(w.agent_pid().is_some_and(|p| p != pid));
}

#[test]
fn wbl_agent_start_stop_status() {
    let w = World::new(Backend::Keyutils);
    let out = w.wbl(&["agent", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("agent:    not running (socket "));
    assert!(
        stdout(&out).contains("service:  not installed"),
        "{}",
        stdout(&out)
    );

    let out = ok(w.wbl(&["agent", "start"]));
    let pid = w.agent_pid().expect("started");
    assert_eq!(
        stdout(&out),
        format!(
            "wbl-agent is running (pid {pid}, version {}, socket {})\n",
            env!("CARGO_PKG_VERSION"),
            w.socket().display()
        )
    );
    // Starting again changes nothing.
    ok(w.wbl(&["agent", "start"]));
    assert_eq!(w.agent_pid(), Some(pid));

    let out = ok(w.wbl(&["agent", "status"]));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("running (pid {pid}, version")),
        "{text}"
    );
    assert!(text.contains("uptime:   "), "{text}");
    assert!(
        text.contains(&format!("socket:   {}", w.socket().display())),
        "{text}"
    );
    let out = ok(w.wbl(&["agent", "status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["pid"].as_u64(), Some(u64::from(pid)));
    assert_eq!(v["protocol"].as_u64(), Some(u64::from(PROTOCOL_VERSION)));
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert_eq!(v["socket"], w.socket().display().to_string());
    assert_eq!(v["service"]["manager"], "systemd");
    assert_eq!(v["service"]["installed"], false);

    let out = ok(w.wbl(&["agent", "stop"]));
    assert_eq!(stdout(&out), format!("stopped wbl-agent (pid {pid})\n"));
    wait_gone(pid);
    assert!(!w.socket().exists());
    let out = ok(w.wbl(&["agent", "stop"]));
    assert!(stdout(&out).starts_with("wbl-agent is not running"));
    let out = w.wbl(&["agent", "status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false);
}
