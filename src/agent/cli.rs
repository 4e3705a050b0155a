//! The `wbl-agent` command line. In the library so that `wbl man` renders the agent's manual
//! page from the same definition the agent parses with.

use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "wbl-agent",
    version,
    about = "The wbl agent: keeps API keys in the OS keychain and serves them to `wbl`",
    after_help = "Examples:\n  wbl-agent                       # start in the background (what `wbl` does for you)\n  wbl-agent --foreground          # for systemd, launchd and debugging\n  wbl-agent --idle-exit 3600      # stop after an hour without clients\n\nUnder systemd socket activation (LISTEN_FDS) the agent serves the socket it is given and reports READY=1; install the units with `wbl agent install`.\n\nEnvironment: WBL_SOCKET (socket path), WBL_BACKEND (auto|secret-service|keyutils|macos-keychain|windows-credential-manager), WBL_LOG (log filter), WBL_KEYCHAIN_TIMEOUT (seconds), WBL_IDLE_EXIT (seconds, as --idle-exit)."
)]
pub struct Args {
    /// Stay in the foreground and log to stderr instead of detaching.
    #[arg(long)]
    pub foreground: bool,
    /// File descriptor to write one byte to once listening (used by the detaching launcher).
    #[arg(long, hide = true)]
    pub ready_fd: Option<i32>,
    /// Serve one proxy's grant read from stdin (the agent starts its proxy engines so).
    #[arg(long, hide = true)]
    pub proxy_engine: bool,
    /// Exit once no client has been connected for SECONDS (0: never, the default).
    #[arg(long, env = IDLE_EXIT_ENV, value_name = "SECONDS")]
    pub idle_exit: Option<u64>,
}

/// Environment variable with the default of `--idle-exit`; clients that auto-start the agent
/// pass their environment on, so setting it makes auto-started agents exit when idle.
pub const IDLE_EXIT_ENV: &str = "WBL_IDLE_EXIT";

impl Args {
    pub fn idle_exit(&self) -> Option<Duration> {
        self.idle_exit.filter(|s| *s > 0).map(Duration::from_secs)
    }
}
