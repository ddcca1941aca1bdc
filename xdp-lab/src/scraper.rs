//! The seed's scraper, as the tests and the soak run it against xdptop's
//! shared map.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// `bpftool -j map lookup pinned PIN key 0 0 0 0`, as the seed's Python
/// scraper calls it: (rx_packets, rx_bytes) from `formatted.value`.
pub fn bpftool_lookup(pin: &Path) -> anyhow::Result<(u64, u64)> {
    let out = Command::new("bpftool")
        .args(["-j", "map", "lookup", "pinned"])
        .arg(pin)
        .args(["key", "0", "0", "0", "0"])
        .output()
        .context("running bpftool (is it installed?)")?;
    if !out.status.success() {
        // With -j, bpftool writes its error as JSON to stdout.
        let said = if out.stderr.is_empty() {
            &out.stdout
        } else {
            &out.stderr
        };
        bail!("bpftool: {}", String::from_utf8_lossy(said).trim());
    }
    parse(&out.stdout)
}

fn parse(json: &[u8]) -> anyhow::Result<(u64, u64)> {
    let v: Value = serde_json::from_slice(json).context("bpftool's JSON")?;
    let f = &v["formatted"]["value"];
    Ok((
        f["rx_packets"]
            .as_u64()
            .context("no rx_packets in bpftool's JSON")?,
        f["rx_bytes"]
            .as_u64()
            .context("no rx_bytes in bpftool's JSON")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_come_from_the_formatted_value() {
        let json = br#"{"key":["0x00"],"value":["0x01"],"formatted":{"key":0,"value":{"rx_packets":40,"rx_bytes":2400}}}"#;
        assert_eq!(parse(json).expect("bpftool JSON"), (40, 2400));
    }

    #[test]
    fn what_is_missing_is_named() {
        let err = parse(br#"{"formatted":{"value":{"rx_packets":40}}}"#).expect_err("no bytes");
        assert_eq!(err.to_string(), "no rx_bytes in bpftool's JSON");
        let err = parse(b"Error: bpf obj get").expect_err("not JSON");
        assert_eq!(err.to_string(), "bpftool's JSON");
    }

    #[test]
    fn a_failed_lookup_says_what_bpftool_said() {
        let err = bpftool_lookup(Path::new("/nonexistent/xdp_stats_map")).expect_err("no pin");
        let err = err.to_string();
        assert!(err.starts_with("bpftool: "), "{err}");
        assert!(err.contains("/nonexistent/xdp_stats_map"), "{err}");
    }
}
