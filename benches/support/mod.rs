//! Helpers shared by the benches (`tools`, `growth`, `agent`): which binaries to measure,
//! whole-process timing, interleaved runs of several tools, peak RSS of a child (through GNU
//! time) and of the agent (`VmHWM`), order statistics and markdown tables. Linux only, like
//! the benches' bodies. Needs the test fixture as `crate::common`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One whole-process run: spawn, write stdin, read stdout to the end, reap.
pub struct Run {
    pub wall: Duration,
    pub stdout: Vec<u8>,
    pub success: bool,
}

/// Runs `cmd` once the way git runs a helper, timing from just before the spawn to the reaping
/// of the child. stderr goes to /dev/null.
pub fn run_once(cmd: &mut Command, stdin: &[u8]) -> std::io::Result<Run> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    {
        let mut input = child.stdin.take().expect("piped stdin");
        // A helper may exit without reading its input (`/bin/true`): ignore EPIPE.
        let _ = input.write_all(stdin);
    }
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut stdout)?;
    let status = child.wait()?;
    let wall = t0.elapsed();
    Ok(Run {
        wall,
        stdout,
        success: status.success(),
    })
}

/// Peak RSS (`ru_maxrss`, KiB) of one run of `cmd`, as GNU time reports it (`/usr/bin/time
/// -f %M`), or `None` without GNU time. Not measured from this process: a child's `ru_maxrss`
/// also counts the address space it was forked (or vforked) from until its `exec`, so a child
/// of the bench would show the bench's own RSS; GNU time is small (`/bin/true` reads under
/// 1 MiB through it), so what it reports is the child's.
pub fn peak_rss_kib(cmd: &Command, stdin: &[u8]) -> Option<u64> {
    let time = std::path::Path::new("/usr/bin/time");
    if !time.is_file() {
        return None;
    }
    let out = tempfile::NamedTempFile::new().ok()?;
    let mut c = Command::new(time);
    c.args(["-f", "%M", "-o"])
        .arg(out.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    let r = run_once(&mut c, stdin).ok()?;
    if !r.success {
        return None;
    }
    std::fs::read_to_string(out.path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The median of [`peak_rss_kib`] over `runs` runs of a tool.
pub fn tool_rss_kib(t: &Tool, runs: usize) -> Option<u64> {
    let mut v: Vec<u64> = (0..runs)
        .filter_map(|_| peak_rss_kib(&(t.command)(), &t.stdin))
        .collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Whether one run's stdout is a correct answer.
pub type Check = Box<dyn Fn(&[u8]) -> bool>;

/// A program measured by [`interleaved`].
pub struct Tool {
    pub name: String,
    /// Builds the command afresh for each run.
    pub command: Box<dyn Fn() -> Command>,
    pub stdin: Vec<u8>,
    /// Whether one run's stdout is a correct answer (e.g. it holds the key).
    pub check: Check,
}

impl Tool {
    pub fn new(
        name: impl Into<String>,
        command: impl Fn() -> Command + 'static,
        stdin: &[u8],
        check: impl Fn(&[u8]) -> bool + 'static,
    ) -> Tool {
        Tool {
            name: name.into(),
            command: Box::new(command),
            stdin: stdin.to_vec(),
            check: Box::new(check),
        }
    }
}

impl Tool {
    /// A tool that runs a copy of `cmd` each time: its program, arguments, environment and
    /// working directory.
    pub fn repeating(
        name: impl Into<String>,
        cmd: &Command,
        stdin: &[u8],
        check: impl Fn(&[u8]) -> bool + 'static,
    ) -> Tool {
        let program = cmd.get_program().to_owned();
        let args: Vec<std::ffi::OsString> = cmd.get_args().map(ToOwned::to_owned).collect();
        let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect();
        let dir = cmd.get_current_dir().map(ToOwned::to_owned);
        Tool::new(
            name,
            move || {
                let mut c = Command::new(&program);
                c.args(&args);
                if let Some(dir) = &dir {
                    c.current_dir(dir);
                }
                for (k, v) in &envs {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                c
            },
            stdin,
            check,
        )
    }
}

/// The runs of one tool.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub name: String,
    pub wall: Vec<Duration>,
    /// Median peak RSS, KiB (a separate, untimed pass; see [`peak_rss_kib`]).
    pub rss_kib: Option<u64>,
    pub failures: usize,
}

impl Samples {
    pub fn median(&self) -> Duration {
        percentile(&self.wall, 0.5)
    }
    pub fn p99(&self) -> Duration {
        percentile(&self.wall, 0.99)
    }
    pub fn min(&self) -> Duration {
        self.wall.iter().copied().min().unwrap_or_default()
    }
}

/// Runs every tool `warmup` times (discarded), then `runs` rounds in which each tool runs once,
/// the order rotating from round to round so no tool always follows the same one. A run whose
/// output fails the tool's check counts as a failure (and its time is still recorded). Then
/// each tool's peak RSS, untimed.
pub fn interleaved(tools: &[Tool], warmup: usize, runs: usize) -> Vec<Samples> {
    let mut out: Vec<Samples> = tools
        .iter()
        .map(|t| Samples {
            name: t.name.clone(),
            ..Default::default()
        })
        .collect();
    let n = tools.len();
    for round in 0..warmup + runs {
        for k in 0..n {
            let i = (round + k) % n;
            let t = &tools[i];
            let r = match run_once(&mut (t.command)(), &t.stdin) {
                Ok(r) => r,
                Err(e) => panic!("cannot run {}: {e}", t.name),
            };
            if round < warmup {
                assert!(
                    r.success && (t.check)(&r.stdout),
                    "{} gave a wrong answer during warm-up (status ok: {}, {} bytes of output)",
                    t.name,
                    r.success,
                    r.stdout.len()
                );
                continue;
            }
            let s = &mut out[i];
            if !(r.success && (t.check)(&r.stdout)) {
                s.failures += 1;
            }
            s.wall.push(r.wall);
        }
    }
    for (s, t) in out.iter_mut().zip(tools) {
        s.rss_kib = tool_rss_kib(t, 5);
    }
    out
}

/// The `q` quantile (nearest rank) of unsorted durations.
pub fn percentile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    let idx = ((v.len() - 1) as f64 * q).round() as usize;
    v[idx]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Microseconds, whole.
pub fn us(d: Duration) -> String {
    format!("{}", d.as_micros())
}

/// A ratio with two decimals and a `×`.
pub fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64().max(1e-12))
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Prints a markdown table of [`Samples`]: median, p99, min, peak RSS, failures, and the
/// median's ratio to the tool named `reference`.
pub fn print_samples(samples: &[Samples], reference: &str) {
    let base = samples
        .iter()
        .find(|s| s.name == reference)
        .map(Samples::median)
        .unwrap_or(Duration::from_nanos(1));
    println!(
        "| tool | runs | median ms | p99 ms | min ms | median / {reference} | peak RSS MiB | wrong answers |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in samples {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.wall.len(),
            ms(s.median()),
            ms(s.p99()),
            ms(s.min()),
            ratio(s.median(), base),
            s.rss_kib.map(mib).unwrap_or_else(|| "n/a".into()),
            s.failures
        );
    }
}

/// `VmHWM` (peak resident set) and `VmRSS` of a live process, KiB.
pub fn agent_memory(pid: u32) -> Option<(u64, u64)> {
    Some((status_kib(pid, "VmHWM:")?, status_kib(pid, "VmRSS:")?))
}

/// One `… kB` field of `/proc/<pid>/status` (`name` with its colon), KiB.
pub fn status_kib(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The rounds a bench runs: `quick` under `WBL_BENCH_QUICK=1`, else `WBL_BENCH_RUNS` when set
/// to a positive number, else `default`.
pub fn rounds(quick: usize, default: usize) -> usize {
    if self::quick() {
        return quick;
    }
    std::env::var("WBL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Whether the bench runs under `cargo bench` (which passes `--bench`); `cargo test --benches`
/// and `--all-targets` builds only compile it.
pub fn under_cargo_bench(name: &str) -> bool {
    if std::env::args().any(|a| a == "--bench") {
        return true;
    }
    println!("{name} bench: run with `cargo bench --bench {name}` or scripts/bench");
    false
}

/// `WBL_BENCH_QUICK=1`: a short run, to check that the bench works.
pub fn quick() -> bool {
    std::env::var("WBL_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// The binaries the benches measure: from `WBL_BENCH_BIN_DIR` when set (scripts/bench points
/// it at a copy of `cargo build --release`'s output), else the ones cargo built for the bench.
/// They differ: `cargo bench` builds the binaries with the dev-dependencies' features unified
/// into their dependencies (regex's Unicode tables, for one), which makes `wbl` bigger and
/// slower to start than what users install.
pub struct Bins {
    pub wbl: std::path::PathBuf,
    pub agent: std::path::PathBuf,
    pub git_helper: std::path::PathBuf,
    pub docker_helper: std::path::PathBuf,
}

impl Bins {
    pub fn get() -> Bins {
        match std::env::var_os("WBL_BENCH_BIN_DIR") {
            Some(dir) => {
                let dir = std::path::Path::new(&dir);
                Bins {
                    wbl: dir.join("wbl"),
                    agent: dir.join("wbl-agent"),
                    git_helper: dir.join("git-credential-wbl"),
                    docker_helper: dir.join("docker-credential-wbl"),
                }
            }
            None => Bins {
                wbl: crate::common::WBL.into(),
                agent: crate::common::AGENT.into(),
                git_helper: crate::common::GIT_HELPER.into(),
                docker_helper: crate::common::DOCKER_HELPER.into(),
            },
        }
    }

    /// `program` with the world's environment; a client that starts an agent starts ours.
    pub fn cmd(&self, w: &crate::common::World, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        w.apply_env(&mut c);
        c.env("WBL_AGENT_BIN", &self.agent).stdin(Stdio::null());
        c
    }

    /// Starts the world's agent (the detaching launcher returns once it is ready); its pid.
    pub fn start_agent(&self, w: &crate::common::World) -> u32 {
        let out = self.cmd(w, &self.agent).output().expect("run wbl-agent");
        assert!(out.status.success(), "wbl-agent failed: {out:?}");
        w.agent_pid().expect("agent runs")
    }

    /// Runs `wbl args` with `stdin`; panics when it fails.
    pub fn wbl(&self, w: &crate::common::World, args: &[&str], stdin: &[u8]) -> Run {
        let mut c = self.cmd(w, &self.wbl);
        c.args(args);
        let r = run_once(&mut c, stdin).expect("run wbl");
        assert!(r.success, "wbl {args:?} failed");
        r
    }
}
