//! What every benchmark reports: latency percentiles, rates, and the final JSON line.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Bytes per "MB" in reported rates: MiB, as Kafka's perf-test tools compute `MB/sec`.
pub(super) const MB: f64 = 1024.0 * 1024.0;

/// A latency histogram in microseconds, 1 µs to 1 hour at 3 significant digits.
#[derive(Debug, Clone)]
pub(super) struct Latencies(Histogram<u64>);

impl Latencies {
    pub(super) fn new() -> Latencies {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }

    /// Records `count` samples of `latency`.
    pub(super) fn record(&mut self, latency: Duration, count: u64) {
        let micros = (latency.as_micros() as u64).max(1);
        self.0.saturating_record_n(micros, count);
    }

    pub(super) fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("histograms with the same bounds");
    }

    pub(super) fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0..=1) in milliseconds.
    pub(super) fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub(super) fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    pub(super) fn mean_ms(&self) -> f64 {
        self.0.mean() / 1000.0
    }
}

/// Rounds to 3 decimals so the JSON line stays readable.
pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `count / elapsed`, 0 for an empty interval.
pub(super) fn per_sec(count: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count / secs
    } else {
        0.0
    }
}

/// Prints a line to standard output; a closed pipe (`| head -1`) is not an error.
pub(super) fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

/// Prints the machine-readable result as the last line of standard output.
pub(super) fn print_json(value: serde_json::Value) {
    print_line(&value.to_string());
}

/// Fast, non-cryptographic random bytes (xorshift64*): incompressible payloads for benchmarks
/// without pulling in a random number crate.
pub(super) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    // Spread the seed over all bits; xorshift needs a non-zero state.
    let mut state = (seed.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut l = Latencies::new();
        l.record(Duration::from_millis(1), 99);
        l.record(Duration::from_millis(100), 1);
        assert_eq!(l.count(), 100);
        assert!((l.quantile_ms(0.5) - 1.0).abs() < 0.01);
        assert!((l.max_ms() - 100.0).abs() < 0.1);
        let mut m = Latencies::new();
        m.merge(&l);
        assert_eq!(m.count(), 100);
    }

    #[test]
    fn random_bytes_do_not_compress() {
        let bytes = random_bytes(1 << 16, 42);
        assert_eq!(bytes.len(), 1 << 16);
        assert!(bytes != random_bytes(1 << 16, 43), "seeds give different bytes");
        // Every byte value shows up about equally often.
        let mut counts = [0u32; 256];
        for b in &bytes {
            counts[*b as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 128 && c < 384), "{counts:?}");
    }
}
