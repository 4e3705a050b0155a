//! Key-injecting proxies (`wbl exec --proxy`, `wbl ssh --proxy`): per grant, a listener (a
//! loopback TCP port, or a restricted Unix socket for `ssh -R`) that takes the W&B SDK's
//! requests carrying a random placeholder in the key's place, puts the real key in, and
//! forwards them to the W&B server the key belongs to. The key never reaches the proxy's
//! client.
//!
//! The agent checks the request and finds the key ([`open`]); a proxy engine, a process of
//! its own started from the agent's executable ([`engine`]) and supervised by the agent
//! ([`supervise`]), serves the grant: the HTTP side never runs in the agent. A proxy's grant
//! lives exactly as long as the connection that opened it (`wbl exec --proxy` holds it for the
//! command's life, `wbl ssh --proxy` for the session), and refuses everything past its TTL.
//! When the grant ends its connections close at once; a loopback listener stays
//! [`ENDED_GRACE`] longer to refuse, and log, what still comes (a process the command left
//! behind), while a restricted socket goes at once (its remote port went with the session).
//! What a request may do is [`rules`]; the HTTP part is [`serve`].

// Restricted sockets are Unix domain sockets; elsewhere only the loopback listener is built.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

pub mod engine;
mod idle;
pub(crate) mod rules;
mod serve;
mod supervise;
mod tcp_peer;
mod upstream;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wbl_proto::engine::{EngineGrant, EngineListen};
use wbl_proto::{ErrorCode, ProxyInfo, ProxyListen, ProxyRequest, Response, Secret};
use zeroize::Zeroizing;

use super::{Session, State};

/// At most this many proxies at once.
pub const MAX_PROXIES: usize = 64;

/// How long a loopback proxy's listener stays open after its grant ended, refusing every
/// request as `ended` (and logging it); then it closes. It counts against no limit of open
/// proxies; at most [`MAX_PROXIES`] listeners linger at once (beyond, they close at once).
pub const ENDED_GRACE: Duration = Duration::from_secs(30);

/// The ids of the open proxies (a name is taken while its proxy lives).
static OPEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn open_ids() -> std::sync::MutexGuard<'static, Vec<String>> {
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held by the connection that opened the proxy: dropping it ends the grant (its engine
/// closes the grant's connections and refuses from then on), removes a restricted socket's
/// file and gives its id back.
pub(crate) struct Held {
    id: String,
    destination: String,
    socket: Option<std::path::PathBuf>,
    end: Option<supervise::End>,
}

/// How long ending a grant waits for its engine to confirm.
const END_WAIT: Duration = Duration::from_secs(2);

impl Held {
    /// Ends the grant and waits (bounded) until its engine refuses every request, so that
    /// once the proxy's client hears the grant is over, it is.
    pub(crate) async fn end(mut self) {
        let (confirm, confirmed) = tokio::sync::oneshot::channel();
        if let Some(end) = self.end.take()
            && end.send(confirm).is_ok()
        {
            let _ = tokio::time::timeout(END_WAIT, confirmed).await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(s) = &self.socket {
            let _ = std::fs::remove_file(s);
        }
        open_ids().retain(|id| id != &self.id);
        tracing::info!(proxy = %self.id, destination = %self.destination, "proxy closed");
    }
}

/// The proxies open or ending now (`wbl status`).
pub(crate) fn list() -> Vec<wbl_proto::ProxyStatus> {
    supervise::list()
}

/// Opens a proxy for the connection that asked: gets the key (an access-log entry with the
/// use `proxy`), makes the placeholder, starts listening. The answer goes to the client; the
/// [`Held`] guard stays with its connection.
pub(crate) async fn open(
    state: &Arc<State>,
    session: &Session,
    req: ProxyRequest,
) -> (Response, Option<Held>) {
    match open_inner(state, session, req).await {
        Ok((info, held)) => (Response::Proxying(info), Some(held)),
        Err(response) => (response, None),
    }
}

async fn open_inner(
    state: &Arc<State>,
    session: &Session,
    req: ProxyRequest,
) -> Result<(ProxyInfo, Held), Response> {
    let bad = |m: String| Response::error(ErrorCode::BadRequest, m);
    let upstream = url::Url::parse(&req.upstream)
        .map_err(|e| bad(format!("`{}` is not a URL: {e}", req.upstream)))?;
    upstream::reachable(&upstream).map_err(bad)?;
    if req.queries.is_empty() || req.queries.len() > 4 {
        return Err(bad(
            "a proxy needs one to four places to find its key".into()
        ));
    }
    match req.ttl_secs {
        Some(0) => return Err(bad("the TTL of a proxy must be at least one second".into())),
        Some(t) if t > wbl_proto::MAX_FORWARD_TTL_SECS => {
            return Err(bad("the TTL of a proxy may be at most 30 days".into()));
        }
        _ => {}
    }
    if open_ids().len() >= MAX_PROXIES {
        return Err(Response::error(
            ErrorCode::Internal,
            format!("too many proxies open (at most {MAX_PROXIES}); end one first"),
        ));
    }
    let destination = crate::text::printable(&req.destination)
        .chars()
        .take(200)
        .collect::<String>();
    let cred = key(state, session, &req, &destination).await?;
    let internal = |m: String| Response::error(ErrorCode::Internal, m);
    let id = match &req.name {
        Some(name) => {
            if name.is_empty()
                || name.len() > 32
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(format!(
                    "`{}` cannot name a proxy: use 1 to 32 letters, digits, `-` or `_`",
                    crate::text::printable(name)
                )));
            }
            name.clone()
        }
        None => random_hex(8).map_err(internal)?,
    };
    {
        let mut ids = open_ids();
        if ids.contains(&id) {
            return Err(bad(format!(
                "a proxy named {id} is already open; end it first"
            )));
        }
        ids.push(id.clone());
    }
    // Until the guard exists, a failure gives the id back.
    let mut reserved = Reserved(Some(id.clone()));
    let placeholder = Zeroizing::new(format!(
        "{}{}",
        rules::PLACEHOLDER_PREFIX,
        random_hex(32).map_err(internal)?
    ));
    let authorization = {
        use base64::Engine;
        let raw = Zeroizing::new(format!("api:{}", cred.password.expose()));
        Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        ))
    };
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut upstream = upstream;
    let trimmed = upstream.path().trim_end_matches('/').to_owned();
    upstream.set_path(&trimmed);
    upstream.set_query(None);
    upstream.set_fragment(None);
    let upstream = upstream.to_string().trim_end_matches('/').to_owned();
    let account = wbl_proto::user_account(&cred.username).to_owned();
    let (listen, socket) = match req.listen {
        ProxyListen::Loopback => (EngineListen::Loopback, None),
        #[cfg(unix)]
        ProxyListen::Socket => {
            let path = crate::rendezvous::RuntimePaths {
                socket: std::path::PathBuf::from(state.serving.socket()),
            }
            .forward_socket(&format!("proxy.{id}"));
            (EngineListen::Socket(path.display().to_string()), Some(path))
        }
        #[cfg(not(unix))]
        ProxyListen::Socket => {
            return Err(internal(
                "a proxy for ssh needs Unix domain sockets; this platform has none".into(),
            ));
        }
    };
    let log_as = {
        let parsed = url::Url::parse(&upstream).ok();
        let host = parsed
            .as_ref()
            .map_or_else(String::new, |u| match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_owned(),
            });
        supervise::LogAs {
            protocol: parsed
                .as_ref()
                .map_or_else(String::new, |u| u.scheme().to_owned()),
            host,
            account: account.clone(),
            channel: Arc::from(format!("proxy:{destination}").as_str()),
        }
    };
    let grant = EngineGrant {
        id: id.clone(),
        destination: destination.clone(),
        placeholder: Secret::from(placeholder.as_str()),
        authorization,
        upstream: upstream.clone(),
        ttl_secs: req.ttl_secs,
        listen,
    };
    let shown = wbl_proto::ProxyStatus {
        id: id.clone(),
        destination: destination.clone(),
        address: String::new(),
        upstream: upstream.clone(),
        account: account.clone(),
        created_unix: now_unix,
        expires_unix: req.ttl_secs.map(|t| now_unix + t),
        ended: false,
        refused: 0,
    };
    let started = supervise::start(state, grant, log_as, shown)
        .await
        .map_err(internal)?;
    reserved.disarm();
    tracing::info!(
        proxy = %id,
        destination = %destination,
        %upstream,
        address = %started.address,
        ttl_secs = ?req.ttl_secs,
        "proxy opened"
    );
    let info = ProxyInfo {
        id: id.clone(),
        placeholder: Secret::from(placeholder.as_str()),
        address: started.address,
        upstream,
        account,
        expires_unix: req.ttl_secs.map(|t| now_unix + t),
    };
    Ok((
        info,
        Held {
            id,
            destination,
            socket,
            end: Some(started.end),
        },
    ))
}

/// The key for the proxy: the first of the request's queries that finds one whose target and
/// user name are those asked for (as the client's own lookup does).
async fn key(
    state: &State,
    session: &Session,
    req: &ProxyRequest,
    destination: &str,
) -> Result<wbl_proto::Credential, Response> {
    for (i, q) in req.queries.iter().enumerate() {
        let expected = match &q.account {
            wbl_proto::Account::Any => q.username.clone(),
            wbl_proto::Account::Named(n) => Some(wbl_proto::account_user(n).to_owned()),
            wbl_proto::Account::Only => None,
        };
        let target = q.target.clone();
        match super::dispatch::proxy_key(state, session, q.clone(), destination).await {
            Response::Credential(Some(c))
                if c.target == target
                    && expected.as_deref().is_none_or(|u| c.username == u)
                    && !c.password.is_empty() =>
            {
                return Ok(c);
            }
            Response::Error {
                code: ErrorCode::NotFound,
                message,
            } if i == 0 => {
                return Err(Response::error(ErrorCode::NotFound, message));
            }
            Response::Error { code, message } if code != ErrorCode::NotFound => {
                return Err(Response::error(code, message));
            }
            _ => {}
        }
    }
    Err(Response::error(
        ErrorCode::NotFound,
        format!("no API key stored for {}", req.upstream),
    ))
}

/// Gives a reserved id back when dropped (an open that failed half way).
struct Reserved(Option<String>);

impl Reserved {
    /// The proxy is open: its [`Held`] gives the id back.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(mine) = self.0.take() {
            open_ids().retain(|id| id != &mine);
        }
    }
}

/// `bytes` random bytes in hex.
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    getrandom::getrandom(&mut buf).map_err(|e| format!("no randomness for a proxy: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
