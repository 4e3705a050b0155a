//! A real OpenSSH server for tests: `/usr/sbin/sshd -D -e -f <own config>` on 127.0.0.1 and a
//! free port, with its own host key, one authorized client key and an `ssh_config` that trusts
//! exactly that host key. Everything lives in a temp dir; the server is stopped (by pid) on drop.
//!
//! `StreamLocalBindUnlink yes` is what docs/ssh.md asks of a server used with a fixed
//! `RemoteForward` path (sshd never removes the socket of an ended session); `wbl ssh` itself
//! binds a fresh path every time and needs nothing. Written for CI, which runs as root: root
//! may log in with the key, `StrictModes no` because the temp dir is not root's home, `UsePAM
//! no` and `PidFile none` so nothing outside the temp dir is touched — except `/run/sshd`, the
//! privilege separation directory Debian's sshd insists on, which is created when missing.
//!
//! [`Sshd::start_for`] lets an ordinary user (`users::user()`) log in instead, with the ssh
//! client running as that user: the temp dir is opened to it (0755: sshd reads the authorized
//! keys as the user, the client reads its config, known hosts and key), the client key is the
//! user's, and `UsePAM yes`, because the test users are system accounts without a password,
//! which sshd without PAM refuses as "locked" even for a key (PAM then writes the usual login
//! records).

#![allow(dead_code)] // each test file uses a part of it

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";
/// The host alias the generated `ssh_config` defines.
pub const HOST: &str = "wbl-test-remote";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    child: Child,
    /// Everything sshd printed (`-e`), for failure messages.
    log: Arc<Mutex<String>>,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "wbl-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen must be installed (scripts/install-test-deps: openssh-client)");
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Sshd {
    /// Starts sshd and returns once it listens (bounded: 10 s).
    pub fn start() -> Sshd {
        Self::start_with("")
    }

    /// [`Sshd::start`] with more `sshd_config` lines (e.g. `SetEnv HOME=…` so that a login
    /// shell never touches the real home of the user).
    pub fn start_with(extra_config: &str) -> Sshd {
        Self::start_as(None, extra_config)
    }

    /// [`Sshd::start_with`] for `user`, who logs in with the key and runs the ssh client (see
    /// the module's comment).
    pub fn start_for(user: &crate::common::users::User, extra_config: &str) -> Sshd {
        Self::start_as(Some(user), extra_config)
    }

    fn start_as(user: Option<&crate::common::users::User>, extra_config: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing (scripts/install-test-deps installs openssh-server)"
        );
        if !Path::new("/run/sshd").exists() {
            // Debian's sshd refuses to start without its privilege separation directory.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::Builder::new()
            .prefix("wbl-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("id_ed25519"));
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let extra_config = match user {
            Some(u) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &Path, m| {
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
                };
                mode(d, 0o755);
                mode(&d.join("authorized_keys"), 0o644);
                u.chown(&d.join("id_ed25519"));
                format!("UsePAM yes\n{extra_config}")
            }
            None => extra_config.to_owned(),
        };
        let login = user.map_or_else(user_name, |u| u.name.to_owned());
        // Retry on the (unlikely) race of another process taking the free port first.
        for _ in 0..5 {
            let port = free_port();
            if let Some((child, log)) = Self::spawn(d, port, &extra_config) {
                let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
                let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
                std::fs::write(
                    d.join("known_hosts"),
                    format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
                )
                .unwrap();
                std::fs::write(
                    d.join("ssh_config"),
                    format!(
                        "Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                         IdentityFile {id}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
                         UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  \
                         StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n  \
                         ControlMaster no\n  ControlPath none\n  ForwardAgent no\n  \
                         ConnectTimeout 10\n",
                        user = login,
                        id = d.join("id_ed25519").display(),
                        kh = d.join("known_hosts").display(),
                    ),
                )
                .unwrap();
                return Sshd { dir, child, log };
            }
        }
        panic!("sshd did not start on any of five free ports");
    }

    /// `extra` comes first: sshd takes the first value of each keyword, so its lines win over
    /// the defaults below.
    fn spawn(d: &Path, port: u16, extra: &str) -> Option<(Child, Arc<Mutex<String>>)> {
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "{extra}\nListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile none\nAllowStreamLocalForwarding yes\n\
                 StreamLocalBindUnlink yes\n\
                 AllowTcpForwarding remote\nAllowAgentForwarding no\nX11Forwarding no\n\
                 PermitUserEnvironment no\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n",
                hk = d.join("host_ed25519").display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run sshd");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server listening on")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return Some((child, log));
            }
            if child.try_wait().unwrap().is_some() {
                let text = log.lock().unwrap().clone();
                if text.contains("Address already in use") {
                    return None;
                }
                panic!("sshd exited at start:\n{text}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sshd did not listen within 10 s:\n{}", log.lock().unwrap());
            }
        }
    }

    /// The `ssh` arguments that reach this server: `-F <config> <host>`.
    pub fn ssh_args(&self) -> Vec<String> {
        vec![
            "-F".into(),
            self.dir.path().join("ssh_config").display().to_string(),
            HOST.into(),
        ]
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Our own child, by pid: SIGTERM, then reap.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
