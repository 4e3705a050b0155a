//! W&B server URLs: validation and normalisation like the SDK's `HostUrl`.
//!
//! The SDK keeps the URL string exactly as the user typed it (minus trailing
//! slashes) and derives the netrc machine name with Python's
//! `urlsplit(url).netloc`. We do the same instead of using a normalising URL
//! library's serialisation, because the keychain/netrc entry must be found
//! under exactly the name the SDK would use (`HOST:8080`, not `host:8080`).
//! The `url` crate is only used to *validate*, as pydantic-core (which the
//! SDK's `validate_url` calls) is itself built on it.

use std::fmt;

/// The W&B public cloud API URL: wbl's default host (`--cloud`, no `base_url`), as in the
/// SDK before 0.31.
pub const DEFAULT_BASE_URL: &str = "https://api.wandb.ai";

/// The released SDK's default `base_url` (0.31): CoreWeave Forge's address of the W&B cloud.
pub const FORGE_BASE_URL: &str = "https://api.forge.coreweave.com";

/// The SDK's `urls.FORGE_HOSTS`: each CoreWeave Forge host and the W&B API host behind it.
/// The API is served at the root of the Forge host's `api.` subdomain and of the W&B host, and
/// proxied under [`FORGE_API_PATH`] on the Forge host itself.
pub const FORGE_HOSTS: [(&str, &str); 2] = [
    ("forge.coreweave.com", "api.wandb.ai"),
    ("qa.forge.coreweave.com", "api.qa.wandb.ai"),
];

/// Where a Forge host proxies the W&B API (`https://forge.coreweave.com/api/wandb`).
pub const FORGE_API_PATH: &str = "/api/wandb";

/// Why a host URL was rejected. Display gives a one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A wandb.ai address that is not the API host (e.g. `https://wandb.ai`).
    /// The message is the SDK's, byte for byte.
    #[error("{} is not a valid server address, did you mean {DEFAULT_BASE_URL}?", py_repr(.url))]
    NotApiHost {
        /// The URL as given.
        url: String,
    },
    /// An address on a Forge host other than its W&B API proxy (the SDK's message).
    #[error("Invalid Forge server address; use https://api.{forge}.")]
    Forge {
        /// The Forge host, e.g. `forge.coreweave.com`.
        forge: String,
    },
    /// `http://api.wandb.ai`: the SDK refuses plain HTTP for the cloud.
    #[error("http is not secure, please use {DEFAULT_BASE_URL}")]
    Insecure,
    /// `user:password@` in the address: refused, so it is never stored in the settings, used
    /// as a keychain name or printed. The message shows the address without it.
    #[error(
        "a server address must not contain a user name or password (`user:password@`); use {without} and let `wbl login` store the key"
    )]
    UserInfo {
        /// The address with the user info removed.
        without: String,
    },
    /// Anything else: not an absolute http(s) URL with a host.
    #[error("invalid host URL {}: {reason}", py_repr(.input))]
    Invalid {
        /// The URL as given.
        input: String,
        /// What is wrong with it, e.g. `URL scheme should be 'http' or 'https'`.
        reason: String,
    },
}

impl HostError {
    fn invalid(input: &str, reason: impl Into<String>) -> Self {
        HostError::Invalid {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The parts of a URL as Python's `urllib.parse.urlsplit` sees them
/// (without lowercasing anything and without the fragment/query details we
/// don't need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split<'a> {
    scheme: &'a str,
    netloc: &'a str,
    path: &'a str,
}

/// A minimal `urlsplit`: `scheme:` if the prefix is a valid scheme, then
/// `//netloc` up to the first `/`, `?` or `#`, then the path up to `?`/`#`.
fn urlsplit(url: &str) -> Split<'_> {
    let mut scheme = "";
    let mut rest = url;
    if let Some(i) = url.find(':') {
        let cand = &url[..i];
        let mut chars = cand.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            scheme = cand;
            rest = &url[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        rest = &after[end..];
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    Split {
        scheme,
        netloc,
        path: &rest[..path_end],
    }
}

/// Splits a netloc into (host, port string) after dropping any `userinfo@`.
/// IPv6 literals lose their brackets, like Python's `hostname`.
/// The host of the other address of a Forge-served deployment (`api.<forge>` for its W&B API
/// host and back), for an `https` address without port or path; `None` for anything else.
/// [`HostUrl::forge_alias`] and the git helper's lookup (which has no URL to parse) share it.
pub fn forge_alias_host(scheme: &str, netloc: &str, path: &str) -> Option<String> {
    let (host, port) = host_and_port(netloc);
    if !scheme.eq_ignore_ascii_case("https") || port.is_some() || !path.is_empty() {
        return None;
    }
    let name = host.to_ascii_lowercase();
    FORGE_HOSTS.iter().find_map(|(forge, api)| {
        if name == *api {
            Some(format!("api.{forge}"))
        } else if name.strip_prefix("api.") == Some(forge) {
            Some((*api).to_owned())
        } else {
            None
        }
    })
}

fn host_and_port(netloc: &str) -> (&str, Option<&str>) {
    let hostport = match netloc.rfind('@') {
        Some(i) => &netloc[i + 1..],
        None => netloc,
    };
    if let Some(inner) = hostport.strip_prefix('[') {
        if let Some(close) = inner.find(']') {
            let host = &inner[..close];
            let after = &inner[close + 1..];
            return (host, after.strip_prefix(':'));
        }
        return (hostport, None);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    }
}

/// Emulates `re.match(r".*wandb\.ai[^\.]*$", url)`: some `wandb.ai` with no
/// newline before it and no dot after it (only the last occurrence can
/// qualify, since any later occurrence itself contains a dot).
fn looks_like_wandb_ai(url: &str) -> bool {
    const NEEDLE: &str = "wandb.ai";
    match url.rfind(NEEDLE) {
        Some(p) => !url[..p].contains('\n') && !url[p + NEEDLE.len()..].contains('.'),
        None => false,
    }
}

/// Characters we refuse anywhere in a host URL. The `url` crate silently
/// drops tabs/newlines and treats `\` as `/`, while Python's `urlsplit`
/// keeps them in the netloc; refusing them avoids the two disagreeing and
/// keeps control characters out of netrc machine names and keychain labels.
fn is_unsafe(c: char) -> bool {
    c.is_control() || c.is_whitespace() || c == '\\'
}

/// A validated, normalised W&B server ("API") URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostUrl {
    url: String,
}

impl HostUrl {
    /// Validates `input` like the SDK's `HostUrl.__init__` and strips
    /// trailing `/`. No scheme is added and nothing is lowercased.
    ///
    /// Order of checks: URL syntax with an http(s) scheme (pydantic's
    /// `url_schema(allowed_schemes=["http","https"])`), then the SDK's
    /// wandb.ai checks, then our extra requirements: no unsafe characters
    /// and a non-empty `urlsplit` netloc (the SDK fails later, when writing
    /// the netrc file, on e.g. `https:host`).
    pub fn parse(input: &str) -> Result<HostUrl, HostError> {
        if input.is_empty() {
            return Err(HostError::invalid(input, "input is empty"));
        }
        // Before anything that could echo the input: it may hold a password.
        let raw = urlsplit(input);
        if let Some(at) = raw.netloc.rfind('@') {
            let scheme = if raw.scheme.is_empty() {
                String::new()
            } else {
                format!("{}://", raw.scheme)
            };
            return Err(HostError::UserInfo {
                without: format!(
                    "{scheme}{}{}",
                    &raw.netloc[at + 1..],
                    raw.path.trim_end_matches('/')
                ),
            });
        }
        let parsed =
            url::Url::parse(input).map_err(|e| HostError::invalid(input, e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HostError::invalid(
                input,
                "URL scheme should be 'http' or 'https'",
            ));
        }
        let normalised = normalize_forge(input)?;
        let url = normalised.as_deref().unwrap_or(input);
        if looks_like_wandb_ai(url) {
            if !url.contains("api.") {
                return Err(HostError::NotApiHost {
                    url: url.to_owned(),
                });
            } else if !url.starts_with("https") {
                return Err(HostError::Insecure);
            }
        }
        if input.chars().any(is_unsafe) {
            return Err(HostError::invalid(
                input,
                "URL cannot contain unsafe characters",
            ));
        }
        let url = url.trim_end_matches('/');
        let split = urlsplit(url);
        if !split.scheme.eq_ignore_ascii_case(parsed.scheme()) {
            // e.g. leading spaces stripped by the `url` crate; unreachable
            // after the unsafe-character check, kept as a guard.
            return Err(HostError::invalid(
                input,
                "URL scheme should be 'http' or 'https'",
            ));
        }
        let (host, _) = host_and_port(split.netloc);
        if host.is_empty() {
            return Err(HostError::invalid(input, "URL has no host"));
        }
        Ok(HostUrl {
            url: url.to_owned(),
        })
    }

    /// A URL as [`HostUrl::parse`] takes it, or a bare host name (`wandb.example.com`,
    /// `h:8443`) meaning `https://HOST`: what wbl's own options (`--host` of `token`, `exec`,
    /// `logout`, …, and `wbl ssh --allow`) accept. `wbl login --host` keeps the SDK's rule.
    pub fn parse_host_or_url(input: &str) -> Result<HostUrl, HostError> {
        if input.is_empty() || input.contains("://") {
            HostUrl::parse(input)
        } else {
            HostUrl::parse(&format!("https://{input}"))
        }
    }

    /// The W&B public cloud, `https://api.wandb.ai`.
    pub fn cloud() -> HostUrl {
        HostUrl {
            url: DEFAULT_BASE_URL.to_owned(),
        }
    }

    /// The normalised URL (as given, minus trailing slashes).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The scheme exactly as written (`https`, or e.g. `HTTPS`).
    pub fn scheme(&self) -> &str {
        urlsplit(&self.url).scheme
    }

    /// `host[:port]` exactly as written — Python's `urlsplit(url).netloc`,
    /// which is the netrc machine name the SDK reads and writes.
    pub fn netloc(&self) -> &str {
        urlsplit(&self.url).netloc
    }

    /// The host without port or userinfo (IPv6 without brackets); not
    /// lowercased.
    pub fn host(&self) -> &str {
        host_and_port(self.netloc()).0
    }

    /// The explicit port, if any and numeric.
    pub fn port(&self) -> Option<u16> {
        host_and_port(self.netloc()).1.and_then(|p| p.parse().ok())
    }

    /// The URL path (e.g. `/wandb` for a server behind a path prefix); empty
    /// when there is none (trailing slashes are already stripped).
    pub fn path(&self) -> &str {
        urlsplit(&self.url).path
    }

    /// Whether this is the W&B public cloud (exact string comparison, like
    /// the SDK's `is_same_url`).
    pub fn is_cloud(&self) -> bool {
        self.url == DEFAULT_BASE_URL
    }

    /// The host lowercased, as Python's `urlsplit(url).hostname` compares it.
    fn hostname(&self) -> String {
        self.host().to_ascii_lowercase()
    }

    /// The Forge host serving this address, if any: the SDK's `urls.forge_host` (the Forge
    /// host itself, its `api.` subdomain, or the W&B API host behind it).
    pub fn forge_host(&self) -> Option<&'static str> {
        let name = self.hostname();
        FORGE_HOSTS
            .iter()
            .find(|(forge, api)| {
                name == *forge || name == *api || name.strip_prefix("api.") == Some(forge)
            })
            .map(|(forge, _)| *forge)
    }

    /// Where the SDK looks next in netrc when this address has no entry: the W&B API host
    /// behind a Forge address (`https://api.wandb.ai` for `https://api.forge.coreweave.com`),
    /// as `urls.forge_upstream_url` gives it; `None` when that is this address itself.
    pub fn forge_upstream(&self) -> Option<HostUrl> {
        let forge = self.forge_host()?;
        let (_, api) = FORGE_HOSTS.iter().find(|(f, _)| *f == forge)?;
        let up = format!("https://{api}");
        (up != self.url).then_some(HostUrl { url: up })
    }

    /// The other address of the same W&B deployment, for wbl's keychain: the W&B API host
    /// for a Forge API address and the Forge API address for a W&B API host behind Forge
    /// (`https://api.forge.coreweave.com` ⇄ `https://api.wandb.ai`). Only for plain `https`
    /// addresses without port or path, so a key never goes to another scheme or service.
    pub fn forge_alias(&self) -> Option<HostUrl> {
        forge_alias_host(self.scheme(), self.netloc(), self.path()).map(|host| HostUrl {
            url: format!("https://{host}"),
        })
    }

    /// The SDK's `saas.is_wandb_domain`: a netloc ending in `wandb.ai`, or a Forge address.
    pub fn is_wandb_domain(&self) -> bool {
        self.netloc().ends_with("wandb.ai") || self.forge_host().is_some()
    }

    /// The W&B API host behind this address's Forge host (`api.wandb.ai`), or "".
    fn forge_alias_api_host(&self) -> &'static str {
        match self.forge_host() {
            Some(forge) => FORGE_HOSTS
                .iter()
                .find(|(f, _)| *f == forge)
                .map_or("", |(_, api)| *api),
            None => "",
        }
    }

    /// The SDK's `is_same_url`: equal after stripping trailing `/`.
    pub fn is_same_url(&self, other: &str) -> bool {
        self.url == other.trim_end_matches('/')
    }

    /// The web-app URL: `WANDB_APP_URL` if set and non-empty, else derived
    /// with the SDK's `api_to_app_url`; trailing `/` stripped.
    pub fn app_url(&self, env_app_url: Option<&str>) -> String {
        match env_app_url {
            Some(app) if !app.is_empty() => app.trim_end_matches('/').to_owned(),
            _ => match self.forge_host() {
                // The SDK (0.31) sends every Forge-served address to the Forge UI; wbl keeps
                // the W&B UI for the W&B host itself, its cloud default.
                Some(forge) if self.hostname() != self.forge_alias_api_host() => {
                    format!("https://{forge}/wandb")
                }
                _ => api_to_app_url(&self.url).trim_end_matches('/').to_owned(),
            },
        }
    }

    /// Where to create a key: `{scheme}://{app netloc}/authorize?ref=models`
    /// (any path of the app URL is dropped, as in the SDK's prompt).
    pub fn authorize_url(&self, env_app_url: Option<&str>) -> String {
        let app = self.app_url(env_app_url);
        let split = urlsplit(&app);
        format!("{}://{}/authorize?ref=models", split.scheme, split.netloc)
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The SDK's `urls.normalize_forge_base_url`: on a Forge host (the host itself, not its
/// `api.` subdomain), `https://<forge>/api/wandb` (no port) becomes `https://api.<forge>`;
/// any other address there is refused. `Ok(None)` leaves the URL as it is.
fn normalize_forge(input: &str) -> Result<Option<String>, HostError> {
    let split = urlsplit(input);
    let (host, port) = host_and_port(split.netloc);
    let host = host.to_ascii_lowercase();
    let Some((forge, _)) = FORGE_HOSTS.iter().find(|(f, _)| *f == host) else {
        return Ok(None);
    };
    if split.scheme.eq_ignore_ascii_case("https")
        && port.is_none_or(str::is_empty)
        && split.path.trim_end_matches('/') == FORGE_API_PATH
    {
        return Ok(Some(format!("https://api.{forge}")));
    }
    Err(HostError::Forge {
        forge: (*forge).to_owned(),
    })
}

/// The SDK's `util.api_to_app_url` (Python `str.replace`, i.e. every
/// occurrence is replaced).
fn api_to_app_url(api_url: &str) -> String {
    if api_url.contains("://api.wandb.test") {
        api_url.replace("://api.", "://app.")
    } else if api_url.contains("://api.wandb.") {
        api_url.replace("://api.", "://")
    } else if api_url.contains("://api.") {
        api_url.replace("://api.", "://app.")
    } else {
        api_url.to_owned()
    }
}

/// Builds a server URL from the fields of git's credential protocol:
/// `protocol` (`https`), `host` (may include `:port`) and an optional `path`
/// (git sends it without a leading slash). An empty path adds nothing.
pub fn from_git(protocol: &str, host: &str, path: Option<&str>) -> String {
    let mut url = format!("{protocol}://{host}");
    if let Some(p) = path {
        let p = p.trim_start_matches('/');
        if !p.is_empty() {
            url.push('/');
            url.push_str(p);
        }
    }
    url
}

/// Python's `repr()` of a `str`, used where the SDK formats with `!r`
/// (e.g. `'https://wandb.ai' is not a valid server address…`).
///
/// Quotes with `'` unless the text contains `'` and no `"`. Escapes `\`,
/// the quote, `\t \n \r`, and non-printable characters as `\xNN`, `\uNNNN`
/// or `\UNNNNNNNN`. "Non-printable" is approximated with control characters,
/// non-space whitespace and a few common format characters (Python uses the
/// full Unicode category tables).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Approximation of Python's `str.isprintable` for one character.
fn py_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e000}'..='\u{f8ff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> HostUrl {
        match HostUrl::parse(s) {
            Ok(h) => h,
            Err(e) => panic!("{s:?} rejected: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match HostUrl::parse(s) {
            Ok(h) => panic!("{s:?} accepted as {h}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cloud_default() {
        let h = ok("https://api.wandb.ai");
        assert_eq!(h, HostUrl::cloud());
        assert!(h.is_cloud());
        assert_eq!(h.as_str(), DEFAULT_BASE_URL);
        assert_eq!(h.scheme(), "https");
        assert_eq!(h.netloc(), "api.wandb.ai");
        assert_eq!(h.host(), "api.wandb.ai");
        assert_eq!(h.port(), None);
        assert_eq!(h.path(), "");
        assert_eq!(h.to_string(), "https://api.wandb.ai");
    }

    #[test]
    fn trailing_slashes_stripped() {
        let h = ok("https://api.wandb.ai///");
        assert_eq!(h.as_str(), "https://api.wandb.ai");
        assert!(h.is_cloud());
        let h = ok("https://my.host:8443/");
        assert_eq!(h.as_str(), "https://my.host:8443");
        assert_eq!(h.netloc(), "my.host:8443");
        assert_eq!(h.host(), "my.host");
        assert_eq!(h.port(), Some(8443));
        assert!(!h.is_cloud());
        assert!(h.is_same_url("https://my.host:8443//"));
        assert!(!h.is_same_url("https://my.host"));
    }

    #[test]
    fn no_rewriting() {
        let h = ok("http://localhost:8080");
        assert_eq!(h.as_str(), "http://localhost:8080");
        assert_eq!(h.netloc(), "localhost:8080");
        let h = ok("HTTPS://My-Wandb.Example.COM:8080/Sub/Path/");
        assert_eq!(h.as_str(), "HTTPS://My-Wandb.Example.COM:8080/Sub/Path");
        assert_eq!(h.scheme(), "HTTPS");
        assert_eq!(h.netloc(), "My-Wandb.Example.COM:8080");
        assert_eq!(h.host(), "My-Wandb.Example.COM");
        assert_eq!(h.path(), "/Sub/Path");
        let h = ok("http://[::1]:8080/x?y#z");
        assert_eq!(h.netloc(), "[::1]:8080");
        assert_eq!(h.host(), "::1");
        assert_eq!(h.port(), Some(8080));
        assert_eq!(h.path(), "/x");
    }

    #[test]
    fn user_info_is_refused_and_never_echoed() {
        for input in [
            "https://user:pw-secret@h.example:81",
            "https://pw-secret@h.example/sub/",
            "https://user:pw-secret@@h.example",
            "ftp://u:pw-secret@h.example",
            "https://u:pw-secret@",
        ] {
            let e = err(input);
            assert!(!e.contains("pw-secret"), "{input}: {e}");
            assert!(e.contains("user name or password"), "{input}: {e}");
        }
        assert!(
            err("https://user:pw-secret@h.example:81/x").contains("use https://h.example:81/x")
        );
    }

    #[test]
    fn wandb_ai_errors_match_sdk() {
        assert_eq!(
            err("https://wandb.ai"),
            "'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?"
        );
        assert_eq!(
            err("https://app.wandb.ai/"),
            "'https://app.wandb.ai/' is not a valid server address, did you mean https://api.wandb.ai?"
        );
        assert_eq!(
            err("http://api.wandb.ai"),
            "http is not secure, please use https://api.wandb.ai"
        );
        assert_eq!(
            err("https://wandb.ai\u{0}"),
            "'https://wandb.ai\\x00' is not a valid server address, did you mean https://api.wandb.ai?"
        );
        // Not a wandb.ai domain (a dot follows): no special treatment.
        ok("https://wandb.ai.example.com");
        ok("http://wandb.ai.example.com");
        // Dedicated cloud style hosts with api. are fine over https.
        ok("https://api.acme.wandb.ai");
        ok("https://api.wandb.ai:443/");
    }

    #[test]
    fn forge_addresses_like_the_sdk() {
        // (input, normalised URL or the error)
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "https://api.forge.coreweave.com",
                Ok("https://api.forge.coreweave.com"),
            ),
            (
                "https://api.forge.coreweave.com/",
                Ok("https://api.forge.coreweave.com"),
            ),
            (
                "https://forge.coreweave.com/api/wandb",
                Ok("https://api.forge.coreweave.com"),
            ),
            (
                "https://forge.coreweave.com/api/wandb/",
                Ok("https://api.forge.coreweave.com"),
            ),
            (
                "HTTPS://Forge.CoreWeave.com/api/wandb",
                Ok("https://api.forge.coreweave.com"),
            ),
            (
                "https://qa.forge.coreweave.com/api/wandb",
                Ok("https://api.qa.forge.coreweave.com"),
            ),
            (
                "https://forge.coreweave.com",
                Err("Invalid Forge server address; use https://api.forge.coreweave.com."),
            ),
            (
                "https://forge.coreweave.com/wandb",
                Err("Invalid Forge server address; use https://api.forge.coreweave.com."),
            ),
            (
                "http://forge.coreweave.com/api/wandb",
                Err("Invalid Forge server address; use https://api.forge.coreweave.com."),
            ),
            (
                "https://forge.coreweave.com:8443/api/wandb",
                Err("Invalid Forge server address; use https://api.forge.coreweave.com."),
            ),
            (
                "https://qa.forge.coreweave.com/",
                Err("Invalid Forge server address; use https://api.qa.forge.coreweave.com."),
            ),
            // Not a Forge host: left alone.
            (
                "https://forge.coreweave.com.example/api/wandb",
                Ok("https://forge.coreweave.com.example/api/wandb"),
            ),
            (
                "https://x.forge.coreweave.com",
                Ok("https://x.forge.coreweave.com"),
            ),
            // wbl's cloud refusal keeps suggesting wbl's cloud address.
            (
                "https://wandb.ai",
                Err(
                    "'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?",
                ),
            ),
        ];
        for (input, want) in cases {
            let got = HostUrl::parse(input)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{input}"
            );
        }
    }

    #[test]
    fn forge_upstream_and_alias() {
        let forge = ok(FORGE_BASE_URL);
        assert_eq!(forge.forge_host(), Some("forge.coreweave.com"));
        assert_eq!(forge.forge_upstream(), Some(HostUrl::cloud()));
        assert_eq!(forge.forge_alias(), Some(HostUrl::cloud()));
        assert_eq!(HostUrl::cloud().forge_upstream(), None);
        assert_eq!(HostUrl::cloud().forge_alias(), Some(forge.clone()));
        let qa = ok("https://api.qa.forge.coreweave.com");
        assert_eq!(
            qa.forge_upstream().map(|h| h.to_string()).as_deref(),
            Some("https://api.qa.wandb.ai")
        );
        assert_eq!(
            ok("https://api.qa.wandb.ai").forge_alias(),
            Some(qa.clone())
        );
        // The SDK falls back from any Forge-served URL; wbl's alias needs the plain address.
        let odd = ok("http://api.forge.coreweave.com:8080/x");
        assert_eq!(odd.forge_upstream(), Some(HostUrl::cloud()));
        assert_eq!(odd.forge_alias(), None);
        assert_eq!(ok("https://api.wandb.ai:443").forge_alias(), None);
        assert_eq!(ok("https://api.acme.wandb.ai").forge_alias(), None);
        assert_eq!(ok("https://api.acme.wandb.ai").forge_upstream(), None);
        assert_eq!(ok("https://wandb.example").forge_host(), None);
        // App URLs: the Forge UI for Forge addresses, the W&B UI for the W&B host.
        assert_eq!(forge.app_url(None), "https://forge.coreweave.com/wandb");
        assert_eq!(
            forge.authorize_url(None),
            "https://forge.coreweave.com/authorize?ref=models"
        );
        assert_eq!(HostUrl::cloud().app_url(None), "https://wandb.ai");
        assert!(forge.is_wandb_domain() && HostUrl::cloud().is_wandb_domain());
        assert!(ok("https://api.acme.wandb.ai").is_wandb_domain());
        assert!(!ok("https://wandb.example").is_wandb_domain());
    }

    #[test]
    fn scheme_and_syntax_errors() {
        assert_eq!(
            err("ftp://x.example"),
            "invalid host URL 'ftp://x.example': URL scheme should be 'http' or 'https'"
        );
        assert_eq!(
            err("file:///etc/passwd"),
            "invalid host URL 'file:///etc/passwd': URL scheme should be 'http' or 'https'"
        );
        assert_eq!(
            err("my-host.example.com"),
            "invalid host URL 'my-host.example.com': relative URL without a base"
        );
        assert_eq!(err("https://"), "invalid host URL 'https://': empty host");
        assert_eq!(err(""), "invalid host URL '': input is empty");
        assert!(err("https://h:99999").contains("invalid port number"));
        assert!(err("https://exa mple.com").starts_with("invalid host URL"));
        assert_eq!(
            err("https://h.example/a b"),
            "invalid host URL 'https://h.example/a b': URL cannot contain unsafe characters"
        );
        assert_eq!(
            err("https://h.example\n"),
            "invalid host URL 'https://h.example\\n': URL cannot contain unsafe characters"
        );
        assert!(err("https://h\\x").contains("unsafe"));
        assert_eq!(
            err("https:host.example"),
            "invalid host URL 'https:host.example': URL has no host"
        );
        assert!(err("https:///host.example").contains("no host"));
        // wandb.ai addresses without a scheme fail the URL check first, as
        // in the SDK (pydantic runs before the wandb.ai regex).
        assert_eq!(
            err("wandb.ai"),
            "invalid host URL 'wandb.ai': relative URL without a base"
        );
    }

    #[test]
    fn bare_hosts_mean_https() {
        let h = |s| HostUrl::parse_host_or_url(s).map(|h| h.to_string());
        assert_eq!(h("wandb.example.com").unwrap(), "https://wandb.example.com");
        assert_eq!(h("h.example:8443").unwrap(), "https://h.example:8443");
        assert_eq!(h("http://h.example").unwrap(), "http://h.example");
        assert!(h("wandb.ai").is_err());
        assert!(h("").is_err());
    }

    #[test]
    fn app_url_rules() {
        let cloud = HostUrl::cloud();
        assert_eq!(cloud.app_url(None), "https://wandb.ai");
        assert_eq!(
            cloud.authorize_url(None),
            "https://wandb.ai/authorize?ref=models"
        );
        assert_eq!(
            ok("https://api.wandb.test").app_url(None),
            "https://app.wandb.test"
        );
        assert_eq!(
            ok("https://api.acme.com/").app_url(None),
            "https://app.acme.com"
        );
        assert_eq!(
            ok("http://localhost:8080").app_url(None),
            "http://localhost:8080"
        );
        assert_eq!(
            ok("http://localhost:8080/x").authorize_url(None),
            "http://localhost:8080/authorize?ref=models"
        );
        assert_eq!(
            cloud.app_url(Some("https://ui.example/base/")),
            "https://ui.example/base"
        );
        assert_eq!(
            cloud.authorize_url(Some("https://ui.example:9/base/")),
            "https://ui.example:9/authorize?ref=models"
        );
        // Empty env var is ignored, like Python's `or`.
        assert_eq!(cloud.app_url(Some("")), "https://wandb.ai");
    }

    #[test]
    fn git_fields() {
        assert_eq!(
            from_git("https", "api.wandb.ai", None),
            "https://api.wandb.ai"
        );
        assert_eq!(from_git("https", "h:8080", Some("")), "https://h:8080");
        assert_eq!(from_git("https", "h", Some("a/b")), "https://h/a/b");
        assert_eq!(from_git("https", "h", Some("/a")), "https://h/a");
        let h = ok(&from_git("https", "h.example:8443", Some("wandb")));
        assert_eq!(h.netloc(), "h.example:8443");
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("a'b"), "\"a'b\"");
        assert_eq!(py_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(
            py_repr("a\u{0}\u{a0}\u{200b}\u{85}"),
            "'a\\x00\\xa0\\u200b\\x85'"
        );
        assert_eq!(py_repr("\\"), "'\\\\'");
        assert_eq!(py_repr("é"), "'é'");
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = crate::wandb::testutil::Lcg::new(11);
        let prefixes = [
            "",
            "https://",
            "http://",
            "https://api.",
            "http://[",
            "https:",
        ];
        for i in 0..3000 {
            let s = format!("{}{}", prefixes[i % prefixes.len()], rng.string(24));
            if let Ok(h) = HostUrl::parse(&s) {
                let _ = (h.scheme(), h.netloc(), h.host(), h.port(), h.path());
                let _ = (h.app_url(None), h.authorize_url(Some(&s)));
                assert!(!h.netloc().is_empty());
                assert!(!h.as_str().ends_with('/'));
            }
        }
    }
}
