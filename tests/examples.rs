//! The example plugins of `examples/`: the murmur2 partitioner of
//! `plugins/murmur2-partitioner` ported to Python (componentize-py) and C (wit-bindgen c,
//! clang, wasm-tools), plus JavaScript (componentize-js) and Zig when their tools are on the
//! machine.
//!
//! `examples/build.sh` builds them once into `target/examples/` (tests/setup installs the
//! tools; nothing here installs anything). Each component is uploaded to a real broker
//! through the admin HTTP API, attached as the partitioner of its own 8-partition topic, and
//! fed by confluent-kafka (`tests/clients/examples_ck.py`) with records all addressed to
//! partition 0. Every record must land on the partition that Kafka's murmur2, computed here
//! independently, gives for its key (for a record without a key: for its value, partition 0
//! without one, as the Rust plugin does), and on the one the Rust plugin picks.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{free_port, python, run_with_timeout, tail, Broker};
use serde_json::{json, Value};
use strom_plugins::artifacts;

const PARTITIONS: u32 = 8;
/// Keyed records produced to each topic.
const KEYED: usize = 200;
/// Records without a key (placed by their value) produced with them.
const UNKEYED: usize = 16;
/// Records with neither key nor value (partition 0) produced with them.
const EMPTY: usize = 4;
/// How long `examples/build.sh` may take (componentize-py alone takes about half a minute).
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long an upload may take: the broker compiles the component before it answers, and a
/// Python or JavaScript component carries a whole interpreter.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const ADMIN_START_TIMEOUT: Duration = Duration::from_secs(20);

/// (language, component under `target/examples/`, built by every `examples/build.sh` run).
const EXAMPLES: &[(&str, &str, bool)] = &[
    ("python", "python_partitioner.wasm", true),
    ("c", "c_partitioner.wasm", true),
    ("js", "js_partitioner.wasm", false),
    ("zig", "zig_partitioner.wasm", false),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `examples/build.sh` once per test process; panics with its output if it fails.
fn build_examples() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let started = Instant::now();
        let script = root().join("examples/build.sh");
        let out = run_with_timeout(Command::new("bash").arg(&script), None, BUILD_TIMEOUT);
        let text = format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            tail(&String::from_utf8_lossy(&out.stdout), 20_000),
            tail(&String::from_utf8_lossy(&out.stderr), 20_000)
        );
        eprintln!("examples/build.sh took {:?}\n{text}", started.elapsed());
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed with {} (does tests/setup install its tools?)\n{text}",
                script.display(),
                out.status
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c), written from the Java source.
fn kafka_murmur2(data: &[u8]) -> i32 {
    let m: i32 = 0x5bd1_e995;
    let r = 24;
    let length = data.len() as i32;
    let mut h: i32 = 0x9747_b28c_u32 as i32 ^ length;
    let length4 = data.len() / 4;
    for i in 0..length4 {
        let i4 = i * 4;
        let mut k = (data[i4] as i32 & 0xff)
            + ((data[i4 + 1] as i32 & 0xff) << 8)
            + ((data[i4 + 2] as i32 & 0xff) << 16)
            + ((data[i4 + 3] as i32 & 0xff) << 24);
        k = k.wrapping_mul(m);
        k ^= ((k as u32) >> r) as i32;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = data.len() % 4;
    let at = data.len() & !3;
    if rest == 3 {
        h ^= (data[at + 2] as i32 & 0xff) << 16;
    }
    if rest >= 2 {
        h ^= (data[at + 1] as i32 & 0xff) << 8;
    }
    if rest >= 1 {
        h ^= data[at] as i32 & 0xff;
        h = h.wrapping_mul(m);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(m);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// The partition of Kafka's default partitioner: `toPositive(murmur2(key)) % partitions`.
fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    (kafka_murmur2(key) & 0x7fff_ffff) as u32 % partitions
}

/// Unique keys of 0 to 40 bytes (every tail length of murmur2), some with multi-byte UTF-8.
fn keys() -> Vec<String> {
    (0..KEYED)
        .map(|i| match i % 5 {
            0 if i == 0 => String::new(),
            0 => i.to_string(),
            1 => format!("customer-{i}"),
            2 => format!("order/{i:05}/ключ"),
            3 => format!("{}{i}", "x".repeat(i % 13)),
            _ => format!("a-little-bit-longer-string-{i}-{}", "z".repeat(i % 7)),
        })
        .collect()
}

/// What each topic receives, in send order: the keyed records, then the unkeyed ones and the
/// empty ones interleaved, as (key, value).
fn spec() -> Vec<(Option<String>, Option<String>)> {
    let mut records: Vec<(Option<String>, Option<String>)> = keys()
        .into_iter()
        .map(|k| {
            let v = format!("value-of-{k}");
            (Some(k), Some(v))
        })
        .collect();
    for i in 0..UNKEYED {
        records.push((None, Some(format!("unkeyed-{i}"))));
        if i % (UNKEYED / EMPTY) == 0 {
            records.push((None, None));
        }
    }
    records
}

/// Where Kafka's default partitioner puts a key, and the Rust plugin a record without one.
fn expected_partition(key: Option<&str>, value: Option<&str>) -> u32 {
    match (key, value) {
        (Some(k), _) => kafka_partition(k.as_bytes(), PARTITIONS),
        (None, Some(v)) => kafka_partition(v.as_bytes(), PARTITIONS),
        (None, None) => 0,
    }
}

/// A broker with its admin HTTP API.
struct Strom {
    broker: Broker,
    admin: String,
}

impl Strom {
    fn start() -> Strom {
        let admin = format!("127.0.0.1:{}", free_port());
        let broker = Broker::start_with(&[("admin.listener", admin.as_str())]);
        let addr = admin.parse().unwrap();
        let deadline = Instant::now() + ADMIN_START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "admin listener {admin} not accepting within {ADMIN_START_TIMEOUT:?}; broker log:\n{}",
                broker.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Strom { broker, admin }
    }

    /// `PUT /v1/plugins/NAME/VERSION` with the component: must answer 201 and the partitioner
    /// world.
    fn upload(&self, name: &str, version: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let started = Instant::now();
        let (status, body) = http_put(&self.admin, &format!("/v1/plugins/{name}/{version}"), &bytes);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(
            status,
            201,
            "uploading {} as {name}@{version}: HTTP {status}: {text}",
            file.display()
        );
        let answer: Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("upload answer is not JSON ({e}): {text}"));
        // The example languages build the typed partitioner world; the shipped Rust plugin
        // uses the batch form.
        let world = if file.ends_with("murmur2_partitioner.wasm") {
            "batch-partitioner"
        } else {
            "partitioner"
        };
        assert_eq!(answer["world"], world, "upload of {}: {answer}", file.display());
        assert_eq!(answer["size"], bytes.len(), "upload of {}: {answer}", file.display());
        eprintln!(
            "uploaded {name}@{version} ({} bytes) in {:?}",
            bytes.len(),
            started.elapsed()
        );
    }

    /// Creates `topic` with `partitioner=PLUGIN`, produces the keyed and unkeyed records to
    /// partition 0 and reads the whole topic back: (records sorted by partition and offset,
    /// high watermarks).
    fn route(&self, topic: &str, plugin: &str) -> (Vec<Value>, Vec<i64>) {
        let spec = json!({"records": spec().iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()}).to_string();
        let addr = self.broker.addr();
        let partitions = PARTITIONS.to_string();
        let r = python(
            &self.broker,
            "examples_ck.py",
            &["route", &addr, topic, &partitions, plugin, &spec],
        );
        let records = r["records"]
            .as_array()
            .unwrap_or_else(|| panic!("no records: {r}"))
            .clone();
        let hw = r["hw"]
            .as_array()
            .unwrap_or_else(|| panic!("no hw: {r}"))
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        (records, hw)
    }
}

/// One HTTP/1.1 PUT with `Connection: close`: (status, body).
fn http_put(addr: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to the admin API at {addr}: {e}"));
    s.set_read_timeout(Some(UPLOAD_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(UPLOAD_TIMEOUT)).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("PUT {path}: reading the answer: {e}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("PUT {path}: no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "PUT {path}: chunked answers are not expected from the admin API: {head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("PUT {path}: bad status line in {head:?}"));
    (status, raw[end + 4..].to_vec())
}

/// Checks one topic's records (sorted by partition and offset) against Kafka's murmur2;
/// returns where each record went, by key (`k:KEY`) or, without one, by value (`v:VALUE`).
fn check_routing(language: &str, records: &[Value], hw: &[i64]) -> BTreeMap<String, u32> {
    let spec = spec();
    // Send order of each identifiable record; the empty ones all look alike.
    let sent: BTreeMap<String, usize> = spec
        .iter()
        .enumerate()
        .filter_map(|(i, (k, v))| identity(k.as_deref(), v.as_deref()).map(|id| (id, i)))
        .collect();
    let mut problems = Vec::new();
    let mut placed: BTreeMap<String, u32> = BTreeMap::new();
    let mut per_partition = vec![0i64; PARTITIONS as usize];
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); PARTITIONS as usize];
    for r in records {
        let p = r["p"]
            .as_u64()
            .unwrap_or_else(|| panic!("record without partition: {r}")) as u32;
        let o = r["o"].as_i64().unwrap();
        let (k, v) = (r["k"].as_str(), r["v"].as_str());
        per_partition[p as usize] += 1;
        let want = expected_partition(k, v);
        if p != want {
            problems.push(format!(
                "key {k:?} value {v:?} at p{p} o{o}, expected on partition {want}"
            ));
        }
        let Some(id) = identity(k, v) else { continue };
        match sent.get(&id) {
            None => problems.push(format!("unexpected record at p{p} o{o}: key {k:?} value {v:?}")),
            Some(i) => order[p as usize].push(*i),
        }
        if placed.insert(id, p).is_some() {
            problems.push(format!("key {k:?} value {v:?} stored twice (again at p{p} o{o})"));
        }
    }
    for id in sent.keys() {
        if !placed.contains_key(id) {
            problems.push(format!("{id} is missing"));
        }
    }
    // Exact counts: each partition holds what the rule sends there, nothing else.
    let mut expected = vec![0i64; PARTITIONS as usize];
    for (k, v) in &spec {
        expected[expected_partition(k.as_deref(), v.as_deref()) as usize] += 1;
    }
    if per_partition != expected {
        problems.push(format!(
            "records per partition {per_partition:?}, expected {expected:?}"
        ));
    }
    // A moved record leaves a gap in partition 0, where the client addressed it: partition 0
    // takes an offset for every record, the others are contiguous.
    let mut want_hw = expected.clone();
    want_hw[0] = spec.len() as i64;
    if hw != want_hw.as_slice() {
        problems.push(format!("high watermarks {hw:?}, expected {want_hw:?}"));
    }
    for q in 1..PARTITIONS as u64 {
        let offsets: Vec<i64> = records
            .iter()
            .filter(|r| r["p"] == q)
            .map(|r| r["o"].as_i64().unwrap())
            .collect();
        if offsets != (0..offsets.len() as i64).collect::<Vec<_>>() {
            problems.push(format!("partition {q} is not contiguous: offsets {offsets:?}"));
        }
    }
    for (q, sent_order) in order.iter().enumerate() {
        if sent_order.windows(2).any(|w| w[0] > w[1]) {
            problems.push(format!("partition {q}: records out of send order: {sent_order:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "the {language} partitioner routed {} records wrongly ({} problems, first ones):\n{}",
        records.len(),
        problems.len(),
        problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    placed
}

/// How a record is told apart: by its key, or without one by its value.
fn identity(key: Option<&str>, value: Option<&str>) -> Option<String> {
    match (key, value) {
        (Some(k), _) => Some(format!("k:{k}")),
        (None, Some(v)) => Some(format!("v:{v}")),
        (None, None) => None,
    }
}

/// Kafka's own test vectors (`UtilsTest.testMurmur2`) for the murmur2 this file checks with.
#[test]
fn the_reference_murmur2_matches_kafkas_test_vectors() {
    let vectors: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ];
    for (data, want) in vectors {
        assert_eq!(
            kafka_murmur2(data),
            *want,
            "murmur2({:?})",
            String::from_utf8_lossy(data)
        );
    }
    let lengths: std::collections::BTreeSet<usize> = keys().iter().map(|k| k.len() % 4).collect();
    assert_eq!(lengths.len(), 4, "the test keys cover every murmur2 tail length");
}

/// The Python and C ports (and the JavaScript and Zig ones when built) put every record where
/// Kafka's default partitioner and the Rust plugin put it.
#[test]
fn example_partitioners_route_records_like_kafka_and_the_rust_plugin() {
    build_examples();
    let s = Strom::start();
    let out_dir = root().join("target/examples");

    s.upload("murmur2-rust", "1", Path::new(artifacts::MURMUR2_PARTITIONER));
    let (records, hw) = s.route("examples-rust", "murmur2-rust@1");
    let rust = check_routing("Rust", &records, &hw);

    let mut tested = Vec::new();
    for (language, file, required) in EXAMPLES {
        let path = out_dir.join(file);
        if !path.exists() {
            assert!(!required, "examples/build.sh succeeded but wrote no {}", path.display());
            eprintln!("skipping the {language} example: {} was not built", path.display());
            continue;
        }
        let name = format!("murmur2-{language}");
        s.upload(&name, "1", &path);
        let (records, hw) = s.route(&format!("examples-{language}"), &format!("{name}@1"));
        let routed = check_routing(language, &records, &hw);
        let differences: Vec<String> = rust
            .iter()
            .filter(|(id, p)| routed.get(*id) != Some(p))
            .take(10)
            .map(|(id, p)| format!("{id:?}: Rust {p}, {language} {:?}", routed.get(id)))
            .collect();
        assert!(
            differences.is_empty() && routed.len() == rust.len(),
            "the {language} and Rust partitioners disagree:\n{}",
            differences.join("\n")
        );
        tested.push(*language);
    }
    eprintln!("example partitioners checked: {tested:?}");
}
