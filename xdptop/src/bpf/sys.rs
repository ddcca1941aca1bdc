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
    // type, id, prog_id, then the per-type union at offset 16.
    Ok(LinkInfo {
        link_type: word(0),
        id: word(4),
        prog_id: word(8),
        ifindex: word(16),
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
