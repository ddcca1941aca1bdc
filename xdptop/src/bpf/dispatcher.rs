//! xdptop's counter as one component of a libxdp multiprog dispatcher, the
//! way `xdp-loader` loads programs, so the operator's own libxdp programs
//! and xdptop share the interface.
//!
//! The protocol (dispatcher object and version, the lock on `/sys/fs/bpf/xdp`,
//! the pins under `/sys/fs/bpf/xdp/dispatch-IFINDEX-PROGID/`) is libxdp's
//! own: xdptop calls the host's libxdp ([`super::libxdp`]) for every change.
//! It only *reads* that pin layout itself, to tell from the sampling thread
//! (which has dropped CAP_SYS_ADMIN, needed to open programs by id) whether
//! its component still runs.
//!
//! How xdptop finds its component again (re-run, `--detach`): a component
//! of the interface's dispatcher whose program is named `xdptop_count` and
//! whose maps include the per-CPU stats map pinned at
//! `PIN_DIR/xdptop/IFACE/stats`. The name alone could be another xdptop's
//! (another `--pin-dir`), the pinned map makes it this one's.
//!
//! Where the dispatcher cannot work, [`route`] says so and xdptop attaches a
//! single program with a bpf_link, as libxdp itself falls back to a single
//! program there: no libxdp on the host, a kernel without BPF trampolines
//! (freplace), or no CAP_SYS_ADMIN + CAP_PERFMON.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use aya::{
    maps::{HashMap, Map, MapData, MapInfo},
    programs::ProgramInfo,
};
use xdp_ebpf::DataRec;

use super::{
    AttachMode, Error, WatchOptions,
    attach::{AttachError, Attached},
    error::Doing as _,
    libxdp::{self, Libxdp, XdpMode},
    lock,
    pins::Pins,
    reader::{OwnSource, SharedPinGuard},
};
use crate::sample::Mode;

/// xdptop's default run priority in the dispatcher: the lowest value there
/// is, so it runs before every other component and counts every packet
/// (libxdp breaks ties by program name). Also declared in the program's
/// `.xdp_run_config`; xdptop sets the priority it runs at (this or
/// `--priority`) on the program before attaching, so the object's value is
/// only a default for other loaders.
pub const RUN_PRIO: u32 = 0;

/// Set once an interface is watched through a dispatcher component.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether this process watches an interface through libxdp's dispatcher:
/// then changing it again (an interface that comes back, the dashboard's
/// detach and attach) needs CAP_SYS_ADMIN, as libxdp opens programs and BTF
/// by id.
pub fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

/// The Debian / RHEL packages that ship libxdp.so.1.
pub const LIBXDP_PACKAGES: &str =
    "`apt-get install libxdp1` (Debian/Ubuntu) or `dnf install libxdp` (RHEL/Fedora)";

/// How xdptop attaches on this host.
pub enum Route {
    /// Through libxdp's dispatcher.
    Dispatcher(&'static Libxdp),
    /// A single program on a bpf_link, for the reason given.
    Single(String),
}

/// What the host offers, decided once: the library and the kernel do not
/// change while xdptop runs.
fn host_route() -> &'static Result<&'static Libxdp, String> {
    static ROUTE: OnceLock<Result<&'static Libxdp, String>> = OnceLock::new();
    ROUTE.get_or_init(|| match Libxdp::get() {
        Err(e) => Err(format!(
            "libxdp is not installed ({e}); to share interfaces with xdp-loader, install \
                 it: {LIBXDP_PACKAGES}"
        )),
        Ok(lib) if !lib.kernel_has_freplace() => Err(
            "this kernel cannot load freplace (BPF_PROG_TYPE_EXT) programs, which libxdp's \
                 dispatcher needs (no BPF trampolines)"
                .to_owned(),
        ),
        Ok(lib) => Ok(lib),
    })
}

/// libxdp, when the host can use its dispatcher.
pub fn library() -> Result<&'static Libxdp, String> {
    host_route().clone()
}

/// Which way to attach now. `cap_bpf_only`: the process lacks CAP_PERFMON.
pub fn route(cap_bpf_only: bool) -> Route {
    let route = route_now(cap_bpf_only);
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| match &route {
        Route::Dispatcher(lib) => log::info!(
            "attaching through libxdp's multiprog dispatcher ({}), chaining on XDP_PASS",
            lib.soname
        ),
        Route::Single(why) => log::info!("attaching a single XDP program on a bpf_link: {why}"),
    });
    route
}

fn route_now(cap_bpf_only: bool) -> Route {
    // freplace programs need CAP_PERFMON; libxdp opens programs and BTF by
    // id, which needs CAP_SYS_ADMIN. Without them the kernel probe would
    // fail too, for the wrong reason, so ask nothing else.
    if cap_bpf_only || !crate::privilege::has_sys_admin() {
        return Route::Single(
            "joining libxdp's dispatcher needs CAP_SYS_ADMIN and CAP_PERFMON (run as root), and \
             a kernel with BPF trampolines"
                .to_owned(),
        );
    }
    match host_route() {
        Err(why) => Route::Single(why.clone()),
        Ok(lib) => Route::Dispatcher(lib),
    }
}

/// Where libxdp pins dispatchers: `$LIBXDP_BPFFS/xdp`, by default
/// `/sys/fs/bpf/xdp` (whatever xdptop's own `--pin-dir` is).
pub fn libxdp_dir() -> PathBuf {
    let root = std::env::var_os("LIBXDP_BPFFS").unwrap_or_else(|| "/sys/fs/bpf".into());
    Path::new(&root).join("xdp")
}

/// Whether libxdp's pins show a dispatcher for this interface index (read
/// without libxdp, to name the package when it is missing).
pub fn has_dispatcher_pins(ifindex: u32) -> bool {
    let prefix = format!("dispatch-{ifindex}-");
    std::fs::read_dir(libxdp_dir()).is_ok_and(|dir| {
        dir.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    })
}

/// xdptop's component in the interface's dispatcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    pub prog_id: u32,
    pub mode: XdpMode,
    /// Its run priority in the chain.
    pub priority: u32,
}

/// Finds xdptop's component on `ifindex` (see the module docs for how).
pub fn find(
    lib: &'static Libxdp,
    pins: &Pins,
    iface: &str,
    ifindex: u32,
) -> Result<Option<Component>, Error> {
    let Ok(stats) = MapInfo::from_pin(pins.stats(iface)) else {
        return Ok(None);
    };
    let stats_id = stats.id();
    let Some(mp) = read_multiprog(lib, iface, ifindex)? else {
        return Ok(None);
    };
    if mp.is_legacy() {
        return Ok(None);
    }
    let mode = mp.mode();
    Ok(mp
        .components()
        .iter()
        .filter(|p| p.name() == xdp_ebpf::XDPTOP_PROGRAM)
        .find(|p| prog_uses_map(p.id(), stats_id))
        .map(|p| Component {
            prog_id: p.id(),
            mode,
            priority: p.run_prio(),
        }))
}

fn prog_uses_map(prog_id: u32, map_id: u32) -> bool {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .and_then(|p| p.map_ids().ok().flatten())
        .is_some_and(|ids| ids.contains(&map_id))
}

fn mode_of(mode: XdpMode) -> Mode {
    match mode {
        XdpMode::Skb => Mode::Skb,
        _ => Mode::Native,
    }
}

/// Watches an existing component of xdptop's. `priority` is the one asked
/// for: a component elsewhere in the chain stays where it is (moving it
/// would change what the operator's chain sees), and the note says how to
/// move it.
pub fn reuse(
    lib: &'static Libxdp,
    pins: &Pins,
    iface: &str,
    ifindex: u32,
    priority: Option<u32>,
) -> Result<Option<Attached>, Error> {
    let Some(found) = find(lib, pins, iface, ifindex)? else {
        return Ok(None);
    };
    let mode = mode_of(found.mode);
    let source = open_source(lib, pins, iface, ifindex, found, mode)?;
    IN_USE.store(true, Ordering::Relaxed);
    let mut note = format!(
        "{iface}: re-using xdptop's component of the libxdp dispatcher left by an earlier run \
         (program id {}, priority {}, {} mode)",
        found.prog_id,
        found.priority,
        mode.as_str()
    );
    let asked = priority.unwrap_or(RUN_PRIO);
    if asked != found.priority {
        note.push_str(&format!(
            ". It stays at priority {}, not {asked}: to move it, `xdptop --detach {iface}` and \
             start xdptop again with --priority {asked}",
            found.priority
        ));
    }
    Ok(Some(Attached {
        source: Box::new(source),
        mode,
        note,
    }))
}

fn open_source(
    lib: &'static Libxdp,
    pins: &Pins,
    iface: &str,
    ifindex: u32,
    found: Component,
    mode: Mode,
) -> Result<OwnSource, Error> {
    let stats = super::attach::open_stats(pins, iface)?;
    let shared = MapData::from_pin(pins.shared_map())
        .ok()
        .and_then(|m| SharedPinGuard::new(m, pins.shared_map()).ok());
    let alive = Liveness::new(lib, ifindex, found.prog_id, mode);
    OwnSource::with_liveness(iface, mode, alive, stats, shared)
}

/// Loads xdptop's program as a dispatcher component on `ifindex` (joining
/// the interface's dispatcher, or making one), with its maps pinned where
/// the single-program path pins them.
pub fn attach(
    lib: &'static Libxdp,
    pins: &Pins,
    iface: &str,
    ifindex: u32,
    options: WatchOptions,
    tables: u32,
) -> Result<Attached, AttachError> {
    let mode = options.mode;
    let shared_path = pins.shared_map();
    let mut obj = lib
        .open_object(xdp_ebpf::xdptop_object(), c"xdptop")
        .doing(|| "opening xdptop's XDP object with libbpf".into())?;
    obj.pin_map(c"xdp_stats_map", &shared_path)
        .doing(|| format!("setting the pin path of {}", shared_path.display()))?;
    obj.pin_map(c"xdptop_stats", &pins.stats(iface))
        .doing(|| "setting the pin path of xdptop's stats map".into())?;
    let (slots, lru, used) = super::source_tables(tables);
    for (name, path, entries) in [
        (c"xdptop_config", pins.config(iface), None),
        (c"xdptop_sources", pins.sources(iface), Some(slots)),
        (c"xdptop_sources_used", pins.sources_used(iface), Some(used)),
        (c"xdptop_talkers", pins.talkers(iface), Some(lru)),
        // A fixed size: one slot per service.
        (c"xdptop_services", pins.services(iface), None),
    ] {
        obj.pin_map(name, &path)
            .doing(|| format!("setting the pin path {}", path.display()))?;
        if let Some(n) = entries {
            obj.set_max_entries(name, n)
                .doing(|| format!("sizing {} to {n} entries", name.to_string_lossy()))?;
        }
    }
    let mut prog = obj
        .program()
        .doing(|| "reading xdptop's program and its run config".into())?;
    prog.set_run_prio(options.priority.unwrap_or(RUN_PRIO))
        .doing(|| "setting xdptop's run priority".into())?;
    prog.set_chain_call(libxdp::XDP_PASS, true)
        .doing(|| "setting xdptop's chain call action".into())?;

    // Joining a dispatcher means its mode; a new one tries as asked.
    let existing = read_multiprog(lib, iface, ifindex)?;
    let tries: Vec<XdpMode> = match (&existing, mode) {
        (Some(mp), _) if !mp.is_legacy() => vec![mp.mode()],
        (_, AttachMode::Auto) => vec![XdpMode::Native, XdpMode::Skb],
        (_, AttachMode::Native) => vec![XdpMode::Native],
        (_, AttachMode::Skb) => vec![XdpMode::Skb],
    };
    // A dispatcher libxdp cannot read is one whose pins are elsewhere (the
    // loader ran with another LIBXDP_BPFFS): it looks like a single program.
    let unreadable_dispatcher = existing
        .as_ref()
        .is_some_and(|mp| mp.is_legacy() && mp.main_name().as_deref() == Some("xdp_dispatcher"));
    if unreadable_dispatcher {
        log::warn!(
            "{iface} runs a libxdp dispatcher whose pins are not under {}: xdptop cannot join \
             it. If its loader keeps them elsewhere, run xdptop with the same LIBXDP_BPFFS",
            libxdp_dir().display()
        );
    }
    if let Some(mp) = existing.as_ref().filter(|mp| mp.is_legacy()) {
        // Another loader's single program: libxdp would refuse with EBUSY
        // after loading xdptop's; say it without loading anything.
        return Err(AttachError::Busy(format!(
            "{iface} runs program id {} outside a libxdp dispatcher",
            mp.main_id().unwrap_or_default()
        )));
    }
    let joined = existing.is_some();
    let others = existing.as_ref().map_or(0, |mp| mp.components().len());
    drop(existing);
    let mut failures: Vec<(XdpMode, std::io::Error)> = Vec::new();
    let mut attached = None;
    for m in tries {
        match prog.attach(ifindex, m) {
            Ok(()) => {
                attached = Some(m);
                break;
            }
            Err(e) if matches!(libxdp::errno_of(&e), Some(libc::EBUSY) | Some(libc::EEXIST)) => {
                return Err(AttachError::Busy(e.to_string()));
            }
            Err(e) if libxdp::errno_of(&e) == Some(libc::E2BIG) => {
                return Err(AttachError::Other(Error::DispatcherFull {
                    iface: iface.to_owned(),
                    source: e,
                }));
            }
            // Not about the mode: trying another would only hide it.
            Err(e)
                if matches!(
                    libxdp::errno_of(&e),
                    Some(libc::EMFILE) | Some(libc::ENFILE)
                ) =>
            {
                failures.push((m, e));
                break;
            }
            Err(e) => failures.push((m, e)),
        }
    }
    let Some(xdp_mode) = attached else {
        let (last_mode, last) = failures.pop().expect("at least one mode was tried");
        let earlier: String = failures
            .iter()
            .map(|(m, e)| format!("; {m:?} mode: {e}"))
            .collect();
        return Err(AttachError::Other(Error::Io {
            doing: format!(
                "could not add xdptop to a libxdp dispatcher on {iface} ({last_mode:?} mode{earlier})"
            ),
            source: last,
        }));
    };
    let prog_id = prog.id();
    let prio = prog.run_prio();

    // libxdp falls back to a single program if the dispatcher cannot load;
    // xdptop's own bpf_link path is the better single program (it outlives
    // xdptop without libxdp's help), so undo and say so.
    if let Ok(Some(mp)) = lib.multiprog(ifindex)
        && mp.is_legacy()
    {
        drop(mp);
        if let Err(e) = prog.detach(ifindex, xdp_mode) {
            log::warn!("{iface}: removing the program libxdp attached without a dispatcher: {e}");
        }
        return Err(AttachError::NoDispatcher(format!(
            "libxdp attached program id {prog_id} without a dispatcher"
        )));
    }
    drop(prog);
    drop(obj);
    ensure_key_zero(&shared_path)?;
    let mode = mode_of(xdp_mode);
    let found = Component {
        prog_id,
        mode: xdp_mode,
        priority: prio,
    };
    let source = open_source(lib, pins, iface, ifindex, found, mode)?;
    IN_USE.store(true, Ordering::Relaxed);
    Ok(Attached {
        source: Box::new(source),
        mode,
        note: format!(
            "{iface}: added xdptop's program (id {prog_id}, priority {prio}, chain on XDP_PASS) \
             to {} libxdp dispatcher in {} mode",
            if joined {
                format!("the existing ({others} other program(s))")
            } else {
                "a new".to_owned()
            },
            mode.as_str()
        ),
    })
}

/// The interface's XDP as libxdp reads it; a dispatcher of a newer
/// protocol version than the host's libxdp knows is a clear error. Every
/// look-up, attach and detach starts here, so this is where xdptop waits
/// (with a limit) for another loader to release libxdp's lock.
fn read_multiprog(
    lib: &'static Libxdp,
    iface: &str,
    ifindex: u32,
) -> Result<Option<libxdp::Multiprog>, Error> {
    lock::wait_until_free(&libxdp_dir(), lock::WAIT)?;
    lib.multiprog(ifindex).map_err(|e| {
        if libxdp::errno_of(&e) == Some(libc::EOPNOTSUPP) {
            Error::DispatcherTooNew {
                iface: iface.to_owned(),
                soname: lib.soname.to_owned(),
                source: e,
            }
        } else {
            Error::Io {
                doing: format!("reading the XDP programs on {iface} through libxdp"),
                source: e,
            }
        }
    })
}

/// Key 0 exists (zeroed) from the start, so a scraper never finds it empty;
/// an existing value (another loader's counts) is never overwritten.
fn ensure_key_zero(path: &Path) -> Result<(), Error> {
    let data = MapData::from_pin(path).doing(|| format!("opening {}", path.display()))?;
    let mut map: HashMap<_, u32, DataRec> = HashMap::try_from(Map::HashMap(data))
        .doing(|| "xdp_stats_map has an unexpected layout".into())?;
    match map.insert(0, DataRec::default(), super::attach::BPF_NOEXIST) {
        Ok(()) => Ok(()),
        Err(aya::maps::MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(libc::EEXIST) =>
        {
            Ok(())
        }
        Err(e) => Err(e).doing(|| format!("creating key 0 in {}", path.display())),
    }
}

/// Removes xdptop's component from the interface's dispatcher; libxdp
/// removes the dispatcher when it was the last program.
pub fn detach(
    lib: &'static Libxdp,
    pins: &Pins,
    iface: &str,
    ifindex: u32,
) -> Result<Option<u32>, Error> {
    if !pins.stats(iface).exists() {
        return Ok(None);
    }
    if !crate::privilege::has_sys_admin() {
        return Err(Error::Io {
            doing: format!(
                "removing xdptop from libxdp's dispatcher on {iface} needs CAP_SYS_ADMIN, which \
                 xdptop gives up once attached: run `sudo xdptop --detach {iface}`"
            ),
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        });
    }
    let Some(found) = find(lib, pins, iface, ifindex)? else {
        return Ok(None);
    };
    let Some(mp) = read_multiprog(lib, iface, ifindex)? else {
        return Ok(None);
    };
    let mut components = mp.components();
    let Some(prog) = components.iter_mut().find(|p| p.id() == found.prog_id) else {
        return Ok(None);
    };
    prog.detach(ifindex, mp.mode()).doing(|| {
        format!(
            "removing xdptop's program (id {}) from the libxdp dispatcher on {iface}",
            found.prog_id
        )
    })?;
    Ok(Some(found.prog_id))
}

/// Whether xdptop's component still runs on its interface, checked without
/// libxdp and without CAP_SYS_ADMIN: the interface's XDP program (netlink)
/// must be a dispatcher whose pinned components (libxdp's pins) include
/// xdptop's program. When xdp-loader replaces the dispatcher, libxdp pins
/// the new one before it swaps and unpins the old one after, so one of the
/// two always holds xdptop's program.
pub struct Liveness {
    lib: &'static Libxdp,
    ifindex: u32,
    prog_id: u32,
    mode: Mode,
    /// (device, inode) of the component pin last found holding xdptop's
    /// program: while it is still pinned, one stat is the whole check.
    known_pin: Option<(PathBuf, u64, u64)>,
}

/// Why [`Liveness::check`] failed.
pub enum Gone {
    Interface,
    Component,
}

impl Liveness {
    pub fn new(lib: &'static Libxdp, ifindex: u32, prog_id: u32, mode: Mode) -> Self {
        Self {
            lib,
            ifindex,
            prog_id,
            mode,
            known_pin: None,
        }
    }

    pub fn check(&mut self, iface: &str) -> Result<(), Gone> {
        if super::ifindex(iface) != Some(self.ifindex) {
            return Err(Gone::Interface);
        }
        let Some(dispatcher) = self
            .lib
            .xdp_prog_id(self.ifindex, self.mode == Mode::Skb)
            .ok()
            .flatten()
        else {
            return Err(Gone::Component);
        };
        let dir = libxdp_dir().join(format!("dispatch-{}-{dispatcher}", self.ifindex));
        if let Some((path, dev, ino)) = &self.known_pin {
            if path.starts_with(&dir)
                && std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == (*dev, *ino))
            {
                return Ok(());
            }
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Err(Gone::Component);
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("prog") && name.ends_with("-prog")) {
                continue;
            }
            let path = entry.path();
            if ProgramInfo::from_pin(&path).is_ok_and(|p| p.id() == self.prog_id) {
                if let Ok(m) = std::fs::metadata(&path) {
                    self.known_pin = Some((path, m.dev(), m.ino()));
                }
                return Ok(());
            }
        }
        Err(Gone::Component)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libxdp finds the program's `.xdp_run_config` (priority and chain
    /// actions come from there when xdp-loader re-creates the dispatcher
    /// without xdptop). Opening an object needs no privilege.
    #[test]
    fn libxdp_reads_the_embedded_run_config() {
        let lib = match Libxdp::get() {
            Ok(lib) => lib,
            Err(e) => {
                eprintln!("skipped: libxdp is not installed here: {e}");
                return;
            }
        };
        let mut obj = lib
            .open_object(xdp_ebpf::xdptop_object(), c"xdptop")
            .expect("libbpf opens the embedded object");
        let prog = obj.program().expect("libxdp wraps its program");
        assert_eq!(prog.name(), xdp_ebpf::XDPTOP_PROGRAM);
        assert_eq!(prog.run_prio(), RUN_PRIO);
    }
}
