//! Crash reproducers found by the fuzz targets (`fuzz/`), replayed through the very checks the
//! targets make (`fuzz/props.rs`), so a fixed bug stays fixed without running the fuzzer.

use std::path::Path;

#[path = "../fuzz/props.rs"]
mod props;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let data = std::fs::read(e.path()).unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("reproducer {target}/{name} fails again");
        }
        n += 1;
    }
    assert!(n > 0, "no reproducers in {}", dir.display());
}

#[test]
fn settings_reproducers() {
    replay("settings", props::settings);
}

#[test]
fn git_credential_reproducers() {
    replay("git_credential", props::git_credential);
}
