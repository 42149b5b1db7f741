//! Kafka's record encoding: the records inside a batch, after decompression. Plugins of the
//! `batch-partitioner` world take records in this form; this module converts between it
//! and typed records for the callers and plugins that use the other form.

use crate::bindings::{Header, KafkaRecord};

/// Decodes `count` records; offset deltas are as encoded, timestamps absolute
/// (`base_timestamp` plus each record's delta).
pub fn decode_records(mut buf: &[u8], count: usize, base_timestamp: i64) -> Result<Vec<KafkaRecord>, String> {
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let length = varint(&mut buf).map_err(|e| format!("record {i} length: {e}"))?;
        if length < 1 || buf.len() < length as usize {
            return Err(format!("record {i} claims {length} bytes, {} left", buf.len()));
        }
        let (mut r, rest) = buf.split_at(length as usize);
        buf = rest;
        r = &r[1..]; // attributes, unused
        let field = |what: &str, r: &mut &[u8]| varint(r).map_err(|e| format!("record {i} {what}: {e}"));
        let timestamp_delta = field("timestamp delta", &mut r)?;
        let offset_delta = field("offset delta", &mut r)? as i32;
        let key = bytes_field(&mut r).map_err(|e| format!("record {i} key: {e}"))?;
        let value = bytes_field(&mut r).map_err(|e| format!("record {i} value: {e}"))?;
        let header_count = field("header count", &mut r)?.max(0) as usize;
        let mut headers = Vec::with_capacity(header_count.min(r.len()));
        for _ in 0..header_count {
            let key = bytes_field(&mut r)
                .map_err(|e| format!("record {i} header key: {e}"))?
                .ok_or_else(|| format!("record {i} has a null header key"))?;
            let value = bytes_field(&mut r).map_err(|e| format!("record {i} header value: {e}"))?;
            headers.push(Header {
                key: String::from_utf8(key).map_err(|_| format!("record {i} has a header key that is not UTF-8"))?,
                value,
            });
        }
        records.push(KafkaRecord {
            offset_delta,
            timestamp_ms: base_timestamp + timestamp_delta,
            key,
            value,
            headers,
        });
    }
    Ok(records)
}

/// Appends `records` in Kafka's record encoding to `out`, timestamps relative to
/// `base_timestamp`.
pub fn encode_records(records: &[KafkaRecord], base_timestamp: i64, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for r in records {
        body.clear();
        body.push(0); // attributes
        put_varint(&mut body, r.timestamp_ms - base_timestamp);
        put_varint(&mut body, r.offset_delta as i64);
        put_bytes_field(&mut body, r.key.as_deref());
        put_bytes_field(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i64);
        for h in &r.headers {
            put_bytes_field(&mut body, Some(h.key.as_bytes()));
            put_bytes_field(&mut body, h.value.as_deref());
        }
        put_varint(out, body.len() as i64);
        out.extend_from_slice(&body);
    }
}

/// Checks what a batch interceptor returned: `count` well-formed records whose offset
/// deltas increase and stay within `0..=max_offset_delta`. Returns the smallest and largest
/// timestamp delta (0, 0 for no records).
pub fn check_records(mut buf: &[u8], count: usize, max_offset_delta: i32) -> Result<(i64, i64), String> {
    let mut previous: Option<i64> = None;
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    for i in 0..count {
        let length = varint(&mut buf).map_err(|e| format!("record {i} length: {e}"))?;
        if length < 1 || buf.len() < length as usize {
            return Err(format!("record {i} claims {length} bytes, {} left", buf.len()));
        }
        let (record, rest) = buf.split_at(length as usize);
        buf = rest;
        let mut r = &record[1..];
        let timestamp_delta = varint(&mut r).map_err(|e| format!("record {i} timestamp delta: {e}"))?;
        let offset_delta = varint(&mut r).map_err(|e| format!("record {i} offset delta: {e}"))?;
        if offset_delta < 0 || offset_delta > max_offset_delta as i64 || previous.is_some_and(|p| offset_delta <= p) {
            return Err(format!(
                "record {i} has offset delta {offset_delta}; deltas must increase within 0..={max_offset_delta}"
            ));
        }
        previous = Some(offset_delta);
        skip_field(&mut r).map_err(|e| format!("record {i} key: {e}"))?;
        skip_field(&mut r).map_err(|e| format!("record {i} value: {e}"))?;
        let headers = varint(&mut r).map_err(|e| format!("record {i} header count: {e}"))?;
        for _ in 0..headers.max(0) {
            if !skip_field(&mut r).map_err(|e| format!("record {i} header key: {e}"))? {
                return Err(format!("record {i} has a null header key"));
            }
            skip_field(&mut r).map_err(|e| format!("record {i} header value: {e}"))?;
        }
        if !r.is_empty() {
            return Err(format!("record {i} has {} bytes after its headers", r.len()));
        }
        min_ts = min_ts.min(timestamp_delta);
        max_ts = max_ts.max(timestamp_delta);
    }
    if !buf.is_empty() {
        return Err(format!("{} bytes follow the {count} records", buf.len()));
    }
    Ok(if count == 0 { (0, 0) } else { (min_ts, max_ts) })
}

#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<i64, &'static str> {
    // Nearly every varint in a record is one or two bytes (lengths below 8 KiB, offset
    // deltas below 8192): those are decoded without a loop.
    let zigzag = |z: u64| ((z >> 1) as i64) ^ -((z & 1) as i64);
    let bytes: &[u8] = buf;
    match bytes {
        [first, rest @ ..] if *first < 0x80 => {
            *buf = rest;
            Ok(zigzag(*first as u64))
        }
        [first, second, rest @ ..] if *second < 0x80 => {
            *buf = rest;
            Ok(zigzag((*first & 0x7f) as u64 | (*second as u64) << 7))
        }
        _ => {
            let (value, size) = varint_long(bytes)?;
            *buf = &bytes[size..];
            Ok(value)
        }
    }
}

/// A varint of any size and the bytes it took (by value, so that the caller's cursor can
/// stay in a register on the fast path).
#[inline(never)]
fn varint_long(bytes: &[u8]) -> Result<(i64, usize), &'static str> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        value |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
        }
    }
    Err(if bytes.len() < 10 {
        "varint runs past the end"
    } else {
        "varint is too long"
    })
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Steps over a bytes field; false if it is null.
#[inline(always)]
fn skip_field(buf: &mut &[u8]) -> Result<bool, &'static str> {
    let len = varint(buf)?;
    if len < 0 {
        return Ok(false);
    }
    if buf.len() < len as usize {
        return Err("field runs past the record");
    }
    *buf = &buf[len as usize..];
    Ok(true)
}

fn bytes_field(buf: &mut &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let len = varint(buf)?;
    if len < 0 {
        return Ok(None);
    }
    if buf.len() < len as usize {
        return Err("field runs past the record");
    }
    let (field, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(Some(field.to_vec()))
}

fn put_bytes_field(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = vec![
            KafkaRecord {
                offset_delta: 0,
                timestamp_ms: 1000,
                key: Some(b"k".to_vec()),
                value: None,
                headers: vec![Header {
                    key: "h".into(),
                    value: Some(b"v".to_vec()),
                }],
            },
            KafkaRecord {
                offset_delta: 1,
                timestamp_ms: 999,
                key: None,
                value: Some(vec![7; 300]),
                headers: vec![],
            },
        ];
        let mut bytes = Vec::new();
        encode_records(&records, 990, &mut bytes);
        assert_eq!(
            format!("{:?}", decode_records(&bytes, 2, 990).unwrap()),
            format!("{records:?}")
        );
        assert!(decode_records(&bytes[..bytes.len() - 1], 2, 990).is_err());
        assert!(decode_records(&bytes, 3, 990).is_err());
        assert_eq!(check_records(&bytes, 2, 1), Ok((9, 10)));
        assert!(check_records(&bytes, 2, 0).unwrap_err().contains("offset delta 1"));
        assert!(check_records(&bytes, 1, 1).unwrap_err().contains("follow"));
        let mut reversed = Vec::new();
        encode_records(&[records[1].clone(), records[0].clone()], 990, &mut reversed);
        assert!(check_records(&reversed, 2, 1).unwrap_err().contains("must increase"));
    }

    #[test]
    fn varints_of_every_width_read_back() {
        let mut values = vec![0i64, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 1 << 20, -(1 << 40)];
        values.extend([i64::MAX, i64::MIN, i32::MAX as i64, i32::MIN as i64]);
        for v in values {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, v);
            bytes.push(0x55); // what follows must be left in place
            let mut cursor = bytes.as_slice();
            assert_eq!(varint(&mut cursor), Ok(v), "{v}");
            assert_eq!(cursor, &[0x55], "{v}");
            // Cut anywhere inside, it is an error, not a misread.
            for cut in 0..bytes.len() - 1 {
                assert_eq!(
                    varint(&mut &bytes[..cut]),
                    Err("varint runs past the end"),
                    "{v} cut at {cut}"
                );
            }
        }
        assert_eq!(varint(&mut [0xff; 11].as_slice()), Err("varint is too long"));
    }
}
