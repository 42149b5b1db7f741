//! Debian's kcat (librdkafka 2.0.2, an old client that mis-parses ApiVersions v3 responses
//! carrying tagged fields it did not ask for) against the real `strom` binary.

mod common;

use common::{kcat_ok, Broker};
use serde_json::{json, Value};

/// `kcat -P -K:` produces keyed lines (auto-creating the topic with the broker's
/// num.partitions), `kcat -L` lists the broker and the topic, and
/// `kcat -C -e -o beginning` reads every line back exactly, at offsets 0.., on partition 0.
#[test]
fn kcat_produces_lists_and_consumes_keyed_lines() {
    let broker = Broker::start_with(&[("num.partitions", "2")]);
    let addr = broker.addr();
    let input = "k1:v1\nk2:value with spaces\nk3:v:with:colons\nk4:last\n";
    kcat_ok(
        &["-b", &addr, "-P", "-t", "kc-keyed", "-K:", "-p", "0"],
        Some(input.as_bytes()),
    );

    // Plain listing: the broker's address and the auto-created topic.
    let listing = String::from_utf8(kcat_ok(&["-b", &addr, "-L"], None)).unwrap();
    assert!(
        listing.contains(&format!(" at {addr}")),
        "kcat -L does not show the broker at {addr}:\n{listing}"
    );
    assert!(
        listing.contains("topic \"kc-keyed\" with 2 partitions"),
        "kcat -L does not show kc-keyed with num.partitions=2 partitions:\n{listing}"
    );

    // JSON listing: exact broker and partition layout.
    let md: Value = serde_json::from_slice(&kcat_ok(&["-b", &addr, "-L", "-J"], None)).unwrap();
    let brokers = md["brokers"].as_array().expect("brokers array");
    assert_eq!(brokers.len(), 1, "{md}");
    assert_eq!(brokers[0]["name"], json!(addr), "{md}");
    let broker_id = brokers[0]["id"].clone();
    let topic = md["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "kc-keyed")
        .unwrap_or_else(|| panic!("kc-keyed not in kcat -L -J: {md}"));
    let parts = topic["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{topic}");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], json!(i), "{topic}");
        assert_eq!(p["leader"], broker_id, "{topic}");
    }

    let out = kcat_ok(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "kc-keyed",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%k=%s\n",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "k1=v1\nk2=value with spaces\nk3=v:with:colons\nk4=last\n"
    );
    let out = kcat_ok(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "kc-keyed",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%p %o %k=%s\n",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0 0 k1=v1\n0 1 k2=value with spaces\n0 2 k3=v:with:colons\n0 3 k4=last\n"
    );
}

/// kcat with each compression codec and with headers: every line comes back exactly, with
/// its headers, in order.
#[test]
fn kcat_compressed_and_headers_round_trip() {
    let broker = Broker::start();
    let addr = broker.addr();
    let mut expected = String::new();
    let mut offset = 0;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("{codec}-{i}:{}", format!("{codec} payload {i} ").repeat(i % 9 + 1)))
            .collect();
        let input = lines.join("\n") + "\n";
        kcat_ok(
            &[
                "-b",
                &addr,
                "-P",
                "-t",
                "kc-codecs",
                "-p",
                "0",
                "-K:",
                "-z",
                codec,
                "-H",
                &format!("codec={codec}"),
                "-H",
                "h2=x y",
            ],
            Some(input.as_bytes()),
        );
        for l in &lines {
            let (k, v) = l.split_once(':').unwrap();
            expected.push_str(&format!("{offset}|codec={codec},h2=x y|{k}={v}\n"));
            offset += 1;
        }
    }
    let out = kcat_ok(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            "kc-codecs",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%o|%h|%k=%s\n",
        ],
        None,
    );
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.lines().count(), 200);
    assert_eq!(out, expected);
}
