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
