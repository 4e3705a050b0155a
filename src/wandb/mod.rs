//! W&B-specific rules, as the real SDK applies them: API-key format, host URLs, netrc and
//! settings files, atomic file writes, where keys are found (`resolver`, the only place that knows) and the server check
//! behind `--verify` (`verify`, the only network code). Pure logic besides file reads, the
//! explicit file helpers and that one request.

pub mod apikey;
pub mod fsutil;
pub mod host;
pub mod netrc;
pub mod resolver;
pub mod settings;
pub mod verify;

#[cfg(test)]
mod testutil;
