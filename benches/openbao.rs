//! Keys in OpenBao, side by side in one run: warm `wbl token` for a host routed to OpenBao,
//! the same for a keychain host, `wbl token` for a routed host whose server has
//! `cache_ttl = "0"` (every get an HTTP read), and `bao kv get -field=password` (what a team
//! runs today); then the cold paths: the first routed get after the agent starts (token from
//! the keychain, looked up, secret read) and a get that starts the agent itself. Against a real
//! `bao server -dev` on 127.0.0.1 (scripts/install-test-deps installs it). Prints markdown
//! tables; asserts answers, never timings.
//!
//! `WBL_BENCH_RUNS` sets the interleaved rounds (default 200), `WBL_BENCH_QUICK=1` a short run.

#[cfg(target_os = "linux")]
#[path = "../tests/support/bao.rs"]
mod bao;
#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("openbao bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if support::under_cargo_bench("openbao") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::process::Command;
    use std::time::Instant;

    use serde_json::json;

    use crate::bao::Bao;
    use crate::common::{Backend, World, key};
    use crate::support::{self, Bins, Samples, Tool, ms, print_samples, ratio, run_once};

    const ROUTED: &str = "https://api.wandb.ai";
    const UNCACHED: &str = "https://wandb-nocache.example.com";
    const KEYCHAIN: &str = "https://wandb.example.com";

    fn tool(bins: &Bins, w: &World, name: &str, args: &[&str], want: &str) -> Tool {
        let mut c = bins.cmd(w, &bins.wbl);
        c.args(args).current_dir(w.home());
        let want = format!("{want}\n").into_bytes();
        Tool::repeating(name, &c, b"", move |out| out == want.as_slice())
    }

    pub fn main() {
        let runs = support::rounds(20, 200);
        let warmup = 5;
        let bins = Bins::get();
        let bao = Bao::start();
        bao.policies();
        bao.userpass(&[("alice", "alice-pw", "rw", "1h", "24h")]);
        let (k_routed, k_keychain) = (key(16001), key(16002));
        bao.put_secret("ml-team/wandb", json!({ "password": k_routed }));

        let w = World::new(Backend::SecretService);
        let dir = w.home().join(".config/wbl");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "[openbao.team]\naddress = \"{a}\"\nauth = \"userpass\"\nusername = \"alice\"\ncache_ttl = \"5m\"\n\n\
                 [openbao.nocache]\naddress = \"{a}\"\nauth = \"userpass\"\nusername = \"alice\"\ncache_ttl = \"0\"\n\n\
                 [[route]]\nhost = \"{ROUTED}\"\nstore = \"openbao.team\"\npath = \"ml-team/wandb\"\n\n\
                 [[route]]\nhost = \"{UNCACHED}\"\nstore = \"openbao.nocache\"\npath = \"ml-team/wandb\"\n",
                a = bao.addr
            ),
        )
        .unwrap();
        bins.wbl(&w, &["openbao", "login", "team"], b"alice-pw\n");
        bins.wbl(&w, &["openbao", "login", "nocache"], b"alice-pw\n");
        bins.wbl(
            &w,
            &["login", "--host", KEYCHAIN, "-"],
            format!("{k_keychain}\n").as_bytes(),
        );

        println!(
            "OpenBao {} (bao server -dev on 127.0.0.1), agent backend {}; {runs} interleaved rounds after {warmup} warm-up rounds\n",
            String::from_utf8_lossy(
                &Command::new(crate::bao::bao_bin())
                    .arg("version")
                    .output()
                    .unwrap()
                    .stdout
            )
            .split_whitespace()
            .nth(1)
            .unwrap_or("?"),
            w.backend
        );

        let bao_cmd = {
            let want = format!("{k_routed}\n").into_bytes();
            let want2 = k_routed.clone().into_bytes();
            Tool::repeating(
                "bao kv get -field=password",
                &bao.kv_get_cmd("ml-team/wandb"),
                b"",
                move |out| out == want.as_slice() || out == want2.as_slice(),
            )
        };
        let tools = vec![
            tool(
                &bins,
                &w,
                "wbl token (routed to OpenBao, warm)",
                &["token", "--host", ROUTED],
                &k_routed,
            ),
            tool(
                &bins,
                &w,
                "wbl token (keychain host, warm)",
                &["token", "--host", KEYCHAIN],
                &k_keychain,
            ),
            tool(
                &bins,
                &w,
                "wbl token (routed, cache_ttl = 0: HTTP read each time)",
                &["token", "--host", UNCACHED],
                &k_routed,
            ),
            bao_cmd,
        ];
        println!("## Warm get, whole process\n");
        let s = support::interleaved(&tools, warmup, runs);
        print_samples(&s, "wbl token (keychain host, warm)");
        println!(
            "\nwarm routed / keychain host: {} (goal ≤ 1.10×); bao kv get / warm routed: {} (goal ≥ 20×); routed with cache_ttl = 0 / warm routed: {}\n",
            ratio(s[0].median(), s[1].median()),
            ratio(s[3].median(), s[0].median()),
            ratio(s[2].median(), s[0].median())
        );

        // Cold: the agent is stopped each time; the OpenBao token comes from the keychain.
        let cold_runs = if support::quick() { 3 } else { 20 };
        let mut first_routed = Samples::default();
        let mut first_keychain = Samples::default();
        let mut autostart = Samples::default();
        let time = |args: &[&str], want: &str| {
            let mut c = bins.cmd(&w, &bins.wbl);
            c.args(args);
            let t0 = Instant::now();
            let r = run_once(&mut c, b"").unwrap();
            let wall = t0.elapsed();
            assert!(
                r.success && r.stdout == format!("{want}\n").into_bytes(),
                "{args:?}"
            );
            wall
        };
        for _ in 0..cold_runs {
            w.stop_agent();
            bins.start_agent(&w);
            first_routed
                .wall
                .push(time(&["token", "--host", ROUTED], &k_routed));
            first_keychain
                .wall
                .push(time(&["token", "--host", KEYCHAIN], &k_keychain));
            w.stop_agent();
            autostart
                .wall
                .push(time(&["token", "--host", ROUTED], &k_routed));
        }
        println!("## Cold paths ({cold_runs} runs each; median, p99 in ms)\n");
        println!("| path | median ms | p99 ms |");
        println!("|---|---:|---:|");
        for (name, s) in [
            (
                "first routed get after agent start (keychain read of the OpenBao token, lookup-self, KV read)",
                &first_routed,
            ),
            (
                "first keychain-host get after agent start (keychain read)",
                &first_keychain,
            ),
            ("routed get that starts the agent itself", &autostart),
        ] {
            println!("| {name} | {} | {} |", ms(s.median()), ms(s.p99()));
        }
        println!();
        w.stop_agent();
    }
}
