//! Where samples go besides the screen: the OTLP mirror and the `/metrics`
//! endpoint, side by side behind one [`Output`] trait. JSON lines are the
//! headless loop's own output (`json`), since they also decide when it ends.
//!
//! The sampling thread owns the [`Outputs`] (see `engine`): every tick goes
//! to each output once, before the dashboard or stdout sees it.

pub mod json;
pub mod names;
pub mod otlp;
pub mod prometheus;

use std::time::Duration;

use anyhow::Context as _;

use crate::{config::Config, sampler::Tick, status::ExportStatus};

/// How long the last OTLP push may take on exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// One place samples go. Called on the sampling thread; never blocks on I/O.
pub trait Output: Send {
    /// Takes in one tick (every sample of one sampling instant).
    fn publish(&mut self, tick: &Tick);
    /// An operator event (attach, detach, view reset).
    fn event(&mut self, _name: &str, _interface: Option<&str>) {}
    /// Last push and teardown, on exit.
    fn shutdown(self: Box<Self>) {}
}

/// Every output of a session.
#[derive(Default)]
pub struct Outputs(Vec<Box<dyn Output>>);

impl Outputs {
    /// Starts the outputs `config` asks for. They bind their sockets here,
    /// before capabilities are dropped. `on_status` gets the OTLP exporter's
    /// state after every attempt (from its own thread).
    pub fn start(
        config: &Config,
        on_status: impl FnMut(ExportStatus) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let mut outputs = Self::default();
        if let Some(cfg) = &config.otlp {
            let exporter = otlp::Exporter::start(cfg, on_status)
                .context("starting the OTLP exporter")?
                .with_talkers(config.talkers_export.unwrap_or(0));
            outputs.push(Box::new(exporter));
        }
        if let Some(addr) = config.prometheus {
            let ep = prometheus::PrometheusEndpoint::start(addr)?
                .with_talkers(config.talkers_export.unwrap_or(0));
            log::info!(
                "serving Prometheus metrics on http://{}/metrics",
                ep.local_addr()
            );
            outputs.push(Box::new(ep));
        }
        Ok(outputs)
    }

    pub fn push(&mut self, output: Box<dyn Output>) {
        self.0.push(output);
    }

    /// Hands one tick to every output; never blocks.
    pub fn publish(&mut self, tick: &Tick) {
        for o in &mut self.0 {
            o.publish(tick);
        }
    }

    /// An operator event, exported as a span where an output can.
    pub fn event(&mut self, name: &str, interface: Option<&str>) {
        for o in &mut self.0 {
            o.event(name, interface);
        }
    }

    /// Last pushes, in order.
    pub fn shutdown(self) {
        for o in self.0 {
            o.shutdown();
        }
    }
}

impl Output for otlp::Exporter {
    fn publish(&mut self, tick: &Tick) {
        self.export(tick);
    }

    fn event(&mut self, name: &str, interface: Option<&str>) {
        otlp::Exporter::event(self, name, interface);
    }

    fn shutdown(self: Box<Self>) {
        let status = otlp::Exporter::shutdown(*self, SHUTDOWN_TIMEOUT);
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

impl Output for prometheus::PrometheusEndpoint {
    fn publish(&mut self, tick: &Tick) {
        self.update(tick);
    }
}
