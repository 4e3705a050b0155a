//! Backend for the freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet) over D-Bus,
//! through `zbus-secret-service-keyring-store`.
//!
//! Items carry the store's `service` and `username` attributes plus `application = <ns>`, which
//! is what `list` searches for and what a person can search for in Seahorse or with
//! `secret-tool search application wbl`.

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KError};
use wbl_proto::Secret;

use super::{Backend, BackendKind, ItemId, KeychainError};

pub struct SecretService {
    store: Arc<CredentialStore>,
    ns: String,
}

impl SecretService {
    /// Connects to the session bus and makes one search, so that a missing or broken Secret
    /// Service is found now rather than at the first request.
    pub fn open_and_probe(ns: String) -> Result<Self, KeychainError> {
        let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()
            .map_err(|e| KeychainError::Unavailable(e.to_string()))?;
        let ss = SecretService { store, ns };
        ss.list()
            .map_err(|e| KeychainError::Unavailable(e.to_string()))?;
        Ok(ss)
    }

    fn entry(&self, id: &ItemId) -> Result<Entry, KeychainError> {
        let label = id.label();
        let mods = HashMap::from([("label", label.as_str())]);
        Ok(Entry::new_in_store_with_modifiers(
            &self.store,
            &id.service(&self.ns),
            &id.username,
            &mods,
        )?)
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
        match self.entry(id)?.get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(KError::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, id: &ItemId, secret: &Secret) -> Result<(), KeychainError> {
        let entry = self.entry(id)?;
        entry.set_password(secret.expose())?;
        entry.update_attributes(&HashMap::from([("application", self.ns.as_str())]))?;
        Ok(())
    }

    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError> {
        match self.entry(id)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KError::NoEntry) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Vec<ItemId>, KeychainError> {
        let spec = HashMap::from([("application", self.ns.as_str())]);
        let mut out = Vec::new();
        for entry in Entry::search_in_store(&self.store, &spec)? {
            let attrs = entry.get_attributes()?;
            if let (Some(service), Some(user)) = (attrs.get("service"), attrs.get("username"))
                && let Some(id) = ItemId::parse(&self.ns, service, user)
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}
