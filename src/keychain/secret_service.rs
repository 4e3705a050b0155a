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

use super::ss_state::{self, Health};
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

    /// Opens the Secret Service whatever the state of its default collection: a locked one,
    /// or none, is used all the same — every request then says so ([`KeychainError::Locked`],
    /// [`KeychainError::NoDefaultCollection`]) — and the warning returned says it now.
    pub fn open_checked(ns: String) -> Result<(Self, Option<String>), KeychainError> {
        let conn = zbus::blocking::Connection::session().ok();
        Self::open_on(conn.as_ref(), ns)
    }

    /// For `auto`: [`SecretService::open_checked`], or `Unavailable` when there is no Secret
    /// Service at all — no session bus, or nothing on it that provides or can start one.
    pub fn open_auto(ns: String) -> Result<(Self, Option<String>), KeychainError> {
        let conn = zbus::blocking::Connection::session()
            .map_err(|e| KeychainError::Unavailable(format!("no session D-Bus: {e}")))?;
        if let Health::NotRunning { activatable: false } = ss_state::health(&conn) {
            return Err(KeychainError::Unavailable(format!(
                "nothing on the session bus provides {}",
                ss_state::SECRETS_NAME
            )));
        }
        Self::open_on(Some(&conn), ns)
    }

    fn open_on(
        conn: Option<&zbus::blocking::Connection>,
        ns: String,
    ) -> Result<(Self, Option<String>), KeychainError> {
        let warn =
            |e: KeychainError| format!("{e}; until then, keys can be neither read nor stored");
        let before = conn.map(ss_state::health);
        if let Some(refusal) = before.as_ref().and_then(Health::error) {
            // No probe search: one that meets our items in a locked collection would prompt
            // now, at start-up, rather than when a key is wanted.
            let ss = SecretService {
                store: Mutex::new(connect()?),
                ns,
            };
            return Ok((ss, Some(warn(refusal))));
        }
        let probed = Self::open_and_probe(ns.clone());
        // A provider that D-Bus started for the probe shows its state only now.
        let after = match (&before, conn) {
            (Some(Health::NotRunning { .. }), Some(c)) => ss_state::health(c).error(),
            (_, Some(c)) if probed.is_err() => ss_state::health(c).error(),
            _ => None,
        };
        let ss = match probed {
            Ok(ss) => ss,
            Err(e) if after.is_some() => {
                tracing::debug!(error = %e, "Secret Service probe refused: {after:?}");
                SecretService {
                    store: Mutex::new(connect()?),
                    ns,
                }
            }
            Err(e) => return Err(e),
        };
        Ok((ss, after.map(warn)))
    }

    /// Why the Secret Service refused access, when it is locked or has no default collection.
    fn why_refused() -> Option<KeychainError> {
        let conn = zbus::blocking::Connection::session().ok()?;
        ss_state::health(&conn).error()
    }

    fn current(&self) -> Arc<CredentialStore> {
        Arc::clone(&self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `op`; when it fails in a way a reconnect may cure, reconnects once and retries.
    fn with_store<T>(
        &self,
        op: impl Fn(&Arc<CredentialStore>) -> Result<T, KError>,
    ) -> Result<T, KeychainError> {
        // A locked collection (or a dismissed prompt to unlock it) and a missing default
        // collection are refusals that say what to do; a new connection would only prompt again.
        let refused = |e: KError| match e {
            KError::NoStorageAccess(_) => Self::why_refused().unwrap_or_else(|| e.into()),
            e => e.into(),
        };
        let first = op(&self.current());
        if let Err(KError::NoStorageAccess(_)) = &first
            && let Some(why) = Self::why_refused()
        {
            return Err(why);
        }
        match first {
            Err(e) if worth_reconnecting(&e) => {
                tracing::info!(error = %e, "Secret Service call failed; reconnecting once");
                let fresh = connect()?;
                *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
                op(&fresh).map_err(refused)
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
        // A search finds nothing in a locked collection that holds none of our items, and
        // nothing where there is no collection: that would read as "no key stored", then a key
        // stored elsewhere. The index is read once per agent, so asking costs little.
        if let Some(why) = Self::why_refused() {
            return Err(why);
        }
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
