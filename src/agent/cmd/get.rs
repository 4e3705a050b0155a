//! `get`: the credential for a target, from the cache or, on a miss, the keychain.

use wbl_proto::{Query, Response};

use crate::agent::State;

pub(crate) async fn apply(state: &State, query: Query) -> Response {
    tracing::debug!(target = %query.target, user = ?query.username, "get");
    match state.openbao().route_for(&query.target) {
        Ok(Some(route)) => state.openbao().get(state, &route, &query).await,
        Ok(None) => state.get(&query).await,
        Err(r) => *r,
    }
}
