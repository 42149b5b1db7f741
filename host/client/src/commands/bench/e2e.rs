//! `strom bench e2e`: end-to-end latency at a fixed produce rate.
//!
//! One producer writes at `--rate` records/s, a batch every millisecond or so (acks=1,
//! requests pipelined on its own connection); one consumer on another connection long-polls
//! (max wait 500 ms, min bytes 1) from the offsets the topic had at the start. Each value starts
//! with the time the record was created (ns since the run began, big-endian), so a record's
//! latency is the time its consumer decoded it minus that time. Both ends live in this process
//! and share one monotonic clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use serde_json::json;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::MissedTickBehavior;

use super::ensure_topic;
use super::report::{per_sec, print_json, print_line, random_bytes, round3, Latencies};
use crate::client::Client;
use crate::commands::ConnectionArgs;
use crate::connection::PendingResponse;
use crate::consumer::{Consumer, FetchOptions, OffsetSpec};
use crate::metadata::TopicInfo;
use crate::producer::{check_produce_response, encode_batch, now_ms, produce_request, CompressionType, ProducerRecord};

/// Produce requests allowed in flight before the producer waits (only reached if the broker
/// cannot keep up with the rate).
const MAX_IN_FLIGHT: usize = 64;

/// How long the consumer may go without a record before the run fails.
const CONSUMER_STALL: Duration = Duration::from_secs(30);

/// `strom bench e2e`: end-to-end latency.
#[derive(Debug, clap::Args)]
pub struct E2eBench {
    /// The topic to use (created with `--partitions` partitions if missing).
    #[arg(long)]
    pub topic: String,
    /// How many records to send and receive.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Records per second to produce.
    #[arg(long, default_value_t = 50_000.0)]
    pub rate: f64,
    /// Bytes per record value (at least 8: the creation time).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(8..))]
    pub record_size: u64,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
}

impl E2eBench {
    pub(super) async fn run(self, connection: &ConnectionArgs) -> Result<()> {
        if self.rate <= 0.0 {
            bail!("--rate must be positive");
        }
        // Separate clients, so that produce requests never queue behind a long-polling fetch.
        let producer = connection.connect().await?;
        let consumer_client = Arc::new(connection.connect().await?);
        let topic = ensure_topic(&producer, &self.topic, self.partitions).await?;
        let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
        let start_offsets = consumer_client
            .list_offsets(&topic, &partitions, OffsetSpec::Latest)
            .await?;

        let base = Instant::now();
        let consumer = tokio::spawn(consume(
            consumer_client.clone(),
            topic.clone(),
            start_offsets,
            self.records,
            base,
        ));
        let produced = produce(&producer, &topic, &self, base).await;
        let produce_elapsed = base.elapsed();
        if let Err(e) = produced {
            consumer.abort();
            return Err(e.context("producer failed"));
        }
        let latencies = consumer.await.context("the consumer task panicked")??;

        let actual_rate = per_sec(self.records as f64, produce_elapsed);
        let (p50, p99, p999) = (
            latencies.quantile_ms(0.50),
            latencies.quantile_ms(0.99),
            latencies.quantile_ms(0.999),
        );
        print_line(&format!(
            "{} records at {actual_rate:.1} records/sec (target {:.1}): end-to-end latency \
             {p50:.3} ms 50th, {p99:.3} ms 99th, {p999:.3} ms 99.9th, {:.3} ms max, {:.3} ms avg.",
            latencies.count(),
            self.rate,
            latencies.max_ms(),
            latencies.mean_ms()
        ));
        print_json(json!({
            "bench": "e2e",
            "topic": self.topic,
            "records": latencies.count(),
            "record_size": self.record_size,
            "rate": self.rate,
            "actual_rate": round3(actual_rate),
            "avg_ms": round3(latencies.mean_ms()),
            "p50_ms": round3(p50),
            "p99_ms": round3(p99),
            "p999_ms": round3(p999),
            "max_ms": round3(latencies.max_ms()),
        }));
        Ok(())
    }
}

/// Produces `bench.records` records at `bench.rate`, one batch per millisecond tick, and
/// waits for every acknowledgement.
async fn produce(client: &Client, topic: &TopicInfo, bench: &E2eBench, base: Instant) -> Result<()> {
    let pad_len = bench.record_size as usize - 8;
    let pool = Bytes::from(random_bytes((1 << 20) + pad_len, 0xe2e));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (tx, mut rx) = mpsc::unbounded_channel::<(PendingResponse<ProduceResponse>, OwnedSemaphorePermit)>();
    let acker = tokio::spawn(async move {
        while let Some((pending, _slot)) = rx.recv().await {
            check_produce_response(&pending.wait().await?)?;
        }
        anyhow::Ok(())
    });

    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sent = 0u64;
    let mut batch_no = 0usize;
    let result: Result<()> = async {
        while sent < bench.records {
            ticks.tick().await;
            let due = ((bench.rate * base.elapsed().as_secs_f64()) as u64).min(bench.records);
            if due <= sent {
                continue;
            }
            let count = (due - sent) as usize;
            let created = base.elapsed().as_nanos() as u64;
            let timestamp = now_ms();
            let records: Vec<ProducerRecord> = (0..count)
                .map(|i| {
                    let at = ((sent as usize + i) * 7919) % (pool.len() - pad_len);
                    let mut value = BytesMut::with_capacity(8 + pad_len);
                    value.put_u64(created);
                    value.put_slice(&pool[at..at + pad_len]);
                    ProducerRecord {
                        key: None,
                        value: Some(value.freeze()),
                        headers: Vec::new(),
                        timestamp,
                    }
                })
                .collect();
            let p = &topic.partitions[batch_no % topic.partitions.len()];
            batch_no += 1;
            let batch = encode_batch(&records, CompressionType::None)?;
            let conn = client.broker(p.leader).await?;
            let request = produce_request(&topic.name, vec![(p.partition, batch)], 1);
            let slot = slots.clone().acquire_owned().await.expect("semaphore is never closed");
            let pending = conn.submit(&request, conn.version::<ProduceRequest>()?).await?;
            if tx.send((pending, slot)).is_err() {
                break; // the acknowledgement task failed; its error is reported below
            }
            sent += count as u64;
        }
        Ok(())
    }
    .await;
    drop(tx);
    acker.await.context("the acknowledgement task panicked")??;
    result
}

/// Reads `count` records from `positions` and records each one's end-to-end latency.
async fn consume(
    client: Arc<Client>,
    topic: TopicInfo,
    positions: BTreeMap<i32, i64>,
    count: u64,
    base: Instant,
) -> Result<Latencies> {
    let options = FetchOptions {
        max_wait_ms: 500,
        min_bytes: 1,
        ..FetchOptions::default()
    };
    let mut consumer = Consumer::new(&client, topic, positions, options);
    let mut latencies = Latencies::new();
    let mut received = 0u64;
    let mut last_record = Instant::now();
    while received < count {
        let records = consumer.poll().await?;
        let now = base.elapsed().as_nanos() as u64;
        if records.is_empty() {
            if last_record.elapsed() > CONSUMER_STALL {
                bail!(
                    "received {received} of {count} records, then nothing for {} s",
                    CONSUMER_STALL.as_secs()
                );
            }
            continue;
        }
        last_record = Instant::now();
        for record in records.iter().take((count - received) as usize) {
            let value = record.value.as_deref().unwrap_or_default();
            let Some(created) = value.get(..8) else {
                bail!(
                    "record at offset {} of partition {} has no creation time: was the topic written by another producer?",
                    record.offset,
                    record.partition
                );
            };
            let created = u64::from_be_bytes(created.try_into().expect("8 bytes"));
            latencies.record(Duration::from_nanos(now.saturating_sub(created)), 1);
            received += 1;
        }
    }
    Ok(latencies)
}
