//! Where things are pinned, and the checks made before pinning anything.
//!
//! ```text
//! PIN_DIR/xdp_stats_map            the seed's shared map (bpftool, libbpf readers)
//! PIN_DIR/xdptop/IFACE/link_MODE   xdptop's bpf_link on IFACE (MODE: native | skb)
//! PIN_DIR/xdptop/IFACE/stats       xdptop's per-CPU counters for IFACE
//! PIN_DIR/xdptop/IFACE/config      run-time switches (talker counting on/off)
//! PIN_DIR/xdptop/IFACE/sources     per-source counters (array)
//! PIN_DIR/xdptop/IFACE/sources_used  which of its slots are in use (bitmap)
//! PIN_DIR/xdptop/IFACE/talkers     per-source counters of sources with no slot there (LRU)
//! PIN_DIR/xdptop/IFACE/services    per-service counters (array; LRU hash before)
//! ```
//!
//! The last five came with top talkers; a program loaded by an earlier
//! xdptop has none of them, and talkers then need a re-attach. One loaded
//! before the sources array has the other three and keeps all its sources
//! in the LRU table.

use std::{
    io,
    path::{Path, PathBuf},
};

use aya::maps::{MapInfo, MapType};

use super::{Error, error::Doing as _};
use crate::sample::Mode;

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The pin layout under one bpffs directory.
#[derive(Clone, Debug)]
pub struct Pins {
    root: PathBuf,
}

impl Pins {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The seed's shared map.
    pub fn shared_map(&self) -> PathBuf {
        self.root.join(xdp_ebpf::STATS_MAP)
    }

    /// xdptop's own directory.
    pub fn own_dir(&self) -> PathBuf {
        self.root.join("xdptop")
    }

    pub fn iface_dir(&self, iface: &str) -> PathBuf {
        self.own_dir().join(iface)
    }

    /// The link pin's name records the attach mode, which the kernel's link
    /// info does not.
    pub fn link(&self, iface: &str, mode: Mode) -> PathBuf {
        self.iface_dir(iface)
            .join(format!("link_{}", mode.as_str()))
    }

    pub fn stats(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("stats")
    }

    /// Run-time switches of the program on `iface`.
    pub fn config(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("config")
    }

    /// Per-source counters of the program on `iface`: the array.
    pub fn sources(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("sources")
    }

    /// Which slots of [`Self::sources`] are in use.
    pub fn sources_used(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("sources_used")
    }

    /// Per-source counters of the program on `iface`: the LRU table.
    pub fn talkers(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("talkers")
    }

    /// Per-service counters of the program on `iface`.
    pub fn services(&self, iface: &str) -> PathBuf {
        self.iface_dir(iface).join("services")
    }

    /// The talker pins of `iface`: config, talkers, services, sources,
    /// sources_used.
    pub fn talker_pins(&self, iface: &str) -> [PathBuf; 5] {
        [
            self.config(iface),
            self.talkers(iface),
            self.services(iface),
            self.sources(iface),
            self.sources_used(iface),
        ]
    }

    /// The link pinned for `iface`, if any, with the mode it was made in.
    pub fn find_link(&self, iface: &str) -> Option<(PathBuf, Mode)> {
        [Mode::Native, Mode::Skb]
            .into_iter()
            .map(|m| (self.link(iface, m), m))
            .find(|(p, _)| p.exists())
    }

    /// Fails unless the pin directory is a mounted bpffs, saying how to fix it.
    pub fn check_bpffs(&self) -> Result<(), Error> {
        let dir = &self.root;
        let st = match nix::sys::statfs::statfs(dir) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => {
                return Err(Error::PinDirMissing { dir: dir.clone() });
            }
            Err(e) => return Err(e).doing(|| format!("checking {}", dir.display())),
        };
        if st.filesystem_type().0 as i64 != BPF_FS_MAGIC {
            return Err(Error::NotBpffs { dir: dir.clone() });
        }
        Ok(())
    }

    /// Makes `PIN_DIR/xdptop/IFACE/`, owner-only (0700): pins inherit no
    /// wider access. Directories that already exist with group or world
    /// bits (made by hand, or by another tool) are narrowed to 0700 too.
    /// Pin files themselves are created by the kernel as 0600 less the
    /// umask, so they are never wider than owner read/write.
    pub fn create_iface_dir(&self, iface: &str) -> Result<(), Error> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = self.iface_dir(iface);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .doing(|| format!("creating {}", dir.display()))?;
        for d in [self.own_dir(), dir] {
            owner_only(&d)?;
        }
        Ok(())
    }

    /// Removes `iface`'s directory, then xdptop's own if it is empty.
    pub fn remove_iface_dir(&self, iface: &str) -> io::Result<()> {
        remove_dir_if_present(&self.iface_dir(iface))?;
        match std::fs::remove_dir(self.own_dir()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
            other => ignore_missing(other),
        }
    }
}

/// Drops group and world bits from the directory `dir`.
fn owner_only(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir)
        .doing(|| format!("checking {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        log::info!(
            "{}: narrowing mode {:o} to 0700 (xdptop's pins are owner-only)",
            dir.display(),
            mode & 0o7777
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .doing(|| format!("making {} owner-only (0700)", dir.display()))?;
    }
    Ok(())
}

fn remove_dir_if_present(dir: &Path) -> io::Result<()> {
    ignore_missing(std::fs::remove_dir(dir))
}

/// Treats "already gone" as done.
pub fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The layout the seed's scrapers rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLayout {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

impl MapLayout {
    pub const SHARED: MapLayout = MapLayout {
        map_type: xdp_ebpf::STATS_MAP_TYPE,
        key_size: 4,
        value_size: size_of::<xdp_ebpf::DataRec>() as u32,
        max_entries: xdp_ebpf::STATS_MAP_MAX_ENTRIES,
    };

    pub fn of(info: &MapInfo) -> Self {
        MapLayout {
            map_type: info.map_type().map(|t| t as u32).unwrap_or(u32::MAX),
            key_size: info.key_size(),
            value_size: info.value_size(),
            max_entries: info.max_entries(),
        }
    }

    /// What differs from `want`, in words, or `None` when compatible.
    pub fn mismatch(&self, want: &MapLayout) -> Option<String> {
        let mut diffs = Vec::new();
        if self.map_type != want.map_type {
            diffs.push(format!(
                "type is {} (want {})",
                type_name(self.map_type),
                type_name(want.map_type)
            ));
        }
        if self.key_size != want.key_size {
            diffs.push(format!(
                "key size is {} (want {})",
                self.key_size, want.key_size
            ));
        }
        if self.value_size != want.value_size {
            diffs.push(format!(
                "value size is {} (want {})",
                self.value_size, want.value_size
            ));
        }
        if self.max_entries != want.max_entries {
            diffs.push(format!(
                "max_entries is {} (want {})",
                self.max_entries, want.max_entries
            ));
        }
        (!diffs.is_empty()).then(|| diffs.join(", "))
    }
}

fn type_name(t: u32) -> String {
    match t {
        x if x == MapType::Hash as u32 => "hash".into(),
        x if x == MapType::Array as u32 => "array".into(),
        x if x == MapType::PerCpuHash as u32 => "percpu_hash".into(),
        x if x == MapType::PerCpuArray as u32 => "percpu_array".into(),
        x if x == MapType::LruHash as u32 => "lru_hash".into(),
        other => format!("type {other}"),
    }
}

/// Checks an existing shared map pin. `Ok(None)`: there is none yet.
pub fn check_shared_map(pins: &Pins) -> Result<Option<MapInfo>, Error> {
    let path = pins.shared_map();
    if !path.exists() {
        return Ok(None);
    }
    check_shared_map_at(&path).map(Some)
}

/// Checks that the map pinned at `path` has the seed's layout.
pub fn check_shared_map_at(path: &Path) -> Result<MapInfo, Error> {
    let info = MapInfo::from_pin(path)
        .doing(|| format!("{} exists but is not a readable BPF map", path.display()))?;
    if let Some(why) = MapLayout::of(&info).mismatch(&MapLayout::SHARED) {
        return Err(Error::SharedMapLayout {
            path: path.to_owned(),
            why,
            max_entries: MapLayout::SHARED.max_entries,
        });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let p = Pins::new("/sys/fs/bpf");
        assert_eq!(p.shared_map(), Path::new("/sys/fs/bpf/xdp_stats_map"));
        assert_eq!(p.stats("eth0"), Path::new("/sys/fs/bpf/xdptop/eth0/stats"));
        assert_eq!(
            p.link("eth0", Mode::Skb),
            Path::new("/sys/fs/bpf/xdptop/eth0/link_skb")
        );
    }

    #[test]
    fn mismatch_names_every_difference() {
        let found = MapLayout {
            map_type: MapType::Array as u32,
            key_size: 4,
            value_size: 8,
            max_entries: 5,
        };
        let why = found.mismatch(&MapLayout::SHARED).expect("mismatch");
        assert_eq!(
            why,
            "type is array (want hash), value size is 8 (want 16), max_entries is 5 (want 1)"
        );
        assert_eq!(MapLayout::SHARED.mismatch(&MapLayout::SHARED), None);
    }

    #[test]
    fn missing_pin_dir_says_how_to_mount() {
        let err = Pins::new("/nonexistent/bpf")
            .check_bpffs()
            .expect_err("missing");
        assert!(err.to_string().contains("mount -t bpf bpf"), "{err}");
    }

    #[test]
    fn a_plain_directory_is_not_a_bpffs() {
        let err = Pins::new(std::env::temp_dir())
            .check_bpffs()
            .expect_err("tmp");
        assert!(err.to_string().contains("is not a bpffs"), "{err}");
    }
}
