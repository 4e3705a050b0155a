//! The proxy engine: the process (`wbl-agent --proxy-engine`, started by the agent from its
//! own executable) that serves one proxy's grant. The agent hands it the grant on its stdin
//! ([`wbl_proto::engine`]); it listens, answers the HTTP side ([`super::serve`]) on a
//! current-thread runtime, reports what it refused on its stdout, and ends with the grant. So
//! the HTTP parser that faces the proxy's (untrusted) client never runs inside the agent and
//! holds one key, not the agent's whole cache; and an agent that no longer proxies has none of
//! the proxy's code or buffers in its memory.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use wbl_proto::Connection;
use wbl_proto::engine::{EngineGrant, EngineListen, FromEngine, ToEngine};
use zeroize::Zeroizing;

use super::serve::{self, Grant};
use super::upstream::Upstream;

/// The argument that makes `wbl-agent` an engine (`cli::Args::proxy_engine`).
pub const ENGINE_ARG: &str = "--proxy-engine";

/// How long an engine waits for its grant before giving up.
const GRANT_WAIT: Duration = Duration::from_secs(10);

/// `wbl-agent --proxy-engine`: hardens the process like the agent, then serves the grant read
/// from stdin.
pub fn main() -> ExitCode {
    crate::agent::harden::harden_process();
    crate::logging::init("info");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wbl-agent (proxy engine): cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Whatever is still running (connections of the ended grant, the thread blocked reading
    // stdin, which the agent keeps open) ends with the process, not waited for.
    runtime.shutdown_background();
    code
}

/// Frames to the agent (stdout), in order, from every task.
type Events = tokio::sync::mpsc::Sender<FromEngine>;

async fn run() -> ExitCode {
    let mut input = Connection::new(tokio::io::join(tokio::io::stdin(), tokio::io::sink()));
    let (events, outgoing) = tokio::sync::mpsc::channel::<FromEngine>(256);
    let writer = tokio::spawn(write_events(outgoing));
    let spec = match tokio::time::timeout(GRANT_WAIT, input.recv_async::<ToEngine>()).await {
        Ok(Ok(Some(ToEngine::Grant(g)))) => g,
        Ok(Ok(Some(ToEngine::End) | None)) => return ExitCode::SUCCESS,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the proxy engine got no grant");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            tracing::warn!("the proxy engine got no grant in time");
            return ExitCode::FAILURE;
        }
    };
    let (grant, serving) = match start(spec, &events).await {
        Ok(started) => started,
        Err(message) => {
            let _ = events.send(FromEngine::Failed { message }).await;
            drop(events);
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
            return ExitCode::FAILURE;
        }
    };
    // Until the agent says the grant ended, or is gone (end of input without `End`).
    let ended_by_agent = matches!(
        input.recv_async::<ToEngine>().await,
        Ok(Some(ToEngine::End))
    );
    grant.ended.send_replace(true);
    // A restricted socket's file is the agent's to remove (`proxy::Held`): it frees the name
    // for the next proxy, whose socket a late removal here would take away.
    if ended_by_agent {
        // The agent waits for this before it tells the proxy's client the grant is over.
        let _ = events.send(FromEngine::Ended).await;
        // A loopback listener lingers to refuse and log late requests; the agent's going
        // away cuts that short (nobody would log them).
        tokio::select! {
            _ = serving => {}
            _ = input.recv_async::<ToEngine>() => {}
        }
    } else {
        tracing::debug!(proxy = %grant.id, "the agent is gone: proxy engine stops");
    }
    drop(events);
    drop(grant);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    ExitCode::SUCCESS
}

/// Builds the grant, listens, tells the agent where, and starts serving (the task ends when
/// the listener closes).
async fn start(
    spec: EngineGrant,
    events: &Events,
) -> Result<(Arc<Grant>, tokio::task::JoinHandle<()>), String> {
    let upstream = url::Url::parse(&spec.upstream)
        .map_err(|e| format!("`{}` is not a URL: {e}", spec.upstream))?;
    // Base64 is all visible ASCII: always a valid header value.
    let mut authorization = hyper::header::HeaderValue::from_str(spec.authorization.expose())
        .map_err(|_| "the stored key cannot be sent in a header".to_owned())?;
    authorization.set_sensitive(true);
    let grant = Arc::new(Grant {
        id: spec.id,
        destination: spec.destination,
        placeholder: Zeroizing::new(spec.placeholder.expose().to_owned()),
        authorization,
        upstream,
        expires: spec
            .ttl_secs
            .map(|t| Instant::now() + Duration::from_secs(t)),
        ended: tokio::sync::watch::channel(false).0,
    });
    let upstream = Arc::new(Upstream::new(&grant.upstream)?);
    let (listener, address) = match &spec.listen {
        EngineListen::Loopback => {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
            let addr = l
                .local_addr()
                .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
            (serve::Listener::Tcp(l), addr.to_string())
        }
        #[cfg(unix)]
        EngineListen::Socket(path) => {
            let path = std::path::Path::new(path);
            let l = bind_socket(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            (serve::Listener::Unix(l), path.display().to_string())
        }
        #[cfg(not(unix))]
        EngineListen::Socket(_) => {
            return Err("a proxy for ssh needs Unix domain sockets; this platform has none".into());
        }
    };
    events
        .send(FromEngine::Listening { address })
        .await
        .map_err(|_| "the agent is gone".to_owned())?;
    let serving = serve::start(listener, &grant, upstream, events.clone());
    Ok((grant, serving))
}

/// A restricted socket for `ssh -R` in the agent's private directory.
#[cfg(unix)]
fn bind_socket(path: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    crate::agent::listen::restricted(path, |p| {
        let l = std::os::unix::net::UnixListener::bind(p)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
}

/// Writes the events to stdout as frames until every sender is gone or the agent stops
/// reading.
async fn write_events(mut outgoing: tokio::sync::mpsc::Receiver<FromEngine>) {
    let mut out = Connection::new(tokio::io::join(tokio::io::empty(), tokio::io::stdout()));
    while let Some(event) = outgoing.recv().await {
        if out.send_async(&event).await.is_err() {
            break;
        }
    }
    let _ = out.into_inner().shutdown().await;
}
