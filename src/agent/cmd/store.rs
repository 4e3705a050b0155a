//! `store`: writes a credential to the keychain and then to the cache.

use wbl_proto::{Credential, ErrorCode, Response};

use crate::agent::State;

pub(crate) async fn apply(state: &State, cred: Credential) -> Response {
    tracing::debug!(target = %cred.target, user = %cred.username, "store");
    if cred.target.host.is_empty() || cred.target.protocol.is_empty() {
        return Response::error(
            ErrorCode::BadRequest,
            "a credential needs a protocol and a host",
        );
    }
    state.store(cred).await
}
