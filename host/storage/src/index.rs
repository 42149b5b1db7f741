//! Sparse offset and time indexes of one segment, in Kafka's on-disk layout.
//!
//! Entries live in memory and are written to disk when the segment is flushed, rolled or
//! closed. A crash can leave an index shorter than its log; recovery then rebuilds it from
//! the log, which is the source of truth.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// One offset index entry: offset relative to the segment base, byte position in the log.
const OFFSET_ENTRY_BYTES: usize = 8;
/// One time index entry: timestamp, then relative offset.
const TIME_ENTRY_BYTES: usize = 12;

/// Maps relative offsets to file positions: every entry names the start of a batch.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    entries: Vec<(u32, u32)>,
    /// Entries already on disk.
    persisted: usize,
}

impl OffsetIndex {
    pub fn new(path: PathBuf) -> OffsetIndex {
        OffsetIndex {
            path,
            entries: Vec::new(),
            persisted: 0,
        }
    }

    /// Loads an index file; `None` if it is missing or malformed (the caller rebuilds).
    pub fn load(path: PathBuf, log_bytes: u64) -> Option<OffsetIndex> {
        let raw = read_all(&path)?;
        if raw.len() % OFFSET_ENTRY_BYTES != 0 {
            return None;
        }
        let mut entries = Vec::with_capacity(raw.len() / OFFSET_ENTRY_BYTES);
        for chunk in raw.chunks_exact(OFFSET_ENTRY_BYTES) {
            let rel = u32::from_be_bytes(chunk[0..4].try_into().unwrap());
            let pos = u32::from_be_bytes(chunk[4..8].try_into().unwrap());
            let ordered = entries.last().is_none_or(|&(r, p)| rel > r && pos > p);
            if !ordered || pos as u64 >= log_bytes {
                return None;
            }
            entries.push((rel, pos));
        }
        let persisted = entries.len();
        Some(OffsetIndex {
            path,
            entries,
            persisted,
        })
    }

    pub fn append(&mut self, relative_offset: u32, position: u32) {
        debug_assert!(self
            .entries
            .last()
            .is_none_or(|&(r, p)| relative_offset > r && position > p));
        self.entries.push((relative_offset, position));
    }

    /// The position of the last indexed batch starting at or before `relative_offset`.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let idx = self.entries.partition_point(|&(r, _)| r <= relative_offset);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flush(&mut self) -> Result<()> {
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * OFFSET_ENTRY_BYTES);
        for &(rel, pos) in &self.entries[self.persisted..] {
            buf.extend_from_slice(&rel.to_be_bytes());
            buf.extend_from_slice(&pos.to_be_bytes());
        }
        append_to(&self.path, &buf, self.persisted == 0)?;
        self.persisted = self.entries.len();
        Ok(())
    }
}

/// Maps timestamps to relative offsets; timestamps are strictly increasing.
#[derive(Debug)]
pub struct TimeIndex {
    path: PathBuf,
    entries: Vec<(i64, u32)>,
    persisted: usize,
}

impl TimeIndex {
    pub fn new(path: PathBuf) -> TimeIndex {
        TimeIndex {
            path,
            entries: Vec::new(),
            persisted: 0,
        }
    }

    pub fn load(path: PathBuf) -> Option<TimeIndex> {
        let raw = read_all(&path)?;
        if raw.len() % TIME_ENTRY_BYTES != 0 {
            return None;
        }
        let mut entries = Vec::with_capacity(raw.len() / TIME_ENTRY_BYTES);
        for chunk in raw.chunks_exact(TIME_ENTRY_BYTES) {
            let ts = i64::from_be_bytes(chunk[0..8].try_into().unwrap());
            let rel = u32::from_be_bytes(chunk[8..12].try_into().unwrap());
            if entries.last().is_some_and(|&(t, r)| ts <= t || rel < r) {
                return None;
            }
            entries.push((ts, rel));
        }
        let persisted = entries.len();
        Some(TimeIndex {
            path,
            entries,
            persisted,
        })
    }

    /// Records that the batch at `relative_offset` raised the segment's max timestamp.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(t, _)| timestamp > t) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// A relative offset from which to scan for the first record with a timestamp at or
    /// after `timestamp`: the last entry whose timestamp is below it.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let idx = self.entries.partition_point(|&(t, _)| t < timestamp);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flush(&mut self) -> Result<()> {
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * TIME_ENTRY_BYTES);
        for &(ts, rel) in &self.entries[self.persisted..] {
            buf.extend_from_slice(&ts.to_be_bytes());
            buf.extend_from_slice(&rel.to_be_bytes());
        }
        append_to(&self.path, &buf, self.persisted == 0)?;
        self.persisted = self.entries.len();
        Ok(())
    }
}

fn read_all(path: &Path) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    File::open(path).ok()?.read_to_end(&mut raw).ok()?;
    Some(raw)
}

fn append_to(path: &Path, buf: &[u8], truncate: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .open(path)
        .map_err(|e| StorageError::io("opening index", path, e))?;
    file.write_all(buf)
        .map_err(|e| StorageError::io("writing index", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::new(path.clone());
        index.append(0, 0);
        index.append(10, 4096);
        index.flush().unwrap();
        index.append(20, 8192);
        index.flush().unwrap();
        let loaded = OffsetIndex::load(path, 10_000).unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.lookup(5), 0);
        assert_eq!(loaded.lookup(10), 4096);
        assert_eq!(loaded.lookup(25), 8192);
    }

    #[test]
    fn offset_index_pointing_past_the_log_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::new(path.clone());
        index.append(1, 500);
        index.flush().unwrap();
        assert!(OffsetIndex::load(path, 100).is_none());
    }

    #[test]
    fn time_index_finds_scan_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::new(dir.path().join("0.timeindex"));
        index.maybe_append(100, 0);
        index.maybe_append(50, 3);
        index.maybe_append(200, 7);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(150), 0);
        assert_eq!(index.lookup(201), 7);
        index.flush().unwrap();
        assert_eq!(TimeIndex::load(index.path().to_owned()).unwrap().entries.len(), 2);
    }
}
