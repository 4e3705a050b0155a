//! Text that came from outside — host and user names (from git, a forwarded remote client, the
//! keychain), servers' error messages, executable paths — made safe to show: [`printable`]
//! escapes what a terminal or a log reader would act on, and [`username`] masks user names
//! that are tokens. Every place that shows such text to a person goes through here; JSON output
//! (`--json`) does its own escaping and is left as it is.

use std::borrow::Cow;
use std::fmt::Write;

/// True for a character that must not reach a terminal or a line-based log as it is: C0 and
/// C1 controls (ESC, newline, carriage return, backspace, …), DEL, and the invisible
/// characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// characters, the byte-order mark).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// `s` with every character a terminal would act on written as an escape (`\e` → `\x1b`,
/// newline → `\n`, U+202E → `\u{202e}`), so a name can neither move the cursor, recolour,
/// erase or forge a line, nor hide text. Borrowed when there is nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Prefixes of access tokens that people put in URLs as the user name
/// (`https://ghp_…@github.com/…`): GitHub, GitLab, Hugging Face, W&B, Slack, OpenAI, npm,
/// PyPI, Atlassian, DigitalOcean.
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glptt-",
    "hf_",
    "wandb_v1_",
    "xoxb-",
    "xoxp-",
    "sk-",
    "npm_",
    "pypi-",
    "ATATT",
    "dop_v1_",
];

/// The shortest user name taken for a token by its look alone (no known prefix).
const LONG: usize = 32;

/// True when `name` looks like a token rather than a user name: it starts with a known token
/// prefix (and has more after it), or it is long (at least [`LONG`] characters), of token
/// characters only, and mixes letters and digits in a way names do not (Shannon entropy of at
/// least 3 bits per character). W&B's own `api` and e-mail addresses are not tokens.
pub fn looks_like_token(name: &str) -> bool {
    if TOKEN_PREFIXES
        .iter()
        .any(|p| name.len() > p.len() + 4 && name.starts_with(p))
    {
        return true;
    }
    let n = name.chars().count();
    if n < LONG
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '/' | '='))
    {
        return false;
    }
    let has_digit = name.chars().any(|c| c.is_ascii_digit());
    let has_alpha = name.chars().any(|c| c.is_ascii_alphabetic());
    has_digit && has_alpha && entropy(name) >= 3.0
}

/// Shannon entropy of `s`'s characters, in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * libm::log2(p)
        })
        .sum()
}

/// A user name as the access log records it: as it is, unless it [`looks_like_token`]; then
/// its known prefix (or first four characters) and its last four, with `…` between
/// (`ghp_…wxyz`). Never the whole token.
pub fn username(name: &str) -> Cow<'_, str> {
    if !looks_like_token(name) {
        return Cow::Borrowed(name);
    }
    let chars: Vec<char> = name.chars().collect();
    let head = TOKEN_PREFIXES
        .iter()
        .find(|p| name.starts_with(*p))
        .map_or(4, |p| p.chars().count());
    let tail: String = chars[chars.len() - 4..].iter().collect();
    let head: String = chars[..head].iter().collect();
    Cow::Owned(format!("{head}…{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(
            printable("api.wandb.ai:8443/ä"),
            Cow::Borrowed("api.wandb.ai:8443/ä")
        ));
        assert_eq!(printable("evil\x1b[2K.com"), "evil\\x1b[2K.com");
        assert_eq!(printable("a\nb\rc\td\x7f"), "a\\nb\\rc\\td\\x7f");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("gnp.\u{202e}exe"), "gnp.\\u{202e}exe");
        assert_eq!(printable("zero\u{200b}width"), "zero\\u{200b}width");
        let escaped = printable("\x1b]0;title\x07\x1b[1A\x1b[2K");
        assert!(!escaped.chars().any(|c| c.is_control()), "{escaped}");
    }

    #[test]
    fn tokens_are_masked_and_names_are_not() {
        let gh = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
        assert_eq!(username(gh), "ghp_…6789");
        assert_eq!(
            username("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
            "github_pat_…wxyz"
        );
        assert_eq!(username("glpat-xxxxYYYYzzzz1234"), "glpat-…1234");
        assert_eq!(username("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01"), "hf_…Yz01");
        let wandb = format!("wandb_v1_{}", "a1B2".repeat(20));
        assert_eq!(username(&wandb), "wandb_v1_…a1B2");
        // A W&B key without a prefix: long and high-entropy.
        let key = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(username(key), "0123…4567");
        for name in [
            "api",
            "git",
            "oauth2",
            "x-access-token",
            "alice@example.com",
            "firstname.lastname",
            "AzureDevOps",
            "hf_",
            "a-very-long-but-ordinary-user-name-without-digits",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
        ] {
            assert_eq!(username(name), name, "{name}");
        }
        // Never the whole token, whatever its length.
        for t in [gh, key, wandb.as_str()] {
            assert!(!username(t).contains(&t[5..t.len() - 4]), "{t}");
        }
    }
}
