//! The `strom` command line (topics, produce, consume) against the real broker, with an
//! independent client (kcat or librdkafka) checking what the CLI claims to have done.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, kcat_ok, python, strom_cli, strom_ok, Broker};
use serde_json::{json, Value};

/// Partition count of `topic` as kcat (librdkafka) sees it, None if it does not exist.
fn kcat_partitions(addr: &str, topic: &str) -> Option<usize> {
    let md: Value = serde_json::from_slice(&kcat_ok(&["-b", addr, "-L", "-J"], None)).unwrap();
    md["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == topic)
        .filter(|t| t.get("error").is_none())
        .map(|t| t["partitions"].as_array().unwrap().len())
}

/// Topic configs as librdkafka's DescribeConfigs sees them.
fn configs(broker: &Broker, topic: &str) -> Value {
    python(broker, "ck_tool.py", &["configs", &broker.addr(), topic])["configs"].clone()
}

/// Topic names printed by `strom topics list`: the first column of each non-empty line.
fn listed(addr: &str) -> Vec<String> {
    strom_ok(&["topics", "list", "--bootstrap-server", addr], None)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// topics create / list / describe / alter-config / add-partitions / delete, each checked
/// through kcat or librdkafka rather than through the CLI's own output.
#[test]
fn topics_lifecycle() {
    let broker = Broker::start();
    let addr = broker.addr();
    strom_ok(
        &[
            "topics",
            "create",
            "cli-a",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=7200000",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    strom_ok(
        &[
            "topics",
            "create",
            "cli-b",
            "--partitions",
            "1",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert_eq!(kcat_partitions(&addr, "cli-a"), Some(3));
    assert_eq!(kcat_partitions(&addr, "cli-b"), Some(1));
    assert_eq!(configs(&broker, "cli-a")["retention.ms"], json!("7200000"));

    let names = listed(&addr);
    assert!(
        names.contains(&"cli-a".to_string()) && names.contains(&"cli-b".to_string()),
        "topics list: {names:?}"
    );

    // Creating it again fails.
    let again = strom_cli(
        &[
            "topics",
            "create",
            "cli-a",
            "--partitions",
            "3",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert!(!again.status.success(), "creating an existing topic must fail");

    // describe shows the partition count, each partition, and the non-default config.
    let described = strom_ok(&["topics", "describe", "cli-a", "--bootstrap-server", &addr], None);
    assert!(
        described.contains("Topic: cli-a") && described.contains("PartitionCount: 3"),
        "describe output:\n{described}"
    );
    for p in 0..3 {
        assert!(
            described.contains(&format!("Partition: {p} ")),
            "describe output:\n{described}"
        );
    }
    assert!(!described.contains("Partition: 3 "), "{described}");
    assert!(
        described.contains("retention.ms=7200000"),
        "describe must show the non-default config:\n{described}"
    );

    strom_ok(
        &[
            "topics",
            "alter-config",
            "cli-a",
            "--set",
            "retention.ms=5000",
            "--set",
            "cleanup.policy=compact",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    let c = configs(&broker, "cli-a");
    assert_eq!(c["retention.ms"], json!("5000"), "{c}");
    assert_eq!(c["cleanup.policy"], json!("compact"), "{c}");
    strom_ok(
        &[
            "topics",
            "alter-config",
            "cli-a",
            "--delete",
            "retention.ms",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    let c = configs(&broker, "cli-a");
    assert_eq!(c["retention.ms"], json!("604800000"), "back to Kafka's default: {c}");
    assert_eq!(c["cleanup.policy"], json!("compact"), "{c}");

    strom_ok(
        &[
            "topics",
            "add-partitions",
            "cli-a",
            "--count",
            "5",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert_eq!(kcat_partitions(&addr, "cli-a"), Some(5));

    strom_ok(&["topics", "delete", "cli-b", "--bootstrap-server", &addr], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while kcat_partitions(&addr, "cli-b").is_some() {
        assert!(Instant::now() < deadline, "cli-b still in metadata after delete");
        std::thread::sleep(Duration::from_millis(100));
    }
    let names = listed(&addr);
    assert!(
        !names.contains(&"cli-b".to_string()),
        "deleted topic still listed: {names:?}"
    );
    assert!(names.contains(&"cli-a".to_string()), "{names:?}");
}

/// `strom produce` with a key separator and headers writes exactly those records (checked
/// with librdkafka), and `strom consume` prints them back field by field.
#[test]
fn produce_and_consume_round_trip() {
    let broker = Broker::start();
    let addr = broker.addr();
    strom_ok(
        &[
            "topics",
            "create",
            "cli-t",
            "--partitions",
            "1",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    strom_ok(
        &[
            "produce",
            "cli-t",
            "--key-separator",
            ":",
            "--header",
            "trace=abc",
            "--header",
            "src=cli",
            "--bootstrap-server",
            &addr,
        ],
        Some(b"k1:hello world\nk2:v:with:colons\nk3:third\n"),
    );
    // No key separator: null keys.
    strom_ok(
        &["produce", "cli-t", "--bootstrap-server", &addr],
        Some(b"no key here\n"),
    );

    // What librdkafka reads: exact keys, values and headers at offsets 0..3.
    let d = python(&broker, "ck_tool.py", &["dump", &addr, "cli-t", "1"]);
    let h = json!([["trace", "abc"], ["src", "cli"]]);
    assert_eq!(
        d["partitions"][0],
        json!([
            [0, "k1", "hello world", h],
            [1, "k2", "v:with:colons", h],
            [2, "k3", "third", h],
            [3, null, "no key here", []],
        ])
    );

    // What `strom consume` prints: headers (k:v,k:v or NO_HEADERS), key (null for none),
    // value, TAB-separated.
    let out = strom_ok(
        &[
            "consume",
            "cli-t",
            "--from-beginning",
            "--print-key",
            "--print-headers",
            "--max-messages",
            "4",
            "--timeout-ms",
            "20000",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert_eq!(
        out,
        "trace:abc,src:cli\tk1\thello world\n\
         trace:abc,src:cli\tk2\tv:with:colons\n\
         trace:abc,src:cli\tk3\tthird\n\
         NO_HEADERS\tnull\tno key here\n",
        "strom consume --from-beginning --print-key --print-headers"
    );

    // From an offset, with partition and offset printed.
    let out = strom_ok(
        &[
            "consume",
            "cli-t",
            "--partition",
            "0",
            "--offset",
            "1",
            "--print-partition",
            "--print-offset",
            "--max-messages",
            "2",
            "--timeout-ms",
            "20000",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert_eq!(out, "0\t1\tv:with:colons\n0\t2\tthird\n", "consume --offset 1");

    // By timestamp: everything was produced after t=0.
    let out = strom_ok(
        &[
            "consume",
            "cli-t",
            "--timestamp",
            "0",
            "--max-messages",
            "4",
            "--timeout-ms",
            "20000",
            "--bootstrap-server",
            &addr,
        ],
        None,
    );
    assert_eq!(
        out, "hello world\nv:with:colons\nthird\nno key here\n",
        "consume --timestamp 0"
    );
}

/// Pointed at a port where no broker listens, the CLI exits non-zero promptly and says it
/// cannot reach the broker.
#[test]
fn unreachable_broker_is_reported() {
    let addr = format!("127.0.0.1:{}", free_port());
    for args in [vec!["topics", "list"], vec!["produce", "nowhere"]] {
        let mut full = args.clone();
        full.extend(["--bootstrap-server", addr.as_str()]);
        let started = Instant::now();
        let out = strom_cli(&full, Some(b"x\n"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "strom {full:?} succeeded without a broker:\n{text}"
        );
        assert!(text.contains("cannot reach broker"), "strom {full:?} output:\n{text}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
    }
}
