//! Offline format check for W&B API keys, and masking for display.
//!
//! This mirrors `wandb/sdk/lib/wbauth/validation.py::check_api_key` so that a
//! key `wbl` accepts is one the SDK accepts, and the problem sentences match
//! the SDK byte for byte (callers prefix them, e.g. `WANDB_API_KEY invalid: `).

/// Message for an empty key (spec E.1).
const EMPTY: &str = "API key is empty.";
/// Message for a key whose secret part has non-word characters (spec E.4). The SDK's sentence
/// leaves out `-`, which it accepts; wbl names it.
const BAD_CHARS: &str =
    "API key may only contain the letters A-Z, digits, underscores and dashes (-).";

/// Python's `\w` for `str` patterns: Unicode letters and numbers, plus `_`.
///
/// `char::is_alphanumeric` (Alphabetic or Numeric) is the closest std
/// equivalent of `str.isalnum()`, which is what CPython's `\w` uses.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `[\w-]`
fn is_word_or_dash(c: char) -> bool {
    is_word(c) || c == '-'
}

/// Full match of `[\w-]+`.
fn is_word_dash_run(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_word_or_dash)
}

/// Full match of `[\w-]+\.[\w-]+\.[\w-]+` (a JWT-shaped token).
///
/// Since `[\w-]` excludes `.`, a full match means exactly three non-empty
/// dot-separated parts made only of word characters and dashes.
fn is_jwt_shape(key: &str) -> bool {
    let mut parts = 0usize;
    for part in key.split('.') {
        parts += 1;
        if parts > 3 || !is_word_dash_run(part) {
            return false;
        }
    }
    parts == 3
}

/// Returns the problem with `key`'s format, or `None` if the SDK would accept it.
///
/// Rules (`check_api_key` in `wandb/sdk/lib/wbauth/validation.py`, wandb 0.31.0), in order:
/// 1. empty → `API key is empty.`
/// 2. JWT-shaped (`a.b.c` of `[\w-]+`) → valid, whatever its length;
/// 3. the secret is the part after the first `-` (the prefix, e.g. `local`,
///    is arbitrary and not counted);
/// 4. the secret must be `[\w-]+`;
/// 5. the secret must have at least 40 characters (Unicode scalar values,
///    as Python's `len` counts them).
///
/// The returned sentence never contains the key itself.
pub fn check_api_key(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some(EMPTY.to_owned());
    }
    if is_jwt_shape(key) {
        return None;
    }
    let (secret, prefixed) = match key.split_once('-') {
        Some((_prefix, secret)) => (secret, true),
        None => (key, false),
    };
    if !is_word_dash_run(secret) {
        return Some(BAD_CHARS.to_owned());
    }
    let n = secret.chars().count();
    if n < 40 {
        // The SDK's sentence; with a prefix, the count would puzzle without the rule behind it.
        return Some(if prefixed {
            format!(
                "API key must have 40+ characters, has {n} after its prefix (the part up to the \
                 first `-` is not counted)."
            )
        } else {
            format!("API key must have 40+ characters, has {n}.")
        });
    }
    None
}

/// Placeholder used where characters of a key are hidden.
pub const MASK: &str = "****";

/// Keys shorter than this (in characters) are hidden completely, because
/// showing 8 of them would reveal most of the secret.
const MIN_PARTIAL_MASK_LEN: usize = 12;

/// Masks a key for display: the first 4 and last 4 characters around `****`
/// (e.g. `abcd****wxyz`), or just `****` for keys under 12 characters.
///
/// Works on characters, not bytes, so it never splits a UTF-8 sequence.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let n = chars.len();
    if n < MIN_PARTIAL_MASK_LEN {
        return MASK.to_owned();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(n - 4).collect();
    format!("{head}{MASK}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: usize) -> String {
        "a".repeat(n)
    }

    #[test]
    fn empty_key() {
        assert_eq!(check_api_key("").as_deref(), Some("API key is empty."));
    }

    #[test]
    fn legacy_40_hex_ok() {
        assert_eq!(
            check_api_key("0123456789abcdef0123456789abcdef01234567"),
            None
        );
        assert_eq!(check_api_key(&a(40)), None);
    }

    #[test]
    fn long_new_format_ok() {
        let key = format!("wandb_v1_{}", "Ab9_".repeat(21));
        assert!(key.len() > 80);
        assert_eq!(check_api_key(&key), None);
    }

    #[test]
    fn scenario_3_short() {
        assert_eq!(
            check_api_key("short").as_deref(),
            Some("API key must have 40+ characters, has 5.")
        );
        assert_eq!(
            check_api_key(&a(39)).as_deref(),
            Some("API key must have 40+ characters, has 39.")
        );
    }

    #[test]
    fn scenario_4_bad_chars() {
        let msg = Some(BAD_CHARS);
        assert_eq!(check_api_key(&format!("bad key!{}", a(40))).as_deref(), msg);
        assert_eq!(check_api_key(&format!("{}!", a(40))).as_deref(), msg);
        assert_eq!(check_api_key(&format!("{} ", a(40))).as_deref(), msg);
        assert_eq!(check_api_key(&format!("{}\n", a(40))).as_deref(), msg);
        // A dot that does not make a JWT shape is a bad character.
        assert_eq!(check_api_key(&format!("{}.b", a(40))).as_deref(), msg);
        assert_eq!(check_api_key("a.b.c.d").as_deref(), msg);
        // Only-dash prefix: secret empty → fails `[\w-]+`.
        assert_eq!(check_api_key("local-").as_deref(), msg);
        assert_eq!(check_api_key("-").as_deref(), msg);
    }

    const PREFIXED_39: &str = "API key must have 40+ characters, has 39 after its prefix (the part \
        up to the first `-` is not counted).";

    #[test]
    fn scenario_5_prefix() {
        // `short-key` has 3: the message says why it is not 9.
        assert_eq!(
            check_api_key("short-key").as_deref(),
            Some(
                "API key must have 40+ characters, has 3 after its prefix (the part up to the \
                 first `-` is not counted)."
            )
        );
        // Dashes are allowed, and the message says so.
        assert!(BAD_CHARS.contains("dashes (-)"));
        assert_eq!(check_api_key(&format!("local-{}", a(40))), None);
        assert_eq!(
            check_api_key(&format!("local-{}", a(39))).as_deref(),
            Some(PREFIXED_39)
        );
        // Prefix may itself be anything, even non-word characters.
        assert_eq!(check_api_key(&format!("we ird!-{}", a(40))), None);
        // Only the FIRST dash splits: later dashes are part of the secret.
        assert_eq!(check_api_key(&format!("p-{}-{}", a(20), a(19))), None);
        assert_eq!(
            check_api_key(&format!("p-{}-{}", a(20), a(18))).as_deref(),
            Some(PREFIXED_39)
        );
    }

    #[test]
    fn scenario_6_jwt_shape() {
        assert_eq!(check_api_key("aaa.bbb.ccc"), None);
        assert_eq!(check_api_key("a-b.c_d.e-f"), None);
        assert_eq!(check_api_key("é.ß.ñ"), None);
        assert!(check_api_key("aaa..ccc").is_some());
        assert!(check_api_key(".bbb.ccc").is_some());
        assert!(check_api_key("aaa.bbb.").is_some());
        assert!(check_api_key("a!a.bbb.ccc").is_some());
    }

    #[test]
    fn unicode_word_chars_counted_in_chars() {
        // 40 non-ASCII letters are 80 bytes but 40 characters → valid.
        assert_eq!(check_api_key(&"é".repeat(40)), None);
        assert_eq!(
            check_api_key(&"é".repeat(39)).as_deref(),
            Some("API key must have 40+ characters, has 39.")
        );
        // Digits from other scripts are word characters too.
        assert_eq!(check_api_key(&"٣".repeat(40)), None);
        // Symbols and emoji are not.
        assert!(check_api_key(&format!("{}€", a(40))).is_some());
        assert!(check_api_key(&format!("{}😀", a(40))).is_some());
    }

    #[test]
    fn messages_never_contain_key() {
        for key in ["short", "bad key!", "local-abc", "sekrit$$$$"] {
            let msg = check_api_key(key).unwrap_or_default();
            assert!(!msg.contains(key), "{msg}");
        }
    }

    #[test]
    fn mask_shapes() {
        assert_eq!(mask(""), "****");
        assert_eq!(mask("abcdefghijk"), "****");
        assert_eq!(mask("abcdefghijkl"), "abcd****ijkl");
        assert_eq!(mask(&a(40)), "aaaa****aaaa");
        assert_eq!(mask("éééééééééééé"), "éééé****éééé");
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = crate::wandb::testutil::Lcg::new(7);
        for _ in 0..3000 {
            let s = rng.string(64);
            let _ = check_api_key(&s);
            let m = mask(&s);
            if s.chars().count() >= 12 {
                assert_eq!(m.chars().count(), 12);
            }
        }
    }
}
