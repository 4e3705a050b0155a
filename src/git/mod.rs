//! git integration: the credential-helper format that `wbl credential` speaks, git's reading of
//! credential URLs, and `credential-store`'s plaintext file that `wbl migrate` empties.

pub mod credential;
pub mod store_file;
pub mod url;

/// The name of wbl's git helper program (`git-credential-wbl`), which git runs for a helper
/// named `wbl`.
pub const GIT_HELPER: &str = "git-credential-wbl";

/// True when `value` runs some wbl's git helper (this one or another install): `wbl`,
/// `<path>/git-credential-wbl` or `<path>/wbl credential`.
pub fn is_wbl_helper(value: &str) -> bool {
    if value == "wbl" {
        return true;
    }
    let command = value.strip_prefix('!').unwrap_or(value);
    let Some(words) = crate::shell::shlex_split(command) else {
        return false;
    };
    let name = |program: &str| -> String {
        let base = program.rsplit(['/', '\\']).next().unwrap_or(program);
        let lower = base.to_ascii_lowercase();
        lower.strip_suffix(".exe").unwrap_or(&lower).to_owned()
    };
    match words.as_slice() {
        [program] => name(program) == GIT_HELPER,
        [program, sub] => sub == "credential" && name(program) == "wbl",
        _ => false,
    }
}
