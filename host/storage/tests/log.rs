//! Behaviour of a partition log through its public face: append, read, reopen, recover.

use std::fs::OpenOptions;
use std::io::Write;

use strom_storage::batch::{self, BatchHeader};
use strom_storage::{Log, LogConfig, StorageError, TimestampType};

mod support;
use support::batch;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

fn offsets_in(bytes: &[u8]) -> Vec<(i64, i64)> {
    batch::split_batches(bytes)
        .unwrap()
        .iter()
        .map(|b| {
            let h = BatchHeader::parse(b).unwrap();
            (h.base_offset, h.last_offset())
        })
        .collect()
}

#[test]
fn appends_assign_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
    for i in 0..50 {
        let info = log.append(&batch(3, 1000 + i, None), 1, 0).unwrap();
        assert_eq!(info.base_offset, i * 3);
        assert_eq!(info.last_offset, i * 3 + 2);
    }
    assert_eq!(log.log_end_offset(), 150);
    assert!(log.segment_count() > 3, "1 KiB segments must roll");
    // From inside a batch: the whole batch comes back.
    let data = log.read(64, 10_000, i64::MAX, true).unwrap();
    let offsets = offsets_in(&data);
    assert_eq!(offsets[0], (63, 65));
    // Offsets continue across the segment boundary, and reads stop at max_offset.
    let data = log.read(0, 1 << 20, 9, true).unwrap();
    assert_eq!(offsets_in(&data), vec![(0, 2), (3, 5), (6, 8)]);
    // A tiny max_bytes still yields the first batch whole.
    let data = log.read(3, 1, i64::MAX, true).unwrap();
    assert_eq!(offsets_in(&data), vec![(3, 5)]);
    assert!(log.read(150, 100, i64::MAX, true).unwrap().is_empty());
    assert!(matches!(
        log.read(151, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn corrupt_and_oversized_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let mut bad = batch(2, 1, None);
    let n = bad.len();
    bad[n - 2] ^= 0x40;
    assert!(matches!(log.append(&bad, 0, 0), Err(StorageError::CorruptBatch(_))));
    assert!(matches!(
        log.append(&batch(30, 1, None), 0, 0),
        Err(StorageError::MessageTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn torn_tail_is_truncated_on_recovery_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
        for _ in 0..10 {
            log.append(&batch(2, 5, None), 0, 0).unwrap();
        }
        // Simulated crash: no close(). Then half a batch lands at the end of the file.
        let segment = dir.path().join(format!("{:020}.log", 0));
        let mut file = OpenOptions::new().append(true).open(segment).unwrap();
        file.write_all(&batch(2, 5, None)[..30]).unwrap();
    }
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.append(&batch(1, 5, None), 0, 0).unwrap().base_offset, 20);
    let data = log.read(18, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!(offsets_in(&data), vec![(18, 19), (20, 20)]);
}

#[test]
fn clean_close_reopens_without_recovery_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
    for i in 0..40 {
        log.append(&batch(2, i, None), 0, 0).unwrap();
    }
    let before = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    log.close().unwrap();
    let log = Log::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(log.read(0, 1 << 20, i64::MAX, true).unwrap(), before);
    assert_eq!(
        log.batch_at_timestamp(20)
            .unwrap()
            .map(|b| BatchHeader::parse(&b).unwrap().base_offset),
        Some(40)
    );
    assert_eq!(
        log.batch_with_max_timestamp()
            .unwrap()
            .map(|b| BatchHeader::parse(&b).unwrap().base_offset),
        Some(78)
    );
}

#[test]
fn retried_idempotent_batches_are_not_appended_twice_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
        for seq in 0..20 {
            log.append(&batch(2, 1, Some((42, 0, seq * 2))), 0, 0).unwrap();
        }
        let dup = log.append(&batch(2, 1, Some((42, 0, 38))), 0, 0).unwrap();
        assert!(dup.duplicate);
        assert_eq!((dup.base_offset, dup.last_offset), (38, 39));
    }
    let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
    let dup = log.append(&batch(2, 1, Some((42, 0, 38))), 0, 0).unwrap();
    assert!(dup.duplicate, "state must be rebuilt from snapshot + log after a crash");
    assert!(matches!(
        log.append(&batch(1, 1, Some((42, 0, 45))), 0, 0),
        Err(StorageError::OutOfOrderSequence { expected: 40, .. })
    ));
    assert_eq!(
        log.append(&batch(1, 1, Some((42, 0, 40))), 0, 0).unwrap().base_offset,
        40
    );
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let info = log.append(&batch(2, 5, None), 777, 0).unwrap();
    assert_eq!(info.log_append_time_ms, 777);
    let data = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    let header = batch::validate(&data).unwrap();
    assert_eq!(header.max_timestamp, 777);
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
}

#[test]
fn delete_records_and_retention_move_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
    for i in 0..60 {
        log.append(&batch(2, i * 1000, None), 0, 0).unwrap();
    }
    log.set_high_watermark(log.log_end_offset());
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(30, 0).unwrap(), 30);
    assert!(log.segment_count() < segments);
    assert!(matches!(
        log.read(29, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(offsets_in(&log.read(30, 10, i64::MAX, true).unwrap())[0], (30, 31));
    drop(log);
    let mut log = Log::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(log.log_start_offset(), 30);
    let mut config = small_segments();
    config.retention_ms = 10_000;
    log.set_config(config);
    let deleted = log.apply_retention(60_000).unwrap();
    assert!(deleted > 0);
    assert!(log.log_start_offset() > 30);
    assert_eq!(log.log_end_offset(), 120);
}

#[test]
fn broker_rewritten_batches_keep_their_offset_range_and_sequences() {
    use strom_storage::batch::Origin;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    // A producer batch of 4 records (sequences 0..=3) from which a plugin kept only 1:
    // the rewritten batch has one record but still spans offset deltas 0..=3.
    let mut gapped = batch(1, 5, Some((9, 0, 0)));
    gapped[23..27].copy_from_slice(&3i32.to_be_bytes());
    let crc = support::crc32c(&gapped[21..]);
    gapped[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(
        matches!(log.append(&gapped, 0, 0), Err(StorageError::InvalidRecord(_))),
        "clients may not send gapped batches"
    );
    let info = log.append_from(&gapped, 0, 0, Origin::Broker).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 3));
    assert_eq!(log.log_end_offset(), 4);
    // The retry of the producer's original batch is recognised as a duplicate.
    let retry = batch(4, 5, Some((9, 0, 0)));
    let dup = log.append(&retry, 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.base_offset, dup.last_offset), (0, 3));
    // The next sequence continues after the whole range.
    assert_eq!(log.append(&batch(1, 5, Some((9, 0, 4))), 0, 0).unwrap().base_offset, 4);
}

#[test]
fn rewritten_batches_survive_an_unclean_restart() {
    use strom_storage::batch::Origin;
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut gapped = batch(2, 5, None);
        gapped[23..27].copy_from_slice(&5i32.to_be_bytes());
        let crc = support::crc32c(&gapped[21..]);
        gapped[17..21].copy_from_slice(&crc.to_be_bytes());
        log.append_from(&gapped, 0, 0, Origin::Broker).unwrap();
        log.append(&batch(3, 5, None), 0, 0).unwrap();
        // No close: the next open recovers by scanning.
    }
    let log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(
        log.log_end_offset(),
        9,
        "the gapped batch spans offsets 0..=5, the next 6..=8"
    );
}
