//! `wbl scan` against ripgrep and grep on the same generated tree, side by side: many small
//! text files, a few large logs, a git repository (working tree and compressed objects) and
//! binaries, with the key planted in a few of them. ripgrep runs as `rg -uuu -F -f NEEDLES`
//! and grep as `grep -rF -f NEEDLES`, NEEDLES being exactly the strings `wbl scan` searches
//! for (`wbl::scan::forms`: the key, its Basic-auth value, its base64 forms; ripgrep does not
//! check the base64 forms' neighbouring characters, so it does a little less). Warm page
//! cache; interleaved rounds; peak RSS through GNU time. Asserts the answers, never timings.
//!
//! `WBL_BENCH_SCAN_MB` sets the tree's size (default 2048; 64 with `WBL_BENCH_QUICK=1`).
//! The tree is kept in target/bench/scan-tree and reused while its size and key are the same.

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("scan bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if support::under_cargo_bench("scan") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use base64::Engine;

    use crate::common::{Backend, World};
    use crate::support::{self, Bins, Tool, print_samples};

    /// A legacy key of 40 hex characters, the shape of the git object names around it.
    const KEY: &str = "3f9c2a7e5b1d4c8f0a6e2b9d7c3f1a5e8b0d4c2f";
    /// Copies planted: ten small files, one large log, one HAR (Basic auth), one file of the
    /// git repository's working tree.
    const PLANTED: usize = 13;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn hex40(&mut self, out: &mut Vec<u8>) {
            for _ in 0..40 {
                out.push(b"0123456789abcdef"[(self.next() % 16) as usize]);
            }
        }
    }

    const WORDS: &[&str] = &[
        "loss",
        "epoch",
        "grad_norm",
        "lr",
        "checkpoint",
        "saved",
        "eval",
        "accuracy",
        "batch",
        "tokens",
        "warmup",
        "scheduler",
        "optimizer",
        "rank",
        "node",
        "sync",
        "artifact",
    ];

    /// About `bytes` of log-like text lines (each ~120 bytes, each with a 40-hex run id).
    fn text(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
        let end = out.len() + bytes;
        while out.len() < end {
            let n = rng.next();
            let _ = write!(
                out,
                "2026-12-05T12:{:02}:{:02}Z step={} {}={:.4} run=",
                n % 60,
                (n >> 8) % 60,
                n % 100_000,
                WORDS[(n >> 16) as usize % WORDS.len()],
                (n >> 20) as f64 / (1u64 << 44) as f64,
            );
            rng.hex40(out);
            let _ = writeln!(
                out,
                " host=node-{} msg={} {} {}",
                (n >> 30) % 64,
                WORDS[(n >> 36) as usize % WORDS.len()],
                WORDS[(n >> 40) as usize % WORDS.len()],
                WORDS[(n >> 44) as usize % WORDS.len()],
            );
        }
    }

    fn write(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    /// The tree: 40 % small text files (2–14 KiB), 35 % four large logs, 10 % a git
    /// repository's working tree (plus its compressed objects), 15 % binaries.
    fn generate(root: &Path, mb: u64) {
        // Beside the tree, not in it: it names the key (and the planting rule's version).
        let marker = root.with_extension("generated");
        let want = format!("{mb} {KEY} 10\n");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
            return;
        }
        let _ = std::fs::remove_dir_all(root);
        eprintln!("== generating a {mb} MB tree in {}", root.display());
        let total = (mb * 1_000_000) as usize;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut buf = Vec::new();
        let planted_line = |what: &str| format!("WANDB_API_KEY={what}\n").into_bytes();

        // Small files; the key in ten of them, the Basic-auth value in a HAR file.
        let small = total * 40 / 100;
        let (mut made, mut i, mut planted) = (0usize, 0usize, 0usize);
        while made < small {
            buf.clear();
            let size = 2048 + (rng.next() % 12288) as usize;
            text(&mut rng, size, &mut buf);
            if i % 997 == 500 && planted < 10 {
                buf.extend_from_slice(&planted_line(KEY));
                planted += 1;
            }
            made += buf.len();
            let ext = ["txt", "yaml", "py", "json"][i % 4];
            write(
                &root.join(format!("small/d{:04}/f{:03}.{ext}", i / 100, i % 100)),
                &buf,
            );
            i += 1;
        }
        // A tree too small for ten of them (`WBL_BENCH_QUICK`): the rest in files of their own.
        for n in planted..10 {
            buf.clear();
            text(&mut rng, 4096, &mut buf);
            buf.extend_from_slice(&planted_line(KEY));
            write(&root.join(format!("small/extra/f{n}.txt")), &buf);
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{KEY}"));
        write(
            &root.join("small/trace.har"),
            format!(
                "{{\"log\": {{\"entries\": [{{\"request\": {{\"headers\": [\n{{\"name\": \
                 \"Authorization\", \"value\": \"Basic {basic}\"}}]}}}}]}}}}\n"
            )
            .as_bytes(),
        );
        // Large logs; the key in the middle of the second.
        for n in 0..4 {
            buf.clear();
            let size = total * 35 / 100 / 4;
            text(&mut rng, size / 2, &mut buf);
            if n == 1 {
                buf.extend_from_slice(&planted_line(KEY));
            }
            text(&mut rng, size / 2, &mut buf);
            write(&root.join(format!("logs/train-{n}.log")), &buf);
        }
        // A git repository: its files committed (objects compressed), the key in one.
        let repo = root.join("repo");
        let repo_bytes = total * 10 / 100;
        let files = 200;
        for n in 0..files {
            buf.clear();
            text(&mut rng, repo_bytes / files, &mut buf);
            if n == 77 {
                buf.extend_from_slice(&planted_line(KEY));
            }
            write(&repo.join(format!("src/m{n:03}.py")), &buf);
        }
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .current_dir(&repo)
                .args([
                    "-c",
                    "user.name=b",
                    "-c",
                    "user.email=b@b",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .expect("git");
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-qm", "bench"]);
        // Binaries.
        let bins = total * 15 / 100;
        for n in 0..8 {
            buf.clear();
            buf.resize(bins / 8, 0);
            for chunk in buf.chunks_mut(8) {
                let v = rng.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            write(&root.join(format!("bin/blob-{n}.bin")), &buf);
        }
        std::fs::write(&marker, want).unwrap();
    }

    fn count_lines(out: &[u8], needle: &[u8]) -> usize {
        out.split(|&b| b == b'\n')
            .filter(|l| l.windows(needle.len()).any(|w| w == needle))
            .count()
    }

    pub fn main() {
        let quick = support::quick();
        let mb: u64 = std::env::var("WBL_BENCH_SCAN_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 64 } else { 2048 });
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/scan-tree");
        generate(&root, mb);
        let needles = root.with_file_name("scan-needles.txt");
        let mut list = Vec::new();
        for n in wbl::scan::forms(KEY.as_bytes(), Some("api")) {
            list.extend_from_slice(&n.bytes);
            list.push(b'\n');
        }
        std::fs::write(&needles, &list).unwrap();
        let needle_count = list.iter().filter(|&&b| b == b'\n').count();

        let bins = Bins::get();
        let w = World::new(Backend::Keyutils);
        bins.start_agent(&w);
        bins.wbl(&w, &["login", KEY], b"");

        // `wbl scan` exits 1 when it finds copies: success for the harness.
        let mut c = bins.cmd(&w, "sh");
        c.arg("-c")
            .arg("\"$@\"; [ $? -eq 1 ]")
            .arg("sh")
            .arg(&bins.wbl)
            .arg("scan")
            .arg(&root);
        let scan = Tool::repeating("wbl scan", &c, b"", |out| {
            count_lines(out, b"of https://api.wandb.ai") == PLANTED
        });
        let (n2, t2) = (needles.clone(), root.clone());
        let rg = Tool::new(
            "rg -uuu -F -f",
            move || {
                let mut c = Command::new("rg");
                c.args(["-uuu", "-F", "-f"]).arg(&n2).arg(&t2);
                c
            },
            b"",
            |out| out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() == PLANTED,
        );
        let (n3, t3) = (needles.clone(), root.clone());
        let grep = Tool::new(
            "grep -rF -f",
            move || {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("grep -rF -f \"$1\" \"$2\"; [ $? -le 1 ]")
                    .arg("sh")
                    .arg(&n3)
                    .arg(&t3);
                c
            },
            b"",
            |out| !out.is_empty(),
        );
        let runs = if quick { 2 } else { 5 };
        let samples = support::interleaved(&[scan, rg, grep], 1, runs);
        let size_mb: u64 = {
            let out = Command::new("du")
                .args(["-sm"])
                .arg(&root)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        println!(
            "Tree: {size_mb} MB on disk ({mb} MB generated), {needle_count} needles, \
             {PLANTED} planted copies; warm page cache; {} threads available.",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        println!();
        print_samples(&samples, "rg -uuu -F -f");
        w.stop_agent();
    }
}
