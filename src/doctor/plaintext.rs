//! Checks for keys outside the keychain: plaintext copies (netrc, W&B settings `api_key`,
//! git's `~/.git-credentials`), found exactly as `wbl migrate` finds them so that its fix is
//! `wbl migrate`, and `WANDB_API_KEY` in the environment.

use super::{Ctx, Finding};
use crate::cmd::migrate::{Found, Kind, Note, inventory};

/// What `wbl migrate --git-credentials` would find, or why the search failed.
pub(crate) type Inventory = Result<(Vec<Found>, Vec<Note>), String>;

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
        return Finding::problem(detail, fix);
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

pub(super) fn netrc(ctx: &mut Ctx) -> Finding {
    plaintext(
        ctx,
        Kind::Netrc,
        "plaintext W&B key(s) in netrc",
        "no W&B key in a netrc file",
        "`wbl migrate` (moves them into the keychain, keeps the rest of the file)",
    )
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
    if std::env::var_os("WANDB_API_KEY").is_some_and(|v| !v.is_empty()) {
        Finding::warning(
            "WANDB_API_KEY is set: the W&B SDK (and `wbl login`) use it instead of the keychain, and every program started from this shell inherits it",
            "`unset WANDB_API_KEY` (and remove it from your shell profile); give it only to the program that needs it: `wbl exec -- python train.py`",
        )
    } else {
        Finding::ok("WANDB_API_KEY is not set; W&B keys come from the keychain")
    }
}
