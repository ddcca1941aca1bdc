//! The talker tables of xdptop's program on one interface: the run-time
//! switch (`xdptop_config`) and the two LRU tables, pinned next to the stats
//! map (see `pins.rs`). While a [`TalkerTables`] is open and counting, the
//! program counts sources and services; switching it off, or dropping it,
//! switches counting off again. The dashboard opens the tables idle and
//! counts only while its talkers view is open.

use std::{os::fd::AsFd as _, path::Path};

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use xdp_ebpf::{Counter, ServiceKey, TalkerKey, XdptopConfig};

use super::{Error, Pins, error::Doing as _, sys};
use crate::sample::TalkerReading;

/// Entries per `BPF_MAP_LOOKUP_BATCH` call: 4096 × 32 bytes = 128 KiB of
/// buffers, 25 syscalls for a full table of 100k sources.
const BATCH: usize = 4096;

/// Sizes of the two tables for `--talkers-table N`: sources N, services
/// N / 8 (at least 64; a host has far fewer services than sources).
pub fn table_sizes(sources: u32) -> (u32, u32) {
    (sources, (sources / 8).max(64))
}

/// Kernel memory of the two tables with `sources` source entries, in bytes,
/// on a kernel with `cpus` possible CPUs, as the kernel accounts it
/// (`bytes_memlock` in `bpftool map show`): see `README.md`, "Top talkers".
///
/// An LRU hash preallocates every entry: an element of 48 bytes of header
/// plus the key and the value, each rounded up to 8 bytes (96 bytes for a
/// source, 88 for a service), and a 16-byte bucket per entry rounded up to
/// a power of two; then about 1 KiB per table and 32 bytes per possible CPU.
/// The values are shared, so the CPU count barely matters: a per-CPU value
/// would add 16 bytes per possible CPU to every entry (1 KiB at 64 CPUs).
pub fn kernel_memory(sources: u32, cpus: u32) -> u64 {
    let (sources, services) = table_sizes(sources);
    let table = |entries: u32, key: u64| {
        let elem = 48 + key.next_multiple_of(8) + size_of::<Counter>() as u64;
        let buckets = u64::from(entries.next_power_of_two()) * 16;
        u64::from(entries) * elem + buckets + 1024 + u64::from(cpus) * 32
    };
    table(sources, size_of::<TalkerKey>() as u64) + table(services, size_of::<ServiceKey>() as u64)
}

/// The open tables of one interface, counting switched on.
pub struct TalkerTables {
    config: Array<MapData, XdptopConfig>,
    talkers: MapData,
    services: MapData,
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
        let services = open_table::<ServiceKey>(&services)?;
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
        sys::lookup_batch(self.services.fd().as_fd(), BATCH, &mut reading.services)
            .doing(|| "reading the services table".into())?;
        Ok(reading)
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
    let fits = info.map_type().ok() == Some(MapType::LruHash)
        && info.key_size() as usize == size_of::<K>()
        && info.value_size() as usize == size_of::<Counter>();
    if !fits {
        return Err(Error::Io {
            doing: format!(
                "{} is not a table of the layout this xdptop reads (an xdptop of another \
                 version pinned it): `xdptop --detach` the interface and start again",
                path.display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        });
    }
    MapData::from_pin(path).doing(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_get_an_eighth_of_the_sources() {
        assert_eq!(table_sizes(131_072), (131_072, 16_384));
        assert_eq!(table_sizes(16), (16, 64));
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
