//! An in-memory [`Backend`] for unit tests of the agent's logic (cache coherence, store and
//! erase ordering, sibling items, keychain timeouts and failures) without D-Bus or the kernel
//! keyring. Test-only: it adds coverage in milliseconds; the end-to-end tests against real
//! keychains stay as they are.
//!
//! Faults are injected from the test: [`MemoryBackend::fail_when`] makes chosen calls fail,
//! [`MemoryBackend::hold`] makes every call block until the returned guard is dropped (a hung
//! keychain). Clones share the same items, so a test keeps one to look at what the agent did.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use wbl_proto::Secret;

use super::{Backend, BackendKind, ItemId, KeychainError};

/// A backend call, as [`MemoryBackend::calls`] counts them and faults select them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Load,
    Save,
    Delete,
    List,
}

type FaultRule = Box<dyn Fn(Op, Option<&ItemId>) -> bool + Send + Sync>;

#[derive(Default)]
struct Inner {
    items: Mutex<BTreeMap<ItemId, Secret>>,
    calls: Mutex<Vec<Op>>,
    fault: Mutex<Option<FaultRule>>,
    /// (held, calls waiting on the hold).
    hold: Mutex<(bool, usize)>,
    released: Condvar,
    waiting: Condvar,
    volatile: bool,
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

/// While alive, every call of the backend that made it blocks. Dropping it lets them go on.
pub struct Hold {
    inner: Arc<Inner>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        lock(&self.inner.hold).0 = false;
        self.inner.released.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryBackend {
    /// An empty, persistent backend (it reports itself as the Secret Service).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty backend that says its items vanish at reboot (it reports itself as keyutils).
    pub fn volatile() -> Self {
        MemoryBackend {
            inner: Arc::new(Inner {
                volatile: true,
                ..Inner::default()
            }),
        }
    }

    /// Makes every call for which `rule` is true fail (until [`MemoryBackend::heal`]). `List`
    /// calls get no item.
    pub fn fail_when(&self, rule: impl Fn(Op, Option<&ItemId>) -> bool + Send + Sync + 'static) {
        *lock(&self.inner.fault) = Some(Box::new(rule));
    }

    /// Ends the failures of [`MemoryBackend::fail_when`].
    pub fn heal(&self) {
        *lock(&self.inner.fault) = None;
    }

    /// Blocks every call from now until the returned guard is dropped.
    pub fn hold(&self) -> Hold {
        lock(&self.inner.hold).0 = true;
        Hold {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Waits until `n` calls are blocked on the hold (so a test knows an operation has reached
    /// the keychain).
    pub fn wait_blocked(&self, n: usize) {
        let mut hold = lock(&self.inner.hold);
        while hold.1 < n {
            hold = self
                .inner
                .waiting
                .wait(hold)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Op> {
        lock(&self.inner.calls).clone()
    }

    /// The items held, in `ItemId` order, with their secrets.
    pub fn items(&self) -> Vec<(ItemId, String)> {
        lock(&self.inner.items)
            .iter()
            .map(|(id, s)| (id.clone(), s.expose().to_owned()))
            .collect()
    }

    /// Creates or replaces an item behind the agent's back.
    pub fn put(&self, id: ItemId, secret: &str) {
        lock(&self.inner.items).insert(id, Secret::from(secret));
    }

    /// Removes an item behind the agent's back.
    pub fn take(&self, id: &ItemId) -> bool {
        lock(&self.inner.items).remove(id).is_some()
    }

    /// Records the call, waits while held, and applies the fault rule.
    fn enter(&self, op: Op, id: Option<&ItemId>) -> Result<(), KeychainError> {
        lock(&self.inner.calls).push(op);
        {
            let mut hold = lock(&self.inner.hold);
            if hold.0 {
                hold.1 += 1;
                self.inner.waiting.notify_all();
                while hold.0 {
                    hold = self
                        .inner
                        .released
                        .wait(hold)
                        .unwrap_or_else(|p| p.into_inner());
                }
                hold.1 -= 1;
            }
        }
        match &*lock(&self.inner.fault) {
            Some(rule) if rule(op, id) => {
                Err(KeychainError::Failed(format!("injected failure of {op:?}")))
            }
            _ => Ok(()),
        }
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> BackendKind {
        if self.inner.volatile {
            BackendKind::Keyutils
        } else {
            BackendKind::SecretService
        }
    }

    fn persistent(&self) -> bool {
        !self.inner.volatile
    }

    fn load(&self, id: &ItemId) -> Result<Option<Secret>, KeychainError> {
        self.enter(Op::Load, Some(id))?;
        Ok(lock(&self.inner.items).get(id).cloned())
    }

    fn save(&self, id: &ItemId, secret: &Secret) -> Result<(), KeychainError> {
        self.enter(Op::Save, Some(id))?;
        lock(&self.inner.items).insert(id.clone(), secret.clone());
        Ok(())
    }

    fn delete(&self, id: &ItemId) -> Result<bool, KeychainError> {
        self.enter(Op::Delete, Some(id))?;
        Ok(lock(&self.inner.items).remove(id).is_some())
    }

    fn list(&self) -> Result<Vec<ItemId>, KeychainError> {
        self.enter(Op::List, None)?;
        Ok(lock(&self.inner.items).keys().cloned().collect())
    }
}
