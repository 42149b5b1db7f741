//! WebAssembly plugins end to end: the real `strom` binary with its admin HTTP API, the
//! `strom plugins` CLI, the plugins built from `plugins/`, and real Kafka clients
//! (confluent-kafka/librdkafka, kafka-python, kcat, KafkaJS) producing and consuming.
//!
//! Each test starts its own broker with `admin.listener` on a free port. Plugin components
//! come from `strom_plugins::artifacts`. Client scenarios live in
//! `tests/clients/plugins_ck.py` (librdkafka), `tests/clients/plugins_kp.py`
//! (kafka-python) and `tests/clients/kafkajs_scenarios.js` (KafkaJS); they print JSON that
//! the tests here assert on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{
    free_port, kcat_ok, node, python, run_with_timeout, strom_bin, strom_cli, strom_ok, Broker, TOOL_TIMEOUT,
};
use serde_json::{json, Value};
use strom_client::partitioner::partition_for_key;
use strom_plugins::artifacts;

/// How long the admin listener may take to accept connections once the Kafka port does.
const ADMIN_START_TIMEOUT: Duration = Duration::from_secs(20);

/// A broker with its admin HTTP API.
struct Strom {
    broker: Broker,
    /// `127.0.0.1:PORT` of the admin listener.
    admin: String,
}

impl Strom {
    fn start() -> Strom {
        Strom::start_with(&[])
    }

    fn start_with(opts: &[(&str, &str)]) -> Strom {
        let admin = format!("127.0.0.1:{}", free_port());
        let mut all = vec![("admin.listener", admin.as_str())];
        all.extend_from_slice(opts);
        let strom = Strom {
            broker: Broker::start_with(&all),
            admin,
        };
        strom.wait_for_admin();
        strom
    }

    fn wait_for_admin(&self) {
        let deadline = Instant::now() + ADMIN_START_TIMEOUT;
        let addr = self.admin.parse().unwrap();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "admin listener {} not accepting within {ADMIN_START_TIMEOUT:?}; broker log:\n{}",
                self.admin,
                self.broker.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn addr(&self) -> String {
        self.broker.addr()
    }

    fn url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// One raw HTTP/1.1 request to the admin API: (status, body).
    fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        http_request(&self.admin, method, path, body)
    }

    /// The value of the Prometheus sample whose line starts with `line_start` (0 if absent).
    fn metric(&self, line_start: &str) -> i64 {
        self.sample(line_start)
    }

    /// The same for a sample with a fractional value, such as seconds.
    fn sample<T: std::str::FromStr + Default>(&self, line_start: &str) -> T {
        let (status, body) = self.http("GET", "/metrics", b"");
        assert_eq!(status, 200);
        String::from_utf8(body)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_default()
    }

    /// A request whose answer must be `status` with a JSON body, which is returned.
    fn http_json(&self, method: &str, path: &str, body: &[u8], status: u16) -> Value {
        let (got, bytes) = self.http(method, path, body);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            got, status,
            "{method} {path}: expected HTTP {status}, got {got}: {text}"
        );
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text}"))
    }

    /// `GET /v1/plugins`, each plugin's `topics` sorted, the list sorted by name and version.
    fn listed(&self) -> Vec<Value> {
        let mut list: Vec<Value> = self
            .http_json("GET", "/v1/plugins", b"", 200)
            .as_array()
            .expect("GET /v1/plugins answers an array")
            .clone();
        for p in &mut list {
            let mut topics = p["topics"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| panic!("no topics array: {p}"));
            topics.sort_by_key(|t| {
                (
                    t["topic"].as_str().map(str::to_string),
                    t["as"].as_str().map(str::to_string),
                )
            });
            p["topics"] = Value::Array(topics);
        }
        list.sort_by_key(|p| {
            (
                p["name"].as_str().map(str::to_string),
                p["version"].as_str().map(str::to_string),
            )
        });
        list
    }

    /// `strom plugins --admin-url URL ARGS...`, whatever its exit code.
    fn plugins(&self, args: &[&str]) -> Output {
        let url = self.url();
        let mut full = vec!["plugins", "--admin-url", url.as_str()];
        full.extend_from_slice(args);
        strom_cli(&full, None)
    }

    fn plugins_ok(&self, args: &[&str]) -> String {
        let out = self.plugins(args);
        assert!(
            out.status.success(),
            "strom plugins {args:?} failed: {}",
            output_text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `strom plugins upload REF FILE`, checking its one-line report against the file.
    fn upload(&self, reference: &str, file: &str) {
        let (name, version) = reference.split_once('@').unwrap();
        let world = world_of(file);
        let out = self.plugins_ok(&["upload", reference, file]);
        assert_eq!(
            out,
            format!(
                "Uploaded {name}@{version} ({world}, {} bytes, sha256 {}).\n",
                file_size(file),
                sha256(file)
            )
        );
    }

    fn topics_ok(&self, args: &[&str]) -> String {
        let addr = self.addr();
        let mut full = vec!["topics"];
        full.extend_from_slice(args);
        full.extend(["--bootstrap-server", addr.as_str()]);
        strom_ok(&full, None)
    }

    /// `strom topics ... --bootstrap-server ADDR`, whatever its exit code.
    fn topics(&self, args: &[&str]) -> Output {
        let addr = self.addr();
        let mut full = vec!["topics"];
        full.extend_from_slice(args);
        full.extend(["--bootstrap-server", addr.as_str()]);
        strom_cli(&full, None)
    }

    /// `strom topics create NAME --partitions N --config K=V...` (CreateTopics with configs).
    fn create_topic(&self, name: &str, partitions: u32, configs: &[&str]) {
        let partitions = partitions.to_string();
        let mut args = vec!["create", name, "--partitions", partitions.as_str()];
        for c in configs {
            args.extend(["--config", c]);
        }
        assert_eq!(self.topics_ok(&args), format!("Created topic {name}.\n"));
    }

    /// `strom topics alter-config` (IncrementalAlterConfigs): `K=V` sets, a bare `K` deletes.
    fn alter(&self, topic: &str, ops: &[&str]) {
        let mut args = vec!["alter-config", topic];
        for op in ops {
            if op.contains('=') {
                args.extend(["--set", op]);
            } else {
                args.extend(["--delete", op]);
            }
        }
        assert_eq!(self.topics_ok(&args), format!("Altered configs of topic {topic}.\n"));
    }

    fn ck(&self, scenario: &str, args: &[&str]) -> Value {
        let addr = self.addr();
        let mut full = vec![scenario, addr.as_str()];
        full.extend_from_slice(args);
        python(&self.broker, "plugins_ck.py", &full)
    }

    fn kp(&self, scenario: &str, args: &[&str]) -> Value {
        let addr = self.addr();
        let mut full = vec![scenario, addr.as_str()];
        full.extend_from_slice(args);
        python(&self.broker, "plugins_kp.py", &full)
    }

    /// Produces with librdkafka; one delivery report per record.
    fn produce_ck(&self, topic: &str, spec: Value) -> Vec<Value> {
        reports(self.ck("produce", &[topic, &spec.to_string()]))
    }

    /// Produces with kafka-python; one report per record.
    fn produce_kp(&self, topic: &str, spec: Value) -> Vec<Value> {
        reports(self.kp("produce", &[topic, &spec.to_string()]))
    }

    /// Every record of the topic (sorted by partition and offset) and the high watermarks.
    fn dump(&self, topic: &str, partitions: u32, expect: usize) -> (Vec<Value>, Vec<i64>) {
        let r = self.ck("dump", &[topic, &partitions.to_string(), &expect.to_string()]);
        let records = r["records"].as_array().unwrap().clone();
        let hw = r["hw"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        (records, hw)
    }
}

fn reports(r: Value) -> Vec<Value> {
    r["reports"]
        .as_array()
        .unwrap_or_else(|| panic!("no reports: {r}"))
        .clone()
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A raw HTTP/1.1 request with `Connection: close`: (status, body). Independent of the
/// CLI's HTTP client, so the status codes the API promises are checked directly.
fn http_request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to the admin API at {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line in {head:?}"));
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let rest = &raw[end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().unwrap();
        assert!(
            rest.len() >= length,
            "{method} {path}: body shorter than its content-length"
        );
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn file_size(path: &str) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}")).len()
}

fn file_bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// SHA-256 of a file by coreutils' `sha256sum`, independent of the broker's hashing.
fn sha256(path: &str) -> String {
    let out = run_with_timeout(Command::new("sha256sum").arg(path), None, TOOL_TIMEOUT);
    assert!(out.status.success(), "sha256sum {path}: {}", output_text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The world the broker reports for each shipped plugin.
fn world_of(file: &str) -> &'static str {
    if file == artifacts::MURMUR2_PARTITIONER || file == artifacts::TEST_MISBEHAVE_PARTITIONER {
        "batch-partitioner"
    } else if file == artifacts::JSON_FIELD_PARTITIONER {
        "partitioner"
    } else if file == artifacts::HEADER_STAMP || file == artifacts::HEADER_STAMP_V2 {
        "batch-interceptor"
    } else {
        "record-interceptor"
    }
}

/// The API's description of an uploaded shipped plugin, without counters or topics.
fn info(reference: &str, file: &str) -> Value {
    let (name, version) = reference.split_once('@').unwrap();
    json!({
        "name": name,
        "version": version,
        "world": world_of(file),
        "sha256": sha256(file),
        "size": file_size(file),
    })
}

/// `info` plus where it is attached, as `[topic, as]` pairs.
fn listed_info(reference: &str, file: &str, uses: &[(&str, &str)]) -> Value {
    let mut v = info(reference, file);
    let mut uses: Vec<(&str, &str)> = uses.to_vec();
    uses.sort();
    v["topics"] = uses.iter().map(|(t, a)| json!({"topic": t, "as": a})).collect();
    v
}

/// A listed plugin with only the fields `listed_info` describes.
fn comparable(p: &Value) -> Value {
    json!({
        "name": p["name"], "version": p["version"], "world": p["world"],
        "sha256": p["sha256"], "size": p["size"], "topics": p["topics"],
    })
}

/// Field `key` of the `describe` output.
fn described_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
        .to_string()
}

fn ok_report(r: &Value) -> (i64, i64) {
    assert!(
        r.get("err").is_none_or(Value::is_null) && r.get("error").is_none_or(Value::is_null),
        "delivery failed: {r}"
    );
    (r["p"].as_i64().unwrap(), r["o"].as_i64().unwrap())
}

fn keyed(prefix: &str, n: usize, partition: Option<i32>) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"k": format!("{prefix}-key-{i}"), "v": format!("{prefix}-value-{i}"), "p": partition}))
        .collect()
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// `strom plugins upload | list | describe | delete` and the raw API status codes: 201 on
/// upload, 200 on an identical re-upload, 409 for different bytes under the same name and
/// version, the component bytes back byte for byte, 404 after delete; an unreachable admin
/// port gives a clear error; STROM_ADMIN_URL is honoured.
#[test]
fn cli_manages_plugins_through_the_admin_api() {
    let s = Strom::start();
    let m2 = artifacts::MURMUR2_PARTITIONER;
    let stamp = artifacts::HEADER_STAMP;

    s.upload("murmur2@1", m2);
    // An identical re-upload is fine, for the CLI (same line) and the API (200, same object).
    s.upload("murmur2@1", m2);
    assert_eq!(
        s.http_json("PUT", "/v1/plugins/murmur2/1", &file_bytes(m2), 200),
        info("murmur2@1", m2)
    );
    // A new upload through the raw API answers 201 with the same object shape.
    assert_eq!(
        s.http_json("PUT", "/v1/plugins/stamp/1", &file_bytes(stamp), 201),
        info("stamp@1", stamp)
    );
    // Other bytes under an existing name and version: 409, and the CLI shows the reason.
    let conflict = s.http_json("PUT", "/v1/plugins/murmur2/1", &file_bytes(stamp), 409);
    let reason = text_of(&conflict["error"]).to_string();
    assert!(!reason.is_empty(), "{conflict}");
    let out = s.plugins(&["upload", "murmur2@1", stamp]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: cannot upload murmur2@1: {reason}\n"),
        "{}",
        output_text(&out)
    );
    assert_eq!(
        s.http("GET", "/v1/plugins/murmur2/1/component", b""),
        (200, file_bytes(m2)),
        "the stored component is the first upload, byte for byte"
    );

    // Attach both and list.
    s.create_topic("routed", 4, &["partitioner=murmur2@1"]);
    s.create_topic("stamped", 1, &["interceptors.produce=stamp@1"]);
    s.create_topic("audit", 1, &["interceptors.fetch=stamp@1"]);
    assert_eq!(
        s.listed().iter().map(comparable).collect::<Vec<_>>(),
        vec![
            listed_info("murmur2@1", m2, &[("routed", "partitioner")]),
            listed_info(
                "stamp@1",
                stamp,
                &[("audit", "interceptors.fetch"), ("stamped", "interceptors.produce")]
            ),
        ]
    );
    let listing = s.plugins_ok(&["list"]);
    let rows: Vec<Vec<String>> = listing
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{listing}");
    assert_eq!(rows[0], ["NAME", "VERSION", "WORLD", "SIZE", "TOPICS"], "{listing}");
    assert_eq!(
        rows[1],
        [
            "murmur2",
            "1",
            "batch-partitioner",
            &file_size(m2).to_string(),
            "routed(partitioner)"
        ],
        "{listing}"
    );
    assert_eq!(
        &rows[2][..4],
        ["stamp", "1", "batch-interceptor", &file_size(stamp).to_string()],
        "{listing}"
    );
    let uses: BTreeSet<&str> = rows[2][4].split(',').collect();
    assert_eq!(
        uses,
        BTreeSet::from(["stamped(interceptors.produce)", "audit(interceptors.fetch)"]),
        "{listing}"
    );
    // Columns line up: every row starts its columns where the header does.
    let starts = |l: &str| -> Vec<usize> {
        let b = l.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] != b' ' && (i == 0 || b[i - 1] == b' '))
            .collect()
    };
    let header_starts = starts(listing.lines().next().unwrap());
    for line in listing.lines() {
        assert_eq!(starts(line), header_starts, "{listing}");
    }

    // describe: fields one per line; one produce batch is one call.
    let described = s.plugins_ok(&["describe", "stamp@1"]);
    assert_eq!(described_field(&described, "Name"), "stamp");
    assert_eq!(described_field(&described, "Version"), "1");
    assert_eq!(described_field(&described, "World"), "batch-interceptor");
    assert_eq!(described_field(&described, "Size"), file_size(stamp).to_string());
    assert_eq!(described_field(&described, "SHA256"), sha256(stamp));
    assert_eq!(described_field(&described, "Calls"), "0", "{described}");
    assert_eq!(described_field(&described, "Failures"), "0", "{described}");
    assert_eq!(
        described_field(&described, "Time in calls"),
        "0.000000 s",
        "{described}"
    );
    let reports = s.produce_ck("stamped", json!({"records": [{"k": "a", "v": "b"}]}));
    assert_eq!(ok_report(&reports[0]), (0, 0));
    let described = s.plugins_ok(&["describe", "stamp@1"]);
    assert_eq!(described_field(&described, "Calls"), "1", "{described}");
    assert_eq!(described_field(&described, "Failures"), "0", "{described}");
    let spent: f64 = described_field(&described, "Time in calls")
        .strip_suffix(" s")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("time in seconds: {described}"));
    assert!(spent > 0.0, "the call's time is counted: {described}");
    let api = s.http_json("GET", "/v1/plugins/stamp/1", b"", 200);
    assert_eq!(
        (api["calls"].clone(), api["failures"].clone()),
        (json!(1), json!(0)),
        "{api}"
    );
    assert!(api["call_seconds"].as_f64().is_some_and(|s| s > 0.0), "{api}");

    // delete an unused plugin; then it is gone for describe, delete and the API.
    s.upload("spare@1", artifacts::JSON_VALIDATE);
    assert_eq!(s.plugins_ok(&["delete", "spare@1"]), "Deleted plugin spare@1.\n");
    let gone = s.http_json("GET", "/v1/plugins/spare/1", b"", 404);
    let reason = text_of(&gone["error"]).to_string();
    for args in [["describe", "spare@1"], ["delete", "spare@1"]] {
        let out = s.plugins(&args);
        assert!(!out.status.success(), "{}", output_text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("error: {reason}\n"));
    }
    assert_eq!(s.http("DELETE", "/v1/plugins/spare/1", b"").0, 404);
    assert_eq!(s.listed().len(), 2);

    // STROM_ADMIN_URL stands in for --admin-url.
    let out = run_with_timeout(
        Command::new(strom_bin())
            .args(["plugins", "list"])
            .env("STROM_ADMIN_URL", s.url()),
        None,
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), listing);

    // Nobody listening: a clear error, promptly.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    for args in [
        vec!["list"],
        vec!["describe", "a@1"],
        vec!["upload", "a@1", m2],
        vec!["delete", "a@1"],
    ] {
        let started = Instant::now();
        let mut full = vec!["plugins", "--admin-url", nowhere.as_str()];
        full.extend(args.iter().copied());
        let out = strom_cli(&full, None);
        assert!(!out.status.success(), "{}", output_text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = if args[0] == "upload" {
            format!("error: cannot upload a@1: cannot reach the admin API at {nowhere}: ")
        } else {
            format!("error: cannot reach the admin API at {nowhere}: ")
        };
        assert!(stderr.starts_with(&expected), "{args:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    // A malformed reference is a usage error, before any request.
    let out = s.plugins(&["describe", "murmur2"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected NAME@VERSION, got 'murmur2'"),
        "{}",
        output_text(&out)
    );
}

/// Uploads are validated: random bytes and a core (non-component) module are not
/// components; a WASI command component exports no Strom world. Each gets 400 with a
/// message saying why, and nothing is stored.
#[test]
fn upload_refuses_what_is_not_a_strom_plugin() {
    let s = Strom::start();
    // The smallest valid core module: magic and version, no sections.
    let core_module: &[u8] = b"\0asm\x01\0\0\0";
    for (path, body) in [
        ("/v1/plugins/junk/1", &b"this is not WebAssembly at all"[..]),
        ("/v1/plugins/core/1", core_module),
    ] {
        let refused = s.http_json("PUT", path, body, 400);
        assert!(
            text_of(&refused["error"]).contains("not a WebAssembly component"),
            "PUT {path}: {refused}"
        );
    }
    let refused = s.http_json(
        "PUT",
        "/v1/plugins/cmd/1",
        &file_bytes(artifacts::TEST_NOT_A_PLUGIN),
        400,
    );
    let reason = text_of(&refused["error"]).to_string();
    assert!(reason.contains("exports no Strom plugin world"), "{refused}");

    // The CLI says the same.
    let out = s.plugins(&["upload", "cmd@1", artifacts::TEST_NOT_A_PLUGIN]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: cannot upload cmd@1: {reason}\n")
    );
    let junk = s.broker.scratch_dir().join("junk.wasm");
    std::fs::write(&junk, b"this is not WebAssembly at all").unwrap();
    let out = s.plugins(&["upload", "junk@1", junk.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot upload junk@1: ") && stderr.contains("not a WebAssembly component"),
        "{stderr}"
    );
    let out = s.plugins(&["upload", "x@1", "/nonexistent/x.wasm"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read /nonexistent/x.wasm: "),
        "{}",
        output_text(&out)
    );

    assert_eq!(s.listed(), Vec::<Value>::new());
    assert_eq!(s.plugins_ok(&["list"]), "NAME VERSION WORLD SIZE TOPICS\n");
    for path in ["/v1/plugins/junk/1", "/v1/plugins/core/1", "/v1/plugins/cmd/1"] {
        assert_eq!(s.http("GET", path, b"").0, 404, "{path} must not be stored");
    }
}

/// A topic config naming a plugin that is not uploaded, of the wrong world, or malformed is
/// INVALID_CONFIG (40) with a message naming it, through CreateTopics (strom CLI and
/// librdkafka's AdminClient) and IncrementalAlterConfigs; nothing is created or attached.
#[test]
fn attaching_an_unknown_plugin_is_invalid_config() {
    let s = Strom::start();
    s.upload("murmur2@1", artifacts::MURMUR2_PARTITIONER);
    s.upload("stamp@1", artifacts::HEADER_STAMP);

    let out = s.topics(&[
        "create",
        "t-unknown",
        "--partitions",
        "2",
        "--config",
        "partitioner=nope@1",
    ]);
    assert!(!out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INVALID_CONFIG (error code 40)"), "{stderr}");
    assert!(stderr.contains("nope@1"), "the message names the plugin: {stderr}");

    for (topic, config, named) in [
        ("t-unknown-ck", "interceptors.produce=stamp@1,ghost@3", "ghost@3"),
        ("t-wrong-world-1", "interceptors.produce=murmur2@1", "murmur2@1"),
        ("t-wrong-world-2", "partitioner=stamp@1", "stamp@1"),
        ("t-unknown-version", "partitioner=murmur2@2", "murmur2@2"),
        ("t-no-version", "partitioner=murmur2", "murmur2"),
    ] {
        let r = s.ck("create", &[topic, "1", config]);
        assert_eq!(
            (r["error"].clone(), r["code"].clone()),
            (json!("INVALID_CONFIG"), json!(40)),
            "{config}: {r}"
        );
        assert!(text_of(&r["message"]).contains(named), "{config}: {r}");
    }
    let r = s.ck(
        "create",
        &["t-bad-mode", "1", "partitioner=murmur2@1", "partitioner.mode=sideways"],
    );
    assert_eq!(
        (r["error"].clone(), r["code"].clone()),
        (json!("INVALID_CONFIG"), json!(40)),
        "{r}"
    );

    s.create_topic("plain", 1, &[]);
    for op in ["interceptors.fetch=stamp@1,ghost@3", "partitioner=stamp@1"] {
        let r = s.ck("alter", &["plain", op]);
        assert_eq!(
            (r["error"].clone(), r["code"].clone()),
            (json!("INVALID_CONFIG"), json!(40)),
            "{op}: {r}"
        );
        let out = s.topics(&["alter-config", "plain", "--set", op]);
        assert!(!out.status.success(), "{}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("INVALID_CONFIG (error code 40)"),
            "{}",
            output_text(&out)
        );
    }
    let topics = s.topics_ok(&["list"]);
    let topics: Vec<&str> = topics
        .lines()
        .filter(|t| t.starts_with("t-") || *t == "plain")
        .collect();
    assert_eq!(topics, ["plain"], "no failed create left a topic behind");
    for p in s.listed() {
        assert_eq!(p["topics"], json!([]), "no failed attachment took effect: {p}");
    }
}

/// Route mode: librdkafka (idempotent), kafka-python (idempotent by default) and kcat all
/// address partition 0; every record lands in the partition Kafka's murmur2 gives its key,
/// exactly where librdkafka's own murmur2 partitioner puts the same key on a plugin-free
/// topic, in send order per partition. Partition 0 keeps the offsets of the records that
/// moved as gaps; the other partitions are contiguous.
#[test]
fn murmur2_partitioner_routes_records_where_kafka_would() {
    let s = Strom::start();
    s.upload("murmur2@1", artifacts::MURMUR2_PARTITIONER);
    let r = s.ck("create", &["routed", "4", "partitioner=murmur2@1"]);
    assert_eq!(r["error"], Value::Null, "{r}");
    s.create_topic("control", 4, &[]);

    let ck = keyed("ck", 200, Some(0));
    let reports = s.produce_ck("routed", json!({"records": ck, "conf": {"enable.idempotence": true}}));
    for r in &reports {
        assert_eq!(
            ok_report(r).0,
            0,
            "librdkafka's report names the partition it addressed"
        );
    }
    let kp = keyed("kp", 200, Some(0));
    for r in s.produce_kp("routed", json!({"records": kp})) {
        assert_eq!(ok_report(&r).0, 0);
    }
    let kcat_lines: String = (0..100).map(|i| format!("kc-key-{i}:kc-value-{i}\n")).collect();
    kcat_ok(
        &["-P", "-b", &s.addr(), "-t", "routed", "-p", "0", "-K", ":"],
        Some(kcat_lines.as_bytes()),
    );

    // librdkafka's own murmur2 partitioner on a topic without plugins, for the same keys.
    let all_keys: Vec<String> = ["ck", "kp", "kc"]
        .iter()
        .flat_map(|p| (0..if *p == "kc" { 100 } else { 200 }).map(move |i| format!("{p}-key-{i}")))
        .collect();
    let control_records: Vec<Value> = all_keys.iter().map(|k| json!({"k": k, "v": "x"})).collect();
    let control = s.produce_ck(
        "control",
        json!({"records": control_records, "conf": {"partitioner": "murmur2_random"}}),
    );
    let librdkafka_choice: BTreeMap<&str, i64> = all_keys
        .iter()
        .zip(&control)
        .map(|(k, r)| (k.as_str(), ok_report(r).0))
        .collect();

    let (records, hw) = s.dump("routed", 4, 500);
    assert_eq!(records.len(), 500);
    let mut per_partition: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for r in &records {
        let key = text_of(&r["k"]);
        let p = r["p"].as_i64().unwrap();
        assert_eq!(
            p, librdkafka_choice[key],
            "{r}: librdkafka's murmur2 puts {key} elsewhere"
        );
        assert_eq!(p, partition_for_key(key.as_bytes(), 4) as i64, "{r}");
        assert_eq!(text_of(&r["v"]), key.replace("-key-", "-value-"), "{r}");
        per_partition.entry(p).or_default().push(r);
    }
    let distinct: BTreeSet<&str> = records.iter().map(|r| text_of(&r["k"])).collect();
    assert_eq!(distinct.len(), 500, "every record exactly once");
    assert_eq!(per_partition.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for (p, rs) in &per_partition {
        // Each client's records keep their send order inside a partition.
        for prefix in ["ck", "kp", "kc"] {
            let order: Vec<usize> = rs
                .iter()
                .filter_map(|r| text_of(&r["k"]).strip_prefix(&format!("{prefix}-key-")))
                .map(|i| i.parse().unwrap())
                .collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "partition {p}: {prefix} records out of send order");
        }
        let offsets: Vec<i64> = rs.iter().map(|r| r["o"].as_i64().unwrap()).collect();
        if *p != 0 {
            assert_eq!(
                offsets,
                (0..rs.len() as i64).collect::<Vec<_>>(),
                "partition {p} is contiguous"
            );
            assert_eq!(hw[*p as usize], rs.len() as i64, "partition {p}");
        }
    }
    assert_eq!(
        hw[0], 500,
        "every record addressed to partition 0 took an offset there (moved ones as gaps)"
    );
}

/// The JSON-field partitioner keeps every customer's orders on one partition, whichever
/// partition the client addressed; `plugin.<name>.field` picks another field; a record
/// without the field is refused with INVALID_RECORD. Attached with the legacy AlterConfigs.
#[test]
fn json_field_partitioner_keeps_each_customer_on_one_partition() {
    let s = Strom::start();
    s.upload("jf@1", artifacts::JSON_FIELD_PARTITIONER);
    s.create_topic("orders", 3, &[]);
    let r = s.ck("alter_legacy", &["orders", "partitioner=jf@1"]);
    assert_eq!(r["error"], Value::Null, "{r}");
    s.create_topic("by-region", 3, &["partitioner=jf@1", "plugin.jf.field=region"]);

    let orders: Vec<Value> = (0..84)
        .map(|i| {
            json!({
                "v": format!(r#"{{"order_id": {i}, "customer_id": "c{}", "region": "r{}"}}"#, i % 7, i % 4),
                "p": i % 3,
            })
        })
        .collect();
    for topic in ["orders", "by-region"] {
        for r in s.produce_ck(topic, json!({"records": orders})) {
            ok_report(&r);
        }
    }
    // kcat too, all to partition 2.
    let lines: String = (84..105)
        .map(|i| {
            format!(
                r#"{{"order_id": {i}, "customer_id": "c{}", "region": "r{}"}}"#,
                i % 7,
                i % 4
            ) + "\n"
        })
        .collect();
    kcat_ok(
        &["-P", "-b", &s.addr(), "-t", "orders", "-p", "2"],
        Some(lines.as_bytes()),
    );

    for (topic, field, groups, count) in [("orders", "customer_id", 7, 105), ("by-region", "region", 4, 84)] {
        let (records, _) = s.dump(topic, 3, count);
        assert_eq!(records.len(), count, "{topic}");
        let mut partition_of: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        let mut order_ids = BTreeSet::new();
        for r in &records {
            let v: Value = serde_json::from_str(text_of(&r["v"])).unwrap();
            order_ids.insert(v["order_id"].as_i64().unwrap());
            partition_of
                .entry(text_of(&v[field]).to_string())
                .or_default()
                .insert(r["p"].as_i64().unwrap());
        }
        assert_eq!(order_ids.len(), count, "{topic}: every order exactly once");
        assert_eq!(partition_of.len(), groups, "{topic}");
        for (value, partitions) in &partition_of {
            assert_eq!(
                partitions.len(),
                1,
                "{topic}: {field}={value} is spread over {partitions:?}"
            );
        }
        let used: BTreeSet<i64> = partition_of.values().flatten().copied().collect();
        assert!(used.len() > 1, "{topic}: the plugin put everything on {used:?}");
    }

    let (_, hw_before) = s.dump("orders", 3, 105);
    let refused = s.produce_kp(
        "orders",
        json!({"records": [{"v": r#"{"order_id": 999}"#, "p": 0}], "sync": true}),
    );
    assert_eq!(refused[0]["errno"], json!(87), "{refused:?}");
    assert!(text_of(&refused[0]["message"]).contains("customer_id"), "{refused:?}");
    let (_, hw_after) = s.dump("orders", 3, 105);
    assert_eq!(hw_after, hw_before, "a refused record is not stored");
}

/// A batch partitioner is called once per produce request for all of a topic's partitions
/// in it. When it refuses that call, each partition is asked on its own, so only the
/// partition holding the refused record fails and the others are stored.
#[test]
fn partitioner_takes_a_whole_request_and_a_refusal_fails_only_its_partition() {
    let s = Strom::start();
    s.upload("jf@1", artifacts::JSON_FIELD_PARTITIONER);
    s.create_topic("orders", 3, &["partitioner=jf@1"]);
    let counters = || {
        (
            s.metric("strom_requests_total{api=\"Produce\"}"),
            s.metric("strom_plugin_calls_total{plugin=\"jf@1\"}"),
        )
    };
    let order = |id: i32, customer: &str| format!(r#"{{"order_id": {id}, "customer_id": "{customer}"}}"#);
    // kafka-python lingers, then drains both partitions' batches into one request.
    let send_two = |first: String, second: String| {
        let before = counters();
        let reports = s.produce_kp(
            "orders",
            json!({"records": [{"v": first, "p": 0}, {"v": second, "p": 1}], "linger_ms": 500}),
        );
        let after = counters();
        assert_eq!(after.0 - before.0, 1, "the client sent both partitions in one request");
        (reports, after.1 - before.1)
    };

    let (reports, calls) = send_two(order(1, "c1"), order(2, "c2"));
    for r in &reports {
        ok_report(r);
    }
    assert_eq!(calls, 1, "one partitioner call for the request's two partitions");

    let (reports, calls) = send_two(r#"{"order_id": 3}"#.to_string(), order(4, "c4"));
    assert_eq!(reports[0]["errno"], json!(87), "{reports:?}");
    assert!(text_of(&reports[0]["message"]).contains("customer_id"), "{reports:?}");
    ok_report(&reports[1]);
    assert_eq!(calls, 3, "the refused call, then one call per partition");

    let (records, _) = s.dump("orders", 3, 3);
    let mut ids: Vec<i64> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(text_of(&r["v"])).unwrap()["order_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 4], "the refused record alone is missing");
}

/// A partitioner that runs out of time fails the request's partitions of its topic after
/// one time budget: one call for all of them, not one per partition. One that traps is
/// asked again for each partition, and each fails with the trap. Other topics are served.
/// The time requests spent in the calls is counted, the whole budget of a call that ran out.
#[test]
fn a_failing_partitioner_fails_its_topics_partitions_of_the_request() {
    let s = Strom::start();
    s.upload("badp@1", artifacts::TEST_MISBEHAVE_PARTITIONER);
    s.create_topic(
        "p-loop",
        3,
        &["partitioner=badp@1", "plugin.badp.mode=loop", "plugins.call.ms.max=300"],
    );
    // A generous budget: each call after a trap instantiates afresh, which must not be
    // what fails it.
    s.create_topic(
        "p-trap",
        3,
        &[
            "partitioner=badp@1",
            "plugin.badp.mode=trap",
            "plugins.call.ms.max=5000",
        ],
    );
    s.create_topic("plain", 1, &[]);

    for (topic, calls_expected, what) in [("p-loop", 1, "time budget of 300 ms"), ("p-trap", 4, "trapped")] {
        let requests = s.metric("strom_requests_total{api=\"Produce\"}");
        let calls = s.metric("strom_plugin_calls_total{plugin=\"badp@1\"}");
        let seconds: f64 = s.sample("strom_plugin_call_seconds_total{plugin=\"badp@1\"}");
        // kafka-python lingers, then drains the three partitions' batches into one request.
        let records: Vec<Value> = (0..3).map(|p| json!({"v": format!("r{p}"), "p": p})).collect();
        let reports = s.produce_kp(topic, json!({"records": records, "linger_ms": 500}));
        assert_eq!(
            s.metric("strom_requests_total{api=\"Produce\"}") - requests,
            1,
            "{topic}: the client sent the three partitions in one request"
        );
        for r in &reports {
            assert_eq!(r["errno"], json!(44), "{topic}: {r}");
            let message = text_of(&r["message"]);
            assert!(
                message.contains("badp@1") && message.contains(what),
                "{topic}: {message}"
            );
        }
        assert_eq!(
            s.metric("strom_plugin_calls_total{plugin=\"badp@1\"}") - calls,
            calls_expected,
            "{topic}: calls into the partitioner"
        );
        // The time requests spent in the plugin is counted, a call that ran out of time
        // included: at least its budget.
        let spent = s.sample::<f64>("strom_plugin_call_seconds_total{plugin=\"badp@1\"}") - seconds;
        let least = if topic == "p-loop" { 0.3 } else { 1e-6 };
        assert!((least..3.0).contains(&spent), "{topic}: {spent} s in partitioner calls");
        assert_eq!(s.dump(topic, 3, 0).1, vec![0, 0, 0], "{topic}: nothing stored");
    }
    let plain = s.produce_kp("plain", json!({"records": [{"v": "still served"}]}));
    assert_eq!(ok_report(&plain[0]), (0, 0));
}

/// Enforce mode: records the client sends to the partition the plugin would choose are
/// stored; a record sent elsewhere fails its batch with INVALID_RECORD and a message naming
/// the right partition, and nothing of that batch is stored.
#[test]
fn enforce_mode_refuses_misrouted_records_naming_the_right_partition() {
    let s = Strom::start();
    s.upload("murmur2@1", artifacts::MURMUR2_PARTITIONER);
    s.create_topic("enforced", 4, &["partitioner=murmur2@1", "partitioner.mode=enforce"]);

    // librdkafka with Kafka's murmur2 partitioner agrees with the plugin everywhere.
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    let right = |k: &str| partition_for_key(k.as_bytes(), 4) as i64;
    let records: Vec<Value> = keys.iter().map(|k| json!({"k": k, "v": format!("v-{k}")})).collect();
    let reports = s.produce_ck(
        "enforced",
        json!({"records": records, "conf": {"partitioner": "murmur2_random"}}),
    );
    for (k, r) in keys.iter().zip(&reports) {
        assert_eq!(ok_report(r).0, right(k), "{k}");
    }

    // Each misrouted record in a batch of its own: refused, with the right partition named.
    let wrong: Vec<(String, i64, i64)> = (0..4)
        .map(|i| {
            let k = format!("wrong-{i}");
            let r = right(&k);
            (k, r, (r + 1 + i) % 4)
        })
        .filter(|(_, r, w)| r != w)
        .collect();
    assert!(wrong.len() >= 3);
    let spec: Vec<Value> = wrong
        .iter()
        .map(|(k, _, w)| json!({"k": k, "v": "misrouted", "p": w}))
        .collect();
    let kp = s.produce_kp("enforced", json!({"records": spec, "sync": true}));
    let ck = s.produce_ck("enforced", json!({"records": spec, "sync": true}));
    for (i, (k, r, w)) in wrong.iter().enumerate() {
        assert_eq!(kp[i]["errno"], json!(87), "kafka-python, {k} to {w}: {}", kp[i]);
        let message = text_of(&kp[i]["message"]);
        assert!(
            message.contains(&format!("partition {r}")),
            "{k} sent to {w} must name partition {r}: {message}"
        );
        assert_eq!(
            (ck[i]["err"].clone(), ck[i]["code"].clone()),
            (json!("INVALID_RECORD"), json!(87)),
            "librdkafka, {k} to {w}: {}",
            ck[i]
        );
    }

    let (stored, hw) = s.dump("enforced", 4, 40);
    assert_eq!(stored.len(), 40, "only the well-routed records are stored");
    for r in &stored {
        assert_eq!(r["p"].as_i64().unwrap(), right(text_of(&r["k"])), "{r}");
    }
    let mut counts = [0i64; 4];
    for k in &keys {
        counts[right(k) as usize] += 1;
    }
    assert_eq!(hw, counts.to_vec(), "refused batches take no offsets");
}

/// KafkaJS's admin client alone attaches the murmur2 partitioner (topic configs at create)
/// and switches its mode (AlterConfigs): in enforce mode records KafkaJS's own partitioner
/// places are stored and misrouted ones refused with INVALID_RECORD, storing nothing; in
/// route mode misrouted records are stored in the partition the plugin picks.
#[test]
fn kafkajs_attaches_and_reconfigures_a_partitioner_through_topic_configs() {
    let s = Strom::start_with(&[("group.initial.rebalance.delay.ms", "0")]);
    s.upload("murmur2@1", artifacts::MURMUR2_PARTITIONER);
    let r = node(
        &s.broker,
        "kafkajs_scenarios.js",
        &["partitioner-plugin", &s.addr(), "murmur2@1"],
    );
    assert_eq!(
        r["configs_enforce"],
        json!({"partitioner": "murmur2@1", "partitioner.mode": "enforce"}),
        "{r}"
    );
    assert_eq!(
        r["enforce_refusals"],
        json!(["INVALID_RECORD", "INVALID_RECORD", "INVALID_RECORD"]),
        "{r}"
    );
    assert_eq!(r["high_watermark_sum_after_enforce"], json!(40), "{r}");
    assert_eq!(
        r["configs_route"],
        json!({"partitioner": "murmur2@1", "partitioner.mode": "route"}),
        "{r}"
    );
    // A moved record leaves an offset gap in the partition it was addressed to (that batch
    // keeps the producer's identity) and takes an offset where it lands: the high
    // watermarks grow by two per moved record, while consumers read each record once.
    assert_eq!(r["high_watermark_sum_after_route"], json!(46), "{r}");
    assert_eq!(r["consumed"], json!(43), "{r}");
    assert_eq!(r["misplaced"], json!([]), "every record in its murmur2 partition: {r}");
    assert_eq!(
        r["routed_keys_stored"],
        json!(["routed-0", "routed-1", "routed-2"]),
        "{r}"
    );
    assert_eq!(r["refused_keys_stored"], json!(0), "{r}");
}

/// A produce interceptor stamps a header on every record (default name and value, and
/// per-topic `plugin.stamp.header` / `plugin.stamp.value`, replacing a header of that name);
/// keys, values, other headers and timestamps are untouched, also in compressed batches.
#[test]
fn header_stamp_interceptor_is_visible_on_consume() {
    let s = Strom::start();
    s.upload("stamp@1", artifacts::HEADER_STAMP);
    s.create_topic("stamped", 2, &["interceptors.produce=stamp@1"]);
    s.create_topic(
        "lineage",
        1,
        &[
            "interceptors.produce=stamp@1",
            "plugin.stamp.header=lineage",
            "plugin.stamp.value=from-config",
        ],
    );
    let ts = 1_700_000_000_000i64;
    let records: Vec<Value> = (0..40)
        .map(|i| json!({"k": format!("k{i}"), "v": format!("value {i}"), "h": [["h", format!("{i}")]], "p": i % 2, "ts": ts + i}))
        .collect();
    for codec in ["zstd", "none"] {
        for r in s.produce_ck(
            "stamped",
            json!({"records": records, "conf": {"compression.type": codec}}),
        ) {
            ok_report(&r);
        }
    }
    let lineage = vec![
        json!({"k": "a", "v": "one"}),
        json!({"k": "b", "v": "two", "h": [["lineage", "old"], ["other", "x"]]}),
    ];
    for r in s.produce_ck(
        "lineage",
        json!({"records": lineage, "conf": {"compression.type": "lz4"}}),
    ) {
        ok_report(&r);
    }

    let (got, _) = s.dump("stamped", 2, 80);
    assert_eq!(got.len(), 80);
    for r in &got {
        let i: i64 = text_of(&r["k"])[1..].parse().unwrap();
        assert_eq!(r["p"], json!(i % 2), "{r}");
        assert_eq!(r["v"], json!(format!("value {i}")), "{r}");
        assert_eq!(r["ts"], json!(ts + i), "{r}");
        assert_eq!(r["h"], json!([["h", format!("{i}")], ["x-strom-stamp", "v1"]]), "{r}");
    }
    let (got, _) = s.dump("lineage", 1, 2);
    assert_eq!(
        got.iter()
            .map(|r| (r["k"].clone(), r["v"].clone(), r["h"].clone()))
            .collect::<Vec<_>>(),
        vec![
            (json!("a"), json!("one"), json!([["lineage", "from-config"]])),
            (
                json!("b"),
                json!("two"),
                json!([["other", "x"], ["lineage", "from-config"]])
            ),
        ]
    );
}

/// A validating interceptor refuses a batch with INVALID_RECORD (87) and an error_message
/// naming the plugin and the problem; valid records are stored at consecutive offsets and
/// refused batches take none.
#[test]
fn json_validate_refuses_invalid_records_with_invalid_record() {
    let s = Strom::start();
    s.upload("validator@1", artifacts::JSON_VALIDATE);
    s.create_topic(
        "validated",
        1,
        &[
            "interceptors.produce=validator@1",
            "plugin.validator.required=id,amount",
        ],
    );
    let spec = json!({"sync": true, "records": [
        {"v": r#"{"id": 1, "amount": 5}"#},
        {"v": r#"{"id": 2}"#},
        {"v": "not json"},
        {"v": r#"{"id": 3, "amount": 7}"#},
    ]});
    let kp = s.produce_kp("validated", spec.clone());
    assert_eq!(kp[0], json!({"p": 0, "o": 0}));
    assert_eq!(kp[3], json!({"p": 0, "o": 1}));
    for (i, problem) in [
        (1, r#"record 0 lacks required field "amount""#),
        (2, "record 0 is not a JSON object"),
    ] {
        assert_eq!(kp[i]["errno"], json!(87), "{}", kp[i]);
        let message = text_of(&kp[i]["message"]);
        assert!(
            message.contains("validator@1"),
            "the message names the plugin: {message}"
        );
        assert!(message.contains(problem), "the message says what is wrong: {message}");
    }
    let ck = s.produce_ck("validated", spec);
    assert_eq!(ok_report(&ck[0]), (0, 2));
    assert_eq!(ok_report(&ck[3]), (0, 3));
    for i in [1, 2] {
        assert_eq!(
            (ck[i]["err"].clone(), ck[i]["code"].clone()),
            (json!("INVALID_RECORD"), json!(87)),
            "{}",
            ck[i]
        );
    }
    let (got, hw) = s.dump("validated", 1, 4);
    let values: Vec<(i64, &str)> = got
        .iter()
        .map(|r| (r["o"].as_i64().unwrap(), text_of(&r["v"])))
        .collect();
    assert_eq!(
        values,
        vec![
            (0, r#"{"id": 1, "amount": 5}"#),
            (1, r#"{"id": 3, "amount": 7}"#),
            (2, r#"{"id": 1, "amount": 5}"#),
            (3, r#"{"id": 3, "amount": 7}"#),
        ]
    );
    assert_eq!(hw, vec![4]);
}

/// field-redact: on produce, a record with a `drop-me` header is dropped (its offset stays
/// a gap); on fetch, `card_number` is masked. Detaching the fetch interceptor shows the
/// stored values again (storage never changed); re-attaching with the consumer's principal
/// allowed shows them too; removing the allowance masks again — all live.
#[test]
fn field_redact_masks_on_fetch_and_drops_on_produce_without_changing_storage() {
    let s = Strom::start();
    s.upload("redact@1", artifacts::FIELD_REDACT);
    s.create_topic(
        "payments",
        1,
        &["interceptors.produce=redact@1", "interceptors.fetch=redact@1"],
    );
    let originals = [
        r#"{"id": 0, "card_number": "4111-1111-1111-1111", "name": "ann"}"#,
        r#"{"id": 1, "card_number": "5500-0000-0000-0004"}"#,
        r#"{"id": 2, "name": "bob"}"#,
        r#"{"id": 3, "card_number": "3400-000000-00009", "name": "cy"}"#,
    ];
    let masked = [
        r#"{"id": 0, "card_number": "***", "name": "ann"}"#,
        "",
        r#"{"id": 2, "name": "bob"}"#,
        r#"{"id": 3, "card_number": "***", "name": "cy"}"#,
    ];
    let records: Vec<Value> = originals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let h = if i == 1 { json!([["drop-me", "yes"]]) } else { json!([]) };
            json!({"k": format!("p{i}"), "v": v, "h": h})
        })
        .collect();
    // One batch (linger), so the dropped record's offset is a gap inside it.
    let reports = s.produce_ck("payments", json!({"records": records, "conf": {"linger.ms": 200}}));
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(
            ok_report(r),
            (0, i as i64),
            "all four acknowledged at their batch positions"
        );
    }
    let seen = |values: [&str; 4]| -> Vec<(i64, String)> {
        [0usize, 2, 3]
            .iter()
            .map(|&i| (i as i64, values[i].to_string()))
            .collect()
    };
    let read = || -> (Vec<(i64, String)>, Vec<i64>) {
        let (got, hw) = s.dump("payments", 1, 3);
        (
            got.iter()
                .map(|r| (r["o"].as_i64().unwrap(), text_of(&r["v"]).to_string()))
                .collect(),
            hw,
        )
    };
    assert_eq!(
        read(),
        (seen(masked), vec![4]),
        "masked on fetch, drop-me record dropped"
    );

    s.alter("payments", &["interceptors.fetch"]);
    assert_eq!(
        read(),
        (seen(originals), vec![4]),
        "without the fetch interceptor the stored values show"
    );

    s.alter(
        "payments",
        &["interceptors.fetch=redact@1", "plugin.redact.allow=User:ANONYMOUS"],
    );
    assert_eq!(
        read(),
        (seen(originals), vec![4]),
        "an allowed principal sees the values"
    );

    s.alter("payments", &["plugin.redact.allow"]);
    assert_eq!(
        read(),
        (seen(masked), vec![4]),
        "masked again once the allowance is gone"
    );
}

/// Hot swap under load: a steady idempotent librdkafka producer runs while the topic's
/// interceptor changes from stamp@1 to stamp@2 (IncrementalAlterConfigs). Every acked
/// record is stored exactly once, in order, nothing fails, and the stamps read v1 up to one
/// switch point and v2 after it.
#[test]
fn hot_swap_from_v1_to_v2_loses_and_duplicates_nothing() {
    let s = Strom::start();
    s.upload("stamp@1", artifacts::HEADER_STAMP);
    s.upload("stamp@2", artifacts::HEADER_STAMP_V2);
    s.create_topic("swap", 1, &["interceptors.produce=stamp@1"]);

    let r = s.ck("swap", &["swap", "stamp@2"]);
    assert_eq!(r["alter"], Value::Null, "{r}");
    assert_eq!(
        r["failed_count"],
        json!(0),
        "no delivery may fail during the swap: {}",
        r["failed"]
    );
    let sent = r["sent"].as_i64().unwrap();
    assert!(sent >= 200, "the producer was steady: only {sent} records in 3 s");
    assert_eq!(r["acked"], json!(sent));
    let by_offset = r["by_offset"].as_array().unwrap();
    let offsets: Vec<i64> = by_offset.iter().map(|e| e[0].as_i64().unwrap()).collect();
    let seqs: Vec<i64> = by_offset.iter().map(|e| e[1].as_i64().unwrap()).collect();
    assert_eq!(
        offsets,
        (0..sent).collect::<Vec<_>>(),
        "one record per acked send, no gaps"
    );
    assert_eq!(
        seqs,
        (0..sent).collect::<Vec<_>>(),
        "every acked record exactly once, in order"
    );
    assert_eq!(
        r["offsets_by_seq"],
        json!((0..sent).collect::<Vec<_>>()),
        "acked offsets match the stored ones"
    );
    // Run-length encoding of the stamps in offset order.
    let mut runs: Vec<(Value, i64)> = Vec::new();
    for e in by_offset {
        match runs.last_mut() {
            Some((stamp, n)) if *stamp == e[2] => *n += 1,
            _ => runs.push((e[2].clone(), 1)),
        }
    }
    let shape: Vec<Value> = runs.iter().map(|(stamp, _)| stamp.clone()).collect();
    assert_eq!(
        shape,
        vec![json!(["v1"]), json!(["v2"])],
        "one switch point, v1 then v2: {runs:?}"
    );

    let api = s.listed();
    assert_eq!(api[0]["topics"], json!([]), "stamp@1 is detached: {}", api[0]);
    assert_eq!(
        api[1]["topics"],
        json!([{"topic": "swap", "as": "interceptors.produce"}]),
        "{}",
        api[1]
    );
}

/// An infinite loop, an hour-long sleep in WASI, a trap and runaway allocation each fail
/// their own topic's produce with POLICY_VIOLATION (44) and a message naming the plugin
/// and what happened, within about the time budget, while a steady producer on another
/// topic keeps being served promptly. The failures are counted; fixing the config makes
/// the same topic work again.
#[test]
fn misbehaving_plugins_fail_only_their_own_topic() {
    let s = Strom::start();
    s.upload("bad@1", artifacts::TEST_MISBEHAVE);
    s.create_topic("good", 1, &[]);
    let attach = |mode: &str| format!("plugin.bad.mode={mode}");
    s.create_topic(
        "loop-long",
        1,
        &[
            "interceptors.produce=bad@1",
            &attach("loop"),
            "plugins.call.ms.max=1500",
        ],
    );
    for mode in ["loop", "sleep", "trap", "oom"] {
        s.create_topic(
            &format!("bad-{mode}"),
            1,
            &["interceptors.produce=bad@1", &attach(mode)],
        );
    }

    // The first call into a freshly uploaded plugin pays one-time costs (measured at about a
    // second in a debug build); a harmless topic takes them, so that the timings below are
    // about the budgets.
    s.create_topic("warm-up", 1, &["interceptors.produce=bad@1", &attach("fine")]);
    let warm = s.produce_ck("warm-up", json!({"records": [{"v": "x"}]}));
    assert_eq!(ok_report(&warm[0]), (0, 0));
    eprintln!("first produce through bad@1 took {} ms", warm[0]["ms"]);

    let r = s.ck(
        "misbehave",
        &["good", "loop-long", "bad-loop", "bad-sleep", "bad-trap", "bad-oom"],
    );
    for topic in ["loop-long", "bad-loop", "bad-sleep", "bad-trap", "bad-oom"] {
        let b = &r["bad"][topic];
        assert_eq!(
            (b["err"].clone(), b["code"].clone()),
            (json!("POLICY_VIOLATION"), json!(44)),
            "{topic}: {b}"
        );
        let ms = b["ms"].as_i64().unwrap();
        if topic == "loop-long" {
            assert!(
                (1400..2500).contains(&ms),
                "{topic}: the 1500 ms budget ended the call after {ms} ms"
            );
            assert!(
                b["good_acked_during"].as_i64().unwrap() >= 20,
                "the good topic must be served while a plugin spins: {r}"
            );
        } else {
            assert!(ms < 2000, "{topic}: failed after {ms} ms");
        }
    }
    let good = &r["good"];
    assert_eq!(good["failed"], json!([]), "{good}");
    assert_eq!(good["acked"], good["sent"], "{good}");
    assert!(good["sent"].as_i64().unwrap() >= 100, "{good}");
    assert!(
        good["max_ms"].as_i64().unwrap() < 1000,
        "a good record waited {} ms: {good}",
        good["max_ms"]
    );

    // kafka-python shows the broker's message.
    for (topic, what) in [
        ("bad-loop", "time budget"),
        ("bad-sleep", "time budget"),
        ("bad-trap", "trap"),
        ("bad-oom", "memory"),
    ] {
        let kp = s.produce_kp(topic, json!({"records": [{"v": "x"}], "sync": true}));
        assert_eq!(kp[0]["errno"], json!(44), "{topic}: {}", kp[0]);
        let message = text_of(&kp[0]["message"]);
        assert!(
            message.contains("bad@1"),
            "{topic}: the message names the plugin: {message}"
        );
        assert!(
            message.contains(what),
            "{topic}: the message says what happened ({what}): {message}"
        );
    }
    let described = s.http_json("GET", "/v1/plugins/bad/1", b"", 200);
    let failures = described["failures"].as_i64().unwrap();
    assert!(failures >= 9, "5 + 4 failed calls at least: {described}");
    assert!(described["calls"].as_i64().unwrap() >= failures, "{described}");

    // The trapped plugin is replaced by a fresh instance: with a harmless mode it works.
    s.alter("bad-trap", &["plugin.bad.mode=fine"]);
    let kp = s.produce_kp("bad-trap", json!({"records": [{"v": "x"}], "sync": true}));
    assert_eq!(
        kp[0],
        json!({"p": 0, "o": 0}),
        "nothing was stored by the failed batches"
    );

    let (good_records, hw) = s.dump("good", 1, good["acked"].as_u64().unwrap() as usize);
    assert_eq!(good_records.len() as i64, good["acked"].as_i64().unwrap());
    assert_eq!(hw, vec![good["acked"].as_i64().unwrap()]);
    for topic in ["loop-long", "bad-loop", "bad-sleep", "bad-oom"] {
        assert_eq!(s.dump(topic, 1, 0).1, vec![0], "{topic}: nothing stored");
    }

    // The same facts through Prometheus metrics.
    let (status, body) = s.http("GET", "/metrics", b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let metric = |line_start: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
    };
    assert!(
        metric("strom_plugin_failures_total{plugin=\"bad@1\"}") >= failures,
        "{text}"
    );
    assert_eq!(
        metric("strom_partition_log_end_offset{topic=\"good\",partition=\"0\"}"),
        good["acked"].as_i64().unwrap()
    );
    assert_eq!(
        metric("strom_partition_log_end_offset{topic=\"bad-oom\",partition=\"0\"}"),
        0
    );
    assert!(metric("strom_requests_total{api=\"Produce\"}") >= good["sent"].as_i64().unwrap() / 100);
    assert!(metric("strom_produced_bytes_total") > 0);
    assert!(metric("strom_connections_opened_total") >= 2);
    let mut broker = s.broker;
    broker.assert_alive();
}

/// Deleting a plugin that a topic uses is refused with 409 naming the use; detaching one
/// topic is not enough while another still uses it; once no topic does, delete works, and
/// the plugin can no longer be attached.
#[test]
fn deleting_a_plugin_in_use_is_refused_until_detached() {
    let s = Strom::start();
    s.upload("stamp@1", artifacts::HEADER_STAMP);
    s.create_topic("t-a", 1, &["interceptors.produce=stamp@1"]);
    s.create_topic("t-b", 1, &["interceptors.fetch=stamp@1"]);
    assert_eq!(
        comparable(&s.listed()[0]),
        listed_info(
            "stamp@1",
            artifacts::HEADER_STAMP,
            &[("t-a", "interceptors.produce"), ("t-b", "interceptors.fetch")]
        )
    );

    let refused = s.http_json("DELETE", "/v1/plugins/stamp/1", b"", 409);
    let reason = text_of(&refused["error"]).to_string();
    assert!(reason.contains("is used by topic"), "{refused}");
    let out = s.plugins(&["delete", "stamp@1"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("error: {reason}\n"));

    s.alter("t-a", &["interceptors.produce"]);
    let refused = s.http_json("DELETE", "/v1/plugins/stamp/1", b"", 409);
    let reason = text_of(&refused["error"]);
    assert!(
        reason.contains("t-b") && !reason.contains("t-a"),
        "only t-b uses it now: {refused}"
    );

    assert_eq!(s.topics_ok(&["delete", "t-b"]), "Deleted topic t-b.\n");
    assert_eq!(s.listed()[0]["topics"], json!([]));
    assert_eq!(s.plugins_ok(&["delete", "stamp@1"]), "Deleted plugin stamp@1.\n");
    assert_eq!(s.http("GET", "/v1/plugins/stamp/1", b"").0, 404);
    assert_eq!(s.listed(), Vec::<Value>::new());

    let r = s.ck("alter", &["t-a", "interceptors.produce=stamp@1"]);
    assert_eq!(
        (r["error"].clone(), r["code"].clone()),
        (json!("INVALID_CONFIG"), json!(40)),
        "{r}"
    );
}

/// Plugins and attachments live in the metadata log: after SIGTERM and after kill -9 the
/// broker lists the same plugins (same bytes) and topics, and keeps routing and stamping
/// records with the per-attachment config, including an interceptor chain extended live
/// (`interceptors.produce=stamp@1,mark@1`, run in that order) just before the crash.
#[test]
fn plugins_and_attachments_survive_restarts() {
    let mut s = Strom::start();
    s.upload("murmur2@1", artifacts::MURMUR2_PARTITIONER);
    s.upload("stamp@1", artifacts::HEADER_STAMP);
    s.upload("mark@1", artifacts::HEADER_STAMP);
    s.create_topic(
        "durable",
        3,
        &[
            "partitioner=murmur2@1",
            "interceptors.produce=stamp@1",
            "plugin.stamp.value=before",
            "plugin.mark.header=x-mark",
        ],
    );
    let listing = |mark_uses: &[(&str, &str)]| {
        vec![
            listed_info("mark@1", artifacts::HEADER_STAMP, mark_uses),
            listed_info(
                "murmur2@1",
                artifacts::MURMUR2_PARTITIONER,
                &[("durable", "partitioner")],
            ),
            listed_info(
                "stamp@1",
                artifacts::HEADER_STAMP,
                &[("durable", "interceptors.produce")],
            ),
        ]
    };
    let listed = |s: &Strom| s.listed().iter().map(comparable).collect::<Vec<_>>();
    let produce = |s: &Strom, range: std::ops::Range<usize>| {
        let records: Vec<Value> = range
            .map(|i| json!({"k": format!("key-{i}"), "v": format!("value-{i}"), "p": 0}))
            .collect();
        for r in s.produce_ck("durable", json!({"records": records})) {
            assert_eq!(ok_report(&r).0, 0);
        }
    };
    // Records 0..marked_from carry stamp@1's header only; later ones mark@1's after it.
    let check = |s: &Strom, count: usize, marked_from: usize| {
        let (records, _) = s.dump("durable", 3, count);
        assert_eq!(records.len(), count);
        let mut seen = BTreeSet::new();
        for r in &records {
            let key = text_of(&r["k"]);
            let i: usize = key["key-".len()..].parse().unwrap();
            assert!(seen.insert(i), "{key} twice");
            assert_eq!(
                r["p"].as_i64().unwrap(),
                partition_for_key(key.as_bytes(), 3) as i64,
                "{r}"
            );
            assert_eq!(r["v"], json!(format!("value-{i}")), "{r}");
            let headers = if i < marked_from {
                json!([["x-strom-stamp", "before"]])
            } else {
                json!([["x-strom-stamp", "before"], ["x-mark", "v1"]])
            };
            assert_eq!(r["h"], headers, "{r}");
        }
    };

    produce(&s, 0..30);
    check(&s, 30, usize::MAX);
    assert_eq!(listed(&s), listing(&[]));

    let (status, _) = s.broker.sigterm(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM exit status {status}");
    s.broker.restart();
    s.wait_for_admin();
    assert_eq!(listed(&s), listing(&[]), "after SIGTERM");
    assert_eq!(
        s.http("GET", "/v1/plugins/stamp/1/component", b""),
        (200, file_bytes(artifacts::HEADER_STAMP))
    );
    produce(&s, 30..60);
    check(&s, 60, usize::MAX);

    s.alter("durable", &["interceptors.produce=stamp@1,mark@1"]);
    produce(&s, 60..70);
    let (_, acked_hw) = s.dump("durable", 3, 70);
    s.broker.kill9();
    s.broker.restart();
    s.wait_for_admin();
    assert_eq!(
        s.dump("durable", 3, 0).1,
        acked_hw,
        "high watermarks after kill -9 (acks=all records must survive)"
    );
    assert_eq!(
        listed(&s),
        listing(&[("durable", "interceptors.produce")]),
        "after kill -9"
    );
    produce(&s, 70..80);
    check(&s, 80, 60);
    let described = s.plugins_ok(&["describe", "murmur2@1"]);
    assert_eq!(described_field(&described, "Topics"), "durable(partitioner)");
    assert_eq!(
        described_field(&described, "SHA256"),
        sha256(artifacts::MURMUR2_PARTITIONER)
    );
}
