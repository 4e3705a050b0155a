//! A load generator for the agent: many concurrent clients, each on its own persistent
//! connection, over the real socket. Shared by `tests/load.rs` (small, checks correctness)
//! and `benches/agent.rs` (large, prints figures).
//!
//! In `Mixed` mode every client owns its keys (its own user name on a few hosts), so it knows
//! exactly what each `get` must return: the last value it stored, or nothing after an erase.
//! Any other answer is counted as a mismatch — a lost, stale or mixed-up key.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use wbl_proto::{
    Connection, Credential, PROTOCOL_VERSION, Query, Request, Response, Secret, Target,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// get/store/erase mixed (60/30/10) across `hosts` hosts, verified.
    Mixed,
    /// Only gets of one stored key.
    GetOnly,
}

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub socket: PathBuf,
    pub clients: usize,
    pub requests: usize,
    pub hosts: usize,
    pub mode: Mode,
    /// Stop early when this much time has passed (the run stays bounded).
    pub time_limit: Duration,
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub requests: u64,
    pub errors: u64,
    pub mismatches: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency of each request, microseconds.
    pub latencies_us: Vec<u32>,
}

impl LoadReport {
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let idx = ((v.len() - 1) as f64 * q).round() as usize;
        Duration::from_micros(v[idx] as u64)
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn summary(&self) -> String {
        format!(
            "requests={} errors={} mismatches={} elapsed={:.2}s rps={:.0} p50={}us p99={}us max={}us",
            self.requests,
            self.errors,
            self.mismatches,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.percentile(0.50).as_micros(),
            self.percentile(0.99).as_micros(),
            self.percentile(1.0).as_micros(),
        )
    }
}

/// The key a mixed-mode client uses for request `i`: its own user on one of 4 hosts.
fn target_for(cfg: &LoadConfig, client: usize, i: usize) -> (Target, String) {
    let host = (client + (i % 4) * 7) % cfg.hosts.max(1);
    (
        Target::new("https", format!("h{host}.load.test")),
        format!("u{client}"),
    )
}

async fn connect(cfg: &LoadConfig) -> std::io::Result<Connection<Stream>> {
    let name = cfg.socket.clone().to_fs_name::<GenericFilePath>()?;
    let mut conn = Connection::new(Stream::connect(name).await?);
    conn.send_async(&Request::Hello {
        protocol: PROTOCOL_VERSION,
        client_version: "loadgen".into(),
    })
    .await
    .map_err(std::io::Error::other)?;
    match conn.recv_async::<Response>().await {
        Ok(Some(Response::Hello { .. })) => Ok(conn),
        other => Err(std::io::Error::other(format!("bad hello: {other:?}"))),
    }
}

/// A tiny deterministic random source (no extra crates).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

struct ClientResult {
    requests: u64,
    errors: u64,
    mismatches: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

async fn one_client(cfg: LoadConfig, client: usize, deadline: Instant) -> ClientResult {
    let mut r = ClientResult {
        requests: 0,
        errors: 0,
        mismatches: 0,
        first_error: None,
        latencies_us: Vec::with_capacity(cfg.requests),
    };
    let mut conn = match connect(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            r.errors += 1;
            r.first_error = Some(format!("client {client}: connect: {e}"));
            return r;
        }
    };
    let mut rng = Lcg(client as u64 * 7919 + 1);
    // What this client last stored per (host, user); None = nothing / erased.
    let mut expected: std::collections::HashMap<(Target, String), Option<String>> =
        Default::default();
    for i in 0..cfg.requests {
        if Instant::now() > deadline {
            break;
        }
        let (target, user) = match cfg.mode {
            Mode::Mixed => target_for(&cfg, client, i),
            Mode::GetOnly => (Target::new("https", "bench.load.test"), "api".to_owned()),
        };
        let roll = rng.next() % 10;
        let (req, stored) = match (cfg.mode, roll) {
            (Mode::Mixed, 0..=2) => {
                let value = format!("v-{client}-{i}-{}", "x".repeat(40));
                (
                    Request::Store(Credential::new(
                        target.clone(),
                        user.clone(),
                        Secret::new(value.clone()),
                    )),
                    Some(Some(value)),
                )
            }
            (Mode::Mixed, 3) => (
                Request::Erase(Query {
                    target: target.clone(),
                    username: Some(user.clone()),
                    account: Default::default(),
                }),
                Some(None),
            ),
            _ => (
                Request::Get(Query {
                    target: target.clone(),
                    username: Some(user.clone()),
                    account: Default::default(),
                }),
                None,
            ),
        };
        let t0 = Instant::now();
        let sent = conn.send_async(&req).await;
        let resp = match sent {
            Ok(()) => conn.recv_async::<Response>().await,
            Err(e) => Err(e),
        };
        r.latencies_us
            .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        r.requests += 1;
        let key = (target, user);
        match (resp, stored) {
            (Ok(Some(Response::Stored { .. })), Some(v @ Some(_))) => {
                expected.insert(key, v);
            }
            (Ok(Some(Response::Erased { .. })), Some(None)) => {
                expected.insert(key, None);
            }
            (Ok(Some(Response::Credential(c))), None) => {
                let got = c.map(|c| c.password.expose().to_owned());
                let want = match cfg.mode {
                    Mode::Mixed => expected.get(&key).cloned().flatten(),
                    Mode::GetOnly => got.clone(),
                };
                if got != want || (cfg.mode == Mode::GetOnly && got.is_none()) {
                    r.mismatches += 1;
                    if r.first_error.is_none() {
                        r.first_error = Some(format!(
                            "client {client} request {i}: got {:?}, expected {:?}",
                            got.as_deref().map(|s| &s[..s.len().min(24)]),
                            want.as_deref().map(|s| &s[..s.len().min(24)])
                        ));
                    }
                }
            }
            (other, _) => {
                r.errors += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(format!("client {client} request {i}: {other:?}"));
                }
                // The connection may be unusable; reconnect.
                match connect(&cfg).await {
                    Ok(c) => conn = c,
                    Err(_) => return r,
                }
            }
        }
    }
    r
}

/// Runs the load: all clients start together, each on its own connection and task.
pub async fn run(cfg: LoadConfig) -> LoadReport {
    let deadline = Instant::now() + cfg.time_limit;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.clients);
    for c in 0..cfg.clients {
        tasks.push(tokio::spawn(one_client(cfg.clone(), c, deadline)));
    }
    let mut report = LoadReport::default();
    for t in tasks {
        match t.await {
            Ok(r) => {
                report.requests += r.requests;
                report.errors += r.errors;
                report.mismatches += r.mismatches;
                if report.first_error.is_none() {
                    report.first_error = r.first_error;
                }
                report.latencies_us.extend(r.latencies_us);
            }
            Err(e) => {
                report.errors += 1;
                report
                    .first_error
                    .get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}
