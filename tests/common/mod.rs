//! Test fixture: a private world per test — temp HOME, agent socket, keychain namespace, and for
//! Secret Service tests a private D-Bus session with an unlocked gnome-keyring — so tests run
//! in parallel and never touch the developer's real keychain.

#![allow(dead_code)]

pub mod users;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const WBL: &str = env!("CARGO_BIN_EXE_wbl");
pub const AGENT: &str = env!("CARGO_BIN_EXE_wbl-agent");
pub const GIT_HELPER: &str = env!("CARGO_BIN_EXE_git-credential-wbl");
pub const DOCKER_HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-wbl");

/// Runs `c` with `input` on stdin, from another thread so a large input cannot block on a
/// full pipe; a child that stops reading early (or never reads, failing first) is fine.
pub fn run_with_stdin(mut c: impl std::borrow::BorrowMut<Command>, input: &[u8]) -> Output {
    let c = c.borrow_mut();
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `PATH` with the directory of the built binaries first (where `git-credential-wbl` and
/// `docker-credential-wbl` are), so git and container tools find them by name, then the
/// hermetic rest ([`path_without_bins`]).
pub fn path_with_bins() -> std::ffi::OsString {
    let bins = Path::new(WBL).parent().unwrap().to_path_buf();
    std::env::join_paths(std::iter::once(bins).chain(hermetic_path().iter().cloned())).unwrap()
}

/// Makes a command that runs git (or runs git itself) blind to the developer's git setup: no
/// system config, the world's global config, no prompts.
pub fn isolate_git(c: &mut Command, w: &World) {
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") || k.to_ascii_lowercase().ends_with("_proxy") {
            c.env_remove(&k);
        }
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", w.home().join(".gitconfig"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("SSH_ASKPASS");
}

/// `PATH` with no wbl program on it: neither the built ones nor any installed copy
/// (`~/.cargo/bin`, a `--root` install), so no result depends on what the user installed.
/// Every process a [`World`] starts gets it.
pub fn path_without_bins() -> std::ffi::OsString {
    std::env::join_paths(hermetic_path()).unwrap()
}

/// The names of wbl's programs.
const PROGRAMS: [&str; 4] = [
    "wbl",
    "wbl-agent",
    "git-credential-wbl",
    "docker-credential-wbl",
];

/// The test process's `PATH` without the built binaries' directory, each directory that holds
/// a wbl program replaced by a shadow: a directory under `/tmp` (one per test process) of
/// symbolic links to everything else in it. So an installed wbl is out of sight, and the
/// other programs beside it (a `bao` in `/usr/local/bin`, say) are not.
fn hermetic_path() -> &'static [PathBuf] {
    static DIRS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    DIRS.get_or_init(|| {
        let bins = Path::new(WBL).parent().unwrap().to_path_buf();
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let mut shadows = 0;
        std::env::split_paths(&rest)
            .filter(|d| *d != bins && !d.as_os_str().is_empty())
            .map(|d| {
                if !PROGRAMS.iter().any(|p| d.join(p).exists()) {
                    return d;
                }
                shadows += 1;
                shadow_dir(&d, shadows)
            })
            .collect()
    })
}

/// A directory of symbolic links to the entries of `dir` that are not wbl programs.
fn shadow_dir(dir: &Path, n: u32) -> PathBuf {
    remove_stale_dirs("wbl-test-path-");
    let shadow = PathBuf::from(format!("/tmp/wbl-test-path-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shadow);
    std::fs::create_dir(&shadow).unwrap();
    set_mode(&shadow, 0o755);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        if PROGRAMS.iter().any(|p| name == *p) {
            continue;
        }
        let _ = std::os::unix::fs::symlink(e.path(), shadow.join(&name));
    }
    shadow
}

/// Removes the directories `/tmp/<prefix><pid>…` of test processes that have ended.
pub(crate) fn remove_stale_dirs(prefix: &str) {
    for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A valid legacy-format key (40 word characters), different for each `n`.
pub fn key(n: u32) -> String {
    format!("{:0>40}", format!("k{n}x{}", "abcdef0123456789"))
}

/// A new-format key (`wandb_v1_` + 80 characters).
pub fn key_v1(n: u32) -> String {
    format!("wandb_v1_{:0>80}", n)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub enum Backend {
    SecretService,
    Keyutils,
}

/// The state a Secret Service world's keyring starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyring {
    /// gnome-keyring runs with its login keyring unlocked (what `World::new` gives).
    Unlocked,
    /// gnome-keyring runs; its login keyring exists and is locked.
    Locked,
    /// gnome-keyring runs without a login keyring (started without `--unlock`, fresh HOME):
    /// no default collection.
    NoDefaultCollection,
    /// Only the bus runs; D-Bus can start gnome-keyring (its service file), nothing did.
    NotRunning,
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    pub backend: &'static str,
    dbus: Option<(u32, String)>,
    keyring: Option<std::process::Child>,
    /// The user every process of this world runs as (`World::new_as`); `None`: the test's own.
    user: Option<users::User>,
}

impl World {
    pub fn new(backend: Backend) -> World {
        Self::build(backend, None)
    }

    /// A world whose directory belongs to `user` and whose every process — the session bus,
    /// gnome-keyring, the agent, the clients, `secret-tool`, `keyctl` — runs as `user`
    /// (`users::user()`: an ordinary user, as on a real machine; CI is root).
    pub fn new_as(backend: Backend, user: users::User) -> World {
        Self::build(backend, Some(user))
    }

    /// The user this world's processes run as, when it is not the test's own.
    pub fn user(&self) -> Option<&users::User> {
        self.user.as_ref()
    }

    /// `program` as this world runs it (as its user, if it has one), with no environment
    /// of the world's: for processes that are not wbl's (the bus, the keyring daemon).
    pub fn raw_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.user {
            Some(u) => u.command(program),
            None => Command::new(program),
        }
    }

    /// A Secret Service world whose keyring starts in `keyring`'s state, run as `user` (or
    /// the test's own user).
    pub fn with_keyring(keyring: Keyring, user: Option<users::User>) -> World {
        Self::build_with(Backend::SecretService, user, keyring)
    }

    fn build(backend: Backend, user: Option<users::User>) -> World {
        Self::build_with(backend, user, Keyring::Unlocked)
    }

    fn build_with(backend: Backend, user: Option<users::User>, keyring: Keyring) -> World {
        let dir = tempfile::Builder::new()
            .prefix("wbl-test-")
            .tempdir()
            .unwrap();
        let namespace = format!(
            "wbltest-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        set_mode(&run, 0o700);
        let mut w = World {
            dir,
            namespace,
            backend: match backend {
                Backend::SecretService => "secret-service",
                Backend::Keyutils => "keyutils",
            },
            dbus: None,
            keyring: None,
            user,
        };
        if let Some(u) = &w.user {
            u.chown(w.dir.path());
        }
        if let Backend::SecretService = backend {
            w.start_secret_service(keyring);
        }
        w
    }

    /// Locks the login keyring through the Secret Service (`Lock`), as a screen lock would.
    pub fn lock_keyring(&self) {
        ok(self
            .cmd("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ])
            .output()
            .unwrap());
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("agent.sock")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("run").join("agent.sock.log")
    }

    pub fn bus(&self) -> Option<&str> {
        self.dbus.as_ref().map(|(_, a)| a.as_str())
    }

    /// A private session bus with gnome-keyring's Secret Service in the state `keyring` asks
    /// for (by default unlocked with a password).
    fn start_secret_service(&mut self, keyring: Keyring) {
        let out = self
            .raw_cmd("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .env("HOME", self.home())
            // What D-Bus starts (gnome-keyring) inherits these: its sockets stay in this world.
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .output()
            .expect("dbus-daemon must be installed (see .ci/run)");
        assert!(out.status.success(), "dbus-daemon failed: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let addr = lines.next().unwrap().to_owned();
        let pid: u32 = lines.next().unwrap().trim().parse().unwrap();
        self.dbus = Some((pid, addr.clone()));
        if keyring == Keyring::NotRunning {
            return;
        }
        let unlock = keyring != Keyring::NoDefaultCollection;
        // In the foreground, the daemon that reads our password is the one that serves: in
        // daemon mode `--unlock` hands over to a D-Bus-activated instance, and a request that
        // races that hand-over gets a second, locked keyring ("prompt dismissed").
        let mut gk = self
            .raw_cmd("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets"])
            .args(unlock.then_some("--unlock"))
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("DBUS_SESSION_BUS_ADDRESS", &addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon must be installed (see .ci/run)");
        use std::io::Write;
        let mut stdin = gk.stdin.take().unwrap();
        if unlock {
            stdin.write_all(b"test-password").unwrap();
        }
        drop(stdin);
        // Wait (bounded) until it owns its bus name — asking the bus does not activate
        // anything — and its login keyring exists; only then make Secret Service calls.
        let owned = || {
            self.raw_cmd("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &addr)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("true"))
        };
        let login = self.home().join(".local/share/keyrings/login.keyring");
        let mut ready = false;
        for _ in 0..1000 {
            if owned() && (login.exists() || !unlock) {
                ready = true;
                break;
            }
            assert!(
                gk.try_wait().unwrap().is_none(),
                "gnome-keyring-daemon exited early"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ready, "gnome-keyring did not come up");
        self.keyring = Some(gk);
        if keyring == Keyring::Locked {
            self.lock_keyring();
        }
    }

    /// Environment every wbl process of this world gets.
    pub fn apply_env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("WANDB_")
                || k.starts_with("WBL_")
                || k == "NETRC"
                || k == "XDG_STATE_HOME"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.home())
            .env("PATH", path_without_bins())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("WBL_SOCKET", self.socket())
            .env("WBL_BACKEND", self.backend)
            .env("WBL_KEYCHAIN_NAMESPACE", &self.namespace)
            .env("WBL_AGENT_BIN", users::shared_bin(AGENT.as_ref()))
            .current_dir(self.home());
        match self.bus() {
            Some(addr) => cmd.env("DBUS_SESSION_BUS_ADDRESS", addr),
            None => cmd.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
    }

    pub fn cmd(&self, program: &str) -> Command {
        let mut c = self.raw_cmd(program);
        self.apply_env(&mut c);
        c.stdin(Stdio::null());
        c
    }

    pub fn wbl(&self, args: &[&str]) -> Output {
        self.cmd(WBL).args(args).output().unwrap()
    }

    pub fn wbl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(WBL);
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    pub fn agent_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.socket().with_extension("sock.pid")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// Starts `tests/fixtures/old_agent.py` on this world's socket — an agent of protocol 0
    /// holding the pid-file lock — and returns once it says it is ready. The interpreter runs
    /// from a copy named `wbl-agent`, as an older install's agent would be: a client signals
    /// only a process whose executable has that name.
    pub fn spawn_old_agent(&self) -> std::process::Child {
        use std::io::{BufRead, BufReader};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old_agent.py");
        let bin = self.dir.path().join("old-install");
        std::fs::create_dir_all(&bin).unwrap();
        // Debian's interpreter (a copy of a pyenv shim or of a venv's link would not run).
        let python = std::fs::canonicalize("/usr/bin/python3")
            .expect("python3 must be installed (scripts/install-test-deps)");
        let exe = bin.join("wbl-agent");
        if !exe.exists() {
            // A hard link is never open for writing; a copy (across file systems) is, and a
            // child another test thread forks meanwhile inherits that descriptor until it
            // execs, so exec may see ETXTBSY for a moment: retry, bounded.
            if std::fs::hard_link(&python, &exe).is_err() {
                std::fs::copy(&python, &exe).unwrap();
            }
        }
        let mut attempts = 0;
        let mut old = loop {
            match self
                .cmd(exe.to_str().unwrap())
                .arg(&script)
                .arg(self.socket())
                .stdout(Stdio::piped())
                .spawn()
            {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 200 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r.expect("python3 must be installed (scripts/install-test-deps)"),
            }
        };
        let mut line = String::new();
        BufReader::new(old.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        old
    }

    /// SIGTERM the agent and wait (bounded) until it has exited.
    pub fn stop_agent(&self) {
        if let Some(pid) = self.agent_pid() {
            terminate(pid);
        }
    }

    /// `secret-tool lookup service <ns>:<url> username <user>` in this world's keyring.
    pub fn secret_tool_lookup(&self, url: &str, user: &str) -> Option<String> {
        let service = format!("{}:{url}", self.namespace);
        let out = self
            .cmd("secret-tool")
            // GLib takes non-ASCII arguments as attributes only in a UTF-8 locale: the probe
            // gets one whatever the tests run in (a shell started with `env -i` has none).
            .env("LC_ALL", "C.UTF-8")
            .args(["lookup", "service", &service, "username", user])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
            .filter(|s| !s.is_empty())
    }

    /// The payload of our keyutils key for `url`/`user`, via the real `keyctl`.
    pub fn keyctl_lookup(&self, url: &str, user: &str) -> Option<String> {
        let desc = format!("{}:{user}@{url}", self.namespace);
        let out = self
            .raw_cmd("keyctl")
            .args(["search", "@u", "user", &desc])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let out = self.raw_cmd("keyctl").args(["pipe", &id]).output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    /// Every file below the world's directory whose bytes contain `needle`.
    pub fn files_containing(&self, needle: &str) -> Vec<PathBuf> {
        let mut hits = Vec::new();
        walk(self.dir.path(), &mut |p| {
            if let Ok(bytes) = std::fs::read(p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(p.to_owned());
            }
        });
        hits
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_agent();
        if let Some(mut gk) = self.keyring.take() {
            let _ = gk.kill();
            let _ = gk.wait();
        }
        if let Some((pid, _)) = &self.dbus {
            terminate(*pid);
            // gnome-keyring-daemon does not always exit with its bus; it is ours to stop.
            for pid in processes_with_env(&format!("HOME={}", self.home().display())) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        if self.backend == "keyutils" {
            // Remove this world's keys from the kernel keyring.
            let out = self.raw_cmd("keyctl").args(["rlist", "@u"]).output();
            if let Ok(out) = out {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let d = self.raw_cmd("keyctl").args(["rdescribe", id]).output();
                    if let Ok(d) = d
                        && String::from_utf8_lossy(&d.stdout).contains(&self.namespace)
                    {
                        let _ = self.raw_cmd("keyctl").args(["unlink", id, "@u"]).output();
                    }
                }
            }
        }
    }
}

/// Pids of processes (other than zombies) whose environment holds `entry` (`NAME=value`).
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|b| *b == 0).any(|v| v == entry.as_bytes())
            && alive(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, f),
                Ok(t) if t.is_file() => f(&p),
                _ => {}
            }
        }
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `wbl exec --proxy ARGS -- sh …` run by `c` (a `wbl` command of a world), holding its proxy
/// until a line arrives on its stdin: the child, the proxy's base URL and its placeholder.
pub fn hold_proxy(mut c: Command, args: &[&str]) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    c.args(["exec", "--proxy"])
        .args(args)
        .args(["--", "sh", "-c"])
        .arg("echo \"$WANDB_BASE_URL $WANDB_API_KEY\"; read x")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut words = line.split_whitespace();
    let base = words.next().expect("the proxy's address").to_owned();
    let placeholder = words.next().expect("the placeholder").to_owned();
    assert!(placeholder.starts_with("wblproxy-"), "{placeholder}");
    (child, base, placeholder)
}

/// The agent's children that serve proxies (`wbl-agent --proxy-engine`), zombies left out.
pub fn proxy_engines_of(agent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let (_, rest) = s.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        let engine = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"--proxy-engine"));
        if parent == Some(agent) && engine && alive(pid) {
            found.push(pid);
        }
    }
    found
}

pub fn alive(pid: u32) -> bool {
    // Zombies count as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// SIGTERM `pid` and wait up to 10 s for it to go.
pub fn terminate(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
    wait_gone(pid);
}

pub fn wait_gone(pid: u32) {
    for _ in 0..1000 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("process {pid} did not exit");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with both streams when the command failed.
#[track_caller]
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "command failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// The venv with the released W&B SDK that `scripts/install-test-deps` builds (pinned in
/// `scripts/wandb-sdk-version`): its Python. Fails with a clear message when it is missing —
/// the SDK tests never skip.
pub fn wandb_python() -> PathBuf {
    let version = include_str!("../../scripts/wandb-sdk-version").trim();
    let home = std::env::var_os("HOME").expect("HOME must be set to find the SDK venv");
    let python = Path::new(&home)
        .join(".cache/wbl-test")
        .join(format!("wandb-{version}"))
        .join("bin/python");
    assert!(
        python.exists(),
        "the W&B SDK (wandb=={version}) is not installed at {}: run scripts/install-test-deps",
        python.display()
    );
    python
}

/// `wbl token` in `w` succeeds and prints `want`.
#[track_caller]
pub fn token_is(w: &World, want: &str) {
    let o = w.wbl(&["token"]);
    assert!(o.status.success(), "wbl token failed: {}", stderr(&o));
    assert_eq!(stdout(&o).trim_end(), want);
}

/// `wbl token` in `w` fails with every one of `needles` in its error, which it returns.
#[track_caller]
pub fn token_fails(w: &World, needles: &[&str]) -> String {
    let o = w.wbl(&["token"]);
    assert!(!o.status.success(), "wbl token succeeded: {}", stdout(&o));
    let e = stderr(&o);
    for n in needles {
        assert!(e.contains(n), "`{n}` not in: {e}");
    }
    e
}

/// What the real SDK needs to talk to a fake server on 127.0.0.1: no proxy, no error reports,
/// no code saving.
pub fn sdk_offline_env(c: &mut Command) {
    for k in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        c.env_remove(k);
    }
    c.env("NO_PROXY", "127.0.0.1,localhost")
        .env("WANDB_ERROR_REPORTING", "false")
        .env("WANDB_DISABLE_CODE", "true");
}
