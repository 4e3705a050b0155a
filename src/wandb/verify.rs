//! `--verify`: ask the W&B server who a key belongs to, exactly as the SDK does — `POST
//! {host}/graphql` with `Authorization: Basic base64("api:KEY")` and the `Viewer` query — and
//! the "Currently logged in as" line built from the answer.
//!
//! This is the only network code in wbl. It runs only when the user asks for `--verify`.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use wbl_proto::Secret;
use zeroize::Zeroizing;

use super::host::HostUrl;

/// The SDK's viewer query (`core/api/graphql/query_viewer.graphql`).
pub const VIEWER_QUERY: &str =
    "query Viewer { viewer { id entity username email flags teams { edges { node { name } } } } }";

/// Environment variable with the request timeout in seconds.
pub const TIMEOUT_ENV: &str = "WANDB_HTTP_TIMEOUT";

/// The SDK's default HTTP timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer we read (a viewer answer is a few hundred bytes).
const MAX_BODY: u64 = 1024 * 1024;

/// The account a key belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    pub username: Option<String>,
    pub entity: Option<String>,
    pub teams: Vec<String>,
}

/// Why a key could not be verified. The texts are the SDK's; none contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The server answered and does not accept the key.
    #[error("Failed to authenticate with {host}: {reason}")]
    Rejected { host: String, reason: String },
    /// No usable answer: connection refused, timeout, TLS, a server error.
    #[error("An error occurred while checking authentication with {host}: {reason}")]
    Failed { host: String, reason: String },
}

impl VerifyError {
    /// The server said no (as opposed to: we could not ask it).
    pub fn is_rejection(&self) -> bool {
        matches!(self, VerifyError::Rejected { .. })
    }
}

/// `WANDB_HTTP_TIMEOUT` (seconds, may be fractional), default 10 s.
pub fn timeout_from(value: Option<&str>) -> Result<Duration, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{TIMEOUT_ENV} must be a positive number of seconds, not {v:?}"
        )),
    }
}

/// The `Authorization` header value: `Basic base64("api:KEY")`.
pub fn basic_auth(key: &Secret) -> Zeroizing<String> {
    let plain = Zeroizing::new(format!("api:{}", key.expose()));
    let mut out = Zeroizing::new(String::from("Basic "));
    base64::engine::general_purpose::STANDARD.encode_string(plain.as_bytes(), &mut out);
    out
}

#[derive(Deserialize)]
struct GqlResponse {
    data: Option<GqlData>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

#[derive(Deserialize)]
struct GqlData {
    viewer: Option<GqlViewer>,
}

#[derive(Deserialize)]
struct GqlViewer {
    username: Option<String>,
    entity: Option<String>,
    teams: Option<GqlTeams>,
}

#[derive(Deserialize)]
struct GqlTeams {
    #[serde(default)]
    edges: Vec<GqlEdge>,
}

#[derive(Deserialize)]
struct GqlEdge {
    node: Option<GqlNode>,
}

#[derive(Deserialize)]
struct GqlNode {
    name: Option<String>,
}

#[derive(Deserialize)]
struct GqlError {
    message: Option<String>,
}

/// The GraphQL error messages as the SDK joins them: one as is, several as `[a; b]`.
fn join_errors(errors: &[GqlError]) -> Option<String> {
    let msgs: Vec<&str> = errors
        .iter()
        .map(|e| e.message.as_deref().unwrap_or("<no message>"))
        .collect();
    match msgs.len() {
        0 => None,
        1 => Some(msgs[0].to_owned()),
        _ => Some(format!("[{}]", msgs.join("; "))),
    }
}

/// Turns a server answer into a viewer or an error (pure, for tests).
pub fn interpret(host: &str, status: u16, body: &[u8]) -> Result<Viewer, VerifyError> {
    let rejected = |reason: String| VerifyError::Rejected {
        host: host.to_owned(),
        reason,
    };
    let failed = |reason: String| VerifyError::Failed {
        host: host.to_owned(),
        reason,
    };
    let parsed: Option<GqlResponse> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let reason = match parsed.as_ref().and_then(|p| join_errors(&p.errors)) {
            Some(detail) => format!("HTTP {status}: {detail}"),
            None => format!("the server answered HTTP {status}"),
        };
        return Err(if matches!(status, 401 | 403) {
            rejected(reason)
        } else {
            failed(reason)
        });
    }
    let Some(parsed) = parsed else {
        return Err(failed(format!(
            "the answer of {host}/graphql is not GraphQL JSON; is this a W&B server?"
        )));
    };
    match parsed.data.and_then(|d| d.viewer) {
        Some(v) => Ok(Viewer {
            username: v.username.filter(|s| !s.is_empty()),
            entity: v.entity.filter(|s| !s.is_empty()),
            teams: v
                .teams
                .map(|t| {
                    t.edges
                        .into_iter()
                        .filter_map(|e| e.node.and_then(|n| n.name))
                        .collect()
                })
                .unwrap_or_default(),
        }),
        None => Err(rejected(join_errors(&parsed.errors).unwrap_or_else(|| {
            "invalid credentials: the server did not recognize an account for the configured credentials".to_owned()
        }))),
    }
}

fn http_agent(timeout: Duration) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    let tls = TlsConfig::builder().root_certs(RootCerts::PlatformVerifier);
    #[cfg(not(target_os = "linux"))]
    let tls = tls.provider(ureq::tls::TlsProvider::NativeTls);
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A redirect would carry the key to wherever it points: refuse to follow.
        .max_redirects(0)
        .user_agent(format!("wbl/{}", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .into()
}

/// Why a request failed, in words (never containing the key: ureq's errors name the URL and
/// the cause, and our URL has no credentials).
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "no answer within {} s (set {TIMEOUT_ENV} to wait longer)",
            timeout.as_secs_f64()
        ),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Asks `host` who `key` belongs to.
pub fn verify(host: &HostUrl, key: &Secret, timeout: Duration) -> Result<Viewer, VerifyError> {
    let url = format!("{}/graphql", host.as_str());
    let body = serde_json::json!({
        "query": VIEWER_QUERY,
        "operationName": "Viewer",
        "variables": {},
    });
    let failed = |reason: String| VerifyError::Failed {
        host: host.to_string(),
        reason,
    };
    let auth = basic_auth(key);
    let result = http_agent(timeout)
        .post(&url)
        .header("Authorization", auth.as_str())
        .header("Accept", "application/json")
        .send_json(&body);
    let mut resp = result.map_err(|e| failed(describe(&e, timeout)))?;
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        return Err(failed(format!(
            "the server answered HTTP {status} (a redirect); use the final URL with --host"
        )));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| failed(describe(&e, timeout)))?;
    interpret(host.as_str(), status, &bytes)
}

/// The SDK's closing line. With a viewer: `Currently logged in as: USER (ENTITY) to HOST. …`,
/// where `(ENTITY)` appears only when the entity is one of the user's teams and not the user
/// name itself. Without one (no `--verify`): `W&B API key is configured. …`.
pub fn banner(viewer: Option<&Viewer>, host: &HostUrl) -> String {
    const RELOGIN: &str = "Use `wbl login --relogin` to force relogin";
    let Some(v) = viewer else {
        return format!("W&B API key is configured. {RELOGIN}");
    };
    let Some(user) = &v.username else {
        return format!("W&B API key is configured. {RELOGIN}");
    };
    let entity = match &v.entity {
        Some(e) if e != user && v.teams.iter().any(|t| t == e) => format!(" ({e})"),
        _ => String::new(),
    };
    format!("Currently logged in as: {user}{entity} to {host}. {RELOGIN}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "https://api.wandb.ai";

    #[test]
    fn auth_header_is_basic_api_key() {
        // base64("api:abc") = YXBpOmFiYw==
        assert_eq!(
            basic_auth(&Secret::from("abc")).as_str(),
            "Basic YXBpOmFiYw=="
        );
    }

    #[test]
    fn viewer_answer() {
        let body = br#"{"data":{"viewer":{"id":"1","entity":"team1","username":"alice","teams":{"edges":[{"node":{"name":"team1"}}]}}}}"#;
        let v = interpret(H, 200, body).ok();
        assert_eq!(
            v,
            Some(Viewer {
                username: Some("alice".into()),
                entity: Some("team1".into()),
                teams: vec!["team1".into()],
            })
        );
        let host = HostUrl::cloud();
        assert_eq!(
            banner(v.as_ref(), &host),
            "Currently logged in as: alice (team1) to https://api.wandb.ai. Use `wbl login --relogin` to force relogin"
        );
    }

    #[test]
    fn entity_rule_of_o19() {
        let host = HostUrl::cloud();
        let v = |entity: &str, teams: &[&str]| Viewer {
            username: Some("alice".into()),
            entity: Some(entity.into()),
            teams: teams.iter().map(|s| s.to_string()).collect(),
        };
        let plain = "Currently logged in as: alice to https://api.wandb.ai. Use `wbl login --relogin` to force relogin";
        assert_eq!(banner(Some(&v("alice", &["alice"])), &host), plain);
        assert_eq!(banner(Some(&v("other", &["team1"])), &host), plain);
        assert!(banner(Some(&v("team1", &["x", "team1"])), &host).contains("alice (team1) to"));
        assert_eq!(
            banner(None, &host),
            "W&B API key is configured. Use `wbl login --relogin` to force relogin"
        );
    }

    #[test]
    fn null_viewer_is_rejection() {
        let e = interpret(H, 200, br#"{"data":{"viewer":null}}"#);
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("Failed to authenticate with https://api.wandb.ai: invalid credentials: the server did not recognize an account for the configured credentials".to_owned())
        );
    }

    #[test]
    fn http_errors() {
        let e = interpret(
            H,
            401,
            br#"{"errors":[{"message":"user is not logged in"}]}"#,
        );
        assert_eq!(
            e.clone().map_err(|e| e.to_string()),
            Err(
                "Failed to authenticate with https://api.wandb.ai: HTTP 401: user is not logged in"
                    .to_owned()
            )
        );
        assert!(e.is_err_and(|e| e.is_rejection()));
        let e = interpret(H, 500, b"<html>oops</html>");
        assert_eq!(
            e.clone().map_err(|e| e.to_string()),
            Err("An error occurred while checking authentication with https://api.wandb.ai: the server answered HTTP 500".to_owned())
        );
        assert!(e.is_err_and(|e| !e.is_rejection()));
        let e = interpret(H, 500, br#"{"errors":[{"message":"a"},{"message":"b"}]}"#);
        assert!(e.is_err_and(|e| e.to_string().ends_with("HTTP 500: [a; b]")));
        let e = interpret(H, 200, b"not json");
        assert!(e.is_err_and(|e| !e.is_rejection()));
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_from(None), Ok(Duration::from_secs(10)));
        assert_eq!(timeout_from(Some("")), Ok(Duration::from_secs(10)));
        assert_eq!(timeout_from(Some("2.5")), Ok(Duration::from_millis(2500)));
        assert!(timeout_from(Some("0")).is_err());
        assert!(timeout_from(Some("-1")).is_err());
        assert!(timeout_from(Some("soon")).is_err());
        assert!(timeout_from(Some("inf")).is_err());
    }
}
