//! How the agent's cost grows with the number of stored credentials: memory (idle, with the
//! index loaded, with every secret cached), start-up to ready, and `get` latency (cache miss,
//! cache hit, whole `wbl credential get` process) at 10, 1 000 and 100 000 credentials, for the
//! kernel keyring and (up to 1 000) gnome-keyring. Prints markdown tables and draws
//! `docs/bench-growth.png`. Asserts nothing about speed.
//!
//! Run it through `scripts/bench`, which runs it in a private user namespace: there the kernel
//! user keyring is the bench's own, so 100 000 keys never land in a keyring other programs of
//! the user (or other tests) read. Outside one it stops the kernel keyring at 1 000.
//! `WBL_BENCH_QUICK=1`: 10 and 1 000 only. `WBL_BENCH_PLOT`: where to write the PNG.
//! `WBL_BENCH_FONT`: a TTF file for the plot's text (default: DejaVu Sans).
//! `WBL_BENCH_BACKENDS=keyutils` (or `secret-service`): measure only that backend.

#[cfg(target_os = "linux")]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("growth bench: Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    if support::under_cargo_bench("growth") {
        linux::main();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use wbl::client::AgentClient;
    use wbl::rendezvous::RuntimePaths;
    use wbl_proto::{Credential, Query, Secret, Target};

    use crate::common::{Backend, World};
    use crate::support::{self, Bins, mib, ms, percentile, run_once};

    /// One measured level: `n` credentials stored.
    #[derive(Clone, Debug)]
    pub struct Level {
        pub backend: &'static str,
        pub n: usize,
        /// Stores per second while filling up to `n` (through the agent, one connection).
        pub store_rate: f64,
        /// `wbl-agent` launcher: start to ready (the index of `n` credentials read).
        pub startup: Duration,
        /// VmHWM / VmRSS right after start-up (index loaded, no secret cached), KiB.
        pub hwm_index: u64,
        pub rss_index: u64,
        /// First get of a credential after start-up (a keychain read), p50 and p99.
        pub cold_p50: Duration,
        pub cold_p99: Duration,
        /// Every credential read once (all cached): how long it took, per credential.
        pub read_all_per: Duration,
        /// VmHWM / VmRSS with every secret cached, KiB.
        pub hwm_all: u64,
        pub rss_all: u64,
        /// Cached gets of random credentials on one connection.
        pub warm_p50: Duration,
        pub warm_p99: Duration,
        /// Whole `wbl credential get` processes for random (cached) credentials, median.
        pub process_median: Duration,
    }

    /// A deterministic pseudo-random sequence (no extra crate needed for a shuffle).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    fn host(i: usize) -> String {
        format!("h{i}.growth.test")
    }

    fn secret(i: usize) -> String {
        format!("{:0>40}", format!("g{i}k"))
    }

    fn query(i: usize) -> Query {
        Query {
            target: Target::new("https", host(i)),
            username: Some("api".into()),
            account: Default::default(),
        }
    }

    fn connect(w: &World) -> AgentClient {
        AgentClient::connect(&RuntimePaths { socket: w.socket() }).expect("connect to the agent")
    }

    /// Whether this process runs in a user namespace of its own (`unshare --user
    /// --map-root-user` maps one id; the initial namespace maps them all), and so has a kernel
    /// user keyring nobody else reads.
    fn private_user_keyring() -> bool {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
            let fields: Vec<&str> = m.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        })
    }

    /// Stores credentials `from..to`; `Err` with the agent's message when the keychain refuses
    /// (e.g. the kernel's key quota).
    fn fill(w: &World, from: usize, to: usize) -> Result<f64, String> {
        let mut c = connect(w);
        let t0 = Instant::now();
        for i in from..to {
            let cred =
                Credential::new(Target::new("https", host(i)), "api", Secret::new(secret(i)));
            c.store(cred).map_err(|e| format!("store #{i}: {e}"))?;
        }
        Ok((to - from) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
    }

    fn measure(w: &World, bins: &Bins, n: usize, store_rate: f64, quick: bool) -> Level {
        w.stop_agent();
        let t0 = Instant::now();
        let pid = bins.start_agent(w);
        let startup = t0.elapsed();
        let (hwm_index, rss_index) = support::agent_memory(pid).unwrap_or_default();
        let mut rng = Lcg(n as u64 + 17);
        let mut c = connect(w);

        // Cache misses: the first get of distinct credentials after start-up.
        let sample = n.min(if quick { 50 } else { 200 });
        let mut seen = std::collections::HashSet::new();
        let mut cold = Vec::with_capacity(sample);
        while cold.len() < sample {
            let i = rng.below(n);
            if !seen.insert(i) {
                continue;
            }
            let t = Instant::now();
            let got = c.get(query(i)).expect("get");
            cold.push(t.elapsed());
            assert_eq!(got.map(|c| c.password.expose().to_owned()), Some(secret(i)));
        }

        // Read everything once: every secret is cached afterwards.
        let t = Instant::now();
        for i in 0..n {
            let got = c.get(query(i)).expect("get");
            assert!(got.is_some(), "credential {i} missing");
        }
        let read_all_per = t.elapsed() / n.max(1) as u32;
        let (hwm_all, rss_all) = support::agent_memory(pid).unwrap_or_default();

        // Cache hits, random credentials, one connection.
        let requests = if quick { 2_000 } else { 20_000 };
        let mut warm = Vec::with_capacity(requests);
        for _ in 0..requests {
            let i = rng.below(n);
            let t = Instant::now();
            let got = c.get(query(i)).expect("get");
            warm.push(t.elapsed());
            assert!(got.is_some());
        }
        drop(c);

        // Whole processes, as git runs the helper.
        let runs = if quick { 20 } else { 100 };
        let mut process = Vec::with_capacity(runs);
        for _ in 0..runs {
            let i = rng.below(n);
            let input = format!("protocol=https\nhost={}\n\n", host(i));
            let mut cmd = bins.cmd(w, &bins.wbl);
            cmd.args(["credential", "get"]);
            let r = run_once(&mut cmd, input.as_bytes()).expect("run wbl");
            assert!(
                r.success
                    && r.stdout
                        .ends_with(format!("password={}\n", secret(i)).as_bytes())
            );
            process.push(r.wall);
        }

        Level {
            backend: w.backend,
            n,
            store_rate,
            startup,
            hwm_index,
            rss_index,
            cold_p50: percentile(&cold, 0.5),
            cold_p99: percentile(&cold, 0.99),
            read_all_per,
            hwm_all,
            rss_all,
            warm_p50: percentile(&warm, 0.5),
            warm_p99: percentile(&warm, 0.99),
            process_median: percentile(&process, 0.5),
        }
    }

    /// Fills a fresh world level by level and measures each; stops early (with a note) when
    /// the keychain refuses more.
    fn run_backend(backend: Backend, levels: &[usize], quick: bool) -> (Vec<Level>, u64) {
        let w = World::new(backend);
        let bins = Bins::get();
        let pid = bins.start_agent(&w);
        let idle = support::agent_memory(pid).map(|(hwm, _)| hwm).unwrap_or(0);
        let mut out = Vec::new();
        let mut stored = 0;
        for &n in levels {
            match fill(&w, stored, n) {
                Ok(rate) => {
                    stored = n;
                    let level = measure(&w, &bins, n, rate, quick);
                    eprintln!("  {} n={n} measured", w.backend);
                    out.push(level);
                }
                Err(e) => {
                    println!("{}: stopped before {n} credentials: {e}\n", w.backend);
                    break;
                }
            }
        }
        // Remove what we stored, through the agent (a keyring other processes can see must
        // not keep 100 000 bench keys, and the fixture's clean-up looks at each key).
        if let Ok(mut c) = AgentClient::connect(&RuntimePaths { socket: w.socket() }) {
            for i in 0..stored {
                let _ = c.erase(query(i));
            }
        }
        (out, idle)
    }

    pub fn main() {
        let quick = support::quick();
        let ku_levels: Vec<usize> = if quick {
            vec![10, 1_000]
        } else if private_user_keyring() {
            vec![10, 1_000, 100_000]
        } else {
            println!(
                "not in a user namespace of its own: the kernel keyring is shared with the rest \
                 of this user's processes, so it stops at 1 000 credentials (scripts/bench runs \
                 this bench under `unshare --user --map-root-user` for 100 000)\n"
            );
            vec![10, 1_000]
        };
        let ss_levels: Vec<usize> = if quick { vec![10] } else { vec![10, 1_000] };

        let wanted = |b: &str| {
            std::env::var("WBL_BENCH_BACKENDS").map_or(true, |v| v.split(',').any(|x| x == b))
        };
        let (ku, ku_idle) = if wanted("keyutils") {
            run_backend(Backend::Keyutils, &ku_levels, quick)
        } else {
            (Vec::new(), 0)
        };
        let (ss, ss_idle) = if wanted("secret-service") {
            run_backend(Backend::SecretService, &ss_levels, quick)
        } else {
            (Vec::new(), 0)
        };

        println!("## 5. Agent memory (peak RSS, VmHWM from /proc/PID/status)\n");
        println!(
            "| backend | idle (nothing stored) | n | after start-up (index of n read) | every secret read and cached |"
        );
        println!("|---|---:|---:|---:|---:|");
        for (levels, idle) in [(&ku, ku_idle), (&ss, ss_idle)] {
            for l in levels.iter() {
                println!(
                    "| {} | {} MiB | {} | {} MiB (RSS {}) | {} MiB (RSS {}) |",
                    l.backend,
                    mib(idle),
                    l.n,
                    mib(l.hwm_index),
                    mib(l.rss_index),
                    mib(l.hwm_all),
                    mib(l.rss_all)
                );
            }
        }
        println!("\n## 6. How cost grows with the number of stored credentials\n");
        println!(
            "| backend | n | stores/s (filling) | start-up to ready ms | first get (keychain read) p50 / p99 µs | reading all, per credential µs | cached get p50 / p99 µs | `wbl credential get` process median ms |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for l in ku.iter().chain(ss.iter()) {
            println!(
                "| {} | {} | {:.0} | {} | {} / {} | {} | {} / {} | {} |",
                l.backend,
                l.n,
                l.store_rate,
                ms(l.startup),
                l.cold_p50.as_micros(),
                l.cold_p99.as_micros(),
                l.read_all_per.as_micros(),
                l.warm_p50.as_micros(),
                l.warm_p99.as_micros(),
                ms(l.process_median)
            );
        }
        println!();
        let path = std::env::var_os("WBL_BENCH_PLOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/bench-growth.png")
            });
        match crate::plot::draw(&path, &ku, &ss) {
            Ok(()) => println!("plot: {}", path.display()),
            Err(e) => println!("plot not drawn: {e}"),
        }
    }
}

#[cfg(target_os = "linux")]
mod plot {
    //! The growth figure: three panels (get latency, agent memory, start-up) against the
    //! number of stored credentials, log scale.

    use std::path::Path;

    use plotters::prelude::*;
    use plotters::style::FontStyle;

    use crate::linux::Level;

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    /// One line of a panel.
    struct Line {
        label: String,
        color: RGBColor,
        dashed: bool,
        points: Vec<(f64, f64)>,
    }

    /// A series: its name, colour and value at one level.
    type Series<'a> = (&'a str, RGBColor, fn(&Level) -> f64);

    fn lines(ku: &[Level], ss: &[Level], series: &[Series<'_>]) -> Vec<Line> {
        let mut out = Vec::new();
        for (levels, backend, dashed) in [(ku, "keyutils", false), (ss, "gnome-keyring", true)] {
            if levels.is_empty() {
                continue;
            }
            for (name, color, f) in series {
                out.push(Line {
                    label: format!("{name} ({backend})"),
                    color: *color,
                    dashed,
                    points: levels.iter().map(|l| (l.n as f64, f(l))).collect(),
                });
            }
        }
        out
    }

    /// One panel: every line against the number of credentials, both axes on a log scale,
    /// and its legend in a strip below the chart (so it never hides a line).
    fn panel(
        area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        title: &str,
        y_desc: &str,
        lines: &[Line],
    ) -> Result<(), Box<dyn std::error::Error>> {
        // The same height in every panel (room for six entries), so the charts line up.
        let legend_height = 20 * 6 + 16;
        let (_, height) = area.dim_in_pixel();
        let (top, legend) = area.split_vertically(height.saturating_sub(legend_height));
        let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let mut chart = ChartBuilder::on(&top)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (5.0f64..200_000.0).log_scale(),
                // From the power of ten below the lowest value: plotters labels a log axis
                // from its first power of ten on.
                (10f64.powf(lo.max(1e-3).log10().floor())..hi * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("stored credentials")
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v}"))
            .y_labels(12)
            .light_line_style(RGBAColor(0, 0, 0, 0.04))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        for l in lines {
            let style = ShapeStyle::from(&l.color).stroke_width(2);
            if l.dashed {
                chart.draw_series(DashedLineSeries::new(l.points.clone(), 10, 6, style))?;
            } else {
                chart.draw_series(LineSeries::new(l.points.clone(), style))?;
            }
            let marker = ShapeStyle::from(&l.color);
            chart.draw_series(l.points.iter().map(|p| {
                // Hollow markers for the dashed (gnome-keyring) lines.
                Circle::new(
                    *p,
                    4,
                    if l.dashed {
                        marker.stroke_width(2)
                    } else {
                        marker.filled()
                    },
                )
            }))?;
        }
        for (i, l) in lines.iter().enumerate() {
            let y = 10 + 20 * i as i32;
            let style = ShapeStyle::from(&l.color).stroke_width(2);
            if l.dashed {
                for x in [76, 90] {
                    legend.draw(&PathElement::new(vec![(x, y), (x + 9, y)], style))?;
                }
            } else {
                legend.draw(&PathElement::new(vec![(76, y), (100, y)], style))?;
            }
            legend.draw_text(
                &l.label,
                &("sans-serif", 15).into_text_style(&legend),
                (110, y - 8),
            )?;
        }
        Ok(())
    }

    fn us(d: std::time::Duration) -> f64 {
        d.as_secs_f64() * 1e6
    }

    fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }

    pub fn draw(path: &Path, ku: &[Level], ss: &[Level]) -> Result<(), Box<dyn std::error::Error>> {
        let font = std::env::var_os("WBL_BENCH_FONT").unwrap_or_else(|| FONT.into());
        let bytes = std::fs::read(&font).map_err(|e| {
            format!(
                "cannot read the font {} ({e}); install fonts-dejavu-core or set WBL_BENCH_FONT",
                Path::new(&font).display()
            )
        })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file is not a usable TTF")?;

        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let root = BitMapBackend::new(path, (1800, 760)).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(44);
        title.titled(
            "wbl-agent: cost vs number of stored credentials (2-core shared VM)",
            ("sans-serif", 26),
        )?;
        let panels = body.split_evenly((1, 3));
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(230, 120, 20);
        let green = RGBColor(44, 160, 44);
        panel(
            &panels[0],
            "get latency",
            "µs (log scale)",
            &lines(
                ku,
                ss,
                &[
                    ("cached get p50", blue, |l| us(l.warm_p50)),
                    ("first get p50", orange, |l| us(l.cold_p50)),
                    (
                        "wbl credential get process",
                        green,
                        |l| us(l.process_median),
                    ),
                ],
            ),
        )?;
        panel(
            &panels[1],
            "agent resident memory",
            "MiB (log scale)",
            &lines(
                ku,
                ss,
                &[
                    ("after start-up", blue, |l| mib(l.rss_index)),
                    ("all secrets cached", orange, |l| mib(l.rss_all)),
                ],
            ),
        )?;
        panel(
            &panels[2],
            "agent start-up to ready",
            "ms (log scale)",
            &lines(
                ku,
                ss,
                &[("start-up", blue, |l| l.startup.as_secs_f64() * 1e3)],
            ),
        )?;
        root.present()?;
        Ok(())
    }
}
