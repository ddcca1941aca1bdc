//! The few bpf(2) commands aya 0.14 does not expose: an XDP link's interface
//! (aya's `LinkInfo` has no ifindex), forced link detach, and opening a
//! pinned link as a plain fd. aya's `PinnedLink::from_pin` opens one too, but
//! neither it nor `FdLink` lends out the fd, which the other two need.
//! All of xdptop's `unsafe` is here.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_DETACH: libc::c_long = 34;
/// `BPF_LINK_TYPE_XDP`.
pub const LINK_TYPE_XDP: u32 = 6;
/// `BPF_LINK_TYPE_TRACING`: fentry/fexit and freplace links.
pub const LINK_TYPE_TRACING: u32 = 2;

/// # Safety
/// `attr` must be the `union bpf_attr` member that `cmd` expects.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller passes the layout the kernel expects for `cmd`, and
    // the size given is the size of that buffer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// What the kernel says about a bpf_link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    /// For XDP links: the interface, or 0 once the link was detached or its
    /// interface deleted.
    pub ifindex: u32,
    /// For tracing links: the program and the BTF id of its function that
    /// the link's program is attached to (0 for a kernel function).
    pub target_prog: u32,
    pub target_btf_id: u32,
}

#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_link_info`, large enough for any kernel's version of it; the
/// kernel accepts a larger buffer as long as the tail is zero.
#[repr(C, align(8))]
struct RawLinkInfo([u8; 256]);

pub fn link_info(fd: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    let mut raw = RawLinkInfo([0; 256]);
    let mut attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<RawLinkInfo>() as u32,
        info: raw.0.as_mut_ptr() as u64,
    };
    // SAFETY: InfoByFd is the `info` member of union bpf_attr and `info`
    // points at a buffer of `info_len` bytes that outlives the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
    let word = |off: usize| u32::from_ne_bytes(raw.0[off..off + 4].try_into().expect("4 bytes"));
    // type, id, prog_id, then the per-type union at offset 16: `xdp`
    // starts with the ifindex, `tracing` with the attach type, then the
    // target object and BTF ids.
    Ok(LinkInfo {
        link_type: word(0),
        id: word(4),
        prog_id: word(8),
        ifindex: word(16),
        target_prog: word(20),
        target_btf_id: word(24),
    })
}

/// Every bpf_link in the system, open (BPF_LINK_GET_NEXT_ID and
/// BPF_LINK_GET_FD_BY_ID, CAP_SYS_ADMIN); links that go away meanwhile
/// are skipped.
pub fn links() -> impl Iterator<Item = std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
    const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
    #[repr(C)]
    struct Attr {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut id = 0u32;
    std::iter::from_fn(move || {
        loop {
            let mut attr = Attr {
                id,
                next_id: 0,
                open_flags: 0,
            };
            // SAFETY: Attr is the `start_id`/`next_id`/`open_flags` member
            // of union bpf_attr.
            unsafe { bpf(BPF_LINK_GET_NEXT_ID, &mut attr) }.ok()?;
            id = attr.next_id;
            let mut open = Attr {
                id,
                next_id: 0,
                open_flags: 0,
            };
            // SAFETY: Attr is the `link_id`/`next_id`/`open_flags` member.
            if let Ok(fd) = unsafe { bpf(BPF_LINK_GET_FD_BY_ID, &mut open) } {
                // SAFETY: on success the kernel returns a new fd we own.
                return Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) });
            }
        }
    })
}

/// Detaches a link from its hook even while other processes hold it open
/// (Linux 5.9+), so `--detach` works with a dashboard still running.
pub fn link_detach(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[repr(C)]
    struct Attr {
        link_fd: u32,
        pad: [u32; 3],
    }
    let mut attr = Attr {
        link_fd: fd.as_raw_fd() as u32,
        pad: [0; 3],
    };
    // SAFETY: Attr is the `link_detach` member of union bpf_attr.
    unsafe { bpf(BPF_LINK_DETACH, &mut attr)? };
    Ok(())
}

/// Opens a pinned BPF object (BPF_OBJ_GET).
pub fn obj_get(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    const BPF_OBJ_GET: libc::c_long = 7;
    #[repr(C)]
    struct Attr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        pad: u32,
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut attr = Attr {
        pathname: c_path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
        path_fd: 0,
        pad: 0,
    };
    // SAFETY: Attr is the `obj` member of union bpf_attr; pathname points at a
    // NUL-terminated string that outlives the call.
    let fd = unsafe { bpf(BPF_OBJ_GET, &mut attr)? };
    // SAFETY: on success BPF_OBJ_GET returns a new fd that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// `BPF_MAP_LOOKUP_BATCH` (Linux 5.6+).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Reads every entry of a hash map with `BPF_MAP_LOOKUP_BATCH`, `chunk`
/// entries per syscall, appending them to `out`. `K` and `V` must be the
/// map's key and value types (plain `#[repr(C)]` data, sizes as the map's).
/// Entries added or removed during the walk may be seen or not, as with any
/// walk of a live hash map; each entry seen is seen once.
pub fn lookup_batch<K: aya::Pod, V: aya::Pod>(
    fd: BorrowedFd<'_>,
    chunk: usize,
    out: &mut Vec<(K, V)>,
) -> io::Result<()> {
    #[repr(C)]
    struct Attr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
    let mut chunk = chunk.max(1);
    let mut keys: Vec<K> = Vec::new();
    let mut values: Vec<V> = Vec::new();
    // The position token: a bucket index (u32) for hash maps; 8 bytes leave room.
    let mut token = [0u64; 1];
    let mut next = [0u64; 1];
    let mut first = true;
    loop {
        // SAFETY: K and V are Pod: all-zero bytes are valid values.
        keys.resize(chunk, unsafe { std::mem::zeroed() });
        // SAFETY: as above.
        values.resize(chunk, unsafe { std::mem::zeroed() });
        let mut attr = Attr {
            in_batch: if first { 0 } else { token.as_mut_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: u32::try_from(chunk).unwrap_or(u32::MAX),
            map_fd: fd.as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: Attr is the `batch` member of union bpf_attr; keys and
        // values hold `count` elements of the map's key and value sizes,
        // the tokens 8 bytes each; all outlive the call.
        let result = unsafe { bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) };
        let got = (attr.count as usize).min(chunk);
        match result {
            Ok(_) => {}
            // The end of the map: `got` is the last (maybe empty) batch.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                out.extend(keys.drain(..got).zip(values.drain(..got)));
                return Ok(());
            }
            // One bucket holds more entries than fit: retry it, larger.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && got == 0 => {
                chunk *= 2;
                continue;
            }
            Err(e) => return Err(e),
        }
        out.extend(keys.drain(..got).zip(values.drain(..got)));
        token = next;
        first = false;
    }
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;

/// Opens a program by id (needs CAP_SYS_ADMIN).
pub fn prog_fd_by_id(id: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    #[repr(C)]
    struct Attr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut attr = Attr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: Attr is the `prog_id`/`next_id`/`open_flags` member of union
    // bpf_attr that BPF_PROG_GET_FD_BY_ID reads.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: on success the kernel returns a new fd that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// What xdptop needs to know about a program: which maps it uses and where
/// its main function is in its BTF (fexit's target).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    /// The kernel's copy of the name: at most 15 bytes.
    pub name: String,
    pub map_ids: Vec<u32>,
    /// The program's BTF object, 0 if it was loaded without BTF.
    pub btf_id: u32,
    /// The BTF type id of the function at instruction 0 (the entry point),
    /// from the program's `func_info`; `None` without BTF.
    pub main_func: Option<u32>,
    /// Cumulative run time and runs while `BPF_ENABLE_STATS` is on.
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// `struct bpf_prog_info` (232 bytes on 6.18): offsets below are the UAPI's,
/// stable since they were added; a larger buffer is accepted.
#[repr(C, align(8))]
struct RawProgInfo([u8; 256]);

impl RawProgInfo {
    fn u32_at(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
    fn u64_at(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.0[off..off + 8].try_into().expect("8 bytes"))
    }
    fn set_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
}

mod prog_info_off {
    pub const ID: usize = 4;
    pub const NR_MAP_IDS: usize = 52;
    pub const MAP_IDS: usize = 56;
    pub const NAME: usize = 64;
    pub const BTF_ID: usize = 128;
    pub const FUNC_INFO_REC_SIZE: usize = 132;
    pub const FUNC_INFO: usize = 136;
    pub const NR_FUNC_INFO: usize = 144;
    pub const RUN_TIME_NS: usize = 192;
    pub const RUN_CNT: usize = 200;
}

fn get_prog_info(fd: BorrowedFd<'_>, raw: &mut RawProgInfo) -> io::Result<()> {
    let mut attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<RawProgInfo>() as u32,
        info: raw.0.as_mut_ptr() as u64,
    };
    // SAFETY: InfoByFd is the `info` member of union bpf_attr; `info` points
    // at a buffer of `info_len` bytes that outlives the call, and every
    // pointer set in it points at a buffer of the count set beside it.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
    Ok(())
}

/// A program's cumulative (run time in ns, runs) while `BPF_ENABLE_STATS`
/// is on: one BPF_OBJ_GET_INFO_BY_FD, no arrays (read every sample).
pub fn prog_run_stats(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    use prog_info_off as o;
    let mut raw = RawProgInfo([0; 256]);
    get_prog_info(fd, &mut raw)?;
    Ok((raw.u64_at(o::RUN_TIME_NS), raw.u64_at(o::RUN_CNT)))
}

/// BPF_OBJ_GET_INFO_BY_FD on a program, with its map ids and func_info.
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    use prog_info_off as o;
    // First the counts, then the arrays.
    let mut raw = RawProgInfo([0; 256]);
    get_prog_info(fd, &mut raw)?;
    let nr_maps = raw.u32_at(o::NR_MAP_IDS);
    let nr_funcs = raw.u32_at(o::NR_FUNC_INFO);
    let mut map_ids = vec![0u32; nr_maps as usize];
    // struct bpf_func_info { __u32 insn_off; __u32 type_id; }
    let mut funcs = vec![[0u32; 2]; nr_funcs as usize];
    let mut raw = RawProgInfo([0; 256]);
    raw.set_u32(o::NR_MAP_IDS, nr_maps);
    raw.set_u64(o::MAP_IDS, map_ids.as_mut_ptr() as u64);
    if nr_funcs > 0 {
        raw.set_u32(o::NR_FUNC_INFO, nr_funcs);
        raw.set_u32(o::FUNC_INFO_REC_SIZE, 8);
        raw.set_u64(o::FUNC_INFO, funcs.as_mut_ptr() as u64);
    }
    get_prog_info(fd, &mut raw)?;
    // The program cannot gain maps, but be exact about what was written.
    map_ids.truncate(raw.u32_at(o::NR_MAP_IDS).min(nr_maps) as usize);
    let name = &raw.0[o::NAME..o::NAME + 16];
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(16)];
    let btf_id = raw.u32_at(o::BTF_ID);
    Ok(ProgInfo {
        id: raw.u32_at(o::ID),
        name: String::from_utf8_lossy(name).into_owned(),
        map_ids,
        btf_id,
        main_func: (btf_id != 0)
            .then(|| funcs.iter().find(|f| f[0] == 0).map(|f| f[1]))
            .flatten(),
        run_time_ns: raw.u64_at(o::RUN_TIME_NS),
        run_cnt: raw.u64_at(o::RUN_CNT),
    })
}

/// The id of the XDP program attached to `ifindex` in any mode (the one
/// `ip link` shows), asked over rtnetlink: no capability needed.
pub fn xdp_prog_id(ifindex: u32) -> io::Result<Option<u32>> {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    const RTM_GETLINK: u16 = 18;
    const NLM_F_REQUEST: u16 = 1;
    const IFLA_EXT_MASK: u16 = 29;
    const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

    #[repr(C)]
    struct Request {
        // struct nlmsghdr
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        // struct ifinfomsg
        family: u8,
        pad: u8,
        if_type: u16,
        index: i32,
        if_flags: u32,
        change: u32,
        // struct rtattr + u32: IFLA_EXT_MASK
        attr_len: u16,
        attr_type: u16,
        ext_mask: u32,
    }
    let req = Request {
        len: size_of::<Request>() as u32,
        kind: RTM_GETLINK,
        flags: NLM_F_REQUEST,
        seq: 1,
        pid: 0,
        family: libc::AF_UNSPEC as u8,
        pad: 0,
        if_type: 0,
        index: ifindex as i32,
        if_flags: 0,
        change: 0,
        attr_len: 8,
        attr_type: IFLA_EXT_MASK,
        ext_mask: RTEXT_FILTER_SKIP_STATS,
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a plain struct of `len` bytes, alive for the call; an
    // unbound netlink socket sends to the kernel.
    let sent = unsafe {
        libc::send(
            sock.as_raw_fd(),
            &req as *const Request as *const libc::c_void,
            size_of::<Request>(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: `buf` is writable for its whole length, which is passed.
    let got = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_link_reply(&buf[..got as usize])
}

/// The XDP program id in an RTM_NEWLINK reply (or the errno of an
/// NLMSG_ERROR): `IFLA_XDP_PROG_ID` when one program is attached, else the
/// driver-mode or skb-mode one.
fn parse_link_reply(mut msg: &[u8]) -> io::Result<Option<u32>> {
    const RTM_NEWLINK: u16 = 16;
    const NLMSG_ERROR: u16 = 2;
    const IFLA_XDP: u16 = 43;
    const IFLA_XDP_PROG_ID: u16 = 4;
    const IFLA_XDP_DRV_PROG_ID: u16 = 5;
    const IFLA_XDP_SKB_PROG_ID: u16 = 6;
    const NLA_TYPE_MASK: u16 = 0x3fff;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed rtnetlink reply");
    let u16_at = |b: &[u8], off: usize| {
        b.get(off..off + 2)
            .map(|x| u16::from_ne_bytes([x[0], x[1]]))
    };
    let u32_at = |b: &[u8], off: usize| {
        b.get(off..off + 4)
            .map(|x| u32::from_ne_bytes(x.try_into().expect("4 bytes")))
    };
    let align = |n: usize| (n + 3) & !3;
    while msg.len() >= 16 {
        let len = u32_at(msg, 0).ok_or_else(bad)? as usize;
        let kind = u16_at(msg, 4).ok_or_else(bad)?;
        if len < 16 || len > msg.len() {
            return Err(bad());
        }
        let body = &msg[16..len];
        match kind {
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or_else(bad)? as i32;
                return Err(io::Error::from_raw_os_error(-errno));
            }
            RTM_NEWLINK => {
                // struct ifinfomsg (16 bytes), then the attributes.
                let mut attrs = body.get(16..).ok_or_else(bad)?;
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0).ok_or_else(bad)? as usize;
                    let atype = u16_at(attrs, 2).ok_or_else(bad)? & NLA_TYPE_MASK;
                    if alen < 4 || alen > attrs.len() {
                        return Err(bad());
                    }
                    if atype == IFLA_XDP {
                        let mut nested = &attrs[4..alen];
                        let mut ids = [None; 3];
                        while nested.len() >= 4 {
                            let nlen = u16_at(nested, 0).ok_or_else(bad)? as usize;
                            let ntype = u16_at(nested, 2).ok_or_else(bad)? & NLA_TYPE_MASK;
                            if nlen < 4 || nlen > nested.len() {
                                return Err(bad());
                            }
                            let value = u32_at(&nested[..nlen], 4).filter(|&id| id != 0);
                            match ntype {
                                IFLA_XDP_PROG_ID => ids[0] = value,
                                IFLA_XDP_DRV_PROG_ID => ids[1] = value,
                                IFLA_XDP_SKB_PROG_ID => ids[2] = value,
                                _ => {}
                            }
                            nested = nested.get(align(nlen)..).unwrap_or_default();
                        }
                        return Ok(ids[0].or(ids[1]).or(ids[2]));
                    }
                    attrs = attrs.get(align(alen)..).unwrap_or_default();
                }
                return Ok(None);
            }
            _ => {}
        }
        msg = msg.get(align(len)..).unwrap_or_default();
    }
    Err(bad())
}

/// Bytes of a page, as the kernel rounds an mmapable array's mapping.
pub const PAGE: usize = 4096;

// Mapped reads 64-bit counters of a shared mapping with atomic loads:
// plain loads on 64-bit targets; 32-bit ones would need a write (cmpxchg8b).
#[cfg(not(target_pointer_width = "64"))]
compile_error!("xdptop reads the talker tables with 64-bit atomic loads: 64-bit targets only");

/// A shared mapping of an mmapable BPF array, as 64-bit words: the
/// program's atomic updates show through it, so reading costs no syscall.
pub struct Mapped {
    base: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    words: usize,
}

// SAFETY: the mapping is memory owned by this value that the kernel and
// this process only access with atomics, from any thread.
unsafe impl Send for Mapped {}

impl Mapped {
    /// Maps the first `words` 64-bit words of the array `fd`, read-only or
    /// (`writable`, for an array not frozen) read-write. The mapping holds
    /// the map: the descriptor may be closed afterwards.
    pub fn new(fd: BorrowedFd<'_>, words: usize, writable: bool) -> io::Result<Self> {
        let len = Self::len_of(words);
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh mapping (no address hint) of `len` bytes of the
        // map's fd, which the kernel checks against the array's size; it
        // aliases no Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(ptr.cast())
            .ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Self { base, words })
    }

    fn len_of(words: usize) -> usize {
        (words * 8).next_multiple_of(PAGE)
    }

    /// The array as atomics (the slots' fields, in order). A read-only
    /// mapping must only be loaded from.
    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping is page-aligned, holds `words` u64s, stays
        // mapped while `self` lives, and is only ever accessed with atomics
        // (the program's atomic adds and compare-and-swaps, and ours).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.words) }
    }

    /// For an array of `{packets, bytes}` counters: (slot, packets, bytes)
    /// of the slots with packets. Packets and bytes are two loads: a packet
    /// counted in between shows in the bytes first and in the packets at
    /// the next read.
    pub fn nonzero(&self) -> impl Iterator<Item = (u32, u64, u64)> + '_ {
        use std::sync::atomic::Ordering::Relaxed;
        self.words()
            .chunks_exact(2)
            .enumerate()
            .filter_map(|(slot, pair)| {
                let packets = pair[0].load(Relaxed);
                (packets != 0).then(|| (slot as u32, packets, pair[1].load(Relaxed)))
            })
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference into it
        // outlives `self` (`words` borrows it).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), Self::len_of(self.words));
        }
    }
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const MAP_TYPE_ARRAY: u32 = 2;
const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;

fn map_create(map_type: u32, inner_map_fd: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    #[repr(C)]
    struct Attr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
    }
    let mut attr = Attr {
        map_type,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        inner_map_fd,
    };
    // SAFETY: Attr is the head of the map-create member of union bpf_attr
    // (the kernel zero-fills the rest).
    let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr)? };
    // SAFETY: on success BPF_MAP_CREATE returns a new fd that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// An array of maps with one slot, and a map to put in it: updating a map
/// of maps makes the kernel wait for the running BPF programs before the
/// syscall returns (`maybe_wait_bpf_programs`, also the kernel selftests'
/// `kern_sync_rcu`).
struct Grace {
    outer: std::os::fd::OwnedFd,
    inner: std::os::fd::OwnedFd,
}

static GRACE: std::sync::Mutex<Option<Grace>> = std::sync::Mutex::new(None);

/// Returns once every BPF program that was running when it was called has
/// finished (an RCU grace period, a few to some tens of milliseconds): a
/// program that read a slot's old key before then has done its adds.
pub fn wait_for_programs() -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let mut grace = GRACE.lock().unwrap_or_else(|e| e.into_inner());
    let g = match grace.as_ref() {
        Some(g) => g,
        None => {
            let inner = map_create(MAP_TYPE_ARRAY, 0)?;
            let outer = map_create(MAP_TYPE_ARRAY_OF_MAPS, inner.as_raw_fd() as u32)?;
            grace.insert(Grace { outer, inner })
        }
    };
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let key = 0u32;
    let value = g.inner.as_raw_fd() as u32;
    let mut attr = Attr {
        map_fd: g.outer.as_raw_fd() as u32,
        pad: 0,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        flags: 0,
    };
    // SAFETY: Attr is the element member of union bpf_attr; key and value
    // point at 4-byte values that outlive the call.
    unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr)? };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        a.extend(kind.to_ne_bytes());
        a.extend(value);
        while !a.len().is_multiple_of(4) {
            a.push(0);
        }
        a
    }

    fn newlink(attrs: &[u8]) -> Vec<u8> {
        let mut m = ((32 + attrs.len()) as u32).to_ne_bytes().to_vec();
        m.extend(16u16.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend([0u8; 16]);
        m.extend(attrs);
        m
    }

    #[test]
    fn the_xdp_program_id_is_read_from_a_link_reply() {
        let ifname = attr(3, b"veth0\0");
        let single = [attr(1, &[1, 0, 0, 0]), attr(4, &42u32.to_ne_bytes())].concat();
        let xdp = attr(43 | 0x8000, &single);
        assert_eq!(
            parse_link_reply(&newlink(&[ifname.clone(), xdp].concat())).expect("parsed"),
            Some(42)
        );
        let multi = [attr(1, &[4, 0, 0, 0]), attr(6, &7u32.to_ne_bytes())].concat();
        let xdp = attr(43, &multi);
        assert_eq!(parse_link_reply(&newlink(&xdp)).expect("parsed"), Some(7));
        let none = attr(43, &attr(1, &[0, 0, 0, 0]));
        assert_eq!(
            parse_link_reply(&newlink(&[ifname, none].concat())).expect("parsed"),
            None
        );
    }

    #[test]
    fn a_netlink_error_is_its_errno_and_garbage_is_refused() {
        let mut err = 36u32.to_ne_bytes().to_vec();
        err.extend(2u16.to_ne_bytes());
        err.extend([0u8; 10]);
        err.extend((-libc::ENODEV).to_ne_bytes());
        err.extend([0u8; 16]);
        let e = parse_link_reply(&err).expect_err("an errno");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(parse_link_reply(&[1, 2, 3]).is_err());
        assert!(parse_link_reply(&[0xff; 40]).is_err());
    }
}
