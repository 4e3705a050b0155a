//! `wbl migrate --docker`: registry logins kept in plaintext in container tools' auth files
//! (`~/.docker/config.json`, podman's `auth.json`; `docker_auth` finds them) move into the
//! keychain, stored through the agent exactly as `docker-credential-wbl store` stores them,
//! and the file names `wbl` as those registries' credential helper (`credHelpers`).
//!
//! Nothing is lost on the way: each login is stored, read back and compared first; a registry
//! the keychain already holds another login for is left in the file; the file is re-read just
//! before it is rewritten and left alone if it changed meanwhile; the rewrite keeps every other
//! field and the file's mode and replaces it atomically (`fsutil::write_atomic`).

use std::path::Path;

use anyhow::{Context, bail};
use wbl_proto::{Credential, Query};

use crate::cli::MigrateArgs;
use crate::client::{AgentClient, connect_or_start};
use crate::docker_auth::{self, Login};
use crate::rendezvous::RuntimePaths;
use crate::wandb::fsutil::read_secret_file;
use crate::wandb::fsutil::write_atomic;

/// Moves (or with `--dry-run` lists, with `--keep` copies) the plaintext registry logins of
/// every auth file under `home`.
pub fn run(args: &MigrateArgs, home: &Path) -> anyhow::Result<()> {
    let mut agent: Option<AgentClient> = None;
    let (mut moved, mut left) = (0usize, 0usize);
    let mut looked = Vec::new();
    for path in docker_auth::auth_files(home) {
        let Some(text) = read_secret_file(&path)? else {
            continue;
        };
        looked.push(path.display().to_string());
        let found = match docker_auth::plaintext_logins(&text) {
            Ok(f) => f,
            Err(e) => {
                println!("note:   {}: {e}; left alone", path.display());
                continue;
            }
        };
        for note in &found.left {
            println!("note:   {}: {note}", path.display());
            left += 1;
        }
        if found.logins.is_empty() {
            continue;
        }
        if args.dry_run {
            for l in &found.logins {
                println!(
                    "would {}: registry login {} (user {}) from {} to the keychain{}",
                    if args.keep { "copy" } else { "move" },
                    l.registry,
                    l.username,
                    path.display(),
                    if args.keep {
                        String::new()
                    } else {
                        format!(", with `\"credHelpers\": {{\"{}\": \"wbl\"}}`", l.registry)
                    }
                );
            }
            continue;
        }
        let agent = match &mut agent {
            Some(a) => a,
            None => agent.insert(connect_persistent(args)?),
        };
        let mut in_keychain = Vec::new();
        for login in &found.logins {
            match store(agent, login)? {
                Ok(()) => in_keychain.push(login.registry.clone()),
                Err(why) => {
                    println!("left:   {} in {}: {why}", login.registry, path.display());
                    left += 1;
                }
            }
        }
        if in_keychain.is_empty() {
            continue;
        }
        if args.keep {
            for r in &in_keychain {
                println!(
                    "copied: registry login {r} from {} to the keychain (--keep: the file \
                     still has it)",
                    path.display()
                );
            }
            moved += in_keychain.len();
            continue;
        }
        // The file as it is now: a tool may have written it while we stored.
        let now = read_secret_file(&path)?;
        if now.as_deref().map(String::as_str) != Some(text.as_str()) {
            println!(
                "left:   {}: it changed while wbl migrated it; the logins are in the keychain \
                 and stay in the file too (run `wbl migrate --docker` again)",
                path.display()
            );
            left += in_keychain.len();
            continue;
        }
        let new = docker_auth::without_logins(&text, &in_keychain)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        write_atomic(&path, new.as_bytes(), 0o600)
            .with_context(|| format!("while rewriting {}", path.display()))?;
        for r in &in_keychain {
            println!(
                "moved:  registry login {r} from {} to the keychain; the file names wbl its \
                 credential helper",
                path.display()
            );
        }
        moved += in_keychain.len();
    }
    if args.dry_run {
        return Ok(());
    }
    if looked.is_empty() {
        println!("wbl: no container auth file found (~/.docker/config.json, podman's auth.json).");
    } else {
        println!(
            "wbl: {moved} registry login(s) {} to the keychain, {left} left in place ({}).",
            if args.keep { "copied" } else { "moved" },
            looked.join(", ")
        );
    }
    if moved > 0 && !args.keep {
        println!(
            "hint:   docker, podman and skopeo now run docker-credential-wbl for those \
             registries: it must be on PATH (scripts/install puts it beside wbl)"
        );
    }
    Ok(())
}

/// The agent, refusing (before any change) a keychain that forgets at reboot unless `--keep`.
fn connect_persistent(args: &MigrateArgs) -> anyhow::Result<AgentClient> {
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let status = agent
        .status()
        .context("while asking wbl-agent which keychain it uses")?;
    if !status.backend_persistent && !args.keep {
        bail!(
            "the keychain in use ({}) does not keep keys across a reboot, so moving registry \
             logins there would lose them at the next reboot; nothing was changed. Import \
             without removing them with `wbl migrate --docker --keep`, or run a Secret Service",
            status.backend
        );
    }
    Ok(agent)
}

/// Stores one login as `docker-credential-wbl store` does (the registry's only login), then
/// reads it back. `Ok(Err(why))`: left in the file, nothing changed in the keychain.
fn store(agent: &mut AgentClient, login: &Login) -> anyhow::Result<Result<(), String>> {
    let target = crate::docker::target(&login.registry)
        .map_err(|e| anyhow::anyhow!("{}: {e}", login.registry))?;
    let held = crate::client::not_found_is_none(agent.get(Query {
        target: target.clone(),
        username: None,
        account: Default::default(),
    }))
    .with_context(|| format!("while looking up {} in the keychain", login.registry))?
    .filter(|c| c.target.path == target.path);
    if let Some(c) = held {
        return Ok(
            if c.username == login.username && c.password.expose() == login.secret.expose() {
                Ok(())
            } else {
                Err(format!(
                    "the keychain already holds another login for it (user {}); not overwritten",
                    c.username
                ))
            },
        );
    }
    agent
        .store(Credential::new(
            target.clone(),
            login.username.clone(),
            login.secret.clone(),
        ))
        .with_context(|| format!("while storing the login for {}", login.registry))?;
    let back = crate::client::not_found_is_none(agent.get(Query {
        target: target.clone(),
        username: Some(login.username.clone()),
        account: Default::default(),
    }))
    .with_context(|| format!("while reading back the login for {}", login.registry))?;
    Ok(match back {
        Some(c) if c.target == target && c.password.expose() == login.secret.expose() => Ok(()),
        _ => Err("the keychain did not give back the login just stored".to_owned()),
    })
}
