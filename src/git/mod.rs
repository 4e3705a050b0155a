//! git integration: the credential-helper format that `wbl credential` speaks, git's reading of
//! credential URLs, and `credential-store`'s plaintext file that `wbl migrate` empties.

pub mod credential;
pub mod store_file;
pub mod url;

/// True when `value` runs some wbl's `credential` subcommand (this one or another install).
pub fn is_wbl_helper(value: &str) -> bool {
    let command = value.strip_prefix('!').unwrap_or(value);
    let Some(words) = crate::shell::shlex_split(command) else {
        return false;
    };
    let [program, sub] = words.as_slice() else {
        return false;
    };
    let name = program.rsplit(['/', '\\']).next().unwrap_or(program);
    sub == "credential" && (name == "wbl" || name.eq_ignore_ascii_case("wbl.exe"))
}
