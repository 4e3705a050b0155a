//! A test-only third store: a directory of files, one per credential (protocol, host, user
//! name), holding the password. It exists to prove the shape of `store.rs`: configured by a
//! `[files.NAME] dir = "…"` section and a `[[route]] store = "files.NAME"`, wired in by
//! `router::other_store`, and run through the same request tests as the keychain and OpenBao
//! (`dispatch::tests::the_same_requests_on_every_store`). Not for secrets: nothing here is
//! protected beyond the directory's mode.

use std::path::PathBuf;

use wbl_proto::{Credential, CredentialInfo, Query, Secret, Target};

use super::store::{Served, Store, StoreError, StoreFuture, Stored};

/// The kind of store, as a route names it (`files.NAME`).
pub const KIND: &str = "files";

/// A directory of files.
pub struct FilesStore {
    dir: PathBuf,
    /// `files.NAME`, as the route names it (for messages and `wbl status`).
    name: String,
}

/// A file's name: the hex of `protocol \0 host \0 user`, so that any bytes are safe and the
/// files of one host share a prefix.
fn file_name(target: &Target, user: &str) -> String {
    hex(&format!("{}\0{}\0{user}", target.protocol, target.host))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl FilesStore {
    pub fn new(dir: PathBuf, name: &str) -> FilesStore {
        FilesStore {
            dir,
            name: name.to_owned(),
        }
    }

    fn failed(&self, e: std::io::Error) -> StoreError {
        StoreError::Failed {
            store: self.name.clone(),
            message: format!("{} ({}): {e}", self.name, self.dir.display()),
        }
    }

    /// Every (protocol, host, user name) stored.
    fn entries(&self) -> Result<Vec<(Target, String)>, StoreError> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.failed(e)),
        };
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| self.failed(e))?;
            let Some(text) = entry.file_name().to_str().and_then(unhex) else {
                continue;
            };
            let mut parts = text.splitn(3, '\0');
            if let (Some(p), Some(h), Some(u)) = (parts.next(), parts.next(), parts.next()) {
                out.push((Target::new(p, h), u.to_owned()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The user names stored for `query`'s host that it matches.
    fn matching(&self, query: &Query) -> Result<Vec<String>, StoreError> {
        let host = Target::new(query.target.protocol.clone(), query.target.host.clone());
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(t, u)| *t == host && query.username.as_ref().is_none_or(|q| q == u))
            .map(|(_, u)| u)
            .collect())
    }

    async fn get_file(&self, query: &Query) -> Result<Option<Credential>, StoreError> {
        let Some(user) = self.matching(query)?.into_iter().next() else {
            return Ok(None);
        };
        let path = self.dir.join(file_name(&query.target, &user));
        let password = std::fs::read_to_string(path).map_err(|e| self.failed(e))?;
        let target = Target::new(query.target.protocol.clone(), query.target.host.clone());
        Ok(Some(Credential::new(target, user, Secret::from(password))))
    }

    async fn store_file(&self, cred: Credential) -> Result<Stored, StoreError> {
        if cred.target.host.is_empty() || cred.target.protocol.is_empty() {
            return Err(StoreError::NoTarget);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| self.failed(e))?;
        let path = self.dir.join(file_name(&cred.target, &cred.username));
        std::fs::write(path, cred.password.expose()).map_err(|e| self.failed(e))?;
        Ok(Stored { persistent: true })
    }

    async fn erase_files(&self, query: &Query) -> Result<u32, StoreError> {
        let mut count = 0;
        for user in self.matching(query)? {
            let path = self.dir.join(file_name(&query.target, &user));
            std::fs::remove_file(path).map_err(|e| self.failed(e))?;
            count += 1;
        }
        Ok(count)
    }
}

impl Store for FilesStore {
    fn get<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async move {
            let query = super::store::single_account(query, &self.name)?;
            self.get_file(&query).await
        })
    }

    fn store(&self, cred: Credential) -> StoreFuture<'_, Stored> {
        Box::pin(self.store_file(cred))
    }

    fn erase<'a>(&'a self, query: &'a Query) -> StoreFuture<'a, u32> {
        Box::pin(async move {
            let query = super::store::single_account(query, &self.name)?;
            self.erase_files(&query).await
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<CredentialInfo>> {
        let listed = self.entries().map(|entries| {
            entries
                .into_iter()
                .map(|(target, username)| CredentialInfo {
                    target,
                    username,
                    password_expiry_utc: None,
                })
                .collect()
        });
        Box::pin(std::future::ready(listed))
    }

    fn describe(&self) -> Served {
        Served {
            kind: KIND.into(),
            detail: Some(format!("`{}` {}", self.name, self.dir.display())),
        }
    }
}
