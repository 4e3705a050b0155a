//! `hello`: the version handshake that opens every connection.

use wbl_proto::{ErrorCode, FORWARD_PID, PROTOCOL_VERSION, Response};

/// The agent's greeting: its protocol version, build version and pid. The client compares the
/// versions and restarts an agent from another build (the pid tells it whom to stop).
pub(crate) fn greet() -> Response {
    Response::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    }
}

/// The greeting on a forward's restricted socket: [`FORWARD_PID`] instead of a pid, so the
/// client knows it talks to a forward (never to be stopped or replaced) and the remote side
/// learns nothing about the agent's process.
pub(crate) fn greet_forward() -> Response {
    Response::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: FORWARD_PID,
    }
}

/// A second hello on the same connection is a client bug.
pub(crate) fn apply() -> Response {
    Response::error(ErrorCode::BadRequest, "hello was already exchanged")
}
