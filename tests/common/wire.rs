//! Hand-built Kafka frames for raw-socket tests: request headers, ApiVersions, Produce v3,
//! Fetch v4, InitProducerId v1, and record batches (magic 2) encoded and decoded here,
//! independently of the broker's codec crate, from the protocol guide.

use std::io::{Read, Write};
use std::net::TcpStream;

pub const PRODUCE: i16 = 0;
pub const FETCH: i16 = 1;
pub const METADATA: i16 = 3;
pub const API_VERSIONS: i16 = 18;
pub const INIT_PRODUCER_ID: i16 = 22;

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

/// A request frame: size prefix, header v1 (api_key, api_version, correlation_id,
/// client_id) or v2 (the same plus an empty tagged-field section), then `body`.
pub fn frame(api_key: i16, api_version: i16, correlation_id: i32, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let client_id = b"strom-raw-test";
    let mut msg = Vec::new();
    msg.extend_from_slice(&api_key.to_be_bytes());
    msg.extend_from_slice(&api_version.to_be_bytes());
    msg.extend_from_slice(&correlation_id.to_be_bytes());
    msg.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    msg.extend_from_slice(client_id);
    if flexible_header {
        msg.push(0); // no tagged fields
    }
    msg.extend_from_slice(body);
    let mut out = (msg.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&msg);
    out
}

/// Read one response frame: (correlation_id, rest of the frame).
pub fn read_response(s: &mut TcpStream) -> std::io::Result<(i32, Vec<u8>)> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    assert!((4..=64 << 20).contains(&size), "response size prefix {size}");
    let mut buf = vec![0u8; size as usize];
    s.read_exact(&mut buf)?;
    let corr = i32::from_be_bytes(buf[..4].try_into().unwrap());
    Ok((corr, buf[4..].to_vec()))
}

/// Send one request and read its response, checking the correlation id.
pub fn call(s: &mut TcpStream, request: &[u8], correlation_id: i32) -> Vec<u8> {
    s.write_all(request).expect("write request");
    let (corr, body) = read_response(s).expect("read response");
    assert_eq!(corr, correlation_id, "response correlation id");
    body
}

/// A cursor over big-endian protocol fields.
pub struct Reader<'a> {
    pub b: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, at: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.at + n <= self.b.len(),
            "truncated: need {n} bytes at {} of {}",
            self.at,
            self.b.len()
        );
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        s
    }
    pub fn i8(&mut self) -> i8 {
        self.take(1)[0] as i8
    }
    pub fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    pub fn string(&mut self) -> Option<String> {
        let n = self.i16();
        (n >= 0).then(|| String::from_utf8(self.take(n as usize).to_vec()).unwrap())
    }
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.i32();
        (n >= 0).then(|| self.take(n as usize))
    }
    pub fn varint(&mut self) -> i64 {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.take(1)[0];
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            assert!(shift < 64, "varint too long");
        }
        ((v >> 1) as i64) ^ -((v & 1) as i64)
    }
    pub fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

// ---- ApiVersions

pub fn api_versions_v0(correlation_id: i32) -> Vec<u8> {
    frame(API_VERSIONS, 0, correlation_id, false, &[])
}

/// ApiVersions v3+ (flexible): client_software_name and _version as compact strings.
pub fn api_versions_flexible(correlation_id: i32, version: i16) -> Vec<u8> {
    let mut body = Vec::new();
    for s in [&b"strom-tests"[..], &b"0.1"[..]] {
        body.push(s.len() as u8 + 1);
        body.extend_from_slice(s);
    }
    body.push(0);
    frame(API_VERSIONS, version, correlation_id, true, &body)
}

/// Parse an ApiVersions v0 response body: (error_code, [(api_key, min, max)]), checking
/// that it is exactly that long.
pub fn parse_api_versions_v0(body: &[u8]) -> (i16, Vec<(i16, i16, i16)>) {
    assert!(body.len() >= 6, "ApiVersions v0 body too short: {body:?}");
    let mut r = Reader::new(body);
    let err = r.i16();
    let n = r.i32();
    assert!((0..1000).contains(&n), "ApiVersions v0 array length {n}");
    assert_eq!(
        body.len(),
        6 + 6 * n as usize,
        "ApiVersions v0 body must be error_code + int32 count + {n} entries of 3 int16, nothing else"
    );
    let keys = (0..n).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    (err, keys)
}

/// One ApiVersions v0 round trip: error 0, ApiVersions itself advertised from v0 to >= 3.
/// Returns the advertised (api_key, min, max) entries.
pub fn api_versions_ok(s: &mut TcpStream, correlation_id: i32) -> Vec<(i16, i16, i16)> {
    let body = call(s, &api_versions_v0(correlation_id), correlation_id);
    let (err, keys) = parse_api_versions_v0(&body);
    assert_eq!(err, 0, "ApiVersions v0 error code");
    let av = keys
        .iter()
        .find(|k| k.0 == API_VERSIONS)
        .unwrap_or_else(|| panic!("ApiVersions not advertised: {keys:?}"));
    assert_eq!(av.1, 0, "ApiVersions must be supported from v0");
    assert!(av.2 >= 3, "ApiVersions max version {}", av.2);
    keys
}

/// Panic unless the broker advertises `version` of `api_key`.
pub fn assert_supports(keys: &[(i16, i16, i16)], api_key: i16, version: i16) {
    let k = keys.iter().find(|k| k.0 == api_key);
    assert!(
        matches!(k, Some(&(_, min, max)) if min <= version && version <= max),
        "api key {api_key} v{version} is not advertised ({k:?}); Kafka 4.x still accepts it"
    );
}

// ---- Record batches (magic 2)

/// One record to encode: key, value, headers.
pub struct Rec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// The producer fields of a batch: (producer_id, producer_epoch, base_sequence).
pub const NO_PRODUCER: (i64, i16, i32) = (-1, -1, -1);

/// An uncompressed record batch with base offset 0, CreateTime `timestamp` for every record,
/// and a correct CRC32C.
pub fn record_batch(records: &[Rec], timestamp: i64, producer: (i64, i16, i32)) -> Vec<u8> {
    let mut recs = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i as i64); // offset delta
        match r.key {
            Some(k) => {
                put_varint(&mut body, k.len() as i64);
                body.extend_from_slice(k);
            }
            None => put_varint(&mut body, -1),
        }
        match r.value {
            Some(v) => {
                put_varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
            None => put_varint(&mut body, -1),
        }
        put_varint(&mut body, r.headers.len() as i64);
        for (hk, hv) in &r.headers {
            put_varint(&mut body, hk.len() as i64);
            body.extend_from_slice(hk.as_bytes());
            match hv {
                Some(v) => {
                    put_varint(&mut body, v.len() as i64);
                    body.extend_from_slice(v);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut recs, body.len() as i64);
        recs.extend_from_slice(&body);
    }
    // From attributes to the end: what the CRC covers.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression, CreateTime
    tail.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes()); // lastOffsetDelta
    tail.extend_from_slice(&timestamp.to_be_bytes()); // baseTimestamp
    tail.extend_from_slice(&timestamp.to_be_bytes()); // maxTimestamp
    tail.extend_from_slice(&producer.0.to_be_bytes());
    tail.extend_from_slice(&producer.1.to_be_bytes());
    tail.extend_from_slice(&producer.2.to_be_bytes());
    tail.extend_from_slice(&(records.len() as i32).to_be_bytes());
    tail.extend_from_slice(&recs);
    let crc = crc32c::crc32c(&tail);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    batch.extend_from_slice(&((4 + 1 + 4 + tail.len()) as i32).to_be_bytes()); // batchLength
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc.to_be_bytes());
    batch.extend_from_slice(&tail);
    batch
}

/// Simple value-only records.
pub fn values<'a>(vs: &'a [&'a str]) -> Vec<Rec<'a>> {
    vs.iter()
        .map(|v| Rec {
            key: None,
            value: Some(v.as_bytes()),
            headers: vec![],
        })
        .collect()
}

/// A decoded batch header plus the values of its records (uncompressed batches only).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub crc_ok: bool,
    pub values: Vec<Option<Vec<u8>>>,
}

/// Decode the record batches of a fetch response's `records` field. A trailing partial
/// batch (allowed by the protocol) is ignored.
pub fn parse_batches(bytes: &[u8]) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if at + 12 + len > bytes.len() {
            break;
        }
        let b = &bytes[at..at + 12 + len];
        let mut r = Reader::new(b);
        let base_offset = r.i64();
        r.i32();
        r.i32();
        assert_eq!(r.i8(), 2, "magic");
        let crc = r.i32() as u32;
        let crc_ok = crc32c::crc32c(&b[21..]) == crc;
        let attributes = r.i16();
        let last_offset_delta = r.i32();
        r.i64();
        r.i64();
        r.i64();
        r.i16();
        r.i32();
        let n = r.i32();
        let mut values = Vec::new();
        if attributes & 0x7 == 0 {
            for _ in 0..n {
                let _len = r.varint();
                r.i8();
                r.varint();
                r.varint();
                let kl = r.varint();
                if kl >= 0 {
                    r.take(kl as usize);
                }
                let vl = r.varint();
                values.push((vl >= 0).then(|| r.take(vl as usize).to_vec()));
                let hn = r.varint();
                for _ in 0..hn {
                    let hk = r.varint();
                    r.take(hk as usize);
                    let hv = r.varint();
                    if hv >= 0 {
                        r.take(hv as usize);
                    }
                }
            }
        }
        out.push(Batch {
            base_offset,
            last_offset_delta,
            crc_ok,
            values,
        });
        at += 12 + len;
    }
    out
}

// ---- Produce v3

/// Produce v3: one topic, one partition, one record set.
pub fn produce_v3(correlation_id: i32, acks: i16, topic: &str, partition: i32, records: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id = null
    body.extend_from_slice(&acks.to_be_bytes());
    body.extend_from_slice(&30_000i32.to_be_bytes()); // timeout_ms
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&(records.len() as i32).to_be_bytes());
    body.extend_from_slice(records);
    frame(PRODUCE, 3, correlation_id, false, &body)
}

/// Produce v3 response for one partition: (error_code, base_offset, log_append_time).
pub fn parse_produce_v3(body: &[u8]) -> (i16, i64, i64) {
    let mut r = Reader::new(body);
    assert_eq!(r.i32(), 1, "one topic in the produce response");
    r.string();
    assert_eq!(r.i32(), 1, "one partition in the produce response");
    r.i32();
    let err = r.i16();
    let base = r.i64();
    let lat = r.i64();
    r.i32(); // throttle_time_ms
    assert!(r.done(), "trailing bytes in Produce v3 response");
    (err, base, lat)
}

/// Produce one batch with acks and return (error_code, base_offset).
pub fn produce(s: &mut TcpStream, corr: i32, acks: i16, topic: &str, partition: i32, batch: &[u8]) -> (i16, i64) {
    let body = call(s, &produce_v3(corr, acks, topic, partition, batch), corr);
    let (err, base, _) = parse_produce_v3(&body);
    (err, base)
}

// ---- Fetch v4

/// Fetch v4: one topic, one partition.
pub fn fetch_v4(
    correlation_id: i32,
    max_wait_ms: i32,
    min_bytes: i32,
    topic: &str,
    partition: i32,
    offset: i64,
    partition_max_bytes: i32,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
    body.extend_from_slice(&max_wait_ms.to_be_bytes());
    body.extend_from_slice(&min_bytes.to_be_bytes());
    body.extend_from_slice(&(50i32 << 20).to_be_bytes()); // max_bytes
    body.push(0); // isolation_level read_uncommitted
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&partition_max_bytes.to_be_bytes());
    frame(FETCH, 4, correlation_id, false, &body)
}

/// Fetch v4 response for one partition.
#[derive(Debug)]
pub struct Fetched {
    pub error: i16,
    pub high_watermark: i64,
    pub records: Vec<u8>,
}

pub fn parse_fetch_v4(body: &[u8]) -> Fetched {
    let mut r = Reader::new(body);
    r.i32(); // throttle_time_ms
    assert_eq!(r.i32(), 1, "one topic in the fetch response");
    r.string();
    assert_eq!(r.i32(), 1, "one partition in the fetch response");
    r.i32();
    let error = r.i16();
    let high_watermark = r.i64();
    r.i64(); // last_stable_offset
    let aborted = r.i32();
    for _ in 0..aborted.max(0) {
        r.i64();
        r.i64();
    }
    let records = r.bytes().map(<[u8]>::to_vec).unwrap_or_default();
    assert!(r.done(), "trailing bytes in Fetch v4 response");
    Fetched {
        error,
        high_watermark,
        records,
    }
}

// ---- InitProducerId v1

/// InitProducerId v1 without a transactional id: (error_code, producer_id, epoch).
pub fn init_producer_id(s: &mut TcpStream, corr: i32) -> (i16, i64, i16) {
    let mut body = (-1i16).to_be_bytes().to_vec(); // transactional_id = null
    body.extend_from_slice(&60_000i32.to_be_bytes());
    let resp = call(s, &frame(INIT_PRODUCER_ID, 1, corr, false, &body), corr);
    let mut r = Reader::new(&resp);
    r.i32(); // throttle
    let err = r.i16();
    let pid = r.i64();
    let epoch = r.i16();
    (err, pid, epoch)
}
