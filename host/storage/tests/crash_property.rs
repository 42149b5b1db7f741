//! Property: whatever sequence of appends a log sees, and wherever a crash cuts the last
//! segment, reopening yields exactly a prefix of the acknowledged batches, byte for byte,
//! and appends continue at the next offset.

use std::fs::OpenOptions;

use proptest::prelude::*;
use strom_storage::batch::{self, BatchHeader};
use strom_storage::{Log, LogConfig};

mod support;
use support::batch;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

fn read_all(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        for b in batch::split_batches(&bytes).unwrap() {
            let h = BatchHeader::parse(b).unwrap();
            // Compare from the CRC on: offsets are the log's, the rest is the producer's.
            out.push((h.base_offset, b[17..].to_vec()));
            offset = h.last_offset() + 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn reopening_after_a_torn_tail_keeps_a_prefix(
        sizes in proptest::collection::vec(1i32..6, 1..40),
        cut in 0usize..400,
        clean in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        {
            let mut log = Log::open(dir.path(), config(), 0).unwrap();
            for (i, &count) in sizes.iter().enumerate() {
                let b = batch(count, i as i64, None);
                let info = log.append(&b, 0, 0).unwrap();
                written.push((info.base_offset, b[17..].to_vec()));
            }
            if clean {
                log.close().unwrap();
            }
        }
        // Tear the tail of the last segment, as a crash mid-write would.
        let mut segments: Vec<_> = std::fs::read_dir(dir.path()).unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        segments.sort();
        let last = segments.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let keep = len.saturating_sub(cut as u64);
        if !clean {
            OpenOptions::new().write(true).open(last).unwrap().set_len(keep).unwrap();
        }
        let mut log = Log::open(dir.path(), config(), 0).unwrap();
        let recovered = read_all(&log);
        prop_assert!(recovered.len() <= written.len());
        prop_assert_eq!(&recovered[..], &written[..recovered.len()]);
        if clean {
            prop_assert_eq!(recovered.len(), written.len());
        }
        let next = log.log_end_offset();
        let info = log.append(&batch(2, 0, None), 0, 0).unwrap();
        prop_assert_eq!(info.base_offset, next);
    }
}
