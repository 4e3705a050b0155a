//! The agent and one proxy engine: the process (`wbl-agent --proxy-engine`, the agent's own
//! executable) that serves one `wbl exec --proxy` or `wbl ssh --proxy` grant, so the HTTP
//! parser that faces the proxy's client never runs in the agent and holds one key, not all.
//! Frames are the one codec's; the engine reads [`ToEngine`] on its stdin and writes
//! [`FromEngine`] on its stdout. Both ends are the same executable (the agent starts
//! `/proc/self/exe`), so the two sides never differ in version.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Agent → engine: first one [`ToEngine::Grant`], later at most one [`ToEngine::End`].
/// End of input without `End` means the agent is gone: the engine exits at once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ToEngine {
    Grant(EngineGrant),
    /// The grant ended (its `wbl exec` or ssh session is over): refuse, and say so, for a
    /// while, then exit.
    End,
}

/// The one grant an engine serves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EngineGrant {
    /// The proxy's id (for the log).
    pub id: String,
    /// Who uses the proxy (`exec:<program>`, `ssh:<destination>`).
    pub destination: String,
    /// The capability requests must carry in the key's place.
    pub placeholder: Secret,
    /// `Basic base64("api:" + key)`: what the upstream gets.
    pub authorization: Secret,
    /// The upstream's origin and path prefix, no trailing `/`.
    pub upstream: String,
    /// Seconds left before the grant ends by itself, when it has a TTL.
    pub ttl_secs: Option<u64>,
    pub listen: EngineListen,
}

/// Where the engine listens.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum EngineListen {
    /// A free port on 127.0.0.1.
    Loopback,
    /// A restricted Unix socket at this path (mode 0600), for `ssh -R`.
    Socket(String),
}

/// Engine → agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FromEngine {
    /// Listening: `127.0.0.1:PORT` or the socket's path. The first frame when all went well.
    Listening { address: String },
    /// The engine could not start serving; the message is for the user.
    Failed { message: String },
    /// A request the engine refused, for the access log.
    Refused(EngineRefusal),
    /// The answer to `End`: from now on every request is refused.
    Ended,
}

/// One refused request: never a header, a body or a query string.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EngineRefusal {
    /// The reason (`placeholder`, `path`, `ended`).
    pub code: String,
    /// `METHOD /path`, printable, at most 200 characters of path.
    pub request: String,
    /// Who sent it, as far as the engine could tell: a caller as the access log writes one
    /// (JSON: `uid`, `pid`, `exe`, `parents`, `check`); `None`: unknown.
    pub caller: Option<String>,
}
