//! What `wbl doctor` and `wbl status` look like (issue 28): on a real terminal (a pseudo-terminal
//! from rexpect) verdicts are coloured and marked ✓/✗/! and long fixes wrap at the terminal's
//! width; piped, with `NO_COLOR` or `--color never` they are plain text, one line per finding.

#![cfg(target_os = "linux")]

mod common;

use common::{Backend, WBL, World, ok, stdout};

/// `wbl ARGS` on a pseudo-terminal `cols` wide (set with stty, as a real terminal would be);
/// everything it printed, with the terminal's `\r` removed.
fn on_terminal(w: &World, cols: usize, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("sh");
    w.apply_env(&mut c);
    c.env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("-c")
        .arg(format!("stty cols {cols}; exec \"$0\" \"$@\""))
        .arg(WBL)
        .args(args);
    // The timeout bounds each wait for output; it is not a speed requirement.
    let mut p = rexpect::session::spawn_command(c, Some(30_000)).unwrap();
    // rexpect hands over each byte as one char: back to bytes, then UTF-8.
    let bytes: Vec<u8> = p
        .exp_eof()
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    String::from_utf8_lossy(&bytes).replace('\r', "")
}

/// The text without ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn piped(w: &World, args: &[&str]) -> String {
    let mut c = w.cmd(WBL);
    c.args(args).env_remove("NO_COLOR").env_remove("COLUMNS");
    stdout(&c.output().unwrap())
}

#[test]
fn doctor_is_coloured_and_wrapped_on_a_terminal_and_plain_when_piped() {
    let w = World::new(Backend::Keyutils);
    let cols = 80;
    let term = on_terminal(&w, cols, &["doctor"], &[]);
    assert!(term.contains("\x1b[32m✓ ok"), "{term}");
    assert!(term.contains("\x1b[33m! WARNING"), "{term}");
    let text = plain(&term);

    // Piped: no colour, no marks, no wrapping.
    let flat = piped(&w, &["doctor"]);
    assert!(!flat.contains('\x1b') && !flat.contains('✓'), "{flat}");
    // A fix longer than the terminal is wide, as one line when piped...
    let long = flat
        .lines()
        .find(|l| l.trim_start().starts_with("fix: ") && l.chars().count() > cols)
        .unwrap_or_else(|| panic!("no fix longer than {cols} columns:\n{flat}"));
    let fix_words: Vec<&str> = long.split_whitespace().collect();
    // ...is wrapped on the terminal: the same words, each line within the width unless it is
    // one word too long for any line (a path, a `command`).
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.trim_start()
                .starts_with(&format!("fix: {}", fix_words[1]))
        })
        .unwrap_or_else(|| panic!("the fix is not on the terminal:\n{text}"));
    let mut words = Vec::new();
    let mut count = 0;
    for (i, l) in lines[at..].iter().enumerate() {
        if i > 0 && (!l.starts_with("     ") || l.trim_start().starts_with("fix:")) {
            break;
        }
        count += 1;
        assert!(
            l.chars().count() <= cols || !l.trim().contains(' ') || l.trim().starts_with('`'),
            "line wider than {cols}: {l:?}\n{text}"
        );
        words.extend(l.split_whitespace().map(str::to_owned));
    }
    assert!(count > 1, "not wrapped:\n{text}");
    assert_eq!(words, fix_words, "{text}");

    // NO_COLOR and --color never: plain on the terminal too.
    for (args, env) in [
        (&["doctor"][..], &[("NO_COLOR", "1")][..]),
        (&["doctor", "--color", "never"][..], &[][..]),
    ] {
        let t = on_terminal(&w, cols, args, env);
        assert!(
            !t.contains('\x1b') && !t.contains('✓'),
            "{args:?} {env:?}: {t}"
        );
    }
    // --color always colours a pipe.
    assert!(piped(&w, &["doctor", "--color", "always"]).contains("\x1b[32m✓ ok"));
}

#[test]
fn status_marks_its_lines_on_a_terminal_only() {
    let w = World::new(Backend::Keyutils);
    ok(w.wbl(&["agent", "start"]));
    let term = on_terminal(&w, 100, &["status"], &[]);
    assert!(term.contains("\x1b[32m✓ running"), "{term}");
    assert!(term.contains("\x1b[31m✗ none"), "{term}");
    let flat = piped(&w, &["status"]);
    assert!(flat.contains("agent:    running (pid"), "{flat}");
    assert!(!flat.contains('\x1b') && !flat.contains('✓'), "{flat}");
    let t = on_terminal(&w, 100, &["status"], &[("NO_COLOR", "1")]);
    assert!(!t.contains('\x1b') && !t.contains('✗'), "{t}");
    w.stop_agent();
}
