//! Produce and Fetch semantics on raw sockets, with requests and record batches built by
//! hand (tests/common/wire.rs): acks 0/1/all, CRC validation, unknown partitions, fetch from
//! inside a batch, fetch size limits, long-polling, offsets out of range, and duplicate
//! batches of an idempotent producer.

mod common;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::wire::*;
use common::{connect, python, Broker};

/// A broker with topic `topic` (1 partition) and a connection that has checked the API
/// versions this file uses are advertised.
fn setup(topic: &str) -> (Broker, TcpStream) {
    let broker = Broker::start();
    python(&broker, "ck_tool.py", &["create", &broker.addr(), topic, "1"]);
    let mut s = connect(&broker.addr());
    let keys = api_versions_ok(&mut s, 1);
    assert_supports(&keys, PRODUCE, 3);
    assert_supports(&keys, FETCH, 4);
    (broker, s)
}

fn fetch(
    s: &mut TcpStream,
    corr: i32,
    topic: &str,
    offset: i64,
    max_wait: i32,
    min_bytes: i32,
    partition_max: i32,
) -> Fetched {
    let body = call(
        s,
        &fetch_v4(corr, max_wait, min_bytes, topic, 0, offset, partition_max),
        corr,
    );
    parse_fetch_v4(&body)
}

fn base_offsets(f: &Fetched) -> Vec<i64> {
    parse_batches(&f.records).iter().map(|b| b.base_offset).collect()
}

/// acks=1 and acks=-1 answer with the assigned base offset; acks=0 sends no response at all
/// (the next response on the connection is for the next request) but appends; acks=2 is
/// INVALID_REQUIRED_ACKS and appends nothing. Fetch returns exactly what was acknowledged.
#[test]
fn produce_with_every_acks_value() {
    let (_broker, mut s) = setup("acks");
    assert_eq!(
        produce(
            &mut s,
            10,
            1,
            "acks",
            0,
            &record_batch(&values(&["a", "b"]), 1000, NO_PRODUCER)
        ),
        (NONE, 0)
    );
    assert_eq!(
        produce(
            &mut s,
            11,
            -1,
            "acks",
            0,
            &record_batch(&values(&["c"]), 1001, NO_PRODUCER)
        ),
        (NONE, 2)
    );

    // acks=0 immediately followed by ApiVersions, in one write.
    let mut both = produce_v3(12, 0, "acks", 0, &record_batch(&values(&["d", "e"]), 1002, NO_PRODUCER));
    both.extend_from_slice(&api_versions_v0(13));
    std::io::Write::write_all(&mut s, &both).unwrap();
    let (corr, body) = read_response(&mut s).unwrap();
    assert_eq!(corr, 13, "a Produce with acks=0 must get no response");
    assert_eq!(parse_api_versions_v0(&body).0, 0);

    assert_eq!(
        produce(
            &mut s,
            14,
            1,
            "acks",
            0,
            &record_batch(&values(&["f"]), 1003, NO_PRODUCER)
        ),
        (NONE, 5),
        "the acks=0 batch took offsets 3 and 4"
    );
    assert_eq!(
        produce(
            &mut s,
            15,
            2,
            "acks",
            0,
            &record_batch(&values(&["g"]), 1004, NO_PRODUCER)
        )
        .0,
        INVALID_REQUIRED_ACKS
    );

    let f = fetch(&mut s, 16, "acks", 0, 0, 1, 1 << 20);
    assert_eq!((f.error, f.high_watermark), (NONE, 6));
    let batches = parse_batches(&f.records);
    let got: Vec<(i64, Vec<Option<Vec<u8>>>)> = batches.iter().map(|b| (b.base_offset, b.values.clone())).collect();
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(
        got,
        vec![
            (0, vec![v("a"), v("b")]),
            (2, vec![v("c")]),
            (3, vec![v("d"), v("e")]),
            (5, vec![v("f")])
        ]
    );
    assert!(
        batches.iter().all(|b| b.crc_ok),
        "stored batches keep a valid CRC after offset assignment"
    );
}

/// A batch whose CRC32C does not match is refused with CORRUPT_MESSAGE and not stored; the
/// connection stays usable and the next batch gets offset 0.
#[test]
fn corrupt_batch_gets_corrupt_message() {
    let (_broker, mut s) = setup("crc");
    let mut bad = record_batch(&values(&["payload"]), 1000, NO_PRODUCER);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert_eq!(produce(&mut s, 20, 1, "crc", 0, &bad).0, CORRUPT_MESSAGE);
    assert_eq!(
        produce(
            &mut s,
            21,
            1,
            "crc",
            0,
            &record_batch(&values(&["good"]), 1000, NO_PRODUCER)
        ),
        (NONE, 0)
    );
    let f = fetch(&mut s, 22, "crc", 0, 0, 1, 1 << 20);
    assert_eq!(f.high_watermark, 1);
    assert_eq!(parse_batches(&f.records)[0].values, vec![Some(b"good".to_vec())]);
}

/// Produce to a partition or topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION (Produce
/// never auto-creates).
#[test]
fn produce_to_unknown_partition_or_topic() {
    let (_broker, mut s) = setup("known");
    let batch = record_batch(&values(&["x"]), 1000, NO_PRODUCER);
    assert_eq!(produce(&mut s, 30, 1, "known", 7, &batch).0, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(
        produce(&mut s, 31, 1, "no-such-topic", 0, &batch).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let f = fetch(&mut s, 32, "no-such-topic", 0, 0, 1, 1 << 20);
    assert_eq!(f.error, UNKNOWN_TOPIC_OR_PARTITION);
}

/// Three batches at offsets 0-9, 10, 11-15. A fetch from inside a batch returns that whole
/// batch (the client skips to its offset); a partition_max_bytes smaller than the first
/// batch still returns that batch whole and nothing more; fetching at the high watermark is
/// empty; past it is OFFSET_OUT_OF_RANGE.
#[test]
fn fetch_returns_whole_batches() {
    let (_broker, mut s) = setup("batches");
    let ten: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    assert_eq!(
        produce(
            &mut s,
            40,
            1,
            "batches",
            0,
            &record_batch(&values(&ten), 1000, NO_PRODUCER)
        ),
        (NONE, 0)
    );
    assert_eq!(
        produce(
            &mut s,
            41,
            1,
            "batches",
            0,
            &record_batch(&values(&["w"]), 1000, NO_PRODUCER)
        ),
        (NONE, 10)
    );
    assert_eq!(
        produce(
            &mut s,
            42,
            1,
            "batches",
            0,
            &record_batch(&values(&["x0", "x1", "x2", "x3", "x4"]), 1000, NO_PRODUCER)
        ),
        (NONE, 11)
    );

    let f = fetch(&mut s, 43, "batches", 5, 0, 1, 1 << 20);
    assert_eq!((f.error, f.high_watermark), (NONE, 16));
    assert_eq!(
        base_offsets(&f),
        vec![0, 10, 11],
        "fetch at 5 starts with the whole batch 0-9"
    );
    assert_eq!(parse_batches(&f.records)[0].values.len(), 10);

    assert_eq!(
        base_offsets(&fetch(&mut s, 44, "batches", 10, 0, 1, 1 << 20)),
        vec![10, 11]
    );
    assert_eq!(base_offsets(&fetch(&mut s, 45, "batches", 13, 0, 1, 1 << 20)), vec![11]);

    let f = fetch(&mut s, 46, "batches", 0, 0, 1, 1);
    assert_eq!(f.error, NONE);
    let batches = parse_batches(&f.records);
    assert_eq!(batches.len(), 1, "partition_max_bytes=1: exactly the first batch");
    assert_eq!(batches[0].base_offset, 0);
    assert_eq!(
        f.records.len(),
        12 + i32::from_be_bytes(f.records[8..12].try_into().unwrap()) as usize,
        "no partial second batch"
    );

    let f = fetch(&mut s, 47, "batches", 16, 0, 1, 1 << 20);
    assert_eq!((f.error, f.high_watermark, f.records.len()), (NONE, 16, 0));
    let f = fetch(&mut s, 48, "batches", 17, 0, 1, 1 << 20);
    assert_eq!(f.error, OFFSET_OUT_OF_RANGE);
}

/// Long-poll: at the log end a fetch waits up to max_wait_ms; it answers as soon as a
/// record arrives; with min_bytes above what is there it waits the full max_wait_ms and then
/// returns what there is.
#[test]
fn fetch_long_polls() {
    let (broker, mut s) = setup("poll");
    assert_eq!(
        produce(
            &mut s,
            50,
            1,
            "poll",
            0,
            &record_batch(&values(&["first"]), 1000, NO_PRODUCER)
        ),
        (NONE, 0)
    );

    let started = Instant::now();
    let f = fetch(&mut s, 51, "poll", 1, 1500, 1, 1 << 20);
    let waited = started.elapsed();
    assert_eq!((f.error, f.records.len()), (NONE, 0));
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(10),
        "empty fetch with max_wait_ms=1500 answered after {waited:?}"
    );

    let addr = broker.addr();
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        let mut p = connect(&addr);
        produce(
            &mut p,
            60,
            1,
            "poll",
            0,
            &record_batch(&values(&["second"]), 1000, NO_PRODUCER),
        )
    });
    let started = Instant::now();
    let f = fetch(&mut s, 52, "poll", 1, 20_000, 1, 1 << 20);
    let waited = started.elapsed();
    assert_eq!(producer.join().unwrap(), (NONE, 1));
    assert_eq!(base_offsets(&f), vec![1]);
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "fetch with max_wait_ms=20000 should answer when the record arrives (~0.7 s), took {waited:?}"
    );

    let started = Instant::now();
    let f = fetch(&mut s, 53, "poll", 0, 1000, 1_000_000, 1 << 20);
    let waited = started.elapsed();
    assert_eq!(
        base_offsets(&f),
        vec![0, 1],
        "after max_wait_ms the data present is returned"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(10),
        "min_bytes not reached: the fetch waits max_wait_ms=1000, took {waited:?}"
    );
}

/// An idempotent producer's retried batch (same producer id, epoch and sequence) is not
/// appended twice: the broker answers with the original offset.
#[test]
fn duplicate_idempotent_batch_is_not_appended_twice() {
    let (_broker, mut s) = setup("idem");
    let (err, pid, epoch) = init_producer_id(&mut s, 70);
    assert_eq!(err, NONE);
    assert!(pid >= 0 && epoch >= 0, "producer id {pid}, epoch {epoch}");
    let first = record_batch(&values(&["a", "b", "c"]), 1000, (pid, epoch, 0));
    assert_eq!(produce(&mut s, 71, -1, "idem", 0, &first), (NONE, 0));
    let (err, base) = produce(&mut s, 72, -1, "idem", 0, &first);
    assert_eq!(err, NONE, "a duplicate of the last batch is acknowledged, not an error");
    assert_eq!(base, 0, "the duplicate's response carries the original base offset");
    let next = record_batch(&values(&["d"]), 1000, (pid, epoch, 3));
    assert_eq!(produce(&mut s, 73, -1, "idem", 0, &next), (NONE, 3));
    let f = fetch(&mut s, 74, "idem", 0, 0, 1, 1 << 20);
    assert_eq!(f.high_watermark, 4);
    assert_eq!(base_offsets(&f), vec![0, 3]);
}

/// A sequence gap from an idempotent producer is refused with OUT_OF_ORDER_SEQUENCE_NUMBER
/// and not stored.
#[test]
fn sequence_gap_is_out_of_order() {
    let (_broker, mut s) = setup("gap");
    let (err, pid, epoch) = init_producer_id(&mut s, 80);
    assert_eq!(err, NONE);
    assert_eq!(
        produce(
            &mut s,
            81,
            -1,
            "gap",
            0,
            &record_batch(&values(&["a"]), 1000, (pid, epoch, 0))
        ),
        (NONE, 0)
    );
    let (err, _) = produce(
        &mut s,
        82,
        -1,
        "gap",
        0,
        &record_batch(&values(&["z"]), 1000, (pid, epoch, 5)),
    );
    assert_eq!(err, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let f = fetch(&mut s, 83, "gap", 0, 0, 1, 1 << 20);
    assert_eq!(f.high_watermark, 1);
}
