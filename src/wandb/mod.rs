//! W&B-specific rules, as the real SDK applies them: API-key format, host URLs, netrc and
//! settings files, and atomic file writes. Pure logic; no I/O besides the explicit file helpers.

pub mod apikey;
pub mod fsutil;
pub mod host;
pub mod netrc;
pub mod settings;

#[cfg(test)]
mod testutil;
