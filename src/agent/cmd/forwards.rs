//! `forwards`: the live forwards and their grants, for `wbl status`. (`forward` itself is
//! answered by the connection loop, which holds the grant for as long as it stays open.)

use wbl_proto::Response;

use crate::agent::State;

pub(crate) fn apply(state: &State) -> Response {
    Response::Forwards(state.forwards().list())
}
