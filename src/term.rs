//! What the client says on the terminal: `wbl: ` lines on stderr (the SDK's `wandb: ` lines),
//! `wbl: WARNING …` and `wbl: ERROR …` for problems that do not stop the command, and the hidden
//! API-key prompt. Fatal errors are not printed here but by `main`, as one `wbl: error: …` line.

use std::io::{IsTerminal, Write};

use wbl_proto::Secret;

/// The prefix of every line wbl prints on stderr.
pub const PREFIX: &str = "wbl: ";

/// Python-style truthiness of an environment flag (`true`, `1`, `yes`, `on`).
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

/// `WANDB_SILENT=true` hides every informational line, warning and non-fatal error, as the
/// SDK does (fatal errors are still printed by `main`). It also rules out prompting.
pub fn silent() -> bool {
    env_flag("WANDB_SILENT")
}

/// `WANDB_QUIET=true` hides only the "Loading settings from" lines, as in the SDK.
pub fn quiet() -> bool {
    env_flag("WANDB_QUIET")
}

fn emit(level: &str, msg: &str) {
    if silent() {
        return;
    }
    let mut err = std::io::stderr().lock();
    // Messages may quote outside text (host names, files' contents): escaped line by line.
    for line in msg.lines() {
        let _ = writeln!(err, "{PREFIX}{level}{}", crate::text::printable(line));
    }
}

/// An informational line: `wbl: msg` (each line of a multi-line message is prefixed).
pub fn log(msg: &str) {
    emit("", msg);
}

/// A warning: `wbl: WARNING msg`.
pub fn warn(msg: &str) {
    emit("WARNING ", msg);
}

/// A problem that does not end the command (e.g. a bad key typed at the prompt):
/// `wbl: ERROR msg`.
pub fn error(msg: &str) {
    emit("ERROR ", msg);
}

/// Whether wbl may prompt, by the SDK's rule (`can_use_terminput`): not silent, `TERM` is not
/// `dumb`, and both stdin and stderr are terminals.
pub fn can_prompt() -> bool {
    !silent()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Writes `prompt` on stderr and reads one line from the terminal without echoing it.
/// `Ok(None)` when the user ends input (Ctrl-D on an empty line). Ctrl-C interrupts the
/// process as usual, with the terminal's echo restored.
pub fn prompt_hidden(prompt: &str) -> std::io::Result<Option<Secret>> {
    // What is typed is a secret: sealed before it is read.
    crate::client::seal();
    {
        let mut err = std::io::stderr().lock();
        err.write_all(prompt.as_bytes())?;
        err.flush()?;
    }
    match rpassword::read_password() {
        Ok(line) => Ok(Some(Secret::new(line))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            eprintln!();
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `--color`: whether `wbl doctor` and `wbl status` colour their verdicts and mark them ✓/✗.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always (also when piped).
    Always,
    /// Never.
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Records `--color` for the whole run (`main`, once).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// How a report for people is drawn on stdout: colour and ✓/✗ marks on a terminal (unless
/// `NO_COLOR` or `--color never`), plain when piped; the terminal's width for wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours and the ✓/✗/! marks.
    pub fancy: bool,
    /// Columns to wrap long text at (a terminal's width); `None`: no wrapping.
    pub width: Option<usize>,
}

impl Style {
    /// Plain text: no colour, no marks, no wrapping (pipes, files, tests of the layout).
    pub const PLAIN: Style = Style {
        fancy: false,
        width: None,
    };

    /// The style for stdout, by `--color`, `NO_COLOR` and whether stdout is a terminal.
    pub fn stdout() -> Style {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let fancy = match COLOR.get().copied().unwrap_or_default() {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                tty && !no_color && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        Style {
            fancy,
            width: if tty { terminal_width() } else { None },
        }
    }

    /// The columns a mark takes before its text (`✓ `), 0 when plain.
    pub fn mark_width(&self) -> usize {
        if self.fancy { 2 } else { 0 }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.fancy {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Good news: green, after a ✓.
    pub fn good(&self, text: &str) -> String {
        self.mark("✓", "32", text)
    }

    /// A problem: red, after a ✗.
    pub fn bad(&self, text: &str) -> String {
        self.mark("✗", "31", text)
    }

    /// A warning: yellow, after a `!`.
    pub fn warning(&self, text: &str) -> String {
        self.mark("!", "33", text)
    }

    /// Something that was not looked at: dim, after a `-`.
    pub fn skipped(&self, text: &str) -> String {
        self.mark("-", "2", text)
    }

    fn mark(&self, mark: &str, code: &str, text: &str) -> String {
        if self.fancy {
            self.paint(code, &format!("{mark} {text}"))
        } else {
            text.to_owned()
        }
    }

    /// `text` wrapped at word boundaries to fit the width after `indent` columns, each line
    /// after the first indented by `indent` spaces; as it is without a width. A word longer
    /// than the room (a path, a URL) stays whole on a line of its own.
    pub fn wrap(&self, text: &str, indent: usize) -> String {
        let Some(width) = self.width else {
            return text.to_owned();
        };
        let room = width.saturating_sub(indent).max(20);
        let mut out = String::new();
        let mut line = 0usize;
        for word in unbreakable_words(text) {
            let n = word.chars().count();
            if line > 0 && line + 1 + n > room {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                line = 0;
            } else if line > 0 {
                out.push(' ');
                line += 1;
            }
            out.push_str(word);
            line += n;
        }
        out
    }
}

/// `text`'s words, split at spaces except inside a `command` in backticks, which is kept on
/// one line so that it can be copied whole.
fn unbreakable_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ' ' if !quoted => {
                words.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    words.push(&text[start..]);
    words
}

/// The terminal's width in columns: `COLUMNS` when set (as `ls` and others honour it), else
/// the size of the terminal on stdout.
fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    #[cfg(target_os = "linux")]
    {
        let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
        (size.ws_col > 0).then_some(usize::from(size.ws_col))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// `3725` → `1h 02m 05s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {s:02}s"),
        _ => format!("{d}d {h:02}h {m:02}m"),
    }
}

/// A length of time in words, for lifetimes: `2764800` → `32 days`, `3600` → `1 hour`,
/// `5400` → `1h 30m 00s` (a span that is not whole days, hours or minutes: [`human_duration`]).
pub fn human_span(secs: u64) -> String {
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match secs {
        0 => "0 seconds".to_owned(),
        s if s % 86_400 == 0 => unit(s / 86_400, "day"),
        s if s % 3600 == 0 => unit(s / 3600, "hour"),
        s if s % 60 == 0 && s < 3600 => unit(s / 60, "minute"),
        s if s < 60 => unit(s, "second"),
        s => human_duration(s),
    }
}

#[cfg(test)]
mod tests {
    use super::{human_duration, human_span};

    #[test]
    fn wrapping_keeps_words_whole_and_indents() {
        use super::Style;
        let s = Style {
            fancy: false,
            width: Some(30),
        };
        let text = "run `systemctl --user enable --now wbl-agent.socket` then check it again";
        let wrapped = s.wrap(text, 4);
        for l in wrapped.lines().skip(1) {
            assert!(l.starts_with("    "), "{wrapped}");
        }
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(Style::PLAIN.wrap(text, 4), text);
        // The command in backticks stays on one line.
        assert!(
            wrapped
                .lines()
                .any(|l| l.contains("`systemctl --user enable --now wbl-agent.socket`")),
            "{wrapped}"
        );
        assert_eq!(Style::PLAIN.good("ok"), "ok");
        let fancy = Style {
            fancy: true,
            width: None,
        };
        assert_eq!(fancy.bad("PROBLEM"), "\x1b[31m✗ PROBLEM\x1b[0m");
    }

    #[test]
    fn spans_read_as_words() {
        assert_eq!(human_span(2_764_800), "32 days");
        assert_eq!(human_span(86_400), "1 day");
        assert_eq!(human_span(7200), "2 hours");
        assert_eq!(human_span(1800), "30 minutes");
        assert_eq!(human_span(45), "45 seconds");
        assert_eq!(human_span(5400), "1h 30m 00s");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(61), "1m 01s");
        assert_eq!(human_duration(3725), "1h 02m 05s");
        assert_eq!(human_duration(90_061), "1d 01h 01m");
    }
}
