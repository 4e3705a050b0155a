//! The plaintext file of git's `credential-store` helper (`~/.git-credentials`,
//! `$XDG_CONFIG_HOME/git/credentials`): one URL per line,
//! `https://user:password@host[/path]`, percent-encoded.
//!
//! Read as `credential-store` reads it (each line parsed like a `url=`; lines that do not parse,
//! or lack a user name or password, are not credentials). Removal drops whole lines and keeps
//! every other byte, line endings included.

use std::ops::Range;
use std::path::{Path, PathBuf};

use wbl_proto::{Credential, Target};

use super::url;

/// One credential line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    /// 1-based line number.
    pub line: usize,
    /// The line's bytes, its terminator included.
    pub span: Range<usize>,
    pub credential: Credential,
}

/// Splits `text` into lines keeping their `\n` (a `\r` before it belongs to the line's
/// content for git, which strips it when reading).
fn lines(text: &str) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
    let mut start = 0;
    let mut n = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let r = start..end;
        start = end;
        n += 1;
        Some((n, r))
    })
}

/// Every credential in the file, in file order.
pub fn parse(text: &str) -> Vec<StoreEntry> {
    let mut out = Vec::new();
    for (line, span) in lines(text) {
        let content = text[span.clone()].trim_end_matches('\n');
        let content = content.strip_suffix('\r').unwrap_or(content);
        let Ok(parts) = url::parse(content) else {
            continue;
        };
        let (Some(username), Some(password)) = (parts.username, parts.password) else {
            continue;
        };
        if parts.host.is_empty() || password.is_empty() {
            continue;
        }
        let target = Target {
            protocol: parts.protocol,
            host: parts.host,
            path: parts.path,
        };
        out.push(StoreEntry {
            line,
            span,
            credential: Credential::new(target, username, password),
        });
    }
    out
}

/// Removes every line holding exactly `cred` (target, user name and password); returns the new
/// text and how many lines went.
pub fn remove(text: &str, cred: &Credential) -> (String, usize) {
    let doomed: Vec<Range<usize>> = parse(text)
        .into_iter()
        .filter(|e| {
            e.credential.target == cred.target
                && e.credential.username == cred.username
                && e.credential.password == cred.password
        })
        .map(|e| e.span)
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for span in &doomed {
        out.push_str(&text[pos..span.start]);
        pos = span.end;
    }
    out.push_str(&text[pos..]);
    (out, doomed.len())
}

/// The files `credential-store` reads by default: `~/.git-credentials`, then
/// `$XDG_CONFIG_HOME/git/credentials` (or `~/.config/git/credentials`).
pub fn default_paths(home: &Path, xdg_config_home: Option<&str>) -> Vec<PathBuf> {
    let xdg = match xdg_config_home.filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home.join(".config"),
    };
    vec![
        home.join(".git-credentials"),
        xdg.join("git").join("credentials"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "https://alice:s3cr%40t@github.com\n\
                        not a url\n\
                        \n\
                        https://nopassword@example.com\n\
                        http://bob:pw@git.example.com:8080/team/repo.git\r\n\
                        https://alice:s3cr%40t@github.com";

    #[test]
    fn reads_credentials_and_skips_the_rest() {
        let e = parse(FILE);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].line, 1);
        assert_eq!(e[0].credential.username, "alice");
        assert_eq!(e[0].credential.password.expose(), "s3cr@t");
        assert_eq!(e[0].credential.target, Target::new("https", "github.com"));
        assert_eq!(e[1].line, 5);
        assert_eq!(e[1].credential.target.host, "git.example.com:8080");
        assert_eq!(
            e[1].credential.target.path.as_deref(),
            Some("team/repo.git")
        );
        assert_eq!(e[1].credential.password.expose(), "pw");
        assert_eq!(e[2].line, 6);
    }

    #[test]
    fn removal_keeps_every_other_byte() {
        let alice = parse(FILE)[0].credential.clone();
        let (text, n) = remove(FILE, &alice);
        assert_eq!(n, 2);
        assert_eq!(
            text,
            "not a url\n\nhttps://nopassword@example.com\n\
             http://bob:pw@git.example.com:8080/team/repo.git\r\n"
        );
        let bob = parse(FILE)[1].credential.clone();
        let (text, n) = remove(&text, &bob);
        assert_eq!(n, 1);
        assert_eq!(text, "not a url\n\nhttps://nopassword@example.com\n");
        // A different password is not the same credential.
        let mut other = alice.clone();
        other.password = "x".into();
        assert_eq!(remove(FILE, &other), (FILE.to_owned(), 0));
    }

    #[test]
    fn default_paths_follow_xdg() {
        let home = Path::new("/h");
        assert_eq!(
            default_paths(home, None),
            vec![
                PathBuf::from("/h/.git-credentials"),
                PathBuf::from("/h/.config/git/credentials")
            ]
        );
        assert_eq!(
            default_paths(home, Some("/x"))[1],
            PathBuf::from("/x/git/credentials")
        );
    }
}
