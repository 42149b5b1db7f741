//! TLS, SASL and ACLs against the real `strom` binary, driven by real clients: librdkafka
//! (confluent-kafka 2.16, `tests/clients/security_ck.py`), kafka-python 3.0
//! (`tests/clients/security_kp.py`, which also holds the raw-socket and Python `ssl` probes),
//! the Java client (kafka-clients 3.9, `SecurityJava.java`), KafkaJS 2.2
//! (`kafkajs_scenarios.js`) and the `strom users`/`strom acls` CLI.
//!
//! Tests that use TLS make their own certificates with `config/gen-certs.sh` (a CA, broker
//! certificates for localhost/127.0.0.1, client certificates for alice and bob). Each test
//! starts one broker with two or more listeners on free ports: a PLAINTEXT listener
//! `INTERNAL` whose clients (User:ANONYMOUS) are super users, through which the test creates
//! topics, users and ACLs as an operator would, and the secured listener(s) under test.
//! Expected failures are results of the client scripts, asserted by error name or code; a
//! refused login or handshake must be reported by the client within [`FAIL_WITHIN_S`].
//!
//! Two client behaviours shape the checks: librdkafka reports nothing for a partition it
//! was assigned by hand of a topic that Metadata hides from it (it never learns a leader), so
//! "cannot consume a topic it may not describe" is checked with a subscribed group member;
//! and kafka-python 3.0 logs a refused SASL login (SaslAuthenticationFailedError) at once but
//! keeps retrying until its bootstrap timeout, so its refusals are checked in its log.
//!
//! `STROM_TEST_BIN=/path/to/strom` runs the suite against another build of the broker (see
//! `common::strom_bin`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{java_classpath, node, python, run_java, run_with_timeout, strom_ok, tests_dir, Broker, TOOL_TIMEOUT};
use serde_json::{json, Value};

/// How long a client may take to report a refused login or a failed handshake.
const FAIL_WITHIN_S: f64 = 6.0;

/// The principal of a client presenting gen-certs.sh's certificate for alice (RFC 2253).
const ALICE_DN: &str = "User:CN=alice,OU=test,O=Strom";
const BOB_DN: &str = "User:CN=bob,OU=test,O=Strom";

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const ALL_MECHANISMS: &str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER";

// ------------------------------------------------------------------ certificates

/// The files `config/gen-certs.sh` makes, in a directory removed with the value.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("strom-certs-")
            .tempdir()
            .expect("create tempdir");
        let script = repo_root().join("config/gen-certs.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(dir.path());
        let out = run_with_timeout(&mut cmd, None, TOOL_TIMEOUT);
        assert!(
            out.status.success(),
            "{} failed with {}: {}{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { dir }
    }

    /// Absolute path of one of the files, as a string for settings and client configs.
    fn p(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        assert!(path.exists(), "gen-certs.sh did not make {name}");
        path.display().to_string()
    }

    /// Broker settings for TLS listeners: the keystore and the truststore.
    fn broker_opts(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ssl.keystore.location", self.p("broker.pem")),
            ("ssl.truststore.location", self.p("ca.pem")),
        ]
    }
}

fn repo_root() -> PathBuf {
    tests_dir().join("..")
}

// ------------------------------------------------------------------ brokers and clients

/// Starts a broker with named listeners `(NAME, PROTOCOL)` (the first one is INTERNAL,
/// PLAINTEXT) and settings `opts`; every broker here forms groups at once.
fn start(listeners: &[(&str, &str)], opts: Vec<(&str, String)>) -> Broker {
    start_with_config(listeners, opts, None)
}

fn start_with_config(listeners: &[(&str, &str)], mut opts: Vec<(&str, String)>, config: Option<&Path>) -> Broker {
    opts.insert(0, ("group.initial.rebalance.delay.ms", "0".to_string()));
    let refs: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Broker::start_listeners(listeners, &refs, config)
}

/// Runs `security_ck.py ops` with `ops` against `bootstrap` connecting as `sec`; returns one
/// result per op.
fn ck(broker: &Broker, bootstrap: &str, sec: Value, ops: Vec<Value>) -> Vec<Value> {
    run_ops(broker, "security_ck.py", bootstrap, sec, ops)
}

/// Runs `security_kp.py ops` likewise.
fn kp(broker: &Broker, bootstrap: &str, sec: Value, ops: Vec<Value>) -> Vec<Value> {
    run_ops(broker, "security_kp.py", bootstrap, sec, ops)
}

fn run_ops(broker: &Broker, script: &str, bootstrap: &str, sec: Value, ops: Vec<Value>) -> Vec<Value> {
    let n = ops.len();
    let spec = json!({"bootstrap": bootstrap, "sec": sec, "ops": ops});
    let r = python(broker, script, &["ops", &spec.to_string()]);
    let results = r["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {r}"))
        .clone();
    assert_eq!(
        results.len(),
        n,
        "{script} returned {} results for {n} ops: {r}",
        results.len()
    );
    results
}

fn plaintext() -> Value {
    json!({"protocol": "PLAINTEXT"})
}

/// TLS, verifying the broker against `certs`' CA (and its hostname).
fn tls(certs: &Certs) -> Value {
    json!({"protocol": "SSL", "ca": certs.p("ca.pem")})
}

/// TLS with the client certificate of `who` (alice or bob).
fn tls_as(certs: &Certs, who: &str) -> Value {
    json!({
        "protocol": "SSL",
        "ca": certs.p("ca.pem"),
        "cert": certs.p(&format!("{who}.pem")),
        "key": certs.p(&format!("{who}-key.pem")),
    })
}

/// SASL with a user name and password (PLAIN or SCRAM); over TLS when `certs` is given.
fn sasl(certs: Option<&Certs>, mechanism: &str, user: &str, password: &str) -> Value {
    let mut v = json!({
        "protocol": if certs.is_some() { "SASL_SSL" } else { "SASL_PLAINTEXT" },
        "mechanism": mechanism,
        "user": user,
        "password": password,
    });
    if let Some(c) = certs {
        v["ca"] = json!(c.p("ca.pem"));
    }
    v
}

/// SASL/OAUTHBEARER with `extra` (librdkafka's "oauth_config" or an unsecured JWT's
/// "jwt_claims"); over TLS when `certs` is given.
fn oauth(certs: Option<&Certs>, extra: Value) -> Value {
    let mut v = json!({
        "protocol": if certs.is_some() { "SASL_SSL" } else { "SASL_PLAINTEXT" },
        "mechanism": "OAUTHBEARER",
        "user": "alice",
    });
    if let Some(c) = certs {
        v["ca"] = json!(c.p("ca.pem"));
    }
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// The op that runs `op` connecting as `sec` instead of the batch's connection.
fn with_sec(mut op: Value, sec: &Value) -> Value {
    op["sec"] = sec.clone();
    op
}

fn with_bootstrap(mut op: Value, bootstrap: &str) -> Value {
    op["bootstrap"] = json!(bootstrap);
    op
}

/// A TLS handshake (Python's ssl module) on `port` limited to versions `min`..=`max`.
fn handshake(certs: &Certs, port: u16, min: &str, max: &str) -> Value {
    json!({"op": "tls_handshake", "port": port, "ca": certs.p("ca.pem"), "min_version": min, "max_version": max})
}

fn roundtrip(topic: &str, n: usize, tag: &str) -> Value {
    json!({"op": "roundtrip", "topic": topic, "n": n, "tag": tag})
}

fn connect_fail() -> Value {
    json!({"op": "connect_fail"})
}

fn produce(topic: &str, value: &str) -> Value {
    json!({"op": "produce", "topic": topic, "value": value})
}

fn fetch(topic: &str, expect: usize) -> Value {
    json!({"op": "fetch", "topic": topic, "expect": expect})
}

fn group_consume(topic: &str, group: &str, expect: usize) -> Value {
    json!({"op": "group_consume", "topic": topic, "group": group, "expect": expect})
}

fn create_topics(topics: &[&str]) -> Value {
    json!({"op": "create_topics", "topics": topics.iter().map(|t| json!([t, 1])).collect::<Vec<_>>()})
}

fn upsert(user: &str, password: &str, mechanism: &str, iterations: u32) -> Value {
    json!({"user": user, "password": password, "mechanism": mechanism, "iterations": iterations})
}

/// An ACL binding as the scripts take it (host `*`, literal pattern unless given).
fn acl(restype: &str, name: &str, principal: &str, operation: &str, permission: &str) -> Value {
    json!({
        "restype": restype, "name": name, "pattern": "LITERAL", "principal": principal,
        "host": "*", "operation": operation, "permission": permission,
    })
}

fn prefixed(mut binding: Value) -> Value {
    binding["pattern"] = json!("PREFIXED");
    binding
}

/// The tagged values a `roundtrip` op produces.
fn tagged(tag: &str, n: usize) -> Value {
    json!((0..n).map(|i| format!("{tag}-value-{i}")).collect::<Vec<_>>())
}

/// A roundtrip op's result: all `n` records delivered and read back in order.
fn assert_roundtrip(r: &Value, tag: &str, n: usize, what: &str) {
    assert_eq!(r["op"], "roundtrip", "{what}: {r}");
    assert_eq!(r["delivered"], json!(n), "{what}: not every record was delivered: {r}");
    assert_eq!(r["consumed"], tagged(tag, n), "{what}: records read back differ: {r}");
}

/// A librdkafka connect_fail result: the client reported an error named one of `names`
/// within FAIL_WITHIN_S and the record was not delivered.
fn assert_ck_failed(r: &Value, names: &[&str], what: &str) {
    assert_eq!(r["op"], "connect_fail", "{what}: {r}");
    assert_eq!(r["delivered"], json!(false), "{what}: the record was delivered: {r}");
    let first = r["first_error_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: the client reported no error: {r}"));
    assert!(first <= FAIL_WITHIN_S, "{what}: first error after {first} s: {r}");
    let errors = r["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| names.iter().any(|n| e["name"] == *n)),
        "{what}: none of the errors is {names:?}: {r}"
    );
}

/// A refused SASL login as librdkafka reports it.
fn assert_ck_auth_failed(r: &Value, what: &str) {
    assert_ck_failed(r, &["_AUTHENTICATION"], what);
}

/// A kafka-python connect_fail result: constructing the producer or sending raised within
/// `within_s` and nothing was delivered.
fn assert_kp_failed(r: &Value, within_s: f64, what: &str) {
    assert_eq!(r["op"], "connect_fail", "{what}: {r}");
    assert_eq!(r["delivered"], json!(false), "{what}: the record was delivered: {r}");
    assert!(r["error"].is_string(), "{what}: no error: {r}");
    let at = r["first_error_s"].as_f64().unwrap();
    assert!(at <= within_s, "{what}: failed only after {at} s: {r}");
}

/// What is wrong with kafka-python's connect_fail for a refused login, if anything. It must
/// log SaslAuthenticationFailedError (the broker's SASL_AUTHENTICATION_FAILED answer) within
/// FAIL_WITHIN_S and never get the record through. kafka-python 3.0 keeps retrying a refused
/// bootstrap until its timeout, so what it raises in the end is a KafkaTimeoutError: the log
/// line is the prompt signal.
fn kp_auth_problem(r: &Value, what: &str) -> Option<String> {
    if r["op"] != "connect_fail" || r["delivered"] != json!(false) || !r["error"].is_string() {
        return Some(format!("{what}: the login was not refused: {r}"));
    }
    match r["expect_log_s"].as_f64() {
        None => Some(format!(
            "{what}: kafka-python never saw SaslAuthenticationFailedError: {r}"
        )),
        Some(at) if at > FAIL_WITHIN_S => Some(format!("{what}: refusal seen only after {at} s: {r}")),
        Some(_) => None,
    }
}

fn kp_auth_fail() -> Value {
    json!({"op": "connect_fail", "timeout_s": 4, "expect_log": "SaslAuthenticationFailedError"})
}

/// An op result's error name (librdkafka's or kafka-python's).
fn error_of(r: &Value) -> &str {
    r["error"].as_str().unwrap_or("none")
}

fn strom_in(args: &[&str]) -> String {
    strom_ok(args, None)
}

/// Broker log lines that record a successful authentication of `user`.
fn successful_auths(log: &str, user: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let lower = l.to_lowercase();
            l.contains(user)
                && lower.contains("authenticat")
                && !lower.contains("fail")
                && !lower.contains("invalid")
                && !lower.contains("error")
        })
        .map(str::to_string)
        .collect()
}

// ------------------------------------------------------------------ TLS

/// SSL listener without client certificates: librdkafka and kafka-python round trips with
/// the broker verified against ca.pem (hostname 127.0.0.1 against the certificate's SANs),
/// the certificate Python's ssl module receives is broker-cert.pem, a client trusting another
/// CA refuses the broker, Metadata advertises to each client the listener it came in on, and
/// `listener.name.tls13.ssl.enabled.protocols=TLSv1.3` refuses TLS 1.2 on that listener only.
#[test]
fn tls_round_trip_verifies_broker_certificate() {
    let certs = Certs::new();
    let other_ca = Certs::new();
    let mut opts = certs.broker_opts();
    opts.push(("listener.name.tls13.ssl.enabled.protocols", "TLSv1.3".to_string()));
    let broker = start(&[("INTERNAL", "PLAINTEXT"), ("TLS", "SSL"), ("TLS13", "SSL")], opts);
    let (internal, tls_addr) = (broker.addr(), broker.listener_addr("TLS"));
    let setup = ck(
        &broker,
        &internal,
        plaintext(),
        vec![create_topics(&["tls-ck", "tls-kp"]), json!({"op": "metadata"})],
    );
    assert_eq!(setup[0]["errors"], json!({"tls-ck": null, "tls-kp": null}), "{setup:?}");
    assert_eq!(
        setup[1]["brokers"],
        json!([internal]),
        "INTERNAL client told: {}",
        setup[1]
    );

    let r = ck(
        &broker,
        &tls_addr,
        tls(&certs),
        vec![
            roundtrip("tls-ck", 50, "ck-tls"),
            json!({"op": "metadata"}),
            with_sec(connect_fail(), &json!({"protocol": "SSL", "ca": other_ca.p("ca.pem")})),
        ],
    );
    assert_roundtrip(&r[0], "ck-tls", 50, "librdkafka over TLS");
    assert_eq!(r[1]["brokers"], json!([tls_addr]), "TLS client told: {}", r[1]);
    assert_ck_failed(
        &r[2],
        &["_SSL", "_TRANSPORT", "_ALL_BROKERS_DOWN"],
        "client trusting another CA",
    );
    assert!(
        r[2]["errors"].to_string().contains("certificate verify failed"),
        "client trusting another CA: expected a verification failure: {}",
        r[2]
    );

    let r = kp(
        &broker,
        &tls_addr,
        tls(&certs),
        vec![
            roundtrip("tls-kp", 50, "kp-tls"),
            json!({"op": "peer_cert", "port": broker.listener_port("TLS"), "ca": certs.p("ca.pem"),
                   "expect_cert": certs.p("broker-cert.pem"), "timeout_s": 5}),
            handshake(&certs, broker.listener_port("TLS"), "TLSv1_2", "TLSv1_2"),
            handshake(&certs, broker.listener_port("TLS"), "TLSv1_3", "TLSv1_3"),
            handshake(&certs, broker.listener_port("TLS13"), "TLSv1_2", "TLSv1_2"),
            handshake(&certs, broker.listener_port("TLS13"), "TLSv1_3", "TLSv1_3"),
        ],
    );
    assert_roundtrip(&r[0], "kp-tls", 50, "kafka-python over TLS");
    assert_eq!(
        r[1]["matched"],
        json!(true),
        "broker did not present broker-cert.pem: {}",
        r[1]
    );
    // ssl.enabled.protocols: both versions by default, TLS 1.3 only where the listener says so.
    let version = |i: usize| r[i]["version"].as_str().map(str::to_string);
    assert_eq!(version(2).as_deref(), Some("TLSv1.2"), "TLS 1.2 on TLS: {}", r[2]);
    assert_eq!(version(3).as_deref(), Some("TLSv1.3"), "TLS 1.3 on TLS: {}", r[3]);
    assert_eq!(
        r[4]["ok"],
        json!(false),
        "TLS 1.2 accepted by a TLSv1.3-only listener: {}",
        r[4]
    );
    assert_eq!(version(5).as_deref(), Some("TLSv1.3"), "TLS 1.3 on TLS13: {}", r[5]);
}

/// `listener.name.mtls.ssl.client.auth=required`: alice's certificate gets in with principal
/// User:CN=alice,OU=test,O=Strom (an ACL for exactly that name lets her produce and consume),
/// bob's certificate gets in as User:CN=bob,OU=test,O=Strom (allowed only his topic), a client without a certificate is
/// refused cleanly (librdkafka and kafka-python). On a `requested` listener a client without
/// a certificate is User:ANONYMOUS (a super user here) and bob is still bob.
#[test]
fn tls_client_certificates_required_and_requested() {
    let certs = Certs::new();
    let mut opts = certs.broker_opts();
    opts.extend([
        ("listener.name.mtls.ssl.client.auth", "required".to_string()),
        ("listener.name.req.ssl.client.auth", "requested".to_string()),
        ("authorizer.class.name", STANDARD_AUTHORIZER.to_string()),
        ("super.users", "User:ANONYMOUS".to_string()),
        ("auto.create.topics.enable", "false".to_string()),
    ]);
    let broker = start(&[("INTERNAL", "PLAINTEXT"), ("MTLS", "SSL"), ("REQ", "SSL")], opts);
    let (mtls, req) = (broker.listener_addr("MTLS"), broker.listener_addr("REQ"));
    let setup = ck(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![
            create_topics(&["mtls-orders", "mtls-bob"]),
            json!({"op": "create_acls", "acls": [
                acl("TOPIC", "mtls-orders", ALICE_DN, "WRITE", "ALLOW"),
                acl("TOPIC", "mtls-orders", ALICE_DN, "READ", "ALLOW"),
                acl("TOPIC", "mtls-bob", BOB_DN, "WRITE", "ALLOW"),
            ]}),
            json!({"op": "describe_acls", "filter": {"principal": ALICE_DN}}),
        ],
    );
    assert_eq!(setup[1]["errors"], json!([null, null, null]), "{setup:?}");
    assert_eq!(
        setup[2]["acls"],
        json!([
            acl("TOPIC", "mtls-orders", ALICE_DN, "READ", "ALLOW"),
            acl("TOPIC", "mtls-orders", ALICE_DN, "WRITE", "ALLOW"),
        ]),
        "{}",
        setup[2]
    );

    let r = ck(
        &broker,
        &mtls,
        tls_as(&certs, "alice"),
        vec![
            roundtrip("mtls-orders", 20, "ck-alice"),
            with_sec(produce("mtls-orders", "from-bob"), &tls_as(&certs, "bob")),
            with_sec(connect_fail(), &tls(&certs)),
            with_sec(produce("mtls-bob", "from-bob"), &tls_as(&certs, "bob")),
            with_bootstrap(
                with_sec(roundtrip("mtls-orders", 5, "ck-anonymous"), &tls(&certs)),
                &req,
            ),
            with_bootstrap(
                with_sec(produce("mtls-orders", "bob-on-req"), &tls_as(&certs, "bob")),
                &req,
            ),
            with_bootstrap(
                with_sec(produce("mtls-orders", "alice-on-req"), &tls_as(&certs, "alice")),
                &req,
            ),
        ],
    );
    assert_roundtrip(&r[0], "ck-alice", 20, "alice's certificate on the required listener");
    assert_eq!(
        error_of(&r[1]),
        "TOPIC_AUTHORIZATION_FAILED",
        "bob has no ACL: {}",
        r[1]
    );
    assert_ck_failed(
        &r[2],
        &["_SSL", "_TRANSPORT", "_ALL_BROKERS_DOWN"],
        "no client certificate on the required listener",
    );
    assert_eq!(
        r[3]["error"],
        Value::Null,
        "bob may write mtls-bob ({BOB_DN}): {}",
        r[3]
    );
    assert_eq!(r[3]["offset"], json!(0), "{}", r[3]);
    assert_roundtrip(
        &r[4],
        "ck-anonymous",
        5,
        "no certificate on the requested listener (ANONYMOUS, super user)",
    );
    assert_eq!(
        error_of(&r[5]),
        "TOPIC_AUTHORIZATION_FAILED",
        "bob on the requested listener: {}",
        r[5]
    );
    assert_eq!(r[6]["error"], Value::Null, "alice on the requested listener: {}", r[6]);

    let r = kp(
        &broker,
        &mtls,
        tls_as(&certs, "alice"),
        vec![
            roundtrip("mtls-orders", 20, "kp-alice"),
            with_sec(json!({"op": "connect_fail", "timeout_s": 4}), &tls(&certs)),
        ],
    );
    assert_roundtrip(&r[0], "kp-alice", 20, "kafka-python with alice's certificate");
    // kafka-python retries a failed TLS handshake until its bootstrap timeout (4 s here):
    // the check is that it never gets through and saw the broker's refusal.
    assert_kp_failed(&r[1], 4.0 + FAIL_WITHIN_S, "kafka-python without a certificate");
    assert!(
        r[1]["log"].to_string().to_lowercase().contains("certificate required"),
        "kafka-python without a certificate did not see the broker's refusal: {}",
        r[1]
    );
}

/// A plaintext client on the TLS port and a TLS client on the plaintext port fail cleanly
/// and promptly (raw sockets, librdkafka, kafka-python), and the broker keeps serving both
/// listeners afterwards.
#[test]
fn wrong_protocol_on_port_fails_cleanly_and_broker_keeps_serving() {
    let certs = Certs::new();
    let mut broker = start(&[("INTERNAL", "PLAINTEXT"), ("TLS", "SSL")], certs.broker_opts());
    let (internal, tls_addr) = (broker.addr(), broker.listener_addr("TLS"));
    let (internal_port, tls_port) = (broker.port, broker.listener_port("TLS"));

    let r = kp(
        &broker,
        &internal,
        plaintext(),
        vec![
            // ApiVersions v0 in plaintext to the TLS port.
            json!({"op": "raw_request", "port": tls_port, "api_key": 18, "api_version": 0}),
            json!({"op": "raw_tls_on_plain", "port": internal_port, "ca": certs.p("ca.pem")}),
            with_bootstrap(json!({"op": "connect_fail", "timeout_s": 3}), &tls_addr),
            with_sec(json!({"op": "connect_fail", "timeout_s": 3}), &tls(&certs)),
        ],
    );
    assert_eq!(
        r[0]["closed"],
        json!(true),
        "plaintext request on the TLS port: not closed: {}",
        r[0]
    );
    assert_eq!(
        r[0]["kafka_response"],
        json!(false),
        "TLS port answered plaintext Kafka: {}",
        r[0]
    );
    assert!(r[0]["elapsed_s"].as_f64().unwrap() <= FAIL_WITHIN_S, "{}", r[0]);
    assert_eq!(
        r[1]["handshake_ok"],
        json!(false),
        "TLS handshake on the plaintext port: {}",
        r[1]
    );
    assert!(
        r[1]["elapsed_s"].as_f64().unwrap() <= FAIL_WITHIN_S,
        "TLS on plaintext hung: {}",
        r[1]
    );
    // kafka-python retries until its bootstrap timeout (3 s); its log says why it failed.
    assert_kp_failed(&r[2], 3.0 + FAIL_WITHIN_S, "kafka-python plaintext on the TLS port");
    // What kafka-python sees first is a race: the broker's close ("socket disconnected"), or
    // the TLS alert record the broker sent before it (0x15 0x03 0x03 0x00 read as a frame
    // length). Either shows the broker refused plaintext; the raw-socket check above shows
    // it closes the connection.
    let log = r[2]["log"].to_string();
    assert!(
        log.contains("socket disconnected") || log.contains("Invalid frame length: 352518912"),
        "kafka-python plaintext on the TLS port: neither the broker's close nor its TLS alert: {}",
        r[2]
    );
    assert_kp_failed(&r[3], 3.0 + FAIL_WITHIN_S, "kafka-python TLS on the plaintext port");
    assert!(
        r[3]["log"].to_string().contains("Handshake failed"),
        "kafka-python TLS on the plaintext port: no failed handshake: {}",
        r[3]
    );

    let r = ck(
        &broker,
        &internal,
        plaintext(),
        vec![
            with_bootstrap(connect_fail(), &tls_addr),
            with_sec(connect_fail(), &tls(&certs)),
        ],
    );
    assert_ck_failed(
        &r[0],
        &["_TRANSPORT", "_ALL_BROKERS_DOWN", "_SSL"],
        "librdkafka plaintext on the TLS port",
    );
    assert_ck_failed(
        &r[1],
        &["_SSL", "_TRANSPORT", "_ALL_BROKERS_DOWN"],
        "librdkafka TLS on the plaintext port",
    );

    broker.assert_alive();
    let r = ck(
        &broker,
        &internal,
        plaintext(),
        vec![
            create_topics(&["after-bad-clients"]),
            roundtrip("after-bad-clients", 10, "plain-after"),
            with_bootstrap(
                with_sec(roundtrip("after-bad-clients", 10, "tls-after"), &tls(&certs)),
                &tls_addr,
            ),
        ],
    );
    assert_roundtrip(&r[1], "plain-after", 10, "plaintext listener after the bad clients");
    assert_roundtrip(&r[2], "tls-after", 10, "TLS listener after the bad clients");
    broker.assert_alive();
}

/// Certificate rotation: the keystore file is replaced with broker2.pem's chain and key;
/// within a few reload intervals (200 ms) new TLS connections get broker2's certificate, the
/// broker process never restarted, and clients verifying against the CA carry on. Then the
/// file is overwritten in place with the first certificate, which comes back the same way.
#[test]
fn certificate_rotation_without_restart() {
    let certs = Certs::new();
    let dir = tempfile::Builder::new().prefix("strom-keystore-").tempdir().unwrap();
    let keystore = dir.path().join("keystore.pem");
    std::fs::copy(certs.p("broker.pem"), &keystore).unwrap();
    let mut broker = start(
        &[("INTERNAL", "PLAINTEXT"), ("TLS", "SSL")],
        vec![
            ("ssl.keystore.location", keystore.display().to_string()),
            ("ssl.truststore.location", certs.p("ca.pem")),
            ("ssl.reload.interval.ms", "200".to_string()),
        ],
    );
    let pid = broker.pid();
    let setup = ck(&broker, &broker.addr(), plaintext(), vec![create_topics(&["rotation"])]);
    assert_eq!(setup[0]["errors"], json!({"rotation": null}), "{setup:?}");
    let tls_addr = broker.listener_addr("TLS");
    let port = broker.listener_port("TLS");
    let peer = |expect: &str, timeout_s: u64| {
        json!({"op": "peer_cert", "port": port, "ca": certs.p("ca.pem"), "expect_cert": certs.p(expect),
               "timeout_s": timeout_s})
    };
    let before = kp(&broker, &tls_addr, tls(&certs), vec![peer("broker-cert.pem", 5)]);
    assert_eq!(before[0]["matched"], json!(true), "before rotation: {}", before[0]);
    assert_eq!(before[0]["connections"], json!(1), "{}", before[0]);

    // Replace the file as certificate tooling does: write a new file, rename it over the old.
    let staged = dir.path().join("keystore.pem.new");
    std::fs::copy(certs.p("broker2.pem"), &staged).unwrap();
    std::fs::rename(&staged, &keystore).unwrap();
    let replaced = Instant::now();
    thread::sleep(Duration::from_millis(400)); // > ssl.reload.interval.ms
    let after = kp(
        &broker,
        &tls_addr,
        tls(&certs),
        vec![peer("broker2-cert.pem", 8), roundtrip("rotation", 10, "kp-rotated")],
    );
    assert_eq!(
        after[0]["matched"],
        json!(true),
        "new connections still get the old certificate {:?} after the keystore was replaced: {}",
        replaced.elapsed(),
        after[0]
    );
    assert_roundtrip(&after[1], "kp-rotated", 10, "kafka-python after rotation");
    let r = ck(
        &broker,
        &tls_addr,
        tls(&certs),
        vec![roundtrip("rotation", 10, "ck-rotated")],
    );
    assert_roundtrip(&r[0], "ck-rotated", 10, "librdkafka after rotation");

    // And back, overwriting the file in place as `cp` does.
    std::fs::write(&keystore, std::fs::read(certs.p("broker.pem")).unwrap()).unwrap();
    thread::sleep(Duration::from_millis(400));
    let back = kp(&broker, &tls_addr, tls(&certs), vec![peer("broker-cert.pem", 8)]);
    assert_eq!(
        back[0]["matched"],
        json!(true),
        "the keystore overwritten in place was not picked up: {}",
        back[0]
    );

    broker.assert_alive();
    assert_eq!(broker.pid(), pid, "the broker process changed");
    assert_eq!(
        broker.log().matches("===== strom serve start").count(),
        1,
        "the broker restarted"
    );
}

// ------------------------------------------------------------------ SASL

/// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER over SASL_SSL with librdkafka: each
/// gets in with the right credentials (users made with AdminClient's
/// alter_user_scram_credentials and with `strom users create`; PLAIN checked against a SCRAM
/// credential; OAUTHBEARER with librdkafka's unsecured JWT) and is refused promptly with
/// _AUTHENTICATION with wrong ones (wrong password, unknown user, a mechanism the user has no
/// credential for, a token without the principal claim, an expired token). Deleting a
/// credential (AdminClient) or a user (`strom users delete`) stops its logins.
#[test]
fn sasl_mechanisms_librdkafka() {
    let certs = Certs::new();
    let mut opts = certs.broker_opts();
    opts.extend([
        ("sasl.enabled.mechanisms", ALL_MECHANISMS.to_string()),
        ("sasl.oauthbearer.unsecured.validation.enable", "true".to_string()),
    ]);
    let broker = start(&[("INTERNAL", "PLAINTEXT"), ("SASL", "SASL_SSL")], opts);
    let (internal, sasl_addr) = (broker.addr(), broker.listener_addr("SASL"));
    let setup = ck(
        &broker,
        &internal,
        plaintext(),
        vec![
            create_topics(&["sasl-ck"]),
            // One mechanism per request: Kafka (KRaft) refuses two changes of one user in one
            // request with DUPLICATE_RESOURCE.
            json!({"op": "alter_users", "upserts": [upsert("alice", "alice-pw", "SCRAM-SHA-256", 4096)]}),
            json!({"op": "alter_users", "upserts": [upsert("alice", "alice-pw", "SCRAM-SHA-512", 8192)]}),
            json!({"op": "describe_users", "users": ["alice"]}),
            json!({"op": "alter_users", "upserts": [
                upsert("dup", "dup-pw", "SCRAM-SHA-256", 4096),
                upsert("dup", "dup-pw", "SCRAM-SHA-512", 4096),
            ]}),
            // Kafka's bounds on SCRAM iterations: 4096..=16384.
            json!({"op": "alter_users", "upserts": [
                upsert("weak", "weak-pw", "SCRAM-SHA-256", 1000),
                upsert("slow", "slow-pw", "SCRAM-SHA-512", 20000),
            ]}),
        ],
    );
    assert_eq!(setup[1]["errors"], json!({"alice": null}), "{setup:?}");
    assert_eq!(setup[2]["errors"], json!({"alice": null}), "{setup:?}");
    assert_eq!(setup[4]["errors"], json!({"dup": "DUPLICATE_RESOURCE"}), "{setup:?}");
    assert_eq!(
        setup[5]["errors"],
        json!({"weak": "UNACCEPTABLE_CREDENTIAL", "slow": "UNACCEPTABLE_CREDENTIAL"}),
        "{setup:?}"
    );
    assert_eq!(
        setup[3]["users"],
        json!({"alice": [["SCRAM-SHA-256", 4096], ["SCRAM-SHA-512", 8192]]}),
        "{setup:?}"
    );
    strom_in(&[
        "users",
        "create",
        "carol",
        "--password",
        "carol-pw",
        "--mechanism",
        "SCRAM-SHA-512",
        "--bootstrap-server",
        &internal,
    ]);
    let listed = strom_in(&["users", "list", "--bootstrap-server", &internal]);
    assert!(
        listed.contains("alice") && listed.contains("carol"),
        "strom users list:\n{listed}"
    );

    let c = Some(&certs);
    let r = ck(
        &broker,
        &sasl_addr,
        sasl(c, "SCRAM-SHA-256", "alice", "alice-pw"),
        vec![
            with_sec(
                roundtrip("sasl-ck", 10, "plain"),
                &sasl(c, "PLAIN", "carol", "carol-pw"),
            ),
            roundtrip("sasl-ck", 10, "scram256"),
            with_sec(
                roundtrip("sasl-ck", 10, "scram512"),
                &sasl(c, "SCRAM-SHA-512", "alice", "alice-pw"),
            ),
            with_sec(
                roundtrip("sasl-ck", 10, "oauth"),
                &oauth(c, json!({"oauth_config": "principal=alice"})),
            ),
            with_sec(connect_fail(), &sasl(c, "PLAIN", "carol", "wrong")),
            with_sec(connect_fail(), &sasl(c, "PLAIN", "nobody", "carol-pw")),
            with_sec(connect_fail(), &sasl(c, "SCRAM-SHA-256", "alice", "wrong")),
            with_sec(connect_fail(), &sasl(c, "SCRAM-SHA-512", "mallory", "alice-pw")),
            with_sec(connect_fail(), &sasl(c, "SCRAM-SHA-512", "carol", "wrong")),
            with_sec(connect_fail(), &sasl(c, "SCRAM-SHA-256", "carol", "carol-pw")),
            with_sec(
                connect_fail(),
                &oauth(c, json!({"oauth_config": "principal=alice principalClaimName=azp"})),
            ),
            with_sec(
                connect_fail(),
                &oauth(c, json!({"jwt_claims": {"sub": "alice", "exp_in_s": -300}})),
            ),
        ],
    );
    assert_roundtrip(
        &r[0],
        "plain",
        10,
        "PLAIN (carol, checked against her SCRAM-SHA-512 credential)",
    );
    assert_roundtrip(&r[1], "scram256", 10, "SCRAM-SHA-256");
    assert_roundtrip(&r[2], "scram512", 10, "SCRAM-SHA-512");
    assert_roundtrip(&r[3], "oauth", 10, "OAUTHBEARER (unsecured JWT)");
    assert_ck_auth_failed(&r[4], "PLAIN with a wrong password");
    assert_ck_auth_failed(&r[5], "PLAIN with an unknown user");
    assert_ck_auth_failed(&r[6], "SCRAM-SHA-256 with a wrong password");
    assert_ck_auth_failed(&r[7], "SCRAM-SHA-512 with an unknown user");
    assert_ck_auth_failed(&r[8], "SCRAM-SHA-512 with a wrong password");
    assert_ck_auth_failed(&r[9], "SCRAM-SHA-256 for a user with only a SCRAM-SHA-512 credential");
    assert_ck_auth_failed(&r[10], "OAUTHBEARER token without a sub claim");
    assert_ck_auth_failed(&r[11], "OAUTHBEARER expired token");

    // Deleting credentials: alice's SCRAM-SHA-256 (AdminClient), carol (CLI).
    let del = ck(
        &broker,
        &internal,
        plaintext(),
        vec![
            json!({"op": "alter_users", "deletions": [{"user": "alice", "mechanism": "SCRAM-SHA-256"}]}),
            json!({"op": "describe_users", "users": ["alice"]}),
        ],
    );
    assert_eq!(del[0]["errors"], json!({"alice": null}), "{del:?}");
    assert_eq!(del[1]["users"], json!({"alice": [["SCRAM-SHA-512", 8192]]}), "{del:?}");
    strom_in(&["users", "delete", "carol", "--bootstrap-server", &internal]);
    let listed = strom_in(&["users", "list", "--bootstrap-server", &internal]);
    assert!(
        listed.contains("alice") && !listed.contains("carol"),
        "strom users list after delete:\n{listed}"
    );
    let r = ck(
        &broker,
        &sasl_addr,
        sasl(c, "SCRAM-SHA-512", "alice", "alice-pw"),
        vec![
            with_sec(connect_fail(), &sasl(c, "SCRAM-SHA-256", "alice", "alice-pw")),
            with_sec(connect_fail(), &sasl(c, "PLAIN", "carol", "carol-pw")),
            roundtrip("sasl-ck", 10, "after-delete"),
        ],
    );
    assert_ck_auth_failed(&r[0], "SCRAM-SHA-256 after its credential was deleted");
    assert_ck_auth_failed(&r[1], "PLAIN after the user was deleted");
    assert_roundtrip(
        &r[2],
        "after-delete",
        10,
        "SCRAM-SHA-512 after SCRAM-SHA-256 was deleted",
    );
}

/// The same mechanisms with kafka-python over SASL_PLAINTEXT (and SCRAM-SHA-512 over
/// SASL_SSL): right credentials get in, wrong ones are refused promptly (kafka-python
/// reports SaslAuthenticationFailedError); OAUTHBEARER tokens are checked for expiry, for
/// the expected audience (`sasl.oauthbearer.expected.audience`) and for the principal claim
/// (`sasl.oauthbearer.sub.claim.name`). Before authentication the broker answers
/// ApiVersions but closes the connection on any other request (Metadata).
#[test]
fn sasl_mechanisms_kafka_python() {
    let certs = Certs::new();
    let mut opts = certs.broker_opts();
    opts.extend([
        ("sasl.enabled.mechanisms", ALL_MECHANISMS.to_string()),
        ("sasl.oauthbearer.unsecured.validation.enable", "true".to_string()),
        ("sasl.oauthbearer.expected.audience", "strom".to_string()),
        ("sasl.oauthbearer.sub.claim.name", "client_id".to_string()),
    ]);
    let broker = start(
        &[
            ("INTERNAL", "PLAINTEXT"),
            ("SASLPLAIN", "SASL_PLAINTEXT"),
            ("SASLSSL", "SASL_SSL"),
        ],
        opts,
    );
    let setup = ck(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![
            create_topics(&["sasl-kp"]),
            json!({"op": "alter_users", "upserts": [upsert("alice", "alice-pw", "SCRAM-SHA-256", 4096)]}),
            json!({"op": "alter_users", "upserts": [upsert("alice", "alice-pw", "SCRAM-SHA-512", 4096)]}),
        ],
    );
    assert_eq!(setup[1]["errors"], json!({"alice": null}), "{setup:?}");
    assert_eq!(setup[2]["errors"], json!({"alice": null}), "{setup:?}");

    let plain_addr = broker.listener_addr("SASLPLAIN");
    // The principal claim is client_id here (sasl.oauthbearer.sub.claim.name).
    let good_token = json!({"jwt_claims": {"client_id": "alice", "sub": "ignored", "aud": "strom", "exp_in_s": 600}});
    let r = kp(
        &broker,
        &plain_addr,
        sasl(None, "PLAIN", "alice", "alice-pw"),
        vec![
            roundtrip("sasl-kp", 10, "kp-plain"),
            with_sec(
                roundtrip("sasl-kp", 10, "kp-scram256"),
                &sasl(None, "SCRAM-SHA-256", "alice", "alice-pw"),
            ),
            with_sec(
                roundtrip("sasl-kp", 10, "kp-scram512"),
                &sasl(None, "SCRAM-SHA-512", "alice", "alice-pw"),
            ),
            with_sec(roundtrip("sasl-kp", 10, "kp-oauth"), &oauth(None, good_token)),
            with_bootstrap(
                with_sec(
                    roundtrip("sasl-kp", 10, "kp-sasl-ssl"),
                    &sasl(Some(&certs), "SCRAM-SHA-512", "alice", "alice-pw"),
                ),
                &broker.listener_addr("SASLSSL"),
            ),
            with_sec(kp_auth_fail(), &sasl(None, "PLAIN", "alice", "wrong")),
            with_sec(kp_auth_fail(), &sasl(None, "SCRAM-SHA-256", "alice", "wrong")),
            with_sec(kp_auth_fail(), &sasl(None, "SCRAM-SHA-512", "mallory", "alice-pw")),
            with_sec(
                kp_auth_fail(),
                &oauth(
                    None,
                    json!({"jwt_claims": {"client_id": "alice", "aud": "strom", "exp_in_s": -300}}),
                ),
            ),
            with_sec(
                kp_auth_fail(),
                &oauth(
                    None,
                    json!({"jwt_claims": {"client_id": "alice", "aud": "someone-else", "exp_in_s": 600}}),
                ),
            ),
            with_sec(
                kp_auth_fail(),
                &oauth(
                    None,
                    json!({"jwt_claims": {"sub": "alice", "aud": "strom", "exp_in_s": 600}}),
                ),
            ),
            // Before authentication: ApiVersions is answered, Metadata closes the connection.
            json!({"op": "raw_request", "port": broker.listener_port("SASLPLAIN"), "api_key": 18, "api_version": 0}),
            json!({"op": "raw_request", "port": broker.listener_port("SASLPLAIN"), "api_key": 3, "api_version": 1,
                   "body_hex": "ffffffff"}),
        ],
    );
    assert_roundtrip(&r[0], "kp-plain", 10, "kafka-python PLAIN");
    assert_roundtrip(&r[1], "kp-scram256", 10, "kafka-python SCRAM-SHA-256");
    assert_roundtrip(&r[2], "kp-scram512", 10, "kafka-python SCRAM-SHA-512");
    assert_roundtrip(&r[3], "kp-oauth", 10, "kafka-python OAUTHBEARER");
    assert_roundtrip(&r[4], "kp-sasl-ssl", 10, "kafka-python SCRAM-SHA-512 over SASL_SSL");
    // Every refused login is checked before failing, to report all of them at once.
    let refusals = [
        (5, "kafka-python PLAIN with a wrong password"),
        (6, "kafka-python SCRAM-SHA-256 with a wrong password"),
        (7, "kafka-python SCRAM-SHA-512 with an unknown user"),
        (8, "kafka-python OAUTHBEARER expired token"),
        (9, "kafka-python OAUTHBEARER token for another audience"),
        (10, "kafka-python OAUTHBEARER token without the client_id claim"),
    ];
    let problems: Vec<String> = refusals
        .iter()
        .filter_map(|(i, what)| kp_auth_problem(&r[*i], what))
        .collect();
    assert_eq!(
        r[11]["kafka_response"],
        json!(true),
        "ApiVersions before authentication: {}",
        r[11]
    );
    assert_eq!(
        r[12]["kafka_response"],
        json!(false),
        "Metadata answered before authentication: {}",
        r[12]
    );
    assert_eq!(
        r[12]["closed"],
        json!(true),
        "Metadata before authentication: not closed: {}",
        r[12]
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// KIP-368: with `connections.max.reauth.ms=3000` a librdkafka consumer on SASL_SSL
/// (SCRAM-SHA-256) keeps receiving records for 8 s, re-authenticating on its connections
/// instead of being cut off; the broker logs more than one successful authentication of
/// the user.
#[test]
fn reauthentication_keeps_consumer_running() {
    let certs = Certs::new();
    let mut opts = certs.broker_opts();
    opts.extend([
        ("sasl.enabled.mechanisms", "SCRAM-SHA-256".to_string()),
        ("connections.max.reauth.ms", "3000".to_string()),
    ]);
    let broker = start(&[("INTERNAL", "PLAINTEXT"), ("SASL", "SASL_SSL")], opts);
    let setup = ck(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![
            create_topics(&["reauth"]),
            json!({"op": "alter_users", "upserts": [upsert("reauth-user", "reauth-pw", "SCRAM-SHA-256", 4096)]}),
        ],
    );
    assert_eq!(setup[1]["errors"], json!({"reauth-user": null}), "{setup:?}");
    let spec = json!({
        "internal": broker.addr(),
        "bootstrap": broker.listener_addr("SASL"),
        "sec": sasl(Some(&certs), "SCRAM-SHA-256", "reauth-user", "reauth-pw"),
        "topic": "reauth",
        "seconds": 8,
    });
    let r = python(&broker, "security_ck.py", &["reauth", &spec.to_string()]);
    let per_second: Vec<i64> = r["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    // The producer writes 10 records a second; after the first second, no two seconds in a
    // row may go without records (re-authentication must not stall the consumer).
    assert!(
        per_second[1..].windows(2).all(|w| w[0] + w[1] > 0),
        "records stopped arriving (per second: {per_second:?}): {r}"
    );
    assert!(r["received"].as_i64().unwrap() >= 50, "too few records: {r}");
    assert_eq!(r["in_order"], json!(true), "records lost or reordered: {r}");
    assert_eq!(r["errors"], json!([]), "the consumer reported errors: {r}");
    // Re-authentication happens on the open connections: librdkafka starts it on the timer
    // the broker's session lifetime set, no connection is dropped, and every round succeeds.
    let starts = r["reauth_starts"].as_array().unwrap().len();
    assert!(
        starts >= 2,
        "librdkafka started {starts} re-authentications in 8 s with a 3 s session lifetime: {r}"
    );
    assert_eq!(r["disconnect_lines"], json!([]), "connections were dropped: {r}");
    let client_auths = r["authenticated"].as_array().unwrap().len();
    assert!(
        client_auths > starts,
        "{starts} re-authentications but {client_auths} successful authentications: {r}"
    );
    // The broker logged each of those successful (re-)authentications.
    let auths = successful_auths(&broker.log(), "reauth-user");
    assert!(
        auths.len() >= client_auths,
        "librdkafka authenticated {client_auths} times, the broker log shows {} successful \
         authentications of reauth-user:\n{}\n--- log ---\n{}",
        auths.len(),
        auths.join("\n"),
        broker.log_tail()
    );
}

// ------------------------------------------------------------------ ACLs

/// A broker with ACLs on and users alice and bob (SCRAM-SHA-256 on a SASL_PLAINTEXT
/// listener), topics orders, secret, reports-daily and reports-secret each with one record
/// `seed-<topic>`, and these bindings:
/// - alice: WRITE and READ on topic orders; READ on topics prefixed `reports-`; DENY READ on
///   reports-secret; READ on group alice-group.
/// - bob: WRITE on topic orders; READ on group bob-group (added with `strom acls add`).
/// - admin: none, but a super user (as is ANONYMOUS, every client of INTERNAL).
fn acl_broker() -> Broker {
    let broker = start(
        &[("INTERNAL", "PLAINTEXT"), ("SASL", "SASL_PLAINTEXT")],
        vec![
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256".to_string()),
            ("authorizer.class.name", STANDARD_AUTHORIZER.to_string()),
            ("super.users", "User:admin;User:ANONYMOUS".to_string()),
            ("allow.everyone.if.no.acl.found", "false".to_string()),
            ("auto.create.topics.enable", "false".to_string()),
        ],
    );
    let internal = broker.addr();
    let topics = ["orders", "secret", "reports-daily", "reports-secret"];
    let mut ops = vec![
        create_topics(&topics),
        json!({"op": "alter_users", "upserts": [
            upsert("alice", "alice-pw", "SCRAM-SHA-256", 4096),
            upsert("bob", "bob-pw", "SCRAM-SHA-256", 4096),
            upsert("admin", "admin-pw", "SCRAM-SHA-256", 4096),
        ]}),
        json!({"op": "create_acls", "acls": [
            acl("TOPIC", "orders", "User:alice", "WRITE", "ALLOW"),
            acl("TOPIC", "orders", "User:alice", "READ", "ALLOW"),
            prefixed(acl("TOPIC", "reports-", "User:alice", "READ", "ALLOW")),
            acl("TOPIC", "reports-secret", "User:alice", "READ", "DENY"),
            acl("GROUP", "alice-group", "User:alice", "READ", "ALLOW"),
            acl("TOPIC", "orders", "User:bob", "WRITE", "ALLOW"),
        ]}),
    ];
    ops.extend(topics.iter().map(|t| produce(t, &format!("seed-{t}"))));
    let setup = ck(&broker, &internal, plaintext(), ops);
    assert_eq!(
        setup[0]["errors"],
        json!({"orders": null, "secret": null, "reports-daily": null, "reports-secret": null}),
        "{setup:?}"
    );
    assert_eq!(
        setup[1]["errors"],
        json!({"alice": null, "bob": null, "admin": null}),
        "{setup:?}"
    );
    assert_eq!(
        setup[2]["errors"],
        json!([null, null, null, null, null, null]),
        "{setup:?}"
    );
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(setup[3 + i]["error"], Value::Null, "seeding {t}: {}", setup[3 + i]);
    }
    strom_in(&[
        "acls",
        "add",
        "--allow-principal",
        "User:bob",
        "--operation",
        "Read",
        "--group",
        "bob-group",
        "--bootstrap-server",
        &internal,
    ]);
    broker
}

/// ACLs with librdkafka: DescribeAcls returns what CreateAcls and `strom acls add` made;
/// a principal without READ cannot fetch (TOPIC_AUTHORIZATION_FAILED), without WRITE cannot
/// produce, without READ on the group cannot consume in it (GROUP_AUTHORIZATION_FAILED),
/// DENY beats a prefixed ALLOW, Metadata hides topics the principal may not describe, a
/// non-super user cannot create ACLs (CLUSTER_AUTHORIZATION_FAILED) or topics; DeleteAcls and
/// `strom acls remove` take access away again; a super user needs no ACL; CREATE on the
/// cluster (`strom acls add --cluster`) allows creating topics; DeleteTopics,
/// DescribeConfigs, DescribeGroups and ListGroups are authorized on their resources.
#[test]
fn acls_librdkafka() {
    let broker = acl_broker();
    let (internal, sasl_addr) = (broker.addr(), broker.listener_addr("SASL"));
    let listed = strom_in(&["acls", "list", "--bootstrap-server", &internal]);
    assert!(
        listed.contains("bob-group") && listed.contains("User:bob"),
        "strom acls list:\n{listed}"
    );
    let described = ck(
        &broker,
        &internal,
        plaintext(),
        vec![
            json!({"op": "describe_acls", "filter": {"principal": "User:alice"}}),
            json!({"op": "describe_acls", "filter": {"principal": "User:bob", "restype": "GROUP"}}),
            json!({"op": "describe_acls", "filter": {"restype": "TOPIC", "name": "reports-daily", "pattern": "MATCH"}}),
        ],
    );
    assert_eq!(
        described[0]["acls"],
        json!([
            acl("GROUP", "alice-group", "User:alice", "READ", "ALLOW"),
            acl("TOPIC", "orders", "User:alice", "READ", "ALLOW"),
            acl("TOPIC", "orders", "User:alice", "WRITE", "ALLOW"),
            prefixed(acl("TOPIC", "reports-", "User:alice", "READ", "ALLOW")),
            acl("TOPIC", "reports-secret", "User:alice", "READ", "DENY"),
        ]),
        "{}",
        described[0]
    );
    assert_eq!(
        described[1]["acls"],
        json!([acl("GROUP", "bob-group", "User:bob", "READ", "ALLOW")]),
        "the binding `strom acls add` made: {}",
        described[1]
    );
    assert_eq!(
        described[2]["acls"],
        json!([prefixed(acl("TOPIC", "reports-", "User:alice", "READ", "ALLOW"))]),
        "bindings matching topic reports-daily: {}",
        described[2]
    );

    let alice = sasl(None, "SCRAM-SHA-256", "alice", "alice-pw");
    let bob = sasl(None, "SCRAM-SHA-256", "bob", "bob-pw");
    let r = ck(
        &broker,
        &sasl_addr,
        alice.clone(),
        vec![
            json!({"op": "metadata"}),
            json!({"op": "metadata_topic", "topic": "secret"}),
            produce("orders", "alice-1"),
            produce("reports-daily", "alice-2"),
            produce("secret", "alice-3"),
            fetch("orders", 2),
            fetch("reports-daily", 1),
            // Group-less, librdkafka never learns a leader for a topic hidden from it and
            // reports nothing; subscribed, it reports the topic's authorization error.
            group_consume("secret", "alice-group", 1),
            fetch("reports-secret", 1),
            group_consume("orders", "alice-group", 2),
            group_consume("orders", "other-group", 1),
            json!({"op": "create_acls", "acls": [acl("TOPIC", "secret", "User:alice", "READ", "ALLOW")]}),
            json!({"op": "create_topics", "topics": [["alice-made", 1]]}),
        ],
    );
    let topics = &r[0]["topics"];
    assert!(
        topics
            .as_array()
            .is_some_and(|t| t.contains(&json!("orders")) && t.contains(&json!("reports-daily"))),
        "alice's metadata lacks her topics: {}",
        r[0]
    );
    assert!(
        !topics.as_array().unwrap().contains(&json!("secret")),
        "metadata shows secret to alice: {}",
        r[0]
    );
    assert_eq!(
        error_of(&r[1]),
        "TOPIC_AUTHORIZATION_FAILED",
        "Metadata for secret: {}",
        r[1]
    );
    assert_eq!(r[2]["error"], Value::Null, "alice may write orders: {}", r[2]);
    assert_eq!(
        error_of(&r[3]),
        "TOPIC_AUTHORIZATION_FAILED",
        "alice may only read reports-daily: {}",
        r[3]
    );
    assert_eq!(
        error_of(&r[4]),
        "TOPIC_AUTHORIZATION_FAILED",
        "alice produces to secret: {}",
        r[4]
    );
    assert_eq!(
        r[5]["values"],
        json!(["seed-orders", "alice-1"]),
        "alice fetches orders: {}",
        r[5]
    );
    assert_eq!(
        r[6]["values"],
        json!(["seed-reports-daily"]),
        "prefixed READ on reports-: {}",
        r[6]
    );
    assert_eq!(
        error_of(&r[7]),
        "TOPIC_AUTHORIZATION_FAILED",
        "alice consumes secret: {}",
        r[7]
    );
    assert_eq!(r[7]["values"], json!([]), "{}", r[7]);
    assert_eq!(
        error_of(&r[8]),
        "TOPIC_AUTHORIZATION_FAILED",
        "DENY READ on reports-secret: {}",
        r[8]
    );
    assert_eq!(
        r[9]["values"],
        json!(["seed-orders", "alice-1"]),
        "alice in alice-group: {}",
        r[9]
    );
    assert_eq!(
        r[9]["commit_error"],
        Value::Null,
        "alice commits in alice-group: {}",
        r[9]
    );
    assert_eq!(
        error_of(&r[10]),
        "GROUP_AUTHORIZATION_FAILED",
        "alice in other-group: {}",
        r[10]
    );
    assert_eq!(
        r[11]["errors"],
        json!(["CLUSTER_AUTHORIZATION_FAILED"]),
        "alice creates ACLs: {}",
        r[11]
    );
    assert_eq!(
        r[12]["errors"],
        json!({"alice-made": "TOPIC_AUTHORIZATION_FAILED"}),
        "alice creates a topic: {}",
        r[12]
    );

    let r = ck(
        &broker,
        &sasl_addr,
        bob.clone(),
        vec![
            produce("orders", "bob-1"),
            fetch("orders", 1),
            group_consume("orders", "bob-group", 1),
            json!({"op": "metadata"}),
        ],
    );
    assert_eq!(r[0]["error"], Value::Null, "bob may write orders: {}", r[0]);
    assert_eq!(
        error_of(&r[1]),
        "TOPIC_AUTHORIZATION_FAILED",
        "bob fetches orders without READ: {}",
        r[1]
    );
    assert_eq!(
        error_of(&r[2]),
        "TOPIC_AUTHORIZATION_FAILED",
        "bob may join bob-group but not read orders: {}",
        r[2]
    );
    assert_eq!(r[3]["topics"], json!(["orders"]), "bob's metadata: {}", r[3]);

    // The other APIs authorize on their resources too: DeleteTopics needs DELETE,
    // DescribeConfigs DESCRIBE_CONFIGS, DescribeGroups DESCRIBE on the group, and ListGroups
    // lists only the groups the principal may describe.
    let r = ck(
        &broker,
        &sasl_addr,
        alice.clone(),
        vec![
            json!({"op": "delete_topics", "topics": ["orders"]}),
            json!({"op": "describe_configs", "topic": "orders"}),
            json!({"op": "list_groups"}),
            json!({"op": "describe_groups", "groups": ["alice-group", "bob-group"]}),
        ],
    );
    assert_eq!(
        r[0]["errors"],
        json!({"orders": "TOPIC_AUTHORIZATION_FAILED"}),
        "DeleteTopics: {}",
        r[0]
    );
    assert_eq!(
        error_of(&r[1]),
        "TOPIC_AUTHORIZATION_FAILED",
        "DescribeConfigs: {}",
        r[1]
    );
    assert_eq!(r[2]["groups"], json!(["alice-group"]), "alice's ListGroups: {}", r[2]);
    assert_eq!(
        r[3]["groups"]["alice-group"]["error"],
        Value::Null,
        "DescribeGroups: {}",
        r[3]
    );
    assert_eq!(
        r[3]["groups"]["bob-group"]["error"],
        json!("GROUP_AUTHORIZATION_FAILED"),
        "DescribeGroups: {}",
        r[3]
    );

    // Taking access away: DeleteAcls (AdminClient) and `strom acls remove`.
    let del = ck(
        &broker,
        &internal,
        plaintext(),
        vec![json!({"op": "delete_acls", "filters": [
            {"restype": "TOPIC", "name": "reports-", "pattern": "PREFIXED", "principal": "User:alice"},
        ]})],
    );
    assert_eq!(
        del[0]["deleted"],
        json!([[prefixed(acl("TOPIC", "reports-", "User:alice", "READ", "ALLOW"))]]),
        "{}",
        del[0]
    );
    strom_in(&[
        "acls",
        "remove",
        "--allow-principal",
        "User:bob",
        "--operation",
        "Read",
        "--group",
        "bob-group",
        "--bootstrap-server",
        &internal,
    ]);
    let listed = strom_in(&["acls", "list", "--bootstrap-server", &internal]);
    assert!(!listed.contains("bob-group"), "strom acls list after remove:\n{listed}");
    let r = ck(
        &broker,
        &sasl_addr,
        alice,
        vec![
            group_consume("reports-daily", "alice-group", 1),
            with_sec(group_consume("orders", "bob-group", 1), &bob),
        ],
    );
    assert_eq!(
        error_of(&r[0]),
        "TOPIC_AUTHORIZATION_FAILED",
        "after DeleteAcls: {}",
        r[0]
    );
    assert_eq!(
        error_of(&r[1]),
        "GROUP_AUTHORIZATION_FAILED",
        "after strom acls remove: {}",
        r[1]
    );

    // Super users need no ACL: admin (SCRAM) reads secret.
    let admin = sasl(None, "SCRAM-SHA-256", "admin", "admin-pw");
    let r = ck(&broker, &sasl_addr, admin, vec![fetch("secret", 1)]);
    assert_eq!(r[0]["values"], json!(["seed-secret"]), "super user admin: {}", r[0]);

    // CREATE on the cluster (`strom acls add --cluster`) lets alice create topics; she still
    // may not describe what she made.
    strom_in(&[
        "acls",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Create",
        "--cluster",
        "--bootstrap-server",
        &internal,
    ]);
    let r = ck(
        &broker,
        &sasl_addr,
        sasl(None, "SCRAM-SHA-256", "alice", "alice-pw"),
        vec![
            json!({"op": "create_topics", "topics": [["alice-made", 1]], "wait": false}),
            with_bootstrap(
                with_sec(json!({"op": "metadata_topic", "topic": "alice-made"}), &plaintext()),
                &internal,
            ),
        ],
    );
    assert_eq!(
        r[0]["errors"],
        json!({"alice-made": null}),
        "CREATE on the cluster: {}",
        r[0]
    );
    assert_eq!(r[1]["error"], Value::Null, "alice-made does not exist: {}", r[1]);
}

/// ACLs with kafka-python: a producer at its defaults (idempotent: WRITE on a topic implies
/// IDEMPOTENT_WRITE, KIP-679) writes where allowed and gets TopicAuthorizationFailedError
/// (29) elsewhere; fetching a topic it may not read fails with it too (a topic it may not
/// even describe only gets logged); a group without READ gives GroupAuthorizationFailedError
/// (30); list_topics hides secret; KafkaAdminClient's describe_acls shows the bindings of a
/// topic to a super user and is refused to alice (ClusterAuthorizationFailedError).
#[test]
fn acls_kafka_python() {
    let broker = acl_broker();
    let alice = sasl(None, "SCRAM-SHA-256", "alice", "alice-pw");
    let mut hidden = group_consume("secret", "alice-group", 1);
    hidden["timeout_s"] = json!(4);
    let r = kp(
        &broker,
        &broker.listener_addr("SASL"),
        alice,
        vec![
            produce("orders", "kp-alice-1"),
            produce("reports-daily", "kp-alice-2"),
            hidden,
            fetch("orders", 2),
            fetch("reports-secret", 1),
            group_consume("orders", "other-group", 1),
            group_consume("orders", "alice-group", 2),
            json!({"op": "metadata"}),
            with_bootstrap(
                with_sec(json!({"op": "describe_acls", "topic": "orders"}), &plaintext()),
                &broker.addr(),
            ),
            json!({"op": "describe_acls", "topic": "orders"}),
        ],
    );
    assert_eq!(r[0]["error"], Value::Null, "alice writes orders: {}", r[0]);
    assert_eq!(r[0]["offset"], json!(1), "{}", r[0]);
    assert_eq!(r[1]["error"], json!("TopicAuthorizationFailedError"), "{}", r[1]);
    assert_eq!(r[1]["code"], json!(29), "{}", r[1]);
    // kafka-python only logs a subscribed topic's TOPIC_AUTHORIZATION_FAILED from Metadata.
    assert_eq!(r[2]["values"], json!([]), "alice consumes secret: {}", r[2]);
    assert!(
        r[2]["log"].to_string().contains("Topic secret is not authorized"),
        "alice consumes secret: kafka-python was not told: {}",
        r[2]
    );
    assert_eq!(r[3]["values"], json!(["seed-orders", "kp-alice-1"]), "{}", r[3]);
    assert_eq!(
        r[4]["error"],
        json!("TopicAuthorizationFailedError"),
        "DENY READ on reports-secret: {}",
        r[4]
    );
    assert_eq!(r[4]["code"], json!(29), "{}", r[4]);
    assert_eq!(r[5]["error"], json!("GroupAuthorizationFailedError"), "{}", r[5]);
    assert_eq!(r[5]["code"], json!(30), "{}", r[5]);
    assert_eq!(
        r[6]["values"],
        json!(["seed-orders", "kp-alice-1"]),
        "alice in alice-group: {}",
        r[6]
    );
    assert_eq!(r[6]["commit_error"], Value::Null, "{}", r[6]);
    let topics = r[7]["topics"].as_array().unwrap_or_else(|| panic!("{}", r[7]));
    assert!(
        topics.contains(&json!("orders")) && !topics.contains(&json!("secret")),
        "{}",
        r[7]
    );
    assert_eq!(
        r[8]["acls"],
        json!([
            ["User:alice", "*", "READ", "ALLOW", "orders", "LITERAL"],
            ["User:alice", "*", "WRITE", "ALLOW", "orders", "LITERAL"],
            ["User:bob", "*", "WRITE", "ALLOW", "orders", "LITERAL"],
        ]),
        "{}",
        r[8]
    );
    assert_eq!(
        r[9]["error"],
        json!("ClusterAuthorizationFailedError"),
        "alice describes ACLs: {}",
        r[9]
    );
}

/// `allow.everyone.if.no.acl.found=true`: a topic and a group without any ACL are open to
/// every principal, while a topic with ACLs (for bob) stays closed to alice and hidden from
/// her metadata.
#[test]
fn allow_everyone_if_no_acl_found() {
    let broker = start(
        &[("INTERNAL", "PLAINTEXT"), ("SASL", "SASL_PLAINTEXT")],
        vec![
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256".to_string()),
            ("authorizer.class.name", "strom".to_string()),
            ("super.users", "User:ANONYMOUS".to_string()),
            ("allow.everyone.if.no.acl.found", "true".to_string()),
            ("auto.create.topics.enable", "false".to_string()),
        ],
    );
    let setup = ck(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![
            create_topics(&["open", "guarded"]),
            json!({"op": "alter_users", "upserts": [upsert("alice", "alice-pw", "SCRAM-SHA-256", 4096)]}),
            json!({"op": "create_acls", "acls": [
                acl("TOPIC", "guarded", "User:bob", "READ", "ALLOW"),
                acl("TOPIC", "guarded", "User:bob", "WRITE", "ALLOW"),
            ]}),
        ],
    );
    assert_eq!(setup[1]["errors"], json!({"alice": null}), "{setup:?}");
    assert_eq!(setup[2]["errors"], json!([null, null]), "{setup:?}");
    let r = ck(
        &broker,
        &broker.listener_addr("SASL"),
        sasl(None, "SCRAM-SHA-256", "alice", "alice-pw"),
        vec![
            produce("open", "alice-open"),
            group_consume("open", "free-group", 1),
            produce("guarded", "alice-guarded"),
            json!({"op": "metadata"}),
        ],
    );
    assert_eq!(r[0]["error"], Value::Null, "a topic without ACLs: {}", r[0]);
    assert_eq!(
        r[1]["values"],
        json!(["alice-open"]),
        "a topic and group without ACLs: {}",
        r[1]
    );
    assert_eq!(
        error_of(&r[2]),
        "TOPIC_AUTHORIZATION_FAILED",
        "a topic with ACLs: {}",
        r[2]
    );
    let topics = r[3]["topics"].as_array().unwrap_or_else(|| panic!("{}", r[3]));
    assert!(
        topics.contains(&json!("open")) && !topics.contains(&json!("guarded")),
        "alice's metadata: {}",
        r[3]
    );
}

/// Without an authorizer everything is allowed and the ACL APIs answer SECURITY_DISABLED.
#[test]
fn acl_apis_without_authorizer_are_security_disabled() {
    let broker = Broker::start();
    let r = ck(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![
            json!({"op": "create_acls", "acls": [acl("TOPIC", "t", "User:alice", "READ", "ALLOW")]}),
            json!({"op": "delete_acls", "filters": [{"principal": "User:alice"}]}),
        ],
    );
    assert_eq!(r[0]["errors"], json!(["SECURITY_DISABLED"]), "{}", r[0]);
    assert_eq!(r[1]["deleted"], json!(["SECURITY_DISABLED"]), "{}", r[1]);
    // librdkafka 2.16 drops DescribeAcls' top-level error code (it reports an empty list);
    // kafka-python raises it.
    let r = kp(
        &broker,
        &broker.addr(),
        plaintext(),
        vec![json!({"op": "describe_acls", "topic": "t"})],
    );
    assert_eq!(r[0]["error"], json!("SecurityDisabledError"), "{}", r[0]);
}

// ------------------------------------------------------------------ the example config

/// A broker from config/strom-sasl-ssl.toml (ports, certificate paths and the data directory
/// overridden), set up as its comments tell an operator: `strom users create` and
/// `strom acls add` through the INTERNAL listener; alice may write and read example-orders.
fn example_broker(certs: &Certs) -> Broker {
    let config = repo_root().join("config/strom-sasl-ssl.toml");
    let broker = start_with_config(
        &[("INTERNAL", "PLAINTEXT"), ("EXTERNAL", "SASL_SSL")],
        certs.broker_opts(),
        Some(&config),
    );
    let internal = broker.addr();
    strom_in(&[
        "topics",
        "create",
        "example-orders",
        "--partitions",
        "1",
        "--bootstrap-server",
        &internal,
    ]);
    strom_in(&[
        "users",
        "create",
        "alice",
        "--password",
        "alice-secret",
        "--mechanism",
        "SCRAM-SHA-512",
        "--bootstrap-server",
        &internal,
    ]);
    for op in ["Write", "Read"] {
        strom_in(&[
            "acls",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            op,
            "--topic",
            "example-orders",
            "--bootstrap-server",
            &internal,
        ]);
    }
    broker
}

/// config/strom-sasl-ssl.toml parses and serves: librdkafka with SCRAM-SHA-512 over the
/// EXTERNAL SASL_SSL listener round-trips on the topic alice was granted, is refused a topic
/// she was not, and PLAIN (not enabled on EXTERNAL by the file) is refused.
#[test]
fn example_config_serves_sasl_ssl() {
    let certs = Certs::new();
    let broker = example_broker(&certs);
    strom_in(&[
        "topics",
        "create",
        "example-other",
        "--partitions",
        "1",
        "--bootstrap-server",
        &broker.addr(),
    ]);
    let alice = sasl(Some(&certs), "SCRAM-SHA-512", "alice", "alice-secret");
    let r = ck(
        &broker,
        &broker.listener_addr("EXTERNAL"),
        alice,
        vec![
            roundtrip("example-orders", 20, "example"),
            produce("example-other", "not-allowed"),
            with_sec(connect_fail(), &sasl(Some(&certs), "PLAIN", "alice", "alice-secret")),
        ],
    );
    assert_roundtrip(
        &r[0],
        "example",
        20,
        "SCRAM-SHA-512 over SASL_SSL from the example config",
    );
    assert_eq!(error_of(&r[1]), "TOPIC_AUTHORIZATION_FAILED", "ACLs are on: {}", r[1]);
    assert_eq!(
        r[2]["delivered"],
        json!(false),
        "PLAIN is not enabled on EXTERNAL: {}",
        r[2]
    );
    assert!(
        r[2]["first_error_s"].as_f64().is_some_and(|s| s <= FAIL_WITHIN_S),
        "PLAIN on EXTERNAL: no prompt error: {}",
        r[2]
    );
}

/// The Java client (kafka-clients 3.9.1) with SASL_SSL and SCRAM-SHA-512 against the broker
/// of the example config: an idempotent producer and a consumer round-trip 20 records, and a
/// wrong password fails with SaslAuthenticationException promptly.
#[test]
fn java_client_sasl_ssl_scram_sha_512() {
    let Some(cp) = java_classpath() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false"),
            "CI is set but kafka-clients.jar is not installed: pip install shigawire-apache-flink-libraries"
        );
        eprintln!("SKIPPED java_client_sasl_ssl_scram_sha_512: kafka-clients.jar not found");
        return;
    };
    let certs = Certs::new();
    let broker = example_broker(&certs);
    // Idempotent producers (the Java default) need IDEMPOTENT_WRITE, implied by WRITE on a
    // topic (KIP-679); reading needs nothing more for a group-less consumer.
    let r = run_java(
        &broker,
        &cp,
        "SecurityJava.java",
        &[
            &broker.listener_addr("EXTERNAL"),
            &certs.p("ca.pem"),
            "alice",
            "alice-secret",
            "example-orders",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(r["produced"], json!(20), "{r}");
    assert_eq!(
        r["consumed"],
        json!((0..20).map(|i| format!("java-value-{i}")).collect::<Vec<_>>()),
        "{r}"
    );
    assert_eq!(r["wrong_password_error"], json!("SaslAuthenticationException"), "{r}");
    assert_eq!(r["wrong_password_delivered"], json!(false), "{r}");
    assert!(
        r["wrong_password_s"].as_f64().unwrap() <= 10.0,
        "wrong password took long: {r}"
    );
}

/// KafkaJS 2.2 with SASL_SSL and SCRAM-SHA-512 against the broker of the example config,
/// verifying the broker's certificate against the CA: an idempotent producer and a consumer
/// group round-trip 20 records as alice (given Read on her group here), and a wrong
/// password fails with KafkaJSSASLAuthenticationError promptly.
#[test]
fn kafkajs_sasl_ssl_scram_sha_512() {
    let certs = Certs::new();
    let broker = example_broker(&certs);
    strom_in(&[
        "acls",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--group",
        "kafkajs-alice",
        "--bootstrap-server",
        &broker.addr(),
    ]);
    let r = node(
        &broker,
        "kafkajs_scenarios.js",
        &[
            "sasl-ssl",
            &broker.listener_addr("EXTERNAL"),
            &certs.p("ca.pem"),
            "alice",
            "alice-secret",
            "example-orders",
            "kafkajs-alice",
        ],
    );
    assert_eq!(r["produced_base_offset"], json!(0), "{r}");
    assert_eq!(
        r["consumed"],
        json!((0..20).map(|i| format!("kafkajs-value-{i}")).collect::<Vec<_>>()),
        "{r}"
    );
    assert_eq!(
        r["wrong_password_error"],
        json!("KafkaJSSASLAuthenticationError"),
        "{r}"
    );
    assert!(
        r["wrong_password_s"].as_f64().is_some_and(|s| s <= FAIL_WITHIN_S),
        "wrong password took long: {r}"
    );
}

// ------------------------------------------------------------------ gen-certs.sh

/// config/gen-certs.sh: every file it promises, the keystore in Kafka's PEM layout
/// (certificates, then the PKCS#8 key), certificates that verify against the CA with the
/// broker's SANs and the clients' RFC 2253 subjects; a second run changes nothing, and a
/// missing client certificate is made again with the same CA.
#[test]
fn gen_certs_makes_a_usable_and_idempotent_set() {
    let certs = Certs::new();
    let files = [
        "ca.pem",
        "broker.pem",
        "broker-cert.pem",
        "broker-key.pem",
        "broker2.pem",
        "broker2-cert.pem",
        "broker2-key.pem",
        "alice.pem",
        "alice-key.pem",
        "bob.pem",
        "bob-key.pem",
    ];
    let read = |f: &str| std::fs::read_to_string(certs.p(f)).unwrap();
    let snapshot = || files.iter().map(|f| read(f)).collect::<Vec<_>>();
    let first = snapshot();
    for keystore in ["broker.pem", "broker2.pem"] {
        let text = read(keystore);
        let markers: Vec<&str> = text.lines().filter(|l| l.starts_with("-----BEGIN")).collect();
        assert_eq!(
            markers,
            [
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN PRIVATE KEY-----"
            ],
            "{keystore}: chain then PKCS#8 key"
        );
    }
    assert_ne!(read("broker-cert.pem"), read("broker2-cert.pem"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ca = certs.p("ca.pem");
    for cert in ["broker-cert.pem", "broker2-cert.pem", "alice.pem", "bob.pem"] {
        openssl(&["verify", "-CAfile", &ca, &certs.p(cert)]);
    }
    let sans = openssl(&[
        "x509",
        "-in",
        &certs.p("broker-cert.pem"),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        sans.contains("DNS:localhost") && sans.contains("IP Address:127.0.0.1"),
        "{sans}"
    );
    for (who, dn) in [("alice", ALICE_DN), ("bob", BOB_DN)] {
        let subject = openssl(&[
            "x509",
            "-in",
            &certs.p(&format!("{who}.pem")),
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ]);
        assert_eq!(subject.trim(), format!("subject={}", dn.trim_start_matches("User:")));
    }

    let rerun = || {
        let out = Command::new("bash")
            .arg(repo_root().join("config/gen-certs.sh"))
            .arg(certs.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "gen-certs.sh is not quiet"
        );
    };
    rerun();
    assert_eq!(snapshot(), first, "a second run changed files");
    std::fs::remove_file(certs.p("alice.pem")).unwrap();
    std::fs::remove_file(certs.p("alice-key.pem")).unwrap();
    rerun();
    assert_eq!(read("ca.pem"), first[0], "the CA was replaced");
    assert_ne!(read("alice.pem"), first[7], "alice's certificate was not made again");
    openssl(&["verify", "-CAfile", &ca, &certs.p("alice.pem")]);
}
