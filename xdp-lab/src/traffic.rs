//! A paced traffic generator that sends from inside the generator namespace.
//!
//! Sockets are made on a thread that has entered the namespace (`setns` is
//! per thread), so the caller's process stays where it is.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use nix::sched::{CloneFlags, setns};

/// Ethernet + IPv4 + UDP headers: a UDP payload of P bytes is a frame of
/// P + 42 bytes at XDP (no FCS, no padding on veth).
pub const UDP_OVERHEAD: u64 = 14 + 20 + 8;

/// The L2 frame length XDP sees for a UDP datagram of `payload` bytes.
pub fn frame_len(payload: usize) -> u64 {
    payload as u64 + UDP_OVERHEAD
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    /// TCP connection attempts (SYNs) to a closed port.
    TcpSyn,
    /// ICMP echo requests (raw socket, so root or CAP_NET_RAW).
    Icmp,
}

/// What to send and how fast.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub proto: Proto,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
    pub count: u64,
    /// UDP payload sizes, used in turn.
    pub payloads: Vec<usize>,
    /// Packets per second; `None` sends as fast as pacing-free sends go
    /// (which can overflow the veth queue and lose packets).
    pub rate_pps: Option<u64>,
}

impl Traffic {
    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, count: u64, payload: usize, rate_pps: u64) -> Self {
        Self {
            proto: Proto::Udp,
            src,
            dst,
            dst_port: 9,
            count,
            payloads: vec![payload],
            rate_pps: Some(rate_pps),
        }
    }
}

/// Sends `traffic` from the network namespace `netns`; returns how many
/// packets (UDP datagrams or connection attempts) were handed to the kernel.
pub fn send(netns: &File, traffic: &Traffic) -> anyhow::Result<u64> {
    let netns = netns.try_clone().context("duplicating the namespace fd")?;
    let traffic = traffic.clone();
    thread::scope(|s| {
        s.spawn(move || {
            setns(&netns, CloneFlags::CLONE_NEWNET).context("entering the generator namespace")?;
            match traffic.proto {
                Proto::Udp => send_udp(&traffic),
                Proto::TcpSyn => send_syn(&traffic),
                Proto::Icmp => send_icmp(&traffic),
            }
        })
        .join()
        .map_err(|_| anyhow::anyhow!("traffic thread panicked"))?
    })
}

fn pace(start: Instant, sent: u64, rate: Option<u64>) {
    if let Some(rate) = rate.filter(|r| *r > 0) {
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
    }
}

fn send_udp(t: &Traffic) -> anyhow::Result<u64> {
    let sock = UdpSocket::bind(SocketAddrV4::new(t.src, 0)).context("binding the UDP socket")?;
    let dst = SocketAddrV4::new(t.dst, t.dst_port);
    let max = t.payloads.iter().copied().max().unwrap_or(0);
    let buf = vec![0xa5u8; max];
    let start = Instant::now();
    for i in 0..t.count {
        pace(start, i, t.rate_pps);
        let len = t.payloads[(i as usize) % t.payloads.len().max(1)];
        sock.send_to(&buf[..len], dst)
            .with_context(|| format!("sending to {dst}"))?;
    }
    Ok(t.count)
}

fn send_syn(t: &Traffic) -> anyhow::Result<u64> {
    let dst = SocketAddrV4::new(t.dst, t.dst_port);
    let start = Instant::now();
    for i in 0..t.count {
        pace(start, i, t.rate_pps);
        // A closed port answers with RST: one SYN in, one RST out per try.
        let _ = TcpStream::connect_timeout(&dst.into(), Duration::from_millis(50));
    }
    Ok(t.count)
}

fn send_icmp(t: &Traffic) -> anyhow::Result<u64> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .context("opening a raw ICMP socket (needs root or CAP_NET_RAW)")?;
    let dst = SocketAddrV4::new(t.dst, 0);
    let start = Instant::now();
    for i in 0..t.count {
        pace(start, i, t.rate_pps);
        let len = t.payloads[(i as usize) % t.payloads.len().max(1)];
        let packet = echo_request(i as u16, len);
        sock.send_to(&packet, &dst.into())
            .with_context(|| format!("pinging {dst}"))?;
    }
    Ok(t.count)
}

/// An ICMP echo request with `payload` bytes of data and a valid checksum.
fn echo_request(seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![8u8, 0, 0, 0, 0x78, 0x64];
    p.extend_from_slice(&seq.to_be_bytes());
    p.resize(8 + payload, 0x5a);
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) of `data`.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(7, 33);
        assert_eq!(p.len(), 41);
        assert_eq!(checksum(&p), 0, "a valid ICMP checksum folds to zero");
    }

    #[test]
    fn frame_len_adds_the_headers() {
        assert_eq!(frame_len(18), 60);
        assert_eq!(frame_len(1458), 1500);
    }
}
