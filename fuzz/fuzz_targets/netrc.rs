//! Fuzz target: the netrc parser and the byte-preserving entry removal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbl::wandb::netrc::{Netrc, remove_machine};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Netrc::parse(text);
    if let Ok(n) = &parsed {
        for e in n.entries() {
            // Spans point into the text.
            assert!(e.span.start <= e.span.end && e.span.end <= text.len());
        }
        let _ = n.lookup("api.wandb.ai");
    }
    for machine in ["api.wandb.ai", "a", "default"] {
        let (out, removed) = remove_machine(text, machine);
        if removed == 0 {
            continue;
        }
        // Whatever parsed before still parses, and the machine is gone.
        if parsed.is_ok() {
            let after = Netrc::parse(&out).expect("removal keeps a parsable file");
            assert!(after.lookup_exact(machine).is_none());
        }
    }
});
