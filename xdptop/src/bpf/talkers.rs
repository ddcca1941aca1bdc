//! The talker tables of xdptop's program on one interface: the run-time
//! switch (`xdptop_config`), the sources LRU table and the services array,
//! pinned next to the stats map (see `pins.rs`). While a [`TalkerTables`] is
//! open and counting, the program counts sources and services; switching it off, or dropping it,
//! switches counting off again. The dashboard opens the tables idle and
//! counts only while its talkers view is open.

use std::{os::fd::AsFd as _, path::Path};

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use xdp_ebpf::{Counter, ServiceKey, TalkerKey, XdptopConfig};

use super::{Error, Pins, error::Doing as _, sys, sys::Mapped};
use crate::sample::TalkerReading;

/// Entries per `BPF_MAP_LOOKUP_BATCH` call: 4096 × 32 bytes = 128 KiB of
/// buffers, 25 syscalls for a full table of 100k sources.
const BATCH: usize = 4096;

/// Bytes of one page, as the kernel rounds an mmapable array.
const PAGE: u64 = sys::PAGE as u64;

/// Kernel memory of the talker tables with `sources` source entries, in
/// bytes, on a kernel with `cpus` possible CPUs, as the kernel accounts it
/// (`bytes_memlock` in `bpftool map show`): see `README.md`, "Top talkers".
///
/// The sources table is an LRU hash, which preallocates every entry: an
/// element of 48 bytes of header plus the key and the value, each rounded up
/// to 8 bytes (96 bytes), and a 16-byte bucket per entry rounded up to a
/// power of two; then about 1 KiB and 32 bytes per possible CPU. The values
/// are shared, so the CPU count barely matters: a per-CPU value would add 16
/// bytes per possible CPU to every entry (1 KiB at 64 CPUs).
///
/// The services array is fixed: a page of header and its 131328 slots of 16
/// bytes, page-rounded (2 MiB + 4 KiB).
pub fn kernel_memory(sources: u32, cpus: u32) -> u64 {
    let elem =
        48 + (size_of::<TalkerKey>() as u64).next_multiple_of(8) + size_of::<Counter>() as u64;
    let buckets = u64::from(sources.next_power_of_two()) * 16;
    let talkers = u64::from(sources) * elem + buckets + 1024 + u64::from(cpus) * 32;
    talkers + services_memory()
}

/// Kernel memory of the services array: see [`kernel_memory`].
pub fn services_memory() -> u64 {
    PAGE + (u64::from(xdp_ebpf::SERVICE_SLOTS) * size_of::<Counter>() as u64).next_multiple_of(PAGE)
}

/// The open tables of one interface, counting switched on.
pub struct TalkerTables {
    config: Array<MapData, XdptopConfig>,
    talkers: MapData,
    services: Services,
    /// Map id of the sources table: a new table (re-attach) restarts counts.
    epoch: u64,
    iface: String,
    /// Whether this reader asked for counting (and switches it off when done).
    counting: bool,
}

impl TalkerTables {
    /// Opens the pinned tables of `iface` and switches counting on (or, not
    /// `counting`, leaves the switch alone until [`Self::set_counting`]).
    /// `None` when the program there has no tables (loaded by an earlier
    /// xdptop): the caller says that talkers need a re-attach.
    pub fn open(pins: &Pins, iface: &str, counting: bool) -> Result<Option<Self>, Error> {
        let paths = pins.talker_pins(iface);
        if !paths.iter().all(|p| p.exists()) {
            return Ok(None);
        }
        let [config, talkers, services] = paths;
        let config =
            MapData::from_pin(&config).doing(|| format!("opening {}", config.display()))?;
        let config = Array::try_from(Map::Array(config))
            .doing(|| "xdptop's config map has an unexpected layout".into())?;
        let talkers = open_table::<TalkerKey>(&talkers)?;
        let services = Services::open(&services)?;
        let epoch = u64::from(
            talkers
                .info()
                .doing(|| "reading the talkers table's info".into())?
                .id(),
        );
        let mut tables = Self {
            config,
            talkers,
            services,
            epoch,
            iface: iface.to_owned(),
            counting: false,
        };
        if counting {
            tables.set_counting(true)?;
        }
        Ok(Some(tables))
    }

    /// Switches counting on or off. The tables keep what they counted; the
    /// reader re-baselines when it starts again.
    pub fn set_counting(&mut self, on: bool) -> Result<(), Error> {
        self.switch(on)?;
        self.counting = on;
        Ok(())
    }

    /// Whether this reader has counting on.
    pub fn counting(&self) -> bool {
        self.counting
    }

    /// `max_entries` of the sources table.
    pub fn capacity(&self) -> u32 {
        max_entries(&self.talkers)
    }

    fn switch(&mut self, on: bool) -> Result<(), Error> {
        let value = XdptopConfig {
            talkers: u32::from(on),
            pad: 0,
        };
        self.config.set(0, value, 0).doing(|| {
            format!(
                "switching talker counting {}",
                if on { "on" } else { "off" }
            )
        })
    }

    /// Reads both tables, a batch of entries per syscall.
    pub fn read(&mut self) -> Result<TalkerReading, Error> {
        let mut reading = TalkerReading {
            epoch: self.epoch,
            sources: Vec::new(),
            services: Vec::new(),
            sources_capacity: max_entries(&self.talkers),
        };
        // Counting is switched on every read: another xdptop consuming talkers
        // on the same interface may have switched it off when it ended.
        self.switch(true)?;
        sys::lookup_batch(self.talkers.fd().as_fd(), BATCH, &mut reading.sources)
            .doing(|| "reading the talkers table".into())?;
        self.services.read(&mut reading.services)?;
        Ok(reading)
    }

    /// Reads the services table alone into `out` (for the benchmark).
    pub fn read_services(&self, out: &mut Vec<(ServiceKey, Counter)>) -> Result<(), Error> {
        self.services.read(out)
    }
}

impl Drop for TalkerTables {
    fn drop(&mut self) {
        if !self.counting {
            return;
        }
        if let Err(e) = self.switch(false) {
            log::warn!(
                "{}: {}",
                self.iface,
                super::error::chain(&e).replace('\n', " ")
            );
        }
    }
}

fn max_entries(map: &MapData) -> u32 {
    map.info().map_or(0, |i| i.max_entries())
}

/// Opens a pinned table and checks it is the LRU hash of `K` the reader
/// expects.
fn open_table<K>(path: &Path) -> Result<MapData, Error> {
    let info = MapInfo::from_pin(path).doing(|| format!("opening {}", path.display()))?;
    if !is_lru_of::<K>(&info) {
        return Err(other_layout(path));
    }
    MapData::from_pin(path).doing(|| format!("opening {}", path.display()))
}

fn is_lru_of<K>(info: &MapInfo) -> bool {
    info.map_type().ok() == Some(MapType::LruHash)
        && info.key_size() as usize == size_of::<K>()
        && info.value_size() as usize == size_of::<Counter>()
}

fn other_layout(path: &Path) -> Error {
    Error::Io {
        doing: format!(
            "{} is not a table of the layout this xdptop reads (an xdptop of another \
             version pinned it): `xdptop --detach` the interface and start again",
            path.display()
        ),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    }
}

/// The services table: the mmapable array of today's program, or the LRU
/// hash of a program loaded by an earlier xdptop (still attached and
/// re-used), read as it was. The two are told apart by the map's type, never
/// by its sizes alone (both have 4-byte keys and 16-byte values).
enum Services {
    Array(Mapped),
    Lru(MapData),
}

impl Services {
    fn open(path: &Path) -> Result<Self, Error> {
        // The checks read the very map that is then read (not the pin again).
        let map = MapData::from_pin(path).doing(|| format!("opening {}", path.display()))?;
        let info = map
            .info()
            .doing(|| format!("reading the info of {}", path.display()))?;
        if is_lru_of::<ServiceKey>(&info) {
            log::debug!(
                "{}: an LRU services table (a program loaded by an earlier xdptop)",
                path.display()
            );
            return Ok(Self::Lru(map));
        }
        let fits = info.map_type().ok() == Some(MapType::Array)
            && info.key_size() == 4
            && info.value_size() as usize == size_of::<Counter>()
            && info.max_entries() == xdp_ebpf::SERVICE_SLOTS
            && info.map_flags() & xdp_ebpf::MMAPABLE != 0;
        if !fits {
            return Err(other_layout(path));
        }
        let mapped = Mapped::new(map.fd().as_fd(), xdp_ebpf::SERVICE_SLOTS as usize)
            .doing(|| format!("mapping {} read-only", path.display()))?;
        // The mapping keeps the map alive; the descriptor is not needed.
        drop(map);
        Ok(Self::Array(mapped))
    }

    /// Appends every service with packets to `out`.
    fn read(&self, out: &mut Vec<(ServiceKey, Counter)>) -> Result<(), Error> {
        match self {
            Self::Array(mapped) => {
                for (slot, packets, bytes) in mapped.nonzero() {
                    let counter = Counter { packets, bytes };
                    out.push((xdp_ebpf::service_of_slot(slot), counter));
                }
                Ok(())
            }
            Self::Lru(map) => sys::lookup_batch(map.fd().as_fd(), BATCH, out)
                .doing(|| "reading the services table".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_array_takes_2_mib() {
        assert_eq!(services_memory(), 4096 + 131_328 * 16);
        assert_eq!(
            kernel_memory(16, 2) - kernel_memory(16, 1),
            32,
            "only the sources table has per-CPU parts"
        );
    }

    #[test]
    fn the_default_tables_stay_under_32_mib_at_64_cpus() {
        let mem = kernel_memory(xdp_ebpf::TALKERS_MAX_ENTRIES, 64);
        assert!(mem <= 32 << 20, "{mem}");
        // Shared values: 64 CPUs cost next to nothing more than 2.
        assert!(
            kernel_memory(xdp_ebpf::TALKERS_MAX_ENTRIES, 64)
                - kernel_memory(xdp_ebpf::TALKERS_MAX_ENTRIES, 2)
                < 4096
        );
    }
}
