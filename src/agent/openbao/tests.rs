//! The OpenBao store's logic against a fake key-value server and a fake clock: routing,
//! `cache_ttl`, stale serving while the server is down or sealed, token expiry, the keychain's
//! saved token, JWT re-login and the renewal decisions. In-process, in milliseconds; the same
//! behaviour against a real server is covered end to end in `tests/openbao.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wbl_proto::{Credential, Query, Secret, Target};

use super::{Clock, Connect, Kv, Next, after_renewal};
use crate::agent::Limits;
use crate::agent::keychain_store::KeychainStore;
use crate::agent::router::Router;
use crate::agent::store::{Store, StoreError};
use crate::config::{Auth, Config, Route, ServerConfig};
use crate::keychain::Keychain;
use crate::keychain::memory::MemoryBackend;
use crate::openbao::{BaoError, KvSecret, Reason, TokenInfo};

/// A clock the test moves by hand.
pub(crate) struct FakeClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl FakeClock {
    pub(crate) fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }
}

/// What the fake server holds and how it behaves.
#[derive(Default)]
pub(crate) struct Bao {
    /// The route's secret: user name and password.
    secret: Option<(String, String)>,
    /// The server cannot answer (unreachable or sealed).
    down: Option<Reason>,
    /// Tokens it accepts.
    tokens: HashMap<String, ()>,
    /// The TTL of the tokens it issues.
    ttl: Option<Duration>,
    issued: u32,
    reads: u32,
    logins: u32,
}

struct FakeKv {
    config: Arc<ServerConfig>,
    bao: Arc<Mutex<Bao>>,
}

impl FakeKv {
    fn bao(&self) -> std::sync::MutexGuard<'_, Bao> {
        self.bao.lock().unwrap()
    }

    fn check(&self, token: &Secret, action: &str) -> Result<(), BaoError> {
        let bao = self.bao();
        if let Some(r) = &bao.down {
            return Err(self.error(action, r.clone()));
        }
        if !bao.tokens.contains_key(token.expose()) {
            return Err(self.error(action, Reason::PermissionDenied));
        }
        Ok(())
    }

    fn info(&self, token: String) -> TokenInfo {
        TokenInfo {
            token: Secret::from(token),
            ttl: self.bao().ttl,
            renewable: false,
            policies: vec!["team".into()],
        }
    }
}

impl Kv for FakeKv {
    fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn login(&self, secret: Option<&Secret>) -> Result<TokenInfo, BaoError> {
        let mut bao = self.bao();
        if let Some(r) = &bao.down {
            return Err(self.error("logging in", r.clone()));
        }
        if secret.is_some_and(|s| s.expose() != "good") {
            return Err(self.error("logging in", Reason::PermissionDenied));
        }
        bao.logins += 1;
        bao.issued += 1;
        let token = format!("tok-{}", bao.issued);
        bao.tokens.insert(token.clone(), ());
        drop(bao);
        Ok(self.info(token))
    }

    fn lookup_self(&self, token: &Secret) -> Result<TokenInfo, BaoError> {
        self.check(token, "looking up the token")
            .map_err(|e| match e.reason {
                Reason::PermissionDenied => BaoError {
                    reason: Reason::TokenExpired,
                    ..e
                },
                _ => e,
            })?;
        Ok(self.info(token.expose().to_owned()))
    }

    fn renew_self(&self, token: &Secret) -> Result<TokenInfo, BaoError> {
        self.lookup_self(token)
    }

    fn revoke_self(&self, token: &Secret) -> Result<(), BaoError> {
        self.bao().tokens.remove(token.expose());
        Ok(())
    }

    fn kv_read(&self, token: &Secret, mount: &str, path: &str) -> Result<KvSecret, BaoError> {
        let action = format!("reading {mount}/{path}");
        self.check(token, &action)?;
        let mut bao = self.bao();
        bao.reads += 1;
        match &bao.secret {
            Some((u, p)) => Ok(KvSecret {
                username: Some(u.clone()),
                password: Secret::from(p.as_str()),
            }),
            None => Err(self.error(&action, Reason::NotFound)),
        }
    }

    fn kv_write(
        &self,
        token: &Secret,
        mount: &str,
        path: &str,
        username: &str,
        password: &Secret,
    ) -> Result<(), BaoError> {
        self.check(token, &format!("writing {mount}/{path}"))?;
        self.bao().secret = Some((username.to_owned(), password.expose().to_owned()));
        Ok(())
    }

    fn kv_delete(&self, token: &Secret, mount: &str, path: &str) -> Result<(), BaoError> {
        self.check(token, &format!("deleting {mount}/{path}"))?;
        self.bao().secret = None;
        Ok(())
    }
}

/// One server `team` (auth as given) and the route of `https://h` to `secret/p`.
struct Fixture {
    store: Router,
    bao: Arc<Mutex<Bao>>,
    clock: Arc<FakeClock>,
    mem: MemoryBackend,
}

const CACHE_TTL: Duration = Duration::from_secs(60);
const STALE_TTL: Duration = Duration::from_secs(600);

fn config(auth: Auth) -> Config {
    let server = Arc::new(ServerConfig {
        name: "team".into(),
        address: "https://bao.example".into(),
        auth_mount: auth.kind().into(),
        auth,
        ca_file: None,
        namespace: None,
        cache_ttl: CACHE_TTL,
        stale_ttl: STALE_TTL,
        timeout: Duration::from_secs(5),
        insecure_loopback: false,
    });
    Config {
        file: "config.toml".into(),
        servers: BTreeMap::from([("team".to_owned(), Arc::clone(&server))]),
        routes: vec![Route {
            protocol: "https".into(),
            host: "h".into(),
            server,
            mount: "secret".into(),
            path: "p".into(),
        }],
        ..Config::default()
    }
}

/// Makes fake servers that share `bao`.
pub(crate) fn fake_connect(bao: &Arc<Mutex<Bao>>) -> Connect {
    let b = Arc::clone(bao);
    Arc::new(move |config| {
        Ok(Arc::new(FakeKv {
            config,
            bao: Arc::clone(&b),
        }) as Arc<dyn Kv>)
    })
}

impl Fixture {
    fn new(auth: Auth) -> Fixture {
        Fixture::on(auth, MemoryBackend::new(), Arc::default())
    }

    /// A store on the keychain `mem` and the server `bao` (a restarted agent sees both again).
    fn on(auth: Auth, mem: MemoryBackend, bao: Arc<Mutex<Bao>>) -> Fixture {
        let clock = FakeClock::new();
        let keychain = KeychainStore::new(Keychain::new(Box::new(mem.clone())), &Limits::default());
        let store = Router::configured(
            keychain,
            &config(auth),
            fake_connect(&bao),
            Arc::clone(&clock) as Arc<dyn Clock>,
        );
        Fixture {
            store,
            bao,
            clock,
            mem,
        }
    }

    fn bao(&self) -> std::sync::MutexGuard<'_, Bao> {
        self.bao.lock().unwrap()
    }

    fn route(&self) -> Arc<dyn Store> {
        let store = self.store.route(&Target::new("https", "h")).unwrap();
        assert_eq!(store.describe().kind, "openbao");
        store
    }

    /// The kind of store that serves `target`.
    fn kind(&self, target: Target) -> String {
        self.store.route(&target).unwrap().describe().kind
    }

    async fn get(&self) -> Result<Option<Credential>, StoreError> {
        self.route().get(&query(None)).await
    }
}

fn query(user: Option<&str>) -> Query {
    Query {
        target: Target::new("https", "h"),
        username: user.map(str::to_owned),
        account: Default::default(),
    }
}

fn userpass() -> Auth {
    Auth::Userpass {
        username: "alice".into(),
    }
}

fn password(c: Option<Credential>) -> String {
    c.expect("a credential").password.expose().to_owned()
}

fn message(e: StoreError) -> String {
    e.to_string()
}

#[tokio::test]
async fn routes_only_the_configured_host_and_never_the_agents_own_tokens() {
    let f = Fixture::new(userpass());
    assert_eq!(f.kind(Target::new("https", "h")), "openbao");
    assert_eq!(f.kind(Target::new("https", "other")), "keychain");
    // Another protocol is another target.
    assert_eq!(f.kind(Target::new("http", "h")), "keychain");
    assert!(matches!(
        f.store.route(&Target::new("openbao", "team")),
        Err(StoreError::BadRequest(_))
    ));
    let routed = f.store.routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].0, Target::new("https", "h"));
    assert_eq!(routed[0].1.kind, "openbao");
    assert_eq!(routed[0].1.detail.as_deref(), Some("`team` secret/p"));
}

#[tokio::test]
async fn not_logged_in_says_so_and_names_the_login_to_run() {
    let f = Fixture::new(userpass());
    f.bao().secret = Some(("api".into(), "k1".into()));
    let e = message(f.get().await.unwrap_err());
    assert!(e.contains("not logged in"), "{e}");
    assert!(e.contains("wbl openbao login team"), "{e}");
    assert_eq!(f.bao().reads, 0);
}

#[tokio::test]
async fn a_value_is_served_from_the_cache_for_cache_ttl_then_read_again() {
    let f = Fixture::new(userpass());
    f.bao().secret = Some(("api".into(), "k1".into()));
    let session = f
        .store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    assert_eq!(session.store, "openbao.team");
    assert_eq!(password(f.get().await.unwrap()), "k1");
    f.bao().secret = Some(("api".into(), "k2".into()));
    f.clock.advance(CACHE_TTL - Duration::from_millis(1));
    assert_eq!(password(f.get().await.unwrap()), "k1");
    assert_eq!(f.bao().reads, 1);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(password(f.get().await.unwrap()), "k2");
    assert_eq!(f.bao().reads, 2);
}

#[tokio::test]
async fn down_or_sealed_the_cached_value_is_served_for_stale_ttl_more_then_an_error() {
    for outage in [Reason::Unreachable("refused".into()), Reason::Sealed] {
        let f = Fixture::new(userpass());
        f.bao().secret = Some(("api".into(), "k1".into()));
        f.store
            .login("openbao.team", Some(Secret::from("good")))
            .await
            .unwrap();
        assert_eq!(password(f.get().await.unwrap()), "k1");
        f.bao().down = Some(outage.clone());
        f.clock
            .advance(CACHE_TTL + STALE_TTL - Duration::from_millis(1));
        assert_eq!(password(f.get().await.unwrap()), "k1", "{outage}");
        f.clock.advance(Duration::from_millis(1));
        let e = f.get().await.unwrap_err();
        let StoreError::Failed { store, message } = &e else {
            panic!("not a store failure: {e:?}");
        };
        assert_eq!(store, "openbao.team");
        assert!(message.contains(&outage.to_string()), "{message}");
        // Back up: read again at once.
        f.bao().down = None;
        assert_eq!(password(f.get().await.unwrap()), "k1");
    }
}

#[tokio::test]
async fn a_refusal_is_never_hidden_by_the_cache() {
    let f = Fixture::new(userpass());
    f.bao().secret = Some(("api".into(), "k1".into()));
    f.store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    assert_eq!(password(f.get().await.unwrap()), "k1");
    // The token is revoked on the server: past cache_ttl the cached value is not served.
    f.bao().tokens.clear();
    f.clock.advance(CACHE_TTL);
    let e = message(f.get().await.unwrap_err());
    assert!(e.contains("token expired or revoked"), "{e}");
    // A missing secret is a miss that names the store, not a stale value.
    f.store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    f.bao().secret = None;
    assert!(matches!(f.get().await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn an_expired_token_is_not_sent_and_userpass_must_log_in_again() {
    let f = Fixture::new(userpass());
    f.bao().ttl = Some(Duration::from_secs(30));
    f.bao().secret = Some(("api".into(), "k1".into()));
    f.store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    assert_eq!(password(f.get().await.unwrap()), "k1");
    f.clock.advance(CACHE_TTL);
    let e = message(f.get().await.unwrap_err());
    assert!(e.contains("token expired"), "{e}");
    assert!(e.contains("wbl openbao login team"), "{e}");
    // No new login happened behind the user's back.
    assert_eq!(f.bao().logins, 1);
}

#[tokio::test]
async fn jwt_logs_in_by_itself_and_again_when_the_server_drops_its_token() {
    let f = Fixture::new(Auth::Jwt {
        role: "jobs".into(),
        jwt_file: "/nonexistent/jwt".into(),
    });
    f.bao().secret = Some(("api".into(), "k1".into()));
    assert_eq!(password(f.get().await.unwrap()), "k1");
    assert_eq!(f.bao().logins, 1);
    f.bao().tokens.clear();
    f.clock.advance(CACHE_TTL);
    assert_eq!(password(f.get().await.unwrap()), "k1");
    assert_eq!(f.bao().logins, 2);
    // A JWT token is never kept in the keychain.
    assert!(f.mem.items().is_empty(), "{:?}", f.mem.items());
}

#[tokio::test]
async fn a_userpass_token_is_kept_in_the_keychain_for_the_next_agent_and_dropped_when_dead() {
    let f = Fixture::new(userpass());
    f.bao().secret = Some(("api".into(), "k1".into()));
    let session = f
        .store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    assert!(session.kept_in_keychain);
    // A restarted agent: same keychain, same server, no login.
    let again = Fixture::on(userpass(), f.mem.clone(), Arc::clone(&f.bao));
    assert_eq!(password(again.get().await.unwrap()), "k1");
    assert_eq!(f.bao().logins, 1);
    // The server forgets the token: the next agent removes it from the keychain.
    f.bao().tokens.clear();
    let third = Fixture::on(userpass(), f.mem.clone(), Arc::clone(&f.bao));
    let e = message(third.get().await.unwrap_err());
    assert!(e.contains("wbl openbao login team"), "{e}");
    assert_eq!(f.mem.items().len(), 0);
}

#[tokio::test]
async fn store_and_erase_change_the_server_then_the_cache_and_refuse_without_fallback() {
    let f = Fixture::new(userpass());
    f.store
        .login("openbao.team", Some(Secret::from("good")))
        .await
        .unwrap();
    let cred = Credential::new(Target::new("https", "h"), "api", Secret::from("k9"));
    assert!(f.route().store(cred).await.unwrap().persistent);
    assert_eq!(f.bao().secret, Some(("api".into(), "k9".into())));
    assert_eq!(password(f.get().await.unwrap()), "k9");
    assert_eq!(f.bao().reads, 0, "the written value is cached");
    // Another user's erase leaves it; an erase of any user removes it.
    assert_eq!(f.route().erase(&query(Some("bob"))).await.unwrap(), 0);
    assert_eq!(f.route().erase(&query(None)).await.unwrap(), 1);
    assert!(f.bao().secret.is_none());
    // An empty credential is never written over the team's key.
    let empty = Credential::new(Target::new("https", "h"), "", Secret::from(""));
    assert!(matches!(
        f.route().store(empty).await,
        Err(StoreError::BadRequest(_))
    ));
    // A refused write is an error naming the store, and changes nothing.
    f.bao().down = Some(Reason::Sealed);
    let cred = Credential::new(Target::new("https", "h"), "api", Secret::from("k10"));
    let e = f.route().store(cred).await.unwrap_err();
    assert!(e.to_string().contains("the key was not stored"), "{e}");
    assert!(f.bao().secret.is_none());
    assert_eq!(f.mem.items().len(), 1, "only the token is in the keychain");
}

#[test]
fn renewal_keeps_renewing_retries_during_an_outage_and_relogs_jwt_near_the_max_ttl() {
    let now = Instant::now();
    let expires = now + Duration::from_secs(40);
    let granted = Duration::from_secs(60);
    let s = |n| Some(Duration::from_secs(n));
    // Extended by at least half the previous grant: keep renewing.
    assert_eq!(
        after_renewal(Ok(s(60)), granted, false, now, expires),
        Next::Keep {
            ttl: s(60),
            warn: false
        }
    );
    // Less than half (the max TTL is near): jwt logs in again; the others warn, and stop
    // once under a second is left.
    assert_eq!(
        after_renewal(Ok(s(20)), granted, true, now, expires),
        Next::Relogin
    );
    assert_eq!(
        after_renewal(Ok(s(20)), granted, false, now, expires),
        Next::Keep {
            ttl: s(20),
            warn: true
        }
    );
    assert_eq!(
        after_renewal(Ok(Some(Duration::ZERO)), granted, false, now, expires),
        Next::KeepAndStop {
            ttl: Some(Duration::ZERO)
        }
    );
    // An outage while the token lives: try again after half the time left, 0.2 to 10 s.
    let down = Reason::Unreachable("x".into());
    assert_eq!(
        after_renewal(Err(&down), granted, false, now, expires),
        Next::Retry(Duration::from_secs(10))
    );
    let soon = now + Duration::from_millis(100);
    assert_eq!(
        after_renewal(Err(&Reason::Sealed), granted, false, now, soon),
        Next::Retry(Duration::from_millis(200))
    );
    // The token is gone, or the server refuses: jwt logs in again, the others stop.
    assert_eq!(
        after_renewal(Err(&down), granted, true, expires, expires),
        Next::Relogin
    );
    assert_eq!(
        after_renewal(Err(&Reason::TokenExpired), granted, false, now, expires),
        Next::Stop
    );
    assert_eq!(
        after_renewal(Err(&Reason::PermissionDenied), granted, true, now, expires),
        Next::Relogin
    );
}
