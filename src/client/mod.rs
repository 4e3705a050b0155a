//! The client side of the socket: connecting to our own agent (and auto-starting it), the
//! hello exchange, and one method per request. Synchronous: no async runtime in the client, so
//! it starts fast. Which agent is ours and how long to wait come from `crate::rendezvous`;
//! this module needs nothing heavier (no argument parser, no async runtime, no HTTP), so small
//! client programs can use it.

mod autostart;

use std::time::Duration;

use wbl_proto::{
    AgentStatus, Connection, Credential, CredentialInfo, ErrorCode, FORWARD_PID, ForwardInfo,
    ForwardRequest, PROTOCOL_VERSION, ProtoError, Purpose, Query, Request, Response, Secret,
    StoreSession,
};

use crate::rendezvous::{self, ClientStream, ConnectError, Deadline, RuntimePaths};

pub use autostart::{AUTOSTART_ENV, connect_or_start, connect_or_start_by};
pub(crate) use autostart::{stop_pid, wait_released};

/// Client-side failures, each with what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no wbl-agent is running on {socket}; start one with `wbl-agent` (or unset WBL_NO_AUTOSTART to let wbl start it)"
    )]
    NotRunning { socket: String },
    #[error(
        "the forwarded wbl socket {socket} does not answer: the `wbl ssh` session that served it \
         has ended or its forward failed; reconnect with `wbl ssh` (wbl never starts an agent \
         in place of a forwarded socket)"
    )]
    ForwardGone { socket: String },
    #[error("could not start wbl-agent: {0}; `wbl doctor` checks what it needs")]
    StartFailed(String),
    /// The socket is not safe or not served by us: nothing was sent and nothing started.
    #[error("{0}")]
    Untrusted(ConnectError),
    #[error(
        "wbl-agent did not answer {what} within {:.0} s ({} changes the bound); `wbl doctor` checks the agent",
        timeout.as_secs_f64(), rendezvous::TIMEOUT_ENV
    )]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    #[error("lost the connection to wbl-agent: {0}; `wbl doctor` checks the agent")]
    Protocol(#[from] ProtoError),
    /// The message quotes host and user names and OpenBao's own errors: shown escaped.
    #[error("{}{}", crate::text::printable(message), next_step(*.code))]
    Agent { code: ErrorCode, message: String },
    #[error(
        "wbl-agent gave an unexpected answer to {0}; restart it with `wbl agent stop && wbl agent start`"
    )]
    Unexpected(&'static str),
    #[error("{0}")]
    Io(String),
}

impl ClientError {
    /// True for the errors of a pipelined lookup that a second attempt cannot change: the
    /// agent's own answer, a refused socket or peer, and a timeout (the operation's one bound
    /// is spent).
    fn final_for_lookup(&self) -> bool {
        matches!(
            self,
            ClientError::Agent { .. } | ClientError::Untrusted(_) | ClientError::Timeout { .. }
        )
    }

    /// The agent's error code, when the agent reported the error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Agent { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A `get` whose "not found in the routed store" answer counts as "nothing stored": what
/// git's helper, `login` and `status` want (`token` and `exec` show the error instead).
pub fn not_found_is_none(
    r: Result<Option<Credential>, ClientError>,
) -> Result<Option<Credential>, ClientError> {
    match r {
        Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(None),
        r => r,
    }
}

/// What to run after an error the agent reported: keychain failures have a cause
/// `wbl doctor` can name (no D-Bus, a locked collection, …).
fn next_step(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Keychain | ErrorCode::KeychainTimeout => {
            "; run `wbl doctor` to see what is wrong with the keychain"
        }
        ErrorCode::NotFound => "; `wbl login` (or git) writes it when your policy allows",
        ErrorCode::Config => {
            "; `wbl doctor` checks the file (docs/openbao.md shows its \
             format)"
        }
        _ => "",
    }
}

impl From<ConnectError> for ClientError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::NotRunning { socket } => ClientError::NotRunning { socket },
            ConnectError::Timeout { timeout, .. } => ClientError::Timeout {
                what: "the connection",
                timeout,
            },
            ConnectError::Io { socket, error } => {
                ClientError::Io(format!("cannot connect to {socket}: {error}"))
            }
            e => ClientError::Untrusted(e),
        }
    }
}

/// True when the error is a timed-out read or write (`SO_RCVTIMEO` / `SO_SNDTIMEO`).
fn timed_out(e: &ProtoError) -> bool {
    matches!(e, ProtoError::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// This client's hello.
fn hello() -> Request {
    Request::Hello {
        protocol: PROTOCOL_VERSION,
        client_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// A read or write's result, a timed-out one named as such (`what` did not come in `timeout`).
fn bounded<T>(
    r: Result<T, ProtoError>,
    what: &'static str,
    timeout: Duration,
) -> Result<T, ClientError> {
    r.map_err(|e| {
        if timed_out(&e) {
            ClientError::Timeout { what, timeout }
        } else {
            ClientError::Protocol(e)
        }
    })
}

/// The soft core-file limit before [`protect_secrets`] set it to 0 (`None`: unlimited), for
/// [`restore_core_limit`].
#[cfg(unix)]
static CORE_LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// Called first thing by every client program: a soft core-file limit of 0, so that a signal
/// (`kill -QUIT`) never writes a core file, whatever the process holds. The process stays
/// dumpable — so that the agent can read which program it is (`/proc/<pid>/exe` needs that of
/// a process of the same user) — until [`seal`], which comes before it holds any secret.
pub fn protect_secrets() {
    #[cfg(unix)]
    {
        let done = crate::sys::harden(crate::sys::Hardening {
            core_files: crate::sys::CoreFiles::SoftOff,
            not_dumpable: false,
            deny_debugger: false,
        });
        if let Some(before) = done.core_soft_before {
            let _ = CORE_LIMIT.set(before);
        }
    }
}

/// Set once this process is sealed.
#[cfg(target_os = "linux")]
static SEALED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes this process keep its secrets in from now on: not dumpable (`PR_SET_DUMPABLE 0` on
/// Linux: no core file, and no ptrace or `/proc/<pid>/mem`, `environ` or `exe` by the user's
/// other processes). Done by [`AgentClient`] as soon as our agent's hello arrives — the agent
/// has read this process before answering it — and so before any answer that could carry a
/// key is read off the socket; and by every command before it reads a secret from anywhere
/// else (a prompt, stdin, a file). Cheap after the first call; `wbl exec`'s program starts
/// dumpable again (`execve` resets it).
pub fn seal() {
    #[cfg(target_os = "linux")]
    if !SEALED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::sys::harden(crate::sys::Hardening {
            core_files: crate::sys::CoreFiles::Unchanged,
            not_dumpable: true,
            deny_debugger: false,
        });
    }
}

/// Gives back the core-file limit [`protect_secrets`] lowered, for a program `wbl exec`
/// becomes (an `execve` resets dumpability by itself, not this limit).
pub fn restore_core_limit() {
    #[cfg(unix)]
    if let Some(cur) = CORE_LIMIT.get() {
        crate::sys::set_core_soft_limit(*cur);
    }
}

/// What the agent says about a credential it stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when the key does not survive a reboot (the agent uses the kernel keyring).
    pub persistent: bool,
}

/// A connected, greeted agent.
pub struct AgentClient {
    conn: Connection<ClientStream>,
    /// When the current operation must be over: connecting, the hello and the first request
    /// share one bound; each later request has one of its own.
    deadline: Deadline,
    /// The agent's protocol version and pid, from its hello.
    pub agent_protocol: u32,
    pub agent_version: String,
    pub agent_pid: u32,
    /// What the keys this connection gets are for; `None`: for this program itself.
    purpose: Option<Purpose>,
}

impl AgentClient {
    /// From now on every `get` of this connection tells the agent what its key is for
    /// ([`Purpose::Check`]: nothing receives it; [`Purpose::Exec`]: the program `wbl exec` runs),
    /// so that the access log names who received it.
    pub fn purpose(&mut self, purpose: Purpose) -> &mut Self {
        self.purpose = Some(purpose);
        self
    }

    /// Connects to our own agent and exchanges hellos; no auto-start. Connecting, the hello
    /// and the first request take at most [`rendezvous::client_timeout`] together; an unsafe
    /// directory or a peer of another user is refused before a byte is sent.
    pub fn connect(paths: &RuntimePaths) -> Result<AgentClient, ClientError> {
        Self::connect_by(paths, Deadline::from_env())
    }

    /// [`AgentClient::connect`], with `None` when no agent listens (a refused socket or a
    /// timeout is still an error).
    pub fn connect_if_running(paths: &RuntimePaths) -> Result<Option<AgentClient>, ClientError> {
        match Self::connect(paths) {
            Ok(c) => Ok(Some(c)),
            Err(ClientError::NotRunning { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`AgentClient::connect`] with an explicit bound.
    pub fn connect_within(
        paths: &RuntimePaths,
        timeout: Duration,
    ) -> Result<AgentClient, ClientError> {
        Self::connect_by(paths, Deadline::after(timeout))
    }

    /// [`AgentClient::connect`] within what is left of an operation's `deadline`.
    pub fn connect_by(
        paths: &RuntimePaths,
        deadline: Deadline,
    ) -> Result<AgentClient, ClientError> {
        let mut client = AgentClient::ungreeted(paths, deadline)?;
        match client.exchange(&hello(), "hello")? {
            Response::Hello {
                protocol,
                agent_version,
                pid,
            } => {
                if protocol == PROTOCOL_VERSION {
                    // Our agent has read this process; from here on it may hold keys. (Another
                    // version's agent is replaced and the new one must still be able to read
                    // it: `autostart::check_version`.)
                    seal();
                }
                client.greeted(protocol, agent_version, pid);
                Ok(client)
            }
            Response::Error { code, message } => Err(ClientError::Agent { code, message }),
            _ => Err(ClientError::Unexpected("hello")),
        }
    }

    /// A checked connection to our agent (`rendezvous::connect`) within what is left of
    /// `deadline`, hello not yet exchanged.
    fn ungreeted(paths: &RuntimePaths, deadline: Deadline) -> Result<AgentClient, ClientError> {
        let what = "the connection";
        let left = deadline.remaining().ok_or(ClientError::Timeout {
            what,
            timeout: deadline.bound(),
        })?;
        let stream = rendezvous::connect(paths, left).map_err(|e| match e {
            // Named with the operation's bound, not the part of it that was left.
            ConnectError::Timeout { .. } => ClientError::Timeout {
                what,
                timeout: deadline.bound(),
            },
            e => e.into(),
        })?;
        Ok(AgentClient {
            conn: Connection::new(stream),
            deadline,
            agent_protocol: 0,
            agent_version: String::new(),
            agent_pid: 0,
            purpose: None,
        })
    }

    /// Records what the agent's hello said.
    fn greeted(&mut self, protocol: u32, agent_version: String, pid: u32) {
        self.agent_protocol = protocol;
        self.agent_version = agent_version;
        self.agent_pid = pid;
    }

    /// Bounds the next read or write by what is left of the operation's deadline; a
    /// [`ClientError::Timeout`] when nothing is left (nothing is sent or read then).
    fn arm(&mut self, what: &'static str) -> Result<(), ClientError> {
        let timeout = self.deadline.bound();
        let left = self
            .deadline
            .remaining()
            .ok_or(ClientError::Timeout { what, timeout })?;
        #[cfg(unix)]
        {
            let stream = self.conn.get_ref();
            stream
                .set_read_timeout(Some(left))
                .and_then(|()| stream.set_write_timeout(Some(left)))
                .map_err(|e| ClientError::Io(format!("cannot bound the wait for {what}: {e}")))?;
        }
        #[cfg(not(unix))]
        let _ = left;
        Ok(())
    }

    /// One request and its response within what is left of the operation's deadline.
    fn exchange(&mut self, req: &Request, what: &'static str) -> Result<Response, ClientError> {
        self.arm(what)?;
        bounded(self.conn.call(req), what, self.deadline.bound())
    }

    /// Connects and sends hello and `req` without waiting in between, then reads both
    /// answers: one round trip instead of two, for the helper processes git and container
    /// tools start on every operation. `Ok(None)` when the agent speaks another protocol
    /// version (its answer to `req` is not read): the caller takes the ordinary path, which
    /// restarts it. Only for requests that carry no secret and may be repeated (`get`).
    fn connect_pipelined(
        paths: &RuntimePaths,
        req: &Request,
        deadline: Deadline,
    ) -> Result<Option<(AgentClient, Response)>, ClientError> {
        // The same checked connect as every client: directory rule and peer uid before a
        // byte is sent, every wait within the one deadline.
        let timeout = deadline.bound();
        let mut client = AgentClient::ungreeted(paths, deadline)?;
        client.arm("hello")?;
        bounded(client.conn.send(&hello()), "hello", timeout)?;
        client.arm("a lookup")?;
        bounded(client.conn.send(req), "a lookup", timeout)?;
        client.arm("hello")?;
        let Some(Response::Hello {
            protocol,
            agent_version,
            pid,
        }) = bounded(client.conn.recv::<Response>(), "hello", timeout)?
        else {
            return Ok(None);
        };
        if protocol != PROTOCOL_VERSION {
            return Ok(None);
        }
        // Before the answer that may hold the key is read off the socket (the agent has read
        // this process before its hello; the answer waits in the kernel until then).
        seal();
        client.greeted(protocol, agent_version, pid);
        client.arm("a lookup")?;
        let answer = match bounded(client.conn.recv(), "a lookup", timeout)? {
            Some(Response::Error { code, message }) => {
                return Err(ClientError::Agent { code, message });
            }
            Some(r) => r,
            None => return Err(ClientError::Unexpected("a request (the agent closed)")),
        };
        Ok(Some((client, answer)))
    }

    /// True when this is a forward's restricted socket (`wbl ssh`): only `get` for the granted
    /// hosts works, and the agent behind it is never to be stopped or replaced.
    pub fn forwarded(&self) -> bool {
        self.agent_pid == FORWARD_PID
    }

    /// A handle that blocks until the agent ends this connection (it stopped, restarted or
    /// died), for a holder that sends nothing more: see [`Closed::wait`].
    #[cfg(unix)]
    pub fn closed(&self) -> std::io::Result<Closed> {
        Ok(Closed(self.conn.get_ref().try_clone()?))
    }

    /// Ends a held connection and waits, at most `limit`, until the agent has closed its
    /// side: what the connection held (a proxy) has ended by then.
    #[cfg(unix)]
    pub fn end(self, limit: std::time::Duration) {
        let stream = self.conn.get_ref();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.set_read_timeout(Some(limit));
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut &*stream, &mut buf);
    }

    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let what = match req {
            Request::Hello { .. } => "hello",
            Request::Get(_) | Request::GetFor { .. } => "a lookup",
            Request::Store(_) => "a store",
            Request::Erase(_) => "an erase",
            Request::List => "a list request",
            Request::Status => "a status request",
            Request::Shutdown => "a shutdown request",
            Request::StoreLogin { .. } => "a store login",
            Request::Forward(_) => "a forward request",
            Request::Forwards => "a forwards request",
            Request::Proxy(_) => "a proxy request",
            Request::Proxies => "a proxies request",
        };
        let answer = self.exchange(req, what);
        // The next request is an operation of its own.
        self.deadline.renew();
        match answer? {
            Response::Error { code, message } => Err(ClientError::Agent { code, message }),
            r => Ok(r),
        }
    }

    /// The first credential matching `query`. With a [`AgentClient::purpose`] set, the request
    /// says what the key is for (`GetFor`), for the access log.
    pub fn get(&mut self, query: Query) -> Result<Option<Credential>, ClientError> {
        let req = match &self.purpose {
            None => Request::Get(query),
            Some(p) => Request::GetFor {
                query,
                purpose: p.clone(),
            },
        };
        match self.call(&req)? {
            Response::Credential(c) => Ok(c),
            _ => Err(ClientError::Unexpected("get")),
        }
    }

    /// Stores `cred`; returns once the keychain has it.
    pub fn store(&mut self, cred: Credential) -> Result<Stored, ClientError> {
        match self.call(&Request::Store(cred))? {
            Response::Stored { persistent } => Ok(Stored { persistent }),
            _ => Err(ClientError::Unexpected("store")),
        }
    }

    pub fn erase(&mut self, query: Query) -> Result<u32, ClientError> {
        match self.call(&Request::Erase(query))? {
            Response::Erased { count } => Ok(count),
            _ => Err(ClientError::Unexpected("erase")),
        }
    }

    pub fn list(&mut self) -> Result<Vec<CredentialInfo>, ClientError> {
        match self.call(&Request::List)? {
            Response::List(l) => Ok(l),
            _ => Err(ClientError::Unexpected("list")),
        }
    }

    pub fn status(&mut self) -> Result<AgentStatus, ClientError> {
        match self.call(&Request::Status)? {
            Response::Status(s) => Ok(s),
            _ => Err(ClientError::Unexpected("status")),
        }
    }

    /// Opens a forward; it lasts as long as this connection (and at most its TTL).
    pub fn forward(&mut self, req: ForwardRequest) -> Result<ForwardInfo, ClientError> {
        match self.call(&Request::Forward(req))? {
            Response::Forwarding(info) => Ok(info),
            _ => Err(ClientError::Unexpected("forward")),
        }
    }

    /// Opens a key-injecting proxy (`--proxy`); it lasts while this connection stays open.
    pub fn proxy(
        &mut self,
        req: wbl_proto::ProxyRequest,
    ) -> Result<wbl_proto::ProxyInfo, ClientError> {
        match self.call(&Request::Proxy(req))? {
            Response::Proxying(info) => Ok(info),
            _ => Err(ClientError::Unexpected("proxy")),
        }
    }

    /// The proxies open or ending.
    pub fn proxies(&mut self) -> Result<Vec<wbl_proto::ProxyStatus>, ClientError> {
        match self.call(&Request::Proxies)? {
            Response::Proxies(list) => Ok(list),
            _ => Err(ClientError::Unexpected("proxies")),
        }
    }

    /// The live forwards.
    pub fn forwards(&mut self) -> Result<Vec<ForwardInfo>, ClientError> {
        match self.call(&Request::Forwards)? {
            Response::Forwards(list) => Ok(list),
            _ => Err(ClientError::Unexpected("forwards")),
        }
    }

    /// Logs the agent in to the store `store`, named as a route names it (`openbao.NAME`;
    /// see `wbl openbao login`).
    pub fn store_login(
        &mut self,
        store: &str,
        secret: Option<Secret>,
    ) -> Result<StoreSession, ClientError> {
        let req = Request::StoreLogin {
            store: store.to_owned(),
            secret,
        };
        match self.call(&req)? {
            Response::StoreLoggedIn(s) => Ok(s),
            _ => Err(ClientError::Unexpected("store login")),
        }
    }

    pub fn shutdown(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::Shutdown)? {
            Response::ShuttingDown => Ok(()),
            _ => Err(ClientError::Unexpected("shutdown")),
        }
    }
}

/// The first credential matching `query`, from the agent (started when needed), within one
/// [`rendezvous::client_timeout`] (see [`get_once_by`]).
pub fn get_once(paths: &RuntimePaths, query: Query) -> Result<Option<Credential>, ClientError> {
    get_once_by(paths, query, &mut Deadline::from_env())
}

/// [`get_once`] within what is left of `deadline`, which several lookups of one operation
/// share (it starts again when an agent had to be started). With an agent of our version
/// already running this is one round trip (hello and get pipelined); no agent, another
/// version, or a connection lost before the answer take the ordinary path of
/// [`connect_or_start_by`], with the same deadline. An agent that did not answer in time is
/// not asked again: that would wait a second bound.
pub fn get_once_by(
    paths: &RuntimePaths,
    query: Query,
    deadline: &mut Deadline,
) -> Result<Option<Credential>, ClientError> {
    let req = Request::Get(query);
    match AgentClient::connect_pipelined(paths, &req, *deadline) {
        Ok(Some((_, Response::Credential(c)))) => return Ok(c),
        Ok(Some(_)) => return Err(ClientError::Unexpected("get")),
        // The agent's own error (keychain, …) is the answer, a refused socket or peer would be
        // refused again, and the time is up: retrying would repeat or wait again.
        Err(e) if e.final_for_lookup() => return Err(e),
        Ok(None) | Err(_) => {}
    }
    let Request::Get(query) = req else {
        unreachable!("built above")
    };
    connect_or_start_by(paths, deadline)?.get(query)
}

/// The other end of a held connection, watched for its end (see [`AgentClient::closed`]).
#[cfg(unix)]
pub struct Closed(ClientStream);

#[cfg(unix)]
impl Closed {
    /// Blocks until the agent closes the connection, or sends anything (it sends nothing
    /// unasked, so that too means the connection is over), or polling fails. Unbounded by
    /// design: the caller waits for this on a thread of its own beside its other ends.
    pub fn wait(&self) {
        use std::os::fd::AsFd;
        crate::sys::wait_readable(self.0.as_fd());
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn client_on(stream: ClientStream, deadline: Deadline) -> AgentClient {
        AgentClient {
            conn: Connection::new(stream),
            deadline,
            agent_protocol: PROTOCOL_VERSION,
            agent_version: String::new(),
            agent_pid: 1,
            purpose: None,
        }
    }

    /// Every wait takes what is left of the operation's deadline: once it is spent, a request
    /// is neither sent nor waited for, and the error names the whole bound.
    #[test]
    fn a_spent_deadline_sends_nothing_and_waits_for_nothing() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut client = client_on(ours, Deadline::after(Duration::ZERO));
        let e = client.status().unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Timeout {
                    what: "a status request",
                    ..
                }
            ),
            "{e}"
        );
        theirs.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let n = std::io::Read::read(&mut &theirs, &mut buf);
        assert_eq!(
            n.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "nothing was sent"
        );
    }

    /// The socket's read bound is what is left of the deadline, never the whole bound again.
    #[test]
    fn each_wait_is_bounded_by_what_is_left() {
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let bound = Duration::from_secs(600);
        let mut client = client_on(ours, Deadline::after(bound));
        client.arm("hello").unwrap();
        let set = client.conn.get_ref().read_timeout().unwrap().unwrap();
        assert!(set <= bound && set > Duration::ZERO, "{set:?}");
        assert_eq!(client.deadline.bound(), bound);
    }
}
