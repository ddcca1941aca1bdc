//! `cargo xtask bench`: xdptop measured against its baselines and targets,
//! one module per benchmark, each printing one table with its verdicts.
//! Candidates run side by side in one run, so other load hits them alike.

mod many;
mod observer;
mod otlp;
mod proc;
mod program;
mod support;
mod talkers;
mod tui;

use std::time::Duration;

use anyhow::bail;

#[derive(clap::Args)]
pub struct Options {
    /// Run only this benchmark (all by default).
    #[arg(long, value_enum, value_name = "NAME")]
    only: Option<Bench>,
    /// How long the OTLP and TUI runs measure, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[command(flatten)]
    program: program::Params,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    /// XDP program cost per packet (BPF_PROG_TEST_RUN).
    Program,
    /// Headless xdptop --otlp vs the seed's Python exporter.
    Otlp,
    /// The dashboard's CPU use and frame render time.
    Tui,
    /// 64 interfaces watched at once.
    Many,
    /// Top talkers: sampling cost at 1k/10k/100k entries, kernel memory.
    Talkers,
    /// What the verdict observer (fexit) adds per packet; in the 6.1/6.12
    /// guests when this kernel has no BPF trampolines.
    Observer,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let secs = Duration::from_secs(opts.seconds.max(5));
    let selected = |b| opts.only.is_none_or(|o| o == b);
    let needs_build = [Bench::Otlp, Bench::Tui, Bench::Many, Bench::Talkers]
        .into_iter()
        .any(selected);
    if !crate::exec::is_root() {
        const WHY: &str = "the benchmarks load XDP programs and make network namespaces";
        crate::exec::sudo_possible("bench", WHY)?;
        // Build as the user (no root-owned files in target/); the run as
        // root finds it up to date.
        if needs_build {
            support::build_release()?;
        }
        return crate::exec::rerun_with_sudo(WHY, &[]);
    }
    // Build once, before anything is timed.
    let bins = if needs_build {
        Some(support::build_release()?)
    } else {
        None
    };
    let mut failed = Vec::new();
    let mut report = |name: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            eprintln!("bench {name} failed: {e:#}");
            failed.push(name.to_owned());
        }
        println!();
    };
    if selected(Bench::Program) {
        report("program", program::run(&opts.program));
    }
    if selected(Bench::Observer) {
        report("observer", observer::run(&opts.program));
    }
    if let Some(bins) = &bins {
        if selected(Bench::Otlp) {
            report("otlp", otlp::run(bins, secs));
        }
        if selected(Bench::Tui) {
            report("tui", tui::run(bins, secs));
        }
        if selected(Bench::Many) {
            report("many", many::run(bins));
        }
        if selected(Bench::Talkers) {
            report("talkers", talkers::run(bins));
        }
    }
    if !failed.is_empty() {
        bail!("benchmarks that failed: {}", failed.join(", "));
    }
    Ok(())
}

/// A printed table: first column left-aligned, the rest right-aligned.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        println!("{}", self.title);
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = r
                .iter()
                .zip(&width)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            println!("{}", cells.join("  ").trim_end());
        }
    }
}

pub fn verdict(met: bool) -> String {
    if met { "met" } else { "NOT met" }.to_owned()
}

/// The value at quantile `q` (0..=1) of `v`, sorting it.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}
