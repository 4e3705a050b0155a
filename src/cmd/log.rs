//! `wbl log`: who used the keys — the access log as a table for people or JSON lines for
//! scripts, filtered by age and host, optionally followed as it grows.

use std::io::Write;
use std::time::{Duration, SystemTime};

use crate::accesslog::read::{Entries, Follow, read_all};
use crate::accesslog::{Entry, Op, Use, parse_time};
use crate::cli::LogArgs;
use crate::text::printable;

/// How often `--follow` looks for new entries.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The host part of `--host`: `api.wandb.ai`, `git.example.com:8443`, or the same as a URL.
fn host_filter(arg: &str) -> String {
    let arg = arg.trim();
    let rest = arg.split_once("://").map_or(arg, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    host.to_ascii_lowercase()
}

struct Filter {
    since: Option<SystemTime>,
    host: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        if let Some(since) = self.since
            && parse_time(&e.time).is_none_or(|t| t < since)
        {
            return false;
        }
        match (&self.host, e.op) {
            // A gap may hide entries of any host: always shown.
            (_, Op::Gap) | (None, _) => true,
            (Some(h), _) => e
                .host
                .as_deref()
                .is_some_and(|eh| eh.eq_ignore_ascii_case(h)),
        }
    }
}

/// Prints the log; `--follow` runs until interrupted or stdout is closed.
pub fn run(args: LogArgs) -> anyhow::Result<()> {
    let Some(path) = crate::dirs::access_log() else {
        anyhow::bail!("no home directory, so no access log (set HOME or XDG_STATE_HOME)");
    };
    let filter = Filter {
        since: args.since,
        host: args.host.as_deref().map(host_filter),
    };
    // Start following before reading, so nothing written in between is missed.
    let mut follow = args.follow.then(|| Follow::from_end(&path));
    let read = read_all(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the access log {}: {e}", path.display()))?;
    warn_bad_lines(&read, &path);
    let mut entries: Vec<&Entry> = read.entries.iter().filter(|e| filter.keeps(e)).collect();
    // The last N; `--follow` starts at the end unless `-n` asks for history.
    let keep = args.lines.or(args.follow.then_some(0));
    if let Some(n) = keep {
        entries.drain(..entries.len().saturating_sub(n));
    }
    let mut out = std::io::stdout().lock();
    let table = Table::new(&entries, args.follow);
    let written = if args.json {
        entries.iter().try_for_each(|e| write_json(&mut out, e))
    } else {
        if entries.is_empty() && follow.is_none() {
            crate::term::log(&if read.entries.is_empty() {
                format!("nothing recorded yet in {}", path.display())
            } else {
                "no entry matches".to_owned()
            });
            return Ok(());
        }
        table
            .header(&mut out)
            .and_then(|()| entries.iter().try_for_each(|e| table.row(&mut out, e)))
    };
    if ignore_closed(written.and_then(|()| out.flush()))? {
        return Ok(());
    }
    let Some(follow) = follow.as_mut() else {
        return Ok(());
    };
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let read = follow
            .poll()
            .map_err(|e| anyhow::anyhow!("cannot read the access log {}: {e}", path.display()))?;
        warn_bad_lines(&read, &path);
        let written = read
            .entries
            .iter()
            .filter(|e| filter.keeps(e))
            .try_for_each(|e| {
                if args.json {
                    write_json(&mut out, e)
                } else {
                    table.row(&mut out, e)
                }
            })
            .and_then(|()| out.flush());
        if ignore_closed(written)? {
            return Ok(());
        }
    }
}

fn warn_bad_lines(read: &Entries, path: &std::path::Path) {
    if read.bad_lines > 0 {
        crate::term::warn(&format!(
            "skipped {} line(s) of {} that are not access log entries",
            read.bad_lines,
            path.display()
        ));
    }
}

/// `Ok(true)` when stdout was closed (`wbl log | head`): stop quietly.
fn ignore_closed(r: std::io::Result<()>) -> anyhow::Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}

fn write_json(out: &mut impl Write, e: &Entry) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, e)?;
    out.write_all(b"\n")
}

/// The widest RESULT the agent writes (`refused (version_mismatch)`): `--follow`'s column is
/// this wide from the start, so later entries cannot push the columns after it out.
const RESULT_WIDEST: usize = 26;

/// The table's column widths: at least the header's, wide enough for every entry shown (with
/// `--follow`, the RESULT column for any result; a later host, user or program wider than
/// those shown first may still push a column out).
struct Table {
    result: usize,
    host: usize,
    user: usize,
    program: usize,
}

impl Table {
    fn new(entries: &[&Entry], follow: bool) -> Table {
        let w = |f: &dyn Fn(&Entry) -> usize, min: usize| {
            entries.iter().map(|e| f(e)).max().unwrap_or(0).max(min)
        };
        Table {
            result: w(
                &|e| result(e).chars().count(),
                if follow { RESULT_WIDEST } else { 7 },
            ),
            host: w(&|e| host(e).chars().count(), 16),
            user: w(&|e| user(e).chars().count(), 4),
            program: w(&|e| program(e).chars().count(), 7),
        }
    }

    fn header(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{:<19}  {:<5}  {:<rw$}  {:<hw$}  {:<uw$}  {:>7}  {:<pw$}  {:<8}  PARENTS",
            "TIME",
            "OP",
            "RESULT",
            "HOST",
            "USER",
            "PID",
            "PROGRAM",
            "CHANNEL",
            rw = self.result,
            hw = self.host,
            uw = self.user,
            pw = self.program,
        )
    }

    fn row(&self, out: &mut impl Write, e: &Entry) -> std::io::Result<()> {
        let time = parse_time(&e.time).map_or_else(|| printable(&e.time).into_owned(), local_time);
        if e.op == Op::Gap {
            return writeln!(
                out,
                "{time:<19}  {:<5}  {} entries were not recorded here (the agent could not keep up or write the log)",
                "gap",
                e.dropped.unwrap_or(0)
            );
        }
        let result = result(e);
        // A parent the agent could not identify safely: said so, with its pid.
        let parents: Vec<String> = e
            .parents
            .iter()
            .map(|p| {
                p.exe
                    .as_deref()
                    .map_or_else(|| format!("unknown (pid {})", p.pid), base_name)
            })
            .collect();
        writeln!(
            out,
            "{time:<19}  {:<5}  {result:<rw$}  {:<hw$}  {:<uw$}  {:>7}  {:<pw$}  {:<8}  {}",
            op(e),
            host(e),
            user(e),
            e.pid
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            program(e),
            printable(e.channel.as_deref().unwrap_or("-")),
            if parents.is_empty() {
                "-".to_owned()
            } else {
                printable(&parents.join(" < ")).into_owned()
            },
            rw = self.result,
            hw = self.host,
            uw = self.user,
            pw = self.program,
        )
    }
}

/// The operation: `check` for a `get` whose key reached no program (`wbl status` showing it
/// masked, …), so that every `get` row is a hand-out.
fn op(e: &Entry) -> &'static str {
    match (e.op, e.purpose) {
        (Op::Get, Some(Use::Check)) => "check",
        // The key went to a proxy in the agent, not to a program.
        (Op::Get, Some(Use::Proxy)) => "proxy",
        (op, _) => op.name(),
    }
}

/// The host as shown: every text field of the log comes from outside (a remote client, a git
/// URL) and is escaped ([`printable`]).
fn host(e: &Entry) -> String {
    printable(e.host.as_deref().unwrap_or("-")).into_owned()
}

/// The user name as shown: escaped, and masked when it is a token (entries written before the
/// agent masked them).
fn user(e: &Entry) -> String {
    let name = e.username.as_deref().unwrap_or("-");
    printable(&crate::text::username(name)).into_owned()
}

/// `ok`, `refused (forbidden)`, …; `unknown` when the entry has none.
fn result(e: &Entry) -> String {
    match (e.result, &e.code) {
        (Some(r), Some(code)) => format!("{} ({code})", r.name()),
        (Some(r), None) => r.name().to_owned(),
        (None, _) => "unknown".to_owned(),
    }
}

/// Who received the key: the caller's executable, or `unknown` (not identified: gone before
/// it could be, its pid may have been reused, or it was not dumpable — SECURITY.md); for
/// `wbl exec`, also the program it ran with the key (`/usr/bin/wbl exec → /usr/bin/python3`).
fn program(e: &Entry) -> String {
    let exe = e.exe.as_deref().unwrap_or("unknown");
    match (e.purpose, &e.command) {
        (Some(Use::Exec), Some(cmd)) => printable(&format!("{exe} exec → {cmd}")).into_owned(),
        (Some(Use::Proxy), Some(user)) => {
            printable(&format!("{exe} proxy for {user}")).into_owned()
        }
        // A request the proxy refused: who sent it, as far as known, and its method and path.
        (None, Some(request)) if e.op == Op::Proxy => {
            printable(&format!("{} to the proxy: {request}", proxy_client(e))).into_owned()
        }
        _ => printable(exe).into_owned(),
    }
}

/// The client of a refused proxy request: its program; another user's uid (whose programs
/// the agent may not see); else `unknown`.
fn proxy_client(e: &Entry) -> String {
    #[cfg(unix)]
    let own = Some(crate::sys::euid());
    #[cfg(not(unix))]
    let own: Option<u32> = None;
    match (&e.exe, e.uid) {
        (Some(exe), _) => exe.clone(),
        (None, Some(uid)) if Some(uid) != own => format!("another user (uid {uid})"),
        _ => "unknown".to_owned(),
    }
}

fn base_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// `YYYY-MM-DD HH:MM:SS` in the local time zone (UTC with a `Z` where that is not known).
fn local_time(t: SystemTime) -> String {
    #[cfg(unix)]
    {
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(tm) = crate::sys::local_time(secs) {
            return format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second
            );
        }
    }
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::{Check, Outcome, Process};

    fn entry(host: &str, time: &str) -> Entry {
        Entry {
            time: time.into(),
            op: Op::Get,
            result: Some(Outcome::Ok),
            code: None,
            protocol: Some("https".into()),
            host: Some(host.into()),
            username: Some("api".into()),
            account: None,
            uid: Some(1000),
            pid: Some(4242),
            exe: Some("/usr/local/bin/wbl".into()),
            parents: vec![
                Process {
                    pid: 4241,
                    exe: Some("/usr/bin/python3.11".into()),
                },
                Process { pid: 1, exe: None },
            ],
            check: Some(Check::Pidfd),
            channel: Some("local".into()),
            purpose: None,
            command: None,
            dropped: None,
        }
    }

    #[test]
    fn host_filter_accepts_urls() {
        assert_eq!(host_filter("https://API.wandb.ai/"), "api.wandb.ai");
        assert_eq!(host_filter("http://u@h.example:8443/x"), "h.example:8443");
        assert_eq!(host_filter("git.example.com"), "git.example.com");
    }

    #[test]
    fn filter_by_host_and_age_keeps_gaps() {
        let f = Filter {
            since: parse_time("2026-01-01T00:00:00Z"),
            host: Some("api.wandb.ai".into()),
        };
        assert!(f.keeps(&entry("api.wandb.ai", "2026-02-01T00:00:00.000Z")));
        assert!(!f.keeps(&entry("other", "2026-02-01T00:00:00.000Z")));
        assert!(!f.keeps(&entry("api.wandb.ai", "2025-12-31T23:59:59.000Z")));
        let mut gap = Entry::gap(SystemTime::now(), 3);
        assert!(f.keeps(&gap));
        gap.time = "2020-01-01T00:00:00Z".into();
        assert!(!f.keeps(&gap));
    }

    #[test]
    fn table_row_names_program_and_parents() {
        let e = entry("api.wandb.ai", "2026-02-01T00:00:00.000Z");
        let t = Table::new(&[&e], false);
        let mut out = Vec::new();
        t.header(&mut out).unwrap();
        t.row(&mut out, &e).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains(" get "), "{row}");
        assert!(row.contains("/usr/local/bin/wbl"), "{row}");
        assert!(row.ends_with("python3.11 < unknown (pid 1)"), "{row}");
        let mut unknown = e.clone();
        unknown.exe = None;
        let mut out = Vec::new();
        t.row(&mut out, &unknown).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("unknown"));
    }

    #[test]
    fn rows_escape_outside_text_mask_tokens_and_name_uses() {
        let mut e = entry("evil\x1b[2K.com", "2026-02-01T00:00:00.000Z");
        e.username = Some("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\n".into());
        e.channel = Some("ssh:box\r".into());
        e.parents[0].exe = Some("/tmp/\x1b]0;x\x07".into());
        let mut exec = entry("api.wandb.ai", "2026-02-01T00:00:00.000Z");
        exec.purpose = Some(Use::Exec);
        exec.command = Some("/usr/bin/python3".into());
        let mut check = entry("api.wandb.ai", "2026-02-01T00:00:00.000Z");
        check.purpose = Some(Use::Check);
        let t = Table::new(&[&e, &exec, &check], false);
        let mut out = Vec::new();
        for r in [&e, &exec, &check] {
            t.row(&mut out, r).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 3, "{text:?}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(rows[0].contains("evil\\x1b[2K.com"), "{text}");
        assert!(!text.contains("aBcDeFgHiJkLmNoPqRsTuVwXyZ"), "{text}");
        assert!(
            rows[1].contains("/usr/local/bin/wbl exec → /usr/bin/python3"),
            "{text}"
        );
        assert!(rows[2].contains(" check "), "{text}");
    }

    #[test]
    fn a_refused_proxy_request_names_its_client() {
        let mut mine = entry("api.wandb.ai", "2026-02-01T00:00:00.000Z");
        mine.op = Op::Proxy;
        mine.command = Some("POST /graphql".into());
        mine.exe = Some("/usr/bin/curl".into());
        assert_eq!(program(&mine), "/usr/bin/curl to the proxy: POST /graphql");
        let mut other = mine.clone();
        other.exe = None;
        other.pid = None;
        other.uid = Some(4_000_000_000);
        assert_eq!(
            program(&other),
            "another user (uid 4000000000) to the proxy: POST /graphql"
        );
        other.uid = None;
        assert_eq!(program(&other), "unknown to the proxy: POST /graphql");
    }
}
