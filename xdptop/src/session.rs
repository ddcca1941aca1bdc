//! One watching session: start the outputs, attach, drop capabilities, then
//! run the engine (see `engine`) for the dashboard or the headless loop;
//! then tear down in order (the engine's loop, the outputs' last push).
//!
//! ```text
//! dashboard: sampler thread (Engine: sources, outputs) ──Report──▶ UI thread (App)
//!                                     ▲                              │
//!                                     └──────── Command ─────────────┘
//! headless:  main thread (Engine) ──Tick──▶ JSON lines; signals ──Stop──▶ Engine
//! ```

use std::sync::mpsc;

use anyhow::{Context as _, bail};

use crate::{
    bpf::{self, Pins, WatchOptions},
    config::Config,
    engine::{Command, Engine, Kernel, Report},
    headless,
    output::Outputs,
    privilege,
    sampler::{CounterSource, Sampler},
    tui,
};

/// The kernel actions, as the engine carries them out: attach through
/// `bpf::watch` (the source re-attaches by itself when its interface comes
/// back), detach through `bpf::detach`.
struct XdpKernel {
    pins: Pins,
    options: WatchOptions,
}

impl XdpKernel {
    fn watch(&self, interface: &str) -> Result<Box<dyn CounterSource>, bpf::Error> {
        let attached = bpf::watch(&self.pins, interface, self.options)?;
        log::info!("{}", attached.note);
        Ok(Box::new(bpf::Watched::new(
            self.pins.clone(),
            interface,
            self.options,
            attached.source,
        )))
    }
}

impl Kernel for XdpKernel {
    fn attach(&mut self, interface: &str) -> anyhow::Result<Box<dyn CounterSource>> {
        Ok(self.watch(interface)?)
    }

    fn detach(&mut self, interface: &str) -> anyhow::Result<()> {
        bpf::detach(&self.pins, interface)?;
        Ok(())
    }
}

/// The dashboard's keys become commands for the sampling thread; their
/// outcomes come back as [`tui::Event::Done`].
struct EngineControl(mpsc::Sender<Command>);

impl tui::Control for EngineControl {
    fn detach(&mut self, interface: &str) {
        let _ = self.0.send(Command::Detach(interface.to_owned()));
    }

    fn attach(&mut self, interface: &str) {
        let _ = self.0.send(Command::Attach(interface.to_owned()));
    }

    fn view_reset(&mut self) {
        let _ = self.0.send(Command::ViewReset);
    }

    fn talkers(&mut self, interface: &str, on: bool) {
        let _ = self.0.send(Command::Talkers {
            interface: interface.to_owned(),
            on,
        });
    }
}

pub fn watch(config: &Config, pins: &Pins) -> anyhow::Result<()> {
    if !config.headless {
        tui::ensure_terminal()?;
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
    let mut outputs = Outputs::start(config, move |s| {
        if !headless {
            let _ = status_tx.send(tui::Event::Export(s));
        }
    })?;

    let kernel = XdpKernel {
        pins: pins.clone(),
        options: WatchOptions {
            mode: config.mode,
            priority: config.priority,
            talkers_table: config.talkers.map(|t| t.table),
            // Without --talkers the dashboard's talkers view switches
            // counting on while it is open.
            talkers_on_demand: !config.headless && config.talkers.is_none(),
        },
    };
    // Before attaching: the observers open their programs for the run
    // time only while the statistics are on.
    let run_time_unknown = bpf::enable_run_time_stats().err();
    if let Some(e) = &run_time_unknown {
        log::info!("{}", e.why);
    }
    let sources = attach_all(config, &kernel, &mut outputs)?;
    // libxdp changes a dispatcher only with CAP_SYS_ADMIN (it opens
    // programs and BTF by id): keeping it is what lets an interface that
    // comes back, and the dashboard's detach and attach, work as they do
    // with a single program.
    let also: &[caps::Capability] = if bpf::uses_dispatcher() {
        log::info!(
            "keeping CAP_SYS_ADMIN as well: libxdp needs it to change the dispatcher \
             (an interface that comes back, detach, attach)"
        );
        &[caps::Capability::CAP_SYS_ADMIN]
    } else if bpf::watches_foreign() {
        log::info!(
            "keeping CAP_SYS_ADMIN as well: when another loader replaces its program, telling \
             what the new one updates means opening it by id"
        );
        &[caps::Capability::CAP_SYS_ADMIN]
    } else {
        &[]
    };
    privilege::drop_all_but_kept(also)?;
    let talkers_top = match config.talkers {
        Some(t) => t.top,
        None if !config.headless => crate::config::DASHBOARD_TALKERS,
        None => 0,
    };
    let sampler = Sampler::new(sources).with_talkers(talkers_top);
    let engine = Engine::new(sampler, outputs, Box::new(kernel));

    let (commands_tx, commands) = mpsc::channel::<Command>();
    if headless {
        drop(events_tx);
        run_headless(config, engine, commands_tx, &commands)
    } else {
        let run_time_unknown = run_time_unknown.map(|e| e.short);
        run_dashboard(
            config,
            engine,
            commands_tx,
            commands,
            events,
            events_tx,
            run_time_unknown,
        )
    }
}

fn attach_all(
    config: &Config,
    kernel: &XdpKernel,
    outputs: &mut Outputs,
) -> anyhow::Result<Vec<Box<dyn CounterSource>>> {
    let mut sources = Vec::new();
    for iface in &config.interfaces {
        let source = kernel
            .watch(iface)
            .map_err(|e| out_of_descriptors_hint(e, sources.len()))
            .with_context(|| format!("watching {iface}"))?;
        outputs.event("attach", Some(iface));
        sources.push(source);
    }
    Ok(sources)
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

/// Headless: the engine runs on this thread and feeds stdout; a signal
/// sends it [`Command::Stop`].
fn run_headless(
    config: &Config,
    mut engine: Engine,
    commands_tx: mpsc::Sender<Command>,
    commands: &mpsc::Receiver<Command>,
) -> anyhow::Result<()> {
    headless::stop_on_signals(commands_tx)?;
    let mut stdout = std::io::stdout().lock();
    let mut consumer = headless::Consumer::new(config.count, config.json, &mut stdout);
    let end = headless::run(&mut engine, config.interval, commands, &mut consumer);
    engine.into_outputs().shutdown();
    log::debug!("headless loop ended: {end:?}");
    end.map(drop)
}

/// The dashboard on this thread, the engine on the sampler thread: ticks
/// and command outcomes reach the dashboard as events, its keys reach the
/// engine as commands.
fn run_dashboard(
    config: &Config,
    engine: Engine,
    commands_tx: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Receiver<tui::Event>,
    events_tx: mpsc::Sender<tui::Event>,
    run_time_unknown: Option<&'static str>,
) -> anyhow::Result<()> {
    let reports = events_tx.clone();
    let sampling = engine.spawn(config.interval, commands, move |report| {
        let event = match report {
            Report::Tick(tick) => tui::Event::Tick(tick),
            Report::Done(outcome) => tui::Event::Done(outcome),
        };
        reports.send(event).is_ok()
    })?;
    let options = tui::Options {
        host: crate::host::name(),
        interval: config.interval,
        interfaces: config.interfaces.clone(),
        run_time_unknown,
        talkers: config.talkers.map(|t| t.top),
        talkers_on_demand: config
            .talkers
            .is_none()
            .then_some(crate::config::DASHBOARD_TALKERS),
    };
    let mut control = EngineControl(commands_tx);
    let result = tui::run(options, events, events_tx, &mut control);
    // The last command sender goes: the engine ends its loop and hands back
    // the outputs, for their last push after the last tick.
    drop(control);
    match sampling.join() {
        Ok(outputs) => outputs.shutdown(),
        Err(_) => log::error!("the sampler thread panicked; skipped the outputs' last push"),
    }
    result
}
