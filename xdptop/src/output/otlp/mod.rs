//! Mirrors every `Tick` over OTLP, off the caller's thread.
//!
//! ```text
//!  sampling thread                   "otlp" tokio runtime (1 worker)
//!  export(&Tick) ──push──▶ bounded queue ──take──▶ encode ──▶ gRPC / HTTP
//!  event(name)   ──push──▶ (drop oldest,          ◀── retry with backoff,
//!                           count drops)              per-request timeout
//!       └──── wake: first push, once per ────▶ worker takes only when woken
//!             export interval, full batch,
//!             every event                 status ──▶ on_status(ExportStatus)
//! ```
//!
//! Requests are paced without a timer: `export` wakes the worker only when
//! about one export interval has passed since it last did (or a batch is
//! full), and the worker sends what is queued only when woken, so each
//! request carries every sample since the previous one.
//!
//! Why no SDK meter provider: its periodic reader aggregates and stamps
//! points with its own collection time, and observable instruments report
//! whatever value is current when it collects, so a sample could be exported
//! twice or never, never with the sampler's timestamp. Building the request
//! from each Sample with the generated OTLP types (`opentelemetry-proto`)
//! exports each sample exactly once with its own time and values, and keeps
//! the queue, timeouts and shutdown in our hands (no current-thread
//! runtime deadlock, no ignored shutdown timeout).
//!
//! The sampling thread owns the `Exporter` (see `engine`). `export` and
//! `event` only take the queue's lock for a push, never across I/O, so they return in microseconds whatever the
//! collector does. Failed batches go back to the head of the queue; the queue
//! keeps at most `queue_samples` samples, dropping (and counting) the oldest,
//! so memory is bounded by that plus the one batch in flight.

pub mod config;
mod encode;
mod queue;
mod task;
mod transport;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::Context as _;
pub use config::{OtlpArgs, OtlpConfig, Protocol};

use self::{
    encode::{Event, Point},
    queue::Shared,
};
use crate::{
    sampler::{Tick, wall_ns},
    status::{ExportState, ExportStatus},
};

/// The OTLP mirror. Create with [`Exporter::start`], feed with
/// [`Exporter::export`], end with [`Exporter::shutdown`].
pub struct Exporter {
    shared: Arc<Shared>,
    target: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    /// The task's final status, sent when it ends.
    done: std::sync::mpsc::Receiver<ExportStatus>,
    /// `--talkers-export N`: sources and services exported per sample.
    talkers: usize,
}

impl Exporter {
    /// Starts the exporter thread. Nothing is sent until the first
    /// [`export`](Self::export); a collector that is down is not an error
    /// here (it shows up in the status). `on_status` is called from the
    /// exporter thread with a fresh snapshot after every export attempt;
    /// keep it quick (e.g. send it into the UI's channel).
    pub fn start(
        cfg: &OtlpConfig,
        on_status: impl FnMut(ExportStatus) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("otlp")
            .enable_all()
            .build()
            .context("starting the OTLP exporter's runtime")?;
        let client = {
            let _guard = runtime.enter();
            transport::Client::new(cfg)?
        };
        let shared = Arc::new(Shared::new(cfg.queue_samples, cfg.export_interval));
        let (stop, stop_rx) = tokio::sync::watch::channel(None);
        let (done_tx, done) = std::sync::mpsc::channel();
        let target = cfg.target();
        runtime.spawn(task::run(
            task::Worker {
                shared: Arc::clone(&shared),
                client,
                resource: encode::resource(&cfg.resource),
                status: ExportStatus {
                    target: target.clone(),
                    ..ExportStatus::default()
                },
                on_status: Box::new(on_status),
                done: done_tx,
                capacity: cfg.queue_samples,
            },
            stop_rx,
        ));
        log::info!(
            "{target}: exporting every sample, at most one request per {}",
            humantime::format_duration(cfg.export_interval)
        );
        Ok(Self {
            shared,
            target,
            runtime: Some(runtime),
            stop,
            done,
            talkers: 0,
        })
    }

    /// Exports the top `n` sources and services of each sample that lists
    /// talkers (`--talkers-export N`; 0, the default: none).
    pub fn with_talkers(mut self, n: usize) -> Self {
        self.talkers = n;
        self
    }

    /// e.g. `otlp grpc http://localhost:4317`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Queues every Sample of `tick` for export, with its own values and
    /// timestamp. Never blocks on the network. The samples go out with the
    /// next request: started by this call if about one export interval has
    /// passed since the last, else by a later `export` (or `shutdown`).
    /// Meant to be called on a schedule, as the sampler does.
    pub fn export(&self, tick: &Tick) {
        // The sample carries its series' start: the sampler decided once
        // whether the counters restarted.
        let points = tick
            .samples
            .iter()
            .map(|s| Point::new(s, self.talkers))
            .collect();
        self.shared.push_points(points);
    }

    /// Queues an operator event (attach, detach, reset...) as a span named
    /// `name`, with `network.interface.name` when given. Best effort: at most
    /// a few dozen wait while the collector is away.
    pub fn event(&self, name: &str, interface: Option<&str>) {
        let trace = uuid::Uuid::new_v4().into_bytes();
        let span = uuid::Uuid::new_v4().into_bytes();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&span[..8]);
        self.shared.push_event(Event {
            name: name.to_owned(),
            interface: interface.map(Arc::from),
            time_unix_nano: wall_ns(),
            trace_id: trace,
            span_id,
        });
    }

    /// Samples dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// One last push of what is queued (newest first), then stop. Returns
    /// within `timeout` whatever the collector does, with the final status.
    pub fn shutdown(mut self, timeout: Duration) -> ExportStatus {
        let started = std::time::Instant::now();
        // The worker gets most of the budget; the rest is ours to collect
        // its report and tear the runtime down.
        let worker_budget = timeout.mul_f64(0.9);
        let _ = self
            .stop
            .send(Some(tokio::time::Instant::now() + worker_budget));
        let status = self.done.recv_timeout(timeout).unwrap_or_else(|_| {
            log::warn!(
                "{}: exporter did not finish within {timeout:?}",
                self.target
            );
            ExportStatus {
                target: self.target.clone(),
                state: ExportState::Failing,
                exported: 0,
                dropped: self.dropped(),
                last_error: Some("shutdown timed out".into()),
            }
        });
        // Never waits: abandons anything still in flight (e.g. a blocking
        // DNS lookup) instead of joining it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        log::debug!("{}: shut down in {:?}", self.target, started.elapsed());
        status
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_moves_to_the_sampling_thread() {
        fn sendable<T: Send>() {}
        sendable::<Exporter>();
    }
}
