//! End-to-end tests of `wbl login` (the behaviour of `wandb login` in wandb 0.31.0,
//! rewritten for wbl: netrc is never written, the key goes to the keychain), `status`,
//! `logout`, `token` and `exec`. Real binaries, a real gnome-keyring on a private D-Bus, a
//! fake W&B GraphQL server on 127.0.0.1, and a real pseudo-terminal for the hidden prompt.

#![cfg(target_os = "linux")]

mod common;
mod fake_wandb;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;
use fake_wandb::{Answer, FakeWandb, basic};

const CLOUD: &str = "https://api.wandb.ai";
const BANNER_NO_VERIFY: &str =
    "wbl: W&B API key is configured. Use `wbl login --relogin` to force relogin\n";

/// Runs `wbl` in the world with extra environment (and no proxy, so 127.0.0.1 is reached
/// directly), stdin from /dev/null.
fn run(w: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_stdin(w, args, env, None)
}

fn run_stdin(w: &World, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Output {
    let mut out = run_raw(w, args, env, input);
    // The warning about a key given as an argument has its own test (tests/trust.rs); these
    // tests compare the rest of the output line by line.
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    out.stderr = text
        .split_inclusive('\n')
        .filter(|l| !l.contains("was on the command line, where every user"))
        .collect::<String>()
        .into_bytes();
    out
}

fn run_raw(w: &World, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Output {
    let mut c = w.cmd(WBL);
    no_proxy(&mut c);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    match input {
        None => c.output().unwrap(),
        Some(text) => {
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
    }
}

/// Talk to 127.0.0.1 directly whatever proxy the machine has.
fn no_proxy(c: &mut std::process::Command) {
    for p in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(p);
    }
}

/// The key stored in this world's gnome-keyring for `url` (user `api`).
fn stored(w: &World, url: &str) -> Option<String> {
    stored_as(w, url, "api")
}

/// The key stored for `url` as the account whose user name is `user` (a verified key is
/// stored as its W&B user's account).
fn stored_as(w: &World, url: &str, user: &str) -> Option<String> {
    w.secret_tool_lookup(url, user)
        .map(|s| s.trim_end().to_owned())
}

#[track_caller]
fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

fn global_settings(w: &World) -> PathBuf {
    w.home().join(".config/wandb/settings")
}

fn workspace_settings(w: &World) -> PathBuf {
    w.home().join("wandb/settings")
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn netrc(w: &World) -> PathBuf {
    w.home().join(".netrc")
}

/// Files and directories directly in HOME, except gnome-keyring's own `.local`.
fn home_entries(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".local")
        .collect();
    v.sort();
    v
}

fn a(n: usize) -> String {
    "a".repeat(n)
}

// ---------------------------------------------------------------------------------------------
// Section O, one test per scenario (22 is `status`, rewritten for wbl).

#[test]
fn o01_host_and_cloud_together_is_refused_and_touches_nothing() {
    let w = World::new(Backend::SecretService);
    let out = run(
        &w,
        &["login", "--host", "https://x.example", "--cloud", &key(1)],
        &[],
    );
    assert_eq!(
        fails(&out, 1),
        "wbl: error: Cannot use --host and --cloud together.\n"
    );
    assert_eq!(home_entries(&w), Vec::<String>::new());
    assert!(w.agent_pid().is_none(), "no agent was started");
}

#[test]
fn o02_key_goes_to_the_keychain_not_to_netrc() {
    let w = World::new(Backend::SecretService);
    let k = a(40);
    let out = ok(run(&w, &["login", "--no-verify", &k], &[]));
    assert_eq!(
        stderr(&out),
        format!("wbl: Stored the API key for {CLOUD} in the keychain.\n{BANNER_NO_VERIFY}")
    );
    assert_eq!(stdout(&out), "");
    assert_eq!(stored(&w, CLOUD).as_deref(), Some(k.as_str()));
    assert!(!netrc(&w).exists(), "no netrc is created");
    assert!(!w.home().join("_netrc").exists());
    assert!(!w.home().join(".config").exists(), "no settings written");
    assert_eq!(w.files_containing(&k), Vec::<PathBuf>::new());
}

#[test]
fn o02_without_verify_there_is_no_network_call() {
    let w = World::new(Backend::SecretService);
    let server = FakeWandb::start(&key(1), Answer::NullViewer, Answer::NullViewer);
    ok(run(&w, &["login", "--host", &server.url, &key(1)], &[]));
    ok(run(
        &w,
        &["login", "--host", &server.url, "--no-verify", &key(2)],
        &[],
    ));
    // --verify then --no-verify: the last one wins, as with click.
    ok(run(
        &w,
        &[
            "login",
            "--host",
            &server.url,
            "--verify",
            "--no-verify",
            &key(3),
        ],
        &[],
    ));
    assert_eq!(server.seen().len(), 0, "{:?}", server.seen());
    assert_eq!(stored(&w, &server.url), Some(key(3)));
}

#[test]
fn o03_short_key_is_refused() {
    let w = World::new(Backend::SecretService);
    let out = run(&w, &["login", "--no-verify", "short"], &[]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key must have 40+ characters, has 5.\n"
    );
    assert_eq!(stored(&w, CLOUD), None);
    assert!(!netrc(&w).exists());
}

/// A prefixed key's count leaves the prefix out: the message says so, or "has 3" for
/// `short-key` puzzles.
#[test]
fn o03_short_prefixed_key_names_the_prefix_rule() {
    let w = World::new(Backend::Keyutils);
    let out = run(&w, &["login", "--no-verify", "short-key"], &[]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key must have 40+ characters, has 3 after its prefix (the part up to \
         the first `-` is not counted).\n"
    );
}

#[test]
fn o04_non_word_characters_are_refused() {
    let w = World::new(Backend::SecretService);
    let out = run(
        &w,
        &["login", "--no-verify", &format!("bad key!{}", a(40))],
        &[],
    );
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key may only contain the letters A-Z, digits, underscores and dashes (-).\n"
    );
    assert_eq!(stored(&w, CLOUD), None);
}

#[test]
fn o05_prefix_before_the_first_dash_is_not_counted() {
    let w = World::new(Backend::SecretService);
    let short = format!("local-{}", a(39));
    let out = run(&w, &["login", "--no-verify", &short], &[]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key must have 40+ characters, has 39 after its prefix (the part up to \
         the first `-` is not counted).\n"
    );
    let good = format!("local-{}", a(40));
    ok(run(&w, &["login", "--no-verify", &good], &[]));
    assert_eq!(stored(&w, CLOUD), Some(good));
}

#[test]
fn o06_jwt_shaped_key_is_accepted_whatever_its_length() {
    let w = World::new(Backend::SecretService);
    ok(run(&w, &["login", "--no-verify", "aaa.bbb.ccc"], &[]));
    assert_eq!(stored(&w, CLOUD).as_deref(), Some("aaa.bbb.ccc"));
}

#[test]
fn o07_existing_netrc_is_left_byte_for_byte() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(Backend::SecretService);
    let text = "machine github.com\n  login me\n  password ghp_x\n\n# a comment\nmachine api.wandb.ai\n  login user\n  password OLD\n";
    write(&netrc(&w), text);
    std::fs::set_permissions(netrc(&w), std::fs::Permissions::from_mode(0o640)).unwrap();
    let new = key_v1(7);
    let out = ok(run(&w, &["login", &new], &[]));
    // The SDK itself would still read the stale plaintext key: say so.
    assert!(
        stderr(&out).contains(&format!(
            "wbl: WARNING A plaintext API key for api.wandb.ai is still in the netrc file {}",
            netrc(&w).display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(mode(&netrc(&w)), 0o640);
    assert_eq!(stored(&w, CLOUD), Some(new.clone()));
    // From now on the keychain answers, not the plaintext OLD.
    let out = ok(run(&w, &["login"], &[]));
    assert!(
        stderr(&out).contains(&format!(
            "wbl: Loaded credentials for {CLOUD} from the keychain (already stored).\n"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&ok(run(&w, &["token"], &[]))), format!("{new}\n"));
}

#[test]
fn o08_netrc_env_names_the_file_read_and_nothing_is_written() {
    let w = World::new(Backend::SecretService);
    let n = w.dir.path().join("n");
    let nn = n.display().to_string();
    ok(run(&w, &["login", &key(8)], &[("NETRC", &nn)]));
    assert!(!n.exists());
    assert!(!netrc(&w).exists());
    assert_eq!(stored(&w, CLOUD), Some(key(8)));

    // The key is read from $NETRC (and not from ~/.netrc).
    let w = World::new(Backend::SecretService);
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai login user password {}\n", key(1)),
    );
    write(
        &n,
        &format!(
            "machine api.wandb.ai\n  login user\n  password {}\n",
            key(9)
        ),
    );
    let out = ok(run(&w, &["login"], &[("NETRC", &nn)]));
    assert!(
        stderr(&out).contains(&format!("wbl: Loaded credentials for {CLOUD} from {nn}.\n")),
        "{}",
        stderr(&out)
    );
    assert_eq!(stored(&w, CLOUD), Some(key(9)));
}

#[test]
fn o09_host_with_port_is_recorded_in_the_global_settings() {
    let w = World::new(Backend::SecretService);
    write(
        &workspace_settings(&w),
        "[default]\nbase_url = https://old.example\nproject = p\n",
    );
    let out = ok(run(
        &w,
        &[
            "login",
            "--no-verify",
            "--host",
            "https://my.host:8443/",
            &key(9),
        ],
        &[],
    ));
    let err = stderr(&out);
    assert_eq!(
        read(&global_settings(&w)),
        "[default]\nbase_url = https://my.host:8443\n\n"
    );
    assert_eq!(read(&workspace_settings(&w)), "[default]\nproject = p\n");
    for p in [global_settings(&w), workspace_settings(&w)] {
        assert!(
            err.contains(&format!("wbl: Updated settings file {}\n", p.display())),
            "{err}"
        );
    }
    assert!(
        err.starts_with(&format!(
            "wbl: Loading settings from {}\n",
            workspace_settings(&w).display()
        )),
        "{err}"
    );
    assert_eq!(stored(&w, "https://my.host:8443"), Some(key(9)));
    assert!(!netrc(&w).exists());
    // The recorded base_url is now the default host of every command.
    assert_eq!(
        stdout(&ok(run(&w, &["token"], &[]))),
        format!("{}\n", key(9))
    );
}

#[test]
fn o09_wandb_config_dir_moves_the_global_settings() {
    let w = World::new(Backend::SecretService);
    let cfg = w.dir.path().join("cfg");
    let cfgs = cfg.display().to_string();
    ok(run(
        &w,
        &["login", "--host", "https://my.host:8443", &key(9)],
        &[("WANDB_CONFIG_DIR", &cfgs)],
    ));
    assert_eq!(
        read(&cfg.join("settings")),
        "[default]\nbase_url = https://my.host:8443\n\n"
    );
    assert!(!global_settings(&w).exists());
}

#[test]
fn o10_cloud_removes_base_url_and_keeps_other_hosts_keys() {
    let w = World::new(Backend::SecretService);
    write(
        &global_settings(&w),
        "# mine\n[default]\nentity = me\nanonymous = never\n",
    );
    ok(run(
        &w,
        &["login", "--host", "https://my.host:8443", &key(9)],
        &[],
    ));
    // `anonymous` is dropped, as the SDK's login does; the comment and entity stay.
    assert_eq!(
        read(&global_settings(&w)),
        "# mine\n[default]\nentity = me\nbase_url = https://my.host:8443\n"
    );
    ok(run(&w, &["login", "--cloud", "--no-verify", &key(10)], &[]));
    assert_eq!(
        read(&global_settings(&w)),
        "# mine\n[default]\nentity = me\n"
    );
    assert_eq!(stored(&w, CLOUD), Some(key(10)));
    assert_eq!(stored(&w, "https://my.host:8443"), Some(key(9)));
    assert!(!netrc(&w).exists());
}

#[test]
fn o11_env_key_is_used_not_stored() {
    let w = World::new(Backend::SecretService);
    let out = ok(run(
        &w,
        &["login", "--no-verify"],
        &[("WANDB_API_KEY", &key(11))],
    ));
    assert!(
        stderr(&out).starts_with(&format!(
            "wbl: Loaded credentials for {CLOUD} from WANDB_API_KEY.\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).ends_with(BANNER_NO_VERIFY));
    assert_eq!(stored(&w, CLOUD), None);
    assert!(!netrc(&w).exists());
}

#[test]
fn o12_bad_env_key_is_named() {
    let w = World::new(Backend::SecretService);
    let out = run(&w, &["login"], &[("WANDB_API_KEY", "short")]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: WANDB_API_KEY invalid: API key must have 40+ characters, has 5.\n"
    );
}

#[test]
fn o13_env_key_and_identity_token_file_conflict() {
    let w = World::new(Backend::SecretService);
    let out = run(
        &w,
        &["login"],
        &[
            ("WANDB_API_KEY", &key(13)),
            ("WANDB_IDENTITY_TOKEN_FILE", "/t"),
        ],
    );
    assert_eq!(
        fails(&out, 1),
        "wbl: error: Both WANDB_API_KEY and WANDB_IDENTITY_TOKEN_FILE are set, which is not allowed.\n"
    );
}

#[test]
fn o14_no_key_and_no_terminal_is_a_clear_error() {
    let w = World::new(Backend::SecretService);
    let out = run(&w, &["login"], &[]);
    let err = fails(&out, 1);
    assert!(
        err.starts_with(
            "wbl: error: No API key configured. Use `wbl login` to log in. There is no terminal"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!netrc(&w).exists());
}

/// A key adopted from netrc costs one `get` per address of the host (the cloud's key may be
/// stored for its Forge address: two) and one `store`: the `Stored` answer says whether the
/// key survives a reboot, so login asks no `status` to warn about the kernel keyring.
#[test]
fn login_learns_from_the_store_whether_the_key_survives_a_reboot() {
    let w = World::new(Backend::Keyutils);
    let text = format!(
        "machine api.wandb.ai\n  login user\n  password {}\n",
        key(16)
    );
    write(&netrc(&w), &text);
    let out = ok(run(
        &w,
        &["login", "--no-verify"],
        &[("WBL_LOG", "wbl=debug")],
    ));
    assert!(
        stderr(&out).contains("which does not survive a reboot"),
        "{}",
        stderr(&out)
    );
    let log = read(&w.log());
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("access=Get target=https://api.wandb.ai "), 1, "{log}");
    assert_eq!(
        count("access=Get target=https://api.forge.coreweave.com "),
        1,
        "{log}"
    );
    assert_eq!(count("access=Get"), 2, "{log}");
    assert_eq!(count("access=Store"), 1, "{log}");
    assert_eq!(count(" status"), 0, "{log}");
    // The same agent does log a status request (so the count above can fail).
    ok(w.wbl(&["status"]));
    let log = read(&w.log());
    assert_eq!(
        log.lines().filter(|l| l.contains(" status")).count(),
        1,
        "{log}"
    );
    assert!(!log.contains(&key(16)), "{log}");
}

#[test]
fn o15_netrc_key_is_loaded_copied_to_the_keychain_and_the_file_left_alone() {
    let w = World::new(Backend::SecretService);
    let text = format!(
        "machine api.wandb.ai\n  login user\n  password {}\n",
        key(15)
    );
    write(&netrc(&w), &text);
    let out = ok(run(&w, &["login", "--no-verify"], &[]));
    let err = stderr(&out);
    let path = netrc(&w).display().to_string();
    assert!(
        err.starts_with(&format!(
            "wbl: Loaded credentials for {CLOUD} from {path}.\nwbl: Stored the API key for {CLOUD} in the keychain.\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("wbl: WARNING A plaintext API key for api.wandb.ai is still in the netrc file {path}; run `wbl migrate` to remove it.\n")),
        "{err}"
    );
    assert!(err.ends_with(BANNER_NO_VERIFY));
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(stored(&w, CLOUD), Some(key(15)));
}

#[test]
fn o16_netrc_entry_without_password_warns_and_falls_through() {
    let w = World::new(Backend::SecretService);
    write(&netrc(&w), "machine api.wandb.ai login user\n");
    let err = fails(&run(&w, &["login"], &[]), 1);
    let path = netrc(&w).display().to_string();
    assert!(
        err.starts_with(&format!(
            "wbl: WARNING Found entry for machine 'api.wandb.ai' with no API key at {path}\nwbl: error: No API key configured."
        )),
        "{err}"
    );
}

#[test]
fn o17_malformed_netrc_warns_with_the_line_and_counts_as_absent() {
    let w = World::new(Backend::SecretService);
    let text = "machine github.com login me password x\nbogus api.wandb.ai\n";
    write(&netrc(&w), text);
    let err = fails(&run(&w, &["login"], &[]), 1);
    let path = netrc(&w).display().to_string();
    assert!(
        err.starts_with(&format!(
            "wbl: WARNING Failed to read netrc file at {path}, error on line 2: "
        )),
        "{err}"
    );
    assert!(err.contains("wbl: error: No API key configured."), "{err}");
    assert_eq!(read(&netrc(&w)), text);
    // An explicit key still works, and the broken file is not touched.
    ok(run(&w, &["login", &key(17)], &[]));
    assert_eq!(read(&netrc(&w)), text);
}

#[test]
fn o18_verify_refuses_an_unknown_key_and_keeps_the_stored_one() {
    let w = World::new(Backend::SecretService);
    let server = FakeWandb::start(&key(1), Answer::NullViewer, Answer::NullViewer);
    ok(run(&w, &["login", "--host", &server.url, &key(1)], &[]));
    let out = run(
        &w,
        &["login", "--verify", "--host", &server.url, &key(2)],
        &[],
    );
    // (after "Loading settings from", as the first login recorded the host there)
    assert!(
        fails(&out, 1).ends_with(&format!(
            "\nwbl: error: Failed to authenticate with {}: invalid credentials: the server did not recognize an account for the configured credentials\n",
            server.url
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(stored(&w, &server.url), Some(key(1)));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/graphql");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(basic(&key(2)).as_str())
    );
    assert!(seen[0].body_ok, "{}", seen[0].body);
    assert!(
        seen[0]
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        seen[0].content_type
    );
}

#[test]
fn o19_verify_prints_user_and_entity() {
    let w = World::new(Backend::SecretService);
    let team = FakeWandb::start(
        &key(19),
        Answer::Viewer {
            username: "alice",
            entity: "team1",
            teams: &["team1"],
        },
        Answer::Status(401),
    );
    let out = ok(run(
        &w,
        &["login", "--verify", "--host", &team.url, &key(19)],
        &[],
    ));
    assert!(
        stderr(&out).ends_with(&format!(
            "wbl: Currently logged in as: alice (team1) to {}. Use `wbl login --relogin` to force relogin\n",
            team.url
        )),
        "{}",
        stderr(&out)
    );
    assert!(team.seen()[0].key_ok);
    // Verified: stored as the account of its W&B user.
    assert_eq!(stored_as(&w, &team.url, "alice"), Some(key(19)));
    assert_eq!(stored(&w, &team.url), None);

    // The entity is shown only when it is one of the user's teams and not the user.
    for (entity, teams) in [("alice", &["alice"][..]), ("other", &["team1"][..])] {
        let s = FakeWandb::start(
            &key(19),
            Answer::Viewer {
                username: "alice",
                entity,
                teams,
            },
            Answer::Status(401),
        );
        let out = ok(run(
            &w,
            &["login", "--verify", "--host", &s.url, &key(19)],
            &[],
        ));
        assert!(
            stderr(&out).ends_with(&format!(
                "wbl: Currently logged in as: alice to {}. Use `wbl login --relogin` to force relogin\n",
                s.url
            )),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn o20_anonymously_only_warns() {
    let w = World::new(Backend::SecretService);
    let out = ok(run(
        &w,
        &["login", "--anonymously", "--no-verify", &a(40)],
        &[],
    ));
    assert_eq!(
        stderr(&out),
        format!(
            "wbl: WARNING The --anonymously parameter has no effect and will be removed in a future version.\nwbl: Stored the API key for {CLOUD} in the keychain.\n{BANNER_NO_VERIFY}"
        )
    );
    assert_eq!(stored(&w, CLOUD), Some(a(40)));
}

#[test]
fn o21_wandb_base_url_picks_the_host_without_touching_settings() {
    let w = World::new(Backend::SecretService);
    ok(run(
        &w,
        &["login", "--no-verify", &key(21)],
        &[("WANDB_BASE_URL", "https://h.example")],
    ));
    assert_eq!(stored(&w, "https://h.example"), Some(key(21)));
    assert_eq!(stored(&w, CLOUD), None);
    assert!(!w.home().join(".config").exists());
    assert!(!w.home().join("wandb").exists());
}

#[test]
fn o22_status_json_in_a_clean_environment() {
    let w = World::new(Backend::SecretService);
    let out = ok(run(&w, &["status", "--json"], &[]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agent_running"], false);
    assert_eq!(v["current_host"], CLOUD);
    assert_eq!(v["hosts"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["hosts"][0]["url"], CLOUD);
    assert_eq!(v["hosts"][0]["source"], serde_json::Value::Null);
    assert_eq!(v["hosts"][0]["in_keychain"], serde_json::Value::Null);
    assert_eq!(
        v["settings_files"][0]["path"],
        global_settings(&w).display().to_string()
    );
    assert_eq!(v["settings_files"][0]["exists"], false);
    assert_eq!(v["settings_files"][1]["scope"], "workspace");
    assert_eq!(v["netrc"]["path"], netrc(&w).display().to_string());
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert!(w.agent_pid().is_none(), "status does not start the agent");
}

// ---------------------------------------------------------------------------------------------
// Resolution order and the other sources.

#[test]
fn env_beats_keychain_beats_netrc() {
    let w = World::new(Backend::SecretService);
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai login user password {}\n", key(3)),
    );
    ok(run(&w, &["login", &key(1)], &[]));
    // Keychain over netrc.
    let out = ok(run(&w, &["login"], &[]));
    assert!(
        stderr(&out).contains("from the keychain"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains(&format!("from {}.", netrc(&w).display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(stored(&w, CLOUD), Some(key(1)));
    // Environment over keychain.
    let out = ok(run(&w, &["login"], &[("WANDB_API_KEY", &key(4))]));
    assert!(
        stderr(&out).contains("from WANDB_API_KEY."),
        "{}",
        stderr(&out)
    );
    assert_eq!(stored(&w, CLOUD), Some(key(1)));
    // status says the same.
    let v: serde_json::Value = serde_json::from_slice(
        &ok(run(
            &w,
            &["status", "--json"],
            &[("WANDB_API_KEY", &key(4))],
        ))
        .stdout,
    )
    .unwrap();
    assert_eq!(v["hosts"][0]["source"], "env");
    let v: serde_json::Value =
        serde_json::from_slice(&ok(run(&w, &["status", "--json"], &[])).stdout).unwrap();
    assert_eq!(v["hosts"][0]["source"], "keychain");
    assert_eq!(v["hosts"][0]["plaintext"][0]["kind"], "netrc");
    assert_eq!(v["hosts"][0]["plaintext"][0]["same_as_keychain"], false);
}

#[test]
fn settings_api_key_is_source_two_before_netrc() {
    let w = World::new(Backend::SecretService);
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai login user password {}\n", key(3)),
    );
    write(
        &global_settings(&w),
        &format!("[default]\napi_key = {}\n", key(1)),
    );
    write(
        &workspace_settings(&w),
        &format!("[default]\napi_key = {}\n", key(2)),
    );
    let out = ok(run(&w, &["login"], &[]));
    let ws = workspace_settings(&w).display().to_string();
    let err = stderr(&out);
    assert!(
        err.contains(&format!("wbl: Loaded credentials for {CLOUD} from {ws}.\n")),
        "{err}"
    );
    for p in [global_settings(&w), workspace_settings(&w)] {
        assert!(
            err.contains(&format!(
                "wbl: WARNING A plaintext API key is still in api_key in {}; run `wbl migrate` to remove it.\n",
                p.display()
            )),
            "{err}"
        );
    }
    // The workspace file overrides the global one; neither file is changed.
    assert_eq!(stored(&w, CLOUD), Some(key(2)));
    assert_eq!(
        read(&workspace_settings(&w)),
        format!("[default]\napi_key = {}\n", key(2))
    );
}

#[test]
fn invalid_key_in_a_file_names_the_file() {
    let w = World::new(Backend::SecretService);
    write(
        &netrc(&w),
        "machine api.wandb.ai login user password short\n",
    );
    let err = fails(&run(&w, &["login"], &[]), 1);
    assert!(
        err.starts_with(&format!(
            "wbl: error: API key must have 40+ characters, has 5. (the API key for {CLOUD} in {}",
            netrc(&w).display()
        )),
        "{err}"
    );
    assert!(!err.contains("short"), "{err}");
    assert_eq!(stored(&w, CLOUD), None);
}

#[test]
fn self_hosted_host_with_port_verifies_and_stores_per_port() {
    let w = World::new(Backend::SecretService);
    let server = FakeWandb::start(
        &key(5),
        Answer::Viewer {
            username: "bob",
            entity: "bob",
            teams: &[],
        },
        Answer::NullViewer,
    );
    let out = ok(run(
        &w,
        &[
            "login",
            "--verify",
            "--host",
            &format!("{}/", server.url),
            &key(5),
        ],
        &[],
    ));
    assert!(stderr(&out).contains("Currently logged in as: bob to http://127.0.0.1:"));
    let target = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(stored_as(&w, &target, "bob"), Some(key(5)));
    assert_eq!(stored_as(&w, "http://127.0.0.1", "bob"), None);
    assert_eq!(
        read(&global_settings(&w)),
        format!("[default]\nbase_url = {target}\n\n")
    );
    // A netrc key for that machine (host:port) is verified too.
    let w = World::new(Backend::SecretService);
    write(
        &netrc(&w),
        &format!(
            "machine 127.0.0.1:{}\n  login user\n  password {}\n",
            server.port,
            key(6)
        ),
    );
    let out = run(
        &w,
        &["login", "--verify"],
        &[("WANDB_BASE_URL", &server.url)],
    );
    assert!(fails(&out, 1).contains("Failed to authenticate with"));
    assert_eq!(stored(&w, &target), None, "a refused key is not stored");
    assert_eq!(
        server.seen().last().unwrap().authorization,
        Some(basic(&key(6)))
    );
}

#[test]
fn relogin_without_a_terminal_fails_clearly_and_keeps_the_key() {
    let w = World::new(Backend::SecretService);
    ok(run(&w, &["login", &key(1)], &[]));
    let err = fails(&run(&w, &["login", "--relogin"], &[]), 1);
    assert!(
        err.starts_with("wbl: error: No API key configured. Use `wbl login` to log in. There is no terminal to ask for the key on: run `wbl login KEY`, or pipe it in with `wbl login -`."),
        "{err}"
    );
    assert_eq!(stored(&w, CLOUD), Some(key(1)));
}

#[test]
fn key_from_stdin() {
    let w = World::new(Backend::SecretService);
    let k = key_v1(4);
    ok(run_stdin(&w, &["login", "-"], &[], Some(&format!("{k}\n"))));
    assert_eq!(stored(&w, CLOUD), Some(k));
    let out = run_stdin(&w, &["login", "-"], &[], Some("short\n"));
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key must have 40+ characters, has 5.\n"
    );
}

#[test]
fn bad_hosts_get_the_sdk_messages_on_one_line() {
    let w = World::new(Backend::SecretService);
    let cases = [
        (
            "https://wandb.ai",
            "wbl: error: 'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?\n",
        ),
        (
            "http://api.wandb.ai",
            "wbl: error: http is not secure, please use https://api.wandb.ai\n",
        ),
        (
            "not a url",
            "wbl: error: invalid host URL 'not a url': relative URL without a base\n",
        ),
        (
            "ftp://h.example",
            "wbl: error: invalid host URL 'ftp://h.example': URL scheme should be 'http' or 'https'\n",
        ),
    ];
    for (host, msg) in cases {
        let out = run(&w, &["login", "--host", host, &key(1)], &[]);
        assert_eq!(fails(&out, 1), msg);
    }
    let out = run(
        &w,
        &["login", &key(1)],
        &[("WANDB_BASE_URL", "https://wandb.ai")],
    );
    assert_eq!(
        fails(&out, 1),
        "wbl: error: WANDB_BASE_URL: 'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?\n"
    );
    assert_eq!(home_entries(&w), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// --verify failures.

#[test]
fn verify_http_errors_timeouts_and_refused_connections() {
    let w = World::new(Backend::SecretService);
    let s401 = FakeWandb::start(&key(1), Answer::Status(401), Answer::Status(401));
    let err = fails(
        &run(
            &w,
            &["login", "--verify", "--host", &s401.url, &key(1)],
            &[],
        ),
        1,
    );
    assert_eq!(
        err,
        format!(
            "wbl: error: Failed to authenticate with {}: HTTP 401: fake server says 401\n",
            s401.url
        )
    );
    let s500 = FakeWandb::start(&key(1), Answer::Status(500), Answer::Status(500));
    let err = fails(
        &run(
            &w,
            &["login", "--verify", "--host", &s500.url, &key(1)],
            &[],
        ),
        1,
    );
    assert_eq!(
        err,
        format!(
            "wbl: error: An error occurred while checking authentication with {}: HTTP 500: fake server says 500\n",
            s500.url
        )
    );
    let slow = FakeWandb::start(&key(1), Answer::Hang, Answer::Hang);
    let err = fails(
        &run(
            &w,
            &["login", "--verify", "--host", &slow.url, &key(1)],
            &[("WANDB_HTTP_TIMEOUT", "1")],
        ),
        1,
    );
    assert_eq!(
        err,
        format!(
            "wbl: error: An error occurred while checking authentication with {}: no answer within 1 s (set WANDB_HTTP_TIMEOUT to wait longer)\n",
            slow.url
        )
    );
    assert_eq!(slow.seen().len(), 1);
    let gone = {
        let s = FakeWandb::start(&key(1), Answer::Status(500), Answer::Status(500));
        s.url.clone()
    };
    let err = fails(
        &run(&w, &["login", "--verify", "--host", &gone, &key(1)], &[]),
        1,
    );
    assert!(
        err.starts_with(&format!(
            "wbl: error: An error occurred while checking authentication with {gone}: "
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let err = fails(
        &run(
            &w,
            &["login", "--verify", "--host", &s401.url, &key(1)],
            &[("WANDB_HTTP_TIMEOUT", "soon")],
        ),
        1,
    );
    assert_eq!(
        err,
        "wbl: error: WANDB_HTTP_TIMEOUT must be a positive number of seconds, not \"soon\"\n"
    );
    // Nothing was stored for any of them.
    let v: serde_json::Value =
        serde_json::from_slice(&ok(run(&w, &["status", "--json"], &[])).stdout).unwrap();
    assert_eq!(v["credentials"], serde_json::json!([]));
}

#[test]
fn verify_checks_an_env_key_too() {
    let w = World::new(Backend::SecretService);
    let server = FakeWandb::start(
        &key(1),
        Answer::Viewer {
            username: "alice",
            entity: "alice",
            teams: &[],
        },
        Answer::NullViewer,
    );
    let (k1, k2) = (key(1), key(2));
    let out = ok(run(
        &w,
        &["login", "--verify"],
        &[("WANDB_BASE_URL", &server.url), ("WANDB_API_KEY", &k1)],
    ));
    assert!(stderr(&out).contains("Currently logged in as: alice to"));
    let out = run(
        &w,
        &["login", "--verify"],
        &[("WANDB_BASE_URL", &server.url), ("WANDB_API_KEY", &k2)],
    );
    assert!(fails(&out, 1).contains("Failed to authenticate with"));
    assert_eq!(server.seen().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// status, token, logout.

#[test]
fn status_shows_sources_masked_keys_plaintext_copies_and_settings() {
    let w = World::new(Backend::SecretService);
    let k = key_v1(1);
    ok(run(&w, &["login", &k], &[]));
    ok(run(
        &w,
        &["login", "--host", "https://my.host:8443", &key(2)],
        &[],
    ));
    ok(run(&w, &["login", "--cloud", &k], &[]));
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai\n  login user\n  password {k}\n"),
    );
    write(
        &workspace_settings(&w),
        &format!("[default]\napi_key = {}\n", key(9)),
    );
    let out = ok(run(&w, &["status", "--json"], &[]));
    let text = stdout(&out);
    assert!(!text.contains(&k) && !text.contains(&key(9)) && !text.contains(&key(2)));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["agent_running"], true);
    assert_eq!(v["agent"]["backend"], "secret-service");
    let cloud = &v["hosts"][0];
    assert_eq!(cloud["url"], CLOUD);
    assert_eq!(cloud["current"], true);
    assert_eq!(cloud["source"], "keychain");
    assert_eq!(cloud["in_keychain"], true);
    assert_eq!(
        cloud["key"],
        format!("{}****{}", &k[..4], &k[k.len() - 4..])
    );
    let plain = cloud["plaintext"].as_array().unwrap();
    assert_eq!(plain.len(), 2, "{cloud}");
    assert_eq!(plain[0]["kind"], "settings");
    assert_eq!(
        plain[0]["path"],
        workspace_settings(&w).display().to_string()
    );
    assert_eq!(plain[0]["same_as_keychain"], false);
    assert_eq!(plain[1]["kind"], "netrc");
    assert_eq!(plain[1]["same_as_keychain"], true);
    assert_eq!(cloud["warnings"].as_array().map(Vec::len), Some(2));
    let other = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == "https://my.host:8443")
        .expect("the self-hosted host is listed");
    assert_eq!(other["source"], "keychain");
    assert_eq!(other["current"], false);
    assert_eq!(other["plaintext"], serde_json::json!([]));
    assert_eq!(
        v["settings_files"][1]["keys"],
        serde_json::json!(["api_key"])
    );
    assert_eq!(v["settings_files"][1]["exists"], true);

    // The same in words.
    let text = stdout(&ok(run(&w, &["status"], &[])));
    assert!(
        text.contains("hosts:\n  https://api.wandb.ai (current)\n"),
        "{text}"
    );
    assert!(text.contains(&format!("{}****", &k[..4])), "{text}");
    assert!(
        text.contains("WARNING A plaintext API key for api.wandb.ai is still in the netrc file"),
        "{text}"
    );
    assert!(!text.contains(&k), "{text}");
}

#[test]
fn token_prints_only_the_key() {
    let w = World::new(Backend::SecretService);
    let out = run(&w, &["token", "--host", "https://h.example"], &[]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: no API key stored for https://h.example; run `wbl login --host https://h.example`\n"
    );
    assert_eq!(stdout(&out), "");
    ok(run(
        &w,
        &["login", "--host", "https://h.example", &key(1)],
        &[],
    ));
    let out = ok(run(&w, &["token", "--host", "https://h.example/"], &[]));
    assert_eq!(stdout(&out), format!("{}\n", key(1)));
    assert_eq!(stderr(&out), "");
}

#[test]
fn logout_one_host_or_all_and_warn_about_what_remains() {
    let w = World::new(Backend::SecretService);
    ok(run(&w, &["login", &key(1)], &[]));
    ok(run(
        &w,
        &["login", "--host", "https://h.example", &key(2)],
        &[],
    ));
    ok(run(
        &w,
        &["login", "--host", "https://g.example:444", &key(3)],
        &[],
    ));
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai login user password {}\n", key(1)),
    );
    let out = ok(run(
        &w,
        &["logout", "--host", CLOUD],
        &[("WANDB_API_KEY", &key(5))],
    ));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "wbl: Removed the API key for {CLOUD} from the keychain.\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("A plaintext API key for api.wandb.ai is still in the netrc file"),
        "{err}"
    );
    assert!(
        err.contains("WANDB_API_KEY is set in this environment"),
        "{err}"
    );
    assert_eq!(stored(&w, CLOUD), None);
    assert_eq!(stored(&w, "https://h.example"), Some(key(2)));
    let out = ok(run(&w, &["logout", "--host", CLOUD], &[]));
    assert!(stderr(&out).starts_with("wbl: No API key was stored for https://api.wandb.ai.\n"));
    let out = run(&w, &["logout", "--all", "--host", CLOUD], &[]);
    assert_eq!(out.status.code(), Some(2), "clap refuses --all with --host");
    let out = ok(run(&w, &["logout", "--all"], &[]));
    assert_eq!(
        stderr(&out).matches("Removed the key for").count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(stored(&w, "https://h.example"), None);
    assert_eq!(stored(&w, "https://g.example:444"), None);
    // The agent's cache forgot them too.
    let out = run(&w, &["token", "--host", "https://h.example"], &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn logout_all_removes_wandb_keys_only_and_forge_addresses_together() {
    let w = World::new(Backend::SecretService);
    // A git password stored through wbl's credential helper (as git would).
    let mut c = w.cmd(WBL);
    c.args(["credential", "store"]).stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"protocol=https\nhost=git.example\nusername=octo\npassword=gitpass\n\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    // A key stored for Forge answers for the W&B host; logging out of either removes it.
    ok(run(
        &w,
        &[
            "login",
            "--host",
            "https://api.forge.coreweave.com",
            &key(1),
        ],
        &[],
    ));
    assert_eq!(
        stdout(&ok(run(&w, &["token"], &[]))),
        format!("{}\n", key(1))
    );
    let out = ok(run(&w, &["logout"], &[]));
    assert!(
        stderr(&out).contains("Removed the API key for https://api.forge.coreweave.com"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        run(
            &w,
            &["token", "--host", "https://api.forge.coreweave.com"],
            &[]
        )
        .status
        .code(),
        Some(1)
    );

    ok(run(&w, &["login", "--cloud", &key(2)], &[]));
    let out = ok(run(&w, &["logout", "--all"], &[]));
    let err = stderr(&out);
    assert!(
        err.contains("Removed the key for https://api.wandb.ai (user api)"),
        "{err}"
    );
    assert!(
        err.contains("Kept 1 git credential(s); `wbl logout --all --git` removes them too."),
        "{err}"
    );
    assert_eq!(
        w.secret_tool_lookup("https://git.example", "octo")
            .as_deref(),
        Some("gitpass")
    );
    let out = ok(run(&w, &["logout", "--all", "--git"], &[]));
    assert!(
        stderr(&out).contains("Removed the key for https://git.example (user octo)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.secret_tool_lookup("https://git.example", "octo"), None);
    // --help says so.
    let help = stdout(&ok(run(&w, &["logout", "--help"], &[])));
    assert!(help.contains("git credentials stay unless --git"), "{help}");
}

// ---------------------------------------------------------------------------------------------
// exec.

#[test]
fn exec_gives_the_child_the_key_in_its_environment_only() {
    let w = World::new(Backend::SecretService);
    let k = key_v1(2);
    ok(run(&w, &["login", &k], &[]));
    let script = r#"printf '%s|%s|' "$WANDB_API_KEY" "${WANDB_BASE_URL-unset}"; echo $$; tr '\0' ' ' </proc/$$/cmdline"#;
    let child = {
        let mut c = w.cmd(WBL);
        c.args(["exec", "--", "sh", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let pid = child.id();
    let out = ok(child.wait_with_output().unwrap());
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{k}|unset|{pid}"),
        "the child sees the key, and runs in wbl's own process (exec)"
    );
    let cmdline = lines.next().unwrap();
    assert!(cmdline.starts_with("sh -c "), "{cmdline}");
    assert!(!cmdline.contains(&k), "the key is not on the command line");
    assert_eq!(stderr(&out), "");

    // A self-hosted host is exported as WANDB_BASE_URL.
    ok(run(
        &w,
        &["login", "--host", "https://h.example:8443", &key(3)],
        &[],
    ));
    let out = ok(run(
        &w,
        &[
            "exec",
            "--host",
            "https://h.example:8443",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$WANDB_API_KEY\" \"$WANDB_BASE_URL\"",
        ],
        &[],
    ));
    assert_eq!(stdout(&out), format!("{}|https://h.example:8443", key(3)));
    // The cloud, while the settings name another default: WANDB_BASE_URL says which.
    let out = ok(run(
        &w,
        &[
            "exec",
            "--host",
            CLOUD,
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$WANDB_API_KEY\" \"$WANDB_BASE_URL\"",
        ],
        &[],
    ));
    assert_eq!(stdout(&out), format!("{k}|{CLOUD}"));
}

#[test]
fn exec_passes_exit_status_and_signals_through() {
    use std::os::unix::process::ExitStatusExt;
    let w = World::new(Backend::SecretService);
    ok(run(&w, &["login", &key(1)], &[]));
    let out = run(&w, &["exec", "--", "sh", "-c", "exit 7"], &[]);
    assert_eq!(out.status.code(), Some(7));
    let out = run(&w, &["exec", "--", "sh", "-c", "kill -TERM $$"], &[]);
    assert_eq!(out.status.signal(), Some(15));
    let out = run(&w, &["exec", "--", "no-such-command-wbl-test"], &[]);
    assert_eq!(
        fails(&out, 127),
        "wbl: error: no-such-command-wbl-test: command not found\n"
    );
    let out = run(&w, &["exec", "--", "/etc/passwd"], &[]);
    assert_eq!(
        fails(&out, 126),
        "wbl: error: /etc/passwd: permission denied\n"
    );
    let out = run(
        &w,
        &["exec", "--host", "https://nokey.example", "--", "true"],
        &[],
    );
    assert_eq!(
        fails(&out, 1),
        "wbl: error: no API key stored for https://nokey.example; run `wbl login --host https://nokey.example` first\n"
    );
}

// ---------------------------------------------------------------------------------------------
// The hidden prompt, in a real pseudo-terminal.

/// `wbl ARGS` on a fresh pseudo-terminal with echo ON. rexpect turns echo off in the child
/// before it runs the program, which would hide a key wbl echoed; `stty echo` restores it, and
/// the probe line proves it: the probe must come back echoed before wbl starts.
fn spawn_in_pty(w: &World, args: &[&str], env: &[(&str, &str)]) -> rexpect::session::PtySession {
    let mut c = std::process::Command::new("sh");
    w.apply_env(&mut c);
    no_proxy(&mut c);
    c.env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("-c")
        .arg("stty echo; echo echo-restored; IFS= read -r probe; exec \"$0\" \"$@\"")
        .arg(WBL)
        .args(args);
    // The timeout bounds each wait for output; it is not a speed requirement.
    let mut p = rexpect::session::spawn_command(c, Some(30_000)).unwrap();
    // Send the probe only once `stty echo` has run, or it may be read unechoed.
    p.exp_string("echo-restored").unwrap();
    p.send_line("probe-echo-is-on").unwrap();
    p.exp_string("probe-echo-is-on").unwrap();
    p
}

#[test]
fn prompt_hides_the_key_and_asks_again_after_a_bad_one() {
    let w = World::new(Backend::SecretService);
    let mut p = spawn_in_pty(&w, &["login"], &[]);
    let mut seen = String::new();
    seen += &p
        .exp_string("wbl: Paste your API key and hit enter: ")
        .unwrap();
    assert!(
        seen.contains("wbl: Logging into https://api.wandb.ai. (Learn how to deploy a W&B server locally: https://wandb.me/wandb-server)"),
        "{seen}"
    );
    assert!(
        seen.contains("wbl: Create a new API key at: https://wandb.ai/authorize?ref=models"),
        "{seen}"
    );
    assert!(seen.contains("wbl: Store your API key securely and do not share it."));
    p.send_line("shortkeyxyz").unwrap();
    seen += &p
        .exp_string("wbl: ERROR Invalid API key: API key must have 40+ characters, has 11.")
        .unwrap();
    seen += &p
        .exp_string("wbl: Paste your API key and hit enter: ")
        .unwrap();
    let k = key_v1(42);
    p.send_line(&k).unwrap();
    seen += &p.exp_eof().unwrap();
    assert!(
        seen.contains("wbl: Stored the API key for https://api.wandb.ai in the keychain."),
        "{seen}"
    );
    assert!(seen.contains("W&B API key is configured."), "{seen}");
    assert!(
        !seen.contains("shortkeyxyz"),
        "a typed key was echoed: {seen}"
    );
    assert!(!seen.contains(&k), "the key was echoed: {seen}");
    assert!(
        !seen.contains("wandb_v1_"),
        "part of the key was echoed: {seen}"
    );
    assert_eq!(stored(&w, CLOUD), Some(k));
}

#[test]
fn prompt_for_a_self_hosted_server_verifies_and_loops_on_a_refused_key() {
    let w = World::new(Backend::SecretService);
    let server = FakeWandb::start(
        &key(2),
        Answer::Viewer {
            username: "carol",
            entity: "lab",
            teams: &["lab"],
        },
        Answer::NullViewer,
    );
    let mut p = spawn_in_pty(
        &w,
        &["login", "--relogin", "--verify", "--host", &server.url],
        &[],
    );
    let mut seen = p
        .exp_string("wbl: Paste your API key and hit enter: ")
        .unwrap();
    assert!(
        seen.contains(&format!(
            "wbl: Create a new API key at: {}/authorize?ref=models",
            server.url
        )),
        "{seen}"
    );
    assert!(!seen.contains("Logging into"), "{seen}");
    p.send_line(&key(1)).unwrap();
    seen += &p
        .exp_string(&format!(
            "wbl: ERROR Invalid API key: Failed to authenticate with {}: invalid credentials",
            server.url
        ))
        .unwrap();
    seen += &p
        .exp_string("wbl: Paste your API key and hit enter: ")
        .unwrap();
    p.send_line(&key(2)).unwrap();
    seen += &p.exp_eof().unwrap();
    assert!(
        seen.contains(&format!(
            "wbl: Currently logged in as: carol (lab) to {}.",
            server.url
        )),
        "{seen}"
    );
    assert!(!seen.contains(&key(1)) && !seen.contains(&key(2)), "{seen}");
    assert_eq!(stored_as(&w, &server.url, "carol"), Some(key(2)));
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn term_dumb_means_no_prompt_even_on_a_terminal() {
    let w = World::new(Backend::SecretService);
    let mut p = spawn_in_pty(&w, &["login", "--relogin"], &[("TERM", "dumb")]);
    let seen = p.exp_eof().unwrap();
    assert!(
        seen.contains("wbl: error: No API key configured."),
        "{seen}"
    );
    assert!(!seen.contains("Paste your API key"), "{seen}");
}

#[test]
fn wandb_silent_hides_everything_but_fatal_errors() {
    let w = World::new(Backend::SecretService);
    let out = ok(run(
        &w,
        &[
            "login",
            "--anonymously",
            "--host",
            "https://h.example",
            &key(1),
        ],
        &[("WANDB_SILENT", "true")],
    ));
    assert_eq!(stderr(&out), "");
    assert_eq!(stored(&w, "https://h.example"), Some(key(1)));
    let out = run(&w, &["login", "short"], &[("WANDB_SILENT", "true")]);
    assert_eq!(
        fails(&out, 1),
        "wbl: error: API key must have 40+ characters, has 5.\n"
    );
}

#[test]
fn identity_token_file_alone_stores_nothing() {
    let w = World::new(Backend::SecretService);
    let out = ok(run(
        &w,
        &["login"],
        &[("WANDB_IDENTITY_TOKEN_FILE", "/var/run/token.jwt")],
    ));
    assert!(
        stderr(&out).starts_with(
            "wbl: Using the identity token file /var/run/token.jwt (WANDB_IDENTITY_TOKEN_FILE) for https://api.wandb.ai"
        ),
        "{}",
        stderr(&out)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&ok(run(&w, &["status", "--json"], &[])).stdout).unwrap();
    assert_eq!(v["credentials"], serde_json::json!([]));
}
