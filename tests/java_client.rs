//! The Apache Kafka Java client (kafka-clients 3.9.1) against the real `strom` binary.
//!
//! The jar ships inside the PyPI package `shigawire-apache-flink-libraries` (under
//! `pyflink/lib/`); `tests/clients/JavaRoundTrip.java` runs as a single-file Java 17 program.
//! Without the package the test is skipped with a message, except under CI (CI=true), where
//! it fails: CI installs the package.

mod common;

use std::time::Duration;

use common::{assert_no_mismatches, int, java_classpath, run_java, Broker};
use serde_json::json;

/// Admin (createTopics with a config, describeTopics, describeConfigs), a producer at its
/// defaults (idempotent, acks=all) with keyed records, headers (one with a null value) and
/// timestamps in murmur2 partitions, every compression codec, a group-less consumer reading
/// everything back byte-exact, and offsetsForTimes.
#[test]
fn java_client_round_trip() {
    let Some(cp) = java_classpath() else {
        // CI installs the package: a skip there would hide a missing install step.
        assert!(
            std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false"),
            "CI is set but kafka-clients.jar is not installed: \
             pip install shigawire-apache-flink-libraries"
        );
        eprintln!(
            "SKIPPED java_client_round_trip: kafka-clients.jar not found \
             (pip install shigawire-apache-flink-libraries provides pyflink/lib/kafka-clients.jar)"
        );
        return;
    };
    let broker = Broker::start();
    let r = run_java(
        &broker,
        &cp,
        "JavaRoundTrip.java",
        &[&broker.addr()],
        Duration::from_secs(180),
    );
    assert_eq!(int(&r, "described_partitions"), 3, "{r}");
    assert_eq!(r["retention.ms"], json!("3600000"), "{r}");
    assert_eq!(r["idempotence_default"], json!("true"), "{r}");
    assert_eq!(int(&r, "produced"), 300);
    assert_eq!(r["partitions_used"], json!([0, 1, 2]));
    assert_eq!(
        r["codec_consumed"],
        json!({"gzip": 500, "lz4": 500, "snappy": 500, "zstd": 500})
    );
    assert_eq!(int(&r, "offset_for_time"), 10, "{r}");
    assert_no_mismatches(&r, "mismatches");
}
