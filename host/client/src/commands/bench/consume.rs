//! `strom bench consume`: the equivalent of `kafka-consumer-perf-test`.
//!
//! Reads every partition from its earliest offset until `--records` records (default: all the
//! topic holds when the run starts) have been fetched and decoded. Fetching and decoding
//! overlap: the fetch loop sends the next Fetch as soon as a response is in (positions come
//! from batch headers), while a separate task decodes the previous one, as a Kafka consumer's
//! prefetching does. A record counts once it is decoded (CRC checked).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::sync::mpsc;

use super::report::{per_sec, print_json, print_line, round3, MB};
use crate::commands::ConnectionArgs;
use crate::consumer::{Consumer, FetchOptions, FetchedPartition, OffsetSpec};

/// `strom bench consume`: consumer throughput.
#[derive(Debug, clap::Args)]
pub struct ConsumeBench {
    /// The topic to read.
    #[arg(long)]
    pub topic: String,
    /// How many records to read (default: every record in the topic when the run starts).
    #[arg(long)]
    pub records: Option<u64>,
    /// The most bytes per fetch response (`fetch.max.bytes`).
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// The most bytes per partition in a fetch (`max.partition.fetch.bytes`).
    #[arg(long, default_value_t = 1_048_576)]
    pub partition_max_bytes: i32,
    /// Fail after this many ms without a new record.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// What the decoding task counted.
struct Counted {
    records: u64,
    bytes: u64,
    done_at: Option<Instant>,
}

impl ConsumeBench {
    pub(super) async fn run(self, connection: &ConnectionArgs) -> Result<()> {
        let client = connection.connect().await?;
        let topic = client.topic_metadata(&self.topic, false).await?;
        let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
        let earliest = client.list_offsets(&topic, &partitions, OffsetSpec::Earliest).await?;
        let target = match self.records {
            Some(n) => n,
            None => {
                let latest = client.list_offsets(&topic, &partitions, OffsetSpec::Latest).await?;
                latest.iter().map(|(p, end)| (end - earliest[p]).max(0) as u64).sum()
            }
        };
        if target == 0 {
            bail!(
                "topic '{}' is empty; fill it first, e.g. with strom bench produce --topic {}",
                self.topic,
                self.topic
            );
        }

        let options = FetchOptions {
            max_bytes: self.fetch_max_bytes,
            partition_max_bytes: self.partition_max_bytes,
            ..FetchOptions::default()
        };
        let mut consumer = Consumer::new(&client, topic, earliest, options);
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Vec<FetchedPartition>>(2);
        let decoder = tokio::spawn(decode(rx, target, done.clone()));

        let start = Instant::now();
        let stall = Duration::from_millis(self.timeout_ms);
        let mut last_progress = start;
        let mut fetches = 0u64;
        let fetch_result: Result<()> = async {
            while !done.load(Ordering::Relaxed) {
                let fetched = consumer.poll_raw().await?;
                fetches += 1;
                if fetched.iter().any(|p| !p.batches.is_empty()) {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= stall {
                    bail!("no new record for {} ms", self.timeout_ms);
                }
                if tx.send(fetched).await.is_err() {
                    break; // the decoder has what it needs (or failed)
                }
            }
            Ok(())
        }
        .await;
        drop(tx);
        let counted = decoder.await.context("the decoding task panicked")??;
        let Some(done_at) = counted.done_at else {
            fetch_result?;
            bail!("only {} of {target} records were read", counted.records);
        };

        let elapsed = done_at - start;
        let records_per_sec = per_sec(counted.records as f64, elapsed);
        let mb_per_sec = per_sec(counted.bytes as f64 / MB, elapsed);
        print_line(&format!(
            "Consumed {} records ({:.2} MB) in {:.3} s: {records_per_sec:.1} records/sec, \
             {mb_per_sec:.2} MB/sec, {fetches} fetches.",
            counted.records,
            counted.bytes as f64 / MB,
            elapsed.as_secs_f64()
        ));
        print_json(json!({
            "bench": "consume",
            "topic": self.topic,
            "records": counted.records,
            "bytes": counted.bytes,
            "fetches": fetches,
            "elapsed_s": round3(elapsed.as_secs_f64()),
            "records_per_sec": round3(records_per_sec),
            "mb_per_sec": round3(mb_per_sec),
        }));
        Ok(())
    }
}

/// Decodes fetched partitions, counting records and key + value bytes up to `target`.
async fn decode(mut rx: mpsc::Receiver<Vec<FetchedPartition>>, target: u64, done: Arc<AtomicBool>) -> Result<Counted> {
    let mut counted = Counted {
        records: 0,
        bytes: 0,
        done_at: None,
    };
    while let Some(fetched) = rx.recv().await {
        for partition in &fetched {
            for record in partition.records()? {
                counted.records += 1;
                counted.bytes += record.key.as_ref().map_or(0, |k| k.len() as u64)
                    + record.value.as_ref().map_or(0, |v| v.len() as u64);
                if counted.records == target {
                    counted.done_at = Some(Instant::now());
                    done.store(true, Ordering::Relaxed);
                    return Ok(counted);
                }
            }
        }
    }
    Ok(counted)
}
