//! Backend for the Linux kernel key retention service (keyutils), for machines without a
//! Secret Service. Keys live in the user keyring (`@u`) and die at reboot.
//!
//! Why not `linux_keyutils_keyring_store::Store` as it is: its entries link every key into
//! the *persistent* keyring as well, and on machines where that keyring grants the user no
//! write permission (seen here: `_persistent.0` with perms `1f030000`, e.g. in containers)
//! every `set` fails with `NoStorageAccess(AccessDenied)` although `keyctl add user … @u`
//! works. We build the crate's own `Cred` with the user keyring and no persistent keyring.
//!
//! Listing (the store has no search) reads the keyring with one `keyctl(KEYCTL_READ)` of our
//! own (`sys::user_keyring_ids`) rather than `linux_keyutils::KeyRing::get_links`: that
//! function takes a fixed maximum and sets the vector's length from the kernel's *total* size,
//! so a keyring with more keys than the maximum yields uninitialised ids. Ours asks for the
//! size first and retries until the buffer fits.

use std::sync::Arc;

use keyring_core::{Entry, Error as KError};
use linux_keyutils::{Key, KeyRing, KeyRingIdentifier, KeySerialId, KeyType};
use linux_keyutils_keyring_store::Cred;
use wbl_proto::Secret;

use super::{Backend, BackendKind, ItemId, KeychainError};

/// Checks, without creating or storing anything, that the user keyring can be read and
/// listed the way [`Keyutils`] uses it (`wbl doctor`).
pub fn probe() -> Result<(), KeychainError> {
    let ring = KeyRing::from_special_id(KeyRingIdentifier::User, false)
        .map_err(|e| KeychainError::Unavailable(format!("kernel user keyring: {e}")))?;
    ring.metadata()
        .map_err(|e| KeychainError::Unavailable(format!("kernel user keyring: {e}")))?;
    crate::sys::user_keyring_ids()
        .map_err(|e| KeychainError::Unavailable(format!("listing the user keyring: {e}")))?;
    Ok(())
}

pub struct Keyutils {
    ring: KeyRing,
    ns: String,
}

impl Keyutils {
    pub fn open(ns: String) -> Result<Self, KeychainError> {
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true)
            .map_err(|e| KeychainError::Unavailable(format!("kernel user keyring: {e}")))?;
        ring.metadata()
            .map_err(|e| KeychainError::Unavailable(format!("kernel user keyring: {e}")))?;
        Ok(Keyutils { ring, ns })
    }

    fn entry(&self, id: &ItemId) -> Entry {
        let cred = Cred {
            session: self.ring,
            persistent: None,
            description: id.description(&self.ns),
            specifiers: None,
        };
        Entry::new_with_credential(Arc::new(cred))
    }
}

impl Backend for Keyutils {
    fn kind(&self) -> BackendKind {
        BackendKind::Keyutils
    }

    fn persistent(&self) -> bool {
        false
    }

    fn load(&self, id: &ItemId) -> Result<Option<Secret>, KeychainError> {
        match self.entry(id).get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(KError::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, id: &ItemId, secret: &Secret) -> Result<(), KeychainError> {
        if secret.is_empty() {
            // keyutils cannot hold an empty key; an empty secret means "nothing stored".
            self.delete(id)?;
            return Ok(());
        }
        Ok(self.entry(id).set_password(secret.expose())?)
    }

    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError> {
        match self.entry(id).delete_credential() {
            Ok(()) => Ok(true),
            Err(KError::NoEntry) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Vec<ItemId>, KeychainError> {
        let ids = crate::sys::user_keyring_ids()
            .map_err(|e| KeychainError::Failed(format!("listing the user keyring: {e}")))?;
        Ok(ids
            .into_iter()
            .map(|id| Key::from_id(KeySerialId(id)))
            .filter_map(|key| key.metadata().ok())
            .filter(|meta| meta.get_type() == KeyType::User)
            .filter_map(|meta| ItemId::parse_description(&self.ns, meta.get_description()))
            .collect())
    }
}
