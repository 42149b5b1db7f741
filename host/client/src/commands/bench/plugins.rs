//! `strom bench plugins`: the cost of plugins on the produce path. The same producer run
//! against topics that differ only in what they attach: nothing, a Rust partitioner in
//! route mode, one Rust interceptor, and (if its component exists) a Python partitioner.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use super::produce::ProduceBench;
use super::report::{print_json, print_line, round3};
use crate::admin_api::{AdminApi, PluginRef};
use crate::commands::{AdminArgs, ConnectionArgs};
use crate::producer::CompressionType;

/// `strom bench plugins`: produce throughput with and without plugins, side by side.
#[derive(Debug, clap::Args)]
pub struct PluginsBench {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Records per run.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
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
        let mut cases: Vec<(&str, Vec<(String, String)>)> = vec![("no plugin", Vec::new())];
        let partitioner = upload(&api, "bench-murmur2", &self.rust_partitioner).await?;
        cases.push(("Rust partitioner (route)", vec![("partitioner".into(), partitioner)]));
        let interceptor = upload(&api, "bench-stamp", &self.rust_interceptor).await?;
        cases.push((
            "one Rust interceptor",
            vec![("interceptors.produce".into(), interceptor)],
        ));
        if self.python_partitioner.exists() {
            let python = upload(&api, "bench-python-murmur2", &self.python_partitioner).await?;
            // A Python call takes milliseconds for a 16 KiB batch, and more on a busy machine,
            // and the interpreter's heap grows over thousands of calls: generous limits keep
            // the benchmark about throughput, not the limits.
            cases.push((
                "Python partitioner (route)",
                vec![
                    ("partitioner".into(), python),
                    ("plugins.call.ms.max".into(), "2000".into()),
                    ("plugins.memory.bytes.max".into(), "536870912".into()),
                ],
            ));
        } else {
            eprintln!(
                "Skipping the Python partitioner: {} does not exist (build examples/ first).",
                self.python_partitioner.display()
            );
        }

        let client = connection.connect().await?;
        let mut rows = Vec::new();
        for (i, (label, configs)) in cases.iter().enumerate() {
            let topic = format!("bench-plugins-{run_id}-{i}");
            client
                .create_topic(&topic, self.partitions, -1, configs)
                .await
                .with_context(|| format!("creating {topic}"))?;
            let bench = ProduceBench {
                topic,
                records: self.records,
                record_size: self.record_size,
                acks: 1,
                partitions: self.partitions,
                batch_bytes: self.batch_bytes,
                in_flight: 5,
                compression: CompressionType::default(),
                throughput: None,
            };
            let result = bench
                .measure(connection)
                .await
                .with_context(|| format!("benchmark with {label}"))?;
            rows.push((
                *label,
                result.records_per_sec,
                result.mb_per_sec,
                result.latencies.quantile_ms(0.99),
            ));
        }
        let base = rows[0].1;
        for (label, rps, mbps, p99) in &rows {
            print_line(&format!(
                "{label:<28} {rps:>12.0} records/sec {mbps:>8.2} MB/sec  p99 {p99:>7.2} ms  {:>6.1}% of no plugin",
                100.0 * rps / base
            ));
        }
        print_json(json!({
            "bench": "plugins",
            "records": self.records,
            "record_size": self.record_size,
            "partitions": self.partitions,
            "results": rows.iter().map(|(label, rps, mbps, p99)| json!({
                "case": label,
                "records_per_sec": round3(*rps),
                "mb_per_sec": round3(*mbps),
                "p99_ms": round3(*p99),
                "ratio_to_no_plugin": round3(rps / base),
            })).collect::<Vec<_>>(),
        }));
        Ok(())
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
