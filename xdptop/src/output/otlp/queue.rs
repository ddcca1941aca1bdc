//! The bounded queue between the sampling thread and the exporter task.
//!
//! Batching costs no timer: the caller decides, as it pushes, whether this
//! push wakes the task ([`WakePolicy`]: the first push, then once per
//! export interval, or when the queue holds a full batch), and the task
//! takes from the queue only when woken. Samples pushed in between wait in
//! the queue and go out together in the next request, each with its own
//! timestamp. The queue is behind a lock because two threads use it: the
//! sampling thread pushes, the task takes and puts back.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::encode::{Event, Point};

/// Samples per request: a backlog after an outage goes out in a few
/// requests of bounded size (well under gRPC's 4 MiB default limit).
pub(crate) const BATCH: usize = 1024;
/// Data points per request: a batch stops before it would pass this (but
/// takes at least one sample), so that samples carrying many talkers
/// (`--talkers-export`) make smaller batches, not larger requests. 1024
/// samples of the interface metrics and verdicts alone stay below it;
/// at about 70 encoded bytes a point, a request stays near 1 MiB.
pub(crate) const MAX_DATA_POINTS: usize = 16_384;

/// How many of `points` (oldest first) fit in one request.
fn fitting<'a>(points: impl Iterator<Item = &'a Point>, max: usize) -> usize {
    let mut n = 0;
    let mut dps = 0;
    for p in points.take(max) {
        dps += p.data_points();
        if n > 0 && dps > MAX_DATA_POINTS {
            break;
        }
        n += 1;
    }
    n
}
/// Events kept while the collector is away.
const EVENT_CAPACITY: usize = 64;

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
    pub(super) wake: tokio::sync::Notify,
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
    pub(super) fn push_points_at(&self, points: Vec<Point>, now: std::time::Instant) -> bool {
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
    pub(super) fn queued_points(&self) -> usize {
        self.lock().points.len()
    }

    /// The oldest `max` points (fewer if they would pass
    /// [`MAX_DATA_POINTS`]) and all events.
    pub(super) fn take(&self, max: usize) -> (Vec<Point>, Vec<Event>) {
        let mut q = self.lock();
        let n = fitting(q.points.iter(), max);
        (q.points.drain(..n).collect(), q.events.drain(..).collect())
    }

    /// The newest `max` points (fewer if they would pass
    /// [`MAX_DATA_POINTS`]) and all events (for the last push).
    pub(super) fn take_newest(&self, max: usize) -> (Vec<Point>, Vec<Event>) {
        let mut q = self.lock();
        let n = fitting(q.points.iter().rev(), max);
        let from = q.points.len() - n;
        (
            q.points.drain(from..).collect(),
            q.events.drain(..).collect(),
        )
    }

    /// Puts an unsent batch back in front of newer samples; the bound still
    /// holds, so what no longer fits is dropped (the oldest).
    pub(super) fn requeue(&self, points: Vec<Point>, events: Vec<Event>) {
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

/// A queued point at time `t`, for the queue's and the task's tests.
#[cfg(test)]
pub(super) fn test_point(t: u64) -> Point {
    Point {
        time_unix_nano: t,
        start_time_unix_nano: 0,
        interface: std::sync::Arc::from("a"),
        mode: crate::sample::Mode::Native,
        values: crate::output::names::Values {
            packets: t,
            bytes: t,
            pps: 0.0,
            bps: 0.0,
            attached: true,
            actions: None,
            run_ns_per_packet: None,
        },
        talkers: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{test_point as p, *};

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

    #[test]
    fn samples_with_many_talkers_make_smaller_batches() {
        use crate::output::names::{AttrValue, TalkerEntry, TalkerValues};
        let entry = TalkerEntry {
            attrs: vec![("source.address", AttrValue::Str("198.18.0.1".into()))],
            pps: 1.0,
            bps: 8.0,
        };
        // 100 sources and 100 services: 400 talker points + 5 per sample.
        let heavy = |t| {
            let mut x = p(t);
            x.talkers = Some(std::sync::Arc::new(TalkerValues {
                sources: vec![entry.clone(); 100],
                services: vec![entry.clone(); 100],
            }));
            x
        };
        assert_eq!(heavy(0).data_points(), 405);
        let q = Shared::new(4096, Duration::ZERO);
        q.push_points((0..100).map(heavy).collect());
        let per_batch = MAX_DATA_POINTS / 405;
        let (batch, _) = q.take(BATCH);
        assert_eq!(batch.len(), per_batch);
        assert!(batch.iter().map(Point::data_points).sum::<usize>() <= MAX_DATA_POINTS);
        let (last, _) = q.take_newest(BATCH);
        assert_eq!(
            times(&last),
            (100 - per_batch as u64..100).collect::<Vec<_>>()
        );
        // Plain samples: a full batch fits.
        q.take(BATCH);
        q.push_points((0..2000).map(p).collect());
        assert_eq!(q.take(BATCH).0.len(), BATCH);
    }

    #[test]
    fn the_last_push_takes_the_newest() {
        let q = Shared::new(10, Duration::ZERO);
        q.push_points((1..=5).map(p).collect());
        assert_eq!(times(&q.take_newest(2).0), [4, 5]);
        assert_eq!(times(&q.take_newest(10).0), [1, 2, 3]);
    }
}
