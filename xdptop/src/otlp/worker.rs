//! The bounded queue between the caller and the exporter task, and the task
//! itself: wait to be woken, send what is queued at that moment, put a
//! batch back on failure, back off, retry.
//!
//! Batching costs no timer: the caller decides, as it pushes, whether this
//! push wakes the worker ([`WakePolicy`]: the first push, then once per
//! export interval, or when the queue holds a full batch), and the worker
//! takes from the queue only when woken. Samples pushed in between wait in
//! the queue and go out together in the next request, each with its own
//! timestamp.

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

/// When a push of samples wakes the worker. Decided on the pushing side (the
/// sampler's fixed schedule), so that the exporter needs no timer and wakes
/// at most about once per export interval.
#[derive(Debug)]
pub(crate) struct WakePolicy {
    /// The export interval less 10 %: the tolerance absorbs scheduling
    /// jitter, so that sampling every 1 s with a 1 s export interval wakes
    /// on every tick, and every 200 ms on every 5th.
    due_after: Duration,
    /// Points queued that call for a send whatever the time, so that a
    /// long interval never drops samples for want of one.
    full_at: usize,
    last_wake: Option<std::time::Instant>,
}

impl WakePolicy {
    pub fn new(export_interval: Duration, full_at: usize) -> Self {
        Self {
            due_after: export_interval - export_interval / 10,
            full_at: full_at.max(1),
            last_wake: None,
        }
    }

    /// Whether a push at `now` that leaves `queued` points in the queue
    /// wakes the worker: the first push does, then one at least
    /// `due_after` after the last wake, or one that fills a batch.
    pub fn on_push(&mut self, now: std::time::Instant, queued: usize) -> bool {
        let due = match self.last_wake {
            None => true,
            Some(last) => now.saturating_duration_since(last) >= self.due_after,
        };
        let wake = due || queued >= self.full_at;
        if wake {
            self.last_wake = Some(now);
        }
        wake
    }
}

struct Queue {
    points: VecDeque<Point>,
    events: VecDeque<Event>,
    /// Under the queue's lock: pushes come from more than one thread.
    policy: WakePolicy,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    pub dropped: AtomicU64,
    capacity: usize,
}

impl Shared {
    /// Holds at most `capacity` points; wakes the worker for points about
    /// once per `export_interval` (every push if zero).
    pub fn new(capacity: usize, export_interval: Duration) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: Mutex::new(Queue {
                points: VecDeque::new(),
                events: VecDeque::new(),
                // A queue smaller than a batch is "full" sooner.
                policy: WakePolicy::new(export_interval, BATCH.min(capacity)),
            }),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere must not stop the caller from queueing.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push_points(&self, points: Vec<Point>) {
        self.push_points_at(points, std::time::Instant::now());
    }

    /// Queues `points` pushed at `now`; wakes the worker if the policy says
    /// so (returned, for tests).
    fn push_points_at(&self, points: Vec<Point>, now: std::time::Instant) -> bool {
        let mut q = self.lock();
        q.points.extend(points);
        self.trim(&mut q);
        let queued = q.points.len();
        let wake = q.policy.on_push(now, queued);
        drop(q);
        if wake {
            self.wake.notify_one();
        }
        wake
    }

    /// Events wake the worker at once: operator actions are rare and worth
    /// seeing promptly (what points are queued go along).
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

    /// How many points are queued.
    fn queued_points(&self) -> usize {
        self.lock().points.len()
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
            // the last push. (If the metrics had already gone and only the
            // spans were in flight, those points go twice: a rare, harmless
            // repeat of identical values.)
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
        let q = Shared::new(3, Duration::ZERO);
        q.push_points((1..=5).map(p).collect());
        assert_eq!(q.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(times(&q.take(10).0), [3, 4, 5]);
    }

    #[test]
    fn a_failed_batch_goes_back_in_front_within_the_bound() {
        let q = Shared::new(4, Duration::ZERO);
        q.push_points((1..=3).map(p).collect());
        let (batch, _) = q.take(2);
        assert_eq!(times(&batch), [1, 2]);
        q.push_points((4..=5).map(p).collect());
        q.requeue(batch, Vec::new());
        // 1..=5 no longer fit in 4: the oldest goes.
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(times(&q.take(10).0), [2, 3, 4, 5]);
    }

    /// Which of pushes at these offsets (ms) wake the worker, with at most
    /// one point queued each time.
    fn waking(interval: Duration, at_ms: &[u64]) -> Vec<usize> {
        let t0 = std::time::Instant::now();
        let mut policy = WakePolicy::new(interval, BATCH);
        at_ms
            .iter()
            .enumerate()
            .filter(|&(_, &ms)| policy.on_push(t0 + Duration::from_millis(ms), 1))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn one_wake_per_export_interval_despite_jitter() {
        let second = Duration::from_secs(1);
        // 1 s sampling, a few ms early or late: every tick.
        assert_eq!(
            waking(second, &[0, 995, 2003, 2998, 4001, 4996]),
            [0, 1, 2, 3, 4, 5]
        );
        // 200 ms sampling with ±3 ms of jitter: every 5th tick.
        let ticks: Vec<u64> = (0..16u64).map(|k| k * 200 + (k % 3) * 3).collect();
        assert_eq!(waking(second, &ticks), [0, 5, 10, 15]);
        // 250 ms: every 4th (1 s), not every 3rd (750 ms).
        let ticks: Vec<u64> = (0..9u64).map(|k| k * 250).collect();
        assert_eq!(waking(second, &ticks), [0, 4, 8]);
        // An export interval shorter than the sampling one: every tick.
        assert_eq!(
            waking(Duration::from_millis(100), &[0, 1000, 2000]),
            [0, 1, 2]
        );
        // Zero: every push, as before batching.
        assert_eq!(waking(Duration::ZERO, &[0, 0, 1, 1]), [0, 1, 2, 3]);
    }

    #[test]
    fn a_full_batch_wakes_at_once_and_restarts_the_interval() {
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut policy = WakePolicy::new(Duration::from_secs(60), BATCH);
        assert!(policy.on_push(ms(0), 10), "the first push");
        assert!(!policy.on_push(ms(100), BATCH - 1));
        assert!(policy.on_push(ms(200), BATCH), "a full batch");
        // 60 s less 10 %, counted from the full batch's wake.
        assert!(!policy.on_push(ms(54_000), 5), "53.8 s after it");
        assert!(policy.on_push(ms(54_200), 5), "54 s after it");
    }

    #[test]
    fn the_queue_wakes_by_the_policy_and_when_full() {
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let q = Shared::new(4096, Duration::from_secs(1));
        assert!(q.push_points_at(vec![p(1)], ms(0)));
        assert!(!q.push_points_at(vec![p(2)], ms(200)));
        assert!(!q.push_points_at(vec![p(3)], ms(800)));
        assert!(q.push_points_at(vec![p(4)], ms(1000)));
        assert_eq!(times(&q.take(BATCH).0), [1, 2, 3, 4], "nothing merged");
        // A queue smaller than a batch is full sooner.
        let q = Shared::new(3, Duration::from_secs(3600));
        assert!(q.push_points_at(vec![p(1)], ms(0)));
        assert!(!q.push_points_at(vec![p(2)], ms(1)));
        assert!(
            q.push_points_at(vec![p(3)], ms(2)),
            "full: no drop for want of a wake"
        );
        assert_eq!(q.dropped.load(Ordering::Relaxed), 0);
    }

    type Spawned = (
        tokio::task::JoinHandle<()>,
        watch::Sender<Option<Instant>>,
        std::sync::mpsc::Receiver<ExportStatus>,
    );

    /// The worker on the test's runtime, sending to `fake`.
    fn spawn_worker(
        shared: &Arc<Shared>,
        fake: &crate::otlp::transport::fake::Collector,
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
        use crate::otlp::transport::fake::Collector;

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
        use crate::otlp::transport::fake::Collector;

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

    #[test]
    fn the_last_push_takes_the_newest() {
        let q = Shared::new(10, Duration::ZERO);
        q.push_points((1..=5).map(p).collect());
        assert_eq!(times(&q.take_newest(2).0), [4, 5]);
        assert_eq!(times(&q.take_newest(10).0), [1, 2, 3]);
    }
}
