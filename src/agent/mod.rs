//! The agent as a library: `run_with(listener, state, shutdown, options)` serves connections
//! until told to stop. `wbl-agent`'s `main` only parses arguments, sets up logging, binds and
//! calls it.

pub mod activation;
mod cache;
pub mod caller;
pub mod cli;
mod config;
pub mod conns;
mod dispatch;
#[cfg(test)]
mod files;
mod forward;
pub mod harden;
mod idle;
mod keychain_store;
pub mod listen;
pub mod openbao;
pub(crate) mod proxy;
mod router;
mod state;
mod store;

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use wbl_proto::{
    Connection, ErrorCode, PROTOCOL_VERSION, ProtoError, RecvLimits, Request, Response,
};

use conns::{ConnectionLimits, HELLO_MAX_FRAME, Phase, Registry, Ticket};

use crate::accesslog::Caller;

pub use config::{DEFAULT_KEYCHAIN_TIMEOUT, Limits};
pub(crate) use dispatch::Channel;
pub use dispatch::{Peer, Session};
pub use keychain_store::KeychainStore;
/// How long a `wbl exec --proxy` port keeps refusing (and logging) requests after its command
/// exited, before it closes.
pub use proxy::ENDED_GRACE as PROXY_ENDED_GRACE;
/// `wbl-agent --proxy-engine`: the process that serves one proxy's grant (started by the
/// agent, never by hand).
pub use proxy::engine::main as proxy_engine_main;
pub use state::State;
pub use store::{Served, Store, StoreError, Stored};

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How [`run_with`] serves beyond its defaults.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop by itself once no connection has been open for this long (`--idle-exit`).
    pub idle_exit: Option<Duration>,
    /// Connection caps; `None` reads them from the environment
    /// ([`ConnectionLimits::from_env`]).
    pub connections: Option<ConnectionLimits>,
}

/// Serves `listener` until `shutdown` completes, a client sends `shutdown` or (with
/// [`RunOptions::idle_exit`]) nobody connected for a while. Stops accepting first, then lets
/// every connection finish the request it is working on.
pub async fn run_with(
    listener: Listener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
    options: RunOptions,
) {
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut stop = state.shutdown_signal();
    let activity = idle::Activity::new();
    let registry = Registry::new(
        options
            .connections
            .unwrap_or_else(ConnectionLimits::from_env),
    );
    let idle = async {
        match options.idle_exit {
            Some(period) => activity.idle_for(period).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            accepted = async {
                registry.room().await;
                listener.accept().await
            } => match accepted {
                Ok(stream) if *state.shutdown_signal().borrow() => {
                    // Asked to stop (by a client) while this connection came in: refuse it.
                    drop(stream);
                    break;
                }
                Ok(stream) => {
                    let ticket = registry.admit();
                    let state = Arc::clone(&state);
                    let spawn = Spawn {
                        _done: done_tx.clone(),
                        registry: Arc::clone(&registry),
                    };
                    let open = activity.open();
                    tokio::spawn(async move {
                        serve(stream, state, Channel::Full, ticket, spawn).await;
                        drop(open);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => {
                tracing::info!("signal received, shutting down");
                state.request_shutdown();
                break;
            }
            _ = &mut idle => {
                tracing::info!(
                    idle_exit_secs = options.idle_exit.map(|d| d.as_secs_f64()),
                    "no connection for the idle-exit period, shutting down"
                );
                state.request_shutdown();
                break;
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    drop(done_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy at shutdown");
    }
}

/// The peer when it runs as our own user; everyone else is turned away (`None`).
fn allowed_peer(stream: &Stream) -> Option<Peer> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let Stream::UdSocket(sock) = stream;
        match crate::sys::peer_credentials(sock.as_fd()) {
            Ok(creds) if creds.uid == crate::sys::euid() => Some(Peer {
                uid: Some(creds.uid),
                pid: creds.pid,
            }),
            Ok(creds) => {
                tracing::warn!(
                    peer_uid = ?Some(creds.uid),
                    peer_pid = ?creds.pid,
                    "refused a connection from another user"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read peer credentials; refusing");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        // Windows: the pipe's ACL admits only the current user.
        let _ = stream;
        Some(Peer::default())
    }
}

/// What a connection task needs to start more connection tasks (a forward's socket): the
/// shutdown drain's sender and the connection registry.
#[derive(Clone)]
pub(crate) struct Spawn {
    /// Held, never sent on: shutdown waits until every clone is dropped.
    _done: tokio::sync::mpsc::Sender<()>,
    #[cfg_attr(not(unix), allow(dead_code))]
    registry: Arc<conns::Registry>,
}

/// One connection: hello first, then requests until the client closes, idles out, is closed
/// to make room for a newer one (see [`conns`]), or the agent shuts down. A connection that
/// opened forwards holds them: it is never closed for idleness or to make room, and their
/// grants end when it ends.
async fn serve(stream: Stream, state: Arc<State>, channel: Channel, ticket: Ticket, spawn: Spawn) {
    let Some(peer) = allowed_peer(&stream) else {
        return;
    };
    // At once: a caller identified later may have exited (see `caller`).
    let mut ident = Ident::Grabbed(caller::grab(&stream, peer));
    let mut session = Session::new(peer, Caller::unknown(), channel);
    session.hold_log();
    let mut conn = Connection::new(stream);
    // Proxies (`--proxy`) opened on this connection: they end with it, like forwards, and
    // before it closes, so a client that waits for the close knows its grant is over.
    let mut proxies: Vec<proxy::Held> = Vec::new();
    converse(
        &mut conn,
        &state,
        &mut session,
        &mut ident,
        ticket,
        spawn,
        &mut proxies,
    )
    .await;
    for p in proxies {
        p.end().await;
    }
    drop(conn);
    // However the connection ended, what it asked is recorded, with what is known of the caller.
    match ident {
        Ident::Parents(id) => session.identified(&state, id.with_parents()),
        Ident::Grabbed(_) | Ident::Done => session.release_log(&state),
    }
}

/// How far a connection's caller is identified: the caller itself is read just before the
/// hello is answered, while it waits for that answer (wbl's own clients make themselves
/// non-dumpable, and so unreadable, once it arrives); its parents once its first request is
/// answered, off the time it waited for that answer. The access log's entries wait in the
/// session until then (`Session::hold_log`).
enum Ident {
    /// The kernel's facts, taken at accept.
    Grabbed(caller::Grabbed),
    /// The caller itself; its parents are still to read.
    Parents(caller::Identified),
    /// Complete.
    Done,
}

impl Ident {
    /// Before the hello's answer: the caller is read, and is the session's.
    fn caller_read(&mut self, session: &mut Session) {
        if let Ident::Grabbed(g) = std::mem::replace(self, Ident::Done) {
            let id = caller::finish(g);
            session.caller = Arc::new(id.caller().clone());
            *self = Ident::Parents(id);
        }
    }

    /// After a request's answer: the parents are read, and the held entries go to the log.
    fn parents_read(&mut self, state: &State, session: &mut Session) {
        if let Ident::Parents(id) = std::mem::replace(self, Ident::Done) {
            session.identified(state, id.with_parents());
        }
    }
}

/// The requests of one connection (see [`serve`]).
async fn converse(
    conn: &mut Connection<Stream>,
    state: &Arc<State>,
    session: &mut Session,
    ident: &mut Ident,
    ticket: Ticket,
    spawn: Spawn,
    proxies: &mut Vec<proxy::Held>,
) {
    let mut stop = state.shutdown_signal();
    let mut greeted = false;
    let mut held: Vec<forward::Held> = Vec::new();
    // A restricted connection ends with its grant.
    let mut grant_ended = match &session.access {
        Channel::Forward(g) => Some(g.ended()),
        Channel::Full => None,
    };
    loop {
        let wait = if !greeted {
            state.limits().hello
        } else if held.is_empty() && proxies.is_empty() {
            state.limits().idle
        } else {
            // Holding grants: until the client closes. A grant past its TTL refuses by itself
            // (its socket stays, to say so, until then).
            Duration::from_secs(forward::MAX_TTL_SECS)
        };
        let grant_gone = async {
            match grant_ended.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|e| *e).await;
                }
                None => std::future::pending().await,
            }
        };
        // Stop first: once the agent is stopping, a connection gets no new work (not even a
        // hello), only `ShuttingDown`; requests already being handled are not in this select.
        let limits = RecvLimits {
            max_frame: if greeted {
                wbl_proto::MAX_FRAME_LEN
            } else {
                HELLO_MAX_FRAME
            },
            budget: Some(ticket.budget()),
        };
        let evicted = ticket.evicted();
        ticket.set_phase(if !held.is_empty() || !proxies.is_empty() {
            // Holding a forward for a `wbl ssh` session: never closed to make room.
            Phase::Busy
        } else if greeted {
            Phase::Idle
        } else {
            Phase::PreHello
        });
        // Input already waiting is read before an eviction is heeded.
        let received = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            _ = grant_gone => return,
            r = tokio::time::timeout(wait, conn.recv_async_limited::<Request>(limits)) => Some(r),
            _ = evicted => {
                tracing::debug!("closing a waiting connection to make room");
                return;
            }
        };
        let Some(received) = received else {
            let bye = Response::error(ErrorCode::ShuttingDown, "the agent is shutting down");
            let _ = reply(conn, &bye, state).await;
            return;
        };
        // A request after the hello (not the hello itself) is answered below.
        let answered_request = greeted;
        let response = match received {
            Err(_idle) => {
                tracing::debug!("closing idle connection");
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Ok(Some(req))) => {
                if !greeted {
                    match req {
                        Request::Hello { protocol, .. } => {
                            greeted = true;
                            ticket.set_phase(Phase::Busy);
                            if protocol != PROTOCOL_VERSION {
                                tracing::info!(
                                    client_protocol = protocol,
                                    "client speaks another protocol version"
                                );
                            }
                            match &session.access {
                                Channel::Full => dispatch::greet(),
                                Channel::Forward(_) => dispatch::greet_forward(),
                            }
                        }
                        _ => {
                            let _ = reply(conn, &dispatch::hello_required(), state).await;
                            return;
                        }
                    }
                } else {
                    ticket.set_phase(Phase::Busy);
                    match (&session.access, req) {
                        (Channel::Full, Request::Forward(fwd)) => {
                            let (response, grant) = dispatch::open_forward(state, fwd, &spawn);
                            held.extend(grant);
                            response
                        }
                        (Channel::Full, Request::Proxy(req)) => {
                            let (response, grant) = proxy::open(state, session, req).await;
                            proxies.extend(grant);
                            response
                        }
                        (Channel::Full, Request::Proxies) => Response::Proxies(proxy::list()),
                        (_, req) => dispatch::answer(state, session, req).await,
                    }
                }
            }
            Ok(Err(e)) if e.is_recoverable() => {
                tracing::debug!(error = %e, "undecodable request");
                Response::error(ErrorCode::BadRequest, format!("bad request: {e}"))
            }
            Ok(Err(e @ (ProtoError::TooLarge(_) | ProtoError::TooLargeHere { .. }))) => {
                tracing::debug!(error = %e, "oversized frame");
                let _ = reply(
                    conn,
                    &Response::error(ErrorCode::TooLarge, e.to_string()),
                    state,
                )
                .await;
                return;
            }
            Ok(Err(ProtoError::Busy)) => {
                tracing::warn!(
                    "receive buffers full; closing a connection in the middle of a frame"
                );
                let busy = Response::error(
                    ErrorCode::Internal,
                    "the agent is receiving too much at once; retry",
                );
                let _ = reply(conn, &busy, state).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "connection error");
                return;
            }
        };
        if greeted && !answered_request {
            // Before the hello's answer: a client of ours stays dumpable (readable) until that
            // answer arrives, and seals itself then (`client::seal`).
            ident.caller_read(session);
        }
        if reply(conn, &response, state).await.is_err() {
            return;
        }
        if answered_request {
            ident.parents_read(state, session);
        }
    }
}

async fn reply(
    conn: &mut Connection<Stream>,
    response: &Response,
    state: &State,
) -> Result<(), ()> {
    match tokio::time::timeout(state.limits().write, conn.send_async(response)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not send a response");
            Err(())
        }
        Err(_) => {
            tracing::debug!("client did not read its response in time");
            Err(())
        }
    }
}
