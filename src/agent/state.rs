//! The agent's shared state: the keychain, the in-memory cache in front of it, and the rules
//! that keep the two consistent.
//!
//! Invariant: every keychain call runs under `keychain_lock`, and the cache is updated under
//! that same lock only after the keychain call succeeded. So a warm `get` never touches the
//! keychain, and a `get` never returns a value older than the last acknowledged `store`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wbl_proto::{Credential, CredentialInfo, ErrorCode, Query, Response, Target};

use crate::keychain::{ItemKind, Keychain, KeychainError};

/// Default bound on one keychain operation.
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Time bounds that protect the agent from stuck keychains and slow or hostile clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A new connection must say hello within this (`WBL_HELLO_TIMEOUT`, default 5 s).
    pub hello: Duration,
    /// A greeted connection idle for this long is closed (`WBL_IDLE_TIMEOUT`, default 30 s).
    pub idle: Duration,
    /// Writing one response may take this long (`WBL_WRITE_TIMEOUT`, default 10 s): a client
    /// that never reads its answers is dropped.
    pub write: Duration,
    /// One keychain operation (`WBL_KEYCHAIN_TIMEOUT`, default 5 s).
    pub keychain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hello: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            write: Duration::from_secs(10),
            keychain: DEFAULT_KEYCHAIN_TIMEOUT,
        }
    }
}

impl Limits {
    /// Defaults, each overridable by its environment variable (seconds, may be fractional).
    pub fn from_env() -> Self {
        fn secs(var: &str, default: Duration) -> Duration {
            std::env::var(var)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .unwrap_or(default)
        }
        let d = Limits::default();
        Limits {
            hello: secs("WBL_HELLO_TIMEOUT", d.hello),
            idle: secs("WBL_IDLE_TIMEOUT", d.idle),
            write: secs("WBL_WRITE_TIMEOUT", d.write),
            keychain: secs("WBL_KEYCHAIN_TIMEOUT", d.keychain),
        }
    }
}

/// What the agent knows to be stored for one (target, user name).
#[derive(Debug, Default, Clone)]
struct Known {
    extras: Vec<ItemKind>,
    /// The whole credential once it has been read from (or written to) the keychain. Boxed:
    /// most entries of a large keychain are never read, and an unboxed `Credential` would make
    /// every entry ten times bigger.
    cached: Option<Box<Credential>>,
}

/// (path, user name): a credential's key within one (protocol, host).
type EntryKey = (Option<String>, String);
/// What is known for one (protocol, host), sorted by (path, user name). A vector, not a
/// `BTreeMap`: nearly every host has one entry, and a `BTreeMap` allocates a node for eleven.
type HostEntries = Vec<(EntryKey, Known)>;

#[derive(Default)]
struct Cache {
    /// `false` until the keychain's list has been read once.
    loaded: bool,
    /// protocol → host → entries. Two levels so a lookup borrows the query's strings instead
    /// of building an owned (protocol, host) key.
    by_host: HashMap<String, HashMap<String, HostEntries>>,
}

impl Cache {
    fn host(&self, target: &Target) -> Option<&HostEntries> {
        self.by_host.get(&target.protocol)?.get(&target.host)
    }

    fn matches<'a>(
        &'a self,
        query: &'a Query,
    ) -> impl Iterator<Item = (&'a EntryKey, &'a Known)> + 'a {
        self.host(&query.target)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((path, user), _)| {
                query
                    .target
                    .path
                    .as_ref()
                    .is_none_or(|p| Some(p) == path.as_ref())
                    && query.username.as_ref().is_none_or(|u| u == user)
            })
            .map(|(k, v)| (k, v))
    }

    /// The entry of (target, user), if known.
    fn get(&self, target: &Target, user: &str) -> Option<&Known> {
        let entries = self.host(target)?;
        let i = find(entries, &target.path, user).ok()?;
        Some(&entries[i].1)
    }

    fn slot(&mut self, target: &Target, user: &str) -> &mut Known {
        let entries = self
            .by_host
            .entry(target.protocol.clone())
            .or_default()
            .entry(target.host.clone())
            .or_default();
        let i = match find(entries, &target.path, user) {
            Ok(i) => i,
            Err(i) => {
                entries.insert(
                    i,
                    ((target.path.clone(), user.to_owned()), Known::default()),
                );
                i
            }
        };
        &mut entries[i].1
    }

    fn remove(&mut self, target: &Target, user: &str) {
        let Some(hosts) = self.by_host.get_mut(&target.protocol) else {
            return;
        };
        if let Some(entries) = hosts.get_mut(&target.host) {
            if let Ok(i) = find(entries, &target.path, user) {
                entries.remove(i);
            }
            if entries.is_empty() {
                hosts.remove(&target.host);
            }
        }
        if hosts.is_empty() {
            self.by_host.remove(&target.protocol);
        }
    }

    /// Every entry: (protocol, host, (path, user name), what is known).
    fn entries(&self) -> impl Iterator<Item = (&str, &str, &EntryKey, &Known)> {
        self.by_host.iter().flat_map(|(protocol, hosts)| {
            hosts.iter().flat_map(move |(host, entries)| {
                entries
                    .iter()
                    .map(move |(k, v)| (protocol.as_str(), host.as_str(), k, v))
            })
        })
    }
}

/// Binary search for (path, user) in entries sorted by (path, user), without building an
/// owned key.
fn find(entries: &HostEntries, path: &Option<String>, user: &str) -> Result<usize, usize> {
    entries.binary_search_by(|((p, u), _)| (p.as_deref(), u.as_str()).cmp(&(path.as_deref(), user)))
}

/// Shared by every connection task.
pub struct State {
    keychain: Arc<Keychain>,
    cache: RwLock<Cache>,
    keychain_lock: tokio::sync::Mutex<()>,
    limits: Limits,
    started: Instant,
    socket: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Where answered `get`s, `store`s and `erase`s are recorded (disabled unless set).
    access_log: crate::accesslog::writer::Writer,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keeps a credential's secrets out of swap while it sits in the cache (best effort).
fn lock_secrets(cred: &Credential) {
    crate::agent::harden::lock_memory(cred.password.expose().as_bytes());
    for t in [&cred.oauth_refresh_token, &cred.credential]
        .into_iter()
        .flatten()
    {
        crate::agent::harden::lock_memory(t.expose().as_bytes());
    }
}

fn expired(cred: &Credential) -> bool {
    cred.password_expiry_utc.is_some_and(|t| t <= now_unix())
}

fn keychain_error(e: KeychainError) -> Response {
    Response::error(ErrorCode::Keychain, e.to_string())
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
            access_log: crate::accesslog::writer::Writer::disabled(),
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

    /// Asks the server loop to stop accepting and wind down.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns `true` when shutdown was requested.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
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
        op: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, Response> {
        let keychain = Arc::clone(&self.keychain);
        let task = tokio::task::spawn_blocking(move || op(&keychain));
        match tokio::time::timeout(self.limits.keychain, task).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(keychain_error(e)),
            Ok(Err(_join)) => Err(Response::error(
                ErrorCode::Internal,
                "a keychain operation failed unexpectedly",
            )),
            Err(_elapsed) => {
                tracing::error!(
                    timeout_secs = self.limits.keychain.as_secs_f64(),
                    "keychain did not answer in time"
                );
                Err(Response::error(
                    ErrorCode::KeychainTimeout,
                    format!(
                        "the keychain ({}) did not answer within {} s; is it locked or hung?",
                        self.backend_name(),
                        self.limits.keychain.as_secs_f64()
                    ),
                ))
            }
        }
    }

    /// Reads the keychain's list into the cache if that has not happened yet. Call with
    /// `keychain_lock` held.
    async fn ensure_loaded(&self) -> Result<(), Response> {
        if self.read_cache().loaded {
            return Ok(());
        }
        let list = self.with_keychain(|k| k.list()).await?;
        let mut cache = self.write_cache();
        for (info, extras) in list {
            cache.slot(&info.target, &info.username).extras = extras;
        }
        cache.loaded = true;
        tracing::debug!(
            credentials = cache.entries().count(),
            "keychain index loaded"
        );
        Ok(())
    }

    /// Loads the index at start-up so the first request is not slowed by it; failures are
    /// logged and retried on demand.
    pub async fn preload(&self) {
        let _guard = self.keychain_lock.lock().await;
        if let Err(Response::Error { message, .. }) = self.ensure_loaded().await {
            tracing::warn!(%message, "could not read the keychain index yet");
        }
    }

    /// The first credential matching `query` that has not expired.
    pub async fn get(&self, query: &Query) -> Response {
        // Fast path: index loaded and the secret cached; no keychain call.
        {
            let cache = self.read_cache();
            if cache.loaded {
                // Matches come in order (path, then user name); the first usable one wins, so
                // an uncached match before it sends us to the slow path.
                let mut any_uncached = false;
                for (_, known) in cache.matches(query) {
                    match &known.cached {
                        Some(c) if !expired(c) => {
                            return Response::Credential(Some(Credential::clone(c)));
                        }
                        Some(_) => {}
                        None => {
                            any_uncached = true;
                            break;
                        }
                    }
                }
                if !any_uncached {
                    return Response::Credential(None);
                }
            }
        }
        let _guard = self.keychain_lock.lock().await;
        if let Err(r) = self.ensure_loaded().await {
            return r;
        }
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
                        path: path.clone(),
                        ..query.target.clone()
                    };
                    let (t, u, extras) = (target.clone(), user.clone(), known.extras.clone());
                    match self.with_keychain(move |k| k.load(&t, &u, &extras)).await {
                        Ok(Some(c)) => {
                            let cached = c.clone();
                            lock_secrets(&cached);
                            self.write_cache().slot(&target, &user).cached = Some(Box::new(cached));
                            Some(c)
                        }
                        // Gone from the keychain behind our back: forget it.
                        Ok(None) => {
                            self.write_cache().remove(&target, &user);
                            None
                        }
                        Err(r) => return r,
                    }
                }
            };
            if let Some(c) = cred.filter(|c| !expired(c)) {
                return Response::Credential(Some(c));
            }
        }
        Response::Credential(None)
    }

    /// Writes to the keychain, then the cache.
    pub async fn store(&self, cred: Credential) -> Response {
        let _guard = self.keychain_lock.lock().await;
        // The index must be known before we add to it, or a later load would drop this entry.
        if let Err(r) = self.ensure_loaded().await {
            return r;
        }
        let to_store = cred.clone();
        let existing = self
            .read_cache()
            .get(&cred.target, &cred.username)
            .map(|k| k.extras.clone())
            .unwrap_or_default();
        if let Err(r) = self
            .with_keychain(move |k| k.store(&to_store, &existing))
            .await
        {
            return r;
        }
        let mut cache = self.write_cache();
        let slot = cache.slot(&cred.target, &cred.username);
        slot.extras = crate::keychain::extras_of(&cred);
        lock_secrets(&cred);
        slot.cached = Some(Box::new(cred));
        Response::Stored
    }

    /// Removes every credential matching `query` from the keychain, then the cache.
    pub async fn erase(&self, query: &Query) -> Response {
        let _guard = self.keychain_lock.lock().await;
        if let Err(r) = self.ensure_loaded().await {
            return r;
        }
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
            match self.with_keychain(move |k| k.erase(&t, &u, &extras)).await {
                Ok(existed) => {
                    count += u32::from(existed);
                    self.write_cache().remove(&target, &user);
                }
                Err(r) => return r,
            }
        }
        Response::Erased { count }
    }

    /// Names and metadata of every stored credential, never secrets.
    pub async fn list(&self) -> Response {
        {
            let _guard = self.keychain_lock.lock().await;
            if let Err(r) = self.ensure_loaded().await {
                return r;
            }
        }
        let cache = self.read_cache();
        let mut out: Vec<CredentialInfo> = cache
            .entries()
            .map(|(protocol, host, (path, user), known)| CredentialInfo {
                target: Target {
                    protocol: protocol.to_owned(),
                    host: host.to_owned(),
                    path: path.clone(),
                },
                username: user.clone(),
                password_expiry_utc: known.cached.as_ref().and_then(|c| c.password_expiry_utc),
            })
            .collect();
        out.sort_by(|a, b| (&a.target, &a.username).cmp(&(&b.target, &b.username)));
        Response::List(out)
    }

    /// (secrets cached, credentials known).
    pub fn counts(&self) -> (u64, u64) {
        let cache = self.read_cache();
        let (mut cached, mut known) = (0, 0);
        for (_, _, _, k) in cache.entries() {
            known += 1;
            cached += u64::from(k.cached.is_some());
        }
        (cached, known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wbl_proto::Secret;

    fn target(host: &str, path: Option<&str>) -> Target {
        Target {
            protocol: "https".into(),
            host: host.into(),
            path: path.map(str::to_owned),
        }
    }

    fn cache_with(entries: &[(&str, Option<&str>, &str)]) -> Cache {
        let mut c = Cache::default();
        for (host, path, user) in entries {
            let t = target(host, *path);
            c.slot(&t, user).cached = Some(Box::new(Credential::new(
                t.clone(),
                *user,
                Secret::new(format!("{host}{path:?}{user}")),
            )));
        }
        c
    }

    fn users(c: &Cache, q: &Query) -> Vec<(Option<String>, String)> {
        c.matches(q).map(|(k, _)| k.clone()).collect()
    }

    #[test]
    fn matches_come_by_path_then_user_whatever_the_insertion_order() {
        let c = cache_with(&[
            ("h", Some("b"), "zed"),
            ("h", None, "bob"),
            ("h", Some("a"), "amy"),
            ("h", None, "al"),
            ("other", None, "al"),
        ]);
        let q = Query {
            target: target("h", None),
            username: None,
        };
        let want = [
            (None, "al"),
            (None, "bob"),
            (Some("a"), "amy"),
            (Some("b"), "zed"),
        ]
        .map(|(p, u)| (p.map(str::to_owned), u.to_owned()));
        assert_eq!(users(&c, &q), want);
        let q = Query {
            target: target("h", Some("a")),
            username: Some("amy".into()),
        };
        assert_eq!(users(&c, &q), [(Some("a".into()), "amy".into())]);
        let q = Query {
            target: target("h", None),
            username: Some("zed".into()),
        };
        assert_eq!(users(&c, &q), [(Some("b".into()), "zed".into())]);
        let q = Query {
            target: Target {
                protocol: "http".into(),
                ..target("h", None)
            },
            username: None,
        };
        assert!(users(&c, &q).is_empty());
    }

    #[test]
    fn slot_get_and_remove_keep_one_entry_per_key() {
        let mut c = cache_with(&[("h", None, "u"), ("h", Some("p"), "u")]);
        // The same key again updates, never duplicates.
        c.slot(&target("h", None), "u").extras = vec![ItemKind::Authtype];
        assert_eq!(c.entries().count(), 2);
        assert_eq!(
            c.get(&target("h", None), "u").unwrap().extras,
            [ItemKind::Authtype]
        );
        assert!(c.get(&target("h", None), "v").is_none());
        c.remove(&target("h", None), "u");
        assert!(c.get(&target("h", None), "u").is_none());
        assert!(c.get(&target("h", Some("p")), "u").is_some());
        c.remove(&target("h", Some("p")), "u");
        // Emptied hosts and protocols are dropped, not kept as empty maps.
        assert!(c.by_host.is_empty());
        c.remove(&target("h", Some("p")), "u");
    }
}
