//! `hello`: the version handshake that opens every connection.

use wbl_proto::{ErrorCode, PROTOCOL_VERSION, Response};

/// The agent's greeting: its protocol version, build version and pid. The client compares the
/// versions and restarts an agent from another build (the pid tells it whom to stop).
pub(crate) fn greet() -> Response {
    Response::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    }
}

/// A second hello on the same connection is a client bug.
pub(crate) fn apply() -> Response {
    Response::error(ErrorCode::BadRequest, "hello was already exchanged")
}
