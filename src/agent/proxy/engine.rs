//! The proxy's own runtime: one thread with a current-thread tokio runtime, started when the
//! first proxy opens and stopped when the last one ends, so an agent that never proxies (or
//! no longer does) runs as it did without it, and a busy upload never delays the agent's
//! answers on its socket. The upstream client (its pool of kept-alive connections) lives and
//! dies with the runtime.

use std::sync::{Arc, Mutex};

use super::upstream::Upstream;

/// The running engine, shared by the proxies open now.
struct Engine {
    handle: tokio::runtime::Handle,
    upstream: Arc<Upstream>,
    /// Proxies open on it.
    users: usize,
    /// Dropped to stop the runtime's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

/// A proxy's hold on the engine: while one exists the engine runs. It may be dropped on any
/// thread, the engine's own included (a loopback listener that outlived its grant, see
/// [`super::serve`]): the runtime then stops once that task yields.
pub(crate) struct Lease {
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) upstream: Arc<Upstream>,
}

impl Lease {
    /// Another hold on the same engine (for a listener that stays a while after its grant).
    pub(crate) fn another(&self) -> Lease {
        let mut engine = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engine.as_mut() {
            // While `self` exists the engine it names is the one running.
            e.users += 1;
        }
        Lease {
            handle: self.handle.clone(),
            upstream: Arc::clone(&self.upstream),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut engine = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engine.as_mut() {
            e.users = e.users.saturating_sub(1);
            if e.users == 0 {
                // Dropping the sender ends the thread's `block_on`; the runtime then drops
                // every task, connection and pooled upstream connection.
                *engine = None;
                tracing::debug!("last proxy closed: proxy engine stopped");
            }
        }
    }
}

/// Takes a lease, starting the engine when none runs.
pub(crate) fn lease() -> std::io::Result<Lease> {
    let mut engine = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    if engine.is_none() {
        *engine = Some(start()?);
    }
    let e = engine.as_mut().expect("started above");
    e.users += 1;
    Ok(Lease {
        handle: e.handle.clone(),
        upstream: Arc::clone(&e.upstream),
    })
}

fn start() -> std::io::Result<Engine> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("wbl-proxy".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
            // Dropping the runtime here cancels what is left (connections of ended grants).
            drop(runtime);
            // The bodies' buffers were freed into this thread's arena, which glibc keeps.
            crate::sys::release_free_heap();
        })?;
    let upstream = {
        let _guard = handle.enter();
        Arc::new(Upstream::new().map_err(std::io::Error::other)?)
    };
    tracing::debug!("proxy engine started");
    Ok(Engine {
        handle,
        upstream,
        users: 0,
        _stop: stop,
    })
}
