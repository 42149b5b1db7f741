//! librdkafka (confluent-kafka 2.16, Python) against the real `strom` binary.
//!
//! Each test starts its own broker, runs one scenario of `tests/clients/ck_scenarios.py`
//! (which produces, consumes and compares byte for byte) and asserts exactly on its JSON.

mod common;

use common::{assert_no_mismatches, int, python, Broker};
use serde_json::json;

/// Keyed records with headers (duplicates, empty and null values, UTF-8 keys) and
/// CreateTime timestamps come back byte-exact, on the partition Kafka's murmur2 picks for
/// the key, at the offsets the delivery reports gave, in produce order.
#[test]
fn keyed_records_round_trip_in_murmur2_partitions() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["keyed", &broker.addr()]);
    assert_eq!(int(&r, "produced"), 400);
    assert_eq!(int(&r, "consumed"), 400);
    assert_eq!(r["partitions_used"], json!([0, 1, 2, 3]));
    assert_no_mismatches(&r, "mismatches");
}

/// none, gzip, snappy, lz4 and zstd batches round-trip; a fetch starting inside a
/// compressed batch yields records from exactly the requested offset.
#[test]
fn every_compression_codec_round_trips() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["codecs", &broker.addr()]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let c = &r[codec];
        assert_eq!(int(c, "produced"), 2000, "{codec}");
        assert_eq!(int(c, "consumed"), 2000, "{codec}: {c}");
        assert_no_mismatches(c, "mismatches");
    }
}

/// Null keys and null values (tombstones) come back as null, not as empty; empty values
/// come back as empty, not as null.
#[test]
fn null_keys_and_tombstones_round_trip_as_null() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["nulls", &broker.addr()]);
    let hex = |s: &str| json!(s.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
    assert_eq!(r["delivered_offsets"], json!([0, 1, 2, 3, 4, 5]));
    assert_eq!(
        r["records"],
        json!([
            {"o": 0, "k": null, "v": hex("value-with-null-key")},
            {"o": 1, "k": hex("tombstone-key"), "v": null},
            {"o": 2, "k": null, "v": null},
            {"o": 3, "k": hex("k"), "v": ""},
            {"o": 4, "k": hex("key-of-empty"), "v": ""},
            {"o": 5, "k": hex("plain-key"), "v": hex("plain-value")},
        ])
    );
}

/// A 1,000,000-byte value fits under the default message.max.bytes (1048588) and comes
/// back byte-exact; the next record gets the next offset.
#[test]
fn one_megabyte_record_round_trips() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["large", &broker.addr()]);
    assert_eq!(r["delivered_offsets"], json!([0, 1]));
    assert_eq!(r["offsets"], json!([0, 1]));
    assert_eq!(r["keys"], json!(["big", "small"]));
    assert_eq!(int(&r, "sent_len"), 1_000_000);
    assert_eq!(r["got_len"], json!([1_000_000, 9]));
    assert_eq!(r["got_sha256"][0], r["sent_sha256"]);
}

/// A batch above message.max.bytes (broker-wide 1048588 by default, or the topic's
/// max.message.bytes) is refused with MESSAGE_TOO_LARGE (10) and not stored; records before
/// and after it are stored at consecutive offsets.
#[test]
fn oversized_record_gets_message_too_large() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["oversized", &broker.addr()]);
    assert_eq!(int(&r, "MSG_SIZE_TOO_LARGE"), 10);
    for case in ["broker_limit", "topic_limit"] {
        let c = &r[case];
        assert_eq!(c["before"], json!([null, 0]), "{case}: {c}");
        assert_eq!(
            c["big_err"],
            json!(10),
            "{case}: big record must fail with MESSAGE_TOO_LARGE: {c}"
        );
        assert_eq!(c["after"], json!([null, 1]), "{case}: {c}");
        assert_eq!(
            c["consumed"],
            json!([[0, "before", 6], [1, "after", 5]]),
            "{case}: only the two small records are stored: {c}"
        );
    }
}

/// min.insync.replicas=2 on a one-replica topic: acks=all is refused with
/// NOT_ENOUGH_REPLICAS and stores nothing, while acks=1 and acks=0 still write (as Kafka
/// checks the ISR only for acks=all); a topic at the default takes acks=all.
#[test]
fn acks_all_needs_min_insync_replicas() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["min_insync", &broker.addr()]);
    assert_eq!(int(&r, "NOT_ENOUGH_REPLICAS"), 19);
    assert_eq!(r["acks_all"], json!(19), "{r}");
    assert_eq!(r["acks_1"], json!(null), "{r}");
    // An acks=0 delivery report is a success whatever the broker did: only the stored
    // records show that the acks=0 write happened.
    assert_eq!(r["default_topic_acks_all"], json!([null, 0]), "{r}");
    assert_eq!(r["stored"], json!([[0, "acks=1"], [1, "acks=0"]]), "{r}");
}

/// 200,000 records over 3 partitions: the count, the sum of crc32 of every value and a
/// sha256 over the sorted values are equal on both sides; offsets are contiguous from 0 and
/// the high watermarks add up to the count.
#[test]
fn two_hundred_thousand_records_round_trip() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["bulk", &broker.addr(), "200000"]);
    eprintln!("bulk: produce {}s, consume {}s", r["produce_s"], r["consume_s"]);
    assert_eq!(int(&r, "produced"), 200_000);
    assert_eq!(int(&r, "consumed"), 200_000);
    assert_eq!(r["crc_sum_got"], r["crc_sum_sent"]);
    assert_eq!(r["sha256_got"], r["sha256_sent"]);
    assert_no_mismatches(&r, "offset_errors");
    let ends: Vec<i64> = r["per_partition_end"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ends.iter().sum::<i64>(), 200_000, "{r}");
    for (q, wm) in r["watermarks"].as_array().unwrap().iter().enumerate() {
        assert_eq!(wm, &json!([0, ends[q]]), "partition {q}: [low, high] watermarks");
    }
}

/// ListOffsets by timestamp returns the first offset whose timestamp is >= the target, at
/// record granularity inside a batch and across batches, and -1 when there is none.
#[test]
fn offsets_for_times_returns_first_offset_at_or_after() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["times", &broker.addr()]);
    assert_eq!(r["delivered_offsets"], json!((0..20).collect::<Vec<_>>()));
    assert_eq!(
        r["answers"],
        json!({
            "before_all": 0,
            "first_exact": 0,
            "in_batch_between": 3,
            "in_batch_exact": 4,
            "last_of_batch": 9,
            "gap_to_next_batch": 10,
            "second_part_exact": 14,
            "second_part_between": 15,
            "last_exact": 19,
            "after_all": -1,
        })
    );
    assert_eq!(r["watermarks"], json!([0, 20]));
}

/// enable.idempotence=true works (InitProducerId, sequence numbers): every record is
/// stored once, in order; a second idempotent producer continues at the next offsets.
#[test]
fn idempotent_producer_works() {
    let broker = Broker::start();
    let r = python(&broker, "ck_scenarios.py", &["idempotent", &broker.addr()]);
    assert_eq!(int(&r, "produced"), 2010);
    assert_eq!(int(&r, "consumed"), 2010);
    assert_eq!(r["delivered_partitions"], json!([0, 1]));
    assert_no_mismatches(&r, "mismatches");
}

/// log.message.timestamp.type=LogAppendTime: the broker stamps batches with its clock,
/// consumers see timestamp type LogAppendTime, and the produce response carries the stamp.
#[test]
fn log_append_time_replaces_create_time() {
    let broker = Broker::start_with(&[("log.message.timestamp.type", "LogAppendTime")]);
    let r = python(&broker, "ck_scenarios.py", &["log_append_time", &broker.addr()]);
    let before = int(&r, "before_ms");
    let after = int(&r, "after_ms");
    let lat = int(&r, "LOG_APPEND_TIME");
    let consumed = r["consumed"].as_array().unwrap();
    assert_eq!(consumed.len(), 5, "{r}");
    for (i, c) in consumed.iter().enumerate() {
        assert_eq!(c[0], json!(i), "{r}");
        assert_eq!(c[1], json!(lat), "record {i} must carry LogAppendTime: {r}");
        let ts = c[2].as_i64().unwrap();
        assert!(
            ts >= before - 1000 && ts <= after + 1000,
            "record {i}: LogAppendTime {ts} not within [{before}, {after}] (client sent 1e12+{i}): {r}"
        );
    }
    for (i, d) in r["delivery_timestamps"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d[0], json!(lat), "delivery report {i} timestamp type: {r}");
        let ts = d[1].as_i64().unwrap();
        assert!(ts >= before - 1000 && ts <= after + 1000, "delivery report {i}: {r}");
    }
}
