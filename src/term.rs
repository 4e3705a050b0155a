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

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(61), "1m 01s");
        assert_eq!(human_duration(3725), "1h 02m 05s");
        assert_eq!(human_duration(90_061), "1d 01h 01m");
    }
}
