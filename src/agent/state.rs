//! The agent's shared state and its domain operations: `get`, `store`, `erase` and `list` over
//! the keychain with the cache in front of it. Results are domain values and [`AgentError`]s;
//! turning them into wire responses is `dispatch.rs`'s job.
//!
//! Invariant: every keychain call runs under `keychain_lock`, on a blocking thread, bounded by
//! [`Limits::keychain`], and the cache is updated under that same lock only after the keychain
//! call succeeded. So a warm `get` never touches the keychain, a `store` that returns `Ok` means
//! the keychain has it, and a `get` never returns a value older than the last acknowledged
//! `store`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wbl_proto::{Credential, CredentialInfo, Query, Target};

use super::cache::{Cache, EntryKey, Known, Lookup, expired, now_unix};
use super::config::Limits;
use crate::keychain::{ItemKind, Keychain, KeychainError};

/// Why an operation of the agent failed. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A credential to store has no protocol or no host.
    #[error("a credential needs a protocol and a host")]
    NoTarget,
    /// The keychain refused or failed.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The keychain did not answer within [`Limits::keychain`].
    #[error(
        "the keychain ({backend}) did not answer within {} s; is it locked or hung?",
        .after.as_secs_f64()
    )]
    KeychainTimeout {
        backend: &'static str,
        after: Duration,
    },
    /// A keychain call panicked or was cancelled.
    #[error("a keychain operation failed unexpectedly")]
    Internal,
}

/// What a successful `store` tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when the store that took the credential forgets it at reboot (kernel keyutils).
    pub persistent: bool,
}

/// Shared by every connection task.
pub struct State {
    /// The one store today. Every operation on a credential finds its store through
    /// [`State::keychain_for`], so routing some hosts to another store changes that function
    /// (and `ensure_loaded`, which reads every store's index), not the operations.
    keychain: Arc<Keychain>,
    cache: RwLock<Cache>,
    keychain_lock: tokio::sync::Mutex<()>,
    limits: Limits,
    started: Instant,
    socket: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    forwards: Arc<crate::agent::forward::Forwards>,
    /// Where answered `get`s, `store`s and `erase`s are recorded (disabled unless set).
    access_log: crate::accesslog::writer::Writer,
    /// Hosts routed by `config.toml` to OpenBao: answered by that store (with its own cache
    /// and TTL) in `dispatch.rs` before any of the operations below is called.
    openbao: crate::agent::openbao::OpenBaoStore,
}

impl State {
    pub fn new(keychain: Keychain, limits: Limits, socket: String) -> Self {
        State {
            keychain: Arc::new(keychain),
            cache: RwLock::new(Cache::default()),
            keychain_lock: tokio::sync::Mutex::new(()),
            limits,
            started: Instant::now(),
            socket,
            shutdown: tokio::sync::watch::channel(false).0,
            forwards: Arc::default(),
            access_log: crate::accesslog::writer::Writer::disabled(),
            openbao: crate::agent::openbao::OpenBaoStore::new(),
        }
    }

    /// Records answered requests with `writer` (see `crate::accesslog`).
    pub fn with_access_log(mut self, writer: crate::accesslog::writer::Writer) -> Self {
        self.access_log = writer;
        self
    }

    /// The access log (never blocks: see `Writer::record`).
    pub fn access_log(&self) -> &crate::accesslog::writer::Writer {
        &self.access_log
    }

    /// The OpenBao store: routes by host, its servers' tokens and its cache.
    pub fn openbao(&self) -> &crate::agent::openbao::OpenBaoStore {
        &self.openbao
    }

    /// One keychain operation outside the credential cache (the OpenBao store's tokens), under
    /// the same lock and time bound as every other.
    pub(crate) async fn keychain_call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, AgentError> {
        let _guard = self.keychain_lock.lock().await;
        self.with_keychain(&self.keychain, op).await
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn backend_name(&self) -> &'static str {
        self.keychain.backend().kind().name()
    }

    pub fn backend_persistent(&self) -> bool {
        self.keychain.backend().persistent()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The live forwards (`wbl ssh`).
    pub fn forwards(&self) -> &Arc<crate::agent::forward::Forwards> {
        &self.forwards
    }

    /// Asks the server loop to stop accepting and wind down.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns `true` when shutdown was requested.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The store that holds `target`'s credentials.
    fn keychain_for(&self, _target: &Target) -> &Arc<Keychain> {
        &self.keychain
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one blocking keychain operation on a blocking thread, bounded by the timeout.
    async fn with_keychain<T: Send + 'static>(
        &self,
        keychain: &Arc<Keychain>,
        op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, AgentError> {
        let backend = keychain.backend().kind().name();
        let keychain = Arc::clone(keychain);
        let task = tokio::task::spawn_blocking(move || op(&keychain));
        match tokio::time::timeout(self.limits.keychain, task).await {
            Ok(Ok(result)) => result.map_err(AgentError::from),
            Ok(Err(_join)) => Err(AgentError::Internal),
            Err(_elapsed) => {
                tracing::error!(
                    timeout_secs = self.limits.keychain.as_secs_f64(),
                    "keychain did not answer in time"
                );
                Err(AgentError::KeychainTimeout {
                    backend,
                    after: self.limits.keychain,
                })
            }
        }
    }

    /// Reads the keychain's index into the cache if that has not happened yet. Call with
    /// `keychain_lock` held.
    async fn ensure_loaded(&self) -> Result<(), AgentError> {
        if self.read_cache().is_loaded() {
            return Ok(());
        }
        let mut index = self.with_keychain(&self.keychain, |k| k.list()).await?;
        // The OpenBao store's own tokens are not credentials to serve or list.
        index.retain(|(info, _)| info.target.protocol != crate::agent::openbao::TOKEN_PROTOCOL);
        let credentials = index.len();
        self.write_cache().load_index(index);
        tracing::debug!(credentials, "keychain index loaded");
        Ok(())
    }

    /// Loads the index at start-up so the first request is not slowed by it; failures are
    /// logged and retried on demand.
    pub async fn preload(&self) {
        let _guard = self.keychain_lock.lock().await;
        if let Err(e) = self.ensure_loaded().await {
            tracing::warn!(message = %e, "could not read the keychain index yet");
        }
    }

    /// The first credential matching `query` (by path, then user name) that has not expired.
    pub async fn get(&self, query: &Query) -> Result<Option<Credential>, AgentError> {
        // Fast path: index loaded and the answer cached; no lock, no keychain call.
        match self.read_cache().lookup(query, now_unix()) {
            Lookup::Found(c) => return Ok(Some(c)),
            Lookup::Absent => return Ok(None),
            Lookup::Unknown => {}
        }
        let _guard = self.keychain_lock.lock().await;
        self.ensure_loaded().await?;
        let candidates: Vec<(EntryKey, Known)> = self
            .read_cache()
            .matches(query)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((path, user), known) in candidates {
            let cred = match known.cached {
                Some(c) => Some(*c),
                None => {
                    let target = Target {
                        path,
                        ..query.target.clone()
                    };
                    let keychain = self.keychain_for(&target);
                    let (t, u, extras) = (target.clone(), user.clone(), known.extras);
                    match self
                        .with_keychain(keychain, move |k| k.load(&t, &u, &extras))
                        .await?
                    {
                        Some(c) => {
                            self.write_cache().remember_loaded(c.clone());
                            Some(c)
                        }
                        // Gone from the keychain behind our back: forget it.
                        None => {
                            self.write_cache().remove(&target, &user);
                            None
                        }
                    }
                }
            };
            if let Some(c) = cred.filter(|c| !expired(c, now_unix())) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Writes to the keychain, then the cache. A credential needs a protocol and a host; its
    /// password may be empty (git stores empty user names and passwords, e.g. for SSO hosts).
    pub async fn store(&self, cred: Credential) -> Result<Stored, AgentError> {
        if cred.target.host.is_empty() || cred.target.protocol.is_empty() {
            return Err(AgentError::NoTarget);
        }
        let _guard = self.keychain_lock.lock().await;
        // The index must be known before we add to it, or a later load would drop this entry.
        self.ensure_loaded().await?;
        let keychain = self.keychain_for(&cred.target);
        let persistent = keychain.backend().persistent();
        let to_store = cred.clone();
        let existing: Vec<ItemKind> = self
            .read_cache()
            .get(&cred.target, &cred.username)
            .map(|k| k.extras.clone())
            .unwrap_or_default();
        self.with_keychain(keychain, move |k| k.store(&to_store, &existing))
            .await?;
        self.write_cache().remember_stored(cred);
        Ok(Stored { persistent })
    }

    /// Removes every credential matching `query` from the keychain, then the cache; how many
    /// existed. On a failure, the credentials erased before it stay erased.
    pub async fn erase(&self, query: &Query) -> Result<u32, AgentError> {
        let _guard = self.keychain_lock.lock().await;
        self.ensure_loaded().await?;
        let keys: Vec<(EntryKey, Vec<ItemKind>)> = self
            .read_cache()
            .matches(query)
            .map(|(k, known)| (k.clone(), known.extras.clone()))
            .collect();
        let mut count = 0;
        for ((path, user), extras) in keys {
            let target = Target {
                path,
                ..query.target.clone()
            };
            let keychain = self.keychain_for(&target);
            let (t, u) = (target.clone(), user.clone());
            let existed = self
                .with_keychain(keychain, move |k| k.erase(&t, &u, &extras))
                .await?;
            count += u32::from(existed);
            self.write_cache().remove(&target, &user);
        }
        Ok(count)
    }

    /// Names and metadata of every stored credential, never secrets.
    pub async fn list(&self) -> Result<Vec<CredentialInfo>, AgentError> {
        {
            let _guard = self.keychain_lock.lock().await;
            self.ensure_loaded().await?;
        }
        Ok(self.read_cache().infos())
    }

    /// (secrets cached, credentials known).
    pub fn counts(&self) -> (u64, u64) {
        self.read_cache().counts()
    }
}

#[cfg(test)]
mod tests;
