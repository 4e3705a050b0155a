//! A small, blocking OpenBao / HashiCorp Vault client: the HTTP calls wbl needs (log in,
//! look up and renew its token, read, write and delete a KV v2 secret) and the classification
//! of every failure into a reason a person can act on.
//!
//! Blocking on purpose: the agent runs these calls on its blocking pool, as it runs keychain
//! calls, with the project's HTTP client (`ureq`). Nothing here keeps state between calls but
//! the connection pool; tokens are passed in by the caller.
//!
//! Secrets (tokens, passwords, JWTs, keys) travel as [`Secret`] and request/response bodies
//! that hold them are zeroized buffers. No error message contains one: messages are built
//! from the status, the server's `errors` list (which OpenBao never fills with request data)
//! and the transport error, whose URL carries no credentials.

mod auth;
mod kv;
pub mod loopback;

use std::time::Duration;

use serde::Deserialize;
use wbl_proto::Secret;
use zeroize::Zeroizing;

use crate::config::ServerConfig;

pub use auth::TokenInfo;
pub use kv::KvSecret;

/// The action [`Client::health`] names in its errors.
pub const HEALTH: &str = "asking its health";

/// Largest answer read from the server.
const MAX_BODY: u64 = 1 << 20;

/// Why an OpenBao call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The token is valid but its policies do not allow this.
    PermissionDenied,
    /// The server is sealed.
    Sealed,
    /// No answer: refused, reset, timed out, DNS, TLS. The text says which.
    Unreachable(String),
    /// Nothing at that path (never written, or deleted).
    NotFound,
    /// The token expired or was revoked.
    TokenExpired,
    /// The agent holds no token for this server yet.
    NotLoggedIn,
    /// The token saved for this server was issued by another address (named), or by an
    /// unknown one (`None`: saved by an older wbl), so it is not sent to this one.
    SavedForAnotherAddress(Option<String>),
    /// Plain http whose listening socket is not the user's (or cannot be checked): nothing
    /// was sent. The text names the port's owner.
    Untrusted(String),
    /// The login itself was refused (wrong password, a JWT the role does not accept, …).
    LoginRefused(String),
    /// The JWT file could not be read.
    JwtFile(String),
    /// Anything else the server said, with its HTTP status.
    Server(u16, String),
}

impl Reason {
    /// True when the server could not be asked at all, so a cached value may still be served.
    pub fn is_outage(&self) -> bool {
        matches!(self, Reason::Unreachable(_) | Reason::Sealed)
    }

    /// True when a new login would fix it.
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            Reason::TokenExpired | Reason::NotLoggedIn | Reason::SavedForAnotherAddress(_)
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::PermissionDenied => {
                f.write_str("permission denied (the token's policies do not allow it)")
            }
            Reason::Sealed => f.write_str("the server is sealed"),
            Reason::Unreachable(why) => write!(f, "unreachable ({why})"),
            Reason::NotFound => f.write_str("not found"),
            Reason::TokenExpired => f.write_str("token expired or revoked"),
            Reason::NotLoggedIn => f.write_str("not logged in"),
            Reason::SavedForAnotherAddress(Some(other)) => write!(
                f,
                "not logged in at this address (the saved token was issued by {other} and is \
                 sent nowhere else)"
            ),
            Reason::SavedForAnotherAddress(None) => f.write_str(
                "not logged in at this address (the saved token was kept by an older wbl \
                 that did not record which address issued it, so it is sent nowhere)",
            ),
            Reason::Untrusted(why) => f.write_str(why),
            Reason::LoginRefused(why) => write!(f, "login refused ({why})"),
            Reason::JwtFile(why) => write!(f, "cannot read the JWT: {why}"),
            Reason::Server(status, why) => write!(f, "HTTP {status}: {why}"),
        }
    }
}

/// A failed call: which server, what was being done, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("OpenBao server `{server}` ({address}): {action}: {reason}{}", hint(.reason, .server))]
pub struct BaoError {
    pub server: String,
    pub address: String,
    /// e.g. `reading secret/ml-team/wandb`.
    pub action: String,
    pub reason: Reason,
}

fn hint(reason: &Reason, server: &str) -> String {
    if reason.needs_login() {
        format!("; run `wbl openbao login {server}`")
    } else {
        String::new()
    }
}

/// The OpenBao JSON error body: `{"errors": ["…"]}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// One answer: status and (zeroized) body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

impl Answer {
    fn messages(&self) -> String {
        let errors = serde_json::from_slice::<ErrorBody>(&self.body)
            .unwrap_or_default()
            .errors;
        let joined = errors
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        // Bounded: a hostile server could send megabytes.
        let mut s: String = joined.chars().take(300).collect();
        if s.is_empty() {
            s = "no explanation".to_owned();
        }
        s
    }

    /// The reason for a non-2xx answer of a call made with a token.
    pub(crate) fn reason(&self) -> Reason {
        let msg = self.messages();
        match self.status {
            404 => Reason::NotFound,
            503 if msg.contains("sealed") => Reason::Sealed,
            403 if msg.contains("invalid token") || msg.contains("token expired") => {
                Reason::TokenExpired
            }
            403 => Reason::PermissionDenied,
            // 429 (standby, rate limits) and 5xx: the server is there but cannot answer.
            429 | 500..=599 => Reason::Unreachable(format!("HTTP {}: {msg}", self.status)),
            s => Reason::Server(s, msg),
        }
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client for one configured server.
pub struct Client {
    config: std::sync::Arc<ServerConfig>,
    http: ureq::Agent,
}

/// HTTP methods used here.
#[derive(Clone, Copy)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Client {
    /// A client for `config`: its address, namespace, CA file and timeout.
    pub fn new(config: std::sync::Arc<ServerConfig>) -> Result<Client, BaoError> {
        let http = http_agent(&config).map_err(|why| BaoError {
            server: config.name.clone(),
            address: config.address.clone(),
            action: "setting up TLS".to_owned(),
            reason: Reason::Unreachable(why),
        })?;
        Ok(Client { config, http })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// An error of this server.
    pub fn error(&self, action: impl Into<String>, reason: Reason) -> BaoError {
        BaoError {
            server: self.config.name.clone(),
            address: self.config.address.clone(),
            action: action.into(),
            reason,
        }
    }

    /// Whether the server answers, is initialised and unsealed (`sys/health`, no token; a
    /// standby counts as up). What `wbl doctor` asks.
    pub fn health(&self) -> Result<(), BaoError> {
        let answer = self
            .call(
                Method::Get,
                "sys/health?standbyok=true&perfstandbyok=true",
                None,
                None,
            )
            .map_err(|r| self.error(HEALTH, r))?;
        match answer.status {
            200 => Ok(()),
            503 => Err(self.error(HEALTH, Reason::Sealed)),
            501 => Err(self.error(
                HEALTH,
                Reason::Server(501, "the server is not initialised".to_owned()),
            )),
            _ => Err(self.error(HEALTH, answer.reason())),
        }
    }

    /// One request to `/v1/<path>`; `Err` only for transport failures.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        body: Option<&[u8]>,
    ) -> Result<Answer, Reason> {
        let url = format!("{}/v1/{path}", self.config.address);
        let result = match method {
            Method::Get | Method::Delete => {
                let mut req = match method {
                    Method::Get => self.http.get(&url),
                    _ => self.http.delete(&url),
                };
                req = req.header("X-Vault-Request", "true");
                if let Some(ns) = &self.config.namespace {
                    req = req.header("X-Vault-Namespace", ns);
                }
                if let Some(t) = token {
                    req = req.header("X-Vault-Token", t.expose());
                }
                req.call()
            }
            Method::Post => {
                let mut req = self
                    .http
                    .post(&url)
                    .header("X-Vault-Request", "true")
                    .header("Content-Type", "application/json");
                if let Some(ns) = &self.config.namespace {
                    req = req.header("X-Vault-Namespace", ns);
                }
                if let Some(t) = token {
                    req = req.header("X-Vault-Token", t.expose());
                }
                req.send(body.unwrap_or(b"{}"))
            }
        };
        let mut resp = result.map_err(|e| match loopback::refusal_of(&e) {
            Some(refusal) => Reason::Untrusted(refusal.to_string()),
            None => Reason::Unreachable(describe(&e, self.config.timeout)),
        })?;
        let status = resp.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        if status != 204 {
            use std::io::Read;
            resp.body_mut()
                .with_config()
                .limit(MAX_BODY)
                .reader()
                .read_to_end(&mut body)
                .map_err(|e| Reason::Unreachable(format!("the answer broke off: {e}")))?;
        }
        Ok(Answer { status, body })
    }
}

/// The HTTP agent for one server: its CA file or the system's trust store, its timeout, no
/// redirects (a redirect would carry the token elsewhere). Plain-http connections are opened
/// by [`loopback::CheckedTcp`], which checks who answers before anything is sent, and never
/// through a proxy (the address is this machine's loopback).
fn http_agent(config: &ServerConfig) -> Result<ureq::Agent, String> {
    use ureq::tls::{RootCerts, TlsConfig};
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
    let roots = match &config.ca_file {
        None => RootCerts::PlatformVerifier,
        Some(file) => {
            let pem = std::fs::read(file)
                .map_err(|e| format!("cannot read ca_file {}: {e}", file.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!(
                    "ca_file {} holds no PEM certificate",
                    file.display()
                ));
            }
            RootCerts::new_with_certs(&certs)
        }
    };
    let tls = TlsConfig::builder().root_certs(roots);
    #[cfg(not(target_os = "linux"))]
    let tls = tls.provider(ureq::tls::TlsProvider::NativeTls);
    let mut builder = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.timeout.min(Duration::from_secs(5))))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("wbl/{}", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build());
    if config.address.starts_with("http://") {
        builder = builder.proxy(None);
    }
    let connector = ()
        .chain(loopback::CheckedTcp {
            insecure_loopback: config.insecure_loopback,
        })
        .chain(ConnectProxyConnector::default())
        .chain(TcpConnector::default());
    #[cfg(target_os = "linux")]
    let connector = connector.chain(ureq::unversioned::transport::RustlsConnector::default());
    #[cfg(not(target_os = "linux"))]
    let connector = connector.chain(ureq::unversioned::transport::NativeTlsConnector::default());
    Ok(ureq::Agent::with_parts(
        builder.build(),
        connector,
        DefaultResolver::default(),
    ))
}

/// A transport error in words.
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s", timeout.as_secs_f64()),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "the connection was reset".to_owned()
            }
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// Percent-encodes each segment of a secret path, keeping the `/` between them.
pub(crate) fn encode_path(path: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/');
    path.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn reasons_are_classified() {
        assert_eq!(answer(404, r#"{"errors":[]}"#).reason(), Reason::NotFound);
        assert_eq!(
            answer(503, r#"{"errors":["Vault is sealed"]}"#).reason(),
            Reason::Sealed
        );
        assert_eq!(
            answer(403, r#"{"errors":["permission denied"]}"#).reason(),
            Reason::PermissionDenied
        );
        assert_eq!(
            answer(403, r#"{"errors":["permission denied","invalid token"]}"#).reason(),
            Reason::TokenExpired
        );
        assert!(
            matches!(answer(502, "<html>").reason(), Reason::Unreachable(m) if m.contains("502"))
        );
        assert_eq!(
            answer(400, r#"{"errors":["bad"]}"#).reason(),
            Reason::Server(400, "bad".into())
        );
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(5000));
        assert!(matches!(answer(400, &long).reason(), Reason::Server(_, m) if m.len() == 300));
    }

    #[test]
    fn errors_name_server_action_reason_and_next_step() {
        let e = BaoError {
            server: "team".into(),
            address: "https://bao:8200".into(),
            action: "reading secret/ml-team/wandb".into(),
            reason: Reason::TokenExpired,
        };
        assert_eq!(
            e.to_string(),
            "OpenBao server `team` (https://bao:8200): reading secret/ml-team/wandb: token \
             expired or revoked; run `wbl openbao login team`"
        );
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("ml-team/wandb"), "ml-team/wandb");
        assert_eq!(encode_path("a b/c?d"), "a%20b/c%3Fd");
    }
}
