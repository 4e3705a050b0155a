//! The key-injecting proxy (`wbl exec --proxy`) with the real W&B SDK (wandb 0.31.0 from the
//! test venv) against the fake W&B server (`fake_wandb::api`): the public API and an online
//! run reach the server with the real key while the program, its environment, its files and
//! its output hold only the placeholder; requests without it, or off the API, are refused and
//! logged.

#![cfg(target_os = "linux")]

#[path = "support/accesslog.rs"]
mod accesslog_support;
mod common;
mod fake_wandb;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

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
    let server = FakeApi::start(&k, "ada");
    ok(w.wbl(&["login", "--host", &server.url, &k]));
    let work = w.home().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut c = w.cmd(WBL);
    c.args(["exec", "--proxy", "--host", &server.url, "--"])
        .arg(wandb_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    common::sdk_offline_env(&mut c);
    c.env("WANDB_DIR", &work).env_remove("WANDB_API_KEY");
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let ready = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.wait();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!(
                "the script ended early: {printed}{err}\nthe server saw: {:#?}",
                server.hits()
            );
        };
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("ready ") {
            break line;
        }
    };
    assert!(printed.contains("viewer ada"), "{printed}");
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

    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    for line in lines.map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{printed}{err}");
    assert!(printed.contains("done"), "{printed}{err}");

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

    // After the run the proxy is gone: nothing listens on its port.
    assert!(request(&base, "POST", "/graphql", Some(&placeholder)).is_err());

    // The access log: the key's use by the proxy, and the three refusals.
    let entries = accesslog_support::wait_entries(&w, 5);
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
}
