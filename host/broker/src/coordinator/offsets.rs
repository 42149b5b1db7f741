//! Committed offsets, kept in memory and persisted as Kafka does: records in the internal
//! compacted topic `__consumer_offsets`, with Kafka's own key and value layouts, so the
//! topic reads the same as Kafka's. A group lives on partition `abs(hash(group)) % N`. The
//! same topic holds the records of each group's state (a classic group's metadata record,
//! [`super::group_records`]; a consumer-protocol group's records,
//! [`super::consumer_records`]), kept here as bytes by key and replayed with the offsets.
//!
//! Compaction here is a rewrite: when a partition has accumulated many more records than
//! live offsets, the live offsets are appended again and the log start moves past the old
//! ones (DeleteRecords). A crash between the two leaves old records followed by newer
//! copies, which replay resolves the same way.

use super::wire::{get_string, put_string};
use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;

use super::{consumer_records, group_records};
use crate::broker::now_ms;
use crate::partitions::PartitionManager;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Records a partition may gain after its last rewrite before it is rewritten again.
const REWRITE_RECORDS_MIN: u64 = 50_000;
const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

type GroupOffsets = HashMap<(String, i32), Committed>;

pub struct OffsetStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, GroupOffsets>,
    /// The latest value of every group state record (key versions 2-8), by group and key.
    group_state: HashMap<String, BTreeMap<Bytes, Bytes>>,
    records_since_rewrite: HashMap<i32, u64>,
    partitions: i32,
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`, with Java's String hash.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

impl OffsetStore {
    pub fn new(partitions: i32) -> OffsetStore {
        OffsetStore {
            inner: Mutex::new(Inner {
                partitions,
                ..Inner::default()
            }),
        }
    }

    pub fn partitions(&self) -> i32 {
        self.inner.lock().partitions
    }

    /// Rebuilds the committed offsets from `__consumer_offsets`.
    pub fn load(&self, partitions: &PartitionManager) -> anyhow::Result<usize> {
        let mut inner = self.inner.lock();
        let count = inner.partitions;
        let mut records = 0;
        for index in 0..count {
            let Some(partition) = partitions.get(OFFSETS_TOPIC, index) else {
                continue;
            };
            let log = partition.log.read();
            let mut offset = log.log_start_offset();
            while offset < log.high_watermark() {
                let bytes = log.read(offset, 1 << 20, log.high_watermark(), true)?;
                if bytes.is_empty() {
                    break;
                }
                let mut buf = bytes.clone();
                for set in RecordBatchDecoder::decode_all(&mut buf)? {
                    for record in set.records {
                        offset = record.offset + 1;
                        records += 1;
                        let Some(key) = record.key.clone() else { continue };
                        let version = if key.len() >= 2 {
                            i16::from_be_bytes([key[0], key[1]])
                        } else {
                            -1
                        };
                        if version == group_records::GROUP_KEY_VERSION || consumer_records::is_consumer_key(version) {
                            if let Some(group) = consumer_records::group_of_key(&key) {
                                apply_state(&mut inner.group_state, group, key, record.value.clone());
                            }
                        } else if let Some((group, topic, p)) = decode_key(key) {
                            let value = record.value.as_ref().and_then(|v| decode_value(v.clone()));
                            apply(&mut inner.groups, group, topic, p, value);
                        }
                    }
                }
            }
        }
        Ok(records)
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.inner
            .lock()
            .groups
            .get(group)?
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let inner = self.inner.lock();
        let mut out: Vec<_> = inner
            .groups
            .get(group)
            .map(|offsets| offsets.iter().map(|((t, p), c)| (t.clone(), *p, c.clone())).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    pub fn groups(&self) -> Vec<String> {
        self.inner.lock().groups.keys().cloned().collect()
    }

    /// Every classic group's latest group metadata record.
    pub fn group_records(&self) -> Vec<(String, Bytes)> {
        let inner = self.inner.lock();
        inner
            .group_state
            .iter()
            .filter_map(|(g, records)| {
                records
                    .get(&group_records::encode_key(g))
                    .map(|v| (g.clone(), v.clone()))
            })
            .collect()
    }

    pub fn has_group_record(&self, group: &str) -> bool {
        let inner = self.inner.lock();
        inner
            .group_state
            .get(group)
            .is_some_and(|r| r.contains_key(&group_records::encode_key(group)))
    }

    /// Durably records a classic group's metadata (`None`: a tombstone that deletes it).
    pub fn store_group(&self, partitions: &PartitionManager, group: &str, value: Option<Bytes>) -> anyhow::Result<()> {
        self.store_state(partitions, group, vec![(group_records::encode_key(group), value)])
    }

    /// The latest group state records of a group, by key.
    pub fn state_records(&self, group: &str) -> BTreeMap<Bytes, Bytes> {
        self.inner.lock().group_state.get(group).cloned().unwrap_or_default()
    }

    /// Groups that have group state records.
    pub fn groups_with_state(&self) -> Vec<String> {
        self.inner.lock().group_state.keys().cloned().collect()
    }

    /// Durably records a group's state records in one batch (`None`: a tombstone).
    pub fn store_state(
        &self,
        partitions: &PartitionManager,
        group: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let index = partition_for(group, inner.partitions);
        append(partitions, index, &records)?;
        let count = records.len() as u64;
        for (key, value) in records {
            apply_state(&mut inner.group_state, group.to_string(), key, value);
        }
        *inner.records_since_rewrite.entry(index).or_default() += count;
        self.maybe_rewrite(&mut inner, partitions, index)
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.inner.lock().groups.get(group).is_some_and(|g| !g.is_empty())
    }

    /// Durably records offsets (`None` deletes one) and then makes them visible.
    pub fn commit(
        &self,
        partitions: &PartitionManager,
        group: &str,
        entries: Vec<(String, i32, Option<Committed>)>,
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let index = partition_for(group, inner.partitions);
        let records: Vec<(Bytes, Option<Bytes>)> = entries
            .iter()
            .map(|(topic, p, c)| (encode_key(group, topic, *p), c.as_ref().map(encode_value)))
            .collect();
        append(partitions, index, &records)?;
        let count = records.len() as u64;
        for (topic, p, committed) in entries {
            apply(&mut inner.groups, group.to_string(), topic, p, committed);
        }
        *inner.records_since_rewrite.entry(index).or_default() += count;
        self.maybe_rewrite(&mut inner, partitions, index)
    }

    fn maybe_rewrite(&self, inner: &mut Inner, partitions: &PartitionManager, index: i32) -> anyhow::Result<()> {
        let since = inner.records_since_rewrite.get(&index).copied().unwrap_or(0);
        let mut live: Vec<(Bytes, Option<Bytes>)> = inner
            .group_state
            .iter()
            .filter(|(g, _)| partition_for(g, inner.partitions) == index)
            .flat_map(|(_, records)| records.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            .collect();
        live.extend(
            inner
                .groups
                .iter()
                .filter(|(g, _)| partition_for(g, inner.partitions) == index)
                .flat_map(|(g, offsets)| {
                    offsets
                        .iter()
                        .map(move |((t, p), c)| (encode_key(g, t, *p), Some(encode_value(c))))
                }),
        );
        if since < REWRITE_RECORDS_MIN || since < 4 * live.len() as u64 {
            return Ok(());
        }
        let Some(partition) = partitions.get(OFFSETS_TOPIC, index) else {
            return Ok(());
        };
        let start = partition.log.read().log_end_offset();
        for chunk in live.chunks(1000) {
            append(partitions, index, chunk)?;
        }
        let mut log = partition.log.write();
        log.delete_records_before(start, now_ms())?;
        inner.records_since_rewrite.insert(index, 0);
        tracing::info!(
            partition = index,
            live = live.len(),
            log_start = start,
            "rewrote committed offsets"
        );
        Ok(())
    }
}

fn apply(
    groups: &mut HashMap<String, GroupOffsets>,
    group: String,
    topic: String,
    partition: i32,
    value: Option<Committed>,
) {
    match value {
        Some(committed) => {
            groups.entry(group).or_default().insert((topic, partition), committed);
        }
        None => {
            if let Some(offsets) = groups.get_mut(&group) {
                offsets.remove(&(topic, partition));
                if offsets.is_empty() {
                    groups.remove(&group);
                }
            }
        }
    }
}

fn apply_state(state: &mut HashMap<String, BTreeMap<Bytes, Bytes>>, group: String, key: Bytes, value: Option<Bytes>) {
    match value {
        Some(value) => {
            state.entry(group).or_default().insert(key, value);
        }
        None => {
            if let Some(records) = state.get_mut(&group) {
                records.remove(&key);
                if records.is_empty() {
                    state.remove(&group);
                }
            }
        }
    }
}

fn append(partitions: &PartitionManager, index: i32, records: &[(Bytes, Option<Bytes>)]) -> anyhow::Result<()> {
    let partition = partitions
        .get(OFFSETS_TOPIC, index)
        .ok_or_else(|| anyhow::anyhow!("{OFFSETS_TOPIC}-{index} is not hosted here"))?;
    let now = now_ms();
    let batch: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &batch,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    let mut log = partition.log.write();
    log.append(&buf, now, 0)?;
    partition.advance_high_watermark(&mut log);
    Ok(())
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

fn decode_key(mut buf: Bytes) -> Option<(String, String, i32)> {
    if buf.remaining() < 2 {
        return None;
    }
    // Versions 0 and 1 are offset commits; 2 is group metadata (see `group_records`).
    if !matches!(buf.get_i16(), 0 | 1) {
        return None;
    }
    let group = get_string(&mut buf)?;
    let topic = get_string(&mut buf)?;
    (buf.remaining() >= 4).then(|| (group, topic, buf.get_i32()))
}

fn encode_value(c: &Committed) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(c.offset);
    buf.put_i32(c.leader_epoch);
    put_string(&mut buf, &c.metadata);
    buf.put_i64(c.commit_timestamp);
    buf.freeze()
}

fn decode_value(mut buf: Bytes) -> Option<Committed> {
    if buf.remaining() < 10 {
        return None;
    }
    let version = buf.get_i16();
    let offset = buf.get_i64();
    let leader_epoch = if version >= 3 && buf.remaining() >= 4 {
        buf.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut buf)?;
    let commit_timestamp = if buf.remaining() >= 8 { buf.get_i64() } else { -1 };
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip_in_kafkas_layout() {
        let key = encode_key("g", "orders", 7);
        assert_eq!(
            &key[..],
            &[0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 7]
        );
        assert_eq!(decode_key(key), Some(("g".into(), "orders".into(), 7)));
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 99,
        };
        assert_eq!(decode_value(encode_value(&c)), Some(c));
    }

    #[test]
    fn partition_matches_javas_string_hash() {
        // "my-group".hashCode() == -1906497762 in Java; abs % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
    }
}
