//! `git-credential-wbl` against git's own memory cache, case by case: every step of a case runs
//! against `git credential-cache` (its daemon on a socket of its own in the test's temp dir,
//! stopped by the test with `git credential-cache exit`) and against `git-credential-wbl`
//! (the real agent, a private gnome-keyring), and the answers must be the same, byte for byte.
//! Cases where git itself decides (expired passwords) are compared through `git credential
//! fill`, with `credential.helper = wbl` in git's short form.

#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

/// One of the two helpers under comparison.
#[derive(Clone, Copy, Debug)]
enum Helper {
    Cache,
    Wbl,
}

/// A world with both helpers: the wbl agent (gnome-keyring) and a credential-cache socket.
struct Pair {
    w: World,
    cache_socket: PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let w = World::new(Backend::SecretService);
        // credential-cache creates the socket's directory 0700 itself (it refuses a loose one).
        let cache_socket = w.dir.path().join("cache").join("socket");
        Pair { w, cache_socket }
    }

    fn git(&self) -> Command {
        let mut c = self.w.cmd("git");
        isolate_git(&mut c, &self.w);
        c.env("PATH", path_with_bins());
        c
    }

    /// The helper's command for `op`: `git credential-cache --socket … <op>` or
    /// `git-credential-wbl <op>`.
    fn helper(&self, h: Helper, op: &str) -> Command {
        match h {
            Helper::Cache => {
                let mut c = self.git();
                c.args(["credential-cache", "--timeout", "600", "--socket"])
                    .arg(&self.cache_socket)
                    .arg(op);
                c
            }
            Helper::Wbl => {
                let mut c = self.w.cmd(GIT_HELPER);
                c.arg(op);
                c
            }
        }
    }

    /// The value of `credential.helper` that makes git run the helper.
    fn config(&self, h: Helper) -> String {
        match h {
            Helper::Cache => format!(
                "cache --timeout 600 --socket '{}'",
                self.cache_socket.display()
            ),
            // git's short form: git runs `git-credential-wbl`, found on PATH.
            Helper::Wbl => "wbl".to_owned(),
        }
    }

    fn run(&self, h: Helper, op: &str, input: &str) -> Output {
        run_with_stdin(self.helper(h, op), input.as_bytes())
    }

    /// Runs one step against both helpers; their answers (stdout, exit status) must agree.
    /// Returns wbl's answer.
    fn same(&self, case: &str, op: &str, input: &str) -> String {
        let cache = self.run(Helper::Cache, op, input);
        let wbl = self.run(Helper::Wbl, op, input);
        assert!(
            cache.status.success(),
            "{case}: cache {op} failed: {cache:?}"
        );
        assert!(
            wbl.status.success(),
            "{case}: wbl {op} failed: {}",
            stderr(&wbl)
        );
        assert_eq!(
            stdout(&wbl),
            stdout(&cache),
            "{case}: `{op}` answers differ (left wbl, right git credential-cache)"
        );
        stdout(&wbl)
    }

    /// Both answers, for the steps where they are allowed to differ in a named way.
    fn both(&self, op: &str, input: &str) -> (String, String) {
        let cache = ok(self.run(Helper::Cache, op, input));
        let wbl = ok(self.run(Helper::Wbl, op, input));
        (stdout(&wbl), stdout(&cache))
    }

    /// `git credential fill` with only helper `h`; git's answer, or `None` when git found
    /// nothing (prompts are disabled).
    fn fill(&self, h: Helper, input: &str, config: &[&str]) -> Option<String> {
        let mut c = self.git();
        c.args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={}", self.config(h)));
        for kv in config {
            c.args(["-c", kv]);
        }
        c.args(["credential", "fill"]);
        let out = run_with_stdin(c, input.as_bytes());
        out.status.success().then(|| stdout(&out))
    }

    /// `git credential approve|reject` with only helper `h`.
    fn git_op(&self, h: Helper, op: &str, input: &str, config: &[&str]) {
        let mut c = self.git();
        c.args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={}", self.config(h)));
        for kv in config {
            c.args(["-c", kv]);
        }
        c.args(["credential", op]);
        ok(run_with_stdin(c, input.as_bytes()));
    }

    /// The same through git, for both helpers.
    fn fill_same(&self, case: &str, input: &str, config: &[&str]) -> Option<String> {
        let cache = self.fill(Helper::Cache, input, config);
        let wbl = self.fill(Helper::Wbl, input, config);
        assert_eq!(
            wbl, cache,
            "{case}: `git credential fill` differs (left wbl, right cache)"
        );
        wbl
    }
}

impl Drop for Pair {
    /// Stops the cache daemon (it removes its socket and exits; no-op when none runs).
    fn drop(&mut self) {
        if self.cache_socket.exists() {
            let _ = self
                .git()
                .args(["credential-cache", "--socket"])
                .arg(&self.cache_socket)
                .arg("exit")
                .output();
        }
    }
}

/// git's version as (major, minor).
fn git_version() -> (u32, u32) {
    let out = Command::new("git").arg("--version").output().unwrap();
    let text = stdout(&out);
    let v = text.split_whitespace().nth(2).unwrap_or("0.0");
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn capability_negotiation_and_unknown_operations() {
    let p = Pair::new();
    assert_eq!(
        p.same("capability", "capability", ""),
        "version 0\ncapability authtype\n"
    );
    // Unknown operations are ignored silently, whatever the input.
    p.same("unknown op", "frobnicate", "protocol=https\nhost=h\n");
    // Nothing stored: nothing answered.
    assert_eq!(p.same("empty get", "get", "protocol=https\nhost=h\n"), "");
}

#[test]
fn empty_username_and_password_are_a_credential() {
    let p = Pair::new();
    let (case, host) = ("empty user and password", "sso.example");
    let out = p.run(
        Helper::Wbl,
        "store",
        &format!("protocol=https\nhost={host}\nusername=\npassword=\n"),
    );
    assert!(out.status.success() && stderr(&out).is_empty(), "{out:?}");
    ok(p.run(
        Helper::Cache,
        "store",
        &format!("protocol=https\nhost={host}\nusername=\npassword=\n"),
    ));
    let answer = p.same(case, "get", &format!("protocol=https\nhost={host}\n"));
    assert_eq!(answer, "capability[]=authtype\nusername=\npassword=\n");
    p.same(
        case,
        "get",
        &format!("protocol=https\nhost={host}\nusername=\n"),
    );
    assert!(
        p.fill_same(case, &format!("protocol=https\nhost={host}\n"), &[])
            .is_some_and(|a| a.contains("username=\npassword=\n"))
    );
    // It survives an agent restart (an empty password in the keychain).
    p.w.stop_agent();
    p.same(case, "get", &format!("protocol=https\nhost={host}\n"));
    // A user name without a password, or a password without a user name, is partial: nothing
    // is stored by either.
    p.same(
        "partial",
        "store",
        "protocol=https\nhost=partial.example\nusername=u\n",
    );
    p.same(
        "partial",
        "store",
        "protocol=https\nhost=partial.example\npassword=p\n",
    );
    assert_eq!(
        p.same("partial", "get", "protocol=https\nhost=partial.example\n"),
        ""
    );
}

#[test]
fn pre_encoded_credentials_and_the_authtype_capability() {
    let p = Pair::new();
    let case = "authtype/credential";
    p.same(
        case,
        "store",
        "capability[]=authtype\nprotocol=https\nhost=tok.example\nauthtype=Bearer\n\
         credential=tok-1\n",
    );
    let with_capability = "capability[]=authtype\nprotocol=https\nhost=tok.example\n";
    assert_eq!(
        p.same(case, "get", with_capability),
        "capability[]=authtype\nauthtype=Bearer\ncredential=tok-1\n"
    );
    // A caller that did not announce the capability must not get the pre-encoded credential.
    // git before 2.48 sent it anyway (fixed by "credential-cache: respect authtype
    // capability"); wbl follows the fixed behaviour.
    let (wbl, cache) = p.both("get", "protocol=https\nhost=tok.example\n");
    assert_eq!(wbl, "capability[]=authtype\n");
    if git_version() >= (2, 48) {
        assert_eq!(wbl, cache, "{case}: without the capability");
    } else {
        let fixed: String = cache
            .lines()
            .filter(|l| !l.starts_with("authtype=") && !l.starts_with("credential="))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(wbl, fixed, "{case}: without the capability (git < 2.48)");
    }
    // With a user name, an expiry and ephemeral: ephemeral ones are never stored.
    p.same(
        case,
        "store",
        "capability[]=authtype\nprotocol=https\nhost=eph.example\nauthtype=Bearer\n\
         credential=tok-2\nephemeral=1\n",
    );
    assert_eq!(
        p.same(
            case,
            "get",
            "capability[]=authtype\nprotocol=https\nhost=eph.example\n"
        ),
        ""
    );
    // Erase with the credential sent: only when it is the stored one.
    p.same(
        case,
        "erase",
        "capability[]=authtype\nprotocol=https\nhost=tok.example\ncredential=other\n",
    );
    assert_ne!(p.same(case, "get", with_capability), "");
    p.same(
        case,
        "erase",
        "capability[]=authtype\nprotocol=https\nhost=tok.example\ncredential=tok-1\n",
    );
    assert_eq!(p.same(case, "get", with_capability), "");
}

#[test]
fn expiry_and_refresh_tokens() {
    let p = Pair::new();
    let case = "password_expiry_utc + oauth_refresh_token";
    let later = now() + 3600;
    p.same(
        case,
        "store",
        &format!(
            "protocol=https\nhost=oauth.example\nusername=u\npassword=access\n\
             password_expiry_utc={later}\noauth_refresh_token=refresh-1\n"
        ),
    );
    assert_eq!(
        p.same(case, "get", "protocol=https\nhost=oauth.example\n"),
        format!(
            "capability[]=authtype\nusername=u\npassword=access\npassword_expiry_utc={later}\n\
             oauth_refresh_token=refresh-1\n"
        )
    );
    // A new password without a token replaces both.
    p.same(
        case,
        "store",
        "protocol=https\nhost=oauth.example\nusername=u\npassword=access-2\n",
    );
    p.same(case, "get", "protocol=https\nhost=oauth.example\n");
    // 0 and garbage mean "no expiry", for both.
    p.same(
        case,
        "store",
        "protocol=https\nhost=zero.example\nusername=u\npassword=p\npassword_expiry_utc=0\n",
    );
    p.same(case, "get", "protocol=https\nhost=zero.example\n");

    // Expired: git's cache still answers and git itself drops the password; wbl's agent does
    // not answer an expired credential. What git ends up with is the same: compared through
    // `git credential fill`, where git keeps the refresh token and finds no password.
    let past = now() - 60;
    let expired = format!(
        "protocol=https\nhost=expired.example\nusername=u\npassword=old\n\
         password_expiry_utc={past}\noauth_refresh_token=r\n"
    );
    p.same("expired", "store", &expired);
    assert_eq!(
        p.fill_same("expired", "protocol=https\nhost=expired.example\n", &[]),
        None
    );
}

#[test]
fn paths_match_only_with_use_http_path() {
    let p = Pair::new();
    let case = "path";
    p.same(
        case,
        "store",
        "protocol=https\nhost=git.example\npath=org/a.git\nusername=u\npassword=pa\n",
    );
    p.same(
        case,
        "store",
        "protocol=https\nhost=git.example\npath=org/b.git\nusername=v\npassword=pb\n",
    );
    for get in [
        "protocol=https\nhost=git.example\npath=org/a.git\n",
        "protocol=https\nhost=git.example\npath=org/b.git\n",
        "protocol=https\nhost=git.example\npath=org/c.git\n",
        "protocol=https\nhost=git.example\nusername=v\n",
        "protocol=https\nhost=git.example\npath=org/a.git\nusername=v\n",
    ] {
        p.same(case, "get", get);
    }
    // Through git: with useHttpPath, git sends the path and each repository gets its own.
    let use_path = ["credential.useHttpPath=true"];
    for url in ["org/a.git", "org/b.git", "org/c.git"] {
        p.fill_same(case, &format!("url=https://git.example/{url}\n"), &use_path);
    }
    // approve through git stores the path too.
    for h in [Helper::Cache, Helper::Wbl] {
        p.git_op(
            h,
            "approve",
            "url=https://w@git.example/org/d.git\npassword=pd\n",
            &use_path,
        );
    }
    p.same(
        case,
        "get",
        "protocol=https\nhost=git.example\npath=org/d.git\n",
    );
}

#[test]
fn erase_removes_every_matching_entry() {
    let p = Pair::new();
    let case = "erase";
    for (user, pw) in [("u1", "p1"), ("u2", "p2")] {
        p.same(
            case,
            "store",
            &format!("protocol=https\nhost=many.example\nusername={user}\npassword={pw}\n"),
        );
    }
    p.same(
        case,
        "store",
        "protocol=https\nhost=other.example\nusername=u1\npassword=p1\n",
    );
    // A wrong password erases nothing.
    p.same(
        case,
        "erase",
        "protocol=https\nhost=many.example\nusername=u1\npassword=wrong\n",
    );
    p.same(
        case,
        "get",
        "protocol=https\nhost=many.example\nusername=u1\n",
    );
    // No user name: every user of the host goes; other hosts stay.
    p.same(case, "erase", "protocol=https\nhost=many.example\n");
    for get in [
        "protocol=https\nhost=many.example\n",
        "protocol=https\nhost=many.example\nusername=u2\n",
        "protocol=https\nhost=other.example\n",
    ] {
        p.same(case, "get", get);
    }
}

#[test]
fn long_headers_unknown_attributes_and_quit() {
    let p = Pair::new();
    let case = "long values";
    let long_password = "x".repeat(8 * 1024);
    let long_header = format!("wwwauth[]=Bearer realm=\"{}\"\n", "r".repeat(20 * 1024));
    p.same(
        case,
        "store",
        &format!(
            "protocol=https\nhost=long.example\nusername=u\npassword={long_password}\n\
             {long_header}"
        ),
    );
    let answer = p.same(
        case,
        "get",
        &format!("protocol=https\nhost=long.example\n{long_header}{long_header}"),
    );
    assert!(answer.contains(&long_password));

    let case = "unknown attributes and quit";
    p.same(
        case,
        "store",
        "protocol=https\nhost=u.example\nusername=u\npassword=p\nfuture_attr=1\n\
         state[]=helper:x\ncontinue=1\nquit=1\n",
    );
    for get in [
        "protocol=https\nhost=u.example\nfuture_attr=1\n",
        "protocol=https\nhost=u.example\nquit=1\n",
        "protocol=https\nhost=u.example\nquit=true\nwwwauth[]=Basic realm=\"x\"\n",
        "capability[]=state\nstate[]=x:y\nprotocol=https\nhost=u.example\n",
        // `url=` is read as its parts.
        "url=https://u@u.example/some/path\n",
        // A blank line ends the request; what follows is not read.
        "protocol=https\nhost=u.example\n\nhost=elsewhere.example\n",
    ] {
        p.same(case, "get", get);
    }
}

#[test]
fn erase_with_a_password_checks_every_candidate() {
    let p = Pair::new();
    let case = "erase by password";
    for (user, pw) in [("u1", "p1"), ("u2", "p2")] {
        p.same(
            case,
            "store",
            &format!("protocol=https\nhost=many.example\nusername={user}\npassword={pw}\n"),
        );
    }
    // A password without a user name erases the entries holding that password, whichever
    // user comes first.
    p.same(
        case,
        "erase",
        "protocol=https\nhost=many.example\npassword=p2\n",
    );
    for get in [
        "protocol=https\nhost=many.example\nusername=u1\n",
        "protocol=https\nhost=many.example\nusername=u2\n",
    ] {
        p.same(case, "get", get);
    }
}
