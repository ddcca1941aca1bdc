//! Unit formatting for the dashboard: three significant digits and SI
//! prefixes, so a column reads at a glance (`1.24 Mpps`, `9.87 Gbit/s`).
//! Pure functions; byte and bit units come from `humansize`.

use humansize::{BaseUnit, DECIMAL, FixedAt, FormatSizeOptions, format_size_i};

/// SI prefixes, index = power of 1000.
const PREFIXES: [&str; 9] = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];

/// Shown for a value that is not a rate (NaN, infinite, negative): the
/// sampler never produces one, but a bad value must not print as a number.
const INVALID: &str = "-";

/// Whether rates are shown in bits or bytes per second (the `u` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateUnit {
    #[default]
    Bits,
    Bytes,
}

impl RateUnit {
    pub fn toggle(self) -> Self {
        match self {
            RateUnit::Bits => RateUnit::Bytes,
            RateUnit::Bytes => RateUnit::Bits,
        }
    }

    /// Column heading for a rate in this unit.
    pub fn heading(self) -> &'static str {
        match self {
            RateUnit::Bits => "bit/s",
            RateUnit::Bytes => "B/s",
        }
    }
}

/// Splits `v` into (mantissa, power of 1000, decimals) for three significant
/// digits, bumping to the next prefix when rounding reaches 1000.
fn scale(v: f64) -> (f64, usize, usize) {
    let mut m = v;
    let mut idx = 0;
    while m >= 1000.0 && idx + 1 < PREFIXES.len() {
        m /= 1000.0;
        idx += 1;
    }
    loop {
        let decimals = decimals_for(m, idx);
        let p = 10f64.powi(decimals as i32);
        let rounded = (m * p).round() / p;
        if rounded >= 1000.0 && idx + 1 < PREFIXES.len() {
            m = rounded / 1000.0;
            idx += 1;
            continue;
        }
        // 9.996 rounds to 10.00: keep three significant digits. Terminates
        // because the decimals only go down.
        if decimals_for(rounded, idx) != decimals {
            m = rounded;
            continue;
        }
        return (m, idx, decimals);
    }
}

fn decimals_for(m: f64, idx: usize) -> usize {
    if idx == 0 {
        // Whole packets and bytes need no decimals; a slow rate does.
        if m == 0.0 || m >= 10.0 || m.fract() == 0.0 {
            0
        } else {
            1
        }
    } else if m < 10.0 {
        2
    } else if m < 100.0 {
        1
    } else {
        0
    }
}

fn valid(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// SI-prefixed number followed by `unit` (`1.24 Mpps`, `950 pps`).
fn si(v: f64, unit: &str) -> String {
    if !valid(v) {
        return INVALID.to_string();
    }
    let (m, idx, decimals) = scale(v);
    format!("{m:.decimals$} {}{unit}", PREFIXES[idx])
}

fn fixed_at(idx: usize) -> Option<FixedAt> {
    Some(match idx {
        0 => FixedAt::Base,
        1 => FixedAt::Kilo,
        2 => FixedAt::Mega,
        3 => FixedAt::Giga,
        4 => FixedAt::Tera,
        5 => FixedAt::Peta,
        6 => FixedAt::Exa,
        7 => FixedAt::Zetta,
        _ => FixedAt::Yotta,
    })
}

/// humansize at the prefix and precision `scale` picked.
fn sized(v: f64, base: BaseUnit, suffix: &'static str) -> String {
    if !valid(v) {
        return INVALID.to_string();
    }
    let (_, idx, decimals) = scale(v);
    let opts = FormatSizeOptions::from(DECIMAL)
        .base_unit(base)
        .fixed_at(fixed_at(idx))
        .decimal_places(decimals)
        .decimal_zeroes(decimals)
        .suffix(suffix);
    format_size_i(v, opts)
}

/// Packets per second: `1.24 Mpps`, `950 pps`, `0.5 pps`.
pub fn pps(v: f64) -> String {
    si(v, "pps")
}

/// Bits per second: `9.87 Gbit/s`, `950 bit/s`.
pub fn bits_per_sec(v: f64) -> String {
    if valid(v) && scale(v).1 == 0 {
        // humansize says "bits" at the base unit; "bit/s" matches the rest.
        return si(v, "bit/s");
    }
    sized(v, BaseUnit::Bit, "/s")
}

/// Bytes per second: `1.23 GB/s`, `950 B/s`.
pub fn bytes_per_sec(v: f64) -> String {
    sized(v, BaseUnit::Byte, "/s")
}

/// A rate given in bits per second, shown in `unit`.
pub fn rate(bits_per_second: f64, unit: RateUnit) -> String {
    match unit {
        RateUnit::Bits => bits_per_sec(bits_per_second),
        RateUnit::Bytes => bytes_per_sec(bits_per_second / 8.0),
    }
}

/// A byte total: `1.23 GB`, `512 B`.
pub fn bytes(n: u64) -> String {
    sized(n as f64, BaseUnit::Byte, "")
}

/// A packet count: `1.24 M`, `950`.
pub fn packets(n: u64) -> String {
    let s = si(n as f64, "");
    s.trim_end().to_string()
}

/// Average packet size in bytes, whole: `1514 B`; `-` with no packets.
pub fn avg_size(bytes: u64, packets: u64) -> String {
    if packets == 0 {
        return INVALID.to_string();
    }
    format!("{} B", (bytes as f64 / packets as f64).round())
}

/// Percentage of `part` in `whole`, one decimal: `42.0%`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return INVALID.to_string();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// Share of rate `part` in rate `whole`, one decimal, at most 100 %:
/// `42.0%`; `-` when `whole` is none.
pub fn share(part: f64, whole: f64) -> String {
    if !(whole > 0.0 && part.is_finite() && whole.is_finite()) {
        return INVALID.to_string();
    }
    format!("{:.1}%", (part / whole * 100.0).clamp(0.0, 100.0))
}

/// A span of time, coarse: `45s`, `2m30s`, `1h05m`.
pub fn span(secs: f64) -> String {
    if !valid(secs) {
        return INVALID.to_string();
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// One table of every formatter over the values that matter (zero,
    /// prefix boundaries, rounding edges), reviewed as a snapshot.
    #[test]
    fn unit_formatting() {
        let values = [
            0.0,
            0.5,
            1.0,
            9.96,
            9.996,
            99.96,
            12.0,
            950.0,
            999.0,
            999.6,
            1_000.0,
            1_240.0,
            9_999.0,
            12_345.0,
            999_499.0,
            999_999.0,
            1_240_000.0,
            9_870_000_000.0,
            1.5e15,
            1e30,
            f64::NAN,
            -1.0,
        ];
        let mut table = String::new();
        writeln!(
            table,
            "{:>14} | {:>11} | {:>12} | {:>11} | {:>10} | {:>9}",
            "value", "pps", "bit/s", "B/s", "bytes", "packets"
        )
        .expect("writing to a String");
        for v in values {
            // `as` saturates: NaN and negatives give 0, huge values u64::MAX.
            let n = v as u64;
            writeln!(
                table,
                "{:>14} | {:>11} | {:>12} | {:>11} | {:>10} | {:>9}",
                v,
                pps(v),
                bits_per_sec(v),
                bytes_per_sec(v),
                bytes(n),
                packets(n)
            )
            .expect("writing to a String");
        }
        insta::assert_snapshot!(table);
    }

    #[test]
    fn three_significant_digits_and_the_issue_examples() {
        assert_eq!(pps(1_240_000.0), "1.24 Mpps");
        assert_eq!(pps(950.0), "950 pps");
        assert_eq!(bits_per_sec(9_870_000_000.0), "9.87 Gbit/s");
        assert_eq!(bytes_per_sec(1_230_000_000.0), "1.23 GB/s");
        assert_eq!(bytes(1_230_000_000), "1.23 GB");
        // Rounding up into the next prefix, not "1000 kpps".
        assert_eq!(pps(999_999.0), "1.00 Mpps");
        assert_eq!(pps(99_999.0), "100 kpps");
    }

    #[test]
    fn rate_follows_the_unit_toggle() {
        assert_eq!(rate(8_000.0, RateUnit::Bits), "8.00 kbit/s");
        assert_eq!(rate(8_000.0, RateUnit::Bytes), "1.00 kB/s");
        assert_eq!(RateUnit::Bits.toggle(), RateUnit::Bytes);
        assert_eq!(RateUnit::Bytes.toggle().heading(), "bit/s");
    }

    #[test]
    fn sizes_percentages_and_spans() {
        assert_eq!(avg_size(15_140, 10), "1514 B");
        assert_eq!(avg_size(10, 0), "-");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "-");
        assert_eq!(share(1.0, 8.0), "12.5%");
        assert_eq!(share(9.0, 8.0), "100.0%");
        assert_eq!(share(1.0, 0.0), "-");
        assert_eq!(share(f64::NAN, 8.0), "-");
        assert_eq!(span(45.0), "45s");
        assert_eq!(span(150.0), "2m30s");
        assert_eq!(span(600.0), "10m");
        assert_eq!(span(3_900.0), "1h05m");
    }
}
