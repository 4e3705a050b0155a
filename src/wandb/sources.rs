//! Where the W&B SDK finds a host and a key outside the keychain, read the way the SDK reads
//! them: the `WANDB_*` environment, the settings files (global, then workspace overriding it)
//! and the netrc file. Used by `login` (resolution), `status` (where a key resolves from, and
//! every plaintext copy) and the commands that pick a host.
//!
//! Reading never fails on a bad file: like the SDK, an unreadable settings or netrc file is a
//! warning and counts as empty. The warnings are collected for the caller to print.

use std::path::{Path, PathBuf};

use wbl_proto::Secret;

use super::host::{HostError, HostUrl};
use super::netrc::{Netrc, netrc_path};
use super::settings::{SettingsFile, global_settings_path, workspace_settings_path};

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
    Flag,
    Env,
    Settings(PathBuf),
    Default,
}

/// The host the SDK talks to when none is given on the command line: `WANDB_BASE_URL`, else
/// `base_url` from the settings files, else the W&B cloud. A bad value names where it came
/// from.
pub fn default_host(env: &WandbEnv, settings: &Settings) -> Result<(HostUrl, HostOrigin), String> {
    if let Some(u) = &env.base_url {
        return HostUrl::parse(u)
            .map(|h| (h, HostOrigin::Env))
            .map_err(|e| format!("WANDB_BASE_URL: {e}"));
    }
    if let Some((u, path)) = settings.get("base_url") {
        return HostUrl::parse(u)
            .map(|h| (h, HostOrigin::Settings(path.to_path_buf())))
            .map_err(|e| format!("base_url in {}: {e}", path.display()));
    }
    Ok((HostUrl::cloud(), HostOrigin::Default))
}

/// `--host` (already parsed) or the default host.
pub fn pick_host(
    flag: Option<&str>,
    env: &WandbEnv,
    settings: &Settings,
) -> anyhow::Result<HostUrl> {
    match flag {
        Some(f) => Ok(HostUrl::parse(f).map_err(|e: HostError| anyhow::anyhow!(e))?),
        None => default_host(env, settings)
            .map(|(h, _)| h)
            .map_err(|e| anyhow::anyhow!(e)),
    }
}

/// What the netrc file says about one machine.
#[derive(Debug)]
pub struct NetrcFind {
    /// The file read (or that would be read).
    pub path: PathBuf,
    /// The key, when an entry with a password exists.
    pub key: Option<Secret>,
    /// The key came from the `default` entry, not a `machine` entry.
    pub from_default: bool,
    /// Problems to print as warnings (the SDK's texts).
    pub warnings: Vec<String>,
}

/// Looks up `machine` (`host[:port]`) in the netrc file like the SDK: a missing file is
/// silence; a broken file is a warning and counts as absent; Python's `authenticators`
/// falls back to the `default` entry; an entry with an empty password is a warning.
pub fn netrc_key(env: &WandbEnv, machine: &str) -> NetrcFind {
    let path = env.netrc_path();
    let mut find = NetrcFind {
        path: path.clone(),
        key: None,
        from_default: false,
        warnings: Vec::new(),
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
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
    if let Some(entry) = netrc.lookup(machine) {
        if entry.password.is_empty() {
            find.warnings.push(format!(
                "Found entry for machine '{machine}' with no API key at {}",
                path.display()
            ));
        } else {
            find.from_default = entry.machine.is_none();
            find.key = Some(Secret::new(entry.password.to_string()));
        }
    }
    find
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn host_precedence_env_then_workspace_then_global() {
        let d = tmp();
        let mut env = env_in(d.path());
        write(
            &env.home.join(".config/wandb/settings"),
            "[default]\nbase_url = https://global.example\n",
        );
        let s = Settings::load(&env);
        assert_eq!(
            default_host(&env, &s).map(|(h, _)| h.to_string()),
            Ok("https://global.example".to_owned())
        );
        write(
            &env.root_dir.join("wandb/settings"),
            "[default]\nbase_url = https://local.example/\n",
        );
        let s = Settings::load(&env);
        assert_eq!(
            default_host(&env, &s).map(|(h, _)| h.to_string()),
            Ok("https://local.example".to_owned())
        );
        env.base_url = Some("https://env.example".into());
        assert_eq!(
            default_host(&env, &s).map(|(h, o)| (h.to_string(), o)),
            Ok(("https://env.example".to_owned(), HostOrigin::Env))
        );
        env.base_url = Some("https://wandb.ai".into());
        assert_eq!(
            default_host(&env, &s).map(|(h, _)| h.to_string()),
            Err("WANDB_BASE_URL: 'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?".to_owned())
        );
    }

    #[test]
    fn defaults_to_cloud_and_broken_files_warn() {
        let d = tmp();
        let env = env_in(d.path());
        write(&env.home.join(".config/wandb/settings"), "no section\n");
        let s = Settings::load(&env);
        assert!(s.global.broken);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].starts_with("Error reading settings at "));
        assert_eq!(
            default_host(&env, &s).map(|(h, o)| (h.to_string(), o)),
            Ok(("https://api.wandb.ai".to_owned(), HostOrigin::Default))
        );
        assert!(s.in_use().is_empty());
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
        let s = Settings::load(&env);
        // An empty workspace value does not hide the global one.
        assert_eq!(s.get("api_key").map(|(v, _)| v), Some("G"));
        assert_eq!(s.api_key_files().len(), 1);
        assert_eq!(s.in_use().len(), 2);
    }

    #[test]
    fn netrc_lookup_rules() {
        let d = tmp();
        let mut env = env_in(d.path());
        // Missing file: nothing, no warning.
        let f = netrc_key(&env, "api.wandb.ai");
        assert!(f.key.is_none() && f.warnings.is_empty());
        assert_eq!(f.path, env.home.join(".netrc"));
        write(
            &env.home.join(".netrc"),
            "machine a login u password \"\"\nmachine api.wandb.ai login user password K1\ndefault login d password DEF\n",
        );
        let f = netrc_key(&env, "api.wandb.ai");
        assert_eq!(f.key.as_ref().map(|k| k.expose()), Some("K1"));
        assert!(!f.from_default);
        let f = netrc_key(&env, "other:8080");
        assert_eq!(f.key.as_ref().map(|k| k.expose()), Some("DEF"));
        assert!(f.from_default);
        let f = netrc_key(&env, "a");
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
        let f = netrc_key(&env, "api.wandb.ai");
        assert!(f.key.is_none() && f.warnings.is_empty());
        assert_eq!(f.path, d.path().join("n"));
        // A malformed file: warning with the line, counted as absent.
        write(
            &d.path().join("n"),
            "machine y login u password p\nbogus x\n",
        );
        let f = netrc_key(&env, "x");
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
