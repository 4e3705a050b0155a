//! Linux's `/proc/locks`: which process holds the `flock` on a file (the agent's pid file).

/// The pid `/proc/locks` names as holding the `flock` on inode `ino`, when listed.
pub(super) fn flock_holder(ino: u64) -> Option<u32> {
    holder_in(&std::fs::read_to_string("/proc/locks").ok()?, ino)
}

/// The pid `text` (in `/proc/locks`' format) names as holding the `flock` on inode `ino`.
fn holder_in(text: &str, ino: u64) -> Option<u32> {
    text.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        let i = f.iter().position(|w| *w == "FLOCK")?;
        let pid = f.get(i + 3)?.parse().ok()?;
        let dev_ino = f.get(i + 4)?;
        (dev_ino.rsplit(':').next()?.parse::<u64>().ok()? == ino).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::holder_in;

    #[test]
    fn the_flock_on_the_inode_names_its_holder() {
        let text = "1: POSIX  ADVISORY  WRITE 99 00:2a:5678 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF\n\
                    3: FLOCK  ADVISORY  READ 77 fd:01:42 0 EOF\n";
        assert_eq!(holder_in(text, 5678), Some(1234));
        assert_eq!(holder_in(text, 42), Some(77));
        assert_eq!(holder_in(text, 1), None);
        assert_eq!(holder_in("", 5678), None);
    }
}
