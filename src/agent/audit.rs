//! The agent's side of the access log: which requests are recorded (`get`, `store`, `erase`),
//! what of them (protocol, host, user name — never a secret, never the body), and how an
//! answer maps to a result (ok, miss, refused, error).

use std::sync::Arc;
use std::time::SystemTime;

use wbl_proto::{ErrorCode, Request, Response};

use crate::accesslog::{Caller, Event, LOCAL_CHANNEL, Op, Outcome};

/// Who is on the other end of a connection and through what: the per-connection part of
/// every entry. Shared by the connection's requests.
#[derive(Debug, Clone)]
pub struct Peer {
    pub caller: Arc<Caller>,
    /// `local` for the agent's own socket; a forward's destination (e.g. `ssh:build-box`)
    /// for connections relayed from elsewhere.
    pub channel: Arc<str>,
}

impl Peer {
    /// A connection on the agent's own socket.
    pub fn local(caller: Caller) -> Peer {
        Peer::through(caller, LOCAL_CHANNEL)
    }

    /// A connection that came through `channel` (a forward names its destination).
    pub fn through(caller: Caller, channel: &str) -> Peer {
        Peer {
            caller: Arc::new(caller),
            channel: Arc::from(channel),
        }
    }
}

/// What is kept of a recorded request until its answer is known.
#[derive(Debug)]
pub struct Pending {
    op: Op,
    protocol: String,
    host: String,
    username: Option<String>,
}

impl Pending {
    /// `Some` for the requests that are recorded.
    pub fn of(req: &Request) -> Option<Pending> {
        let (op, target, username) = match req {
            Request::Get(q) => (Op::Get, &q.target, q.username.as_deref()),
            Request::Erase(q) => (Op::Erase, &q.target, q.username.as_deref()),
            Request::Store(c) => (Op::Store, &c.target, Some(c.username.as_str())),
            Request::Hello { .. } | Request::List | Request::Status | Request::Shutdown => {
                return None;
            }
        };
        Some(Pending {
            op,
            protocol: target.protocol.clone(),
            host: target.host.clone(),
            username: username.map(str::to_owned),
        })
    }

    /// The entry for this request answered with `response`, made by `peer`.
    pub fn answered(self, response: &Response, peer: &Peer) -> Event {
        let (result, code) = outcome(response);
        // A get that did not name a user name records the one it returned.
        let username = match response {
            Response::Credential(Some(c)) => Some(c.username.clone()),
            _ => self.username,
        };
        Event {
            time: SystemTime::now(),
            op: self.op,
            result,
            code,
            protocol: self.protocol,
            host: self.host,
            username,
            caller: Arc::clone(&peer.caller),
            channel: Arc::clone(&peer.channel),
        }
    }
}

/// The result of an answer, and the error code of a refusal or an error.
pub fn outcome(response: &Response) -> (Outcome, Option<&'static str>) {
    match response {
        Response::Credential(Some(_)) | Response::Stored => (Outcome::Ok, None),
        Response::Credential(None) => (Outcome::Miss, None),
        Response::Erased { count } if *count > 0 => (Outcome::Ok, None),
        Response::Erased { .. } => (Outcome::Miss, None),
        Response::ShuttingDown => (Outcome::Refused, Some("shutting_down")),
        Response::Error { code, .. } => {
            let name = code_name(*code);
            match code {
                ErrorCode::BadRequest
                | ErrorCode::VersionMismatch
                | ErrorCode::TooLarge
                | ErrorCode::ShuttingDown => (Outcome::Refused, Some(name)),
                ErrorCode::Keychain | ErrorCode::KeychainTimeout | ErrorCode::Internal => {
                    (Outcome::Error, Some(name))
                }
            }
        }
        Response::Hello { .. } | Response::List(_) | Response::Status(_) => {
            (Outcome::Error, Some("unexpected_answer"))
        }
    }
}

/// The code as the access log spells it.
fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::VersionMismatch => "version_mismatch",
        ErrorCode::Keychain => "keychain",
        ErrorCode::KeychainTimeout => "keychain_timeout",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::ShuttingDown => "shutting_down",
        ErrorCode::Internal => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wbl_proto::{Credential, Query, Secret, Target};

    fn peer() -> Peer {
        Peer::through(Caller::unknown(), "ssh:box")
    }

    #[test]
    fn only_get_store_and_erase_are_recorded() {
        let q = Query {
            target: Target::new("https", "h"),
            username: None,
        };
        assert!(Pending::of(&Request::Get(q.clone())).is_some());
        assert!(Pending::of(&Request::Erase(q)).is_some());
        assert!(Pending::of(&Request::List).is_none());
        assert!(Pending::of(&Request::Status).is_none());
    }

    #[test]
    fn a_store_records_no_secret() {
        let cred = Credential::new(
            Target::new("https", "h"),
            "u",
            Secret::new("s3cr3t-value".into()),
        );
        let p = Pending::of(&Request::Store(cred)).unwrap();
        let e = p.answered(&Response::Stored, &peer());
        let line = serde_json::to_string(&crate::accesslog::Entry::from_event(&e)).unwrap();
        assert!(!line.contains("s3cr3t-value"), "{line}");
        assert!(line.contains("\"channel\":\"ssh:box\""), "{line}");
        assert_eq!((e.op, e.result), (Op::Store, Outcome::Ok));
    }

    #[test]
    fn answers_map_to_results() {
        let q = Query {
            target: Target::new("https", "h"),
            username: None,
        };
        let get = || Pending::of(&Request::Get(q.clone())).unwrap();
        let found = Credential::new(Target::new("https", "h"), "api", Secret::new("k".into()));
        let e = get().answered(&Response::Credential(Some(found)), &peer());
        assert_eq!(
            (e.result, e.username.as_deref()),
            (Outcome::Ok, Some("api"))
        );
        let e = get().answered(&Response::Credential(None), &peer());
        assert_eq!((e.result, e.username), (Outcome::Miss, None));
        let e = get().answered(
            &Response::error(ErrorCode::KeychainTimeout, "slow"),
            &peer(),
        );
        assert_eq!(
            (e.result, e.code),
            (Outcome::Error, Some("keychain_timeout"))
        );
        let e = get().answered(&Response::error(ErrorCode::BadRequest, "no"), &peer());
        assert_eq!((e.result, e.code), (Outcome::Refused, Some("bad_request")));
        assert_eq!(outcome(&Response::Erased { count: 0 }).0, Outcome::Miss);
        assert_eq!(outcome(&Response::Erased { count: 2 }).0, Outcome::Ok);
    }
}
