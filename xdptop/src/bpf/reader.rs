//! Counter sources backed by the kernel maps: xdptop's own per-CPU map, or
//! the shared `xdp_stats_map` when another loader's program is attached.

use std::{
    os::{
        fd::{AsFd as _, OwnedFd},
        unix::fs::MetadataExt as _,
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya::maps::{HashMap, Map, MapData, MapInfo, PerCpuArray};
use xdp_ebpf::{DataRec, XdptopStats};

use super::{
    Error,
    dispatcher::{Gone, Liveness},
    error::Doing as _,
    observer::Follower,
    sys,
};
use crate::{
    sample::{Detail, Mode, NotObservable, Reading},
    sampler::CounterSource,
};

/// How [`OwnSource`] tells an idle program from a detached one.
pub enum Alive {
    /// xdptop's own bpf_link.
    Link(OwnedFd),
    /// A component of a libxdp dispatcher.
    Component(Liveness),
}

/// xdptop's program on one interface: reads its per-CPU breakdown.
pub struct OwnSource {
    iface: String,
    mode: Mode,
    alive: Alive,
    stats: PerCpuArray<MapData, XdptopStats>,
    epoch: u64,
    shared: Option<SharedPinGuard>,
    /// Packets at the last read, to skip the link check while they move.
    last_packets: Option<u64>,
    /// The verdicts of the interface's program (xdptop's own, or the
    /// dispatcher it runs in).
    verdicts: Follower,
}

impl OwnSource {
    pub fn new(
        iface: &str,
        mode: Mode,
        link: OwnedFd,
        stats: MapData,
        shared: Option<SharedPinGuard>,
    ) -> Result<Self, Error> {
        Self::with_liveness(iface, mode, Alive::Link(link), stats, shared)
    }

    pub fn with_liveness(
        iface: &str,
        mode: Mode,
        alive: impl Into<Alive>,
        stats: MapData,
        shared: Option<SharedPinGuard>,
    ) -> Result<Self, Error> {
        let epoch = u64::from(
            stats
                .info()
                .doing(|| "reading the stats map's info".into())?
                .id(),
        );
        let stats = PerCpuArray::try_from(Map::PerCpuArray(stats))
            .doing(|| "xdptop's stats map has an unexpected layout".into())?;
        let verdicts = Follower::new(iface, super::ifindex(iface).unwrap_or(0));
        Ok(Self {
            iface: iface.to_owned(),
            mode,
            alive: alive.into(),
            stats,
            epoch,
            shared,
            last_packets: None,
            verdicts,
        })
    }
}

impl From<Liveness> for Alive {
    fn from(l: Liveness) -> Self {
        Alive::Component(l)
    }
}

impl From<OwnedFd> for Alive {
    fn from(fd: OwnedFd) -> Self {
        Alive::Link(fd)
    }
}

/// Keeps the shared map's pin in place for the scrapers: if someone removes
/// it while xdptop's program still counts into the map, pin it again.
pub struct SharedPinGuard {
    map: MapData,
    id: u32,
    path: PathBuf,
    /// Set once the pin was seen holding another map, to say so only once.
    replaced_by: Option<u32>,
    /// Checking costs a few syscalls: at most once per [`PIN_CHECK_EVERY`].
    next_check: Instant,
    /// (device, inode) of the pin when its map was last identified: while
    /// the pin keeps it, one stat is the whole check.
    known_pin: Option<(u64, u64)>,
}

const PIN_CHECK_EVERY: Duration = Duration::from_secs(1);

impl SharedPinGuard {
    pub fn new(map: MapData, path: PathBuf) -> Result<Self, Error> {
        let id = map
            .info()
            .doing(|| "reading the shared map's info".into())?
            .id();
        Ok(Self {
            map,
            id,
            path,
            replaced_by: None,
            next_check: Instant::now(),
            known_pin: None,
        })
    }

    /// Called once per sample; looks at the pin at most once a second.
    pub fn check(&mut self) {
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        self.next_check = now + PIN_CHECK_EVERY;
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match self.map.pin(&self.path) {
                Ok(()) => log::warn!(
                    "{} was removed while xdptop's program counts into it; pinned it again \
                     (map id {}) so the scrapers keep working",
                    self.path.display(),
                    self.id
                ),
                // Another xdptop may have re-pinned it first.
                Err(e) => log::debug!("re-pinning {}: {e}", self.path.display()),
            },
            Err(_) => {}
            Ok(meta) if self.known_pin == Some((meta.dev(), meta.ino())) => {}
            Ok(meta) => {
                let now = MapInfo::from_pin(&self.path).map(|i| i.id()).ok();
                if now.is_some() {
                    self.known_pin = Some((meta.dev(), meta.ino()));
                }
                match now {
                    Some(id) if id != self.id && self.replaced_by != Some(id) => {
                        log::warn!(
                            "{} now holds another map (id {id}); xdptop's program keeps counting \
                             into map id {}, so scrapers reading the pin see the other loader's \
                             counts. Restart xdptop after `xdptop --detach` to follow the new map",
                            self.path.display(),
                            self.id
                        );
                        self.replaced_by = Some(id);
                    }
                    Some(id) if id == self.id => self.replaced_by = None,
                    _ => {}
                }
            }
        }
    }
}

impl CounterSource for OwnSource {
    fn interface(&self) -> &str {
        &self.iface
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn read(&mut self) -> anyhow::Result<Reading> {
        let per_cpu = self
            .stats
            .get(&0, 0)
            .doing(|| "reading xdptop's per-CPU counters".into())?;
        let mut reading = reading_from_per_cpu(&per_cpu, self.epoch);
        // Only this interface's program writes this map, so counters that
        // moved prove it is still attached; a syscall per sample is saved
        // on a busy link. Still counters need the link to tell idle from
        // detached.
        if self.last_packets.is_none_or(|p| p == reading.packets) {
            let iface = self.iface.clone();
            match &mut self.alive {
                Alive::Link(link) => {
                    let info =
                        sys::link_info(link.as_fd()).doing(|| "reading xdptop's link".into())?;
                    if info.ifindex == 0 {
                        if super::ifindex(&self.iface).is_none() {
                            return Err(Error::InterfaceGone { iface }.into());
                        }
                        return Err(Error::LinkDetached { iface }.into());
                    }
                }
                Alive::Component(liveness) => match liveness.check(&self.iface) {
                    Ok(()) => {}
                    Err(Gone::Interface) => return Err(Error::InterfaceGone { iface }.into()),
                    Err(Gone::Component) => return Err(Error::LinkDetached { iface }.into()),
                },
            }
        }
        self.last_packets = Some(reading.packets);
        if let Some(shared) = &mut self.shared {
            shared.check();
        }
        reading.actions = self.verdicts.read();
        reading.run = self.verdicts.run_stats();
        Ok(reading)
    }
}

/// Sums the per-CPU values into one reading with its breakdown.
pub fn reading_from_per_cpu(per_cpu: &[XdptopStats], epoch: u64) -> Reading {
    let mut total = XdptopStats::default();
    for cpu in per_cpu {
        total.accumulate(cpu);
    }
    Reading {
        packets: total.packets,
        bytes: total.bytes,
        epoch,
        detail: Some(Detail {
            l3: total.l3,
            l4: total.l4,
            size_hist: total.size_hist,
            per_cpu_packets: per_cpu.iter().map(|s| s.packets).collect(),
        }),
        actions: None,
        run: None,
    }
}

/// Another loader's program holds the interface. Its counts are read from
/// the pinned shared map only while that program really updates it (the
/// map's id is among the program's map ids); otherwise the interface is not
/// observable, and each read says why. Re-checked whenever the interface's
/// program or the pinned map changes (a loader restarted, a pin replaced).
pub struct ForeignSource {
    iface: String,
    ifindex: u32,
    path: PathBuf,
    prog_id: u32,
    /// Id of the map pinned at `path` when the view was decided.
    pinned: Option<u32>,
    view: View,
}

enum View {
    /// xdptop's fexit observer counts the program's packets and bytes by
    /// verdict: their sum is the interface's count.
    Observed(Box<Follower>),
    /// The program updates the pinned map: its key 0, under this epoch.
    Shared {
        map: HashMap<MapData, u32, DataRec>,
        epoch: u64,
    },
    /// Nothing to read, and why (for the health, the log and the screen);
    /// with the observer that was refused for a reason that may pass, which
    /// tries again on its own schedule.
    NotObservable(String, Option<Box<Follower>>),
}

impl ForeignSource {
    pub fn open(iface: &str, ifindex: u32, prog_id: u32, path: PathBuf) -> Result<Self, Error> {
        let (view, pinned) = decide(iface, ifindex, prog_id, &path)?;
        Ok(Self {
            iface: iface.to_owned(),
            ifindex,
            path,
            prog_id,
            pinned,
            view,
        })
    }

    /// What the operator is told when watching starts.
    pub fn note(&self) -> String {
        match &self.view {
            View::Observed(_) => format!(
                "{}: another loader's XDP program (id {}) is attached; watching it read-only: \
                 xdptop observes its verdicts (fexit) and counts the interface's packets from \
                 them, without touching the program",
                self.iface, self.prog_id
            ),
            View::Shared { .. } => format!(
                "{}: another loader's XDP program (id {}) is attached and updates {};                  watching it read-only (the shared counter, no breakdowns)",
                self.iface,
                self.prog_id,
                self.path.display()
            ),
            View::NotObservable(..) => format!(
                "{}: another loader's XDP program (id {}) is attached, and xdptop cannot \
                 observe it (why: in the warning that follows)",
                self.iface, self.prog_id
            ),
        }
    }

    fn recheck(&mut self, prog_id: u32) -> Result<(), Error> {
        let old_epoch = match &self.view {
            View::Shared { epoch, .. } => Some(*epoch),
            View::NotObservable(..) | View::Observed(_) => None,
        };
        if prog_id != self.prog_id {
            log::warn!(
                "{}: the XDP program changed (id {} -> {prog_id}); checking what it updates",
                self.iface,
                self.prog_id
            );
        }
        let (view, now_pinned) = decide(&self.iface, self.ifindex, prog_id, &self.path)?;
        if let View::Shared { epoch, .. } = &view
            && old_epoch != Some(*epoch)
        {
            log::warn!(
                "{}: XDP program {prog_id} updates the map now pinned at {} (map id {epoch}); \
                 following it",
                self.iface,
                self.path.display()
            );
        }
        self.prog_id = prog_id;
        self.pinned = now_pinned;
        self.view = view;
        Ok(())
    }
}

/// Whether program `prog_id` updates the map pinned at `path`: then that
/// map is its counter; otherwise why the interface cannot be observed.
fn decide(
    iface: &str,
    ifindex: u32,
    prog_id: u32,
    path: &Path,
) -> Result<(View, Option<u32>), Error> {
    let pinned = MapInfo::from_pin(path).ok().map(|m| m.id());
    let follower = Follower::for_program(iface, ifindex, prog_id);
    if follower.is_observing() {
        return Ok((View::Observed(Box::new(follower)), pinned));
    }
    let info = match sys::prog_fd_by_id(prog_id).and_then(|fd| sys::prog_info(fd.as_fd())) {
        Ok(info) => info,
        Err(e) => {
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (opening a program by id needs CAP_SYS_ADMIN: run xdptop as root)"
            } else {
                ""
            };
            let why = format!(
                "cannot tell whether another loader's XDP program {prog_id} updates {}: \
                 reading its maps failed: {e}{hint}",
                path.display()
            );
            return Ok((View::NotObservable(why, None), pinned));
        }
    };
    if let Some(id) = pinned
        && info.map_ids.contains(&id)
    {
        super::pins::check_shared_map_at(path)?;
        let (map, epoch) = open_shared(path)?;
        return Ok((View::Shared { map, epoch }, pinned));
    }
    let map_words = match pinned {
        Some(id) => format!("does not update {} (map id {id})", path.display()),
        None => format!("pins no xdp_stats_map at {}", path.display()),
    };
    let observer = follower.why_not().unwrap_or("unknown").to_owned();
    let why = format!(
        "another loader's XDP program {prog_id} ({}) on {iface} {map_words}, so xdptop has no \
         counts for it; verdicts cannot be observed either: {observer}",
        info.name
    );
    let retry = Some(Box::new(follower)).filter(|f| f.may_retry());
    Ok((View::NotObservable(why, retry), pinned))
}

/// The epoch of observed counts: the follower keeps them going across
/// program changes, so it never changes (map ids are 32-bit, so it is no
/// map's).
const OBSERVED_EPOCH: u64 = 1 << 32;

fn open_shared(path: &Path) -> Result<(HashMap<MapData, u32, DataRec>, u64), Error> {
    let map = MapData::from_pin(path).doing(|| format!("opening {}", path.display()))?;
    let epoch = u64::from(
        map.info()
            .doing(|| "reading the shared map's info".into())?
            .id(),
    );
    let map = HashMap::try_from(Map::HashMap(map))
        .doing(|| "the shared xdp_stats_map has an unexpected layout".into())?;
    Ok((map, epoch))
}

impl CounterSource for ForeignSource {
    fn interface(&self) -> &str {
        &self.iface
    }

    fn mode(&self) -> Mode {
        Mode::ReadOnly
    }

    fn read(&mut self) -> anyhow::Result<Reading> {
        if super::ifindex(&self.iface) != Some(self.ifindex) {
            return Err(Error::InterfaceGone {
                iface: self.iface.clone(),
            }
            .into());
        }
        let prog_id = sys::xdp_prog_id(self.ifindex)
            .doing(|| format!("asking which XDP program runs on {}", self.iface))?
            .ok_or_else(|| Error::ForeignProgramGone {
                iface: self.iface.clone(),
            })?;
        // A refused observer that may attach now (its follower retries on
        // a schedule): from then on the interface is observed.
        if prog_id == self.prog_id
            && let View::NotObservable(_, Some(follower)) = &mut self.view
            && follower.read_on(|| Some(prog_id)).is_some()
            && let View::NotObservable(_, Some(follower)) =
                std::mem::replace(&mut self.view, View::NotObservable(String::new(), None))
        {
            self.view = View::Observed(follower);
        }
        if let View::Observed(follower) = &mut self.view {
            // The follower follows a changed program itself.
            self.prog_id = prog_id;
            let Some(totals) = follower.read_on(|| Some(prog_id)) else {
                let why = follower
                    .why_not()
                    .unwrap_or("reading the verdict observer's counters failed")
                    .to_owned();
                return Err(NotObservable(why).into());
            };
            let (packets, bytes) = totals.iter().fold((0u64, 0u64), |(p, b), c| {
                (p.wrapping_add(c.packets), b.wrapping_add(c.bytes))
            });
            return Ok(Reading {
                packets,
                bytes,
                epoch: OBSERVED_EPOCH,
                detail: None,
                actions: Some(totals),
                run: follower.run_stats(),
            });
        }
        let pinned = MapInfo::from_pin(&self.path).ok().map(|m| m.id());
        // A removed pin is a lost map (below), not a reason to look again.
        if prog_id != self.prog_id || pinned.is_some_and(|id| Some(id) != self.pinned) {
            self.recheck(prog_id)?;
        }
        let (map, epoch) = match &self.view {
            View::Shared { map, epoch } => (map, epoch),
            View::NotObservable(why, _) => return Err(NotObservable(why.clone()).into()),
            View::Observed(_) => unreachable!("handled above"),
        };
        if pinned.is_none() {
            return Err(Error::SharedMapGone {
                path: self.path.clone(),
            }
            .into());
        }
        let rec = match map.get(&0, 0) {
            Ok(rec) => rec,
            // Key 0 appears with the first packet on some loaders.
            Err(aya::maps::MapError::KeyNotFound) => DataRec::default(),
            Err(e) => {
                return Err(e)
                    .doing(|| "reading key 0 of the shared xdp_stats_map".into())
                    .map_err(Into::into);
            }
        };
        Ok(Reading {
            packets: rec.rx_packets,
            bytes: rec.rx_bytes,
            epoch: *epoch,
            detail: None,
            actions: None,
            run: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_values_are_summed() {
        let a = XdptopStats {
            packets: 3,
            bytes: 300,
            l3: [3, 0, 0, 0],
            l4: [0, 3, 0, 0],
            size_hist: [0, 0, 3, 0, 0, 0, 0],
        };
        let b = XdptopStats {
            packets: 2,
            bytes: 3000,
            l3: [0, 0, 2, 0],
            l4: [0; 4],
            size_hist: [0, 0, 0, 0, 0, 2, 0],
        };
        let r = reading_from_per_cpu(&[a, b, XdptopStats::default()], 7);
        assert_eq!((r.packets, r.bytes, r.epoch), (5, 3300, 7));
        let d = r.detail.expect("detail");
        assert_eq!(d.l3, [3, 0, 2, 0]);
        assert_eq!(d.l4, [0, 3, 0, 0]);
        assert_eq!(d.size_hist, [0, 0, 3, 0, 0, 2, 0]);
        assert_eq!(d.per_cpu_packets, [3, 2, 0]);
    }
}
