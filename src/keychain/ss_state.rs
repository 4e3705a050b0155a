//! The Secret Service as a person sees it: who provides it, whether it has a default collection
//! (the keyring keys go to) and whether that is unlocked, read without activating, unlocking or
//! prompting; and the one change `wbl keyring unlock` makes: starting the provider through
//! D-Bus, then unlocking the default collection with a password, or creating it with one where
//! there is none (gnome-keyring's master-password interface; other providers unlock in their
//! own window).

use std::collections::HashMap;

use zbus::blocking::Connection;
use zbus::blocking::fdo::{DBusProxy, PropertiesProxy};
use zbus::names::{BusName, InterfaceName, WellKnownName};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use super::KeychainError;

/// The Secret Service's bus name.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_IFACE: &str = "org.freedesktop.Secret.Service";
const COLLECTION_IFACE: &str = "org.freedesktop.Secret.Collection";
/// gnome-keyring's own interface for unlocking and creating a collection with a password that
/// the caller supplies (what its `--unlock` and Seahorse use), instead of a prompt.
const GNOME_IFACE: &str = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface";

/// What the Secret Service on the session bus is like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Nothing owns `org.freedesktop.secrets`; `activatable`: D-Bus can start a provider.
    NotRunning {
        activatable: bool,
    },
    /// A provider runs but has no default collection: there is nowhere to store a key.
    NoDefaultCollection {
        provider: String,
    },
    /// The default collection is locked: nothing can be read or stored until it is unlocked.
    Locked {
        provider: String,
        label: String,
        collection: String,
    },
    Unlocked {
        provider: String,
        label: String,
    },
    /// The bus or the provider answered with an error.
    Failed(String),
}

impl Health {
    /// The keychain error that a read or write meets in this state, if it is one that wbl
    /// reports as such (locked, no default collection).
    pub fn error(&self) -> Option<KeychainError> {
        match self {
            Health::Locked {
                provider, label, ..
            } => Some(KeychainError::Locked(format!("\"{label}\" of {provider}"))),
            Health::NoDefaultCollection { provider } => {
                Some(KeychainError::NoDefaultCollection(provider.clone()))
            }
            _ => None,
        }
    }
}

fn secrets_name() -> WellKnownName<'static> {
    WellKnownName::from_static_str_unchecked(SECRETS_NAME)
}

/// Reads the state of the Secret Service on `conn`. Never activates a provider, never unlocks,
/// never prompts. Blocks on D-Bus: callers bound it.
pub fn health(conn: &Connection) -> Health {
    let dbus = match DBusProxy::new(conn) {
        Ok(p) => p,
        Err(e) => return Health::Failed(e.to_string()),
    };
    match dbus.name_has_owner(secrets_name().into()) {
        Ok(true) => {}
        Ok(false) => {
            let activatable = dbus
                .list_activatable_names()
                .is_ok_and(|names| names.iter().any(|n| n.as_str() == SECRETS_NAME));
            return Health::NotRunning { activatable };
        }
        Err(e) => return Health::Failed(e.to_string()),
    }
    let provider = provider(&dbus);
    let collection = match default_collection(conn) {
        Ok(Some(c)) => c,
        Ok(None) => return Health::NoDefaultCollection { provider },
        Err(e) => return Health::Failed(e),
    };
    let props = |name: &str| -> Result<OwnedValue, String> {
        let proxy = PropertiesProxy::builder(conn)
            .destination(SECRETS_NAME)
            .and_then(|b| b.path(collection.as_str()))
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?;
        proxy
            .get(
                InterfaceName::from_static_str_unchecked(COLLECTION_IFACE),
                name,
            )
            .map_err(|e| e.to_string())
    };
    let label = props("Label")
        .ok()
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default();
    match props("Locked").and_then(|v| bool::try_from(v).map_err(|e| e.to_string())) {
        Ok(true) => Health::Locked {
            provider,
            label,
            collection: collection.as_str().to_owned(),
        },
        Ok(false) => Health::Unlocked { provider, label },
        Err(e) => Health::Failed(e),
    }
}

/// The provider's program and pid, e.g. `gnome-keyring-daemon (pid 42)`.
fn provider(dbus: &DBusProxy<'_>) -> String {
    match dbus.get_connection_unix_process_id(BusName::from(secrets_name())) {
        Ok(pid) => {
            // The program's name from its argv[0] (`comm` is cut at 15 bytes).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let argv0 = String::from_utf8_lossy(argv0);
            match argv0.rsplit('/').next().unwrap_or_default() {
                "" => format!("pid {pid}"),
                name => format!("{name} (pid {pid})"),
            }
        }
        Err(_) => SECRETS_NAME.to_owned(),
    }
}

/// The default collection's object path, `None` when the alias is not set.
fn default_collection(conn: &Connection) -> Result<Option<OwnedObjectPath>, String> {
    let reply = conn
        .call_method(
            Some(SECRETS_NAME),
            SERVICE_PATH,
            Some(SERVICE_IFACE),
            "ReadAlias",
            &("default",),
        )
        .map_err(|e| e.to_string())?;
    let path: OwnedObjectPath = reply.body().deserialize().map_err(|e| e.to_string())?;
    Ok((path.as_str() != "/").then_some(path))
}

/// What `wbl keyring unlock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// It was unlocked already.
    Already { provider: String, label: String },
    /// The default collection was locked and is unlocked now.
    Unlocked { provider: String, label: String },
    /// There was none; a new one, unlocked, is the default now.
    Created { provider: String, label: String },
}

/// Why `wbl keyring unlock` could not.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(
        "no Secret Service on the session bus, and D-Bus cannot start one: install gnome-keyring (`sudo apt install gnome-keyring`), which D-Bus then starts on demand"
    )]
    NotInstalled,
    #[error("{provider} refused the password: {detail}")]
    Refused { provider: String, detail: String },
    #[error(
        "{provider} is not gnome-keyring and takes no password from wbl: unlock (or create) its default collection in its own window"
    )]
    NotGnomeKeyring { provider: String },
    #[error("the Secret Service failed: {0}")]
    Failed(String),
}

/// The state `unlock` starts from: the provider started through D-Bus if none runs.
pub fn start(conn: &Connection) -> Result<Health, UnlockError> {
    let state = health(conn);
    let Health::NotRunning { activatable } = state else {
        return Ok(state);
    };
    if !activatable {
        return Err(UnlockError::NotInstalled);
    }
    let dbus = DBusProxy::new(conn).map_err(|e| UnlockError::Failed(e.to_string()))?;
    dbus.start_service_by_name(secrets_name(), 0)
        .map_err(|e| UnlockError::Failed(format!("D-Bus could not start {SECRETS_NAME}: {e}")))?;
    match health(conn) {
        Health::NotRunning { .. } => Err(UnlockError::Failed(format!(
            "D-Bus started {SECRETS_NAME}, but nothing owns the name"
        ))),
        state => Ok(state),
    }
}

/// Unlocks the default collection of the state [`start`] returned with `password`, or creates
/// one (labelled "Login", the default from then on) with it where there is none. The password
/// goes to the provider in a plain Secret Service session over the session bus, which only this
/// user can connect to — as `gnome-keyring-daemon --unlock` reads it from a pipe.
pub fn unlock(conn: &Connection, state: Health, password: &[u8]) -> Result<Unlocked, UnlockError> {
    match state {
        Health::Unlocked { provider, label } => Ok(Unlocked::Already { provider, label }),
        Health::Locked {
            provider,
            label,
            collection,
        } => {
            let path = ObjectPath::try_from(collection.as_str())
                .map_err(|e| UnlockError::Failed(e.to_string()))?;
            gnome_call(conn, &provider, "UnlockWithMasterPassword", password, |s| {
                (path.clone(), s)
            })?;
            match health(conn) {
                Health::Unlocked { provider, label } => Ok(Unlocked::Unlocked { provider, label }),
                Health::Locked { .. } => Err(UnlockError::Refused {
                    provider,
                    detail: format!("\"{label}\" is still locked (a wrong password?)"),
                }),
                other => Err(UnlockError::Failed(format!("after unlocking: {other:?}"))),
            }
        }
        Health::NoDefaultCollection { provider } => {
            let label = "Login";
            let props = HashMap::from([(
                "org.freedesktop.Secret.Collection.Label",
                Value::from(label),
            )]);
            let reply = gnome_call(conn, &provider, "CreateWithMasterPassword", password, |s| {
                (props.clone(), s)
            })?;
            let created: OwnedObjectPath = reply
                .body()
                .deserialize()
                .map_err(|e| UnlockError::Failed(e.to_string()))?;
            conn.call_method(
                Some(SECRETS_NAME),
                SERVICE_PATH,
                Some(SERVICE_IFACE),
                "SetAlias",
                &("default", &created),
            )
            .map_err(|e| UnlockError::Failed(format!("cannot make it the default: {e}")))?;
            match health(conn) {
                Health::Unlocked { provider, label } => Ok(Unlocked::Created { provider, label }),
                other => Err(UnlockError::Failed(format!("after creating it: {other:?}"))),
            }
        }
        Health::NotRunning { .. } => Err(UnlockError::NotInstalled),
        Health::Failed(e) => Err(UnlockError::Failed(e)),
    }
}

/// The Secret Service's `(oayays)` secret: session, parameters, value, content type.
type SecretArg<'a> = (ObjectPath<'a>, &'a [u8], &'a [u8], &'a str);

/// Calls one of gnome-keyring's master-password methods; `args` builds its arguments around
/// the secret.
fn gnome_call<'a, B>(
    conn: &Connection,
    provider: &str,
    method: &str,
    password: &'a [u8],
    args: impl FnOnce(SecretArg<'a>) -> B,
) -> Result<zbus::Message, UnlockError>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    let reply = conn
        .call_method(
            Some(SECRETS_NAME),
            SERVICE_PATH,
            Some(SERVICE_IFACE),
            "OpenSession",
            &("plain", Value::from("")),
        )
        .map_err(|e| UnlockError::Failed(format!("cannot open a session: {e}")))?;
    let (_, session): (OwnedValue, OwnedObjectPath) = reply
        .body()
        .deserialize()
        .map_err(|e| UnlockError::Failed(e.to_string()))?;
    let secret: SecretArg<'a> = (
        ObjectPath::try_from(session.as_str().to_owned())
            .map_err(|e| UnlockError::Failed(e.to_string()))?,
        &[],
        password,
        "text/plain",
    );
    let result = conn.call_method(
        Some(SECRETS_NAME),
        SERVICE_PATH,
        Some(GNOME_IFACE),
        method,
        &args(secret),
    );
    // The session is no longer needed, whatever happened.
    let _ = conn.call_method(
        Some(SECRETS_NAME),
        session.as_str(),
        Some("org.freedesktop.Secret.Session"),
        "Close",
        &(),
    );
    result.map_err(|e| match &e {
        zbus::Error::MethodError(name, ..)
            if matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.UnknownMethod"
                    | "org.freedesktop.DBus.Error.UnknownInterface"
                    | "org.freedesktop.DBus.Error.UnknownObject"
            ) =>
        {
            UnlockError::NotGnomeKeyring {
                provider: provider.to_owned(),
            }
        }
        zbus::Error::MethodError(_, detail, _) => UnlockError::Refused {
            provider: provider.to_owned(),
            detail: detail.clone().unwrap_or_else(|| e.to_string()),
        },
        _ => UnlockError::Failed(e.to_string()),
    })
}
