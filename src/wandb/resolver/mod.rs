//! The one place that knows where a W&B key can be, and which key the SDK (and `wbl login`)
//! would use: `WANDB_API_KEY` (and `WANDB_IDENTITY_TOKEN_FILE`), wbl's keychain, `api_key` in
//! the two settings files (workspace over global), and every netrc file the SDK reads
//! (`$NETRC`, `~/.netrc`, `~/_netrc`) — for every W&B host in play: the default, `base_url`,
//! `WANDB_BASE_URL`, and the other address of a Forge-served deployment (`api.wandb.ai` ⇄
//! `api.forge.coreweave.com`). `login`, `status`, `token`, `exec`, `logout`, `migrate`, the git
//! helper and `doctor` all ask it; none of them lists these places itself.
//!
//! One job per submodule: `env` (the environment, read once), `settings_files` (the two
//! settings files), `netrc_files` (which netrc files, and what the SDK reads from them),
//! `stored` (a host's keychain entries and the rule for asking), `inventory` (every plaintext
//! copy, and the warning about one). This file ties them: the default host, the known hosts,
//! and [`Resolver::resolve`] — a pure function of the environment, the files and the
//! keychain's answer, which the caller fetches ([`keychain_key`]), so this module needs no
//! agent connection and is tested in-process.
//!
//! Reading never fails on a bad file: like the SDK, an unreadable settings or netrc file is a
//! warning (or a note in the inventory) and counts as empty.

use std::path::PathBuf;

use wbl_proto::Secret;

use crate::wandb::host::{FORGE_BASE_URL, HostError, HostUrl};

mod env;
mod inventory;
mod netrc_files;
mod settings_files;
mod stored;
#[cfg(test)]
mod tests;

pub use env::WandbEnv;
pub use inventory::{Inventory, Note, Place, PlainKey, PlainKind};
pub use netrc_files::NetrcFile;
pub use settings_files::{LoadedFile, Scope, SettingsFiles};
pub use stored::{
    Lookup, WANDB_USER, keychain_alias, keychain_hosts, keychain_key, keychain_query,
    keychain_target,
};

/// Where a default host came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrigin {
    Env,
    Settings(PathBuf),
    Default,
}

/// Where a resolved key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `WANDB_API_KEY`.
    Env,
    /// `WANDB_IDENTITY_TOKEN_FILE` (no API key at all).
    IdentityTokenFile(String),
    /// wbl's keychain, stored for this address (the host asked for, or its other address).
    Keychain { stored_for: HostUrl },
    /// `api_key` in a settings file.
    Settings { path: PathBuf },
    /// An entry of the netrc file the SDK reads (`machine` `None`: the `default` entry).
    Netrc {
        path: PathBuf,
        machine: Option<String>,
    },
}

impl Source {
    /// `env`, `identity_token_file`, `keychain`, `settings`, `netrc`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Env => "env",
            Source::IdentityTokenFile(_) => "identity_token_file",
            Source::Keychain { .. } => "keychain",
            Source::Settings { .. } => "settings",
            Source::Netrc { .. } => "netrc",
        }
    }

    /// Where exactly, in words: `WANDB_API_KEY`, `/home/u/.netrc (machine api.wandb.ai)`.
    pub fn detail(&self) -> String {
        match self {
            Source::Env => "WANDB_API_KEY".to_owned(),
            Source::IdentityTokenFile(f) => format!("WANDB_IDENTITY_TOKEN_FILE {f}"),
            Source::Keychain { stored_for } => format!("stored for {stored_for}"),
            Source::Settings { path } => format!("{} (api_key)", path.display()),
            Source::Netrc { path, machine } => match machine {
                Some(m) => format!("{} (machine {m})", path.display()),
                None => format!("{} (default entry)", path.display()),
            },
        }
    }
}

/// The key for a host and where it comes from. `key` is `None` only for an identity token.
#[derive(Debug)]
pub struct Resolved {
    source: Source,
    key: Option<Secret>,
}

impl Resolved {
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// `None` only for an identity token.
    pub fn key(&self) -> Option<&Secret> {
        self.key.as_ref()
    }

    pub fn into_parts(self) -> (Source, Option<Secret>) {
        (self.source, self.key)
    }
}

fn push_host(hosts: &mut Vec<HostUrl>, h: HostUrl) {
    if !hosts
        .iter()
        .any(|x| x.scheme().eq_ignore_ascii_case(h.scheme()) && x.netloc() == h.netloc())
    {
        hosts.push(h);
    }
}

/// `hosts` and, after each, the other address(es) of the same Forge-served deployment (the
/// keychain alias and the SDK's netrc fallback), without duplicates.
pub fn with_aliases(hosts: &[HostUrl]) -> Vec<HostUrl> {
    let mut out = Vec::new();
    for h in hosts {
        push_host(&mut out, h.clone());
        if let Some(a) = h.forge_alias() {
            push_host(&mut out, a);
        }
        if let Some(u) = h.forge_upstream() {
            push_host(&mut out, u);
        }
    }
    out
}

/// The environment, the settings files and the rules that tie them together.
#[derive(Debug)]
pub struct Resolver {
    env: WandbEnv,
    settings: SettingsFiles,
}

impl Resolver {
    /// Reads the process environment and the settings files.
    pub fn from_env() -> anyhow::Result<Resolver> {
        Ok(Resolver::load(WandbEnv::from_env()?))
    }

    /// Loads the settings files for `env`.
    pub fn load(env: WandbEnv) -> Resolver {
        let settings = SettingsFiles::load(&env);
        Resolver { env, settings }
    }

    pub fn env(&self) -> &WandbEnv {
        &self.env
    }

    pub fn settings(&self) -> &SettingsFiles {
        &self.settings
    }

    /// The settings files, to edit (`wbl login`'s `base_url`).
    pub fn settings_mut(&mut self) -> &mut SettingsFiles {
        &mut self.settings
    }

    /// Problems met reading the settings files (to print as warnings).
    pub fn warnings(&self) -> &[String] {
        self.settings.warnings()
    }

    /// The host the SDK talks to when none is given on the command line: `WANDB_BASE_URL`,
    /// else `base_url` from the settings files, else the W&B cloud (wbl's default; see
    /// docs/login.md for the SDK's Forge default). A bad value names where it came from.
    pub fn default_host(&self) -> Result<(HostUrl, HostOrigin), String> {
        if let Some(u) = &self.env.base_url {
            return HostUrl::parse(u)
                .map(|h| (h, HostOrigin::Env))
                .map_err(|e| format!("WANDB_BASE_URL: {e}"));
        }
        if let Some((u, path)) = self.settings.get("base_url") {
            return HostUrl::parse(u)
                .map(|h| (h, HostOrigin::Settings(path.to_path_buf())))
                .map_err(|e| format!("base_url in {}: {e}", path.display()));
        }
        Ok((HostUrl::cloud(), HostOrigin::Default))
    }

    /// `--host` (a URL or a bare host name, meaning https) or the default host.
    pub fn pick_host(&self, flag: Option<&str>) -> anyhow::Result<HostUrl> {
        match flag {
            Some(f) => {
                Ok(HostUrl::parse_host_or_url(f).map_err(|e: HostError| anyhow::anyhow!(e))?)
            }
            None => self
                .default_host()
                .map(|(h, _)| h)
                .map_err(|e| anyhow::anyhow!(e)),
        }
    }

    /// The hosts named by `WANDB_BASE_URL` and the `base_url` of each settings file (the
    /// valid ones).
    pub fn named_hosts(&self) -> Vec<HostUrl> {
        let mut out: Vec<HostUrl> = self
            .env
            .base_url
            .as_deref()
            .and_then(|u| HostUrl::parse(u).ok())
            .into_iter()
            .collect();
        for f in self.settings.files() {
            out.extend(f.get("base_url").and_then(|u| HostUrl::parse(u).ok()));
        }
        out
    }

    /// Every W&B host a key may be kept for: the default host, the W&B cloud and the SDK's
    /// Forge default, `WANDB_BASE_URL`, the `base_url` of each settings file, and the other
    /// address of each Forge-served one. Values that are not valid hosts are notes.
    pub fn known_hosts(&self) -> (Vec<HostUrl>, Vec<Note>) {
        let mut hosts = Vec::new();
        let mut notes = Vec::new();
        if let Ok((h, _)) = self.default_host() {
            hosts.push(h);
        }
        hosts.push(HostUrl::cloud());
        if let Ok(f) = HostUrl::parse(FORGE_BASE_URL) {
            hosts.push(f);
        }
        if let Some(raw) = &self.env.base_url {
            match HostUrl::parse(raw) {
                Ok(h) => hosts.push(h),
                Err(e) => notes.push(Note {
                    about: None,
                    text: format!("WANDB_BASE_URL is not a valid host ({e}); ignored"),
                }),
            }
        }
        for f in self.settings.files() {
            if let Some(raw) = f.get("base_url") {
                match HostUrl::parse(raw) {
                    Ok(h) => hosts.push(h),
                    Err(e) => notes.push(Note {
                        about: Some(PlainKind::Settings),
                        text: format!(
                            "base_url in {} is not a valid host ({e}); ignored",
                            f.path().display()
                        ),
                    }),
                }
            }
        }
        (with_aliases(&hosts), notes)
    }

    /// Every netrc file the SDK may read: the one it reads now first, then the others of
    /// `$NETRC`, `~/.netrc`, `~/_netrc` (each once).
    pub fn netrc_files(&self) -> Vec<NetrcFile> {
        netrc_files::netrc_files(&self.env)
    }

    fn netrc_key(&self, host: &HostUrl) -> netrc_files::NetrcFind {
        netrc_files::netrc_key(&self.env, host)
    }

    /// Step 1 of [`Resolver::resolve`], which needs no keychain: `WANDB_API_KEY` or
    /// `WANDB_IDENTITY_TOKEN_FILE` (both set is an error, as in the SDK). A caller asks the
    /// keychain only when this is `None`.
    pub fn env_key(&self) -> anyhow::Result<Option<Resolved>> {
        if self.env.api_key.is_some() && self.env.identity_token_file.is_some() {
            anyhow::bail!(
                "Both WANDB_API_KEY and WANDB_IDENTITY_TOKEN_FILE are set, which is not allowed."
            );
        }
        if let Some(k) = &self.env.api_key {
            return Ok(Some(Resolved {
                source: Source::Env,
                key: Some(k.clone()),
            }));
        }
        Ok(self.env.identity_token_file.as_ref().map(|f| Resolved {
            source: Source::IdentityTokenFile(f.clone()),
            key: None,
        }))
    }

    /// The key `wbl login` (and, without the keychain, the SDK) uses for `host`, in this
    /// order: `WANDB_API_KEY` (or `WANDB_IDENTITY_TOKEN_FILE`), `stored` — the keychain's
    /// key for the host and the address it is stored for ([`keychain_key`]; `None` when it
    /// has none, is not asked, or the host is routed to a store without one) — `api_key` in
    /// the settings files, the netrc file. Reads files only. Netrc warnings go to `warnings`.
    pub fn resolve(
        &self,
        host: &HostUrl,
        stored: Option<(&Secret, &HostUrl)>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Option<Resolved>> {
        if let Some(r) = self.env_key()? {
            return Ok(Some(r));
        }
        if let Some((key, stored_for)) = stored {
            return Ok(Some(Resolved {
                source: Source::Keychain {
                    stored_for: stored_for.clone(),
                },
                key: Some(key.clone()),
            }));
        }
        if let Some((key, path)) = self.settings.get("api_key") {
            return Ok(Some(Resolved {
                source: Source::Settings {
                    path: path.to_path_buf(),
                },
                key: Some(Secret::new(key.to_owned())),
            }));
        }
        let find = self.netrc_key(host);
        warnings.extend(find.warnings);
        if let Some(key) = find.key {
            return Ok(Some(Resolved {
                source: Source::Netrc {
                    path: find.path,
                    machine: find.machine,
                },
                key: Some(key),
            }));
        }
        Ok(None)
    }

    /// Every plaintext W&B key the SDK could read for `hosts` (give [`with_aliases`] or
    /// [`Resolver::known_hosts`]): `api_key` in each settings file (tied to that file's
    /// `base_url`, else the default host) and every netrc entry of every netrc file whose
    /// machine is one of the hosts' netloc — duplicates included, in file order.
    pub fn inventory(&self, hosts: &[HostUrl]) -> Inventory {
        inventory::inventory(self, hosts)
    }
}
