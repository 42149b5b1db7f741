//! A SASL mechanism in a WASM plugin, end to end: the real `strom` binary with a PLAINTEXT
//! listener (for set-up) and a SASL_PLAINTEXT listener offering `STROM-HMAC-SHA256`, which
//! `sasl.mechanism.plugins` maps to the `hmac-challenge` plugin (plugins/hmac-challenge),
//! uploaded through the admin API after the broker started. kafka-python with the client
//! helper examples/sasl-hmac/strom_hmac.py produces and consumes through it; a wrong
//! password and an unknown user are refused at once, alike. The client side lives in
//! tests/clients/sasl_plugin_kp.py.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, python, Broker};
use serde_json::Value;
use strom_plugins::artifacts;

const MECHANISM: &str = "STROM-HMAC-SHA256";
/// How long kafka-python may keep retrying a refused login (it retries until this timeout).
const REFUSED_CLIENT_TIMEOUT_S: &str = "5";
/// How long a whole refused exchange may take (the broker delays a refusal by 100 ms).
const REFUSAL_MAX: f64 = 2.0;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const FAILED: &str = "unknown user or invalid proof";

/// One HTTP/1.1 request with `Connection: close` to the admin API: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to the admin API at {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{method} {path}: chunked answer not expected: {head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, raw[end + 4..].to_vec())
}

fn json_of(what: &str, (status, body): (u16, Vec<u8>), expected: u16) -> Value {
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, expected, "{what}: HTTP {status}: {text}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn wait_for(addr: &str, broker: &Broker) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "admin listener {addr} not accepting; broker log:\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the broker log has a line containing every one of `parts`; returns it.
fn log_line(broker: &Broker, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = broker.log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no broker log line with {parts:?}; log:\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kafka-python with the helper and credentials the broker refuses: it must not get in.
/// (kafka-python 3.0 retries a refused login until its timeout and, when the broker closes
/// the connection right after the error response, often reports only the disconnect, so
/// the reason is checked on the wire by `authenticate` instead.)
fn refused(broker: &Broker, user: &str, password: &str) -> Value {
    let sasl = broker.listener_addr("SASL");
    let r = python(
        broker,
        "sasl_plugin_kp.py",
        &[
            "refused",
            &sasl,
            user,
            password,
            REFUSED_CLIENT_TIMEOUT_S,
            "SaslAuthenticationFailed",
        ],
    );
    assert_eq!(r["delivered"], Value::Bool(false), "{user} got in: {r}");
    assert!(r["error"].is_string(), "{user}: no error: {r}");
    r
}

/// One Kafka request (header v1) on `s`: the response body after the correlation id.
fn request(s: &mut TcpStream, api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&16i16.to_be_bytes());
    frame.extend_from_slice(b"sasl-plugin-test");
    frame.extend_from_slice(body);
    s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("a response");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut response).unwrap();
    assert_eq!(i32::from_be_bytes(response[0..4].try_into().unwrap()), 7);
    response.split_off(4)
}

fn string(text: &str) -> Vec<u8> {
    let mut out = (text.len() as i16).to_be_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

/// SaslHandshake v1 on a fresh connection: (the connection, error code, mechanisms listed).
fn sasl_handshake(addr: &str, mechanism: &str) -> (TcpStream, i16, Vec<String>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let response = request(&mut s, 17, 1, &string(mechanism));
    let code = i16::from_be_bytes(response[0..2].try_into().unwrap());
    let count = i32::from_be_bytes(response[2..6].try_into().unwrap());
    let mut at = 6;
    let mut mechanisms = Vec::new();
    for _ in 0..count {
        let len = i16::from_be_bytes(response[at..at + 2].try_into().unwrap()) as usize;
        mechanisms.push(String::from_utf8(response[at + 2..at + 2 + len].to_vec()).unwrap());
        at += 2 + len;
    }
    (s, code, mechanisms)
}

/// SaslAuthenticate v1: (error code, error message, auth bytes, session lifetime in ms).
fn sasl_authenticate(s: &mut TcpStream, auth_bytes: &[u8]) -> (i16, Option<String>, Vec<u8>, i64) {
    let mut body = (auth_bytes.len() as i32).to_be_bytes().to_vec();
    body.extend_from_slice(auth_bytes);
    let r = request(s, 36, 1, &body);
    let code = i16::from_be_bytes(r[0..2].try_into().unwrap());
    let len = i16::from_be_bytes(r[2..4].try_into().unwrap());
    let (message, at) = if len < 0 {
        (None, 4)
    } else {
        let end = 4 + len as usize;
        (Some(String::from_utf8_lossy(&r[4..end]).to_string()), end)
    };
    let n = i32::from_be_bytes(r[at..at + 4].try_into().unwrap()).max(0) as usize;
    let lifetime_at = at + 4 + n;
    let lifetime = i64::from_be_bytes(r[lifetime_at..lifetime_at + 8].try_into().unwrap());
    (code, message, r[at + 4..at + 4 + n].to_vec(), lifetime)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The whole STROM-HMAC-SHA256 exchange on the wire, written independently of the Python
/// helper: (error code of the last step, its error message, seconds it took, the session
/// lifetime the broker announced).
fn authenticate(addr: &str, user: &str, password: &str) -> (i16, Option<String>, f64, i64) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let started = Instant::now();
    let (mut s, code, _) = sasl_handshake(addr, MECHANISM);
    assert_eq!(code, 0, "handshake for {user}");
    let (code, message, challenge, _) = sasl_authenticate(&mut s, user.as_bytes());
    assert_eq!(code, 0, "client-first of {user}: {message:?}");
    let json: Value = serde_json::from_slice(&challenge).expect("the challenge is JSON");
    let b64 = |field: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(json[field].as_str().unwrap_or_else(|| panic!("no {field} in {json}")))
            .unwrap()
    };
    let (salt, nonce) = (b64("salt"), b64("nonce"));
    assert_eq!(nonce.len(), 24, "{json}");
    let mut salted = [0u8; 32];
    let iterations = json["iterations"].as_u64().unwrap() as u32;
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let stored_key = sha2::Sha256::digest(hmac_sha256(&salted, b"Client Key"));
    let proof: String = hmac_sha256(&stored_key, &nonce)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (code, message, _, lifetime_ms) = sasl_authenticate(&mut s, proof.as_bytes());
    (code, message, started.elapsed().as_secs_f64(), lifetime_ms)
}

#[test]
fn a_plugin_mechanism_authenticates_kafka_python_end_to_end() {
    let admin = format!("127.0.0.1:{}", free_port());
    let plugins = format!("{MECHANISM}=hmac-challenge@1");
    let mechanisms = format!("{MECHANISM},SCRAM-SHA-256");
    let broker = Broker::start_listeners(
        &[("PLAIN", "PLAINTEXT"), ("SASL", "SASL_PLAINTEXT")],
        &[
            ("admin.listener", admin.as_str()),
            ("sasl.enabled.mechanisms", mechanisms.as_str()),
            ("sasl.mechanism.plugins", plugins.as_str()),
            // Broker-wide plugin config reaches the SASL plugin.
            ("plugin.hmac-challenge.session.lifetime.ms", "60000"),
        ],
        None,
    );
    wait_for(&admin, &broker);
    let plain = broker.listener_addr("PLAIN");
    let sasl = broker.listener_addr("SASL");

    let created = python(
        &broker,
        "sasl_plugin_kp.py",
        &["add-user", &plain, "alice", "alice-secret"],
    );
    assert_eq!(created["ok"], Value::Bool(true), "{created}");

    // Before the plugin is uploaded the handshake fails with UNSUPPORTED_SASL_MECHANISM
    // (the mechanism is still listed), and the broker log says why.
    let (_, code, listed) = sasl_handshake(&sasl, MECHANISM);
    assert_eq!(code, UNSUPPORTED_SASL_MECHANISM, "mechanisms {listed:?}");
    assert_eq!(listed, vec![MECHANISM.to_string(), "SCRAM-SHA-256".to_string()]);
    let why = log_line(&broker, &["SASL handshake failed", MECHANISM]);
    assert!(
        why.contains("hmac-challenge@1") && why.contains("not uploaded"),
        "{why}"
    );
    refused(&broker, "alice", "alice-secret");

    // Upload it (after start: the mechanism is resolved at each handshake).
    let wasm = std::fs::read(artifacts::HMAC_CHALLENGE).unwrap();
    let uploaded = json_of(
        "upload",
        http(&admin, "PUT", "/v1/plugins/hmac-challenge/1", &wasm),
        201,
    );
    assert_eq!(uploaded["world"], "sasl-plugin", "{uploaded}");
    let described = json_of(
        "describe",
        http(&admin, "GET", "/v1/plugins/hmac-challenge/1", b""),
        200,
    );
    assert_eq!(described["world"], "sasl-plugin", "{described}");

    // kafka-python with the helper produces and consumes through the SASL listener.
    let rt = python(
        &broker,
        "sasl_plugin_kp.py",
        &[
            "roundtrip",
            &sasl,
            "alice",
            "alice-secret",
            "sasl-plugin-topic",
            "hmac-1",
        ],
    );
    assert_eq!(rt["consumed"][0], "hmac-1-value", "{rt}");
    let ok = log_line(&broker, &["SASL authentication succeeded", "principal=User:alice"]);
    assert!(ok.contains("listener=SASL"), "{ok}");

    // On the wire: the right password gets in; a wrong password and an unknown user are
    // refused at once with SASL_AUTHENTICATION_FAILED and the same reason.
    let (code, message, _, lifetime_ms) = authenticate(&sasl, "alice", "alice-secret");
    assert_eq!(code, 0, "alice with her password: {message:?}");
    // The plugin set the session lifetime from its config; the broker announces it.
    assert!(
        (50_000..=60_000).contains(&lifetime_ms),
        "session lifetime {lifetime_ms} ms"
    );
    let (wrong, wrong_message, wrong_s, _) = authenticate(&sasl, "alice", "not-her-password");
    let (unknown, unknown_message, unknown_s, _) = authenticate(&sasl, "mallory", "alice-secret");
    for (code, message, took) in [(wrong, &wrong_message, wrong_s), (unknown, &unknown_message, unknown_s)] {
        assert_eq!(code, SASL_AUTHENTICATION_FAILED, "{message:?}");
        let message = message.as_deref().unwrap_or_default();
        assert!(message.contains(FAILED) && message.contains(MECHANISM), "{message}");
        assert!(took < REFUSAL_MAX, "refused only after {took} s");
    }
    assert_eq!(wrong_message, unknown_message);
    // And kafka-python with the helper does not get in with either.
    refused(&broker, "alice", "not-her-password");
    refused(&broker, "mallory", "alice-secret");
    log_line(&broker, &["SASL authentication failed", FAILED]);
    assert!(
        !broker.log().contains("principal=User:mallory"),
        "mallory authenticated:\n{}",
        broker.log_tail()
    );

    // The broker counts the plugin's calls: the exchanges above ran in it, and the two
    // refusals counted as failed calls.
    let stats = json_of(
        "describe",
        http(&admin, "GET", "/v1/plugins/hmac-challenge/1", b""),
        200,
    );
    let calls = stats["calls"].as_u64().unwrap_or_else(|| panic!("no calls: {stats}"));
    let failures = stats["failures"]
        .as_u64()
        .unwrap_or_else(|| panic!("no failures: {stats}"));
    assert!(calls >= 8 && failures >= 2, "{stats}");

    // A plugin the broker's sasl.mechanism.plugins names cannot be deleted; logins go on.
    let refused_delete = json_of(
        "delete",
        http(&admin, "DELETE", "/v1/plugins/hmac-challenge/1", b""),
        409,
    );
    let reason = refused_delete["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(MECHANISM) && reason.contains("sasl.mechanism.plugins"),
        "{refused_delete}"
    );
    assert_eq!(authenticate(&sasl, "alice", "alice-secret").0, 0);
}
