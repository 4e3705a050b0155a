//! Reading the access log back: every kept file oldest first, then (for `--follow`) what is
//! appended, across rotations. Lines that do not parse (a line cut short by a full disk, a
//! hand edit) are counted and skipped, never fatal.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{Entry, KEEP};

/// The files of the log, oldest first: `access.log.KEEP` … `access.log.1`, `access.log`;
/// only those that exist.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..=KEEP)
        .rev()
        .map(|k| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{k}"));
            PathBuf::from(name)
        })
        .collect();
    out.push(path.to_owned());
    out.retain(|p| p.is_file());
    out
}

/// What was read: the entries and how many lines were skipped.
#[derive(Debug, Default)]
pub struct Entries {
    pub entries: Vec<Entry>,
    pub bad_lines: usize,
}

/// Every entry of every kept file, oldest first.
pub fn read_all(path: &Path) -> std::io::Result<Entries> {
    let mut out = Entries::default();
    for file in files(path) {
        let f = match File::open(&file) {
            Ok(f) => f,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        parse_lines(BufReader::new(f), &mut out)?;
    }
    Ok(out)
}

fn parse_lines(reader: impl BufRead, out: &mut Entries) -> std::io::Result<()> {
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(&line) {
            Ok(e) => out.entries.push(e),
            Err(_) => out.bad_lines += 1,
        }
    }
    Ok(())
}

/// Follows `access.log` from its current end, like `tail -F`: yields complete lines as they
/// are appended and carries on in the new file after a rotation (or once the file appears).
pub struct Follow {
    path: PathBuf,
    file: Option<(File, FileId)>,
    pending: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileId(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileId(0, 0)
    }
}

impl Follow {
    /// Starts at the current end of the log (or at the start of a log that does not exist
    /// yet).
    pub fn from_end(path: &Path) -> Follow {
        let file = File::open(path).ok().and_then(|mut f| {
            let id = file_id(&f.metadata().ok()?);
            f.seek(SeekFrom::End(0)).ok()?;
            Some((f, id))
        });
        Follow {
            path: path.to_owned(),
            file,
            pending: Vec::new(),
        }
    }

    /// Entries appended since the last call (possibly none), and the number of bad lines.
    pub fn poll(&mut self) -> std::io::Result<Entries> {
        let mut out = Entries::default();
        self.drain(&mut out)?;
        // Rotated (another file at the path now) or created: finish the old one, switch.
        let current = std::fs::metadata(&self.path).ok().map(|m| file_id(&m));
        let ours = self.file.as_ref().map(|(_, id)| *id);
        if current.is_some() && current != ours {
            self.drain(&mut out)?;
            self.pending.clear();
            self.file = File::open(&self.path)
                .ok()
                .and_then(|f| Some((file_id(&f.metadata().ok()?), f)))
                .map(|(id, f)| (f, id));
            self.drain(&mut out)?;
        }
        Ok(out)
    }

    fn drain(&mut self, out: &mut Entries) -> std::io::Result<()> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        file.read_to_end(&mut self.pending)?;
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            let complete: Vec<u8> = self.pending.drain(..=end).collect();
            parse_lines(&complete[..], out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::tests::event;
    use crate::accesslog::{Op, Outcome};
    use std::io::Write;

    fn line(op: Op) -> String {
        serde_json::to_string(&Entry::from_event(&event(op, Outcome::Ok))).unwrap() + "\n"
    }

    #[test]
    fn reads_rotated_files_oldest_first_and_skips_bad_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        std::fs::write(format!("{}.2", path.display()), line(Op::Store)).unwrap();
        std::fs::write(
            format!("{}.1", path.display()),
            line(Op::Erase) + "{not json\n",
        )
        .unwrap();
        std::fs::write(&path, line(Op::Get) + "\n").unwrap();
        let r = read_all(&path).unwrap();
        let ops: Vec<Op> = r.entries.iter().map(|e| e.op).collect();
        assert_eq!(ops, [Op::Store, Op::Erase, Op::Get]);
        assert_eq!(r.bad_lines, 1);
    }

    #[test]
    fn a_missing_log_reads_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let r = read_all(&tmp.path().join("access.log")).unwrap();
        assert!(r.entries.is_empty());
    }

    #[test]
    fn follow_sees_appends_partial_lines_and_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        std::fs::write(&path, line(Op::Get)).unwrap();
        let mut f = Follow::from_end(&path);
        assert!(f.poll().unwrap().entries.is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let store = line(Op::Store);
        let (a, b) = store.split_at(10);
        file.write_all(a.as_bytes()).unwrap();
        assert!(f.poll().unwrap().entries.is_empty());
        file.write_all(b.as_bytes()).unwrap();
        assert_eq!(f.poll().unwrap().entries[0].op, Op::Store);
        // Rotation: one more line in the old file, then a new file.
        file.write_all(line(Op::Erase).as_bytes()).unwrap();
        std::fs::rename(&path, format!("{}.1", path.display())).unwrap();
        std::fs::write(&path, line(Op::Get)).unwrap();
        let ops: Vec<Op> = f.poll().unwrap().entries.iter().map(|e| e.op).collect();
        assert_eq!(ops, [Op::Erase, Op::Get]);
    }

    #[test]
    fn follow_waits_for_a_log_that_does_not_exist_yet() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("access.log");
        let mut f = Follow::from_end(&path);
        assert!(f.poll().unwrap().entries.is_empty());
        std::fs::write(&path, line(Op::Get)).unwrap();
        assert_eq!(f.poll().unwrap().entries.len(), 1);
    }
}
