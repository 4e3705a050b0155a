//! Which netrc files the SDK reads (`$NETRC`, `~/.netrc`, `~/_netrc`) and what the one it
//! reads now gives for a host, with the SDK's fallbacks and warnings.
//!
//! Invariant: a missing file is silence, an unreadable or malformed one a warning that counts
//! as no entry; a read never fails.

use std::path::{Path, PathBuf};

use wbl_proto::Secret;
use zeroize::Zeroizing;

use super::env::WandbEnv;
use crate::wandb::fsutil::same_file;
use crate::wandb::host::HostUrl;
use crate::wandb::netrc::{Netrc, netrc_path};

/// One netrc file the SDK may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetrcFile {
    pub(super) path: PathBuf,
    pub(super) sdk_reads: bool,
}

impl NetrcFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SDK reads this one now (with this environment); the others it reads when `NETRC`
    /// is unset or the file before it is removed.
    pub fn sdk_reads(&self) -> bool {
        self.sdk_reads
    }
}

/// What the netrc file the SDK reads gives for one host.
#[derive(Debug)]
pub(super) struct NetrcFind {
    /// The file read (or that would be read).
    pub(super) path: PathBuf,
    /// The key, when an entry with a password exists.
    pub(super) key: Option<Secret>,
    /// The entry's machine; `None` for the `default` entry.
    pub(super) machine: Option<String>,
    /// Problems to print as warnings (the SDK's texts).
    pub(super) warnings: Vec<String>,
}

/// Every netrc file the SDK may read: the one it reads now first, then the others of
/// `$NETRC`, `~/.netrc`, `~/_netrc` (each once).
pub(super) fn netrc_files(env: &WandbEnv) -> Vec<NetrcFile> {
    let sdk = env.netrc_path();
    let mut out = vec![NetrcFile {
        path: sdk,
        sdk_reads: true,
    }];
    let mut others = Vec::new();
    if env.netrc.is_some() {
        others.push(netrc_path(env.netrc.as_deref(), &env.home, cfg!(windows)));
    }
    others.push(env.home.join(".netrc"));
    others.push(env.home.join("_netrc"));
    for p in others {
        if !out.iter().any(|f| same_file(&f.path, &p)) {
            out.push(NetrcFile {
                path: p,
                sdk_reads: false,
            });
        }
    }
    out
}

/// The netrc key the SDK reads for `host`: the entry for its netloc (the last one if
/// repeated), else the `default` entry, else — for a Forge address — the entry of the W&B
/// host behind it; then (wbl) the entry of the host's other address. A missing file is
/// silence; a broken file is a warning and counts as absent; an entry with an empty password
/// is a warning.
pub(super) fn netrc_key(env: &WandbEnv, host: &HostUrl) -> NetrcFind {
    let path = env.netrc_path();
    let mut find = NetrcFind {
        path: path.clone(),
        key: None,
        machine: None,
        warnings: Vec::new(),
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return find,
        Err(e) => {
            find.warnings.push(format!(
                "Failed to read netrc file at {}: {e}",
                path.display()
            ));
            return find;
        }
    };
    let netrc = match Netrc::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            find.warnings.push(format!(
                "Failed to read netrc file at {}, {e}",
                path.display()
            ));
            return find;
        }
    };
    // wbl's addition after the SDK's chain: the entry of the other address of the same
    // deployment (a key the SDK 0.31 wrote for Forge answers for `api.wandb.ai` too).
    let entry = netrc
        .lookup(host.netloc())
        .or_else(|| {
            host.forge_upstream()
                .and_then(|up| netrc.lookup(up.netloc()))
        })
        .or_else(|| {
            host.forge_alias()
                .and_then(|a| netrc.lookup_exact(a.netloc()))
        });
    if let Some(entry) = entry {
        if entry.password.is_empty() {
            find.warnings.push(format!(
                "Found entry for machine {} with no API key at {}",
                crate::wandb::host::py_repr(host.netloc()),
                path.display()
            ));
        } else {
            find.machine = entry.machine.clone();
            find.key = Some(Secret::new(entry.password.to_string()));
        }
    }
    find
}
