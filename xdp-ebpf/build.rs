//! Compiles the XDP programs in `bpf/` with clang so that a plain
//! `cargo build` produces them; the objects are embedded by `src/lib.rs`.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// (object name, source in bpf/, extra clang flags).
const OBJECTS: &[(&str, &str, &[&str])] = &[
    ("xdp_stats", "xdp_stats", &[]),
    ("seed_style", "seed_style", &[]),
    ("empty", "empty", &[]),
    ("verdicts", "verdicts", &[]),
    // Benchmark variants of xdp_stats (see the program's comments).
    (
        "xdp_stats_sources_lru",
        "xdp_stats",
        &["-DXDPTOP_SOURCES_LRU", "-Wno-unused-function"],
    ),
    (
        "xdp_stats_sources_only",
        "xdp_stats",
        &[
            "-DXDPTOP_NO_SERVICES",
            "-Wno-unused-function",
            "-Wno-unused-but-set-variable",
        ],
    ),
    (
        "xdp_stats_services_only",
        "xdp_stats",
        &["-DXDPTOP_NO_SOURCES", "-Wno-unused-function"],
    ),
    (
        "xdp_stats_no_talkers",
        "xdp_stats",
        &["-DXDPTOP_NO_TALKERS", "-Wno-unused-function"],
    ),
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let src = manifest.join("bpf");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());

    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=bpf/xdp_stats.h");

    check_prerequisites(&clang);
    let includes = include_dirs();

    for (name, source, flags) in OBJECTS {
        let input = src.join(format!("{source}.bpf.c"));
        let output = out.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={}", input.display());
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
            .args(*flags)
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .arg("-I")
            .arg(&src);
        for dir in &includes {
            cmd.arg("-I").arg(dir);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("running {clang}: {e}"));
        assert!(
            status.success(),
            "{clang} failed to compile {}",
            input.display()
        );
    }
}

/// Fails the build early with the package names to install, instead of a
/// cryptic clang error deep in a header.
fn check_prerequisites(clang: &str) {
    const HINT: &str = "install them with `apt-get install clang libbpf-dev linux-libc-dev` \
                        (Debian/Ubuntu) or `dnf install clang libbpf-devel kernel-headers` (RHEL/Fedora)";
    if Command::new(clang).arg("--version").output().is_err() {
        panic!("xdptop needs clang to build its XDP program, and `{clang}` was not found: {HINT}");
    }
    let has_libbpf = include_candidates()
        .iter()
        .any(|d| d.join("bpf/bpf_helpers.h").exists());
    if !has_libbpf {
        panic!(
            "xdptop needs the libbpf headers (bpf/bpf_helpers.h) to build its XDP program: {HINT}"
        );
    }
}

fn include_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var("BPF_INCLUDE")
        .ok()
        .into_iter()
        .flat_map(|v| env::split_paths(&v).collect::<Vec<_>>())
        .collect();
    dirs.push(PathBuf::from("/usr/include"));
    dirs.push(PathBuf::from("/usr/local/include"));
    dirs
}

/// `asm/types.h` lives in a multiarch directory on Debian and in
/// `/usr/include/asm` on RHEL; `-target bpf` knows neither, so add it.
fn include_dirs() -> Vec<PathBuf> {
    println!("cargo:rerun-if-env-changed=BPF_INCLUDE");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let gnu_arch = match arch.as_str() {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "powerpc64" => "powerpc64le",
        "s390x" => "s390x",
        other => other,
    };
    let mut dirs = include_candidates();
    let multiarch = Path::new("/usr/include").join(format!("{gnu_arch}-linux-gnu"));
    if multiarch.is_dir() {
        dirs.push(multiarch);
    }
    dirs
}
