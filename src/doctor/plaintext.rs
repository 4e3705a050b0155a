//! Checks for keys outside the keychain: plaintext copies (every W&B key the SDK could read
//! in any netrc or settings file, from the resolver's inventory that `wbl migrate` moves, and
//! git's `~/.git-credentials`, registry logins in container tools' auth files), and
//! `WANDB_API_KEY` in the environment.

use super::{Ctx, Finding};
use crate::git::store_file;
use crate::wandb::fsutil::{read_secret_file, same_file};
use crate::wandb::resolver::{PlainKind, Resolver, WANDB_USER};

/// Which kind of file a plaintext secret (or a note) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Netrc,
    Settings,
    GitCredentials,
}

/// A plaintext secret, described without its value.
pub(crate) struct Found {
    pub kind: Kind,
    /// `https://api.wandb.ai`.
    pub what: String,
    /// The file, and where in it: `/home/u/.netrc (machine api.wandb.ai, line 1)`.
    pub place: String,
}

/// Something found but that `wbl migrate` leaves alone, and why; `about`: `None` for the
/// environment.
pub(crate) struct Note {
    pub about: Option<Kind>,
    pub text: String,
}

/// What was found, or why the search failed.
pub(crate) type Inventory = Result<(Vec<Found>, Vec<Note>), String>;

fn kind_of(k: PlainKind) -> Kind {
    match k {
        PlainKind::Netrc => Kind::Netrc,
        PlainKind::Settings => Kind::Settings,
    }
}

/// Every plaintext W&B key the SDK could read (every host, every netrc file, both settings
/// files, duplicates and hard-linked files flagged) and every line of git's credential-store
/// files. Reads files only; the secrets never leave this function.
fn inventory() -> anyhow::Result<(Vec<Found>, Vec<Note>)> {
    let resolver = Resolver::from_env()?;
    let (hosts, host_notes) = resolver.known_hosts();
    let inv = resolver.inventory(&hosts);
    let mut found = Vec::new();
    let mut notes: Vec<Note> = host_notes
        .into_iter()
        .chain(inv.notes().iter().cloned())
        .map(|n| Note {
            about: n.about().map(kind_of),
            text: n.text().to_owned(),
        })
        .collect();
    for k in inv.keys() {
        let kind = kind_of(k.place().kind());
        let mut place = k.place().to_string();
        if !k.valid() {
            place.push_str(" (not a valid key: the SDK refuses it)");
        }
        if k.shadowed() {
            place.push_str(SHADOWED);
        }
        if k.links() > 1 {
            notes.push(Note {
                about: Some(kind),
                text: format!(
                    "{} has {} hard links: `wbl migrate` copies its keys but does not remove them, or the other link(s) would keep them",
                    k.place().path().display(),
                    k.links()
                ),
            });
        }
        found.push(Found {
            kind,
            what: format!("{} (user {WANDB_USER})", k.host()),
            place,
        });
    }
    let xdg = std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|v| !v.is_empty());
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    for p in store_file::default_paths(resolver.env().home(), xdg.as_deref()) {
        if !paths.iter().any(|q| same_file(q, &p)) {
            paths.push(p);
        }
    }
    for path in paths {
        match read_secret_file(&path) {
            Ok(Some(text)) => {
                for e in store_file::parse(&text) {
                    found.push(Found {
                        kind: Kind::GitCredentials,
                        what: format!("{} (user {})", e.credential.target, e.credential.username),
                        place: format!("{} (line {})", path.display(), e.line),
                    });
                }
            }
            Ok(None) => {}
            Err(e) => notes.push(Note {
                about: Some(Kind::GitCredentials),
                text: format!("{e:#}; left alone"),
            }),
        }
    }
    notes.dedup_by(|a, b| a.text == b.text);
    Ok((found, notes))
}

/// One kind of plaintext file: a problem when secrets are found (`noun`, with `fix`), a warning
/// for what `wbl migrate` would leave alone there, else `none`.
fn plaintext(ctx: &mut Ctx, kind: Kind, noun: &str, none: &str, fix: &str) -> Finding {
    let searched = ctx
        .plaintext
        .get_or_insert_with(|| inventory().map_err(|e| format!("{e:#}")));
    let (found, notes) = match searched {
        Ok(x) => x,
        Err(e) => {
            return Finding::warning(
                format!("cannot look for plaintext keys: {e}"),
                "`wbl migrate --dry-run` shows the same search",
            );
        }
    };
    let found: Vec<&Found> = found.iter().filter(|f| f.kind == kind).collect();
    let notes: Vec<&Note> = notes.iter().filter(|n| n.about == Some(kind)).collect();
    if !found.is_empty() {
        let list: Vec<String> = found
            .iter()
            .map(|f| format!("{} in {}", f.what, f.place))
            .collect();
        let mut detail = format!("{} {noun}: {}", found.len(), list.join("; "));
        if !notes.is_empty() {
            detail.push_str(&format!(" (and {} more left alone)", notes.len()));
        }
        // The files wbl knows are not the only copies: the same key is often in a `.env`,
        // a run's config.yaml or the shell history too.
        return Finding::problem(
            detail,
            format!(
                "{fix}; then `wbl scan` finds the other copies of your keys (a .env, W&B run \
                 files, shell history)"
            ),
        );
    }
    if let Some(first) = notes.first() {
        let more = match notes.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Finding::warning(
            format!("{}{more}", first.text),
            "`wbl migrate --dry-run --git-credentials` lists what is found; fix the rest by hand",
        );
    }
    Finding::ok(none)
}

/// Marks a netrc entry the SDK does not read (an earlier duplicate) in `Found::place`.
const SHADOWED: &str = " (a later entry for the same machine is the one the SDK reads)";

pub(super) fn netrc(ctx: &mut Ctx) -> Finding {
    let mut f = plaintext(
        ctx,
        Kind::Netrc,
        "plaintext W&B key(s) in netrc",
        "no W&B key in a netrc file",
        "`wbl migrate` (moves them into the keychain, keeps the rest of the file)",
    );
    if f.detail.contains(SHADOWED)
        && let Some(fix) = &mut f.fix
    {
        fix.push_str(
            "; earlier duplicate entries with another key stay unless `wbl migrate --force`",
        );
    }
    f
}

pub(super) fn settings(ctx: &mut Ctx) -> Finding {
    plaintext(
        ctx,
        Kind::Settings,
        "plaintext W&B key(s) as api_key in a W&B settings file",
        "no api_key in the W&B settings files",
        "`wbl migrate` (moves them into the keychain, keeps the rest of the file)",
    )
}

pub(super) fn git_credentials(ctx: &mut Ctx) -> Finding {
    plaintext(
        ctx,
        Kind::GitCredentials,
        "plaintext git password(s) of git's `store` helper",
        "no passwords in git's credential-store files (~/.git-credentials)",
        "`wbl migrate --git-credentials`, then `wbl setup-git --host URL` for each host",
    )
}

pub(super) fn api_key_env(_ctx: &mut Ctx) -> Finding {
    // The resolver reads the environment (source 1 of every resolution).
    let set = match crate::wandb::resolver::WandbEnv::from_env() {
        Ok(env) => env.api_key().is_some(),
        Err(_) => std::env::var_os("WANDB_API_KEY").is_some_and(|v| !v.is_empty()),
    };
    if set {
        Finding::warning(
            "WANDB_API_KEY is set: the W&B SDK (and `wbl login`) use it instead of the keychain, and every program started from this shell inherits it",
            "`unset WANDB_API_KEY` (and remove it from your shell profile); give it only to the program that needs it: `wbl exec -- python train.py`",
        )
    } else {
        Finding::ok("WANDB_API_KEY is not set; W&B keys come from the keychain")
    }
}

/// Registry logins kept in plaintext (`auths` … `auth`: base64 of user:password) in
/// `~/.docker/config.json` and podman's `auth.json` files (`crate::docker_auth`).
pub(super) fn docker_logins(_ctx: &mut Ctx) -> Finding {
    let home = match crate::wandb::resolver::WandbEnv::from_env() {
        Ok(env) => env.home().to_path_buf(),
        Err(e) => {
            return Finding::warning(
                format!("cannot look for container auth files: {e:#}"),
                "`wbl migrate --docker --dry-run` shows the same search",
            );
        }
    };
    let (mut found, mut left, mut unreadable) = (Vec::new(), 0usize, Vec::new());
    for path in crate::docker_auth::auth_files(&home) {
        let text = match read_secret_file(&path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                unreadable.push(format!("{e:#}"));
                continue;
            }
        };
        match crate::docker_auth::plaintext_logins(&text) {
            Ok(f) => {
                left += f.left.len();
                found.extend(f.logins.iter().map(|l| {
                    format!("{} (user {}) in {}", l.registry, l.username, path.display())
                }));
            }
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
    if !found.is_empty() {
        let mut detail = format!(
            "{} plaintext registry login(s): {}",
            found.len(),
            found.join("; ")
        );
        if left > 0 {
            detail.push_str(&format!(" (and {left} more that cannot move to a helper)"));
        }
        return Finding::problem(
            detail,
            "`wbl migrate --docker` (moves them into the keychain and names wbl the registries' \
             credential helper, keeping the rest of the file)",
        );
    }
    if let Some(first) = unreadable.first() {
        return Finding::warning(
            first.clone(),
            "fix or remove the file; `wbl migrate --docker --dry-run` shows what is found",
        );
    }
    if left > 0 {
        return Finding::warning(
            format!(
                "{left} plaintext registry login(s) for one namespace each, which a credential helper cannot take"
            ),
            "`wbl migrate --docker --dry-run` lists them; log in again once wbl is the registry's helper",
        );
    }
    Finding::ok("no plaintext registry logins in ~/.docker/config.json or podman's auth.json")
}
