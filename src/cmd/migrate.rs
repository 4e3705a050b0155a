//! `wbl migrate`: move W&B keys (and, with `--git-credentials`, git's stored passwords) out of
//! plaintext files into the keychain.
//!
//! The W&B keys are the resolver's inventory (`wandb::resolver`): `api_key` in the workspace
//! and global settings files, and every netrc entry of every file the SDK reads (`$NETRC`,
//! `~/.netrc`, `~/_netrc`) for every W&B host in play, Forge addresses included. Of repeated
//! entries for one machine, the last (the one Python's netrc, hence the SDK, reads) goes to
//! the keychain; earlier ones with the same key go with it, earlier ones with another key stay
//! in the file and are reported (`--force` stores them under their own user name and removes
//! them). A file with more than one hard link is never rewritten: its keys are copied only.
//! With `--git-credentials`, also the lines of `~/.git-credentials` /
//! `$XDG_CONFIG_HOME/git/credentials`.
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
use wbl_proto::{Credential, Query};
use zeroize::Zeroizing;

use super::{WANDB_USER, target_of};
use crate::cli::MigrateArgs;
use crate::client::{AgentClient, connect_or_start};
use crate::git::store_file;
use crate::rendezvous::RuntimePaths;
use crate::wandb::apikey::check_api_key;
use crate::wandb::fsutil::write_atomic;
use crate::wandb::fsutil::{link_count, read_secret_file, same_file};
use crate::wandb::host::HostUrl;
use crate::wandb::netrc::Netrc;
use crate::wandb::resolver::{self, Place, Resolver};
use crate::wandb::settings::SettingsFile;

/// Test hook: when set to `1`, `wbl migrate` aborts right after the first keychain write, before
/// reading it back and before touching any file, as a crash there would.
pub const CRASH_AFTER_STORE_ENV: &str = "WBL_TEST_CRASH_AFTER_STORE";

/// Where a plaintext secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A W&B key in a netrc or settings file (see [`Place`]).
    Wandb(Place),
    GitCredentials {
        path: PathBuf,
        line: usize,
    },
}

impl Source {
    fn path(&self) -> &Path {
        match self {
            Source::Wandb(p) => p.path(),
            Source::GitCredentials { path, .. } => path,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Wandb(p) => p.fmt(f),
            Source::GitCredentials { path, line } => write!(f, "{} (line {line})", path.display()),
        }
    }
}

/// One plaintext secret to move.
#[derive(Clone)]
struct Candidate {
    source: Source,
    cred: Credential,
    /// The file has more than one hard link: the secret is copied, never removed from it.
    links: u64,
}

impl Candidate {
    fn what(&self) -> String {
        format!("{} (user {})", self.cred.target, self.cred.username)
    }
}

/// What was found: secrets to move, things left alone (with why), files looked at.
#[derive(Default)]
struct Plan {
    candidates: Vec<Candidate>,
    notes: Vec<String>,
    looked_in: Vec<PathBuf>,
}

/// The user name a W&B key that cannot be `api` is kept under with `--force` (a netrc entry
/// the SDK does not read, or a key other than the one the keychain holds): `api-old-lineN`
/// for a netrc entry, `api-old-settings` for `api_key`; never the key in use.
fn old_user(place: &Place) -> String {
    match place {
        Place::Netrc { line, .. } => format!("{WANDB_USER}-old-line{line}"),
        Place::Settings { .. } => format!("{WANDB_USER}-old-settings"),
    }
}

/// Finds every plaintext secret the arguments select, through the resolver. Reads files only.
fn plan(resolver: &Resolver, args: &MigrateArgs) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let hosts = if args.hosts.is_empty() {
        let (hosts, notes) = resolver.known_hosts();
        plan.notes
            .extend(notes.into_iter().map(|n| n.text().to_owned()));
        hosts
    } else {
        let mut hosts = Vec::new();
        let mut errors = Vec::new();
        for raw in &args.hosts {
            match HostUrl::parse(raw) {
                Ok(h) => hosts.push(h),
                Err(e) => errors.push(format!("--host {raw}: {e}")),
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        resolver::with_aliases(&hosts)
    };
    let inv = resolver.inventory(&hosts);
    plan.notes
        .extend(inv.notes().iter().map(|n| n.text().to_owned()));
    plan.looked_in.extend(inv.looked_in().iter().cloned());
    for k in inv.keys() {
        if !k.valid() {
            let problem = check_api_key(k.key().expose()).unwrap_or_default();
            plan.notes.push(format!(
                "{} has no valid W&B API key ({problem}); left alone",
                k.place()
            ));
            continue;
        }
        let username = match (k.place(), k.shadowed()) {
            (Place::Netrc { path, machine, .. }, true) => {
                // Python's netrc reads the last entry; an earlier one with the same key goes
                // with it, one with another key stays unless --force.
                let read = inv.keys().iter().rev().find(|o| {
                    matches!(o.place(), Place::Netrc { path: p, machine: m, .. } if p == path && m == machine)
                });
                if read.is_some_and(|r| r.key().expose() == k.key().expose()) {
                    continue;
                }
                if !args.force {
                    plan.notes.push(format!(
                        "{} holds another key than the later entry for {machine}, which the SDK reads; kept in the file (`wbl migrate --force` stores it in the keychain as user {} and removes it)",
                        k.place(),
                        old_user(k.place())
                    ));
                    continue;
                }
                old_user(k.place())
            }
            _ => WANDB_USER.to_owned(),
        };
        plan.candidates.push(Candidate {
            source: Source::Wandb(k.place().clone()),
            cred: Credential::new(target_of(k.host()), username, k.key().clone()),
            links: k.links(),
        });
    }

    // git's credential-store files.
    let xdg = std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|v| !v.is_empty());
    let mut git_paths: Vec<PathBuf> = Vec::new();
    for p in store_file::default_paths(resolver.env().home(), xdg.as_deref()) {
        if !git_paths.iter().any(|q| same_file(q, &p)) {
            git_paths.push(p);
        }
    }
    for path in git_paths {
        let text = match read_secret_file(&path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                plan.notes.push(format!("{e:#}; left alone"));
                continue;
            }
        };
        let entries = store_file::parse(&text);
        if entries.is_empty() {
            continue;
        }
        if !args.git_credentials {
            plan.notes.push(format!(
                "{} holds {} git credential(s) in plaintext; add --git-credentials to move them too",
                path.display(),
                entries.len()
            ));
            continue;
        }
        plan.looked_in.push(path.clone());
        let links = link_count(&path);
        for e in entries {
            plan.candidates.push(Candidate {
                source: Source::GitCredentials {
                    path: path.clone(),
                    line: e.line,
                },
                cred: e.credential,
                links,
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
        Source::Wandb(Place::Netrc { path, machine, .. }) => {
            let Some(text) = read_secret_file(path)? else {
                return Ok(false);
            };
            let netrc = Netrc::parse(&text)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            // Every entry for this machine holding exactly this key, and nothing else: an
            // entry with another key stays (it is reported, or moved on its own with --force).
            let (new, n) = netrc.remove_where(|e| {
                e.machine.as_deref() == Some(machine.as_str()) && e.password.as_str() == secret
            });
            let new = Zeroizing::new(new);
            if n == 0 {
                return Ok(false);
            }
            write_atomic(path, new.as_bytes(), 0o600)?;
            Ok(true)
        }
        Source::Wandb(Place::Settings { path }) => {
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
    // Only compared with the copy being migrated: not a hand-out in the access log.
    let found = agent
        .purpose(wbl_proto::Purpose::Check)
        .get(Query {
            target: cred.target.clone(),
            username: Some(cred.username.clone()),
            account: Default::default(),
        })
        .with_context(|| format!("while looking up {} in the keychain", cred.target))?;
    Ok(found.filter(|c| c.target == cred.target && c.username == cred.username))
}

fn crash_hook() {
    if std::env::var_os(CRASH_AFTER_STORE_ENV).is_some_and(|v| v == "1") {
        // No core file from a deliberate crash.
        #[cfg(unix)]
        crate::sys::harden(crate::sys::Hardening {
            core_files: crate::sys::CoreFiles::Off,
            not_dumpable: false,
            deny_debugger: false,
        });
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
            // --force keeps this other W&B key under its own user name, so nothing is lost
            // and the key in use is not replaced.
            if let (true, Source::Wandb(place), WANDB_USER) =
                (args.force, &cand.source, cand.cred.username.as_str())
            {
                let mut other = cand.clone();
                other.cred.username = old_user(place);
                return migrate_one(agent, &other, args);
            }
            let keep_as = match &cand.source {
                Source::Wandb(place) if cand.cred.username == WANDB_USER => format!(
                    ", `wbl migrate --force` to keep it in the keychain as user {}",
                    old_user(place)
                ),
                _ => String::new(),
            };
            return Ok(Outcome::Left(format!(
                "left:   {what} in {source}: the keychain already holds a different value; \
                 remove the plaintext copy by hand{keep_as}, or `wbl logout` first to import it"
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
    if cand.links > 1 && !args.keep {
        let path = source.path().display();
        return Ok(Outcome::Left(format!(
            "left:   {what} in {source}: it is in the keychain now, but {path} has {} hard \
             links and removing the key here would leave it in the other(s); find them with \
             `find ~ -samefile {path}`, remove them (or copy the file so it has one name), \
             and run `{rerun}` again",
            cand.links
        )));
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
    let resolver = Resolver::from_env()?;
    if args.docker {
        super::migrate_docker::run(&args, resolver.env().home())?;
    }
    let plan = plan(&resolver, &args)?;
    for note in &plan.notes {
        println!("note:   {note}");
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
                    Source::Wandb(_) => wandb_moved |= removed,
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
    if done > 0 {
        println!(
            "hint:   copies of the same keys may sit in other files (a .env, W&B run files, \
             shell history): `wbl scan` finds them"
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
            eprintln!("wbl: error: {}", crate::text::printable(&msg.to_string()));
        }
        bail!("{last}");
    }
    Ok(())
}
