//! `wbl status`'s last step for people: the report as text; with a fancy style (a terminal),
//! verdicts coloured and marked and warnings wrapped at the terminal's width.

use super::report::StatusJson;
use crate::text::printable;

/// The report for people; with a fancy style (a terminal), verdicts coloured and marked ✓/✗/!
/// and warnings wrapped at the terminal's width.
pub(super) fn text(out: &StatusJson, style: crate::term::Style) {
    match &out.agent {
        None if out.forwarded => {
            println!(
                "agent:    {} from another machine (keys for granted hosts only)",
                style.good("forwarded by `wbl ssh`")
            );
            println!("socket:   {}", out.socket);
        }
        Some(a) => {
            println!(
                "agent:    {} (pid {}, version {})",
                style.good("running"),
                a.pid,
                a.version
            );
            println!("socket:   {}", out.socket);
            println!(
                "backend:  {}{}",
                a.backend,
                if a.backend_persistent {
                    ""
                } else {
                    " (keys do not survive a reboot)"
                }
            );
        }
        None => {
            println!(
                "agent:    {} (socket {})",
                style.skipped("not running"),
                out.socket
            );
            println!("          it starts on the next `wbl login` or `wbl token`");
        }
    }
    if let Some(e) = &out.config_error {
        println!(
            "config:   {} {}",
            style.bad("PROBLEM"),
            style.wrap(e, 18 + style.mark_width())
        );
        println!("          the agent serves no key until the file is fixed (`wbl doctor`)");
    }
    for (i, f) in out.settings_files.iter().enumerate() {
        let label = if i == 0 { "settings:" } else { "         " };
        let what = if !f.exists {
            "not present".to_owned()
        } else if f.keys.is_empty() {
            "empty".to_owned()
        } else {
            f.keys.join(", ")
        };
        println!("{label} {} ({}: {what})", f.path, f.scope);
    }
    println!(
        "netrc:    {}{}",
        out.netrc.path,
        if out.netrc.exists {
            ""
        } else {
            " (not present)"
        }
    );
    if out.env.wandb_api_key_set {
        println!("env:      WANDB_API_KEY is set; it takes precedence over the keychain");
    }
    println!("hosts:");
    for h in &out.hosts {
        println!("  {}{}", h.url, if h.current { " (current)" } else { "" });
        let keychain = match h.in_keychain {
            Some(true) if h.routed => "served by the agent, not kept in the keychain",
            Some(true) if out.forwarded => "served by the forwarded agent",
            Some(false) if out.forwarded => "the forwarded agent has none",
            Some(true) => "in the keychain",
            Some(false) => "not in the keychain",
            None => h
                .unread
                .unwrap_or("keychain not checked: the agent is not running"),
        };
        match (&h.source, &h.key) {
            (Some(src), Some(k)) => {
                let detail = h
                    .source_detail
                    .as_deref()
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default();
                // Through a forward the key is another machine's: no keychain here.
                let src = match src.as_str() {
                    "keychain" if out.forwarded => "the forwarded agent",
                    s => s,
                };
                println!(
                    "    key:  {} from {src}{detail} ({keychain})",
                    style.good(k)
                );
            }
            _ => {
                let login = if h.url == crate::wandb::host::DEFAULT_BASE_URL {
                    "wbl login".to_owned()
                } else {
                    format!("wbl login --host {}", h.url)
                };
                if h.unread.is_some() {
                    println!("    key:  {} ({keychain})", style.warning("none known"));
                } else {
                    println!(
                        "    key:  {} ({keychain}); run `{login}`",
                        style.bad("none")
                    );
                }
            }
        }
        if let (Some(a), Some(why)) = (&h.account, &h.account_reason) {
            println!("    account {}: {}", printable(a), printable(why));
        }
        for w in &h.warnings {
            println!(
                "    {} {}",
                style.warning("WARNING"),
                style.wrap(&printable(w), 12 + style.mark_width())
            );
        }
    }
    if !out.forwards.is_empty() {
        println!("forwards:");
        for f in &out.forwards {
            let until = until(f.expires_unix, "until the session ends");
            println!(
                "  {} (forward {}): {}; {until}; {} key{} handed out",
                printable(&f.destination),
                f.id,
                printable(&f.hosts.join(", ")),
                f.handed_out,
                if f.handed_out == 1 { "" } else { "s" }
            );
        }
    }
    if !out.proxies.is_empty() {
        println!("proxies:");
        for p in &out.proxies {
            let state = if p.ended {
                "ended, refusing late requests".to_owned()
            } else {
                until(p.expires_unix, "until its command or session ends")
            };
            println!(
                "  {} (proxy {}): {} (account {}) on {}; {state}; {} refused",
                printable(&p.destination),
                printable(&p.id),
                printable(&p.upstream),
                printable(&p.account),
                printable(&p.address),
                p.refused
            );
        }
    }
    if !out.credentials.is_empty() {
        println!("keys:");
        for c in &out.credentials {
            // Stored by git or Docker for any URL: escaped, and a token as user name masked.
            println!(
                "  {} (user {})",
                printable(&c.url),
                printable(&crate::text::username(&c.username))
            );
        }
    }
    for w in &out.warnings {
        println!(
            "{} {}",
            style.warning("WARNING"),
            style.wrap(&printable(w), 8 + style.mark_width())
        );
    }
}

/// How long a grant lasts: `for <time> more` until `expires_unix`, else `otherwise`.
fn until(expires_unix: Option<u64>, otherwise: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match expires_unix {
        Some(t) => format!(
            "for {} more",
            crate::term::human_duration(t.saturating_sub(now))
        ),
        None => otherwise.to_owned(),
    }
}
