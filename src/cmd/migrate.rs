//! `wbl migrate`: move W&B keys (and, with `--git-credentials`, git's stored passwords) out of
//! plaintext files into the keychain.
//!
//! Sources, in the order they are handled (the one the SDK would use first comes first):
//! `api_key` in the workspace and global W&B settings files; netrc entries (the file the SDK
//! reads, then the other ones of `$NETRC`, `~/.netrc`, `~/_netrc`) whose machine is the netloc
//! of a W&B host; and the lines of `~/.git-credentials` / `$XDG_CONFIG_HOME/git/credentials`.
//!
//! Each secret is stored through the agent, read back through the agent and compared, and only
//! then removed from its file — re-read at that moment, checked to still hold the same secret,
//! rewritten with every other byte kept by `fsutil::write_atomic` (temp file, fsync, rename). A
//! crash at any point leaves the secret in the file, the keychain, or both; a rerun finds it in
//! both and finishes by removing the plaintext copy. A key the keychain already holds with a
//! *different* value is never overwritten: the plaintext copy is left in place and reported.
//! Plaintext copies are never removed in favour of a keychain that forgets at reboot (keyutils):
//! there only `--keep` is allowed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use wbl_proto::{Credential, Query, Secret};
use zeroize::Zeroizing;

use super::{WANDB_USER, target_of};
use crate::cli::MigrateArgs;
use crate::client::{AgentClient, connect_or_start};
use crate::git::store_file;
use crate::rendezvous::RuntimePaths;
use crate::wandb::apikey::check_api_key;
use crate::wandb::fsutil::write_atomic;
use crate::wandb::host::HostUrl;
use crate::wandb::netrc::{Netrc, netrc_path};
use crate::wandb::settings::{SettingsFile, global_settings_path, workspace_settings_path};

/// Test hook: when set to `1`, `wbl migrate` aborts right after the first keychain write, before
/// reading it back and before touching any file, as a crash there would.
pub const CRASH_AFTER_STORE_ENV: &str = "WBL_TEST_CRASH_AFTER_STORE";

/// The process environment that decides which files are read.
pub struct Env {
    pub home: PathBuf,
    /// `$NETRC`.
    pub netrc: Option<String>,
    /// `$WANDB_CONFIG_DIR`.
    pub wandb_config_dir: Option<String>,
    /// `$WANDB_DIR`, else the current directory.
    pub workspace_root: PathBuf,
    /// `$WANDB_BASE_URL`.
    pub base_url: Option<String>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<String>,
}

impl Env {
    pub fn from_process() -> anyhow::Result<Env> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let home = crate::dirs::home_dir()
            .context("cannot find your home directory (set HOME and try again)")?;
        let workspace_root = match var("WANDB_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().context("while finding the current directory")?,
        };
        Ok(Env {
            home,
            netrc: var("NETRC"),
            wandb_config_dir: var("WANDB_CONFIG_DIR"),
            workspace_root,
            base_url: var("WANDB_BASE_URL"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
        })
    }
}

/// Where a plaintext secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Netrc { path: PathBuf, machine: String },
    Settings { path: PathBuf },
    GitCredentials { path: PathBuf, line: usize },
}

/// Which kind of file a plaintext secret (or a note) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Netrc,
    Settings,
    GitCredentials,
}

impl Source {
    fn kind(&self) -> Kind {
        match self {
            Source::Netrc { .. } => Kind::Netrc,
            Source::Settings { .. } => Kind::Settings,
            Source::GitCredentials { .. } => Kind::GitCredentials,
        }
    }

    fn path(&self) -> &Path {
        match self {
            Source::Netrc { path, .. }
            | Source::Settings { path }
            | Source::GitCredentials { path, .. } => path,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Netrc { path, machine } => {
                write!(f, "{} (machine {machine})", path.display())
            }
            Source::Settings { path } => write!(f, "{} (api_key)", path.display()),
            Source::GitCredentials { path, line } => write!(f, "{} (line {line})", path.display()),
        }
    }
}

/// One plaintext secret to move.
struct Candidate {
    source: Source,
    cred: Credential,
}

impl Candidate {
    fn what(&self) -> String {
        format!("{} (user {})", self.cred.target, self.cred.username)
    }
}

/// Something found but left alone, and why; `about` is the kind of file it concerns (`None`
/// for the environment).
pub(crate) struct Note {
    pub about: Option<Kind>,
    pub text: String,
}

/// What was found: secrets to move, things left alone (with why), files looked at.
#[derive(Default)]
struct Plan {
    candidates: Vec<Candidate>,
    notes: Vec<Note>,
    looked_in: Vec<PathBuf>,
}

impl Plan {
    fn note(&mut self, about: Kind, text: String) {
        self.notes.push(Note {
            about: Some(about),
            text,
        });
    }
}

/// A plaintext secret, described without its value.
pub(crate) struct Found {
    pub kind: Kind,
    /// `https://api.wandb.ai (user api)`.
    pub what: String,
    /// The file, and where in it: `/home/u/.netrc (machine api.wandb.ai)`.
    pub place: String,
}

/// Every plaintext secret `wbl migrate --git-credentials` would move, and the notes about what
/// it would leave alone (`wbl doctor`). Reads files only; the secrets never leave this module.
pub(crate) fn inventory() -> anyhow::Result<(Vec<Found>, Vec<Note>)> {
    let env = Env::from_process()?;
    let args = MigrateArgs {
        hosts: Vec::new(),
        keep: true,
        dry_run: true,
        git_credentials: true,
    };
    let plan = plan(&env, &args)?;
    let found = plan
        .candidates
        .iter()
        .map(|c| Found {
            kind: c.source.kind(),
            what: c.what(),
            place: c.source.to_string(),
        })
        .collect();
    Ok((found, plan.notes))
}

/// Reads a file that may hold secrets; `None` when it does not exist.
fn read_secret_file(path: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
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

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn push_unique(paths: &mut Vec<PathBuf>, p: PathBuf) {
    if !paths.iter().any(|q| same_file(q, &p)) {
        paths.push(p);
    }
}

/// The W&B hosts to look for, and what was wrong with the ones that could not be used.
#[derive(Default)]
struct HostSelection {
    hosts: Vec<HostUrl>,
    notes: Vec<Note>,
    errors: Vec<String>,
}

/// The W&B hosts to look for, without two of the same netloc (the netrc machine name).
fn hosts(env: &Env, args: &MigrateArgs, settings: &[(PathBuf, SettingsFile)]) -> HostSelection {
    let mut out = HostSelection::default();
    let add = |h: HostUrl, out: &mut HostSelection| {
        if !out.hosts.iter().any(|x| x.netloc() == h.netloc()) {
            out.hosts.push(h);
        }
    };
    if !args.hosts.is_empty() {
        for raw in &args.hosts {
            match HostUrl::parse(raw) {
                Ok(h) => add(h, &mut out),
                Err(e) => out.errors.push(format!("--host {raw}: {e}")),
            }
        }
        return out;
    }
    add(HostUrl::cloud(), &mut out);
    if let Some(raw) = &env.base_url {
        match HostUrl::parse(raw) {
            Ok(h) => add(h, &mut out),
            Err(e) => out.notes.push(Note {
                about: None,
                text: format!("WANDB_BASE_URL is not a valid host ({e}); ignored"),
            }),
        }
    }
    for (path, file) in settings {
        if let Some(raw) = file.get("base_url") {
            match HostUrl::parse(raw) {
                Ok(h) => add(h, &mut out),
                Err(e) => out.notes.push(Note {
                    about: Some(Kind::Settings),
                    text: format!(
                        "base_url in {} is not a valid host ({e}); ignored",
                        path.display()
                    ),
                }),
            }
        }
    }
    out
}

/// Finds every plaintext secret the arguments select. Reads files only.
fn plan(env: &Env, args: &MigrateArgs) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();

    // W&B settings files: workspace first (it overrides the global one).
    let mut settings: Vec<(PathBuf, SettingsFile)> = Vec::new();
    let mut settings_paths = Vec::new();
    push_unique(
        &mut settings_paths,
        workspace_settings_path(&env.workspace_root),
    );
    push_unique(
        &mut settings_paths,
        global_settings_path(env.wandb_config_dir.as_deref(), &env.home),
    );
    for path in settings_paths {
        if !path.is_file() {
            continue;
        }
        plan.looked_in.push(path.clone());
        match SettingsFile::load(&path) {
            Ok(f) => settings.push((path, f)),
            Err(e) => plan.note(Kind::Settings, format!("{e}; left alone")),
        }
    }

    let h = hosts(env, args, &settings);
    if !h.errors.is_empty() {
        bail!("{}", h.errors.join("; "));
    }
    plan.notes.extend(h.notes);
    let hosts = h.hosts;
    let selected = |host: &HostUrl| hosts.iter().any(|h| h.netloc() == host.netloc());

    // The host an `api_key` setting is used with: its file's base_url, else the one in effect.
    let effective = env
        .base_url
        .as_deref()
        .and_then(|u| HostUrl::parse(u).ok())
        .or_else(|| {
            settings
                .iter()
                .find_map(|(_, f)| f.get("base_url").and_then(|u| HostUrl::parse(u).ok()))
        })
        .unwrap_or_else(HostUrl::cloud);
    for (path, file) in &settings {
        let Some(key) = file.get("api_key").filter(|k| !k.is_empty()) else {
            continue;
        };
        let host = file
            .get("base_url")
            .and_then(|u| HostUrl::parse(u).ok())
            .unwrap_or_else(|| effective.clone());
        let source = Source::Settings { path: path.clone() };
        if !selected(&host) {
            plan.note(
                Kind::Settings,
                format!(
                    "{source} is for {}, which is not among the selected hosts; left alone",
                    host.as_str()
                ),
            );
        } else if let Some(problem) = check_api_key(key) {
            plan.note(
                Kind::Settings,
                format!("{source} is not a valid W&B API key ({problem}); left alone"),
            );
        } else {
            plan.candidates.push(Candidate {
                source,
                cred: Credential::new(target_of(&host), WANDB_USER, Secret::from(key)),
            });
        }
    }

    // netrc files: the one the SDK reads first, then the other candidates.
    let mut netrcs = Vec::new();
    push_unique(
        &mut netrcs,
        netrc_path(env.netrc.as_deref(), &env.home, cfg!(windows)),
    );
    push_unique(&mut netrcs, env.home.join(".netrc"));
    push_unique(&mut netrcs, env.home.join("_netrc"));
    for path in netrcs {
        let text = match read_secret_file(&path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                plan.note(Kind::Netrc, format!("{e:#}; left alone"));
                continue;
            }
        };
        plan.looked_in.push(path.clone());
        let netrc = match Netrc::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                plan.note(Kind::Netrc, format!(
                    "cannot read {}: {e}; left alone (fix the file and run `wbl migrate` again)",
                    path.display()
                ));
                continue;
            }
        };
        for host in &hosts {
            let Some(entry) = netrc.lookup_exact(host.netloc()) else {
                continue;
            };
            let source = Source::Netrc {
                path: path.clone(),
                machine: host.netloc().to_owned(),
            };
            if let Some(problem) = check_api_key(&entry.password) {
                plan.note(
                    Kind::Netrc,
                    format!("{source} has no valid W&B API key ({problem}); left alone"),
                );
                continue;
            }
            plan.candidates.push(Candidate {
                source,
                cred: Credential::new(
                    target_of(host),
                    WANDB_USER,
                    Secret::from(entry.password.as_str()),
                ),
            });
        }
        if netrc
            .entries()
            .iter()
            .any(|e| e.machine.is_none() && !e.password.is_empty())
        {
            plan.note(
                Kind::Netrc,
                format!(
                    "{} has a `default` entry, which applies to every host; left alone",
                    path.display()
                ),
            );
        }
    }

    // git's credential-store files.
    let mut git_paths = Vec::new();
    for p in store_file::default_paths(&env.home, env.xdg_config_home.as_deref()) {
        push_unique(&mut git_paths, p);
    }
    for path in git_paths {
        let text = match read_secret_file(&path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                plan.note(Kind::GitCredentials, format!("{e:#}; left alone"));
                continue;
            }
        };
        let entries = store_file::parse(&text);
        if entries.is_empty() {
            continue;
        }
        if !args.git_credentials {
            plan.note(Kind::GitCredentials, format!(
                "{} holds {} git credential(s) in plaintext; add --git-credentials to move them too",
                path.display(),
                entries.len()
            ));
            continue;
        }
        plan.looked_in.push(path.clone());
        for e in entries {
            plan.candidates.push(Candidate {
                source: Source::GitCredentials {
                    path: path.clone(),
                    line: e.line,
                },
                cred: e.credential,
            });
        }
    }
    Ok(plan)
}

/// Removes `cand`'s secret from its file if the file still holds exactly that secret. Returns
/// whether something was removed.
fn remove_plaintext(cand: &Candidate) -> anyhow::Result<bool> {
    let secret = cand.cred.password.expose();
    match &cand.source {
        Source::Netrc { path, machine } => {
            let Some(text) = read_secret_file(path)? else {
                return Ok(false);
            };
            let netrc = Netrc::parse(&text)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            if netrc
                .lookup_exact(machine)
                .is_none_or(|e| e.password.as_str() != secret)
            {
                return Ok(false);
            }
            let (new, _) = netrc.remove(machine);
            let new = Zeroizing::new(new);
            write_atomic(path, new.as_bytes(), 0o600)?;
            Ok(true)
        }
        Source::Settings { path } => {
            let mut file = SettingsFile::load(path)?;
            if file.get("api_key") != Some(secret) {
                return Ok(false);
            }
            file.remove("api_key");
            file.save(path)?;
            Ok(true)
        }
        Source::GitCredentials { path, .. } => {
            let Some(text) = read_secret_file(path)? else {
                return Ok(false);
            };
            let (new, n) = store_file::remove(&text, &cand.cred);
            let new = Zeroizing::new(new);
            if n == 0 {
                return Ok(false);
            }
            write_atomic(path, new.as_bytes(), 0o600)?;
            Ok(true)
        }
    }
}

/// The credential the keychain holds for exactly this target and user name, if any.
fn stored(agent: &mut AgentClient, cred: &Credential) -> anyhow::Result<Option<Credential>> {
    let found = agent
        .get(Query {
            target: cred.target.clone(),
            username: Some(cred.username.clone()),
        })
        .with_context(|| format!("while looking up {} in the keychain", cred.target))?;
    Ok(found.filter(|c| c.target == cred.target && c.username == cred.username))
}

fn crash_hook() {
    if std::env::var_os(CRASH_AFTER_STORE_ENV).is_some_and(|v| v == "1") {
        #[cfg(unix)]
        {
            // No core file from a deliberate crash.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit with a valid, initialised struct has no other preconditions.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
        }
        std::process::abort();
    }
}

/// What happened to one candidate.
enum Outcome {
    /// Line for the summary, and whether the plaintext copy is gone.
    Done {
        line: String,
        removed: bool,
    },
    Left(String),
    Failed(String),
}

fn migrate_one(
    agent: &mut AgentClient,
    cand: &Candidate,
    args: &MigrateArgs,
) -> anyhow::Result<Outcome> {
    let what = cand.what();
    let source = &cand.source;
    let rerun = if args.git_credentials {
        "wbl migrate --git-credentials"
    } else {
        "wbl migrate"
    };
    match stored(agent, &cand.cred)? {
        Some(existing) if existing.password != cand.cred.password => {
            return Ok(Outcome::Left(format!(
                "left:   {what} in {source}: the keychain already holds a different value; \
                 remove the plaintext copy by hand, or `wbl logout` first to import it"
            )));
        }
        Some(_) => {}
        None => {
            agent
                .store(cand.cred.clone())
                .with_context(|| format!("while storing {what} in the keychain"))?;
            crash_hook();
            match stored(agent, &cand.cred)? {
                Some(back) if back.password == cand.cred.password => {}
                _ => {
                    return Ok(Outcome::Failed(format!(
                        "{what}: the keychain did not give back the value just stored; {source} \
                         was left as it is"
                    )));
                }
            }
        }
    }
    if args.keep {
        return Ok(Outcome::Done {
            line: format!("copied: {what} from {source} (kept there: --keep)"),
            removed: false,
        });
    }
    match remove_plaintext(cand) {
        Ok(true) => Ok(Outcome::Done {
            line: format!("moved:  {what} from {source}"),
            removed: true,
        }),
        Ok(false) => Ok(Outcome::Left(format!(
            "left:   {what}: {source} changed while wbl was working; it is in the keychain, \
             run `{rerun}` again"
        ))),
        Err(e) => {
            let path = source.path().display();
            let fix = match e.downcast_ref::<std::io::Error>().map(|e| e.kind()) {
                Some(std::io::ErrorKind::PermissionDenied) => {
                    format!("make it writable (`chmod u+w {path}`)")
                }
                _ => "fix that".to_owned(),
            };
            Ok(Outcome::Failed(format!(
                "could not remove {what} from {source}: {e:#}; it is safely in the keychain: \
                 {fix} and run `{rerun}` again"
            )))
        }
    }
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let plan = plan(&env, &args)?;
    for note in &plan.notes {
        println!("note:   {}", note.text);
    }
    if plan.candidates.is_empty() {
        let looked: Vec<String> = plan
            .looked_in
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if looked.is_empty() {
            println!(
                "wbl: nothing to migrate: no netrc, W&B settings or git credentials file found."
            );
        } else {
            println!(
                "wbl: nothing to migrate: no plaintext keys in {}.",
                looked.join(", ")
            );
        }
        return Ok(());
    }
    if args.dry_run {
        for c in &plan.candidates {
            let verb = if args.keep { "copy" } else { "move" };
            println!(
                "would {verb}: {} from {} to the keychain",
                c.what(),
                c.source
            );
        }
        println!(
            "wbl: dry run: {} plaintext secret(s) found; nothing was changed.",
            plan.candidates.len()
        );
        return Ok(());
    }

    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let status = agent
        .status()
        .context("while asking wbl-agent which keychain it uses")?;
    let backend = status.backend;
    if !status.backend_persistent && !args.keep {
        bail!(
            "the keychain in use ({backend}) does not keep keys across a reboot, so moving the \
             plaintext copies there would lose them at the next reboot; nothing was changed. \
             Import without removing them with `wbl migrate --keep`, or run a Secret Service \
             (e.g. gnome-keyring) and try again"
        );
    }
    let (mut done, mut left, mut failures) = (0, 0, Vec::new());
    let mut git_hosts = BTreeSet::new();
    let mut wandb_moved = false;
    for cand in &plan.candidates {
        match migrate_one(&mut agent, cand, &args)? {
            Outcome::Done { line, removed } => {
                println!("{line}");
                done += 1;
                match &cand.source {
                    Source::GitCredentials { .. } if removed => {
                        git_hosts.insert(format!(
                            "{}://{}",
                            cand.cred.target.protocol, cand.cred.target.host
                        ));
                    }
                    Source::Netrc { .. } | Source::Settings { .. } => wandb_moved |= removed,
                    Source::GitCredentials { .. } => {}
                }
            }
            Outcome::Left(line) => {
                println!("{line}");
                left += 1;
            }
            Outcome::Failed(msg) => failures.push(msg),
        }
    }
    let verb = if args.keep { "copied" } else { "moved" };
    println!(
        "wbl: {done} {verb} to the keychain ({backend}), {} left in place.",
        left + failures.len()
    );
    if wandb_moved {
        println!(
            "hint:   W&B keys now come from the keychain: `wbl token` prints one (e.g. \
             `export WANDB_API_KEY=$(wbl token)`)"
        );
    }
    for host in &git_hosts {
        println!(
            "hint:   git finds the credentials for {host} only if wbl is its helper: \
             `wbl setup-git --host {host}`"
        );
    }
    if let Some(last) = failures.pop() {
        for msg in &failures {
            eprintln!("wbl: error: {msg}");
        }
        bail!("{last}");
    }
    Ok(())
}
