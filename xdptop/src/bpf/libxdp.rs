//! The host's libxdp (xdp-tools), loaded at run time with `dlopen`, and the
//! few libbpf calls that go with it, behind a small safe API.
//!
//! Why the host's library instead of a re-implementation: libxdp owns the
//! multiprog dispatcher protocol (`lib/libxdp/protocol.org` in xdp-tools):
//! the dispatcher object and its version, the lock on `/sys/fs/bpf/xdp`, the
//! pin layout under `/sys/fs/bpf/xdp/dispatch-IFINDEX-PROGID/`. Using the very
//! library the operator's `xdp-loader` uses keeps xdptop in step with it
//! whatever version the host has. Why `dlopen` instead of linking: xdptop
//! stays one file that also runs where libxdp is not installed (it then
//! attaches a single program, as before). Why libc's `dlopen`/`dlsym` and not
//! the `libloading` crate: a dozen symbols of one library need no new
//! dependency.
//!
//! Every libbpf symbol is looked up through libxdp's own handle, so xdptop
//! calls exactly the libbpf that libxdp is linked with (`dlsym` on a handle
//! searches the library and its dependencies). The signatures below are
//! those of `headers/xdp/libxdp.h` (libxdp 1.0+) and `bpf/libbpf.h`
//! (libbpf 1.0+); only functions present since LIBXDP_1.0.0 are used.
//!
//! This module and `sys.rs` hold all of xdptop's `unsafe`.

use std::{
    ffi::{CStr, CString, c_char, c_int, c_long, c_uint, c_void},
    io,
    marker::PhantomData,
    path::Path,
    ptr::NonNull,
    sync::OnceLock,
};

/// The library names tried, newest soname first.
const LIBXDP_NAMES: &[&CStr] = &[c"libxdp.so.1"];

/// `BPF_PROG_TYPE_EXT` (freplace), what the dispatcher's components are.
const BPF_PROG_TYPE_EXT: c_int = 28;

/// `enum xdp_attach_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    Unspec = 0,
    Native = 1,
    Skb = 2,
    Hw = 3,
}

impl XdpMode {
    fn from_raw(v: c_int) -> Self {
        match v {
            1 => XdpMode::Native,
            2 => XdpMode::Skb,
            3 => XdpMode::Hw,
            _ => XdpMode::Unspec,
        }
    }
}

/// `XDP_PASS` in `enum xdp_action`.
pub const XDP_PASS: c_uint = 2;

#[repr(C)]
struct RawObject {
    _opaque: [u8; 0],
}
#[repr(C)]
struct RawMap {
    _opaque: [u8; 0],
}
#[repr(C)]
struct RawProgram {
    _opaque: [u8; 0],
}
#[repr(C)]
struct RawMultiprog {
    _opaque: [u8; 0],
}

/// `struct bpf_object_open_opts` up to `object_name`: libbpf reads `sz` and
/// treats every later field as zero.
#[repr(C)]
struct OpenOpts {
    sz: usize,
    object_name: *const c_char,
}

/// `va_list` as a callback receives it: a pointer on x86_64 and aarch64.
type VaList = *mut c_void;
type PrintFn = unsafe extern "C" fn(c_int, *const c_char, VaList) -> c_int;

/// The resolved functions. Field names are the C names.
#[allow(non_snake_case)]
struct Api {
    libxdp_get_error: unsafe extern "C" fn(*const c_void) -> c_long,
    libxdp_strerror: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    libxdp_set_print: unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn>,
    xdp_program__from_bpf_obj:
        unsafe extern "C" fn(*mut RawObject, *const c_char) -> *mut RawProgram,
    xdp_program__close: unsafe extern "C" fn(*mut RawProgram),
    xdp_program__set_run_prio: unsafe extern "C" fn(*mut RawProgram, c_uint) -> c_int,
    xdp_program__set_chain_call_enabled:
        unsafe extern "C" fn(*mut RawProgram, c_uint, bool) -> c_int,
    xdp_program__attach: unsafe extern "C" fn(*mut RawProgram, c_int, c_int, c_uint) -> c_int,
    xdp_program__detach: unsafe extern "C" fn(*mut RawProgram, c_int, c_int, c_uint) -> c_int,
    xdp_program__id: unsafe extern "C" fn(*const RawProgram) -> u32,
    xdp_program__name: unsafe extern "C" fn(*const RawProgram) -> *const c_char,
    xdp_program__run_prio: unsafe extern "C" fn(*const RawProgram) -> c_uint,
    xdp_multiprog__get_from_ifindex: unsafe extern "C" fn(c_int) -> *mut RawMultiprog,
    xdp_multiprog__next_prog:
        unsafe extern "C" fn(*const RawProgram, *const RawMultiprog) -> *mut RawProgram,
    xdp_multiprog__close: unsafe extern "C" fn(*mut RawMultiprog),
    xdp_multiprog__attach_mode: unsafe extern "C" fn(*const RawMultiprog) -> c_int,
    xdp_multiprog__main_prog: unsafe extern "C" fn(*const RawMultiprog) -> *mut RawProgram,
    xdp_multiprog__is_legacy: unsafe extern "C" fn(*const RawMultiprog) -> bool,
    // libbpf, through libxdp's handle.
    libbpf_set_print: unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn>,
    libbpf_probe_bpf_prog_type: unsafe extern "C" fn(c_int, *const c_void) -> c_int,
    bpf_object__open_mem:
        unsafe extern "C" fn(*const c_void, usize, *const OpenOpts) -> *mut RawObject,
    bpf_object__close: unsafe extern "C" fn(*mut RawObject),
    bpf_object__find_map_by_name:
        unsafe extern "C" fn(*const RawObject, *const c_char) -> *mut RawMap,
    bpf_map__set_pin_path: unsafe extern "C" fn(*mut RawMap, *const c_char) -> c_int,
    bpf_map__set_max_entries: unsafe extern "C" fn(*mut RawMap, u32) -> c_int,
    bpf_xdp_query_id: unsafe extern "C" fn(c_int, c_int, *mut u32) -> c_int,
}

/// The loaded library. Obtained once per process through [`Libxdp::get`];
/// never unloaded.
pub struct Libxdp {
    api: Api,
    /// Which file was loaded, for the log.
    pub soname: &'static str,
}

/// Why libxdp could not be used.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

static LIBXDP: OnceLock<Result<Libxdp, Unavailable>> = OnceLock::new();

impl Libxdp {
    /// Loads libxdp on first use. Its and libbpf's messages go to the log
    /// (debug level, target `libxdp` / `libbpf`): xdptop reports what failed
    /// itself, and stray lines would tear the dashboard.
    pub fn get() -> Result<&'static Libxdp, Unavailable> {
        LIBXDP
            .get_or_init(Self::load)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load() -> Result<Libxdp, Unavailable> {
        let mut tried = Vec::new();
        for name in LIBXDP_NAMES {
            // SAFETY: dlopen with a NUL-terminated name; libxdp's and
            // libbpf's constructors only initialise their own state.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if handle.is_null() {
                tried.push(dl_error());
                continue;
            }
            let api = resolve(handle).map_err(Unavailable)?;
            // SAFETY: both setters take a callback of the declared type and
            // return the previous one; ours is valid for the process's life.
            unsafe {
                (api.libxdp_set_print)(Some(print_libxdp));
                (api.libbpf_set_print)(Some(print_libbpf));
            }
            return Ok(Libxdp {
                api,
                soname: name.to_str().unwrap_or("libxdp"),
            });
        }
        Err(Unavailable(tried.join("; ")))
    }

    /// Whether the kernel can load `BPF_PROG_TYPE_EXT` (freplace) programs,
    /// which the dispatcher needs: the same probe `bpftool feature probe`
    /// makes. Kernels without BPF trampolines say no.
    pub fn kernel_has_freplace(&self) -> bool {
        // SAFETY: a NULL opts pointer is allowed (libbpf.h).
        unsafe { (self.api.libbpf_probe_bpf_prog_type)(BPF_PROG_TYPE_EXT, std::ptr::null()) == 1 }
    }

    /// The id of the XDP program attached to `ifindex` in skb or native
    /// mode (netlink; no capability needed), `None` when there is none.
    pub fn xdp_prog_id(&self, ifindex: u32, skb: bool) -> io::Result<Option<u32>> {
        const XDP_FLAGS_SKB_MODE: c_int = 1 << 1;
        const XDP_FLAGS_DRV_MODE: c_int = 1 << 2;
        let flags = if skb {
            XDP_FLAGS_SKB_MODE
        } else {
            XDP_FLAGS_DRV_MODE
        };
        let mut id = 0u32;
        // SAFETY: `id` is a valid out-pointer for the call.
        let err = unsafe { (self.api.bpf_xdp_query_id)(ifindex as c_int, flags, &mut id) };
        if err < 0 {
            return Err(self.error(err));
        }
        Ok((id != 0).then_some(id))
    }

    /// libxdp's (libbpf's) words for a negative errno.
    pub fn strerror(&self, err: c_int) -> String {
        let mut buf = [0 as c_char; 128];
        // SAFETY: buf is writable for its whole length, which is passed.
        unsafe { (self.api.libxdp_strerror)(err, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: libbpf_strerror NUL-terminates within `size`.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// A negative errno as an `io::Error`: a plain OS error (so callers can
    /// match `raw_os_error()`), or libbpf's own words for its codes above
    /// 4000 (`LIBBPF_ERRNO__*`).
    fn error(&self, err: c_int) -> io::Error {
        if -err < 4000 {
            return io::Error::from_raw_os_error(-err);
        }
        io::Error::other(LibxdpError {
            errno: -err,
            text: self.strerror(err),
        })
    }

    /// Opens an ELF object held in memory (`bpf_object__open_mem`).
    pub fn open_object(&'static self, elf: &[u8], name: &CStr) -> io::Result<Object> {
        let opts = OpenOpts {
            sz: size_of::<OpenOpts>(),
            object_name: name.as_ptr(),
        };
        // SAFETY: the buffer is valid for `len` bytes (libbpf copies it), and
        // opts lives through the call.
        let obj = unsafe { (self.api.bpf_object__open_mem)(elf.as_ptr().cast(), elf.len(), &opts) };
        match NonNull::new(obj) {
            Some(raw) => Ok(Object { lib: self, raw }),
            None => Err(io::Error::last_os_error()),
        }
    }

    /// The interface's XDP attachment as libxdp sees it; `None` when no
    /// program is attached.
    pub fn multiprog(&'static self, ifindex: u32) -> io::Result<Option<Multiprog>> {
        // SAFETY: plain call; the result is checked with libxdp_get_error.
        let mp = unsafe { (self.api.xdp_multiprog__get_from_ifindex)(ifindex as c_int) };
        // SAFETY: libxdp_get_error accepts any value the getter returned.
        let err = unsafe { (self.api.libxdp_get_error)(mp.cast()) } as c_int;
        if err == -libc::ENOENT {
            return Ok(None);
        }
        if err != 0 {
            return Err(self.error(err));
        }
        Ok(NonNull::new(mp).map(|raw| Multiprog { lib: self, raw }))
    }
}

/// An errno with libxdp's own words for it.
#[derive(Debug)]
pub struct LibxdpError {
    pub errno: c_int,
    pub text: String,
}

impl std::fmt::Display for LibxdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (errno {})", self.text, self.errno)
    }
}

impl std::error::Error for LibxdpError {}

/// The errno of an error made by this module, if it is one.
pub fn errno_of(e: &io::Error) -> Option<c_int> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<LibxdpError>())
        .map(|l| l.errno)
        .or_else(|| e.raw_os_error())
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the
    // next dl* call on this thread; it is copied at once.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: see above.
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A symbol's address as the function pointer type `F`.
///
/// # Safety
/// `p` must be the address of a function whose signature is `F`.
unsafe fn fn_ptr<F: Copy>(p: *mut c_void) -> F {
    assert_eq!(
        size_of::<F>(),
        size_of::<*mut c_void>(),
        "not a function pointer"
    );
    // SAFETY: same size, and the caller vouches for the signature.
    unsafe { std::mem::transmute_copy(&p) }
}

fn resolve(handle: *mut c_void) -> Result<Api, String> {
    macro_rules! sym {
        ($name:ident) => {{
            let cname = concat!(stringify!($name), "\0");
            // SAFETY: dlsym with a handle from dlopen and a NUL-terminated name.
            let p = unsafe { libc::dlsym(handle, cname.as_ptr().cast()) };
            if p.is_null() {
                return Err(format!(
                    "libxdp has no symbol {} (xdp-tools too old?): {}",
                    stringify!($name),
                    dl_error()
                ));
            }
            // SAFETY: the symbol is the C function of that name, whose
            // signature (libxdp.h / libbpf.h) is the field's type.
            unsafe { fn_ptr(p) }
        }};
    }
    Ok(Api {
        libxdp_get_error: sym!(libxdp_get_error),
        libxdp_strerror: sym!(libxdp_strerror),
        libxdp_set_print: sym!(libxdp_set_print),
        xdp_program__from_bpf_obj: sym!(xdp_program__from_bpf_obj),
        xdp_program__close: sym!(xdp_program__close),
        xdp_program__set_run_prio: sym!(xdp_program__set_run_prio),
        xdp_program__set_chain_call_enabled: sym!(xdp_program__set_chain_call_enabled),
        xdp_program__attach: sym!(xdp_program__attach),
        xdp_program__detach: sym!(xdp_program__detach),
        xdp_program__id: sym!(xdp_program__id),
        xdp_program__name: sym!(xdp_program__name),
        xdp_program__run_prio: sym!(xdp_program__run_prio),
        xdp_multiprog__get_from_ifindex: sym!(xdp_multiprog__get_from_ifindex),
        xdp_multiprog__next_prog: sym!(xdp_multiprog__next_prog),
        xdp_multiprog__close: sym!(xdp_multiprog__close),
        xdp_multiprog__attach_mode: sym!(xdp_multiprog__attach_mode),
        xdp_multiprog__main_prog: sym!(xdp_multiprog__main_prog),
        xdp_multiprog__is_legacy: sym!(xdp_multiprog__is_legacy),
        libbpf_set_print: sym!(libbpf_set_print),
        libbpf_probe_bpf_prog_type: sym!(libbpf_probe_bpf_prog_type),
        bpf_object__open_mem: sym!(bpf_object__open_mem),
        bpf_object__close: sym!(bpf_object__close),
        bpf_object__find_map_by_name: sym!(bpf_object__find_map_by_name),
        bpf_map__set_pin_path: sym!(bpf_map__set_pin_path),
        bpf_map__set_max_entries: sym!(bpf_map__set_max_entries),
        bpf_xdp_query_id: sym!(bpf_xdp_query_id),
    })
}

unsafe extern "C" {
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: VaList) -> c_int;
}

/// Formats a printf-style message with its `va_list`.
///
/// # Safety
/// `fmt` and `ap` are what libxdp/libbpf pass to their print callback.
unsafe fn format(fmt: *const c_char, ap: VaList) -> String {
    if fmt.is_null() {
        return String::new();
    }
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        let mut buf = [0 as c_char; 512];
        // SAFETY: `ap` is the callback's va_list, handed over as C does
        // (a pointer on these targets); buf's length is passed.
        unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, ap) };
        // SAFETY: vsnprintf NUL-terminates within the size.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .trim_end()
            .to_owned()
    } else {
        // SAFETY: fmt is a NUL-terminated format string.
        unsafe { CStr::from_ptr(fmt) }
            .to_string_lossy()
            .trim_end()
            .to_owned()
    }
}

unsafe extern "C" fn print_libxdp(_level: c_int, fmt: *const c_char, ap: VaList) -> c_int {
    // SAFETY: called by libxdp with its format and arguments.
    let msg = unsafe { format(fmt, ap) };
    log::debug!(target: "libxdp", "{msg}");
    0
}

unsafe extern "C" fn print_libbpf(_level: c_int, fmt: *const c_char, ap: VaList) -> c_int {
    // SAFETY: called by libbpf with its format and arguments.
    let msg = unsafe { format(fmt, ap) };
    log::debug!(target: "libbpf", "{msg}");
    0
}

/// An opened (not yet loaded) BPF object.
pub struct Object {
    lib: &'static Libxdp,
    raw: NonNull<RawObject>,
}

impl Object {
    /// Makes libbpf pin map `name` at `path` on load, or re-use the map
    /// pinned there if it is compatible (libbpf checks type, key and value
    /// size, max_entries and flags, and fails the load otherwise).
    pub fn pin_map(&mut self, name: &CStr, path: &Path) -> io::Result<()> {
        let map = self.map(name)?;
        let path = cstring(path)?;
        // SAFETY: map belongs to the live object; libbpf copies the path.
        let err = unsafe { (self.lib.api.bpf_map__set_pin_path)(map, path.as_ptr()) };
        if err < 0 {
            return Err(self.lib.error(err));
        }
        Ok(())
    }

    /// Sets `max_entries` of map `name` before the object is loaded.
    pub fn set_max_entries(&mut self, name: &CStr, entries: u32) -> io::Result<()> {
        let map = self.map(name)?;
        // SAFETY: map belongs to the live, not yet loaded object.
        let err = unsafe { (self.lib.api.bpf_map__set_max_entries)(map, entries) };
        if err < 0 {
            return Err(self.lib.error(err));
        }
        Ok(())
    }

    fn map(&mut self, name: &CStr) -> io::Result<*mut RawMap> {
        // SAFETY: raw is a live object, name NUL-terminated.
        let map = unsafe {
            (self.lib.api.bpf_object__find_map_by_name)(self.raw.as_ptr(), name.as_ptr())
        };
        if map.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the object has no map {}", name.to_string_lossy()),
            ));
        }
        Ok(map)
    }

    /// Wraps the object's first program as an xdp_program. The program
    /// borrows the object, which must outlive it.
    pub fn program(&mut self) -> io::Result<Program<'_>> {
        // SAFETY: raw is a live object; NULL section means the first program.
        let p = unsafe {
            (self.lib.api.xdp_program__from_bpf_obj)(self.raw.as_ptr(), std::ptr::null())
        };
        // SAFETY: libxdp_get_error accepts what the constructor returned.
        let err = unsafe { (self.lib.api.libxdp_get_error)(p.cast()) } as c_int;
        match NonNull::new(p) {
            Some(raw) if err == 0 => Ok(Program {
                lib: self.lib,
                raw,
                owned: true,
                _borrow: PhantomData,
            }),
            _ => Err(self.lib.error(if err == 0 { -libc::EINVAL } else { err })),
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: the object is ours; every Program borrowing it is gone.
        unsafe { (self.lib.api.bpf_object__close)(self.raw.as_ptr()) };
    }
}

/// One xdp_program: ours (closed on drop), or one of a multiprog's
/// components (owned by the multiprog it borrows).
pub struct Program<'a> {
    lib: &'static Libxdp,
    raw: NonNull<RawProgram>,
    owned: bool,
    _borrow: PhantomData<&'a ()>,
}

impl Program<'_> {
    pub fn id(&self) -> u32 {
        // SAFETY: raw is a live program.
        unsafe { (self.lib.api.xdp_program__id)(self.raw.as_ptr()) }
    }

    pub fn name(&self) -> String {
        // SAFETY: raw is a live program; the name lives as long as it.
        let name = unsafe { (self.lib.api.xdp_program__name)(self.raw.as_ptr()) };
        if name.is_null() {
            return String::new();
        }
        // SAFETY: a NUL-terminated string owned by the program.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn run_prio(&self) -> u32 {
        // SAFETY: raw is a live program.
        unsafe { (self.lib.api.xdp_program__run_prio)(self.raw.as_ptr()) }
    }

    /// Only before the program is loaded.
    pub fn set_run_prio(&mut self, prio: u32) -> io::Result<()> {
        // SAFETY: raw is a live program.
        let err = unsafe { (self.lib.api.xdp_program__set_run_prio)(self.raw.as_ptr(), prio) };
        if err < 0 {
            return Err(self.lib.error(err));
        }
        Ok(())
    }

    /// Only before the program is loaded.
    pub fn set_chain_call(&mut self, action: c_uint, enabled: bool) -> io::Result<()> {
        // SAFETY: raw is a live program.
        let err = unsafe {
            (self.lib.api.xdp_program__set_chain_call_enabled)(self.raw.as_ptr(), action, enabled)
        };
        if err < 0 {
            return Err(self.lib.error(err));
        }
        Ok(())
    }

    /// Loads the program and adds it to the interface's dispatcher (made
    /// if there is none), under libxdp's lock.
    pub fn attach(&mut self, ifindex: u32, mode: XdpMode) -> io::Result<()> {
        self.on_interface(self.lib.api.xdp_program__attach, ifindex, mode)
    }

    /// Removes the program from the interface's dispatcher; libxdp removes
    /// the dispatcher itself when this was its last program.
    pub fn detach(&mut self, ifindex: u32, mode: XdpMode) -> io::Result<()> {
        self.on_interface(self.lib.api.xdp_program__detach, ifindex, mode)
    }

    /// `xdp_program__attach` or `__detach`, which take the same arguments.
    fn on_interface(
        &mut self,
        call: unsafe extern "C" fn(*mut RawProgram, c_int, c_int, c_uint) -> c_int,
        ifindex: u32,
        mode: XdpMode,
    ) -> io::Result<()> {
        // SAFETY: raw is a live program; flags must be 0.
        let err = unsafe { call(self.raw.as_ptr(), ifindex as c_int, mode as c_int, 0) };
        if err < 0 {
            return Err(self.lib.error(err));
        }
        Ok(())
    }
}

impl Drop for Program<'_> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: ours, closed once. For a program from an external
            // object libxdp closes only its own fds, not the object.
            unsafe { (self.lib.api.xdp_program__close)(self.raw.as_ptr()) };
        }
    }
}

/// What is attached to an interface, as libxdp reads it.
pub struct Multiprog {
    lib: &'static Libxdp,
    raw: NonNull<RawMultiprog>,
}

impl Multiprog {
    /// A program that is not a libxdp dispatcher (another loader's single
    /// program, or one libxdp attached without a dispatcher).
    pub fn is_legacy(&self) -> bool {
        // SAFETY: raw is live.
        unsafe { (self.lib.api.xdp_multiprog__is_legacy)(self.raw.as_ptr()) }
    }

    pub fn mode(&self) -> XdpMode {
        // SAFETY: raw is live.
        XdpMode::from_raw(unsafe { (self.lib.api.xdp_multiprog__attach_mode)(self.raw.as_ptr()) })
    }

    /// The dispatcher's (or the legacy program's) id.
    pub fn main_id(&self) -> Option<u32> {
        // SAFETY: raw is live; the program returned is owned by it.
        let p = unsafe { (self.lib.api.xdp_multiprog__main_prog)(self.raw.as_ptr()) };
        // SAFETY: p, when set, is a live program owned by the multiprog.
        NonNull::new(p).map(|p| unsafe { (self.lib.api.xdp_program__id)(p.as_ptr()) })
    }

    /// The dispatcher's (or the legacy program's) name.
    pub fn main_name(&self) -> Option<String> {
        // SAFETY: raw is live; the program returned is owned by it.
        let p = unsafe { (self.lib.api.xdp_multiprog__main_prog)(self.raw.as_ptr()) };
        NonNull::new(p).map(|raw| {
            Program {
                lib: self.lib,
                raw,
                owned: false,
                _borrow: PhantomData,
            }
            .name()
        })
    }

    /// The dispatcher's components in run order (none when legacy).
    pub fn components(&self) -> Vec<Program<'_>> {
        let mut out = Vec::new();
        let mut prev: *const RawProgram = std::ptr::null();
        loop {
            // SAFETY: raw is live; prev is NULL or a component it returned.
            let next = unsafe { (self.lib.api.xdp_multiprog__next_prog)(prev, self.raw.as_ptr()) };
            let Some(raw) = NonNull::new(next) else { break };
            out.push(Program {
                lib: self.lib,
                raw,
                owned: false,
                _borrow: PhantomData,
            });
            prev = next;
        }
        out
    }
}

impl Drop for Multiprog {
    fn drop(&mut self) {
        // SAFETY: ours, closed once, after every borrowed Program is gone.
        unsafe { (self.lib.api.xdp_multiprog__close)(self.raw.as_ptr()) };
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt as _;
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}
