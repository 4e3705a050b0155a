//! A backend over any `keyring-core` store without search (macOS Keychain, Windows Credential
//! Manager). Listing uses an index item holding the names (never the secrets) of our items.

#![cfg_attr(not(any(target_os = "macos", windows)), allow(dead_code))]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry, Error as KError};
use wbl_proto::Secret;

use super::{Backend, BackendKind, ItemId, KeychainError};

pub struct StoreBackend {
    kind: BackendKind,
    store: Arc<CredentialStore>,
    ns: String,
    /// Serialises read-modify-write of the index item.
    index_lock: Mutex<()>,
}

impl StoreBackend {
    pub fn new(kind: BackendKind, store: Arc<CredentialStore>, ns: String) -> Self {
        StoreBackend {
            kind,
            store,
            ns,
            index_lock: Mutex::new(()),
        }
    }

    fn entry(&self, id: &ItemId) -> Result<Entry, KeychainError> {
        Ok(Entry::new_in_store(
            &self.store,
            &id.service(&self.ns),
            &id.username,
        )?)
    }

    fn index_entry(&self) -> Result<Entry, KeychainError> {
        Ok(Entry::new_in_store(
            &self.store,
            &format!("{}-index", self.ns),
            "wbl",
        )?)
    }

    fn read_index(&self) -> Result<BTreeSet<String>, KeychainError> {
        match self.index_entry()?.get_password() {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(KError::NoEntry) => Ok(BTreeSet::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn update_index(&self, id: &ItemId, present: bool) -> Result<(), KeychainError> {
        let _guard = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.read_index()?;
        let name = id.description(&self.ns).replace('\n', "%0A");
        let changed = if present {
            index.insert(name)
        } else {
            index.remove(&name)
        };
        if changed {
            let text: Vec<&str> = index.iter().map(String::as_str).collect();
            self.index_entry()?.set_password(&text.join("\n"))?;
        }
        Ok(())
    }
}

impl Backend for StoreBackend {
    fn kind(&self) -> BackendKind {
        self.kind
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
        self.entry(id)?.set_password(secret.expose())?;
        self.update_index(id, true)
    }

    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError> {
        let existed = match self.entry(id)?.delete_credential() {
            Ok(()) => true,
            Err(KError::NoEntry) => false,
            Err(e) => return Err(e.into()),
        };
        self.update_index(id, false)?;
        Ok(existed)
    }

    fn list(&self) -> Result<Vec<ItemId>, KeychainError> {
        Ok(self
            .read_index()?
            .iter()
            .filter_map(|d| ItemId::parse_description(&self.ns, d))
            .collect())
    }
}
