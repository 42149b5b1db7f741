//! Robustness of the real `strom` binary against malformed input on raw sockets, with frames
//! built by hand (std::net::TcpStream only).
//!
//! Each abuse runs while a second client keeps its own connections open: a long-lived
//! librdkafka producer+consumer (`tests/clients/ck_steady.py`) and a raw "bystander"
//! connection. After the abuse the broker process must still be alive, the bystander must
//! still get ApiVersions answers on its connection, the librdkafka client must still produce
//! and consume at the next offset, and a fresh connection must work.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::wire::{
    api_versions_flexible, api_versions_ok, api_versions_v0, frame, parse_api_versions_v0, read_response, API_VERSIONS,
    METADATA, UNSUPPORTED_VERSION,
};
use common::{clients_dir, connect, Broker};
use serde_json::Value;

/// Metadata v4: topics = null (all), allow_auto_topic_creation = false.
fn metadata_v4(correlation_id: i32) -> Vec<u8> {
    let mut body = (-1i32).to_be_bytes().to_vec();
    body.push(0);
    frame(METADATA, 4, correlation_id, false, &body)
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Closed,
    Response(i32),
    NothingWithin(Duration),
}

/// After sending something invalid: was the connection closed, answered, or left hanging?
fn outcome(s: &mut TcpStream, wait: Duration) -> Outcome {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut size = [0u8; 4];
    match s.read_exact(&mut size) {
        Ok(()) => {
            let size = i32::from_be_bytes(size);
            let mut corr = [0u8; 4];
            match s.read_exact(&mut corr) {
                Ok(()) => {
                    let mut rest = vec![0u8; (size.max(4) - 4) as usize];
                    let _ = s.read_exact(&mut rest);
                    Outcome::Response(i32::from_be_bytes(corr))
                }
                Err(_) => Outcome::Closed,
            }
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Outcome::NothingWithin(wait),
        Err(_) => Outcome::Closed, // EOF or reset
    }
}

/// Closed, or answered with this correlation id (Kafka closes; an error response is fine
/// too). Hanging without either is a defect: the client would wait forever.
fn assert_closed_or_answered(s: &mut TcpStream, correlation_id: i32, what: &str) -> Outcome {
    let o = outcome(s, Duration::from_secs(10));
    match &o {
        Outcome::Closed => {}
        Outcome::Response(c) => assert_eq!(*c, correlation_id, "{what}: response with a foreign correlation id"),
        Outcome::NothingWithin(d) => {
            panic!("{what}: connection neither answered nor closed within {d:?}")
        }
    }
    o
}

fn assert_closed(s: &mut TcpStream, what: &str) {
    let o = outcome(s, Duration::from_secs(10));
    assert_eq!(o, Outcome::Closed, "{what}: the broker must close the connection");
}

// ---------------------------------------------------------------------------------------
// The second client that must stay unaffected

/// tests/clients/ck_steady.py: one librdkafka producer and consumer kept open for the whole
/// test; each `check` produces a record and reads it back over those same connections.
struct Steady {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_offset: i64,
}

impl Steady {
    fn start(broker: &Broker) -> Steady {
        let mut child = Command::new("python3")
            .arg(clients_dir().join("ck_steady.py"))
            .args([&broker.addr(), "steady"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ck_steady.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Steady {
            child,
            stdin,
            lines: rx,
            next_offset: 0,
        };
        let ready = s.next_line(Duration::from_secs(60));
        assert_eq!(ready["ready"], Value::Bool(true), "ck_steady.py: {ready}");
        s
    }

    fn next_line(&mut self, wait: Duration) -> Value {
        match self.lines.recv_timeout(wait) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| panic!("ck_steady.py printed {line:?}: {e}")),
            Err(_) => panic!("ck_steady.py said nothing within {wait:?}"),
        }
    }

    /// Produce `tag` and consume it back on the long-lived connections, at the next offset.
    fn check(&mut self, tag: &str) {
        writeln!(self.stdin, "{tag}").expect("write to ck_steady.py");
        self.stdin.flush().unwrap();
        let r = self.next_line(Duration::from_secs(60));
        assert!(r.get("error").is_none(), "second client failed after {tag}: {r}");
        assert_eq!(r["tag"], Value::String(tag.into()), "{r}");
        assert_eq!(
            r["offset"],
            Value::from(self.next_offset),
            "second client's record {tag}: {r}"
        );
        self.next_offset += 1;
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `abuse` against a broker while a second client is connected, then prove the broker
/// and the other connections are unaffected.
fn survives(opts: &[(&str, &str)], abuse: impl FnOnce(&mut Broker, &mut Steady)) {
    let mut broker = Broker::start_with(opts);
    let mut steady = Steady::start(&broker);
    let mut bystander = connect(&broker.addr());
    api_versions_ok(&mut bystander, 1);
    steady.check("before");

    abuse(&mut broker, &mut steady);

    broker.assert_alive();
    api_versions_ok(&mut bystander, 2);
    steady.check("after");
    let mut fresh = connect(&broker.addr());
    api_versions_ok(&mut fresh, 3);
    broker.assert_alive();
}

/// xorshift64*: deterministic garbage without a rand dependency.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests

/// With socket.request.max.bytes=1048576, a size prefix of 2 MiB gets the connection closed
/// at once (without the broker waiting for, or buffering, the 2 MiB).
#[test]
fn frame_above_socket_request_max_bytes_closes_connection() {
    survives(&[("socket.request.max.bytes", "1048576")], |broker, steady| {
        let mut s = connect(&broker.addr());
        let mut bytes = (2 * 1024 * 1024i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&api_versions_v0(9)[4..]); // a plausible start of a request
        s.write_all(&bytes).unwrap();
        assert_closed(&mut s, "2 MiB frame with socket.request.max.bytes=1048576");
        steady.check("after-oversized-1");
        // A frame just under the limit is not refused for its size: the broker waits for
        // the rest of it, and the connection stays open meanwhile.
        let mut s2 = connect(&broker.addr());
        s2.write_all(&(1024 * 1024 - 16i32).to_be_bytes()).unwrap();
        s2.write_all(&api_versions_v0(10)[4..]).unwrap();
        assert_eq!(
            outcome(&mut s2, Duration::from_secs(2)),
            Outcome::NothingWithin(Duration::from_secs(2)),
            "a frame under socket.request.max.bytes must not be refused for its size"
        );
    });
}

/// The default socket.request.max.bytes is 100 MiB: a 200 MiB size prefix closes the
/// connection.
#[test]
fn frame_above_default_limit_closes_connection() {
    survives(&[], |broker, _| {
        let mut s = connect(&broker.addr());
        s.write_all(&(200 * 1024 * 1024i32).to_be_bytes()).unwrap();
        s.write_all(&[0u8; 64]).unwrap();
        assert_closed(&mut s, "200 MiB frame with the default socket.request.max.bytes");
    });
}

/// Random bytes, negative and tiny size prefixes, and well-sized frames full of garbage do
/// not crash the broker or disturb other connections.
#[test]
fn garbage_bytes_do_not_disturb_other_clients() {
    survives(&[], |broker, steady| {
        for seed in 1..=8u64 {
            let mut s = connect(&broker.addr());
            let _ = s.write_all(&garbage(seed, 4096));
            let _ = outcome(&mut s, Duration::from_millis(300));
        }
        steady.check("after-random-garbage");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("size -1", (-1i32).to_be_bytes().to_vec()),
            ("size i32::MIN", i32::MIN.to_be_bytes().to_vec()),
            ("size 0", 0i32.to_be_bytes().to_vec()),
            ("size 3, header cut", [&3i32.to_be_bytes()[..], &[0, 18, 0]].concat()),
            (
                "size 64, garbage body",
                [&64i32.to_be_bytes()[..], &garbage(99, 64)].concat(),
            ),
            (
                "ApiVersions header with client_id length beyond the frame",
                [&10i32.to_be_bytes()[..], &[0, 18, 0, 0, 0, 0, 0, 7, 0x7f, 0xff]].concat(),
            ),
        ];
        for (what, bytes) in cases {
            eprintln!("sending: {what}");
            let mut s = connect(&broker.addr());
            s.write_all(&bytes).unwrap();
            // Nothing valid was asked: closing or staying silent are both fine; what counts
            // is that the broker survives and still serves a fresh connection.
            let _ = outcome(&mut s, Duration::from_secs(2));
            drop(s);
            broker.assert_alive();
            api_versions_ok(&mut connect(&broker.addr()), 42);
        }
    });
}

/// A truncated frame (size 100, 10 bytes sent) left hanging does not block other
/// connections; closing it mid-frame does not hurt either.
#[test]
fn truncated_frame_does_not_disturb_other_clients() {
    survives(&[], |broker, steady| {
        let mut s = connect(&broker.addr());
        let mut bytes = 100i32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&api_versions_v0(5)[4..14]);
        s.write_all(&bytes).unwrap();
        // While the partial frame is pending, everyone else is served.
        steady.check("while-truncated-pending");
        api_versions_ok(&mut connect(&broker.addr()), 6);
        drop(s);
        thread::sleep(Duration::from_millis(200));
    });
}

/// An unknown API key (9999) gets Kafka's treatment (a closed connection, or an error
/// response with the same correlation id), never silence or a crash.
#[test]
fn unknown_api_key_is_refused() {
    survives(&[], |broker, _| {
        let mut s = connect(&broker.addr());
        s.write_all(&frame(9999, 0, 77, false, &[])).unwrap();
        let o = assert_closed_or_answered(&mut s, 77, "api_key 9999");
        eprintln!("unknown api key: {o:?}");
    });
}

/// A known API at a version nobody implements (Metadata v999) is refused the same way.
#[test]
fn unsupported_version_of_known_api_is_refused() {
    survives(&[], |broker, _| {
        let mut s = connect(&broker.addr());
        s.write_all(&frame(METADATA, 999, 78, false, &[0, 0, 0, 0])).unwrap();
        let o = assert_closed_or_answered(&mut s, 78, "Metadata v999");
        eprintln!("unsupported Metadata version: {o:?}");
    });
}

/// ApiVersions v99 (KIP-511): the broker answers in the v0 body format with error 35
/// UNSUPPORTED_VERSION and at least its ApiVersions range, and keeps the connection open so
/// the client can retry with a version it supports.
#[test]
fn api_versions_with_unsupported_version_answers_error_35_in_v0_format() {
    survives(&[], |broker, _| {
        let mut s = connect(&broker.addr());
        s.write_all(&api_versions_flexible(1234, 99)).unwrap();
        let (corr, body) = read_response(&mut s).expect("a response to ApiVersions v99");
        assert_eq!(corr, 1234);
        let (err, keys) = parse_api_versions_v0(&body);
        assert_eq!(err, UNSUPPORTED_VERSION, "error code for ApiVersions v99");
        let av = keys
            .iter()
            .find(|k| k.0 == API_VERSIONS)
            .unwrap_or_else(|| panic!("the error response must carry the ApiVersions range: {keys:?}"));
        assert_eq!(av.1, 0);
        assert!(av.2 >= 3, "{av:?}");
        // The client retries on the same connection.
        api_versions_ok(&mut s, 1235);
    });
}

/// 50 ApiVersions v0 requests in one write are answered in order, one response each.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let broker = Broker::start();
    let mut s = connect(&broker.addr());
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend_from_slice(&api_versions_v0(1000 + i * 7));
    }
    s.write_all(&batch).unwrap();
    for i in 0..50 {
        let (corr, body) = read_response(&mut s).unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(corr, 1000 + i * 7, "response {i} out of order");
        let (err, keys) = parse_api_versions_v0(&body);
        assert_eq!(err, 0);
        assert!(keys.iter().any(|k| k.0 == API_VERSIONS));
    }
    assert_eq!(
        outcome(&mut s, Duration::from_millis(300)),
        Outcome::NothingWithin(Duration::from_millis(300)),
        "exactly 50 responses"
    );
}

/// Pipelining across APIs and header versions (ApiVersions v0, ApiVersions v3 with a
/// flexible header, Metadata v4) still answers strictly in request order.
#[test]
fn pipelined_mixed_requests_are_answered_in_order() {
    let broker = Broker::start();
    let mut s = connect(&broker.addr());
    let keys = api_versions_ok(&mut s, 1);
    let metadata = keys.iter().find(|k| k.0 == METADATA).copied();
    let metadata_v4_ok = matches!(metadata, Some((_, min, max)) if min <= 4 && 4 <= max);
    assert!(
        metadata_v4_ok,
        "Metadata v4 must be supported (Kafka 4.x accepts it; librdkafka 2.0.2 uses it): {metadata:?}"
    );
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    for i in 0..60 {
        let corr = 5000 + i;
        match i % 3 {
            0 => batch.extend_from_slice(&api_versions_v0(corr)),
            1 => batch.extend_from_slice(&api_versions_flexible(corr, 3)),
            _ => batch.extend_from_slice(&metadata_v4(corr)),
        }
        expect.push(corr);
    }
    let started = Instant::now();
    s.write_all(&batch).unwrap();
    for (i, want) in expect.iter().enumerate() {
        let (corr, body) = read_response(&mut s).unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(corr, *want, "response {i} out of order");
        if i % 3 == 1 {
            // ApiVersions v3 body: error_code first.
            assert_eq!(&body[..2], &[0, 0], "ApiVersions v3 error code");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
