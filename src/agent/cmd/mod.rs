//! One file per request kind: each turns a request into exactly one response.

mod erase;
mod get;
mod hello;
mod list;
mod openbao_login;
mod shutdown;
mod status;
mod store;

use wbl_proto::{ErrorCode, Request, Response};

use super::State;

/// Answers one request. `Hello` is handled by the connection loop, which owns the handshake.
pub(crate) async fn dispatch(state: &State, req: Request) -> Response {
    match req {
        Request::Hello { .. } => hello::apply(),
        Request::Get(q) => get::apply(state, q).await,
        Request::Store(c) => store::apply(state, c).await,
        Request::Erase(q) => erase::apply(state, q).await,
        Request::List => list::apply(state).await,
        Request::Status => status::apply(state),
        Request::Shutdown => shutdown::apply(state),
        Request::OpenBaoLogin { server, secret } => {
            openbao_login::apply(state, server, secret).await
        }
    }
}

/// The response to a connection's first request when it is not a hello.
pub(crate) fn hello_required() -> Response {
    Response::error(
        ErrorCode::BadRequest,
        "the first request on a connection must be hello",
    )
}

pub(crate) use hello::greet;
