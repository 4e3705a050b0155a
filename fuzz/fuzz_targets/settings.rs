//! Fuzz target: the W&B settings (INI) parser and its edits (checks in `fuzz/props.rs`).
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::settings(data));
