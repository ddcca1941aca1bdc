//! Per-packet cost of the XDP programs, measured in the kernel with
//! BPF_PROG_TEST_RUN: an empty XDP_PASS program (the floor), the seed's
//! style of program (hash lookup + two atomic adds) and xdptop's, with top
//! talkers compiled out (as before them), switched off and switched on, on
//! with every source in the LRU table (as before the sources array), and on
//! with one of the two tables left out (what each costs).

use anyhow::Context as _;
use aya::{
    EbpfLoader,
    maps::Array,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use xdp_ebpf::XdptopConfig;
use xdp_lab::TempBpffs;

use super::{Table, quantile, verdict};

#[derive(clap::Args)]
pub struct Params {
    /// Runs per measurement (BPF_PROG_TEST_RUN repeat).
    #[arg(long, default_value_t = 5_000_000)]
    pub repeat: u32,
    /// Measurements per program; the median is reported.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
}

/// xdptop's program may cost at most this much more than the seed's.
const TARGET_NS_OVER_SEED: f64 = 5.0;
/// Talkers switched off: at most this much over the program without them.
const TARGET_NS_TALKERS_OFF: f64 = 1.0;
/// Talkers switched on: at most this much over switched off.
const TARGET_NS_TALKERS_ON: f64 = 25.0;

pub fn run(opts: &Params) -> anyhow::Result<()> {
    xdp_program_cost(opts)
}

struct Candidate {
    label: &'static str,
    object: &'static [u8],
    program: &'static str,
    /// xdptop's `cap_bpf_only` setting (see xdp_ebpf::CAP_BPF_ONLY).
    cap_bpf_only: Option<u8>,
    /// Switch talker counting on (xdptop_config) after loading.
    talkers: bool,
    /// Index of the candidate this one is compared with and the target, if
    /// there is one (the breakdown rows have none).
    against: Option<(usize, Option<f64>)>,
}

fn xdp_program_cost(opts: &Params) -> anyhow::Result<()> {
    // The seed-style object pins its map by name: keep that off the host.
    let bpffs = TempBpffs::new("bench").context("the benchmark needs root for a bpffs")?;
    let xdptop = |label, object, cap_bpf_only, talkers, against| Candidate {
        label,
        object,
        program: xdp_ebpf::XDPTOP_PROGRAM,
        cap_bpf_only: Some(cap_bpf_only),
        talkers,
        against,
    };
    let candidates = [
        Candidate {
            label: "empty XDP_PASS",
            object: xdp_ebpf::empty_object(),
            program: xdp_ebpf::EMPTY_PROGRAM,
            cap_bpf_only: None,
            talkers: false,
            against: None,
        },
        Candidate {
            label: "seed-style (hash + 2 atomics)",
            object: xdp_ebpf::seed_style_object(),
            program: xdp_ebpf::SEED_STYLE_PROGRAM,
            cap_bpf_only: None,
            talkers: false,
            against: None,
        },
        xdptop(
            "xdptop before talkers (compiled out)",
            xdp_ebpf::xdptop_no_talkers_object(),
            0,
            false,
            Some((1, Some(TARGET_NS_OVER_SEED))),
        ),
        xdptop(
            "xdptop, talkers off",
            xdp_ebpf::xdptop_object(),
            0,
            false,
            Some((2, Some(TARGET_NS_TALKERS_OFF))),
        ),
        xdptop(
            "xdptop, talkers on",
            xdp_ebpf::xdptop_object(),
            0,
            true,
            Some((3, Some(TARGET_NS_TALKERS_ON))),
        ),
        xdptop(
            "  the same, sources in an LRU hash",
            xdp_ebpf::xdptop_sources_lru_object(),
            0,
            true,
            Some((3, Some(TARGET_NS_TALKERS_ON))),
        ),
        xdptop(
            "xdptop, CAP_BPF only, talkers off",
            xdp_ebpf::xdptop_object(),
            1,
            false,
            Some((1, Some(TARGET_NS_OVER_SEED))),
        ),
        xdptop(
            "xdptop, CAP_BPF only, talkers on",
            xdp_ebpf::xdptop_object(),
            1,
            true,
            Some((6, Some(TARGET_NS_TALKERS_ON))),
        ),
        xdptop(
            "  sources only (array)",
            xdp_ebpf::xdptop_sources_only_object(),
            0,
            true,
            Some((3, None)),
        ),
        xdptop(
            "  services only (array)",
            xdp_ebpf::xdptop_services_only_object(),
            0,
            true,
            Some((3, None)),
        ),
    ];
    let packet = udp_frame_64();
    let mut loaded = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let pin = bpffs.path().join(format!("stats_{i}"));
        // As xdptop loads it: no object here has CO-RE relocations, so the
        // kernel's BTF is not parsed.
        let mut loader = EbpfLoader::with_btf(None);
        loader.map_pin_path(xdp_ebpf::STATS_MAP, pin.as_path());
        if let Some(v) = &c.cap_bpf_only {
            loader.override_global(xdp_ebpf::CAP_BPF_ONLY, v, true);
        }
        let mut ebpf = loader
            .load(c.object)
            .with_context(|| format!("loading {}", c.label))?;
        let prog: &mut Xdp = ebpf
            .program_mut(c.program)
            .context("program missing")?
            .try_into()?;
        prog.load()
            .with_context(|| format!("verifying {}", c.label))?;
        if c.talkers {
            let mut config: Array<_, XdptopConfig> = Array::try_from(
                ebpf.map_mut(xdp_ebpf::CONFIG_MAP)
                    .context("no config map")?,
            )?;
            // The object's own array size: the bench does not resize it.
            let config_value = XdptopConfig {
                talkers: 1,
                source_mask: xdp_ebpf::TALKERS_MAX_ENTRIES - 1,
            };
            config.set(0, config_value, 0)?;
        }
        loaded.push(ebpf);
    }
    // Interleave rounds so drift (frequency, other load) hits all alike.
    let mut samples = vec![Vec::with_capacity(opts.rounds); candidates.len()];
    for _ in 0..opts.rounds {
        for (i, (c, ebpf)) in candidates.iter().zip(&loaded).enumerate() {
            let prog: &Xdp = ebpf
                .program(c.program)
                .context("program missing")?
                .try_into()?;
            let run = prog
                .test_run(TestRunOptions {
                    data_in: Some(&packet),
                    repeat: opts.repeat,
                    ..TestRunOptions::default()
                })
                .with_context(|| format!("BPF_PROG_TEST_RUN of {}", c.label))?;
            anyhow::ensure!(
                run.return_value == 2,
                "{} returned {} instead of XDP_PASS",
                c.label,
                run.return_value
            );
            // The kernel's mean per run, in whole nanoseconds.
            samples[i].push(run.duration.as_nanos() as f64);
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| quantile(s, 0.5)).collect();
    let mut t = Table::new(
        format!(
            "XDP program cost per packet (BPF_PROG_TEST_RUN, 64-byte UDP frame, \
             {} runs x {} rounds, median; talkers on: the frame's source and \
             service are in the tables)",
            opts.repeat, opts.rounds
        ),
        &[
            "program",
            "ns/packet",
            "vs seed-style",
            "vs",
            "target",
            "verdict",
        ],
    );
    for (c, m) in candidates.iter().zip(&medians) {
        let over_seed = m - medians[1];
        let (vs, target, met) = match c.against {
            Some((i, limit)) => {
                let over = m - medians[i];
                let vs = format!("{over:+.1} vs {}", short(candidates[i].label));
                match limit {
                    Some(limit) => (vs, format!("<= +{limit} ns"), verdict(over <= limit)),
                    None => (vs, String::new(), String::new()),
                }
            }
            None => (String::new(), String::new(), String::new()),
        };
        t.row(vec![
            c.label.to_owned(),
            format!("{m:.1}"),
            format!("{over_seed:+.1}"),
            vs,
            target,
            met,
        ]);
    }
    t.print();
    Ok(())
}

/// A candidate's name, short enough for the "vs" column.
fn short(label: &str) -> &str {
    match label {
        "seed-style (hash + 2 atomics)" => "seed",
        "xdptop before talkers (compiled out)" => "before",
        "xdptop, talkers off" => "off",
        "xdptop, CAP_BPF only, talkers off" => "CAP_BPF off",
        other => other,
    }
}

/// Ethernet + IPv4 + UDP, 64 bytes: the smallest frame on a wire.
pub fn udp_frame_64() -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total_len: u16 = 64 - 14;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total_len.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[198, 18, 0, 2, 198, 18, 0, 1]);
    let udp_len: u16 = total_len - 20;
    f.extend_from_slice(&[0x30, 0x39, 0, 9]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(64, 0xa5);
    f
}
