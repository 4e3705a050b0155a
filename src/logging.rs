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

/// The fields of an event as the default format writes them (`message` bare, the others
/// `name=value`, space-separated), each value escaped by [`crate::text::printable`]: host and
/// user names from clients and servers' error messages cannot forge, hide or erase a line of
/// the log, nor act on the terminal it is read on.
fn escaping_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut tracing_subscriber::fmt::format::Writer<'_>,
         field: &tracing::field::Field,
         value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            let text = crate::text::printable(&text);
            match field.name() {
                "message" => write!(w, "{text}"),
                name => write!(w, "{name}={text}"),
            }
        },
    )
    .delimited(" ")
}

/// Installs the subscriber. `default` applies when `WBL_LOG` is unset or invalid.
pub fn init(default: &str) {
    let value = std::env::var(LOG_ENV).ok();
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(escaping_fields())
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
    fn field_values_are_escaped() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(escaping_fields())
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let host = "evil\x1b[2K.com\nfake line";
            tracing::warn!(%host, user = "a\rb", "refused {}", "x\x1b[1A");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        assert!(
            text.contains("refused x\\x1b[1A host=evil\\x1b[2K.com\\nfake line user=\"a\\rb\""),
            "{text:?}"
        );
    }

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
