//! OpenBao on a shared machine, as an ordinary user (`wbl-test-user`) with another local user
//! (`wbl-test-other`) as the attacker: a saved token goes only to the address that issued it,
//! and plain http to a loopback port is used only when the user (or root) holds the port.
//! The attacker's server is a small python3 HTTP listener that records every request it gets
//! and answers 403; the team's server is the real `bao server -dev` (started by root, which
//! counts as trusted).

#![cfg(target_os = "linux")]

#[path = "support/bao.rs"]
mod bao;
mod common;

use std::process::{Child, Output};
use std::time::Duration;

use bao::Bao;
use common::users::{self, User};
use common::{Backend, World, key, stderr, token_fails, token_is};
use serde_json::json;

const SECRET: &str = "ml-team/wandb";
const PASSWORD: &str = "alice-pw-1";

/// Records each request (method, path, headers, body) as one JSON line, answers 403 (200 for
/// `sys/health`), and writes its port to the ready file once it listens.
const LISTENER: &str = r#"
import http.server, json, os, socketserver, sys
record, ready, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("latin-1") if n else ""
        with open(record, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")
        if self.path.startswith("/v1/sys/health"):
            status, msg = 200, b'{"initialized":true,"sealed":false,"standby":false}'
        else:
            status, msg = 403, b'{"errors":["permission denied"]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)
    do_GET = do_POST = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
class S(socketserver.TCPServer):
    allow_reuse_address = True
s = S(("127.0.0.1", port), H)
with open(ready + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(ready + ".tmp", ready)
s.serve_forever()
"#;

/// A python3 HTTP listener on 127.0.0.1, run as one user; stopped (by pid) when dropped.
struct Listener {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Listener {
    /// On a free port.
    fn start(user: &User) -> Listener {
        Self::try_start(user, 0).expect("the listener did not start")
    }

    /// On `port` (once it is free: a server just killed may hold it for a moment).
    fn start_on(user: &User, port: u16) -> Listener {
        for _ in 0..100 {
            if let Some(l) = Self::try_start(user, port) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("port {port} did not become free");
    }

    fn try_start(user: &User, port: u16) -> Option<Listener> {
        let dir = tempfile::Builder::new()
            .prefix("wbl-listener-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("listener.py"), LISTENER).unwrap();
        user.chown(dir.path());
        let ready = dir.path().join("ready");
        let mut child = user
            .command("/usr/bin/python3")
            .arg(dir.path().join("listener.py"))
            .arg(dir.path().join("requests"))
            .arg(&ready)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        for _ in 0..1000 {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let port = text.trim().parse().unwrap();
                return Some(Listener { child, dir, port });
            }
            if child.try_wait().unwrap().is_some() {
                return None; // could not bind
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it was sent, one JSON line per request.
    fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests")).unwrap_or_default()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn team_server() -> Bao {
    let bao = Bao::start();
    bao.policies();
    bao.userpass(&[("alice", PASSWORD, "rw", "1h", "2h")]);
    bao
}

/// Writes the configuration as the user would (the file is theirs), atomically.
fn write_config(w: &World, address: &str) {
    let dir = w.home().join(".config/wbl");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[openbao.team]\naddress = \"{address}\"\nauth = \"userpass\"\nusername = \"alice\"\n\
         cache_ttl = \"0\"\nstale_ttl = \"0\"\n\n\
         [[route]]\nhost = \"https://api.wandb.ai\"\nstore = \"openbao.team\"\nmount = \"secret\"\n\
         path = \"{SECRET}\"\n"
    );
    let tmp = dir.join("config.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    let u = w.user().unwrap();
    u.chown(&w.home().join(".config"));
    std::fs::rename(&tmp, dir.join("config.toml")).unwrap();
}

fn login(w: &World, password: &str) -> Output {
    let mut c = w.cmd(common::WBL);
    c.args(["openbao", "login", "team"]);
    common::run_with_stdin(c, format!("{password}\n").as_bytes())
}

/// `wbl doctor`'s `openbao` check: its verdict and detail.
fn doctor_openbao(w: &World) -> (String, String) {
    let o = w.wbl(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "openbao")
        .unwrap()
        .clone();
    (
        check["verdict"].as_str().unwrap().to_owned(),
        check["detail"].as_str().unwrap().to_owned(),
    )
}

/// A world of the ordinary user, logged in to the team's server, which serves `k`; the saved
/// token.
fn logged_in(bao: &Bao, backend: Backend, k: &str) -> (World, String) {
    bao.put_secret(SECRET, json!({ "password": k }));
    let w = World::new_as(backend, users::user());
    write_config(&w, &bao.addr);
    let o = login(&w, PASSWORD);
    assert!(o.status.success(), "{}", stderr(&o));
    token_is(&w, k);
    let saved = w
        .secret_tool_lookup("openbao://team", &bao.addr)
        .expect("the token is saved for the address that issued it");
    (w, saved)
}

#[test]
fn a_changed_address_gets_no_token_and_the_saved_one_stays() {
    let bao = team_server();
    let k1 = key(2201);
    let (w, saved) = logged_in(&bao, Backend::SecretService, &k1);

    // The address now names another user's server (it answers 403 to everything).
    let attacker = Listener::start(&users::other());
    write_config(&w, &attacker.address());
    token_fails(
        &w,
        &[
            "not logged in at this address",
            &bao.addr,
            "wbl openbao login team",
        ],
    );
    assert_eq!(attacker.requests(), "", "the attacker was sent a request");
    // Logging in there is refused before the password leaves: the port is not the user's.
    let o = login(&w, PASSWORD);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("wbl-test-other"), "{}", stderr(&o));
    assert_eq!(attacker.requests(), "", "the attacker was sent a request");

    // A server of the user's own at the new address passes the loopback check (doctor's
    // health probe reaches it) but still gets no token issued elsewhere.
    let own = Listener::start(&users::user());
    write_config(&w, &own.address());
    let (verdict, detail) = doctor_openbao(&w);
    assert_eq!(verdict, "ok", "{detail}");
    token_fails(
        &w,
        &["not logged in at this address", "wbl openbao login team"],
    );
    let sent = own.requests();
    assert!(
        !sent.contains(&saved),
        "the token went to another address: {sent}"
    );
    assert!(!sent.contains("X-Vault-Token"), "{sent}");

    // Back at the address that issued it, the saved token works again: nothing was deleted.
    write_config(&w, &bao.addr);
    token_is(&w, &k1);
    assert_eq!(
        w.secret_tool_lookup("openbao://team", &bao.addr).as_deref(),
        Some(saved.as_str())
    );
    w.stop_agent();
}

#[test]
fn a_squatted_tunnel_port_is_refused_naming_its_owner() {
    let mut bao = team_server();
    let k1 = key(2202);
    let (w, saved) = logged_in(&bao, Backend::SecretService, &k1);
    // The root-owned server is trusted: doctor's probe passes the check too.
    assert_eq!(doctor_openbao(&w).0, "ok");

    // The tunnel drops; another user binds its port.
    let port: u16 = bao.addr.rsplit(':').next().unwrap().parse().unwrap();
    bao.kill();
    let attacker = Listener::start_on(&users::other(), port);

    // The running agent (token in memory) refuses, naming the port's owner.
    token_fails(
        &w,
        &[
            "`team`",
            "user `wbl-test-other`",
            "not by you or root",
            "nothing was sent",
        ],
    );
    // A restarted agent (token in the keychain) refuses too, and keeps the token.
    w.stop_agent();
    token_fails(&w, &["user `wbl-test-other`", "nothing was sent"]);
    // Logging in sends no password there.
    let o = login(&w, PASSWORD);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("user `wbl-test-other`"),
        "{}",
        stderr(&o)
    );
    // doctor's probe (from the client) is refused as well.
    let (verdict, detail) = doctor_openbao(&w);
    assert_ne!(verdict, "ok");
    assert!(detail.contains("wbl-test-other"), "{detail}");

    let sent = attacker.requests();
    assert_eq!(sent, "", "the attacker was sent a request");
    assert_eq!(
        w.secret_tool_lookup("openbao://team", &bao.addr).as_deref(),
        Some(saved.as_str()),
        "the saved token was deleted"
    );
    w.stop_agent();
}

#[test]
fn a_token_saved_without_its_address_is_sent_nowhere_until_the_next_login() {
    let bao = team_server();
    let k1 = key(2203);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new_as(Backend::Keyutils, users::user());
    // What wbl before this change kept: user name `token`, no address.
    let old = bao.token("rw", "1h");
    let desc = format!("{}:token@openbao://team", w.namespace);
    let o = w
        .raw_cmd("keyctl")
        .args(["add", "user", &desc, &old, "@u"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let own = Listener::start(&users::user());
    write_config(&w, &own.address());
    token_fails(
        &w,
        &[
            "not logged in at this address",
            "older wbl",
            "wbl openbao login team",
        ],
    );
    assert!(!own.requests().contains(&old), "{}", own.requests());
    assert!(w.keyctl_lookup("openbao://team", "token").is_some());

    // A login replaces it with a token bound to the address.
    write_config(&w, &bao.addr);
    token_fails(&w, &["older wbl"]);
    let o = login(&w, PASSWORD);
    assert!(o.status.success(), "{}", stderr(&o));
    token_is(&w, &k1);
    assert!(w.keyctl_lookup("openbao://team", "token").is_none());
    assert!(w.keyctl_lookup("openbao://team", &bao.addr).is_some());
    w.stop_agent();
}
