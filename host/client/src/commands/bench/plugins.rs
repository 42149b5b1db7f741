//! `strom bench plugins`: the cost of plugins on the produce path. The same producer run
//! against topics that differ only in what they attach: nothing, a Rust partitioner in
//! route mode, one Rust interceptor, and (if its component exists) a Python partitioner.
//! Besides throughput it reports the broker's CPU time per record (from its
//! `process_cpu_seconds_total` metric), which a shared machine disturbs far less.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use super::produce::ProduceBench;
use super::report::{print_json, print_line, round3};
use crate::admin_api::{AdminApi, BrokerCosts, PluginRef};
use crate::commands::{AdminArgs, ConnectionArgs};
use crate::producer::CompressionType;

/// `strom bench plugins`: produce throughput with and without plugins, side by side.
#[derive(Debug, clap::Args)]
pub struct PluginsBench {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Records per case in each round.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Rounds over all cases; each case reports its median round.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Bytes per record key: records carry distinct keys that Kafka's default partitioner
    /// maps to the partition they are sent to, so a murmur2 partitioner in route mode
    /// moves nothing, as with any keyed producer using the default partitioner.
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Records per round for the Python partitioner, which is about a hundred times slower.
    #[arg(long, default_value_t = 50_000)]
    pub python_records: u64,
    /// The most bytes per record batch.
    #[arg(long, default_value_t = 16384)]
    pub batch_bytes: usize,
    /// The Rust partitioner component.
    #[arg(long, default_value = "target/plugins/murmur2_partitioner.wasm")]
    pub rust_partitioner: PathBuf,
    /// The Rust interceptor component.
    #[arg(long, default_value = "target/plugins/header_stamp.wasm")]
    pub rust_interceptor: PathBuf,
    /// The Python partitioner component (skipped if the file does not exist).
    #[arg(long, default_value = "target/examples/python_partitioner.wasm")]
    pub python_partitioner: PathBuf,
}

impl PluginsBench {
    pub(super) async fn run(self, connection: &ConnectionArgs) -> Result<()> {
        let api = AdminApi::new(&self.admin.admin_url)?;
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut cases: Vec<Case> = vec![("no plugin", Vec::new(), self.records)];
        let partitioner = upload(&api, "bench-murmur2", &self.rust_partitioner).await?;
        cases.push((
            "Rust partitioner (route)",
            vec![("partitioner".into(), partitioner)],
            self.records,
        ));
        let interceptor = upload(&api, "bench-stamp", &self.rust_interceptor).await?;
        cases.push((
            "one Rust interceptor",
            vec![("interceptors.produce".into(), interceptor)],
            self.records,
        ));
        if self.python_partitioner.exists() {
            let python = upload(&api, "bench-python-murmur2", &self.python_partitioner).await?;
            // A Python call takes milliseconds for a 16 KiB batch, and more on a busy machine:
            // a generous time budget keeps the benchmark about throughput. (Its heap grows
            // over thousands of calls; the runtime replaces an instance that has used half
            // its room, so the default limit serves.)
            cases.push((
                "Python partitioner (route)",
                vec![
                    ("partitioner".into(), python),
                    ("plugins.call.ms.max".into(), "2000".into()),
                ],
                self.python_records,
            ));
        } else {
            eprintln!(
                "Skipping the Python partitioner: {} does not exist (build examples/ first).",
                self.python_partitioner.display()
            );
        }

        let client = connection.connect().await?;
        // Rounds interleave the cases, so a slow spell of a shared machine hits every case
        // alike; each case reports its median round.
        let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
        for round in 0..self.rounds.max(1) {
            for (i, (label, configs, records)) in cases.iter().enumerate() {
                let topic = format!("bench-plugins-{run_id}-{round}-{i}");
                client
                    .create_topic(&topic, self.partitions, -1, configs)
                    .await
                    .with_context(|| format!("creating {topic}"))?;
                let bench = ProduceBench {
                    topic,
                    records: *records,
                    record_size: self.record_size,
                    key_size: self.key_size,
                    acks: 1,
                    partitions: self.partitions,
                    batch_bytes: self.batch_bytes,
                    in_flight: 5,
                    compression: CompressionType::default(),
                    throughput: None,
                };
                // The broker's cost counters are optional: an older broker has none.
                let before = api.broker_costs().await.ok();
                let result = bench
                    .measure(connection)
                    .await
                    .with_context(|| format!("benchmark with {label}"))?;
                let after = api.broker_costs().await.ok();
                let per_record = |cost: fn(&BrokerCosts) -> f64| match (&before, &after) {
                    (Some(before), Some(after)) if result.acked > 0 => {
                        Some((cost(after) - cost(before)) * 1e6 / result.acked as f64)
                    }
                    _ => None,
                };
                samples[i].push(Sample {
                    records_per_sec: result.records_per_sec,
                    mb_per_sec: result.mb_per_sec,
                    p99_ms: result.latencies.quantile_ms(0.99),
                    broker_us_per_record: per_record(|c| c.cpu_seconds),
                    plugin_us_per_record: per_record(|c| c.plugin_call_seconds),
                });
            }
        }
        let rows: Vec<(&str, Sample)> = cases
            .iter()
            .zip(&samples)
            .map(|((label, _, _), s)| (*label, Sample::median(s)))
            .collect();
        let base = rows[0].1.clone();
        let cpu_ratio = |s: &Sample| match (s.broker_us_per_record, base.broker_us_per_record) {
            (Some(us), Some(base_us)) if base_us > 0.0 => Some(us / base_us),
            _ => None,
        };
        print_line(&format!(
            "median of {} rounds of {} records per case ({} for Python), {}-byte keys, {}-byte values, {} partitions",
            self.rounds.max(1),
            self.records,
            self.python_records,
            self.key_size,
            self.record_size,
            self.partitions
        ));
        for (label, s) in &rows {
            let mut cpu = match (s.broker_us_per_record, cpu_ratio(s)) {
                (Some(us), Some(ratio)) => format!("  broker CPU {us:>6.3} µs/record ({ratio:.2}x)"),
                _ => String::new(),
            };
            if let Some(us) = s.plugin_us_per_record.filter(|&us| us > 0.0) {
                cpu.push_str(&format!(", {us:.3} of it in plugin calls"));
            }
            print_line(&format!(
                "{label:<28} {:>12.0} records/sec {:>8.2} MB/sec  p99 {:>7.2} ms  {:>6.1}% of no plugin{cpu}",
                s.records_per_sec,
                s.mb_per_sec,
                s.p99_ms,
                100.0 * s.records_per_sec / base.records_per_sec
            ));
        }
        print_json(json!({
            "bench": "plugins",
            "records": self.records,
            "rounds": self.rounds.max(1),
            "record_size": self.record_size,
            "key_size": self.key_size,
            "partitions": self.partitions,
            "results": rows.iter().map(|(label, s)| json!({
                "case": label,
                "records_per_sec": round3(s.records_per_sec),
                "mb_per_sec": round3(s.mb_per_sec),
                "p99_ms": round3(s.p99_ms),
                "ratio_to_no_plugin": round3(s.records_per_sec / base.records_per_sec),
                "broker_cpu_us_per_record": s.broker_us_per_record.map(round3),
                "broker_cpu_ratio_to_no_plugin": cpu_ratio(s).map(round3),
                "plugin_call_us_per_record": s.plugin_us_per_record.map(round3),
            })).collect::<Vec<_>>(),
        }));
        Ok(())
    }
}

/// One benchmark case: its label, the topic configs that attach its plugin, and the
/// records it produces per round.
type Case = (&'static str, Vec<(String, String)>, u64);

/// One case's measurements in one round.
#[derive(Debug, Clone)]
struct Sample {
    records_per_sec: f64,
    mb_per_sec: f64,
    p99_ms: f64,
    broker_us_per_record: Option<f64>,
    /// Wall-clock time in plugin calls: a call waits on nothing, so while a core is free
    /// this is about the CPU time it took.
    plugin_us_per_record: Option<f64>,
}

impl Sample {
    /// Each figure's median over the rounds (the upper median for an even count).
    fn median(samples: &[Sample]) -> Sample {
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(0.0)
        };
        let all = |figure: fn(&Sample) -> Option<f64>| {
            let values: Vec<f64> = samples.iter().filter_map(figure).collect();
            (values.len() == samples.len() && !values.is_empty()).then(|| median(values))
        };
        Sample {
            records_per_sec: median(samples.iter().map(|s| s.records_per_sec).collect()),
            mb_per_sec: median(samples.iter().map(|s| s.mb_per_sec).collect()),
            p99_ms: median(samples.iter().map(|s| s.p99_ms).collect()),
            broker_us_per_record: all(|s| s.broker_us_per_record),
            plugin_us_per_record: all(|s| s.plugin_us_per_record),
        }
    }
}

/// Uploads a component as `name@<first 12 hex digits of its hash>` (idempotent) and returns
/// that reference.
async fn upload(api: &AdminApi, name: &str, path: &PathBuf) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let version = strom_plugins::content_hash(&bytes)[..12].to_string();
    let reference = format!("{name}@{version}");
    let plugin = PluginRef::parse(&reference).map_err(anyhow::Error::msg)?;
    api.upload_plugin(&plugin, bytes)
        .await
        .with_context(|| format!("uploading {}", path.display()))?;
    Ok(reference)
}
