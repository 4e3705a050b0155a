//! The one place that knows where a W&B key can be, and which key the SDK (and `wbl login`)
//! would use: `WANDB_API_KEY` (and `WANDB_IDENTITY_TOKEN_FILE`), wbl's keychain, `api_key` in
//! the two settings files (workspace over global), and every netrc file the SDK reads
//! (`$NETRC`, `~/.netrc`, `~/_netrc`) — for every W&B host in play: the default, `base_url`,
//! `WANDB_BASE_URL`, and the other address of a Forge-served deployment (`api.wandb.ai` ⇄
//! `api.forge.coreweave.com`). `login`, `status`, `token`, `exec`, `logout`, `migrate`, the git
//! helper and `doctor` all ask it; none of them lists these places itself.
//!
//! Reading never fails on a bad file: like the SDK, an unreadable settings or netrc file is a
//! warning (or a note in the inventory) and counts as empty. The keychain is reached through
//! the small [`Keychain`] trait, so this module needs no agent connection and is tested
//! in-process.

use std::path::{Path, PathBuf};

use wbl_proto::{Account, Credential, Query, Secret, Target};
use zeroize::Zeroizing;

use super::apikey::check_api_key;
use super::host::{FORGE_BASE_URL, HostError, HostUrl};
use super::netrc::{Netrc, netrc_path};
use super::settings::{SettingsFile, global_settings_path, workspace_settings_path};

/// The user name W&B keys are stored under (the SDK authenticates as `api:KEY`).
pub const WANDB_USER: &str = "api";

/// The keychain target of a W&B host: its scheme and `host[:port]`, as netrc names it.
pub fn keychain_target(host: &HostUrl) -> Target {
    Target::new(host.scheme(), host.netloc())
}

/// The keychain query for a host's W&B key of `account` (exactly this address).
pub fn keychain_query(host: &HostUrl, account: &Account) -> Query {
    Query {
        target: keychain_target(host),
        username: Some(WANDB_USER.to_owned()),
        account: account.clone(),
    }
}

/// The addresses whose keychain entry answers for `host`, in the order they are tried: the
/// host itself, then the other address of the same Forge-served deployment.
pub fn keychain_hosts(host: &HostUrl) -> Vec<HostUrl> {
    let mut out = vec![host.clone()];
    out.extend(host.forge_alias());
    out
}

/// [`keychain_hosts`]'s second address for a stored target (a git request's): the other
/// address of its Forge-served deployment, if any. Works on the target as it is, so the
/// helper programs need no URL parser.
pub fn keychain_alias(target: &Target) -> Option<Target> {
    let path = target.path.as_deref().unwrap_or("");
    crate::wandb::host::forge_alias_host(&target.protocol, &target.host, path)
        .map(|host| Target::new("https", host))
}

/// The answer of wbl's keychain (the agent: the OS keychain, or the store a host is routed to)
/// to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T = Credential> {
    Found(T),
    /// Nothing is stored for it: another address of the same deployment may answer.
    Missing,
    /// The host is routed to a store (OpenBao) that has no key for the query; the message
    /// names the route and the user name asked for. A routed host is answered by its store
    /// only: no other address is asked for it.
    RoutedMiss(String),
}

/// Lookups in wbl's keychain (the agent implements it; tests use a map).
pub trait Keychain {
    /// What is stored for exactly this query.
    fn get(&mut self, query: Query) -> anyhow::Result<Lookup>;
}

/// The W&B key for `host` in the keychain: stored for the host itself or, when the host is
/// not routed to a store, for its other address (see [`keychain_hosts`]). Found: the
/// credential and the address it is stored for.
pub fn keychain_key(
    kc: &mut dyn Keychain,
    host: &HostUrl,
    account: &Account,
) -> anyhow::Result<Lookup<(Credential, HostUrl)>> {
    for (i, h) in keychain_hosts(host).into_iter().enumerate() {
        let q = keychain_query(&h, account);
        let expected = match account {
            Account::Any => Some(WANDB_USER),
            Account::Named(name) => Some(wbl_proto::account_user(name)),
            Account::Only => None,
        };
        match kc.get(q.clone())? {
            Lookup::Found(c)
                if c.target == q.target && expected.is_none_or(|u| c.username == u) =>
            {
                return Ok(Lookup::Found((c, h)));
            }
            // The host itself is routed: its store's miss is the answer.
            Lookup::RoutedMiss(why) if i == 0 => return Ok(Lookup::RoutedMiss(why)),
            Lookup::Found(_) | Lookup::Missing | Lookup::RoutedMiss(_) => {}
        }
    }
    Ok(Lookup::Missing)
}

/// The environment variables and directories the SDK consults, read once.
#[derive(Debug, Clone)]
pub struct WandbEnv {
    /// `~`.
    pub home: PathBuf,
    /// `WANDB_API_KEY`, when set and non-empty.
    pub api_key: Option<Secret>,
    /// `WANDB_IDENTITY_TOKEN_FILE`, when set and non-empty.
    pub identity_token_file: Option<String>,
    /// `WANDB_BASE_URL`, when set and non-empty.
    pub base_url: Option<String>,
    /// `WANDB_APP_URL`, when set and non-empty (the web app, for the authorize link).
    pub app_url: Option<String>,
    /// `WANDB_CONFIG_DIR`, when set and non-empty.
    pub config_dir: Option<String>,
    /// `WANDB_DIR`, else the current directory: where `wandb/settings` is looked for.
    pub root_dir: PathBuf,
    /// `NETRC`, when set and non-empty.
    pub netrc: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl WandbEnv {
    /// Reads the process environment. Fails only when there is no home directory at all.
    pub fn from_env() -> anyhow::Result<WandbEnv> {
        let home = crate::dirs::home_dir().ok_or_else(|| {
            anyhow::anyhow!("cannot find your home directory; set HOME and try again")
        })?;
        let root_dir = match var("WANDB_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Ok(WandbEnv {
            home,
            api_key: var("WANDB_API_KEY").map(Secret::new),
            identity_token_file: var("WANDB_IDENTITY_TOKEN_FILE"),
            base_url: var("WANDB_BASE_URL"),
            app_url: var("WANDB_APP_URL"),
            config_dir: var("WANDB_CONFIG_DIR"),
            root_dir,
            netrc: var("NETRC"),
        })
    }

    /// The netrc file the SDK would use (it need not exist).
    pub fn netrc_path(&self) -> PathBuf {
        netrc_path(self.netrc.as_deref(), &self.home, cfg!(windows))
    }
}

/// Which settings file: the per-user ("system", "global") one or the workspace one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Workspace,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Workspace => "workspace",
        }
    }
}

/// One settings file as loaded.
#[derive(Debug)]
pub struct Loaded {
    pub scope: Scope,
    pub path: PathBuf,
    pub file: SettingsFile,
    /// The file exists on disk.
    pub exists: bool,
    /// The file exists but could not be read or parsed: it counts as empty and wbl never
    /// rewrites it (the SDK would, losing its contents).
    pub broken: bool,
}

impl Loaded {
    fn load(scope: Scope, path: PathBuf, warnings: &mut Vec<String>) -> Loaded {
        let exists = path.exists();
        match SettingsFile::load(&path) {
            Ok(file) => Loaded {
                scope,
                path,
                file,
                exists,
                broken: false,
            },
            Err(e) => {
                warnings.push(e.to_string());
                Loaded {
                    scope,
                    path,
                    file: SettingsFile::default(),
                    exists,
                    broken: true,
                }
            }
        }
    }

    /// A non-empty value of `key` in this file's `[default]` section.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.file.get(key).filter(|v| !v.is_empty())
    }
}

/// The two settings files, global first.
#[derive(Debug)]
pub struct Settings {
    pub global: Loaded,
    pub workspace: Loaded,
    /// Problems met while reading (to print as warnings).
    pub warnings: Vec<String>,
}

impl Settings {
    /// Loads `$WANDB_CONFIG_DIR/settings` (or `~/.config/wandb/settings`) and
    /// `<WANDB_DIR or cwd>/wandb/settings`.
    pub fn load(env: &WandbEnv) -> Settings {
        let mut warnings = Vec::new();
        let global = Loaded::load(
            Scope::Global,
            global_settings_path(env.config_dir.as_deref(), &env.home),
            &mut warnings,
        );
        let workspace = Loaded::load(
            Scope::Workspace,
            workspace_settings_path(&env.root_dir),
            &mut warnings,
        );
        Settings {
            global,
            workspace,
            warnings,
        }
    }

    /// Both files, global first.
    pub fn files(&self) -> [&Loaded; 2] {
        [&self.global, &self.workspace]
    }

    /// Both files, mutable, global first.
    pub fn files_mut(&mut self) -> [&mut Loaded; 2] {
        [&mut self.global, &mut self.workspace]
    }

    /// The value of `key`: the workspace file overrides the global one (empty values are
    /// absent). Returns the value and the file it came from.
    pub fn get(&self, key: &str) -> Option<(&str, &Path)> {
        self.workspace
            .get(key)
            .map(|v| (v, self.workspace.path.as_path()))
            .or_else(|| {
                self.global
                    .get(key)
                    .map(|v| (v, self.global.path.as_path()))
            })
    }

    /// Files the SDK would announce with "Loading settings from": existing, with settings.
    pub fn in_use(&self) -> Vec<&Path> {
        self.files()
            .into_iter()
            .filter(|f| f.exists && !f.file.items().is_empty())
            .map(|f| f.path.as_path())
            .collect()
    }

    /// Every file holding a non-empty `api_key` (a plaintext copy of a key).
    pub fn api_key_files(&self) -> Vec<&Loaded> {
        self.files()
            .into_iter()
            .filter(|f| f.get("api_key").is_some())
            .collect()
    }
}

/// Where a default host came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrigin {
    Env,
    Settings(PathBuf),
    Default,
}

/// One netrc file the SDK may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetrcFile {
    pub path: PathBuf,
    /// The SDK reads this one now (with this environment); the others it reads when `NETRC`
    /// is unset or the file before it is removed.
    pub sdk_reads: bool,
}

/// What the netrc file the SDK reads gives for one host.
#[derive(Debug)]
pub struct NetrcFind {
    /// The file read (or that would be read).
    pub path: PathBuf,
    /// The key, when an entry with a password exists.
    pub key: Option<Secret>,
    /// The entry's machine; `None` for the `default` entry.
    pub machine: Option<String>,
    /// Problems to print as warnings (the SDK's texts).
    pub warnings: Vec<String>,
}

impl NetrcFind {
    /// The key came from the `default` entry, not a `machine` entry.
    pub fn from_default(&self) -> bool {
        self.key.is_some() && self.machine.is_none()
    }
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
    pub source: Source,
    pub key: Option<Secret>,
}

/// Which kind of place a plaintext key (or a note) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainKind {
    Netrc,
    Settings,
}

/// A plaintext place of a W&B key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Settings {
        path: PathBuf,
    },
    Netrc {
        path: PathBuf,
        machine: String,
        /// 1-based line of the entry.
        line: usize,
    },
}

impl Place {
    pub fn kind(&self) -> PlainKind {
        match self {
            Place::Settings { .. } => PlainKind::Settings,
            Place::Netrc { .. } => PlainKind::Netrc,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Place::Settings { path } | Place::Netrc { path, .. } => path,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Settings { path } => write!(f, "{} (api_key)", path.display()),
            Place::Netrc {
                path,
                machine,
                line,
            } => write!(f, "{} (machine {machine}, line {line})", path.display()),
        }
    }
}

/// A plaintext W&B key the SDK could read.
#[derive(Debug)]
pub struct PlainKey {
    pub place: Place,
    /// The host it is used with.
    pub host: HostUrl,
    pub key: Secret,
    /// The key passes the SDK's format check (else the SDK refuses it, and wbl leaves it).
    pub valid: bool,
    /// A later entry for the same machine in the same file exists: Python's netrc (the SDK)
    /// reads the last one, not this.
    pub shadowed: bool,
    /// The file's hard-link count: above 1, removing the key from this name leaves it in
    /// the others.
    pub links: u64,
    /// The file is one the SDK reads with this environment (a settings file, or the netrc
    /// file it picks); the other netrc files it reads when `NETRC` is unset or the file
    /// before them is gone.
    pub read_now: bool,
}

/// Something about plaintext keys that is not a key to move: a file that cannot be read, a
/// `default` entry, a bad `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `None`: about the environment.
    pub about: Option<PlainKind>,
    pub text: String,
}

/// Every plaintext W&B key for some hosts, with notes and the files looked in.
#[derive(Debug, Default)]
pub struct Inventory {
    pub keys: Vec<PlainKey>,
    pub notes: Vec<Note>,
    pub looked_in: Vec<PathBuf>,
}

impl Inventory {
    fn note(&mut self, about: PlainKind, text: String) {
        self.notes.push(Note {
            about: Some(about),
            text,
        });
    }
}

/// Whether two paths name the same file (or are equal when they do not exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The number of hard links of a file (1 where the platform does not say).
pub fn link_count(path: &Path) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| m.nlink()).unwrap_or(1)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        1
    }
}

/// Reads a file that may hold secrets; `None` when it does not exist.
pub fn read_secret_file(path: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow::anyhow!("{} is not valid UTF-8", path.display()))?;
            Ok(Some(Zeroizing::new(text.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
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
    pub env: WandbEnv,
    pub settings: Settings,
}

impl Resolver {
    /// Reads the process environment and the settings files.
    pub fn from_env() -> anyhow::Result<Resolver> {
        Ok(Resolver::load(WandbEnv::from_env()?))
    }

    /// Loads the settings files for `env`.
    pub fn load(env: WandbEnv) -> Resolver {
        let settings = Settings::load(&env);
        Resolver { env, settings }
    }

    /// Problems met reading the settings files (to print as warnings).
    pub fn warnings(&self) -> &[String] {
        &self.settings.warnings
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
                            f.path.display()
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
        let sdk = self.env.netrc_path();
        let mut out = vec![NetrcFile {
            path: sdk,
            sdk_reads: true,
        }];
        let mut others = Vec::new();
        if self.env.netrc.is_some() {
            others.push(netrc_path(
                self.env.netrc.as_deref(),
                &self.env.home,
                cfg!(windows),
            ));
        }
        others.push(self.env.home.join(".netrc"));
        others.push(self.env.home.join("_netrc"));
        for p in others {
            if !out.iter().any(|f| same_file(&f.path, &p)) {
                out.push(NetrcFile {
                    path: p,
                    sdk_reads: false,
                });
            }
        }
        out
    }

    /// The netrc key the SDK reads for `host`: the entry for its netloc (the last one if
    /// repeated), else the `default` entry, else — for a Forge address — the entry of the
    /// W&B host behind it; then (wbl) the entry of the host's other address. A missing file is silence; a broken file is a warning and counts
    /// as absent; an entry with an empty password is a warning.
    pub fn netrc_key(&self, host: &HostUrl) -> NetrcFind {
        let path = self.env.netrc_path();
        let mut find = NetrcFind {
            path: path.clone(),
            key: None,
            machine: None,
            warnings: Vec::new(),
        };
        let text = match std::fs::read(&path) {
            Ok(bytes) => Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return find,
            Err(e) => {
                find.warnings.push(format!(
                    "Failed to read netrc file at {}: {e}",
                    path.display()
                ));
                return find;
            }
        };
        let netrc = match Netrc::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                find.warnings.push(format!(
                    "Failed to read netrc file at {}, {e}",
                    path.display()
                ));
                return find;
            }
        };
        // wbl's addition after the SDK's chain: the entry of the other address of the same
        // deployment (a key the SDK 0.31 wrote for Forge answers for `api.wandb.ai` too).
        let entry = netrc
            .lookup(host.netloc())
            .or_else(|| {
                host.forge_upstream()
                    .and_then(|up| netrc.lookup(up.netloc()))
            })
            .or_else(|| {
                host.forge_alias()
                    .and_then(|a| netrc.lookup_exact(a.netloc()))
            });
        if let Some(entry) = entry {
            if entry.password.is_empty() {
                find.warnings.push(format!(
                    "Found entry for machine {} with no API key at {}",
                    super::host::py_repr(host.netloc()),
                    path.display()
                ));
            } else {
                find.machine = entry.machine.clone();
                find.key = Some(Secret::new(entry.password.to_string()));
            }
        }
        find
    }

    /// `api_key` from the settings files as the SDK reads it (workspace over global).
    pub fn settings_key(&self) -> Option<(Secret, PathBuf)> {
        self.settings
            .get("api_key")
            .map(|(v, p)| (Secret::new(v.to_owned()), p.to_path_buf()))
    }

    /// The key `wbl login` (and, without the keychain, the SDK) uses for `host`, in this
    /// order: `WANDB_API_KEY` (or `WANDB_IDENTITY_TOKEN_FILE`), the keychain (when given),
    /// `api_key` in the settings files, the netrc file. Netrc warnings go to `warnings`.
    pub fn resolve(
        &self,
        host: &HostUrl,
        keychain: Option<(&mut dyn Keychain, &Account)>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Option<Resolved>> {
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
        if let Some(f) = &self.env.identity_token_file {
            return Ok(Some(Resolved {
                source: Source::IdentityTokenFile(f.clone()),
                key: None,
            }));
        }
        // A routed host whose store has no key: the next source, as for a key not stored.
        if let Some((kc, account)) = keychain
            && let Lookup::Found((cred, stored_for)) = keychain_key(kc, host, account)?
        {
            return Ok(Some(Resolved {
                source: Source::Keychain { stored_for },
                key: Some(cred.password),
            }));
        }
        if let Some((key, path)) = self.settings_key() {
            return Ok(Some(Resolved {
                source: Source::Settings { path },
                key: Some(key),
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
        let mut inv = Inventory::default();
        let selected = |h: &HostUrl| hosts.iter().any(|x| x.netloc() == h.netloc());

        // Settings files: workspace first (it overrides the global one).
        let default = self.default_host();
        for f in [&self.settings.workspace, &self.settings.global] {
            if f.exists {
                inv.looked_in.push(f.path.clone());
            }
            let Some(key) = f.get("api_key") else {
                continue;
            };
            let host = match f.get("base_url").map(HostUrl::parse) {
                Some(Ok(h)) => h,
                Some(Err(e)) => {
                    inv.note(
                        PlainKind::Settings,
                        format!(
                            "api_key in {} is left alone: its base_url is not a valid host ({e})",
                            f.path.display()
                        ),
                    );
                    continue;
                }
                None => match &default {
                    Ok((h, _)) => h.clone(),
                    Err(e) => {
                        inv.note(
                            PlainKind::Settings,
                            format!(
                                "api_key in {} is left alone: the host it is for is unclear ({e})",
                                f.path.display()
                            ),
                        );
                        continue;
                    }
                },
            };
            let place = Place::Settings {
                path: f.path.clone(),
            };
            if !selected(&host) {
                inv.note(
                    PlainKind::Settings,
                    format!(
                        "{place} is for {host}, which is not among the selected hosts; left alone"
                    ),
                );
                continue;
            }
            inv.keys.push(PlainKey {
                links: link_count(&f.path),
                place,
                host,
                valid: check_api_key(key).is_none(),
                key: Secret::new(key.to_owned()),
                shadowed: false,
                read_now: true,
            });
        }

        for file in self.netrc_files() {
            let read_now = file.sdk_reads;
            let path = file.path;
            let text = match read_secret_file(&path) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    inv.note(PlainKind::Netrc, format!("{e:#}; left alone"));
                    continue;
                }
            };
            inv.looked_in.push(path.clone());
            let netrc = match Netrc::parse(&text) {
                Ok(n) => n,
                Err(e) => {
                    inv.note(
                        PlainKind::Netrc,
                        format!(
                            "cannot read {}: {e}; left alone (fix the file and run `wbl migrate` again)",
                            path.display()
                        ),
                    );
                    continue;
                }
            };
            let links = link_count(&path);
            let entries = netrc.entries();
            for (i, e) in entries.iter().enumerate() {
                let Some(machine) = e.machine.as_deref() else {
                    if !e.password.is_empty() {
                        inv.note(
                            PlainKind::Netrc,
                            format!(
                                "{} has a `default` entry (line {}), which the SDK uses for a host without its own entry; left alone",
                                path.display(),
                                e.line
                            ),
                        );
                    }
                    continue;
                };
                let Some(host) = hosts.iter().find(|h| h.netloc() == machine) else {
                    continue;
                };
                if e.password.is_empty() {
                    continue;
                }
                let shadowed = entries[i + 1..]
                    .iter()
                    .any(|later| later.machine.as_deref() == Some(machine));
                inv.keys.push(PlainKey {
                    place: Place::Netrc {
                        path: path.clone(),
                        machine: machine.to_owned(),
                        line: e.line,
                    },
                    host: host.clone(),
                    valid: check_api_key(&e.password).is_none(),
                    key: Secret::new(e.password.to_string()),
                    shadowed,
                    links,
                    read_now,
                });
            }
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_stored_target_has_the_same_alias_as_its_host_url() {
        let alias = |t: Target| keychain_alias(&t).map(|a| a.to_string());
        for url in [
            "https://api.wandb.ai",
            "https://api.forge.coreweave.com",
            "https://api.qa.wandb.ai",
            "https://API.forge.coreweave.com",
            "https://api.wandb.ai:443",
            "https://example.com",
        ] {
            let host = HostUrl::parse(url).unwrap();
            let by_url = keychain_hosts(&host)
                .get(1)
                .map(|h| keychain_target(h).to_string());
            let target = keychain_target(&host);
            assert_eq!(alias(target), by_url, "{url}");
        }
        assert_eq!(
            alias(Target::new("https", "api.wandb.ai")).as_deref(),
            Some("https://api.forge.coreweave.com")
        );
        assert_eq!(alias(Target::new("http", "api.wandb.ai")), None);
        let mut with_path = Target::new("https", "api.wandb.ai");
        with_path.path = Some("repo.git".into());
        assert_eq!(alias(with_path), None);
    }

    fn env_in(dir: &Path) -> WandbEnv {
        WandbEnv {
            home: dir.join("home"),
            api_key: None,
            identity_token_file: None,
            base_url: None,
            app_url: None,
            config_dir: None,
            root_dir: dir.join("work"),
            netrc: None,
        }
    }

    fn tmp() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    fn write(p: &Path, text: &str) {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        std::fs::write(p, text).ok();
    }

    fn host(s: &str) -> HostUrl {
        match HostUrl::parse(s) {
            Ok(h) => h,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    /// The keychain as a map from `scheme://netloc` to key.
    #[derive(Default)]
    struct MapKeychain(HashMap<String, String>);

    impl Keychain for MapKeychain {
        fn get(&mut self, q: Query) -> anyhow::Result<Lookup> {
            Ok(match self.0.get(&q.target.to_string()) {
                Some(k) if k == ROUTED_MISS => Lookup::RoutedMiss(format!("{} routed", q.target)),
                Some(k) => Lookup::Found(Credential::new(
                    q.target.clone(),
                    WANDB_USER,
                    Secret::new(k.clone()),
                )),
                None => Lookup::Missing,
            })
        }
    }

    /// A [`MapKeychain`] value: the host is routed to a store that has no key for it.
    const ROUTED_MISS: &str = "<routed miss>";

    #[test]
    fn a_routed_host_is_never_answered_under_its_other_address() {
        let mut kc = MapKeychain::default();
        kc.0.insert("https://api.forge.coreweave.com".into(), K1.into());
        kc.0.insert("https://api.wandb.ai".into(), ROUTED_MISS.into());
        let cloud = host("https://api.wandb.ai");
        assert_eq!(
            keychain_key(&mut kc, &cloud, &Account::Any).unwrap(),
            Lookup::RoutedMiss("https://api.wandb.ai routed".into())
        );
        // Not routed: the other address answers, as before.
        kc.0.remove("https://api.wandb.ai");
        assert!(matches!(
            keychain_key(&mut kc, &cloud, &Account::Any).unwrap(),
            Lookup::Found((c, h)) if c.password.expose() == K1 && h.netloc() == "api.forge.coreweave.com"
        ));
        // The other address routed and missing: a plain miss for this one.
        let mut kc = MapKeychain::default();
        kc.0.insert("https://api.wandb.ai".into(), ROUTED_MISS.into());
        let forge = host("https://api.forge.coreweave.com");
        assert_eq!(
            keychain_key(&mut kc, &forge, &Account::Any).unwrap(),
            Lookup::Missing
        );
    }

    const K1: &str = "1111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222";
    const K3: &str = "3333333333333333333333333333333333333333";

    fn entry(machine: &str, key: &str) -> String {
        format!("machine {machine}\n  login user\n  password {key}\n")
    }

    #[derive(Default)]
    /// One world: files relative to the temp dir (`home/.netrc`, `work/wandb/settings`, …),
    /// environment, keychain; the host asked for; the expected source detail and key.
    struct Case {
        name: &'static str,
        files: Vec<(&'static str, String)>,
        netrc_env: Option<&'static str>,
        api_key_env: Option<&'static str>,
        base_url_env: Option<&'static str>,
        keychain: Vec<(&'static str, &'static str)>,
        host: Option<&'static str>,
        /// (source name, detail relative to the temp dir, key)
        want: Option<(&'static str, String, &'static str)>,
    }

    #[test]
    fn resolution_table() {
        let forge = "api.forge.coreweave.com";
        let cases = vec![
            Case {
                name: "nothing anywhere",
                ..Case::default()
            },
            Case {
                name: "env wins over everything",
                files: vec![("home/.netrc", entry("api.wandb.ai", K2))],
                api_key_env: Some(K1),
                keychain: vec![("https://api.wandb.ai", K3)],
                want: Some(("env", "WANDB_API_KEY".into(), K1)),
                ..Case::default()
            },
            Case {
                name: "keychain before settings and netrc",
                files: vec![
                    ("home/.netrc", entry("api.wandb.ai", K2)),
                    (
                        "home/.config/wandb/settings",
                        format!("[default]\napi_key = {K1}\n"),
                    ),
                ],
                keychain: vec![("https://api.wandb.ai", K3)],
                want: Some(("keychain", "stored for https://api.wandb.ai".into(), K3)),
                ..Case::default()
            },
            Case {
                name: "a key stored for Forge answers for the W&B host",
                keychain: vec![("https://api.forge.coreweave.com", K3)],
                want: Some((
                    "keychain",
                    "stored for https://api.forge.coreweave.com".into(),
                    K3,
                )),
                ..Case::default()
            },
            Case {
                name: "a key stored for the W&B host answers for Forge",
                keychain: vec![("https://api.wandb.ai", K3)],
                host: Some("https://forge.coreweave.com/api/wandb"),
                want: Some(("keychain", "stored for https://api.wandb.ai".into(), K3)),
                ..Case::default()
            },
            Case {
                name: "the host's own key before its alias",
                keychain: vec![
                    ("https://api.wandb.ai", K1),
                    ("https://api.forge.coreweave.com", K2),
                ],
                host: Some("https://api.forge.coreweave.com"),
                want: Some((
                    "keychain",
                    "stored for https://api.forge.coreweave.com".into(),
                    K2,
                )),
                ..Case::default()
            },
            Case {
                name: "no alias for another host",
                keychain: vec![("https://api.wandb.ai", K1)],
                host: Some("https://wandb.example"),
                ..Case::default()
            },
            Case {
                name: "workspace settings over global, before netrc",
                files: vec![
                    ("home/.netrc", entry("api.wandb.ai", K3)),
                    (
                        "home/.config/wandb/settings",
                        format!("[default]\napi_key = {K1}\n"),
                    ),
                    (
                        "work/wandb/settings",
                        format!("[default]\napi_key = {K2}\n"),
                    ),
                ],
                want: Some(("settings", "work/wandb/settings (api_key)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "netrc: the last of repeated entries, as Python reads it",
                files: vec![(
                    "home/.netrc",
                    format!("{}{}", entry("api.wandb.ai", K1), entry("api.wandb.ai", K2)),
                )],
                want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "netrc written by SDK 0.31 (Forge) answers for wbl's default host",
                files: vec![("home/.netrc", entry(forge, K1))],
                want: Some(("netrc", format!("home/.netrc (machine {forge})"), K1)),
                ..Case::default()
            },
            Case {
                name: "the host's own entry before its alias's",
                files: vec![(
                    "home/.netrc",
                    format!("{}{}", entry(forge, K1), entry("api.wandb.ai", K2)),
                )],
                want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "Forge host reads its own entry",
                files: vec![("home/.netrc", entry(forge, K1))],
                host: Some("https://api.forge.coreweave.com"),
                want: Some(("netrc", format!("home/.netrc (machine {forge})"), K1)),
                ..Case::default()
            },
            Case {
                name: "Forge host falls back to the W&B host's entry",
                files: vec![("home/.netrc", entry("api.wandb.ai", K1))],
                host: Some("https://api.forge.coreweave.com"),
                want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K1)),
                ..Case::default()
            },
            Case {
                name: "default entry before the Forge fallback, as Python's authenticators",
                files: vec![(
                    "home/.netrc",
                    format!(
                        "{}default login d password {K2}\n",
                        entry("api.wandb.ai", K1)
                    ),
                )],
                host: Some("https://api.forge.coreweave.com"),
                want: Some(("netrc", "home/.netrc (default entry)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "~/_netrc when ~/.netrc does not exist",
                files: vec![("home/_netrc", entry("api.wandb.ai", K1))],
                want: Some(("netrc", "home/_netrc (machine api.wandb.ai)".into(), K1)),
                ..Case::default()
            },
            Case {
                name: "$NETRC wins over ~/.netrc",
                files: vec![
                    ("home/.netrc", entry("api.wandb.ai", K1)),
                    ("n", entry("api.wandb.ai", K2)),
                ],
                netrc_env: Some("n"),
                want: Some(("netrc", "n (machine api.wandb.ai)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "WANDB_BASE_URL picks the host",
                files: vec![(
                    "home/.netrc",
                    format!(
                        "{}{}",
                        entry("api.wandb.ai", K1),
                        entry("h.example:8080", K2)
                    ),
                )],
                base_url_env: Some("http://h.example:8080/"),
                want: Some(("netrc", "home/.netrc (machine h.example:8080)".into(), K2)),
                ..Case::default()
            },
            Case {
                name: "settings base_url picks the host",
                files: vec![
                    (
                        "home/.netrc",
                        format!("{}{}", entry("api.wandb.ai", K1), entry(forge, K2)),
                    ),
                    (
                        "home/.config/wandb/settings",
                        "[default]\nbase_url = https://forge.coreweave.com/api/wandb\n".into(),
                    ),
                ],
                want: Some(("netrc", format!("home/.netrc (machine {forge})"), K2)),
                ..Case::default()
            },
        ];
        for c in cases {
            let d = tmp();
            let mut env = env_in(d.path());
            for (rel, text) in &c.files {
                write(&d.path().join(rel), text);
            }
            env.netrc = c.netrc_env.map(|n| d.path().join(n).display().to_string());
            env.api_key = c.api_key_env.map(Secret::from);
            env.base_url = c.base_url_env.map(str::to_owned);
            let r = Resolver::load(env);
            let h = match r.pick_host(c.host) {
                Ok(h) => h,
                Err(e) => panic!("{}: {e}", c.name),
            };
            let mut kc = MapKeychain::default();
            for (t, k) in &c.keychain {
                kc.0.insert((*t).to_owned(), (*k).to_owned());
            }
            let mut warnings = Vec::new();
            let got = match r.resolve(&h, Some((&mut kc, &Account::Any)), &mut warnings) {
                Ok(g) => g,
                Err(e) => panic!("{}: {e}", c.name),
            };
            let prefix = format!("{}/", d.path().display());
            let got = got.map(|g| {
                (
                    g.source.name(),
                    g.source.detail().replace(&prefix, ""),
                    g.key.map(|k| k.expose().to_owned()).unwrap_or_default(),
                )
            });
            let want = c.want.map(|(s, d, k)| (s, d, k.to_owned()));
            assert_eq!(got, want, "{}", c.name);
            assert!(warnings.is_empty(), "{}: {warnings:?}", c.name);
        }
    }

    #[test]
    fn host_rule_is_one_and_strict() {
        let d = tmp();
        let mut env = env_in(d.path());
        write(
            &env.home.join(".config/wandb/settings"),
            "[default]\nbase_url = https://global.example\n",
        );
        let r = Resolver::load(env.clone());
        assert_eq!(
            r.default_host().map(|(h, _)| h.to_string()),
            Ok("https://global.example".to_owned())
        );
        write(
            &env.root_dir.join("wandb/settings"),
            "[default]\nbase_url = https://local.example/\n",
        );
        let r = Resolver::load(env.clone());
        assert_eq!(
            r.default_host().map(|(h, _)| h.to_string()),
            Ok("https://local.example".to_owned())
        );
        env.base_url = Some("https://env.example".into());
        let r = Resolver::load(env.clone());
        assert_eq!(
            r.default_host().map(|(h, o)| (h.to_string(), o)),
            Ok(("https://env.example".to_owned(), HostOrigin::Env))
        );
        env.base_url = Some("https://wandb.ai".into());
        let r = Resolver::load(env.clone());
        assert_eq!(
            r.default_host().map(|(h, _)| h.to_string()),
            Err("WANDB_BASE_URL: 'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?".to_owned())
        );
        // The inventory ties a settings api_key to a host by the same rule: a bad one leaves
        // it alone (with a note) instead of guessing another host.
        write(
            &env.home.join(".config/wandb/settings"),
            &format!("[default]\napi_key = {K1}\n"),
        );
        let r = Resolver::load(env.clone());
        let (hosts, notes) = r.known_hosts();
        assert!(
            notes
                .iter()
                .any(|n| n.text.starts_with("WANDB_BASE_URL is not a valid host"))
        );
        let inv = r.inventory(&hosts);
        assert!(inv.keys.is_empty());
        assert!(
            inv.notes
                .iter()
                .any(|n| n.text.contains("the host it is for is unclear")),
            "{:?}",
            inv.notes
        );
    }

    #[test]
    fn defaults_to_cloud_and_broken_files_warn() {
        let d = tmp();
        let env = env_in(d.path());
        write(&env.home.join(".config/wandb/settings"), "no section\n");
        let r = Resolver::load(env);
        assert!(r.settings.global.broken);
        assert_eq!(r.warnings().len(), 1);
        assert!(r.warnings()[0].starts_with("Error reading settings at "));
        assert_eq!(
            r.default_host().map(|(h, o)| (h.to_string(), o)),
            Ok(("https://api.wandb.ai".to_owned(), HostOrigin::Default))
        );
        assert!(r.settings.in_use().is_empty());
    }

    #[test]
    fn known_hosts_include_forge_aliases() {
        let d = tmp();
        let mut env = env_in(d.path());
        env.base_url = Some("https://wandb.example".into());
        let r = Resolver::load(env);
        let (hosts, notes) = r.known_hosts();
        assert!(notes.is_empty());
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(
            names,
            [
                "https://wandb.example",
                "https://api.wandb.ai",
                "https://api.forge.coreweave.com"
            ]
        );
    }

    #[test]
    fn netrc_files_every_path_the_sdk_reads() {
        let d = tmp();
        let mut env = env_in(d.path());
        let r = Resolver::load(env.clone());
        let files: Vec<(PathBuf, bool)> = r
            .netrc_files()
            .into_iter()
            .map(|f| (f.path, f.sdk_reads))
            .collect();
        assert_eq!(
            files,
            [
                (env.home.join(".netrc"), true),
                (env.home.join("_netrc"), false)
            ]
        );
        env.netrc = Some(d.path().join("n").display().to_string());
        let r = Resolver::load(env.clone());
        let files: Vec<(PathBuf, bool)> = r
            .netrc_files()
            .into_iter()
            .map(|f| (f.path, f.sdk_reads))
            .collect();
        assert_eq!(
            files,
            [
                (d.path().join("n"), true),
                (env.home.join(".netrc"), false),
                (env.home.join("_netrc"), false)
            ]
        );
    }

    #[test]
    fn inventory_finds_every_plaintext_key() {
        let d = tmp();
        let mut env = env_in(d.path());
        env.netrc = Some(d.path().join("n").display().to_string());
        write(
            &env.home.join(".netrc"),
            &format!(
                "{}{}{}machine other.example login u password p\ndefault login d password {K3}\n",
                entry("api.wandb.ai", K1),
                entry("api.forge.coreweave.com", K2),
                entry("api.wandb.ai", K3)
            ),
        );
        write(
            &env.home.join("_netrc"),
            &entry("api.forge.coreweave.com", "short"),
        );
        write(&d.path().join("n"), "machine x\nbogus\n");
        write(
            &env.root_dir.join("wandb/settings"),
            &format!("[default]\napi_key = {K1}\n"),
        );
        let r = Resolver::load(env.clone());
        let (hosts, _) = r.known_hosts();
        let inv = r.inventory(&hosts);
        let prefix = format!("{}/", d.path().display());
        let got: Vec<(String, String, bool, bool)> = inv
            .keys
            .iter()
            .map(|k| {
                (
                    k.place.to_string().replace(&prefix, ""),
                    k.host.to_string(),
                    k.shadowed,
                    k.valid,
                )
            })
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            got,
            [
                (
                    s("work/wandb/settings (api_key)"),
                    s("https://api.wandb.ai"),
                    false,
                    true
                ),
                (
                    s("home/.netrc (machine api.wandb.ai, line 1)"),
                    s("https://api.wandb.ai"),
                    true,
                    true
                ),
                (
                    s("home/.netrc (machine api.forge.coreweave.com, line 4)"),
                    s("https://api.forge.coreweave.com"),
                    false,
                    true
                ),
                (
                    s("home/.netrc (machine api.wandb.ai, line 7)"),
                    s("https://api.wandb.ai"),
                    false,
                    true
                ),
                (
                    s("home/_netrc (machine api.forge.coreweave.com, line 1)"),
                    s("https://api.forge.coreweave.com"),
                    false,
                    false
                ),
            ]
        );
        assert!(inv.keys.iter().all(|k| k.links == 1));
        // $NETRC is the file the SDK reads; ~/.netrc and ~/_netrc only without it.
        assert!(
            inv.keys
                .iter()
                .all(|k| k.read_now == matches!(k.place, Place::Settings { .. }))
        );
        let notes: Vec<String> = inv
            .notes
            .iter()
            .map(|n| n.text.replace(&prefix, ""))
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("cannot read n: error on line 2"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("home/.netrc has a `default` entry (line 11)"),
            "{notes:?}"
        );
        // Hard links are counted.
        #[cfg(unix)]
        {
            std::fs::hard_link(env.home.join("_netrc"), d.path().join("link")).ok();
            let inv = Resolver::load(env).inventory(&hosts);
            assert_eq!(inv.keys.last().map(|k| k.links), Some(2));
        }
    }

    #[test]
    fn api_key_in_settings() {
        let d = tmp();
        let env = env_in(d.path());
        write(
            &env.home.join(".config/wandb/settings"),
            "[default]\napi_key = G\n",
        );
        write(
            &env.root_dir.join("wandb/settings"),
            "[default]\napi_key =\n",
        );
        let r = Resolver::load(env);
        // An empty workspace value does not hide the global one.
        assert_eq!(r.settings.get("api_key").map(|(v, _)| v), Some("G"));
        assert_eq!(r.settings.api_key_files().len(), 1);
        assert_eq!(r.settings.in_use().len(), 2);
    }

    #[test]
    fn netrc_warnings_like_the_sdk() {
        let d = tmp();
        let mut env = env_in(d.path());
        write(
            &env.home.join(".netrc"),
            "machine a login u password \"\"\n",
        );
        let r = Resolver::load(env.clone());
        let f = r.netrc_key(&host("https://a"));
        assert!(f.key.is_none());
        assert_eq!(
            f.warnings,
            vec![format!(
                "Found entry for machine 'a' with no API key at {}",
                env.home.join(".netrc").display()
            )]
        );
        // NETRC wins, even when missing.
        env.netrc = Some(d.path().join("n").display().to_string());
        let r = Resolver::load(env.clone());
        let f = r.netrc_key(&HostUrl::cloud());
        assert!(f.key.is_none() && f.warnings.is_empty());
        assert_eq!(f.path, d.path().join("n"));
        // A malformed file: warning with the line, counted as absent.
        write(
            &d.path().join("n"),
            "machine y login u password p\nbogus x\n",
        );
        let f = r.netrc_key(&host("https://x"));
        assert!(f.key.is_none());
        assert_eq!(f.warnings.len(), 1);
        assert!(
            f.warnings[0].starts_with(&format!(
                "Failed to read netrc file at {}, error on line 2: ",
                d.path().join("n").display()
            )),
            "{:?}",
            f.warnings
        );
    }
}
