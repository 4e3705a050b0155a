//! The one place where requests become domain calls and domain results become wire
//! [`Response`]s: exactly one response per request.
//!
//! Every answered request passes through [`answer`] with the connection's [`Session`], so a
//! rule about who may ask what (a restricted channel) belongs in [`Session`] and is checked
//! at the top of [`answer`]. A `get`, `store` or `erase` takes one path whichever store serves
//! it ([`on_store`]): route, call the store, [`audit`] once, turn the result into a response.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use wbl_proto::{
    AgentStatus, ErrorCode, FORWARD_PID, PROTOCOL_VERSION, Purpose, Request, Response, Target,
};

use super::State;
use super::forward::{self, Grant};
use super::store::{StoreError, Stored};
use crate::accesslog::{self, Caller, Event, LOCAL_CHANNEL, Op};

/// Who is on the other end of a connection, as the kernel reports it (`SO_PEERCRED`). Unknown
/// fields are `None` (Windows: the pipe's ACL admits only the current user).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

/// What a connection may ask: everything (the agent's own socket) or, on a forward's restricted
/// socket (`wbl ssh`), the hello and `get` for the hosts of its grant.
#[derive(Debug, Clone, Default)]
pub enum Channel {
    #[default]
    Full,
    #[cfg_attr(not(unix), allow(dead_code))]
    Forward(Arc<Grant>),
}

/// What the agent knows about one connection while answering its requests.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: Peer,
    /// The calling process (executable, parents), identified when the connection was
    /// accepted (`super::caller`); shared by the access log's entries of this connection.
    pub caller: Arc<Caller>,
    /// Through what the connection came: `local` for the agent's own socket, a forward's
    /// destination (`ssh:<destination>`) for one relayed by `wbl ssh`. Recorded with every
    /// entry of the access log.
    pub channel: Arc<str>,
    /// What the connection may ask (everything, or a forward's grant).
    pub access: Channel,
    /// Access-log entries waiting for the rest of the caller (its parents are read once the
    /// first request is answered, `super::caller`); `None`: entries go to the log at once.
    held: Option<Arc<Mutex<Vec<Event>>>>,
}

impl Session {
    /// A connection on the agent's own socket.
    pub fn local(peer: Peer, caller: Caller) -> Session {
        Session::through(peer, caller, LOCAL_CHANNEL)
    }

    /// A connection that came through `channel`, with full access (a test's stand-in for a
    /// relay; forwards use [`Session::new`] with their grant).
    pub fn through(peer: Peer, caller: Caller, channel: &str) -> Session {
        Session {
            peer,
            caller: Arc::new(caller),
            channel: Arc::from(channel),
            access: Channel::Full,
            held: None,
        }
    }

    /// A connection with `access`: the agent's own socket, or a forward's restricted one,
    /// whose access-log channel names the forward's destination.
    pub fn new(peer: Peer, caller: Caller, access: Channel) -> Session {
        let channel: Arc<str> = match &access {
            Channel::Full => Arc::from(LOCAL_CHANNEL),
            Channel::Forward(g) => Arc::from(format!("ssh:{}", g.destination()).as_str()),
        };
        Session {
            peer,
            caller: Arc::new(caller),
            channel,
            access,
            held: None,
        }
    }

    /// From now on this connection's access-log entries wait for [`Session::identified`].
    pub fn hold_log(&mut self) {
        self.held = Some(Arc::default());
    }

    /// The caller is known as far as it will be: the held entries go to the access log with
    /// it, and later ones at once.
    pub fn identified(&mut self, state: &State, caller: Caller) {
        self.caller = Arc::new(caller);
        self.release_log(state);
    }

    /// The held entries go to the access log with the caller as known now, and later ones
    /// at once.
    pub fn release_log(&mut self, state: &State) {
        let Some(held) = self.held.take() else {
            return;
        };
        let events = std::mem::take(&mut *held.lock().unwrap_or_else(|p| p.into_inner()));
        for mut event in events {
            event.caller = Arc::clone(&self.caller);
            state.access_log.record(event);
        }
    }

    /// Hands one entry to the access log, or holds it (see [`Session::hold_log`]).
    fn log(&self, state: &State, event: Event) {
        match &self.held {
            Some(held) => held.lock().unwrap_or_else(|p| p.into_inner()).push(event),
            None => state.access_log.record(event),
        }
    }

    /// The grant of a forward's connection.
    fn grant(&self) -> Option<&Grant> {
        match &self.access {
            Channel::Forward(g) => Some(g),
            Channel::Full => None,
        }
    }
}

impl Default for Session {
    /// A local connection of an unknown caller.
    fn default() -> Session {
        Session::local(Peer::default(), Caller::unknown())
    }
}

/// The agent's greeting: its protocol version, build version and pid. The client compares the
/// versions and restarts an agent from another build (the pid tells it whom to stop).
pub(crate) fn greet() -> Response {
    Response::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    }
}

/// The greeting on a forward's restricted socket: [`FORWARD_PID`] instead of a pid, so the
/// client knows it talks to a forward (never to be stopped or replaced) and the remote side
/// learns nothing about the agent's process.
pub(crate) fn greet_forward() -> Response {
    Response::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: FORWARD_PID,
    }
}

/// The response to a connection's first request when it is not a hello.
pub(crate) fn hello_required() -> Response {
    Response::error(
        ErrorCode::BadRequest,
        "the first request on a connection must be hello",
    )
}

/// Opens a forward (`wbl ssh`) for the connection that asked; the [`forward::Held`] guard
/// stays with that connection.
pub(crate) fn open_forward(
    state: &Arc<State>,
    req: wbl_proto::ForwardRequest,
    spawn: &super::Spawn,
) -> (Response, Option<forward::Held>) {
    match forward::open(state, req, spawn) {
        Ok((info, held)) => (Response::Forwarding(info), Some(held)),
        Err(forward::NotOpened::Invalid(m)) => (Response::error(ErrorCode::BadRequest, m), None),
        Err(forward::NotOpened::Unavailable(m)) => (Response::error(ErrorCode::Internal, m), None),
    }
}

/// Answers one request of a greeted connection. The hello exchange itself is the connection
/// loop's (`mod.rs`), which owns the handshake.
pub(crate) async fn answer(state: &State, session: &Session, req: Request) -> Response {
    // A forward's connection: only what its grant permits goes further.
    if let Some(grant) = session.grant()
        && let Err(refusal) = forward::permit(grant, &req)
    {
        // Refusals are answers too: the access log shows what a forward tried.
        if let Some(subject) = Subject::of(&req) {
            audit(
                state,
                session,
                subject,
                Err((ErrorCode::Forbidden, &refusal as &dyn std::fmt::Display)),
            );
        }
        return Response::error(ErrorCode::Forbidden, refusal);
    }
    // A forward that grants one account hands out that account, whatever the remote asks.
    let req = match session.grant() {
        Some(grant) => forward::narrow(grant, req),
        None => req,
    };
    match req {
        // A second hello on the same connection is a client bug.
        Request::Hello { .. } => {
            Response::error(ErrorCode::BadRequest, "hello was already exchanged")
        }
        Request::Get(query) => on_store(state, session, Call::Get(query, None)).await,
        // Only the agent itself gets a key for a proxy (`proxy_key`).
        Request::GetFor {
            purpose: Purpose::Proxy { .. },
            ..
        } => Response::error(
            ErrorCode::BadRequest,
            "a key for a proxy is never handed out; ask for a proxy instead",
        ),
        Request::GetFor { query, purpose } => {
            on_store(state, session, Call::Get(query, Some(purpose))).await
        }
        Request::Store(cred) => on_store(state, session, Call::Store(cred)).await,
        Request::Erase(query) => on_store(state, session, Call::Erase(query)).await,
        Request::List => state
            .stores
            .keychain()
            .list()
            .await
            .map_or_else(error, Response::List),
        Request::Status => {
            tracing::debug!(peer_pid = ?session.peer.pid, "status");
            Response::Status(status(state))
        }
        Request::Shutdown => {
            tracing::info!(peer_pid = ?session.peer.pid, "shutdown requested by a client");
            state.request_shutdown();
            Response::ShuttingDown
        }
        Request::Forwards => Response::Forwards(state.forwards.list()),
        // It needs the connection, which holds the grant, or the proxies' registry, which is
        // the proxies' own: the connection loop answers it.
        Request::Forward(_) | Request::Proxy(_) | Request::Proxies => Response::error(
            ErrorCode::BadRequest,
            "a forward can only be opened on the agent's own socket",
        ),
        Request::StoreLogin { store, secret } => {
            tracing::debug!(%store, peer_pid = ?session.peer.pid, "store login");
            state
                .stores
                .login(&store, secret)
                .await
                .map_or_else(error, Response::StoreLoggedIn)
        }
    }
}

/// A key for a proxy (`super::proxy`): a `get` on the session's behalf, recorded in the access
/// log with the use `proxy`; the key stays in the agent.
pub(crate) async fn proxy_key(
    state: &State,
    session: &Session,
    query: wbl_proto::Query,
    destination: &str,
) -> Response {
    let purpose = Purpose::Proxy {
        destination: destination.to_owned(),
    };
    on_store(state, session, Call::Get(query, Some(purpose))).await
}

/// A request on one credential, served by the store its target is routed to.
enum Call {
    /// `purpose`: what the client does with the key, from `GetFor`.
    Get(wbl_proto::Query, Option<Purpose>),
    Store(wbl_proto::Credential),
    Erase(wbl_proto::Query),
}

/// What a store did for a [`Call`] (short-lived: never boxed).
#[allow(clippy::large_enum_variant)]
enum Done {
    Found(Option<wbl_proto::Credential>),
    Stored(Stored),
    Erased(u32),
}

/// The one path of a `get`, `store` or `erase`: route, call the store, audit once, answer.
async fn on_store(state: &State, session: &Session, call: Call) -> Response {
    // What the access log records, kept apart from the call, which the store consumes.
    let (op, target, user, purpose) = match &call {
        Call::Get(q, p) => (Op::Get, &q.target, q.username.as_deref(), p.clone()),
        Call::Store(c) => (Op::Store, &c.target, Some(c.username.as_str()), None),
        Call::Erase(q) => (Op::Erase, &q.target, q.username.as_deref(), None),
    };
    let (target, user) = (target.clone(), user.map(str::to_owned));
    let named = match &call {
        Call::Get(q, _) | Call::Erase(q) => match &q.account {
            wbl_proto::Account::Named(n) => Some(n.clone()),
            _ => None,
        },
        Call::Store(_) => None,
    };
    let subject = Subject {
        op,
        target: &target,
        user: user.as_deref(),
        purpose: purpose.as_ref(),
        account: match &call {
            Call::Get(q, _) | Call::Erase(q) => match (&q.account, &named) {
                (wbl_proto::Account::Named(_), Some(n)) => AccountNote::Named(n),
                (wbl_proto::Account::Only, _) => AccountNote::FromFound,
                _ => AccountNote::None,
            },
            Call::Store(c) if c.target.path.is_none() => AccountNote::FromUser,
            Call::Store(_) => AccountNote::None,
        },
    };
    let result = match state.stores.route(&target) {
        Err(e) => Err(e),
        Ok(store) => match call {
            Call::Get(q, _) => store.get(&q).await.map(Done::Found),
            Call::Erase(q) => store.erase(&q).await.map(Done::Erased),
            Call::Store(c) => store.store(c).await.map(Done::Stored),
        },
    };
    let outcome = match &result {
        Ok(Done::Found(c)) => Ok(Answer::Found(c.as_ref().map(|c| c.username.as_str()))),
        Ok(Done::Stored(_)) => Ok(Answer::Stored),
        Ok(Done::Erased(n)) => Ok(Answer::Erased(*n)),
        Err(e) => Err((error_code(e), e as &dyn std::fmt::Display)),
    };
    audit(state, session, subject, outcome);
    if let (Some(grant), Ok(Done::Found(Some(cred)))) = (session.grant(), &result) {
        forward::handed_out(grant, cred);
    }
    match result {
        Ok(Done::Found(c)) => Response::Credential(c),
        Ok(Done::Stored(s)) => Response::Stored {
            persistent: s.persistent,
        },
        Ok(Done::Erased(count)) => Response::Erased { count },
        Err(e) => error(e),
    }
}

/// The wire form of a failure.
fn error(e: StoreError) -> Response {
    Response::error(error_code(&e), e.to_string())
}

fn error_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::NoTarget | StoreError::BadRequest(_) => ErrorCode::BadRequest,
        StoreError::Keychain(_) => ErrorCode::Keychain,
        StoreError::KeychainTimeout { .. } => ErrorCode::KeychainTimeout,
        StoreError::Internal => ErrorCode::Internal,
        StoreError::Config(_) => ErrorCode::Config,
        StoreError::NotFound(_) => ErrorCode::NotFound,
        StoreError::Failed { .. } => ErrorCode::Store,
        StoreError::Account(_) => ErrorCode::Account,
    }
}

fn status(state: &State) -> AgentStatus {
    let keychain = state.stores.keychain();
    let (_, stored) = keychain.counts();
    AgentStatus {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        backend: keychain.backend_name().to_owned(),
        backend_persistent: keychain.backend_persistent(),
        uptime_secs: state.serving.uptime().as_secs(),
        cached_entries: state.stores.cached(),
        stored_entries: stored,
        socket: state.serving.socket().to_owned(),
        served: state
            .stores
            .routed()
            .into_iter()
            .map(|(target, served)| wbl_proto::ServedHost {
                target,
                store: served.kind,
                detail: served.detail,
            })
            .collect(),
    }
}

/// How it went, without any secret.
#[derive(Debug, Clone, Copy)]
enum Answer<'a> {
    /// `get`: the user name of the credential returned, if one was.
    Found(Option<&'a str>),
    Stored,
    /// `erase`: how many credentials existed.
    Erased(u32),
}

impl std::fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Found(Some(_)) => f.write_str("found"),
            Answer::Found(None) => f.write_str("none"),
            Answer::Stored => f.write_str("stored"),
            Answer::Erased(n) => write!(f, "erased {n}"),
        }
    }
}

/// Sees every answered `get`, `store` and `erase` with its caller: a debug log line, and an
/// entry of the access log (queued, never waited for; see `accesslog::writer`).
fn audit(
    state: &State,
    session: &Session,
    subject: Subject<'_>,
    outcome: Result<Answer<'_>, (ErrorCode, &dyn std::fmt::Display)>,
) {
    let Subject { op, target, .. } = subject;
    let user = subject.user.map(crate::text::username);
    let user = user.as_deref();
    let mut found_user = None;
    let (result, code, user) = match outcome {
        Ok(outcome) => {
            if let Answer::Found(Some(found)) = outcome {
                found_user = Some(found);
            }
            tracing::debug!(access = ?op, %target, ?user, %outcome, peer_pid = ?session.peer.pid, "answered");
            match outcome {
                // A get that named no user name records the one it returned.
                Answer::Found(Some(found)) => (accesslog::Outcome::Ok, None, Some(found)),
                Answer::Found(None) | Answer::Erased(0) => (accesslog::Outcome::Miss, None, user),
                Answer::Stored | Answer::Erased(_) => (accesslog::Outcome::Ok, None, user),
            }
        }
        Err((code, e)) => {
            tracing::debug!(access = ?op, %target, ?user, error = %e, peer_pid = ?session.peer.pid, "failed");
            (result_of(code), Some(code_name(code)), user)
        }
    };
    let account = match subject.account {
        AccountNote::Named(n) => Some(n),
        AccountNote::FromFound => found_user.map(wbl_proto::user_account),
        AccountNote::FromUser => user.map(wbl_proto::user_account),
        AccountNote::None => None,
    };
    record(
        state,
        session,
        Subject {
            user,
            account: account.map_or(AccountNote::None, AccountNote::Named),
            ..subject
        },
        result,
        code,
    );
}

/// The access log's result for a request that failed with `code`.
fn result_of(code: ErrorCode) -> accesslog::Outcome {
    match code {
        ErrorCode::BadRequest
        | ErrorCode::VersionMismatch
        | ErrorCode::TooLarge
        | ErrorCode::ShuttingDown
        | ErrorCode::Config
        | ErrorCode::Forbidden
        | ErrorCode::Account => accesslog::Outcome::Refused,
        ErrorCode::NotFound => accesslog::Outcome::Miss,
        ErrorCode::Keychain
        | ErrorCode::KeychainTimeout
        | ErrorCode::Internal
        | ErrorCode::Store => accesslog::Outcome::Error,
    }
}

/// Hands one entry to the access log (never waits: see `Writer::record`), through the session,
/// which may hold it until the caller is identified.
fn record(
    state: &State,
    session: &Session,
    subject: Subject<'_>,
    result: accesslog::Outcome,
    code: Option<&'static str>,
) {
    let Subject {
        op,
        target,
        user,
        purpose,
        account,
    } = subject;
    let (purpose, command) = match purpose {
        None => (None, None),
        Some(Purpose::Check) => (Some(accesslog::Use::Check), None),
        Some(Purpose::Exec { program }) => (Some(accesslog::Use::Exec), Some(program.clone())),
        Some(Purpose::Proxy { destination }) => {
            (Some(accesslog::Use::Proxy), Some(destination.clone()))
        }
    };
    session.log(
        state,
        Event {
            time: SystemTime::now(),
            op,
            result,
            code,
            protocol: target.protocol.clone(),
            host: target.host.clone(),
            // A token used as the user name (`https://ghp_…@github.com`) is never recorded whole.
            username: user.map(|u| crate::text::username(u).into_owned()),
            account: match account {
                AccountNote::Named(a) => Some(crate::text::username(a).into_owned()),
                _ => None,
            },
            caller: Arc::clone(&session.caller),
            channel: Arc::clone(&session.channel),
            purpose,
            command,
        },
    );
}

fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::VersionMismatch => "version_mismatch",
        ErrorCode::Keychain => "keychain",
        ErrorCode::KeychainTimeout => "keychain_timeout",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::ShuttingDown => "shutting_down",
        ErrorCode::Internal => "internal",
        ErrorCode::Config => "config",
        ErrorCode::Store => "store",
        ErrorCode::NotFound => "not_found",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::Account => "account",
    }
}

/// What a `get`, `store` or `erase` is about, as the access log records it.
#[derive(Clone, Copy)]
struct Subject<'a> {
    op: Op,
    target: &'a Target,
    user: Option<&'a str>,
    /// A `get`'s use of the key (`GetFor`).
    purpose: Option<&'a Purpose>,
    /// The account the access log records.
    account: AccountNote<'a>,
}

/// Where the account an entry records comes from.
#[derive(Clone, Copy)]
enum AccountNote<'a> {
    None,
    /// Asked for (or decided) by name.
    Named(&'a str),
    /// The credential found (a query that chose no account).
    FromFound,
    /// The credential stored.
    FromUser,
}

impl<'a> Subject<'a> {
    fn query(op: Op, query: &'a wbl_proto::Query) -> Self {
        Subject {
            op,
            target: &query.target,
            user: query.username.as_deref(),
            purpose: None,
            account: match &query.account {
                wbl_proto::Account::Named(n) => AccountNote::Named(n),
                _ => AccountNote::None,
            },
        }
    }

    /// The subject of a request, when it is a `get`, `store` or `erase`.
    fn of(req: &'a Request) -> Option<Self> {
        match req {
            Request::Get(q) => Some(Subject::query(Op::Get, q)),
            Request::GetFor { query, purpose } => Some(Subject {
                purpose: Some(purpose),
                ..Subject::query(Op::Get, query)
            }),
            Request::Erase(q) => Some(Subject::query(Op::Erase, q)),
            Request::Store(c) => Some(Subject {
                op: Op::Store,
                target: &c.target,
                user: Some(&c.username),
                purpose: None,
                account: AccountNote::None,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wbl_proto::{Credential, Query, Secret};

    use super::*;
    use crate::agent::Limits;
    use crate::keychain::Keychain;
    use crate::keychain::memory::{MemoryBackend, Op};

    fn state_on(mem: &MemoryBackend) -> State {
        let limits = Limits {
            keychain: Duration::from_millis(50),
            ..Limits::default()
        };
        State::new(Keychain::new(Box::new(mem.clone())), limits, "s".into())
    }

    fn key(password: &str) -> Credential {
        Credential::new(Target::new("https", "h"), "api", Secret::from(password))
    }

    fn any_user() -> Query {
        Query {
            target: Target::new("https", "h"),
            username: None,
            account: Default::default(),
        }
    }

    fn get() -> Request {
        Request::Get(any_user())
    }

    fn code(r: &Response) -> Option<ErrorCode> {
        match r {
            Response::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[tokio::test]
    async fn each_request_gets_its_response() {
        let mem = MemoryBackend::volatile();
        let state = state_on(&mem);
        let s = Session::default();
        let stored = answer(&state, &s, Request::Store(key("k"))).await;
        assert_eq!(stored, Response::Stored { persistent: false });
        let got = answer(&state, &s, get()).await;
        assert_eq!(got, Response::Credential(Some(key("k"))));
        let Response::List(list) = answer(&state, &s, Request::List).await else {
            panic!("not a list");
        };
        assert_eq!(list.len(), 1);
        let Response::Status(status) = answer(&state, &s, Request::Status).await else {
            panic!("not a status");
        };
        assert_eq!(
            (
                status.backend.as_str(),
                status.backend_persistent,
                status.stored_entries,
                status.cached_entries,
                status.protocol,
                status.socket.as_str()
            ),
            ("keyutils", false, 1, 1, PROTOCOL_VERSION, "s")
        );
        let erased = answer(&state, &s, Request::Erase(any_user())).await;
        assert_eq!(erased, Response::Erased { count: 1 });
        assert_eq!(answer(&state, &s, get()).await, Response::Credential(None));
        assert!(!*state.shutdown_signal().borrow());
        assert_eq!(
            answer(&state, &s, Request::Shutdown).await,
            Response::ShuttingDown
        );
        assert!(*state.shutdown_signal().borrow());
    }

    #[tokio::test]
    async fn a_forward_gets_its_granted_hosts_and_nothing_else() {
        let mem = MemoryBackend::volatile();
        let state = state_on(&mem);
        let full = Session::default();
        answer(&state, &full, Request::Store(key("k"))).await;
        let other = Credential::new(Target::new("https", "other"), "api", Secret::from("o"));
        answer(&state, &full, Request::Store(other)).await;
        let grant = forward::test_grant(vec![Target::new("https", "h")]);
        let s = Session::new(
            Peer::default(),
            Caller::unknown(),
            Channel::Forward(Arc::clone(&grant)),
        );
        assert_eq!(
            answer(&state, &s, get()).await,
            Response::Credential(Some(key("k")))
        );
        assert_eq!(grant.handed_out_for_test(), 1);
        let ungranted = Request::Get(Query {
            target: Target::new("https", "other"),
            username: None,
            account: Default::default(),
        });
        let refused = [
            ungranted,
            Request::Store(key("new")),
            Request::Erase(any_user()),
            Request::List,
            Request::Status,
            Request::Shutdown,
            Request::Forwards,
            Request::Proxies,
            Request::StoreLogin {
                store: "s".into(),
                secret: None,
            },
            Request::Forward(wbl_proto::ForwardRequest {
                destination: "d".into(),
                hosts: vec![Target::new("https", "other")],
                ttl_secs: None,
                name: None,
                account: None,
            }),
        ];
        for req in refused {
            let what = format!("{req:?}");
            assert_eq!(
                code(&answer(&state, &s, req).await),
                Some(ErrorCode::Forbidden),
                "{what}"
            );
        }
        // Nothing was changed by the refused requests.
        assert!(!*state.shutdown_signal().borrow());
        assert_eq!(
            answer(&state, &full, get()).await,
            Response::Credential(Some(key("k")))
        );
        assert_eq!(grant.handed_out_for_test(), 1);
        // An ended grant gets nothing more.
        grant.end_for_test();
        assert_eq!(
            code(&answer(&state, &s, get()).await),
            Some(ErrorCode::Forbidden)
        );
    }

    #[tokio::test]
    async fn a_forward_hands_out_the_account_of_its_grant_whatever_the_remote_asks() {
        use wbl_proto::Account;
        let mem = MemoryBackend::volatile();
        let state = state_on(&mem);
        let full = Session::default();
        answer(&state, &full, Request::Store(key("k-default"))).await;
        let work = Credential::new(Target::new("https", "h"), "work", Secret::from("k-work"));
        answer(&state, &full, Request::Store(work.clone())).await;
        let asking = |account: Account| {
            Request::Get(Query {
                target: Target::new("https", "h"),
                username: Some("api".into()),
                account,
            })
        };
        let grant = forward::test_grant_of(vec![Target::new("https", "h")], Some("work"));
        let s = Session::new(
            Peer::default(),
            Caller::unknown(),
            Channel::Forward(Arc::clone(&grant)),
        );
        for account in [Account::Any, Account::Only, Account::Named("work".into())] {
            assert_eq!(
                answer(&state, &s, asking(account.clone())).await,
                Response::Credential(Some(work.clone())),
                "{account:?}"
            );
        }
        // Another account by name: refused, saying which one the forward hands out.
        let refused = answer(&state, &s, asking(Account::Named("default".into()))).await;
        assert_eq!(code(&refused), Some(ErrorCode::Forbidden));
        assert!(
            format!("{refused:?}").contains("`work` only"),
            "{refused:?}"
        );
        // Without an account in the grant, the remote's choice stands (and none chosen with
        // two accounts is the account error).
        let open = forward::test_grant(vec![Target::new("https", "h")]);
        let s = Session::new(Peer::default(), Caller::unknown(), Channel::Forward(open));
        assert_eq!(
            code(&answer(&state, &s, asking(Account::Only)).await),
            Some(ErrorCode::Account)
        );
        assert_eq!(
            answer(&state, &s, asking(Account::Named("default".into()))).await,
            Response::Credential(Some(key("k-default")))
        );
    }

    #[tokio::test]
    async fn failures_become_error_responses_with_their_codes() {
        let mem = MemoryBackend::new();
        let state = state_on(&mem);
        let s = Session::default();
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_version: "x".into(),
        };
        assert_eq!(
            code(&answer(&state, &s, hello).await),
            Some(ErrorCode::BadRequest)
        );
        let no_host = Request::Store(Credential::new(
            Target::new("https", ""),
            "api",
            Secret::from("k"),
        ));
        assert_eq!(
            code(&answer(&state, &s, no_host).await),
            Some(ErrorCode::BadRequest)
        );
        mem.fail_when(|op, _| op == Op::List);
        let failed = answer(&state, &s, get()).await;
        assert_eq!(code(&failed), Some(ErrorCode::Keychain));
        mem.heal();
        let hold = mem.hold();
        let hung = answer(&state, &s, Request::List).await;
        assert_eq!(code(&hung), Some(ErrorCode::KeychainTimeout));
        drop(hold);
        // No message carries the secret of the request.
        mem.fail_when(|op, _| op == Op::Save);
        let Response::Error { code, message } =
            answer(&state, &s, Request::Store(key("s3cret-value"))).await
        else {
            panic!("stored despite the failure");
        };
        assert_eq!(code, ErrorCode::Keychain);
        assert!(!message.contains("s3cret-value"), "{message}");
    }

    #[tokio::test]
    async fn an_answered_request_is_recorded_with_its_session() {
        use crate::accesslog::writer::{Options, Writer};
        use crate::accesslog::{Check, Entry, KEEP, Op as LogOp, Outcome};
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        let mem = MemoryBackend::volatile();
        let state = state_on(&mem).with_access_log(Writer::start(Options {
            path: Some(path.clone()),
            max_bytes: 1 << 20,
            keep: KEEP,
        }));
        let caller = Caller {
            uid: Some(1000),
            pid: Some(77),
            exe: Some("/usr/bin/wbl".into()),
            parents: Vec::new(),
            check: Check::Pidfd,
        };
        let s = Session::through(Peer::default(), caller, "ssh:build-box");
        answer(&state, &s, Request::Store(key("s3cret-value"))).await;
        answer(&state, &s, get()).await;
        // No host: refused before the keychain (an empty password is a credential, as git's).
        let hostless = Credential::new(Target::new("https", ""), "api", Secret::from("x"));
        answer(&state, &s, Request::Store(hostless)).await;
        answer(&state, &s, Request::Erase(any_user())).await;
        answer(&state, &s, Request::Erase(any_user())).await;
        answer(&state, &s, Request::List).await;
        state.access_log().close(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret-value"), "{text}");
        let entries: Vec<Entry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(LogOp, Option<Outcome>, Option<&str>)> = entries
            .iter()
            .map(|e| (e.op, e.result, e.code.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (LogOp::Store, Some(Outcome::Ok), None),
                (LogOp::Get, Some(Outcome::Ok), None),
                (LogOp::Store, Some(Outcome::Refused), Some("bad_request")),
                (LogOp::Erase, Some(Outcome::Ok), None),
                (LogOp::Erase, Some(Outcome::Miss), None),
            ]
        );
        // The get named no user name: the entry has the one returned.
        assert_eq!(entries[1].username.as_deref(), Some("api"));
        assert_eq!(entries[1].channel.as_deref(), Some("ssh:build-box"));
        assert_eq!(entries[1].exe.as_deref(), Some("/usr/bin/wbl"));
        assert_eq!(entries[1].host.as_deref(), Some("h"));
    }

    /// The keychain, OpenBao (a fake server) and a directory of files (`agent::files`, wired
    /// in by configuration), each serving `https://h`.
    fn every_store(dir: &std::path::Path) -> Vec<(&'static str, State)> {
        use crate::agent::openbao::tests::{Bao, FakeClock, fake_connect};
        let limits = || Limits {
            keychain: Duration::from_millis(500),
            ..Limits::default()
        };
        let configured = |text: &str| {
            let config = crate::config::parse(std::path::Path::new("config.toml"), text).unwrap();
            let keychain = crate::agent::KeychainStore::new(
                Keychain::new(Box::new(MemoryBackend::volatile())),
                &limits(),
            );
            let bao: Arc<Mutex<Bao>> = Arc::default();
            let router = crate::agent::router::Router::configured(
                keychain,
                &config,
                fake_connect(&bao),
                FakeClock::new(),
            );
            State::with_stores(router, limits(), "s".into())
        };
        vec![
            ("keychain", state_on(&MemoryBackend::volatile())),
            (
                "openbao",
                configured(
                    "[openbao.team]\naddress = \"https://bao.example\"\nauth = \"userpass\"\n\
                     username = \"alice\"\n[[route]]\nhost = \"https://h\"\n\
                     store = \"openbao.team\"\npath = \"p\"\n",
                ),
            ),
            (
                "files",
                configured(&format!(
                    "[files.scratch]\ndir = \"{}\"\n[[route]]\nhost = \"https://h\"\n\
                     store = \"files.scratch\"\npath = \"h\"\n",
                    dir.display()
                )),
            ),
        ]
    }

    /// Nothing for the host: no credential, or (a store that keeps one key per host) a miss
    /// that names the store.
    fn nothing(r: &Response) -> bool {
        matches!(r, Response::Credential(None))
            || matches!(
                r,
                Response::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            )
    }

    #[tokio::test]
    async fn the_same_requests_on_every_store() {
        use crate::accesslog::writer::{Options, Writer};
        use crate::accesslog::{Entry, KEEP, Op as LogOp, Outcome};
        let tmp = tempfile::tempdir().unwrap();
        for (name, state) in every_store(&tmp.path().join("files")) {
            let log = tmp.path().join(format!("{name}.log"));
            let state = state.with_access_log(Writer::start(Options {
                path: Some(log.clone()),
                max_bytes: 1 << 20,
                keep: KEEP,
            }));
            let s = Session::default();
            if name == "openbao" {
                let login = Request::StoreLogin {
                    store: "openbao.team".into(),
                    secret: Some(Secret::from("good")),
                };
                let Response::StoreLoggedIn(session) = answer(&state, &s, login).await else {
                    panic!("{name}: no login");
                };
                assert_eq!(session.store, "openbao.team");
            }
            assert!(nothing(&answer(&state, &s, get()).await), "{name}");
            for k in ["k1", "k2"] {
                let stored = answer(&state, &s, Request::Store(key(k))).await;
                assert!(
                    matches!(stored, Response::Stored { .. }),
                    "{name}: {stored:?}"
                );
                let Response::Credential(Some(c)) = answer(&state, &s, get()).await else {
                    panic!("{name}: nothing after a store");
                };
                assert_eq!(
                    (c.username.as_str(), c.password.expose()),
                    ("api", k),
                    "{name}"
                );
            }
            // Another user's name finds nothing, and erases nothing.
            let bob = Query {
                username: Some("bob".into()),
                account: Default::default(),
                ..any_user()
            };
            assert_eq!(
                answer(&state, &s, Request::Erase(bob)).await,
                Response::Erased { count: 0 },
                "{name}"
            );
            assert_eq!(
                answer(&state, &s, Request::Erase(any_user())).await,
                Response::Erased { count: 1 },
                "{name}"
            );
            assert!(nothing(&answer(&state, &s, get()).await), "{name}");
            // The agent reports where the host is served from.
            let Response::Status(status) = answer(&state, &s, Request::Status).await else {
                panic!("{name}: not a status");
            };
            let served: Vec<&str> = status.served.iter().map(|s| s.store.as_str()).collect();
            match name {
                "keychain" => assert!(served.is_empty(), "{served:?}"),
                kind => assert_eq!(served, [kind]),
            }
            // Each answered request is recorded once, the same way whichever store served it.
            state.access_log().close(Duration::from_secs(5));
            let text = std::fs::read_to_string(&log).unwrap();
            let seen: Vec<(LogOp, Option<Outcome>)> = text
                .lines()
                .map(|l| serde_json::from_str::<Entry>(l).unwrap())
                .map(|e| (e.op, e.result))
                .collect();
            use LogOp::{Erase, Get, Store};
            use Outcome::{Miss, Ok};
            assert_eq!(
                seen,
                [
                    (Get, Some(Miss)),
                    (Store, Some(Ok)),
                    (Get, Some(Ok)),
                    (Store, Some(Ok)),
                    (Get, Some(Ok)),
                    (Erase, Some(Miss)),
                    (Erase, Some(Ok)),
                    (Get, Some(Miss)),
                ],
                "{name}"
            );
        }
    }
}
