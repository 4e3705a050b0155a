//! Where client and agent meet, and how a client makes sure it meets its own agent. Both
//! sides import this module; neither imports the other. It needs only std, the OS layer
//! (`crate::sys`) and interprocess for the socket name (and, on Windows, the pipe), so any
//! client program can call [`connect`] without an argument parser or an async runtime.
//!
//! - `paths`: where the socket and its sibling files are (pid file, start lock, log).
//! - `trust`: the socket directory's rule (the private-directory rule, refusing) and a
//!   forwarded socket's.
//! - `connect`: connecting within a bound, and the peer check.
//! - `agent_pid`: whether a pid is our agent, before anything signals it; `proc_locks`: who
//!   holds a file's lock, from Linux's `/proc/locks`.
//!
//! Here: the client's time bounds.

use std::time::Duration;

mod agent_pid;
mod connect;
mod paths;
#[cfg(target_os = "linux")]
mod proc_locks;
mod trust;

pub use crate::private_dir::DirProblem;
pub use agent_pid::verify_agent_pid;
pub use connect::{ClientStream, ConnectError, connect};
pub use paths::{FORWARD_PREFIX, RuntimePaths, is_forwarded, socket_name, user_tag};
pub use trust::{PrepareError, UnsafeDir, check_dir, check_forward, prepare_dir};

/// The way out that always works: a private directory of one's own.
const OWN_DIR_FIX: &str = "set WBL_SOCKET to a path in a private directory of yours \
     (`mkdir -m 700 ~/.wbl && export WBL_SOCKET=~/.wbl/agent.sock`), or XDG_RUNTIME_DIR to \
     your login session's runtime directory";

/// Environment variable naming the agent socket (a file path on Unix, a pipe name on Windows).
pub const SOCKET_ENV: &str = "WBL_SOCKET";

/// Environment variable bounding every wait of a client (seconds, may be fractional).
pub const TIMEOUT_ENV: &str = "WBL_CLIENT_TIMEOUT";

/// Default bound on each client wait: connecting, the hello, and each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound on each client wait: `$WBL_CLIENT_TIMEOUT` seconds, else [`DEFAULT_TIMEOUT`].
pub fn client_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// When one client operation must be over. An operation — connecting, the hello and one
/// request, or git's one `get` with the connections it takes — waits at most one
/// [`client_timeout`] in all, not one per wait: every wait takes what is left of the same
/// deadline. Starting an agent is not counted (it has bounds of its own); the deadline starts
/// again after it ([`Deadline::renew`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: std::time::Instant,
    bound: Duration,
}

impl Deadline {
    /// `bound` from now.
    pub fn after(bound: Duration) -> Deadline {
        Deadline {
            at: std::time::Instant::now() + bound,
            bound,
        }
    }

    /// [`client_timeout`] from now.
    pub fn from_env() -> Deadline {
        Deadline::after(client_timeout())
    }

    /// The whole bound of the operation (for messages: "did not answer within N s").
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// The time left; `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// The same bound again from now: after starting an agent, or for the next request on a
    /// connection.
    pub fn renew(&mut self) {
        *self = Deadline::after(self.bound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_spent_once_and_renewed_with_its_whole_bound() {
        let bound = Duration::from_secs(600);
        let past = std::time::Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap();
        let mut d = Deadline { at: past, bound };
        assert_eq!(d.remaining(), None);
        assert_eq!(d.bound(), bound);
        d.renew();
        let left = d.remaining().unwrap();
        assert!(left <= bound && left > bound / 2, "{left:?}");
        assert_eq!(Deadline::after(Duration::ZERO).remaining(), None);
    }
}
