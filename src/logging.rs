//! Logging set-up shared by both binaries: tracing to stderr, filtered by `WBL_LOG`.
//!
//! The filter is `tracing_subscriber`'s `Targets` (`info`, `debug`, `wbl=trace,warn`), not
//! `EnvFilter`: `EnvFilter`'s span and field matching needs the `regex` crates, about 250 KiB
//! of code that the agent kept resident and whose relocations every client start paid for.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Environment variable with a tracing filter (`info`, `debug`, `trace`, `wbl=trace`, …).
pub const LOG_ENV: &str = "WBL_LOG";

/// The filter `WBL_LOG` names; `default` when it is unset, empty or invalid.
fn filter(value: Option<&str>, default: &str) -> Targets {
    value
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or_default()
}

/// Installs the subscriber. `default` applies when `WBL_LOG` is unset or invalid.
pub fn init(default: &str) {
    let value = std::env::var(LOG_ENV).ok();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter(value.as_deref(), default))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn filter_syntax_and_fallbacks() {
        let f = filter(Some("debug"), "info");
        assert!(f.would_enable("wbl::agent", &Level::DEBUG));
        assert!(!f.would_enable("wbl::agent", &Level::TRACE));
        let f = filter(Some("wbl=trace,warn"), "info");
        assert!(f.would_enable("wbl::agent::state", &Level::TRACE));
        assert!(f.would_enable("zbus", &Level::WARN));
        assert!(!f.would_enable("zbus", &Level::INFO));
        // Unset, empty or unparsable: the default.
        for v in [None, Some(""), Some("  "), Some("wbl=loud")] {
            let f = filter(v, "info");
            assert!(f.would_enable("wbl", &Level::INFO), "{v:?}");
            assert!(!f.would_enable("wbl", &Level::DEBUG), "{v:?}");
        }
    }
}
