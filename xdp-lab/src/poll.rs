//! Waiting, with a deadline, for something that is checked by looking.

use std::{
    thread,
    time::{Duration, Instant},
};

/// Calls `attempt` every `every` until it returns `Ok`, which is returned;
/// once `timeout` has passed, its next `Err` is returned instead, so the
/// caller can say what it waited for and what it saw last.
pub fn poll<T, E>(
    timeout: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => thread::sleep(every),
            done => return done,
        }
    }
}
