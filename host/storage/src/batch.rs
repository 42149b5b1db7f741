//! The record batch header (magic v2) as laid out on the wire and on disk.
//!
//! Storage never decodes records: it reads and patches the fixed 61-byte header only. The
//! CRC32C covers everything from `attributes` to the end of the batch, so the broker may
//! rewrite `base_offset` and `partition_leader_epoch` without recomputing it.

use crate::error::StorageError;

/// Bytes before a batch's length-prefixed body: base offset (8) + batch length (4).
pub const LOG_OVERHEAD: usize = 12;
/// The fixed header of a magic-2 batch, up to and including the record count.
pub const HEADER_BYTES: usize = 61;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// How a batch's timestamps were assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The decoded fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Length of the batch after the 12 bytes of offset and length.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`, which must hold at least [`HEADER_BYTES`].
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, StorageError> {
        if buf.len() < HEADER_BYTES {
            return Err(StorageError::CorruptBatch(format!(
                "batch header needs {HEADER_BYTES} bytes, only {} present",
                buf.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: i64_at(buf, BASE_OFFSET),
            batch_length: i32_at(buf, BATCH_LENGTH),
            partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH),
            magic: buf[MAGIC] as i8,
            crc: u32::from_be_bytes(buf[CRC..CRC + 4].try_into().unwrap()),
            attributes: i16::from_be_bytes(buf[ATTRIBUTES..ATTRIBUTES + 2].try_into().unwrap()),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(buf, BASE_TIMESTAMP),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16::from_be_bytes(buf[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].try_into().unwrap()),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
            records_count: i32_at(buf, RECORDS_COUNT),
        })
    }

    /// Total bytes of the batch including the 12-byte log overhead.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The last sequence number in the batch, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Checks that `batch` (exactly one whole batch) is a well-formed magic-2 batch with a
/// matching CRC32C, and returns its header.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, StorageError> {
    validate_with(batch, Origin::Client)
}

/// Who wrote a batch. Producers write dense batches (record count = last offset delta + 1);
/// the broker itself may write batches with offset gaps or no records left (a plugin
/// dropped or moved some), which keep the producer's sequence range as compaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer's batch: dense, CRC checked.
    Client,
    /// A batch the broker wrote (or reads back from disk): gaps allowed, CRC checked.
    Broker,
    /// A batch the broker built itself, or a client's batch it already validated while
    /// handling this request (the plugin path): gaps allowed, and the CRC is not computed
    /// a second time.
    BrokerChecked,
}

pub fn validate_with(batch: &[u8], origin: Origin) -> Result<BatchHeader, StorageError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(StorageError::UnsupportedMagic(header.magic));
    }
    if header.total_bytes() != batch.len() || header.total_bytes() < HEADER_BYTES {
        return Err(StorageError::CorruptBatch(format!(
            "batch length {} does not match the {} bytes it came in",
            header.batch_length,
            batch.len()
        )));
    }
    let actual = match origin {
        Origin::BrokerChecked => header.crc,
        Origin::Client | Origin::Broker => crate::crc32c(&batch[ATTRIBUTES..]),
    };
    debug_assert_eq!(
        actual,
        crate::crc32c(&batch[ATTRIBUTES..]),
        "a checked batch has a valid CRC"
    );
    if actual != header.crc {
        return Err(StorageError::CorruptBatch(format!(
            "CRC32C mismatch: header says {:#010x}, content has {:#010x}",
            header.crc, actual
        )));
    }
    let dense = header.records_count > 0 && header.last_offset_delta == header.records_count - 1;
    let gapped = header.records_count >= 0
        && header.last_offset_delta >= header.records_count - 1
        && header.last_offset_delta >= 0;
    if !(dense || (origin != Origin::Client && gapped)) {
        return Err(StorageError::InvalidRecord(format!(
            "batch claims {} records but a last offset delta of {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.compression() > 4 {
        return Err(StorageError::CorruptBatch(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    Ok(header)
}

/// Splits a buffer of concatenated batches (a produce request's `records`) into whole
/// batches. A trailing partial batch is an error: producers never send one.
pub fn split_batches(mut buf: &[u8]) -> Result<Vec<&[u8]>, StorageError> {
    let mut batches = Vec::new();
    while !buf.is_empty() {
        if buf.len() < LOG_OVERHEAD {
            return Err(StorageError::CorruptBatch(format!(
                "{} trailing bytes are too few for a batch",
                buf.len()
            )));
        }
        let length = i32_at(buf, BATCH_LENGTH);
        if length < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            return Err(StorageError::CorruptBatch(format!(
                "batch length {length} is below the header size"
            )));
        }
        let total = LOG_OVERHEAD + length as usize;
        if total > buf.len() {
            return Err(StorageError::CorruptBatch(format!(
                "batch of {total} bytes is truncated to {}",
                buf.len()
            )));
        }
        batches.push(&buf[..total]);
        buf = &buf[total..];
    }
    Ok(batches)
}

/// Length of the prefix of `buf` made of whole batches, stopping before the first batch
/// whose base offset is at or past `max_offset`. Used to trim a raw read.
pub fn whole_batches_prefix(buf: &[u8], max_offset: i64) -> usize {
    let mut pos = 0;
    while buf.len() - pos >= HEADER_BYTES {
        let base = i64_at(&buf[pos..], BASE_OFFSET);
        let length = i32_at(&buf[pos..], BATCH_LENGTH);
        if base >= max_offset || length < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            break;
        }
        let total = LOG_OVERHEAD + length as usize;
        if pos + total > buf.len() {
            break;
        }
        pos += total;
    }
    pos
}

/// The first 16 bytes of a batch with the offset and leader epoch the log assigns; the
/// batch length in between is kept. Written in front of the producer's bytes `[16..]`.
pub fn patched_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix[0..8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[8..12].copy_from_slice(&batch[BATCH_LENGTH..BATCH_LENGTH + 4]);
    prefix[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    prefix
}

/// Rewrites a batch in place for `LogAppendTime`: sets the timestamp-type bit, the max
/// timestamp to `now_ms`, and recomputes the CRC (which covers both).
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes(batch[ATTRIBUTES..ATTRIBUTES + 2].try_into().unwrap());
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&(attributes | TIMESTAMP_TYPE_BIT).to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crate::crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().unwrap())
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().unwrap())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal valid uncompressed batch with `count` empty-ish records for tests.
    /// Records: length varint, attributes, timestamp delta, offset delta, key -1, value, 0 headers.
    pub fn make_batch(count: i32, timestamp: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            let mut body = vec![0u8]; // attributes
            zigzag(&mut body, 0); // timestamp delta
            zigzag(&mut body, i as i64); // offset delta
            zigzag(&mut body, -1); // null key
            let value = format!("value-{i}");
            zigzag(&mut body, value.len() as i64);
            body.extend_from_slice(value.as_bytes());
            zigzag(&mut body, 0); // headers
            zigzag(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // length, patched below
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(count - 1).to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&pid.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&records);
        let length = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crate::crc32c(&b[ATTRIBUTES..]);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn zigzag(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    #[test]
    fn validates_a_good_batch_and_rejects_a_flipped_bit() {
        let mut batch = make_batch(3, 1000, None);
        let header = validate(&batch).unwrap();
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(matches!(validate(&batch), Err(StorageError::CorruptBatch(_))));
    }

    #[test]
    fn split_rejects_truncated_input() {
        let batch = make_batch(2, 1, None);
        let mut two = batch.clone();
        two.extend_from_slice(&batch);
        assert_eq!(split_batches(&two).unwrap().len(), 2);
        assert!(split_batches(&two[..two.len() - 1]).is_err());
    }

    #[test]
    fn prefix_stops_at_partial_batches_and_max_offset() {
        let mut a = make_batch(2, 1, None);
        let mut b = make_batch(2, 1, None);
        b[0..8].copy_from_slice(&2i64.to_be_bytes());
        let both: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(whole_batches_prefix(&both, i64::MAX), both.len());
        assert_eq!(whole_batches_prefix(&both[..both.len() - 3], i64::MAX), a.len());
        assert_eq!(whole_batches_prefix(&both, 2), a.len());
        a.truncate(10);
        assert_eq!(whole_batches_prefix(&a, i64::MAX), 0);
    }

    #[test]
    fn log_append_time_keeps_the_batch_valid() {
        let mut batch = make_batch(1, 5, None);
        stamp_log_append_time(&mut batch, 99);
        let header = validate(&batch).unwrap();
        assert_eq!(header.max_timestamp, 99);
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn sequence_wraps() {
        let mut batch = make_batch(3, 5, Some((1, 0, i32::MAX - 1)));
        let header = validate(&batch).unwrap();
        assert_eq!(header.last_sequence(), 0);
        batch.clear();
    }
}
