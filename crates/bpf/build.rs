//! Compiles the BPF C programs in c/ with clang (`-target bpf -O2 -g`) into
//! OUT_DIR, where src/objects.rs embeds them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: &[&str] = &["proxy", "agent", "lb"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = Path::new("c");
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());

    if Command::new(&clang).arg("--version").output().is_err() {
        panic!(
            "`{clang}` not found: the BPF programs need clang. Install the Debian package \
             `clang` (scripts/setup.sh installs everything), or set CLANG=/path/to/clang."
        );
    }
    let helpers = Path::new("/usr/include/bpf/bpf_helpers.h");
    if !helpers.exists() {
        panic!(
            "{} not found: install the Debian package `libbpf-dev` (scripts/setup.sh).",
            helpers.display()
        );
    }
    // <asm/types.h> lives under the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    if !Path::new(&multiarch).join("asm/types.h").exists() {
        panic!("{multiarch}/asm/types.h not found: install the Debian package `linux-libc-dev`.");
    }

    for name in PROGRAMS {
        let obj = out.join(format!("{name}.o"));
        let status = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .arg(format!("-I{multiarch}"))
            .arg("-c")
            .arg(src.join(format!("{name}.c")))
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("running {clang}: {e}"));
        if !status.success() {
            panic!("clang failed to compile c/{name}.c ({status}); see the errors above");
        }
    }
}
