//! The `access-log` check: can the agent record who used the keys? It looks at the state
//! directory and `access.log` the way the agent's writer will (exists or can be made, ours,
//! private, writable) and at the log's last entries for recent gaps. It only reads: writability
//! is asked of the kernel (`access(2)`), nothing is created.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Ctx, Finding};
use crate::accesslog::{Op, parse_time};

/// A gap newer than this is worth a warning.
const RECENT: Duration = Duration::from_secs(24 * 3600);
/// How much of the end of the log is read for the latest entries.
const TAIL_BYTES: u64 = 64 * 1024;

pub(crate) fn access_log(_ctx: &mut Ctx) -> Finding {
    let Some(path) = crate::dirs::access_log() else {
        return Finding::warning(
            "no home directory: the agent cannot record who uses the keys",
            "set HOME (or XDG_STATE_HOME) for the agent",
        );
    };
    let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
    let unwritable = |what: &Path, why: String| {
        Finding::warning(
            format!(
                "cannot write {}: {why}; keys are still served, but who asked for them is not \
                 recorded",
                what.display()
            ),
            format!(
                "make {} writable by you, or set XDG_STATE_HOME to a writable directory (for the \
                 agent too: `wbl agent stop`, and it starts again with the new setting)",
                what.display()
            ),
        )
    };
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                return unwritable(&dir, "it is not a directory".into());
            }
            #[cfg(unix)]
            if let Some(f) = private_dir(&dir) {
                return f;
            }
            if let Err(e) = writable(&dir) {
                return unwritable(&dir, e.to_string());
            }
        }
        Err(_) => {
            // Made by the agent on its first answer: its nearest existing ancestor must let it.
            let ancestor = dir.ancestors().skip(1).find(|a| a.exists());
            return match ancestor.map(|a| (a, writable(a))) {
                Some((_, Ok(()))) => Finding::ok(format!(
                    "{} will be created on the first request",
                    path.display()
                )),
                Some((a, Err(e))) => unwritable(a, e.to_string()),
                None => unwritable(&dir, "no parent directory exists".into()),
            };
        }
    }
    if path.exists()
        && let Err(e) = writable(&path)
    {
        return unwritable(&path, e.to_string());
    }
    summary(&path)
}

/// The directory must pass the agent's rule (the private-directory rule, asked only to report:
/// the agent makes an existing one of ours private itself, so a loose mode is only a warning).
#[cfg(unix)]
fn private_dir(dir: &Path) -> Option<Finding> {
    use crate::private_dir::{DirProblem, DirState, Loose, check};
    match check(dir, Loose::Report) {
        Ok(DirState::WouldRepair { mode }) => Some(Finding::warning(
            format!(
                "{} is readable by others (mode {:o}); the agent makes it 0700 when it next writes",
                dir.display(),
                mode & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        )),
        Ok(_) => None,
        Err(DirProblem::NotOurs { owner, me }) => Some(Finding::warning(
            format!(
                "{} belongs to uid {owner}, not to you (uid {me}): the agent will not write there",
                dir.display()
            ),
            "set XDG_STATE_HOME to a directory of your own".to_owned(),
        )),
        Err(p) => Some(Finding::warning(
            format!(
                "{}: {}; the agent will not write there",
                dir.display(),
                p.why()
            ),
            "set XDG_STATE_HOME to a directory of your own".to_owned(),
        )),
    }
}

/// Whether we may write (and enter) `p`, asked of the kernel without writing.
fn writable(p: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        crate::sys::may_write(p)
    }
    #[cfg(not(unix))]
    {
        let meta = std::fs::metadata(p)?;
        if meta.permissions().readonly() {
            Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
        } else {
            Ok(())
        }
    }
}

/// Writable: how much is recorded, and whether entries were lost lately.
fn summary(path: &Path) -> Finding {
    let files = crate::accesslog::read::files(path);
    if files.is_empty() {
        return Finding::ok(format!(
            "{} is writable; nothing recorded yet",
            path.display()
        ));
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let tail = tail_entries(path);
    let last = tail.iter().rev().find(|e| e.op != Op::Gap);
    let gap = tail.iter().rev().find(|e| {
        e.op == Op::Gap
            && parse_time(&e.time)
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < RECENT)
    });
    if let Some(gap) = gap {
        return Finding::warning(
            format!(
                "{} entries were not recorded (gap at {}): the agent could not write the log or \
                 fell behind",
                gap.dropped.unwrap_or(0),
                gap.time
            ),
            "the agent's log says why (`wbl agent status` shows where it is)",
        );
    }
    Finding::ok(format!(
        "{} ({} file(s), {} KiB){}",
        path.display(),
        files.len(),
        bytes.div_ceil(1024),
        last.map(|e| format!(", last entry {}", e.time))
            .unwrap_or_default()
    ))
}

/// The entries of the last [`TAIL_BYTES`] of `access.log`.
fn tail_entries(path: &Path) -> Vec<crate::accesslog::Entry> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    // Skip a line cut by where we started.
    let from = if start > 0 {
        buf.iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| i + 1)
    } else {
        0
    };
    buf[from..]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}
