//! Idempotent producer state of one partition: the epoch and the last few batches of each
//! producer id, so a retried batch is recognised and not appended twice.
//!
//! The state is rebuilt from batch headers, and snapshotted to `<offset>.snapshot` files
//! so that recovery only replays the log written after the newest snapshot.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::error::{Result, StorageError};

/// Kafka keeps the metadata of the last five batches per producer for de-duplication.
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;
const SNAPSHOT_VERSION: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecord {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchRecord>,
}

/// What the state says of an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log at these offsets: acknowledge, do not append.
    Duplicate(BatchRecord),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
    /// Checks an incoming batch against the producer's state without changing it.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its state was lost with old segments): accept.
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    received: header.base_sequence,
                    expected: 0,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let expected = entry
            .batches
            .back()
            .map(|b| next_sequence(b.last_sequence))
            .unwrap_or(0);
        if header.base_sequence != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: header.producer_id,
                received: header.base_sequence,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that was appended with its final offsets.
    pub fn update(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if header.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchRecord {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Writes the state as of `offset` (exclusive) to `<offset>.snapshot` in `dir`, through
    /// a temporary file and a rename, so a crash leaves either the old or the new snapshot.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<()> {
        let mut buf = Vec::new();
        buf.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        buf.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&entry.epoch.to_be_bytes());
            buf.push(entry.batches.len() as u8);
            for b in &entry.batches {
                buf.extend_from_slice(&b.first_sequence.to_be_bytes());
                buf.extend_from_slice(&b.last_sequence.to_be_bytes());
                buf.extend_from_slice(&b.first_offset.to_be_bytes());
                buf.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crate::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        crate::checkpoint::write_atomically(&snapshot_path(dir, offset), &buf)
    }

    /// Reads a snapshot; `None` if it is unreadable or corrupt.
    pub fn read_snapshot(path: &Path) -> Option<ProducerState> {
        let raw = fs::read(path).ok()?;
        if raw.len() < 10 {
            return None;
        }
        let (body, crc) = raw.split_at(raw.len() - 4);
        if crate::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.u16()? != SNAPSHOT_VERSION {
            return None;
        }
        let count = r.u32()?;
        let mut producers = HashMap::with_capacity(count as usize);
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.u16()? as i16;
            let n = r.u8()?;
            let mut batches = VecDeque::with_capacity(n as usize);
            for _ in 0..n {
                batches.push_back(BatchRecord {
                    first_sequence: r.u32()? as i32,
                    last_sequence: r.u32()? as i32,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches });
        }
        Some(ProducerState { producers })
    }
}

pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(offset, "snapshot"))
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.0.len() < N {
            return None;
        }
        let (head, tail) = self.0.split_at(N);
        self.0 = tail;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take::<2>().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{tests::make_batch, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        let mut h = BatchHeader::parse(&make_batch(count, 0, Some((pid, epoch, seq)))).unwrap();
        h.base_offset = offset;
        h
    }

    #[test]
    fn detects_duplicates_and_gaps() {
        let mut state = ProducerState::default();
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(state.check(&first).unwrap(), SequenceCheck::Append);
        state.update(&first);
        assert!(
            matches!(state.check(&first).unwrap(), SequenceCheck::Duplicate(b) if b.first_offset == 0 && b.last_offset == 2)
        );
        assert_eq!(state.check(&header(7, 0, 3, 1, 3)).unwrap(), SequenceCheck::Append);
        assert!(matches!(
            state.check(&header(7, 0, 5, 1, 3)),
            Err(StorageError::OutOfOrderSequence { expected: 3, .. })
        ));
        assert!(matches!(
            state.check(&header(7, 1, 4, 1, 3)),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        state.update(&header(7, 1, 0, 1, 3));
        assert!(matches!(
            state.check(&header(7, 0, 1, 1, 4)),
            Err(StorageError::InvalidProducerEpoch { current: 1, .. })
        ));
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ProducerState::default();
        for i in 0..7 {
            state.update(&header(1, 0, i * 2, 2, (i * 2) as i64));
        }
        state.update(&header(2, 3, 0, 1, 20));
        state.write_snapshot(dir.path(), 21).unwrap();
        let loaded = ProducerState::read_snapshot(&snapshot_path(dir.path(), 21)).unwrap();
        assert_eq!(loaded, state);
        let mut raw = fs::read(snapshot_path(dir.path(), 21)).unwrap();
        raw[5] ^= 0xff;
        fs::write(snapshot_path(dir.path(), 21), raw).unwrap();
        assert!(ProducerState::read_snapshot(&snapshot_path(dir.path(), 21)).is_none());
    }
}
