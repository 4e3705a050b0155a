//! Who could have changed a file wbl trusts (its configuration file): the one rule the agent,
//! every client command and `wbl doctor` apply before they read it.
//!
//! The rule (Unix): the file, and every directory above it up to `$HOME` (up to `/` for a file
//! outside the home directory), belongs to you or to root and is writable by neither its group
//! nor others. A group- or other-writable directory with the sticky bit (`/tmp`) is accepted
//! when the entry in it on the way to the file belongs to you or to root, since then no one
//! else can rename or replace that entry. The path as given and the path with every symbolic
//! link resolved are both checked: whoever can write the directory of a link can point it
//! elsewhere. Windows: files in the profile are private by default, and ACLs are not inspected.

use std::path::{Path, PathBuf};

/// Why a path on the way to the file lets another user change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Owned by a user other than you and root.
    OwnedByOther,
    /// Writable by its group or by others (and, for a directory, without the sticky bit that
    /// would protect an entry of yours).
    WritableByOthers,
    /// A sticky directory writable by others, whose entry on the way belongs to another user.
    StickyEntryNotOurs { entry: PathBuf, owner: u32 },
    /// It cannot be inspected.
    Inspect(String),
}

/// A file another user could have changed, with the path at fault (the file or a directory
/// above it), its owner and mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to use it: {}; {}", self.why(), self.fix())]
pub struct Exposed {
    pub path: PathBuf,
    pub owner: u32,
    /// The permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    pub why: Why,
    /// True when `path` is the file itself, false for a directory above it.
    pub is_file: bool,
}

impl Exposed {
    /// What is wrong, naming the path, its owner and mode.
    pub fn why(&self) -> String {
        let what = if self.is_file {
            format!(
                "the file (owner uid {}, mode {:04o})",
                self.owner, self.mode
            )
        } else {
            format!(
                "the directory {} above it (owner uid {}, mode {:04o})",
                self.path.display(),
                self.owner,
                self.mode
            )
        };
        let problem = match &self.why {
            Why::OwnedByOther => format!("{what} belongs to another user"),
            Why::WritableByOthers => {
                let who = match (self.mode & 0o020 != 0, self.mode & 0o002 != 0) {
                    (true, true) => "its group and by all users",
                    (true, false) => "its group",
                    _ => "all users",
                };
                format!("{what} is writable by {who}")
            }
            Why::StickyEntryNotOurs { entry, owner } => format!(
                "{what} is shared, and {} in it belongs to uid {owner}",
                entry.display()
            ),
            Why::Inspect(e) => return format!("cannot check who may change it: {e}"),
        };
        format!("{problem}, so another user could have changed what it says")
    }

    /// How to fix it.
    pub fn fix(&self) -> String {
        let p = shell_quote(&self.path);
        match &self.why {
            Why::WritableByOthers => {
                format!("check what it says, then run `chmod go-w {p}`")
            }
            Why::OwnedByOther if self.is_file => format!(
                "check what it says, then make it yours: `cp {p} {p}.new && mv {p}.new {p}` \
                 (or `sudo chown \"$USER\" {p}`)"
            ),
            Why::OwnedByOther => format!(
                "keep the configuration in a directory of yours (or ask an administrator to \
                 `chown` {p} to you)"
            ),
            Why::StickyEntryNotOurs { .. } | Why::Inspect(_) => {
                "keep the configuration in a directory of yours (`~/.config/wbl/config.toml`, \
                 or name it with WBL_CONFIG)"
                    .to_owned()
            }
        }
    }
}

fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+~@%:,".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Checks that no one but you and root could have changed `file` (whose metadata, following
/// symbolic links, is `meta`): see the module's rule.
#[cfg(unix)]
pub fn check(file: &Path, meta: &std::fs::Metadata) -> Result<(), Exposed> {
    check_as(file, meta, crate::sys::euid(), crate::dirs::home_dir())
}

/// Windows: no check (see the module's documentation).
#[cfg(not(unix))]
pub fn check(_file: &Path, _meta: &std::fs::Metadata) -> Result<(), Exposed> {
    Ok(())
}

#[cfg(unix)]
fn check_as(
    file: &Path,
    meta: &std::fs::Metadata,
    me: u32,
    home: Option<PathBuf>,
) -> Result<(), Exposed> {
    use std::os::unix::fs::MetadataExt;
    let trusted = |uid: u32| uid == me || uid == 0;
    let refuse = |path: &Path, m: Option<&std::fs::Metadata>, why: Why, is_file: bool| Exposed {
        path: path.to_owned(),
        owner: m.map_or(0, MetadataExt::uid),
        mode: m.map_or(0, |m| m.mode() & 0o7777),
        why,
        is_file,
    };
    let inspect = |path: &Path, e: std::io::Error| {
        refuse(
            path,
            None,
            Why::Inspect(format!("{}: {e}", path.display())),
            false,
        )
    };

    // The file itself.
    if !trusted(meta.uid()) {
        return Err(refuse(file, Some(meta), Why::OwnedByOther, true));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(file, Some(meta), Why::WritableByOthers, true));
    }

    // The directories above it: along the path as given and along the resolved one.
    let given = if file.is_absolute() {
        file.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| inspect(Path::new("."), e))?
            .join(file)
    };
    let real = std::fs::canonicalize(&given).map_err(|e| inspect(&given, e))?;
    let real_home = home.as_deref().and_then(|h| std::fs::canonicalize(h).ok());
    let mut chains = vec![(real.clone(), real_home)];
    if given != real {
        chains.push((given, home));
    }
    for (path, home) in chains {
        // Where the walk stops: the home directory (included) when the file is inside it.
        let stop = home.filter(|h| path.starts_with(h) && path != *h);
        let mut entry = path.as_path();
        for dir in path.ancestors().skip(1) {
            if dir.as_os_str().is_empty() {
                break;
            }
            let d = std::fs::metadata(dir).map_err(|e| inspect(dir, e))?;
            if !trusted(d.uid()) {
                return Err(refuse(dir, Some(&d), Why::OwnedByOther, false));
            }
            if d.mode() & 0o022 != 0 {
                let e = std::fs::symlink_metadata(entry).map_err(|e| inspect(entry, e))?;
                if d.mode() & 0o1000 == 0 {
                    return Err(refuse(dir, Some(&d), Why::WritableByOthers, false));
                }
                if !trusted(e.uid()) {
                    let why = Why::StickyEntryNotOurs {
                        entry: entry.to_owned(),
                        owner: e.uid(),
                    };
                    return Err(refuse(dir, Some(&d), why, false));
                }
            }
            if stop.as_deref() == Some(dir) {
                break;
            }
            entry = dir;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A home with `.config/wbl/config.toml`, all private.
    fn home() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let dir = home.join(".config/wbl");
        std::fs::create_dir_all(&dir).unwrap();
        for d in [&home, &home.join(".config"), &dir] {
            chmod(d, 0o755);
        }
        let file = dir.join("config.toml");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o644);
        (t, home, file)
    }

    fn run(file: &Path, home: &Path, me: u32) -> Result<(), Exposed> {
        let meta = std::fs::metadata(file).unwrap();
        check_as(file, &meta, me, Some(home.to_owned()))
    }

    fn me() -> u32 {
        crate::sys::euid()
    }

    #[test]
    fn a_private_file_in_private_directories_passes() {
        let (_t, home, file) = home();
        run(&file, &home, me()).unwrap();
    }

    #[test]
    fn a_writable_file_or_directory_is_refused_with_the_fix() {
        let (_t, home, file) = home();
        chmod(&file, 0o664);
        let e = run(&file, &home, me()).unwrap_err();
        assert!(e.is_file && e.why == Why::WritableByOthers, "{e:?}");
        let m = e.to_string();
        assert!(m.contains("mode 0664") && m.contains("its group"), "{m}");
        assert!(m.contains(&format!("chmod go-w {}", file.display())), "{m}");
        chmod(&file, 0o644);

        let dir = file.parent().unwrap();
        chmod(dir, 0o777);
        let e = run(&file, &home, me()).unwrap_err();
        assert_eq!((e.path.as_path(), e.is_file), (dir, false));
        assert!(e.to_string().contains("mode 0777"), "{e}");
        // The sticky bit protects an entry of ours.
        chmod(dir, 0o1777);
        run(&file, &home, me()).unwrap();
        chmod(dir, 0o755);

        // The home directory counts; what is above it does not.
        chmod(&home, 0o775);
        assert_eq!(run(&file, &home, me()).unwrap_err().path, home);
        chmod(&home, 0o755);
        chmod(home.parent().unwrap(), 0o777);
        run(&file, &home, me()).unwrap();
        // Outside the home directory, everything up to / counts.
        let elsewhere = home.parent().unwrap().join("nothome");
        std::fs::create_dir_all(home.parent().unwrap().join("nothome")).unwrap();
        let e = run(&file, &elsewhere, me()).unwrap_err();
        assert_eq!(e.path, home.parent().unwrap());
    }

    #[test]
    fn another_owner_is_refused_unless_root() {
        let (_t, home, file) = home();
        // As seen by a different uid, every path here belongs to someone else — unless the
        // test runs as root, whose files are trusted by everyone.
        let r = run(&file, &home, me() + 1);
        if me() == 0 {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert!(e.is_file && e.why == Why::OwnedByOther, "{e:?}");
            assert!(e.to_string().contains("chown"), "{e}");
        }
    }

    #[test]
    fn a_link_is_checked_where_it_lives_and_where_it_points() {
        let (t, home, file) = home();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let link = home.join(".config/wbl/link.toml");
        std::os::unix::fs::symlink(open.join("real.toml"), &link).unwrap();
        std::fs::write(open.join("real.toml"), "").unwrap();
        chmod(&open.join("real.toml"), 0o644);
        // Points into a directory anyone can write.
        assert_eq!(run(&link, &home, me()).unwrap_err().path, open);
        // Lives in a directory anyone can write.
        let link2 = open.join("link2.toml");
        std::os::unix::fs::symlink(&file, &link2).unwrap();
        chmod(&open, 0o755);
        run(&link2, &home, me()).unwrap();
        chmod(&open, 0o777);
        assert_eq!(run(&link2, &home, me()).unwrap_err().path, open);
    }
}
