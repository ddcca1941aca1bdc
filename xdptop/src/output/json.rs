//! `--json`: one JSON object per interface per sample, flushed per tick.
//! The fields are the `Sample`'s (see README, "JSON lines").

use std::io::{self, Write};

use crate::sampler::Tick;

/// Writes every sample of `tick` as a line, then flushes.
pub fn write_tick(out: &mut dyn Write, tick: &Tick) -> io::Result<()> {
    for sample in &tick.samples {
        serde_json::to_writer(&mut *out, sample)?;
        out.write_all(b"\n")?;
    }
    // One flush per tick: a script reading line by line sees it at once.
    out.flush()
}
