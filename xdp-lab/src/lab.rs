//! Network namespaces and veth pairs, made with iproute2.

use std::{
    fs::File,
    net::Ipv4Addr,
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context as _, bail};

/// One veth pair: `xdp_if` lives in the XDP namespace, `gen_if` in the
/// generator's.
#[derive(Clone, Debug)]
pub struct LinkPair {
    pub xdp_if: String,
    pub gen_if: String,
    pub xdp_ip: Ipv4Addr,
    pub gen_ip: Ipv4Addr,
    pub xdp_mac: String,
    pub gen_mac: String,
}

/// Two namespaces joined by veth pairs; removed on drop.
#[derive(Debug)]
pub struct Lab {
    pub xdp_ns: String,
    pub gen_ns: String,
    pub links: Vec<LinkPair>,
    prefix: String,
}

/// Runs `ip ARGS`, failing with the command and its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    run("ip", args)
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd} (is iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Lab {
    /// Makes namespaces `<tag>-x` and `<tag>-g` (a unique suffix is added)
    /// with `pairs` veth pairs named `<prefix>N` / `g<prefix>N`.
    pub fn new(tag: &str, pairs: usize) -> anyhow::Result<Self> {
        Self::with_prefix(tag, "xt", pairs)
    }

    pub fn with_prefix(tag: &str, prefix: &str, pairs: usize) -> anyhow::Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        if pairs == 0 || pairs > 250 {
            bail!("a lab has 1 to 250 veth pairs (asked for {pairs})");
        }
        let unique = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            xdp_ns: format!("{tag}-{unique}-x"),
            gen_ns: format!("{tag}-{unique}-g"),
            links: Vec::with_capacity(pairs),
            prefix: prefix.to_owned(),
        };
        // From here on, Drop removes whatever was made if a step fails.
        for ns in [lab.xdp_ns.clone(), lab.gen_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            for key in ["all", "default"] {
                ip(&[
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ])?;
            }
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for i in 0..pairs {
            let pair = lab.add_pair(i)?;
            lab.links.push(pair);
        }
        Ok(lab)
    }

    fn add_pair(&self, i: usize) -> anyhow::Result<LinkPair> {
        let prefix = &self.prefix;
        let xdp_if = format!("{prefix}{i}");
        let gen_if = format!("g{prefix}{i}");
        // 198.18.i.1 (XDP side) <-> 198.18.i.2 (generator), one /24 per pair.
        let third = u8::try_from(i).context("pair index")?;
        let xdp_ip = Ipv4Addr::new(198, 18, third, 1);
        let gen_ip = Ipv4Addr::new(198, 18, third, 2);
        ip(&[
            "link",
            "add",
            &xdp_if,
            "netns",
            &self.xdp_ns,
            "type",
            "veth",
            "peer",
            "name",
            &gen_if,
            "netns",
            &self.gen_ns,
        ])?;
        ip(&[
            "-n",
            &self.xdp_ns,
            "addr",
            "add",
            &format!("{xdp_ip}/24"),
            "dev",
            &xdp_if,
        ])?;
        ip(&[
            "-n",
            &self.gen_ns,
            "addr",
            "add",
            &format!("{gen_ip}/24"),
            "dev",
            &gen_if,
        ])?;
        let xdp_mac = mac(&self.xdp_ns, &xdp_if)?;
        let gen_mac = mac(&self.gen_ns, &gen_if)?;
        ip(&[
            "-n",
            &self.gen_ns,
            "neigh",
            "replace",
            &xdp_ip.to_string(),
            "lladdr",
            &xdp_mac,
            "dev",
            &gen_if,
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            &self.xdp_ns,
            "neigh",
            "replace",
            &gen_ip.to_string(),
            "lladdr",
            &gen_mac,
            "dev",
            &xdp_if,
            "nud",
            "permanent",
        ])?;
        ip(&["-n", &self.xdp_ns, "link", "set", &xdp_if, "up"])?;
        ip(&["-n", &self.gen_ns, "link", "set", &gen_if, "up"])?;
        Ok(LinkPair {
            xdp_if,
            gen_if,
            xdp_ip,
            gen_ip,
            xdp_mac,
            gen_mac,
        })
    }

    /// `/run/netns/<xdp_ns>`, for `nsenter --net=` (which, unlike
    /// `ip netns exec`, leaves /sys and so the bpffs mounts alone).
    pub fn xdp_netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.xdp_ns)
    }

    pub fn gen_netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.gen_ns)
    }

    /// A command that runs `program` in the XDP namespace.
    pub fn xdp_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        crate::netns::command_in(Some(&self.xdp_netns_path()), program)
    }

    /// Runs `ip ARGS` in the XDP namespace.
    pub fn ip_xdp(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["-n", self.xdp_ns.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Opens the generator namespace, for [`crate::send`].
    pub fn gen_netns(&self) -> anyhow::Result<File> {
        let path = self.gen_netns_path();
        File::open(&path).with_context(|| format!("opening {}", path.display()))
    }

    /// Adds `198.18.i.host` as one more source address on pair `i`'s
    /// generator end, with a static neighbour entry on the XDP side (so
    /// replies need no ARP, and only the generator's packets arrive).
    /// Gone with the namespace.
    pub fn add_source(&self, i: usize, host: u8) -> anyhow::Result<Ipv4Addr> {
        let link = &self.links[i];
        let [a, b, c, _] = link.gen_ip.octets();
        let addr = Ipv4Addr::new(a, b, c, host);
        if addr == link.gen_ip || addr == link.xdp_ip {
            bail!("{addr} is already one of pair {i}'s addresses");
        }
        ip(&[
            "-n",
            &self.gen_ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &link.gen_if,
        ])?;
        self.ip_xdp(&[
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            &link.gen_mac,
            "dev",
            &link.xdp_if,
            "nud",
            "permanent",
        ])?;
        Ok(addr)
    }

    /// Deletes one veth pair (as an operator or udev would), e.g. to test an
    /// interface disappearing.
    pub fn delete_link(&self, i: usize) -> anyhow::Result<()> {
        self.ip_xdp(&["link", "del", &self.links[i].xdp_if])
            .map(drop)
    }

    /// Makes pair `i` again after [`Lab::delete_link`] (same names and
    /// addresses, new interface indexes and MACs).
    pub fn recreate_link(&mut self, i: usize) -> anyhow::Result<()> {
        self.links[i] = self.add_pair(i)?;
        Ok(())
    }
}

fn mac(ns: &str, dev: &str) -> anyhow::Result<String> {
    let out = ip(&["-n", ns, "-br", "link", "show", "dev", dev])?;
    out.split_whitespace()
        .nth(2)
        .map(str::to_owned)
        .with_context(|| format!("no MAC address in `{out}`"))
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends, and so their peers and
        // any XDP attachment on them.
        for ns in [&self.xdp_ns, &self.gen_ns] {
            if let Err(e) = ip(&["netns", "del", ns]) {
                if !e.to_string().contains("No such file") {
                    eprintln!("xdp-lab: {e:#}");
                }
            }
        }
    }
}
