//! Backend for the freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet) over D-Bus,
//! through `zbus-secret-service-keyring-store`.
//!
//! Items carry the store's `service` and `username` attributes plus `application = <ns>`, which
//! is what `list` searches for and what a person can search for in Seahorse or with
//! `secret-tool search application wbl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry, Error as KError};
use wbl_proto::Secret;

use super::{Backend, BackendKind, ItemId, KeychainError};

pub struct SecretService {
    /// Replaced by a fresh connection when the service restarted under us (its session is
    /// then gone: `org.freedesktop.Secret.Error.NoSession`).
    store: Mutex<Arc<CredentialStore>>,
    ns: String,
}

fn connect() -> Result<Arc<CredentialStore>, KeychainError> {
    let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()
        .map_err(|e| KeychainError::Unavailable(e.to_string()))?;
    Ok(store)
}

/// Errors after which a new connection may help (the service went away or restarted).
fn worth_reconnecting(e: &KError) -> bool {
    matches!(e, KError::PlatformFailure(_) | KError::NoStorageAccess(_))
}

impl SecretService {
    /// Connects to the session bus and makes one search, so that a missing or broken Secret
    /// Service is found now rather than at the first request. Only the search: reading each
    /// item's attributes (what [`Backend::list`] does next, at start-up) costs one D-Bus call
    /// per item, and doing it twice doubled the agent's start-up with many items.
    pub fn open_and_probe(ns: String) -> Result<Self, KeychainError> {
        let ss = SecretService {
            store: Mutex::new(connect()?),
            ns,
        };
        let spec = HashMap::from([("application", ss.ns.as_str())]);
        ss.with_store(|store| Entry::search_in_store(store, &spec).map(drop))
            .map_err(|e| KeychainError::Unavailable(e.to_string()))?;
        Ok(ss)
    }

    fn current(&self) -> Arc<CredentialStore> {
        Arc::clone(&self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `op`; when it fails in a way a reconnect may cure, reconnects once and retries.
    fn with_store<T>(
        &self,
        op: impl Fn(&Arc<CredentialStore>) -> Result<T, KError>,
    ) -> Result<T, KeychainError> {
        match op(&self.current()) {
            Err(e) if worth_reconnecting(&e) => {
                tracing::info!(error = %e, "Secret Service call failed; reconnecting once");
                let fresh = connect()?;
                *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
                Ok(op(&fresh)?)
            }
            other => Ok(other?),
        }
    }

    fn entry(&self, store: &Arc<CredentialStore>, id: &ItemId) -> Result<Entry, KError> {
        let label = id.label();
        let mods = HashMap::from([("label", label.as_str())]);
        Entry::new_in_store_with_modifiers(store, &id.service(&self.ns), &id.username, &mods)
    }
}

impl Backend for SecretService {
    fn kind(&self) -> BackendKind {
        BackendKind::SecretService
    }

    fn persistent(&self) -> bool {
        true
    }

    fn load(&self, id: &ItemId) -> Result<Option<Secret>, KeychainError> {
        self.with_store(|store| match self.entry(store, id)?.get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(KError::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn save(&self, id: &ItemId, secret: &Secret) -> Result<(), KeychainError> {
        self.with_store(|store| {
            let entry = self.entry(store, id)?;
            entry.set_password(secret.expose())?;
            entry.update_attributes(&HashMap::from([("application", self.ns.as_str())]))
        })
    }

    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError> {
        self.with_store(|store| match self.entry(store, id)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KError::NoEntry) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn list(&self) -> Result<Vec<ItemId>, KeychainError> {
        let spec = HashMap::from([("application", self.ns.as_str())]);
        self.with_store(|store| {
            let mut out = Vec::new();
            for entry in Entry::search_in_store(store, &spec)? {
                let attrs = entry.get_attributes()?;
                if let (Some(service), Some(user)) = (attrs.get("service"), attrs.get("username"))
                    && let Some(id) = ItemId::parse(&self.ns, service, user)
                {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }
}
