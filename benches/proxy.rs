//! The key-injecting proxy (`wbl exec --proxy`) against talking to the same server directly:
//! a small GraphQL POST over a kept-alive connection (latency) and a 256 MiB upload
//! (throughput), each against two servers: the tests' fake W&B server (tests/fake_wandb, the
//! one the issue names; tiny_http, a thread per request) and the floor, a minimal hyper server
//! in this process that answers at once, so the proxy's own cost shows. Each comparison also
//! goes through two relays in a process of their own (this bench re-run as one): a byte relay
//! that parses nothing, the least any proxy process adds, and a bare hyper forwarder (no rule,
//! no key swap, no rewrite), the least a hyper-based one adds. Then 64 concurrent
//! streams through one proxy (no error), and memory: the proxy engine's (the process that
//! serves a grant) over the uploads and the streams, and the agent's, idle before any proxy,
//! with one open, and idle again once the proxies closed and their engines, after their
//! ports' grace for late requests (`wbl::agent::PROXY_ENDED_GRACE`), exited. Both servers
//! check the key on every request. Prints markdown tables; asserts answers, never timings.
//!
//! `WBL_BENCH_RUNS` sets the rounds of small POSTs (default 3000), `WBL_BENCH_QUICK=1` a short
//! run (16 MiB uploads, 300 rounds).

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
#[path = "../tests/fake_wandb/mod.rs"]
mod fake_wandb;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("proxy bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if let Some(upstream) = std::env::var_os(linux::RELAY_VAR) {
        linux::relay(&upstream.to_string_lossy());
    } else if support::under_cargo_bench("proxy") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Write;
    use std::pin::Pin;
    use std::process::Child;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use base64::Engine;
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Body, Bytes, Frame, Incoming};
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    use crate::common::{Backend, World, hold_proxy, key, proxy_engines_of};
    use crate::fake_wandb;
    use crate::support::{self, Bins, mib};

    const CHUNK: usize = 256 * 1024;

    /// Set (to a [`Relay`]'s name, `:` and the upstream's `host:port`) in the environment of
    /// this bench re-run as a relay.
    pub const RELAY_VAR: &str = "WBL_BENCH_PROXY_RELAY";

    /// What a relay does with each client's connection.
    #[derive(Clone, Copy)]
    enum Relay {
        /// Copies bytes both ways: the least any proxy process adds.
        Bytes,
        /// Forwards each request as it came with hyper: the least a hyper-based proxy adds.
        Hyper,
    }

    impl Relay {
        const ALL: [Relay; 2] = [Relay::Bytes, Relay::Hyper];

        fn name(self) -> &'static str {
            match self {
                Relay::Bytes => "bytes",
                Relay::Hyper => "hyper",
            }
        }
    }

    /// The relay (this bench re-run with [`RELAY_VAR`]): listens on a free loopback port,
    /// prints it, and for each client opens a connection of its own to the upstream, on a
    /// current-thread runtime like the proxy engine's, and serves it as its [`Relay`] says.
    /// Exits when its stdin closes (the bench is gone).
    pub fn relay(spec: &str) {
        let Some((kind, upstream)) = spec.split_once(':').and_then(|(name, upstream)| {
            let kind = Relay::ALL.into_iter().find(|r| r.name() == name)?;
            Some((kind, upstream))
        }) else {
            panic!("{RELAY_VAR}: bytes:HOST:PORT or hyper:HOST:PORT, not {spec}");
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let upstream = upstream.to_owned();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", listener.local_addr().unwrap());
            std::io::stdout().flush().unwrap();
            let serve = async {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = up.set_nodelay(true);
                        match kind {
                            Relay::Hyper => forward(client, up).await,
                            Relay::Bytes => {
                                let _ = tokio::io::copy_bidirectional_with_sizes(
                                    &mut client,
                                    &mut up,
                                    CHUNK,
                                    CHUNK,
                                )
                                .await;
                            }
                        }
                    });
                }
            };
            let stdin_closed = async {
                let mut buf = [0u8; 64];
                let mut stdin = tokio::io::stdin();
                while tokio::io::AsyncReadExt::read(&mut stdin, &mut buf)
                    .await
                    .is_ok_and(|n| n > 0)
                {}
            };
            tokio::select! {
                () = serve => {}
                () = stdin_closed => {}
            }
        });
        rt.shutdown_background();
    }

    /// A bare hyper forwarder: each request of `client` goes out as it came on `up` (one
    /// request at a time, as HTTP/1.1 clients send), with the engine's buffer sizes.
    async fn forward(client: tokio::net::TcpStream, up: tokio::net::TcpStream) {
        let Ok((send, conn)) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(128 * 1024)
            .handshake::<_, Incoming>(TokioIo::new(up))
            .await
        else {
            return;
        };
        tokio::spawn(conn);
        let send = Arc::new(tokio::sync::Mutex::new(send));
        let svc = hyper::service::service_fn(move |r: Request<Incoming>| {
            let send = Arc::clone(&send);
            async move {
                let mut s = send.lock().await;
                s.ready().await?;
                s.send_request(r).await
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .max_buf_size(512 * 1024)
            .serve_connection(TokioIo::new(client), svc)
            .await;
    }

    /// A relay of `kind` to `upstream` (`http://host:port`): the child and its base URL.
    fn start_relay(kind: Relay, upstream: &str) -> (Child, String) {
        use std::io::BufRead;
        let host = upstream.strip_prefix("http://").unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env(RELAY_VAR, format!("{}:{host}", kind.name()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.trim().is_empty(), "the relay printed no address");
        (child, format!("http://{}", line.trim()))
    }

    /// Ends a relay: kills it, by its pid, and reaps it (it holds nothing to keep).
    fn stop_relay(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }
    const QUERY: &str = r#"{"query":"query Viewer { viewer { id entity username } }","operationName":"Viewer","variables":{}}"#;

    fn basic(key: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
        )
    }

    /// The upstream: GraphQL answers a viewer, anything else is drained and answered with the
    /// byte count; a request without the key gets 401.
    async fn serve(
        req: Request<Incoming>,
        auth: Arc<String>,
    ) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let ok = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == auth.as_bytes());
        let graphql = req.uri().path() == "/graphql";
        let mut body = req.into_body();
        let mut n = 0usize;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                n += data.len();
            }
        }
        let (status, text) = if !ok {
            (401, r#"{"errors":[{"message":"no key"}]}"#.to_owned())
        } else if graphql {
            (
                200,
                r#"{"data":{"viewer":{"id":"VXNlcjox","entity":"ada","username":"ada"}}}"#
                    .to_owned(),
            )
        } else {
            (200, format!("{{\"received\":{n}}}"))
        };
        let mut r = Response::new(Full::new(Bytes::from(text)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok(r)
    }

    fn start_upstream(rt: &tokio::runtime::Runtime, key: &str) -> String {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let auth = Arc::new(basic(key));
        rt.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                let auth = Arc::clone(&auth);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |r| serve(r, Arc::clone(&auth)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .max_buf_size(512 * 1024)
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        url
    }

    /// `len` bytes in chunks of [`CHUNK`], streamed (never held whole).
    struct Upload {
        chunk: Bytes,
        left: usize,
    }

    impl Body for Upload {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            let n = self.left.min(CHUNK);
            self.left -= n;
            Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.left as u64)
        }
    }

    enum AnyBody {
        Small(Full<Bytes>),
        Upload(Upload),
    }

    impl Body for AnyBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.get_mut() {
                AnyBody::Small(b) => Pin::new(b).poll_frame(cx),
                AnyBody::Upload(b) => Pin::new(b).poll_frame(cx),
            }
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            match self {
                AnyBody::Small(b) => b.size_hint(),
                AnyBody::Upload(b) => b.size_hint(),
            }
        }
    }

    /// One kept-alive HTTP/1.1 connection to `base` sending `auth`'s key.
    struct Conn {
        send: hyper::client::conn::http1::SendRequest<AnyBody>,
        host: String,
        auth: String,
    }

    impl Conn {
        async fn open(base: &str, key: &str) -> Conn {
            let host = base.strip_prefix("http://").unwrap().to_owned();
            let s = tokio::net::TcpStream::connect(&host).await.unwrap();
            s.set_nodelay(true).unwrap();
            let (send, conn) = hyper::client::conn::http1::Builder::new()
                .max_buf_size(512 * 1024)
                .handshake(TokioIo::new(s))
                .await
                .unwrap();
            tokio::spawn(conn);
            Conn {
                send,
                host,
                auth: basic(key),
            }
        }

        async fn call(&mut self, method: &str, path: &str, body: AnyBody) -> (u16, Bytes) {
            self.send.ready().await.unwrap();
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", &self.host)
                .header("authorization", &self.auth)
                .header("content-type", "application/json")
                .body(body)
                .unwrap();
            let resp = self.send.send_request(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, bytes)
        }

        async fn graphql(&mut self) {
            let (s, b) = self
                .call(
                    "POST",
                    "/graphql",
                    AnyBody::Small(Full::new(Bytes::from_static(QUERY.as_bytes()))),
                )
                .await;
            assert!(s == 200 && b.starts_with(b"{\"data\""), "{s} {b:?}");
        }

        async fn upload(&mut self, chunk: &Bytes, len: usize) {
            let body = AnyBody::Upload(Upload {
                chunk: chunk.clone(),
                left: len,
            });
            let (s, b) = self.call("PUT", "/files/ada/proj/run1/upload", body).await;
            assert_eq!(s, 200, "{b:?}");
            assert_eq!(b, Bytes::from(format!("{{\"received\":{len}}}")));
        }
    }

    /// `wbl exec --proxy` holding a proxy open: it prints the proxy's address and placeholder
    /// and waits for a line on stdin.
    fn open_proxy(bins: &Bins, w: &World, upstream: &str) -> (Child, String, String) {
        hold_proxy(bins.cmd(w, &bins.wbl), &["--host", upstream])
    }

    /// The proxy engine serving the proxy opened last: the agent's child that is not one of
    /// `before` (engines of closed proxies linger a while).
    fn engine_of(agent: u32, before: &[u32]) -> u32 {
        let engines: Vec<u32> = proxy_engines_of(agent)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(engines.len(), 1, "one new engine: {engines:?}");
        engines[0]
    }

    fn close_proxy(mut child: Child) {
        let _ = writeln!(child.stdin.take().unwrap(), "done");
        assert!(child.wait().unwrap().success());
    }

    fn rss(pid: u32) -> u64 {
        support::agent_memory(pid).expect("the agent runs").1
    }

    /// `RssAnon` and `RssFile` (mapped code and files) of the agent, KiB.
    fn rss_parts(pid: u32) -> (u64, u64) {
        let field = |name| support::status_kib(pid, name).unwrap_or(0);
        (field("RssAnon:"), field("RssFile:"))
    }

    fn settle() {
        std::thread::sleep(Duration::from_millis(500));
    }

    /// What one comparison measured, for each of [`PATHS`]: small POSTs (sorted durations)
    /// and upload throughput (MiB/s, median).
    struct Compared {
        posts: [Vec<Duration>; 4],
        mibps: [f64; 4],
    }

    const PATHS: [&str; 4] = [
        "direct",
        "through a byte relay (the hop alone)",
        "through a bare hyper forwarder",
        "through the proxy",
    ];

    /// One kept-alive connection to each of `paths` (base URL, key).
    async fn open_all(paths: &[(&str, &str)]) -> Vec<Conn> {
        let mut conns = Vec::new();
        for (url, k) in paths {
            conns.push(Conn::open(url, k).await);
        }
        conns
    }

    /// Small POSTs over one kept-alive connection on each path, interleaved, then uploads,
    /// in turn: to `upstream` directly with `key`, through a relay of each kind (started here,
    /// ended after) with `key`, and through the proxy at `base` with the placeholder.
    fn compare(
        rt: &tokio::runtime::Runtime,
        (upstream, key): (&str, &str),
        (base, placeholder): (&str, &str),
        rounds: usize,
        (upload_len, uploads): (usize, usize),
    ) -> Compared {
        let [(bytes, bytes_url), (hyper, hyper_url)] =
            Relay::ALL.map(|kind| start_relay(kind, upstream));
        let paths = [
            (upstream, key),
            (bytes_url.as_str(), key),
            (hyper_url.as_str(), key),
            (base, placeholder),
        ];
        let posts = rt.block_on(async {
            let mut conns = open_all(&paths).await;
            for _ in 0..50 {
                for c in &mut conns {
                    c.graphql().await;
                }
            }
            let mut times: [Vec<Duration>; 4] = Default::default();
            for _ in 0..rounds {
                for (c, ts) in conns.iter_mut().zip(times.iter_mut()) {
                    let t = Instant::now();
                    c.graphql().await;
                    ts.push(t.elapsed());
                }
            }
            for ts in &mut times {
                ts.sort();
            }
            times
        });
        let chunk = Bytes::from(vec![0x5a; CHUNK]);
        let mibps = rt.block_on(async {
            let mut conns = open_all(&paths).await;
            let mut times: [Vec<Duration>; 4] = Default::default();
            for _ in 0..uploads {
                for (c, ts) in conns.iter_mut().zip(times.iter_mut()) {
                    let t = Instant::now();
                    c.upload(&chunk, upload_len).await;
                    ts.push(t.elapsed());
                }
            }
            times.map(|mut ts| {
                ts.sort();
                (upload_len as f64 / 1048576.0) / ts[ts.len() / 2].as_secs_f64()
            })
        });
        stop_relay(bytes);
        stop_relay(hyper);
        Compared { posts, mibps }
    }

    fn report(title: &str, c: &Compared, rounds: usize, (upload_len, uploads): (usize, usize)) {
        let med = |v: &[Duration]| v[v.len() / 2];
        let p99 = |v: &[Duration]| support::percentile(v, 0.99);
        let [direct, relayed, forwarded, proxied] = &c.posts;
        println!("## {title}: small GraphQL POST over a kept-alive connection ({rounds} rounds)");
        println!();
        println!("| path | median (µs) | p99 (µs) |");
        println!("|---|---|---|");
        for (name, v) in PATHS.iter().zip(&c.posts) {
            println!(
                "| {name} | {} | {} |",
                support::us(med(v)),
                support::us(p99(v))
            );
        }
        println!();
        let ratio = |a: &[Duration], b: &[Duration]| med(a).as_secs_f64() / med(b).as_secs_f64();
        let added = |v: &[Duration]| support::us(med(v).saturating_sub(med(direct)));
        println!(
            "proxied / direct (median): **{:.2}×** (goal ≤ 1.3×); added by the proxy: {} µs \
             per request; by the byte relay: {} µs ({:.2}×); by the bare hyper forwarder: {} \
             µs ({:.2}×)",
            ratio(proxied, direct),
            added(proxied),
            added(relayed),
            ratio(relayed, direct),
            added(forwarded),
            ratio(forwarded, direct),
        );
        println!();
        println!(
            "## {title}: {} MiB upload (median of {uploads})",
            upload_len >> 20
        );
        println!();
        println!("| path | MiB/s |");
        println!("|---|---|");
        for (name, m) in PATHS.iter().zip(&c.mibps) {
            println!("| {name} | {m:.0} |");
        }
        println!();
        println!(
            "proxied / direct throughput: **{:.2}×** (goal ≥ 0.9×); byte relay / direct: \
             {:.2}×; bare hyper forwarder / direct: {:.2}×",
            c.mibps[3] / c.mibps[0],
            c.mibps[1] / c.mibps[0],
            c.mibps[2] / c.mibps[0]
        );
        println!();
    }

    pub fn main() {
        let quick = support::quick();
        let rounds = support::rounds(300, 3000);
        let uploads = (
            if quick { 16 << 20 } else { 256 << 20 },
            if quick { 1 } else { 3 },
        );
        let bins = Bins::get();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let k = key(26001);
        // The issue's comparison: the tests' fake W&B server (tests/fake_wandb/api.rs, a
        // thread per request, as tests/proxy.rs runs the SDK against). And the floor: a
        // minimal hyper server that answers at once, so the proxy's own cost shows.
        let fake = fake_wandb::api::FakeApi::start(&k, "ada");
        let floor = start_upstream(&rt, &k);
        let w = World::new(Backend::Keyutils);
        for host in [&fake.url, &floor] {
            let r = bins.wbl(&w, &["login", "--host", host, &k], b"");
            assert!(r.success);
        }
        let agent = w.agent_pid().unwrap_or_else(|| bins.start_agent(&w));
        settle();
        let idle_before = rss(agent);
        // What the agent does for any `wbl exec` (the key looked up and logged), without a
        // proxy: the part of the growth below that is not the proxy's.
        let r = bins.wbl(&w, &["exec", "--host", &fake.url, "--", "true"], b"");
        assert!(r.success);
        settle();
        let idle_plain_exec = rss(agent);
        let parts_before = rss_parts(agent);

        let (child, base, placeholder) = open_proxy(&bins, &w, &fake.url);
        settle();
        let agent_open = rss(agent);
        let engine = engine_of(agent, &[]);
        let open_rss = rss(engine);
        let c = compare(&rt, (&fake.url, &k), (&base, &placeholder), rounds, uploads);
        let after_upload = support::agent_memory(engine).unwrap();
        report("the tests' fake W&B server", &c, rounds, uploads);

        close_proxy(child);

        let (child, base, placeholder) = open_proxy(&bins, &w, &floor);
        let engine = engine_of(agent, &[engine]);
        let floor_open = rss(engine);
        let c = compare(&rt, (&floor, &k), (&base, &placeholder), rounds, uploads);
        report("the floor (a minimal hyper server)", &c, rounds, uploads);

        // 64 concurrent streams through the proxy, each 20 POSTs and a 1 MiB upload, to the
        // floor: the tests' fake server (tiny_http) runs a thread per connection from a pool
        // that leaves connections arriving in a burst queued behind busy threads.
        let errors = rt.block_on(async {
            let chunk = Bytes::from(vec![0x5a; CHUNK]);
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let base = base.clone();
                let placeholder = placeholder.clone();
                let chunk = chunk.clone();
                tasks.push(tokio::spawn(async move {
                    let mut c = Conn::open(&base, &placeholder).await;
                    for _ in 0..20 {
                        c.graphql().await;
                    }
                    c.upload(&chunk, 1 << 20).await;
                }));
            }
            let mut errors = 0;
            for t in tasks {
                if t.await.is_err() {
                    errors += 1;
                }
            }
            errors
        });
        let after_streams = support::agent_memory(engine).unwrap();
        println!("## 64 concurrent streams through one proxy (20 POSTs and a 1 MiB upload each)");
        println!();
        println!("errors: **{errors}** (goal 0)");
        println!();
        assert_eq!(errors, 0);
        close_proxy(child);
        settle();
        let agent_closed = rss(agent);
        // The ports linger after their runs to refuse late requests; then their engines exit.
        std::thread::sleep(wbl::agent::PROXY_ENDED_GRACE);
        let gone_by = Instant::now() + Duration::from_secs(10);
        while !proxy_engines_of(agent).is_empty() && Instant::now() < gone_by {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = proxy_engines_of(agent);
        assert!(left.is_empty(), "engines left after their grace: {left:?}");
        settle();
        let idle_after = rss(agent);
        let parts_after = rss_parts(agent);
        println!("## memory (VmRSS; VmHWM is the peak)");
        println!();
        println!("| process, when | VmRSS (MiB) |");
        println!("|---|---|");
        println!("| agent, idle, no proxy yet | {} |", mib(idle_before));
        println!(
            "| agent, idle after a `wbl exec` without `--proxy` | {} |",
            mib(idle_plain_exec)
        );
        println!("| agent, a proxy open | {} |", mib(agent_open));
        println!(
            "| agent, right after the proxies closed | {} |",
            mib(agent_closed)
        );
        println!(
            "| agent, idle, the proxies' engines gone | {} |",
            mib(idle_after)
        );
        println!("| engine (fake W&B), open, unused | {} |", mib(open_rss));
        println!(
            "| engine (fake W&B), after the uploads | {} (peak {}) |",
            mib(after_upload.1),
            mib(after_upload.0)
        );
        println!("| engine (floor), open | {} |", mib(floor_open));
        println!(
            "| engine (floor), after 64 concurrent streams | {} (peak {}) |",
            mib(after_streams.1),
            mib(after_streams.0)
        );
        println!();
        println!(
            "agent idle before the proxies (after the plain exec): {} MiB anonymous + {} MiB mapped files (code); after: {} + {}",
            mib(parts_before.0),
            mib(parts_before.1),
            mib(parts_after.0),
            mib(parts_after.1)
        );
        println!();
        println!(
            "the proxy's growth over the uploads (engine, after − open): **{} MiB** (goal < 8 \
             MiB); engine peak with 64 streams: {} MiB over open; agent idle with no proxy open: \
             **{} MiB** before, **{} MiB** after (goal ≤ 6 MiB)",
            mib(after_upload.1.saturating_sub(open_rss)),
            mib(after_streams.0.saturating_sub(floor_open)),
            mib(idle_before),
            mib(idle_after)
        );
    }
}
