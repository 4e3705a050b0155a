//! wbl's configuration file (`config.toml`): the OpenBao servers it may use and the routes
//! that put a host's keys in one of them instead of the OS keychain.
//!
//! Parsing is strict: an unknown key, a missing field, a bad duration or a route to an unknown
//! server is an error naming the file and the line, never a silent default. Hosts without a
//! route stay in the OS keychain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::wandb::host::HostUrl;

/// Default time a value read from OpenBao is served from the agent's cache.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Default time a cached value may still be served, after `cache_ttl`, while the server is
/// unreachable or sealed.
pub const DEFAULT_STALE_TTL: Duration = Duration::from_secs(600);
/// Default bound on one HTTP request to an OpenBao server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The kind of store of an `[openbao.NAME]` section, and of a route's `store = "openbao.NAME"`.
pub const OPENBAO: &str = "openbao";

/// A route's `store = "KIND.NAME"`, split: `Some((kind, name))`.
pub fn store_kind(store: &str) -> Option<(&str, &str)> {
    store
        .split_once('.')
        .filter(|(k, n)| !k.is_empty() && !n.is_empty())
}

/// The parsed configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from.
    pub file: PathBuf,
    /// `[openbao.NAME]` sections by name.
    pub servers: BTreeMap<String, Arc<ServerConfig>>,
    /// `[[route]]` entries to OpenBao in file order (hosts are unique across all routes).
    pub routes: Vec<Route>,
    /// `[[route]]` entries to stores of other kinds, in file order.
    pub other_routes: Vec<OtherRoute>,
    /// `[files.NAME]` sections by name: the directory of a test-only store (`agent::files`).
    #[cfg(test)]
    pub files: BTreeMap<String, PathBuf>,
    /// `[[bind]]` entries (`wbl bind`), in file order: under `dir`, use `account` for `host`.
    pub binds: Vec<Bind>,
    /// `[default_account]` (`wbl switch`): a host's account when nothing else chooses one.
    pub default_accounts: Vec<DefaultAccount>,
}

/// One `[[bind]]`: under `dir` (absolute), the account used for `host` is `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub dir: PathBuf,
    /// The W&B host (`HostUrl` text: `https://api.wandb.ai`).
    pub host: HostUrl,
    pub account: String,
    /// Where it is written (1-based), for messages.
    pub line: usize,
}

/// One entry of `[default_account]`: `"<host>" = "<account>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAccount {
    pub host: HostUrl,
    pub account: String,
    pub line: usize,
}

/// A `[[route]]` to a store of another kind than OpenBao: `store = "KIND.NAME"` names a
/// configured section; `path` is where in that store the host's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherRoute {
    pub protocol: String,
    pub host: String,
    pub store: String,
    pub path: String,
}

/// How the agent authenticates to an OpenBao server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A token the user gives to `wbl openbao login`.
    Token,
    /// A user name from the file, the password given to `wbl openbao login`.
    Userpass { username: String },
    /// A JWT read from `jwt_file` at every login (Kubernetes, CI or Slurm-issued), for `role`.
    Jwt { role: String, jwt_file: PathBuf },
}

impl Auth {
    /// The method's name, which is also its default mount.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Token => "token",
            Auth::Userpass { .. } => "userpass",
            Auth::Jwt { .. } => "jwt",
        }
    }
}

/// One `[openbao.NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub name: String,
    /// `scheme://host[:port]` without a trailing slash.
    pub address: String,
    pub auth: Auth,
    /// Where the auth method is mounted (`auth/<auth_mount>/login`).
    pub auth_mount: String,
    /// PEM file of the CA(s) that sign the server's certificate (instead of the system's).
    pub ca_file: Option<PathBuf>,
    /// OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    pub cache_ttl: Duration,
    pub stale_ttl: Duration,
    pub timeout: Duration,
    /// Plain http to a loopback port whose owner cannot be checked (systems without
    /// `/proc/net/tcp`) is used anyway. A port held by another user is refused regardless.
    pub insecure_loopback: bool,
}

/// One `[[route]]`: the keys of `protocol://host` live in `server` at `mount`/`path` (KV v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub protocol: String,
    /// `host[:port]`, as a credential target names it.
    pub host: String,
    pub server: Arc<ServerConfig>,
    pub mount: String,
    pub path: String,
}

impl Route {
    /// `mount/path`, as error messages and `bao kv get -mount=… path` name the secret.
    pub fn secret_name(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }
}

impl Config {
    /// The route of `protocol://host`, if any.
    pub fn route(&self, protocol: &str, host: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.host == host && r.protocol == protocol)
    }
}

/// A configuration that cannot be used, with the file and (when known) the line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Reads the configuration file ([`crate::dirs::config_file`]). `Ok(None)` when there is
/// none; a file named by `WBL_CONFIG` must exist.
pub fn load() -> Result<Option<Config>, ConfigError> {
    let Some((file, explicit)) = crate::dirs::config_file() else {
        return Ok(None);
    };
    load_from(&file, explicit)
}

/// Reads and parses `file`; a missing file is `Ok(None)` unless `must_exist`. A file another
/// user could have changed ([`crate::ownership::check`]) is refused before it is read: it
/// decides where keys are sent.
pub fn load_from(file: &Path, must_exist: bool) -> Result<Option<Config>, ConfigError> {
    let fail = |message: String| ConfigError {
        file: file.to_owned(),
        line: None,
        message,
    };
    let cannot_read = |e: std::io::Error| {
        fail(if e.kind() == std::io::ErrorKind::NotFound {
            format!("no such file (named by {})", crate::dirs::CONFIG_ENV)
        } else {
            format!("cannot read it: {e}")
        })
    };
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) => return Err(cannot_read(e)),
    };
    // Not a FIFO or a device: reading those could wait forever.
    if !meta.is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    crate::ownership::check(file, &meta).map_err(|e| fail(e.to_string()))?;
    let text = std::fs::read_to_string(file).map_err(cannot_read)?;
    parse(file, &text).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    openbao: BTreeMap<String, Spanned<RawServer>>,
    #[serde(default, rename = "route")]
    routes: Vec<Spanned<RawRoute>>,
    #[serde(default, rename = "bind")]
    binds: Vec<Spanned<RawBind>>,
    #[serde(default)]
    default_account: BTreeMap<Spanned<String>, Spanned<String>>,
    #[cfg(test)]
    #[serde(default)]
    files: BTreeMap<String, RawFiles>,
}

/// `[files.NAME]`: a test-only store, a directory of files.
#[cfg(test)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    dir: PathBuf,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum AuthKind {
    Token,
    Userpass,
    Jwt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    address: Spanned<String>,
    auth: Spanned<AuthKind>,
    username: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    jwt_file: Option<Spanned<PathBuf>>,
    auth_mount: Option<Spanned<String>>,
    ca_file: Option<Spanned<PathBuf>>,
    namespace: Option<String>,
    cache_ttl: Option<Spanned<String>>,
    stale_ttl: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    insecure_loopback: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBind {
    dir: Spanned<PathBuf>,
    host: Spanned<String>,
    account: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    host: Spanned<String>,
    store: Spanned<String>,
    mount: Option<Spanned<String>>,
    path: Spanned<String>,
}

/// A duration of config.toml ([`crate::duration::parse`]), at most a year.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d > Duration::from_secs(366 * 86400) {
        return Err(format!("`{text}` is longer than a year"));
    }
    Ok(d)
}

/// True for a name usable on a command line and in `store = "openbao.NAME"`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A KV mount or secret path: non-empty segments, no `.` or `..`, no leading/trailing `/`.
fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['?', '#']))
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses the text of `file`.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let err = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
        file: file.to_owned(),
        line: span.map(|s| line_of(s.start)),
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        err(
            e.span(),
            e.message().trim_end().replace('\n', "; ").to_owned(),
        )
    })?;
    let duration = |v: &Option<Spanned<String>>, default: Duration, key: &str| match v {
        None => Ok(default),
        Some(s) => {
            parse_duration(s.get_ref()).map_err(|m| err(Some(s.span()), format!("{key}: {m}")))
        }
    };

    let mut servers = BTreeMap::new();
    for (name, section) in &raw.openbao {
        let span = section.span();
        let s = section.get_ref();
        if !valid_name(name) {
            return Err(err(
                Some(span),
                format!(
                    "[openbao.{name}]: a server name may use only letters, digits, `-` and `_`"
                ),
            ));
        }
        let address = s.address.get_ref().trim().trim_end_matches('/');
        let url = url::Url::parse(address).map_err(|e| {
            err(
                Some(s.address.span()),
                format!("address `{address}` is not a URL: {e}"),
            )
        })?;
        let host = url.host_str().unwrap_or_default();
        let address_error =
            |m: &str| err(Some(s.address.span()), format!("address `{address}`: {m}"));
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(address_error(
                    "plain http would send the OpenBao token in the clear; use https (http is \
                     accepted only for 127.0.0.1 and localhost)",
                ));
            }
            _ => return Err(address_error("the scheme must be https")),
        }
        if host.is_empty()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || url.path() != "/"
        {
            return Err(address_error(
                "write only scheme://host[:port], e.g. https://bao.example.com:8200",
            ));
        }
        let only = |field: Option<std::ops::Range<usize>>, key: &str, method: &str| match field {
            Some(span) => Err(err(
                Some(span),
                format!("[openbao.{name}]: `{key}` is only for auth = \"{method}\""),
            )),
            None => Ok(()),
        };
        let need = |field: &Option<Spanned<String>>, key: &str, method: &str| match field {
            Some(v) if !v.get_ref().trim().is_empty() => Ok(v.get_ref().trim().to_owned()),
            _ => Err(err(
                Some(span.clone()),
                format!("[openbao.{name}]: auth = \"{method}\" needs `{key}`"),
            )),
        };
        let auth = match *s.auth.get_ref() {
            AuthKind::Token => {
                only(
                    s.username.as_ref().map(Spanned::span),
                    "username",
                    "userpass",
                )?;
                only(s.role.as_ref().map(Spanned::span), "role", "jwt")?;
                only(s.jwt_file.as_ref().map(Spanned::span), "jwt_file", "jwt")?;
                Auth::Token
            }
            AuthKind::Userpass => {
                only(s.role.as_ref().map(Spanned::span), "role", "jwt")?;
                only(s.jwt_file.as_ref().map(Spanned::span), "jwt_file", "jwt")?;
                Auth::Userpass {
                    username: need(&s.username, "username", "userpass")?,
                }
            }
            AuthKind::Jwt => {
                only(
                    s.username.as_ref().map(Spanned::span),
                    "username",
                    "userpass",
                )?;
                let role = need(&s.role, "role", "jwt")?;
                let jwt_file = match &s.jwt_file {
                    Some(f) if f.get_ref().is_absolute() => f.get_ref().clone(),
                    Some(f) => {
                        return Err(err(
                            Some(f.span()),
                            format!("[openbao.{name}]: jwt_file must be an absolute path"),
                        ));
                    }
                    None => {
                        return Err(err(
                            Some(span.clone()),
                            format!("[openbao.{name}]: auth = \"jwt\" needs `jwt_file`"),
                        ));
                    }
                };
                Auth::Jwt { role, jwt_file }
            }
        };
        let auth_mount = match &s.auth_mount {
            Some(m) => {
                let m2 = m.get_ref().trim_matches('/');
                if !valid_path(m2) {
                    return Err(err(
                        Some(m.span()),
                        format!(
                            "[openbao.{name}]: auth_mount `{}` is not a mount path",
                            m.get_ref()
                        ),
                    ));
                }
                m2.to_owned()
            }
            None => auth.kind().to_owned(),
        };
        let ca_file = match &s.ca_file {
            Some(f) if !f.get_ref().is_absolute() => {
                return Err(err(
                    Some(f.span()),
                    format!("[openbao.{name}]: ca_file must be an absolute path"),
                ));
            }
            Some(f) => Some(f.get_ref().clone()),
            None => None,
        };
        let server = ServerConfig {
            name: name.clone(),
            address: address.to_owned(),
            auth,
            auth_mount,
            ca_file,
            namespace: s.namespace.clone().filter(|n| !n.trim().is_empty()),
            cache_ttl: duration(&s.cache_ttl, DEFAULT_CACHE_TTL, "cache_ttl")?,
            stale_ttl: duration(&s.stale_ttl, DEFAULT_STALE_TTL, "stale_ttl")?,
            timeout: duration(&s.timeout, DEFAULT_TIMEOUT, "timeout")?,
            insecure_loopback: match &s.insecure_loopback {
                Some(v) if url.scheme() != "http" => {
                    return Err(err(
                        Some(v.span()),
                        format!(
                            "[openbao.{name}]: `insecure_loopback` is only for a plain http \
                             address"
                        ),
                    ));
                }
                Some(v) => *v.get_ref(),
                None => false,
            },
        };
        if server.timeout.is_zero() {
            return Err(err(
                s.timeout.as_ref().map(|t| t.span()),
                format!("[openbao.{name}]: timeout must be more than 0"),
            ));
        }
        servers.insert(name.clone(), Arc::new(server));
    }

    let mut routes: Vec<(Route, usize)> = Vec::new();
    #[cfg_attr(not(test), allow(unused_mut))]
    let mut others: Vec<(OtherRoute, usize)> = Vec::new();
    for r in &raw.routes {
        let rr = r.get_ref();
        let host_text = rr.host.get_ref();
        let host = HostUrl::parse(host_text).map_err(|e| {
            err(
                Some(rr.host.span()),
                format!("route host `{host_text}`: {e}"),
            )
        })?;
        if !host.path().is_empty() && host.path() != "/" {
            return Err(err(
                Some(rr.host.span()),
                format!("route host `{host_text}`: routes are per host; remove the path"),
            ));
        }
        let store = rr.store.get_ref();
        #[cfg(test)]
        if let Some(("files", name)) = store_kind(store)
            && raw.files.contains_key(name)
        {
            let line = line_of(r.span().start);
            others.push((
                OtherRoute {
                    protocol: host.scheme().to_owned(),
                    host: host.netloc().to_owned(),
                    store: store.clone(),
                    path: rr.path.get_ref().clone(),
                },
                line,
            ));
            continue;
        }
        let server = store_kind(store)
            .filter(|(kind, _)| *kind == OPENBAO)
            .and_then(|(_, n)| servers.get(n))
            .ok_or_else(|| {
                let known: Vec<String> = servers.keys().map(|k| format!("{OPENBAO}.{k}")).collect();
                err(
                    Some(rr.store.span()),
                    format!(
                        "route store `{store}` is not a configured server{}",
                        if known.is_empty() {
                            " (there is no [openbao.NAME] section)".to_owned()
                        } else {
                            format!(" (known: {})", known.join(", "))
                        }
                    ),
                )
            })?;
        let mount = match &rr.mount {
            Some(m) => {
                let v = m.get_ref().trim_matches('/');
                if !valid_path(v) {
                    return Err(err(
                        Some(m.span()),
                        format!("route mount `{}` is not a mount path", m.get_ref()),
                    ));
                }
                v.to_owned()
            }
            None => "secret".to_owned(),
        };
        let path = rr.path.get_ref().trim_matches('/');
        if !valid_path(path) {
            return Err(err(
                Some(rr.path.span()),
                format!(
                    "route path `{}` is not a secret path (e.g. \"ml-team/wandb\")",
                    rr.path.get_ref()
                ),
            ));
        }
        let route = Route {
            protocol: host.scheme().to_owned(),
            host: host.netloc().to_owned(),
            server: Arc::clone(server),
            mount,
            path: path.to_owned(),
        };
        let line = line_of(r.span().start);
        if let Some(first) = routes
            .iter()
            .map(|(o, l)| (&o.protocol, &o.host, l))
            .chain(others.iter().map(|(o, l)| (&o.protocol, &o.host, l)))
            .find(|(p, h, _)| **h == route.host && **p == route.protocol)
            .map(|(_, _, l)| *l)
        {
            return Err(err(
                Some(rr.host.span()),
                format!(
                    "a second route for {}://{} (the first is on line {first})",
                    route.protocol, route.host
                ),
            ));
        }
        routes.push((route, line));
    }
    let account_name = |a: &Spanned<String>| match wbl_proto::account_name_problem(a.get_ref()) {
        Some(problem) => Err(err(Some(a.span()), problem)),
        None => Ok(a.get_ref().clone()),
    };
    let host_url = |h: &Spanned<String>, what: &str| {
        HostUrl::parse(h.get_ref()).map_err(|e| {
            err(
                Some(h.span()),
                format!("{what} host `{}`: {e}", h.get_ref()),
            )
        })
    };
    let mut binds = Vec::new();
    for b in &raw.binds {
        let rb = b.get_ref();
        if !rb.dir.get_ref().is_absolute() {
            return Err(err(
                Some(rb.dir.span()),
                format!(
                    "bind dir `{}` must be an absolute path",
                    rb.dir.get_ref().display()
                ),
            ));
        }
        binds.push(Bind {
            dir: rb.dir.get_ref().clone(),
            host: host_url(&rb.host, "bind")?,
            account: account_name(&rb.account)?,
            line: line_of(b.span().start),
        });
    }
    let mut default_accounts = Vec::new();
    for (host, account) in &raw.default_account {
        default_accounts.push(DefaultAccount {
            host: host_url(host, "default_account")?,
            account: account_name(account)?,
            line: line_of(host.span().start),
        });
    }
    Ok(Config {
        file: file.to_owned(),
        binds,
        default_accounts,
        servers,
        routes: routes.into_iter().map(|(r, _)| r).collect(),
        other_routes: others.into_iter().map(|(r, _)| r).collect(),
        #[cfg(test)]
        files: raw
            .files
            .into_iter()
            .map(|(name, f)| (name, f.dir))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[openbao.team]                 # a named server
address = "https://bao.example.com:8200"
auth = "userpass"              # "token" | "userpass" | "jwt"
username = "alice"             # userpass
# role = "wandb-jobs"          # jwt
# auth_mount = "userpass"      # default: the method's name
# ca_file = "/etc/ssl/team-ca.pem"
# namespace = "ml"
cache_ttl = "5m"               # how long the agent serves a read before reading again

[[route]]                      # keys of this host live in that server
host = "https://api.wandb.ai"
store = "openbao.team"
mount = "secret"               # KV v2: GET /v1/secret/data/ml-team/wandb
path = "ml-team/wandb"         # fields: password (the key), username (default: api)
"#;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/c/config.toml"), text)
    }

    fn e(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn the_issue_example_parses() {
        let c = p(EXAMPLE).unwrap();
        let s = &c.servers["team"];
        assert_eq!(s.address, "https://bao.example.com:8200");
        assert_eq!(
            s.auth,
            Auth::Userpass {
                username: "alice".into()
            }
        );
        assert_eq!(s.auth_mount, "userpass");
        assert_eq!(s.cache_ttl, Duration::from_secs(300));
        assert_eq!(s.stale_ttl, DEFAULT_STALE_TTL);
        let r = c.route("https", "api.wandb.ai").unwrap();
        assert_eq!(r.secret_name(), "secret/ml-team/wandb");
        assert_eq!(r.server.name, "team");
        assert!(c.route("https", "other.example").is_none());
        assert!(c.route("http", "api.wandb.ai").is_none());
    }

    #[test]
    fn jwt_and_token_servers() {
        let c = p(r#"
[openbao.jobs]
address = "https://bao:8200/"
auth = "jwt"
role = "wandb-jobs"
jwt_file = "/var/run/secrets/tokens/wandb"
auth_mount = "/k8s/"
namespace = "ml"
ca_file = "/etc/ssl/ca.pem"
[openbao.admin]
address = "http://127.0.0.1:8200"
auth = "token"
cache_ttl = "0"
stale_ttl = "1h30m"
[[route]]
host = "https://wandb.example.com:8443/"
store = "openbao.jobs"
path = "/a/b/"
"#)
        .unwrap();
        let j = &c.servers["jobs"];
        assert_eq!(j.address, "https://bao:8200");
        assert_eq!(j.auth_mount, "k8s");
        assert_eq!(j.namespace.as_deref(), Some("ml"));
        assert!(matches!(&j.auth, Auth::Jwt { role, .. } if role == "wandb-jobs"));
        let a = &c.servers["admin"];
        assert_eq!(a.cache_ttl, Duration::ZERO);
        assert_eq!(a.stale_ttl, Duration::from_secs(5400));
        let r = c.route("https", "wandb.example.com:8443").unwrap();
        assert_eq!((r.mount.as_str(), r.path.as_str()), ("secret", "a/b"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let m = e("[openbao.t]\naddress = \"https://b\"\nauth = \"kerberos\"\n");
        assert!(m.starts_with("/c/config.toml line 3: "), "{m}");
        assert!(m.contains("kerberos"), "{m}");
        let m = e("[openbao.t]\naddress = \"https://b\"\nauth = \"token\"\nbogus = 1\n");
        assert!(m.contains("line 4") && m.contains("bogus"), "{m}");
        let m = e("[openbao.t]\naddress = \"https://b\"\nauth = \"userpass\"\n");
        assert!(
            m.contains("line 1") && m.contains("needs `username`"),
            "{m}"
        );
        let m = e(
            "[openbao.t]\naddress = \"https://b\"\nauth = \"token\"\ncache_ttl = \"5 fortnights\"\n",
        );
        assert!(m.contains("line 4") && m.contains("cache_ttl"), "{m}");
        let m = e("[openbao.t]\naddress = \"http://bao.example.com\"\nauth = \"token\"\n");
        assert!(m.contains("line 2") && m.contains("https"), "{m}");
        let m = e("[[route]]\nhost = \"https://h\"\nstore = \"openbao.x\"\npath = \"p\"\n");
        assert!(m.contains("line 3") && m.contains("openbao.x"), "{m}");
        let t = "[openbao.t]\naddress = \"https://b\"\nauth = \"token\"\n\
                 [[route]]\nhost = \"https://h\"\nstore = \"openbao.t\"\npath = \"p\"\n\
                 [[route]]\nhost = \"https://h/\"\nstore = \"openbao.t\"\npath = \"q\"\n";
        let m = e(t);
        assert!(m.contains("line 9") && m.contains("line 4"), "{m}");
        let m = e(
            "[openbao.t]\naddress = \"https://b\"\nauth = \"token\"\n[[route]]\nhost = \"https://h\"\nstore = \"openbao.t\"\npath = \"../x\"\n",
        );
        assert!(m.contains("line 7"), "{m}");
        let m = e("not toml at all = = \n");
        assert!(m.contains("line 1"), "{m}");
        assert!(!m.contains('\n'), "one line: {m}");
    }

    #[test]
    fn insecure_loopback_is_off_by_default_and_only_for_plain_http() {
        let c = p("[openbao.t]\naddress = \"http://127.0.0.1:8210\"\nauth = \"token\"\n").unwrap();
        assert!(!c.servers["t"].insecure_loopback);
        let c = p(
            "[openbao.t]\naddress = \"http://localhost:8210\"\nauth = \"token\"\n\
                   insecure_loopback = true\n",
        )
        .unwrap();
        assert!(c.servers["t"].insecure_loopback);
        let m =
            e("[openbao.t]\naddress = \"https://b\"\nauth = \"token\"\ninsecure_loopback = true\n");
        assert!(
            m.contains("line 4") && m.contains("only for a plain http address"),
            "{m}"
        );
        let m = e(
            "[openbao.t]\naddress = \"http://127.0.0.1:1\"\nauth = \"token\"\ninsecure_loopback = 1\n",
        );
        assert!(m.contains("line 4"), "{m}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "m", "5x", "-1s", "5m3", "400d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.toml");
        assert!(load_from(&f, false).unwrap().is_none());
        let m = load_from(&f, true).unwrap_err().to_string();
        assert!(m.contains("WBL_CONFIG"), "{m}");
    }
}
