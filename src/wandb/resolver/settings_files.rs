//! The two W&B settings files the SDK reads (global and workspace) as one value: which file a
//! setting comes from (workspace over global), which files hold an `api_key`.
//!
//! Invariant: a file that exists but cannot be read or parsed counts as empty, is reported
//! once as a warning, and is marked broken so nothing rewrites it.

use std::path::{Path, PathBuf};

use super::env::WandbEnv;
use crate::wandb::settings::{SettingsFile, global_settings_path, workspace_settings_path};

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
pub struct LoadedFile {
    scope: Scope,
    path: PathBuf,
    file: SettingsFile,
    exists: bool,
    broken: bool,
}

impl LoadedFile {
    fn load(scope: Scope, path: PathBuf, warnings: &mut Vec<String>) -> LoadedFile {
        let exists = path.exists();
        match SettingsFile::load(&path) {
            Ok(file) => LoadedFile {
                scope,
                path,
                file,
                exists,
                broken: false,
            },
            Err(e) => {
                warnings.push(e.to_string());
                LoadedFile {
                    scope,
                    path,
                    file: SettingsFile::default(),
                    exists,
                    broken: true,
                }
            }
        }
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file as parsed (empty when missing or broken).
    pub fn file(&self) -> &SettingsFile {
        &self.file
    }

    /// The file, to edit before [`SettingsFile::save`].
    pub fn file_mut(&mut self) -> &mut SettingsFile {
        &mut self.file
    }

    /// The file exists on disk.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// The file exists but could not be read or parsed: it counts as empty and wbl never
    /// rewrites it (the SDK would, losing its contents).
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// A non-empty value of `key` in this file's `[default]` section.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.file.get(key).filter(|v| !v.is_empty())
    }
}

/// The two settings files, global first.
#[derive(Debug)]
pub struct SettingsFiles {
    global: LoadedFile,
    workspace: LoadedFile,
    warnings: Vec<String>,
}

impl SettingsFiles {
    /// Loads `$WANDB_CONFIG_DIR/settings` (or `~/.config/wandb/settings`) and
    /// `<WANDB_DIR or cwd>/wandb/settings`.
    pub(super) fn load(env: &WandbEnv) -> SettingsFiles {
        let mut warnings = Vec::new();
        let global = LoadedFile::load(
            Scope::Global,
            global_settings_path(env.config_dir.as_deref(), &env.home),
            &mut warnings,
        );
        let workspace = LoadedFile::load(
            Scope::Workspace,
            workspace_settings_path(&env.root_dir),
            &mut warnings,
        );
        SettingsFiles {
            global,
            workspace,
            warnings,
        }
    }

    /// Problems met while reading (to print as warnings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn global(&self) -> &LoadedFile {
        &self.global
    }

    pub fn workspace(&self) -> &LoadedFile {
        &self.workspace
    }

    /// Both files, global first.
    pub fn files(&self) -> [&LoadedFile; 2] {
        [&self.global, &self.workspace]
    }

    /// Both files, mutable, global first.
    pub fn files_mut(&mut self) -> [&mut LoadedFile; 2] {
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
    pub fn api_key_files(&self) -> Vec<&LoadedFile> {
        self.files()
            .into_iter()
            .filter(|f| f.get("api_key").is_some())
            .collect()
    }
}
