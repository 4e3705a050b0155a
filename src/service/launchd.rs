//! The launchd LaunchAgent (macOS): `launchd/ai.wbl.agent.plist` with the installed
//! `wbl-agent`, the home directory (for the log file under `~/Library/Logs/wbl/`) and the
//! socket filled in. launchd starts it at login (`RunAtLoad`) and again when it fails
//! (`KeepAlive` with `SuccessfulExit` false); it binds its own socket. No launchd socket
//! activation: launchd's `Sockets` need a fixed path in the plist, while the socket lives in
//! the per-user `$TMPDIR`, so the job runs `wbl-agent --foreground` with `WBL_SOCKET` pinned in
//! the plist at install time. An exit 3 (another agent holds the lock) is restarted too, every
//! `ThrottleInterval`, until that agent is gone; `install` stops an agent started on demand
//! first.

use std::path::{Path, PathBuf};

use super::{ServiceError, printable};

/// The job's label, in reverse-DNS form; also the plist's file name.
pub const LABEL: &str = "ai.wbl.agent";

/// The plist template, as it is in the repository.
pub const TEMPLATE: &str = include_str!("../../launchd/ai.wbl.agent.plist");

/// `~/Library/LaunchAgents/ai.wbl.agent.plist`.
pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library")
        .join("LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

/// `~/Library/Logs/wbl`, where the agent's output goes.
pub fn log_dir(home: &Path) -> PathBuf {
    home.join("Library").join("Logs").join("wbl")
}

/// The plist for `agent`, logging under `home` and serving `socket` (all absolute).
pub fn render(agent: &Path, home: &Path, socket: &Path) -> Result<String, ServiceError> {
    let agent = xml_escape(printable(agent)?);
    let home = xml_escape(printable(home)?);
    let socket = xml_escape(printable(socket)?);
    // The template's comment explains the placeholders; the installed file does not need it.
    let text = match (TEMPLATE.find("<!--"), TEMPLATE.find("-->")) {
        (Some(a), Some(b)) if a < b => {
            let rest = TEMPLATE[b + 3..].trim_start_matches('\n');
            format!("{}{rest}", &TEMPLATE[..a])
        }
        _ => TEMPLATE.to_owned(),
    };
    Ok(text
        .replace("@WBL_AGENT@", &agent)
        .replace("@HOME@", &home)
        .replace("@WBL_SOCKET@", &socket))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_escaped() {
        let text = render(
            Path::new("/Users/a&b/<bin>/wbl-agent"),
            Path::new("/Users/a&b"),
            Path::new("/tmp/wbl-501/agent.sock"),
        )
        .unwrap();
        assert!(!text.contains('@'), "{text}");
        assert!(!text.contains("<!--"), "{text}");
        assert!(text.contains("<string>/Users/a&amp;b/&lt;bin&gt;/wbl-agent</string>"));
        assert!(text.contains("<string>/Users/a&amp;b/Library/Logs/wbl/agent.log</string>"));
        assert!(text.contains("<string>/tmp/wbl-501/agent.sock</string>"));
        assert!(text.starts_with("<?xml"));
    }

    #[test]
    fn paths() {
        let home = Path::new("/Users/me");
        assert_eq!(
            plist_path(home),
            Path::new("/Users/me/Library/LaunchAgents/ai.wbl.agent.plist")
        );
        assert_eq!(log_dir(home), Path::new("/Users/me/Library/Logs/wbl"));
    }
}
