//! Shell words. Python's `shlex` rules, which the SDK uses to read and write netrc lines and git
//! uses (in its own POSIX-shell way) for helper commands: split a line into words, quote a word;
//! and [`quote_for_any_shell`], for a command line that a user's login shell of any kind reads
//! (`wbl ssh`'s remote command).
//! Hand-written (about 60 lines) because the SDK's exact behaviour matters here — where
//! Python raises, we return `None` — and the `shlex` crate follows POSIX shells instead.

/// Python's `shlex.split(s)` (POSIX mode, no comments); `None` where Python
/// raises `ValueError` (unclosed quote, trailing backslash).
pub fn shlex_split(s: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '\\' => {
                cur.push(chars.next()?);
                in_token = true;
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let x = chars.next()?;
                            if x != '"' && x != '\\' {
                                cur.push('\\');
                            }
                            cur.push(x);
                        }
                        x => cur.push(x),
                    }
                }
            }
            x => {
                cur.push(x);
                in_token = true;
            }
        }
    }
    if in_token {
        tokens.push(cur);
    }
    Some(tokens)
}

/// Python's `shlex.quote`: unchanged if non-empty and made only of
/// `[A-Za-z0-9_@%+=:,./-]`, else single-quoted with `'` written as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Quotes `s` as one word for POSIX shells, bash, zsh and fish alike: everything inside single
/// quotes except `'` and `\`, which go outside as `\'` and `\\` (fish gives `\` a meaning
/// inside single quotes; outside, every one of these shells reads `\x` as `x`).
pub fn quote_for_any_shell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut open = false;
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            if open {
                out.push('\'');
                open = false;
            }
            out.push('\\');
            out.push(c);
        } else {
            if !open {
                out.push('\'');
                open = true;
            }
            out.push(c);
        }
    }
    if open {
        out.push('\'');
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_split_like_python() {
        let s = |x: &str| shlex_split(x);
        let v = |a: &[&str]| Some(a.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s("machine 'a b' c"), v(&["machine", "a b", "c"]));
        assert_eq!(s("a\"b c\"d"), v(&["ab cd"]));
        assert_eq!(s("\"x\\\"y\\z\""), v(&["x\"y\\z"]));
        assert_eq!(s("a\\ b"), v(&["a b"]));
        assert_eq!(s("''"), v(&[""]));
        assert_eq!(s("'open"), None);
        assert_eq!(s("trail\\"), None);
    }

    #[test]
    fn quote_like_python() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("my.host:8080"), "my.host:8080");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(
            shlex_split(&shell_quote("a 'b\" c")),
            Some(vec!["a 'b\" c".to_owned()])
        );
    }
    #[test]
    fn quoting_survives_sh() {
        for s in [
            "plain",
            "it's",
            "a\\b",
            "$HOME `x` \"q\"",
            "",
            "a\nb",
            "\\'",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote_for_any_shell(s)))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                s,
                "{}",
                quote_for_any_shell(s)
            );
        }
    }
}
