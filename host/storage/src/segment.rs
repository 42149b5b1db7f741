//! One segment of a partition log: `<base>.log` with its `.index` and `.timeindex`.
//!
//! Only whole batches count: `size` is the byte length of the valid prefix of the file,
//! and readers never look past it, so a batch being appended is invisible until done.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use crate::error::{Result, StorageError};
use crate::index::{OffsetIndex, TimeIndex};

/// Read size when scanning a segment during recovery.
const RECOVERY_READ_BYTES: usize = 1 << 20;

/// File name of a segment file: the base offset zero-padded to 20 digits, as Kafka does.
pub fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    bytes_since_index_entry: u64,
    max_timestamp: i64,
    /// Base offset of the batch that holds `max_timestamp`.
    max_timestamp_batch_offset: i64,
    created_at_ms: i64,
}

/// What a recovery scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    pub batches: u64,
}

impl Segment {
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u64, now_ms: i64) -> Result<Segment> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("creating segment", &path, e))?;
        // A stale file of the same name (left by a truncation) starts over.
        file.set_len(0)
            .map_err(|e| StorageError::io("creating segment", &path, e))?;
        Ok(Segment {
            base_offset,
            offset_index: OffsetIndex::new(dir.join(file_name(base_offset, "index"))),
            time_index: TimeIndex::new(dir.join(file_name(base_offset, "timeindex"))),
            path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            index_interval_bytes,
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            max_timestamp_batch_offset: base_offset,
            created_at_ms: now_ms,
        })
    }

    /// Opens an existing segment. With `trusted` (a clean shutdown and a segment below the
    /// recovery point) the indexes on disk are used when they load; otherwise, or when they
    /// do not, the segment is scanned, its torn tail truncated and its indexes rebuilt.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        trusted: bool,
        now_ms: i64,
    ) -> Result<(Segment, RecoveryReport)> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("opening segment", &path, e))?;
        let size = file
            .metadata()
            .map_err(|e| StorageError::io("reading segment size", &path, e))?
            .len();
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let mut segment = Segment {
            base_offset,
            offset_index: OffsetIndex::new(index_path.clone()),
            time_index: TimeIndex::new(time_path.clone()),
            path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            index_interval_bytes,
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            max_timestamp_batch_offset: base_offset,
            created_at_ms: now_ms,
        };
        if trusted {
            if let (Some(offsets), Some(times)) = (OffsetIndex::load(index_path, size), TimeIndex::load(time_path)) {
                segment.offset_index = offsets;
                segment.time_index = times;
                if segment.load_tail()? {
                    let report = RecoveryReport {
                        valid_bytes: size,
                        truncated_bytes: 0,
                        batches: 0,
                    };
                    return Ok((segment, report));
                }
            }
        }
        let report = segment.recover()?;
        Ok((segment, report))
    }

    /// Completes a trusted open: scans headers from the last index entry to find the next
    /// offset and the max timestamp. Returns false if the tail does not line up.
    fn load_tail(&mut self) -> Result<bool> {
        let mut pos = self.offset_index.lookup(u32::MAX) as u64;
        self.max_timestamp = self.time_index.last_timestamp().unwrap_or(-1);
        while pos < self.size {
            let Some(header) = self.header_at(pos)? else {
                return Ok(false);
            };
            if pos + header.total_bytes() as u64 > self.size || header.magic != 2 {
                return Ok(false);
            }
            self.next_offset = header.last_offset() + 1;
            if header.max_timestamp > self.max_timestamp {
                self.max_timestamp = header.max_timestamp;
                self.max_timestamp_batch_offset = header.base_offset;
            }
            pos += header.total_bytes() as u64;
        }
        Ok(true)
    }

    /// Scans the whole segment, validating every batch; truncates at the first batch that
    /// is torn or corrupt and rebuilds both indexes from what is left.
    pub fn recover(&mut self) -> Result<RecoveryReport> {
        self.offset_index = OffsetIndex::new(self.offset_index.path().to_owned());
        self.time_index = TimeIndex::new(self.time_index.path().to_owned());
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.bytes_since_index_entry = 0;
        let file_size = self.size;
        let file = Arc::clone(&self.file);
        let mut reader = std::io::BufReader::with_capacity(RECOVERY_READ_BYTES, &*file);
        let mut pos: u64 = 0;
        let mut batches = 0;
        let mut buf = Vec::new();
        loop {
            let mut prefix = [0u8; LOG_OVERHEAD];
            if read_exact_or_eof(&mut reader, &mut prefix)? < LOG_OVERHEAD {
                break;
            }
            let length = i32::from_be_bytes(prefix[8..12].try_into().unwrap());
            if length < (HEADER_BYTES - LOG_OVERHEAD) as i32 || pos + LOG_OVERHEAD as u64 + length as u64 > file_size {
                break;
            }
            buf.clear();
            buf.extend_from_slice(&prefix);
            buf.resize(LOG_OVERHEAD + length as usize, 0);
            if read_exact_or_eof(&mut reader, &mut buf[LOG_OVERHEAD..])? < length as usize {
                break;
            }
            // The log also holds batches the broker rewrote (offset gaps): accept their shape.
            let Ok(header) = batch::validate_with(&buf, batch::Origin::Broker) else {
                break;
            };
            if header.base_offset < self.next_offset {
                break;
            }
            self.index_batch(&header, pos);
            pos += buf.len() as u64;
            batches += 1;
        }
        drop(reader);
        let truncated = file_size - pos;
        if truncated > 0 {
            tracing::warn!(
                segment = %self.path.display(),
                valid_bytes = pos,
                truncated_bytes = truncated,
                "truncating torn or corrupt tail of segment"
            );
            self.file
                .set_len(pos)
                .map_err(|e| StorageError::io("truncating segment", &self.path, e))?;
        }
        self.size = pos;
        Ok(RecoveryReport {
            valid_bytes: pos,
            truncated_bytes: truncated,
            batches,
        })
    }

    /// Updates indexes and bookkeeping for a batch that now sits at `position`.
    fn index_batch(&mut self, header: &BatchHeader, position: u64) {
        let relative = (header.base_offset - self.base_offset) as u32;
        if self.bytes_since_index_entry >= self.index_interval_bytes || self.offset_index.is_empty() && position > 0 {
            self.offset_index.append(relative, position as u32);
            self.time_index
                .maybe_append(self.max_timestamp.max(header.max_timestamp), relative);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.total_bytes() as u64;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_batch_offset = header.base_offset;
        }
        self.next_offset = header.last_offset() + 1;
    }

    /// Appends batches already validated and given their offsets. Each batch is written as
    /// a 16-byte patched prefix followed by the rest of the producer's bytes, so nothing is
    /// copied in user space.
    pub fn append(&mut self, batches: &[(BatchHeader, [u8; 16], &[u8])]) -> Result<()> {
        let mut slices = Vec::with_capacity(batches.len() * 2);
        let mut total = 0usize;
        for (_, prefix, rest) in batches {
            slices.push(IoSlice::new(prefix));
            slices.push(IoSlice::new(rest));
            total += prefix.len() + rest.len();
        }
        if let Err(e) = write_all_vectored_at_end(&self.file, &mut slices, total) {
            // Drop whatever part of the write landed so the next append starts clean.
            let _ = self.file.set_len(self.size);
            return Err(StorageError::io("appending to segment", &self.path, e));
        }
        let mut position = self.size;
        for (header, _, _) in batches {
            self.index_batch(header, position);
            position += header.total_bytes() as u64;
        }
        self.size = position;
        Ok(())
    }

    /// Reads the header of the batch at `position`, or `None` at the end of the segment.
    pub fn header_at(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position + HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_BYTES];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(|e| StorageError::io("reading batch header", &self.path, e))?;
        BatchHeader::parse(&buf).map(Some)
    }

    /// Position and header of the batch that contains `offset`, if this segment has it.
    pub fn find(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        if offset < self.base_offset || offset >= self.next_offset {
            return Ok(None);
        }
        let mut pos = self.offset_index.lookup((offset - self.base_offset) as u32) as u64;
        while let Some(header) = self.header_at(pos)? {
            if header.last_offset() >= offset {
                return Ok(Some((pos, header)));
            }
            pos += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Position and header of the first batch whose max timestamp is at or after `timestamp`.
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, BatchHeader)>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start = self.base_offset + self.time_index.lookup(timestamp) as i64;
        let mut pos = match self.find(start)? {
            Some((pos, _)) => pos,
            None => 0,
        };
        while let Some(header) = self.header_at(pos)? {
            if header.max_timestamp >= timestamp {
                return Ok(Some((pos, header)));
            }
            pos += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Reads up to `max_bytes` from `position`, but never past the segment's valid end.
    pub fn read(&self, position: u64, max_bytes: usize) -> Result<Bytes> {
        let len = (self.size.saturating_sub(position)).min(max_bytes as u64) as usize;
        let mut buf = BytesMut::zeroed(len);
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(|e| StorageError::io("reading segment", &self.path, e))?;
        Ok(buf.freeze())
    }

    /// Writes the in-memory index entries out; with `sync`, also fsyncs the log file.
    pub fn flush(&mut self, sync: bool) -> Result<()> {
        if sync {
            self.file
                .sync_data()
                .map_err(|e| StorageError::io("syncing segment", &self.path, e))?;
        }
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Removes the segment's files.
    pub fn delete(self) -> Result<()> {
        for path in [self.path.as_path(), self.offset_index.path(), self.time_index.path()] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("deleting segment", path, e)),
            }
        }
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn max_timestamp_batch_offset(&self) -> i64 {
        self.max_timestamp_batch_offset
    }
    pub fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }
    pub fn file_handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }
    pub fn index_entries(&self) -> usize {
        self.offset_index.len()
    }
}

fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StorageError::io("scanning segment", PathBuf::new(), e)),
        }
    }
    Ok(filled)
}

/// `write_all` for vectored writes (std's is unstable). Segment files are opened with
/// O_APPEND, so every write lands at the end of the valid log, even after a truncation.
fn write_all_vectored_at_end(file: &File, slices: &mut [IoSlice<'_>], mut remaining: usize) -> std::io::Result<()> {
    let mut writer = file;
    let mut slices: &mut [IoSlice<'_>] = slices;
    while remaining > 0 {
        let written = match writer.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        remaining -= written;
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}
