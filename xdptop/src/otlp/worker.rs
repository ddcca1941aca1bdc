//! The bounded queue between the caller and the exporter task, and the task
//! itself: take a batch, send it, put it back on failure, back off, repeat.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::{sync::watch, time::Instant};

use super::{
    encode::{self, Event, Point},
    transport::Client,
};
use crate::status::{ExportState, ExportStatus};

/// Samples per request: a backlog after an outage goes out in a few
/// requests of bounded size (well under gRPC's 4 MiB default limit).
const BATCH: usize = 1024;
/// Events kept while the collector is away.
const EVENT_CAPACITY: usize = 64;
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Queue {
    points: VecDeque<Point>,
    events: VecDeque<Event>,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    pub dropped: AtomicU64,
    capacity: usize,
}

impl Shared {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere must not stop the caller from queueing.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push_points(&self, points: Vec<Point>) {
        let mut q = self.lock();
        q.points.extend(points);
        self.trim(&mut q);
        drop(q);
        self.wake.notify_one();
    }

    pub fn push_event(&self, event: Event) {
        let mut q = self.lock();
        q.events.push_back(event);
        while q.events.len() > EVENT_CAPACITY {
            q.events.pop_front();
        }
        drop(q);
        self.wake.notify_one();
    }

    fn trim(&self, q: &mut Queue) {
        let excess = q.points.len().saturating_sub(self.capacity);
        if excess > 0 {
            q.points.drain(..excess);
            self.dropped.fetch_add(excess as u64, Ordering::Relaxed);
        }
    }

    /// The oldest `max` points and all events.
    fn take(&self, max: usize) -> (Vec<Point>, Vec<Event>) {
        let mut q = self.lock();
        let n = q.points.len().min(max);
        (q.points.drain(..n).collect(), q.events.drain(..).collect())
    }

    /// The newest `max` points and all events (for the last push).
    fn take_newest(&self, max: usize) -> (Vec<Point>, Vec<Event>) {
        let mut q = self.lock();
        let n = q.points.len().min(max);
        let from = q.points.len() - n;
        (
            q.points.drain(from..).collect(),
            q.events.drain(..).collect(),
        )
    }

    /// Puts an unsent batch back in front of newer samples; the bound still
    /// holds, so what no longer fits is dropped (the oldest).
    fn requeue(&self, points: Vec<Point>, events: Vec<Event>) {
        let mut q = self.lock();
        for p in points.into_iter().rev() {
            q.points.push_front(p);
        }
        self.trim(&mut q);
        for e in events.into_iter().rev() {
            q.events.push_front(e);
        }
        while q.events.len() > EVENT_CAPACITY {
            q.events.pop_front();
        }
    }
}

pub(crate) struct Worker {
    pub shared: Arc<Shared>,
    pub client: Client,
    pub resource: Resource,
    pub status: ExportStatus,
    pub on_status: Box<dyn FnMut(ExportStatus) + Send>,
    pub done: std::sync::mpsc::Sender<ExportStatus>,
    pub capacity: usize,
}

/// What one attempt achieved; the unsent parts go back to the queue.
struct Outcome {
    error: Option<String>,
    sent_points: u64,
}

impl Worker {
    async fn send(&mut self, points: Vec<Point>, events: Vec<Event>) -> Outcome {
        let mut out = Outcome {
            error: None,
            sent_points: 0,
        };
        let mut unsent_points = Vec::new();
        if !points.is_empty() {
            let req = encode::metrics_request(&self.resource, &points);
            match self.client.send_metrics(req).await {
                Ok(()) => out.sent_points = points.len() as u64,
                Err(e) => {
                    out.error = Some(e);
                    unsent_points = points;
                }
            }
        }
        let mut unsent_events = Vec::new();
        // Spans only once the collector answers, so they cannot starve
        // samples of time while it is away.
        if !events.is_empty() {
            if out.error.is_some() {
                unsent_events = events;
            } else {
                let req = encode::trace_request(&self.resource, &events);
                if let Err(e) = self.client.send_traces(req).await {
                    out.error = Some(e);
                    unsent_events = events;
                }
            }
        }
        if !unsent_points.is_empty() || !unsent_events.is_empty() {
            self.shared.requeue(unsent_points, unsent_events);
        }
        out
    }

    fn record(&mut self, out: Outcome) {
        let before = self.status.state.clone();
        self.status.exported += out.sent_points;
        self.status.dropped = self.shared.dropped.load(Ordering::Relaxed);
        match out.error {
            None => {
                self.status.state = ExportState::Ok;
                // A stale error next to "ok" would only confuse the header.
                self.status.last_error = None;
                match before {
                    ExportState::Failing => log::info!(
                        "{}: export recovered ({} samples dropped so far)",
                        self.status.target,
                        self.status.dropped
                    ),
                    ExportState::Connecting => {
                        log::info!("{}: first export delivered", self.status.target)
                    }
                    ExportState::Ok => {}
                }
            }
            Some(e) => {
                log::debug!("{}: export failed: {e}", self.status.target);
                if before != ExportState::Failing {
                    log::warn!(
                        "{}: export failing: {e} (keeping the newest {} samples meanwhile)",
                        self.status.target,
                        self.capacity
                    );
                }
                self.status.state = ExportState::Failing;
                self.status.last_error = Some(e);
            }
        }
        (self.on_status)(self.status.clone());
    }
}

/// Races `fut` against the owner's shutdown; `None` if shutdown won (or the
/// owner is gone).
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<Option<Instant>>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        r = fut => Some(r),
        _ = stop.changed() => None,
    }
}

pub(crate) async fn run(mut w: Worker, mut stop: watch::Receiver<Option<Instant>>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if stop.borrow_and_update().is_some() {
            break;
        }
        let (points, events) = w.shared.take(BATCH);
        if points.is_empty() && events.is_empty() {
            let shared = Arc::clone(&w.shared);
            if unless_stopped(&mut stop, shared.wake.notified())
                .await
                .is_none()
            {
                break;
            }
            continue;
        }
        // The send is raced against shutdown so that a black-holed request
        // cannot eat the last push's budget; an interrupted batch goes back
        // to the queue (from these copies) and out in the last push. (If the
        // metrics had already gone and only the spans were in flight, those
        // points go twice: a rare, harmless repeat of identical values.)
        let (keep_points, keep_events) = (points.clone(), events.clone());
        let Some(out) = unless_stopped(&mut stop, w.send(points, events)).await else {
            w.shared.requeue(keep_points, keep_events);
            break;
        };
        let failed = out.error.is_some();
        w.record(out);
        if failed {
            let wait = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if unless_stopped(&mut stop, tokio::time::sleep(wait))
                .await
                .is_none()
            {
                break;
            }
        } else {
            backoff = MIN_BACKOFF;
        }
    }
    let deadline = *stop.borrow();
    if let Some(deadline) = deadline {
        last_push(&mut w, deadline).await;
    }
    let _ = w.done.send(w.status.clone());
}

/// Sends what is queued, newest first, until done or `deadline`.
async fn last_push(w: &mut Worker, deadline: Instant) {
    loop {
        let (points, events) = w.shared.take_newest(BATCH);
        if points.is_empty() && events.is_empty() {
            return;
        }
        match tokio::time::timeout_at(deadline, w.send(points, events)).await {
            Ok(out) => {
                let failed = out.error.is_some();
                w.record(out);
                if failed {
                    return;
                }
            }
            Err(_) => {
                w.record(Outcome {
                    error: Some("last push timed out at shutdown".into()),
                    sent_points: 0,
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sample::Mode;

    fn p(t: u64) -> Point {
        Point {
            time_unix_nano: t,
            start_time_unix_nano: 0,
            interface: Arc::from("a"),
            mode: Mode::Native,
            packets: t,
            bytes: t,
            pps: 0.0,
            bps: 0.0,
            attached: true,
        }
    }

    fn times(points: &[Point]) -> Vec<u64> {
        points.iter().map(|p| p.time_unix_nano).collect()
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts() {
        let q = Shared::new(3);
        q.push_points((1..=5).map(p).collect());
        assert_eq!(q.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(times(&q.take(10).0), [3, 4, 5]);
    }

    #[test]
    fn a_failed_batch_goes_back_in_front_within_the_bound() {
        let q = Shared::new(4);
        q.push_points((1..=3).map(p).collect());
        let (batch, _) = q.take(2);
        assert_eq!(times(&batch), [1, 2]);
        q.push_points((4..=5).map(p).collect());
        q.requeue(batch, Vec::new());
        // 1..=5 no longer fit in 4: the oldest goes.
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(times(&q.take(10).0), [2, 3, 4, 5]);
    }

    #[test]
    fn the_last_push_takes_the_newest() {
        let q = Shared::new(10);
        q.push_points((1..=5).map(p).collect());
        assert_eq!(times(&q.take_newest(2).0), [4, 5]);
        assert_eq!(times(&q.take_newest(10).0), [1, 2, 3]);
    }
}
