//! `wbl migrate` on real files in a private HOME, with the real agent and a private
//! gnome-keyring: what moves, what stays byte for byte, and what happens when the file cannot be
//! written or the process dies between the keychain write and the file rewrite.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    set_mode(path, mode);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn migrate(w: &World, args: &[&str]) -> Output {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    w.wbl(&all)
}

fn netrc(w: &World) -> PathBuf {
    w.home().join(".netrc")
}

fn cloud_key(w: &World) -> Option<String> {
    w.secret_tool_lookup("https://api.wandb.ai", "api")
}

#[test]
fn sdk_netrc_entry_moves_and_every_other_byte_stays() {
    let w = World::new(Backend::SecretService);
    let k = key(1);
    let sdk_block = format!("machine api.wandb.ai\n  login user\n  password {k}\n");
    let before = format!(
        "# my netrc\n\
         machine github.com\n  login octo\n  password gh-token\n\
         \n\
         {sdk_block}\
         \n\
         machine api.wandb.ai.example.com login user password {other}\n\
         macdef init\n\
         machine api.wandb.ai login user password {fake}\n\
         \n\
         default login anonymous password anon@\n",
        other = key(2),
        fake = key(3),
    );
    write(&netrc(&w), &before, 0o640);
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let old_inode = inode(&netrc(&w));
    let out = ok(migrate(&w, &[]));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "moved:  https://api.wandb.ai (user api) from {} (machine api.wandb.ai, line 6)",
            netrc(&w).display()
        )),
        "{text}"
    );
    assert!(text.contains("`default` entry"), "{text}");
    assert!(text.contains("export WANDB_API_KEY=$(wbl token)"), "{text}");
    assert!(
        text.contains("1 moved to the keychain (secret-service), 0 left in place"),
        "{text}"
    );
    // Exactly the SDK block went: the look-alike machine, the macdef body, the default entry,
    // comments, blank lines and order are untouched; so is the file mode.
    assert_eq!(read(&netrc(&w)), before.replace(&sdk_block, ""));
    assert_eq!(mode_of(&netrc(&w)), 0o640);
    assert_ne!(
        inode(&netrc(&w)),
        old_inode,
        "replaced by a rename, never rewritten in place"
    );
    assert_eq!(cloud_key(&w).as_deref(), Some(k.as_str()));
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{k}\n"));
    // The key is in no file any more (gnome-keyring's own file is encrypted).
    assert_eq!(w.files_containing(&k), Vec::<PathBuf>::new());
    // A second run has nothing to do.
    let out = ok(migrate(&w, &[]));
    assert!(
        stdout(&out).contains("nothing to migrate"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(&netrc(&w)), before.replace(&sdk_block, ""));
}

#[test]
fn one_line_entries_and_selected_hosts() {
    let w = World::new(Backend::SecretService);
    let (k1, k2) = (key(1), key_v1(2));
    let before = format!(
        "machine a.example login x password y machine api.wandb.ai login user password {k1} \
         machine b.example login z password w\r\n\
         machine wandb.example.com:8443\n\tlogin user\n\tpassword {k2}\n"
    );
    write(&netrc(&w), &before, 0o600);
    // Only the host asked for.
    let out = ok(migrate(&w, &["--host", "https://wandb.example.com:8443"]));
    assert!(stdout(&out).contains("1 moved"), "{}", stdout(&out));
    let after_first = format!(
        "machine a.example login x password y machine api.wandb.ai login user password {k1} \
         machine b.example login z password w\r\n"
    );
    assert_eq!(read(&netrc(&w)), after_first);
    assert_eq!(
        w.secret_tool_lookup("https://wandb.example.com:8443", "api")
            .as_deref(),
        Some(k2.as_str())
    );
    assert_eq!(cloud_key(&w), None);
    // Then the cloud key, out of the middle of a line (CRLF kept).
    ok(migrate(&w, &[]));
    assert_eq!(
        read(&netrc(&w)),
        "machine a.example login x password y machine b.example login z password w\r\n"
    );
    assert_eq!(cloud_key(&w).as_deref(), Some(k1.as_str()));
}

#[test]
fn settings_api_key_moves_under_its_base_url() {
    let w = World::new(Backend::SecretService);
    let k = key(5);
    let path = w.home().join(".config/wandb/settings");
    let before = format!(
        "[default]\n# comment\nbase_url = https://wandb.example.com\napi_key = {k}\n\
         entity = me\n\n[other]\napi_key = not-this-one\n"
    );
    write(&path, &before, 0o600);
    let out = ok(migrate(&w, &[]));
    assert!(
        stdout(&out).contains(&format!(
            "moved:  https://wandb.example.com (user api) from {} (api_key)",
            path.display()
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        read(&path),
        "[default]\n# comment\nbase_url = https://wandb.example.com\nentity = me\n\n\
         [other]\napi_key = not-this-one\n"
    );
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(
        stdout(&ok(w.wbl(&[
            "token",
            "--host",
            "https://wandb.example.com"
        ]))),
        format!("{k}\n")
    );
}

#[test]
fn every_netrc_location_and_a_conflicting_copy() {
    let w = World::new(Backend::SecretService);
    let (k1, k2) = (key(1), key(2));
    let custom = w.home().join("cfg/my-netrc");
    let sdk = |k: &str| format!("machine api.wandb.ai\n  login user\n  password {k}\n");
    write(&custom, &sdk(&k1), 0o600);
    write(
        &w.home().join("_netrc"),
        &format!("# windows-style\n{}", sdk(&k1)),
        0o600,
    );
    write(&netrc(&w), &sdk(&k2), 0o600);
    let out = ok(w.wbl_env(&["migrate"], &[("NETRC", custom.to_str().unwrap())]));
    let text = stdout(&out);
    // $NETRC is what the SDK reads: its key wins; the same key elsewhere is removed too…
    assert_eq!(cloud_key(&w).as_deref(), Some(k1.as_str()));
    assert_eq!(read(&custom), "");
    assert_eq!(read(&w.home().join("_netrc")), "# windows-style\n");
    // …but a different key is never overwritten nor thrown away.
    assert_eq!(read(&netrc(&w)), sdk(&k2));
    assert!(text.contains("already holds a different value"), "{text}");
    assert!(
        text.contains("2 moved to the keychain (secret-service), 1 left in place"),
        "{text}"
    );
}

#[test]
fn a_different_key_in_the_keychain_is_kept() {
    let w = World::new(Backend::SecretService);
    let (mine, old) = (key(1), key(2));
    ok(w.wbl(&["login", &mine]));
    let text = format!("machine api.wandb.ai\n  login user\n  password {old}\n");
    write(&netrc(&w), &text, 0o600);
    let out = ok(migrate(&w, &[]));
    assert!(
        stdout(&out).contains("already holds a different value"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(stdout(&ok(w.wbl(&["token"]))), format!("{mine}\n"));
}

#[test]
fn invalid_keys_and_unreadable_files_are_left_alone() {
    let w = World::new(Backend::SecretService);
    let text = "machine api.wandb.ai login user password too-short\n";
    write(&netrc(&w), text, 0o600);
    let broken = w.home().join("_netrc");
    write(&broken, "machine\n", 0o600);
    let out = ok(migrate(&w, &[]));
    let s = stdout(&out);
    assert!(s.contains("no valid W&B API key"), "{s}");
    assert!(
        s.contains(&format!("cannot read {}", broken.display())),
        "{s}"
    );
    assert!(s.contains("nothing to migrate"), "{s}");
    assert!(!s.contains("too-short"), "keys are never printed: {s}");
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(read(&broken), "machine\n");
}

#[test]
fn dry_run_changes_nothing_and_keep_only_copies() {
    let w = World::new(Backend::SecretService);
    let k = key(3);
    let text = format!("machine api.wandb.ai\n  login user\n  password {k}\n");
    write(&netrc(&w), &text, 0o600);
    let out = ok(migrate(&w, &["--dry-run"]));
    assert!(
        stdout(&out).contains("would move: https://api.wandb.ai (user api) from"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains(&k));
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(
        w.agent_pid(),
        None,
        "a dry run does not even start the agent"
    );
    assert_eq!(cloud_key(&w), None);

    let out = ok(migrate(&w, &["--keep"]));
    assert!(
        stdout(&out).contains("copied: https://api.wandb.ai"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(cloud_key(&w).as_deref(), Some(k.as_str()));

    // Later, without --keep: the copy in the keychain is the same, so the file is cleaned.
    ok(migrate(&w, &[]));
    assert_eq!(read(&netrc(&w)), "");
}

#[test]
fn read_only_netrc_is_a_clear_error_and_nothing_is_lost() {
    let w = World::new(Backend::SecretService);
    let k = key(4);
    let text = format!(
        "machine other.example login a password b\nmachine api.wandb.ai login user password {k}\n"
    );
    write(&netrc(&w), &text, 0o400);
    let out = migrate(&w, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("wbl: error: could not remove https://api.wandb.ai"),
        "{err}"
    );
    assert!(err.contains("read-only"), "{err}");
    assert!(err.contains("chmod u+w"), "{err}");
    assert!(err.contains("run `wbl migrate` again"), "{err}");
    assert!(!err.contains(&k));
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(mode_of(&netrc(&w)), 0o400);
    assert_eq!(cloud_key(&w).as_deref(), Some(k.as_str()));

    set_mode(&netrc(&w), 0o600);
    ok(migrate(&w, &[]));
    assert_eq!(
        read(&netrc(&w)),
        "machine other.example login a password b\n"
    );
}

#[test]
fn crash_between_keychain_write_and_file_rewrite_then_rerun() {
    let w = World::new(Backend::SecretService);
    let (k1, k2) = (key(1), key(2));
    let rc = format!("machine api.wandb.ai\n  login user\n  password {k1}\n# end\n");
    write(&netrc(&w), &rc, 0o600);
    let settings = w.home().join(".config/wandb/settings");
    let ini = format!("[default]\nbase_url = https://wandb.example.com\napi_key = {k2}\n");
    write(&settings, &ini, 0o600);

    let out = w.wbl_env(&["migrate"], &[("WBL_TEST_CRASH_AFTER_STORE", "1")]);
    assert_eq!(out.status.signal(), Some(libc_sigabrt()), "{out:?}");
    // Both copies of the first key exist; nothing else changed.
    assert_eq!(read(&netrc(&w)), rc);
    assert_eq!(read(&settings), ini);
    assert_eq!(
        w.secret_tool_lookup("https://wandb.example.com", "api")
            .as_deref(),
        Some(k2.as_str()),
        "the settings key is handled first and was stored before the crash"
    );
    assert_eq!(cloud_key(&w), None);
    let leftovers: Vec<_> = std::fs::read_dir(w.home())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("wbl-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind");

    // The rerun finishes the job.
    let out = ok(migrate(&w, &[]));
    assert!(stdout(&out).contains("2 moved"), "{}", stdout(&out));
    assert_eq!(read(&netrc(&w)), "# end\n");
    assert_eq!(
        read(&settings),
        "[default]\nbase_url = https://wandb.example.com\n"
    );
    assert_eq!(cloud_key(&w).as_deref(), Some(k1.as_str()));
    assert_eq!(
        w.secret_tool_lookup("https://wandb.example.com", "api")
            .as_deref(),
        Some(k2.as_str())
    );
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn git_credentials_move_into_the_keychain() {
    let w = World::new(Backend::SecretService);
    let path = w.home().join(".git-credentials");
    let text = "https://octo:gh%40token@github.com\n\
                not a credential\n\
                http://bob:pw@git.example.com:8080/team/repo.git\n";
    write(&path, text, 0o600);
    // Not without being asked.
    let out = ok(migrate(&w, &[]));
    assert!(
        stdout(&out).contains("add --git-credentials"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(&path), text);

    let out = ok(migrate(&w, &["--git-credentials"]));
    let s = stdout(&out);
    assert!(s.contains("moved:  https://github.com (user octo)"), "{s}");
    assert!(
        s.contains("moved:  http://git.example.com:8080/team/repo.git (user bob)"),
        "{s}"
    );
    assert!(s.contains("wbl setup-git --host https://github.com"), "{s}");
    assert_eq!(read(&path), "not a credential\n");
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(
        w.secret_tool_lookup("https://github.com", "octo")
            .as_deref(),
        Some("gh@token")
    );
    // wbl serves them to git.
    let out = ok({
        let mut c = w.cmd(WBL);
        c.args(["credential", "get"])
            .stdin(std::process::Stdio::piped());
        let mut child = c
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"protocol=http\nhost=git.example.com:8080\npath=team/repo.git\n")
            .unwrap();
        child.wait_with_output().unwrap()
    });
    assert_eq!(
        stdout(&out),
        "capability[]=authtype\nusername=bob\npassword=pw\n"
    );
}

#[test]
fn nothing_to_migrate() {
    let w = World::new(Backend::SecretService);
    let out = ok(migrate(&w, &[]));
    assert!(
        stdout(&out).contains("nothing to migrate"),
        "{}",
        stdout(&out)
    );
    assert_eq!(w.agent_pid(), None);
    let out = migrate(&w, &["--host", "ftp://nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("wbl: error: --host ftp://nope"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_keychain_that_forgets_at_reboot_only_gets_copies() {
    let w = World::new(Backend::Keyutils);
    let k = key(6);
    let text = format!("machine api.wandb.ai\n  login user\n  password {k}\n");
    write(&netrc(&w), &text, 0o600);
    let out = migrate(&w, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("wbl: error: the keychain in use (keyutils)"),
        "{err}"
    );
    assert!(err.contains("--keep"), "{err}");
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(w.keyctl_lookup("https://api.wandb.ai", "api"), None);
    ok(migrate(&w, &["--keep"]));
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(
        w.keyctl_lookup("https://api.wandb.ai", "api").as_deref(),
        Some(k.as_str())
    );
}

#[test]
fn duplicate_entries_keep_every_key() {
    let w = World::new(Backend::SecretService);
    let (first, last) = (key(1), key(2));
    let e = |k: &str| format!("machine api.wandb.ai\n  login user\n  password {k}\n");
    // Python's netrc (the SDK) reads the last entry; curl reads the first.
    let text = format!(
        "{}machine other.example login o password p\n{}{}",
        e(&first),
        e(&last),
        e(&last)
    );
    write(&netrc(&w), &text, 0o600);
    // doctor flags all three and says what --force is for.
    let r: serde_json::Value =
        serde_json::from_slice(&w.wbl(&["doctor", "--json"]).stdout).unwrap();
    let check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "netrc")
        .unwrap()
        .clone();
    assert_eq!(check["verdict"], "problem", "{check:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .starts_with("3 plaintext W&B key(s)"),
        "{check:#}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("`wbl migrate --force`"),
        "{check:#}"
    );

    let out = ok(migrate(&w, &[]));
    let s = stdout(&out);
    // The key the SDK reads goes to the keychain, with its same-key duplicate…
    assert_eq!(cloud_key(&w).as_deref(), Some(last.as_str()));
    // …the other key stays in the file, reported.
    assert_eq!(
        read(&netrc(&w)),
        format!("{}machine other.example login o password p\n", e(&first))
    );
    assert!(
        s.contains("holds another key than the later entry for api.wandb.ai, which the SDK reads; kept in the file"),
        "{s}"
    );
    assert!(
        !s.contains(&first) && !s.contains(&last),
        "keys are never printed: {s}"
    );

    // --force: the other key is kept in the keychain under its own user name, then removed.
    let out = ok(migrate(&w, &["--force"]));
    let s = stdout(&out);
    assert!(s.contains("(user api-old-line1)"), "{s}");
    assert_eq!(
        read(&netrc(&w)),
        "machine other.example login o password p\n"
    );
    assert_eq!(
        w.secret_tool_lookup("https://api.wandb.ai", "api-old-line1")
            .as_deref(),
        Some(first.as_str())
    );
    assert_eq!(cloud_key(&w).as_deref(), Some(last.as_str()));
}

#[test]
fn a_hard_linked_netrc_is_copied_not_emptied() {
    let w = World::new(Backend::SecretService);
    let k = key(5);
    let text = format!("machine api.wandb.ai login user password {k}\n");
    write(&netrc(&w), &text, 0o600);
    let other = w.home().join("backup-netrc");
    std::fs::hard_link(netrc(&w), &other).unwrap();
    let out = ok(migrate(&w, &[]));
    let s = stdout(&out);
    assert!(s.contains("has 2 hard links"), "{s}");
    assert!(
        s.contains("0 moved to the keychain (secret-service), 1 left in place"),
        "{s}"
    );
    // Nothing claims the key is gone: both names still hold it, and the keychain has a copy.
    assert_eq!(read(&netrc(&w)), text);
    assert_eq!(read(&other), text);
    assert_eq!(cloud_key(&w).as_deref(), Some(k.as_str()));
    // doctor says why.
    let out = w.wbl(&["doctor", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let netrc_check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "netrc")
        .unwrap();
    assert_eq!(netrc_check["verdict"], "problem", "{r:#}");
    assert!(
        netrc_check["detail"]
            .as_str()
            .unwrap()
            .contains("more left alone"),
        "{r:#}"
    );
    // Once the other name is gone, migrate finishes.
    std::fs::remove_file(&other).unwrap();
    ok(migrate(&w, &[]));
    assert_eq!(read(&netrc(&w)), "");
}

#[test]
fn forge_and_cloud_entries_in_every_netrc_file() {
    let w = World::new(Backend::SecretService);
    let (k1, k2, k3) = (key(6), key(7), key(8));
    let custom = w.home().join("n");
    write(
        &custom,
        &format!("machine api.forge.coreweave.com login user password {k1}\n"),
        0o600,
    );
    write(
        &netrc(&w),
        &format!("machine api.wandb.ai login user password {k2}\n"),
        0o600,
    );
    write(
        &w.home().join("_netrc"),
        &format!("machine api.qa.forge.coreweave.com login user password {k3}\n"),
        0o600,
    );
    let env = [("NETRC", custom.to_str().unwrap())];
    // doctor flags all of them (the QA host only once it is in use).
    let r: serde_json::Value =
        serde_json::from_slice(&w.wbl_env(&["doctor", "--json"], &env).stdout).unwrap();
    let detail = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "netrc")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.starts_with("2 plaintext W&B key(s) in netrc"),
        "{detail}"
    );
    // status: the W&B host's key comes from $NETRC (the Forge entry, the same deployment);
    // its ~/.netrc entry is a plaintext copy the SDK reads once NETRC is unset.
    let st: serde_json::Value =
        serde_json::from_slice(&w.wbl_env(&["status", "--json"], &env).stdout).unwrap();
    let cloud = st["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == "https://api.wandb.ai")
        .unwrap()
        .clone();
    assert_eq!(cloud["source"], "netrc", "{st:#}");
    assert_eq!(
        cloud["source_detail"],
        format!("{} (machine api.forge.coreweave.com)", custom.display()),
        "{st:#}"
    );
    assert!(
        cloud["warnings"][0]
            .as_str()
            .unwrap()
            .contains(&format!("(the SDK reads {} now;", custom.display())),
        "{st:#}"
    );
    let out = ok(w.wbl_env(
        &[
            "migrate",
            "--host",
            "https://api.qa.wandb.ai",
            "--host",
            "https://api.wandb.ai",
        ],
        &env,
    ));
    let s = stdout(&out);
    assert!(s.contains("3 moved to the keychain"), "{s}");
    for f in [custom.clone(), netrc(&w), w.home().join("_netrc")] {
        assert_eq!(read(&f), "", "{}", f.display());
    }
    assert_eq!(
        w.secret_tool_lookup("https://api.forge.coreweave.com", "api")
            .as_deref(),
        Some(k1.as_str())
    );
    assert_eq!(
        w.secret_tool_lookup("https://api.qa.forge.coreweave.com", "api")
            .as_deref(),
        Some(k3.as_str())
    );
    // The QA key answers for the W&B QA host.
    let out = ok(w.wbl(&["token", "--host", "https://api.qa.wandb.ai"]));
    assert_eq!(stdout(&out).trim(), k3);
}
