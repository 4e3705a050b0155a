//! Choosing an account costs nothing measurable: warm `wbl token` in a directory three levels
//! below a `[[bind]]` of a host with two accounts, against warm `wbl token` for a host with one
//! account (both with the same config.toml read; the agent on gnome-keyring). Prints a
//! markdown table and the ratio (goal ≤ 1.05×); asserts answers, never timings.
//!
//! `WBL_BENCH_RUNS` sets the interleaved rounds (default 300), `WBL_BENCH_QUICK=1` a short run.

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("accounts bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if support::under_cargo_bench("accounts") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::{Path, PathBuf};

    use crate::common::{Backend, World, key};
    use crate::support::{self, Bins, Tool, print_samples, ratio};

    const ONE: &str = "https://wandb-one.example.com";
    const TWO: &str = "https://wandb-two.example.com";

    fn tool(bins: &Bins, w: &World, name: &str, dir: PathBuf, args: &[&str], want: &str) -> Tool {
        let mut c = bins.cmd(w, &bins.wbl);
        c.args(args).current_dir(dir);
        let want = format!("{want}\n").into_bytes();
        Tool::repeating(name, &c, b"", move |out| out == want.as_slice())
    }

    fn login(bins: &Bins, w: &World, host: &str, account: Option<&str>, k: &str) {
        let mut args = vec!["login", "--host", host];
        if let Some(a) = account {
            args.extend(["--account", a]);
        }
        args.push("-");
        let r = bins.wbl(w, &args, format!("{k}\n").as_bytes());
        assert!(r.success, "login {args:?}");
    }

    fn in_dir(bins: &Bins, w: &World, dir: &Path, args: &[&str]) {
        let mut c = bins.cmd(w, &bins.wbl);
        c.args(args).current_dir(dir);
        let r = support::run_once(&mut c, b"").unwrap();
        assert!(r.success, "{args:?}");
    }

    pub fn main() {
        let runs = support::rounds(20, 300);
        let warmup = 5;
        let bins = Bins::get();
        let w = World::new(Backend::SecretService);
        let (k_one, k_work, k_personal) = (key(25001), key(25002), key(25003));
        login(&bins, &w, ONE, None, &k_one);
        login(&bins, &w, TWO, Some("work"), &k_work);
        login(&bins, &w, TWO, Some("personal"), &k_personal);
        let work = w.home().join("work");
        let deep = work.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        in_dir(
            &bins,
            &w,
            &w.home(),
            &["bind", "work", "work", "--host", TWO],
        );

        println!(
            "agent backend {}; {runs} interleaved rounds after {warmup} warm-up rounds\n",
            w.backend
        );
        let one = "wbl token (one account)";
        let tools = vec![
            tool(&bins, &w, one, w.home(), &["token", "--host", ONE], &k_one),
            tool(
                &bins,
                &w,
                "wbl token (two accounts, bound 3 levels up)",
                deep.clone(),
                &["token", "--host", TWO],
                &k_work,
            ),
            tool(
                &bins,
                &w,
                "wbl token --account work (two accounts)",
                w.home(),
                &["token", "--host", TWO, "--account", "work"],
                &k_work,
            ),
        ];
        println!("## Warm get, whole process\n");
        let s = support::interleaved(&tools, warmup, runs);
        print_samples(&s, one);
        println!(
            "\nbound 3 levels up / one account: {} (goal ≤ 1.05×); --account / one account: {}\n",
            ratio(s[1].median(), s[0].median()),
            ratio(s[2].median(), s[0].median()),
        );
        w.stop_agent();
    }
}
