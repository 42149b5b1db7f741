//! Durability of the real `strom` binary: records acknowledged with acks=all survive
//! `kill -9` (after the producer finished, and in the middle of producing), and a SIGTERM
//! shuts the broker down cleanly and promptly with its data intact.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{clients_dir, connect, python, Broker};
use serde_json::Value;

/// `[[i, partition, offset], ...]` from ck_tool.py produce.
fn acked(r: &Value) -> Vec<(i64, i64, i64)> {
    r["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a[0].as_i64().unwrap(), a[1].as_i64().unwrap(), a[2].as_i64().unwrap()))
        .collect()
}

/// What a dump of the topic holds: per partition, the (offset, value) pairs in order, and
/// the [low, high] watermarks.
struct Dump {
    partitions: Vec<Vec<(i64, String)>>,
    watermarks: Vec<(i64, i64)>,
}

fn dump(broker: &Broker, topic: &str, partitions: usize) -> Dump {
    let r = python(
        broker,
        "ck_tool.py",
        &["dump", &broker.addr(), topic, &partitions.to_string()],
    );
    let parts = r["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|rec| {
                    // Values are PREFIX-i, padded with dots by `produce ... PAD`.
                    let v = rec[2].as_str().unwrap().trim_end_matches('.');
                    (rec[0].as_i64().unwrap(), v.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let watermarks = r["watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w[0].as_i64().unwrap(), w[1].as_i64().unwrap()))
        .collect();
    let d = Dump {
        partitions: parts,
        watermarks,
    };
    // Every partition reads back as offsets 0, 1, 2, ... up to its high watermark: no gap,
    // no duplicate, and nothing served beyond the high watermark.
    for (q, recs) in d.partitions.iter().enumerate() {
        let offsets: Vec<i64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets,
            (0..recs.len() as i64).collect::<Vec<_>>(),
            "partition {q}: offsets are not contiguous from 0"
        );
        assert_eq!(
            d.watermarks[q],
            (0, recs.len() as i64),
            "partition {q}: [low, high] watermarks vs records read"
        );
    }
    d
}

/// Every acked record is in the dump at its acked partition and offset with its value, and
/// no value appears twice in the topic.
fn assert_acked_present(d: &Dump, acked: &[(i64, i64, i64)], prefix: &str) {
    let mut missing = Vec::new();
    for &(i, q, o) in acked {
        let want = format!("{prefix}-{i}");
        match d.partitions[q as usize].get(o as usize) {
            Some((off, v)) if *off == o && *v == want => {}
            other => missing.push(format!("{want} acked at {q}/{o}, found {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing or changed after restart, first: {:#?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let mut seen = HashSet::new();
    for recs in &d.partitions {
        for (o, v) in recs {
            assert!(seen.insert(v.clone()), "value {v} stored twice (again at offset {o})");
        }
    }
}

/// Produce 20,000 records with acks=all, wait for every delivery report, kill -9, restart:
/// every acknowledged record is there exactly once, in order, and producing continues at
/// the next offset of each partition.
#[test]
fn acked_records_survive_kill_9_and_restart() {
    let mut broker = Broker::start();
    python(&broker, "ck_tool.py", &["create", &broker.addr(), "durable", "2"]);
    let first = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "durable", "20000", "0", "2"],
    ));
    assert_eq!(first.len(), 20_000);

    broker.kill9();
    broker.restart();

    let d = dump(&broker, "durable", 2);
    assert_eq!(d.partitions[0].len(), 10_000, "partition 0 after restart");
    assert_eq!(d.partitions[1].len(), 10_000, "partition 1 after restart");
    assert_acked_present(&d, &first, "rec");

    let more = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "durable", "10", "20000", "2"],
    ));
    let offsets: Vec<(i64, i64)> = more.iter().map(|&(_, q, o)| (q, o)).collect();
    assert_eq!(
        offsets,
        vec![
            (0, 10_000),
            (1, 10_000),
            (0, 10_001),
            (1, 10_001),
            (0, 10_002),
            (1, 10_002),
            (0, 10_003),
            (1, 10_003),
            (0, 10_004),
            (1, 10_004),
        ],
        "producing after restart continues at the next offsets"
    );
    let d = dump(&broker, "durable", 2);
    assert_eq!(d.watermarks, vec![(0, 10_005), (0, 10_005)]);
    let all: Vec<_> = first.iter().chain(more.iter()).copied().collect();
    assert_acked_present(&d, &all, "rec");
}

/// kill -9 while a producer (acks=all) is writing: after restart every record whose delivery
/// was acknowledged before the kill is there at its offset, the logs read back without gaps
/// or duplicates (a torn tail, if any, is cut), and new records append right after.
#[test]
fn kill_9_during_produce_loses_no_acked_record() {
    let mut broker = Broker::start();
    python(&broker, "ck_tool.py", &["create", &broker.addr(), "stream", "2"]);
    let acks_path = broker.scratch_dir().join("acks.txt");
    let err_path = broker.scratch_dir().join("stream.err");
    let mut producer = Command::new("python3")
        .arg(clients_dir().join("ck_tool.py"))
        .args(["stream", &broker.addr(), "stream", "2", "60"])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&acks_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn ck_tool.py stream");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = std::fs::read_to_string(&acks_path).unwrap_or_default().lines().count();
        if lines >= 5000 {
            break;
        }
        if let Some(st) = producer.try_wait().unwrap() {
            panic!(
                "stream producer exited early ({st}) after {lines} acks: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "only {lines} acks within 60s: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
    broker.kill9();
    thread::sleep(Duration::from_millis(300));
    let _ = producer.kill();
    let _ = producer.wait();

    let text = std::fs::read_to_string(&acks_path).unwrap();
    let mut acked = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        // The last line may be torn by the kill: take only complete ones.
        if f.len() == 4 && f[0] == "ACK" {
            if let (Ok(i), Ok(q), Ok(o)) = (f[1].parse(), f[2].parse(), f[3].parse()) {
                acked.push((i, q, o));
            }
        }
    }
    assert!(acked.len() >= 5000, "parsed {} acks", acked.len());

    broker.restart();
    let d = dump(&broker, "stream", 2);
    eprintln!(
        "{} records acknowledged before kill -9; {} in the log after restart",
        acked.len(),
        d.partitions.iter().map(Vec::len).sum::<usize>()
    );
    assert_acked_present(&d, &acked, "s");
    let mut max_acked: BTreeMap<i64, i64> = BTreeMap::new();
    for &(_, q, o) in &acked {
        let e = max_acked.entry(q).or_insert(-1);
        *e = (*e).max(o);
    }
    for (q, recs) in d.partitions.iter().enumerate() {
        assert!(
            recs.len() as i64 > max_acked[&(q as i64)],
            "partition {q}: log ends before its last acknowledged offset"
        );
    }

    let ends: Vec<i64> = d.watermarks.iter().map(|w| w.1).collect();
    let more = acked_after(&broker);
    let offsets: Vec<(i64, i64)> = more.iter().map(|&(_, q, o)| (q, o)).collect();
    assert_eq!(
        offsets,
        vec![
            (0, ends[0]),
            (1, ends[1]),
            (0, ends[0] + 1),
            (1, ends[1] + 1),
            (0, ends[0] + 2),
            (1, ends[1] + 2),
        ]
    );
    let d2 = dump(&broker, "stream", 2);
    assert_eq!(d2.watermarks, vec![(0, ends[0] + 3), (0, ends[1] + 3)]);
    assert_acked_present(&d2, &more, "after");
}

fn acked_after(broker: &Broker) -> Vec<(i64, i64, i64)> {
    acked(&python(
        broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "stream", "6", "0", "2", "after"],
    ))
}

/// SIGTERM with an idle client connection open: the broker exits 0 within 10 s, and after a
/// restart on the same port and data directory every record is there and producing
/// continues at the next offset.
#[test]
fn sigterm_exits_zero_promptly_and_keeps_data() {
    let mut broker = Broker::start();
    python(&broker, "ck_tool.py", &["create", &broker.addr(), "graceful", "1"]);
    let first = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "graceful", "1000", "0", "1"],
    ));
    assert_eq!(first.len(), 1000);
    let _idle = connect(&broker.addr());
    let (status, took) = broker.sigterm(Duration::from_secs(10));
    assert!(
        status.success(),
        "broker exited with {status} after SIGTERM (expected 0); log:\n{}",
        broker.log_tail()
    );
    assert!(took < Duration::from_secs(10), "SIGTERM shutdown took {took:?}");
    eprintln!("SIGTERM shutdown took {took:?}");

    broker.restart();
    let d = dump(&broker, "graceful", 1);
    assert_eq!(d.partitions[0].len(), 1000);
    assert_acked_present(&d, &first, "rec");
    let more = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "graceful", "1", "1000", "1"],
    ));
    assert_eq!(more, vec![(1000, 0, 1000)]);
}

/// The newest segment file (`NNNNNNNNNNNNNNNNNNNN.log`) of a partition, in Kafka's on-disk
/// layout `log.dirs/TOPIC-PARTITION/`.
fn active_segment(broker: &Broker, topic: &str, partition: i32) -> std::path::PathBuf {
    let dir = broker.data_dir().join(format!("{topic}-{partition}"));
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("partition directory {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no .log segment in {}", dir.display()))
}

/// (position, length) of the last record batch in a segment file: each batch starts with
/// baseOffset (int64) and batchLength (int32, the bytes after that field).
fn last_batch(bytes: &[u8]) -> (usize, usize) {
    let mut at = 0;
    let mut last = None;
    while at + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        assert!(
            at + 12 + len <= bytes.len(),
            "segment ends inside a batch before the test touched it"
        );
        last = Some((at, 12 + len));
        at += 12 + len;
    }
    last.expect("segment holds no batch")
}

/// After kill -9, make the tail of the active segment look like a crash mid-write, by
/// appending `tail(last_batch_bytes)`; restart and check that exactly the 1000 acknowledged
/// records are served, and that new records continue at offset 1000.
fn recovers_from_damaged_tail(topic: &str, damage: impl Fn(&[u8]) -> Vec<u8>) {
    let mut broker = Broker::start();
    python(&broker, "ck_tool.py", &["create", &broker.addr(), topic, "1"]);
    let first = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), topic, "1000", "0", "1"],
    ));
    assert_eq!(first.len(), 1000);
    broker.kill9();

    let segment = active_segment(&broker, topic, 0);
    let bytes = std::fs::read(&segment).unwrap();
    let (pos, len) = last_batch(&bytes);
    let mut batch = bytes[pos..pos + len].to_vec();
    // The next batch would start at the offset after this one's last record.
    let base = i64::from_be_bytes(batch[0..8].try_into().unwrap());
    let last_delta = i32::from_be_bytes(batch[23..27].try_into().unwrap()) as i64;
    batch[0..8].copy_from_slice(&(base + last_delta + 1).to_be_bytes());
    let junk = damage(&batch);
    let mut f = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
    std::io::Write::write_all(&mut f, &junk).unwrap();
    drop(f);

    broker.restart();
    let d = dump(&broker, topic, 1);
    assert_eq!(
        d.watermarks,
        vec![(0, 1000)],
        "after appending {} damaged bytes to {}, the recovered log must end at offset 1000",
        junk.len(),
        segment.display()
    );
    assert_acked_present(&d, &first, "rec");
    let more = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), topic, "10", "1000", "1"],
    ));
    let offsets: Vec<i64> = more.iter().map(|a| a.2).collect();
    assert_eq!(offsets, (1000..1010).collect::<Vec<_>>());
    let d = dump(&broker, topic, 1);
    assert_eq!(d.watermarks, vec![(0, 1010)]);
    let all: Vec<_> = first.iter().chain(more.iter()).copied().collect();
    assert_acked_present(&d, &all, "rec");
}

/// A torn tail (the first half of a batch, as a crash in the middle of a write leaves it)
/// is truncated on restart.
#[test]
fn torn_tail_is_truncated_on_restart() {
    recovers_from_damaged_tail("torn", |batch| batch[..batch.len() / 2].to_vec());
}

/// A complete batch whose CRC does not match its contents (a torn page inside it) at the
/// tail is truncated on restart, not served.
#[test]
fn corrupt_tail_batch_is_truncated_on_restart() {
    recovers_from_damaged_tail("corrupt", |batch| {
        let mut b = batch.to_vec();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        b
    });
}

fn offsets_for_times(broker: &Broker, topic: &str, stamps: &[i64]) -> Vec<i64> {
    let mut args = vec!["times".to_string(), broker.addr(), topic.to_string(), "0".to_string()];
    args.extend(stamps.iter().map(|t| t.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(broker, "ck_tool.py", &args)["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn segment_count(broker: &Broker, topic: &str) -> usize {
    std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count()
}

/// A log of several segments (log.segment.bytes=1 MiB, ~7 MB written): every record reads
/// back, ListOffsets by timestamp finds records in any segment, and after kill -9 the same
/// holds (indexes rebuilt or still valid) and appends continue at the end.
#[test]
fn multi_segment_log_survives_kill_9() {
    let mut broker = Broker::start_with(&[("log.segment.bytes", "1048576")]);
    python(&broker, "ck_tool.py", &["create", &broker.addr(), "seg", "1"]);
    let r = python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "seg", "30000", "0", "1", "rec", "200"],
    );
    let first = acked(&r);
    assert_eq!(first.len(), 30_000);
    // Record i has CreateTime ts_base + i.
    let ts_base = r["ts_base"].as_i64().unwrap();
    let segments = segment_count(&broker, "seg");
    assert!(
        segments >= 5,
        "~7 MB with log.segment.bytes=1048576 must roll into several segments, found {segments}"
    );
    let stamps = [
        ts_base - 1,
        ts_base + 7_777,
        ts_base + 15_000,
        ts_base + 29_999,
        ts_base + 30_000,
    ];
    let expected_offsets = vec![0, 7_777, 15_000, 29_999, -1];
    assert_eq!(offsets_for_times(&broker, "seg", &stamps), expected_offsets);

    broker.kill9();
    broker.restart();
    assert_eq!(segment_count(&broker, "seg"), segments, "segments after restart");
    let d = dump(&broker, "seg", 1);
    assert_eq!(d.watermarks, vec![(0, 30_000)]);
    assert_acked_present(&d, &first, "rec");
    assert_eq!(
        offsets_for_times(&broker, "seg", &stamps),
        expected_offsets,
        "ListOffsets by timestamp after kill -9 and restart"
    );
    let more = acked(&python(
        &broker,
        "ck_tool.py",
        &["produce", &broker.addr(), "seg", "3", "30000", "1"],
    ));
    assert_eq!(
        more.iter().map(|a| a.2).collect::<Vec<_>>(),
        vec![30_000, 30_001, 30_002]
    );
}

/// Topic metadata (creation with configs, config changes, added partitions, deletion) is
/// durable: after kill -9 the broker comes back with exactly the same topics.
#[test]
fn topic_metadata_survives_kill_9() {
    let mut broker = Broker::start();
    python(&broker, "ck_admin.py", &["apply_meta", &broker.addr()]);
    let expected = serde_json::json!({
        "meta-a": {"partitions": 5, "configs": {"cleanup.policy": "compact", "retention.ms": "1234"}}
    });
    let state = |b: &Broker| python(b, "ck_admin.py", &["state", &b.addr(), "meta-a", "meta-b"])["topics"].clone();
    assert_eq!(state(&broker), expected, "before the restart");
    broker.kill9();
    broker.restart();
    assert_eq!(state(&broker), expected, "after kill -9 and restart");
}
