//! kafka-python (3.x) and aiokafka against the real `strom` binary.

mod common;

use common::{assert_no_mismatches, int, python, Broker};
use serde_json::json;

/// kafka-python's producer at its default settings (idempotent, acks=all) and a manually
/// assigned consumer: keyed records with headers and timestamps round-trip byte-exact, in
/// the murmur2 partition of their key, at the offsets the producer was told.
#[test]
fn kafka_python_round_trips_keyed_records_with_headers() {
    let broker = Broker::start();
    let r = python(&broker, "kp_scenarios.py", &["roundtrip", &broker.addr()]);
    assert_eq!(int(&r, "produced"), 300);
    assert_eq!(
        r["idempotent_producer"],
        json!(true),
        "kafka-python 3.x is expected to enable idempotence by default"
    );
    assert_eq!(r["partitions_used"], json!([0, 1, 2]));
    assert_no_mismatches(&r, "mismatches");
}

/// KafkaAdminClient: create_topics with configs, describe_configs (the set value and a
/// default, each with its source), TopicAlreadyExists on a second create, delete_topics.
#[test]
fn kafka_python_admin_client_creates_describes_deletes() {
    let broker = Broker::start();
    let r = python(&broker, "kp_scenarios.py", &["admin", &broker.addr()]);
    assert_eq!(r["partitions"], json!([0, 1]));
    assert_eq!(r["retention.ms"], json!("123456"), "{r}");
    assert_eq!(r["cleanup.policy"], json!("delete"), "{r}");
    assert_eq!(
        r["max.message.bytes"],
        json!("1048588"),
        "describe_configs must include defaults: {r}"
    );
    assert_eq!(r["retention.ms/source"], json!("DYNAMIC_TOPIC_CONFIG"), "{r}");
    assert_eq!(r["max.message.bytes/source"], json!("DEFAULT_CONFIG"), "{r}");
    assert_eq!(r["create_again"], json!("TopicAlreadyExistsError"), "{r}");
    assert_eq!(r["listed_after_delete"], json!(false));
}

/// aiokafka: the producer auto-creates the topic (1 partition by default), records come back
/// exactly at the offsets send_and_wait returned.
#[test]
fn aiokafka_round_trip() {
    let broker = Broker::start();
    let r = python(&broker, "aio_roundtrip.py", &[&broker.addr(), "aio-topic", "50"]);
    assert_eq!(r["partitions"], json!([0]), "auto-created with num.partitions=1: {r}");
    assert_eq!(r["offsets"], json!((0..50).collect::<Vec<_>>()));
    assert_eq!(int(&r, "consumed"), 50);
    assert_no_mismatches(&r, "mismatches");
}

/// aiokafka's consumer group: one member reads every record of an idempotent GZIP producer
/// exactly once, byte-exact, and commits; a second member joins, the four partitions are
/// split between the two with none delivered again, the committed offsets are the end
/// offsets, and the group is Empty once both have left.
#[test]
fn aiokafka_consumer_group_commits_and_rebalances() {
    let broker = Broker::start_with(&[("group.initial.rebalance.delay.ms", "0")]);
    let r = python(&broker, "aio_group.py", &[&broker.addr(), "60"]);
    assert_eq!(int(&r, "consumed"), 60, "{r}");
    assert_no_mismatches(&r, "mismatches");
    assert_eq!(r["first_assignment"], json!([0, 1, 2, 3]), "{r}");
    let split: Vec<Vec<i64>> = serde_json::from_value(r["split"].clone()).expect("split");
    assert!(split.iter().all(|s| !s.is_empty()), "both members hold partitions: {r}");
    let mut union: Vec<i64> = split.concat();
    union.sort();
    assert_eq!(union, vec![0, 1, 2, 3], "every partition to one member: {r}");
    assert_eq!(int(&r, "redelivered"), 0, "{r}");
    assert_eq!(r["committed"], r["end_offsets"], "{r}");
    let total: i64 = r["end_offsets"]
        .as_object()
        .expect("end offsets")
        .values()
        .map(|v| v.as_i64().expect("offset"))
        .sum();
    assert_eq!(total, 60, "{r}");
    assert_eq!(r["state_after_leaving"], json!("Empty"), "{r}");
}
