//! One notion of a store: the [`Store`] trait every place the agent keeps keys implements (the
//! keychain with its cache, an OpenBao route) and its error type. Which store serves a target
//! is `router.rs`'s answer. Stores return domain results; `dispatch.rs` alone turns them into
//! wire responses and records them in the access log.
//!
//! Adding a store: implement [`Store`] for it and build it in `router::other_store` for the
//! routes the configuration sends to it (see ARCHITECTURE.md, "Adding a store").

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wbl_proto::{
    Account, Credential, CredentialInfo, DEFAULT_ACCOUNT, Query, Target, account_user, user_account,
};

use crate::keychain::KeychainError;

/// A store's future: boxed, so that stores can be chosen at run time (`Arc<dyn Store>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Somewhere keys are kept. Every operation on a credential goes to the store the `Router`
/// chose for its target, and only there: a store that fails is an error, never a fallback to
/// another store.
pub trait Store: Send + Sync {
    /// The first credential matching `query` (by path, then user name) that has not expired.
    fn get<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, Option<Credential>>;
    /// Keeps `cred`; `Ok` means the store acknowledged it.
    fn store(&self, cred: Credential) -> StoreFuture<'_, Stored>;
    /// Removes every credential matching `query`; how many existed.
    fn erase<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, u32>;
    /// Names and metadata of the credentials it holds, never secrets.
    fn list(&self) -> StoreFuture<'_, Vec<CredentialInfo>>;
    /// Where a target this store serves is served from, for `wbl status`.
    fn describe(&self) -> Served;
}

/// Where a target is served from: the kind of store (`keychain`, `openbao`, …) and, for a
/// store configured by name, which one and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub kind: String,
    pub detail: Option<String>,
}

/// What a successful `store` tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when the store that took the credential forgets it at reboot (kernel keyutils).
    pub persistent: bool,
}

/// Why a store operation failed. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A credential to store has no protocol or no host.
    #[error("a credential needs a protocol and a host")]
    NoTarget,
    /// The request cannot be served as asked; the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// The keychain refused or failed.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The keychain did not answer within its time bound.
    #[error(
        "the keychain ({backend}) did not answer within {} s; is it locked or hung?",
        .after.as_secs_f64()
    )]
    KeychainTimeout {
        backend: &'static str,
        after: Duration,
    },
    /// A keychain call panicked or was cancelled.
    #[error("a keychain operation failed unexpectedly")]
    Internal,
    /// The configuration cannot be used, so which store serves a host is unknown.
    #[error("{0}")]
    Config(String),
    /// The store serving the host has no such key; the message names the store.
    #[error("{0}")]
    NotFound(String),
    /// The store serving the host refused or failed; the message names it and says why.
    #[error("{message}")]
    Failed { store: String, message: String },
    /// The host has several accounts and the query chose none; the message names them.
    #[error("{0}")]
    Account(String),
}

/// `query` as a query by user name: an account's user name for [`Account::Named`]; for
/// [`Account::Only`], the user name of the host's only account among `users` (the user names
/// stored for the target without a path, in any order), `None` when it has none, and an
/// error naming them when it has several. [`Account::Any`] is the query as it is.
pub(crate) fn by_account(query: &Query, users: &[&str]) -> Result<Option<Query>, StoreError> {
    let user = match &query.account {
        Account::Any => return Ok(Some(query.clone())),
        Account::Named(name) => account_user(name).to_owned(),
        Account::Only => {
            let mut names: Vec<&str> = users.iter().map(|u| user_account(u)).collect();
            names.sort_unstable();
            names.dedup();
            match names[..] {
                [] => return Ok(None),
                [one] => account_user(one).to_owned(),
                _ => {
                    return Err(StoreError::Account(format!(
                        "{} accounts for {} ({}) and none chosen",
                        names.len(),
                        query.target,
                        names
                            .iter()
                            .map(|n| crate::text::printable(n).into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    Ok(Some(Query {
        target: Target {
            path: None,
            ..query.target.clone()
        },
        username: Some(user),
        account: Account::Any,
    }))
}

/// `query` for a store that keeps one account per host (an OpenBao route): the account
/// `default`, or no account chosen, is the query as it was; another named account is not
/// there (`store` names the store in the message).
pub(crate) fn single_account(query: &Query, store: &str) -> Result<Query, StoreError> {
    match &query.account {
        Account::Named(name) if name != DEFAULT_ACCOUNT => Err(StoreError::NotFound(format!(
            "{store} serves one account for {} (`{DEFAULT_ACCOUNT}`); it has no account `{}`",
            query.target,
            crate::text::printable(name)
        ))),
        _ => Ok(Query {
            account: Account::Any,
            ..query.clone()
        }),
    }
}
