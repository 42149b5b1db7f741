//! Writing groups to `__consumer_offsets` and reading them back at start: classic groups as
//! Kafka's group metadata records ([`super::group_records`]), consumer-protocol groups as its
//! ConsumerGroup records ([`super::consumer_records`]), next to the committed offsets.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::consumer_group::Topics;
use super::group::{Group, GroupState, Member};
use super::{consumer_records, group_records, offsets, GroupCoordinator};
use crate::broker::now_ms;
use crate::partitions::PartitionManager;

impl GroupCoordinator {
    /// Replays `__consumer_offsets`: committed offsets, and the classic groups as their last
    /// metadata records left them (members come back with a fresh session; those that do
    /// not heartbeat within it are removed). Returns how many records were read.
    pub fn load(&self, partitions: &PartitionManager, topics: &dyn Topics) -> anyhow::Result<usize> {
        let records = self.offsets.load(partitions)?;
        let now = Instant::now();
        {
            let mut consumer = self.consumer_groups.lock();
            let session = Duration::from_millis(self.settings.consumer.session_timeout_ms.max(0) as u64);
            for id in self.offsets.groups_with_state() {
                let state = self.offsets.state_records(&id);
                if !state
                    .keys()
                    .any(|k| k.len() >= 2 && consumer_records::is_consumer_key(i16::from_be_bytes([k[0], k[1]])))
                {
                    continue;
                }
                let Some(mut group) = consumer_records::restore(&id, &state, session, now) else {
                    tracing::warn!(group = %id, "skipping a consumer group whose records cannot be decoded");
                    continue;
                };
                group.refresh_subscription(topics);
                tracing::info!(group = %id, epoch = group.epoch, state = group.state().name(), members = group.members.len(), "loaded consumer group");
                consumer.insert(id, group);
            }
        }
        let mut persisted = self.persisted.lock();
        let mut groups = self.groups.lock();
        let mut empty_since = self.empty_since.lock();
        for (id, bytes) in self.offsets.group_records() {
            let Some(record) = group_records::decode_value(bytes) else {
                tracing::warn!(group = %id, "skipping a group metadata record that cannot be decoded");
                continue;
            };
            let mut group = Group::new(&id);
            group.protocol_type = Some(record.protocol_type.clone());
            group.generation = record.generation;
            group.protocol = record.protocol.clone();
            group.leader = record.leader.clone();
            for m in &record.members {
                let mut member = Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: record
                        .protocol
                        .iter()
                        .map(|p| (p.clone(), m.subscription.clone()))
                        .collect(),
                    assignment: m.assignment.clone(),
                    join_waiter: None,
                    sync_waiter: None,
                    session_deadline: now,
                };
                member.touch(now);
                group.add_member(member);
            }
            group.state = if group.members.is_empty() {
                if record.state_timestamp >= 0 {
                    empty_since.insert(id.clone(), record.state_timestamp);
                }
                GroupState::Empty
            } else {
                GroupState::Stable
            };
            persisted.insert(id.clone(), signature(&group));
            tracing::info!(group = %id, generation = group.generation, state = group.state.name(), members = group.members.len(), "loaded group");
            groups.insert(id, group);
        }
        Ok(records)
    }

    /// Writes the metadata record of every classic group whose generation completed (Stable)
    /// or that became empty since its last record, and a tombstone for every group that is
    /// gone (deleted, expired, or now a consumer-protocol group).
    /// Nothing is written before `__consumer_offsets` exists (FindCoordinator creates it).
    pub fn persist_groups(&self, partitions: &PartitionManager) -> anyhow::Result<()> {
        if partitions.get(offsets::OFFSETS_TOPIC, 0).is_none() {
            return Ok(());
        }
        let mut persisted = self.persisted.lock();
        let mut writes: Vec<(String, Option<(String, bytes::Bytes)>)> = Vec::new();
        {
            let groups = self.groups.lock();
            let empty_since = self.empty_since.lock();
            for group in groups.values() {
                if !matches!(group.state, GroupState::Stable | GroupState::Empty) || group.protocol_type.is_none() {
                    continue;
                }
                let sig = signature(group);
                if persisted.get(&group.id) == Some(&sig) {
                    continue;
                }
                let stamp = match group.state {
                    GroupState::Empty => empty_since.get(&group.id).copied().unwrap_or_else(now_ms),
                    _ => now_ms(),
                };
                writes.push((
                    group.id.clone(),
                    Some((sig, group_records::encode_value(&record_of(group, stamp)))),
                ));
            }
            for id in persisted.keys() {
                if !groups.contains_key(id) {
                    writes.push((id.clone(), None));
                }
            }
        }
        for (id, write) in writes {
            match write {
                Some((sig, value)) => {
                    self.offsets
                        .store_group(partitions, &id, Some(value))
                        .with_context(|| format!("writing the metadata record of group {id}"))?;
                    persisted.insert(id, sig);
                }
                None => {
                    if self.offsets.has_group_record(&id) {
                        self.offsets
                            .store_group(partitions, &id, None)
                            .with_context(|| format!("writing the tombstone of group {id}"))?;
                    }
                    persisted.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Writes the records of the consumer-protocol groups that changed since they were last
    /// written: the records that differ, and tombstones for those that no longer exist (a
    /// member or the whole group gone). Nothing is written before `__consumer_offsets` exists.
    pub fn persist_consumer_groups(&self, partitions: &PartitionManager) -> anyhow::Result<()> {
        if partitions.get(offsets::OFFSETS_TOPIC, 0).is_none() {
            return Ok(());
        }
        let _order = self.consumer_persist.lock();
        let dirty: Vec<String> = std::mem::take(&mut *self.consumer_dirty.lock()).into_iter().collect();
        for (i, id) in dirty.iter().enumerate() {
            let now_records = self
                .consumer_groups
                .lock()
                .get(id)
                .map(consumer_records::records_of)
                .unwrap_or_default();
            let written: BTreeMap<bytes::Bytes, bytes::Bytes> = self
                .offsets
                .state_records(id)
                .into_iter()
                .filter(|(k, _)| k.len() >= 2 && consumer_records::is_consumer_key(i16::from_be_bytes([k[0], k[1]])))
                .collect();
            // Upserts in key order (group, member, target, current assignment), then
            // tombstones in reverse, the order Kafka writes them in.
            let mut writes: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = now_records
                .iter()
                .filter(|(k, v)| written.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            writes.extend(
                written
                    .keys()
                    .rev()
                    .filter(|k| !now_records.contains_key(*k))
                    .map(|k| (k.clone(), None)),
            );
            if let Err(e) = self.offsets.store_state(partitions, id, writes) {
                self.consumer_dirty.lock().extend(dirty[i..].iter().cloned());
                return Err(e.context(format!("writing the records of consumer group {id}")));
            }
        }
        Ok(())
    }
}

/// What identifies a group's metadata record: generation, state and members.
fn signature(group: &Group) -> String {
    let mut ids: Vec<&str> = group.members.values().map(|m| m.id.as_str()).collect();
    ids.sort();
    format!("{}/{}/{}", group.generation, group.state.name(), ids.join(","))
}

fn record_of(group: &Group, state_timestamp: i64) -> group_records::GroupRecord {
    let protocol = group.protocol.clone().unwrap_or_default();
    group_records::GroupRecord {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol.clone().filter(|_| !group.members.is_empty()),
        leader: group.leader.clone().filter(|_| !group.members.is_empty()),
        state_timestamp,
        members: group
            .members
            .values()
            .map(|m| group_records::MemberRecord {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}
