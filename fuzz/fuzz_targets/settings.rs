//! Fuzz target: the W&B settings (INI) parser and its edits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbl::wandb::settings::SettingsFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut s) = SettingsFile::parse(text) else {
        return;
    };
    let _ = s.get("base_url");
    // Every other key keeps its value through our edits.
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
});
