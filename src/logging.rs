//! Logging set-up shared by both binaries: tracing to stderr, filtered by `WBL_LOG`.

use tracing_subscriber::EnvFilter;

/// Environment variable with a tracing filter (`info`, `debug`, `trace`, `wbl=trace`, …).
pub const LOG_ENV: &str = "WBL_LOG";

/// Installs the subscriber. `default` applies when `WBL_LOG` is unset or invalid.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
