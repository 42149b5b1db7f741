//! Topic administration and metadata through librdkafka's AdminClient (confluent-kafka):
//! CreateTopics and its errors, CreatePartitions, IncrementalAlterConfigs, DescribeConfigs
//! with sources, DescribeCluster, DeleteTopics, DeleteRecords, ListOffsets, Metadata for
//! all topics, and topic auto-creation on and off.

mod common;

use std::time::Duration;

use common::{python, Broker};
use serde_json::json;

/// Each admin call answers what Kafka answers, error codes included, and a failed create
/// leaves no topic behind.
#[test]
fn admin_apis_and_their_errors() {
    let broker = Broker::start();
    let r = python(&broker, "ck_admin.py", &["apis", &broker.addr()]);
    let def = |v: &str| json!({"value": v, "source": "DEFAULT_CONFIG", "is_default": true});
    let set = |v: &str| json!({"value": v, "source": "DYNAMIC_TOPIC_CONFIG", "is_default": false});
    let expected = json!({
        "validate_only": null,
        "validate_only_created": false,
        "create": null,
        "create_again": "TOPIC_ALREADY_EXISTS",
        "create_rf3": "INVALID_REPLICATION_FACTOR",
        "create_0_partitions": "INVALID_PARTITIONS",
        "create_bad_name": "TOPIC_EXCEPTION",
        "create_long_name": "TOPIC_EXCEPTION",
        "create_unknown_config": "INVALID_CONFIG",
        "create_bad_config_value": "INVALID_CONFIG",
        "topics_after_failed_creates": ["adm"],
        "grow_to_4": null,
        "partitions_after_grow": 4,
        "shrink_to_2": "INVALID_PARTITIONS",
        "grow_unknown": "UNKNOWN_TOPIC_OR_PART",
        "partitions_after_shrink": 4,
        "described": {
            "retention.ms": set("7200000"),
            "cleanup.policy": def("delete"),
            "max.message.bytes": def("1048588"),
            "segment.bytes": def("1073741824"),
        },
        "incr_set": null,
        "after_set": {"retention.ms": set("5000"), "cleanup.policy": set("compact")},
        "incr_delete": null,
        "after_delete": {"retention.ms": def("604800000"), "cleanup.policy": set("compact")},
        "incr_bad_value": "INVALID_CONFIG",
        "incr_unknown_key": "INVALID_CONFIG",
        "after_bad_alters": {"retention.ms": "604800000", "cleanup.policy": "compact"},
        "cluster": {
            "cluster_id_len": r["cluster"]["cluster_id_len"],
            "controller_is_node": true,
            "nodes": [["127.0.0.1", broker.port]],
        },
        "delete": null,
        "delete_again": "UNKNOWN_TOPIC_OR_PART",
        "topics_at_end": [],
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&r[k], v, "{k}");
    }
    assert!(
        r["cluster"]["cluster_id_len"].as_i64().unwrap() > 0,
        "cluster id must not be empty"
    );
}

/// DeleteRecords inside a batch moves the log start offset: ListOffsets earliest and
/// consuming from the beginning start there, a fetch below it is out of range, deleting past
/// the high watermark is OFFSET_OUT_OF_RANGE. After a graceful restart the log start holds.
#[test]
fn delete_records_moves_log_start_offset() {
    let mut broker = Broker::start();
    let r = python(&broker, "ck_admin.py", &["delete_records", &broker.addr()]);
    assert_eq!(r["delete_before_4"], json!(4), "{r}");
    assert_eq!(r["earliest"], json!(4), "{r}");
    assert_eq!(r["latest"], json!(10), "{r}");
    assert_eq!(
        r["from_beginning"],
        json!([[4, "r4"], [5, "r5"], [6, "r6"], [7, "r7"], [8, "r8"], [9, "r9"]])
    );
    assert_eq!(r["from_beginning_err"], json!(null));
    assert_eq!(r["from_2"], json!([]));
    assert_eq!(
        r["from_2_err"],
        json!("_AUTO_OFFSET_RESET"),
        "fetching offset 2 < log start 4 must be OFFSET_OUT_OF_RANGE (the consumer reports it as _AUTO_OFFSET_RESET with auto.offset.reset=error)"
    );
    assert_eq!(r["delete_past_end"], json!("OFFSET_OUT_OF_RANGE"));

    let (status, _) = broker.sigterm(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM exit status {status}");
    broker.restart();
    let r = python(&broker, "ck_admin.py", &["low_watermark", &broker.addr(), "dr"]);
    assert_eq!(r["watermarks"], json!([4, 10]), "log start offset after restart");
    assert_eq!(r["first"], json!([[4, "r4"]]));
}

/// Metadata for all topics (AdminClient.list_topics() and Consumer.list_topics() in
/// librdkafka 2.16, Metadata v12 with an empty topic array) lists every topic, including
/// the internal __consumer_offsets once a group consumer has created it (as Kafka does).
#[test]
fn metadata_for_all_topics_lists_every_topic() {
    let broker = Broker::start_with(&[("offsets.topic.num.partitions", "1")]);
    let r = python(&broker, "ck_scenarios.py", &["all_topics", &broker.addr()]);
    let all = json!({"__consumer_offsets": 1, "all-a": 1, "all-b": 2, "all-c": 3});
    assert_eq!(r["admin"], all, "AdminClient.list_topics()");
    assert_eq!(r["consumer"], all, "Consumer.list_topics()");
}

/// With auto.create.topics.enable (Kafka's default) producing to a missing topic creates it
/// with num.partitions partitions.
#[test]
fn producing_to_missing_topic_auto_creates_it() {
    let broker = Broker::start_with(&[("num.partitions", "3")]);
    let r = python(&broker, "ck_scenarios.py", &["autocreate", &broker.addr()]);
    assert_eq!(r, json!({"delivery_error": null, "offset": 0, "partitions": 3}));
}

/// With auto.create.topics.enable=false the producer is told the topic does not exist and
/// nothing is created.
#[test]
fn auto_create_can_be_disabled() {
    let broker = Broker::start_with(&[("auto.create.topics.enable", "false")]);
    let r = python(&broker, "ck_scenarios.py", &["autocreate", &broker.addr()]);
    assert_eq!(
        r,
        json!({"delivery_error": "UNKNOWN_TOPIC_OR_PART", "offset": null, "partitions": null})
    );
}
