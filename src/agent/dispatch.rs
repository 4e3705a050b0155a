//! The one place where requests become domain calls and domain results become wire
//! [`Response`]s: exactly one response per request.
//!
//! Every answered request passes through [`answer`] with the connection's [`Session`], so a
//! rule about who may ask what (a restricted channel) belongs in [`Session`] and is checked
//! at the top of [`answer`], and anything that must see each answered `get`, `store` or
//! `erase` with its caller (an access log) hooks into [`audit`].

use wbl_proto::{AgentStatus, ErrorCode, PROTOCOL_VERSION, Request, Response, Target};

use super::State;
use super::state::AgentError;

/// Who is on the other end of a connection, as the kernel reports it (`SO_PEERCRED`). Unknown
/// fields are `None` (Windows: the pipe's ACL admits only the current user).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

/// What the agent knows about one connection while answering its requests.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub peer: Peer,
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

/// The response to a connection's first request when it is not a hello.
pub(crate) fn hello_required() -> Response {
    Response::error(
        ErrorCode::BadRequest,
        "the first request on a connection must be hello",
    )
}

/// Answers one request of a greeted connection. The hello exchange itself is the connection
/// loop's (`mod.rs`), which owns the handshake.
pub(crate) async fn answer(state: &State, session: &Session, req: Request) -> Response {
    match req {
        // A second hello on the same connection is a client bug.
        Request::Hello { .. } => {
            Response::error(ErrorCode::BadRequest, "hello was already exchanged")
        }
        Request::Get(query) => {
            match state.openbao().route_for(&query.target) {
                Err(refused) => return *refused,
                Ok(Some(route)) => {
                    let r = state.openbao().get(state, &route, &query).await;
                    audit_routed(
                        session,
                        Access::Get,
                        &query.target,
                        query.username.as_deref(),
                        &r,
                    );
                    return r;
                }
                Ok(None) => {}
            }
            let result = state.get(&query).await;
            audit(
                session,
                Access::Get,
                &query.target,
                query.username.as_deref(),
                result.as_ref().map(|c| Outcome::Found(c.is_some())),
            );
            result.map_or_else(error, Response::Credential)
        }
        Request::Store(cred) => {
            let (target, user) = (cred.target.clone(), cred.username.clone());
            match state.openbao().route_for(&target) {
                Err(refused) => return *refused,
                Ok(Some(route)) if cred.has_secret() => {
                    let r = state.openbao().store(state, &route, cred).await;
                    audit_routed(session, Access::Store, &target, Some(&user), &r);
                    return r;
                }
                _ => {}
            }
            let result = state.store(cred).await;
            audit(
                session,
                Access::Store,
                &target,
                Some(&user),
                result.as_ref().map(|_| Outcome::Stored),
            );
            result.map_or_else(error, |s| Response::Stored {
                persistent: s.persistent,
            })
        }
        Request::Erase(query) => {
            match state.openbao().route_for(&query.target) {
                Err(refused) => return *refused,
                Ok(Some(route)) => {
                    let r = state.openbao().erase(state, &route, &query).await;
                    audit_routed(
                        session,
                        Access::Erase,
                        &query.target,
                        query.username.as_deref(),
                        &r,
                    );
                    return r;
                }
                Ok(None) => {}
            }
            let result = state.erase(&query).await;
            audit(
                session,
                Access::Erase,
                &query.target,
                query.username.as_deref(),
                result.as_ref().map(|n| Outcome::Erased(*n)),
            );
            result.map_or_else(error, |count| Response::Erased { count })
        }
        Request::List => state.list().await.map_or_else(error, Response::List),
        Request::Status => {
            tracing::debug!(peer_pid = ?session.peer.pid, "status");
            Response::Status(status(state))
        }
        Request::Shutdown => {
            tracing::info!(peer_pid = ?session.peer.pid, "shutdown requested by a client");
            state.request_shutdown();
            Response::ShuttingDown
        }
        Request::OpenBaoLogin { server, secret } => {
            tracing::debug!(%server, peer_pid = ?session.peer.pid, "openbao login");
            state.openbao().login(state, &server, secret).await
        }
    }
}

/// The wire form of a failure.
fn error(e: AgentError) -> Response {
    let code = match &e {
        AgentError::NoTarget => ErrorCode::BadRequest,
        AgentError::Keychain(_) => ErrorCode::Keychain,
        AgentError::KeychainTimeout { .. } => ErrorCode::KeychainTimeout,
        AgentError::Internal => ErrorCode::Internal,
    };
    Response::error(code, e.to_string())
}

fn status(state: &State) -> AgentStatus {
    let (cached, stored) = state.counts();
    let cached = cached + state.openbao().cached();
    AgentStatus {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        backend: state.backend_name().to_owned(),
        backend_persistent: state.backend_persistent(),
        uptime_secs: state.uptime().as_secs(),
        cached_entries: cached,
        stored_entries: stored,
        socket: state.socket().to_owned(),
    }
}

/// A request that reads or changes a credential.
#[derive(Debug, Clone, Copy)]
enum Access {
    Get,
    Store,
    Erase,
}

/// How it went, without any secret.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// `get`: whether a credential was returned.
    Found(bool),
    Stored,
    /// `erase`: how many credentials existed.
    Erased(u32),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Found(true) => f.write_str("found"),
            Outcome::Found(false) => f.write_str("none"),
            Outcome::Stored => f.write_str("stored"),
            Outcome::Erased(n) => write!(f, "erased {n}"),
        }
    }
}

/// Sees every answered `get`, `store` and `erase` with its caller: today a debug log line.
fn audit(
    session: &Session,
    access: Access,
    target: &Target,
    user: Option<&str>,
    outcome: Result<Outcome, &AgentError>,
) {
    match outcome {
        Ok(outcome) => tracing::debug!(
            ?access,
            %target,
            ?user,
            %outcome,
            peer_pid = ?session.peer.pid,
            "answered"
        ),
        Err(e) => tracing::debug!(
            ?access,
            %target,
            ?user,
            error = %e,
            peer_pid = ?session.peer.pid,
            "failed"
        ),
    }
}

/// [`audit`] for a request answered by the OpenBao store, which answers with a response.
fn audit_routed(
    session: &Session,
    access: Access,
    target: &Target,
    user: Option<&str>,
    response: &Response,
) {
    let outcome = match response {
        Response::Credential(c) => Outcome::Found(c.is_some()),
        Response::Stored { .. } => Outcome::Stored,
        Response::Erased { count } => Outcome::Erased(*count),
        Response::Error { message, .. } => {
            tracing::debug!(?access, %target, ?user, error = %message, peer_pid = ?session.peer.pid, store = "openbao", "failed");
            return;
        }
        _ => return,
    };
    tracing::debug!(?access, %target, ?user, %outcome, peer_pid = ?session.peer.pid, store = "openbao", "answered");
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
}
