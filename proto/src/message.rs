//! The wire messages: one enum per direction, errors travel as a response variant.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Bumped whenever a message changes shape. Client and agent compare it in the hello exchange;
/// a client that meets an agent of another version restarts it (see `PROTOCOL.md`).
pub const PROTOCOL_VERSION: u32 = 10;

/// Where a credential is used: `protocol://host[:port][/path]`, as git describes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// `https`, `http`, … (lower case).
    pub protocol: String,
    /// Host name with the port when there is one (`my.host:8443`).
    pub host: String,
    /// Path without the leading `/`, only for credentials stored per path.
    pub path: Option<String>,
}

impl Target {
    /// A target without a path.
    pub fn new(protocol: impl Into<String>, host: impl Into<String>) -> Self {
        Target {
            protocol: protocol.into(),
            host: host.into(),
            path: None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.protocol, self.host)?;
        if let Some(path) = &self.path {
            write!(f, "/{path}")?;
        }
        Ok(())
    }
}

/// What a `get` or `erase` asks for: a target, when known the user name, and the account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub target: Target,
    /// `None` matches any user name stored for the target.
    pub username: Option<String>,
    /// Which of the host's accounts (protocol 8). [`Account::Any`] is git's rule: whatever
    /// matches `username`.
    pub account: Account,
}

/// The name of the account a host's key stored under the W&B user name `api` belongs to:
/// every key stored before accounts existed, and what an older wbl reads.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The user name W&B keys of the default account are stored under (the SDK authenticates as
/// `api:KEY`).
pub const DEFAULT_ACCOUNT_USER: &str = "api";

/// Which of a host's accounts a [`Query`] asks for. An account is a credential stored for the
/// host without a path; its name is its user name, except that the user name `api` is the
/// account `default` (see [`account_user`], [`user_account`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub enum Account {
    /// git's rule: the first credential matching the query's user name (any when `None`).
    #[default]
    Any,
    /// The account with this name (the query's `username` is not used).
    Named(String),
    /// The user chose none: the host's only account, none when it has none, and an
    /// `Error { Account }` naming them when it has several.
    Only,
}

/// Why `name` cannot name an account, if it cannot: a name is 1 to 64 ASCII letters, digits,
/// `.`, `_` or `-`, not starting with `-` or `.` (W&B user names fit), and not `api`, the user
/// name of the account `default`.
pub fn account_name_problem(name: &str) -> Option<String> {
    let shown: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
    if name.is_empty() || name.len() > 64 {
        return Some("an account name has 1 to 64 characters".into());
    }
    if name.starts_with(['-', '.'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Some(format!(
            "`{shown}` is not an account name (letters, digits, `.`, `_` and `-`, not first `-` \
             or `.`)"
        ));
    }
    if name == DEFAULT_ACCOUNT_USER {
        return Some(format!(
            "`{DEFAULT_ACCOUNT_USER}` is not an account name: it is where the account \
             `{DEFAULT_ACCOUNT}` is kept; use `{DEFAULT_ACCOUNT}`"
        ));
    }
    None
}

/// The user name an account's key is stored under.
pub fn account_user(account: &str) -> &str {
    if account == DEFAULT_ACCOUNT {
        DEFAULT_ACCOUNT_USER
    } else {
        account
    }
}

/// The account a key stored under `username` belongs to.
pub fn user_account(username: &str) -> &str {
    if username == DEFAULT_ACCOUNT_USER {
        DEFAULT_ACCOUNT
    } else {
        username
    }
}

/// What the client does with the credential a [`Request::GetFor`] returns, for the access
/// log: who received the key. (A plain [`Request::Get`] hands it to the calling program.)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The key reaches no other program: the client compares it or shows it masked
    /// (`wbl status`, `wbl login` looking for a stored key, git's erase comparing passwords).
    Check,
    /// `wbl exec`: the key goes into the environment of `program` (its path, as the client
    /// resolved it), which the client then runs in its own place.
    Exec { program: String },
    /// `wbl exec --proxy`, `wbl ssh --proxy`: the key stays in the agent, which adds it to the
    /// requests of the proxy opened for `destination` (protocol 9). Sent by the agent to
    /// itself only; a client's `GetFor` with it is refused.
    Proxy { destination: String },
}

/// A stored credential. `Debug` never shows the secrets (they are [`Secret`]s).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub target: Target,
    pub username: String,
    pub password: Secret,
    /// Unix time after which the password is no longer valid (git's `password_expiry_utc`).
    pub password_expiry_utc: Option<u64>,
    /// git's `oauth_refresh_token`, kept beside the password.
    pub oauth_refresh_token: Option<Secret>,
    /// git's `authtype` (`Bearer`, `Basic`, …): the HTTP scheme of [`Credential::credential`].
    pub authtype: Option<String>,
    /// git's `credential`: a pre-encoded value for the `Authorization` header, used instead of
    /// user name and password. A credential may have this and an empty `password`.
    pub credential: Option<Secret>,
}

impl Credential {
    /// A user name and password for `target`, with none of git's optional fields.
    pub fn new(target: Target, username: impl Into<String>, password: Secret) -> Self {
        Credential {
            target,
            username: username.into(),
            password,
            password_expiry_utc: None,
            oauth_refresh_token: None,
            authtype: None,
            credential: None,
        }
    }

    /// True when there is a non-empty secret: a password or a pre-encoded credential.
    pub fn has_secret(&self) -> bool {
        !self.password.is_empty() || self.credential.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// True when the credential has a password, possibly empty: every credential except one
    /// that carries only a pre-encoded `credential` (git's `authtype`). git stores a user name
    /// and a password even when both are empty (SSO hosts), and so does wbl.
    pub fn has_password(&self) -> bool {
        !self.password.is_empty() || self.credential.as_ref().is_none_or(|c| c.is_empty())
    }
}

/// What `list` tells about a credential: everything but the secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub target: Target,
    pub username: String,
    pub password_expiry_utc: Option<u64>,
}

/// The agent's answer to `status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AgentStatus {
    pub agent_version: String,
    pub protocol: u32,
    pub pid: u32,
    /// The keychain backend in use (`secret-service`, `keyutils`, …).
    pub backend: String,
    /// False when keys do not survive a reboot (kernel keyutils).
    pub backend_persistent: bool,
    pub uptime_secs: u64,
    /// Secrets held in the in-memory cache.
    pub cached_entries: u64,
    /// Credentials the agent knows of in the keychain.
    pub stored_entries: u64,
    pub socket: String,
    /// The hosts the configuration routes away from the keychain, and where each is served
    /// from. Added in protocol 7.
    pub served: Vec<ServedHost>,
}

/// Where the agent serves a host's keys from (in [`AgentStatus::served`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServedHost {
    /// `protocol://host` (no path).
    pub target: Target,
    /// The kind of store: `keychain`, `openbao`, …
    pub store: String,
    /// Which one and where in it (for OpenBao: the server and the secret), when it says more.
    pub detail: Option<String>,
}

/// What the agent holds after logging in to a store (never the token itself).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoreSession {
    /// The store, as a route names it (`openbao.NAME`).
    pub store: String,
    pub address: String,
    /// The token's policies, as the server reported them.
    pub policies: Vec<String>,
    /// Seconds left on the token; `None` when it never expires.
    pub ttl_secs: Option<u64>,
    /// Whether the agent can renew it (`auth/token/renew-self`).
    pub renewable: bool,
    /// Whether the token was also saved in the OS keychain (`token` and `userpass`).
    pub kept_in_keychain: bool,
}

/// The `pid` a restricted (forwarded) socket puts in its hello: there is no process the
/// client may signal. Out of `pid_t` range, so a client that would stop an agent of another
/// version refuses instead of signalling anything.
pub const FORWARD_PID: u32 = u32::MAX;

/// The longest TTL a forward may ask for: 30 days.
pub const MAX_FORWARD_TTL_SECS: u64 = 30 * 24 * 3600;

/// What `wbl ssh` asks of the agent: a restricted socket for `hosts`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ForwardRequest {
    /// Where the socket is forwarded to (the ssh destination), for the log and `wbl status`.
    pub destination: String,
    /// The hosts whose credentials the forward may get (protocol and host; no path).
    pub hosts: Vec<Target>,
    /// The account the forward hands out for every granted host, whatever the remote asks
    /// (`None`: as the remote chooses). Protocol 8.
    pub account: Option<String>,
    /// End the grant after this many seconds even while the connection stays open.
    pub ttl_secs: Option<u64>,
    /// A fixed name for the restricted socket (`agent.sock.fwd-<name>`, for an ssh_config
    /// `RemoteForward`); `None`: a random one.
    pub name: Option<String>,
}

/// A live forward: its restricted socket and its grant. Never secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ForwardInfo {
    /// Short identifier, also the end of the socket's file name.
    pub id: String,
    pub destination: String,
    /// The restricted socket on the agent's side (what `ssh -R` connects to).
    pub socket: String,
    pub hosts: Vec<Target>,
    /// The account granted (see [`ForwardRequest::account`]).
    pub account: Option<String>,
    /// Unix time the forward was opened.
    pub created_unix: u64,
    /// Unix time the grant ends, when a TTL was given.
    pub expires_unix: Option<u64>,
    /// Credentials handed out over this forward so far.
    pub handed_out: u64,
}

/// Where a proxy ([`Request::Proxy`]) listens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyListen {
    /// A TCP port on 127.0.0.1 chosen by the system (`wbl exec --proxy`).
    Loopback,
    /// A restricted Unix socket beside the agent's own, for `ssh -R` (`wbl ssh --proxy`).
    Socket,
}

/// What `wbl exec --proxy` and `wbl ssh --proxy` ask of the agent: a key-injecting HTTP proxy
/// to the W&B API at `upstream`, whose key stays in the agent. Protocol 9.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The W&B API base URL the requests go to (`https://api.wandb.ai`); plain `http` only
    /// for a loopback address.
    pub upstream: String,
    /// Where the key is, tried in order (a host and its other address); the first key found
    /// whose target and user name match its query is used.
    pub queries: Vec<Query>,
    /// Who uses the proxy (`exec:<program>`, `ssh:<destination>`), for the log and the
    /// access log.
    pub destination: String,
    pub listen: ProxyListen,
    /// End the grant after this many seconds even while the connection stays open.
    pub ttl_secs: Option<u64>,
    /// A fixed name for the restricted socket (`agent.sock.fwd-proxy.<name>`, for an
    /// ssh_config `RemoteForward` with `wbl ssh --proxy --hold`); `None`: a random one.
    pub name: Option<String>,
}

/// A live proxy: where it listens and the placeholder that opens it. Never the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyInfo {
    pub id: String,
    /// The capability the proxy's client sends in the key's place (`wblproxy-…`).
    pub placeholder: Secret,
    /// `127.0.0.1:PORT` ([`ProxyListen::Loopback`]) or the restricted socket's path.
    pub address: String,
    pub upstream: String,
    /// The account whose key the proxy adds.
    pub account: String,
    /// Unix time the grant ends, when a TTL was given.
    pub expires_unix: Option<u64>,
}

/// A proxy as `wbl status` shows it: never its placeholder. Protocol 10.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProxyStatus {
    pub id: String,
    /// Who uses it (`exec:<program>`, `ssh:<destination>`).
    pub destination: String,
    /// `127.0.0.1:PORT` or the restricted socket's path.
    pub address: String,
    pub upstream: String,
    pub account: String,
    /// Unix time the proxy was opened.
    pub created_unix: u64,
    /// Unix time the grant ends, when a TTL was given.
    pub expires_unix: Option<u64>,
    /// The grant ended (its command or session is over); its port still refuses, and logs,
    /// late requests for a while.
    pub ended: bool,
    /// Requests refused so far.
    pub refused: u64,
}

/// Client → agent. Every connection starts with `Hello`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Must stay variant 0 with `protocol` first in every version, so that any two versions can
    /// still tell each other their version.
    Hello {
        protocol: u32,
        client_version: String,
    },
    Get(Query),
    Store(Credential),
    Erase(Query),
    List,
    Status,
    Shutdown,
    /// Log the agent in to the configured store `store`, named as a route names it
    /// (`openbao.NAME`): for OpenBao, `secret` is the token (`auth = "token"`) or the password
    /// (`userpass`); `None` for `jwt`, which reads its `jwt_file`. Protocol 7 (was
    /// `OpenBaoLogin { server }`, same shape).
    StoreLogin {
        store: String,
        secret: Option<Secret>,
    },
    /// Open a forward (`wbl ssh`): the agent binds a restricted socket that answers only the
    /// hello and `get` for the granted hosts. The grant lasts while the connection that asked
    /// for it stays open, and at most `ttl_secs`. Added in protocol 5 (see `PROTOCOL.md`).
    Forward(ForwardRequest),
    /// The live forwards and their grants (for `wbl status`).
    Forwards,
    /// `Get`, saying what the client does with the key (see [`Purpose`]); answered as `Get`.
    /// Added in protocol 6.
    GetFor {
        query: Query,
        purpose: Purpose,
    },
    /// Open a key-injecting proxy (`wbl exec --proxy`, `wbl ssh --proxy`); it lasts while
    /// this connection stays open, and at most `ttl_secs`. Added in protocol 9.
    Proxy(ProxyRequest),
    /// The proxies open or ending (for `wbl status`). Protocol 10.
    Proxies,
}

/// Why a request failed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request could not be decoded or is not allowed at this point.
    BadRequest,
    /// The hello exchange found different protocol versions.
    VersionMismatch,
    /// The keychain refused or failed the operation.
    Keychain,
    /// The keychain did not answer in time.
    KeychainTimeout,
    /// The frame was larger than [`crate::MAX_FRAME_LEN`].
    TooLarge,
    /// The agent is shutting down and takes no new work.
    ShuttingDown,
    /// Anything else; the message says what.
    Internal,
    /// wbl's configuration file cannot be used; the message names the file and line.
    Config,
    /// The store serving the host refused or failed; the message names the store, the secret
    /// and the reason (permission denied, sealed, unreachable, token expired, …). Protocol 7
    /// (was `OpenBao`, same index).
    Store,
    /// The store a host is routed to has no such secret; the message names it.
    NotFound,
    /// Not allowed on this channel: a forwarded (restricted) socket answers only the hello and
    /// `get` for the hosts granted to it.
    Forbidden,
    /// The host has several accounts and the query chose none ([`Account::Only`]); the
    /// message names them. Protocol 8.
    Account,
}

/// Agent → client: exactly one response per request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Must stay variant 0 with `protocol` first (see [`Request::Hello`]).
    Hello {
        protocol: u32,
        agent_version: String,
        pid: u32,
    },
    Credential(Option<Credential>),
    /// The keychain has the credential. `persistent` is false when the store that took it
    /// forgets it at reboot (kernel keyutils), so the client can say so without asking again.
    Stored {
        persistent: bool,
    },
    Erased {
        count: u32,
    },
    List(Vec<CredentialInfo>),
    Status(AgentStatus),
    ShuttingDown,
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The answer to [`Request::StoreLogin`].
    StoreLoggedIn(StoreSession),
    /// The forward opened by [`Request::Forward`].
    Forwarding(ForwardInfo),
    /// The answer to [`Request::Forwards`].
    Forwards(Vec<ForwardInfo>),
    /// The proxy opened by [`Request::Proxy`].
    Proxying(ProxyInfo),
    /// The answer to [`Request::Proxies`].
    Proxies(Vec<ProxyStatus>),
}

impl Response {
    /// Shorthand for an error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}
