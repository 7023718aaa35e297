//! Link settings for the shipping binary; nothing else.
//!
//! The release profile aborts on panic, so nothing ever unwinds through the gateway's
//! code and its DWARF unwind tables (`.eh_frame` and its index, about 1.2 MB of the
//! Pi's binary) are dead weight. `-C force-unwind-tables=no` cannot remove them: std is
//! precompiled with tables, and fat LTO gives every function of the merged module one.
//! For static musl release builds the linker is therefore told to discard them, keeping
//! only the C start files' own (which `crtbegin.o` refers to). A panic still prints its
//! message and aborts; only the stack trace under it is empty (the binary is stripped,
//! so it would name no function anyway). Tests, benches and debug builds keep their
//! tables: `rustc-link-arg-bins` reaches the `aisopod` binary only, and only here.

use std::env;
use std::fs;
use std::path::PathBuf;

/// Discards every input's `.eh_frame` but the C runtime's start and end files'.
const DISCARD_UNWIND_TABLES: &str = "\
SECTIONS
{
  /DISCARD/ : { EXCLUDE_FILE(*crtbegin*.o *crtend*.o) *(.eh_frame) }
}
INSERT AFTER .text;
";

/// Set to keep the unwind tables in a release build (to debug a crash with a debugger).
const KEEP: &str = "AISOPOD_KEEP_UNWIND_TABLES";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={KEEP}");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let shipping = var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && env::var_os(KEEP).is_none();
    if !shipping {
        return;
    }
    let script = PathBuf::from(var("OUT_DIR")).join("discard-unwind-tables.ld");
    if let Err(err) = fs::write(&script, DISCARD_UNWIND_TABLES) {
        println!(
            "cargo:warning=unwind tables kept: {}: {err}",
            script.display()
        );
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
}
