//! The exporter task: wait to be woken, send what is queued at that moment,
//! put a batch back on failure, back off, retry; on shutdown, one last push
//! of the newest samples.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::{sync::watch, time::Instant};

use super::{
    encode::{self, Event, Point},
    queue::{BATCH, Shared},
    transport::Client,
};
use crate::status::{ExportState, ExportStatus};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
    'wait: loop {
        if stop.borrow_and_update().is_some() {
            break;
        }
        // Only a push that asks for it (see `WakePolicy`) starts a send; the
        // samples queued meanwhile go out with it. (A wake that came during
        // the last send is kept by `Notify` and ends this wait at once, for
        // the samples pushed since.)
        let shared = Arc::clone(&w.shared);
        if unless_stopped(&mut stop, shared.wake.notified())
            .await
            .is_none()
        {
            break;
        }
        // What is queued now, a batch at a time. Samples pushed while these
        // are sent wait for the next wake, so that a slow collector does not
        // turn into a request per sample. After a failure, back off and
        // retry with everything queued by then, without a wake.
        let mut left = w.shared.queued_points();
        loop {
            let (points, events) = w.shared.take(left.min(BATCH));
            if points.is_empty() && events.is_empty() {
                continue 'wait;
            }
            left = left.saturating_sub(points.len());
            // The send is raced against shutdown so that a black-holed
            // request cannot eat the last push's budget; an interrupted
            // batch goes back to the queue (from these copies) and out in
            // the last push. (If the collector had already taken the
            // interrupted request, or its metrics part when only the spans
            // were still in flight, those points go twice: a rare repeat of
            // identical cumulative values and timestamps, which Prometheus
            // and other cumulative back-ends take as one sample.)
            let (keep_points, keep_events) = (points.clone(), events.clone());
            let Some(out) = unless_stopped(&mut stop, w.send(points, events)).await else {
                w.shared.requeue(keep_points, keep_events);
                break 'wait;
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
                    break 'wait;
                }
                left = w.shared.queued_points();
            } else {
                backoff = MIN_BACKOFF;
            }
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
    use std::sync::Mutex;

    use super::{super::queue::test_point as p, *};

    type Spawned = (
        tokio::task::JoinHandle<()>,
        watch::Sender<Option<Instant>>,
        std::sync::mpsc::Receiver<ExportStatus>,
    );

    /// The worker on the test's runtime, sending to `fake`.
    fn spawn_worker(
        shared: &Arc<Shared>,
        fake: &super::super::transport::fake::Collector,
        on_status: impl FnMut(ExportStatus) + Send + 'static,
    ) -> Spawned {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = watch::channel(None);
        let task = tokio::spawn(run(
            Worker {
                shared: Arc::clone(shared),
                client: Client::Fake(fake.clone()),
                resource: Resource::default(),
                status: ExportStatus::default(),
                on_status: Box::new(on_status),
                done: done_tx,
                capacity: 4096,
            },
            stop_rx,
        ));
        (task, stop_tx, done_rx)
    }

    /// The worker against an in-memory collector: it sends only when woken,
    /// then everything queued, a batch at a time; retries take what is
    /// queued without a wake; shutdown pushes what no wake asked for.
    // A paused clock: sleeps advance only when every task is idle, so the
    // worker has always acted before the test looks (no timing flakes).
    #[tokio::test(start_paused = true)]
    async fn the_worker_sends_when_woken_everything_queued() {
        use super::super::transport::fake::Collector;

        // Long enough for the worker to act on a wake (the fake answers at
        // once), short next to the 250 ms backoff.
        async fn settle() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let shared = Arc::new(Shared::new(4096, Duration::from_secs(1)));
        let fake = Collector::default();
        let states = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&states);
        let (task, stop_tx, done_rx) = spawn_worker(&shared, &fake, move |s| {
            seen.lock().expect("lock").push(s.state);
        });
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);

        // 200 ms sampling, 1 s export interval.
        assert!(shared.push_points_at(vec![p(0)], ms(0)));
        settle().await;
        assert_eq!(fake.requests(), [vec![0]]);
        for t in 1..=4 {
            assert!(!shared.push_points_at(vec![p(t)], ms(t * 200)));
        }
        settle().await;
        assert_eq!(fake.requests().len(), 1, "no wake, no request");
        assert!(shared.push_points_at(vec![p(5)], ms(1000)));
        settle().await;
        assert_eq!(fake.requests()[1], [1, 2, 3, 4, 5], "one request");

        // Refused: retried after the backoff with what is queued by then.
        fake.refuse.store(1, Ordering::SeqCst);
        assert!(shared.push_points_at(vec![p(10)], ms(2000)));
        settle().await;
        assert_eq!(fake.refused.load(Ordering::SeqCst), 1);
        assert!(!shared.push_points_at(vec![p(11)], ms(2200)));
        tokio::time::sleep(MIN_BACKOFF + Duration::from_millis(150)).await;
        assert_eq!(fake.requests().len(), 3);
        assert_eq!(fake.requests()[2], [10, 11], "the retry took both");

        // A full batch wakes at once and goes out a batch at a time.
        let many: Vec<Point> = (100..100 + BATCH as u64 + 10).map(p).collect();
        assert!(shared.push_points_at(many, ms(2300)));
        settle().await;
        let sizes: Vec<usize> = fake.requests()[3..].iter().map(Vec::len).collect();
        assert_eq!(sizes, [BATCH, 10]);

        // An event wakes at once and takes the queued points along.
        assert!(!shared.push_points_at(vec![p(5000)], ms(2400)));
        shared.push_event(Event {
            name: "attach".into(),
            interface: None,
            time_unix_nano: 1,
            trace_id: [1; 16],
            span_id: [1; 8],
        });
        settle().await;
        assert_eq!(fake.requests()[5], [5000]);
        assert_eq!(fake.spans.load(Ordering::SeqCst), 1);

        // Shutdown sends what is queued though no wake asked for it.
        assert!(!shared.push_points_at(vec![p(6000), p(6001)], ms(2500)));
        stop_tx
            .send(Some(Instant::now() + Duration::from_secs(1)))
            .expect("worker listening");
        task.await.expect("worker ends");
        let fin = done_rx.try_recv().expect("final status");
        let requests = fake.requests();
        assert_eq!(requests.len(), 7, "{requests:?}");
        assert_eq!(requests[6], [6000, 6001]);
        let sent: usize = requests.iter().map(Vec::len).sum();
        assert_eq!(fin.exported, sent as u64);
        assert_eq!(fin.exported, 1 + 5 + 2 + BATCH as u64 + 10 + 1 + 2);
        assert_eq!((fin.state, fin.dropped), (ExportState::Ok, 0));
        let states = states.lock().expect("lock").clone();
        assert_eq!(states.len(), 8, "one status per attempt: {states:?}");
        assert_eq!(states[2], ExportState::Failing);
    }

    /// Samples pushed while a request is in flight wait for the next wake:
    /// a slow collector must not turn batching back into a request per
    /// sample (the loop before batching sent them as soon as it could).
    // A paused clock: sleeps advance only when every task is idle, so the
    // worker has always acted before the test looks (no timing flakes).
    #[tokio::test(start_paused = true)]
    async fn pushes_during_a_slow_send_wait_for_the_next_wake() {
        use super::super::transport::fake::Collector;

        let shared = Arc::new(Shared::new(4096, Duration::from_secs(1)));
        let fake = Collector {
            delay: Duration::from_millis(100),
            ..Collector::default()
        };
        let (_task, _stop_tx, _done_rx) = spawn_worker(&shared, &fake, |_| {});
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(shared.push_points_at(vec![p(0)], ms(0)));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // In flight now: these two arrive during the send.
        assert!(!shared.push_points_at(vec![p(1)], ms(200)));
        assert!(!shared.push_points_at(vec![p(2)], ms(400)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.requests(), [vec![0]], "no request without a wake");
        assert!(shared.push_points_at(vec![p(3)], ms(1000)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.requests(), [vec![0], vec![1, 2, 3]]);
    }
}
