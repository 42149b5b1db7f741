//! Kafka's records of consumer-protocol (KIP-848) groups in `__consumer_offsets`, so these
//! groups survive a restart as in Kafka: the group epoch (key version 3), each member's
//! metadata (5), the target assignment epoch (6) and each member's target (7), and each
//! member's current assignment with its epochs and state (8). Keys are non-flexible
//! (version, group id, member id); values are version 0 in Kafka's flexible encoding.
//! Kafka's partition metadata record (4) is not written: the subscribed topics are read
//! from the metadata image at start.

use super::wire::{get_i32, get_string, put_string};
use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer_group::{ConsumerGroup, ConsumerMember, MemberState, TopicRegex};

pub const GROUP_METADATA: i16 = 3;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_METADATA: i16 = 6;
pub const TARGET_MEMBER: i16 = 7;
pub const CURRENT_ASSIGNMENT: i16 = 8;

/// Is this key version one of the records here?
pub fn is_consumer_key(version: i16) -> bool {
    matches!(version, 3..=8)
}

/// The group id of any group record key (versions 2-8): it follows the version.
pub fn group_of_key(key: &Bytes) -> Option<String> {
    let mut buf = key.clone();
    if buf.remaining() < 2 {
        return None;
    }
    buf.get_i16();
    get_string(&mut buf)
}

fn key(version: i16, group: &str, member: Option<&str>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    put_string(&mut buf, group);
    if let Some(member) = member {
        put_string(&mut buf, member);
    }
    buf.freeze()
}

/// Every record that describes `group` now, by key.
pub fn records_of(group: &ConsumerGroup) -> BTreeMap<Bytes, Bytes> {
    let mut out = BTreeMap::new();
    let g = group.id.as_str();
    out.insert(key(GROUP_METADATA, g, None), value(|b| b.put_i32(group.epoch)));
    out.insert(
        key(TARGET_METADATA, g, None),
        value(|b| b.put_i32(group.assignment_epoch)),
    );
    for m in group.members.values() {
        out.insert(
            key(MEMBER_METADATA, g, Some(&m.id)),
            value(|b| {
                put_compact_nullable(b, m.instance_id.as_deref());
                put_compact_nullable(b, m.rack_id.as_deref());
                put_compact(b, &m.client_id);
                put_compact(b, &m.client_host);
                put_varint(b, m.subscribed_topic_names.len() as u32 + 1);
                for name in &m.subscribed_topic_names {
                    put_compact(b, name);
                }
                put_compact_nullable(b, m.subscribed_topic_regex.as_ref().map(|r| r.pattern.as_str()));
                b.put_i32(m.rebalance_timeout_ms);
                put_compact_nullable(b, m.server_assignor.as_deref());
            }),
        );
        let target = group.target.get(&m.id).cloned().unwrap_or_default();
        out.insert(
            key(TARGET_MEMBER, g, Some(&m.id)),
            value(|b| put_partitions(b, &target)),
        );
        out.insert(
            key(CURRENT_ASSIGNMENT, g, Some(&m.id)),
            value(|b| {
                b.put_i32(m.epoch);
                b.put_i32(m.previous_epoch);
                b.put_i8(match m.state {
                    MemberState::Stable => 0,
                    MemberState::UnrevokedPartitions => 1,
                    MemberState::UnreleasedPartitions => 2,
                });
                put_partitions(b, &m.assigned);
                put_partitions(b, &m.pending_revocation);
            }),
        );
    }
    out
}

/// Rebuilds a group from its records (keys with their latest values). Members get a fresh
/// session from `now`; the caller recomputes the subscribed topics. `None` if a record
/// cannot be read.
pub fn restore(
    id: &str,
    records: &BTreeMap<Bytes, Bytes>,
    session_timeout: std::time::Duration,
    now: Instant,
) -> Option<ConsumerGroup> {
    let mut group = ConsumerGroup::new(id);
    let mut members: BTreeMap<String, ConsumerMember> = BTreeMap::new();
    for (k, v) in records {
        let mut kb = k.clone();
        let version = kb.get_i16();
        if !is_consumer_key(version) {
            continue;
        }
        get_string(&mut kb)?;
        let member_id = if kb.has_remaining() {
            Some(get_string(&mut kb)?)
        } else {
            None
        };
        let mut vb = v.clone();
        if vb.remaining() < 2 || vb.get_i16() != 0 {
            return None;
        }
        let new_member = |id: &String| {
            let mut m = ConsumerMember::new(id.clone(), now);
            m.session_deadline = now + session_timeout;
            m
        };
        match (version, &member_id) {
            (GROUP_METADATA, None) => group.epoch = get_i32(&mut vb)?,
            (TARGET_METADATA, None) => group.assignment_epoch = get_i32(&mut vb)?,
            (MEMBER_METADATA, Some(mid)) => {
                let m = members.entry(mid.clone()).or_insert_with(|| new_member(mid));
                m.instance_id = get_compact_nullable(&mut vb)?;
                m.rack_id = get_compact_nullable(&mut vb)?;
                m.client_id = get_compact_nullable(&mut vb)??;
                m.client_host = get_compact_nullable(&mut vb)??;
                let n = get_varint(&mut vb)?.checked_sub(1)?;
                m.subscribed_topic_names = (0..n)
                    .map(|_| get_compact_nullable(&mut vb).flatten())
                    .collect::<Option<Vec<_>>>()?;
                m.subscribed_topic_regex = get_compact_nullable(&mut vb)?.and_then(|p| TopicRegex::new(&p).ok());
                m.rebalance_timeout_ms = get_i32(&mut vb)?;
                m.server_assignor = get_compact_nullable(&mut vb)?;
            }
            (TARGET_MEMBER, Some(mid)) => {
                group.target.insert(mid.clone(), get_partitions(&mut vb)?);
            }
            (CURRENT_ASSIGNMENT, Some(mid)) => {
                let m = members.entry(mid.clone()).or_insert_with(|| new_member(mid));
                m.epoch = get_i32(&mut vb)?;
                m.previous_epoch = get_i32(&mut vb)?;
                m.state = match vb.has_remaining().then(|| vb.get_i8())? {
                    1 => MemberState::UnrevokedPartitions,
                    2 => MemberState::UnreleasedPartitions,
                    _ => MemberState::Stable,
                };
                m.assigned = get_partitions(&mut vb)?;
                m.pending_revocation = get_partitions(&mut vb)?;
            }
            _ => {}
        }
    }
    for (id, m) in members {
        if let Some(instance) = &m.instance_id {
            group.static_members.insert(instance.clone(), id.clone());
        }
        group.members.insert(id, m);
    }
    group.target.retain(|id, _| group.members.contains_key(id));
    Some(group)
}

/// A flexible version-0 value: the version, the fields, no tagged fields.
fn value(fields: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    fields(&mut buf);
    put_varint(&mut buf, 0);
    buf.freeze()
}

fn put_partitions(buf: &mut BytesMut, a: &Assignment) {
    put_varint(buf, a.len() as u32 + 1);
    for (topic, partitions) in a {
        buf.put_slice(topic.as_bytes());
        put_varint(buf, partitions.len() as u32 + 1);
        for p in partitions {
            buf.put_i32(*p);
        }
        put_varint(buf, 0); // tagged fields of the struct
    }
}

fn get_partitions(buf: &mut Bytes) -> Option<Assignment> {
    let n = get_varint(buf)?.checked_sub(1)?;
    let mut out = Assignment::new();
    for _ in 0..n {
        if buf.remaining() < 16 {
            return None;
        }
        let topic = Uuid::from_slice(&buf.split_to(16)).ok()?;
        let count = get_varint(buf)?.checked_sub(1)?;
        let mut partitions = std::collections::BTreeSet::new();
        for _ in 0..count {
            partitions.insert(get_i32(buf)?);
        }
        skip_tagged(buf)?;
        out.insert(topic, partitions);
    }
    Some(out)
}

fn put_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn get_varint(buf: &mut Bytes) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        v |= ((b & 0x7f) as u32) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn skip_tagged(buf: &mut Bytes) -> Option<()> {
    let n = get_varint(buf)?;
    for _ in 0..n {
        get_varint(buf)?;
        let size = get_varint(buf)? as usize;
        if buf.remaining() < size {
            return None;
        }
        buf.advance(size);
    }
    Some(())
}

fn put_compact(buf: &mut BytesMut, s: &str) {
    put_varint(buf, s.len() as u32 + 1);
    buf.put_slice(s.as_bytes());
}

fn put_compact_nullable(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact(buf, s),
        None => put_varint(buf, 0),
    }
}

/// A compact nullable string: `Some(None)` for null, `None` if malformed.
fn get_compact_nullable(buf: &mut Bytes) -> Option<Option<String>> {
    let n = get_varint(buf)?;
    if n == 0 {
        return Some(None);
    }
    let len = (n - 1) as usize;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok().map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_group_round_trips_through_its_records() {
        let now = Instant::now();
        let t = Uuid::from_bytes([5; 16]);
        let mut g = ConsumerGroup::new("g");
        g.epoch = 7;
        g.assignment_epoch = 6;
        let mut m = ConsumerMember::new("m-1".into(), now);
        m.instance_id = Some("i".into());
        m.client_id = "c".into();
        m.client_host = "/127.0.0.1".into();
        m.subscribed_topic_names = vec!["a".into(), "b".into()];
        m.subscribed_topic_regex = Some(TopicRegex::new("x.*").unwrap());
        m.rebalance_timeout_ms = 30_000;
        m.server_assignor = Some("range".into());
        m.epoch = 6;
        m.previous_epoch = 5;
        m.state = MemberState::UnrevokedPartitions;
        m.assigned = Assignment::from([(t, BTreeSet::from([0, 2]))]);
        m.pending_revocation = Assignment::from([(t, BTreeSet::from([1]))]);
        g.members.insert(m.id.clone(), m);
        g.static_members.insert("i".into(), "m-1".into());
        g.target
            .insert("m-1".into(), Assignment::from([(t, BTreeSet::from([0, 2, 3]))]));

        let records = records_of(&g);
        assert_eq!(records.len(), 5);
        // The group epoch record: key version 3 and the group id; value version 0, epoch 7,
        // no tagged fields.
        let epoch_key = key(GROUP_METADATA, "g", None);
        assert_eq!(&epoch_key[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(&records[&epoch_key][..], &[0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(group_of_key(&epoch_key).as_deref(), Some("g"));

        let back = restore("g", &records, Duration::from_secs(45), now).unwrap();
        assert_eq!((back.epoch, back.assignment_epoch), (7, 6));
        assert_eq!(back.static_members, g.static_members);
        assert_eq!(back.target, g.target);
        let (a, b) = (&g.members["m-1"], &back.members["m-1"]);
        assert_eq!(
            (
                &a.instance_id,
                &a.client_id,
                &a.subscribed_topic_names,
                a.rebalance_timeout_ms,
                &a.server_assignor
            ),
            (
                &b.instance_id,
                &b.client_id,
                &b.subscribed_topic_names,
                b.rebalance_timeout_ms,
                &b.server_assignor
            )
        );
        assert_eq!(
            b.subscribed_topic_regex.as_ref().map(|r| r.pattern.as_str()),
            Some("x.*")
        );
        assert_eq!(
            (b.epoch, b.previous_epoch, b.state),
            (6, 5, MemberState::UnrevokedPartitions)
        );
        assert_eq!(
            (&b.assigned, &b.pending_revocation),
            (&a.assigned, &a.pending_revocation)
        );
        assert_eq!(records_of(&back), records);
    }
}
