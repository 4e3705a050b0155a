//! Wire protocol between the `wbl` client and `wbl-agent`: message types, the codec and framing.
//!
//! Nothing outside this crate derives `Serialize` for the wire. See `PROTOCOL.md` beside this
//! crate for every message and the reasons behind the format.

mod codec;
mod connection;
pub mod engine;
mod message;
mod secret;

pub use codec::{FRAME_HEADER_LEN, MAX_FRAME_LEN, ProtoError, decode, encode_frame, frame_len};
pub use connection::{ByteBudget, Connection, RECV_CHUNK, RecvLimits};
pub use message::{
    Account, AgentStatus, Credential, CredentialInfo, DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_USER,
    ErrorCode, FORWARD_PID, ForwardInfo, ForwardRequest, MAX_FORWARD_TTL_SECS, PROTOCOL_VERSION,
    ProxyInfo, ProxyListen, ProxyRequest, ProxyStatus, Purpose, Query, Request, Response,
    ServedHost, StoreSession, Target, account_name_problem, account_user, user_account,
};
pub use secret::Secret;
