//! `openbao login`: logs the agent in to a configured OpenBao server.

use wbl_proto::{Response, Secret};

use crate::agent::State;

pub(crate) async fn apply(state: &State, server: String, secret: Option<Secret>) -> Response {
    tracing::debug!(%server, "openbao login");
    state.openbao().login(state, &server, secret).await
}
