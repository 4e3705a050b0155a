//! Which store serves a target: the [`Router`] over the agent's stores, built from the
//! configuration file and rebuilt when it changes — the keychain store for every host the
//! configuration does not route elsewhere, OpenBao routes, any other kind of store a route
//! names — and store login by name.
//!
//! Invariants: a target is served by the store its route names and by no other (no
//! fallback); while the configuration cannot be used (it does not parse, or another user
//! could have changed it) no target is served, since which hosts are routed is unknown; the
//! keychain items of the stores' own tokens are no target.

use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use wbl_proto::{Secret, StoreSession, Target};

use super::keychain_store::{KeychainStore, TOKEN_PROTOCOL};
use super::openbao::OpenBaoStore;
use super::store::{Served, Store, StoreError};
use crate::config::{Config, ConfigError};

/// The store of a route to a kind other than OpenBao, built from its section of the
/// configuration: where a new kind of store is wired in (see ARCHITECTURE.md, "Adding a
/// store"). `None` for a kind this build does not have.
pub(crate) fn other_store(
    config: &crate::config::Config,
    route: &crate::config::OtherRoute,
) -> Option<Arc<dyn Store>> {
    let (kind, name) = crate::config::store_kind(&route.store)?;
    match kind {
        #[cfg(test)]
        super::files::KIND => {
            let dir = config.files.get(name)?.join(&route.path);
            Some(Arc::new(super::files::FilesStore::new(dir, &route.store)))
        }
        _ => {
            let _ = (config, name);
            None
        }
    }
}

/// The stores and which one serves a target.
pub struct Router {
    keychain: Arc<KeychainStore>,
    openbao: OpenBaoStore,
    /// The routes of the configuration as last read.
    table: RwLock<Arc<Table>>,
    /// The configuration file's stamp when last read (`Some(None)`: there was none), to
    /// notice edits.
    stamp: Mutex<Option<Option<FileStamp>>>,
    /// Where the configuration file is (the agent's environment does not change).
    path: Option<std::path::PathBuf>,
}

/// The routes of one configuration, or why it cannot be used.
#[derive(Default)]
struct Table {
    error: Option<ConfigError>,
    routes: Vec<(Target, Arc<dyn Store>)>,
}

/// What tells an edited (or re-owned, or chmod-ed) configuration file from the one last read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    /// Inode, owner, mode and change time: a file replaced, given away or opened to others is
    /// checked (and refused) again even when its content and mtime look the same.
    #[cfg(unix)]
    inode: (u64, u32, u32, i64, i64),
}

fn stamp_of(path: &std::path::Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: (m.ino(), m.uid(), m.mode(), m.ctime(), m.ctime_nsec()),
    })
}

impl Router {
    /// The keychain store serves every host the configuration does not route elsewhere. Reads
    /// the configuration file now; it is read again whenever it changes.
    pub fn new(keychain: KeychainStore) -> Router {
        let keychain = Arc::new(keychain);
        let router = Router {
            openbao: OpenBaoStore::new(keychain.token_keeper()),
            keychain,
            table: RwLock::new(Arc::default()),
            stamp: Mutex::new(None),
            path: crate::dirs::config_file().map(|(p, _)| p),
        };
        router.refresh();
        router
    }

    /// A router over `config` as given (never re-read), its OpenBao servers made by `connect`
    /// and timed by `clock` (the unit tests' fakes).
    #[cfg(test)]
    pub(crate) fn configured(
        keychain: KeychainStore,
        config: &Config,
        connect: super::openbao::Connect,
        clock: Arc<dyn super::openbao::Clock>,
    ) -> Router {
        let keychain = Arc::new(keychain);
        let router = Router {
            openbao: OpenBaoStore::with(keychain.token_keeper(), connect, clock),
            keychain,
            table: RwLock::new(Arc::default()),
            // The stamp of "no file", which `refresh` then always finds unchanged.
            stamp: Mutex::new(Some(None)),
            path: None,
        };
        let table = router.build(Ok(Some(config)));
        *router.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        router
    }

    /// Re-reads the configuration when its file changed (checked on every routed decision: one
    /// `stat`).
    fn refresh(&self) -> Arc<Table> {
        let stamp = self.path.as_deref().and_then(stamp_of);
        let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.table.read().unwrap_or_else(|p| p.into_inner()).clone();
        if *last == Some(stamp) {
            return current;
        }
        *last = Some(stamp);
        let loaded = crate::config::load();
        if let Err(e) = &loaded {
            tracing::error!(error = %e, "the configuration file cannot be used");
        }
        let table = Arc::new(self.build(loaded.as_ref().map(Option::as_ref)));
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&table);
        table
    }

    /// The routes of a configuration (none without one), or why it cannot be used.
    fn build(&self, config: Result<Option<&Config>, &ConfigError>) -> Table {
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                self.openbao.configure(None);
                return Table {
                    error: Some(e.clone()),
                    routes: Vec::new(),
                };
            }
        };
        let mut routes = self.openbao.configure(config);
        if let Some(config) = config {
            routes.extend(config.other_routes.iter().filter_map(|r| {
                let target = Target::new(r.protocol.clone(), r.host.clone());
                other_store(config, r).map(|s| (target, s))
            }));
        }
        Table {
            error: None,
            routes,
        }
    }

    /// The store that serves `target`, or why none may.
    pub fn route(&self, target: &Target) -> Result<Arc<dyn Store>, StoreError> {
        if target.protocol == TOKEN_PROTOCOL {
            return Err(StoreError::BadRequest(format!(
                "{TOKEN_PROTOCOL}:// items are the agent's own tokens"
            )));
        }
        let table = self.refresh();
        if let Some(e) = &table.error {
            return Err(StoreError::Config(format!(
                "{e}; wbl serves no key until the configuration is fixed"
            )));
        }
        Ok(table
            .routes
            .iter()
            .find(|(t, _)| t.host == target.host && t.protocol == target.protocol)
            .map_or_else(
                || Arc::clone(&self.keychain) as Arc<dyn Store>,
                |(_, s)| Arc::clone(s),
            ))
    }

    /// The keychain store (the default one, and what `list` lists).
    pub fn keychain(&self) -> &Arc<KeychainStore> {
        &self.keychain
    }

    /// Logs the agent in to the store `store` (as a route names it: `openbao.NAME`) with
    /// `secret`.
    pub async fn login(
        &self,
        store: &str,
        secret: Option<Secret>,
    ) -> Result<StoreSession, StoreError> {
        match crate::config::store_kind(store) {
            Some((crate::config::OPENBAO, name)) => {
                if let Some(e) = &self.refresh().error {
                    return Err(StoreError::Config(e.to_string()));
                }
                self.openbao.login(name, secret).await
            }
            _ => Err(StoreError::Config(format!(
                "no store `{}` takes a login (a store is named as a route names it, e.g. \
                 `openbao.NAME`)",
                crate::text::printable(store)
            ))),
        }
    }

    /// Every host routed away from the keychain, with where it is served from.
    pub fn routed(&self) -> Vec<(Target, Served)> {
        self.refresh()
            .routes
            .iter()
            .map(|(t, s)| (t.clone(), s.describe()))
            .collect()
    }

    /// Secrets held in the stores' caches.
    pub fn cached(&self) -> u64 {
        self.keychain.counts().0 + self.openbao.cached()
    }
}
