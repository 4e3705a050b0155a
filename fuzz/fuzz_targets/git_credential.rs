//! Fuzz target: git's credential-helper input format, git URLs and `~/.git-credentials`
//! (checks in `fuzz/props.rs`).
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::git_credential(data));
