//! A source that outlives its interface: when the interface disappears and
//! comes back (a veth recreated, a NIC re-probed), xdptop attaches again, as
//! long as nobody detached it on purpose (which removes its pins).

use std::time::{Duration, Instant};

use super::{Pins, WatchOptions, attach, ifindex};
use crate::{
    sample::{Mode, Reading, TalkerReading},
    sampler::CounterSource,
};

/// How often to try attaching again while an interface is lost.
const RETRY: Duration = Duration::from_secs(2);

pub struct Watched {
    pins: Pins,
    iface: String,
    options: WatchOptions,
    inner: Box<dyn CounterSource>,
    next_retry: Option<Instant>,
    /// Talker counting switched on at run time, to switch on again after a
    /// re-attach.
    talkers_on: bool,
}

impl Watched {
    pub fn new(
        pins: Pins,
        iface: &str,
        options: WatchOptions,
        inner: Box<dyn CounterSource>,
    ) -> Self {
        Self {
            pins,
            iface: iface.to_owned(),
            options,
            inner,
            next_retry: None,
            talkers_on: false,
        }
    }

    /// Our link pin (or, for a dispatcher component, our stats pin) is still
    /// there (no one ran --detach) and the interface exists again.
    fn should_reattach(&self) -> bool {
        self.inner.mode() != Mode::ReadOnly
            && (self.pins.find_link(&self.iface).is_some()
                || super::uses_dispatcher() && self.pins.stats(&self.iface).exists())
            && ifindex(&self.iface).is_some()
    }

    fn try_reattach(&mut self) -> Option<anyhow::Result<Reading>> {
        let now = Instant::now();
        if self.next_retry.is_some_and(|t| now < t) || !self.should_reattach() {
            return None;
        }
        match attach::watch(&self.pins, &self.iface, self.options) {
            Ok(attached) => {
                log::warn!("{} is back: {}", self.iface, attached.note);
                self.inner = attached.source;
                self.next_retry = None;
                if self.talkers_on
                    && let Err(e) = self.inner.count_talkers(true)
                {
                    log::warn!("{}: talkers after the re-attach: {e:#}", self.iface);
                }
                Some(self.inner.read())
            }
            Err(e) => {
                let why = super::error::chain(&e);
                log::debug!("{}: attaching again failed: {why}", self.iface);
                self.next_retry = Some(now + RETRY);
                None
            }
        }
    }
}

impl CounterSource for Watched {
    fn interface(&self) -> &str {
        &self.iface
    }

    fn mode(&self) -> Mode {
        self.inner.mode()
    }

    fn read_talkers(&mut self) -> Option<anyhow::Result<TalkerReading>> {
        self.inner.read_talkers()
    }

    fn count_talkers(&mut self, on: bool) -> anyhow::Result<u32> {
        let capacity = self.inner.count_talkers(on)?;
        self.talkers_on = on;
        Ok(capacity)
    }

    fn read(&mut self) -> anyhow::Result<Reading> {
        match self.inner.read() {
            Ok(r) => Ok(r),
            Err(e) => self.try_reattach().unwrap_or(Err(e)),
        }
    }
}
