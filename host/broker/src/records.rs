//! Decoding and re-encoding whole record batches, for the rare paths that must look
//! inside them (plugins, ListOffsets by timestamp). The produce and fetch paths of a topic
//! without plugins never come here.
//!
//! A rewritten batch keeps its producer id, epoch, base sequence and last offset delta, so
//! idempotent de-duplication and offsets work as before; dropped records leave offset gaps
//! (as compaction does), which every Kafka client handles.

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use strom_plugins::{Header, KafkaRecord};
use strom_storage::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD};

/// A batch's header and its records; offset deltas are relative to the batch base.
#[derive(Debug, Clone)]
pub struct DecodedBatch {
    pub header: BatchHeader,
    pub records: Vec<KafkaRecord>,
}

pub fn decode(batch: &[u8]) -> anyhow::Result<DecodedBatch> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() < header.total_bytes() {
        bail!(
            "batch of {} bytes is truncated to {}",
            header.total_bytes(),
            batch.len()
        );
    }
    let mut body = Bytes::copy_from_slice(&batch[HEADER_BYTES..header.total_bytes()]);
    let count = header.records_count.max(0) as usize;
    let records = match header.compression() {
        0 => parse_records(&mut body, count, &header)?,
        1 => Gzip::decompress(&mut body, |b| parse_records(b, count, &header))?,
        2 => Snappy::decompress(&mut body, |b| parse_records(b, count, &header))?,
        3 => Lz4::decompress(&mut body, |b| parse_records(b, count, &header))?,
        4 => Zstd::decompress(&mut body, |b| parse_records(b, count, &header))?,
        other => bail!("unknown compression codec {other}"),
    };
    Ok(DecodedBatch { header, records })
}

/// The batch's records in Kafka's record encoding, decompressed: borrowed from the batch
/// when it is not compressed.
pub fn records_section<'a>(batch: &'a [u8], header: &BatchHeader) -> anyhow::Result<std::borrow::Cow<'a, [u8]>> {
    if batch.len() < header.total_bytes() {
        bail!(
            "batch of {} bytes is truncated to {}",
            header.total_bytes(),
            batch.len()
        );
    }
    let section = &batch[HEADER_BYTES..header.total_bytes()];
    if header.compression() == 0 {
        return Ok(std::borrow::Cow::Borrowed(section));
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
    Ok(std::borrow::Cow::Owned(plain))
}

fn parse_records(buf: &mut Bytes, count: usize, header: &BatchHeader) -> anyhow::Result<Vec<KafkaRecord>> {
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let length = varint(buf).with_context(|| format!("record {i} length"))?;
        if length < 0 || buf.remaining() < length as usize {
            bail!("record {i} claims {length} bytes, {} left", buf.remaining());
        }
        let mut r = buf.split_to(length as usize);
        if !r.has_remaining() {
            bail!("record {i} is empty");
        }
        let _attributes = r.get_i8();
        let timestamp_delta = varint(&mut r)?;
        let offset_delta = varint(&mut r)? as i32;
        let key = bytes_field(&mut r)?;
        let value = bytes_field(&mut r)?;
        let header_count = varint(&mut r)?;
        let mut headers = Vec::with_capacity(header_count.max(0) as usize);
        for _ in 0..header_count.max(0) {
            let key = bytes_field(&mut r)?.context("header key is null")?;
            let value = bytes_field(&mut r)?;
            headers.push(Header {
                key: String::from_utf8(key).context("header key is not UTF-8")?,
                value,
            });
        }
        records.push(KafkaRecord {
            offset_delta,
            timestamp_ms: header.base_timestamp + timestamp_delta,
            key,
            value,
            headers,
        });
    }
    Ok(records)
}

/// Encodes `records` as one batch with `template`'s identity (producer id, epoch, base
/// sequence, last offset delta, compression, timestamp type). The base offset is 0 and the
/// leader epoch -1: the log sets both on append.
pub fn encode(template: &BatchHeader, records: &[KafkaRecord]) -> anyhow::Result<Bytes> {
    let mut raw = BytesMut::new();
    let base_timestamp = records
        .iter()
        .map(|r| r.timestamp_ms)
        .min()
        .unwrap_or(template.base_timestamp);
    let max_timestamp = if template.timestamp_type() == strom_storage::TimestampType::LogAppendTime {
        template.max_timestamp
    } else {
        records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(template.max_timestamp)
    };
    for r in records {
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varint(&mut body, r.timestamp_ms - base_timestamp);
        put_varint(&mut body, r.offset_delta as i64);
        put_bytes_field(&mut body, r.key.as_deref());
        put_bytes_field(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i64);
        for h in &r.headers {
            put_bytes_field(&mut body, Some(h.key.as_bytes()));
            put_bytes_field(&mut body, h.value.as_deref());
        }
        put_varint(&mut raw, body.len() as i64);
        raw.put_slice(&body);
    }
    let mut compressed = BytesMut::new();
    let copy = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.put_slice(&raw);
        Ok(())
    };
    match template.compression() {
        0 => compressed.put_slice(&raw),
        1 => Gzip::compress(&mut compressed, copy)?,
        2 => Snappy::compress(&mut compressed, copy)?,
        3 => Lz4::compress(&mut compressed, copy)?,
        4 => Zstd::compress(&mut compressed, copy)?,
        other => bail!("unknown compression codec {other}"),
    }
    let last_offset_delta = records
        .iter()
        .map(|r| r.offset_delta)
        .max()
        .unwrap_or(0)
        .max(template.last_offset_delta);
    let mut out = BytesMut::with_capacity(HEADER_BYTES + compressed.len());
    out.put_i64(0);
    out.put_i32((HEADER_BYTES - LOG_OVERHEAD + compressed.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0); // CRC, below
    out.put_i16(template.attributes);
    out.put_i32(last_offset_delta);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(template.producer_id);
    out.put_i16(template.producer_epoch);
    out.put_i32(template.base_sequence);
    out.put_i32(records.len() as i32);
    out.put_slice(&compressed);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

fn varint(buf: &mut impl Buf) -> anyhow::Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            bail!("varint runs past the end");
        }
        let byte = buf.get_u8();
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    bail!("varint is too long")
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn bytes_field(buf: &mut Bytes) -> anyhow::Result<Option<Vec<u8>>> {
    let len = varint(buf)?;
    if len < 0 {
        return Ok(None);
    }
    if buf.remaining() < len as usize {
        bail!("field of {len} bytes runs past the record");
    }
    Ok(Some(buf.split_to(len as usize).to_vec()))
}

fn put_bytes_field(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

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
            let decoded = decode(&original).unwrap();
            assert_eq!(decoded.records.len(), 5);
            assert_eq!(decoded.records[3].value.as_deref(), Some(b"value-3".as_slice()));
            assert_eq!(decoded.records[1].key, None);
            // Drop two records; the rest keep their offset deltas and the batch its identity.
            let kept: Vec<KafkaRecord> = decoded
                .records
                .iter()
                .filter(|r| r.offset_delta != 1 && r.offset_delta != 4)
                .cloned()
                .collect();
            let rewritten = encode(&decoded.header, &kept).unwrap();
            let header = BatchHeader::parse(&rewritten).unwrap();
            assert_eq!(
                (header.producer_id, header.producer_epoch, header.base_sequence),
                (7, 1, 10)
            );
            assert_eq!(header.last_offset_delta, 4);
            assert_eq!(header.records_count, 3);
            assert_eq!(header.compression(), decoded.header.compression());
            // An independent decoder reads it, offsets and all.
            let set = RecordBatchDecoder::decode(&mut rewritten.clone()).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![0, 2, 3], "{compression:?}");
            assert_eq!(set.records[2].value.as_deref(), Some(b"value-3".as_slice()));
        }
    }
}
