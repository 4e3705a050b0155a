//! Agent benchmarks over the real socket: the mixed load of SECURITY.md (1000 clients × 100
//! requests across 100 hosts) and get throughput/latency at several connection counts, then
//! the agent's peak RSS. Prints figures; asserts nothing about speed. Run:
//! `cargo bench --bench agent` (`WBL_BENCH_BACKEND=secret-service` to measure against
//! gnome-keyring, where the mixed load is the small one; `WBL_BENCH_QUICK=1` for a short run;
//! `WBL_BENCH_MIXED=0` for the get runs only; `WBL_BENCH_BIN_DIR` to measure other binaries,
//! as scripts/bench does).

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
#[path = "../tests/support/loadgen.rs"]
mod loadgen;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("agent bench: runs on Linux only (it needs gnome-keyring or keyutils)");
}

#[cfg(target_os = "linux")]
fn main() {
    use std::time::Duration;

    use common::{Backend, World, key};
    use loadgen::{LoadConfig, Mode};
    use support::Bins;

    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Either way
    // run the whole thing only under `cargo bench`.
    if !support::under_cargo_bench("agent") {
        return;
    }
    let quick = support::quick();
    let secret_service = std::env::var("WBL_BENCH_BACKEND").as_deref() == Ok("secret-service");
    let backend = || {
        if secret_service {
            Backend::SecretService
        } else {
            Backend::Keyutils
        }
    };
    let w = World::new(backend());
    let bins = Bins::get();
    let pid = bins.start_agent(&w);
    let store = |host: &str, key: &str| {
        let cred = format!("protocol=https\nhost={host}\nusername=api\npassword={key}\n\n");
        bins.wbl(&w, &["credential", "store"], cred.as_bytes());
    };
    store("api.wandb.ai", &key(1));
    println!("backend: {}", w.backend);
    let memory = |when: &str| {
        if let Some((hwm, rss)) = support::agent_memory(pid) {
            println!(
                "agent memory {when}: VmHWM {} MiB, VmRSS {} MiB",
                support::mib(hwm),
                support::mib(rss)
            );
        }
    };
    memory("after start-up and one store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // gnome-keyring takes a few dozen stores a second: the full mixed load (30 000 stores)
    // would run into the time limit, so it gets the small one. `WBL_BENCH_MIXED=0` skips it.
    let small = quick || secret_service;
    let (clients, requests) = if small { (100, 20) } else { (1000, 100) };
    if std::env::var("WBL_BENCH_MIXED").as_deref() != Ok("0") {
        let mixed = rt.block_on(loadgen::run(LoadConfig {
            socket: w.socket(),
            clients,
            requests,
            hosts: 100,
            mode: Mode::Mixed,
            time_limit: Duration::from_secs(300),
        }));
        println!(
            "mixed get/store/erase (60/30/10), {clients} clients x {requests} requests, 100 hosts: {}",
            mixed.summary()
        );
        if let Some(e) = &mixed.first_error {
            println!("  first error: {e}");
        }
        memory("after the mixed load");
    }

    // Get throughput: one stored key, persistent connections.
    store("bench.load.test", &key(2));
    println!("get, persistent connections:");
    println!("| connections | requests | req/s | p50 | p99 |");
    println!("|---:|---:|---:|---:|---:|");
    for conns in [1usize, 16, 64, 256] {
        let total = if quick { 20_000 } else { 200_000 };
        let r = rt.block_on(loadgen::run(LoadConfig {
            socket: w.socket(),
            clients: conns,
            requests: total / conns,
            hosts: 1,
            mode: Mode::GetOnly,
            time_limit: Duration::from_secs(120),
        }));
        assert_eq!(r.errors + r.mismatches, 0, "{:?}", r.first_error);
        println!(
            "| {conns} | {} | {:.0} | {} µs | {} µs |",
            r.requests,
            r.per_second(),
            r.percentile(0.5).as_micros(),
            r.percentile(0.99).as_micros()
        );
    }
    memory("after the get runs");
}
