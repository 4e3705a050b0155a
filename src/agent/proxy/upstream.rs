//! The proxy's client side: for each client connection one kept-alive connection to the W&B
//! server ([`Link`]), HTTPS with the same TLS stack and trust store as the rest of wbl (rustls
//! and the platform's verifier on Linux; the system's TLS, Security.framework or SChannel,
//! through native-tls on macOS and Windows, as `ureq` there), TCP_NODELAY, large buffers.
//!
//! A client of the proxy already keeps its connections alive and sends on each one request at
//! a time (HTTP/1.1), so a connection of its own upstream is all the reuse there is to have:
//! no pool to look up, lock and expire on every request, and it closes with the client's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// The largest read buffer of a client's connection to the proxy: uploads move in big reads
/// (a buffer grows only while data arrives faster than it leaves).
pub(crate) const MAX_BUF: usize = 512 * 1024;

/// The largest read buffer of an upstream connection: answers are small, except downloads,
/// which mostly go to signed storage URLs, not through the proxy.
const UPSTREAM_BUF: usize = 128 * 1024;

/// How long connecting to the upstream (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(target_os = "linux")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(target_os = "linux"))]
type Connector = hyper_tls::HttpsConnector<HttpConnector>;

/// Where a proxy forwards: how to connect there, and what its requests carry.
pub(crate) struct Upstream {
    connector: Connector,
    /// `scheme://host[:port]`, what the connector dials.
    origin: Uri,
    /// The `Host` header of every forwarded request.
    host: HeaderValue,
    /// The upstream's path prefix, without a trailing `/` (often empty).
    prefix: String,
}

/// Why a request could not be forwarded (never holds a header: no secret).
#[derive(Debug)]
pub(crate) enum Error {
    Connect(String),
    Http(hyper::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::Http(e) => {
                write!(f, "{e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
        }
    }
}

impl Upstream {
    /// The upstream at `url` (scheme, host, port and path prefix; checked by [`reachable`]).
    pub(crate) fn new(url: &url::Url) -> Result<Upstream, String> {
        let host = url
            .host_str()
            .ok_or_else(|| format!("`{url}` names no host"))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let origin: Uri = format!("{}://{authority}", url.scheme())
            .parse()
            .map_err(|e| format!("`{url}` is not an HTTP origin: {e}"))?;
        let host = HeaderValue::from_str(&authority)
            .map_err(|_| format!("`{url}` names a host that cannot be sent in a header"))?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        #[cfg(target_os = "linux")]
        let connector = {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_platform_verifier()
                .map_err(|e| format!("the system's trust store: {e}"))?
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        };
        #[cfg(not(target_os = "linux"))]
        let connector = hyper_tls::HttpsConnector::new_with_connector(http);
        Ok(Upstream {
            connector,
            origin,
            host,
            prefix: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream's URI for a request's `path_and_query` (which starts with `/`).
    pub(crate) fn uri(&self, path_and_query: &str) -> Option<Uri> {
        if self.prefix.is_empty() {
            path_and_query.parse().ok()
        } else {
            format!("{}{path_and_query}", self.prefix).parse().ok()
        }
    }

    /// The `Host` header of the upstream's requests.
    pub(crate) fn host(&self) -> HeaderValue {
        self.host.clone()
    }

    async fn connect<B: Forwarded>(&self) -> Result<SendRequest<B>, Error> {
        let io = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.connector.clone().call(self.origin.clone()),
        )
        .await
        .map_err(|_| Error::Connect("timed out".into()))?
        .map_err(|e| Error::Connect(chain(&*e)))?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(UPSTREAM_BUF)
            .handshake(io)
            .await
            .map_err(Error::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// A request body the proxy forwards: the client's (a test's own in unit tests).
pub(crate) trait Forwarded:
    hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + Unpin
    + 'static
{
}

impl<B> Forwarded for B where
    B: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static
{
}

/// A client connection's way to the upstream: one connection, made on its first request and
/// kept alive while both ends keep theirs.
pub(crate) struct Link<B = Incoming> {
    upstream: Arc<Upstream>,
    /// The connection between requests (taken out while one is sent).
    idle: Mutex<Option<SendRequest<B>>>,
}

impl<B: Forwarded> Link<B> {
    pub(crate) fn new(upstream: Arc<Upstream>) -> Link<B> {
        Link {
            upstream,
            idle: Mutex::new(None),
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) and returns the answer's head; the body
    /// streams on. A kept connection that closed before the request went out is replaced
    /// once by a fresh one.
    pub(crate) async fn send(&self, req: Request<B>) -> Result<Response<Incoming>, Error> {
        let kept = self.idle.lock().map(|mut i| i.take()).unwrap_or(None);
        let mut req = req;
        if let Some(mut sender) = kept {
            // Ready once the previous answer's body has been read to its end.
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(resp) => {
                        self.keep(sender);
                        return Ok(resp);
                    }
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => return Err(Error::Http(e.into_error())),
                    },
                }
            }
        }
        let mut sender = self.upstream.connect().await?;
        let resp = sender.send_request(req).await.map_err(Error::Http)?;
        self.keep(sender);
        Ok(resp)
    }

    fn keep(&self, sender: SendRequest<B>) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(sender);
        }
    }
}

/// An error and its causes in one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether the proxy may reach `scheme://host`: HTTPS anywhere, plain http only to a
/// loopback address.
pub(crate) fn reachable(url: &url::Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "the proxy forwards over plain http only to a loopback address, not {}",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("the proxy cannot forward to a {other} URL")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Empty = http_body_util::Empty<hyper::body::Bytes>;

    fn get(link_upstream: &Upstream) -> Request<Empty> {
        Request::builder()
            .uri(link_upstream.uri("/graphql").unwrap())
            .header(hyper::header::HOST, link_upstream.host())
            .body(Empty::new())
            .unwrap()
    }

    /// A server on 127.0.0.1 that answers one request per connection and then closes it,
    /// without saying so: a kept-alive connection the server dropped between requests.
    /// Returns its URL and how many connections it accepted.
    async fn one_request_per_connection() -> (url::Url, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn a_kept_connection_the_server_closed_is_replaced() {
        use http_body_util::BodyExt;
        let (url, accepted) = one_request_per_connection().await;
        let upstream = Arc::new(Upstream::new(&url).unwrap());
        let link = Link::<Empty>::new(Arc::clone(&upstream));
        for round in 1..=3 {
            let resp = link.send(get(&upstream)).await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
            // The server's close reaches the kept connection before the next request.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), round);
        }
    }

    #[tokio::test]
    async fn an_upstream_that_does_not_listen_is_a_connect_error() {
        let closed = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = url::Url::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let upstream = Arc::new(Upstream::new(&url).unwrap());
        let link = Link::<Empty>::new(Arc::clone(&upstream));
        let e = link.send(get(&upstream)).await.unwrap_err();
        assert!(matches!(e, Error::Connect(_)), "{e}");
        assert!(e.to_string().starts_with("cannot connect: "), "{e}");
    }

    #[test]
    fn requests_keep_their_path_below_the_prefix() {
        let root = Upstream::new(&url::Url::parse("https://api.example.com").unwrap()).unwrap();
        assert_eq!(root.uri("/graphql?x=1").unwrap(), "/graphql?x=1");
        assert_eq!(root.host(), "api.example.com");
        let sub = Upstream::new(&url::Url::parse("http://127.0.0.1:8080/wandb/").unwrap()).unwrap();
        assert_eq!(sub.uri("/graphql").unwrap(), "/wandb/graphql");
        assert_eq!(sub.host(), "127.0.0.1:8080");
    }
}
