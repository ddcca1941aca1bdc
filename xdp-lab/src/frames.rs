//! Hand-made Ethernet frames, sent raw (AF_PACKET) on a lab link from inside
//! the generator namespace: any source address (spoofed floods, IPv6 with
//! IPv6 off on the link), VLAN tags, fragments and truncated headers.
//!
//! Frames go to a locally administered MAC address that no interface has
//! ([`OTHER_HOST`]): XDP sees and counts them, then the stack drops them as
//! meant for another host, so nothing answers and nothing else is counted.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd as _, OwnedFd},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::traffic::checksum;
use nix::{
    sched::{CloneFlags, setns},
    sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socket},
};

/// Destination MAC of every frame: locally administered, on no interface.
pub const OTHER_HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Source MAC of every frame.
const SOURCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_ARP: u16 = 0x0806;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&OTHER_HOST);
    f.extend_from_slice(&SOURCE_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A transport header with `dport` as destination port: UDP (8 bytes, with
/// the payload length) or a TCP SYN (20 bytes).
fn transport(protocol: u8, dport: u16, payload: usize) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&40_000u16.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    if protocol == IPPROTO_TCP {
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        let len = u16::try_from(8 + payload).unwrap_or(u16::MAX);
        t.extend_from_slice(&len.to_be_bytes());
        t.extend_from_slice(&[0, 0]);
    }
    t.resize(t.len() + payload, 0xa5);
    t
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize, frag: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&u16::try_from(20 + len).unwrap_or(u16::MAX).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// An IPv4 packet: UDP with `payload` bytes, or a TCP SYN (payload 0).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, dport: u16, payload: usize) -> Vec<u8> {
    let t = transport(protocol, dport, payload);
    let mut f = ethernet(ETH_P_IP);
    f.extend_from_slice(&ipv4_header(src, dst, protocol, t.len(), 0));
    f.extend_from_slice(&t);
    f
}

/// An IPv4 fragment after the first (offset 1480 bytes): no transport header.
pub fn ipv4_later_fragment(src: Ipv4Addr, dst: Ipv4Addr, payload: usize) -> Vec<u8> {
    let mut f = ethernet(ETH_P_IP);
    f.extend_from_slice(&ipv4_header(src, dst, IPPROTO_UDP, payload, 1480 / 8));
    f.resize(f.len() + payload, 0x5a);
    f
}

/// An IPv6 packet (UDP or TCP SYN as for [`ipv4`]).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, dport: u16, payload: usize) -> Vec<u8> {
    let t = transport(protocol, dport, payload);
    let mut f = ethernet(ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(t.len()).unwrap_or(u16::MAX).to_be_bytes());
    f.push(protocol);
    f.push(64);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&t);
    f
}

/// A packet of either family (see [`ipv4`], [`ipv6`]).
pub fn ip(src: IpAddr, dst: IpAddr, protocol: u8, dport: u16, payload: usize) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, protocol, dport, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, protocol, dport, payload),
        (s, d) => ipv6(to_v6(s), to_v6(d), protocol, dport, payload),
    }
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// `frame` with an 802.1Q tag (VLAN `vid`) after the MAC addresses.
pub fn vlan(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// The first `len` bytes of `frame`: a truncated header.
pub fn truncated(frame: &[u8], len: usize) -> Vec<u8> {
    frame[..len.min(frame.len())].to_vec()
}

/// An ARP request (no IP source to count).
pub fn arp() -> Vec<u8> {
    let mut f = ethernet(ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.resize(14 + 28, 0);
    f
}

/// Sends every frame once, in order, on `ifname` inside the network
/// namespace `netns`, at most `rate_pps` frames per second (the lab's safe
/// rates keep the veth ring from overflowing, so sent == counted). Returns
/// how many were sent.
pub fn send_frames<'a>(
    netns: &File,
    ifname: &str,
    frames: impl IntoIterator<Item = &'a [u8]> + Send,
    rate_pps: u64,
) -> anyhow::Result<u64> {
    let netns = netns.try_clone().context("duplicating the namespace fd")?;
    thread::scope(|s| {
        s.spawn(move || {
            setns(&netns, CloneFlags::CLONE_NEWNET).context("entering the generator namespace")?;
            let sock = packet_socket(ifname)?;
            let start = Instant::now();
            let mut sent = 0u64;
            for frame in frames {
                if rate_pps > 0 && sent.is_multiple_of(64) {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate_pps as f64);
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                }
                send_one(&sock, frame)
                    .with_context(|| format!("sending a raw frame on {ifname}"))?;
                sent += 1;
            }
            Ok(sent)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("frame sender panicked"))?
    })
}

/// Sends one frame. ENOBUFS (the socket's send buffer full of frames the
/// link has not taken yet, as under qemu's emulation) means it was not
/// sent: wait a little and try again, for at most 10 s.
fn send_one(sock: &OwnedFd, frame: &[u8]) -> nix::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match send(sock.as_raw_fd(), frame, MsgFlags::empty()) {
            Err(nix::errno::Errno::ENOBUFS) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            other => return other.map(drop),
        }
    }
}

/// An AF_PACKET socket bound to `ifname` (this thread's namespace), for
/// sending only (protocol 0: it receives nothing).
fn packet_socket(ifname: &str) -> anyhow::Result<OwnedFd> {
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .with_context(|| format!("no interface {ifname} in the generator namespace"))?;
    let sock = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("opening an AF_PACKET socket (needs root or CAP_NET_RAW)")?;
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = i32::try_from(ifindex).context("ifindex")?;
    // SAFETY: addr is a sockaddr_ll of the size given, alive for the call.
    let ret = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("binding the AF_PACKET socket to {ifname}"));
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_frames_have_a_valid_header_checksum_and_the_port() {
        let f = ipv4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 1),
            IPPROTO_UDP,
            53,
            18,
        );
        assert_eq!(f.len(), 14 + 20 + 8 + 18);
        assert_eq!(checksum(&f[14..34]), 0);
        assert_eq!(&f[14 + 12..14 + 16], &[198, 18, 0, 10]);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 53);
        let syn = ipv4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 1),
            IPPROTO_TCP,
            443,
            0,
        );
        assert_eq!(syn.len(), 14 + 20 + 20);
        assert_eq!(u16::from_be_bytes([syn[36], syn[37]]), 443);
    }

    #[test]
    fn vlan_tags_and_truncation() {
        let f = arp();
        let v = vlan(&f, 7);
        assert_eq!(v.len(), f.len() + 4);
        assert_eq!(&v[12..16], &[0x81, 0x00, 0, 7]);
        assert_eq!(&v[16..18], &[0x08, 0x06]);
        assert_eq!(truncated(&v, 20).len(), 20);
    }

    #[test]
    fn ipv6_frames() {
        let f = ipv6(
            "2001:2::10".parse().expect("ip"),
            "2001:2::1".parse().expect("ip"),
            IPPROTO_UDP,
            5353,
            10,
        );
        assert_eq!(f.len(), 14 + 40 + 8 + 10);
        assert_eq!(f[14 + 6], IPPROTO_UDP);
        assert_eq!(u16::from_be_bytes([f[54 + 2], f[54 + 3]]), 5353);
    }
}
