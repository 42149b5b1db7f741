//! Consuming: ListOffsets to find where to start, Fetch to read, and decoding what was read.
//!
//! A fetch answer holds raw record batches. The broker may cut the last one short at the size
//! limit, and a fetch from an offset inside a batch returns the whole batch, so
//! [`split_batches`] keeps only complete batches and [`decode_batches`] drops records below the
//! requested offset. The next fetch position comes from the batch headers (last offset + 1),
//! not from the last record, so batches that hold no visible record (transaction markers,
//! compacted-away records) are still skipped.
//!
//! [`Consumer`] keeps a position per partition and fetches from every partition's leader at
//! once; it is what `strom consume` and the benchmarks use.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::future::try_join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::error::{self, KafkaError};
use crate::metadata::TopicInfo;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (ListOffsets timestamp -2).
    Earliest,
    /// The log end offset: only records written from now on (ListOffsets timestamp -1).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp in ms since the epoch: the create time, or for LogAppendTime topics the
    /// time the leader appended its batch.
    pub timestamp: i64,
    /// Which of the two the timestamp is.
    pub timestamp_type: TimestampType,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// One complete record batch, undecoded, with the header fields the consumer needs.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record (`base_offset + last_offset_delta`).
    pub last_offset: i64,
    /// The batch's max timestamp: every record's timestamp when the type is LogAppendTime.
    pub max_timestamp: i64,
    /// Records in the batch (before any decompression).
    pub record_count: i32,
    /// The whole batch, header included.
    pub bytes: Bytes,
}

// Offsets of the batch header fields in a magic-2 record batch.
const BATCH_OVERHEAD: usize = 12; // base offset (8) + batch length (4)
const MAGIC_AT: usize = 16;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORD_COUNT_AT: usize = 57;
const BATCH_HEADER_LEN: usize = 61;

/// Splits fetched bytes into complete batches; an incomplete trailing batch (cut at the fetch
/// size limit) is dropped, and will be fetched whole next time.
pub fn split_batches(records: &Bytes) -> Result<Vec<RawBatch>> {
    let mut batches = Vec::new();
    let mut at = 0;
    while records.len() - at >= BATCH_OVERHEAD {
        let base_offset = i64::from_be_bytes(records[at..at + 8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4 bytes"));
        if length < 0 {
            bail!("corrupt record batch at offset {base_offset}: negative length {length}");
        }
        let end = at + BATCH_OVERHEAD + length as usize;
        if end > records.len() {
            break;
        }
        let batch = records.slice(at..end);
        if batch.len() <= MAGIC_AT {
            bail!("corrupt record batch at offset {base_offset}: only {length} bytes");
        }
        if batch[MAGIC_AT] != 2 {
            bail!(
                "record batch at offset {base_offset} has message format v{}; only v2 (Kafka 0.11+) is supported",
                batch[MAGIC_AT]
            );
        }
        if batch.len() < BATCH_HEADER_LEN {
            bail!("corrupt record batch at offset {base_offset}: only {length} bytes");
        }
        let read_i32 = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().expect("4"));
        let read_i64 = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().expect("8"));
        batches.push(RawBatch {
            base_offset,
            last_offset: base_offset + i64::from(read_i32(LAST_OFFSET_DELTA_AT)),
            max_timestamp: read_i64(MAX_TIMESTAMP_AT),
            record_count: read_i32(RECORD_COUNT_AT),
            bytes: batch,
        });
        at = end;
    }
    Ok(batches)
}

/// Decodes batches of `partition` into records at or after `from_offset`, skipping control
/// records (transaction markers). The CRC of every batch is checked.
pub fn decode_batches(partition: i32, batches: &[RawBatch], from_offset: i64) -> Result<Vec<ConsumedRecord>> {
    let mut out = Vec::new();
    for batch in batches {
        if batch.last_offset < from_offset {
            continue;
        }
        let mut bytes = batch.bytes.clone();
        let set = RecordBatchDecoder::decode(&mut bytes).with_context(|| {
            format!(
                "cannot decode record batch at offset {} of partition {partition}",
                batch.base_offset
            )
        })?;
        for record in set.records {
            if record.control || record.offset < from_offset {
                continue;
            }
            let timestamp = match record.timestamp_type {
                TimestampType::LogAppend => batch.max_timestamp,
                TimestampType::Creation => record.timestamp,
            };
            out.push(ConsumedRecord {
                partition,
                offset: record.offset,
                timestamp,
                timestamp_type: record.timestamp_type,
                key: record.key,
                value: record.value,
                headers: record.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            });
        }
    }
    Ok(out)
}

impl Client {
    /// Offsets of `partitions` of `topic` per `spec`, asked of each partition's leader.
    /// For a timestamp with no record at or after it, the offset is -1 (as Kafka answers).
    pub async fn list_offsets(
        &self,
        topic: &TopicInfo,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &partition in partitions {
            let p = topic
                .partition(partition)
                .ok_or_else(|| anyhow!("topic '{}' has no partition {partition}", topic.name))?;
            by_leader.entry(p.leader).or_default().push(partition);
        }
        let requests = by_leader.into_iter().map(|(leader, partitions)| async move {
            if leader < 0 {
                bail!("a partition of topic '{}' has no leader", topic.name);
            }
            let conn = self.broker(leader).await?;
            let request = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_timeout_ms(30_000)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|&p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(p)
                                    .with_timestamp(spec.timestamp())
                            })
                            .collect(),
                    )]);
            let response = conn.send(&request).await?;
            let mut offsets = Vec::new();
            for t in &response.topics {
                for p in &t.partitions {
                    error::check(p.error_code, None)
                        .with_context(|| format!("cannot list offsets of {}-{}", topic.name, p.partition_index))?;
                    offsets.push((p.partition_index, p.offset));
                }
            }
            Ok(offsets)
        });
        let offsets: BTreeMap<i32, i64> = try_join_all(requests).await?.into_iter().flatten().collect();
        for partition in partitions {
            if !offsets.contains_key(partition) {
                bail!("the broker's ListOffsets response omits partition {partition}");
            }
        }
        Ok(offsets)
    }
}

/// Limits of a Fetch request (the Java consumer's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// How long the broker may wait for `min_bytes` (`fetch.max.wait.ms`).
    pub max_wait_ms: i32,
    /// How many bytes the broker should wait for (`fetch.min.bytes`).
    pub min_bytes: i32,
    /// The most bytes per response (`fetch.max.bytes`).
    pub max_bytes: i32,
    /// The most bytes per partition (`max.partition.fetch.bytes`).
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
        }
    }
}

/// A full (sessionless) Fetch request for `positions` (partition, offset) of `topic`.
pub fn fetch_request(topic: &str, positions: &[(i32, i64)], options: &FetchOptions) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(options.max_wait_ms)
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_isolation_level(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                positions
                    .iter()
                    .map(|&(partition, offset)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(options.partition_max_bytes)
                    })
                    .collect(),
            )])
}

/// What a fetch returned for one partition.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: i32,
    /// The offset the fetch asked for.
    pub fetch_offset: i64,
    /// Complete batches (the first may start before `fetch_offset`).
    pub batches: Vec<RawBatch>,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// A retriable partition error (e.g. NOT_LEADER_OR_FOLLOWER) to recover from by refreshing
    /// metadata; non-retriable errors fail the fetch instead.
    pub error: Option<KafkaError>,
}

impl FetchedPartition {
    /// The offset to fetch next: after the last complete batch, or unchanged.
    pub fn next_offset(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.fetch_offset, |b| (b.last_offset + 1).max(self.fetch_offset))
    }

    /// Decodes the records at or after the fetch offset.
    pub fn records(&self) -> Result<Vec<ConsumedRecord>> {
        decode_batches(self.partition, &self.batches, self.fetch_offset)
    }
}

/// Checks a Fetch response and splits each partition's records into complete batches.
pub fn parse_fetch_response(
    topic: &str,
    positions: &[(i32, i64)],
    response: FetchResponse,
) -> Result<Vec<FetchedPartition>> {
    error::check(response.error_code, None).context("fetch failed")?;
    let wanted: HashMap<i32, i64> = positions.iter().copied().collect();
    let mut out = Vec::new();
    for t in response.responses {
        for p in t.partitions {
            let Some(&fetch_offset) = wanted.get(&p.partition_index) else {
                continue;
            };
            let mut error = None;
            if let Err(e) = error::check(p.error_code, None) {
                if e.kind() == ResponseError::OffsetOutOfRange {
                    bail!(
                        "offset {fetch_offset} is out of range for partition {} of topic '{topic}' (log start offset {})",
                        p.partition_index, p.log_start_offset
                    );
                }
                if !e.is_retriable() {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("cannot fetch from {topic}-{}", p.partition_index));
                }
                error = Some(e);
            }
            let batches = match &p.records {
                Some(records) if error.is_none() => split_batches(records)
                    .with_context(|| format!("bad fetch answer for {topic}-{}", p.partition_index))?,
                _ => Vec::new(),
            };
            if batches.is_empty() && p.records.as_ref().is_some_and(|r| r.len() >= BATCH_OVERHEAD) {
                // Since KIP-74 a broker returns at least one whole batch; without one we could
                // never make progress.
                bail!(
                    "the record batch at offset {fetch_offset} of {topic}-{} does not fit the fetch size",
                    p.partition_index
                );
            }
            out.push(FetchedPartition {
                partition: p.partition_index,
                fetch_offset,
                batches,
                high_watermark: p.high_watermark,
                error,
            });
        }
    }
    Ok(out)
}

/// Reads a topic's partitions from their leaders, keeping a position per partition.
pub struct Consumer<'a> {
    client: &'a Client,
    topic: TopicInfo,
    positions: BTreeMap<i32, i64>,
    options: FetchOptions,
    /// Set after a retriable partition error: the next poll refreshes metadata first.
    stale_metadata: bool,
}

impl<'a> Consumer<'a> {
    /// A consumer of `topic` starting at `positions` (partition → offset).
    pub fn new(
        client: &'a Client,
        topic: TopicInfo,
        positions: BTreeMap<i32, i64>,
        options: FetchOptions,
    ) -> Consumer<'a> {
        Consumer {
            client,
            topic,
            positions,
            options,
            stale_metadata: false,
        }
    }

    /// Makes the next poll look the topic's leaders up again (after a failed fetch).
    pub fn invalidate_metadata(&mut self) {
        self.stale_metadata = true;
    }

    /// Changes how long the broker may hold a fetch waiting for data.
    pub fn set_max_wait_ms(&mut self, max_wait_ms: i32) {
        self.options.max_wait_ms = max_wait_ms;
    }

    /// The next offset to read per partition.
    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    /// One fetch from every leader at once; advances the positions past what was returned.
    /// Returns fetched partitions undecoded, so the caller decides whether to decode.
    pub async fn poll_raw(&mut self) -> Result<Vec<FetchedPartition>> {
        if self.stale_metadata {
            self.topic = self.client.topic_metadata(&self.topic.name, false).await?;
            self.stale_metadata = false;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&partition, &offset) in &self.positions {
            let leader = self.topic.partition(partition).map_or(-1, |p| p.leader);
            by_leader.entry(leader).or_default().push((partition, offset));
        }
        // The broker holds a fetch up to max_wait; anything much longer means it is stuck.
        let deadline = Duration::from_millis(self.options.max_wait_ms.max(0) as u64) + Duration::from_secs(30);
        let topic = &self.topic.name;
        let options = &self.options;
        let client = self.client;
        let fetches = by_leader.into_iter().map(|(leader, positions)| async move {
            if leader < 0 {
                bail!("a partition of topic '{topic}' has no leader");
            }
            let conn = client.broker(leader).await?;
            let request = fetch_request(topic, &positions, options);
            let pending = conn.submit(&request, conn.version::<FetchRequest>()?).await?;
            let response = tokio::time::timeout(deadline, pending.wait())
                .await
                .map_err(|_| anyhow!("broker {leader} did not answer a fetch within {deadline:?}"))??;
            parse_fetch_response(topic, &positions, response)
        });
        let fetched: Vec<FetchedPartition> = try_join_all(fetches).await?.into_iter().flatten().collect();
        for p in &fetched {
            if p.error.is_some() {
                self.stale_metadata = true;
            }
            self.positions.insert(p.partition, p.next_offset());
        }
        if self.stale_metadata {
            // Back off a little so a leader election can finish.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(fetched)
    }

    /// One fetch from every leader; the records read, in offset order per partition.
    pub async fn poll(&mut self) -> Result<Vec<ConsumedRecord>> {
        let mut records = Vec::new();
        for p in self.poll_raw().await? {
            records.extend(p.records()?);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::{encode_batch, CompressionType, ProducerRecord};
    use bytes::BytesMut;

    fn batch(base_offset: i64, values: &[&str]) -> Bytes {
        let records: Vec<ProducerRecord> = values
            .iter()
            .map(|v| ProducerRecord {
                key: None,
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: vec![],
                timestamp: 1_000,
            })
            .collect();
        let mut b = BytesMut::from(&encode_batch(&records, CompressionType::Lz4).unwrap()[..]);
        // The leader rewrites the base offset; the CRC does not cover it.
        b[0..8].copy_from_slice(&base_offset.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn partial_trailing_batch_is_dropped() {
        let mut all = BytesMut::new();
        all.extend_from_slice(&batch(10, &["a", "b"]));
        all.extend_from_slice(&batch(12, &["c", "d", "e"]));
        let third = batch(15, &["f"]);
        all.extend_from_slice(&third[..third.len() - 5]);
        let all = all.freeze();

        let batches = split_batches(&all).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!((batches[0].base_offset, batches[0].last_offset), (10, 11));
        assert_eq!((batches[1].base_offset, batches[1].last_offset), (12, 14));
        assert_eq!(batches[1].record_count, 3);

        // Fetching from offset 13 returns the whole batch starting at 12: drop offset 12.
        let records = decode_batches(4, &batches, 13).unwrap();
        let got: Vec<(i64, &[u8])> = records
            .iter()
            .map(|r| (r.offset, r.value.as_deref().unwrap()))
            .collect();
        assert_eq!(got, [(13, &b"d"[..]), (14, &b"e"[..])]);
        assert!(records.iter().all(|r| r.partition == 4));

        let fetched = FetchedPartition {
            partition: 4,
            fetch_offset: 13,
            batches,
            high_watermark: 16,
            error: None,
        };
        assert_eq!(fetched.next_offset(), 15);
    }

    #[test]
    fn tiny_or_empty_input_gives_no_batch() {
        assert!(split_batches(&Bytes::new()).unwrap().is_empty());
        assert!(split_batches(&Bytes::from_static(&[0; 11])).unwrap().is_empty());
    }

    #[test]
    fn old_message_formats_are_refused() {
        let mut b = BytesMut::from(&batch(0, &["x"])[..]);
        b[MAGIC_AT] = 1;
        let err = split_batches(&b.freeze()).unwrap_err();
        assert!(err.to_string().contains("message format v1"), "{err}");
    }

    #[test]
    fn corrupt_batches_fail_the_crc_check() {
        let mut b = BytesMut::from(&batch(0, &["hello"])[..]);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let batches = split_batches(&b.freeze()).unwrap();
        assert!(decode_batches(0, &batches, 0).is_err());
    }
}
