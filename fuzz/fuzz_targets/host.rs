//! Fuzz target: the host URL normaliser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbl::wandb::host::HostUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = HostUrl::parse(text) {
        let _ = (h.scheme(), h.netloc(), h.host(), h.port(), h.path(), h.is_cloud());
        let _ = h.app_url(None);
        let _ = h.authorize_url(Some("https://app.example"));
        assert!(!h.as_str().ends_with('/'));
        // User info is refused, never kept.
        assert!(!h.netloc().contains('@'));
        // Normalising is idempotent.
        let again = HostUrl::parse(h.as_str()).expect("a normalised URL parses again");
        assert_eq!(again.as_str(), h.as_str());
    }
});
