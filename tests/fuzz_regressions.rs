//! Crash reproducers found by the fuzz targets (`fuzz/`), replayed through the same checks the
//! targets make, so a fixed bug stays fixed without running the fuzzer.

use std::path::Path;

use wbl::git::credential::{GitCredential, get_response};
use wbl::wandb::settings::SettingsFile;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        ));
    }
    assert!(!out.is_empty(), "no reproducers in {}", dir.display());
    out
}

#[test]
fn settings_reproducers() {
    for (name, data) in inputs("settings") {
        let text = std::str::from_utf8(&data).unwrap();
        let mut s = SettingsFile::parse(text).unwrap();
        let others = |f: &SettingsFile| -> Vec<(String, String)> {
            f.items()
                .into_iter()
                .filter(|(k, _)| *k != "base_url" && *k != "api_key")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        let before = others(&s);
        if s.set("base_url", "https://h.example:8443").is_ok() {
            let again = SettingsFile::parse(&s.to_string())
                .unwrap_or_else(|e| panic!("{name}: our output does not parse: {e}"));
            assert_eq!(
                again.get("base_url"),
                Some("https://h.example:8443"),
                "{name}"
            );
        }
        s.remove("api_key");
        let again = SettingsFile::parse(&s.to_string())
            .unwrap_or_else(|e| panic!("{name}: our output does not parse: {e}"));
        assert_eq!(again.get("api_key"), None, "{name}");
        assert_eq!(others(&again), before, "{name}");
    }
}

#[test]
fn git_credential_reproducers() {
    for (name, data) in inputs("git_credential") {
        let Ok(cred) = GitCredential::parse(&data) else {
            continue;
        };
        if let Ok(Some(stored)) = cred.to_store() {
            assert!(cred.secrets_match(&stored), "{name}");
            for cap in [false, true] {
                if let Some(resp) = get_response(&stored, cap) {
                    GitCredential::parse(resp.as_bytes())
                        .unwrap_or_else(|e| panic!("{name}: our answer does not parse: {e}"));
                }
            }
        }
    }
}
