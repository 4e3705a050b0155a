//! Several accounts per host, chosen by directory, end to end: the released W&B SDK
//! (`wandb==0.31.0`) under `wbl exec` in directories bound to different accounts sends each
//! directory's key to the (fake, local) W&B servers, which answer `viewer` per key; the choice
//! rules (flag, `WBL_ACCOUNT`, binding, `wbl switch`, the only account) and their errors; and
//! git, as the ordinary test user, getting each account's password from the user name in the
//! URL (`http://work@host/…`).

#![cfg(target_os = "linux")]

mod common;
mod fake_wandb;
#[path = "support/git_http.rs"]
#[allow(dead_code)]
mod git_http;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use fake_wandb::{Answer, FakeWandb};

fn viewer(username: &'static str) -> Answer {
    Answer::Viewer {
        username,
        entity: username,
        teams: &[],
    }
}

/// `wbl ARGS` in `dir`, with `env`.
fn wbl_in(w: &World, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = w.cmd(WBL);
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `wbl login ARGS -` with `key` on stdin.
fn login(w: &World, args: &[&str], key: &str) -> Output {
    let mut c = w.cmd(WBL);
    c.arg("login").args(args).arg("-");
    let out = run_with_stdin(c, format!("{key}\n").as_bytes());
    assert!(out.status.success(), "login {args:?}: {}", stderr(&out));
    out
}

/// The key `wbl token` prints in `dir`.
fn token_in(w: &World, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = wbl_in(w, dir, &["token"], env);
    assert!(
        out.status.success(),
        "wbl token in {}: {}",
        dir.display(),
        stderr(&out)
    );
    stdout(&out).trim().to_owned()
}

/// The real SDK under `wbl exec` in `dir`: `wandb.Api()` checks its key with the server
/// (`viewer`) and prints it. Returns the key printed; the server's record is checked by the
/// caller.
fn sdk_key_in(w: &World, dir: &Path) -> String {
    let mut c = w.cmd(WBL);
    c.current_dir(dir)
        .args(["exec", "--"])
        .arg(wandb_python())
        .args([
            "-c",
            "import wandb\napi = wandb.Api()\nprint('key=' + api.api_key)\n",
        ]);
    common::sdk_offline_env(&mut c);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "the SDK in {}: {}{}",
        dir.display(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("key="))
        .unwrap_or_else(|| panic!("no key printed: {}", stdout(&out)))
        .to_owned()
}

/// The keys a fake server received since request `from`.
fn keys_seen(server: &FakeWandb, from: usize) -> Vec<String> {
    server.seen()[from..]
        .iter()
        .filter_map(|s| s.key.clone())
        .collect()
}

#[test]
fn the_sdk_gets_the_key_of_the_account_bound_to_each_directory() {
    let w = World::new(Backend::SecretService);
    let (k_work, k_personal, k_self) = (key(21), key(22), key(23));
    // The "cloud" of this test: one server that knows two users' keys.
    let cloud = FakeWandb::start(&k_work, viewer("work"), Answer::NullViewer);
    cloud.add_key(&k_personal, viewer("personal"));
    // A self-hosted server with its own account.
    let selfhosted = FakeWandb::start(&k_self, viewer("sam"), Answer::NullViewer);

    // A key stored before accounts existed is the account `default` (user name `api`), the
    // item an older wbl reads.
    login(
        &w,
        &["--host", &selfhosted.url, "--account", "team"],
        &k_self,
    );
    // Verified keys are stored under their W&B user names. `--host` also makes the cloud the
    // global `base_url`, as `wandb login --host` does.
    login(&w, &["--host", &cloud.url, "--verify"], &k_work);
    let out = login(&w, &["--host", &cloud.url, "--verify"], &k_personal);
    let said = stderr(&out);
    assert!(
        said.contains("2 accounts for") && said.contains("(personal, work)"),
        "{said}"
    );
    assert!(
        said.contains("wbl switch") && said.contains("wbl bind"),
        "{said}"
    );

    let home = w.home();
    let work = home.join("work");
    let deep = work.join("a/b/c");
    let personal = home.join("personal");
    let project = home.join("project");
    for d in [&deep, &personal, &project.join("wandb")] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The project's own W&B settings name the self-hosted server, as `wandb init` writes them.
    std::fs::write(
        project.join("wandb/settings"),
        format!("[default]\nbase_url = {}\n", selfhosted.url),
    )
    .unwrap();

    // Several accounts and none chosen: an error naming them and the ways to choose.
    let out = wbl_in(&w, &home, &["token"], &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("2 accounts for") && e.contains("personal, work"),
        "{e}"
    );
    for way in ["--account", "WBL_ACCOUNT", "wbl bind", "wbl switch"] {
        assert!(e.contains(way), "{way}: {e}");
    }
    assert!(!e.contains(&k_work) && !e.contains(&k_personal), "{e}");

    ok(wbl_in(&w, &home, &["bind", "work", "work"], &[]));
    ok(wbl_in(&w, &personal, &["bind", "personal"], &[]));
    let config = std::fs::read_to_string(home.join(".config/wbl/config.toml")).unwrap();
    assert!(config.contains("[[bind]]"), "{config}");

    // The real SDK in each directory sends that directory's key.
    for (dir, expected, server) in [
        (&deep, &k_work, &cloud),
        (&personal, &k_personal, &cloud),
        (&project, &k_self, &selfhosted),
    ] {
        let from = server.seen().len();
        assert_eq!(&sdk_key_in(&w, dir), expected, "in {}", dir.display());
        let seen = keys_seen(server, from);
        assert!(
            !seen.is_empty() && seen.iter().all(|k| k == expected),
            "in {}: the server saw other keys",
            dir.display()
        );
    }

    // status says which account and why, with the file and line.
    let out = wbl_in(&w, &deep, &["status"], &[]);
    let s = stdout(&out);
    assert!(
        s.contains("account work: bound to ~/work in ~/.config/wbl/config.toml line"),
        "{s}"
    );

    // --account and WBL_ACCOUNT come before the binding.
    assert_eq!(
        stdout(&wbl_in(&w, &deep, &["token", "--account", "personal"], &[])).trim(),
        k_personal
    );
    assert_eq!(
        token_in(&w, &deep, &[("WBL_ACCOUNT", "personal")]),
        k_personal
    );

    // The host's default, then unbinding falls back to it.
    ok(wbl_in(&w, &home, &["switch", "personal"], &[]));
    assert_eq!(token_in(&w, &home, &[]), k_personal);
    assert_eq!(token_in(&w, &deep, &[]), k_work);
    ok(wbl_in(&w, &home, &["unbind", "work"], &[]));
    assert_eq!(token_in(&w, &deep, &[]), k_personal);

    // A binding naming an account that does not exist: an error naming the file and line.
    ok(wbl_in(&w, &home, &["bind", "ghost", "work"], &[]));
    let out = wbl_in(&w, &deep, &["token"], &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("no account `ghost`") && e.contains("config.toml line"),
        "{e}"
    );
    // wbl doctor says so too, with the fix.
    let out = wbl_in(&w, &home, &["doctor", "--json"], &[]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "accounts")
        .unwrap()
        .clone();
    assert_eq!(check["verdict"], "warning", "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("~/work is bound to account `ghost`") && detail.contains("line"),
        "{detail}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("wbl login --account ghost"),
        "{check:#}"
    );
    ok(wbl_in(&w, &home, &["unbind", "work"], &[]));

    // `wbl accounts` lists both hosts, the default and the bindings.
    let out = wbl_in(&w, &home, &["accounts"], &[]);
    let s = stdout(&out);
    assert!(s.contains("accounts: personal, work"), "{s}");
    assert!(s.contains("accounts: team"), "{s}");
    assert!(s.contains("default:  personal"), "{s}");
    assert!(s.contains("bound:    ~/personal -> personal"), "{s}");

    // logout of one account keeps the other; without --account and without a terminal,
    // logout refuses to guess.
    let out = wbl_in(&w, &home, &["logout"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wbl logout --account"),
        "{}",
        stderr(&out)
    );
    ok(wbl_in(&w, &home, &["logout", "--account", "personal"], &[]));
    assert_eq!(
        stdout(&wbl_in(&w, &home, &["token", "--account", "work"], &[])).trim(),
        k_work
    );
    // The default names the removed account now: said, not papered over.
    let out = wbl_in(&w, &home, &["token"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no account `personal`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_existing_key_is_the_default_account_and_stays_where_older_wbl_reads_it() {
    let w = World::new(Backend::SecretService);
    let (k_old, k_work) = (key(31), key(32));
    ok(w.wbl(&["login", &k_old]));
    // One account: used without any choice.
    assert_eq!(stdout(&w.wbl(&["token"])).trim(), k_old);
    login(&w, &["--account", "work"], &k_work);
    // The old key is still the item an older wbl reads (user name `api`), unchanged.
    assert_eq!(
        w.secret_tool_lookup("https://api.wandb.ai", "api")
            .as_deref(),
        Some(k_old.as_str())
    );
    assert_eq!(
        stdout(&w.wbl(&["token", "--account", "default"])).trim(),
        k_old
    );
    assert_eq!(
        stdout(&w.wbl(&["token", "--account", "work"])).trim(),
        k_work
    );
    let out = w.wbl(&["token"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("default, work"), "{}", stderr(&out));
    // status says so on the host's row, with the ways to choose.
    let s = stdout(&w.wbl(&["status"]));
    assert!(
        s.contains("several accounts and none chosen") && s.contains("wbl switch NAME"),
        "{s}"
    );
    // The access log records the account handed out (written off the request path: waited
    // for, bounded).
    let mut accounts = Vec::new();
    for _ in 0..500 {
        let out = w.wbl(&["log", "--json"]);
        accounts = stdout(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["op"] == "get" && e["result"] == "ok")
            .filter_map(|e| e["account"].as_str().map(str::to_owned))
            .collect();
        if accounts.contains(&"work".to_owned()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        accounts.contains(&"default".to_owned()) && accounts.contains(&"work".to_owned()),
        "{accounts:?}"
    );
}

fn git(w: &World) -> Command {
    let mut c = w.cmd("git");
    isolate_git(&mut c, w);
    c.env("PATH", path_with_bins());
    c
}

#[test]
fn git_gets_the_password_of_the_account_named_in_the_url() {
    let w = World::new_as(Backend::SecretService, users::user());
    let (k_work, k_personal) = (key(41), key(42));
    // A bare repository served over HTTP to two users, each with their own key. The server
    // side (repository and `git http-backend`) belongs to the test's own user.
    let srv = tempfile::tempdir().unwrap();
    let root = srv.path().join("srv");
    let src = srv.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("README"), "hello\n").unwrap();
    let server_git = |args: &[&str]| {
        ok(Command::new("git")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", srv.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap())
    };
    let src_s = src.to_str().unwrap();
    server_git(&["-C", src_s, "init", "-q", "-b", "main"]);
    server_git(&["-C", src_s, "add", "README"]);
    server_git(&["-C", src_s, "commit", "-q", "-m", "first"]);
    server_git(&[
        "clone",
        "-q",
        "--bare",
        src_s,
        root.join("repo.git").to_str().unwrap(),
    ]);
    let server = git_http::GitHttpServer::start_users(
        &root,
        &[("work", &k_work), ("personal", &k_personal)],
    );
    let host = format!("http://127.0.0.1:{}", server.port);
    login(&w, &["--host", &host, "--account", "work"], &k_work);
    login(&w, &["--host", &host, "--account", "personal"], &k_personal);

    for account in ["work", "personal"] {
        let before = server.stats().users.len();
        let dest = w.dir.path().join(format!("clone-{account}"));
        let mut c = git(&w);
        c.args([
            "-c",
            &format!("credential.helper=!'{WBL}' credential"),
            "clone",
            "-q",
            &format!("http://{account}@127.0.0.1:{}/repo.git", server.port),
        ])
        .arg(&dest);
        ok(c.output().unwrap());
        let users = server.stats().users[before..].to_vec();
        assert!(
            !users.is_empty() && users.iter().all(|u| u == account),
            "{account}: {users:?}"
        );
    }
}

#[test]
fn bindings_in_a_config_file_others_could_change_are_refused() {
    let u = users::user();
    let w = World::new_as(Backend::SecretService, u.clone());
    let (k_work, k_personal) = (key(51), key(52));
    login(&w, &["--account", "work"], &k_work);
    login(&w, &["--account", "personal"], &k_personal);
    let home = w.home();
    ok(wbl_in(&w, &home, &["bind", "work"], &[]));
    assert_eq!(token_in(&w, &home, &[]), k_work);
    // The configuration decides which key a directory gets: writable by others, it is not
    // used, and no command falls back to a guess.
    let file = home.join(".config/wbl/config.toml");
    let mode = |m: u32| {
        ok(w.raw_cmd("chmod")
            .arg(format!("{m:o}"))
            .arg(&file)
            .output()
            .unwrap())
    };
    mode(0o666);
    for args in [
        &["token"][..],
        &["bind", "personal"],
        &["switch", "personal"],
    ] {
        let out = wbl_in(&w, &home, args, &[]);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        let e = stderr(&out);
        assert!(
            e.contains("config.toml") && e.contains("chmod"),
            "{args:?}: {e}"
        );
        assert!(
            !e.contains(&k_work) && !stdout(&out).contains(&k_work),
            "{e}"
        );
    }
    mode(0o600);
    assert_eq!(token_in(&w, &home, &[]), k_work);
}

#[test]
fn logout_with_several_accounts_asks_which_on_a_terminal() {
    let w = World::new(Backend::SecretService);
    let (k_old, k_work) = (key(61), key(62));
    ok(w.wbl(&["login", &k_old]));
    login(&w, &["--account", "work"], &k_work);
    let mut c = Command::new(WBL);
    w.apply_env(&mut c);
    c.env("TERM", "xterm").arg("logout");
    // The timeout bounds each wait for output; it is not a speed requirement.
    let mut p = rexpect::session::spawn_command(c, Some(30_000)).unwrap();
    p.exp_string("2 accounts for https://api.wandb.ai (default, work); which one to remove? ")
        .unwrap();
    p.send_line("work").unwrap();
    let said = p.exp_eof().unwrap();
    assert!(
        said.contains("Removed the API key of account work for https://api.wandb.ai"),
        "{said}"
    );
    // The other account stays, and is now the only one.
    assert_eq!(stdout(&w.wbl(&["token"])).trim(), k_old);
    let out = w.wbl(&["token", "--account", "work"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no account `work`"),
        "{}",
        stderr(&out)
    );
}
