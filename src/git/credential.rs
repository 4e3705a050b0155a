//! git's credential-helper format (git-credential(1), gitcredentials(7)): `key=value` lines on
//! stdin, ended by a blank line or end of input; the answer to `get` in the same format.
//!
//! What a storage helper does with each attribute (as git's own `credential-cache` does):
//! - `protocol`, `host` (with port), `path`, `username`: what to look up, store or erase;
//!   `url=` is read as its parts.
//! - `password`, `password_expiry_utc`, `oauth_refresh_token`: stored and returned.
//! - `capability[]=authtype` with `authtype`, `credential`, `ephemeral` (git 2.46+): pre-encoded
//!   credentials are stored and returned, the latter only to callers that announce the
//!   capability; ephemeral credentials are not stored.
//! - `capability[]=state`, `state[]`, `continue`, `wwwauth[]`, and anything unknown: read and
//!   ignored. `state[]` is a helper's own memory between calls of a multistage authentication,
//!   which a storage helper does not need, so wbl never announces the `state` capability.
//!
//! Input is bounded ([`MAX_INPUT`]) before it reaches the socket. Errors name the line, never
//! its contents (which may be a password).

use wbl_proto::{Credential, Query, Secret, Target};
use zeroize::Zeroizing;

use super::url;

/// The largest request accepted on stdin: git's limit is 64 KiB per line, and the whole
/// credential has to fit in one 64 KiB frame to the agent anyway.
pub const MAX_INPUT: usize = 64 * 1024;

/// A malformed request. Messages carry line numbers only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the request is larger than {} KiB", MAX_INPUT / 1024)]
    TooLarge,
    #[error("line {0} is not `key=value`")]
    NoEquals(usize),
    #[error("line {0} contains a NUL byte")]
    Nul(usize),
    #[error("line {0} is not valid UTF-8")]
    NotUtf8(usize),
    #[error("line {line}: {source}")]
    Url { line: usize, source: url::UrlError },
    #[error("the request has no `{0}` attribute")]
    Missing(&'static str),
}

/// One request from git, as read from stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitCredential {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_expiry_utc: Option<u64>,
    pub oauth_refresh_token: Option<Secret>,
    pub authtype: Option<String>,
    pub credential: Option<Secret>,
    pub ephemeral: bool,
    /// The caller announced `capability[]=authtype`.
    pub capability_authtype: bool,
    /// The caller announced `capability[]=state` (read, never used).
    pub capability_state: bool,
}

/// git's `git_config_bool` for the values helpers exchange (`1`, `true`, `yes`, `on`, …).
fn config_bool(value: &str) -> bool {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => true,
        "false" | "no" | "off" | "" => false,
        n => n.parse::<i64>().is_ok_and(|n| n != 0),
    }
}

impl GitCredential {
    /// Parses a request. Lines may end in `\n` or `\r\n`; a blank line ends the request.
    pub fn parse(input: &[u8]) -> Result<GitCredential, FormatError> {
        if input.len() > MAX_INPUT {
            return Err(FormatError::TooLarge);
        }
        let mut c = GitCredential::default();
        for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
            let line_no = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                // A blank line (or the end after a final newline) ends the request.
                break;
            }
            if raw.contains(&0) {
                return Err(FormatError::Nul(line_no));
            }
            let line = std::str::from_utf8(raw).map_err(|_| FormatError::NotUtf8(line_no))?;
            let (key, value) = line.split_once('=').ok_or(FormatError::NoEquals(line_no))?;
            c.set(key, value).map_err(|source| FormatError::Url {
                line: line_no,
                source,
            })?;
        }
        Ok(c)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), url::UrlError> {
        match key {
            "protocol" => self.protocol = Some(value.to_owned()),
            "host" => self.host = Some(value.to_owned()),
            "path" => self.path = Some(value.to_owned()),
            "username" => self.username = Some(value.to_owned()),
            "password" => self.password = Some(Secret::from(value)),
            "password_expiry_utc" => {
                // As git: 0 or an unreadable value means "no expiry".
                self.password_expiry_utc = value.parse().ok().filter(|&t| t != 0);
            }
            "oauth_refresh_token" => self.oauth_refresh_token = Some(Secret::from(value)),
            "authtype" => self.authtype = Some(value.to_owned()),
            "credential" => self.credential = Some(Secret::from(value)),
            "ephemeral" => self.ephemeral = config_bool(value),
            "capability[]" => match value {
                "authtype" => self.capability_authtype = true,
                "state" => self.capability_state = true,
                // An empty value resets a multi-valued attribute.
                "" => {
                    self.capability_authtype = false;
                    self.capability_state = false;
                }
                _ => {}
            },
            "url" => {
                // git starts over from the URL's parts (it clears the whole credential; we keep
                // the capabilities announced before it, which git would forget).
                let parts = url::parse(value)?;
                *self = GitCredential {
                    protocol: Some(parts.protocol),
                    host: Some(parts.host),
                    path: parts.path,
                    username: parts.username,
                    password: parts.password,
                    capability_authtype: self.capability_authtype,
                    capability_state: self.capability_state,
                    ..GitCredential::default()
                };
            }
            // `state[]`, `continue`, `wwwauth[]`, `quit` and attributes of future gits.
            _ => {}
        }
        Ok(())
    }

    /// The target: `protocol` and `host` are required; an empty `path` is no path.
    pub fn target(&self) -> Result<Target, FormatError> {
        let protocol = self
            .protocol
            .clone()
            .ok_or(FormatError::Missing("protocol"))?;
        let host = self.host.clone().ok_or(FormatError::Missing("host"))?;
        Ok(Target {
            protocol,
            host,
            path: self.path.clone().filter(|p| !p.is_empty()),
        })
    }

    /// What to look up or erase: a field constrains the match only when it was sent.
    pub fn query(&self) -> Result<Query, FormatError> {
        Ok(Query {
            target: self.target()?,
            username: self.username.clone(),
            account: Default::default(),
        })
    }

    /// The credential to store, or `None` when git's rules say there is nothing to store: an
    /// ephemeral credential, or neither user name + password nor a pre-encoded credential.
    /// As in git's `credential-cache`, a user name and a password that are sent but empty are
    /// a credential (SSO hosts), stored and given back as `username=` / `password=`.
    pub fn to_store(&self) -> Result<Option<Credential>, FormatError> {
        let target = self.target()?;
        let has_pre_encoded = self.credential.as_ref().is_some_and(|c| !c.is_empty());
        let has_password = self.username.is_some() && self.password.is_some();
        if self.ephemeral || !(has_password || has_pre_encoded) {
            return Ok(None);
        }
        let mut cred = Credential::new(
            target,
            self.username.clone().unwrap_or_default(),
            self.password.clone().unwrap_or_default(),
        );
        cred.password_expiry_utc = self.password_expiry_utc;
        cred.oauth_refresh_token = self.oauth_refresh_token.clone().filter(|t| !t.is_empty());
        cred.authtype = self.authtype.clone().filter(|a| !a.is_empty());
        cred.credential = self.credential.clone().filter(|c| !c.is_empty());
        Ok(Some(cred))
    }

    /// git's `credential_match` with passwords (what `erase` uses): a stored credential is
    /// erased only if the secrets sent with the request are the ones stored, so rejecting an
    /// old password never removes a newer one stored meanwhile.
    pub fn secrets_match(&self, stored: &Credential) -> bool {
        let password_ok = self
            .password
            .as_ref()
            .is_none_or(|p| p.expose() == stored.password.expose());
        // An empty `credential=` means none, as `to_store` reads it (found by fuzzing).
        let credential_ok = self
            .credential
            .as_ref()
            .filter(|c| !c.is_empty())
            .is_none_or(|c| stored.credential.as_ref() == Some(c));
        password_ok && credential_ok
    }
}

/// The answer to `get` for a stored credential, line for line what git's `credential-cache`
/// answers (git 2.48+): `capability[]=authtype`, the user name and password when the
/// credential has them (even empty), the pre-encoded `authtype`/`credential` only to a caller
/// that announced the `authtype` capability, then `password_expiry_utc` and
/// `oauth_refresh_token`. `None` when a value cannot be carried by the line format (a newline
/// or NUL), where git's cache would send a corrupt answer.
pub fn get_response(cred: &Credential, caller_has_authtype: bool) -> Option<Zeroizing<String>> {
    let has_password = cred.has_password();
    let mut lines: Vec<(&str, &str)> = vec![("capability[]", "authtype")];
    if has_password || !cred.username.is_empty() {
        lines.push(("username", &cred.username));
    }
    if has_password {
        lines.push(("password", cred.password.expose()));
    }
    if caller_has_authtype {
        if let Some(a) = &cred.authtype {
            lines.push(("authtype", a));
        }
        if let Some(c) = &cred.credential {
            lines.push(("credential", c.expose()));
        }
    }
    let expiry = cred.password_expiry_utc.map(|t| t.to_string());
    if let Some(t) = &expiry {
        lines.push(("password_expiry_utc", t));
    }
    if let Some(t) = &cred.oauth_refresh_token {
        lines.push(("oauth_refresh_token", t.expose()));
    }
    if lines.iter().any(|(_, v)| v.contains(['\n', '\0'])) {
        return None;
    }
    let mut out = Zeroizing::new(String::new());
    for (k, v) in lines {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    Some(out)
}

/// The answer to `wbl credential capability` (git-credential(1), "capability input/output
/// format").
pub const CAPABILITIES: &str = "version 0\ncapability authtype\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> GitCredential {
        GitCredential::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn reads_every_attribute() {
        let c = parse(
            "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=h:8443\n\
             path=a/b.git\nusername=u\npassword=p=w\npassword_expiry_utc=1700000000\n\
             oauth_refresh_token=r\nauthtype=Bearer\ncredential=tok\nephemeral=true\n\
             state[]=other:x\nwwwauth[]=Basic realm=\"x\"\ncontinue=1\nfuture=thing\n",
        );
        assert!(c.capability_authtype && c.capability_state && c.ephemeral);
        assert_eq!(c.host.as_deref(), Some("h:8443"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("p=w"));
        assert_eq!(c.password_expiry_utc, Some(1_700_000_000));
        assert_eq!(c.credential.as_ref().map(Secret::expose), Some("tok"));
        assert_eq!(c.authtype.as_deref(), Some("Bearer"));
        let q = c.query().unwrap();
        assert_eq!(q.target.path.as_deref(), Some("a/b.git"));
        assert_eq!(q.username.as_deref(), Some("u"));
        // Ephemeral: nothing to store.
        assert_eq!(c.to_store().unwrap(), None);
    }

    #[test]
    fn blank_line_ends_and_crlf_is_accepted() {
        let c = parse("protocol=https\r\nhost=a\r\n\r\nhost=b\nthis is not read\n");
        assert_eq!(c.host.as_deref(), Some("a"));
        // No final newline.
        assert_eq!(parse("protocol=https\nhost=c").host.as_deref(), Some("c"));
        assert_eq!(parse(""), GitCredential::default());
    }

    #[test]
    fn url_is_read_as_its_parts() {
        let c = parse("capability[]=authtype\nhost=old\nurl=https://u:p@h:1/r.git\n");
        assert_eq!(c.protocol.as_deref(), Some("https"));
        assert_eq!(c.host.as_deref(), Some("h:1"));
        assert_eq!(c.path.as_deref(), Some("r.git"));
        assert_eq!(c.username.as_deref(), Some("u"));
        assert!(c.capability_authtype);
        // Later attributes still apply.
        assert_eq!(parse("url=https://h\npath=x\n").path.as_deref(), Some("x"));
    }

    #[test]
    fn expiry_zero_or_garbage_is_no_expiry() {
        assert_eq!(parse("password_expiry_utc=0").password_expiry_utc, None);
        assert_eq!(parse("password_expiry_utc=soon").password_expiry_utc, None);
        assert!(!parse("capability[]=authtype\ncapability[]=").capability_authtype);
    }

    #[test]
    fn malformed_requests() {
        let e = |s: &[u8]| GitCredential::parse(s).unwrap_err();
        assert_eq!(e(b"protocol=https\nhunter2\n"), FormatError::NoEquals(2));
        assert_eq!(e(b"password=a\0b\n"), FormatError::Nul(1));
        assert_eq!(e(b"password=\xff\xfe\n"), FormatError::NotUtf8(1));
        assert!(matches!(
            e(b"url=nohost\n"),
            FormatError::Url { line: 1, .. }
        ));
        assert_eq!(e(&vec![b'a'; MAX_INPUT + 1]), FormatError::TooLarge);
        assert!(!e(b"hunter2\n").to_string().contains("hunter2"));
        assert_eq!(
            parse("host=h").query(),
            Err(FormatError::Missing("protocol"))
        );
        assert_eq!(
            parse("protocol=https").query(),
            Err(FormatError::Missing("host"))
        );
    }

    #[test]
    fn what_is_stored() {
        let c = parse("protocol=https\nhost=h\nusername=u\n");
        assert_eq!(c.to_store().unwrap(), None, "no password");
        let c = parse("protocol=https\nhost=h\npassword=p\n");
        assert_eq!(c.to_store().unwrap(), None, "no user name");
        // Sent but empty: a credential, as git's cache stores it.
        let c = parse("protocol=https\nhost=h\nusername=\npassword=\n");
        let s = c.to_store().unwrap().unwrap();
        assert!(s.username.is_empty() && s.password.is_empty() && s.has_password());
        let c = parse("protocol=https\nhost=h\nusername=u\npassword=p\npath=\n");
        let s = c.to_store().unwrap().unwrap();
        assert_eq!(s.target, Target::new("https", "h"));
        assert_eq!((s.username.as_str(), s.password.expose()), ("u", "p"));
        let c =
            parse("capability[]=authtype\nprotocol=https\nhost=h\nauthtype=Bearer\ncredential=t\n");
        let s = c.to_store().unwrap().unwrap();
        assert_eq!(s.username, "");
        assert!(s.password.is_empty());
        assert_eq!(s.credential.as_ref().map(Secret::expose), Some("t"));
    }

    #[test]
    fn get_response_respects_capabilities() {
        let mut cred = Credential::new(Target::new("https", "h"), "u", Secret::from("p"));
        cred.password_expiry_utc = Some(2_000_000_000);
        cred.oauth_refresh_token = Some(Secret::from("r"));
        assert_eq!(
            get_response(&cred, false).unwrap().as_str(),
            "capability[]=authtype\nusername=u\npassword=p\npassword_expiry_utc=2000000000\n\
             oauth_refresh_token=r\n"
        );
        let mut bearer = Credential::new(Target::new("https", "h"), "", Secret::default());
        bearer.authtype = Some("Bearer".into());
        bearer.credential = Some(Secret::from("tok"));
        assert_eq!(
            get_response(&bearer, false).unwrap().as_str(),
            "capability[]=authtype\n"
        );
        assert_eq!(
            get_response(&bearer, true).unwrap().as_str(),
            "capability[]=authtype\nauthtype=Bearer\ncredential=tok\n"
        );
        let empty = Credential::new(Target::new("https", "h"), "", Secret::default());
        assert_eq!(
            get_response(&empty, false).unwrap().as_str(),
            "capability[]=authtype\nusername=\npassword=\n"
        );
        let bad = Credential::new(Target::new("https", "h"), "u", Secret::from("a\nb"));
        assert_eq!(get_response(&bad, false), None);
    }

    #[test]
    fn erase_compares_secrets_only_when_sent() {
        let stored = Credential::new(Target::new("https", "h"), "u", Secret::from("new"));
        assert!(parse("protocol=https\nhost=h\n").secrets_match(&stored));
        assert!(parse("protocol=https\nhost=h\npassword=new\n").secrets_match(&stored));
        assert!(!parse("protocol=https\nhost=h\npassword=old\n").secrets_match(&stored));
        assert!(!parse("protocol=https\nhost=h\ncredential=x\n").secrets_match(&stored));
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            let len = (x % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let alphabet = b"ab=\n\r\0\xffurl:/@%[]";
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Ok(c) = GitCredential::parse(&bytes) {
                let _ = c.query();
                let _ = c.to_store();
            }
        }
    }
}
