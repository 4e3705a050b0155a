//! The walk of `wbl scan`: every regular file under the roots, searched by a few threads
//! that share one stack of directories and files still to do. No symbolic link is followed
//! (a link inside the tree points at something the walk reaches anyway, or at something
//! outside it); no other file system is entered unless asked; `.gitignore` and hidden files
//! are not special (leaks sit in ignored files: `wandb/`, `.env`). A file that cannot be read
//! is counted and named, never fatal.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::{FileOutcome, Hit, Needles};

/// What the walk may do.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Also search files that look binary (a NUL byte in their first block).
    pub binary: bool,
    /// Enter directories on other file systems (mount points) below a root.
    pub cross_filesystems: bool,
    /// Threads searching at once (at least 1).
    pub threads: usize,
}

/// Files and bytes searched so far, for a progress line while the walk goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// What a walk found and passed by.
#[derive(Debug, Default)]
pub struct Report {
    /// The copies found, sorted by file, line and column.
    pub hits: Vec<Hit>,
    /// Regular files searched, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Files skipped as binary.
    pub binary: u64,
    /// Symbolic links not followed.
    pub symlinks: u64,
    /// Files and directories that could not be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Mount points not entered (another file system).
    pub other_fs: Vec<PathBuf>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.hits.extend(other.hits);
        self.files += other.files;
        self.bytes += other.bytes;
        self.binary += other.binary;
        self.symlinks += other.symlinks;
        self.unreadable.extend(other.unreadable);
        self.other_fs.extend(other.other_fs);
    }
}

enum Item {
    /// A directory and the file system the walk stays on below it.
    Dir {
        path: PathBuf,
        dev: Option<u64>,
    },
    File(PathBuf),
}

/// The shared stack and how many threads are working on an item (which may push more).
struct Queue {
    state: Mutex<(Vec<Item>, usize)>,
    more: Condvar,
}

impl Queue {
    /// The next item, or `None` when the stack is empty and nobody can add to it.
    fn next(&self) -> Option<Item> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(item) = s.0.pop() {
                s.1 += 1;
                return Some(item);
            }
            if s.1 == 0 {
                self.more.notify_all();
                return None;
            }
            s = self.more.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One item done; `found` are the items it found.
    fn done(&self, found: Vec<Item>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 -= 1;
        let wake = !found.is_empty() || s.1 == 0;
        s.0.extend(found);
        drop(s);
        if wake {
            self.more.notify_all();
        }
    }
}

/// The device a file's metadata names (`None` where the platform has none to compare).
fn device(meta: &std::fs::Metadata) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(meta.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Searches every file under `roots` (directories or files; a root that is itself a
/// symbolic link is followed, as the user named it) for `needles`.
pub fn scan(needles: &Needles, roots: &[PathBuf], opts: &Options, progress: &Progress) -> Report {
    let mut report = Report::default();
    let mut start = Vec::new();
    for root in roots {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => start.push(Item::Dir {
                path: root.clone(),
                dev: device(&m),
            }),
            Ok(m) if m.is_file() => start.push(Item::File(root.clone())),
            Ok(_) => {}
            Err(e) => report.unreadable.push((root.clone(), e.to_string())),
        }
    }
    start.reverse();
    let queue = Queue {
        state: Mutex::new((start, 0)),
        more: Condvar::new(),
    };
    let reports: Vec<Report> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..opts.threads.max(1))
            .map(|_| s.spawn(|| worker(needles, &queue, opts, progress)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for r in reports {
        report.merge(r);
    }
    report.hits.sort();
    report.unreadable.sort();
    report.other_fs.sort();
    report
}

fn worker(needles: &Needles, queue: &Queue, opts: &Options, progress: &Progress) -> Report {
    let mut report = Report::default();
    let mut buf = Vec::new();
    while let Some(item) = queue.next() {
        let mut found = Vec::new();
        match item {
            Item::Dir { path, dev } => list_dir(&path, dev, opts, &mut found, &mut report),
            Item::File(path) => {
                let before = report.bytes;
                search_file(needles, &path, opts, &mut buf, &mut report);
                progress.files.fetch_add(1, Ordering::Relaxed);
                progress
                    .bytes
                    .fetch_add(report.bytes - before, Ordering::Relaxed);
            }
        }
        queue.done(found);
    }
    report
}

/// The entries of one directory, as items; symbolic links and other file systems are
/// counted, not entered.
fn list_dir(
    path: &Path,
    dev: Option<u64>,
    opts: &Options,
    found: &mut Vec<Item>,
    report: &mut Report,
) {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            report.unreadable.push((path.to_path_buf(), e.to_string()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                report.unreadable.push((path.to_path_buf(), e.to_string()));
                continue;
            }
        };
        let child = entry.path();
        // The type as the directory lists it: a link is a link, never what it points at.
        let Ok(kind) = entry.file_type() else {
            report
                .unreadable
                .push((child, "cannot tell its type".to_owned()));
            continue;
        };
        if kind.is_symlink() {
            report.symlinks += 1;
        } else if kind.is_dir() {
            let child_dev = match entry.metadata() {
                Ok(m) => device(&m),
                Err(e) => {
                    report.unreadable.push((child, e.to_string()));
                    continue;
                }
            };
            if !opts.cross_filesystems && child_dev != dev {
                report.other_fs.push(child);
            } else {
                found.push(Item::Dir {
                    path: child,
                    dev: child_dev,
                });
            }
        } else if kind.is_file() {
            found.push(Item::File(child));
        }
    }
}

/// Opens `path` without following a link in its last component and without blocking on
/// a FIFO put in its place since it was listed.
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    o.open(path)
}

fn search_file(
    needles: &Needles,
    path: &Path,
    opts: &Options,
    buf: &mut Vec<u8>,
    report: &mut Report,
) {
    let file = match open_nofollow(path) {
        Ok(f) => f,
        // Replaced by a link since it was listed.
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            report.symlinks += 1;
            return;
        }
        Err(e) => {
            report.unreadable.push((path.to_path_buf(), e.to_string()));
            return;
        }
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return,
        Err(e) => {
            report.unreadable.push((path.to_path_buf(), e.to_string()));
            return;
        }
    };
    match needles.search(path, &file, len, opts.binary, buf, &mut report.hits) {
        Ok(FileOutcome::Searched { bytes }) => {
            report.files += 1;
            report.bytes += bytes;
        }
        Ok(FileOutcome::Binary) => report.binary += 1,
        Err(e) => report.unreadable.push((path.to_path_buf(), e.to_string())),
    }
}
