//! `Secret`: a string that is zeroized on drop and never shows itself in `Debug` output.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// An API key, password or token. Its memory is wiped when dropped and `Debug` prints a
/// placeholder, so a secret cannot reach a log line through `{:?}` by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`; the caller's `String` is moved in, not copied.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The secret itself. Call sites of this function are the places to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (not secret, useful for validation messages).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::from("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
