//! Fuzz target: git's credential-helper input format, git URLs and `~/.git-credentials`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbl::git::credential::{GitCredential, get_response};
use wbl::git::{store_file, url};

fuzz_target!(|data: &[u8]| {
    if let Ok(cred) = GitCredential::parse(data) {
        let _ = cred.query();
        if let Ok(Some(stored)) = cred.to_store() {
            assert!(cred.secrets_match(&stored));
            // What we would answer to git parses back as credential input.
            for cap in [false, true] {
                if let Some(resp) = get_response(&stored, cap) {
                    GitCredential::parse(resp.as_bytes()).expect("our answer parses");
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = url::parse(text);
        for entry in store_file::parse(text) {
            let _ = entry;
        }
    }
});
