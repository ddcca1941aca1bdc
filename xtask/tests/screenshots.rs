//! `cargo xtask screenshots` end to end, with a short warm-up and a scratch
//! output directory: three PNGs of the terminal's size, and the lab gone
//! afterwards.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn screenshots_of_the_three_views_are_made_and_the_lab_is_removed() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the screenshots test needs root (network namespaces, XDP, bpffs): run it with sudo"
    );
    let out = Scratch(
        std::env::temp_dir().join(format!("xdptop-screenshots-test-{}", std::process::id())),
    );
    let run = Command::new(XTASK)
        .args(["screenshots", "--warmup", "2", "--out"])
        .arg(&out.0)
        .output()
        .expect("run xtask");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "xtask screenshots failed: {stderr}");
    for name in ["overview", "detail", "help"] {
        let png = out.0.join(format!("{name}.png"));
        // 120×36 cells of 9×19 pixels and a 12-pixel margin.
        assert_eq!(png_size(&png), (120 * 9 + 24, 36 * 19 + 24), "{name}");
        assert!(
            String::from_utf8_lossy(&run.stdout).contains(&png.display().to_string()),
            "the path of {name}.png is printed"
        );
    }
    // No other test makes `xdptop-shots-` namespaces or `shots` bpffs.
    let namespaces = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip")
            .stdout,
    )
    .into_owned();
    assert!(
        !namespaces.contains("xdptop-shots-"),
        "no lab namespace left: {namespaces}"
    );
    let mounts = fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    assert!(
        !mounts.contains("xdptop-bpffs-shots-"),
        "no bpffs left: {mounts}"
    );
}
