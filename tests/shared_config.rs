//! On a shared machine, as an ordinary user with another user as the attacker: a configuration
//! file another user could have changed is refused by the agent, the client and `wbl doctor`;
//! a `jwt_file` that holds no JWT (an SSH key) is never sent; and a host routed to OpenBao is
//! answered by its server only, never by a personal key kept for its other (Forge) address.
//! The attacker's OpenBao "server" is a listener of the test's that records every byte sent
//! to it; the team's server is a real `bao server -dev`.

#![cfg(target_os = "linux")]

#[path = "support/bao.rs"]
mod bao;
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao::Bao;
use common::users::{self, User};
use common::{Backend, World, key, set_mode, stderr, stdout};
use serde_json::json;

/// A plain-http "OpenBao server" on 127.0.0.1 that answers 403 to everything and keeps what
/// it was sent. Stopped (its thread joined) when dropped.
struct Recorder {
    addr: String,
    got: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let mut conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut buf = [0u8; 8192];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    g.lock().unwrap().extend_from_slice(&buf[..n]);
                    let text = g.lock().unwrap().clone();
                    if text.windows(4).any(|w| w == b"\r\n\r\n") {
                        // Enough to know something was sent: answer and close.
                        break;
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\
                      Content-Length: 33\r\nConnection: close\r\n\r\n{\"errors\":[\"permission denied\"]}",
                );
            }
        });
        Recorder {
            addr,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.got.lock().unwrap()).into_owned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A world of the ordinary user whose home other users may enter (as homes on shared machines
/// usually are: 0755), with `~/.config/wbl` made by the user.
fn shared_home(backend: Backend) -> World {
    let u = users::user();
    let w = World::new_as(backend, u.clone());
    set_mode(w.dir.path(), 0o755);
    set_mode(&w.home(), 0o755);
    let dir = config_dir(&w);
    std::fs::create_dir_all(&dir).unwrap();
    u.chown(&w.home().join(".config"));
    set_mode(&w.home().join(".config"), 0o755);
    set_mode(&dir, 0o755);
    w
}

fn config_dir(w: &World) -> PathBuf {
    w.home().join(".config/wbl")
}

/// Writes `text` to `path` as `user` (their umask, their ownership).
fn write_as(user: &User, path: &Path, text: &str) {
    write_with(user.command("sh"), path, text);
}

/// Writes `text` to `path` with `sh` run by `cmd` (a new file, then renamed over the old).
fn write_with(mut cmd: Command, path: &Path, text: &str) {
    let o = common::run_with_stdin(
        cmd.arg("-c")
            .arg("umask 022; cat > \"$1.new\" && mv -f \"$1.new\" \"$1\"")
            .arg("sh")
            .arg(path),
        text.as_bytes(),
    );
    assert!(o.status.success(), "writing {}: {o:?}", path.display());
}

/// The other user, in the ordinary user's group as well (a lab's shared group).
fn other_in_users_group() -> Command {
    let (o, u) = (users::other(), users::user());
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={}", o.uid))
        .arg(format!("--regid={}", o.gid))
        .arg(format!("--groups={}", u.gid))
        .arg("--")
        .arg("sh")
        .env("USER", o.name)
        .env("LOGNAME", o.name);
    c
}

fn with_stdin(w: &World, args: &[&str], input: &str) -> Output {
    let mut c = w.cmd(common::WBL);
    c.args(args);
    common::run_with_stdin(c, input.as_bytes())
}

/// `wbl doctor`'s `openbao` check: (verdict, detail, fix).
fn doctor_openbao(w: &World) -> (String, String, String) {
    let o = w.wbl(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", stderr(&o)));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "openbao")
        .unwrap()
        .clone();
    let s = |k: &str| check[k].as_str().unwrap_or_default().to_owned();
    (s("verdict"), s("detail"), s("fix"))
}

/// A JWT as a Slurm or CI would issue it (its signature is not checked by anyone here).
fn a_jwt() -> String {
    use base64::Engine;
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b(r#"{"alg":"RS256","typ":"JWT"}"#),
        b(r#"{"sub":"wbl-test-user","aud":"slurm"}"#),
        b("signature-of-the-cluster")
    )
}

#[test]
fn a_route_written_by_another_user_is_refused_by_agent_client_and_doctor() {
    let u = users::user();
    let w = shared_home(Backend::Keyutils);
    let evil = Recorder::start();
    // The user's own cluster JWT, as Slurm leaves it for jobs.
    let jwt = a_jwt();
    let jwt_file = w.home().join(".slurm-jwt");
    write_as(&u, &jwt_file, &format!("{jwt}\n"));
    set_mode(&jwt_file, 0o600);
    let k1 = key(2201);
    let o = w.wbl(&["login", &k1]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The lab shares one group; the user's config directory is group-writable (umask 002).
    set_mode(&config_dir(&w), 0o775);
    // The other user routes the W&B cloud to their server, with the user's JWT as login.
    let file = config_dir(&w).join("config.toml");
    let attack = format!(
        "[openbao.team]\naddress = \"{}\"\nauth = \"jwt\"\nrole = \"wandb\"\njwt_file = \"{}\"\n\n\
         [[route]]\nhost = \"https://api.wandb.ai\"\nstore = \"openbao.team\"\npath = \"ml-team/wandb\"\n",
        evil.addr,
        jwt_file.display()
    );
    write_with(other_in_users_group(), &file, &attack);
    let other = users::other();

    // The agent refuses the file: no key for anyone, and why.
    let o = w.wbl(&["token"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains(&format!("uid {}", other.uid)), "{e}");
    assert!(e.contains("another user"), "{e}");
    assert!(e.contains("chown") || e.contains("chmod go-w"), "{e}");
    assert!(!stdout(&o).contains(&k1), "the key is not served");
    // A new key is not sent there either, nor is git's.
    let k2 = key(2202);
    let o = with_stdin(&w, &["login", "-"], &format!("{k2}\n"));
    assert!(!o.status.success(), "{}", stderr(&o));
    let o = with_stdin(
        &w,
        &["credential", "store"],
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k2}\n\n"),
    );
    assert!(!stderr(&o).contains(&k2));
    // `wbl openbao login` reads the file itself: refused before the agent is asked.
    let o = w.wbl(&["openbao", "login", "team"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another user"), "{}", stderr(&o));
    // `wbl doctor` fails its openbao check, with the fix.
    let (verdict, detail, fix) = doctor_openbao(&w);
    assert_eq!(verdict, "problem", "{detail}");
    assert!(detail.contains(&file.display().to_string()), "{detail}");
    assert!(detail.contains("another user"), "{detail}");
    assert!(fix.contains("chown") || fix.contains("cp "), "{fix}");

    let sent = evil.received();
    assert!(sent.is_empty(), "the other user's server was sent: {sent}");
    // And the agent's log says why it serves nothing.
    let log = std::fs::read_to_string(w.log()).unwrap_or_default();
    assert!(log.contains("another user"), "{log}");
}

#[test]
fn a_shared_config_file_of_another_user_is_refused_before_a_password_is_sent() {
    let w = shared_home(Backend::Keyutils);
    let evil = Recorder::start();
    // A project directory of the other user's, with the "team" configuration everyone uses.
    let other = users::other();
    let project = tempfile::Builder::new()
        .prefix("wbl-shared-project-")
        .tempdir()
        .unwrap();
    other.chown(project.path());
    set_mode(project.path(), 0o755);
    let file = project.path().join("wbl.toml");
    write_as(
        &other,
        &file,
        &format!(
            "[openbao.team]\naddress = \"{}\"\nauth = \"userpass\"\nusername = \"wbl-test-user\"\n",
            evil.addr
        ),
    );
    let file_s = file.display().to_string();
    // The user is told to `export WBL_CONFIG=` that file and log in.
    let o = {
        let mut c = w.cmd(common::WBL);
        c.env("WBL_CONFIG", &file)
            .args(["openbao", "login", "team"]);
        common::run_with_stdin(c, b"users-own-password\n")
    };
    assert!(!o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&file_s) && e.contains("belongs to another user"),
        "{e}"
    );
    assert!(e.contains(&format!("uid {}", other.uid)), "{e}");
    assert!(!e.contains("users-own-password"));
    let sent = evil.received();
    assert!(sent.is_empty(), "the other user's server was sent: {sent}");
}

#[test]
fn doctor_fails_on_a_group_writable_config_directory_until_chmod_go_w() {
    let u = users::user();
    let w = shared_home(Backend::Keyutils);
    let file = config_dir(&w).join("config.toml");
    write_as(&u, &file, "# the user's own, no routes yet\n");
    let (verdict, detail, _) = doctor_openbao(&w);
    assert_eq!(verdict, "ok", "{detail}");

    set_mode(&config_dir(&w), 0o775);
    let (verdict, detail, fix) = doctor_openbao(&w);
    assert_eq!(verdict, "problem", "{detail}");
    let dir = config_dir(&w).display().to_string();
    assert!(
        detail.contains(&dir) && detail.contains("0775") && detail.contains("its group"),
        "{detail}"
    );
    assert!(fix.contains(&format!("chmod go-w {dir}")), "{fix}");
    // The fix as given, run by the user.
    let o = u.command("chmod").args(["go-w", &dir]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let (verdict, detail, _) = doctor_openbao(&w);
    assert_eq!(verdict, "ok", "{detail}");
}

#[test]
fn a_jwt_file_that_holds_no_jwt_is_never_sent() {
    let u = users::user();
    let w = shared_home(Backend::Keyutils);
    let server = Recorder::start();
    let ssh = w.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    u.chown(&ssh);
    set_mode(&ssh, 0o700);
    let private = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
    let id = ssh.join("id_ed25519");
    write_as(
        &u,
        &id,
        &format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{private}\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
    );
    set_mode(&id, 0o600);
    write_as(
        &u,
        &config_dir(&w).join("config.toml"),
        &format!(
            "[openbao.jobs]\naddress = \"{}\"\nauth = \"jwt\"\nrole = \"wandb\"\njwt_file = \"{}\"\n\n\
             [[route]]\nhost = \"https://api.wandb.ai\"\nstore = \"openbao.jobs\"\npath = \"ml-team/wandb\"\n",
            server.addr,
            id.display()
        ),
    );
    for args in [&["token"][..], &["openbao", "login", "jobs"]] {
        let o = w.wbl(args);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&id.display().to_string()) && e.contains("does not hold a JWT"),
            "{args:?}: {e}"
        );
        assert!(e.contains("not sent"), "{e}");
        assert!(!e.contains(private) && !e.contains("BEGIN"), "{e}");
    }
    let sent = server.received();
    assert!(sent.is_empty(), "the server was sent: {sent}");
    let log = std::fs::read_to_string(w.log()).unwrap_or_default();
    assert!(!log.contains(private), "{log}");
}

#[test]
fn a_routed_host_is_answered_by_its_server_only_never_by_a_personal_key() {
    let bao = Bao::start();
    bao.policies();
    bao.userpass(&[("alice", "alice-pw-1", "rw", "1h", "2h")]);
    let team = key(2211);
    bao.put_secret(
        "ml-team/wandb",
        json!({ "password": team, "username": "team-bot" }),
    );
    let u = users::user();
    let w = shared_home(Backend::Keyutils);
    write_as(
        &u,
        &config_dir(&w).join("config.toml"),
        &format!(
            "[openbao.team]\naddress = \"{}\"\nauth = \"userpass\"\nusername = \"alice\"\n\n\
             [[route]]\nhost = \"https://api.wandb.ai\"\nstore = \"openbao.team\"\npath = \"ml-team/wandb\"\n",
            bao.addr
        ),
    );
    let o = with_stdin(&w, &["openbao", "login", "team"], "alice-pw-1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    // The user's personal key, kept for the Forge address of the same W&B cloud.
    let personal = key(2212);
    let o = w.wbl(&[
        "login",
        "--host",
        "https://api.forge.coreweave.com",
        &personal,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        w.keyctl_lookup("https://api.forge.coreweave.com", "api")
            .as_deref(),
        Some(personal.as_str())
    );
    let o = w.wbl(&["token", "--host", "https://api.forge.coreweave.com"]);
    assert_eq!(stdout(&o).trim(), personal, "{}", stderr(&o));

    // `wbl login --host` made Forge the default host: name the cloud from now on.
    let cloud = "https://api.wandb.ai";
    // `wbl token`: a miss that names the route and the user name asked for.
    let o = w.wbl(&["token", "--host", cloud]);
    assert!(!o.status.success(), "wbl token printed {}", stdout(&o));
    assert!(!stdout(&o).contains(&personal));
    let e = stderr(&o);
    for needle in ["`team`", "ml-team/wandb", "`api`", "team-bot"] {
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }
    assert!(!e.contains(&personal) && !e.contains(&team), "{e}");
    // `wbl exec`: the program is not run with the personal key.
    let o = w.wbl(&[
        "exec",
        "--host",
        cloud,
        "--",
        "sh",
        "-c",
        "printf %s \"$WANDB_API_KEY\"",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(!stdout(&o).contains(&personal));
    assert!(stderr(&o).contains("team-bot"), "{}", stderr(&o));
    // git: the team key for no user name or its own; nothing for `api`, never the personal key.
    let get = |input: &str| with_stdin(&w, &["credential", "get"], input);
    let o = get("protocol=https\nhost=api.wandb.ai\n\n");
    assert!(stdout(&o).contains(&format!("password={team}")), "{o:?}");
    let o = get("protocol=https\nhost=api.wandb.ai\nusername=api\n\n");
    assert!(o.status.success(), "{o:?}");
    assert!(!stdout(&o).contains(&personal), "git got the personal key");
    assert!(!stdout(&o).contains("password="), "{}", stdout(&o));
    // `wbl status` does not show the personal key as the routed host's.
    let o = w.wbl(&["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == "https://api.wandb.ai")
        .unwrap_or_else(|| panic!("no row for the cloud: {status}"))
        .clone();
    assert_ne!(row["source"], "keychain", "{row}");
    assert!(row["warnings"].to_string().contains("team-bot"), "{row}");
}
