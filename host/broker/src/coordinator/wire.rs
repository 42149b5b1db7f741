//! Kafka's classic encoding of the fields inside `__consumer_offsets` keys and values:
//! big-endian integers, strings with an i16 length (-1: null) and bytes with an i32 length.
//! Readers answer `None` for a truncated or malformed field, so a bad record is skipped,
//! never misread.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

pub fn put_nullable(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

pub fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

pub fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

pub fn get_i64(buf: &mut Bytes) -> Option<i64> {
    (buf.remaining() >= 8).then(|| buf.get_i64())
}

/// A nullable string: `Some(None)` for null, `None` if malformed.
pub fn get_nullable(buf: &mut Bytes) -> Option<Option<String>> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(None);
    }
    if buf.remaining() < len as usize {
        return None;
    }
    String::from_utf8(buf.split_to(len as usize).to_vec()).ok().map(Some)
}

/// A string that must not be null.
pub fn get_string(buf: &mut Bytes) -> Option<String> {
    get_nullable(buf)?
}

/// Bytes with an i32 length; null reads as empty.
pub fn get_bytes(buf: &mut Bytes) -> Option<Bytes> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Some(Bytes::new());
    }
    (buf.remaining() >= len as usize).then(|| buf.split_to(len as usize))
}
