//! The properties the fuzz targets check, shared with `tests/fuzz_regressions.rs` so crash
//! reproducers are replayed through exactly the checks that found them.

#![allow(dead_code)]

use wbl::git::credential::{GitCredential, get_response};
use wbl::git::{store_file, url};
use wbl::wandb::settings::SettingsFile;

/// Settings edits: our output parses again, the edited keys have their new state, and every
/// other key keeps its value.
pub fn settings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut s) = SettingsFile::parse(text) else {
        return;
    };
    let _ = s.get("base_url");
    let others = |f: &SettingsFile| -> Vec<(String, String)> {
        f.items()
            .into_iter()
            .filter(|(k, _)| *k != "base_url" && *k != "api_key")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let before = others(&s);
    if s.set("base_url", "https://h.example:8443").is_ok() {
        let again = SettingsFile::parse(&s.to_string()).expect("our output parses");
        assert_eq!(again.get("base_url"), Some("https://h.example:8443"));
    }
    s.remove("api_key");
    let again = SettingsFile::parse(&s.to_string()).expect("our output parses");
    assert_eq!(again.get("api_key"), None);
    assert_eq!(others(&again), before);
}

/// git credential input: what we store matches what was sent, and our answers parse back.
pub fn git_credential(data: &[u8]) {
    if let Ok(cred) = GitCredential::parse(data) {
        let _ = cred.query();
        if let Ok(Some(stored)) = cred.to_store() {
            assert!(cred.secrets_match(&stored));
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
}
