//! `wbl credential` as a git credential helper, driven by the real git (`git credential
//! fill|approve|reject`, `git clone`/`git push` over HTTP with Basic auth) against the real agent,
//! a private gnome-keyring or the kernel keyring. git never sees the developer's config: HOME is
//! the world's, there is no system config and the global config is a file of the world.

#![cfg(target_os = "linux")]

mod common;
#[path = "support/git_http.rs"]
mod git_http;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The helper as a git config value: wbl's absolute path, quoted for the shell.
fn helper() -> String {
    format!("!'{WBL}' credential")
}

fn git(w: &World) -> Command {
    let mut c = w.cmd("git");
    isolate_git(&mut c, w);
    c.env("PATH", path_with_bins());
    c
}

/// `git -c credential.helper=<wbl> [-c extra]… credential <op>` with `input` on stdin.
fn git_credential(w: &World, op: &str, input: &str, config: &[&str]) -> Output {
    let mut c = git(w);
    c.args(["-c", &format!("credential.helper={}", helper())]);
    for kv in config {
        c.args(["-c", kv]);
    }
    c.args(["credential", op]);
    run_with_stdin(c, input.as_bytes())
}

/// `git credential fill`: the attributes git answers with, or `None` when git found no
/// credential (with prompts disabled, that is a failure).
fn fill_with(w: &World, input: &str, config: &[&str]) -> Option<HashMap<String, String>> {
    let out = git_credential(w, "fill", input, config);
    if !out.status.success() {
        assert!(
            stderr(&out).contains("terminal prompts disabled")
                || stderr(&out).contains("could not read"),
            "unexpected failure: {}",
            stderr(&out)
        );
        return None;
    }
    Some(attrs(&stdout(&out)))
}

fn fill(w: &World, input: &str) -> Option<HashMap<String, String>> {
    fill_with(w, input, &[])
}

fn password(w: &World, input: &str) -> Option<String> {
    fill(w, input).and_then(|a| a.get("password").cloned())
}

fn approve(w: &World, input: &str) {
    ok(git_credential(w, "approve", input, &[]));
}

fn reject(w: &World, input: &str) {
    ok(git_credential(w, "reject", input, &[]));
}

/// `wbl credential <op>` with raw bytes on stdin.
fn wbl_credential(w: &World, op: &str, input: &[u8]) -> Output {
    let mut c = w.cmd(WBL);
    c.args(["credential", op]);
    run_with_stdin(c, input)
}

fn attrs(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn store_then_get_through_git_and_the_keychain() {
    let w = World::new(Backend::SecretService);
    approve(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=pa55-word\n\
         oauth_refresh_token=refresh-me\npassword_expiry_utc=4102444800\n",
    );
    let a = fill(&w, "protocol=https\nhost=git.example.com\n").expect("a credential");
    assert_eq!(a["username"], "alice");
    assert_eq!(a["password"], "pa55-word");
    assert_eq!(a["oauth_refresh_token"], "refresh-me");
    assert_eq!(a["password_expiry_utc"], "4102444800");
    // It is in gnome-keyring, under the documented names.
    assert_eq!(
        w.secret_tool_lookup("https://git.example.com", "alice")
            .as_deref(),
        Some("pa55-word")
    );
    assert_eq!(
        w.secret_tool_lookup("https://git.example.com#oauth_refresh_token", "alice")
            .as_deref(),
        Some("refresh-me")
    );
    // A new agent knows it only from the keychain.
    let first = w.agent_pid().unwrap();
    w.stop_agent();
    assert_eq!(
        password(&w, "protocol=https\nhost=git.example.com\nusername=alice\n").as_deref(),
        Some("pa55-word")
    );
    assert_ne!(w.agent_pid(), Some(first));
    // Storing again replaces; no stale refresh token survives a credential without one.
    approve(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=new-word\n",
    );
    let a = fill(&w, "protocol=https\nhost=git.example.com\n").unwrap();
    assert_eq!(a["password"], "new-word");
    assert!(!a.contains_key("oauth_refresh_token"), "{a:?}");
    assert!(!a.contains_key("password_expiry_utc"), "{a:?}");
}

#[test]
fn reject_erases_but_not_a_newer_password() {
    let w = World::new(Backend::SecretService);
    let input = "protocol=https\nhost=git.example.com\nusername=alice\npassword=old\n";
    approve(&w, input);
    approve(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=new\n",
    );
    // git rejects the old password (say, after a 401): the newer one stays.
    reject(&w, input);
    assert_eq!(
        password(&w, "protocol=https\nhost=git.example.com\n").as_deref(),
        Some("new")
    );
    // Rejecting the current one removes it, from the keychain too.
    reject(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=new\n",
    );
    assert_eq!(password(&w, "protocol=https\nhost=git.example.com\n"), None);
    assert_eq!(
        w.secret_tool_lookup("https://git.example.com", "alice"),
        None
    );
    // Erase without a password removes every user's credential for the host.
    approve(
        &w,
        "protocol=https\nhost=h.example\nusername=a\npassword=1\n",
    );
    approve(
        &w,
        "protocol=https\nhost=h.example\nusername=b\npassword=2\n",
    );
    ok(wbl_credential(
        &w,
        "erase",
        b"protocol=https\nhost=h.example\n",
    ));
    assert_eq!(password(&w, "protocol=https\nhost=h.example\n"), None);
}

#[test]
fn erase_with_a_password_and_no_user_name_compares_each_candidate() {
    // git's credential-cache compares the password with every match, erasing only the ones
    // that hold it. Three users on one host (the first match holds the password, the second
    // does not), then a rejected password without a user name.
    let w = World::new(Backend::Keyutils);
    for (user, pw) in [("a", "pw-x"), ("b", "pw-other"), ("c", "pw-x")] {
        approve(
            &w,
            &format!("protocol=https\nhost=h.example\nusername={user}\npassword={pw}\n"),
        );
    }
    ok(wbl_credential(
        &w,
        "erase",
        b"protocol=https\nhost=h.example\npassword=pw-x\n",
    ));
    let left = |user: &str| {
        password(
            &w,
            &format!("protocol=https\nhost=h.example\nusername={user}\n"),
        )
    };
    assert_eq!(left("a"), None);
    assert_eq!(
        left("b").as_deref(),
        Some("pw-other"),
        "a credential holding another password was erased"
    );
    assert_eq!(left("c"), None);
    // A password nobody holds erases nothing.
    ok(wbl_credential(
        &w,
        "erase",
        b"protocol=https\nhost=h.example\npassword=nobody-has-it\n",
    ));
    assert_eq!(left("b").as_deref(), Some("pw-other"));
}

#[test]
fn wrong_username_gets_nothing() {
    let w = World::new(Backend::SecretService);
    approve(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=pw\n",
    );
    assert_eq!(
        password(&w, "protocol=https\nhost=git.example.com\nusername=bob\n"),
        None
    );
    let out = ok(wbl_credential(
        &w,
        "get",
        b"protocol=https\nhost=git.example.com\nusername=bob\n",
    ));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        password(&w, "protocol=https\nhost=git.example.com\nusername=alice\n").as_deref(),
        Some("pw")
    );
    // A username in the URL constrains the match just the same.
    assert_eq!(password(&w, "url=https://bob@git.example.com\n"), None);
    assert_eq!(
        password(&w, "url=https://alice@git.example.com/some/repo.git\n").as_deref(),
        Some("pw")
    );
}

#[test]
fn expired_password_is_not_returned() {
    let w = World::new(Backend::SecretService);
    let host = "protocol=https\nhost=git.example.com\n";
    approve(&w, &format!("{host}username=alice\npassword=valid\n"));
    // git itself refuses to store an expired credential, so store it the way a helper chain
    // would hand it over: straight to `wbl credential store`.
    ok(wbl_credential(
        &w,
        "store",
        format!("{host}username=alice\npassword=stale\npassword_expiry_utc=1000\n").as_bytes(),
    ));
    let out = ok(wbl_credential(&w, "get", host.as_bytes()));
    assert_eq!(stdout(&out), "", "an expired password is never returned");
    assert_eq!(password(&w, host), None);
    // Also not after a restart (the expiry lives in the keychain).
    w.stop_agent();
    assert_eq!(stdout(&ok(wbl_credential(&w, "get", host.as_bytes()))), "");
    // A future expiry is returned, with the expiry.
    approve(
        &w,
        &format!("{host}username=alice\npassword=fresh\npassword_expiry_utc=4102444800\n"),
    );
    let a = fill(&w, host).unwrap();
    assert_eq!(a["password"], "fresh");
    assert_eq!(a["password_expiry_utc"], "4102444800");
}

#[test]
fn hosts_ports_and_protocols_are_kept_apart() {
    let w = World::new(Backend::SecretService);
    for (proto, host, pw) in [
        ("https", "git.example.com", "one"),
        ("https", "git.example.com:8443", "two"),
        ("https", "other.example.org", "three"),
        ("http", "git.example.com", "four"),
    ] {
        approve(
            &w,
            &format!("protocol={proto}\nhost={host}\nusername=alice\npassword={pw}\n"),
        );
    }
    for (proto, host, pw) in [
        ("https", "git.example.com", Some("one")),
        ("https", "git.example.com:8443", Some("two")),
        ("https", "other.example.org", Some("three")),
        ("http", "git.example.com", Some("four")),
        ("https", "git.example.com:9999", None),
        ("https", "example.com", None),
    ] {
        assert_eq!(
            password(&w, &format!("protocol={proto}\nhost={host}\n")).as_deref(),
            pw,
            "{proto}://{host}"
        );
    }
    assert_eq!(
        password(&w, "url=https://git.example.com:8443/x.git\n").as_deref(),
        Some("two")
    );
}

#[test]
fn path_matters_only_with_use_http_path() {
    let w = World::new(Backend::SecretService);
    let per_path = ["credential.useHttpPath=true"];
    for (repo, pw) in [("team/a.git", "pw-a"), ("team/b.git", "pw-b")] {
        ok(git_credential(
            &w,
            "approve",
            &format!("url=https://alice:{pw}@git.example.com/{repo}\n"),
            &per_path,
        ));
    }
    let get = |repo: &str, config: &[&str]| {
        fill_with(&w, &format!("url=https://git.example.com/{repo}\n"), config)
            .map(|a| a["password"].clone())
    };
    assert_eq!(get("team/a.git", &per_path).as_deref(), Some("pw-a"));
    assert_eq!(get("team/b.git", &per_path).as_deref(), Some("pw-b"));
    assert_eq!(get("team/c.git", &per_path), None);
    // Without useHttpPath git sends no path, and a field constrains only when sent.
    let any = get("team/c.git", &[]).expect("some credential of the host");
    assert!(any == "pw-a" || any == "pw-b", "{any}");
    // Stored per path in the keychain.
    assert_eq!(
        w.secret_tool_lookup("https://git.example.com/team/b.git", "alice")
            .as_deref(),
        Some("pw-b")
    );
}

#[test]
fn long_and_non_ascii_values_round_trip() {
    let w = World::new(Backend::SecretService);
    let user = "jürgen-測試-😀";
    let pw: String = "ü€😀a-".repeat(2500);
    let token: String = "ß".repeat(3000);
    let host = "bücher.example:8443";
    let path = "dépôt/プロジェクト.git";
    let input = format!(
        "protocol=https\nhost={host}\npath={path}\nusername={user}\npassword={pw}\n\
         oauth_refresh_token={token}\n"
    );
    assert!(input.len() > 30_000);
    ok(git_credential(
        &w,
        "approve",
        &input,
        &["credential.useHttpPath=true"],
    ));
    let a = fill_with(
        &w,
        &format!("protocol=https\nhost={host}\npath={path}\n"),
        &["credential.useHttpPath=true"],
    )
    .unwrap();
    assert_eq!(a["username"], user);
    assert_eq!(a["password"], pw);
    assert_eq!(a["oauth_refresh_token"], token);
    assert_eq!(
        w.secret_tool_lookup(&format!("https://{host}/{path}"), user)
            .as_deref(),
        Some(pw.as_str())
    );
}

#[test]
fn garbage_and_huge_input_are_refused_and_the_agent_carries_on() {
    let w = World::new(Backend::SecretService);
    approve(
        &w,
        "protocol=https\nhost=h.example\nusername=u\npassword=pw\n",
    );
    let agent = w.agent_pid().expect("agent running");
    // 1 MiB of noise, newlines included.
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let noise_str = String::from_utf8_lossy(&noise);
    for op in ["get", "store", "erase"] {
        for (input, expect) in [
            (&noise[..], "larger than 64 KiB"),
            (
                &b"protocol=https\nhost=h.example\nnot an attribute\n"[..],
                "line 3 is not `key=value`",
            ),
            (
                &b"protocol=https\nhost=h\xff\n"[..],
                "line 2 is not valid UTF-8",
            ),
            (
                &b"protocol=https\nhost=h\0x\n"[..],
                "line 2 contains a NUL byte",
            ),
            (&b"url=no-scheme.example\n"[..], "has no scheme"),
            (&b"host=h.example\n"[..], "no `protocol` attribute"),
        ] {
            let out = wbl_credential(&w, op, input);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{op}: {err}");
            assert!(err.starts_with("wbl: error: "), "{op}: {err}");
            assert!(err.contains(expect), "{op}: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(!noise_str.contains(err.trim()), "no input echoed");
            assert_eq!(stdout(&out), "");
        }
    }
    // Same agent, same data.
    assert_eq!(w.agent_pid(), Some(agent));
    assert_eq!(
        password(&w, "protocol=https\nhost=h.example\n").as_deref(),
        Some("pw")
    );
}

#[test]
fn get_with_nothing_stored_prints_nothing() {
    let w = World::new(Backend::SecretService);
    let out = ok(wbl_credential(
        &w,
        "get",
        b"protocol=https\nhost=nothing.example\n",
    ));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");
    // Hosts without a name (git's `cert:///path`) are never looked up.
    let out = ok(wbl_credential(
        &w,
        "get",
        b"protocol=cert\nhost=\npath=etc/c.pem\n",
    ));
    assert_eq!(stdout(&out), "");
}

#[test]
fn wandb_key_from_login_is_served_to_git() {
    let w = World::new(Backend::SecretService);
    let k = key(7);
    ok(w.wbl(&["login", &k]));
    let a = fill(&w, "protocol=https\nhost=api.wandb.ai\n").unwrap();
    assert_eq!(a["username"], "api");
    assert_eq!(a["password"], k);
    let k2 = key_v1(8);
    ok(w.wbl(&["login", "--host", "https://wandb.example.com:8443", &k2]));
    let a = fill(&w, "url=https://wandb.example.com:8443\n").unwrap();
    assert_eq!(
        (a["username"].as_str(), a["password"].as_str()),
        ("api", k2.as_str())
    );
    // And the other way: what git stores for the W&B host is what `wbl token` prints.
    let k3 = key(9);
    approve(
        &w,
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k3}\n"),
    );
    // (`login --host` made wandb.example.com the default host, as the SDK does.)
    let out = ok(w.wbl(&["token", "--host", "https://api.wandb.ai"]));
    assert_eq!(stdout(&out), format!("{k3}\n"));
}

/// git's version as (major, minor).
fn git_version() -> (u32, u32) {
    let out = Command::new("git").arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text.split_whitespace().nth(2).unwrap_or("0.0");
    let mut it = v.split('.').map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn pre_encoded_credentials_need_the_authtype_capability() {
    let w = World::new(Backend::SecretService);
    let store = b"capability[]=authtype\nprotocol=https\nhost=api.example.com\n\
                  authtype=Bearer\ncredential=tok-123\n";
    ok(wbl_credential(&w, "store", store));
    let query = b"protocol=https\nhost=api.example.com\n";
    let out = ok(wbl_credential(
        &w,
        "get",
        &[&b"capability[]=authtype\n"[..], query].concat(),
    ));
    assert_eq!(
        stdout(&out),
        "capability[]=authtype\nauthtype=Bearer\ncredential=tok-123\n"
    );
    // A caller that did not announce the capability cannot use it: only git's cache's
    // capability line, no credential.
    assert_eq!(
        stdout(&ok(wbl_credential(&w, "get", query))),
        "capability[]=authtype\n"
    );
    // It survives a restart: the keychain has it, with no password item.
    w.stop_agent();
    let out = ok(wbl_credential(
        &w,
        "get",
        &[&b"capability[]=authtype\n"[..], query].concat(),
    ));
    assert!(
        stdout(&out).contains("credential=tok-123"),
        "{}",
        stdout(&out)
    );
    assert_eq!(w.secret_tool_lookup("https://api.example.com", ""), None);
    // Ephemeral credentials are not stored.
    ok(wbl_credential(
        &w,
        "store",
        b"capability[]=authtype\nprotocol=https\nhost=digest.example.com\n\
          authtype=Digest\ncredential=once\nephemeral=1\n",
    ));
    assert_eq!(
        stdout(&ok(wbl_credential(
            &w,
            "get",
            b"capability[]=authtype\nprotocol=https\nhost=digest.example.com\n"
        ))),
        ""
    );
    ok(wbl_credential(
        &w,
        "erase",
        b"capability[]=authtype\nprotocol=https\nhost=api.example.com\n",
    ));
    assert_eq!(
        stdout(&ok(wbl_credential(
            &w,
            "get",
            &[&b"capability[]=authtype\n"[..], query].concat()
        ))),
        ""
    );

    // The same through git, which speaks this since 2.46.
    if git_version() < (2, 46) {
        eprintln!("git older than 2.46: skipping the git part of this test");
        return;
    }
    approve(
        &w,
        "capability[]=authtype\nprotocol=https\nhost=git.example.com\nauthtype=Bearer\n\
         credential=git-tok\n",
    );
    let a = fill(
        &w,
        "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\n\
         state[]=other-helper:x\nwwwauth[]=Bearer realm=\"x\"\n",
    )
    .unwrap();
    assert_eq!(a["authtype"], "Bearer");
    assert_eq!(a["credential"], "git-tok");
    assert_eq!(a.get("state[]"), None);
    // git without the capability gets nothing usable from wbl, and so no credential.
    assert_eq!(fill(&w, "protocol=https\nhost=git.example.com\n"), None);
    reject(
        &w,
        "capability[]=authtype\nprotocol=https\nhost=git.example.com\nauthtype=Bearer\n\
         credential=git-tok\n",
    );
    assert_eq!(
        fill(
            &w,
            "capability[]=authtype\nprotocol=https\nhost=git.example.com\n"
        ),
        None
    );
}

#[test]
fn unknown_attributes_and_operations_are_ignored() {
    let w = World::new(Backend::SecretService);
    approve(
        &w,
        "protocol=https\nhost=h.example\nusername=u\npassword=pw\n",
    );
    let out = ok(wbl_credential(
        &w,
        "get",
        b"protocol=https\nhost=h.example\nwwwauth[]=Basic realm=\"x\"\nstate[]=x:y\n\
          some_future_attribute=1\ncontinue=1\n",
    ));
    assert_eq!(
        stdout(&out),
        "capability[]=authtype\nusername=u\npassword=pw\n"
    );
    let out = ok(wbl_credential(&w, "frobnicate", b"garbage\n"));
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""));
    let out = ok(wbl_credential(&w, "capability", b""));
    assert_eq!(stdout(&out), "version 0\ncapability authtype\n");
}

#[test]
fn keyutils_backend_serves_git_too() {
    let w = World::new(Backend::Keyutils);
    approve(
        &w,
        "protocol=https\nhost=git.example.com\nusername=alice\npassword=pw\n",
    );
    ok(wbl_credential(
        &w,
        "store",
        b"protocol=https\nhost=tok.example.com\nauthtype=Bearer\ncredential=t0k\n",
    ));
    w.stop_agent();
    assert_eq!(
        password(&w, "protocol=https\nhost=git.example.com\n").as_deref(),
        Some("pw")
    );
    assert_eq!(
        w.keyctl_lookup("https://git.example.com", "alice")
            .as_deref(),
        Some("pw")
    );
    let out = ok(wbl_credential(
        &w,
        "get",
        b"capability[]=authtype\nprotocol=https\nhost=tok.example.com\n",
    ));
    assert!(
        stdout(&out).contains("credential=t0k\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn secrets_stay_out_of_logs_and_files() {
    let w = World::new(Backend::SecretService);
    let pw = "Sup3r-Secret-Passw0rd-For-Git";
    let mut c = git(&w);
    c.env("WBL_LOG", "trace").args([
        "-c",
        &format!("credential.helper={}", helper()),
        "credential",
        "approve",
    ]);
    ok(run_with_stdin(
        c,
        format!("protocol=https\nhost=h.example\nusername=u\npassword={pw}\n").as_bytes(),
    ));
    let mut c = git(&w);
    c.env("WBL_LOG", "trace").args([
        "-c",
        &format!("credential.helper={}", helper()),
        "credential",
        "fill",
    ]);
    let out = ok(run_with_stdin(c, b"protocol=https\nhost=h.example\n"));
    assert!(stdout(&out).contains(pw));
    w.stop_agent();
    let log = std::fs::read_to_string(w.log()).unwrap();
    assert!(log.contains("store"), "the log saw the request: {log}");
    assert_eq!(w.files_containing(pw), Vec::<std::path::PathBuf>::new());
}

/// A bare repository `repo.git` under `root` with one commit on `main`.
fn make_repo(w: &World, root: &Path) {
    let src = w.dir.path().join("src");
    ok(git(w)
        .args(["init", "-q", "-b", "main"])
        .arg(&src)
        .output()
        .unwrap());
    std::fs::write(src.join("README"), "hello\n").unwrap();
    ok(git(w)
        .arg("-C")
        .arg(&src)
        .args(["add", "README"])
        .output()
        .unwrap());
    ok(git(w)
        .arg("-C")
        .arg(&src)
        .args(["commit", "-q", "-m", "first"])
        .output()
        .unwrap());
    std::fs::create_dir_all(root).unwrap();
    ok(git(w)
        .args(["clone", "-q", "--bare"])
        .arg(&src)
        .arg(root.join("repo.git"))
        .output()
        .unwrap());
}

#[test]
fn clone_and_push_over_http_get_the_password_from_wbl() {
    let w = World::new(Backend::SecretService);
    let root = w.dir.path().join("srv");
    make_repo(&w, &root);
    let server = git_http::GitHttpServer::start(&root, "alice", "s3rv3r-pw");
    let port = server.port;
    let with_helper = |c: &mut Command| {
        c.args(["-c", &format!("credential.helper={}", helper())]);
    };

    // Without a stored credential, git has nowhere to get one from.
    let mut c = git(&w);
    with_helper(&mut c);
    let out = c
        .args(["clone", "-q", &server.url("repo.git")])
        .arg(w.dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(server.stats().users.is_empty());

    approve(
        &w,
        &format!("protocol=http\nhost=127.0.0.1:{port}\nusername=alice\npassword=s3rv3r-pw\n"),
    );
    let dest = w.dir.path().join("clone");
    let mut c = git(&w);
    with_helper(&mut c);
    ok(c.args(["clone", "-q", &server.url("repo.git")])
        .arg(&dest)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(dest.join("README")).unwrap(),
        "hello\n"
    );
    let stats = server.stats();
    assert!(stats.refused >= 1, "git first tried without credentials");
    assert!(stats.users.iter().all(|u| u == "alice") && !stats.users.is_empty());

    // Push a commit back.
    std::fs::write(dest.join("NEW"), "pushed\n").unwrap();
    ok(git(&w)
        .arg("-C")
        .arg(&dest)
        .args(["add", "NEW"])
        .output()
        .unwrap());
    ok(git(&w)
        .arg("-C")
        .arg(&dest)
        .args(["commit", "-q", "-m", "pushed through wbl"])
        .output()
        .unwrap());
    let mut c = git(&w);
    with_helper(&mut c);
    ok(c.arg("-C")
        .arg(&dest)
        .args(["push", "-q", "origin", "main"])
        .output()
        .unwrap());
    let log = ok(git(&w)
        .arg("--git-dir")
        .arg(root.join("repo.git"))
        .args(["log", "-1", "--format=%s", "main"])
        .output()
        .unwrap());
    assert_eq!(stdout(&log), "pushed through wbl\n");

    // A wrong stored password: the server refuses it, git rejects it, and wbl forgets it.
    approve(
        &w,
        &format!("protocol=http\nhost=127.0.0.1:{port}\nusername=alice\npassword=wrong\n"),
    );
    let mut c = git(&w);
    with_helper(&mut c);
    let out = c
        .args(["clone", "-q", &server.url("repo.git")])
        .arg(w.dir.path().join("clone2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = ok(wbl_credential(
        &w,
        "get",
        format!("protocol=http\nhost=127.0.0.1:{port}\n").as_bytes(),
    ));
    assert_eq!(stdout(&out), "", "git's reject erased the wrong password");
}

/// `wbl setup-git …` run with git isolated like the tests' git, `git-credential-wbl` on PATH
/// only when `exe` is the built `wbl`.
fn setup_git(w: &World, exe: &Path, args: &[&str], dir: &Path) -> Output {
    let mut c = w.cmd(exe.to_str().unwrap());
    isolate_git(&mut c, w);
    if exe == Path::new(WBL) {
        c.env("PATH", path_with_bins());
    } else {
        c.env("PATH", path_without_bins());
    }
    c.arg("setup-git").args(args).current_dir(dir);
    c.output().unwrap()
}

fn helpers_of(w: &World, scope: &str, url: &str, dir: &Path) -> Vec<String> {
    let out = git(w)
        .args([
            "config",
            scope,
            "--get-all",
            &format!("credential.{url}.helper"),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn setup_git_is_idempotent_keeps_other_helpers_and_removes_only_its_own() {
    let w = World::new(Backend::SecretService);
    let url = "https://git.example.com";
    let home = w.home();
    for value in ["/bin/true", "/old/place/wbl credential"] {
        ok(git(&w)
            .args([
                "config",
                "--global",
                "--add",
                &format!("credential.{url}.helper"),
                value,
            ])
            .output()
            .unwrap());
    }
    ok(git(&w)
        .args(["config", "--global", "credential.helper", "/bin/true"])
        .output()
        .unwrap());
    let plain = GIT_HELPER
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    let absolute = if plain {
        GIT_HELPER.to_owned()
    } else {
        format!("!'{GIT_HELPER}'")
    };
    // git-credential-wbl not on PATH: its absolute path, replacing the old `wbl credential`.
    let mut c = w.cmd(WBL);
    isolate_git(&mut c, &w);
    c.env("PATH", path_without_bins());
    let out = ok(c.args(["setup-git", "--host", url]).output().unwrap());
    assert!(
        stderr(&out).contains("replaced an older wbl helper"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        helpers_of(&w, "--global", url, &home),
        ["/bin/true", absolute.as_str()]
    );
    // On PATH: git's short form `wbl`, replacing the absolute path.
    let out = ok(setup_git(&w, Path::new(WBL), &["--host", url], &home));
    assert!(
        stderr(&out).contains(&format!("replaced an older wbl helper: {absolute}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(helpers_of(&w, "--global", url, &home), ["/bin/true", "wbl"]);
    let out = ok(setup_git(
        &w,
        Path::new(WBL),
        &["--host", url, "--global"],
        &home,
    ));
    assert!(stderr(&out).contains("already"), "{}", stderr(&out));
    assert_eq!(helpers_of(&w, "--global", url, &home), ["/bin/true", "wbl"]);

    // git now uses wbl for this URL by itself (no -c), finding git-credential-wbl on PATH.
    let store = "protocol=https\nhost=git.example.com\nusername=alice\npassword=pw\n";
    ok(run_with_stdin(
        {
            let mut c = git(&w);
            c.args(["credential", "approve"]);
            c
        },
        store.as_bytes(),
    ));
    let out = ok(run_with_stdin(
        {
            let mut c = git(&w);
            c.args(["credential", "fill"]);
            c
        },
        b"url=https://git.example.com/org/repo.git\n",
    ));
    assert!(stdout(&out).contains("password=pw\n"), "{}", stdout(&out));

    let out = ok(setup_git(
        &w,
        Path::new(WBL),
        &["--host", url, "--remove"],
        &home,
    ));
    assert!(stderr(&out).contains("no longer"), "{}", stderr(&out));
    assert_eq!(helpers_of(&w, "--global", url, &home), ["/bin/true"]);
    let out = ok(setup_git(
        &w,
        Path::new(WBL),
        &["--host", url, "--remove"],
        &home,
    ));
    assert!(
        stderr(&out).contains("nothing to remove"),
        "{}",
        stderr(&out)
    );
    assert_eq!(helpers_of(&w, "--global", url, &home), ["/bin/true"]);
    let cfg = std::fs::read_to_string(home.join(".gitconfig")).unwrap();
    assert!(cfg.contains("helper = /bin/true"), "{cfg}");
}

#[test]
fn setup_git_local_and_a_path_that_needs_quoting() {
    let w = World::new(Backend::SecretService);
    let home = w.home();
    // --local outside a repository: a clear error.
    let out = setup_git(
        &w,
        Path::new(WBL),
        &["--local", "--host", "https://h.example"],
        &home,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("wbl: error: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("repository"), "{}", stderr(&out));

    // wbl installed under a directory with a space, set up for one repository.
    let dir = home.join("my tools");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("wbl");
    std::fs::hard_link(WBL, &exe).unwrap();
    let repo = home.join("work");
    ok(git(&w).args(["init", "-q"]).arg(&repo).output().unwrap());
    let url = "https://git.example.com";
    ok(setup_git(&w, &exe, &["--local", "--host", url], &repo));
    let value = format!("!'{}' credential", exe.display());
    assert_eq!(helpers_of(&w, "--local", url, &repo), [value.as_str()]);
    assert!(helpers_of(&w, "--global", url, &repo).is_empty());
    // git runs it through the shell, quoting and all.
    ok(w.wbl(&["login", "--host", url, &key(4)]));
    let out = ok(run_with_stdin(
        {
            let mut c = git(&w);
            c.current_dir(&repo).args(["credential", "fill"]);
            c
        },
        b"protocol=https\nhost=git.example.com\n",
    ));
    assert!(
        stdout(&out).contains(&format!("password={}\n", key(4))),
        "{}",
        stdout(&out)
    );
    ok(setup_git(
        &w,
        &exe,
        &["--local", "--host", url, "--remove"],
        &repo,
    ));
    assert!(helpers_of(&w, "--local", url, &repo).is_empty());
}

/// `wbl credential get` straight to the helper; the answer's attributes.
fn helper_get(w: &World, input: &str) -> HashMap<String, String> {
    attrs(&stdout(&ok(wbl_credential(w, "get", input.as_bytes()))))
}

#[test]
fn hosts_with_separator_characters_never_reach_another_items_name() {
    // git percent-decodes URLs: `https://git.corp%2Fx/r` and `https://git.corp%23password_expiry_utc/`
    // give hosts that used to be stored under git.corp's own item names.
    for backend in [Backend::Keyutils, Backend::SecretService] {
        let w = World::new(backend);
        approve(&w, "url=https://alice@git.corp/\npassword=good\n");
        approve(&w, "url=https://mallory@git.corp%2Fx/r\npassword=evil\n");
        approve(
            &w,
            "url=https://alice@git.corp%23password_expiry_utc/\npassword=1\n",
        );
        // After a restart the agent reads every name back from the keychain.
        w.stop_agent();
        let a = helper_get(&w, "protocol=https\nhost=git.corp\n");
        assert_eq!(
            a.get("username").map(String::as_str),
            Some("alice"),
            "{a:?}"
        );
        assert_eq!(a.get("password").map(String::as_str), Some("good"), "{a:?}");
        assert!(!a.contains_key("password_expiry_utc"), "{a:?}");
        assert_eq!(
            password(&w, "url=https://git.corp%2Fx/r\n").as_deref(),
            Some("evil")
        );
        assert_eq!(
            password(&w, "url=https://git.corp%23password_expiry_utc/\n").as_deref(),
            Some("1")
        );
    }
}

#[test]
fn items_named_before_the_escaping_are_renamed_and_still_served() {
    let w = World::new(Backend::Keyutils);
    // An item as wbl named it before: a host holding `#` written as it is.
    let old = format!("{}:alice@https://h.example#b", w.namespace);
    let out = std::process::Command::new("keyctl")
        .args(["add", "user", &old, "legacy-secret", "@u"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let a = helper_get(&w, "protocol=https\nhost=h.example#b\n");
    assert_eq!(
        a.get("password").map(String::as_str),
        Some("legacy-secret"),
        "{a:?}"
    );
    let search = |d: &str| {
        std::process::Command::new("keyctl")
            .args(["search", "@u", "user", d])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!search(&old), "the old item is still there");
    assert!(search(&format!(
        "{}:alice@https://h.example%23b",
        w.namespace
    )));
    // Served again after another restart, from the new name.
    w.stop_agent();
    let a = helper_get(&w, "protocol=https\nhost=h.example#b\n");
    assert_eq!(a.get("password").map(String::as_str), Some("legacy-secret"));
}
