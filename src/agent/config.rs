//! The agent's configuration: the time limits that protect it from stuck keychains and slow or
//! hostile clients, each overridable by an environment variable.

use std::time::Duration;

/// Default bound on one keychain operation.
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Time bounds that protect the agent from stuck keychains and slow or hostile clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A new connection must say hello within this (`WBL_HELLO_TIMEOUT`, default 5 s).
    pub hello: Duration,
    /// A greeted connection idle for this long is closed (`WBL_IDLE_TIMEOUT`, default 30 s).
    pub idle: Duration,
    /// Writing one response may take this long (`WBL_WRITE_TIMEOUT`, default 10 s): a client
    /// that never reads its answers is dropped.
    pub write: Duration,
    /// One keychain operation (`WBL_KEYCHAIN_TIMEOUT`, default 5 s).
    pub keychain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hello: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            write: Duration::from_secs(10),
            keychain: DEFAULT_KEYCHAIN_TIMEOUT,
        }
    }
}

impl Limits {
    /// Defaults, each overridable by its environment variable (seconds, may be fractional).
    pub fn from_env() -> Self {
        fn secs(var: &str, default: Duration) -> Duration {
            std::env::var(var)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .unwrap_or(default)
        }
        let d = Limits::default();
        Limits {
            hello: secs("WBL_HELLO_TIMEOUT", d.hello),
            idle: secs("WBL_IDLE_TIMEOUT", d.idle),
            write: secs("WBL_WRITE_TIMEOUT", d.write),
            keychain: secs("WBL_KEYCHAIN_TIMEOUT", d.keychain),
        }
    }
}
