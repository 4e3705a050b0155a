//! Writing the access log off the request path: the agent hands each [`Event`] to a bounded
//! queue (never waiting), and one thread formats and appends them, rotating the file at a size
//! limit.
//!
//! The thread lingers [`LINGER`] after the first entry of a quiet spell before it writes, so
//! that a burst is one write, and the formatting and writing happen after the answers (a
//! helper's whole run is about 2 ms; BENCHMARKS.md has what writing at once cost it). A
//! half-full queue or the agent's exit ends the wait early; a `SIGKILL` loses at most what
//! came in during it.
//!
//! Invariants:
//! - [`Writer::record`] never blocks and never fails: when the queue is full the entry is
//!   counted as dropped, and the next write records a `gap` with the count. A log that cannot
//!   be written (read-only or full file system, unsafe directory) only costs entries: the
//!   agent's log says so once when it starts failing and once when it recovers, and a `gap`
//!   records how many were lost.
//! - The directory is 0700 and ours, the file 0600, ours, a regular file and never followed
//!   through a symbolic link; the log is only ever appended to, and rotation renames
//!   `access.log` to `access.log.1` (shifting older copies up to `access.log.KEEP`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant, SystemTime};

use super::{DEFAULT_MAX_BYTES, Entry, Event, KEEP, MAX_BYTES_ENV};

/// Entries that may wait for the writer; beyond that they are dropped and counted.
const QUEUE: usize = 4096;
/// At most this much is formatted before it is written.
const BATCH_BYTES: usize = 64 * 1024;
/// How long the thread waits after the first entry of a quiet spell before writing.
pub const LINGER: Duration = Duration::from_millis(50);

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct Options {
    /// `None`: nothing is recorded (no home directory).
    pub path: Option<PathBuf>,
    /// Rotate once the file would grow beyond this.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

impl Options {
    /// [`crate::dirs::access_log`], [`DEFAULT_MAX_BYTES`] unless `WBL_ACCESS_LOG_MAX_BYTES`
    /// says otherwise, [`KEEP`] old files.
    pub fn from_env() -> Options {
        Options {
            path: crate::dirs::access_log(),
            max_bytes: std::env::var(MAX_BYTES_ENV)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_MAX_BYTES),
            keep: KEEP,
        }
    }
}

/// What the writer thread receives.
enum Msg {
    Entry(Box<Event>),
    /// Write what came before, then stop.
    Stop,
}

/// The agent's handle on the log.
pub struct Writer {
    tx: Option<SyncSender<Msg>>,
    dropped: Arc<AtomicU64>,
    done: std::sync::Mutex<Option<Receiver<()>>>,
    /// What the thread needs to stop lingering.
    wake: Option<Wake>,
}

/// Shared by the agent's side and the thread: when the thread should stop lingering.
#[derive(Clone)]
struct Wake {
    thread: std::thread::Thread,
    /// Entries in the queue (about: the two sides update it at different moments).
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
}

impl Wake {
    /// Waits up to [`LINGER`], less when the queue fills up or the agent is exiting.
    fn linger(&self) {
        let deadline = Instant::now() + LINGER;
        loop {
            if self.closing.load(Ordering::Acquire)
                || self.queued.load(Ordering::Relaxed) >= QUEUE / 2
            {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::park_timeout(left);
        }
    }
}

impl Writer {
    /// Starts the writer thread. Nothing is opened yet: the directory and file are made on the
    /// first entry, so an agent that answers nothing writes nothing.
    pub fn start(options: Options) -> Writer {
        let Some(path) = options.path.clone() else {
            tracing::warn!("no home directory: the access log is not written");
            return Writer::disabled();
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let shared = Arc::clone(&dropped);
        let queued = Arc::new(AtomicUsize::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let (q, c) = (Arc::clone(&queued), Arc::clone(&closing));
        let spawned = std::thread::Builder::new()
            .name("wbl-access-log".into())
            .spawn(move || {
                let wake = Wake {
                    thread: std::thread::current(),
                    queued: q,
                    closing: c,
                };
                let mut sink = Sink::new(path, options.max_bytes, options.keep);
                run(&rx, &shared, &wake, &mut sink);
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(handle) => Writer {
                tx: Some(tx),
                dropped,
                done: std::sync::Mutex::new(Some(done_rx)),
                wake: Some(Wake {
                    thread: handle.thread().clone(),
                    queued,
                    closing,
                }),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the access log's thread; nothing is recorded");
                Writer::disabled()
            }
        }
    }

    /// A writer that records nothing.
    pub fn disabled() -> Writer {
        Writer {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
            done: std::sync::Mutex::new(None),
            wake: None,
        }
    }

    /// Queues one entry; never waits.
    pub fn record(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Entry(Box::new(event))) {
            Ok(()) => {
                if let Some(w) = &self.wake
                    && w.queued.fetch_add(1, Ordering::Relaxed) + 1 >= QUEUE / 2
                {
                    w.thread.unpark();
                }
            }
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Writes what is queued and stops the thread, waiting at most `limit` in all; entries
    /// recorded afterwards are ignored. For the agent's exit.
    pub fn close(&self, limit: Duration) {
        let Some(done) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let Some(tx) = &self.tx else { return };
        if let Some(w) = &self.wake {
            w.closing.store(true, Ordering::Release);
            w.thread.unpark();
        }
        let deadline = std::time::Instant::now() + limit;
        loop {
            match tx.try_send(Msg::Stop) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => break,
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done.recv_timeout(left).is_err() {
            tracing::warn!("the access log's last entries were not written in time");
        }
    }
}

fn run(rx: &Receiver<Msg>, dropped: &AtomicU64, wake: &Wake, sink: &mut Sink) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    let mut stop = false;
    // Whether entries may be waiting: after a linger, until a batch ends with the queue empty.
    let mut draining = false;
    while !stop {
        let msg = if draining {
            match rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => {
                    draining = false;
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        } else {
            let Ok(msg) = rx.recv() else { break };
            wake.linger();
            msg
        };
        let Msg::Entry(first) = msg else { break };
        draining = true;
        buf.clear();
        let mut count = 0u64;
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                entries = lost,
                "the access log's queue was full; entries were dropped (recorded as a gap)"
            );
            push(&mut buf, &Entry::gap(SystemTime::now(), lost));
        }
        push(&mut buf, &Entry::from_event(&first));
        count += 1;
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(Msg::Entry(e)) => {
                    push(&mut buf, &Entry::from_event(&e));
                    count += 1;
                }
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => {
                    draining = false;
                    break;
                }
            }
        }
        let taken = usize::try_from(count).unwrap_or(usize::MAX);
        let _ = wake
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(taken))
            });
        sink.write(&buf, count);
    }
}

/// The length of the longest run of whole lines at the start of `buf` that fits in `room`
/// bytes (a last line without its newline counts as whole).
fn lines_within(buf: &[u8], room: usize) -> usize {
    let mut end = 0;
    for (i, b) in buf.iter().enumerate() {
        if i >= room {
            return end;
        }
        if *b == b'\n' {
            end = i + 1;
        }
    }
    if buf.len() <= room { buf.len() } else { end }
}

/// The length of `buf`'s first line, with its newline.
fn first_line(buf: &[u8]) -> usize {
    buf.iter()
        .position(|b| *b == b'\n')
        .map_or(buf.len(), |i| i + 1)
}

fn push(buf: &mut Vec<u8>, entry: &Entry) {
    // Serialising these plain types cannot fail.
    if serde_json::to_writer(&mut *buf, entry).is_ok() {
        buf.push(b'\n');
    }
}

/// Why the log cannot be written right now.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing to write {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
}

/// The file end: open on demand, rotate, remember failures.
struct Sink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<(File, u64)>,
    /// Entries not written since the log started failing; `Some` while failing.
    lost: Option<u64>,
    rotate_failed: bool,
}

impl Sink {
    fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Sink {
        Sink {
            path,
            max_bytes,
            keep,
            file: None,
            lost: None,
            rotate_failed: false,
        }
    }

    fn write(&mut self, buf: &[u8], count: u64) {
        match self.try_write(buf) {
            Ok(()) => {
                if let Some(lost) = self.lost.take() {
                    tracing::info!(
                        path = %self.path.display(),
                        lost,
                        "the access log is writable again"
                    );
                    let mut gap = Vec::new();
                    push(&mut gap, &Entry::gap(SystemTime::now(), lost));
                    let _ = self.try_write(&gap);
                }
            }
            Err(e) => {
                self.file = None;
                match &mut self.lost {
                    Some(lost) => *lost += count,
                    None => {
                        tracing::warn!(
                            error = %e,
                            "cannot write the access log; keys are still served, but who \
                             asked for them is not recorded until this is fixed (see wbl doctor)"
                        );
                        self.lost = Some(count);
                    }
                }
            }
        }
    }

    /// Appends `buf` (whole lines), rotating wherever the next line would take the file past
    /// the size limit: a batch may span files. A line longer than the limit gets a file alone.
    fn try_write(&mut self, buf: &[u8]) -> Result<(), SinkError> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.file.is_none() {
                self.file = Some(open(&self.path)?);
            }
            let Some((file, size)) = &mut self.file else {
                unreachable!("opened above");
            };
            let room = usize::try_from(self.max_bytes.saturating_sub(*size)).unwrap_or(usize::MAX);
            let mut take = lines_within(rest, room);
            if take == 0 {
                if *size > 0 {
                    self.rotate();
                    continue;
                }
                take = first_line(rest);
            }
            let (chunk, tail) = rest.split_at(take);
            file.write_all(chunk).map_err(|source| SinkError::Io {
                what: "cannot write",
                path: self.path.clone(),
                source,
            })?;
            *size += chunk.len() as u64;
            rest = tail;
        }
        Ok(())
    }

    /// `access.log.{k}` → `access.log.{k+1}` from the oldest kept down, then `access.log` →
    /// `access.log.1`. The next write opens a new `access.log`.
    fn rotate(&mut self) {
        self.file = None;
        let numbered = |k: u32| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(format!(".{k}"));
            PathBuf::from(name)
        };
        let mut result = Ok(());
        for k in (1..self.keep).rev() {
            match std::fs::rename(numbered(k), numbered(k + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => result = Err(e),
                _ => {}
            }
        }
        if self.keep == 0 {
            result = result.and(std::fs::remove_file(&self.path));
        } else {
            result = result.and(std::fs::rename(&self.path, numbered(1)));
        }
        match result {
            Ok(()) => self.rotate_failed = false,
            Err(e) if !self.rotate_failed => {
                self.rotate_failed = true;
                tracing::warn!(error = %e, path = %self.path.display(), "cannot rotate the access log");
            }
            Err(_) => {}
        }
    }
}

/// Opens the log for appending, making its directory (0700) when needed; both must be ours
/// and private.
fn open(path: &Path) -> Result<(File, u64), SinkError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| SinkError::Io { what, path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    prepare_dir(dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = opts.open(path).map_err(io("cannot open", path))?;
    let meta = file.metadata().map_err(io("cannot inspect", path))?;
    if !meta.is_file() {
        return Err(SinkError::Unsafe {
            path: path.to_owned(),
            why: "it is not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = crate::sys::euid();
        if meta.uid() != me {
            return Err(SinkError::Unsafe {
                path: path.to_owned(),
                why: format!("it belongs to uid {}, not to us (uid {me})", meta.uid()),
            });
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io("cannot set permissions on", path))?;
        }
    }
    Ok((file, meta.len()))
}

/// Makes the directory (0700, with its missing parents) or checks the existing one: the
/// private-directory rule, repairing (ours, and made private again when it is not).
fn prepare_dir(dir: &Path) -> Result<(), SinkError> {
    use crate::private_dir::{Loose, PrepareError, prepare};
    match prepare(dir, Loose::Repair) {
        Ok(_) => Ok(()),
        Err(PrepareError::Unsafe(problem)) => Err(SinkError::Unsafe {
            path: dir.to_owned(),
            why: problem.why(),
        }),
        Err(PrepareError::Create(source)) => Err(SinkError::Io {
            what: "cannot create directory",
            path: dir.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::{Op, Outcome, tests::event};

    fn lines(path: &Path) -> Vec<Entry> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_json_lines_in_a_private_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/wbl/access.log");
        let w = Writer::start(Options {
            path: Some(path.clone()),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: KEEP,
        });
        w.record(event(Op::Get, Outcome::Ok));
        w.record(event(Op::Store, Outcome::Refused));
        w.close(Duration::from_secs(5));
        // Closed: later entries are ignored, and closing again is harmless.
        w.record(event(Op::Erase, Outcome::Ok));
        w.close(Duration::from_secs(5));
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].op, got[0].result), (Op::Get, Some(Outcome::Ok)));
        assert_eq!(got[1].result, Some(Outcome::Refused));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn rotates_at_the_limit_keeping_a_few_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        let one = {
            let mut b = Vec::new();
            push(&mut b, &Entry::from_event(&event(Op::Get, Outcome::Ok)));
            b.len() as u64
        };
        let mut sink = Sink::new(path.clone(), one * 2, 2);
        for _ in 0..7 {
            let mut b = Vec::new();
            push(&mut b, &Entry::from_event(&event(Op::Get, Outcome::Ok)));
            sink.write(&b, 1);
        }
        // 7 entries, two per file: access.log has 1, .1 and .2 have 2 each, 2 rotated away.
        assert_eq!(lines(&path).len(), 1);
        let n = |k: u32| lines(&PathBuf::from(format!("{}.{k}", path.display()))).len();
        assert_eq!((n(1), n(2)), (2, 2));
        assert!(!PathBuf::from(format!("{}.3", path.display())).exists());
    }

    #[test]
    fn a_batch_is_split_across_files_at_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        let mut batch = Vec::new();
        for _ in 0..5 {
            push(&mut batch, &Entry::from_event(&event(Op::Get, Outcome::Ok)));
        }
        let one = batch.len() as u64 / 5;
        // Two and a half entries fit: 5 in one write land 2, 2 and 1 in three files.
        let mut sink = Sink::new(path.clone(), one * 5 / 2, 3);
        sink.write(&batch, 5);
        let file = |k: u32| PathBuf::from(format!("{}.{k}", path.display()));
        let counts = (
            lines(&file(2)).len(),
            lines(&file(1)).len(),
            lines(&path).len(),
        );
        assert_eq!(counts, (2, 2, 1));
        for p in [path.clone(), file(1), file(2)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= one * 5 / 2);
        }
        // A line longer than the limit gets a file of its own.
        let mut sink = Sink::new(tmp.path().join("small.log"), one / 2, 3);
        sink.write(&batch[..(one * 2) as usize], 2);
        assert_eq!(lines(&tmp.path().join("small.log")).len(), 1);
        assert_eq!(lines(&tmp.path().join("small.log.1")).len(), 1);
    }

    #[test]
    fn lines_within_takes_whole_lines_only() {
        assert_eq!(lines_within(b"ab\ncd\n", 3), 3);
        assert_eq!(lines_within(b"ab\ncd\n", 5), 3);
        assert_eq!(lines_within(b"ab\ncd\n", 6), 6);
        assert_eq!(lines_within(b"ab\ncd\n", 2), 0);
        assert_eq!(first_line(b"ab\ncd\n"), 3);
    }

    #[cfg(unix)]
    #[test]
    fn a_log_that_cannot_be_written_costs_entries_then_records_the_gap() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the directory should be: every open fails, whoever runs the test.
        let blocker = tmp.path().join("wbl");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join("access.log");
        let mut sink = Sink::new(path.clone(), DEFAULT_MAX_BYTES, KEEP);
        let mut b = Vec::new();
        push(&mut b, &Entry::from_event(&event(Op::Get, Outcome::Ok)));
        sink.write(&b, 1);
        sink.write(&b, 1);
        assert_eq!(sink.lost, Some(2));
        std::fs::remove_file(&blocker).unwrap();
        sink.write(&b, 1);
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].op, Op::Get);
        assert_eq!((got[1].op, got[1].dropped), (Op::Gap, Some(2)));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_place_of_the_log_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        let path = tmp.path().join("access.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(open(&path).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let w = Writer {
            tx: Some(tx),
            dropped: Arc::clone(&dropped),
            done: std::sync::Mutex::new(None),
            wake: None,
        };
        for _ in 0..3 {
            w.record(event(Op::Get, Outcome::Ok));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        drop(w);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        let mut sink = Sink::new(path.clone(), DEFAULT_MAX_BYTES, KEEP);
        // Closing already: no lingering.
        let wake = Wake {
            thread: std::thread::current(),
            queued: Arc::new(AtomicUsize::new(0)),
            closing: Arc::new(AtomicBool::new(true)),
        };
        run(&rx, &dropped, &wake, &mut sink);
        let got = lines(&path);
        assert_eq!((got[0].op, got[0].dropped), (Op::Gap, Some(2)));
        assert_eq!(got[1].op, Op::Get);
    }
}
