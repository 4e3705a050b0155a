//! git's reading of a credential URL (`url=` in the helper protocol, and every line of
//! `~/.git-credentials`): `protocol://[user[:password]@]host[:port][/path]`, percent-decoded.
//!
//! Follows `credential_from_url_1` in git's `credential.c` (full URLs only, no partial ones):
//! the first `://` ends the protocol; the host ends at the first `/`, `?` or `#`; an `@` before
//! that separates the user information, whose first `:` separates the password; leading and
//! trailing slashes of the path are dropped. Components with a newline are refused, as git does.

use percent_encoding::percent_decode_str;
use wbl_proto::Secret;

/// Why a URL was refused. Messages never include the URL, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL has no scheme (expected protocol://host)")]
    NoScheme,
    #[error("the URL's {0} contains a newline")]
    Newline(&'static str),
    #[error("the URL's {0} is not valid UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
}

/// The parts of a credential URL; absent parts are `None`, as in git.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlParts {
    pub protocol: String,
    /// Always present; empty for URLs like `cert:///path/to/file`.
    pub host: String,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

fn decode(what: &'static str, s: &str) -> Result<String, UrlError> {
    let text = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| UrlError::NotUtf8(what))?
        .into_owned();
    if text.contains('\n') {
        return Err(UrlError::Newline(what));
    }
    Ok(text)
}

/// Parses a credential URL like git's `credential_from_url`.
pub fn parse(url: &str) -> Result<UrlParts, UrlError> {
    let (protocol, rest) = match url.split_once("://") {
        Some((p, r)) if !p.is_empty() => (p, r),
        _ => return Err(UrlError::NoScheme),
    };
    if protocol.contains('\n') {
        return Err(UrlError::Newline("protocol"));
    }
    let slash = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest.find('@').filter(|&a| a < slash);
    let colon = rest.find(':');
    let mut parts = UrlParts {
        protocol: protocol.to_owned(),
        ..UrlParts::default()
    };
    let host_start = match at {
        None => 0,
        Some(at) => match colon.filter(|&c| c < at) {
            None => {
                parts.username = Some(decode("user name", &rest[..at])?);
                at + 1
            }
            Some(colon) => {
                parts.username = Some(decode("user name", &rest[..colon])?);
                parts.password = Some(Secret::new(decode("password", &rest[colon + 1..at])?));
                at + 1
            }
        },
    };
    parts.host = decode("host", &rest[host_start..slash])?;
    let path = rest[slash..].trim_start_matches('/');
    if !path.is_empty() {
        let decoded = decode("path", path)?;
        let trimmed = decoded.trim_end_matches('/');
        // git keeps a path made only of slashes as a single "/" (it never empties it).
        parts.path = Some(if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(url: &str) -> UrlParts {
        parse(url).unwrap()
    }

    #[test]
    fn host_only_and_port() {
        let u = p("https://example.com");
        assert_eq!(u.protocol, "https");
        assert_eq!(u.host, "example.com");
        assert_eq!(u.path, None);
        assert_eq!(u.username, None);
        assert_eq!(p("https://example.com:8443/").host, "example.com:8443");
        assert_eq!(p("https://example.com:8443/").path, None);
    }

    #[test]
    fn user_password_and_path() {
        let u = p("https://al%40ice:p%3Ass%2Fw@git.example.com:8443//org/repo.git//");
        assert_eq!(u.username.as_deref(), Some("al@ice"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p:ss/w"));
        assert_eq!(u.host, "git.example.com:8443");
        assert_eq!(u.path.as_deref(), Some("org/repo.git"));
    }

    #[test]
    fn user_without_password_and_colon_after_at() {
        let u = p("https://bob@host:99/x");
        assert_eq!(u.username.as_deref(), Some("bob"));
        assert_eq!(u.password, None);
        assert_eq!(u.host, "host:99");
        // An @ in the path is not user information.
        let u = p("https://host/a@b");
        assert_eq!(u.username, None);
        assert_eq!(u.host, "host");
        assert_eq!(u.path.as_deref(), Some("a@b"));
    }

    #[test]
    fn query_ends_the_host() {
        let u = p("https://host?x=1");
        assert_eq!(u.host, "host");
        assert_eq!(u.path.as_deref(), Some("?x=1"));
    }

    #[test]
    fn empty_host_and_non_ascii() {
        let u = p("cert:///etc/cert.pem");
        assert_eq!(u.host, "");
        assert_eq!(u.path.as_deref(), Some("etc/cert.pem"));
        let u = p("https://j%C3%BCrgen:%E6%B5%8B@h%C3%B6st/d%C3%A9p%C3%B4t");
        assert_eq!(u.username.as_deref(), Some("jürgen"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("测"));
        assert_eq!(u.host, "höst");
        assert_eq!(u.path.as_deref(), Some("dépôt"));
    }

    #[test]
    fn refused() {
        assert_eq!(parse("example.com"), Err(UrlError::NoScheme));
        assert_eq!(parse("://example.com"), Err(UrlError::NoScheme));
        assert_eq!(
            parse("https://a%0Ab@host"),
            Err(UrlError::Newline("user name"))
        );
        assert_eq!(parse("https://host/%FF"), Err(UrlError::NotUtf8("path")));
        let e = parse("https://u:hunter2%0A@host").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
