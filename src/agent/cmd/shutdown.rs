//! `shutdown`: stop accepting connections, finish in-flight requests, exit.

use wbl_proto::Response;

use crate::agent::State;

pub(crate) fn apply(state: &State) -> Response {
    tracing::info!("shutdown requested by a client");
    state.request_shutdown();
    Response::ShuttingDown
}
