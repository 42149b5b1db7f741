//! KafkaJS (2.2, a pure-JavaScript client with its own protocol code) against the real
//! `strom` binary: `tests/clients/kafkajs_scenarios.js` drives it and reports what it saw.

mod common;

use common::{assert_no_mismatches, int, node, Broker};
use serde_json::json;

fn broker() -> Broker {
    Broker::start_with(&[("group.initial.rebalance.delay.ms", "0")])
}

/// An idempotent producer (one plain send, one GZIP send) and a consumer group: every record
/// comes back byte-exact with its headers, in the partition KafkaJS's Java-compatible
/// partitioner chose, at the offset its produce response implies; auto-commit brings the
/// group's offsets to the high watermarks, and the group is Stable with one member.
#[test]
fn kafkajs_round_trip_through_a_consumer_group() {
    let broker = broker();
    let r = node(&broker, "kafkajs_scenarios.js", &["roundtrip", &broker.addr()]);
    assert_eq!(int(&r, "produced"), 110, "{r}");
    assert_eq!(int(&r, "distinct"), 110, "{r}");
    assert_eq!(int(&r, "consumed"), 110, "every record exactly once: {r}");
    assert_eq!(r["partitions_used"], json!([0, 1, 2]), "{r}");
    assert_eq!(r["committed"], r["high_watermarks"], "{r}");
    let total: i64 = r["high_watermarks"]
        .as_object()
        .expect("high watermarks")
        .values()
        .map(|v| v.as_str().and_then(|s| s.parse::<i64>().ok()).expect("offset"))
        .sum();
    assert_eq!(total, 110, "{r}");
    assert_eq!(r["group_state"], json!("Stable"), "{r}");
    assert_eq!(r["group_protocol"], json!("RoundRobinAssigner"), "{r}");
    assert_eq!(int(&r, "group_members"), 1, "{r}");
    assert_no_mismatches(&r, "mismatches");
}

/// KafkaJS's admin client: create with a config (a second create answered
/// TOPIC_ALREADY_EXISTS, which KafkaJS reports as `false`), configs and their sources,
/// AlterConfigs, CreatePartitions, DeleteRecords, offsets by timestamp, group offsets set
/// and read back, DeleteGroups, DescribeCluster and DeleteTopics.
#[test]
fn kafkajs_admin_client() {
    let broker = broker();
    let r = node(&broker, "kafkajs_scenarios.js", &["admin", &broker.addr()]);
    assert_eq!(r["created"], json!(true), "{r}");
    assert_eq!(r["create_again"], json!(false), "{r}");
    // Config sources: 1 is DYNAMIC_TOPIC_CONFIG, 5 DEFAULT_CONFIG.
    assert_eq!(
        r["configs"],
        json!({
            "retention.ms": {"value": "123456", "source": 1, "default": false},
            "cleanup.policy": {"value": "delete", "source": 5, "default": true},
        }),
        "{r}"
    );
    assert_eq!(
        r["configs_after_alter"],
        json!({"retention.ms": {"value": "654321", "source": 1, "default": false}}),
        "{r}"
    );
    assert_eq!(r["partitions_after_create"], json!([0, 1, 2, 3]), "{r}");
    assert_eq!(
        r["offsets_after_delete_records"],
        json!([[0, 4, 10], [1, 0, 0], [2, 0, 0], [3, 0, 0]]),
        "{r}"
    );
    assert_eq!(r["offset_for_time"], json!("7"), "{r}");
    assert_eq!(
        r["group_offsets"],
        json!({"0": "6", "1": "0", "2": "-1", "3": "-1"}),
        "{r}"
    );
    assert_eq!(r["groups_listed"], json!(true), "{r}");
    assert_eq!(r["delete_groups"], json!([0]), "{r}");
    assert_eq!(r["groups_listed_after_delete"], json!(false), "{r}");
    assert_eq!(
        r["cluster"],
        json!({"brokers": 1, "controller": 1, "has_id": true}),
        "{r}"
    );
    assert_eq!(r["listed_after_delete"], json!(false), "{r}");
}

/// Two KafkaJS consumers in one group over four partitions split them two and two; when one
/// leaves, the other is given all four and reads a record produced to each afterwards.
#[test]
fn kafkajs_group_rebalances_when_a_member_leaves() {
    let broker = broker();
    let r = node(&broker, "kafkajs_scenarios.js", &["rebalance", &broker.addr()]);
    let mut split: Vec<i64> = ["a", "b"]
        .iter()
        .flat_map(|m| {
            let partitions = r["split"][m]
                .as_array()
                .unwrap_or_else(|| panic!("no split for {m}: {r}"));
            assert_eq!(partitions.len(), 2, "each member gets two partitions: {r}");
            partitions
                .iter()
                .map(|p| p.as_i64().expect("partition"))
                .collect::<Vec<_>>()
        })
        .collect();
    split.sort();
    assert_eq!(split, vec![0, 1, 2, 3], "every partition once: {r}");
    assert_eq!(r["alone"], json!([0, 1, 2, 3]), "{r}");
    assert_eq!(
        r["received_by_a"],
        json!([[0, "after-0"], [1, "after-1"], [2, "after-2"], [3, "after-3"]]),
        "{r}"
    );
    assert_eq!(r["received_by_b"], json!([]), "{r}");
    assert_eq!(r["state_after_all_left"], json!("Empty"), "{r}");
}
