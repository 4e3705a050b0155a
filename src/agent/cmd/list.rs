//! `list`: targets, user names and metadata of stored credentials; never secrets.

use wbl_proto::Response;

use crate::agent::State;

pub(crate) async fn apply(state: &State) -> Response {
    state.list().await
}
