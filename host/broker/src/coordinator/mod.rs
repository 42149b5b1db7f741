//! The group coordinator: groups of the classic protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), groups of the consumer protocol (KIP-848, ConsumerGroupHeartbeat) and
//! committed offsets.
//!
//! - [`group`]: one classic group's state machine (members, generations, rebalances);
//!   [`group_records`]: its metadata records in `__consumer_offsets`, written when a
//!   generation completes or the group empties and replayed at start, as Kafka does;
//!   `persist.rs` writes and replays both kinds of group records.
//! - [`consumer_group`]: one consumer-protocol group (epochs, target assignment,
//!   reconciliation); [`assignor`]: its server-side assignors.
//! - [`offsets`]: committed offsets and their persistence in `__consumer_offsets`;
//!   [`retention`]: which of them expire (`offsets.retention.minutes`).
//!
//! A group id belongs to one protocol at a time: a classic JoinGroup on a consumer group
//! with members fails with INCONSISTENT_GROUP_PROTOCOL, a ConsumerGroupHeartbeat on a
//! classic group with members with GROUP_ID_NOT_FOUND (Kafka with online migration
//! disabled); an empty group of either kind is converted. Both kinds of groups are written
//! to `__consumer_offsets` as Kafka's records ([`group_records`], [`consumer_records`]) and
//! replayed at start.
//!
//! Handlers translate wire messages to the plain calls here. Waiting (a JoinGroup held
//! until the rebalance completes, a SyncGroup until the leader assigns) happens outside
//! the lock on oneshot channels; [`GroupCoordinator::tick`] drives session and rebalance
//! timeouts. Lock order: `groups`, then `consumer_groups`.

pub mod assignor;
pub mod consumer_group;
pub mod consumer_records;
pub mod group;
pub mod group_records;
pub mod offsets;
mod persist;
pub mod retention;
mod wire;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use consumer_group::{ConsumerGroup, ConsumerMember, ConsumerSettings, Heartbeat, HeartbeatAnswer, Refusal, Topics};
use group::{Group, GroupState, Member};
pub use group::{JoinOutcome, SyncOutcome};
use offsets::{Committed, OffsetStore};
use retention::Expiry;

use crate::broker::now_ms;
use crate::config::BrokerConfig;
use crate::partitions::PartitionManager;

#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub consumer: ConsumerSettings,
}

impl GroupSettings {
    /// The group settings of `config`, with Kafka's checks of the consumer protocol's
    /// session timeout and heartbeat interval against their bounds.
    pub fn from_config(config: &BrokerConfig) -> anyhow::Result<GroupSettings> {
        let int = |name: &str| config.i64(name) as i32;
        let bounded = |name: &str, min: &str, max: &str| -> anyhow::Result<i32> {
            let (v, lo, hi) = (int(name), int(min), int(max));
            anyhow::ensure!(
                lo <= v && v <= hi,
                "{name} ({v}) must be between {min} ({lo}) and {max} ({hi})"
            );
            Ok(v)
        };
        let session_timeout_ms = bounded(
            "group.consumer.session.timeout.ms",
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        )?;
        let heartbeat_interval_ms = bounded(
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        )?;
        anyhow::ensure!(
            heartbeat_interval_ms < session_timeout_ms,
            "group.consumer.heartbeat.interval.ms ({heartbeat_interval_ms}) must be lower than \
             group.consumer.session.timeout.ms ({session_timeout_ms})"
        );
        let mut assignors = Vec::new();
        for name in config
            .get("group.consumer.assignors")
            .split(',')
            .filter(|n| !n.trim().is_empty())
        {
            let known = assignor::canonical_name(name).ok_or_else(|| {
                anyhow::anyhow!("group.consumer.assignors: unknown assignor {name:?} (known: uniform, range)")
            })?;
            if !assignors.contains(&known) {
                assignors.push(known);
            }
        }
        anyhow::ensure!(!assignors.is_empty(), "group.consumer.assignors names no assignor");
        Ok(GroupSettings {
            initial_rebalance_delay: Duration::from_millis(config.i64("group.initial.rebalance.delay.ms").max(0) as u64),
            min_session_timeout_ms: int("group.min.session.timeout.ms"),
            max_session_timeout_ms: int("group.max.session.timeout.ms"),
            consumer: ConsumerSettings {
                session_timeout_ms,
                heartbeat_interval_ms,
                assignors,
                max_size: config.i64("group.consumer.max.size").max(1) as usize,
            },
        })
    }
}

pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id is first given one (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// A member as DescribeGroups shows it.
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

enum Step {
    Now(JoinOutcome),
    Wait(oneshot::Receiver<JoinOutcome>),
}

/// A consumer-protocol group as ConsumerGroupDescribe shows it.
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: &'static str,
    /// Each member with its target assignment.
    pub members: Vec<(ConsumerMember, assignor::Assignment)>,
}

pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    consumer_groups: Mutex<HashMap<String, ConsumerGroup>>,
    /// When (wall clock, ms) each group without members became empty, for offset retention.
    empty_since: Mutex<HashMap<String, i64>>,
    /// What was last written as each classic group's metadata record (a signature of its
    /// generation, state and members). Lock order: `persisted` before `groups`.
    persisted: Mutex<HashMap<String, String>>,
    /// Consumer-protocol groups changed since their records were last written.
    consumer_dirty: Mutex<HashSet<String>>,
    /// Held while consumer group records are written, so that they are written in order.
    /// Lock order: `consumer_persist`, then `consumer_groups`, then `consumer_dirty`.
    consumer_persist: Mutex<()>,
    pub offsets: OffsetStore,
    settings: GroupSettings,
}

/// The protocol type of a group known only by its committed offsets (as Kafka reports it).
const OFFSETS_ONLY_PROTOCOL_TYPE: &str = "";

impl GroupCoordinator {
    pub fn new(settings: GroupSettings, offsets_partitions: i32) -> GroupCoordinator {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            consumer_groups: Mutex::new(HashMap::new()),
            empty_since: Mutex::new(HashMap::new()),
            persisted: Mutex::new(HashMap::new()),
            consumer_dirty: Mutex::new(HashSet::new()),
            consumer_persist: Mutex::new(()),
            offsets: OffsetStore::new(offsets_partitions),
            settings,
        }
    }

    pub async fn join(&self, request: JoinRequest) -> JoinOutcome {
        let step = {
            let mut groups = self.groups.lock();
            self.join_locked(&mut groups, request, Instant::now())
        };
        match step {
            Step::Now(outcome) => outcome,
            Step::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinOutcome::error(ResponseError::UnknownMemberId, "")),
        }
    }

    fn join_locked(&self, groups: &mut HashMap<String, Group>, req: JoinRequest, now: Instant) -> Step {
        let fail = |e: ResponseError| Step::Now(JoinOutcome::error(e, &req.member_id));
        if req.group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId);
        }
        {
            let mut consumer = self.consumer_groups.lock();
            if let Some(group) = consumer.get(&req.group_id) {
                if !group.members.is_empty() {
                    return fail(ResponseError::InconsistentGroupProtocol);
                }
                consumer.remove(&req.group_id);
                self.consumer_dirty.lock().insert(req.group_id.clone());
                tracing::info!(group = %req.group_id, "converted the empty consumer group to a classic group");
            }
        }
        if req.session_timeout_ms < self.settings.min_session_timeout_ms
            || req.session_timeout_ms > self.settings.max_session_timeout_ms
        {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        if !groups.contains_key(&req.group_id) && !req.member_id.is_empty() {
            return fail(ResponseError::UnknownMemberId);
        }
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        if group.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if !group.supports(&req.protocol_type, &req.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let (tx, rx) = oneshot::channel();
        let was_empty = group.members.is_empty();
        if was_empty {
            group.protocol_type = Some(req.protocol_type.clone());
        }

        if req.member_id.is_empty() {
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if let Some(instance) = req.instance_id.clone() {
                if let Some(old_id) = group.static_members.get(&instance).cloned() {
                    // A static member came back under a new member id: it replaces the old
                    // one, which is fenced, and takes its assignment. A stable group need not
                    // rebalance unless the protocol chosen for the next generation changes
                    // (as Kafka); a returning leader is told to skip the assignment (KIP-814).
                    let was_leader = group.leader.as_deref() == Some(old_id.as_str());
                    let old = group.remove_member(&old_id, ResponseError::FencedInstanceId);
                    let mut member = new_member(&req, new_id.clone(), now);
                    member.assignment = old.map(|o| o.assignment).unwrap_or_default();
                    group.add_member(member);
                    if was_leader {
                        group.leader = Some(new_id.clone());
                    }
                    if group.state == GroupState::Stable && group.select_protocol() == group.protocol {
                        tracing::info!(group = %group.id, member = %new_id, %instance, "static member rejoined without a rebalance");
                        let mut outcome = group.current_join_outcome(&new_id);
                        outcome.skip_assignment = was_leader;
                        return Step::Now(outcome);
                    }
                    group.member_mut(&new_id).unwrap().join_waiter = Some(tx);
                    self.rebalance(group, now, was_empty);
                    return Step::Wait(rx);
                }
            } else if req.require_known_member_id {
                let timeout = Duration::from_millis(req.session_timeout_ms as u64);
                group.pending_members.insert(new_id.clone(), now + timeout);
                return Step::Now(JoinOutcome::error(ResponseError::MemberIdRequired, &new_id));
            }
            let mut member = new_member(&req, new_id, now);
            member.join_waiter = Some(tx);
            group.add_member(member);
            self.rebalance(group, now, was_empty);
            return Step::Wait(rx);
        }

        let member_id = req.member_id.clone();
        if group.pending_members.remove(&member_id).is_some() {
            let mut member = new_member(&req, member_id, now);
            member.join_waiter = Some(tx);
            group.add_member(member);
            self.rebalance(group, now, was_empty);
            return Step::Wait(rx);
        }
        if let Some(instance) = &req.instance_id {
            if group.static_members.get(instance).is_some_and(|id| *id != member_id) {
                return fail(ResponseError::FencedInstanceId);
            }
        }
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = group.member_mut(&member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        let changed = member.protocols != req.protocols;
        member.protocols = req.protocols;
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.touch(now);
        match state {
            GroupState::CompletingRebalance if !changed => Step::Now(group.current_join_outcome(&member_id)),
            GroupState::Stable if !changed && !is_leader => Step::Now(group.current_join_outcome(&member_id)),
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
            _ => {
                member.join_waiter = Some(tx);
                self.rebalance(group, now, false);
                Step::Wait(rx)
            }
        }
    }

    /// Moves the group into (or keeps it in) PreparingRebalance and completes the join if
    /// everyone is in. A group forming from empty waits `group.initial.rebalance.delay.ms`.
    fn rebalance(&self, group: &mut Group, now: Instant, forming: bool) {
        if forming && group.state == GroupState::Empty {
            let delay = self
                .settings
                .initial_rebalance_delay
                .min(Duration::from_millis(group.max_rebalance_timeout_ms().max(0) as u64));
            group.initial_delay_until = Some(now + delay);
        }
        group.prepare_rebalance(now);
        group.maybe_complete_join(now);
    }

    pub async fn sync(&self, req: SyncRequest) -> SyncOutcome {
        let rx = {
            let mut groups = self.groups.lock();
            let now = Instant::now();
            let Some(group) = groups.get_mut(&req.group_id) else {
                return SyncOutcome::error(ResponseError::UnknownMemberId);
            };
            if let Err(e) = check_member(group, &req.member_id, req.instance_id.as_deref()) {
                return SyncOutcome::error(e);
            }
            if req.generation != group.generation {
                return SyncOutcome::error(ResponseError::IllegalGeneration);
            }
            if req
                .protocol_type
                .as_ref()
                .is_some_and(|t| Some(t) != group.protocol_type.as_ref())
                || req
                    .protocol
                    .as_ref()
                    .is_some_and(|p| Some(p) != group.protocol.as_ref())
            {
                return SyncOutcome::error(ResponseError::InconsistentGroupProtocol);
            }
            match group.state {
                GroupState::Empty | GroupState::Dead => return SyncOutcome::error(ResponseError::UnknownMemberId),
                GroupState::PreparingRebalance => return SyncOutcome::error(ResponseError::RebalanceInProgress),
                GroupState::Stable => {
                    let member = group.member_mut(&req.member_id).unwrap();
                    member.touch(now);
                    return SyncOutcome {
                        error: None,
                        protocol_type: group.protocol_type.clone(),
                        protocol: group.protocol.clone(),
                        assignment: group.member(&req.member_id).unwrap().assignment.clone(),
                    };
                }
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            let member = group.member_mut(&req.member_id).unwrap();
            member.touch(now);
            member.sync_waiter = Some(tx);
            if group.leader.as_deref() == Some(req.member_id.as_str()) {
                let assignments: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                let (protocol_type, protocol) = (group.protocol_type.clone(), group.protocol.clone());
                for member in group.members.values_mut() {
                    member.assignment = assignments.get(&member.id).cloned().unwrap_or_default();
                    if let Some(waiter) = member.sync_waiter.take() {
                        let _ = waiter.send(SyncOutcome {
                            error: None,
                            protocol_type: protocol_type.clone(),
                            protocol: protocol.clone(),
                            assignment: member.assignment.clone(),
                        });
                    }
                }
                group.state = GroupState::Stable;
                tracing::info!(group = %group.id, generation = group.generation, "group is stable");
            }
            rx
        };
        rx.await
            .unwrap_or_else(|_| SyncOutcome::error(ResponseError::RebalanceInProgress))
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Option<ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if let Err(e) = check_member(group, member_id, instance_id) {
            return Some(e);
        }
        let now = Instant::now();
        let state = group.state;
        let current = group.generation;
        let member = group.member_mut(member_id).unwrap();
        match state {
            GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                member.touch(now);
                Some(ResponseError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                if generation != current {
                    return Some(ResponseError::IllegalGeneration);
                }
                member.touch(now);
                None
            }
        }
    }

    /// Removes members; returns an error per (member id, instance id) pair.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        let now = Instant::now();
        let mut results = Vec::new();
        let mut removed = false;
        for (member_id, instance_id) in members {
            let target = match instance_id {
                Some(instance) => match group.static_members.get(instance) {
                    Some(mapped) if !member_id.is_empty() && mapped != member_id => {
                        Err(ResponseError::FencedInstanceId)
                    }
                    Some(mapped) => Ok(mapped.clone()),
                    None => Err(ResponseError::UnknownMemberId),
                },
                None => Ok(member_id.clone()),
            };
            let outcome = target.and_then(|id| {
                group
                    .remove_member(&id, ResponseError::UnknownMemberId)
                    .map(|_| ())
                    .ok_or(ResponseError::UnknownMemberId)
            });
            if outcome.is_ok() {
                removed = true;
                tracing::info!(group = %group.id, member = %member_id, "member left");
            }
            results.push(outcome.err());
        }
        if removed {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => group.prepare_rebalance(now),
                _ => {}
            }
            group.maybe_complete_join(now);
        }
        Ok(results)
    }

    pub fn consumer_settings(&self) -> &ConsumerSettings {
        &self.settings.consumer
    }

    /// A ConsumerGroupHeartbeat (already validated as a request): joins, heartbeats and
    /// leaves of a consumer-protocol group.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        topics: &dyn Topics,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let now = Instant::now();
        let mut classic = self.groups.lock();
        if let Some(group) = classic.get(group_id) {
            let empty = group.members.is_empty() && group.pending_members.is_empty();
            if hb.member_epoch != 0 || !empty {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                ));
            }
            classic.remove(group_id);
            tracing::info!(
                group = group_id,
                "converted the empty classic group to a consumer group"
            );
        }
        let mut consumer = self.consumer_groups.lock();
        drop(classic);
        if hb.member_epoch != 0 && !consumer.contains_key(group_id) {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Consumer group {group_id} not found."),
            ));
        }
        let group = consumer
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id));
        let answer = if hb.member_epoch < 0 {
            group.leave(
                &hb.member_id,
                hb.instance_id.as_deref(),
                hb.member_epoch,
                &self.settings.consumer,
                now,
            )
        } else {
            group.heartbeat(hb, &self.settings.consumer, topics, now)
        };
        if answer.is_ok() {
            self.consumer_dirty.lock().insert(group_id.to_string());
        }
        answer
    }

    /// ConsumerGroupDescribe of one group.
    pub fn describe_consumer_group(&self, group_id: &str) -> Result<ConsumerGroupDescription, Refusal> {
        let consumer = self.consumer_groups.lock();
        let Some(group) = consumer.get(group_id) else {
            let classic = self.groups.lock().contains_key(group_id) || self.offsets.has_group(group_id);
            return Err((
                ResponseError::GroupIdNotFound,
                if classic {
                    format!("Group {group_id} is not a consumer group.")
                } else {
                    format!("Group {group_id} not found.")
                },
            ));
        };
        Ok(ConsumerGroupDescription {
            state: group.state().name(),
            epoch: group.epoch,
            assignment_epoch: group.assignment_epoch,
            assignor: group.preferred_assignor(&self.settings.consumer),
            members: group
                .members
                .values()
                .map(|m| (m.clone(), group.target.get(&m.id).cloned().unwrap_or_default()))
                .collect(),
        })
    }

    /// OffsetFetch v9+ of a consumer group by one of its members: the member must exist
    /// and come with its current epoch (an admin fetch names no member).
    pub fn check_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let consumer = self.consumer_groups.lock();
        let Some(group) = consumer.get(group_id) else {
            return Ok(());
        };
        if member_epoch < 0 && member_id.is_none() {
            return Ok(());
        }
        let member = member_id
            .and_then(|id| group.members.get(id))
            .ok_or(ResponseError::UnknownMemberId)?;
        if member.epoch != member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Kafka's rules for who may commit: a "simple" consumer (generation -1, no member)
    /// only to a group without members; a group member only for the current generation.
    pub fn check_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        version: i16,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        if let Some(group) = self.consumer_groups.lock().get(group_id) {
            // A consumer-protocol group: the generation is the member epoch (KIP-848).
            if generation < 0 && group.members.is_empty() {
                return Ok(());
            }
            let member = group.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
            if version < 9 {
                return Err(ResponseError::UnsupportedVersion);
            }
            if generation != member.epoch {
                return Err(ResponseError::StaleMemberEpoch);
            }
            return Ok(());
        }
        let Some(group) = groups.get_mut(group_id) else {
            return if generation < 0 {
                Ok(())
            } else if version >= 9 {
                Err(ResponseError::GroupIdNotFound)
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if generation < 0 && member_id.is_empty() && group.members.is_empty() {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        check_member(group, member_id, instance_id)?;
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        group.member_mut(member_id).unwrap().touch(Instant::now());
        Ok(())
    }

    pub fn commit(
        &self,
        partitions: &PartitionManager,
        group_id: &str,
        entries: Vec<(String, i32, Option<Committed>)>,
    ) -> anyhow::Result<()> {
        self.offsets.commit(partitions, group_id, entries)
    }

    /// DescribeGroups of a classic group. Kafka describes a consumer-protocol group as Dead
    /// here (ConsumerGroupDescribe is the API for those).
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        if self.consumer_groups.lock().contains_key(group_id) {
            return None;
        }
        match groups.get(group_id) {
            Some(group) => {
                let protocol = group.protocol.clone().unwrap_or_default();
                let stable = group.state == GroupState::Stable;
                Some(GroupDescription {
                    state: group.state.name(),
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    protocol: if group.state == GroupState::Empty {
                        String::new()
                    } else {
                        protocol.clone()
                    },
                    members: group
                        .members
                        .values()
                        .map(|m| MemberDescription {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m.metadata_for(&protocol),
                            assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                        })
                        .collect(),
                })
            }
            None if self.offsets.has_group(group_id) => Some(GroupDescription {
                state: GroupState::Empty.name(),
                protocol_type: OFFSETS_ONLY_PROTOCOL_TYPE.into(),
                protocol: String::new(),
                members: Vec::new(),
            }),
            None => None,
        }
    }

    /// (group id, protocol type, state, group type) of every known group; the group type
    /// is "classic" or "consumer" (ListGroups v5).
    pub fn list(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let groups = self.groups.lock();
        let consumer = self.consumer_groups.lock();
        let mut out: Vec<_> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type
                        .clone()
                        .unwrap_or_else(|| OFFSETS_ONLY_PROTOCOL_TYPE.into()),
                    g.state.name(),
                    "classic",
                )
            })
            .collect();
        for g in consumer.values() {
            out.push((g.id.clone(), "consumer".into(), g.state().name(), "consumer"));
        }
        for id in self.offsets.groups() {
            if !groups.contains_key(&id) && !consumer.contains_key(&id) {
                out.push((
                    id,
                    OFFSETS_ONLY_PROTOCOL_TYPE.into(),
                    GroupState::Empty.name(),
                    "classic",
                ));
            }
        }
        out.sort();
        out
    }

    /// Deletes an empty group and its committed offsets.
    pub fn delete(&self, partitions: &PartitionManager, group_id: &str) -> Result<(), ResponseError> {
        let mut groups = self.groups.lock();
        let mut consumer = self.consumer_groups.lock();
        let known =
            groups.contains_key(group_id) || consumer.contains_key(group_id) || self.offsets.has_group(group_id);
        if !known {
            return Err(ResponseError::GroupIdNotFound);
        }
        if groups.get(group_id).is_some_and(|g| !g.members.is_empty())
            || consumer.get(group_id).is_some_and(|g| !g.members.is_empty())
        {
            return Err(ResponseError::NonEmptyGroup);
        }
        let tombstones = self
            .offsets
            .all(group_id)
            .into_iter()
            .map(|(t, p, _)| (t, p, None))
            .collect();
        self.offsets.commit(partitions, group_id, tombstones).map_err(|e| {
            tracing::error!(group = group_id, error = %format!("{e:#}"), "deleting offsets failed");
            ResponseError::KafkaStorageError
        })?;
        if self.offsets.has_group_record(group_id) {
            self.offsets.store_group(partitions, group_id, None).map_err(|e| {
                tracing::error!(group = group_id, error = %format!("{e:#}"), "deleting the group record failed");
                ResponseError::KafkaStorageError
            })?;
        }
        groups.remove(group_id);
        if consumer.remove(group_id).is_some() {
            self.consumer_dirty.lock().insert(group_id.to_string());
        }
        tracing::info!(group = group_id, "deleted group");
        Ok(())
    }

    /// Topics the group's members subscribe to (consumer protocol), for OffsetDelete.
    pub fn subscribed_topics(&self, group_id: &str) -> Option<Vec<String>> {
        let groups = self.groups.lock();
        if let Some(group) = self.consumer_groups.lock().get(group_id) {
            return Some(consumer_subscribed_topics(group).into_iter().collect());
        }
        groups
            .get(group_id)
            .map(|g| classic_subscribed_topics(g).unwrap_or_default())
    }

    pub fn is_known(&self, group_id: &str) -> bool {
        self.groups.lock().contains_key(group_id)
            || self.consumer_groups.lock().contains_key(group_id)
            || self.offsets.has_group(group_id)
    }

    /// Expires sessions and completes rebalances whose time has come.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        for group in groups.values_mut() {
            if group.expire(now) && matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                group.prepare_rebalance(now);
            }
            group.maybe_complete_join(now);
        }
        // Kafka forgets an empty group once it has no committed offsets either.
        groups.retain(|id, g| {
            !(g.state == GroupState::Empty
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && !self.offsets.has_group(id))
        });
        let mut consumer = self.consumer_groups.lock();
        let mut changed = Vec::new();
        for group in consumer.values_mut() {
            if group.expire(now) > 0 {
                changed.push(group.id.clone());
            }
        }
        consumer.retain(|id, g| {
            let keep = !g.members.is_empty() || self.offsets.has_group(id);
            if !keep {
                changed.push(id.clone());
            }
            keep
        });
        if !changed.is_empty() {
            self.consumer_dirty.lock().extend(changed);
        }
        note_empty_groups(&groups, &consumer, &mut self.empty_since.lock(), now_ms());
    }

    /// Deletes (with tombstones) the committed offsets past `retention_ms`; returns how
    /// many. See [`retention`] for which offsets expire when.
    pub fn expire_offsets(
        &self,
        partitions: &PartitionManager,
        now_ms: i64,
        retention_ms: i64,
    ) -> anyhow::Result<usize> {
        let mut plan = Vec::new();
        {
            let groups = self.groups.lock();
            let consumer = self.consumer_groups.lock();
            let mut empty_since = self.empty_since.lock();
            note_empty_groups(&groups, &consumer, &mut empty_since, now_ms);
            for id in self.offsets.groups() {
                let since_ms = empty_since.get(&id).copied();
                let rule = if let Some(g) = consumer.get(&id) {
                    if g.members.is_empty() {
                        Expiry::Empty { since_ms }
                    } else {
                        Expiry::Unsubscribed(consumer_subscribed_topics(g))
                    }
                } else if let Some(g) = groups.get(&id) {
                    if g.members.is_empty() {
                        Expiry::Empty { since_ms }
                    } else if g.state == GroupState::Stable && g.protocol_type.as_deref() == Some("consumer") {
                        match classic_subscribed_topics(g) {
                            Some(topics) => Expiry::Unsubscribed(topics.into_iter().collect()),
                            None => Expiry::Never,
                        }
                    } else {
                        Expiry::Never
                    }
                } else {
                    Expiry::Empty { since_ms: None }
                };
                let gone = retention::expired(&rule, &self.offsets.all(&id), now_ms, retention_ms);
                if !gone.is_empty() {
                    plan.push((id, gone));
                }
            }
        }
        let mut count = 0;
        for (group, gone) in plan {
            count += gone.len();
            tracing::info!(group = %group, offsets = gone.len(), "committed offsets expired");
            let tombstones = gone.into_iter().map(|(t, p)| (t, p, None)).collect();
            self.offsets
                .commit(partitions, &group, tombstones)
                .with_context(|| format!("expiring committed offsets of group {group}"))?;
        }
        Ok(count)
    }
}

/// Topics a consumer-protocol group subscribes to: by name, and the existing topics its
/// regexes matched at the last heartbeat.
fn consumer_subscribed_topics(group: &ConsumerGroup) -> HashSet<String> {
    group
        .members
        .values()
        .flat_map(|m| m.subscribed_topic_names.iter().cloned())
        .chain(group.subscription.keys().cloned())
        .collect()
}

/// Keeps `empty_since` to the groups without members, noting `now` for newly empty ones.
fn note_empty_groups(
    groups: &HashMap<String, Group>,
    consumer: &HashMap<String, ConsumerGroup>,
    empty_since: &mut HashMap<String, i64>,
    now: i64,
) {
    let empty: HashSet<&String> = groups
        .values()
        .filter(|g| g.members.is_empty())
        .map(|g| &g.id)
        .chain(consumer.values().filter(|g| g.members.is_empty()).map(|g| &g.id))
        .collect();
    empty_since.retain(|id, _| empty.contains(id));
    for id in empty {
        empty_since.entry(id.clone()).or_insert(now);
    }
}

/// Topics the members of a classic group subscribe to: empty unless the group has members
/// of the consumer protocol type; `None` if a member's subscription cannot be read.
fn classic_subscribed_topics(group: &Group) -> Option<Vec<String>> {
    if group.members.is_empty() || group.protocol_type.as_deref() != Some("consumer") {
        return Some(Vec::new());
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for member in group.members.values() {
        let mut metadata = member.metadata_for(&protocol);
        if metadata.len() < 2 {
            return None;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        let _ = bytes::Buf::get_i16(&mut metadata);
        let subscription = ConsumerProtocolSubscription::decode(&mut metadata, version.min(3)).ok()?;
        topics.extend(subscription.topics.iter().map(|t| t.to_string()));
    }
    Some(topics)
}

fn check_member(group: &Group, member_id: &str, instance_id: Option<&str>) -> Result<(), ResponseError> {
    if let Some(instance) = instance_id {
        if let Some(mapped) = group.static_members.get(instance) {
            if mapped != member_id {
                return Err(ResponseError::FencedInstanceId);
            }
        }
    }
    if group.member(member_id).is_none() {
        return Err(ResponseError::UnknownMemberId);
    }
    Ok(())
}

fn new_member(req: &JoinRequest, id: String, now: Instant) -> Member {
    let mut member = Member {
        id,
        instance_id: req.instance_id.clone(),
        client_id: req.client_id.clone(),
        client_host: req.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        protocols: req.protocols.clone(),
        assignment: Bytes::new(),
        join_waiter: None,
        sync_waiter: None,
        session_deadline: now,
    };
    member.touch(now);
    member
}
