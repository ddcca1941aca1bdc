//! While the dashboard owns the terminal, log lines would scribble over it.
//! They are kept here instead (the newest 64 KiB) and printed to stderr once
//! the terminal is restored, so no warning is lost.

use std::{
    io::{self, Write},
    sync::Mutex,
};

const CAPACITY: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// An `env_logger` target that appends to the buffer.
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut buf = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        if buf.len() > CAPACITY {
            let excess = buf.len() - CAPACITY;
            buf.drain(..excess);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Takes what was logged so far.
pub fn take() -> Vec<u8> {
    std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Prints what was logged to stderr.
pub fn flush_to_stderr() {
    let logged = take();
    if !logged.is_empty() {
        let _ = io::stderr().write_all(&logged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes() {
        let mut w = Writer;
        w.write_all(&vec![b'a'; CAPACITY]).expect("write");
        w.write_all(b"newest").expect("write");
        let kept = take();
        assert_eq!(kept.len(), CAPACITY);
        assert!(kept.ends_with(b"newest"));
        assert!(take().is_empty());
    }
}
