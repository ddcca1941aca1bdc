//! What xdptop's verdict observer (its fexit program) adds to the XDP
//! program it observes: BPF_PROG_TEST_RUN of the same loaded program
//! without and with the observer attached, in interleaved rounds (the
//! kernel runs the fexit trampoline on test runs as on real packets).
//!
//! It needs BPF trampolines. On a kernel without them (the development
//! host's 6.18) it runs itself in Debian's 6.1 and 6.12 guests (qemu under
//! TCG, as vmtest does), where nanoseconds are emulated: there the ratio is
//! the figure, and the table says so.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use xdp_lab::TempBpffs;
use xdptop::bpf::Observer;

use super::{Table, program::udp_frame_64, quantile};

/// Runs per measurement in a guest: TCG is ~100 times slower.
const GUEST_REPEAT: u32 = 200_000;

pub fn run(opts: &super::program::Params) -> anyhow::Result<()> {
    let in_guest = std::env::var_os("XDP_LAB_VM").is_some();
    match measure(opts.repeat, opts.rounds, in_guest) {
        Err(Unmeasurable::NoTrampolines(why)) if !in_guest => {
            println!(
                "verdict observer cost: this kernel cannot attach it ({why});\n\
                 measuring in the 6.1 and 6.12 guests (qemu, TCG) instead"
            );
            in_guests(opts)
        }
        Err(Unmeasurable::NoTrampolines(why)) => bail!("{why}"),
        Err(Unmeasurable::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

enum Unmeasurable {
    NoTrampolines(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Unmeasurable {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}

/// This same benchmark, run by this same binary in each guest.
fn in_guests(opts: &super::program::Params) -> anyhow::Result<()> {
    let exe: PathBuf = std::env::current_exe().context("finding the xtask binary")?;
    let args: Vec<String> = [
        "bench",
        "--only",
        "observer",
        "--repeat",
        &opts.repeat.min(GUEST_REPEAT).to_string(),
        "--rounds",
        &opts.rounds.to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    for kernel in ["6.1", "6.12"] {
        let out = crate::vmtest::run_in_guest(kernel, &exe, &args)?;
        print!("{out}");
    }
    Ok(())
}

struct Target {
    label: &'static str,
    ebpf: Ebpf,
    program: &'static str,
}

impl Target {
    fn program(&self) -> anyhow::Result<&Xdp> {
        Ok(self
            .ebpf
            .program(self.program)
            .context("program missing")?
            .try_into()?)
    }

    fn id(&self) -> anyhow::Result<u32> {
        Ok(self.program()?.info()?.id())
    }

    /// Mean ns per run over `repeat` runs of a 64-byte UDP frame.
    fn ns_per_run(&self, frame: &[u8], repeat: u32) -> anyhow::Result<f64> {
        let run = self
            .program()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .with_context(|| format!("BPF_PROG_TEST_RUN of {}", self.label))?;
        anyhow::ensure!(
            run.return_value == 2,
            "{} returned {} instead of XDP_PASS",
            self.label,
            run.return_value
        );
        Ok(run.duration.as_nanos() as f64)
    }
}

fn load(
    label: &'static str,
    object: &[u8],
    program: &'static str,
    bpffs: &TempBpffs,
) -> anyhow::Result<Target> {
    let pin = bpffs.path().join(label.replace(' ', "_"));
    let mut loader = EbpfLoader::with_btf(None);
    loader.map_pin_path(xdp_ebpf::STATS_MAP, pin.as_path());
    let mut ebpf = loader
        .load(object)
        .with_context(|| format!("loading {label}"))?;
    let prog: &mut Xdp = ebpf
        .program_mut(program)
        .context("program missing")?
        .try_into()?;
    prog.load().with_context(|| format!("verifying {label}"))?;
    Ok(Target {
        label,
        ebpf,
        program,
    })
}

fn measure(repeat: u32, rounds: usize, in_guest: bool) -> Result<(), Unmeasurable> {
    let bpffs = TempBpffs::new("bench-observer").context("the benchmark needs root for a bpffs")?;
    let targets = [
        load(
            "empty XDP_PASS",
            xdp_ebpf::empty_object(),
            xdp_ebpf::EMPTY_PROGRAM,
            &bpffs,
        )?,
        load(
            "xdptop, talkers off",
            xdp_ebpf::xdptop_object(),
            xdp_ebpf::XDPTOP_PROGRAM,
            &bpffs,
        )?,
    ];
    if let Err(refusal) = Observer::attach(targets[0].id()?) {
        return Err(if refusal.permanent {
            Unmeasurable::NoTrampolines(refusal.why)
        } else {
            Unmeasurable::Failed(anyhow::anyhow!(refusal.why))
        });
    }
    let frame = udp_frame_64();
    // [target][without, with]
    let mut samples = vec![[Vec::new(), Vec::new()]; targets.len()];
    // Interleaved, so drift hits both alike; the observer is attached and
    // dropped (detached) around each "with" measurement.
    for _ in 0..rounds {
        for (t, s) in targets.iter().zip(&mut samples) {
            s[0].push(t.ns_per_run(&frame, repeat)?);
            let observer = Observer::attach(t.id()?)
                .map_err(|r| anyhow::anyhow!("observing {}: {}", t.label, r.why))?;
            s[1].push(t.ns_per_run(&frame, repeat)?);
            let counted: u64 = observer
                .read()
                .context("reading the observer's counts")?
                .iter()
                .map(|c| c.packets)
                .sum();
            // The observer really ran on every test run.
            if counted != u64::from(repeat) {
                return Err(anyhow::anyhow!(
                    "the observer on {} counted {counted} of {repeat} runs",
                    t.label
                )
                .into());
            }
        }
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let how = if in_guest {
        "qemu TCG: emulated ns, compare the ratio only"
    } else {
        "native"
    };
    let mut table = Table::new(
        format!(
            "verdict observer cost on {release} ({how}; BPF_PROG_TEST_RUN, 64-byte UDP \
             frame, {repeat} runs x {rounds} rounds, median)"
        ),
        &[
            "observed program",
            "ns/packet",
            "observed",
            "added",
            "ratio",
        ],
    );
    for (t, s) in targets.iter().zip(&mut samples) {
        let without = quantile(&mut s[0], 0.5);
        let with = quantile(&mut s[1], 0.5);
        table.row(vec![
            t.label.to_owned(),
            format!("{without:.1}"),
            format!("{with:.1}"),
            format!("{:+.1}", with - without),
            format!("{:.2}x", with / without.max(f64::MIN_POSITIVE)),
        ]);
    }
    table.print();
    Ok(())
}
