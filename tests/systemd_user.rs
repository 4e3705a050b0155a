//! The units under a real systemd user manager: `wbl agent install --now` enables the socket,
//! systemd starts the sandboxed agent on the first connection (`Type=notify`), the agent
//! reaches the Secret Service over D-Bus and the real kernel user keyring, `wbl agent stop`
//! and `systemctl --user stop` are graceful, and `wbl agent uninstall` undoes it all.
//!
//! This machine has no systemd as PID 1, so each test runs its own `systemd --user` in a
//! private mount namespace (where a tmpfs `/run/systemd/system` makes it believe systemd
//! booted) and in a cgroup of its own (so two managers never touch each other's services).
//! That needs root, as the tests run here and in CI.

#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::Duration;

use common::*;

/// A `systemd --user` of our own, stopped (and its cgroups removed) on drop.
struct UserManager {
    child: Child,
    /// Its `XDG_RUNTIME_DIR` (its private socket lives there; not the world's).
    runtime: PathBuf,
    cgroup: String,
}

impl UserManager {
    fn start(w: &World) -> UserManager {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test runs systemd --user in a mount namespace and cgroup of its own, which needs root (as here and in CI)"
        );
        let runtime = w.dir.path().join("user-manager");
        std::fs::create_dir(&runtime).unwrap();
        set_mode(&runtime, 0o700);
        let cgroup = format!(
            "wbl-test-{}-{}",
            std::process::id(),
            w.namespace.rsplit('-').next().unwrap()
        );
        let script = r#"
            set -e
            if [ -d /sys/fs/cgroup/systemd ]; then
                hierarchies="/sys/fs/cgroup/systemd /sys/fs/cgroup/unified"
            else
                hierarchies=/sys/fs/cgroup
            fi
            moved=
            for h in $hierarchies; do
                [ -d "$h" ] || continue
                mkdir -p "$h/$WBL_TEST_CGROUP"
                echo $$ > "$h/$WBL_TEST_CGROUP/cgroup.procs"
                moved=1
            done
            # Never at the root: a manager there adopts every process of the machine.
            [ -n "$moved" ] || { echo "no cgroup hierarchy to run in" >&2; exit 1; }
            mount -t tmpfs tmpfs /run/systemd
            mkdir /run/systemd/system
            exec /lib/systemd/systemd --user
        "#;
        // Mask the session bus and keyring units the distribution ships: dbus.socket would
        // point DBUS_SESSION_BUS_ADDRESS at its own bus (and a locked keyring) as it starts.
        let units = w.home().join(".config/systemd/user");
        std::fs::create_dir_all(&units).unwrap();
        for unit in ["dbus.socket", "dbus.service", "gnome-keyring-daemon.socket"] {
            std::os::unix::fs::symlink("/dev/null", units.join(unit)).unwrap();
        }
        let log = std::fs::File::create(w.dir.path().join("user-manager.log")).unwrap();
        let child = w
            .cmd("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("WBL_TEST_CGROUP", &cgroup)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let mut m = UserManager {
            child,
            runtime,
            cgroup,
        };
        let private = m.runtime.join("systemd").join("private");
        for _ in 0..3000 {
            if private.exists() {
                break;
            }
            if let Some(status) = m.child.try_wait().unwrap() {
                panic!(
                    "systemd --user exited ({status}): {}",
                    std::fs::read_to_string(w.dir.path().join("user-manager.log"))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(private.exists(), "systemd --user did not start");
        // It answers.
        ok(m.systemctl(w, &["show-environment"]));
        m
    }

    /// A command of this world that talks to this manager.
    fn cmd(&self, w: &World, program: &str) -> Command {
        let mut c = w.cmd(program);
        c.env("XDG_RUNTIME_DIR", &self.runtime);
        c
    }

    fn systemctl(&self, w: &World, args: &[&str]) -> Output {
        self.cmd(w, "systemctl")
            .arg("--user")
            .args(args)
            .output()
            .unwrap()
    }

    fn wbl(&self, w: &World, args: &[&str]) -> Output {
        // Never auto-start: every agent here must come from systemd.
        self.cmd(w, WBL)
            .args(args)
            .env("WBL_NO_AUTOSTART", "1")
            .output()
            .unwrap()
    }

    /// `systemctl --user show -p PROP --value wbl-agent.service`.
    fn show(&self, w: &World, prop: &str) -> String {
        let out = ok(self.systemctl(w, &["show", "-p", prop, "--value", "wbl-agent.service"]));
        stdout(&out).trim().to_owned()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = Command::new("systemctl")
            .args(["--user", "exit"])
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .output();
        for _ in 0..1000 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Every hierarchy: the manager may have made its cgroup in controller hierarchies too.
        let mut hierarchies = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            hierarchies.extend(entries.flatten().map(|e| e.path()));
        }
        for h in hierarchies {
            remove_cgroup(&h.join(&self.cgroup));
        }
    }
}

/// Removes an (empty) cgroup directory tree, deepest first.
fn remove_cgroup(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn under_systemd(backend: Backend, lookup: impl Fn(&World) -> Option<String>) {
    let w = World::new(backend);
    let m = UserManager::start(&w);
    if let Some(bus) = w.bus() {
        // The world's D-Bus with its unlocked gnome-keyring, not the manager's own bus.
        ok(m.systemctl(
            &w,
            &[
                "set-environment",
                &format!("DBUS_SESSION_BUS_ADDRESS={bus}"),
            ],
        ));
    }
    let out = ok(m.wbl(&w, &["agent", "install", "--now"]));
    let text = stdout(&out);
    assert!(
        text.contains("wbl-agent.socket is enabled; systemd started wbl-agent (pid "),
        "{text}"
    );
    assert_eq!(m.show(&w, "ActiveState"), "active");
    // Type=notify: systemd saw READY=1 (and our status text).
    assert_eq!(m.show(&w, "Type"), "notify");
    assert_eq!(m.show(&w, "StatusText"), "serving");
    assert_eq!(m.show(&w, "NoNewPrivileges"), "yes");
    let first: u32 = m.show(&w, "MainPID").parse().unwrap();
    assert_eq!(w.agent_pid(), Some(first));

    // The sandboxed agent stores in the real keychain and serves it back.
    let k = key(20);
    ok(m.wbl(&w, &["login", &k]));
    assert_eq!(stdout(&ok(m.wbl(&w, &["token"]))), format!("{k}\n"));
    assert_eq!(lookup(&w).as_deref().map(str::trim_end), Some(k.as_str()));

    // `wbl agent stop` is graceful; the next client gets a new agent from systemd.
    let out = ok(m.wbl(&w, &["agent", "stop"]));
    assert_eq!(
        stdout(&out),
        format!(
            "stopped wbl-agent (pid {first})\n(it is socket-activated: the next client starts it again)\n"
        )
    );
    assert_eq!(stdout(&ok(m.wbl(&w, &["token"]))), format!("{k}\n"));
    let second: u32 = m.show(&w, "MainPID").parse().unwrap();
    assert_ne!(second, first);

    // systemctl stop: SIGTERM, exit 0, and the socket stays with systemd.
    ok(m.systemctl(&w, &["stop", "wbl-agent.service"]));
    assert_eq!(m.show(&w, "Result"), "success");
    assert_eq!(m.show(&w, "ExecMainStatus"), "0");
    assert!(w.socket().exists());
    assert!(w.agent_pid().is_none());

    // wbl doctor sees the socket-activated setup, and only looks: connecting to the socket
    // would have made systemd start the agent.
    let out = m.wbl(&w, &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(check("agent")["verdict"], "ok", "{report:#}");
    assert_eq!(
        check("agent")["detail"],
        format!(
            "not running; systemd starts it on the first connection to {}",
            w.socket().display()
        )
    );
    assert_eq!(check("service")["verdict"], "ok", "{report:#}");
    assert!(
        check("service")["detail"]
            .as_str()
            .unwrap()
            .starts_with("wbl-agent.socket is enabled ("),
        "{report:#}"
    );
    assert_eq!(m.show(&w, "ActiveState"), "inactive");
    assert!(w.agent_pid().is_none());

    let out = ok(m.wbl(&w, &["agent", "uninstall"]));
    assert!(stdout(&out).contains("removed "), "{}", stdout(&out));
    // RemoveOnStop=yes: the stopped socket unit took its file along.
    assert!(!w.socket().exists());
    let out = m.wbl(&w, &["token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no wbl-agent is running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn systemd_runs_the_sandboxed_agent_with_the_kernel_keyring() {
    under_systemd(Backend::Keyutils, |w| {
        w.keyctl_lookup("https://api.wandb.ai", "api")
    });
}

#[test]
fn systemd_runs_the_sandboxed_agent_with_the_secret_service() {
    under_systemd(Backend::SecretService, |w| {
        w.secret_tool_lookup("https://api.wandb.ai", "api")
    });
}
