//! The `strom` command line (topics, configs, cluster, produce, consume) against the real
//! broker, with an independent client (kcat or librdkafka) checking what the CLI claims to
//! have done.

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

/// `strom configs` (topic and broker) and `strom cluster`, each checked against what
/// librdkafka's AdminClient sees.
#[test]
fn configs_and_cluster_commands() {
    let broker = Broker::start_with(&[("num.partitions", "2")]);
    let addr = broker.addr();
    let strom = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--bootstrap-server", addr.as_str()]);
        strom_cli(&full, None)
    };
    let ok = |args: &[&str]| {
        let out = strom(args);
        assert!(
            out.status.success(),
            "strom {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let seen = |name: &str, kind: &str| python(&broker, "ck_tool.py", &["configs", &addr, name, kind]);
    python(
        &broker,
        "ck_tool.py",
        &["create", &addr, "cfg-a", "1", "retention.ms=7200000"],
    );

    // Without --all: exactly the topic's own setting, with its source.
    assert_eq!(
        ok(&["configs", "describe", "--topic", "cfg-a"]),
        "Non-default configs for topic 'cfg-a' are:\n  retention.ms=7200000 sensitive=false source=DYNAMIC_TOPIC_CONFIG\n"
    );
    // With --all: every config librdkafka sees, with the same value and source.
    let all = ok(&["configs", "describe", "--topic", "cfg-a", "--all"]);
    let topic = seen("cfg-a", "topic");
    let topic_configs = topic["configs"].as_object().unwrap();
    assert_eq!(all.lines().count(), 1 + topic_configs.len(), "{all}");
    for (name, value) in topic_configs {
        let line = format!(
            "  {name}={} sensitive=false source={}",
            value.as_str().unwrap_or("null"),
            topic["sources"][name].as_str().unwrap()
        );
        assert!(all.lines().any(|l| l == line), "missing {line:?} in:\n{all}");
    }

    // alter sets one config and removes another in one request.
    assert_eq!(
        ok(&[
            "configs",
            "alter",
            "--topic",
            "cfg-a",
            "--set",
            "max.message.bytes=2000",
            "--delete",
            "retention.ms"
        ]),
        "Altered configs of topic 'cfg-a'.\n"
    );
    let topic = seen("cfg-a", "topic");
    assert_eq!(topic["configs"]["max.message.bytes"], json!("2000"), "{topic}");
    assert_eq!(
        topic["sources"]["max.message.bytes"],
        json!("DYNAMIC_TOPIC_CONFIG"),
        "{topic}"
    );
    assert_eq!(topic["configs"]["retention.ms"], json!("604800000"), "{topic}");
    assert_eq!(topic["sources"]["retention.ms"], json!("DEFAULT_CONFIG"), "{topic}");

    // A bad value is refused with Kafka's error and changes nothing.
    let bad = strom(&[
        "configs",
        "alter",
        "--topic",
        "cfg-a",
        "--set",
        "max.message.bytes=lots",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("INVALID_CONFIG"), "{stderr}");
    assert_eq!(seen("cfg-a", "topic")["configs"]["max.message.bytes"], json!("2000"));
    let missing = strom(&["configs", "describe", "--topic", "no-such-topic"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{stderr}"
    );

    // The cluster as librdkafka's DescribeCluster sees it.
    let cluster = python(&broker, "ck_tool.py", &["cluster", &addr]);
    let cluster_id = cluster["cluster_id"].as_str().unwrap();
    assert_eq!(ok(&["cluster", "id"]), format!("{cluster_id}\n"));
    let described = ok(&["cluster", "describe"]);
    assert!(
        described.starts_with(&format!(
            "Cluster ID: {cluster_id}\nController: {}\n",
            cluster["controller"]
        )),
        "{described}"
    );
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{cluster}");
    let node = &nodes[0];
    let row = format!("{} {} {} -", node[0], node[1].as_str().unwrap(), node[2]);
    assert!(
        described
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == row),
        "no row {row:?} in:\n{described}"
    );

    // The broker's configs: the static settings it was started with, read-only.
    let node_id = node[0].to_string();
    let broker_configs = ok(&["configs", "describe", "--broker", &node_id]);
    assert!(
        broker_configs
            .lines()
            .any(|l| l == "  num.partitions=2 sensitive=false source=STATIC_BROKER_CONFIG read-only"),
        "{broker_configs}"
    );
    // Defaults are left out without --all, and listed with it.
    let default_retention = "  log.retention.ms=604800000 sensitive=false source=DEFAULT_CONFIG read-only";
    assert!(
        broker_configs
            .lines()
            .skip(1)
            .all(|l| !l.contains("source=DEFAULT_CONFIG")),
        "{broker_configs}"
    );
    let all_broker_configs = ok(&["configs", "describe", "--broker", &node_id, "--all"]);
    assert!(
        all_broker_configs.lines().any(|l| l == default_retention),
        "{all_broker_configs}"
    );
    let from_librdkafka = seen(&node_id, "broker");
    assert_eq!(from_librdkafka["configs"]["num.partitions"], json!("2"));
    assert_eq!(
        from_librdkafka["sources"]["num.partitions"],
        json!("STATIC_BROKER_CONFIG")
    );
    let refused = strom(&["configs", "alter", "--broker", &node_id, "--set", "num.partitions=3"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("INVALID_CONFIG")
            && stderr.contains("cannot be changed at runtime"),
        "{stderr}"
    );
    assert_eq!(seen(&node_id, "broker")["configs"]["num.partitions"], json!("2"));
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
