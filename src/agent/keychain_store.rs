//! The keychain store: `get`, `store`, `erase` and `list` over the OS keychain with the cache
//! in front of it, and the handle through which the OpenBao store keeps its tokens there.
//! Results are domain values and [`StoreError`]s; turning them into wire responses is
//! `dispatch.rs`'s job.
//!
//! Invariant: every keychain call runs under `keychain_lock`, on a blocking thread, bounded by
//! [`Limits::keychain`], and the cache is updated under that same lock only after the keychain
//! call succeeded. So a warm `get` never touches the keychain, a `store` that returns `Ok` means
//! the keychain has it, and a `get` never returns a value older than the last acknowledged
//! `store`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use std::borrow::Cow;

use wbl_proto::{Account, Credential, CredentialInfo, Query, Target};

use super::cache::{Cache, EntryKey, Known, Lookup, expired, now_unix};
use super::config::Limits;
use super::store::{self, Served, Store, StoreError, StoreFuture, Stored};
use crate::keychain::{ItemKind, Keychain, KeychainError};

/// The OS keychain and the cache in front of it.
pub struct KeychainStore {
    keychain: Arc<Keychain>,
    cache: RwLock<Cache>,
    keychain_lock: Arc<tokio::sync::Mutex<()>>,
    /// How long one keychain call may take ([`Limits::keychain`]).
    timeout: Duration,
}

/// The keychain protocol under which the [`TokenKeeper`] keeps OpenBao tokens (`openbao://<server>`, with the
/// address that issued the token as the user name); the agent's credential index leaves these
/// items out.
pub const TOKEN_PROTOCOL: &str = "openbao";

/// What the OpenBao store is given to keep its tokens in the keychain: keychain calls outside
/// the credential cache, under the same lock and time bound as every other.
#[derive(Clone)]
pub struct TokenKeeper {
    keychain: Arc<Keychain>,
    keychain_lock: Arc<tokio::sync::Mutex<()>>,
    timeout: Duration,
}

impl TokenKeeper {
    /// One keychain operation, bounded.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _guard = self.keychain_lock.lock().await;
        bounded(&self.keychain, self.timeout, op).await
    }
}

/// Runs one blocking keychain operation on a blocking thread, bounded by `timeout`.
async fn bounded<T: Send + 'static>(
    keychain: &Arc<Keychain>,
    timeout: Duration,
    op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, StoreError> {
    let backend = keychain.backend().kind().name();
    let keychain = Arc::clone(keychain);
    let task = tokio::task::spawn_blocking(move || op(&keychain));
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result.map_err(StoreError::from),
        Ok(Err(_join)) => Err(StoreError::Internal),
        Err(_elapsed) => {
            tracing::error!(
                timeout_secs = timeout.as_secs_f64(),
                "keychain did not answer in time"
            );
            Err(StoreError::KeychainTimeout {
                backend,
                after: timeout,
            })
        }
    }
}

impl KeychainStore {
    pub fn new(keychain: Keychain, limits: &Limits) -> Self {
        KeychainStore {
            keychain: Arc::new(keychain),
            cache: RwLock::new(Cache::default()),
            keychain_lock: Arc::default(),
            timeout: limits.keychain,
        }
    }

    /// A handle for keeping other things than credentials (OpenBao tokens) in the keychain.
    pub fn token_keeper(&self) -> TokenKeeper {
        TokenKeeper {
            keychain: Arc::clone(&self.keychain),
            keychain_lock: Arc::clone(&self.keychain_lock),
            timeout: self.timeout,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        self.keychain.backend().kind().name()
    }

    pub fn backend_persistent(&self) -> bool {
        self.keychain.backend().persistent()
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn with_keychain<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, StoreError> {
        bounded(&self.keychain, self.timeout, op).await
    }

    /// Reads the keychain's index into the cache if that has not happened yet. Call with
    /// `keychain_lock` held.
    async fn ensure_loaded(&self) -> Result<(), StoreError> {
        if self.read_cache().is_loaded() {
            return Ok(());
        }
        let mut index = self.with_keychain(|k| k.list()).await?;
        // The OpenBao store's own tokens are not credentials to serve or list.
        index.retain(|(info, _)| info.target.protocol != TOKEN_PROTOCOL);
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
    pub async fn get(&self, query: &Query) -> Result<Option<Credential>, StoreError> {
        let Some(query) = self.by_account(query).await? else {
            return Ok(None);
        };
        let query = &*query;
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
                    let (t, u, extras) = (target.clone(), user.clone(), known.extras);
                    match self.with_keychain(move |k| k.load(&t, &u, &extras)).await? {
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

    /// `query` by user name (see [`store::by_account`]): the accounts of its host are read from
    /// the index, loaded first when it is not yet (a warm query takes no lock).
    async fn by_account<'q>(&self, query: &'q Query) -> Result<Option<Cow<'q, Query>>, StoreError> {
        if query.account == Account::Any {
            return Ok(Some(Cow::Borrowed(query)));
        }
        if let Some(users) = self.read_cache().users(&query.target) {
            return Ok(store::by_account(query, &users)?.map(Cow::Owned));
        }
        {
            let _guard = self.keychain_lock.lock().await;
            self.ensure_loaded().await?;
        }
        let cache = self.read_cache();
        let users = cache.users(&query.target).unwrap_or_default();
        Ok(store::by_account(query, &users)?.map(Cow::Owned))
    }

    /// Writes to the keychain, then the cache. A credential needs a protocol and a host; its
    /// password may be empty (git stores empty user names and passwords, e.g. for SSO hosts).
    pub async fn store(&self, cred: Credential) -> Result<Stored, StoreError> {
        if cred.target.host.is_empty() || cred.target.protocol.is_empty() {
            return Err(StoreError::NoTarget);
        }
        let _guard = self.keychain_lock.lock().await;
        // The index must be known before we add to it, or a later load would drop this entry.
        self.ensure_loaded().await?;
        let persistent = self.backend_persistent();
        let to_store = cred.clone();
        let existing: Vec<ItemKind> = self
            .read_cache()
            .get(&cred.target, &cred.username)
            .map(|k| k.extras.clone())
            .unwrap_or_default();
        self.with_keychain(move |k| k.store(&to_store, &existing))
            .await?;
        self.write_cache().remember_stored(cred);
        Ok(Stored { persistent })
    }

    /// Removes every credential matching `query` from the keychain, then the cache; how many
    /// existed. On a failure, the credentials erased before it stay erased.
    pub async fn erase(&self, query: &Query) -> Result<u32, StoreError> {
        let Some(query) = self.by_account(query).await? else {
            return Ok(0);
        };
        let query = &*query;
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
            let (t, u) = (target.clone(), user.clone());
            let existed = self
                .with_keychain(move |k| k.erase(&t, &u, &extras))
                .await?;
            count += u32::from(existed);
            self.write_cache().remove(&target, &user);
        }
        Ok(count)
    }

    /// Names and metadata of every stored credential, never secrets.
    pub async fn list(&self) -> Result<Vec<CredentialInfo>, StoreError> {
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

impl Store for KeychainStore {
    fn get<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(KeychainStore::get(self, query))
    }

    fn store(&self, cred: Credential) -> StoreFuture<'_, Stored> {
        Box::pin(KeychainStore::store(self, cred))
    }

    fn erase<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, u32> {
        Box::pin(KeychainStore::erase(self, query))
    }

    fn list(&self) -> StoreFuture<'_, Vec<CredentialInfo>> {
        Box::pin(KeychainStore::list(self))
    }

    fn describe(&self) -> Served {
        Served {
            kind: "keychain".into(),
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests;
