//! The keychain: a small [`Backend`] trait with one implementation per platform store, and
//! [`Keychain`], which maps wire credentials onto keychain items.
//!
//! Each credential is one item holding the password (so `secret-tool lookup` shows the key
//! itself); git's optional extras (`oauth_refresh_token`, `password_expiry_utc`, `authtype`,
//! `credential`) are sibling items whose service name ends in `#<field>`. A credential that has
//! only a pre-encoded `credential` has no password item; an empty password is stored as
//! [`EMPTY_PASSWORD`]. Item naming is in docs/keychains.md.

use std::time::Duration;

use wbl_proto::{Credential, CredentialInfo, Secret, Target};

#[cfg(test)]
pub(crate) mod memory;
mod naming;
mod store;

#[cfg(target_os = "linux")]
mod keyutils;
#[cfg(target_os = "linux")]
mod secret_service;
#[cfg(target_os = "linux")]
pub mod ss_state;

pub use naming::{ItemId, ItemKind};

/// Environment variable choosing the backend.
pub const BACKEND_ENV: &str = "WBL_BACKEND";
/// Environment variable changing the service-name prefix of every item (default `wbl`).
/// Lets tests and side-by-side installs keep their items apart.
pub const NAMESPACE_ENV: &str = "WBL_KEYCHAIN_NAMESPACE";
/// How long `auto` waits for the Secret Service to answer before falling back to keyutils.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A keychain failure. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("the keychain is not reachable: {0}")]
    Unavailable(String),
    #[error("the keychain refused the operation: {0}")]
    Denied(String),
    #[error("the keychain failed: {0}")]
    Failed(String),
    #[error(
        "unknown backend '{0}' (expected auto, secret-service, keyutils, macos-keychain or windows-credential-manager)"
    )]
    UnknownBackend(String),
    #[error("backend '{0}' is not available on this platform")]
    NotOnThisPlatform(String),
    /// The Secret Service runs, but its default collection is locked (or the prompt to unlock
    /// it was dismissed). The text names the collection and its provider.
    #[error("the keyring is locked ({0}): unlock it with `wbl keyring unlock`")]
    Locked(String),
    /// The Secret Service runs, but has no default collection to keep keys in.
    #[error(
        "{0} has no default keyring to keep keys in: create one with `wbl keyring unlock` (it asks for the new keyring's password)"
    )]
    NoDefaultCollection(String),
}

impl From<keyring_core::Error> for KeychainError {
    fn from(e: keyring_core::Error) -> Self {
        use keyring_core::Error as E;
        // Display of keyring-core errors never includes secret bytes (checked for 1.1).
        match e {
            E::NoStorageAccess(_) => KeychainError::Denied(e.to_string()),
            E::NoDefaultStore => KeychainError::Unavailable(e.to_string()),
            _ => KeychainError::Failed(e.to_string()),
        }
    }
}

/// The backend kinds `WBL_BACKEND` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    SecretService,
    Keyutils,
    MacosKeychain,
    WindowsCredentialManager,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::SecretService => "secret-service",
            BackendKind::Keyutils => "keyutils",
            BackendKind::MacosKeychain => "macos-keychain",
            BackendKind::WindowsCredentialManager => "windows-credential-manager",
        }
    }
}

/// One platform store. Every call may block (D-Bus, syscalls); the agent runs them on a
/// blocking thread with a deadline.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// False when items vanish at reboot.
    fn persistent(&self) -> bool;
    /// The secret of one item, `None` when there is no such item.
    fn load(&self, id: &ItemId) -> Result<Option<Secret>, KeychainError>;
    /// Creates or replaces one item.
    fn save(&self, id: &ItemId, secret: &Secret) -> Result<(), KeychainError>;
    /// Removes one item; `false` when there was none.
    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError>;
    /// Every item of this namespace (names only, never secrets).
    fn list(&self) -> Result<Vec<ItemId>, KeychainError>;
}

/// Opens the backend that `WBL_BACKEND` names (`auto` when unset).
pub fn open_from_env() -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    let choice = std::env::var(BACKEND_ENV).unwrap_or_default();
    let namespace = std::env::var(NAMESPACE_ENV)
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "wbl".to_owned());
    open(&choice, &namespace)
}

/// Opens a backend by name. The second value is a warning for the log and for the client that
/// started the agent: the keyutils fallback, or a Secret Service that is locked or has no
/// default collection.
pub fn open(
    choice: &str,
    namespace: &str,
) -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    let ns = namespace.to_owned();
    match choice {
        "" | "auto" => open_auto(ns),
        #[cfg(target_os = "linux")]
        "secret-service" => {
            let (ss, warning) = secret_service::SecretService::open_checked(ns)?;
            Ok((Box::new(ss), warning))
        }
        #[cfg(not(target_os = "linux"))]
        "secret-service" => platform_backend(BackendKind::SecretService, ns).map(|b| (b, None)),
        "keyutils" => platform_backend(BackendKind::Keyutils, ns).map(|b| (b, None)),
        "macos-keychain" => platform_backend(BackendKind::MacosKeychain, ns).map(|b| (b, None)),
        "windows-credential-manager" => {
            platform_backend(BackendKind::WindowsCredentialManager, ns).map(|b| (b, None))
        }
        other => Err(KeychainError::UnknownBackend(other.to_owned())),
    }
}

/// `auto` on Linux: the Secret Service wherever one exists — locked or without a default
/// collection too, which every request then reports as such (never a silent switch of store) —
/// and the kernel keyring only where there is none: no session bus, or nothing on it provides
/// or can start `org.freedesktop.secrets`, or it fails or hangs.
#[cfg(target_os = "linux")]
fn open_auto(ns: String) -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    // Probe the Secret Service on a thread so a hung D-Bus cannot hang start-up.
    let (tx, rx) = std::sync::mpsc::channel();
    let probe_ns = ns.clone();
    std::thread::spawn(move || {
        let _ = tx.send(secret_service::SecretService::open_auto(probe_ns));
    });
    let reason = match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(Ok((ss, warning))) => return Ok((Box::new(ss), warning)),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "the Secret Service did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ),
    };
    let ku = keyutils::Keyutils::open(ns)?;
    Ok((
        Box::new(ku),
        Some(format!(
            "no usable Secret Service ({reason}); using the kernel keyring (keyutils) instead: \
             keys stored there do not survive a reboot"
        )),
    ))
}

#[cfg(target_os = "macos")]
fn open_auto(ns: String) -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    platform_backend(BackendKind::MacosKeychain, ns).map(|b| (b, None))
}

#[cfg(windows)]
fn open_auto(ns: String) -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    platform_backend(BackendKind::WindowsCredentialManager, ns).map(|b| (b, None))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn open_auto(_ns: String) -> Result<(Box<dyn Backend>, Option<String>), KeychainError> {
    Err(KeychainError::NotOnThisPlatform("auto".into()))
}

fn platform_backend(kind: BackendKind, ns: String) -> Result<Box<dyn Backend>, KeychainError> {
    match kind {
        #[cfg(target_os = "linux")]
        BackendKind::SecretService => {
            Ok(Box::new(secret_service::SecretService::open_checked(ns)?.0))
        }
        #[cfg(target_os = "linux")]
        BackendKind::Keyutils => Ok(Box::new(keyutils::Keyutils::open(ns)?)),
        #[cfg(target_os = "macos")]
        BackendKind::MacosKeychain => {
            let store = apple_native_keyring_store::keychain::Store::new()?;
            Ok(Box::new(store::StoreBackend::new(kind, store, ns)))
        }
        #[cfg(windows)]
        BackendKind::WindowsCredentialManager => {
            let store = windows_native_keyring_store::Store::new()?;
            Ok(Box::new(store::StoreBackend::new(kind, store, ns)))
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = ns;
            Err(KeychainError::NotOnThisPlatform(kind.name().into()))
        }
    }
}

/// Whether the kernel user keyring (the keyutils backend) can be used; reads only, creates and
/// stores nothing. For `wbl doctor`.
#[cfg(target_os = "linux")]
pub fn probe_keyutils() -> Result<(), KeychainError> {
    keyutils::probe()
}

/// The sibling items a credential has, as [`Keychain::list`] reports them.
pub fn extras_of(cred: &Credential) -> Vec<ItemKind> {
    let mut extras = Vec::new();
    if cred
        .oauth_refresh_token
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        extras.push(ItemKind::OauthRefreshToken);
    }
    if cred.password_expiry_utc.is_some() {
        extras.push(ItemKind::PasswordExpiry);
    }
    if cred.authtype.as_ref().is_some_and(|a| !a.is_empty()) {
        extras.push(ItemKind::Authtype);
    }
    if cred.credential.as_ref().is_some_and(|c| !c.is_empty()) {
        extras.push(ItemKind::PreEncoded);
    }
    extras
}

/// What the password item holds for an empty password (git stores empty user names and
/// passwords, e.g. for SSO hosts). The kernel keyring refuses an empty key, so the empty
/// password is one NUL byte in every backend; no password wbl stores contains NUL (git's
/// format and the Docker helper refuse it).
const EMPTY_PASSWORD: &str = "\0";

/// Maps credentials onto keychain items (the password item plus optional sibling items).
pub struct Keychain {
    backend: Box<dyn Backend>,
}

impl Keychain {
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Keychain { backend }
    }

    /// Moves a legacy-named item to its escaped name; the new id, or `None` when it is gone
    /// or could not be moved now.
    fn rename(&self, old: ItemId) -> Option<ItemId> {
        let new = old.renamed();
        let moved = (|| -> Result<bool, KeychainError> {
            let Some(secret) = self.backend.load(&old)? else {
                return Ok(false);
            };
            self.backend.save(&new, &secret)?;
            self.backend.delete(&old)?;
            Ok(true)
        })();
        match moved {
            Ok(true) => {
                tracing::info!(kind = ?new.kind, "renamed a keychain item to the escaped naming");
                Some(new)
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not rename a keychain item to the escaped naming; it is left as it is");
                None
            }
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Stores a credential: the password item first, then the extras. Extras in `existing`
    /// that the new credential does not have are removed, so no stale token outlives a new
    /// password; extras not known to exist cost no keychain call. A credential with only a
    /// pre-encoded `credential` (git's `authtype`) has no password item.
    pub fn store(&self, cred: &Credential, existing: &[ItemKind]) -> Result<(), KeychainError> {
        let id = |kind| ItemId::new(cred.target.clone(), cred.username.clone(), kind);
        if !cred.has_password() {
            self.backend.delete(&id(ItemKind::Password))?;
        } else if cred.password.is_empty() {
            self.backend
                .save(&id(ItemKind::Password), &Secret::from(EMPTY_PASSWORD))?;
        } else {
            self.backend.save(&id(ItemKind::Password), &cred.password)?;
        }
        let expiry = cred.password_expiry_utc.map(|t| Secret::new(t.to_string()));
        let authtype = cred.authtype.clone().map(Secret::new);
        for (kind, value) in [
            (ItemKind::PreEncoded, cred.credential.as_ref()),
            (ItemKind::Authtype, authtype.as_ref()),
            (
                ItemKind::OauthRefreshToken,
                cred.oauth_refresh_token.as_ref(),
            ),
            (ItemKind::PasswordExpiry, expiry.as_ref()),
        ] {
            match value.filter(|v| !v.is_empty()) {
                Some(v) => self.backend.save(&id(kind), v)?,
                None if existing.contains(&kind) => {
                    self.backend.delete(&id(kind))?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Loads a credential. `extras` lists which sibling items exist (from [`Keychain::list`]),
    /// so a plain key costs one keychain call.
    pub fn load(
        &self,
        target: &Target,
        username: &str,
        extras: &[ItemKind],
    ) -> Result<Option<Credential>, KeychainError> {
        let id = |kind| ItemId::new(target.clone(), username.to_owned(), kind);
        let load_extra = |kind| -> Result<Option<Secret>, KeychainError> {
            if extras.contains(&kind) {
                self.backend.load(&id(kind))
            } else {
                Ok(None)
            }
        };
        let password = self.backend.load(&id(ItemKind::Password))?.map(|p| {
            if p.expose() == EMPTY_PASSWORD {
                Secret::default()
            } else {
                p
            }
        });
        let pre_encoded = load_extra(ItemKind::PreEncoded)?;
        if password.is_none() && pre_encoded.is_none() {
            return Ok(None);
        }
        let mut cred = Credential::new(
            target.clone(),
            username.to_owned(),
            password.unwrap_or_default(),
        );
        cred.credential = pre_encoded;
        cred.authtype = load_extra(ItemKind::Authtype)?.map(|s| s.expose().to_owned());
        cred.oauth_refresh_token = load_extra(ItemKind::OauthRefreshToken)?;
        cred.password_expiry_utc =
            load_extra(ItemKind::PasswordExpiry)?.and_then(|s| s.expose().trim().parse().ok());
        Ok(Some(cred))
    }

    /// Removes a credential and the sibling items in `extras`; `true` when it existed (its
    /// password item or its pre-encoded credential).
    pub fn erase(
        &self,
        target: &Target,
        username: &str,
        extras: &[ItemKind],
    ) -> Result<bool, KeychainError> {
        let id = |kind| ItemId::new(target.clone(), username.to_owned(), kind);
        let mut existed = self.backend.delete(&id(ItemKind::Password))?;
        for &kind in extras {
            let gone = self.backend.delete(&id(kind))?;
            existed |= gone && kind == ItemKind::PreEncoded;
        }
        Ok(existed)
    }

    /// Every credential (password items) with the extras each one has. Items still named the
    /// way wbl named them before the escaping (`ItemId::legacy`) are renamed first: written
    /// under the escaped name, then removed under the old one. One that cannot be renamed now
    /// is left as it is (and out of the list) until the next listing.
    pub fn list(&self) -> Result<Vec<(CredentialInfo, Vec<ItemKind>)>, KeychainError> {
        let mut items: Vec<ItemId> = self
            .backend
            .list()?
            .into_iter()
            .filter_map(|id| if id.legacy { self.rename(id) } else { Some(id) })
            .collect();
        items.sort();
        items.dedup();
        let mut out: Vec<(CredentialInfo, Vec<ItemKind>)> = Vec::new();
        for item in &items {
            // A credential is its password item, or its pre-encoded credential when it has no
            // password; `items` is sorted, so the password item comes first.
            let anchor = item.kind == ItemKind::Password
                || (item.kind == ItemKind::PreEncoded
                    && !out
                        .iter()
                        .any(|(c, _)| c.target == item.target && c.username == item.username));
            if anchor {
                out.push((
                    CredentialInfo {
                        target: item.target.clone(),
                        username: item.username.clone(),
                        password_expiry_utc: None,
                    },
                    Vec::new(),
                ));
            }
        }
        for item in items.iter().filter(|i| i.kind != ItemKind::Password) {
            if let Some((_, extras)) = out
                .iter_mut()
                .find(|(c, _)| c.target == item.target && c.username == item.username)
            {
                extras.push(item.kind);
            }
        }
        Ok(out)
    }
}
