//! Attaching (or re-using an attachment) and detaching, per interface.
//!
//! One program instance per interface: each has its own one-slot per-CPU
//! stats map (cheap to update), and all share the pinned `xdp_stats_map`.
//! The bpf_link is pinned, so the attachment outlives xdptop: the seed's
//! scrapers keep counting after it exits.

use std::{io, os::fd::AsFd as _, path::Path};

use aya::{
    EbpfLoader,
    maps::{HashMap, MapData, MapInfo, MapType},
    programs::{ProgramError, Xdp, XdpMode, links::FdLink},
};
use xdp_ebpf::{DataRec, XdptopStats};

use super::{
    AttachMode, Error, WatchOptions,
    dispatcher::{self, Route},
    error::Doing as _,
    ifindex,
    pins::{Pins, check_shared_map, ignore_missing},
    reader::{ForeignSource, OwnSource, SharedPinGuard},
    sys,
    talkers::TalkerTables,
};
use crate::{
    sample::{Mode, Reading, TalkerReading},
    sampler::CounterSource,
};

/// `BPF_NOEXIST`: create key 0 only if nobody did yet.
pub(super) const BPF_NOEXIST: u64 = 1;

/// An interface xdptop now watches.
pub struct Attached {
    pub source: Box<dyn CounterSource>,
    pub mode: Mode,
    /// What happened, for the log and the screen.
    pub note: String,
}

/// Outcome of [`detach`].
#[derive(Debug, PartialEq, Eq)]
pub enum Detached {
    /// xdptop's program was detached and its pins removed.
    Detached { prog_id: u32 },
    /// Only stale pins were there (interface recreated, link gone).
    RemovedStalePins,
    /// Nothing of xdptop's was pinned for this interface.
    NotAttached,
}

/// Starts watching `iface`: re-uses xdptop's pinned attachment if it is still
/// live, otherwise loads and attaches the program; if another loader's
/// program holds the interface, watches the shared map read-only. With
/// `options.talkers_table`, also opens the talker tables (counting on).
pub fn watch(pins: &Pins, iface: &str, options: WatchOptions) -> Result<Attached, Error> {
    let tables = options.talkers_table.unwrap_or(super::IDLE_TALKERS_TABLE);
    let mut attached = watch_program(pins, iface, options, tables)?;
    let counting = options.talkers_table.is_some();
    if !counting && !options.talkers_on_demand {
        if attached.mode != Mode::ReadOnly {
            super::talkers::switch_off_if_unread(pins, iface);
        }
        return Ok(attached);
    }
    if attached.mode == Mode::ReadOnly {
        if counting {
            log::warn!(
                "{iface}: no talkers: they are counted by xdptop's own program, and another \
                 loader's program holds {iface}"
            );
        }
        return Ok(attached);
    }
    // Asked for (--talkers): a warning; only on demand (the dashboard's
    // talkers view, which says why itself): a note.
    let level = if counting {
        log::Level::Warn
    } else {
        log::Level::Info
    };
    match TalkerTables::open(pins, iface, counting) {
        // The interface is still watched; only the talkers are missing.
        Err(e) => log::log!(
            level,
            "{iface}: no talkers: {}",
            super::error::chain(&e).replace('\n', " ")
        ),
        Ok(None) => log::log!(
            level,
            "{iface}: no talkers: the program attached there was loaded by an earlier xdptop \
             that had no talker tables. To count talkers, re-attach: `xdptop --detach {iface}`, \
             then start xdptop with --talkers again (xdptop's own counters for {iface} restart; \
             the shared xdp_stats_map keeps its counts)"
        ),
        Ok(Some(tables)) => {
            let capacity = tables.capacity();
            if let Some(want) = options.talkers_table
                && capacity < want
            {
                log::warn!(
                    "{iface}: the talkers table of the program attached there holds {capacity} \
                     sources, fewer than --talkers-table {want} (it was loaded without \
                     --talkers, or with a smaller table); busy hosts will see more evictions. \
                     For the full size, re-attach: `xdptop --detach {iface}`, then start \
                     xdptop with --talkers again (xdptop's own counters for {iface} restart; \
                     the shared xdp_stats_map keeps its counts)"
                );
            }
            if counting {
                attached
                    .note
                    .push_str(&format!("; counting talkers ({capacity} sources at most)"));
            }
            attached.source = Box::new(WithTalkers {
                inner: attached.source,
                tables,
            });
        }
    }
    Ok(attached)
}

/// A source of xdptop's own program with its talker tables.
struct WithTalkers {
    inner: Box<dyn CounterSource>,
    tables: TalkerTables,
}

impl CounterSource for WithTalkers {
    fn interface(&self) -> &str {
        self.inner.interface()
    }

    fn mode(&self) -> Mode {
        self.inner.mode()
    }

    fn read(&mut self) -> anyhow::Result<Reading> {
        self.inner.read()
    }

    fn read_talkers(&mut self) -> Option<anyhow::Result<TalkerReading>> {
        if !self.tables.counting() {
            return None;
        }
        Some(self.tables.read().map_err(Into::into))
    }

    fn count_talkers(&mut self, on: bool) -> anyhow::Result<u32> {
        self.tables.set_counting(on)?;
        Ok(self.tables.capacity())
    }
}

fn watch_program(
    pins: &Pins,
    iface: &str,
    options: WatchOptions,
    tables: u32,
) -> Result<Attached, Error> {
    let mode = options.mode;
    let Some(ifindex) = ifindex(iface) else {
        return Err(Error::UnknownInterface {
            iface: iface.to_owned(),
        });
    };
    let cap_bpf_only = !crate::privilege::may_subtract_pointers()?;
    if let Some(mut reused) = reuse(pins, iface, ifindex)? {
        // A bpf_link from an earlier xdptop (or a single-program run) on a
        // host where the dispatcher works: it stays, as the operator left
        // it, but it blocks xdp-loader; say how to move it.
        if matches!(dispatcher::route(cap_bpf_only), Route::Dispatcher(_)) {
            reused.note.push_str(&format!(
                ". It holds {iface} alone, so xdp-loader cannot add programs there: \
                 `xdptop --detach {iface}` and start xdptop again to join libxdp's dispatcher"
            ));
        }
        return Ok(reused);
    }
    let route = dispatcher::route(cap_bpf_only);
    if let Route::Dispatcher(lib) = route
        && let Some(reused) = dispatcher::reuse(lib, pins, iface, ifindex, options.priority)?
    {
        return Ok(reused);
    }
    let shared_existed = check_shared_map(pins)?.is_some();
    drop_stale_stats(pins, iface)?;
    drop_talker_pins(pins, iface)?;
    pins.create_iface_dir(iface)?;
    let result = match route {
        Route::Dispatcher(lib) => {
            match dispatcher::attach(lib, pins, iface, ifindex, options, tables) {
                Err(AttachError::NoDispatcher(why)) => {
                    log::warn!("{iface}: {why}; attaching a single program on a bpf_link instead");
                    remove_own_pins(pins, iface);
                    if !shared_existed {
                        let _ = ignore_missing(std::fs::remove_file(pins.shared_map()));
                    }
                    pins.create_iface_dir(iface)?;
                    load_and_attach(pins, iface, ifindex, mode, tables)
                }
                other => other,
            }
        }
        Route::Single(_) => load_and_attach(pins, iface, ifindex, mode, tables),
    };
    if let (Route::Single(_), Some(prio)) = (&route, options.priority) {
        log::warn!(
            "{iface}: --priority {prio} has no effect: xdptop runs a single program there, not \
             in a libxdp dispatcher chain"
        );
    }
    let libxdp_hint = match &route {
        Route::Single(why) if dispatcher::has_dispatcher_pins(ifindex) => {
            format!(". {iface} runs a libxdp dispatcher that xdptop cannot join: {why}")
        }
        _ => String::new(),
    };
    match result {
        Ok(attached) => Ok(attached),
        Err(AttachError::Busy(why)) => {
            // Leave no trace of the attempt: another loader owns the hook.
            remove_own_pins(pins, iface);
            if !shared_existed {
                let _ = ignore_missing(std::fs::remove_file(pins.shared_map()));
            }
            log::debug!("{iface}: attach refused: {why}");
            read_only(pins, iface, ifindex, &libxdp_hint)
        }
        Err(e) => {
            remove_own_pins(pins, iface);
            if !shared_existed {
                let _ = ignore_missing(std::fs::remove_file(pins.shared_map()));
            }
            Err(match e {
                AttachError::Other(e) => e,
                // Handled above; load_and_attach never returns it.
                AttachError::NoDispatcher(why) | AttachError::Busy(why) => Error::Io {
                    doing: format!("attaching to {iface}"),
                    source: io::Error::other(why),
                },
            })
        }
    }
}

/// Re-uses a pinned link that is still attached to this very interface.
fn reuse(pins: &Pins, iface: &str, ifindex: u32) -> Result<Option<Attached>, Error> {
    let Some((link_path, mode)) = pins.find_link(iface) else {
        return Ok(None);
    };
    let link = sys::obj_get(&link_path)
        .doing(|| format!("opening xdptop's pinned link {}", link_path.display()))?;
    let info = sys::link_info(link.as_fd()).doing(|| format!("reading {}", link_path.display()))?;
    if info.link_type != sys::LINK_TYPE_XDP || info.ifindex != ifindex {
        // The interface was deleted (and maybe recreated) or the link was
        // detached: the pin is stale. The stats map is kept so counts go on.
        log::info!(
            "{iface}: removing stale link pin {} (its interface is gone or it was detached)",
            link_path.display()
        );
        ignore_missing(std::fs::remove_file(&link_path))
            .doing(|| format!("removing {}", link_path.display()))?;
        return Ok(None);
    }
    let stats = open_stats(pins, iface)?;
    let shared = shared_guard_for_prog(info.prog_id, pins);
    let source = OwnSource::new(iface, mode, link, stats, shared)?;
    Ok(Some(Attached {
        source: Box::new(source),
        mode,
        note: format!(
            "{iface}: re-using the attachment left by an earlier run (program id {}, {} mode)",
            info.prog_id,
            mode.as_str()
        ),
    }))
}

/// The shared map a running xdptop program counts into, found through the
/// program's map ids (the pin may have been removed meanwhile).
fn shared_guard_for_prog(prog_id: u32, pins: &Pins) -> Option<SharedPinGuard> {
    let prog = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)?;
    let map_id = prog.map_ids().ok()??.into_iter().find(|&id| {
        MapInfo::from_id(id).is_ok_and(|m| m.name_as_str() == Some(xdp_ebpf::STATS_MAP))
    })?;
    let data = MapData::from_id(map_id).ok()?;
    SharedPinGuard::new(data, pins.shared_map()).ok()
}

/// A stats map pinned by an xdptop with another layout cannot be re-used.
fn drop_stale_stats(pins: &Pins, iface: &str) -> Result<(), Error> {
    let path = pins.stats(iface);
    if !path.exists() {
        return Ok(());
    }
    let fits = MapInfo::from_pin(&path).is_ok_and(|info| {
        info.map_type().ok() == Some(MapType::PerCpuArray)
            && info.value_size() as usize == size_of::<XdptopStats>()
            && info.key_size() == 4
    });
    if !fits {
        log::info!(
            "{iface}: replacing xdptop's stats map of another layout at {}",
            path.display()
        );
        ignore_missing(std::fs::remove_file(&path))
            .doing(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Talker pins left by an earlier attachment (its program is gone: a fresh
/// load follows) would be re-used as they are, at their old size: a fresh
/// load gets fresh tables.
fn drop_talker_pins(pins: &Pins, iface: &str) -> Result<(), Error> {
    for path in pins.talker_pins(iface) {
        ignore_missing(std::fs::remove_file(&path))
            .doing(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

pub(super) enum AttachError {
    /// Another program holds the hook (EBUSY / EEXIST): why, for the log.
    Busy(String),
    /// libxdp could not make a dispatcher after all (the single-program
    /// path is taken instead).
    NoDispatcher(String),
    Other(Error),
}

impl<E: Into<Error>> From<E> for AttachError {
    fn from(e: E) -> Self {
        AttachError::Other(e.into())
    }
}

fn load_and_attach(
    pins: &Pins,
    iface: &str,
    ifindex: u32,
    mode: AttachMode,
    tables: u32,
) -> Result<Attached, AttachError> {
    let shared_path = pins.shared_map();
    let stats_path = pins.stats(iface);
    let (slots, lru, used) = super::source_tables(tables);
    let cap_bpf_only = !crate::privilege::may_subtract_pointers()?;
    let cap_bpf_only_value = u8::from(cap_bpf_only);
    // No target BTF: the program has no CO-RE relocations (a test in
    // xdp-ebpf checks), so the kernel's /sys/kernel/btf/vmlinux, which
    // `EbpfLoader::new` would parse into some 15 MB of heap, is not needed.
    // The object's own BTF is still loaded, so the maps keep their types for
    // bpftool. A loader is cheap to make, so each attach makes its own.
    let mut ebpf = EbpfLoader::with_btf(None)
        .map_pin_path(xdp_ebpf::STATS_MAP, shared_path.clone())
        .map_pin_path(xdp_ebpf::XDPTOP_STATS_MAP, stats_path)
        .map_pin_path(xdp_ebpf::CONFIG_MAP, pins.config(iface))
        .map_pin_path(xdp_ebpf::TALKERS_MAP, pins.talkers(iface))
        .map_pin_path(xdp_ebpf::SOURCES_MAP, pins.sources(iface))
        .map_pin_path(xdp_ebpf::SOURCES_USED_MAP, pins.sources_used(iface))
        .map_pin_path(xdp_ebpf::SERVICES_MAP, pins.services(iface))
        .map_max_entries(xdp_ebpf::SOURCES_MAP, slots)
        .map_max_entries(xdp_ebpf::SOURCES_USED_MAP, used)
        .map_max_entries(xdp_ebpf::TALKERS_MAP, lru)
        .override_global(xdp_ebpf::CAP_BPF_ONLY, &cap_bpf_only_value, true)
        .load(xdp_ebpf::xdptop_object())
        .doing(|| "loading xdptop's XDP program (is the kernel 5.9+ with BTF?)".into())?;
    ensure_key_zero(&mut ebpf, &shared_path)?;

    let program = ebpf
        .program_mut(xdp_ebpf::XDPTOP_PROGRAM)
        .ok_or(Error::Object("the embedded object has no xdptop program"))?;
    let program =
        <&mut Xdp>::try_from(program).doing(|| "xdptop's program is not an XDP program".into())?;
    program.load().map_err(|source| Error::Refused {
        cap_bpf_only,
        source: Box::new(source),
    })?;

    let tries: &[(XdpMode, Mode)] = match mode {
        AttachMode::Auto => &[(XdpMode::Driver, Mode::Native), (XdpMode::Skb, Mode::Skb)],
        AttachMode::Native => &[(XdpMode::Driver, Mode::Native)],
        AttachMode::Skb => &[(XdpMode::Skb, Mode::Skb)],
    };
    let mut failures = Vec::new();
    for &(xdp_mode, got) in tries {
        match program.attach_to_if_index(ifindex, xdp_mode) {
            Ok(link_id) => {
                let link = program
                    .take_link(link_id)
                    .doing(|| format!("taking the link on {iface}"))?;
                let link = FdLink::try_from(link).map_err(|_| Error::NotABpfLink {
                    iface: iface.to_owned(),
                })?;
                let link_path = pins.link(iface, got);
                link.pin(&link_path)
                    .doing(|| format!("pinning the link at {}", link_path.display()))?;
                let link_fd = sys::obj_get(&link_path)
                    .doing(|| format!("opening {}", link_path.display()))?;
                let prog_id = sys::link_info(link_fd.as_fd())
                    .map(|i| i.prog_id)
                    .unwrap_or_default();
                let stats = ebpf
                    .take_map(xdp_ebpf::XDPTOP_STATS_MAP)
                    .ok_or(Error::Object("the embedded object has no stats map"))?;
                let stats = match stats {
                    aya::maps::Map::PerCpuArray(data) => data,
                    _ => return Err(Error::Object("xdptop_stats is not a per-CPU array").into()),
                };
                let fallback = if failures.is_empty() {
                    String::new()
                } else {
                    let why: Vec<String> =
                        failures.iter().map(|e| super::error::chain(e)).collect();
                    format!(" after native mode failed: {}", why.join("; "))
                };
                let shared = match ebpf.take_map(xdp_ebpf::STATS_MAP) {
                    Some(aya::maps::Map::HashMap(data)) => {
                        Some(SharedPinGuard::new(data, pins.shared_map())?)
                    }
                    _ => None,
                };
                let source = OwnSource::new(iface, got, link_fd, stats, shared)?;
                return Ok(Attached {
                    source: Box::new(source),
                    mode: got,
                    note: format!(
                        "{iface}: attached xdptop's program (id {prog_id}) in {} mode{fallback}",
                        got.as_str()
                    ),
                });
            }
            Err(e) if is_busy(&e) => {
                return Err(AttachError::Busy(super::error::chain(&e)));
            }
            Err(e) => failures.push(e),
        }
    }
    Err(Error::Attach {
        iface: iface.to_owned(),
        mode,
        failures,
    }
    .into())
}

/// EBUSY: a program is attached in this mode; EEXIST: one is attached in the
/// other mode. Either way the hook belongs to someone else.
fn is_busy(e: &ProgramError) -> bool {
    matches!(e, ProgramError::SyscallError(s)
        if matches!(s.io_error.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST)))
}

/// Key 0 exists (zeroed) from the start, so a scraper never finds it empty;
/// an existing value (another loader's counts) is never overwritten.
fn ensure_key_zero(ebpf: &mut aya::Ebpf, path: &Path) -> Result<(), Error> {
    let map = ebpf
        .map_mut(xdp_ebpf::STATS_MAP)
        .ok_or(Error::Object("the embedded object has no xdp_stats_map"))?;
    let mut map: HashMap<_, u32, DataRec> =
        HashMap::try_from(map).doing(|| "xdp_stats_map has an unexpected layout".into())?;
    match map.insert(0, DataRec::default(), BPF_NOEXIST) {
        Ok(()) => Ok(()),
        Err(aya::maps::MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(libc::EEXIST) =>
        {
            Ok(())
        }
        Err(e) => Err(e).doing(|| format!("creating key 0 in {}", path.display())),
    }
}

fn read_only(pins: &Pins, iface: &str, ifindex: u32, libxdp_hint: &str) -> Result<Attached, Error> {
    let prog_id = sys::xdp_prog_id(ifindex)
        .doing(|| format!("asking which XDP program runs on {iface}"))?
        .ok_or_else(|| Error::ForeignProgramGone {
            iface: iface.to_owned(),
        })?;
    if !libxdp_hint.is_empty() {
        log::warn!("{}", libxdp_hint.trim_start_matches(". "));
    }
    let source = ForeignSource::open(iface, ifindex, prog_id, pins.shared_map())?;
    FOREIGN.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(Attached {
        note: source.note(),
        source: Box::new(source),
        mode: Mode::ReadOnly,
    })
}

/// Set once an interface is watched over another loader's program.
static FOREIGN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process watches another loader's program: then telling
/// whether a replaced program updates the shared map needs CAP_SYS_ADMIN
/// (programs are opened by id) while sampling.
pub fn watches_foreign() -> bool {
    FOREIGN.load(std::sync::atomic::Ordering::Relaxed)
}

/// xdptop's pinned per-CPU stats map for `iface`.
pub(super) fn open_stats(pins: &Pins, iface: &str) -> Result<MapData, Error> {
    let path = pins.stats(iface);
    MapData::from_pin(&path).map_err(|source| Error::UnreadableCounters {
        iface: iface.to_owned(),
        path,
        source: Box::new(source),
    })
}

/// Best effort: used on failure paths, where the first error matters more.
fn remove_own_pins(pins: &Pins, iface: &str) {
    for mode in [Mode::Native, Mode::Skb] {
        let _ = ignore_missing(std::fs::remove_file(pins.link(iface, mode)));
    }
    let _ = ignore_missing(std::fs::remove_file(pins.stats(iface)));
    let _ = drop_talker_pins(pins, iface);
    let _ = pins.remove_iface_dir(iface);
}

/// Detaches xdptop from `iface` (even while another xdptop holds the link
/// open) and removes its pins for it. The shared map stays: other readers
/// depend on it.
pub fn detach(pins: &Pins, iface: &str) -> Result<Detached, Error> {
    let dir = pins.iface_dir(iface);
    if !dir.exists() {
        return Ok(Detached::NotAttached);
    }
    let mut outcome = Detached::RemovedStalePins;
    if let Some((link_path, _)) = pins.find_link(iface) {
        let link = sys::obj_get(&link_path).doing(|| format!("opening {}", link_path.display()))?;
        let info =
            sys::link_info(link.as_fd()).doing(|| format!("reading {}", link_path.display()))?;
        if info.ifindex != 0 {
            sys::link_detach(link.as_fd())
                .doing(|| format!("detaching the link {}", link_path.display()))?;
            outcome = Detached::Detached {
                prog_id: info.prog_id,
            };
        }
    } else if let Some(ifindex) = super::ifindex(iface) {
        match dispatcher::library() {
            Ok(lib) => {
                if let Some(prog_id) = dispatcher::detach(lib, pins, iface, ifindex)? {
                    outcome = Detached::Detached { prog_id };
                }
            }
            Err(why) if dispatcher::has_dispatcher_pins(ifindex) && pins.stats(iface).exists() => {
                return Err(Error::Io {
                    doing: format!(
                        "{iface} runs a libxdp dispatcher, which may hold xdptop's program; \
                         xdptop needs libxdp to remove it: {why}"
                    ),
                    source: io::Error::from(io::ErrorKind::Unsupported),
                });
            }
            Err(_) => {}
        }
    }
    remove_dir_pins(&dir)?;
    pins.remove_iface_dir(iface)
        .doing(|| format!("removing {}", dir.display()))?;
    Ok(outcome)
}

fn remove_dir_pins(dir: &Path) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).doing(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let path = entry.doing(|| format!("listing {}", dir.display()))?.path();
        ignore_missing(std::fs::remove_file(&path))
            .doing(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}
