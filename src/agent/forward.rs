//! Forwards (`wbl ssh`): per grant, a restricted socket bound beside the agent's own that
//! answers only the hello and `get` for the granted hosts, and the registry `wbl status` lists.
//!
//! A forward lives exactly as long as the connection that opened it (`wbl ssh` holds it for the
//! session): dropping the [`Held`] guard ends the grant, stops the restricted socket's accept
//! loop, closes its connections and removes the socket file. Past its TTL a grant refuses every
//! `get` (its socket stays, to say so, until the session ends) and is no longer listed. Every
//! credential handed out over a forward is logged with its destination.

// Forwards are Unix domain sockets; elsewhere only the refusal is built.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wbl_proto::{ForwardInfo, ForwardRequest, Request, Target};

use super::State;

/// At most this many forwards at once (each holds a socket and a connection).
pub const MAX_FORWARDS: usize = 64;
/// At most this many hosts per grant.
pub const MAX_HOSTS: usize = 32;
/// The longest TTL a grant may ask for.
pub const MAX_TTL_SECS: u64 = wbl_proto::MAX_FORWARD_TTL_SECS;
/// Destinations longer than this are cut (they are only shown and logged).
const MAX_DESTINATION: usize = 200;

/// One grant: which hosts a forward may get credentials for, until when, and for whom.
pub struct Grant {
    id: String,
    destination: String,
    hosts: Vec<Target>,
    /// The account handed out for every host, when the grant names one.
    pub(crate) account: Option<String>,
    socket: PathBuf,
    created_unix: u64,
    /// When the TTL ends, as a deadline and as Unix time.
    expires: Option<(Instant, u64)>,
    handed_out: AtomicU64,
    ended: tokio::sync::watch::Sender<bool>,
}

impl Grant {
    /// Where the forward goes (`ssh`'s destination), for the access log's channel.
    pub(crate) fn destination(&self) -> &str {
        &self.destination
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Still valid: not ended and not past its TTL.
    pub(crate) fn live(&self) -> bool {
        !*self.ended.borrow() && self.expires.is_none_or(|(at, _)| Instant::now() < at)
    }

    /// Resolves once the grant has ended.
    pub(crate) fn ended(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ended.subscribe()
    }

    fn allows(&self, target: &Target) -> bool {
        self.hosts.iter().any(|h| {
            h.protocol.eq_ignore_ascii_case(&target.protocol)
                && h.host.eq_ignore_ascii_case(&target.host)
        })
    }

    fn hosts_text(&self) -> String {
        let hosts: Vec<String> = self.hosts.iter().map(|h| h.to_string()).collect();
        hosts.join(", ")
    }

    fn info(&self) -> ForwardInfo {
        ForwardInfo {
            id: self.id.clone(),
            destination: self.destination.clone(),
            socket: self.socket.display().to_string(),
            hosts: self.hosts.clone(),
            account: self.account.clone(),
            created_unix: self.created_unix,
            expires_unix: self.expires.map(|(_, unix)| unix),
            handed_out: self.handed_out.load(Ordering::Relaxed),
        }
    }
}

/// The live forwards.
#[derive(Default)]
pub struct Forwards {
    live: Mutex<Vec<Arc<Grant>>>,
}

impl Forwards {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Grant>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `wbl status` shows: every live grant, oldest first.
    pub fn list(&self) -> Vec<ForwardInfo> {
        self.lock()
            .iter()
            .filter(|g| g.live())
            .map(|g| g.info())
            .collect()
    }
}

/// Held by the connection that opened a forward; dropping it ends the grant.
pub(crate) struct Held {
    grant: Arc<Grant>,
    registry: Arc<Forwards>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let g = &self.grant;
        g.ended.send_replace(true);
        self.registry.lock().retain(|x| !Arc::ptr_eq(x, g));
        let _ = std::fs::remove_file(&g.socket);
        tracing::info!(
            forward = %g.id,
            destination = %g.destination,
            handed_out = g.handed_out.load(Ordering::Relaxed),
            "forward closed"
        );
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a forward request and normalises its hosts (lower-case protocol, no path, no
/// duplicates); the error is the message for the client.
fn checked_hosts(req: &ForwardRequest) -> Result<Vec<Target>, String> {
    if req.hosts.is_empty() {
        return Err("a forward needs at least one host to grant".into());
    }
    if req.hosts.len() > MAX_HOSTS {
        return Err(format!("a forward may grant at most {MAX_HOSTS} hosts"));
    }
    let mut hosts: Vec<Target> = Vec::new();
    for t in &req.hosts {
        let protocol = t.protocol.to_ascii_lowercase();
        if !matches!(protocol.as_str(), "https" | "http") {
            return Err(format!(
                "cannot grant {t}: only http and https hosts can be forwarded"
            ));
        }
        if t.host.is_empty()
            || t.host
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | '\\' | '@'))
        {
            return Err(format!("cannot grant {t}: not a host name"));
        }
        let target = Target::new(protocol, t.host.clone());
        if !hosts.contains(&target) {
            hosts.push(target);
        }
    }
    match req.ttl_secs {
        Some(0) => return Err("the TTL of a forward must be at least one second".into()),
        Some(t) if t > MAX_TTL_SECS => {
            return Err(format!(
                "the TTL of a forward may be at most {} days",
                MAX_TTL_SECS / 86400
            ));
        }
        _ => {}
    }
    Ok(hosts)
}

/// A name chosen by the client for the socket: 1 to 32 of `[A-Za-z0-9_-]`.
fn checked_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` cannot name a forward: use 1 to 32 letters, digits, `-` or `_`"
        ));
    }
    Ok(())
}

/// Printable, bounded: the destination is only shown and logged.
fn clean_destination(d: &str) -> String {
    let mut out: String = d
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_DESTINATION)
        .collect();
    if out.is_empty() {
        out.push('?');
    }
    out
}

/// 64 random bits in hex: the id of a forward and the end of its socket's name.
fn random_id() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for a forward: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why a forward was not opened; the message is for the client.
#[derive(Debug)]
pub(crate) enum NotOpened {
    /// The request is not acceptable (no host, a bad TTL or name, a name taken).
    Invalid(String),
    /// The agent cannot open one now (too many, no socket, no randomness).
    Unavailable(String),
}

/// Opens a forward for the connection that asked: binds its restricted socket and starts
/// serving it. The forward's description goes to the asking client; the [`Held`] guard stays
/// with its connection.
#[cfg(unix)]
pub(crate) fn open(
    state: &Arc<State>,
    req: ForwardRequest,
    spawn: &super::Spawn,
) -> Result<(ForwardInfo, Held), NotOpened> {
    let hosts = checked_hosts(&req).map_err(NotOpened::Invalid)?;
    if let Some(problem) = req
        .account
        .as_deref()
        .and_then(wbl_proto::account_name_problem)
    {
        return Err(NotOpened::Invalid(problem));
    }
    let registry = Arc::clone(&state.forwards);
    let err = |kind: fn(String) -> NotOpened, message: String| Err(kind(message));
    // Held from the checks to the registration, so that two forwards never take one name.
    let mut live = registry.lock();
    if live.len() >= MAX_FORWARDS {
        return err(
            NotOpened::Unavailable,
            format!("too many forwards open (at most {MAX_FORWARDS}); end one first"),
        );
    }
    let id = match &req.name {
        Some(name) => {
            if let Err(message) = checked_name(name) {
                return err(NotOpened::Invalid, message);
            }
            if live.iter().any(|g| &g.id == name) {
                return err(
                    NotOpened::Invalid,
                    format!("a forward named {name} is already open; end it first"),
                );
            }
            name.clone()
        }
        None => match random_id() {
            Ok(id) => id,
            Err(message) => return err(NotOpened::Unavailable, message),
        },
    };
    let socket = crate::rendezvous::RuntimePaths {
        socket: PathBuf::from(state.serving.socket()),
    }
    .forward_socket(&id);
    let listener = match super::listen::bind_restricted(&socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, socket = %socket.display(), "cannot bind a forward socket");
            return err(
                NotOpened::Unavailable,
                format!("cannot listen on {}: {e}", socket.display()),
            );
        }
    };
    let created_unix = now_unix();
    let expires = req
        .ttl_secs
        .map(|t| (Instant::now() + Duration::from_secs(t), created_unix + t));
    let grant = Arc::new(Grant {
        id,
        destination: clean_destination(&req.destination),
        hosts,
        account: req.account.clone(),
        socket,
        created_unix,
        expires,
        handed_out: AtomicU64::new(0),
        ended: tokio::sync::watch::channel(false).0,
    });
    live.push(Arc::clone(&grant));
    drop(live);
    tracing::info!(
        forward = %grant.id,
        destination = %grant.destination,
        hosts = %grant.hosts_text(),
        ttl_secs = ?req.ttl_secs,
        "forward opened"
    );
    tokio::spawn(accept_loop(
        listener,
        Arc::clone(&grant),
        Arc::clone(state),
        spawn.clone(),
    ));
    Ok((grant.info(), Held { grant, registry }))
}

#[cfg(not(unix))]
pub(crate) fn open(
    _state: &Arc<State>,
    _req: ForwardRequest,
    _spawn: &super::Spawn,
) -> Result<(ForwardInfo, Held), NotOpened> {
    Err(NotOpened::Unavailable(
        "forwards need Unix domain sockets; this platform has none".into(),
    ))
}

/// Accepts on a restricted socket until its grant ends or the agent stops.
#[cfg(unix)]
async fn accept_loop(
    listener: interprocess::local_socket::tokio::Listener,
    grant: Arc<Grant>,
    state: Arc<State>,
    spawn: super::Spawn,
) {
    use interprocess::local_socket::traits::tokio::Listener as _;
    let mut ended = grant.ended();
    let mut stop = state.shutdown_signal();
    loop {
        tokio::select! {
            accepted = async {
                spawn.registry.room().await;
                listener.accept().await
            } => match accepted {
                Ok(stream) => {
                    let ticket = spawn.registry.admit();
                    let (state, grant, spawn) = (Arc::clone(&state), Arc::clone(&grant), spawn.clone());
                    tokio::spawn(async move {
                        let channel = super::Channel::Forward(grant);
                        super::serve(stream, state, channel, ticket, spawn).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on a forward socket");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = async { ended.wait_for(|e| *e).await.map(|_| ()) } => break,
            _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => break,
        }
    }
}

/// What a restricted channel may ask: the hello (answered by `dispatch` as on any connection:
/// a second one is a client bug) and `get` for a granted host while the grant lives; the refusal
/// message (for `Error{Forbidden}`) otherwise. Every request kind is named here, so a new one is refused until decided.
/// A permitted `get` as the grant serves it: the grant's account, when it names one, in
/// place of the account the remote asked for (which `permit` checked).
pub(crate) fn narrow(grant: &Grant, req: Request) -> Request {
    let Some(account) = &grant.account else {
        return req;
    };
    let narrowed = |mut query: wbl_proto::Query| {
        query.account = wbl_proto::Account::Named(account.clone());
        query.username = None;
        query
    };
    match req {
        Request::Get(query) => Request::Get(narrowed(query)),
        Request::GetFor { query, purpose } => Request::GetFor {
            query: narrowed(query),
            purpose,
        },
        other => other,
    }
}

pub(crate) fn permit(grant: &Grant, req: &Request) -> Result<(), String> {
    let what = match req {
        Request::Hello { .. } => return Ok(()),
        Request::Get(query) | Request::GetFor { query, .. } => {
            if !grant.live() {
                return Err(
                    "this forward's grant has ended (its --ttl passed); reconnect with `wbl ssh` \
                     for a new one"
                        .into(),
                );
            }
            if !grant.allows(&query.target) {
                tracing::info!(
                    forward = %grant.id,
                    destination = %grant.destination,
                    target = %query.target,
                    "refused a get for a host not granted to the forward"
                );
                // The remote client's own words, escaped here too: an older client prints
                // the message as it is. Only an --allow that `wbl ssh` takes, and that grants
                // this very host.
                let asked = crate::text::printable(&format!(
                    "{}://{}",
                    query.target.protocol, query.target.host
                ))
                .into_owned();
                let next = match crate::grant::allow_hint(&query.target) {
                    Ok(allow) => format!(
                        "to allow it, reconnect with `wbl ssh --allow {} ...`",
                        crate::text::printable(&allow)
                    ),
                    Err(why) => format!("no forward can get it: {why}"),
                };
                return Err(format!(
                    "{asked} is not granted to this forwarded wbl socket (it may get keys for {} \
                     only); {next}",
                    grant.hosts_text(),
                ));
            }
            if let (Some(granted), wbl_proto::Account::Named(asked)) =
                (&grant.account, &query.account)
                && granted != asked
            {
                return Err(format!(
                    "this forwarded wbl socket hands out the account `{}` only, not `{}`; \
                     reconnect with `wbl ssh --account {}` for that one",
                    crate::text::printable(granted),
                    crate::text::printable(asked),
                    crate::text::printable(asked),
                ));
            }
            return Ok(());
        }
        Request::Store(_) => "storing a credential",
        Request::Erase(_) => "erasing credentials",
        Request::List => "listing credentials",
        Request::Status => "the agent's status",
        Request::Shutdown => "stopping the agent",
        Request::Forward(_) => "opening a forward",
        Request::Forwards => "listing forwards",
        Request::Proxies => "listing proxies",
        Request::Proxy(_) => "opening a proxy",
        Request::StoreLogin { .. } => "logging in to a store",
    };
    tracing::info!(
        forward = %grant.id,
        destination = %grant.destination,
        refused = what,
        "refused a request over a forward"
    );
    Err(format!(
        "{what} is not allowed over a forwarded wbl socket: it only gets keys for {}; do that \
         on the machine that runs `wbl ssh`",
        grant.hosts_text()
    ))
}

/// Records a credential handed out over a forward: counted, and logged with the destination
/// (never the secret).
pub(crate) fn handed_out(grant: &Grant, cred: &wbl_proto::Credential) {
    grant.handed_out.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        forward = %grant.id,
        destination = %grant.destination,
        target = %cred.target,
        user = %cred.username,
        "credential handed out over a forward"
    );
}

/// A grant with no socket, for unit tests of the dispatch.
#[cfg(test)]
pub(crate) fn test_grant(hosts: Vec<Target>) -> Arc<Grant> {
    test_grant_of(hosts, None)
}

/// A grant with no socket that hands out `account`, for unit tests of the dispatch.
#[cfg(test)]
pub(crate) fn test_grant_of(hosts: Vec<Target>, account: Option<&str>) -> Arc<Grant> {
    Arc::new(Grant {
        id: "test".into(),
        destination: "test-host".into(),
        hosts,
        account: account.map(str::to_owned),
        socket: PathBuf::from("/nonexistent/wbl-test"),
        created_unix: 0,
        expires: None,
        handed_out: AtomicU64::new(0),
        ended: tokio::sync::watch::channel(false).0,
    })
}

#[cfg(test)]
impl Grant {
    pub(crate) fn end_for_test(&self) {
        self.ended.send_replace(true);
    }

    pub(crate) fn handed_out_for_test(&self) -> u64 {
        self.handed_out.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(hosts: &[(&str, &str)], ttl: Option<u64>) -> ForwardRequest {
        ForwardRequest {
            destination: "gpu".into(),
            hosts: hosts.iter().map(|(p, h)| Target::new(*p, *h)).collect(),
            ttl_secs: ttl,
            name: None,
            account: None,
        }
    }

    #[test]
    fn hosts_are_checked_and_normalised() {
        let h = checked_hosts(&req(
            &[("HTTPS", "api.wandb.ai"), ("https", "api.wandb.ai")],
            None,
        ))
        .unwrap();
        assert_eq!(h, vec![Target::new("https", "api.wandb.ai")]);
        assert!(checked_hosts(&req(&[], None)).is_err());
        assert!(checked_hosts(&req(&[("ssh", "h")], None)).is_err());
        assert!(checked_hosts(&req(&[("https", "")], None)).is_err());
        assert!(checked_hosts(&req(&[("https", "a b")], None)).is_err());
        assert!(checked_hosts(&req(&[("https", "h")], Some(0))).is_err());
        assert!(checked_hosts(&req(&[("https", "h")], Some(MAX_TTL_SECS + 1))).is_err());
        let many: Vec<(&str, &str)> = vec![("https", "h"); MAX_HOSTS + 1];
        assert!(checked_hosts(&req(&many, None)).is_err());
    }

    #[test]
    fn names() {
        assert!(checked_name("gpu-box_1").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(33)] {
            assert!(checked_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn destination_is_printable_and_bounded() {
        assert_eq!(clean_destination("a\nb\x1b"), "a?b?");
        assert_eq!(clean_destination(""), "?");
        assert_eq!(clean_destination(&"x".repeat(500)).len(), MAX_DESTINATION);
    }

    #[test]
    fn a_grant_allows_its_hosts_only() {
        let g = Grant {
            id: "1".into(),
            destination: "d".into(),
            hosts: vec![Target::new("https", "api.wandb.ai")],
            account: None,
            socket: PathBuf::from("/nonexistent"),
            created_unix: 0,
            expires: None,
            handed_out: AtomicU64::new(0),
            ended: tokio::sync::watch::channel(false).0,
        };
        assert!(g.allows(&Target::new("https", "API.wandb.ai")));
        let mut with_path = Target::new("https", "api.wandb.ai");
        with_path.path = Some("x/y".into());
        assert!(g.allows(&with_path));
        assert!(!g.allows(&Target::new("http", "api.wandb.ai")));
        assert!(!g.allows(&Target::new("https", "api.wandb.ai:8443")));
        assert!(g.live());
        g.ended.send_replace(true);
        assert!(!g.live());
    }
}
