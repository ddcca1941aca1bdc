//! A private bpffs instance, so pins made by a test never touch the host's
//! `/sys/fs/bpf` and vanish with the test.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::Context as _;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A bpffs mounted on a fresh directory under /tmp; unmounted on drop.
#[derive(Debug)]
pub struct TempBpffs {
    path: PathBuf,
}

impl TempBpffs {
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "xdptop-bpffs-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        // Each bpffs mount is its own instance: its pins are private to it.
        mount(
            Some("bpf"),
            &path,
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        )
        .with_context(|| format!("mounting a bpffs on {} (needs root)", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempBpffs {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.path, MntFlags::MNT_DETACH) {
            eprintln!("xdp-lab: unmounting {}: {e}", self.path.display());
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
