//! wbl next to the credential helpers people use today, measured in one run on one machine:
//! whole-process `get` as git runs a helper, the same through `git credential fill`, client
//! start-up against `/bin/true`, and the cold paths (agent start-up to ready, first `get` after
//! a start, auto-start). Prints markdown tables; asserts nothing about speed.
//!
//! Run it through `scripts/bench` (which also builds `git-credential-libsecret` when it can), or
//! `cargo bench --bench tools`. `WBL_BENCH_RUNS` sets the interleaved rounds (default 400),
//! `WBL_BENCH_QUICK=1` makes a short run, `WBL_BENCH_GIT_LIBSECRET` names a
//! `git-credential-libsecret` binary to include, `WBL_BENCH_GET_ONLY=1` stops after section 1,
//! `WBL_BENCH_OTHER_WBL` names another build of `wbl` to time beside this one in section 4a,
//! `WBL_BENCH_STATIC_DIR` a directory with the static helpers (scripts/static-helpers) to time
//! beside the dynamically linked ones in section 1.

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("tools bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if support::under_cargo_bench("tools") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use crate::common::{Backend, World, key};
    use crate::support::{self, Bins, Run, Samples, Tool, ms, print_samples, ratio, run_once};

    /// What git sends a helper for the W&B cloud.
    const QUERY: &[u8] = b"protocol=https\nhost=api.wandb.ai\n\n";
    /// The registry `docker-credential-wbl get` is asked for.
    const DOCKER_REGISTRY: &str = "registry.bench.example";
    /// The service attribute of the item `secret-tool` stores (beside wbl's own item).
    const SECRET_TOOL_SERVICE: &str = "bench-secret-tool:https://api.wandb.ai";

    /// The world plus what the git side needs: a global config of its own and the files of
    /// the plaintext store.
    struct Env {
        w: World,
        bins: Bins,
        gitconfig: PathBuf,
        store_file: PathBuf,
        libsecret: Option<PathBuf>,
        key: String,
    }

    impl Env {
        fn new(backend: Backend) -> Env {
            let w = World::new(backend);
            let gitconfig = w.home().join(".gitconfig");
            std::fs::write(&gitconfig, "").unwrap();
            let store_file = w.home().join("git-credentials");
            let libsecret = std::env::var_os("WBL_BENCH_GIT_LIBSECRET")
                .map(PathBuf::from)
                .filter(|p| p.is_file());
            Env {
                w,
                bins: Bins::get(),
                gitconfig,
                store_file,
                libsecret,
                key: key(1),
            }
        }

        /// A command with the world's environment and a git that reads only our config.
        fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
            let mut c = self.bins.cmd(&self.w, program);
            c.env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
                .env("GIT_TERMINAL_PROMPT", "0")
                .env_remove("GIT_ASKPASS")
                .env_remove("SSH_ASKPASS");
            c
        }

        fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &[u8]) -> Run {
            let mut c = self.cmd(program);
            c.args(args);
            let r = run_once(&mut c, stdin).unwrap();
            assert!(r.success, "{args:?} failed");
            r
        }

        fn full_credential(&self) -> Vec<u8> {
            format!(
                "protocol=https\nhost=api.wandb.ai\nusername=api\npassword={}\n\n",
                self.key
            )
            .into_bytes()
        }

        /// Stores the same key in every tool.
        fn store_everywhere(&self) {
            let cred = self.full_credential();
            self.run(&self.bins.wbl, &["credential", "store"], &cred);
            let docker = format!(
                r#"{{"ServerURL":"{DOCKER_REGISTRY}","Username":"api","Secret":"{}"}}"#,
                self.key
            );
            self.run(&self.bins.docker_helper, &["store"], docker.as_bytes());
            self.run(
                "git",
                &["credential-cache", "--timeout", "86400", "store"],
                &cred,
            );
            let file = self.store_file.to_str().unwrap();
            self.run("git", &["credential-store", "--file", file, "store"], &cred);
            self.run(
                "secret-tool",
                &[
                    "store",
                    "--label=wbl bench (secret-tool)",
                    "service",
                    SECRET_TOOL_SERVICE,
                    "username",
                    "api",
                ],
                self.key.as_bytes(),
            );
            if let Some(p) = &self.libsecret {
                self.run(p, &["store"], &cred);
            }
        }

        fn has_key(&self) -> impl Fn(&[u8]) -> bool + 'static {
            let want = format!("password={}\n", self.key).into_bytes();
            move |out: &[u8]| out.windows(want.len()).any(|w| w == want.as_slice())
        }

        fn tool(&self, name: &str, program: &Path, args: &[&str]) -> Tool {
            self.tool_checked(name, program, args, QUERY, self.has_key())
        }

        fn tool_checked(
            &self,
            name: &str,
            program: &Path,
            args: &[&str],
            stdin: &[u8],
            check: impl Fn(&[u8]) -> bool + 'static,
        ) -> Tool {
            let mut c = self.cmd(program);
            c.args(args).current_dir(self.w.home());
            Tool::repeating(name, &c, stdin, check)
        }

        /// `git credential fill` with only `helper` configured.
        fn git_fill(&self, name: &str, helper: &str) -> Tool {
            let reset = "credential.helper=".to_owned();
            let helper = format!("credential.helper={helper}");
            self.tool(
                name,
                Path::new("git"),
                &["-c", &reset, "-c", &helper, "credential", "fill"],
            )
        }
    }

    fn rounds() -> usize {
        support::rounds(30, 400)
    }

    pub fn main() {
        let runs = rounds();
        let warmup = 20;
        let env = Env::new(Backend::SecretService);
        env.store_everywhere();
        let wbl = env.bins.wbl.clone();
        let wbl = wbl.as_path();
        let wbl_str = wbl.to_str().unwrap();
        let true_bin = Path::new("/bin/true");
        let git = Path::new("git");
        println!(
            "wbl agent backend: {}; {runs} interleaved rounds after {warmup} warm-up rounds\n",
            env.w.backend
        );

        // 1. Whole-process get, as git runs a helper.
        let key = env.key.clone();
        let mut tools = vec![
            env.tool("wbl credential get", wbl, &["credential", "get"]),
            env.tool(
                "git credential-cache get",
                git,
                &["credential-cache", "get"],
            ),
            env.tool("git-credential-wbl get", &env.bins.git_helper, &["get"]),
            env.tool_checked(
                "docker-credential-wbl get",
                &env.bins.docker_helper,
                &["get"],
                DOCKER_REGISTRY.as_bytes(),
                move |out| {
                    let want = format!("\"Secret\":\"{key}\"");
                    out.windows(want.len()).any(|w| w == want.as_bytes())
                },
            ),
        ];
        if let Some(p) = &env.libsecret {
            tools.push(env.tool("git-credential-libsecret get", p, &["get"]));
        }
        let key = env.key.clone();
        tools.push(env.tool_checked(
            "secret-tool lookup",
            Path::new("secret-tool"),
            &["lookup", "service", SECRET_TOOL_SERVICE, "username", "api"],
            b"",
            move |out| out.trim_ascii_end() == key.as_bytes(),
        ));
        let file = env.store_file.to_str().unwrap().to_owned();
        tools.push(env.tool(
            "git credential-store get",
            git,
            &["credential-store", "--file", &file, "get"],
        ));
        tools.push(env.tool_checked("/bin/true", true_bin, &[], QUERY, |_| true));
        // The helpers as scripts/install installs them on Linux with glibc (static).
        let static_dir = std::env::var_os("WBL_BENCH_STATIC_DIR").map(PathBuf::from);
        if let Some(dir) = &static_dir {
            tools.push(env.tool(
                "git-credential-wbl get (static)",
                &dir.join("git-credential-wbl"),
                &["get"],
            ));
            let key = env.key.clone();
            tools.push(env.tool_checked(
                "docker-credential-wbl get (static)",
                &dir.join("docker-credential-wbl"),
                &["get"],
                DOCKER_REGISTRY.as_bytes(),
                move |out| {
                    let want = format!("\"Secret\":\"{key}\"");
                    out.windows(want.len()).any(|w| w == want.as_bytes())
                },
            ));
        }
        println!(
            "## 1. Whole-process get, warm (`printf 'protocol=https\\nhost=api.wandb.ai\\n\\n' | <helper> get`)\n"
        );
        let helpers = support::interleaved(&tools, warmup, runs);
        print_samples(&helpers, "git credential-cache get");
        if let [wbl_s, cache_s, git_helper, docker_helper, ..] = &helpers[..] {
            let st = helpers
                .iter()
                .find(|s| s.name == "secret-tool lookup")
                .unwrap();
            println!(
                "\nwbl credential / git credential-cache: {}; git-credential-wbl / git credential-cache: {} (target ≤ 0.92×); docker-credential-wbl / git credential-cache: {} (target ≤ 1.00×); secret-tool / git-credential-wbl: {} (target ≥ 5×)\n",
                ratio(wbl_s.median(), cache_s.median()),
                ratio(git_helper.median(), cache_s.median()),
                ratio(docker_helper.median(), cache_s.median()),
                ratio(st.median(), git_helper.median())
            );
            let by_name = |n: &str| helpers.iter().find(|s| s.name == n);
            if let (Some(g), Some(d)) = (
                by_name("git-credential-wbl get (static)"),
                by_name("docker-credential-wbl get (static)"),
            ) {
                println!(
                    "static helpers (scripts/install): git-credential-wbl / git credential-cache: {} (target ≤ 0.92×); docker-credential-wbl / git credential-cache: {} (target ≤ 1.00×)\n",
                    ratio(g.median(), cache_s.median()),
                    ratio(d.median(), cache_s.median())
                );
            }
        }

        if std::env::var_os("WBL_BENCH_GET_ONLY").is_some() {
            return;
        }

        // 2. The same through git.
        let mut tools = vec![
            env.git_fill(
                "git credential fill → wbl",
                &format!("{wbl_str} credential"),
            ),
            env.git_fill("git credential fill → cache", "cache --timeout 86400"),
            env.git_fill(
                "git credential fill → git-credential-wbl",
                env.bins.git_helper.to_str().unwrap(),
            ),
        ];
        if let Some(p) = &env.libsecret {
            tools.push(env.git_fill("git credential fill → libsecret", p.to_str().unwrap()));
        }
        tools.push(env.git_fill(
            "git credential fill → secret-tool",
            &format!(
                "!f() {{ test \"$1\" = get || exit 0; p=$(secret-tool lookup service {SECRET_TOOL_SERVICE} username api) && printf 'username=api\\npassword=%s\\n' \"$p\"; }}; f"
            ),
        ));
        tools.push(env.git_fill(
            "git credential fill → store",
            &format!("store --file {file}"),
        ));
        println!("## 2. Through git (`git -c credential.helper=<helper> credential fill`)\n");
        let fill = support::interleaved(&tools, warmup, runs);
        print_samples(&fill, "git credential fill → cache");
        println!();

        // 4a. Client start-up.
        let mut tools = vec![
            env.tool_checked("wbl --version", wbl, &["--version"], b"", |o| {
                o.starts_with(b"wbl ")
            }),
            env.tool_checked("/bin/true", true_bin, &[], b"", |_| true),
            env.tool_checked("git --version", git, &["--version"], b"", |o| {
                o.starts_with(b"git ")
            }),
        ];
        // Another build of wbl to compare with (BENCHMARKS.md: the C `main` decision).
        let other = std::env::var_os("WBL_BENCH_OTHER_WBL").map(PathBuf::from);
        if let Some(other) = other.as_deref() {
            tools.push(env.tool_checked(
                "wbl --version (WBL_BENCH_OTHER_WBL)",
                other,
                &["--version"],
                b"",
                |o| o.starts_with(b"wbl "),
            ));
        }
        println!("## 4a. Client start-up\n");
        let startup = support::interleaved(&tools, warmup, runs);
        print_samples(&startup, "/bin/true");
        println!(
            "\nwbl --version / /bin/true: {} (target ≤ 1.50×)\n",
            ratio(startup[0].median(), startup[1].median())
        );

        let agent_pid = env.w.agent_pid().expect("agent runs");
        if let Some((hwm, rss)) = support::agent_memory(agent_pid) {
            println!(
                "agent ({}) after sections 1–4a: VmHWM {} MiB, VmRSS {} MiB\n",
                env.w.backend,
                support::mib(hwm),
                support::mib(rss)
            );
        }

        // 4b. Cold paths, for both Linux backends.
        let cold_runs = if support::quick() { 5 } else { 40 };
        println!("## 4b. Cold paths ({cold_runs} runs each; median, p99 in ms)\n");
        println!(
            "| backend | `wbl-agent` start-up to ready | first get after start (keychain read) | second get (cached) | auto-start: get with no agent running |"
        );
        println!("|---|---:|---:|---:|---:|");
        cold_paths(&env, cold_runs);
        drop(env);
        let ku = Env::new(Backend::Keyutils);
        ku.run(
            &ku.bins.wbl,
            &["credential", "store"],
            &ku.full_credential(),
        );
        cold_paths(&ku, cold_runs);
        println!();
    }

    /// Agent start-up to ready, the first get after it (a keychain read), a second one (from
    /// the cache), and a get that has to start the agent itself.
    fn cold_paths(env: &Env, runs: usize) {
        let mut start = Samples::default();
        let mut first = Samples::default();
        let mut second = Samples::default();
        let mut auto = Samples::default();
        let check = env.has_key();
        let get = |s: &mut Samples| {
            let r = env.run(&env.bins.wbl, &["credential", "get"], QUERY);
            assert!(check(&r.stdout), "get did not return the key");
            s.wall.push(r.wall);
        };
        for _ in 0..runs {
            env.w.stop_agent();
            start.wall.push(env.run(&env.bins.agent, &[], b"").wall);
            get(&mut first);
            get(&mut second);
            env.w.stop_agent();
            get(&mut auto);
        }
        let cell = |s: &Samples| format!("{} ({})", ms(s.median()), ms(s.p99()));
        println!(
            "| {} | {} | {} | {} | {} |",
            env.w.backend,
            cell(&start),
            cell(&first),
            cell(&second),
            cell(&auto)
        );
    }

    impl Drop for Env {
        fn drop(&mut self) {
            // git's cache daemon lives in this world's HOME; stop it.
            let _ = self
                .cmd("git")
                .args(["credential-cache", "exit"])
                .stdin(std::process::Stdio::null())
                .output();
        }
    }
}
