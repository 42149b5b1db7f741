//! A partition log: an ordered set of segments, the offsets that bound it, producer state
//! and the flush, roll and retention rules of its topic.
//!
//! *Invariant:* `log_start_offset <= high_watermark <= log_end_offset`, and the segments
//! cover `[first segment base, log_end_offset)` without overlap.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, BatchHeader, TimestampType};
use crate::checkpoint;
use crate::error::{Result, StorageError};
use crate::producer_state::{snapshot_path, ProducerState, SequenceCheck};
use crate::segment::{self, Segment};

const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const RECOVERY_POINT_FILE: &str = "recovery-point";
const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Producer snapshots kept per partition; older ones are deleted.
const SNAPSHOTS_KEPT: usize = 2;

/// The per-topic settings that shape a log (Kafka's topic configs of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `index.interval.bytes`
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`
    pub timestamp_type: TimestampType,
    /// `flush.messages`: fsync after this many records (`i64::MAX`: leave it to the OS).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed record is this old.
    pub flush_ms: i64,
    /// `retention.ms` (-1: keep forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: no size limit).
    pub retention_bytes: i64,
    /// `cleanup.policy` includes `delete`.
    pub delete_enabled: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            delete_enabled: true,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's time for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    pub records: i64,
    /// The batch was a retry of one already in the log; nothing was written.
    pub duplicate: bool,
    /// An fsync the flush policy (`flush.messages`, `flush.ms`) requires before the
    /// append is acknowledged.
    pub flush: Option<FlushJob>,
    /// The append rolled a new segment: fsync the old ones in the background (as Kafka
    /// does) so that recovery after a crash can start from the new segment.
    pub rolled: Option<FlushJob>,
}

/// An fsync to run outside the log's lock, then report with [`Log::flushed_up_to`].
#[derive(Debug, Clone)]
pub struct FlushJob {
    files: Vec<Arc<File>>,
    pub up_to_offset: i64,
}

impl PartialEq for FlushJob {
    fn eq(&self, other: &Self) -> bool {
        self.up_to_offset == other.up_to_offset
    }
}
impl Eq for FlushJob {}

impl FlushJob {
    pub fn run(&self) -> std::io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    producers: ProducerState,
    unflushed_records: i64,
    last_flush_ms: i64,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering whatever an unclean stop left.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig, now_ms: i64) -> Result<Log> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StorageError::io("creating log directory", &dir, e))?;
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let recovery_point = if clean {
            i64::MAX
        } else {
            checkpoint::read_offset(&dir.join(RECOVERY_POINT_FILE)).unwrap_or(0)
        };
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| StorageError::io("listing log directory", &dir, e))? {
            let entry = entry.map_err(|e| StorageError::io("listing log directory", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = name.strip_suffix(".log").and_then(|b| b.parse::<i64>().ok()) {
                bases.push(base);
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();

        let mut segments = BTreeMap::new();
        let mut truncated_middle = false;
        for (i, &base) in bases.iter().enumerate() {
            if truncated_middle {
                tracing::warn!(dir = %dir.display(), base, "deleting segment after a truncated one");
                Segment::create(&dir, base, config.index_interval_bytes, now_ms)?.delete()?;
                continue;
            }
            let trusted = clean || bases.get(i + 1).is_some_and(|&next| next <= recovery_point);
            let (segment, report) = Segment::open(&dir, base, config.index_interval_bytes, trusted, now_ms)?;
            if report.truncated_bytes > 0 && i + 1 < bases.len() {
                truncated_middle = true;
            }
            segments.insert(base, segment);
        }
        let checkpointed_start = checkpoint::read_offset(&dir.join(LOG_START_OFFSET_FILE)).unwrap_or(0);
        if segments.is_empty() {
            let segment = Segment::create(&dir, checkpointed_start, config.index_interval_bytes, now_ms)?;
            segments.insert(checkpointed_start, segment);
        }
        let first_base = *segments.keys().next().unwrap();
        let log_end_offset = segments.values().next_back().unwrap().next_offset();
        let log_start_offset = checkpointed_start.max(first_base).min(log_end_offset);

        let mut log = Log {
            config,
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark: log_end_offset,
            recovery_point: recovery_point.min(log_end_offset),
            producers: ProducerState::default(),
            unflushed_records: 0,
            last_flush_ms: now_ms,
            dir,
        };
        log.rebuild_producer_state()?;
        if clean {
            fs::remove_file(log.dir.join(CLEAN_SHUTDOWN_FILE))
                .map_err(|e| StorageError::io("removing clean-shutdown marker", &log.dir, e))?;
            checkpoint::sync_dir(&log.dir)?;
        }
        Ok(log)
    }

    /// Loads the newest producer snapshot at or below the log end and replays the batch
    /// headers written after it.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        let mut snapshots = self.snapshot_offsets()?;
        for &offset in snapshots.iter().filter(|&&o| o > self.log_end_offset) {
            let _ = fs::remove_file(snapshot_path(&self.dir, offset));
        }
        snapshots.retain(|&o| o <= self.log_end_offset);
        let mut from = self.log_start_offset;
        for &offset in snapshots.iter().rev() {
            if let Some(state) = ProducerState::read_snapshot(&snapshot_path(&self.dir, offset)) {
                self.producers = state;
                from = offset;
                break;
            }
        }
        for segment in self.segments.values() {
            if segment.next_offset() <= from {
                continue;
            }
            let mut pos = match segment.find(from)? {
                Some((pos, _)) => pos,
                None => 0,
            };
            while let Some(header) = segment.header_at(pos)? {
                if header.last_offset() >= from {
                    self.producers.update(&header);
                }
                pos += header.total_bytes() as u64;
            }
        }
        Ok(())
    }

    fn snapshot_offsets(&self) -> Result<Vec<i64>> {
        let mut offsets = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| StorageError::io("listing log directory", &self.dir, e))? {
            let entry = entry.map_err(|e| StorageError::io("listing log directory", &self.dir, e))?;
            if let Some(o) = entry
                .file_name()
                .to_string_lossy()
                .strip_suffix(".snapshot")
                .and_then(|b| b.parse::<i64>().ok())
            {
                offsets.push(o);
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    /// Validates and appends the batches of one produce request for this partition,
    /// assigning offsets from the log end. Either every batch is appended or none is.
    pub fn append(&mut self, records: &[u8], now_ms: i64, leader_epoch: i32) -> Result<AppendInfo> {
        self.append_from(records, now_ms, leader_epoch, batch::Origin::Client)
    }

    /// If `records` is a retry of batches already in the log (idempotent producers), the
    /// offsets they were given; a sequence or epoch error if appending would fail on one.
    /// Checked without appending anything.
    pub fn duplicate_of(&self, records: &[u8]) -> Result<Option<(i64, i64)>> {
        let Some(first) = batch::split_batches(records)?.first().copied() else {
            return Ok(None);
        };
        let header = BatchHeader::parse(first)?;
        Ok(match self.producers.check(&header)? {
            SequenceCheck::Duplicate(dup) => Some((dup.first_offset, dup.last_offset)),
            SequenceCheck::Append => None,
        })
    }

    /// Like [`append`](Self::append), for batches the broker rewrote (see [`batch::Origin`]).
    pub fn append_from(
        &mut self,
        records: &[u8],
        now_ms: i64,
        leader_epoch: i32,
        origin: batch::Origin,
    ) -> Result<AppendInfo> {
        let raw_batches = batch::split_batches(records)?;
        if raw_batches.is_empty() {
            return Err(StorageError::InvalidRecord(
                "produce request carries no record batch".into(),
            ));
        }
        let mut headers = Vec::with_capacity(raw_batches.len());
        for raw in &raw_batches {
            if raw.len() > self.config.max_message_bytes {
                return Err(StorageError::MessageTooLarge {
                    size: raw.len(),
                    max: self.config.max_message_bytes,
                });
            }
            let header = batch::validate_with(raw, origin)?;
            if header.is_control() {
                return Err(StorageError::InvalidRecord(
                    "clients may not write control batches".into(),
                ));
            }
            headers.push(header);
        }

        // Sequence checks. Several batches in one request are checked against a scratch
        // copy so that the later ones see the earlier ones.
        let mut scratch = (headers.len() > 1).then(|| self.producers.clone());
        for header in &headers {
            let state = scratch.as_mut().unwrap_or(&mut self.producers);
            if let SequenceCheck::Duplicate(dup) = state.check(header)? {
                return Ok(AppendInfo {
                    base_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    log_append_time_ms: -1,
                    records: 0,
                    duplicate: true,
                    flush: None,
                    rolled: None,
                });
            }
            if let Some(state) = scratch.as_mut() {
                state.update(header);
            }
        }

        let bytes: usize = raw_batches.iter().map(|b| b.len()).sum();
        let records_count: i64 = headers.iter().map(|h| h.records_count as i64).sum();
        // Offsets a batch takes: its whole delta range, also where records were dropped.
        let offsets_taken: i64 = headers.iter().map(|h| h.last_offset_delta as i64 + 1).sum();
        let rolled = self.maybe_roll(bytes, offsets_taken, now_ms)?;

        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let stamped: Vec<Vec<u8>> = if log_append_time {
            raw_batches
                .iter()
                .map(|raw| {
                    let mut owned = raw.to_vec();
                    batch::stamp_log_append_time(&mut owned, now_ms);
                    owned
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut next = self.log_end_offset;
        let mut pieces = Vec::with_capacity(headers.len());
        for (i, header) in headers.iter_mut().enumerate() {
            let raw: &[u8] = if log_append_time { &stamped[i] } else { raw_batches[i] };
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            if log_append_time {
                header.max_timestamp = now_ms;
            }
            next += header.last_offset_delta as i64 + 1;
            pieces.push((
                *header,
                batch::patched_prefix(raw, header.base_offset, leader_epoch),
                &raw[16..],
            ));
        }
        self.active_mut().append(&pieces)?;
        let base_offset = self.log_end_offset;
        self.log_end_offset = next;
        match scratch {
            Some(state) => self.producers = state,
            None => self.producers.update(&headers[0]),
        }
        self.unflushed_records += records_count;
        let flush = self.flush_if_due(now_ms);
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            records: records_count,
            duplicate: false,
            flush,
            rolled,
        })
    }

    fn flush_due(&self, now_ms: i64) -> bool {
        self.unflushed_records >= self.config.flush_messages
            || (self.unflushed_records > 0 && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// Rolls a new active segment when the next append would not fit the current one.
    /// The old segment's fsync is handed back as a job (Kafka flushes it asynchronously too).
    fn maybe_roll(&mut self, bytes: usize, records: i64, now_ms: i64) -> Result<Option<FlushJob>> {
        let active = self.active();
        if active.size() == 0 {
            return Ok(None);
        }
        let full = active.size() + bytes as u64 > self.config.segment_bytes;
        let old = now_ms.saturating_sub(active.created_at_ms()) >= self.config.segment_ms;
        let offsets_overflow = self.log_end_offset + records - active.base_offset() > i32::MAX as i64;
        let position_overflow = active.size() + bytes as u64 > u32::MAX as u64;
        if !(full || old || offsets_overflow || position_overflow) {
            return Ok(None);
        }
        Ok(Some(self.roll(now_ms)?))
    }

    /// Starts a new segment at the log end offset; returns the flush of everything before.
    pub fn roll(&mut self, now_ms: i64) -> Result<FlushJob> {
        let job = self.flush_job();
        self.active_mut().flush(false)?;
        let segment = Segment::create(&self.dir, self.log_end_offset, self.config.index_interval_bytes, now_ms)?;
        self.segments.insert(self.log_end_offset, segment);
        self.producers.write_snapshot(&self.dir, self.log_end_offset)?;
        self.prune_snapshots()?;
        checkpoint::sync_dir(&self.dir)?;
        Ok(job)
    }

    fn flush_job(&self) -> FlushJob {
        FlushJob {
            files: self
                .segments
                .range(self.recovery_point.min(self.active().base_offset())..)
                .map(|(_, s)| s.file_handle())
                .chain(std::iter::once(self.active().file_handle()))
                .collect(),
            up_to_offset: self.log_end_offset,
        }
    }

    /// Records that a [`FlushJob`] completed: recovery after a crash starts from here.
    pub fn flushed_up_to(&mut self, offset: i64) -> Result<()> {
        if offset > self.recovery_point {
            self.recovery_point = offset.min(self.log_end_offset);
            checkpoint::write_offset(&self.dir.join(RECOVERY_POINT_FILE), self.recovery_point)?;
        }
        Ok(())
    }

    /// A flush job if `flush.ms` has passed since the last flush and records wait.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Option<FlushJob> {
        if !self.flush_due(now_ms) {
            return None;
        }
        self.last_flush_ms = now_ms;
        self.unflushed_records = 0;
        Some(self.flush_job())
    }

    fn prune_snapshots(&self) -> Result<()> {
        let offsets = self.snapshot_offsets()?;
        if offsets.len() > SNAPSHOTS_KEPT {
            for &offset in &offsets[..offsets.len() - SNAPSHOTS_KEPT] {
                let _ = fs::remove_file(snapshot_path(&self.dir, offset));
            }
        }
        Ok(())
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes`
    /// (the first batch is returned whole even if larger, with `min_one_batch`), and only
    /// batches that start below `max_offset` (the high watermark for consumers).
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: i64, min_one_batch: bool) -> Result<Bytes> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if offset >= max_offset.min(self.log_end_offset) {
            return Ok(Bytes::new());
        }
        for (_, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let (pos, header) = match segment.find(offset)? {
                Some(found) => found,
                None if segment.base_offset() > offset => match segment.header_at(0)? {
                    Some(h) => (0, h),
                    None => continue,
                },
                None => continue,
            };
            let want = if min_one_batch {
                max_bytes.max(header.total_bytes())
            } else {
                max_bytes
            };
            let data = segment.read(pos, want)?;
            let whole = batch::whole_batches_prefix(&data, max_offset);
            return Ok(data.slice(..whole));
        }
        Ok(Bytes::new())
    }

    /// The first batch holding a record with a timestamp at or after `timestamp`.
    pub fn batch_at_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>> {
        for segment in self.segments.values() {
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some((pos, header)) = segment.find_by_timestamp(timestamp)? {
                return segment.read(pos, header.total_bytes()).map(Some);
            }
        }
        Ok(None)
    }

    /// The batch holding the largest timestamp in the log.
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Bytes>> {
        let Some(segment) = self
            .segments
            .values()
            .filter(|s| s.size() > 0)
            .max_by_key(|s| s.max_timestamp())
        else {
            return Ok(None);
        };
        match segment.find(segment.max_timestamp_batch_offset())? {
            Some((pos, header)) => segment.read(pos, header.total_bytes()).map(Some),
            None => Ok(None),
        }
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords) and removes the
    /// segments that lie wholly below it.
    pub fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64> {
        if offset < self.log_start_offset || offset > self.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        self.log_start_offset = offset;
        checkpoint::write_offset(&self.dir.join(LOG_START_OFFSET_FILE), offset)?;
        if self.active().next_offset() <= offset && self.active().size() > 0 {
            self.roll(now_ms)?;
        }
        self.delete_segments_below(offset)?;
        Ok(self.log_start_offset)
    }

    fn delete_segments_below(&mut self, offset: i64) -> Result<usize> {
        let active = self.active().base_offset();
        let doomed: Vec<i64> = self
            .segments
            .values()
            .filter(|s| s.base_offset() != active && s.next_offset() <= offset)
            .map(|s| s.base_offset())
            .collect();
        for base in &doomed {
            self.segments.remove(base).unwrap().delete()?;
        }
        Ok(doomed.len())
    }

    /// Deletes old segments by `retention.ms` and `retention.bytes` (never the active one).
    /// Returns how many were deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        if !self.config.delete_enabled {
            return Ok(0);
        }
        let active = self.active().base_offset();
        let mut total: i64 = self.segments.values().map(|s| s.size() as i64).sum();
        let mut new_start = self.log_start_offset;
        for segment in self.segments.values() {
            if segment.base_offset() == active || segment.next_offset() > self.high_watermark {
                break;
            }
            let expired = self.config.retention_ms >= 0
                && segment.max_timestamp() >= 0
                && now_ms - segment.max_timestamp() > self.config.retention_ms;
            let oversized =
                self.config.retention_bytes >= 0 && total - segment.size() as i64 >= self.config.retention_bytes;
            if !(expired || oversized) {
                break;
            }
            total -= segment.size() as i64;
            new_start = new_start.max(segment.next_offset());
        }
        if new_start == self.log_start_offset {
            return Ok(0);
        }
        self.log_start_offset = new_start;
        checkpoint::write_offset(&self.dir.join(LOG_START_OFFSET_FILE), new_start)?;
        self.delete_segments_below(new_start)
    }

    /// Flushes everything and leaves the marker that lets the next open skip recovery.
    pub fn close(mut self) -> Result<()> {
        for segment in self.segments.values_mut() {
            segment.flush(true)?;
        }
        self.producers.write_snapshot(&self.dir, self.log_end_offset)?;
        self.prune_snapshots()?;
        checkpoint::write_offset(&self.dir.join(RECOVERY_POINT_FILE), self.log_end_offset)?;
        checkpoint::write_atomically(&self.dir.join(CLEAN_SHUTDOWN_FILE), b"")?;
        Ok(())
    }

    /// A job that fsyncs every segment, for a shutdown that cannot take the log by value.
    pub fn close_job(&self) -> Option<FlushJob> {
        Some(FlushJob {
            files: self.segments.values().map(|s| s.file_handle()).collect(),
            up_to_offset: self.log_end_offset,
        })
    }

    /// Removes the log and its directory.
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(|e| StorageError::io("deleting log directory", &dir, e))
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    /// Moves the high watermark; it never passes the log end.
    pub fn set_high_watermark(&mut self, offset: i64) {
        assert!(
            offset <= self.log_end_offset,
            "high watermark {offset} beyond log end {}",
            self.log_end_offset
        );
        self.high_watermark = offset.max(self.log_start_offset);
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }
}

/// Reads the header of the first batch in `bytes`, for callers that got a whole batch.
pub fn first_header(bytes: &[u8]) -> Result<BatchHeader> {
    BatchHeader::parse(bytes)
}

#[allow(dead_code)]
fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(segment::file_name(base, "log"))
}
