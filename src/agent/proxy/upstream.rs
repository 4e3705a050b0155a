//! The proxy's client side: one pool of kept-alive connections to the W&B server, HTTPS with
//! the same TLS stack and trust store as the rest of wbl (rustls and the platform's verifier on
//! Linux; the system's TLS, Security.framework or SChannel, through native-tls on macOS and
//! Windows, as `ureq` there), TCP_NODELAY, large buffers.

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The largest read buffer of a client's connection to the proxy: uploads move in big reads
/// (a buffer grows only while data arrives faster than it leaves).
pub(crate) const MAX_BUF: usize = 512 * 1024;

/// The largest read buffer of an upstream connection: answers are small, except downloads,
/// which mostly go to signed storage URLs, not through the proxy; idle pooled connections
/// keep theirs.
const UPSTREAM_BUF: usize = 128 * 1024;

/// Idle upstream connections kept per host for reuse.
const POOL_IDLE: usize = 8;

#[cfg(target_os = "linux")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(target_os = "linux"))]
type Connector = hyper_tls::HttpsConnector<HttpConnector>;

/// The pooled client every proxy of the engine shares.
pub(crate) struct Upstream {
    pub(crate) client: Client<Connector, Incoming>,
}

impl Upstream {
    /// Needs the engine's runtime entered (the pool's timer).
    pub(crate) fn new() -> Result<Upstream, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(std::time::Duration::from_secs(30)));
        #[cfg(target_os = "linux")]
        let connector = {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
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
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(POOL_IDLE)
            .http1_max_buf_size(UPSTREAM_BUF)
            .build(connector);
        Ok(Upstream { client })
    }
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
