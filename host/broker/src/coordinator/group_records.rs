//! Kafka's group metadata records in `__consumer_offsets`: key version 2 (the group id) and
//! `GroupMetadataValue` (written as version 3, read in versions 0-3), so a classic group's
//! protocol, generation, leader and members survive a restart as in Kafka. A null value
//! (tombstone) deletes the group.

use super::wire::{get_bytes, get_i32, get_i64, get_nullable, get_string, put_bytes, put_nullable, put_string};
use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const GROUP_KEY_VERSION: i16 = 2;
const VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state (ms since the epoch).
    pub state_timestamp: i64,
    pub members: Vec<MemberRecord>,
}

pub fn encode_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

pub fn encode_value(g: &GroupRecord) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    put_string(&mut buf, &g.protocol_type);
    buf.put_i32(g.generation);
    put_nullable(&mut buf, g.protocol.as_deref());
    put_nullable(&mut buf, g.leader.as_deref());
    buf.put_i64(g.state_timestamp);
    buf.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_string(&mut buf, &m.member_id);
        put_nullable(&mut buf, m.instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

pub fn decode_value(mut buf: Bytes) -> Option<GroupRecord> {
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = get_string(&mut buf)?;
    let generation = get_i32(&mut buf)?;
    let protocol = get_nullable(&mut buf)?;
    let leader = get_nullable(&mut buf)?;
    let state_timestamp = if version >= 2 { get_i64(&mut buf)? } else { -1 };
    let count = get_i32(&mut buf)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_string(&mut buf)?;
        let instance_id = if version >= 3 { get_nullable(&mut buf)? } else { None };
        let client_id = get_string(&mut buf)?;
        let client_host = get_string(&mut buf)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut buf)? } else { -1 };
        let session_timeout_ms = get_i32(&mut buf)?;
        let rebalance_timeout_ms = if version >= 1 {
            rebalance_timeout_ms
        } else {
            session_timeout_ms
        };
        let subscription = get_bytes(&mut buf)?;
        let assignment = get_bytes(&mut buf)?;
        members.push(MemberRecord {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupRecord {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_records_round_trip_in_kafkas_layout() {
        assert_eq!(&encode_key("g")[..], &[0, 2, 0, 1, b'g']);
        let record = GroupRecord {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 1234,
            members: vec![MemberRecord {
                member_id: "m-1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"as"),
            }],
        };
        let bytes = encode_value(&record);
        // version 3, then protocol type "consumer".
        assert_eq!(
            &bytes[..12],
            &[0, 3, 0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r']
        );
        assert_eq!(decode_value(bytes), Some(record));
        let empty = GroupRecord {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            state_timestamp: 99,
            members: vec![],
        };
        assert_eq!(decode_value(encode_value(&empty)), Some(empty));
    }
}
