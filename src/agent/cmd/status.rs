//! `status`: what the agent is and how it is doing.

use wbl_proto::{AgentStatus, PROTOCOL_VERSION, Response};

use crate::agent::State;

pub(crate) fn apply(state: &State) -> Response {
    let (cached, stored) = state.counts();
    Response::Status(AgentStatus {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        backend: state.backend_name().to_owned(),
        backend_persistent: state.backend_persistent(),
        uptime_secs: state.uptime().as_secs(),
        cached_entries: cached + state.openbao().cached(),
        stored_entries: stored,
        socket: state.socket().to_owned(),
    })
}
