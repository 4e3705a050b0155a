//! The agent's side of a proxy engine ([`super::engine`]): starts it from the agent's own
//! executable, hands it the grant, waits (bounded) until it listens, writes what it refused to
//! the access log, and ends it. When the grant's connection closes the engine is told `End`
//! and lingers to refuse late requests (while fewer than [`MAX_PROXIES`] linger; beyond, it
//! exits at once); one that outstays its time, or an agent that stops, kills it.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::process::{Child, ChildStdin, ChildStdout};
use wbl_proto::engine::{EngineGrant, EngineRefusal, FromEngine, ToEngine};
use wbl_proto::{Connection, ProxyStatus};

use super::rules::Refusal;
use super::{ENDED_GRACE, MAX_PROXIES};
use crate::accesslog::{Caller, Event, Op, Outcome};
use crate::agent::State;

/// How long an engine may take to start listening.
const START_WAIT: Duration = Duration::from_secs(10);
/// How long past its grace an ended engine may take to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(10);

type ToChild = Connection<tokio::io::Join<tokio::io::Empty, ChildStdin>>;
type FromChild = Connection<tokio::io::Join<ChildStdout, tokio::io::Sink>>;

/// What the access log says of a proxy's refusals, besides the refusal itself.
pub(crate) struct LogAs {
    pub(crate) protocol: String,
    pub(crate) host: String,
    pub(crate) account: String,
    /// `proxy:<destination>`.
    pub(crate) channel: Arc<str>,
}

/// Ends a grant: sent (with where to confirm) or dropped by [`super::Held`].
pub(crate) type End = tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<()>>;

/// A started engine: where it listens, and the handle that ends its grant.
pub(crate) struct Started {
    pub(crate) address: String,
    pub(crate) end: End,
}

/// The proxies that have an engine, open or ending, for `wbl status`, each under a serial
/// number of its own (a name may be taken again once its grant ended).
static LISTED: std::sync::Mutex<Vec<(u64, ProxyStatus)>> = std::sync::Mutex::new(Vec::new());
static SERIAL: AtomicU64 = AtomicU64::new(0);

fn listed() -> std::sync::MutexGuard<'static, Vec<(u64, ProxyStatus)>> {
    LISTED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The proxies open or ending now.
pub(crate) fn list() -> Vec<ProxyStatus> {
    listed().iter().map(|(_, p)| p.clone()).collect()
}

/// A proxy's entry in the list, removed when its engine is gone.
struct Listing(u64);

impl Listing {
    fn add(shown: ProxyStatus) -> Listing {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        listed().push((serial, shown));
        Listing(serial)
    }

    fn change(&self, f: impl FnOnce(&mut ProxyStatus)) {
        if let Some((_, p)) = listed().iter_mut().find(|(s, _)| *s == self.0) {
            f(p);
        }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        listed().retain(|(s, _)| *s != self.0);
    }
}

/// Starts an engine for `grant` and supervises it until it is gone; `shown` is what `wbl
/// status` shows of it (its address is filled in here).
pub(crate) async fn start(
    state: &Arc<State>,
    grant: EngineGrant,
    log: LogAs,
    mut shown: ProxyStatus,
) -> Result<Started, String> {
    let mut command = tokio::process::Command::new(executable()?);
    // Named as the agent in `ps` (not `/proc/self/exe`).
    #[cfg(unix)]
    command.arg0("wbl-agent");
    let mut child = command
        .arg(super::engine::ENGINE_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the proxy engine: {e}"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("cannot start the proxy engine: no pipes".into());
    };
    let mut to: ToChild = Connection::new(tokio::io::join(tokio::io::empty(), stdin));
    let mut from: FromChild = Connection::new(tokio::io::join(stdout, tokio::io::sink()));
    let handshake = async {
        to.send_async(&ToEngine::Grant(grant)).await?;
        from.recv_async::<FromEngine>().await
    };
    // On any error the child is killed as it is dropped.
    let address = match tokio::time::timeout(START_WAIT, handshake).await {
        Ok(Ok(Some(FromEngine::Listening { address }))) => address,
        Ok(Ok(Some(FromEngine::Failed { message }))) => return Err(message),
        Ok(Ok(_) | Err(_)) => return Err("the proxy engine stopped before it listened".into()),
        Err(_) => return Err("the proxy engine did not start listening in time".into()),
    };
    shown.address = address.clone();
    let listing = Listing::add(shown);
    let (end, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(supervise(
        listing,
        child,
        Some(to),
        from,
        ended,
        Arc::clone(state),
        log,
    ));
    Ok(Started { address, end })
}

/// The agent's own executable: an engine is the same program, so both ends of its pipes
/// agree on every message.
fn executable() -> Result<std::path::PathBuf, String> {
    #[cfg(target_os = "linux")]
    {
        // The file the agent was started from, even if it was replaced since (an upgrade).
        Ok(std::path::PathBuf::from("/proc/self/exe"))
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::current_exe().map_err(|e| format!("cannot find the agent's executable: {e}"))
    }
}

/// Engines lingering after their grant now.
static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// A place among the lingering engines, while fewer than [`MAX_PROXIES`] linger.
struct Lingering;

impl Lingering {
    fn take() -> Option<Lingering> {
        LINGERING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PROXIES).then_some(n + 1)
            })
            .ok()
            .map(|_| Lingering)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        LINGERING.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn supervise(
    listing: Listing,
    mut child: Child,
    mut to: Option<ToChild>,
    mut from: FromChild,
    mut ended: tokio::sync::oneshot::Receiver<tokio::sync::oneshot::Sender<()>>,
    state: Arc<State>,
    log: LogAs,
) {
    let mut stop = state.shutdown_signal();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut _place = None;
    // Told once the engine refuses everything (dropped unsent if it exits first).
    let mut confirm: Option<tokio::sync::oneshot::Sender<()>> = None;
    loop {
        let outstayed = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = from.recv_async::<FromEngine>() => match event {
                Ok(Some(FromEngine::Refused(r))) => {
                    listing.change(|p| p.refused += 1);
                    record(&state, &log, r);
                }
                Ok(Some(FromEngine::Ended)) => {
                    if let Some(c) = confirm.take() {
                        let _ = c.send(());
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    if deadline.is_none() {
                        // Its grant still holds: the program's requests now find no proxy.
                        tracing::warn!(
                            channel = %log.channel,
                            "a proxy engine exited before its grant ended"
                        );
                    }
                    break;
                }
            },
            asked = &mut ended, if deadline.is_none() => {
                confirm = asked.ok();
                listing.change(|p| p.ended = true);
                // The grant's connection closed: the engine refuses from now on; it lingers
                // for late requests if there is room, else it goes at once.
                _place = Lingering::take();
                if let Some(mut pipe) = to.take()
                    && _place.is_some()
                {
                    let _ = tokio::time::timeout(Duration::from_secs(5), pipe.send_async(&ToEngine::End)).await;
                    to = Some(pipe);
                }
                deadline = Some(tokio::time::Instant::now() + ENDED_GRACE + EXIT_WAIT);
            }
            () = outstayed => {
                tracing::warn!("a proxy engine outstayed its grant: stopped");
                break;
            }
            _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => break,
        }
    }
    drop(to);
    if tokio::time::timeout(Duration::from_millis(500), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(EXIT_WAIT, child.wait()).await;
    }
}

/// A refusal of the engine in the access log: `op` `proxy`, the reason as `code`, method and
/// path as `command`.
fn record(state: &State, log: &LogAs, r: EngineRefusal) {
    let Some(code) = Refusal::from_code(&r.code) else {
        return;
    };
    let caller = r
        .caller
        .as_deref()
        .and_then(|c| serde_json::from_str::<Caller>(c).ok())
        .unwrap_or_else(Caller::unknown);
    let command: String = crate::text::printable(&r.request)
        .chars()
        .take(220)
        .collect();
    state.access_log.record(Event {
        time: SystemTime::now(),
        op: Op::Proxy,
        result: Outcome::Refused,
        code: Some(code.code()),
        protocol: log.protocol.clone(),
        host: log.host.clone(),
        username: None,
        account: Some(log.account.clone()),
        caller: Arc::new(caller),
        channel: Arc::clone(&log.channel),
        purpose: None,
        command: Some(command),
    });
}
