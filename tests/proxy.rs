//! The key-injecting proxy (`wbl exec --proxy`) with the real W&B SDK (wandb 0.31.0 from the
//! test venv) against the fake W&B server (`fake_wandb::api`): the public API and an online
//! run reach the server with the real key while the program, its environment, its files and
//! its output hold only the placeholder; requests without it, or off the API, are refused and
//! logged. Then the same through `wbl ssh --proxy` against a real sshd on 127.0.0.1, with a
//! remote environment that has no `wbl` at all, while another user of the remote, connecting
//! to the forwarded port without the placeholder, is refused.

#![cfg(target_os = "linux")]

#[path = "support/accesslog.rs"]
mod accesslog_support;
mod common;
mod fake_wandb;
#[path = "support/remote.rs"]
mod remote;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;

use common::users;
use common::*;
use fake_wandb::api::FakeApi;

/// The SDK script: the public API's viewer, then an online run with three history rows. It
/// prints its pid and the key it was given, and waits for `go` before it finishes, so that the
/// test can look at it (and at the proxy) while it runs.
const SCRIPT: &str = r#"
import os, sys, json
import wandb
print("viewer", wandb.Api().viewer.username, flush=True)
run = wandb.init(project="proj", entity="ada", name="run1")
for i in range(3):
    run.log({"loss": 1.0 / (i + 1)})
with open(os.path.join(os.environ["WANDB_DIR"], "env.json"), "w") as f:
    json.dump(dict(os.environ), f)
print("ready", os.getpid(), os.environ["WANDB_BASE_URL"], os.environ["WANDB_API_KEY"], flush=True)
sys.stdin.readline()
run.finish()
print("done", flush=True)
"#;

/// The SDK script's run, started by `wbl exec --proxy` or `wbl ssh --proxy`: its stdin (for
/// `go`), its stdout line by line and what it printed so far.
struct Script {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    printed: String,
}

impl Script {
    fn start(c: &mut std::process::Command) -> Script {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Script {
            child,
            stdin,
            lines,
            printed: String::new(),
        }
    }

    /// Reads up to the script's `ready` line and returns it; if the script ends first, panics
    /// with what it printed and `context()` (what the servers saw).
    fn ready(&mut self, context: impl Fn() -> String) -> String {
        loop {
            let Some(Ok(line)) = self.lines.next() else {
                let _ = self.child.wait();
                let err = self.stderr();
                panic!(
                    "the script ended early: {}{err}\n{}",
                    self.printed,
                    context()
                );
            };
            self.printed.push_str(&line);
            self.printed.push('\n');
            if line.starts_with("ready ") {
                return line;
            }
        }
    }

    /// Lets the script finish (`go`), checks that it did, and returns what it printed on
    /// stdout and on stderr.
    fn finish(mut self) -> (String, String) {
        writeln!(self.stdin, "go").unwrap();
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        for line in self.lines.map_while(Result::ok) {
            self.printed.push_str(&line);
            self.printed.push('\n');
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let printed = self.printed;
        assert!(status.success(), "{printed}{err}");
        assert!(printed.contains("done"), "{printed}{err}");
        (printed, err)
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

/// One HTTP/1.1 request to `base` (`http://127.0.0.1:PORT`) on a fresh connection: the status
/// and the body, or the connection error.
fn request(
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = auth {
        head.push_str(&format!("Authorization: {}\r\n", fake_wandb::basic(k)));
    }
    head.push_str("Content-Length: 2\r\n\r\n{}");
    s.write_all(head.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((status, body))
}

#[test]
fn the_sdk_through_wbl_exec_proxy_never_holds_the_key() {
    let w = World::new(Backend::SecretService);
    let k = key(61);
    let server = logged_in_to_fake(&w, &k);
    let work = w.home().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut c = w.cmd(WBL);
    c.args(["exec", "--proxy", "--host", &server.url, "--"])
        .arg(wandb_python())
        .args(["-c", SCRIPT]);
    common::sdk_offline_env(&mut c);
    c.env("WANDB_DIR", &work).env_remove("WANDB_API_KEY");
    let mut script = Script::start(&mut c);
    let ready = script.ready(|| format!("the server saw: {:#?}", server.hits()));
    assert!(script.printed.contains("viewer ada"), "{}", script.printed);
    let words: Vec<&str> = ready.split_whitespace().collect();
    let (pid, base, placeholder) = (words[1], words[2].to_owned(), words[3].to_owned());
    assert!(placeholder.starts_with("wblproxy-"), "{placeholder}");
    assert_eq!(placeholder.len(), "wblproxy-".len() + 64);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // While it runs: its environment (as /proc shows it) holds the placeholder, no process the
    // key.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains(&format!("WANDB_API_KEY={placeholder}")));
    assert!(!environ.contains(&k));
    assert!(processes_with_env(&format!("WANDB_API_KEY={k}")).is_empty());

    // Refused: another placeholder, none, a path off the API; each is logged.
    let wrong = format!("wblproxy-{}", "0".repeat(64));
    let (status, body) = request(&base, "POST", "/graphql", Some(&wrong)).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("placeholder"), "{body}");
    let (status, _) = request(&base, "POST", "/graphql", None).unwrap();
    assert_eq!(status, 401);
    let (status, body) = request(&base, "GET", "/admin/keys", Some(&placeholder)).unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, _) = request(&base, "GET", "/files/../admin", Some(&placeholder)).unwrap();
    assert!(status == 403 || status == 400, "{status}");

    let (printed, err) = script.finish();

    // The server saw the real key on every API request, and the run's history and files.
    let hits = server.hits();
    let api: Vec<_> = hits.iter().filter(|h| h.port == "api").collect();
    assert!(!api.is_empty());
    for h in &api {
        assert_eq!(h.key.as_deref(), Some(k.as_str()), "{h:?}");
    }
    for h in hits.iter().filter(|h| h.port == "upload") {
        assert_eq!(h.authorization, None, "signed URLs get no key: {h:?}");
    }
    assert!(
        api.iter().any(|h| h.path.ends_with("/file_stream")),
        "{api:#?}"
    );
    let history = server.history();
    assert_eq!(history.len(), 3, "{history:?}\n{api:#?}");
    assert!(history[2].contains("\"loss\""), "{history:?}");
    assert!(server.completed());

    // Its output and files hold the placeholder at most, never the key.
    assert!(!printed.contains(&k) && !err.contains(&k));
    assert!(
        w.files_containing(&k).is_empty(),
        "{:?}",
        w.files_containing(&k)
    );
    let env_file = std::fs::read_to_string(work.join("env.json")).unwrap();
    assert!(env_file.contains(&placeholder));

    // After the run the placeholder opens nothing: the port still answers for a while, to
    // refuse it (and log that) as ended.
    let (status, body) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("has ended") && body.contains("placeholder key no longer works"),
        "{body}"
    );

    // The access log: the key's use by the proxy, and the five refusals, each naming this
    // test's program, which sent them.
    wait_refusals(&w, 5);
    let entries = accesslog_support::entries(&w);
    let proxy_get = entries
        .iter()
        .find(|e| e["use"] == "proxy")
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(proxy_get["op"], "get");
    assert!(
        proxy_get["command"].as_str().unwrap().starts_with("exec:"),
        "{proxy_get}"
    );
    let refused: Vec<_> = entries.iter().filter(|e| e["op"] == "proxy").collect();
    let codes: Vec<_> = refused
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.iter().filter(|c| **c == "placeholder").count() >= 2,
        "{refused:#?}"
    );
    assert!(codes.contains(&"path"), "{refused:#?}");
    assert!(refused.iter().all(|e| e["result"] == "refused"));
    assert!(
        refused.iter().any(|e| e["command"] == "GET /admin/keys"),
        "{refused:#?}"
    );
    let late = refused
        .iter()
        .find(|e| e["code"] == "ended")
        .unwrap_or_else(|| panic!("{refused:#?}"));
    assert_eq!(late["command"], "POST /graphql", "{late}");
    let me = accesslog_support::real(std::env::current_exe().unwrap());
    for e in &refused {
        assert_eq!(e["exe"], me.as_str(), "{e}");
        assert_eq!(e["pid"], std::process::id(), "{e}");
        assert_eq!(e["check"], "socket", "{e}");
    }
}

/// Refused requests while a proxy serves the world's user: whose program sent them is named
/// when it is the user's own; another user of the machine is named by uid only, also when it
/// comes after the run, while the port still refuses as ended.
#[test]
fn a_refusal_names_the_users_program_or_only_another_users_uid() {
    let (user, other) = (users::user(), users::other());
    let w = World::new_as(Backend::Keyutils, user.clone());
    let k = key(65);
    let server = logged_in_to_fake(&w, &k);
    let (mut child, base, _) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let port = base.rsplit(':').next().unwrap().to_owned();
    let python = "/usr/bin/python3";
    let knock = |mut c: std::process::Command| {
        let out = c.args(["-c", OTHER_USER, &port]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "status 401\nstatus 401\n", "{}", stderr(&out));
    };
    knock(w.raw_cmd(python));
    knock(other.command(python));
    writeln!(child.stdin.take().unwrap(), "done").unwrap();
    assert!(child.wait().unwrap().success());
    knock(other.command(python));

    let refused = wait_refusals(&w, 6);
    let of = |uid: u32| -> Vec<&serde_json::Value> {
        refused.iter().filter(|e| e["uid"] == uid).collect()
    };
    let mine = of(user.uid);
    assert_eq!(mine.len(), 2, "{refused:#?}");
    for e in mine {
        assert_eq!(e["exe"], accesslog_support::real(python).as_str(), "{e}");
        assert!(e["pid"].as_u64().is_some(), "{e}");
        assert_eq!(
            (&e["code"], &e["check"]),
            (&"placeholder".into(), &"socket".into())
        );
    }
    let theirs = of(other.uid);
    assert_eq!(theirs.len(), 4, "{refused:#?}");
    for e in &theirs {
        assert!(e["exe"].is_null() && e["pid"].is_null(), "{e}");
        assert!(e["parents"].as_array().unwrap().is_empty(), "{e}");
        assert_eq!(e["check"], "socket", "{e}");
    }
    let codes: Vec<_> = theirs.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["placeholder", "placeholder", "ended", "ended"],
        "{theirs:#?}"
    );
    // `wbl log` says it is another user.
    let table = stdout(&ok(w.wbl(&["log"])));
    assert!(
        table.contains(&format!(
            "another user (uid {}) to the proxy: POST /graphql",
            other.uid
        )),
        "{table}"
    );
}

/// The proxy's refusals in the access log, once there are `n` (waiting, bounded, for those
/// the agent writes off the request path).
fn wait_refusals(w: &World, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..500 {
        let refused: Vec<_> = accesslog_support::entries(w)
            .into_iter()
            .filter(|e| e["op"] == "proxy")
            .collect();
        if refused.len() >= n {
            return refused;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "fewer than {n} refusals: {:#?}",
        accesslog_support::entries(w)
    );
}

/// Pids of processes whose argument list holds `needle` (every user of a machine may read
/// them).
fn processes_with_arg(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && cmdline
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// What another user of the remote does: connects to the forwarded port and asks for the
/// viewer, without the placeholder and with a guessed one; prints each status.
const OTHER_USER: &str = r#"
import socket, sys, base64
port = int(sys.argv[1])
for auth in [None, "api:wblproxy-" + "0" * 64]:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 2\r\n"
    if auth:
        head += "Authorization: Basic " + base64.b64encode(auth.encode()).decode() + "\r\n"
    s.sendall((head + "\r\n{}").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    print("status", data.split(b" ")[1].decode(), flush=True)
"#;

#[test]
fn the_sdk_through_wbl_ssh_proxy_on_a_remote_without_wbl() {
    let (w, k, server) = logged_in_with(remote::unique_key("px"));
    let sshd = sshd::Sshd::start();
    let remote_home = tempfile::Builder::new()
        .prefix("wbl-remote-")
        .tempdir()
        .unwrap();
    let rh = remote_home.path();
    std::fs::create_dir_all(rh.join("work")).unwrap();
    // The remote: an empty HOME, a PATH without wbl, the SDK by its path; the three variables
    // come from wbl's wrapper.
    let remote_command = format!(
        "cd {h} && env HOME={h} PATH=/usr/bin:/bin WANDB_DIR={h}/work NO_PROXY=127.0.0.1 \
         WANDB_ERROR_REPORTING=false WANDB_DISABLE_CODE=true {py} -c {script}",
        h = rh.display(),
        py = wandb_python().display(),
        script = remote::sq(SCRIPT)
    );
    let mut c = w.cmd(WBL);
    c.args(["ssh", "--proxy", "--"])
        .args(sshd.ssh_args())
        .arg(&remote_command);
    // The W&B host is the one chosen where `wbl ssh` runs.
    c.env("WANDB_BASE_URL", &server.url);
    let mut script = Script::start(&mut c);
    let ready =
        script.ready(|| format!("sshd: {}\nthe server saw: {:#?}", sshd.log(), server.hits()));
    assert!(script.printed.contains("viewer ada"), "{}", script.printed);
    let words: Vec<&str> = ready.split_whitespace().collect();
    let (pid, base, placeholder) = (words[1], words[2].to_owned(), words[3].to_owned());
    assert!(placeholder.starts_with("wblproxy-"), "{placeholder}");
    let port = base.rsplit(':').next().unwrap().to_owned();

    // On the remote: the environment has the placeholder, no argument list has it or the key.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains(&format!("WANDB_API_KEY={placeholder}")));
    assert!(processes_with_arg(&placeholder).is_empty());
    assert!(processes_with_arg(&k).is_empty());
    assert!(processes_with_env(&format!("WANDB_API_KEY={k}")).is_empty());

    // Another user of the remote reaches the port, but not the API.
    let out = users::other()
        .command("/usr/bin/python3")
        .args(["-c", OTHER_USER, &port])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "status 401\nstatus 401\n", "{}", stderr(&out));

    let (printed, err) = script.finish();

    let hits = server.hits();
    for h in hits.iter().filter(|h| h.port == "api") {
        assert_eq!(h.key.as_deref(), Some(k.as_str()), "{h:?}");
    }
    assert_eq!(server.history().len(), 3, "{hits:#?}");
    assert!(server.completed());
    assert!(!printed.contains(&k) && !err.contains(&k));
    // Nothing of the session is left on the remote (the private directory with the
    // placeholder's file) or beside the agent (the proxy's socket).
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_dir(e.path())
                .is_ok_and(|mut d| d.any(|f| f.is_ok_and(|f| f.file_name() == "key")))
                && e.file_name().to_string_lossy().starts_with("wbl-fwd-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let sockets: Vec<_> = std::fs::read_dir(w.socket().parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".fwd-proxy."))
        .collect();
    assert!(sockets.is_empty(), "{sockets:?}");
    let entries = accesslog_support::wait_entries(&w, 3);
    assert!(
        entries
            .iter()
            .any(|e| e["op"] == "proxy" && e["code"] == "placeholder"),
        "{entries:#?}"
    );
}

/// A run file whose `url` names the real API origin (a local W&B server's files): the SDK
/// downloads it from that URL directly.
#[test]
fn a_run_file_url_on_the_api_origin_is_downloaded_through_the_proxy() {
    let w = World::new(Backend::SecretService);
    let k = key(62);
    let server = logged_in_to_fake(&w, &k);
    let work = w.home().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = r#"
import os, wandb
run = wandb.Api().run("ada/proj/run1")
f = run.file("out.txt")
print("url", f.url, flush=True)
f.download(root=os.environ["WANDB_DIR"], replace=True)
print("got", open(os.path.join(os.environ["WANDB_DIR"], "out.txt")).read().strip(), flush=True)
"#;
    let mut c = w.cmd(WBL);
    c.args(["exec", "--proxy", "--host", &server.url, "--"])
        .arg(wandb_python())
        .args(["-c", script]);
    common::sdk_offline_env(&mut c);
    c.env("WANDB_DIR", &work).env_remove("WANDB_API_KEY");
    let out = c.output().unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("got file contents"),
        "{}{}\n{:#?}",
        stdout(&out),
        stderr(&out),
        server.hits()
    );
    // The printed URL is the proxy's; the download reached the server with the key.
    assert!(!stdout(&out).contains(&server.url), "{}", stdout(&out));
    assert!(
        server.hits().iter().any(|h| h.method == "GET"
            && h.path.ends_with("/out.txt")
            && h.key.as_deref() == Some(k.as_str())),
        "{:#?}",
        server.hits()
    );
}

/// Polls the proxy (with the placeholder) until it refuses; prints each status change.
const UNTIL_ENDED: &str = r#"
import os, socket, sys, base64, time
port = int(os.environ["WANDB_BASE_URL"].rsplit(":", 1)[1])
auth = base64.b64encode(("api:" + os.environ["WANDB_API_KEY"]).encode()).decode()
body = '{"query":"query Viewer { viewer { id } }"}'
seen = None
for _ in range(600):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               "Authorization: Basic " + auth + "\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    status = data.split(b" ")[1].decode()
    if status != seen:
        print("status", status, flush=True)
        seen = status
    if status == "401":
        print(data.split(b"\r\n\r\n", 1)[1].decode(), flush=True)
        break
    time.sleep(0.1)
"#;

#[test]
fn a_proxy_past_its_ttl_refuses_while_the_session_goes_on() {
    let (w, k, server) = logged_in_with(remote::unique_key("pt"));
    let sshd = sshd::Sshd::start();
    let remote_command = format!(
        "env PATH=/usr/bin:/bin /usr/bin/python3 -c {}",
        remote::sq(UNTIL_ENDED)
    );
    let mut c = w.cmd(WBL);
    c.args(["ssh", "--proxy", "--ttl", "2s", "--"])
        .args(sshd.ssh_args())
        .arg(&remote_command)
        .env("WANDB_BASE_URL", &server.url);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("status 200\nstatus 401\n"), "{text}");
    assert!(text.contains("placeholder key no longer works"), "{text}");
    let entries = accesslog_support::wait_entries(&w, 3);
    assert!(
        entries
            .iter()
            .any(|e| e["op"] == "proxy" && e["code"] == "ended"),
        "{entries:#?}"
    );
    // Before the TTL the server got the key; after it, nothing more.
    assert!(
        server
            .hits()
            .iter()
            .all(|h| h.key.as_deref() == Some(k.as_str()))
    );
}

#[test]
fn no_key_no_proxy_and_the_command_does_not_run() {
    let w = World::new(Backend::Keyutils);
    let marker = w.home().join("ran");
    let out = w.wbl(&[
        "exec",
        "--proxy",
        "--host",
        "http://127.0.0.1:9",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no API key stored for http://127.0.0.1:9; run `wbl login --host"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists());
    // A plain-http upstream that is not loopback is refused before any key is read.
    ok(w.wbl(&["login", "--host", "http://wandb.example.test", &key(63)]));
    let out = w.wbl(&[
        "exec",
        "--proxy",
        "--host",
        "http://wandb.example.test",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("plain http only to a loopback address"),
        "{}",
        stderr(&out)
    );
}

/// `wbl ssh --proxy --hold NAME`: a named proxy socket for a `RemoteForward`, and the
/// variables for the remote on stdout; it serves until SIGTERM, then its socket is gone.
#[test]
fn hold_keeps_a_named_proxy_socket_for_ssh_config() {
    use std::os::unix::net::UnixStream;
    let (w, k, server) = logged_in(64);
    let mut c = w.cmd(WBL);
    c.args(["ssh", "--proxy", "--hold", "gpu", "--proxy-port", "48123"])
        .env("WANDB_BASE_URL", &server.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = std::collections::HashMap::new();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let (name, value) = line
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .unwrap_or_else(|| panic!("{line}"));
        vars.insert(name.to_owned(), value.trim_matches('\'').to_owned());
    }
    assert_eq!(vars["WANDB_BASE_URL"], "http://127.0.0.1:48123");
    let placeholder = vars["WANDB_API_KEY"].clone();
    assert!(placeholder.starts_with("wblproxy-"), "{vars:?}");
    let socket = PathBuf::from(format!("{}.fwd-proxy.gpu", w.socket().display()));
    // What ssh's RemoteForward does: carry the remote's connection to that socket.
    let mut s = UnixStream::connect(&socket).unwrap();
    let body = r#"{"query":"query Viewer { viewer { id } }"}"#;
    write!(
        s,
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:48123\r\nConnection: close\r\n\
         Authorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        fake_wandb::basic(&placeholder),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        server
            .hits()
            .iter()
            .any(|h| h.key.as_deref() == Some(k.as_str()))
    );
    common::terminate(child.id());
    let _ = child.wait().unwrap();
    assert!(!socket.exists(), "the named socket goes with the hold");
}

/// `--allow` with `--proxy`: git's host is served over a forward as `wbl ssh` serves it, while
/// the W&B key stays behind the proxy (the forward does not grant its host).
#[test]
fn allow_with_proxy_forwards_other_hosts_but_never_the_wandb_key() {
    let (w, k, server) = logged_in_with(remote::unique_key("pa"));
    let git = remote::unique_key("pg");
    let mut c = w.cmd(WBL);
    c.args(["credential", "store"]);
    let input = format!("protocol=https\nhost=git.other.test\nusername=alice\npassword={git}\n\n");
    ok(run_with_stdin(c, input.as_bytes()));
    let sshd = sshd::Sshd::start();
    let home = tempfile::Builder::new()
        .prefix("wbl-remote-")
        .tempdir()
        .unwrap();
    let script = "printf 'protocol=https\\nhost=git.other.test\\n\\n' | \"$WBL\" credential get; \
         \"$WBL\" token --host \"$WANDB_REAL\" >/dev/null 2>&1 && echo wandb=given || echo wandb=refused; \
         echo key=$WANDB_API_KEY";
    let remote_command = format!(
        "env -i HOME={h} PATH=/usr/bin:/bin XDG_RUNTIME_DIR={h}/run WBL={wbl} \
         WANDB_REAL={url} WBL_SOCKET=\"$WBL_SOCKET\" WANDB_API_KEY=\"$WANDB_API_KEY\" sh -c {s}",
        h = home.path().display(),
        wbl = WBL,
        url = server.url,
        s = remote::sq(script)
    );
    let mut c = w.cmd(WBL);
    c.args(["ssh", "--proxy", "--allow", "git.other.test", "--"])
        .args(sshd.ssh_args())
        .arg(&remote_command)
        .env("WANDB_BASE_URL", &server.url);
    let out = c.output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("password={git}")), "{text}");
    assert!(text.contains("wandb=refused"), "{text}");
    assert!(text.contains("key=wblproxy-"), "{text}");
    assert!(!text.contains(&k), "{text}");
}

/// A fake W&B server that knows `k`, and `w` logged in to it with that key.
fn logged_in_to_fake(w: &World, k: &str) -> FakeApi {
    let server = FakeApi::start(k, "ada");
    ok(w.wbl(&["login", "--host", &server.url, k]));
    server
}

/// A world whose key `key(n)` the fake W&B server knows, logged in to it.
fn logged_in(n: u32) -> (World, String, FakeApi) {
    logged_in_with(key(n))
}

/// A world whose key `k` the fake W&B server knows, logged in to it.
fn logged_in_with(k: String) -> (World, String, FakeApi) {
    let w = World::new(Backend::Keyutils);
    let server = logged_in_to_fake(&w, &k);
    (w, k, server)
}

fn wait_no_engines(agent: u32) {
    for _ in 0..1000 {
        if proxy_engines_of(agent).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "the agent's proxy engines did not exit: {:?}",
        proxy_engines_of(agent)
    );
}

#[test]
fn a_proxy_is_served_by_a_process_of_its_own_that_never_outlives_the_agent() {
    let (w, k, server) = logged_in(26_101);
    let agent = w.agent_pid().expect("login started the agent");
    assert!(proxy_engines_of(agent).is_empty());

    // While the proxy is open its engine, a child of the agent, serves it.
    let (mut child, base, placeholder) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let engines = proxy_engines_of(agent);
    assert_eq!(engines.len(), 1, "{engines:?}");
    let (status, body) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
    assert_eq!(status, 200, "{body}");
    let port = base.rsplit(':').next().unwrap();
    let engine_fds = open_sockets(engines[0]);
    let listening = listening_inode(port).expect("the proxy's port is listening");
    assert!(engine_fds.contains(&listening), "the engine holds the port");
    assert!(
        !open_sockets(agent).contains(&listening),
        "the agent itself does not listen on the proxy's port"
    );

    // The command ends: the engine lingers to refuse (and log) what still comes.
    writeln!(child.stdin.take().unwrap(), "done").unwrap();
    assert!(child.wait().unwrap().success());
    let (status, body) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(proxy_engines_of(agent), engines);

    // The agent stops: its engines go with it, without waiting out their grace.
    ok(w.wbl(&["agent", "stop"]));
    wait_gone(agent);
    wait_no_engines(agent);
    wait_gone(engines[0]);

    // An agent killed outright (no chance to end anything) leaves no engine behind either:
    // an engine exits when the agent's end of its pipe closes.
    let (mut child, base, placeholder) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let agent = w.agent_pid().expect("`wbl exec` started the agent");
    let engines = proxy_engines_of(agent);
    assert_eq!(engines.len(), 1, "{engines:?}");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &agent.to_string()])
        .status();
    wait_gone(agent);
    wait_gone(engines[0]);
    assert!(
        request(&base, "POST", "/graphql", Some(&placeholder)).is_err(),
        "nothing listens on the port any more"
    );
    let _ = child.kill();
    let _ = child.wait();
    // The server only ever saw the key.
    assert!(
        server
            .hits()
            .iter()
            .all(|h| h.key.as_deref() == Some(k.as_str()))
    );
}

/// The inodes of the sockets `pid` has open.
fn open_sockets(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The inode of the socket listening on 127.0.0.1:`port` (`/proc/net/tcp`, state 0A).
fn listening_inode(port: &str) -> Option<u64> {
    let port: u16 = port.parse().ok()?;
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .ok()?
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
        .and_then(|f| f[9].parse().ok())
}

#[test]
fn the_engine_is_closed_to_the_users_other_processes_like_the_agent() {
    let user = users::user();
    let w = World::new_as(Backend::Keyutils, user.clone());
    let k = key(26_102);
    let server = logged_in_to_fake(&w, &k);
    let (mut child, base, placeholder) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let agent = w.agent_pid().expect("login started the agent");
    let engines = proxy_engines_of(agent);
    assert_eq!(engines.len(), 1, "{engines:?}");
    let (status, body) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
    assert_eq!(status, 200, "{body}");
    // Same user, but not dumpable: its environment and memory are root's to read, not ours;
    // its grant came on a pipe, so its command line holds nothing either.
    for pid in [agent, engines[0]] {
        for f in ["environ", "mem"] {
            let out = user
                .command("cat")
                .arg(format!("/proc/{pid}/{f}"))
                .output()
                .unwrap();
            assert!(
                !out.status.success() && stderr(&out).contains("Permission denied"),
                "{pid} {f}: {}",
                stderr(&out)
            );
        }
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", engines[0])).unwrap();
    assert_eq!(cmdline, b"wbl-agent\0--proxy-engine\0");
    writeln!(child.stdin.take().unwrap(), "done").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_engine_that_dies_takes_only_its_own_proxy_with_it() {
    let (w, _, server) = logged_in(26_103);
    let (mut first, base, placeholder) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let agent = w.agent_pid().expect("`wbl exec` started the agent");
    let (mut second, base2, placeholder2) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let engines = proxy_engines_of(agent);
    assert_eq!(engines.len(), 2, "{engines:?}");
    // The first proxy's engine is the one holding its port.
    let port = base.rsplit(':').next().unwrap();
    let listening = listening_inode(port).expect("the first proxy listens");
    let victim = *engines
        .iter()
        .find(|e| open_sockets(**e).contains(&listening))
        .expect("an engine holds the first port");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status();
    wait_gone(victim);
    // Its program now finds nothing there; the other proxy, the agent and new proxies work.
    assert!(request(&base, "POST", "/graphql", Some(&placeholder)).is_err());
    let (status, body) = request(&base2, "POST", "/graphql", Some(&placeholder2)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.agent_pid(), Some(agent));
    let (mut third, base3, placeholder3) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let (status, body) = request(&base3, "POST", "/graphql", Some(&placeholder3)).unwrap();
    assert_eq!(status, 200, "{body}");
    for c in [&mut first, &mut second, &mut third] {
        writeln!(c.stdin.take().unwrap(), "done").unwrap();
        assert!(c.wait().unwrap().success());
    }
}

#[test]
fn a_proxy_adds_the_key_of_the_account_asked_for() {
    let w = World::new(Backend::Keyutils);
    let (k_default, k_work) = (key(26_104), key(26_105));
    let server = FakeApi::start(&k_work, "ada");
    ok(w.wbl(&["login", "--host", &server.url, &k_default]));
    ok(w.wbl(&["login", "--host", &server.url, "--account", "work", &k_work]));
    // Two accounts and none chosen: no proxy, and the command does not run.
    let mut c = w.cmd(WBL);
    c.args([
        "exec",
        "--proxy",
        "--host",
        &server.url,
        "--",
        "sh",
        "-c",
        "echo ran",
    ]);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(!stdout(&out).contains("ran"), "{}", stdout(&out));
    assert!(stderr(&out).contains("--account NAME"), "{}", stderr(&out));
    for (account, expected, status) in [("default", &k_default, 401), ("work", &k_work, 200)] {
        let (mut child, base, placeholder) =
            hold_proxy(w.cmd(WBL), &["--host", &server.url, "--account", account]);
        let (got, body) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
        assert_eq!(got, status, "{account:?}: {body}");
        let last = server.hits().pop().expect("the server saw the request");
        assert_eq!(last.key.as_deref(), Some(expected.as_str()), "{account:?}");
        writeln!(child.stdin.take().unwrap(), "done").unwrap();
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn wbl_status_lists_the_proxies_and_never_their_placeholders() {
    let (w, _, server) = logged_in(26_106);
    let (mut child, base, placeholder) = hold_proxy(w.cmd(WBL), &["--host", &server.url]);
    let status = |w: &World| -> serde_json::Value {
        let out = ok(w.wbl(&["status", "--json"]));
        assert!(!stdout(&out).contains(&placeholder));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let listed = status(&w)["proxies"].clone();
    let address = base.strip_prefix("http://").unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");
    assert_eq!(listed[0]["address"], address, "{listed:#}");
    assert_eq!(listed[0]["account"], "default", "{listed:#}");
    assert_eq!(listed[0]["ended"], false, "{listed:#}");
    assert!(
        listed[0]["destination"]
            .as_str()
            .is_some_and(|d| d.starts_with("exec:")),
        "{listed:#}"
    );
    let text = stdout(&ok(w.wbl(&["status"])));
    assert!(
        text.contains("proxies:") && text.contains(address),
        "{text}"
    );
    assert!(!text.contains(&placeholder), "{text}");

    // Ended: still listed while its port refuses late requests, with what it refused.
    writeln!(child.stdin.take().unwrap(), "done").unwrap();
    assert!(child.wait().unwrap().success());
    let (got, _) = request(&base, "POST", "/graphql", Some(&placeholder)).unwrap();
    assert_eq!(got, 401);
    let _ = wait_refusals(&w, 1);
    let listed = status(&w)["proxies"].clone();
    assert_eq!(listed[0]["ended"], true, "{listed:#}");
    assert_eq!(listed[0]["refused"], 1, "{listed:#}");
    let text = stdout(&ok(w.wbl(&["status"])));
    assert!(text.contains("ended, refusing late requests"), "{text}");
}
