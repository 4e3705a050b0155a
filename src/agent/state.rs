//! What every connection task shares, in separate parts as mini-redis keeps its `Db` apart
//! from its listener: the stores and their router (the data), the live forwards, the access
//! log, and serving's own concerns (limits, socket, start time, shutdown). Each part is handed
//! only to what needs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::Limits;
use super::forward::Forwards;
use super::keychain_store::KeychainStore;
use super::router::Router;
use crate::accesslog::writer::Writer;
use crate::keychain::Keychain;

/// Serving's own state: limits, the socket, the start time and the shutdown signal.
pub struct Serving {
    limits: Limits,
    started: Instant,
    socket: String,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Serving {
    pub fn new(limits: Limits, socket: String) -> Serving {
        Serving {
            limits,
            started: Instant::now(),
            socket,
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Asks the server loop to stop accepting and wind down.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns `true` when shutdown was requested.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Shared by every connection task.
pub struct State {
    /// The stores and which one serves a target.
    pub stores: Router,
    /// The live forwards (`wbl ssh`).
    pub forwards: Arc<Forwards>,
    /// Where answered `get`s, `store`s and `erase`s are recorded (disabled unless set).
    pub access_log: Writer,
    pub serving: Serving,
}

impl State {
    pub fn new(keychain: Keychain, limits: Limits, socket: String) -> Self {
        State {
            stores: Router::new(KeychainStore::new(keychain, &limits)),
            forwards: Arc::default(),
            access_log: Writer::disabled(),
            serving: Serving::new(limits, socket),
        }
    }

    /// A state over the stores of `stores` (the unit tests' configured routers).
    #[cfg(test)]
    pub(crate) fn with_stores(stores: Router, limits: Limits, socket: String) -> Self {
        State {
            stores,
            forwards: Arc::default(),
            access_log: Writer::disabled(),
            serving: Serving::new(limits, socket),
        }
    }

    /// Records answered requests with `writer` (see `crate::accesslog`).
    pub fn with_access_log(mut self, writer: Writer) -> Self {
        self.access_log = writer;
        self
    }

    /// The access log (never blocks: see `Writer::record`).
    pub fn access_log(&self) -> &Writer {
        &self.access_log
    }

    pub fn limits(&self) -> &Limits {
        self.serving.limits()
    }

    pub fn backend_name(&self) -> &'static str {
        self.stores.keychain().backend_name()
    }

    /// Loads the keychain's index at start-up so the first request is not slowed by it.
    pub async fn preload(&self) {
        self.stores.keychain().preload().await;
    }

    /// Asks the server loop to stop accepting and wind down.
    pub fn request_shutdown(&self) {
        self.serving.request_shutdown();
    }

    /// A receiver that turns `true` when shutdown was requested.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.serving.shutdown_signal()
    }
}
