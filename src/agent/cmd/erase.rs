//! `erase`: removes matching credentials from the keychain and the cache.

use wbl_proto::{Query, Response};

use crate::agent::State;

pub(crate) async fn apply(state: &State, query: Query) -> Response {
    tracing::debug!(target = %query.target, user = ?query.username, "erase");
    match state.openbao().route_for(&query.target) {
        Ok(Some(route)) => state.openbao().erase(state, &route, &query).await,
        Ok(None) => state.erase(&query).await,
        Err(r) => *r,
    }
}
