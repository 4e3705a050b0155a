//! The client side of the socket: connecting (and auto-starting the agent), the hello
//! exchange, and one method per request. Synchronous: no async runtime in the client, so it
//! starts fast.

mod autostart;

use interprocess::local_socket::{Name, Stream, prelude::*};
use wbl_proto::{
    AgentStatus, Connection, Credential, CredentialInfo, ErrorCode, PROTOCOL_VERSION, ProtoError,
    Query, Request, Response,
};

use crate::dirs::RuntimePaths;

pub use autostart::{AUTOSTART_ENV, connect_or_start};
pub(crate) use autostart::{stop_pid, wait_released};

/// Client-side failures, each with what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no wbl-agent is running on {socket}; start one with `wbl-agent` (or unset WBL_NO_AUTOSTART to let wbl start it)"
    )]
    NotRunning { socket: String },
    #[error("could not start wbl-agent: {0}; `wbl doctor` checks what it needs")]
    StartFailed(String),
    #[error("lost the connection to wbl-agent: {0}; `wbl doctor` checks the agent")]
    Protocol(#[from] ProtoError),
    #[error("{message}{}", next_step(*.code))]
    Agent { code: ErrorCode, message: String },
    #[error(
        "wbl-agent gave an unexpected answer to {0}; restart it with `wbl agent stop && wbl agent start`"
    )]
    Unexpected(&'static str),
    #[error("{0}")]
    Io(String),
}

/// What to run after an error the agent reported: keychain failures have a cause
/// `wbl doctor` can name (no D-Bus, a locked collection, …).
fn next_step(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Keychain | ErrorCode::KeychainTimeout => {
            "; run `wbl doctor` to see what is wrong with the keychain"
        }
        _ => "",
    }
}

/// The socket name for interprocess: a file path on Unix, a namespaced pipe on Windows.
pub fn socket_name(paths: &RuntimePaths) -> std::io::Result<Name<'static>> {
    #[cfg(unix)]
    {
        use interprocess::local_socket::GenericFilePath;
        paths.socket.clone().to_fs_name::<GenericFilePath>()
    }
    #[cfg(not(unix))]
    {
        use interprocess::local_socket::GenericNamespaced;
        let raw = paths.socket_display();
        let name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("wbl-{name}").to_ns_name::<GenericNamespaced>()
    }
}

/// What the agent says about a credential it stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when the key does not survive a reboot (the agent uses the kernel keyring).
    pub persistent: bool,
}

/// A connected, greeted agent.
pub struct AgentClient {
    conn: Connection<Stream>,
    /// The agent's protocol version and pid, from its hello.
    pub agent_protocol: u32,
    pub agent_version: String,
    pub agent_pid: u32,
}

impl AgentClient {
    /// Connects and exchanges hellos; no auto-start.
    pub fn connect(paths: &RuntimePaths) -> std::io::Result<AgentClient> {
        let stream = Stream::connect(socket_name(paths)?)?;
        let mut conn = Connection::new(stream);
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        match conn.call::<_, Response>(&hello) {
            Ok(Response::Hello {
                protocol,
                agent_version,
                pid,
            }) => Ok(AgentClient {
                conn,
                agent_protocol: protocol,
                agent_version,
                agent_pid: pid,
            }),
            Ok(_) => Err(std::io::Error::other("the agent did not answer hello")),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        match self.conn.call(req)? {
            Response::Error { code, message } => Err(ClientError::Agent { code, message }),
            r => Ok(r),
        }
    }

    pub fn get(&mut self, query: Query) -> Result<Option<Credential>, ClientError> {
        match self.call(&Request::Get(query))? {
            Response::Credential(c) => Ok(c),
            _ => Err(ClientError::Unexpected("get")),
        }
    }

    /// Stores `cred`; returns once the keychain has it.
    pub fn store(&mut self, cred: Credential) -> Result<Stored, ClientError> {
        match self.call(&Request::Store(cred))? {
            Response::Stored { persistent } => Ok(Stored { persistent }),
            _ => Err(ClientError::Unexpected("store")),
        }
    }

    pub fn erase(&mut self, query: Query) -> Result<u32, ClientError> {
        match self.call(&Request::Erase(query))? {
            Response::Erased { count } => Ok(count),
            _ => Err(ClientError::Unexpected("erase")),
        }
    }

    pub fn list(&mut self) -> Result<Vec<CredentialInfo>, ClientError> {
        match self.call(&Request::List)? {
            Response::List(l) => Ok(l),
            _ => Err(ClientError::Unexpected("list")),
        }
    }

    pub fn status(&mut self) -> Result<AgentStatus, ClientError> {
        match self.call(&Request::Status)? {
            Response::Status(s) => Ok(s),
            _ => Err(ClientError::Unexpected("status")),
        }
    }

    pub fn shutdown(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::Shutdown)? {
            Response::ShuttingDown => Ok(()),
            _ => Err(ClientError::Unexpected("shutdown")),
        }
    }
}
