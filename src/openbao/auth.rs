//! Logging in (token, userpass, JWT), looking up and renewing the agent's token.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wbl_proto::Secret;
use zeroize::Zeroizing;

use super::{BaoError, Client, Method, Reason, encode_path};
use crate::config::Auth;

/// A token and what the server said about it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token: Secret,
    /// Time left when the server answered; `None` for a token that never expires (root).
    pub ttl: Option<Duration>,
    /// Whether `auth/token/renew-self` may extend it.
    pub renewable: bool,
    pub policies: Vec<String>,
}

#[derive(Deserialize)]
struct AuthBody {
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    client_token: Secret,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Deserialize)]
struct LookupBody {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    policies: Vec<String>,
}

fn ttl_of(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl Client {
    fn auth_answer(&self, action: &str, status_ok: super::Answer) -> Result<TokenInfo, BaoError> {
        let body: AuthBody = serde_json::from_slice(&status_ok.body).map_err(|_| {
            self.error(
                action,
                Reason::Server(status_ok.status, "the answer is not OpenBao's JSON".into()),
            )
        })?;
        let auth = body.auth.ok_or_else(|| {
            self.error(
                action,
                Reason::Server(status_ok.status, "the answer has no token".into()),
            )
        })?;
        Ok(TokenInfo {
            token: auth.client_token,
            ttl: ttl_of(auth.lease_duration),
            renewable: auth.renewable,
            policies: auth.policies,
        })
    }

    /// Logs in with the configured method. `secret` is the token (`auth = "token"`) or the
    /// password (`userpass`); `jwt` reads its `jwt_file` now, so a rotated JWT is picked up.
    pub fn login(&self, secret: Option<&Secret>) -> Result<TokenInfo, BaoError> {
        let action = format!("logging in ({})", self.config().auth.kind());
        let need_secret = || {
            secret.filter(|s| !s.is_empty()).ok_or_else(|| {
                self.error(
                    &action,
                    Reason::LoginRefused("no token or password was given".into()),
                )
            })
        };
        match &self.config().auth {
            Auth::Token => {
                let token = need_secret()?;
                self.lookup_self(token).map_err(|e| match e.reason {
                    Reason::TokenExpired | Reason::PermissionDenied => self.error(
                        &action,
                        Reason::LoginRefused("the server does not know this token".into()),
                    ),
                    _ => e,
                })
            }
            Auth::Userpass { username } => {
                #[derive(Serialize)]
                struct Body<'a> {
                    password: &'a str,
                }
                let body = Zeroizing::new(
                    serde_json::to_vec(&Body {
                        password: need_secret()?.expose(),
                    })
                    .unwrap_or_default(),
                );
                let path = format!(
                    "auth/{}/login/{}",
                    self.config().auth_mount,
                    encode_path(username)
                );
                self.login_call(&action, &path, &body)
            }
            Auth::Jwt { role, jwt_file } => {
                let jwt =
                    read_jwt(jwt_file).map_err(|why| self.error(&action, Reason::JwtFile(why)))?;
                #[derive(Serialize)]
                struct Body<'a> {
                    role: &'a str,
                    jwt: &'a str,
                }
                let body = Zeroizing::new(
                    serde_json::to_vec(&Body { role, jwt: &jwt }).unwrap_or_default(),
                );
                let path = format!("auth/{}/login", self.config().auth_mount);
                self.login_call(&action, &path, &body)
            }
        }
    }

    fn login_call(&self, action: &str, path: &str, body: &[u8]) -> Result<TokenInfo, BaoError> {
        let answer = self
            .call(Method::Post, path, None, Some(body))
            .map_err(|r| self.error(action, r))?;
        if !answer.ok() {
            let reason = match answer.status {
                400 | 401 | 403 => Reason::LoginRefused(answer.messages()),
                404 => Reason::LoginRefused(format!(
                    "no auth method is mounted at auth/{} ({})",
                    self.config().auth_mount,
                    answer.messages()
                )),
                _ => answer.reason(),
            };
            return Err(self.error(action, reason));
        }
        self.auth_answer(action, answer)
    }

    /// What the server knows of `token` (`auth/token/lookup-self`).
    pub fn lookup_self(&self, token: &Secret) -> Result<TokenInfo, BaoError> {
        let action = "looking up the token";
        let answer = self
            .call(Method::Get, "auth/token/lookup-self", Some(token), None)
            .map_err(|r| self.error(action, r))?;
        if !answer.ok() {
            let reason = match answer.reason() {
                // lookup-self is allowed by the default policy: a 403 means a bad token.
                Reason::PermissionDenied => Reason::TokenExpired,
                r => r,
            };
            return Err(self.error(action, reason));
        }
        let body: LookupBody = serde_json::from_slice(&answer.body).map_err(|_| {
            self.error(
                action,
                Reason::Server(answer.status, "the answer is not OpenBao's JSON".into()),
            )
        })?;
        Ok(TokenInfo {
            token: token.clone(),
            ttl: ttl_of(body.data.ttl),
            renewable: body.data.renewable,
            policies: body.data.policies,
        })
    }

    /// Extends `token` (`auth/token/renew-self`) by `increment` or its role's default.
    pub fn renew_self(
        &self,
        token: &Secret,
        increment: Option<Duration>,
    ) -> Result<TokenInfo, BaoError> {
        let action = "renewing the token";
        let body = match increment {
            Some(d) => format!(r#"{{"increment":"{}s"}}"#, d.as_secs().max(1)),
            None => "{}".to_owned(),
        };
        let answer = self
            .call(
                Method::Post,
                "auth/token/renew-self",
                Some(token),
                Some(body.as_bytes()),
            )
            .map_err(|r| self.error(action, r))?;
        if !answer.ok() {
            let reason = match answer.reason() {
                Reason::PermissionDenied => Reason::TokenExpired,
                // "lease is not renewable", "past the max TTL": a new login is the only way on.
                Reason::Server(400, m) => Reason::Server(400, m),
                r => r,
            };
            return Err(self.error(action, reason));
        }
        self.auth_answer(action, answer)
    }
}

impl Client {
    /// Revokes `token` (`auth/token/revoke-self`).
    pub fn revoke_self(&self, token: &Secret) -> Result<(), BaoError> {
        let action = "revoking the token";
        let answer = self
            .call(Method::Post, "auth/token/revoke-self", Some(token), None)
            .map_err(|r| self.error(action, r))?;
        if !answer.ok() {
            return Err(self.error(action, answer.reason()));
        }
        Ok(())
    }
}

/// Reads a JWT file (bounded: a JWT is a few KiB) and returns the JWT without its trailing
/// newline. Whatever is not a JWT ([`is_jwt`]) is refused and never sent: `jwt_file` may name
/// any file the user can read (an SSH key), and the error does not show what it holds.
fn read_jwt(path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = Zeroizing::new(String::new());
    let too_big = || format!("{} is larger than a JWT; it was not sent", path.display());
    f.take(64 * 1024 + 1)
        .read_to_string(&mut s)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format!(
                "{} is not a JWT (it is not text); it was not sent",
                path.display()
            ),
            _ => format!("{}: {e}", path.display()),
        })?;
    if s.len() > 64 * 1024 {
        return Err(too_big());
    }
    if s.trim().is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    let jwt = s.strip_suffix('\n').unwrap_or(&s);
    let jwt = jwt.strip_suffix('\r').unwrap_or(jwt);
    if !is_jwt(jwt) {
        return Err(format!(
            "{} does not hold a JWT (three base64url parts separated by dots, nothing else); \
             it was not sent",
            path.display()
        ));
    }
    Ok(Zeroizing::new(jwt.to_owned()))
}

/// A JWT in compact form: three non-empty base64url parts separated by dots (a JWS), the
/// first of which decodes to a JSON object (the header). No whitespace, no padding.
fn is_jwt(s: &str) -> bool {
    use base64::Engine;
    let parts: Vec<&str> = s.split('.').collect();
    let b64url = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(|p| b64url(p)) {
        return false;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqb2IifQ.c2ln";

    #[test]
    fn only_a_jwt_is_a_jwt() {
        assert!(is_jwt(JWT));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJSUzI1NiJ9..c2ln",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqb2IifQ.c2ln ",
            " eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqb2IifQ.c2ln",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIi\nOiJqb2IifQ.c2ln",
            "eyJhbGciOiJSUzI1NiJ9=.eyJzdWIiOiJqb2IifQ.c2ln",
            // Three base64url parts whose first is not a JSON object.
            "bm90anNvbg.eyJzdWIiOiJqb2IifQ.c2ln",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ] {
            assert!(!is_jwt(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_jwt_is_refused_without_its_content() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("t");
        std::fs::write(&f, format!("{JWT}\n")).unwrap();
        assert_eq!(read_jwt(&f).unwrap().as_str(), JWT);
        std::fs::write(&f, format!("{JWT}\r\n")).unwrap();
        assert_eq!(read_jwt(&f).unwrap().as_str(), JWT);
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n\
                   -----END OPENSSH PRIVATE KEY-----\n";
        for text in [
            key.to_owned(),
            format!("{JWT}\n\n"),
            "one.two.three\n".into(),
        ] {
            std::fs::write(&f, &text).unwrap();
            let e = read_jwt(&f).unwrap_err();
            assert!(
                e.contains("does not hold a JWT") && e.contains("not sent"),
                "{e}"
            );
            assert!(
                !e.contains("b3BlbnNzaC1rZXktdjEAAAAA") && !e.contains("one."),
                "{e}"
            );
        }
        std::fs::write(&f, vec![b'a'; 70 * 1024]).unwrap();
        assert!(read_jwt(&f).unwrap_err().contains("larger than a JWT"));
        std::fs::write(&f, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read_jwt(&f).unwrap_err().contains("not text"));
    }
}
