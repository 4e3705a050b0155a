//! The HTTP side of a proxy: accepts on its listener, checks each request ([`super::rules`]),
//! swaps the placeholder for the key and streams the request to the upstream and its answer
//! back, both bodies as they come (no buffering: `file_stream` lasts the whole run, uploads
//! are large). Connections are kept alive on both sides. A refused request is logged with its
//! client as far as it can be known (`tcp_peer.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::idle::{IDLE, Idle};
use super::rules::{self, Refusal, error_json};
use super::upstream::{Link, MAX_BUF, Upstream};
use super::{ENDED_GRACE, tcp_peer};
use crate::accesslog::Caller;
use wbl_proto::engine::{EngineRefusal, FromEngine};
use zeroize::Zeroizing;

/// One proxy's grant, as its engine holds it: the placeholder it accepts, the key it puts in,
/// where it forwards, until when.
pub(crate) struct Grant {
    pub(crate) id: String,
    pub(crate) destination: String,
    pub(crate) placeholder: Zeroizing<String>,
    /// `Basic base64("api:" + key)`, what the upstream gets: built once (marked sensitive, so
    /// hyper never logs it) and cloned into each request, which shares its bytes. hyper's
    /// header bytes cannot be zeroized; one copy per grant is what remains.
    pub(crate) authorization: hyper::header::HeaderValue,
    /// The upstream's origin and path prefix, without a trailing `/`.
    pub(crate) upstream: url::Url,
    pub(crate) expires: Option<Instant>,
    pub(crate) ended: tokio::sync::watch::Sender<bool>,
}

impl Grant {
    /// Not ended and not past its TTL.
    pub(crate) fn live(&self) -> bool {
        !*self.ended.borrow() && self.expires.is_none_or(|at| Instant::now() < at)
    }
}

type Body = Either<Incoming, Full<Bytes>>;

/// Where a proxy listens, bound by its engine.
pub(crate) enum Listener {
    Tcp(std::net::TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// What each request of a proxy needs.
struct Shared {
    grant: Arc<Grant>,
    upstream: Arc<Upstream>,
    /// The upstream's origin and path prefix, no trailing `/`.
    base: String,
    /// Refusals go to the agent, which writes them to the access log.
    events: tokio::sync::mpsc::Sender<FromEngine>,
    /// The caller of a refusal whose client is not identified.
    unknown: Arc<Caller>,
    /// Identifications of loopback clients left this second ([`tcp_peer`]).
    budget: tcp_peer::Budget,
}

/// One client connection: on a loopback port, its address and the proxy's, and who it is
/// once a refusal needed to know.
struct Client {
    addrs: Option<(SocketAddr, SocketAddr)>,
    caller: tokio::sync::OnceCell<Arc<Caller>>,
}

impl Client {
    fn new(addrs: Option<(SocketAddr, SocketAddr)>) -> Arc<Client> {
        Arc::new(Client {
            addrs,
            caller: tokio::sync::OnceCell::new(),
        })
    }

    /// Who the client is: identified once per connection, within the proxy's budget.
    async fn caller(&self, shared: &Shared) -> Arc<Caller> {
        let Some((client, proxy)) = self.addrs else {
            return Arc::clone(&shared.unknown);
        };
        let caller = self.caller.get_or_init(|| async {
            if !shared.budget.take() {
                return Arc::clone(&shared.unknown);
            }
            match tokio::task::spawn_blocking(move || tcp_peer::identify(client, proxy)).await {
                Ok(c) => Arc::new(c),
                Err(_) => Arc::clone(&shared.unknown),
            }
        });
        Arc::clone(caller.await)
    }
}

/// Serves `listener` until the grant ends; a loopback listener then lingers [`ENDED_GRACE`]
/// (the task ends when it closes).
pub(crate) fn start(
    listener: Listener,
    grant: &Arc<Grant>,
    upstream: Arc<Upstream>,
    events: tokio::sync::mpsc::Sender<FromEngine>,
) -> tokio::task::JoinHandle<()> {
    let shared = Arc::new(Shared {
        grant: Arc::clone(grant),
        upstream,
        base: grant.upstream.as_str().trim_end_matches('/').to_owned(),
        events,
        unknown: Arc::new(Caller::unknown()),
        budget: tcp_peer::Budget::new(),
    });
    let linger = matches!(listener, Listener::Tcp(_));
    tokio::spawn(accept_loop(listener, shared, linger))
}

/// A proxy's listener on the engine's runtime.
enum Accepting {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// An accepted client connection.
enum Accepted {
    Tcp(tokio::net::TcpStream, Arc<Client>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Accepting {
    fn new(listener: Listener) -> std::io::Result<Accepting> {
        Ok(match listener {
            Listener::Tcp(l) => Accepting::Tcp(tokio::net::TcpListener::from_std(l)?),
            #[cfg(unix)]
            Listener::Unix(l) => Accepting::Unix(tokio::net::UnixListener::from_std(l)?),
        })
    }

    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Accepting::Tcp(l) => {
                let (s, client) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let addrs = s.local_addr().ok().map(|proxy| (client, proxy));
                Ok(Accepted::Tcp(s, Client::new(addrs)))
            }
            #[cfg(unix)]
            Accepting::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
        }
    }
}

impl Accepted {
    /// Serves the connection: until the grant ends (`late`: accepted after, until it closes
    /// or its task is dropped).
    async fn serve(self, shared: Arc<Shared>, late: bool) {
        match self {
            Accepted::Tcp(s, client) => connection(s, shared, client, late).await,
            #[cfg(unix)]
            Accepted::Unix(s) => connection(s, shared, Client::new(None), late).await,
        }
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, linger: bool) {
    let mut ended = shared.grant.ended.subscribe();
    let listener = match Accepting::new(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "the proxy cannot use its listener");
            return;
        }
    };
    // A client accepted once the grant had ended (before this loop saw it) is a late one.
    let mut first_late = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) if *shared.grant.ended.borrow() => {
                    first_late = Some(a);
                    break;
                }
                Ok(a) => {
                    tokio::spawn(a.serve(Arc::clone(&shared), false));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on a proxy");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = async { ended.wait_for(|e| *e).await.map(|_| ()) } => break,
        }
    }
    // The grant ended. A loopback port stays a while to refuse and log what still comes;
    // then it closes with its connections (and the engine exits).
    if !linger {
        return;
    }
    let mut late = tokio::task::JoinSet::new();
    if let Some(a) = first_late {
        late.spawn(a.serve(Arc::clone(&shared), true));
    }
    let over = tokio::time::sleep(ENDED_GRACE);
    tokio::pin!(over);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    late.spawn(a.serve(Arc::clone(&shared), true));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on a proxy");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = late.join_next() => {}
            () = &mut over => break,
        }
    }
    drop(late);
    drop(listener);
    tracing::debug!(proxy = %shared.grant.id, "the ended proxy's listener closed");
}

/// One client connection, until it closes, the grant ends or it stays idle for its bound
/// (`late`: one accepted after the grant ended, refused request by request, until it closes
/// or its listener does).
async fn connection<I>(io: I, shared: Arc<Shared>, client: Arc<Client>, late: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut ended = shared.grant.ended.subscribe();
    let link = Arc::new(Link::new(Arc::clone(&shared.upstream)));
    let service = hyper::service::service_fn(move |req| {
        handle(
            req,
            Arc::clone(&shared),
            Arc::clone(&client),
            Arc::clone(&link),
        )
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(Idle::new(io, IDLE)), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "proxy connection ended");
            }
        }
        _ = async { ended.wait_for(|e| *e).await.map(|_| ()) }, if !late => {}
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    client: Arc<Client>,
    link: Arc<Link>,
) -> Result<Response<Body>, Infallible> {
    let grant = &shared.grant;
    let refused = if !grant.live() {
        Some(Refusal::Ended)
    } else if !rules::carries(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
        &grant.placeholder,
    ) {
        Some(Refusal::Placeholder)
    } else if !rules::allowed_path(req.uri().path()) {
        Some(Refusal::Path)
    } else {
        None
    };
    if let Some(r) = refused {
        let caller = client.caller(&shared).await;
        log_refusal(&shared, &req, r, caller);
        return Ok(plain(
            StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN),
            r.body(),
        ));
    }
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match shared.upstream.uri(path_and_query) {
        Some(u) => u,
        None => {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                error_json("wbl proxy: the request's path is not a valid URL path"),
            ));
        }
    };
    parts.version = hyper::Version::HTTP_11;
    // GraphQL answers name the real API origin in absolute URLs (a run file's `url` on a
    // server that serves its own files); the SDK would call those without the key. They are
    // rewritten to the proxy's origin as the client named it, so their answers come
    // uncompressed.
    let rewrite = (parts.uri.path().ends_with("/graphql"))
        .then(|| proxy_origin(&parts.headers))
        .flatten();
    if rewrite.is_some() {
        parts.headers.remove(header::ACCEPT_ENCODING);
    }
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, shared.upstream.host());
    parts
        .headers
        .insert(header::AUTHORIZATION, grant.authorization.clone());
    match link.send(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            match rewrite {
                Some(origin) if is_plain_json(&parts.headers) => {
                    Ok(rewritten(parts, body, &shared.base, &origin).await)
                }
                _ => Ok(Response::from_parts(parts, Either::Left(body))),
            }
        }
        Err(e) => {
            tracing::info!(proxy = %grant.id, error = %e, "the proxy could not reach its upstream");
            Ok(plain(
                StatusCode::BAD_GATEWAY,
                error_json(&format!("wbl proxy: cannot reach {}: {e}", shared.base)),
            ))
        }
    }
}

/// The largest GraphQL answer whose absolute URLs are rewritten; a larger one is refused.
const MAX_REWRITE: usize = 64 * 1024 * 1024;

/// `http://HOST` for the request's `Host` header (the proxy as its client reaches it:
/// `127.0.0.1:PORT`, or the remote's port through ssh), when it is a plain host and port.
fn proxy_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'[' | b']'));
    plain.then(|| format!("http://{host}"))
}

/// A JSON answer without a content encoding.
fn is_plain_json(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    json && !encoded
}

/// The answer with every occurrence of the upstream's base URL replaced by the proxy's
/// origin (paths below the base map one to one, see [`handle`]).
async fn rewritten(
    mut parts: hyper::http::response::Parts,
    body: Incoming,
    base: &str,
    origin: &str,
) -> Response<Body> {
    use http_body_util::BodyExt;
    let collected = match http_body_util::Limited::new(body, MAX_REWRITE)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                error_json(&format!(
                    "wbl proxy: the server's answer could not be read: {e}"
                )),
            );
        }
    };
    let bytes = replace_all(&collected, base.as_bytes(), origin.as_bytes());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Response::from_parts(parts, Either::Right(Full::new(bytes)))
}

/// `haystack` with every `from` replaced by `to` (the same bytes when there is none).
fn replace_all(haystack: &Bytes, from: &[u8], to: &[u8]) -> Bytes {
    let finder = memchr::memmem::Finder::new(from);
    if finder.find(haystack).is_none() {
        return haystack.clone();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = &haystack[..];
    while let Some(i) = finder.find(rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

fn plain(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Headers that belong to one connection, not to the request (RFC 9110, 7.6.1), and those
/// named by `Connection`.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        headers.remove(n.as_str());
    }
    for h in [
        header::CONNECTION,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        headers.remove(h);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// A refused request, to the agent for its access log: the reason, method and path (never
/// the query string or a header) and the client as far as it is known. Dropped, and said so
/// here, when the agent does not keep up.
fn log_refusal(shared: &Shared, req: &Request<Incoming>, r: Refusal, caller: Arc<Caller>) {
    let path: String = crate::text::printable(req.uri().path())
        .chars()
        .take(200)
        .collect();
    tracing::info!(
        proxy = %shared.grant.id,
        destination = %shared.grant.destination,
        refused = r.code(),
        method = %req.method(),
        %path,
        "the proxy refused a request"
    );
    let refusal = EngineRefusal {
        code: r.code().to_owned(),
        request: format!("{} {path}", req.method()),
        caller: serde_json::to_string(&*caller).ok(),
    };
    if shared
        .events
        .try_send(FromEngine::Refused(refusal))
        .is_err()
    {
        tracing::warn!(
            proxy = %shared.grant.id,
            "a refusal was not passed on to the access log: too many at once"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_origin_becomes_the_proxys() {
        let body = Bytes::from_static(
            br#"{"url":"https://api.wandb.ai/files/a/b","x":"https://api.wandb.aix"}"#,
        );
        let out = replace_all(&body, b"https://api.wandb.ai", b"http://127.0.0.1:9");
        assert_eq!(
            &out[..],
            br#"{"url":"http://127.0.0.1:9/files/a/b","x":"http://127.0.0.1:9x"}"#
        );
        let none = Bytes::from_static(b"{}");
        assert_eq!(replace_all(&none, b"h", b"x"), none);
    }

    #[test]
    fn only_a_plain_host_names_the_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(proxy_origin(&h).as_deref(), Some("http://127.0.0.1:8080"));
        h.insert(header::HOST, HeaderValue::from_static("evil/x@y"));
        assert_eq!(proxy_origin(&h), None);
    }
}
