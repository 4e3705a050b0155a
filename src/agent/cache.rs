//! The agent's in-memory cache: what the keychain holds (the index: every credential's key and
//! its sibling items) and, once read or written, the credential itself. Pure data: no keychain
//! calls and no locking here; `state.rs` decides when the cache may change.
//!
//! Shape: protocol → host → a vector of ((path, user name), what is known), sorted by path
//! then user name, which is git's match order. Two map levels so a lookup borrows the query's
//! strings instead of building an owned key; a vector per host because nearly every host has
//! one entry. A cached credential is boxed: most entries of a large keychain are never read.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use wbl_proto::{Credential, CredentialInfo, Query, Target};

use crate::keychain::{ItemKind, extras_of};

/// What the agent knows to be stored for one (target, user name).
#[derive(Debug, Default, Clone)]
pub(crate) struct Known {
    /// The sibling items the keychain holds for it (so a load asks only for those).
    pub(crate) extras: Vec<ItemKind>,
    /// The whole credential once it has been read from (or written to) the keychain. Boxed:
    /// most entries of a large keychain are never read, and an unboxed `Credential` would make
    /// every entry ten times bigger.
    pub(crate) cached: Option<Box<Credential>>,
}

/// (path, user name): a credential's key within one (protocol, host).
pub(crate) type EntryKey = (Option<String>, String);
/// What is known for one (protocol, host), sorted by (path, user name). A vector, not a
/// `BTreeMap`: nearly every host has one entry, and a `BTreeMap` allocates a node for eleven.
type HostEntries = Vec<(EntryKey, Known)>;

/// What the cache alone can say about a `get`.
// Returned once per `get` and never stored: boxing `Found` would only add an allocation to the
// warm path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The first usable match, cached.
    Found(Credential),
    /// The index is loaded and nothing usable matches.
    Absent,
    /// Only the keychain can tell: the index is not loaded, or a match that comes before any
    /// usable cached one has not been read yet.
    Unknown,
}

#[derive(Default)]
pub(crate) struct Cache {
    /// `false` until the keychain's index has been read once.
    loaded: bool,
    /// protocol → host → entries.
    by_host: HashMap<String, HashMap<String, HostEntries>>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// True when `cred` carries an expiry that is not after `now` (git's `password_expiry_utc`).
pub(crate) fn expired(cred: &Credential, now: u64) -> bool {
    cred.password_expiry_utc.is_some_and(|t| t <= now)
}

/// Keeps a credential's secrets out of swap while it sits in the cache (best effort).
fn lock_secrets(cred: &Credential) {
    crate::agent::harden::lock_memory(cred.password.expose().as_bytes());
    for t in [&cred.oauth_refresh_token, &cred.credential]
        .into_iter()
        .flatten()
    {
        crate::agent::harden::lock_memory(t.expose().as_bytes());
    }
}

impl Cache {
    /// Whether the keychain's index has been read.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Takes the keychain's index (every credential with its sibling items) and marks the
    /// cache loaded. Cached credentials already known are kept.
    pub(crate) fn load_index(&mut self, index: Vec<(CredentialInfo, Vec<ItemKind>)>) {
        for (info, extras) in index {
            self.slot(&info.target, &info.username).extras = extras;
        }
        self.loaded = true;
    }

    fn host(&self, target: &Target) -> Option<&HostEntries> {
        self.by_host.get(&target.protocol)?.get(&target.host)
    }

    /// Every entry matching `query`, by path then user name (git's order).
    pub(crate) fn matches<'a>(
        &'a self,
        query: &'a Query,
    ) -> impl Iterator<Item = (&'a EntryKey, &'a Known)> + 'a {
        self.host(&query.target)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((path, user), _)| {
                query
                    .target
                    .path
                    .as_ref()
                    .is_none_or(|p| Some(p) == path.as_ref())
                    && query.username.as_ref().is_none_or(|u| u == user)
            })
            .map(|(k, v)| (k, v))
    }

    /// The user names stored for `target` without a path (its accounts); `None` until the
    /// index is loaded.
    pub(crate) fn users(&self, target: &Target) -> Option<Vec<&str>> {
        if !self.loaded {
            return None;
        }
        Some(
            self.host(target)
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|((path, _), _)| path.is_none())
                .map(|((_, user), _)| user.as_str())
                .collect(),
        )
    }

    /// A `get` answered from memory when possible: the first match (in git's order) that is
    /// cached and not expired at `now` wins; an uncached match before it means only the
    /// keychain can tell.
    pub(crate) fn lookup(&self, query: &Query, now: u64) -> Lookup {
        if !self.loaded {
            return Lookup::Unknown;
        }
        for (_, known) in self.matches(query) {
            match &known.cached {
                Some(c) if !expired(c, now) => return Lookup::Found(Credential::clone(c)),
                Some(_) => {}
                None => return Lookup::Unknown,
            }
        }
        Lookup::Absent
    }

    /// The entry of (target, user), if known.
    pub(crate) fn get(&self, target: &Target, user: &str) -> Option<&Known> {
        let entries = self.host(target)?;
        let i = find(entries, &target.path, user).ok()?;
        Some(&entries[i].1)
    }

    fn slot(&mut self, target: &Target, user: &str) -> &mut Known {
        let entries = self
            .by_host
            .entry(target.protocol.clone())
            .or_default()
            .entry(target.host.clone())
            .or_default();
        let i = match find(entries, &target.path, user) {
            Ok(i) => i,
            Err(i) => {
                entries.insert(
                    i,
                    ((target.path.clone(), user.to_owned()), Known::default()),
                );
                i
            }
        };
        &mut entries[i].1
    }

    /// Remembers a credential the keychain has just returned (its sibling items unchanged).
    pub(crate) fn remember_loaded(&mut self, cred: Credential) {
        lock_secrets(&cred);
        let slot = self.slot(&cred.target, &cred.username);
        slot.cached = Some(Box::new(cred));
    }

    /// Remembers a credential the keychain has just stored: its sibling items are exactly the
    /// ones it carries.
    pub(crate) fn remember_stored(&mut self, cred: Credential) {
        lock_secrets(&cred);
        let slot = self.slot(&cred.target, &cred.username);
        slot.extras = extras_of(&cred);
        slot.cached = Some(Box::new(cred));
    }

    /// Forgets (target, user); emptied hosts and protocols are dropped.
    pub(crate) fn remove(&mut self, target: &Target, user: &str) {
        let Some(hosts) = self.by_host.get_mut(&target.protocol) else {
            return;
        };
        if let Some(entries) = hosts.get_mut(&target.host) {
            if let Ok(i) = find(entries, &target.path, user) {
                entries.remove(i);
            }
            if entries.is_empty() {
                hosts.remove(&target.host);
            }
        }
        if hosts.is_empty() {
            self.by_host.remove(&target.protocol);
        }
    }

    /// Every entry: (protocol, host, (path, user name), what is known).
    fn entries(&self) -> impl Iterator<Item = (&str, &str, &EntryKey, &Known)> {
        self.by_host.iter().flat_map(|(protocol, hosts)| {
            hosts.iter().flat_map(move |(host, entries)| {
                entries
                    .iter()
                    .map(move |(k, v)| (protocol.as_str(), host.as_str(), k, v))
            })
        })
    }

    /// Names and metadata of every known credential, sorted by target then user name; never
    /// secrets. The expiry is known only for cached credentials.
    pub(crate) fn infos(&self) -> Vec<CredentialInfo> {
        let mut out: Vec<CredentialInfo> = self
            .entries()
            .map(|(protocol, host, (path, user), known)| CredentialInfo {
                target: Target {
                    protocol: protocol.to_owned(),
                    host: host.to_owned(),
                    path: path.clone(),
                },
                username: user.clone(),
                password_expiry_utc: known.cached.as_ref().and_then(|c| c.password_expiry_utc),
            })
            .collect();
        out.sort_by(|a, b| (&a.target, &a.username).cmp(&(&b.target, &b.username)));
        out
    }

    /// (secrets cached, credentials known).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let (mut cached, mut known) = (0, 0);
        for (_, _, _, k) in self.entries() {
            known += 1;
            cached += u64::from(k.cached.is_some());
        }
        (cached, known)
    }
}

/// Binary search for (path, user) in entries sorted by (path, user), without building an
/// owned key.
fn find(entries: &HostEntries, path: &Option<String>, user: &str) -> Result<usize, usize> {
    entries.binary_search_by(|((p, u), _)| (p.as_deref(), u.as_str()).cmp(&(path.as_deref(), user)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wbl_proto::Secret;

    fn target(host: &str, path: Option<&str>) -> Target {
        Target {
            protocol: "https".into(),
            host: host.into(),
            path: path.map(str::to_owned),
        }
    }

    fn cred(host: &str, path: Option<&str>, user: &str) -> Credential {
        Credential::new(
            target(host, path),
            user,
            Secret::new(format!("{host}{path:?}{user}")),
        )
    }

    fn query(host: &str, path: Option<&str>, user: Option<&str>) -> Query {
        Query {
            target: target(host, path),
            username: user.map(str::to_owned),
            account: Default::default(),
        }
    }

    fn cache_with(entries: &[(&str, Option<&str>, &str)]) -> Cache {
        let mut c = Cache::default();
        c.load_index(Vec::new());
        for (host, path, user) in entries {
            c.remember_stored(cred(host, *path, user));
        }
        c
    }

    fn users(c: &Cache, q: &Query) -> Vec<(Option<String>, String)> {
        c.matches(q).map(|(k, _)| k.clone()).collect()
    }

    fn info(host: &str, path: Option<&str>, user: &str) -> CredentialInfo {
        CredentialInfo {
            target: target(host, path),
            username: user.into(),
            password_expiry_utc: None,
        }
    }

    #[test]
    fn matches_come_by_path_then_user_whatever_the_insertion_order() {
        let c = cache_with(&[
            ("h", Some("b"), "zed"),
            ("h", None, "bob"),
            ("h", Some("a"), "amy"),
            ("h", None, "al"),
            ("other", None, "al"),
        ]);
        let want = [
            (None, "al"),
            (None, "bob"),
            (Some("a"), "amy"),
            (Some("b"), "zed"),
        ]
        .map(|(p, u)| (p.map(str::to_owned), u.to_owned()));
        assert_eq!(users(&c, &query("h", None, None)), want);
        assert_eq!(
            users(&c, &query("h", Some("a"), Some("amy"))),
            [(Some("a".into()), "amy".into())]
        );
        assert_eq!(
            users(&c, &query("h", None, Some("zed"))),
            [(Some("b".into()), "zed".into())]
        );
        let q = Query {
            target: Target {
                protocol: "http".into(),
                ..target("h", None)
            },
            username: None,
            account: Default::default(),
        };
        assert!(users(&c, &q).is_empty());
    }

    #[test]
    fn remember_get_and_remove_keep_one_entry_per_key() {
        let mut c = cache_with(&[("h", None, "u"), ("h", Some("p"), "u")]);
        // The same key again updates, never duplicates.
        let mut again = cred("h", None, "u");
        again.authtype = Some("Bearer".into());
        c.remember_stored(again);
        assert_eq!(c.counts(), (2, 2));
        assert_eq!(
            c.get(&target("h", None), "u").unwrap().extras,
            [ItemKind::Authtype]
        );
        assert!(c.get(&target("h", None), "v").is_none());
        c.remove(&target("h", None), "u");
        assert!(c.get(&target("h", None), "u").is_none());
        assert!(c.get(&target("h", Some("p")), "u").is_some());
        c.remove(&target("h", Some("p")), "u");
        // Emptied hosts and protocols are dropped, not kept as empty maps.
        assert!(c.by_host.is_empty());
        c.remove(&target("h", Some("p")), "u");
    }

    #[test]
    fn lookup_needs_the_keychain_until_the_index_is_loaded() {
        let mut c = Cache::default();
        assert!(matches!(
            c.lookup(&query("h", None, None), 0),
            Lookup::Unknown
        ));
        c.load_index(vec![(info("h", None, "u"), vec![ItemKind::Authtype])]);
        assert!(c.is_loaded());
        // Known but never read: only the keychain has the secret.
        assert!(matches!(
            c.lookup(&query("h", None, None), 0),
            Lookup::Unknown
        ));
        assert!(matches!(
            c.lookup(&query("other", None, None), 0),
            Lookup::Absent
        ));
        c.remember_loaded(cred("h", None, "u"));
        match c.lookup(&query("h", None, None), 0) {
            Lookup::Found(found) => assert_eq!(found, cred("h", None, "u")),
            other => panic!("{other:?}"),
        }
        // A loaded credential keeps the sibling items the index listed.
        assert_eq!(
            c.get(&target("h", None), "u").unwrap().extras,
            [ItemKind::Authtype]
        );
    }

    #[test]
    fn lookup_takes_the_first_usable_match_and_skips_expired_ones() {
        let mut c = cache_with(&[("h", None, "b")]);
        let mut old = cred("h", None, "a");
        old.password_expiry_utc = Some(100);
        c.remember_stored(old.clone());
        // Before its expiry "a" comes first; at or after it, "b" answers.
        match c.lookup(&query("h", None, None), 99) {
            Lookup::Found(found) => assert_eq!(found, old),
            other => panic!("{other:?}"),
        }
        match c.lookup(&query("h", None, None), 100) {
            Lookup::Found(found) => assert_eq!(found.username, "b"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.lookup(&query("h", None, Some("a")), 100),
            Lookup::Absent
        ));
        // An unread match before a cached one sends the get to the keychain: it might be the
        // answer.
        c.load_index(vec![(info("h", None, "0"), Vec::new())]);
        assert!(matches!(
            c.lookup(&query("h", None, None), 0),
            Lookup::Unknown
        ));
        assert!(matches!(
            c.lookup(&query("h", None, Some("b")), 0),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn infos_are_sorted_and_carry_no_secret() {
        let mut c = cache_with(&[("b", None, "u"), ("a", Some("p"), "u"), ("a", None, "z")]);
        let mut expiring = cred("a", None, "y");
        expiring.password_expiry_utc = Some(7);
        c.remember_stored(expiring);
        let infos = c.infos();
        let keys: Vec<_> = infos
            .iter()
            .map(|i| {
                (
                    i.target.host.as_str(),
                    i.target.path.as_deref(),
                    &*i.username,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("a", None, "y"),
                ("a", None, "z"),
                ("a", Some("p"), "u"),
                ("b", None, "u")
            ]
        );
        assert_eq!(infos[0].password_expiry_utc, Some(7));
        assert_eq!(c.counts(), (4, 4));
    }
}
