//! The agent's second store: hosts routed by `config.toml` to an OpenBao (or Vault) KV v2
//! secret. It keeps each server's token (in memory; also in the OS keychain for `token` and
//! `userpass`), renews it before it expires, logs in again with the JWT when renewal is no
//! longer possible, and caches each routed secret for the server's `cache_ttl`.
//!
//! Invariants:
//! - A routed host is served only by its server: a failure is an error naming the server,
//!   the secret and the reason, never a fallback to the keychain (or the reverse), and never
//!   by the keychain under another address: a miss names the route and the user name asked
//!   for. Which hosts are routed, and what happens while the configuration cannot be used, is
//!   the router's (`router.rs`).
//! - A cached value is served for `cache_ttl` after it was read or written; after that it is
//!   read again, and only while the server is unreachable or sealed may it still be served,
//!   for at most `stale_ttl` more. Permission denied, not found and an expired token are
//!   never hidden by the cache.
//! - A `Stored` answer means the server acknowledged the write; the cache is updated only
//!   then. A refused write changes nothing anywhere.
//! - Every HTTP call runs on the blocking pool, bounded by the server's `timeout`. One fetch
//!   per route at a time: concurrent cold gets wait for the first one's answer.
//! - The OpenBao token is never written to a file (no `~/.vault-token`), never logged and never
//!   sent to a client.
//! - A token is bound to the address that issued it: in memory (a `Server` exists for one
//!   configuration, and its session records the address) and in the keychain (the item's user
//!   name is the address). It is sent to that address only, and a refusal from a server removes
//!   only the token saved for that server's address.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wbl_proto::{Credential, CredentialInfo, Query, Secret, StoreSession, Target};

use super::keychain_store::{TOKEN_PROTOCOL, TokenKeeper};
use super::store::{Served, Store, StoreError, StoreFuture, Stored};
use crate::config::{Auth, Config, Route, ServerConfig};
use crate::openbao::{BaoError, Client, KvSecret, Reason, TokenInfo};

/// What the OpenBao store asks of a server: [`Client`] over HTTP, or a fake key-value server
/// in the unit tests. Every call blocks; the store runs it on the blocking pool.
pub trait Kv: Send + Sync {
    fn config(&self) -> &ServerConfig;
    fn login(&self, secret: Option<&Secret>) -> Result<TokenInfo, BaoError>;
    fn lookup_self(&self, token: &Secret) -> Result<TokenInfo, BaoError>;
    fn renew_self(&self, token: &Secret) -> Result<TokenInfo, BaoError>;
    fn revoke_self(&self, token: &Secret) -> Result<(), BaoError>;
    fn kv_read(&self, token: &Secret, mount: &str, path: &str) -> Result<KvSecret, BaoError>;
    fn kv_write(
        &self,
        token: &Secret,
        mount: &str,
        path: &str,
        username: &str,
        password: &Secret,
    ) -> Result<(), BaoError>;
    fn kv_delete(&self, token: &Secret, mount: &str, path: &str) -> Result<(), BaoError>;

    /// An error of this server.
    fn error(&self, action: &str, reason: Reason) -> BaoError {
        BaoError {
            server: self.config().name.clone(),
            address: self.config().address.clone(),
            action: action.to_owned(),
            reason,
        }
    }
}

impl Kv for Client {
    fn config(&self) -> &ServerConfig {
        Client::config(self)
    }
    fn login(&self, secret: Option<&Secret>) -> Result<TokenInfo, BaoError> {
        Client::login(self, secret)
    }
    fn lookup_self(&self, token: &Secret) -> Result<TokenInfo, BaoError> {
        Client::lookup_self(self, token)
    }
    fn renew_self(&self, token: &Secret) -> Result<TokenInfo, BaoError> {
        Client::renew_self(self, token, None)
    }
    fn revoke_self(&self, token: &Secret) -> Result<(), BaoError> {
        Client::revoke_self(self, token)
    }
    fn kv_read(&self, token: &Secret, mount: &str, path: &str) -> Result<KvSecret, BaoError> {
        Client::kv_read(self, token, mount, path)
    }
    fn kv_write(
        &self,
        token: &Secret,
        mount: &str,
        path: &str,
        username: &str,
        password: &Secret,
    ) -> Result<(), BaoError> {
        Client::kv_write(self, token, mount, path, username, password)
    }
    fn kv_delete(&self, token: &Secret, mount: &str, path: &str) -> Result<(), BaoError> {
        Client::kv_delete(self, token, mount, path)
    }
}

/// How a server's [`Kv`] is made from its configuration.
pub type Connect = Arc<dyn Fn(Arc<ServerConfig>) -> Result<Arc<dyn Kv>, BaoError> + Send + Sync>;

/// The real one: HTTP to the configured address.
fn connect_http() -> Connect {
    Arc::new(|config| Client::new(config).map(|c| Arc::new(c) as Arc<dyn Kv>))
}

/// The time the store's decisions (token expiry, cache age) are made by: the monotonic clock,
/// or a fake one the unit tests move by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The monotonic clock.
struct Monotonic;

impl Clock for Monotonic {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The user name of a routed secret without a `username` field (W&B's Basic-auth user).
pub const DEFAULT_USERNAME: &str = "api";
/// The user name under which wbl kept a server's token before tokens were bound to their
/// address. Such a token is never sent (its address is unknown); the next login removes it.
const UNBOUND_TOKEN_USER: &str = "token";
/// The action of a "no usable token" error, replaced by the caller's own.
const USING_TOKEN: &str = "using the token";

/// The agent's OpenBao state: per server and route of the configuration last given
/// ([`OpenBaoStore::configure`]) the token and cache.
pub struct OpenBaoStore {
    servers: RwLock<Arc<Servers>>,
    /// Where servers keep their tokens (`token` and `userpass`).
    keeper: TokenKeeper,
    /// What servers and routes are built with.
    connect: Connect,
    clock: Arc<dyn Clock>,
}

/// The servers and routes of one configuration.
#[derive(Default)]
struct Servers {
    servers: HashMap<String, Arc<Server>>,
    routes: Vec<Arc<RouteState>>,
}

/// One server: its client and the agent's token for it.
pub struct Server {
    config: Arc<ServerConfig>,
    client: Result<Arc<dyn Kv>, BaoError>,
    session: tokio::sync::Mutex<Option<Lease>>,
    /// False until the keychain was asked for a saved token.
    keychain_tried: AtomicBool,
    generation: AtomicU64,
    keeper: TokenKeeper,
    clock: Arc<dyn Clock>,
}

struct Lease {
    token: Secret,
    /// The address that issued the token: the only one it is sent to.
    address: String,
    /// When the token stops working; `None` when it never does.
    expires: Option<Instant>,
    /// The TTL the server last granted.
    granted: Option<Duration>,
    renewable: bool,
    generation: u64,
}

impl Lease {
    fn from_info(info: TokenInfo, address: &str, generation: u64, now: Instant) -> Lease {
        Lease {
            address: address.to_owned(),
            expires: info.ttl.map(|t| now + t),
            granted: info.ttl,
            renewable: info.renewable,
            token: info.token,
            generation,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// One route and its cache.
pub struct RouteState {
    route: Route,
    server: Arc<Server>,
    cached: RwLock<Option<Cached>>,
    fetch: tokio::sync::Mutex<()>,
}

struct Cached {
    cred: Box<Credential>,
    at: Instant,
}

/// The store error of a failed OpenBao call: a missing secret, or the server's failure.
fn store_error(e: &BaoError) -> StoreError {
    match e.reason {
        Reason::NotFound => StoreError::NotFound(e.to_string()),
        _ => failed(e, e.to_string()),
    }
}

fn failed(e: &BaoError, message: String) -> StoreError {
    StoreError::Failed {
        store: format!("{}.{}", crate::config::OPENBAO, e.server),
        message,
    }
}

/// Runs a blocking OpenBao call on the blocking pool, bounded by the server's timeout.
async fn blocking<T: Send + 'static>(
    client: &Arc<dyn Kv>,
    action: &str,
    op: impl FnOnce(&dyn Kv) -> Result<T, BaoError> + Send + 'static,
) -> Result<T, BaoError> {
    let c = Arc::clone(client);
    let bound = client.config().timeout + Duration::from_secs(2);
    match tokio::time::timeout(bound, tokio::task::spawn_blocking(move || op(&*c))).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(client.error(
            action,
            Reason::Unreachable("the call failed unexpectedly".into()),
        )),
        Err(_) => Err(client.error(
            action,
            Reason::Unreachable(format!("no answer within {} s", bound.as_secs())),
        )),
    }
}

impl Server {
    fn new(
        config: Arc<ServerConfig>,
        keeper: TokenKeeper,
        connect: &Connect,
        clock: Arc<dyn Clock>,
    ) -> Server {
        Server {
            keeper,
            clock,
            client: connect(Arc::clone(&config)),
            config,
            session: tokio::sync::Mutex::new(None),
            keychain_tried: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }

    fn client(&self) -> Result<&Arc<dyn Kv>, BaoError> {
        self.client.as_ref().map_err(Clone::clone)
    }

    fn token_target(&self) -> Target {
        Target::new(TOKEN_PROTOCOL, self.config.name.clone())
    }

    fn keeps_token_in_keychain(&self) -> bool {
        !matches!(self.config.auth, Auth::Jwt { .. })
    }

    /// A usable token: the session's, else the keychain's (token, userpass), else a fresh JWT
    /// login (jwt); else "not logged in" / "token expired".
    async fn token(self: &Arc<Self>) -> Result<Secret, BaoError> {
        let mut session = self.session.lock().await;
        let mut reason = Reason::NotLoggedIn;
        if let Some(s) = session.as_ref() {
            if s.address != self.config.address {
                // Cannot happen (a new address is a new `Server`); never send it elsewhere.
                *session = None;
            } else if !s.expired(self.clock.now()) {
                return Ok(s.token.clone());
            } else {
                *session = None;
                reason = Reason::TokenExpired;
            }
        }
        let client = Arc::clone(self.client()?);
        match &self.config.auth {
            Auth::Jwt { .. } => {
                let info = blocking(&client, "logging in (jwt)", |c| c.login(None)).await?;
                tracing::info!(server = %self.config.name, "logged in to OpenBao with the JWT");
                let token = info.token.clone();
                self.install(&mut session, info);
                Ok(token)
            }
            _ => {
                if !self.keychain_tried.swap(true, Ordering::SeqCst) {
                    let (target, address) = (self.token_target(), self.config.address.clone());
                    let saved = match self
                        .keeper
                        .call(move |k| k.load(&target, &address, &[]))
                        .await
                    {
                        Ok(saved) => saved,
                        Err(_) => {
                            // The keychain could not answer: ask it again next time.
                            self.keychain_tried.store(false, Ordering::SeqCst);
                            None
                        }
                    };
                    if let Some(saved) = saved {
                        let token = saved.password.clone();
                        match blocking(&client, "looking up the saved token", move |c| {
                            c.lookup_self(&token)
                        })
                        .await
                        {
                            Ok(info) => {
                                tracing::info!(server = %self.config.name, "using the OpenBao token saved in the keychain");
                                let token = info.token.clone();
                                self.install(&mut session, info);
                                return Ok(token);
                            }
                            Err(e) if e.reason.needs_login() => {
                                self.forget_saved().await;
                                reason = Reason::TokenExpired;
                            }
                            Err(e) => {
                                // Try the keychain again next time.
                                self.keychain_tried.store(false, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                    } else if let Some(other) = self.saved_elsewhere().await {
                        reason = Reason::SavedForAnotherAddress(other);
                        // Ask again next time: the user may log in, or change the address back.
                        self.keychain_tried.store(false, Ordering::SeqCst);
                    }
                }
                Err(client.error(USING_TOKEN, reason))
            }
        }
    }

    /// Makes `info` the session and starts its renewal.
    fn install(self: &Arc<Self>, session: &mut Option<Lease>, info: TokenInfo) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let s = Lease::from_info(info, &self.config.address, generation, self.clock.now());
        crate::agent::harden::lock_memory(s.token.expose().as_bytes());
        let renew = s.renewable && s.granted.is_some();
        *session = Some(s);
        if renew {
            tokio::spawn(renew_loop(Arc::clone(self), generation));
        }
    }

    /// Drops the session if it still holds `token` (a token the server no longer accepts).
    async fn invalidate(&self, token: &Secret) {
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|s| &s.token == token) {
            *session = None;
            drop(session);
            if self.keeps_token_in_keychain() {
                self.forget_saved().await;
            }
        }
    }

    /// Whether the keychain holds a token of this server saved for another address:
    /// `Some(Some(address))`, or `Some(None)` for one saved by an older wbl without its
    /// address. Only to explain a "not logged in"; nothing is sent anywhere.
    async fn saved_elsewhere(&self) -> Option<Option<String>> {
        let target = self.token_target();
        let listed = self.keeper.call(|k| k.list()).await.ok()?;
        let others: Vec<String> = listed
            .into_iter()
            .map(|(info, _)| info)
            .filter(|info| info.target == target && info.username != self.config.address)
            .map(|info| info.username)
            .collect();
        // An address the user can recognise says more than "an older wbl".
        match others.iter().find(|u| *u != UNBOUND_TOKEN_USER) {
            Some(address) => Some(Some(address.clone())),
            None => (!others.is_empty()).then_some(None),
        }
    }

    /// Removes the token saved for this server's address (and only that one).
    async fn forget_saved(&self) {
        let (target, address) = (self.token_target(), self.config.address.clone());
        if let Err(e) = self
            .keeper
            .call(move |k| k.erase(&target, &address, &[]))
            .await
        {
            tracing::warn!(server = %self.config.name, error = %e, "could not remove the dead OpenBao token from the keychain");
        }
    }

    /// Tells a revoked/expired token from a policy refusal after a 403.
    async fn classify_denied(&self, client: &Arc<dyn Kv>, token: &Secret, e: BaoError) -> BaoError {
        if e.reason != Reason::PermissionDenied {
            return e;
        }
        let t = token.clone();
        match blocking(client, "looking up the token", move |c| c.lookup_self(&t)).await {
            Err(l) if l.reason == Reason::TokenExpired => BaoError {
                reason: Reason::TokenExpired,
                ..e
            },
            _ => e,
        }
    }

    /// Runs `op` with a token; when the server no longer accepts the token, forgets it, and
    /// for `jwt` logs in again and retries once.
    async fn with_token<T: Send + 'static>(
        self: &Arc<Self>,
        action: &str,
        op: impl Fn(&dyn Kv, &Secret) -> Result<T, BaoError> + Send + Sync + 'static,
    ) -> Result<T, BaoError> {
        let client = Arc::clone(self.client()?);
        let op = Arc::new(op);
        for attempt in 0..2 {
            let token = self.token().await.map_err(|e| BaoError {
                action: if e.action == USING_TOKEN {
                    action.to_owned()
                } else {
                    format!("{action}: {}", e.action)
                },
                ..e
            })?;
            let (t, o) = (token.clone(), Arc::clone(&op));
            let result = blocking(&client, action, move |c| o(c, &t)).await;
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => self.classify_denied(&client, &token, e).await,
            };
            if e.reason != Reason::TokenExpired {
                return Err(e);
            }
            self.invalidate(&token).await;
            if attempt == 1 || !matches!(self.config.auth, Auth::Jwt { .. }) {
                return Err(e);
            }
        }
        unreachable!("the loop returns")
    }
}

/// What the renewal loop does after a renewal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Keep the token with this TTL from now, and renew it again at two thirds of it.
    Keep { ttl: Option<Duration>, warn: bool },
    /// Keep the token with this TTL from now and stop renewing: it is about to end.
    KeepAndStop { ttl: Option<Duration> },
    /// The server could not be asked and the token still lives: try again after this long.
    Retry(Duration),
    /// Log in again with the JWT.
    Relogin,
    /// Stop renewing; the token works until it expires (then requests say to log in).
    Stop,
}

/// The renewal decision: `renewed` is the new TTL the server granted, or why it did not;
/// `granted` the TTL it granted before, `expires` when the token ends.
fn after_renewal(
    renewed: Result<Option<Duration>, &Reason>,
    granted: Duration,
    jwt: bool,
    now: Instant,
    expires: Instant,
) -> Next {
    match renewed {
        Ok(ttl) if ttl.is_some_and(|t| t * 2 >= granted) => Next::Keep { ttl, warn: false },
        // Renewed, but for less than half the previous TTL: the max TTL is near.
        Ok(_) if jwt => Next::Relogin,
        Ok(ttl) if ttl.is_some_and(|t| t < Duration::from_secs(1)) => Next::KeepAndStop { ttl },
        Ok(ttl) => Next::Keep { ttl, warn: true },
        Err(reason) if reason.is_outage() && now < expires => {
            let left = expires.saturating_duration_since(now);
            Next::Retry(
                (left / 2)
                    .max(Duration::from_millis(200))
                    .min(Duration::from_secs(10)),
            )
        }
        Err(_) if jwt => Next::Relogin,
        Err(_) => Next::Stop,
    }
}

/// Renews the session of `generation` before it expires: at two thirds of the granted TTL.
/// When renewal fails or no longer extends the token (its max TTL is near), `jwt` logs in
/// again; the others keep the token until it expires (then gets say to log in). The
/// decisions are [`after_renewal`]'s.
async fn renew_loop(server: Arc<Server>, generation: u64) {
    loop {
        let (token, expires, granted) = {
            let s = server.session.lock().await;
            match s.as_ref() {
                Some(s) if s.generation == generation => match (s.expires, s.granted) {
                    (Some(e), Some(g)) => (s.token.clone(), e, g),
                    _ => return,
                },
                _ => return,
            }
        };
        let wake = expires.checked_sub(granted / 3).unwrap_or(expires);
        tokio::time::sleep(wake.saturating_duration_since(server.clock.now())).await;
        let Ok(client) = server.client().cloned() else {
            return;
        };
        let t = token.clone();
        let renewed = blocking(&client, "renewing the token", move |c| c.renew_self(&t)).await;
        let mut s = server.session.lock().await;
        if s.as_ref().is_none_or(|s| s.generation != generation) {
            return;
        }
        let jwt = matches!(server.config.auth, Auth::Jwt { .. });
        let now = server.clock.now();
        let next = after_renewal(
            renewed.as_ref().map(|i| i.ttl).map_err(|e| &e.reason),
            granted,
            jwt,
            now,
            expires,
        );
        let name = &server.config.name;
        match next {
            Next::Keep { ttl, warn } => {
                if warn {
                    tracing::warn!(server = %name, "the OpenBao token reaches its maximum TTL soon; run `wbl openbao login {name}` then");
                } else {
                    tracing::debug!(server = %name, ttl_secs = ttl.map(|t| t.as_secs()), "OpenBao token renewed");
                }
                if let Some(cur) = s.as_mut() {
                    cur.expires = ttl.map(|t| now + t);
                    cur.granted = ttl;
                }
                continue;
            }
            Next::KeepAndStop { ttl } => {
                tracing::warn!(server = %name, "the OpenBao token reaches its maximum TTL soon; run `wbl openbao login {name}` then");
                if let Some(cur) = s.as_mut() {
                    cur.expires = ttl.map(|t| now + t);
                    cur.granted = ttl;
                }
                return;
            }
            Next::Retry(after) => {
                drop(s);
                if let Err(e) = &renewed {
                    tracing::warn!(server = %name, error = %e, "could not renew the OpenBao token; trying again");
                }
                tokio::time::sleep(after).await;
                continue;
            }
            Next::Stop => {
                if let Err(e) = &renewed {
                    tracing::warn!(server = %name, error = %e, "could not renew the OpenBao token");
                }
                return;
            }
            Next::Relogin => {
                if let Err(e) = &renewed {
                    tracing::warn!(server = %name, error = %e, "could not renew the OpenBao token");
                }
            }
        }
        // jwt: a fresh login replaces the session (and starts its own renewal).
        let relogin = blocking(&client, "logging in (jwt)", |c| c.login(None)).await;
        match relogin {
            Ok(info) => {
                tracing::info!(server = %server.config.name, "logged in to OpenBao again with the JWT");
                server.install(&mut s, info);
            }
            Err(e) => {
                tracing::warn!(server = %server.config.name, error = %e, "could not log in again with the JWT; the next request tries again");
                *s = None;
            }
        }
        return;
    }
}

impl RouteState {
    fn fresh(&self, now: Instant) -> Option<Credential> {
        let c = self.cached.read().unwrap_or_else(|p| p.into_inner());
        c.as_ref()
            .filter(|c| now.duration_since(c.at) < self.server.config.cache_ttl)
            .map(|c| Credential::clone(&c.cred))
    }

    fn stale(&self, now: Instant) -> Option<Credential> {
        let cfg = &self.server.config;
        let c = self.cached.read().unwrap_or_else(|p| p.into_inner());
        c.as_ref()
            .filter(|c| now.duration_since(c.at) < cfg.cache_ttl + cfg.stale_ttl)
            .map(|c| Credential::clone(&c.cred))
    }

    fn put(&self, cred: Option<Credential>) {
        let mut c = self.cached.write().unwrap_or_else(|p| p.into_inner());
        *c = cred.map(|cred| {
            crate::agent::harden::lock_memory(cred.password.expose().as_bytes());
            Cached {
                cred: Box::new(cred),
                at: self.server.clock.now(),
            }
        });
    }

    fn credential(&self, secret: KvSecret) -> Credential {
        Credential::new(
            Target::new(self.route.protocol.clone(), self.route.host.clone()),
            secret
                .username
                .unwrap_or_else(|| DEFAULT_USERNAME.to_owned()),
            secret.password,
        )
    }

    /// The route's credential: cached, else read (one fetch at a time), else stale within
    /// bounds during an outage.
    async fn read(&self) -> Result<Credential, BaoError> {
        if let Some(c) = self.fresh(self.server.clock.now()) {
            return Ok(c);
        }
        let _one = self.fetch.lock().await;
        if let Some(c) = self.fresh(self.server.clock.now()) {
            return Ok(c);
        }
        let (mount, path) = (self.route.mount.clone(), self.route.path.clone());
        let action = format!("reading {}", self.route.secret_name());
        let result = self
            .server
            .with_token(&action, move |c, t| c.kv_read(t, &mount, &path))
            .await;
        match result {
            Ok(secret) => {
                let cred = self.credential(secret);
                self.put(Some(cred.clone()));
                Ok(cred)
            }
            Err(e) if e.reason.is_outage() => match self.stale(self.server.clock.now()) {
                Some(c) => {
                    tracing::warn!(error = %e, "serving the cached value while the OpenBao server cannot answer");
                    Ok(c)
                }
                None => Err(e),
            },
            Err(e) => {
                self.put(None);
                Err(e)
            }
        }
    }
}

impl RouteState {
    /// The route's credential when it is for the user name asked (any, when none is). A miss
    /// is a "not found" error that names the route and the user name asked for: the host is
    /// routed here, so no other key (the keychain's, under another address) answers for it.
    /// The store as messages name it.
    fn store_name(&self) -> String {
        format!(
            "OpenBao server `{}` ({})",
            self.server.config.name,
            self.route.secret_name()
        )
    }

    async fn get_routed(&self, query: &Query) -> Result<Option<Credential>, StoreError> {
        match self.read().await {
            Ok(cred) if matches_user(&cred, query) => Ok(Some(cred)),
            Ok(cred) => Err(StoreError::NotFound(format!(
                "{} is routed to OpenBao server `{}` ({}), whose key there is for user \
                 `{}`, not `{}`; wbl uses no other key for a routed host",
                query.target,
                self.server.config.name,
                self.route.secret_name(),
                cred.username,
                query.username.as_deref().unwrap_or_default()
            ))),
            Err(e) => Err(store_error(&e)),
        }
    }

    async fn store_routed(&self, cred: Credential) -> Result<Stored, StoreError> {
        if !cred.has_secret() {
            // git stores empty credentials (SSO hosts); the route's secret holds the team's
            // key, which must not be overwritten with nothing, and there is no other store.
            return Err(StoreError::BadRequest(format!(
                "OpenBao server `{}` ({}) keeps the key of {}: a credential without a \
                 password is not written there (nor anywhere else)",
                self.server.config.name,
                self.route.secret_name(),
                cred.target
            )));
        }
        let _one = self.fetch.lock().await;
        let (mount, path) = (self.route.mount.clone(), self.route.path.clone());
        let (user, password) = (cred.username.clone(), cred.password.clone());
        let action = format!("writing {}", self.route.secret_name());
        let username = if user.is_empty() {
            DEFAULT_USERNAME.to_owned()
        } else {
            user
        };
        let u = username.clone();
        match self
            .server
            .with_token(&action, move |c, t| {
                c.kv_write(t, &mount, &path, &u, &password)
            })
            .await
        {
            Ok(()) => {
                self.put(Some(Credential::new(
                    Target::new(self.route.protocol.clone(), self.route.host.clone()),
                    username,
                    cred.password,
                )));
                Ok(Stored { persistent: true })
            }
            Err(e) => {
                tracing::warn!(error = %e, "OpenBao refused the write");
                Err(failed(
                    &e,
                    format!("{e}; the key was not stored (nor anywhere else)"),
                ))
            }
        }
    }

    async fn erase_routed(&self, query: &Query) -> Result<u32, StoreError> {
        if query.username.is_some() {
            // Only erase the secret if it is this user's.
            match self.read().await {
                Ok(c) if !matches_user(&c, query) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.reason == Reason::NotFound => return Ok(0),
                Err(e) => return Err(store_error(&e)),
            }
        }
        let _one = self.fetch.lock().await;
        let (mount, path) = (self.route.mount.clone(), self.route.path.clone());
        let action = format!("deleting {}", self.route.secret_name());
        self.server
            .with_token(&action, move |c, t| c.kv_delete(t, &mount, &path))
            .await
            .map_err(|e| store_error(&e))?;
        self.put(None);
        Ok(1)
    }
}

/// A routed host's store: its OpenBao server's secret, with its own cache and TTL.
impl Store for RouteState {
    fn get<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async move {
            let query = super::store::single_account(query, &self.store_name())?;
            self.get_routed(&query).await
        })
    }

    fn store(&self, cred: Credential) -> StoreFuture<'_, Stored> {
        Box::pin(self.store_routed(cred))
    }

    fn erase<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, u32> {
        Box::pin(async move {
            let query = super::store::single_account(query, &self.store_name())?;
            self.erase_routed(&query).await
        })
    }

    /// Routed secrets are not listed (the keychain's index is what `list` shows).
    fn list(&self) -> StoreFuture<'_, Vec<CredentialInfo>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn describe(&self) -> Served {
        Served {
            kind: crate::config::OPENBAO.into(),
            detail: Some(format!(
                "`{}` {}",
                self.server.config.name,
                self.route.secret_name()
            )),
        }
    }
}

fn matches_user(cred: &Credential, query: &Query) -> bool {
    query.username.as_ref().is_none_or(|u| *u == cred.username)
}

impl OpenBaoStore {
    /// No servers until [`OpenBaoStore::configure`] gives it a configuration.
    pub fn new(keeper: TokenKeeper) -> Self {
        OpenBaoStore::with(keeper, connect_http(), Arc::new(Monotonic))
    }

    /// A store whose servers are made by `connect` and whose decisions are timed by `clock`
    /// (the unit tests' fake key-value server and fake clock).
    pub(crate) fn with(keeper: TokenKeeper, connect: Connect, clock: Arc<dyn Clock>) -> Self {
        OpenBaoStore {
            servers: RwLock::new(Arc::default()),
            keeper,
            connect,
            clock,
        }
    }

    fn current(&self) -> Arc<Servers> {
        self.servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes `config` (`None`: no configuration, or one that cannot be used) and answers the
    /// hosts it routes to OpenBao, each with its store. Sessions of servers and caches of
    /// routes whose settings did not change are kept.
    pub fn configure(&self, config: Option<&Config>) -> Vec<(Target, Arc<dyn Store>)> {
        let servers = Arc::new(match config {
            Some(config) => build(config, &self.current(), self),
            None => Servers::default(),
        });
        *self.servers.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&servers);
        servers
            .routes
            .iter()
            .map(|r| {
                (
                    Target::new(r.route.protocol.clone(), r.route.host.clone()),
                    Arc::clone(r) as Arc<dyn Store>,
                )
            })
            .collect()
    }

    /// `wbl openbao login NAME`: logs in with the secret (or the JWT), keeps the token in
    /// memory and, for `token` and `userpass`, in the OS keychain.
    pub async fn login(
        &self,
        name: &str,
        secret: Option<Secret>,
    ) -> Result<StoreSession, StoreError> {
        let current = self.current();
        let Some(server) = current.servers.get(name).cloned() else {
            let mut known: Vec<&str> = current.servers.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(StoreError::Config(format!(
                "no OpenBao server `{name}` in the configuration{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", known.join(", "))
                }
            )));
        };
        let client = Arc::clone(server.client().map_err(|e| store_error(&e))?);
        let mut session = server.session.lock().await;
        let info = blocking(&client, "logging in", move |c| c.login(secret.as_ref()))
            .await
            .map_err(|e| store_error(&e))?;
        let policies = info.policies.clone();
        let (ttl, renewable) = (info.ttl, info.renewable);
        let mut kept = false;
        if server.keeps_token_in_keychain() {
            let cred = Credential::new(
                server.token_target(),
                server.config.address.clone(),
                info.token.clone(),
            );
            match self.keeper.call(move |k| k.store(&cred, &[])).await {
                Ok(()) => {
                    kept = true;
                    // A token an older wbl kept without its address is replaced by this one.
                    let target = server.token_target();
                    if let Ok(true) = self
                        .keeper
                        .call(move |k| k.erase(&target, UNBOUND_TOKEN_USER, &[]))
                        .await
                    {
                        tracing::info!(server = %name, "removed the OpenBao token an older wbl kept without its address");
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %name, error = %e, "could not keep the OpenBao token in the keychain; it lives in the agent's memory only");
                }
            }
            server.keychain_tried.store(true, Ordering::SeqCst);
        }
        // The same token given again must not be revoked.
        let previous = session
            .take()
            .map(|s| s.token)
            .filter(|old| *old != info.token);
        server.install(&mut session, info);
        drop(session);
        // The token this login replaces is of no more use: revoke it (best effort).
        if let Some(old) = previous {
            let _ = blocking(&client, "revoking the previous token", move |c| {
                c.revoke_self(&old)
            })
            .await;
        }
        // A new identity may see other secrets: read them again.
        for r in current
            .routes
            .iter()
            .filter(|r| Arc::ptr_eq(&r.server, &server))
        {
            r.put(None);
        }
        tracing::info!(server = %name, "logged in to OpenBao");
        Ok(StoreSession {
            store: format!("{}.{name}", crate::config::OPENBAO),
            address: server.config.address.clone(),
            policies,
            ttl_secs: ttl.map(|t| t.as_secs()),
            renewable,
            kept_in_keychain: kept,
        })
    }

    /// Secrets held in the cache.
    pub fn cached(&self) -> u64 {
        self.current()
            .routes
            .iter()
            .filter(|r| r.cached.read().map(|c| c.is_some()).unwrap_or(false))
            .count() as u64
    }
}

/// The servers and routes of `config`, reusing `old`'s servers (sessions) and routes (caches) whose
/// settings are unchanged.
fn build(config: &Config, old: &Servers, store: &OpenBaoStore) -> Servers {
    let mut servers = HashMap::new();
    for (name, cfg) in &config.servers {
        let server = match old.servers.get(name) {
            Some(s) if *s.config == **cfg => Arc::clone(s),
            _ => Arc::new(Server::new(
                Arc::clone(cfg),
                store.keeper.clone(),
                &store.connect,
                Arc::clone(&store.clock),
            )),
        };
        servers.insert(name.clone(), server);
    }
    let routes = config
        .routes
        .iter()
        .map(|r| {
            let server = Arc::clone(&servers[&r.server.name]);
            match old
                .routes
                .iter()
                .find(|o| o.route == *r && Arc::ptr_eq(&o.server, &server))
            {
                Some(o) => Arc::clone(o),
                None => Arc::new(RouteState {
                    route: r.clone(),
                    server,
                    cached: RwLock::new(None),
                    fetch: tokio::sync::Mutex::new(()),
                }),
            }
        })
        .collect();
    Servers { servers, routes }
}

#[cfg(test)]
pub(crate) mod tests;
