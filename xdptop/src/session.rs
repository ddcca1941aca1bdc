//! One watching session: attach, start the outputs, sample, and hand the
//! ticks to the dashboard or the headless loop; then tear down in order
//! (sampler, outputs with a last push).
//!
//! ```text
//! sampler thread ──Tick──▶ forwarder ──▶ Outputs (OTLP push, /metrics)
//!                            │
//!                            └──▶ dashboard (Event::Tick)
//!
//! headless: sampler on the main thread ──Tick──▶ Outputs, then stdout
//! ```
//! Every tick goes to every output once, with the same values.

use std::{
    collections::HashMap,
    io::IsTerminal as _,
    sync::{Arc, mpsc},
    thread,
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::{
    bpf::{self, Pins},
    config::Config,
    headless, otlp, privilege,
    prometheus::PrometheusEndpoint,
    sample::Mode,
    sampler::{self, CounterSource, Sampler, Tick},
    status::ExportStatus,
    tui,
};

/// How long the last OTLP push may take on exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Where samples go besides the screen or stdout.
#[derive(Default)]
pub struct Outputs {
    otlp: Option<otlp::Exporter>,
    prometheus: Option<PrometheusEndpoint>,
}

impl Outputs {
    fn start(
        config: &Config,
        on_status: impl FnMut(ExportStatus) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let otlp = match &config.otlp {
            Some(cfg) => {
                Some(otlp::Exporter::start(cfg, on_status).context("starting the OTLP exporter")?)
            }
            None => None,
        };
        let prometheus = match config.prometheus {
            Some(addr) => {
                let ep = PrometheusEndpoint::start(addr)?;
                log::info!(
                    "serving Prometheus metrics on http://{}/metrics",
                    ep.local_addr()
                );
                Some(ep)
            }
            None => None,
        };
        Ok(Self { otlp, prometheus })
    }

    /// Hands one tick to every output; never blocks.
    pub fn publish(&self, tick: &Tick) {
        if let Some(e) = &self.otlp {
            e.export(tick);
        }
        if let Some(p) = &self.prometheus {
            p.update(tick);
        }
    }

    /// An operator event (attach, detach, view reset), exported as a span.
    pub fn event(&self, name: &str, interface: Option<&str>) {
        if let Some(e) = &self.otlp {
            e.event(name, interface);
        }
    }

    fn shutdown(self) {
        if let Some(e) = self.otlp {
            let status = e.shutdown(SHUTDOWN_TIMEOUT);
            log::info!(
                "{}: {} samples exported, {} dropped{}",
                status.target,
                status.exported,
                status.dropped,
                status
                    .last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
}

/// The dashboard's kernel actions.
struct KernelControl {
    pins: Pins,
    config: Config,
    outputs: Arc<Outputs>,
    /// Per interface: where a newly attached source goes (the sampler).
    replace: HashMap<String, bpf::Replace>,
}

impl tui::Control for KernelControl {
    fn detach(&mut self, interface: &str) -> anyhow::Result<()> {
        bpf::detach(&self.pins, interface)?;
        self.outputs.event("detach", Some(interface));
        Ok(())
    }

    fn attach(&mut self, interface: &str) -> anyhow::Result<Mode> {
        let attached = bpf::watch(&self.pins, interface, self.config.mode)?;
        self.outputs.event("attach", Some(interface));
        let mode = attached.mode;
        if let Some(tx) = self.replace.get(interface) {
            // The sampler swaps it in before its next read.
            let _ = tx.send(attached.source);
        }
        Ok(mode)
    }

    fn view_reset(&mut self) {
        self.outputs.event("view-reset", None);
    }
}

pub fn watch(config: &Config, pins: &Pins) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !config.headless && !terminal {
        bail!(
            "xdptop's dashboard needs a terminal; use --headless (with --json or --otlp) \
             for scripts and services"
        );
    }
    privilege::check("load and attach its XDP program")?;
    pins.check_bpffs()?;
    privilege::raise_memlock();
    privilege::raise_nofile();
    // Every name must resolve before anything is attached.
    for iface in &config.interfaces {
        if bpf::ifindex(iface).is_none() {
            bail!("unknown interface {iface} in this network namespace (see `ip link`)");
        }
    }

    let (events_tx, events) = mpsc::channel::<tui::Event>();
    let status_tx = events_tx.clone();
    let headless = config.headless;
    // Outputs bind their sockets before capabilities are dropped.
    let outputs = Arc::new(Outputs::start(config, move |s| {
        if !headless {
            let _ = status_tx.send(tui::Event::Export(s));
        }
    })?);

    let (sources, replace) = attach_all(config, pins, &outputs)?;
    privilege::drop_all_but_kept()?;

    let result = if headless {
        drop(events_tx);
        run_headless(config, Sampler::new(sources), &outputs)
    } else {
        let (ticks_tx, ticks) = mpsc::sync_channel::<Tick>(64);
        let sampling = Sampling::start(Sampler::new(sources), config.interval, ticks_tx);
        let control = KernelControl {
            pins: pins.clone(),
            config: config.clone(),
            outputs: Arc::clone(&outputs),
            replace,
        };
        run_dashboard(
            config, control, sampling, ticks, events, events_tx, &outputs,
        )
    };

    match Arc::try_unwrap(outputs) {
        Ok(outputs) => outputs.shutdown(),
        Err(_) => log::warn!("an output was still in use at exit; skipped its last push"),
    }
    result
}

/// The sampler thread and the means to stop it.
struct Sampling {
    handle: thread::JoinHandle<()>,
    stop: mpsc::Sender<()>,
}

impl Sampling {
    fn start(sampler: Sampler, interval: Duration, tx: mpsc::SyncSender<Tick>) -> Self {
        let (handle, stop) = sampler::spawn(sampler, interval, tx);
        Self { handle, stop }
    }

    /// Stops the thread; its tick sender goes with it.
    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

type Sources = Vec<Box<dyn CounterSource>>;

fn attach_all(
    config: &Config,
    pins: &Pins,
    outputs: &Outputs,
) -> anyhow::Result<(Sources, HashMap<String, bpf::Replace>)> {
    let mut sources: Sources = Vec::new();
    let mut replace = HashMap::new();
    for iface in &config.interfaces {
        let attached = bpf::watch(pins, iface, config.mode)
            .map_err(|e| out_of_descriptors_hint(e, sources.len()))
            .with_context(|| format!("watching {iface}"))?;
        log::info!("{}", attached.note);
        outputs.event("attach", Some(iface));
        let (watched, tx) = bpf::Watched::new(pins.clone(), iface, config.mode, attached.source);
        sources.push(Box::new(watched));
        replace.insert(iface.clone(), tx);
    }
    Ok((sources, replace))
}

/// Running out of file descriptors (each interface holds a few: program,
/// maps, link) gets a hint that names the limit and how to raise it.
fn out_of_descriptors_hint(e: bpf::Error, attached: usize) -> anyhow::Error {
    if !e.is_out_of_descriptors() {
        return e.into();
    }
    let limit = privilege::nofile_limit().map_or("?".to_owned(), |n| n.to_string());
    anyhow::Error::new(e).context(format!(
        "out of file descriptors after attaching {attached} interfaces (the limit is {limit}, \
         and each interface needs a few): raise it with `ulimit -n` or LimitNOFILE= in the \
         systemd unit. The interfaces attached so far stay attached and the next run re-uses \
         them"
    ))
}

/// Headless: the sampler runs on this thread and feeds the outputs and
/// stdout directly.
fn run_headless(config: &Config, mut sampler: Sampler, outputs: &Outputs) -> anyhow::Result<()> {
    let stop = headless::stop_on_signals()?;
    let mut stdout = std::io::stdout().lock();
    let mut publish = |tick: &Tick| outputs.publish(tick);
    let mut consumer =
        headless::Consumer::new(config.count, config.json, &mut stdout, &mut publish);
    let end = headless::run(&mut sampler, config.interval, &stop, &mut consumer)?;
    log::debug!("headless loop ended: {end:?}");
    Ok(())
}

fn run_dashboard(
    config: &Config,
    mut control: KernelControl,
    sampling: Sampling,
    ticks: mpsc::Receiver<Tick>,
    events: mpsc::Receiver<tui::Event>,
    events_tx: mpsc::Sender<tui::Event>,
    outputs: &Arc<Outputs>,
) -> anyhow::Result<()> {
    // Forward each tick to the outputs and the screen, in that order.
    let forward_tx = events_tx.clone();
    let forward_outputs = Arc::clone(outputs);
    let forwarder = thread::Builder::new()
        .name("forwarder".into())
        .spawn(move || {
            for tick in ticks {
                forward_outputs.publish(&tick);
                if forward_tx.send(tui::Event::Tick(tick)).is_err() {
                    break;
                }
            }
        })
        .context("starting the forwarder thread")?;
    let options = tui::Options {
        host: tui::hostname(),
        interval: config.interval,
        interfaces: config.interfaces.clone(),
    };
    let result = tui::run(options, events, events_tx, &mut control);
    drop(control);
    // The forwarder ends when the sampler hangs up; joining it releases its
    // hold on the outputs before their last push.
    sampling.stop();
    let _ = forwarder.join();
    result
}
