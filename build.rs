//! Link-time choices that depend on the machine the binaries are built for and run on.
//!
//! One today: on glibc Linux, pack the relative relocations (`-z pack-relative-relocs`, DT_RELR).
//! Position-independent Rust binaries carry one 24-byte `.rela.dyn` entry per pointer in their
//! read-only data (about 200 KiB for `wbl-agent`); the dynamic loader reads them all at start,
//! and those pages stay in the agent's resident memory. Packed, they take a few KiB. Only a
//! glibc of 2.36 or later loads such a binary, so this is done only when building for the
//! machine that builds (a `scripts/install`) and its glibc is new enough; cross builds, musl
//! (`scripts/static-wbl`), macOS and Windows are left as they are. `WBL_NO_RELR=1` turns it off
//! (for a linker that does not know the option).

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WBL_NO_RELR");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    let glibc_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if !native || !glibc_linux || var("WBL_NO_RELR") == "1" {
        return;
    }
    if glibc_version().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// The running glibc's version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
