//! Helpers the `wbl ssh` tests share (tests/ssh.rs, tests/shared_ssh.rs): unique keys a scan
//! of the remote can look for, sh quoting for remote scripts, reading what a remote script
//! prints — every wait bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

/// A key no other test uses, so a scan of /tmp for it cannot meet another test's files.
pub fn unique_key(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:0>40}", format!("{tag}{}x{nanos}", std::process::id()))
}

/// Quotes for sh.
pub fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The value printed as `name=value` on its own line.
pub fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

/// Reads the child's stdout up to the line `checked` (bounded: 60 s; on time-out the child,
/// which the test started, is ended by its pid).
pub fn read_until_checked(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line == "checked";
            text.push_str(&line);
            text.push('\n');
            if done {
                break;
            }
        }
        let _ = tx.send(text);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(text) => text,
        Err(_) => {
            crate::common::terminate(child.id());
            panic!("the remote script did not finish its checks");
        }
    }
}
