//! Producing: record batches (magic 2) and Produce requests.
//!
//! [`encode_batch`] turns records into one record batch with `kafka-protocol`'s
//! `RecordBatchEncoder`, compressed if asked. [`Client::produce`] sends batches for several
//! partitions of a topic, one request per partition leader. The pieces are public separately
//! ([`produce_request`], [`check_produce_response`]) so that the benchmark can pipeline
//! requests on a connection of its own.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use bytes::{Bytes, BytesMut};
use futures::future::try_join_all;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use crate::client::Client;
use crate::error;
use crate::metadata::TopicInfo;

/// How long the leader may wait for replicas (acks=-1) before answering REQUEST_TIMED_OUT.
pub const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order. Header keys must be distinct: `kafka-protocol` keeps headers in a map.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The create time in milliseconds since the epoch.
    pub timestamp: i64,
}

/// Compression codec of a record batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionType {
    /// Uncompressed.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as the Java client writes it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl From<CompressionType> for Compression {
    fn from(c: CompressionType) -> Compression {
        match c {
            CompressionType::None => Compression::None,
            CompressionType::Gzip => Compression::Gzip,
            CompressionType::Snappy => Compression::Snappy,
            CompressionType::Lz4 => Compression::Lz4,
            CompressionType::Zstd => Compression::Zstd,
        }
    }
}

/// The current time in milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Encodes `records` as one record batch (magic 2) for a non-idempotent producer: producer id,
/// epoch and base sequence -1, offsets 0..n (the leader assigns the real ones).
pub fn encode_batch(records: &[ProducerRecord], compression: CompressionType) -> Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever `offset - sequence` changes; keeping it
            // constant puts every record in one batch, and `sequence(0) = -1` makes the base
            // sequence the "no sequence" value -1.
            sequence: i as i32 - 1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    encode_records(&records, compression)
}

/// Encodes already-built `kafka-protocol` records; they must share producer id, epoch and
/// `offset - sequence` to form a single batch.
pub fn encode_records(records: &[Record], compression: CompressionType) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(
        61 + records
            .iter()
            .map(|r| 20 + r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>(),
    );
    let options = RecordEncodeOptions {
        version: 2,
        compression: compression.into(),
    };
    RecordBatchEncoder::encode(&mut buf, records, &options)
        .with_context(|| format!("cannot encode a record batch ({compression:?})"))?;
    Ok(buf.freeze())
}

/// The result of producing one batch to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResult {
    /// The partition written to.
    pub partition: i32,
    /// The offset the leader gave the batch's first record.
    pub base_offset: i64,
    /// The append time when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// A Produce request carrying one batch per partition of `topic`.
pub fn produce_request(topic: &str, batches: Vec<(i32, Bytes)>, acks: i16) -> ProduceRequest {
    let partition_data = batches
        .into_iter()
        .map(|(partition, batch)| {
            PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(partition_data)])
}

/// Checks every partition of a Produce response; the first error fails with the topic,
/// partition, error name and the broker's messages (including per-record errors).
pub fn check_produce_response(response: &ProduceResponse) -> Result<Vec<ProduceResult>> {
    let mut results = Vec::new();
    for topic in &response.responses {
        for p in &topic.partition_responses {
            if let Err(mut e) = error::check(p.error_code, p.error_message.as_ref()) {
                let record_errors: Vec<String> = p
                    .record_errors
                    .iter()
                    .map(|r| {
                        let msg = r.batch_index_error_message.as_deref().unwrap_or("");
                        format!("record {}: {msg}", r.batch_index)
                    })
                    .collect();
                if !record_errors.is_empty() {
                    let joined = record_errors.join("; ");
                    e.message = Some(match e.message {
                        Some(m) => format!("{m} ({joined})"),
                        None => joined,
                    });
                }
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot produce to {}-{}", topic.name.0, p.index));
            }
            results.push(ProduceResult {
                partition: p.index,
                base_offset: p.base_offset,
                log_append_time_ms: p.log_append_time_ms,
            });
        }
    }
    Ok(results)
}

impl Client {
    /// Sends one batch per partition of `topic` to the partitions' leaders, one request per
    /// leader, all leaders at once. With `acks = 0` the broker does not answer and the result
    /// is empty; otherwise it has one entry per batch.
    pub async fn produce(
        &self,
        topic: &TopicInfo,
        batches: Vec<(i32, Bytes)>,
        acks: i16,
    ) -> Result<Vec<ProduceResult>> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes)>> = BTreeMap::new();
        for (partition, batch) in batches {
            let leader = topic
                .partition(partition)
                .ok_or_else(|| anyhow!("topic '{}' has no partition {partition}", topic.name))?
                .leader;
            by_leader.entry(leader).or_default().push((partition, batch));
        }
        let requests = by_leader.into_iter().map(|(leader, batches)| async move {
            if leader < 0 {
                return Err(anyhow!("a partition of topic '{}' has no leader", topic.name));
            }
            let conn = self.broker(leader).await?;
            let version = conn.version::<ProduceRequest>()?;
            let request = produce_request(&topic.name, batches, acks);
            if acks == 0 {
                conn.send_without_response(&request, version).await?;
                return Ok(Vec::new());
            }
            let response = conn.submit(&request, version).await?.wait().await?;
            check_produce_response(&response)
        });
        Ok(try_join_all(requests).await?.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn record(key: Option<&'static str>, value: &'static str, ts: i64) -> ProducerRecord {
        ProducerRecord {
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Some(Bytes::from_static(value.as_bytes())),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            timestamp: ts,
        }
    }

    #[test]
    fn every_codec_round_trips_as_one_batch() {
        let records = vec![
            record(Some("k1"), "one", 1_700_000_000_000),
            record(None, "two", 1_700_000_000_005),
            ProducerRecord {
                key: Some(Bytes::from_static(b"k3")),
                value: None,
                headers: vec![],
                timestamp: 1_700_000_000_001,
            },
        ];
        for codec in [
            CompressionType::None,
            CompressionType::Gzip,
            CompressionType::Snappy,
            CompressionType::Lz4,
            CompressionType::Zstd,
        ] {
            let mut batch = encode_batch(&records, codec).unwrap();
            // Magic byte at 16, producer id -1 at 43..51, base sequence -1 at 53..57.
            assert_eq!(batch[16], 2);
            assert_eq!(&batch[53..57], &(-1i32).to_be_bytes());
            assert_eq!(&batch[57..61], &3i32.to_be_bytes());
            assert_eq!(&batch[43..51], &(-1i64).to_be_bytes());
            let sets = RecordBatchDecoder::decode_all(&mut batch).unwrap();
            assert_eq!(sets.len(), 1, "{codec:?}: one batch");
            let decoded = &sets[0].records;
            assert_eq!(decoded.len(), 3);
            for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
                assert_eq!(d.offset, i as i64);
                assert_eq!(d.key, r.key);
                assert_eq!(d.value, r.value);
                assert_eq!(d.timestamp, r.timestamp);
                assert_eq!(d.headers.len(), r.headers.len());
            }
        }
    }

    #[test]
    fn produce_request_has_one_partition_entry_per_batch() {
        let req = produce_request("t", vec![(0, Bytes::new()), (2, Bytes::new())], -1);
        assert_eq!(req.acks, -1);
        assert_eq!(req.topic_data.len(), 1);
        assert_eq!(req.topic_data[0].name.0.as_str(), "t");
        let parts: Vec<i32> = req.topic_data[0].partition_data.iter().map(|p| p.index).collect();
        assert_eq!(parts, [0, 2]);
    }
}
