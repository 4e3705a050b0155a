//! `erase`: removes matching credentials from the keychain and the cache.

use wbl_proto::{Query, Response};

use crate::agent::State;

pub(crate) async fn apply(state: &State, query: Query) -> Response {
    tracing::debug!(target = %query.target, user = ?query.username, "erase");
    state.erase(&query).await
}
