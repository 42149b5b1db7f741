//! `strom bench produce`: the equivalent of `kafka-producer-perf-test`.
//!
//! Records are split evenly over the topic's partitions. Each partition leader gets its own
//! connection, a sender task and an acknowledgement task: the sender builds a request holding
//! one batch (up to `--batch-bytes`) for each of the leader's partitions and writes it as soon
//! as one of `--in-flight` slots is free; the acknowledgement task awaits responses in order,
//! checks every partition's error code and records, for every record of a batch, the time
//! from the batch's creation to its acknowledgement.
//!
//! Batches are encoded once per record count with `RecordBatchEncoder` and re-stamped for each
//! send (timestamps and CRC), so the benchmark spends its CPU on the wire rather than on
//! re-encoding identical records — the broker sees ordinary, valid batches either way. Values
//! are random (incompressible) bytes, different for every record of a batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ProduceRequest;
use serde_json::json;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::ensure_topic;
use super::report::{per_sec, print_json, print_line, random_bytes, round3, Latencies, MB};
use crate::commands::{parse_acks, ConnectionArgs};
use crate::connection::{Connection, PendingResponse};
use crate::producer::{check_produce_response, encode_batch, now_ms, produce_request, CompressionType, ProducerRecord};

/// Size of a record batch header (magic 2).
const BATCH_HEADER: usize = 61;
/// Per-record framing in a batch for a small record without key or headers: length, attributes,
/// timestamp delta, offset delta, key length, value length, header count.
const RECORD_OVERHEAD: usize = 10;

/// `strom bench produce`: producer throughput and latency.
#[derive(Debug, clap::Args)]
pub struct ProduceBench {
    /// The topic to write to.
    #[arg(long)]
    pub topic: String,
    /// How many records to produce.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Bytes per record key (0: records have no key). Keys are distinct within a batch and
    /// chosen so that Kafka's default partitioner (murmur2) maps each record to the
    /// partition it is sent to, as a keyed producer's records would be.
    #[arg(long, default_value_t = 0)]
    pub key_size: usize,
    /// Acknowledgements: -1 all in-sync replicas, 1 the leader, 0 none.
    #[arg(long, default_value = "1", allow_negative_numbers = true, value_parser = parse_acks)]
    pub acks: i16,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// The most bytes per record batch (like the producer's `batch.size`).
    #[arg(long, default_value_t = 16384)]
    pub batch_bytes: usize,
    /// Requests in flight per broker connection.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value_t)]
    pub compression: CompressionType,
    /// Cap the rate at this many records/s, to measure latency below saturation
    /// (default: as fast as possible).
    #[arg(long, value_name = "RECORDS_PER_SEC")]
    pub throughput: Option<f64>,
}

/// A pre-encoded batch of `records` records, re-stamped for each send.
struct BatchTemplate {
    bytes: Bytes,
}

// Offsets in a magic-2 batch header.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
const FIRST_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;

impl BatchTemplate {
    /// Encodes `records` records whose values are distinct slices of `pool`, keyed by
    /// `keys` in order (no keys: records without one).
    fn new(
        records: usize,
        record_size: usize,
        pool: &Bytes,
        keys: &[Bytes],
        compression: CompressionType,
    ) -> Result<BatchTemplate> {
        let span = pool.len() - record_size;
        let batch: Vec<ProducerRecord> = (0..records)
            .map(|i| {
                // Step through the pool by a prime so that values differ and do not align.
                let at = (i * 7919) % span.max(1);
                ProducerRecord {
                    key: keys.get(i).cloned(),
                    value: Some(pool.slice(at..at + record_size)),
                    headers: Vec::new(),
                    timestamp: 0,
                }
            })
            .collect();
        Ok(BatchTemplate {
            bytes: encode_batch(&batch, compression)?,
        })
    }

    /// A copy with every record's timestamp set to `timestamp` and a fresh CRC. All records
    /// have timestamp delta 0, so the batch's first and max timestamps are the only ones.
    fn stamp(&self, timestamp: i64) -> Bytes {
        let mut b = BytesMut::from(&self.bytes[..]);
        b[FIRST_TIMESTAMP_AT..FIRST_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &b[CRC_FROM..]) as u32;
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }
}

/// Batches of every size and partition one sender needs, built on first use.
struct Templates {
    per_batch: usize,
    record_size: usize,
    key_size: usize,
    partition_count: i32,
    pool: Bytes,
    compression: CompressionType,
    by_count: HashMap<(i32, usize), BatchTemplate>,
}

impl Templates {
    fn get(&mut self, partition: i32, count: usize) -> Result<&BatchTemplate> {
        // Keyless batches are the same for every partition.
        let at = (if self.key_size == 0 { 0 } else { partition }, count);
        if !self.by_count.contains_key(&at) {
            let keys = keys_for(partition, self.partition_count, self.key_size, count);
            let t = BatchTemplate::new(count, self.record_size, &self.pool, &keys, self.compression)?;
            self.by_count.insert(at, t);
        }
        Ok(&self.by_count[&at])
    }
}

/// `count` distinct keys of `key_size` bytes that Kafka's default partitioner maps to
/// `partition` (none if `key_size` is 0).
fn keys_for(partition: i32, partition_count: i32, key_size: usize, count: usize) -> Vec<Bytes> {
    if key_size == 0 {
        return Vec::new();
    }
    (0u64..)
        .map(|seed| random_bytes(key_size, seed))
        .filter(|key| crate::partitioner::partition_for_key(key, partition_count) == partition)
        .take(count)
        .map(Bytes::from)
        .collect()
}

/// A request on the wire, waiting for its acknowledgement.
struct InFlight {
    pending: PendingResponse<kafka_protocol::messages::ProduceResponse>,
    created: Instant,
    records: u64,
    batches: usize,
    _slot: OwnedSemaphorePermit,
}

/// What one leader's sender achieved.
struct SenderResult {
    latencies: Latencies,
    acked: u64,
    last_ack: Instant,
}

/// The work of one sender: a leader connection and the partitions it leads.
struct SenderPlan {
    conn: Arc<Connection>,
    topic: String,
    /// (partition, records still to send)
    partitions: Vec<(i32, u64)>,
    templates: Templates,
    acks: i16,
    in_flight: usize,
    /// Records per second for this sender, if capped.
    rate: Option<f64>,
    progress: Arc<AtomicU64>,
}

/// What one produce run measured.
pub(super) struct ProduceResult {
    pub acked: u64,
    pub elapsed: std::time::Duration,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub latencies: Latencies,
    pub partitions: u64,
    pub per_batch: usize,
}

impl ProduceBench {
    pub(super) async fn run(self, connection: &ConnectionArgs) -> Result<()> {
        let result = self.measure(connection).await?;
        self.report(result);
        Ok(())
    }

    /// Runs the benchmark and returns what it measured, printing only progress.
    pub(super) async fn measure(&self, connection: &ConnectionArgs) -> Result<ProduceResult> {
        if self.record_size == 0 {
            bail!("--record-size must be at least 1");
        }
        if self.throughput.is_some_and(|t| t <= 0.0) {
            bail!("--throughput must be positive");
        }
        let client = connection.connect().await?;
        let topic = ensure_topic(&client, &self.topic, self.partitions).await?;
        let per_batch = (self.batch_bytes.saturating_sub(BATCH_HEADER)
            / (self.record_size + self.key_size + RECORD_OVERHEAD))
            .max(1);
        // Random values: records of one batch take different slices of this pool.
        let pool_len = (1 << 20).max(per_batch * (self.record_size + 1) * 2) + self.record_size;
        let pool = Bytes::from(random_bytes(pool_len, 0x5eed));

        // Split records evenly over partitions, then group partitions by leader.
        let partition_count = topic.partitions.len() as u64;
        let mut by_leader: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
        for (i, p) in topic.partitions.iter().enumerate() {
            let share = self.records / partition_count + u64::from((i as u64) < self.records % partition_count);
            if share > 0 {
                by_leader.entry(p.leader).or_default().push((p.partition, share));
            }
        }
        let progress = Arc::new(AtomicU64::new(0));
        let mut plans = Vec::new();
        for (leader, partitions) in by_leader {
            let share: u64 = partitions.iter().map(|(_, n)| n).sum();
            plans.push(SenderPlan {
                conn: client.dedicated_connection(leader).await?,
                topic: self.topic.clone(),
                partitions,
                templates: Templates {
                    per_batch,
                    record_size: self.record_size,
                    key_size: self.key_size,
                    partition_count: partition_count as i32,
                    pool: pool.clone(),
                    compression: self.compression,
                    by_count: HashMap::new(),
                },
                acks: self.acks,
                in_flight: self.in_flight as usize,
                rate: self.throughput.map(|t| t * share as f64 / self.records.max(1) as f64),
                progress: progress.clone(),
            });
        }

        let start = Instant::now();
        let reporter = tokio::spawn(report_progress(progress.clone(), start, self.record_size));
        let senders: Vec<_> = plans.into_iter().map(|plan| tokio::spawn(plan.run(start))).collect();
        let mut latencies = Latencies::new();
        let mut acked = 0;
        let mut end = start;
        let mut failure = None;
        for sender in senders {
            match sender.await.context("a sender task panicked")? {
                Ok(r) => {
                    latencies.merge(&r.latencies);
                    acked += r.acked;
                    end = end.max(r.last_ack);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        reporter.abort();
        if let Some(e) = failure {
            return Err(e.context("produce benchmark failed"));
        }
        if acked != self.records {
            bail!("only {acked} of {} records were acknowledged", self.records);
        }

        let elapsed = end - start;
        let records_per_sec = per_sec(acked as f64, elapsed);
        let mb_per_sec = per_sec(acked as f64 * self.record_size as f64 / MB, elapsed);
        Ok(ProduceResult {
            acked,
            elapsed,
            records_per_sec,
            mb_per_sec,
            latencies,
            partitions: partition_count,
            per_batch,
        })
    }

    fn report(&self, result: ProduceResult) {
        let ProduceResult {
            acked,
            elapsed,
            records_per_sec,
            mb_per_sec,
            latencies,
            partitions: partition_count,
            per_batch,
        } = result;
        let (p50, p99, p999) = (
            latencies.quantile_ms(0.50),
            latencies.quantile_ms(0.99),
            latencies.quantile_ms(0.999),
        );
        let what = if self.acks == 0 {
            "sent (acks=0: unacknowledged)"
        } else {
            "acknowledged"
        };
        print_line(&format!(
            "{acked} records {what}, {records_per_sec:.1} records/sec ({mb_per_sec:.2} MB/sec), \
             {:.2} ms avg latency, {:.2} ms max latency, {p50:.2} ms 50th, {p99:.2} ms 99th, \
             {p999:.2} ms 99.9th.",
            latencies.mean_ms(),
            latencies.max_ms(),
        ));
        print_json(json!({
            "bench": "produce",
            "topic": self.topic,
            "records": acked,
            "record_size": self.record_size,
            "key_size": self.key_size,
            "acks": self.acks,
            "partitions": partition_count,
            "batch_bytes": self.batch_bytes,
            "records_per_batch": per_batch,
            "in_flight": self.in_flight,
            "compression": format!("{:?}", self.compression).to_lowercase(),
            "target_records_per_sec": self.throughput,
            "elapsed_s": round3(elapsed.as_secs_f64()),
            "records_per_sec": round3(records_per_sec),
            "mb_per_sec": round3(mb_per_sec),
            "avg_ms": round3(latencies.mean_ms()),
            "p50_ms": round3(p50),
            "p99_ms": round3(p99),
            "p999_ms": round3(p999),
            "max_ms": round3(latencies.max_ms()),
        }));
    }
}

impl SenderPlan {
    async fn run(mut self, start: Instant) -> Result<SenderResult> {
        let version = self.conn.version::<ProduceRequest>()?;
        let slots = Arc::new(Semaphore::new(self.in_flight));
        let (tx, rx) = mpsc::channel::<InFlight>(self.in_flight);
        let acker = tokio::spawn(acknowledge(rx, self.progress.clone(), start));
        let mut sent = 0u64;
        let mut unacked = SenderResult {
            latencies: Latencies::new(),
            acked: 0,
            last_ack: start,
        };
        let send_result: Result<()> = async {
            loop {
                if let Some(rate) = self.rate {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                // The batch is created now; time spent waiting for a free slot counts as latency.
                let created = Instant::now();
                let timestamp = now_ms();
                let mut batches = Vec::with_capacity(self.partitions.len());
                let mut records = 0;
                for (partition, left) in &mut self.partitions {
                    if *left == 0 {
                        continue;
                    }
                    let n = (*left).min(self.templates.per_batch as u64);
                    batches.push((*partition, self.templates.get(*partition, n as usize)?.stamp(timestamp)));
                    *left -= n;
                    records += n;
                }
                if batches.is_empty() {
                    return Ok(());
                }
                let batch_count = batches.len();
                let request = produce_request(&self.topic, batches, self.acks);
                sent += records;
                if self.acks == 0 {
                    // No answer will come: a record counts once it is written.
                    self.conn.send_without_response(&request, version).await?;
                    let now = Instant::now();
                    unacked.latencies.record(now - created, records);
                    unacked.acked += records;
                    unacked.last_ack = now;
                    self.progress.fetch_add(records, Ordering::Relaxed);
                    continue;
                }
                let slot = slots.clone().acquire_owned().await.expect("semaphore is never closed");
                let pending = self.conn.submit(&request, version).await?;
                let in_flight = InFlight {
                    pending,
                    created,
                    records,
                    batches: batch_count,
                    _slot: slot,
                };
                if tx.send(in_flight).await.is_err() {
                    // The acknowledgement task stopped on an error; it reports it below.
                    return Ok(());
                }
            }
        }
        .await;
        drop(tx);
        let acked = acker.await.context("the acknowledgement task panicked")?;
        send_result?;
        let mut result = acked?;
        result.latencies.merge(&unacked.latencies);
        result.acked += unacked.acked;
        result.last_ack = result.last_ack.max(unacked.last_ack);
        Ok(result)
    }
}

/// Awaits responses in request order, checking each and recording latencies.
async fn acknowledge(
    mut rx: mpsc::Receiver<InFlight>,
    progress: Arc<AtomicU64>,
    start: Instant,
) -> Result<SenderResult> {
    let mut result = SenderResult {
        latencies: Latencies::new(),
        acked: 0,
        last_ack: start,
    };
    while let Some(f) = rx.recv().await {
        let response = f.pending.wait().await?;
        let now = Instant::now();
        let partitions = check_produce_response(&response)?;
        if partitions.len() != f.batches {
            bail!(
                "the broker acknowledged {} of the {} batches of a request",
                partitions.len(),
                f.batches
            );
        }
        result.latencies.record(now - f.created, f.records);
        result.acked += f.records;
        result.last_ack = now;
        progress.fetch_add(f.records, Ordering::Relaxed);
    }
    Ok(result)
}

/// Prints progress to standard error every 5 seconds, as kafka-producer-perf-test does.
async fn report_progress(progress: Arc<AtomicU64>, start: Instant, record_size: usize) {
    let mut last = (start, 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = Instant::now();
        let acked = progress.load(Ordering::Relaxed);
        let rate = per_sec((acked - last.1) as f64, now - last.0);
        eprintln!(
            "{acked} records acknowledged, {rate:.1} records/sec ({:.2} MB/sec)",
            rate * record_size as f64 / MB
        );
        last = (now, acked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn stamped_batches_are_valid_and_carry_the_new_time() {
        let pool = Bytes::from(random_bytes(1 << 16, 7));
        for compression in [CompressionType::None, CompressionType::Lz4] {
            let template = BatchTemplate::new(50, 100, &pool, &[], compression).unwrap();
            let mut stamped = template.stamp(1_700_000_123_456);
            let set = RecordBatchDecoder::decode(&mut stamped).expect("CRC must match");
            assert_eq!(set.records.len(), 50);
            assert!(set.records.iter().all(|r| r.timestamp == 1_700_000_123_456));
            let values: std::collections::HashSet<_> = set.records.iter().map(|r| r.value.clone()).collect();
            assert_eq!(values.len(), 50, "every value differs");
        }
    }

    #[test]
    fn batch_size_follows_batch_bytes() {
        let pool = Bytes::from(random_bytes(1 << 20, 7));
        let per_batch = (16384 - BATCH_HEADER) / (100 + RECORD_OVERHEAD);
        let template = BatchTemplate::new(per_batch, 100, &pool, &[], CompressionType::None).unwrap();
        assert!(template.bytes.len() <= 16384, "{}", template.bytes.len());
        assert!(template.bytes.len() > 16384 - 2 * (100 + RECORD_OVERHEAD));
    }

    #[test]
    fn keyed_batches_carry_distinct_keys_that_hash_to_their_partition() {
        let pool = Bytes::from(random_bytes(1 << 16, 7));
        for partition in 0..4 {
            let keys = keys_for(partition, 4, 16, 40);
            let template = BatchTemplate::new(40, 100, &pool, &keys, CompressionType::None).unwrap();
            let set = RecordBatchDecoder::decode(&mut template.stamp(1)).unwrap();
            let read: Vec<Bytes> = set.records.iter().map(|r| r.key.clone().unwrap()).collect();
            assert_eq!(read, keys);
            assert!(read.iter().all(|k| k.len() == 16));
            assert!(read
                .iter()
                .all(|k| crate::partitioner::partition_for_key(k, 4) == partition));
            let distinct: std::collections::HashSet<_> = read.iter().collect();
            assert_eq!(distinct.len(), 40);
        }
        assert!(keys_for(0, 4, 0, 40).is_empty(), "no key size, no keys");
    }
}
