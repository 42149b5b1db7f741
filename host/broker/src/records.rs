//! Decoding and re-encoding whole record batches, for the rare paths that must look
//! inside them (plugins, ListOffsets by timestamp). The produce and fetch paths of a topic
//! without plugins never come here. The records themselves are coded by
//! `strom_plugins::codec`; this module adds the batch around them (header, compression, CRC).
//!
//! A rewritten batch keeps its producer id, epoch, base sequence and last offset delta, so
//! idempotent de-duplication and offsets work as before; dropped records leave offset gaps
//! (as compaction does), which every Kafka client handles.

use std::borrow::Cow;

use anyhow::bail;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use strom_plugins::{codec, KafkaRecord};
use strom_storage::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD};

/// The batch's records in Kafka's record encoding, decompressed: borrowed from the batch
/// when it is not compressed.
pub fn records_section<'a>(batch: &'a [u8], header: &BatchHeader) -> anyhow::Result<Cow<'a, [u8]>> {
    if batch.len() < header.total_bytes() {
        bail!(
            "batch of {} bytes is truncated to {}",
            header.total_bytes(),
            batch.len()
        );
    }
    let section = &batch[HEADER_BYTES..header.total_bytes()];
    if header.compression() == 0 {
        return Ok(Cow::Borrowed(section));
    }
    let mut body = Bytes::copy_from_slice(section);
    let take = |b: &mut Bytes| -> anyhow::Result<Vec<u8>> { Ok(b.copy_to_bytes(b.remaining()).to_vec()) };
    let plain = match header.compression() {
        1 => Gzip::decompress(&mut body, take)?,
        2 => Snappy::decompress(&mut body, take)?,
        3 => Lz4::decompress(&mut body, take)?,
        4 => Zstd::decompress(&mut body, take)?,
        other => bail!("unknown compression codec {other}"),
    };
    Ok(Cow::Owned(plain))
}

/// Encodes `records` as one batch with `template`'s identity (producer id, epoch, base
/// sequence, last offset delta, compression, timestamp type). The base offset is 0 and the
/// leader epoch -1: the log sets both on append.
pub fn encode(template: &BatchHeader, records: &[KafkaRecord]) -> anyhow::Result<Bytes> {
    let base_timestamp = records
        .iter()
        .map(|r| r.timestamp_ms)
        .min()
        .unwrap_or(template.base_timestamp);
    let max_delta = records
        .iter()
        .map(|r| r.timestamp_ms - base_timestamp)
        .max()
        .unwrap_or(0);
    let mut section = Vec::new();
    codec::encode_records(records, base_timestamp, &mut section);
    let last_offset_delta = records
        .iter()
        .map(|r| r.offset_delta)
        .max()
        .unwrap_or(0)
        .max(template.last_offset_delta);
    let header = BatchHeader {
        base_timestamp,
        last_offset_delta,
        ..*template
    };
    encode_section(&header, &section, records.len(), (0, max_delta))
}

/// A batch with `template`'s identity (producer id, epoch, base sequence, last offset delta,
/// base timestamp, compression, timestamp type) around `count` records already in Kafka's
/// record encoding, whose timestamp deltas span `timestamp_deltas`. Base offset 0 and leader
/// epoch -1: the log sets both on append.
pub fn encode_section(
    template: &BatchHeader,
    section: &[u8],
    count: usize,
    timestamp_deltas: (i64, i64),
) -> anyhow::Result<Bytes> {
    let max_timestamp = if template.timestamp_type() == strom_storage::TimestampType::LogAppendTime || count == 0 {
        template.max_timestamp
    } else {
        template.base_timestamp + timestamp_deltas.1
    };
    let mut compressed = BytesMut::new();
    let copy = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.put_slice(section);
        Ok(())
    };
    // Uncompressed records go straight into the batch, without a copy in between.
    let body: &[u8] = match template.compression() {
        0 => section,
        codec => {
            match codec {
                1 => Gzip::compress(&mut compressed, copy)?,
                2 => Snappy::compress(&mut compressed, copy)?,
                3 => Lz4::compress(&mut compressed, copy)?,
                4 => Zstd::compress(&mut compressed, copy)?,
                other => bail!("unknown compression codec {other}"),
            }
            &compressed
        }
    };
    let mut out = BytesMut::with_capacity(HEADER_BYTES + body.len());
    out.put_i64(0);
    out.put_i32((HEADER_BYTES - LOG_OVERHEAD + body.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0); // CRC, below
    out.put_i16(template.attributes);
    out.put_i32(template.last_offset_delta);
    out.put_i64(template.base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(template.producer_id);
    out.put_i16(template.producer_epoch);
    out.put_i32(template.base_sequence);
    out.put_i32(count as i32);
    out.put_slice(body);
    let crc = strom_storage::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// The batch's header and its records, through the same path the plugin chain uses.
    fn decode(batch: &[u8]) -> (BatchHeader, Vec<KafkaRecord>) {
        let header = BatchHeader::parse(batch).unwrap();
        let section = records_section(batch, &header).unwrap();
        let records =
            codec::decode_records(&section, header.records_count.max(0) as usize, header.base_timestamp).unwrap();
        (header, records)
    }

    fn client_batch(compression: Compression) -> BytesMut {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 10 + i as i32,
                timestamp: 1_000 + i,
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: IndexMap::from([(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"x")))]),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    #[test]
    fn decode_then_encode_keeps_records_and_identity_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let original = client_batch(compression);
            let (decoded_header, records) = decode(&original);
            assert_eq!(records.len(), 5);
            assert_eq!(records[3].value.as_deref(), Some(b"value-3".as_slice()));
            assert_eq!(records[1].key, None);
            // Drop two records; the rest keep their offset deltas and the batch its identity.
            let kept: Vec<KafkaRecord> = records
                .iter()
                .filter(|r| r.offset_delta != 1 && r.offset_delta != 4)
                .cloned()
                .collect();
            let rewritten = encode(&decoded_header, &kept).unwrap();
            let header = BatchHeader::parse(&rewritten).unwrap();
            assert_eq!(
                (header.producer_id, header.producer_epoch, header.base_sequence),
                (7, 1, 10)
            );
            assert_eq!(header.last_offset_delta, 4);
            assert_eq!(header.records_count, 3);
            assert_eq!(header.compression(), decoded_header.compression());
            // An independent decoder reads it, offsets and all.
            let set = RecordBatchDecoder::decode(&mut rewritten.clone()).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![0, 2, 3], "{compression:?}");
            assert_eq!(set.records[2].value.as_deref(), Some(b"value-3".as_slice()));
        }
    }
}
