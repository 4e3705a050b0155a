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
        // The other address of a Forge-served deployment is a normalised URL whose own other
        // address leads back to the same host.
        if let Some(a) = h.forge_alias() {
            assert_eq!(HostUrl::parse(a.as_str()).ok().as_ref(), Some(&a));
            let back = a.forge_alias().expect("an alias has an alias");
            assert!(back.host().eq_ignore_ascii_case(h.host()));
        }
        let _ = h.forge_upstream();
        // User info is refused, never kept.
        assert!(!h.netloc().contains('@'));
        // Normalising is idempotent.
        let again = HostUrl::parse(h.as_str()).expect("a normalised URL parses again");
        assert_eq!(again.as_str(), h.as_str());
    }
});
