//! The one codec: a 4-byte big-endian length prefix followed by a postcard payload.
//!
//! The length is checked against [`MAX_FRAME_LEN`] before any buffer is allocated, so a hostile
//! peer cannot make either side allocate more than that.

use serde::{Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 4;

/// Largest payload either side accepts (64 KiB): far above any real credential, small enough
/// that a burst of hostile clients cannot exhaust memory.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Errors of the codec and of a [`crate::Connection`]. Messages never include payload bytes,
/// which may hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME_LEN} bytes")]
    TooLarge(usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("could not decode the message: {0}")]
    Decode(String),
    #[error("could not encode the message: {0}")]
    Encode(String),
    #[error("frame of {len} bytes is larger than the {limit} bytes allowed here")]
    TooLargeHere { len: usize, limit: usize },
    #[error("the receiver's shared buffer budget is used up; retry later")]
    Busy,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtoError {
    /// True when the stream is still in step after this error (a whole frame was read but its
    /// payload made no sense), so the peer can be answered and the connection kept.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ProtoError::Decode(_))
    }
}

/// Encodes `msg` as a complete frame (header + payload). The buffer is zeroized on drop because
/// it may hold a secret.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, ProtoError> {
    let mut out = Zeroizing::new(vec![0u8; FRAME_HEADER_LEN]);
    // postcard's `to_extend` appends to our zeroizing Vec, so no un-wiped copy is left behind.
    let buf = std::mem::take(&mut *out);
    let mut buf = postcard::to_extend(msg, buf).map_err(|e| ProtoError::Encode(e.to_string()))?;
    let payload_len = buf.len() - FRAME_HEADER_LEN;
    if payload_len > MAX_FRAME_LEN {
        zeroize::Zeroize::zeroize(&mut buf);
        return Err(ProtoError::TooLarge(payload_len));
    }
    buf[..FRAME_HEADER_LEN].copy_from_slice(&(payload_len as u32).to_be_bytes());
    *out = buf;
    Ok(out)
}

/// Reads a frame header and returns the payload length, refusing oversized frames.
pub fn frame_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::TooLarge(len));
    }
    Ok(len)
}

/// Decodes one payload (without its header). Trailing bytes are an error: a frame holds exactly
/// one message.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtoError> {
    let (msg, rest) =
        postcard::take_from_bytes(payload).map_err(|e| ProtoError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtoError::Decode(format!(
            "{} unexpected bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credential, PROTOCOL_VERSION, Query, Request, Response, Secret, Target};

    /// Pins the exact bytes of frames: if this fails, the wire format changed and
    /// `PROTOCOL_VERSION` must be bumped and PROTOCOL.md updated.
    #[test]
    fn wire_bytes_are_pinned() {
        let hello = Request::Hello {
            protocol: 1,
            client_version: "0.1.0".into(),
        };
        assert_eq!(
            &encode_frame(&hello).unwrap()[..],
            &[0, 0, 0, 8, 0, 1, 5, b'0', b'.', b'1', b'.', b'0']
        );
        let get = Request::Get(Query {
            target: Target::new("https", "api.wandb.ai"),
            username: None,
            account: Default::default(),
        });
        // Protocol 8: the account (`Any` is variant 0) after the user name.
        let mut expected = vec![0, 0, 0, 23, 1, 5];
        expected.extend_from_slice(b"https");
        expected.push(12);
        expected.extend_from_slice(b"api.wandb.ai");
        expected.extend_from_slice(&[0, 0, 0]);
        assert_eq!(&encode_frame(&get).unwrap()[..], &expected[..]);
        let err = Response::error(crate::ErrorCode::Keychain, "x");
        assert_eq!(
            &encode_frame(&err).unwrap()[..],
            &[0, 0, 0, 4, 7, 2, 1, b'x']
        );
        // A credential with every optional field (protocol 2 added `authtype` and `credential`).
        let store = Request::Store(Credential {
            authtype: Some("Bearer".into()),
            credential: Some(Secret::from("t")),
            password_expiry_utc: Some(300),
            oauth_refresh_token: Some(Secret::from("r")),
            ..Credential::new(Target::new("http", "h"), "u", Secret::from("p"))
        });
        let mut expected = vec![0, 0, 0, 30, 2, 4];
        expected.extend_from_slice(b"http");
        expected.extend_from_slice(&[1, b'h', 0, 1, b'u', 1, b'p']);
        expected.extend_from_slice(&[1, 0xac, 0x02, 1, 1, b'r', 1, 6]);
        expected.extend_from_slice(b"Bearer");
        expected.extend_from_slice(&[1, 1, b't']);
        assert_eq!(&encode_frame(&store).unwrap()[..], &expected[..]);
        // Protocol 3: `Stored` says whether the credential survives a reboot.
        let stored = Response::Stored { persistent: false };
        assert_eq!(&encode_frame(&stored).unwrap()[..], &[0, 0, 0, 2, 2, 0]);
        // Protocol 4: the OpenBao login request, its answer and error codes, all at the end;
        // protocol 7 named them after stores (`StoreLogin`, `StoreLoggedIn`, `Store`), same shape.
        let login = Request::StoreLogin {
            store: "t".into(),
            secret: Some(Secret::from("s")),
        };
        assert_eq!(
            &encode_frame(&login).unwrap()[..],
            &[0, 0, 0, 6, 7, 1, b't', 1, 1, b's']
        );
        let err = Response::error(crate::ErrorCode::NotFound, "");
        assert_eq!(&encode_frame(&err).unwrap()[..], &[0, 0, 0, 3, 7, 9, 0]);
        let err = Response::error(crate::ErrorCode::Store, "");
        assert_eq!(&encode_frame(&err).unwrap()[..], &[0, 0, 0, 3, 7, 8, 0]);
        let session = Response::StoreLoggedIn(crate::StoreSession {
            store: "t".into(),
            address: "a".into(),
            policies: vec!["p".into()],
            ttl_secs: Some(60),
            renewable: true,
            kept_in_keychain: false,
        });
        assert_eq!(
            &encode_frame(&session).unwrap()[..],
            &[0, 0, 0, 12, 8, 1, b't', 1, b'a', 1, 1, b'p', 1, 60, 1, 0]
        );
        // Protocol 5 added the forwards at the end of each enum: `Forward` (8), `Forwards` (9),
        // `Forwarding` (9), `Forwards` (10) and `ErrorCode::Forbidden` (10).
        let forward = Request::Forward(crate::ForwardRequest {
            destination: "d".into(),
            hosts: vec![Target::new("https", "h")],
            ttl_secs: Some(60),
            name: Some("n".into()),
            account: None,
        });
        // Protocol 8: the granted account after the hosts.
        let mut expected = vec![0, 0, 0, 19, 8, 1, b'd', 1, 5];
        expected.extend_from_slice(b"https");
        expected.extend_from_slice(&[1, b'h', 0, 0, 1, 60, 1, 1, b'n']);
        assert_eq!(&encode_frame(&forward).unwrap()[..], &expected[..]);
        assert_eq!(
            &encode_frame(&Request::Forwards).unwrap()[..],
            &[0, 0, 0, 1, 9]
        );
        let info = Response::Forwarding(crate::ForwardInfo {
            id: "i".into(),
            destination: "d".into(),
            socket: "s".into(),
            hosts: vec![],
            account: None,
            created_unix: 1,
            expires_unix: None,
            handed_out: 2,
        });
        assert_eq!(
            &encode_frame(&info).unwrap()[..],
            &[0, 0, 0, 12, 9, 1, b'i', 1, b'd', 1, b's', 0, 0, 1, 0, 2]
        );
        assert_eq!(
            &encode_frame(&Response::Forwards(vec![])).unwrap()[..],
            &[0, 0, 0, 2, 10, 0]
        );
        let forbidden = Response::error(crate::ErrorCode::Forbidden, "x");
        assert_eq!(
            &encode_frame(&forbidden).unwrap()[..],
            &[0, 0, 0, 4, 7, 10, 1, b'x']
        );
        // Protocol 6 added `GetFor` (10) with its `Purpose`: `Check` (0), `Exec` (1).
        let get_for = Request::GetFor {
            query: Query {
                target: Target::new("h", "h"),
                username: None,
                account: Default::default(),
            },
            purpose: crate::Purpose::Exec {
                program: "/p".into(),
            },
        };
        assert_eq!(
            &encode_frame(&get_for).unwrap()[..],
            &[0, 0, 0, 12, 10, 1, b'h', 1, b'h', 0, 0, 0, 1, 2, b'/', b'p']
        );
        // Protocol 8: the account of a query (`Any` 0, `Named` 1, `Only` 2) and
        // `ErrorCode::Account` (11).
        let named = Request::Get(Query {
            target: Target::new("h", "h"),
            username: None,
            account: crate::Account::Named("w".into()),
        });
        assert_eq!(
            &encode_frame(&named).unwrap()[..],
            &[0, 0, 0, 10, 1, 1, b'h', 1, b'h', 0, 0, 1, 1, b'w']
        );
        let only = Request::Get(Query {
            target: Target::new("h", "h"),
            username: None,
            account: crate::Account::Only,
        });
        assert_eq!(
            &encode_frame(&only).unwrap()[..],
            &[0, 0, 0, 8, 1, 1, b'h', 1, b'h', 0, 0, 2]
        );
        assert_eq!(
            &encode_frame(&Response::error(crate::ErrorCode::Account, "x")).unwrap()[..],
            &[0, 0, 0, 4, 7, 11, 1, b'x']
        );
        // Protocol 9: the proxy (`Proxy` 11, `Proxying` 11, `Purpose::Proxy` 2).
        let proxy = Request::Proxy(crate::ProxyRequest {
            upstream: "u".into(),
            queries: vec![],
            destination: "d".into(),
            listen: crate::ProxyListen::Socket,
            ttl_secs: None,
            name: None,
        });
        assert_eq!(
            &encode_frame(&proxy).unwrap()[..],
            &[0, 0, 0, 9, 11, 1, b'u', 0, 1, b'd', 1, 0, 0]
        );
        let proxying = Response::Proxying(crate::ProxyInfo {
            id: "i".into(),
            placeholder: Secret::from("p"),
            address: "a".into(),
            upstream: "u".into(),
            account: "c".into(),
            expires_unix: Some(2),
        });
        assert_eq!(
            &encode_frame(&proxying).unwrap()[..],
            &[
                0, 0, 0, 13, 11, 1, b'i', 1, b'p', 1, b'a', 1, b'u', 1, b'c', 1, 2
            ]
        );
        let purpose = Request::GetFor {
            query: Query {
                target: Target::new("h", "h"),
                username: None,
                account: Default::default(),
            },
            purpose: crate::Purpose::Proxy {
                destination: "d".into(),
            },
        };
        assert_eq!(
            &encode_frame(&purpose).unwrap()[..],
            &[0, 0, 0, 11, 10, 1, b'h', 1, b'h', 0, 0, 0, 2, 1, b'd']
        );
        // Protocol 7: `AgentStatus` ends with where each routed host is served from.
        let status = Response::Status(crate::AgentStatus {
            agent_version: "v".into(),
            protocol: 7,
            pid: 1,
            backend: "b".into(),
            backend_persistent: true,
            uptime_secs: 2,
            cached_entries: 3,
            stored_entries: 4,
            socket: "s".into(),
            served: vec![crate::ServedHost {
                target: Target::new("h", "h"),
                store: "o".into(),
                detail: Some("d".into()),
            }],
        });
        assert_eq!(
            &encode_frame(&status).unwrap()[..],
            &[
                0, 0, 0, 24, 5, 1, b'v', 7, 1, 1, b'b', 1, 2, 3, 4, 1, b's', 1, 1, b'h', 1, b'h',
                0, 1, b'o', 1, 1, b'd'
            ]
        );
        // Protocol 10: the proxies' listing, appended (request 12, response 12).
        assert_eq!(
            &encode_frame(&Request::Proxies).unwrap()[..],
            &[0, 0, 0, 1, 12]
        );
        let proxies = Response::Proxies(vec![crate::ProxyStatus {
            id: "i".into(),
            destination: "d".into(),
            address: "a".into(),
            upstream: "u".into(),
            account: "c".into(),
            created_unix: 1,
            expires_unix: None,
            ended: true,
            refused: 2,
        }]);
        assert_eq!(
            &encode_frame(&proxies).unwrap()[..],
            &[
                0, 0, 0, 16, 12, 1, 1, b'i', 1, b'd', 1, b'a', 1, b'u', 1, b'c', 1, 0, 1, 2
            ]
        );
        assert_eq!(PROTOCOL_VERSION, 10);
    }

    #[test]
    fn round_trip_with_secret() {
        let req = Request::Store(Credential {
            target: Target {
                protocol: "https".into(),
                host: "h:8443".into(),
                path: Some("org/repo.git".into()),
            },
            username: "api".into(),
            password: Secret::from("k".repeat(100)),
            password_expiry_utc: Some(1_900_000_000),
            oauth_refresh_token: None,
            authtype: None,
            credential: None,
        });
        let frame = encode_frame(&req).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        let back: Request = decode(&frame[4..]).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        assert!(matches!(
            frame_len(((MAX_FRAME_LEN + 1) as u32).to_be_bytes()),
            Err(ProtoError::TooLarge(_))
        ));
        assert!(frame_len((MAX_FRAME_LEN as u32).to_be_bytes()).is_ok());
    }

    #[test]
    fn oversized_message_is_not_encoded() {
        let req = Request::Hello {
            protocol: 1,
            client_version: "x".repeat(MAX_FRAME_LEN),
        };
        assert!(matches!(encode_frame(&req), Err(ProtoError::TooLarge(_))));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_decode_errors() {
        assert!(matches!(
            decode::<Request>(&[0xff, 0xff]),
            Err(ProtoError::Decode(_))
        ));
        assert!(matches!(decode::<Request>(&[]), Err(ProtoError::Decode(_))));
        assert!(matches!(
            decode::<Request>(&[5, 0]),
            Err(ProtoError::Decode(_))
        ));
        // Unknown variant.
        assert!(matches!(
            decode::<Request>(&[99]),
            Err(ProtoError::Decode(_))
        ));
        // A valid `List` followed by junk.
        assert!(matches!(
            decode::<Request>(&[4, 1]),
            Err(ProtoError::Decode(_))
        ));
        assert_eq!(decode::<Request>(&[4]).unwrap(), Request::List);
    }
}
