//! The talker tables of xdptop's program on one interface: the run-time
//! switch (`xdptop_config`), the sources array with its LRU table for the
//! sources that find no slot, and the services array, pinned next to the
//! stats map (see `pins.rs`). Reading the sources array also frees its idle
//! slots when it fills up (see `bpf/xdp_stats.h`). While a [`TalkerTables`] is
//! open and counting, the program counts sources and services; switching it off, or dropping it,
//! switches counting off again. The dashboard opens the tables idle and
//! counts only while its talkers view is open.

use std::{
    fs::File,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use nix::fcntl::{Flock, FlockArg};

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use xdp_ebpf::{Counter, ServiceKey, SourceSlot, TalkerKey, XdptopConfig, source};

use super::{Error, Pins, error::Doing as _, sys, sys::Mapped};
use crate::{
    sample::TalkerReading,
    talkers::{SourceAt, Table},
};

/// Entries per `BPF_MAP_LOOKUP_BATCH` call: 4096 × 32 bytes = 128 KiB of
/// buffers, 25 syscalls for a full table of 100k sources.
const BATCH: usize = 4096;

/// Bytes of one page, as the kernel rounds an mmapable array.
const PAGE: u64 = sys::PAGE as u64;

/// Kernel memory of the talker tables of a program loaded with
/// `--talkers-table n`, in bytes, on a kernel with `cpus` possible CPUs, as
/// the kernel accounts it (`bytes_memlock` in `bpftool map show`): see
/// `README.md`, "Top talkers".
///
/// The sources array: a page of header and its slots of 40 bytes,
/// page-rounded; its bitmap of slots in use, a page of header and a bit per
/// slot, page-rounded. The LRU table for the sources that find no slot (an eighth
/// of the slots, [`super::source_tables`]) preallocates every entry: an
/// element of 48 bytes of header plus the key and the value, each rounded
/// up to 8 bytes (80 bytes), and a 16-byte bucket per entry rounded up to a
/// power of two; then about 1 KiB and 32 bytes per possible CPU. The values
/// are shared, so the CPU count barely matters.
///
/// The services array is fixed: a page of header and its 131328 slots of 16
/// bytes, page-rounded (2 MiB + 4 KiB).
pub fn kernel_memory(n: u32, cpus: u32) -> u64 {
    let (slots, lru, used) = super::source_tables(n);
    array_memory(slots, size_of::<SourceSlot>())
        + array_memory(used, 8)
        + lru_memory(lru, cpus)
        + services_memory()
}

/// Kernel memory of an mmapable array: a page of header and its values,
/// page-rounded.
fn array_memory(entries: u32, value_size: usize) -> u64 {
    PAGE + (u64::from(entries) * value_size as u64).next_multiple_of(PAGE)
}

/// Kernel memory of an LRU table of `entries` sources: see [`kernel_memory`].
pub fn lru_memory(entries: u32, cpus: u32) -> u64 {
    let elem =
        48 + (size_of::<TalkerKey>() as u64).next_multiple_of(8) + size_of::<Counter>() as u64;
    let buckets = u64::from(entries.next_power_of_two()) * 16;
    u64::from(entries) * elem + buckets + 1024 + u64::from(cpus) * 32
}

/// Kernel memory of the services array: see [`kernel_memory`].
pub fn services_memory() -> u64 {
    array_memory(xdp_ebpf::SERVICE_SLOTS, size_of::<Counter>())
}

/// The open tables of one interface, counting switched on.
pub struct TalkerTables {
    config: Array<MapData, XdptopConfig>,
    /// The LRU table: the sources that find no slot in `sources` (all
    /// sources, for a program loaded before the array).
    talkers: MapData,
    /// Its `max_entries`, read once.
    talkers_capacity: u32,
    /// The sources array; `None` for a program loaded before it.
    sources: Option<SourceArray>,
    services: Services,
    /// Map id of the sources table: a new table (re-attach) restarts counts.
    epoch: u64,
    iface: String,
    /// Whether this reader asked for counting (and switches it off when done).
    counting: bool,
    /// The interface's pin directory, which counting readers hold a shared
    /// flock on (see [`Self::set_counting`]).
    dir: PathBuf,
    /// This reader's shared lock, while it counts.
    lock: Option<Flock<File>>,
}

impl TalkerTables {
    /// Opens the pinned tables of `iface` and switches counting on (or, not
    /// `counting`, leaves the switch alone until [`Self::set_counting`]).
    /// `None` when the program there has no tables (loaded by an earlier
    /// xdptop): the caller says that talkers need a re-attach.
    pub fn open(pins: &Pins, iface: &str, counting: bool) -> Result<Option<Self>, Error> {
        let [config, talkers, services, sources, used] = pins.talker_pins(iface);
        if ![&config, &talkers, &services].iter().all(|p| p.exists()) {
            return Ok(None);
        }
        let sources = if sources.exists() {
            Some(SourceArray::open(&sources, &used, pins.own_dir())?)
        } else {
            // Loaded by an xdptop from before the array: all in the LRU table.
            None
        };
        let config =
            MapData::from_pin(&config).doing(|| format!("opening {}", config.display()))?;
        let config = Array::try_from(Map::Array(config))
            .doing(|| "xdptop's config map has an unexpected layout".into())?;
        let talkers = open_table::<TalkerKey>(&talkers)?;
        let services = Services::open(&services)?;
        let info = talkers
            .info()
            .doing(|| "reading the talkers table's info".into())?;
        let epoch = u64::from(info.id());
        let mut tables = Self {
            config,
            talkers,
            talkers_capacity: info.max_entries(),
            sources,
            services,
            epoch,
            iface: iface.to_owned(),
            counting: false,
            dir: pins.iface_dir(iface),
            lock: None,
        };
        if counting {
            tables.set_counting(true)?;
        } else {
            tables.switch_off_if_unread();
        }
        Ok(Some(tables))
    }

    /// Switches counting on or off. The tables keep what they counted; the
    /// reader re-baselines when it starts again.
    ///
    /// Every xdptop counting talkers on an interface holds a shared flock on
    /// its pin directory. Switching off, a reader lets its lock go and takes
    /// an exclusive one without waiting: only if that succeeds (nobody else
    /// counts) does it switch counting off, so a dashboard closing its
    /// talkers view leaves a `--talkers` daemon on the same interface
    /// counting. A reader killed outright loses its lock with its process;
    /// the next xdptop to watch the interface without counting switches the
    /// forgotten switch off ([`switch_off_if_unread`]).
    pub fn set_counting(&mut self, on: bool) -> Result<(), Error> {
        if on {
            if self.lock.is_none() {
                let dir =
                    File::open(&self.dir).doing(|| format!("opening {}", self.dir.display()))?;
                let lock =
                    Flock::lock(dir, FlockArg::LockShared).map_err(|(_, errno)| Error::Errno {
                        doing: format!("locking {} (shared)", self.dir.display()),
                        source: errno,
                    })?;
                self.lock = Some(lock);
            }
            self.switch(true)?;
        } else if let Some(lock) = self.lock.take() {
            let alone = lock
                .unlock()
                .ok()
                .and_then(|dir| Flock::lock(dir, FlockArg::LockExclusiveNonblock).ok());
            // Held (exclusively) while switching off: nobody starts meanwhile.
            if alone.is_some() {
                self.switch(false)?;
            }
        }
        // (Off without a lock: this reader never counted, so it leaves the
        // switch to those that do.)
        self.counting = on;
        Ok(())
    }

    fn switch_off_if_unread(&mut self) {
        switch_off_unread(&mut self.config, &self.dir, &self.iface);
    }

    /// Whether this reader has counting on.
    pub fn counting(&self) -> bool {
        self.counting
    }

    /// Sources the tables hold: the array's slots (the LRU table's entries
    /// for a program loaded before the array).
    pub fn capacity(&self) -> u32 {
        match &self.sources {
            Some(array) => array.slots,
            None => self.talkers_capacity,
        }
    }

    fn switch(&mut self, on: bool) -> Result<(), Error> {
        let value = XdptopConfig {
            talkers: u32::from(on),
            source_mask: self.sources.as_ref().map_or(0, |a| a.slots - 1),
        };
        self.config.set(0, value, 0).doing(|| {
            format!(
                "switching talker counting {}",
                if on { "on" } else { "off" }
            )
        })
    }

    /// Reads the tables: the arrays through their mappings, the LRU table a
    /// batch of entries per syscall. First, when the sources array was more
    /// than half full at the last read, frees its slots that stayed idle:
    /// before the read, so that the wait this takes does not widen the gap
    /// between the tables' read and the interface's counters'.
    pub fn read(&mut self) -> Result<TalkerReading, Error> {
        // No need to switch counting on again: while this reader holds its
        // shared lock, no other xdptop switches it off.
        if let Some(array) = &mut self.sources {
            array
                .free_idle()
                .doing(|| "freeing idle slots of the sources array".into())?;
        }
        let mut sources = Vec::new();
        let in_array = match &mut self.sources {
            Some(array) => array.read(&mut sources),
            None => 0,
        };
        let mut lru: Vec<(TalkerKey, Counter)> = Vec::new();
        sys::lookup_batch(self.talkers.fd().as_fd(), BATCH, &mut lru)
            .doing(|| "reading the talkers table".into())?;
        let table = match &self.sources {
            Some(array) => Table {
                entries: in_array,
                capacity: array.slots,
                overflow: lru.len(),
                overflow_capacity: self.talkers_capacity,
            },
            None => Table {
                entries: lru.len(),
                capacity: self.talkers_capacity,
                ..Table::default()
            },
        };
        sources.extend(
            lru.into_iter()
                .map(|(key, c)| (SourceAt { key, slot: None }, c)),
        );
        let mut services = Vec::new();
        self.services.read(&mut services)?;
        Ok(TalkerReading {
            epoch: self.epoch,
            sources,
            services,
            table,
        })
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
        if let Err(e) = self.set_counting(false) {
            log::warn!(
                "{}: {}",
                self.iface,
                super::error::chain(&e).replace('\n', " ")
            );
        }
    }
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

/// Switches talker counting off on `iface` if xdptop's program there has it
/// on and no xdptop counts (see [`TalkerTables::set_counting`]); for an
/// xdptop that watches the interface without talkers. It opens the switch
/// alone, not the tables. Quiet when there is no switch or it cannot be
/// opened: it is housekeeping.
pub fn switch_off_if_unread(pins: &Pins, iface: &str) {
    let path = pins.config(iface);
    if !path.exists() {
        return;
    }
    let config = MapData::from_pin(&path)
        .ok()
        .and_then(|map| Array::try_from(Map::Array(map)).ok());
    match config {
        Some(mut config) => switch_off_unread(&mut config, &pins.iface_dir(iface), iface),
        None => log::debug!("{iface}: not checking the talkers switch: cannot open it"),
    }
}

/// Switches counting off if it is on and nobody holds the shared lock on
/// `dir` (no xdptop counts: one killed outright left it on). The exclusive
/// lock is held while switching, so no reader starts meanwhile.
fn switch_off_unread(config: &mut Array<MapData, XdptopConfig>, dir: &Path, iface: &str) {
    let Ok(mut value) = config.get(&0, 0) else {
        return;
    };
    if value.talkers == 0 {
        return;
    }
    let Ok(dir) = File::open(dir) else {
        return;
    };
    let Ok(_alone) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else {
        return;
    };
    value.talkers = 0;
    match config.set(0, value, 0) {
        Ok(()) => log::info!(
            "{iface}: switched talker counting off: it was on with no xdptop counting (one \
             was killed?)"
        ),
        Err(e) => log::warn!("{iface}: switching talker counting off: {e}"),
    }
}

/// Reads in a row without new packets after which a slot counts as idle.
const IDLE_READS: u8 = 3;

/// The sources array (see `bpf/xdp_stats.h`) and its bitmap of slots in
/// use, mapped read-write: xdptop reads the slots in use and frees the idle
/// ones.
struct SourceArray {
    mapped: Mapped,
    used: Mapped,
    slots: u32,
    /// Per slot: the low 32 bits of its packets at the last read, and for
    /// how many reads in a row they stayed the same (5 bytes per slot,
    /// allocated at the first read: tables opened only to check the switch
    /// are never read).
    seen: Vec<u32>,
    idle: Vec<u8>,
    /// Slots in use at the last read.
    in_use: usize,
    /// xdptop's pin directory, locked exclusively while freeing.
    free_lock: PathBuf,
}

/// Words (u64) per slot: key, packets, bytes, and the address's two.
const SLOT_WORDS: usize = size_of::<SourceSlot>() / 8;

/// Opens a pinned mmapable array of `value_size`-byte values with `entries`
/// entries (any, if `None`) and maps it (`writable` or read-only).
fn map_array(
    path: &Path,
    value_size: usize,
    entries: Option<u32>,
    writable: bool,
) -> Result<(Mapped, u32), Error> {
    let map = MapData::from_pin(path).doing(|| format!("opening {}", path.display()))?;
    let info = map
        .info()
        .doing(|| format!("reading the info of {}", path.display()))?;
    map_opened_array(path, &map, &info, value_size, entries, writable)
}

/// [`map_array`] for a map already open, with its info.
fn map_opened_array(
    path: &Path,
    map: &MapData,
    info: &MapInfo,
    value_size: usize,
    entries: Option<u32>,
    writable: bool,
) -> Result<(Mapped, u32), Error> {
    let n = info.max_entries();
    let fits = info.map_type().ok() == Some(MapType::Array)
        && info.key_size() == 4
        && info.value_size() as usize == value_size
        && entries.is_none_or(|e| e == n)
        && info.map_flags() & xdp_ebpf::MMAPABLE != 0;
    if !fits {
        return Err(other_layout(path));
    }
    // The mapping keeps the map alive; the descriptor may be closed.
    let mapped = Mapped::new(map.fd().as_fd(), n as usize * value_size / 8, writable)
        .doing(|| format!("mapping {}", path.display()))?;
    Ok((mapped, n))
}

impl SourceArray {
    fn open(path: &Path, used_path: &Path, free_lock: PathBuf) -> Result<Self, Error> {
        let (mapped, slots) = map_array(path, size_of::<SourceSlot>(), None, true)?;
        if !slots.is_power_of_two() {
            return Err(other_layout(path));
        }
        let (used, _) = map_array(used_path, 8, Some(slots.div_ceil(64)), true)?;
        Ok(Self {
            mapped,
            used,
            slots,
            seen: Vec::new(),
            idle: Vec::new(),
            in_use: 0,
            free_lock,
        })
    }

    /// Appends every source in a slot in use to `out`; returns how many
    /// slots are in use. A slot claimed since its bit was read shows at
    /// the next read.
    fn read(&mut self, out: &mut Vec<(SourceAt, Counter)>) -> usize {
        if self.seen.is_empty() {
            self.seen = vec![0; self.slots as usize];
            self.idle = vec![0; self.slots as usize];
        }
        let words = self.mapped.words();
        let mut in_use = 0;
        for i in slots_in_use(&self.used, self.slots) {
            in_use += 1;
            let slot = &words[i * SLOT_WORDS..(i + 1) * SLOT_WORDS];
            let key = slot[0].load(Ordering::Acquire);
            let packets = slot[1].load(Ordering::Relaxed);
            let low = packets as u32;
            if low == self.seen[i] {
                self.idle[i] = self.idle[i].saturating_add(1);
            } else {
                self.seen[i] = low;
                self.idle[i] = 0;
            }
            let Some(addr) = address(key, slot) else {
                continue;
            };
            let counter = Counter {
                packets,
                bytes: slot[2].load(Ordering::Relaxed),
            };
            let at = SourceAt {
                key: TalkerKey { addr },
                slot: Some(i as u32),
            };
            out.push((at, counter));
        }
        self.in_use = in_use;
        in_use
    }

    /// When more than half of the slots were in use at the last read,
    /// frees those idle for [`IDLE_READS`] reads: marks them dead (the
    /// program skips them), waits until no program can still be adding to
    /// them, then empties them. A packet counted in such a slot after the
    /// last read is then only in the interface's totals (the "other" line).
    ///
    /// One xdptop frees at a time (an exclusive flock on xdptop's pin
    /// directory), so a slot that is dead when it holds the lock was left
    /// by one killed while freeing: it is emptied with the idle ones.
    fn free_idle(&mut self) -> std::io::Result<usize> {
        if self.in_use * 2 <= self.slots as usize {
            return Ok(0);
        }
        let _freeing = Flock::lock(File::open(&self.free_lock)?, FlockArg::LockExclusive)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        let words = self.mapped.words();
        let mut dead = Vec::new();
        for i in slots_in_use(&self.used, self.slots) {
            let slot = &words[i * SLOT_WORDS..(i + 1) * SLOT_WORDS];
            let key = slot[0].load(Ordering::Acquire);
            if key == source::DEAD {
                dead.push((i, key));
                continue;
            }
            if self.idle[i] < IDLE_READS {
                continue;
            }
            let state = key & 0xff;
            let still = slot[1].load(Ordering::Relaxed) as u32 == self.seen[i];
            if (state == source::V4 || state == source::V6)
                && still
                && slot[0]
                    .compare_exchange(key, source::DEAD, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                dead.push((i, key));
            }
        }
        if dead.is_empty() {
            return Ok(0);
        }
        if let Err(e) = sys::wait_for_programs() {
            // Not emptied, so given back: their counts are intact.
            for &(i, key) in &dead {
                words[i * SLOT_WORDS].store(key, Ordering::Release);
            }
            return Err(e);
        }
        let bitmap = self.used.words();
        for &(i, _) in &dead {
            let slot = &words[i * SLOT_WORDS..(i + 1) * SLOT_WORDS];
            for word in &slot[1..] {
                word.store(0, Ordering::Relaxed);
            }
            // The bit goes while the slot is dead (no program claims it), so
            // that the program's claim after the key is 0 sets it again.
            bitmap[i / 64].fetch_and(!(1u64 << (i % 64)), Ordering::AcqRel);
            slot[0].store(0, Ordering::Release);
            self.seen[i] = 0;
            self.idle[i] = 0;
        }
        log::debug!("freed {} idle slots of the sources array", dead.len());
        Ok(dead.len())
    }
}

/// The slots of an array of `slots` whose bit is set in the bitmap `used`,
/// in order.
fn slots_in_use(used: &Mapped, slots: u32) -> impl Iterator<Item = usize> + '_ {
    used.words()
        .iter()
        .enumerate()
        .flat_map(|(w, bits)| {
            let mut bits = bits.load(Ordering::Acquire);
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + b
                })
            })
        })
        .filter(move |&i| i < slots as usize)
}

/// The address of a slot with key word `key`: an IPv4 address in the key,
/// or an IPv6 one in the slot, read between two loads of the key that must
/// agree. `None` for a slot that holds no source (busy, dead, or changed).
fn address(key: u64, slot: &[AtomicU64]) -> Option<[u8; 16]> {
    match key & 0xff {
        source::V4 => {
            let v4 = std::net::Ipv4Addr::from(((key >> 32) as u32).to_ne_bytes());
            Some(v4.to_ipv6_mapped().octets())
        }
        source::V6 => {
            let mut addr = [0u8; 16];
            addr[..8].copy_from_slice(&slot[3].load(Ordering::Relaxed).to_ne_bytes());
            addr[8..].copy_from_slice(&slot[4].load(Ordering::Relaxed).to_ne_bytes());
            (slot[0].load(Ordering::Acquire) == key).then_some(addr)
        }
        _ => None,
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
        let (mapped, _) = map_opened_array(
            path,
            &map,
            &info,
            size_of::<Counter>(),
            Some(xdp_ebpf::SERVICE_SLOTS),
            false,
        )?;
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
            "only the LRU table has per-CPU parts"
        );
    }

    #[test]
    fn the_sources_array_has_40_bytes_and_a_bit_a_slot_and_an_lru_of_an_eighth() {
        let n = 1 << 20;
        assert_eq!(
            kernel_memory(n, 2),
            4096 + n as u64 * 40 + 4096 + n as u64 / 8 + lru_memory(n / 8, 2) + services_memory()
        );
        // Rounded up to a power of two, as the program masks its hash.
        assert_eq!(kernel_memory(1000, 2), kernel_memory(1024, 2));
    }

    fn slot(key: u64, addr: [u8; 16]) -> [AtomicU64; SLOT_WORDS] {
        [
            AtomicU64::new(key),
            AtomicU64::new(7),
            AtomicU64::new(700),
            AtomicU64::new(u64::from_ne_bytes(addr[..8].try_into().expect("8 bytes"))),
            AtomicU64::new(u64::from_ne_bytes(addr[8..].try_into().expect("8 bytes"))),
        ]
    }

    #[test]
    fn slot_keys_give_their_addresses() {
        // 198.18.0.10 as the program loads it from the packet.
        let raw = u32::from_ne_bytes([198, 18, 0, 10]);
        let key = (u64::from(raw) << 32) | source::V4;
        let got = address(key, &slot(key, [0; 16])).expect("an IPv4 source");
        assert_eq!(TalkerKey { addr: got }.ip().to_string(), "198.18.0.10");

        let v6: std::net::Ipv6Addr = "2001:db8::7".parse().expect("an address");
        let key = (0x1234_5678 << 32) | source::V6;
        let got = address(key, &slot(key, v6.octets())).expect("an IPv6 source");
        assert_eq!(TalkerKey { addr: got }.ip().to_string(), "2001:db8::7");

        for state in [source::BUSY, source::DEAD] {
            let key = (0x1234_5678 << 32) | state;
            assert_eq!(address(key, &slot(key, v6.octets())), None);
        }
        // The key changed while the address was read: not this source.
        let key = (0x1234_5678 << 32) | source::V6;
        assert_eq!(address(key, &slot(source::DEAD, v6.octets())), None);
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
