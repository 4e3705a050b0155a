//! `wbl scan` end to end: real keys in the real agent, real files in real trees (a `.env`, a
//! W&B run's `config.yaml`, shell history, a notebook, a HAR file, a git repository, a netrc),
//! each form found where it is and nothing else; binaries, links, unreadable files (as an
//! ordinary user), exit statuses, `--json`, a forwarded session; and no secret in any output.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use base64::Engine;
use common::*;

fn write(path: &Path, text: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn basic(user: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
}

fn store(w: &World, host: &str, user: &str, password: &str) {
    let mut c = w.cmd(WBL);
    c.args(["credential", "store"]);
    let out = run_with_stdin(
        c,
        format!("protocol=https\nhost={host}\nusername={user}\npassword={password}\n\n").as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
}

/// No output of `out` holds any of `secrets`.
fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(!stdout(out).contains(s), "stdout holds a secret");
        assert!(!stderr(out).contains(s), "stderr holds a secret");
    }
}

fn json_hits(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The hits as (file name relative to `root`, line, column, form).
fn hits(out: &Output, root: &Path) -> Vec<(String, u64, u64, String)> {
    let mut v: Vec<_> = json_hits(out)
        .into_iter()
        .map(|h| {
            let p = Path::new(h["path"].as_str().unwrap());
            (
                p.strip_prefix(root).unwrap_or(p).display().to_string(),
                h["line"].as_u64().unwrap(),
                h["column"].as_u64().unwrap(),
                h["form"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Forty hex characters, different for each `n` (a git object name's shape).
fn hex40(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

#[test]
fn every_form_is_found_in_real_files_and_nothing_else() {
    let w = World::new(Backend::Keyutils);
    // A legacy key of 40 hex characters: the shape of a git object name.
    let k = hex40(4242);
    ok(w.wbl(&["login", &k]));
    let git_pw = "p@ss/w0rd+s3cret";
    store(&w, "git.example.com", "alice", git_pw);

    let root = w.home().join("work");
    let run = root.join("proj/wandb/run-20261205_120000-abcd1234/files");
    write(
        &root.join("proj/.env"),
        format!("# env\nWANDB_API_KEY={k}\n"),
    );
    write(
        &run.join("config.yaml"),
        format!("_wandb:\n  value:\n    cli_version: 0.19.0\napi_key:\n  value: {k}\n"),
    );
    write(
        &root.join(".bash_history"),
        format!("ls\nwandb login {k}\n"),
    );
    write(
        &root.join("nb.ipynb"),
        format!("{{\"cells\": [{{\"outputs\": [{{\"text\": [\"key={k}\\n\"]}}]}}]}}\n"),
    );
    write(
        &root.join("trace.har"),
        format!(
            "{{\"log\": {{\"entries\": [{{\"request\": {{\"headers\": [\n  \
             {{\"name\": \"Authorization\", \"value\": \"Basic {}\"}}]}}}}]}}}}\n",
            basic("api", &k)
        ),
    );
    write(
        &root.join("clone.sh"),
        "git clone https://alice:p%40ss%2Fw0rd%2Bs3cret@git.example.com/r.git\n",
    );
    write(
        &root.join("k8s.yaml"),
        format!(
            "data:\n  key: {}\n",
            base64::engine::general_purpose::STANDARD.encode(format!("WANDB_API_KEY={k}\n"))
        ),
    );
    // A git repository whose working tree and config hold the key.
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let mut c = w.cmd("git");
        isolate_git(&mut c, &w);
        ok(c.current_dir(&repo).args(args).output().unwrap());
    };
    git(&["init", "-q"]);
    write(
        &repo.join("train.py"),
        format!("import wandb\nwandb.login(key=\"{k}\")\n"),
    );
    git(&["add", "train.py"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "x",
    ]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("https://api:{k}@git.example.com/r.git"),
    ]);
    // No false positive: a tree of git object names, the key with one character changed,
    // and base64 of another key.
    let mut objects = String::new();
    for n in 0..2000 {
        objects.push_str(&format!("{} commit\n", hex40(n)));
    }
    let mut near = k.clone();
    near.replace_range(39.., if k.ends_with('0') { "1" } else { "0" });
    objects.push_str(&format!("{near}\n{}\n", basic("api", &near)));
    write(&root.join("clean/objects.txt"), &objects);
    // A binary file holding the key: skipped unless --binary.
    write(
        &root.join("bin/blob"),
        [b"\0\x01ELF".as_slice(), k.as_bytes()].concat(),
    );

    let out = w.wbl(&["scan", "--json", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_secret(
        &out,
        &[&k, &basic("api", &k), git_pw, &basic("alice", git_pw)],
    );
    assert_eq!(
        hits(&out, &root),
        vec![
            (".bash_history".into(), 2, 13, "key".into()),
            ("k8s.yaml".into(), 2, 26, "base64".into()),
            ("nb.ipynb".into(), 1, 40, "key".into()),
            ("proj/.env".into(), 2, 15, "key".into()),
            (
                "proj/wandb/run-20261205_120000-abcd1234/files/config.yaml".into(),
                5,
                10,
                "key".into()
            ),
            ("repo/.git/config".into(), 7, 20, "key".into()),
            ("repo/train.py".into(), 2, 18, "key".into()),
            ("trace.har".into(), 2, 45, "basic-auth".into()),
        ],
        "{}",
        stdout(&out)
    );
    let all = json_hits(&out);
    for h in &all {
        assert_eq!(h["url"], "https://api.wandb.ai");
        assert_eq!(h["username"], "api");
        assert_eq!(h["last4"], &k[36..]);
        assert_eq!(h["action"], "remove");
    }
    let advice = |file: &str| {
        all.iter()
            .find(|h| h["path"].as_str().unwrap().ends_with(file))
            .unwrap()["advice"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(advice("config.yaml").contains("W&B run directory"));
    assert!(advice("config.yaml").contains("https://wandb.ai/authorize"));
    assert!(advice("train.py").contains("git repository"));
    assert!(advice("train.py").contains("history"));
    assert!(advice(".git/config").contains("git remote set-url"));
    assert!(
        stderr(&out).contains(" binary (--binary searches them)"),
        "{}",
        stderr(&out)
    );

    // --binary finds the copy in the binary; --all the git password, URL-encoded.
    let out = w.wbl(&[
        "scan",
        "--json",
        "--all",
        "--binary",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, &[&k, git_pw, &basic("alice", git_pw)]);
    let found = hits(&out, &root);
    assert!(
        found.contains(&("bin/blob".into(), 1, 6, "key".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("clone.sh".into(), 1, 25, "url-encoded".into())),
        "{found:?}"
    );
    assert_eq!(found.len(), 10, "{found:?}");
    let git_hit = json_hits(&out)
        .into_iter()
        .find(|h| h["form"] == "url-encoded")
        .unwrap();
    assert_eq!(git_hit["url"], "https://git.example.com");
    assert_eq!(git_hit["username"], "alice");
    assert_eq!(git_hit["field"], "password");

    // Text output: file:line:column, the form, the key's owner; never the key.
    let out = w.wbl(&["scan", &root.join("proj").display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, &[&k]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{}:2:15: the key itself: W&B key of https://api.wandb.ai (user api, ending …{})",
            root.join("proj/.env").display(),
            &k[36..]
        )),
        "{text}"
    );

    // Nothing found: exit 0.
    let out = w.wbl(&["scan", root.join("clean").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "");
    // A path that does not exist: exit 2, said plainly.
    let out = w.wbl(&["scan", root.join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("cannot scan"), "{}", stderr(&out));

    // The access log names the lookups, never a key.
    let log = std::fs::read_to_string(w.home().join(".local/state/wbl/access.log")).unwrap();
    assert!(!log.contains(&k) && !log.contains(git_pw));
}

#[test]
fn a_netrc_copy_says_wbl_migrate_and_the_default_roots_are_home_and_cwd() {
    // A keychain that keeps keys across a reboot: `wbl migrate` moves keys only there.
    let w = World::new(Backend::SecretService);
    let k = key(61);
    ok(w.wbl(&["login", &k]));
    write(
        &w.home().join(".netrc"),
        format!("machine api.wandb.ai\n  login user\n  password {k}\n"),
    );
    let out = w.wbl(&["scan", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_secret(&out, &[&k]);
    let all = json_hits(&out);
    assert_eq!(all.len(), 1, "{}", stdout(&out));
    assert!(all[0]["path"].as_str().unwrap().ends_with("/.netrc"));
    assert_eq!(all[0]["action"], "migrate");
    assert!(all[0]["advice"].as_str().unwrap().contains("wbl migrate"));
    // After `wbl migrate` the copy is gone.
    let out = ok(w.wbl(&["migrate"]));
    assert!(
        stdout(&out).contains("`wbl scan` finds them"),
        "{}",
        stdout(&out)
    );
    let out = w.wbl(&["scan"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn links_are_not_followed_and_loops_end() {
    let w = World::new(Backend::Keyutils);
    let k = key(62);
    ok(w.wbl(&["login", &k]));
    let outside = w.dir.path().join("outside");
    write(&outside.join("secret.txt"), &k);
    let root = w.home().join("tree");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("out-file")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap();
    std::os::unix::fs::symlink("self", root.join("self")).unwrap();
    write(&root.join("a/plain.txt"), "nothing here\n");
    let out = w.wbl(&["scan", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stderr(&out).contains("4 symbolic links not followed"),
        "{}",
        stderr(&out)
    );
    // Named on the command line, a link is followed: the user asked for it.
    let out = w.wbl(&["scan", root.join("out-dir").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_secret(&out, &[&k]);
}

/// As an ordinary user (root reads everything): an unreadable file and directory are counted,
/// listed with --verbose, and not fatal.
#[test]
fn unreadable_files_are_counted_and_listed_as_an_ordinary_user() {
    let w = World::new_as(Backend::SecretService, users::user());
    let k = key(63);
    ok(w.wbl(&["login", &k]));
    let root = w.home().join("tree");
    // Written by the user (through the world's commands), then locked.
    let script = format!(
        "mkdir -p {r}/closed {r}/open && printf 'x={k}\\n' > {r}/open/leak.env && \
         printf 'x={k}\\n' > {r}/locked.txt && printf 'x={k}\\n' > {r}/closed/in.txt && \
         chmod 000 {r}/locked.txt {r}/closed",
        r = root.display()
    );
    ok(w.raw_cmd("sh").args(["-c", &script]).output().unwrap());
    let out = w.wbl(&["scan", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_secret(&out, &[&k]);
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains("leak.env:1:3"))
            .count(),
        1
    );
    let err = stderr(&out);
    assert!(err.contains("2 unreadable"), "{err}");
    assert!(err.contains("--verbose"), "{err}");
    let out = w.wbl(&["scan", "--verbose", root.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "unreadable: {}: Permission denied",
            root.join("locked.txt").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("unreadable: {}", root.join("closed").display())),
        "{err}"
    );
}

#[test]
fn without_keys_or_agent_it_is_an_error() {
    let w = World::new(Backend::Keyutils);
    let out = w.wbl(&["scan", w.home().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("no W&B keys"), "{}", stderr(&out));
}

/// On a forwarded socket (`wbl ssh --hold`, what a remote's WBL_SOCKET points at) scan says
/// it cannot search for keys it was not given, and exits 2.
#[test]
fn a_forwarded_session_cannot_scan() {
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["login", &key(64)]));
    let name = format!("scan{}", std::process::id());
    let mut holder = w
        .cmd(WBL)
        .args(["ssh", "--hold", &name, "--ttl", "10m"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = holder.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(err).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let local = w.socket().with_extension(format!("sock.fwd-{name}"));
    let out = w.wbl_env(
        &["scan", w.home().to_str().unwrap()],
        &[("WBL_SOCKET", local.to_str().unwrap())],
    );
    terminate(holder.id());
    let _ = holder.wait();
    assert!(first.is_ok(), "the holder did not start");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("forwarded agent"), "{}", stderr(&out));
    assert_no_secret(&out, &[&key(64)]);
}
