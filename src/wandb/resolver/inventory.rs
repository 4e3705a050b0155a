//! Every plaintext W&B key the SDK could read (`api_key` in the settings files, entries of
//! every netrc file), with what is left alone and why, and the one wording of the warning
//! about a plaintext copy.
//!
//! Invariant: reads files only and never fails — an unreadable file is a [`Note`]; `wbl
//! migrate` moves exactly the keys listed here.

use std::path::{Path, PathBuf};

use wbl_proto::Secret;

use super::Resolver;
use super::netrc_files::netrc_files;
use crate::wandb::apikey::check_api_key;
use crate::wandb::fsutil::{link_count, read_secret_file};
use crate::wandb::host::HostUrl;
use crate::wandb::netrc::Netrc;

/// Which kind of place a plaintext key (or a note) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainKind {
    Netrc,
    Settings,
}

/// A plaintext place of a W&B key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Settings {
        path: PathBuf,
    },
    Netrc {
        path: PathBuf,
        machine: String,
        /// 1-based line of the entry.
        line: usize,
    },
}

impl Place {
    pub fn kind(&self) -> PlainKind {
        match self {
            Place::Settings { .. } => PlainKind::Settings,
            Place::Netrc { .. } => PlainKind::Netrc,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Place::Settings { path } | Place::Netrc { path, .. } => path,
        }
    }

    /// The warning that the SDK can still read a key here: the one wording `wbl login`,
    /// `wbl logout` and `wbl status` use.
    fn warning(&self) -> String {
        plaintext_warning(self, "")
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Settings { path } => write!(f, "{} (api_key)", path.display()),
            Place::Netrc {
                path,
                machine,
                line,
            } => write!(f, "{} (machine {machine}, line {line})", path.display()),
        }
    }
}

/// "A plaintext API key … is still in …; run `wbl migrate` to remove it." `details`, when not
/// empty, follows the file (` (the file has 2 hard links)`).
fn plaintext_warning(place: &Place, details: &str) -> String {
    let fix = "run `wbl migrate` to remove it.";
    match place {
        Place::Settings { path } => format!(
            "A plaintext API key is still in api_key in {}{details}; {fix}",
            path.display()
        ),
        Place::Netrc { path, machine, .. } => format!(
            "A plaintext API key for {machine} is still in the netrc file {}{details}; {fix}",
            path.display()
        ),
    }
}

/// A plaintext W&B key the SDK could read.
#[derive(Debug)]
pub struct PlainKey {
    pub(super) place: Place,
    pub(super) host: HostUrl,
    pub(super) key: Secret,
    pub(super) valid: bool,
    pub(super) shadowed: bool,
    pub(super) links: u64,
    pub(super) read_now: bool,
}

impl PlainKey {
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The host it is used with.
    pub fn host(&self) -> &HostUrl {
        &self.host
    }

    pub fn key(&self) -> &Secret {
        &self.key
    }

    /// The key passes the SDK's format check (else the SDK refuses it, and wbl leaves it).
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// A later entry for the same machine in the same file exists: Python's netrc (the SDK)
    /// reads the last one, not this.
    pub fn shadowed(&self) -> bool {
        self.shadowed
    }

    /// The file's hard-link count: above 1, removing the key from this name leaves it in
    /// the others.
    pub fn links(&self) -> u64 {
        self.links
    }

    /// The file is one the SDK reads with this environment (a settings file, or the netrc
    /// file it picks); the other netrc files it reads when `NETRC` is unset or the file
    /// before them is gone.
    pub fn read_now(&self) -> bool {
        self.read_now
    }

    /// [`Place::warning`], with what else is true of this copy: an earlier duplicate entry,
    /// a file the SDK reads only later (`sdk_netrc` is the one it reads now), hard links.
    pub fn warning(&self, sdk_netrc: &Path) -> String {
        let mut details = String::new();
        if self.shadowed {
            details.push_str(" (an earlier entry for the same machine; the SDK reads the last)");
        }
        if !self.read_now {
            details.push_str(&format!(
                " (the SDK reads {} now; this file when that one is gone or NETRC changes)",
                sdk_netrc.display()
            ));
        }
        if self.links > 1 {
            details.push_str(&format!(" (the file has {} hard links)", self.links));
        }
        plaintext_warning(&self.place, &details)
    }
}

/// Something about plaintext keys that is not a key to move: a file that cannot be read, a
/// `default` entry, a bad `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub(super) about: Option<PlainKind>,
    pub(super) text: String,
}

impl Note {
    /// `None`: about the environment.
    pub fn about(&self) -> Option<PlainKind> {
        self.about
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Every plaintext W&B key for some hosts, with notes and the files looked in.
#[derive(Debug, Default)]
pub struct Inventory {
    keys: Vec<PlainKey>,
    notes: Vec<Note>,
    looked_in: Vec<PathBuf>,
}

impl Inventory {
    fn note(&mut self, about: PlainKind, text: String) {
        self.notes.push(Note {
            about: Some(about),
            text,
        });
    }

    pub fn keys(&self) -> &[PlainKey] {
        &self.keys
    }

    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// The files that exist and were read.
    pub fn looked_in(&self) -> &[PathBuf] {
        &self.looked_in
    }
}

impl Resolver {
    /// The warnings about every plaintext copy the SDK could still read for `hosts` once wbl
    /// has stored (or removed) their keys: each settings file with an `api_key` (the SDK reads
    /// it for any host), then each netrc entry for one of `hosts`. `wbl login` and `wbl
    /// logout` say these.
    pub fn plaintext_warnings(&self, hosts: &[HostUrl]) -> Vec<String> {
        let mut out: Vec<String> = self
            .settings
            .api_key_files()
            .into_iter()
            .map(|f| {
                Place::Settings {
                    path: f.path().to_path_buf(),
                }
                .warning()
            })
            .collect();
        let sdk_netrc = self.env.netrc_path();
        let inv = self.inventory(hosts);
        out.extend(
            inv.keys
                .iter()
                .filter(|k| k.place.kind() == PlainKind::Netrc)
                .map(|k| k.warning(&sdk_netrc)),
        );
        out
    }
}

/// See [`Resolver::inventory`].
pub(super) fn inventory(r: &Resolver, hosts: &[HostUrl]) -> Inventory {
    let mut inv = Inventory::default();
    let selected = |h: &HostUrl| hosts.iter().any(|x| x.netloc() == h.netloc());

    // Settings files: workspace first (it overrides the global one).
    let default = r.default_host();
    for f in [r.settings.workspace(), r.settings.global()] {
        if f.exists() {
            inv.looked_in.push(f.path().to_path_buf());
        }
        let Some(key) = f.get("api_key") else {
            continue;
        };
        let host = match f.get("base_url").map(HostUrl::parse) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                inv.note(
                    PlainKind::Settings,
                    format!(
                        "api_key in {} is left alone: its base_url is not a valid host ({e})",
                        f.path().display()
                    ),
                );
                continue;
            }
            None => match &default {
                Ok((h, _)) => h.clone(),
                Err(e) => {
                    inv.note(
                        PlainKind::Settings,
                        format!(
                            "api_key in {} is left alone: the host it is for is unclear ({e})",
                            f.path().display()
                        ),
                    );
                    continue;
                }
            },
        };
        let place = Place::Settings {
            path: f.path().to_path_buf(),
        };
        if !selected(&host) {
            inv.note(
                PlainKind::Settings,
                format!("{place} is for {host}, which is not among the selected hosts; left alone"),
            );
            continue;
        }
        inv.keys.push(PlainKey {
            links: link_count(f.path()),
            place,
            host,
            valid: check_api_key(key).is_none(),
            key: Secret::new(key.to_owned()),
            shadowed: false,
            read_now: true,
        });
    }

    for file in netrc_files(&r.env) {
        let read_now = file.sdk_reads;
        let path = file.path;
        let text = match read_secret_file(&path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                inv.note(PlainKind::Netrc, format!("{e:#}; left alone"));
                continue;
            }
        };
        inv.looked_in.push(path.clone());
        let netrc = match Netrc::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                inv.note(
                    PlainKind::Netrc,
                    format!(
                        "cannot read {}: {e}; left alone (fix the file and run `wbl migrate` again)",
                        path.display()
                    ),
                );
                continue;
            }
        };
        let links = link_count(&path);
        let entries = netrc.entries();
        for (i, e) in entries.iter().enumerate() {
            let Some(machine) = e.machine.as_deref() else {
                if !e.password.is_empty() {
                    inv.note(
                        PlainKind::Netrc,
                        format!(
                            "{} has a `default` entry (line {}), which the SDK uses for a host without its own entry; left alone",
                            path.display(),
                            e.line
                        ),
                    );
                }
                continue;
            };
            let Some(host) = hosts.iter().find(|h| h.netloc() == machine) else {
                continue;
            };
            if e.password.is_empty() {
                continue;
            }
            let shadowed = entries[i + 1..]
                .iter()
                .any(|later| later.machine.as_deref() == Some(machine));
            inv.keys.push(PlainKey {
                place: Place::Netrc {
                    path: path.clone(),
                    machine: machine.to_owned(),
                    line: e.line,
                },
                host: host.clone(),
                valid: check_api_key(&e.password).is_none(),
                key: Secret::new(e.password.to_string()),
                shadowed,
                links,
                read_now,
            });
        }
    }
    inv
}
