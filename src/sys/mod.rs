//! The OS layer: every call into the operating system that std does not wrap, and the only
//! module allowed `unsafe` (the crate root denies it everywhere else).
//!
//! - Safe wrappers only: each public function is sound whatever its arguments; every `unsafe`
//!   block says why it is sound in a `// SAFETY:` comment (`clippy::undocumented_unsafe_blocks`
//!   is denied here).
//! - `rustix` where it covers the call (ids, signals, resource limits, dumpability, sockets,
//!   `poll`, `access`); `libc` (or `windows-sys`) only for what it does not, or where its
//!   wrapper would be wrong (a peer's pid of 0, see [`peer_credentials`]).
//! - Policy stays with the callers: this module says what the kernel says (who the peer is,
//!   whether a pid may be signalled) and does what it is told (harden the process, block
//!   signals); what is allowed is decided elsewhere (`rendezvous`, `private_dir`, the agent).
//!
//! Parts: `unix` (Linux and macOS), `linux` and `macos` (what only one of them has), `windows`.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
pub use windows::*;

/// What [`harden`] does to core files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreFiles {
    /// Left as they are.
    Unchanged,
    /// The soft limit set to 0 (the hard limit kept, so a program `wbl exec` becomes can have
    /// its old limit back: [`set_core_soft_limit`]).
    SoftOff,
    /// Soft and hard limits set to 0: never again in this process.
    Off,
}

/// What [`harden`] does: each caller says what it needs (the agent all of it at start; a
/// client no core file at start and no dumpability once sealed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    pub core_files: CoreFiles,
    /// Linux: `PR_SET_DUMPABLE 0` (no core file, no ptrace or `/proc/<pid>/mem` by the user's
    /// other processes). Nothing elsewhere.
    pub not_dumpable: bool,
    /// macOS: `PT_DENY_ATTACH` (no debugger). Nothing elsewhere.
    pub deny_debugger: bool,
}

/// What [`harden`] did.
#[derive(Debug, Default)]
pub struct Hardened {
    /// The soft core-file limit before (`None`: unlimited), when [`Hardening::core_files`]
    /// changed it.
    pub core_soft_before: Option<Option<u64>>,
    /// The calls that failed (the caller decides whether to say so; hardening is best effort).
    pub failed: Vec<&'static str>,
}

#[cfg(target_os = "macos")]
pub use macos::{process_exe, process_uid};
