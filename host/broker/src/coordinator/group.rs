//! One consumer group under the classic protocol: its members, generation and state.
//! Pure state: callers pass `now`; answers to waiting members go through oneshot channels.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use kafka_protocol::error::ResponseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a member is told when its JoinGroup completes.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// KIP-814: a static leader that rejoined a stable group must not assign again.
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn error(error: ResponseError, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// What a member is told when its SyncGroup completes.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: ResponseError) -> SyncOutcome {
        SyncOutcome {
            error: Some(error),
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    pub session_deadline: Instant,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn touch(&mut self, now: Instant) {
        self.session_deadline = now + std::time::Duration::from_millis(self.session_timeout_ms.max(0) as u64);
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Members in join order (the first is the default leader).
    pub members: BTreeMap<u64, Member>,
    next_seq: u64,
    /// group.instance.id -> member id of static members.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with when they expire.
    pub pending_members: HashMap<String, Instant>,
    pub rebalance_deadline: Option<Instant>,
    /// A new group waits this long for more members before its first generation.
    pub initial_delay_until: Option<Instant>,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            next_seq: 0,
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
        }
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.values().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.values_mut().find(|m| m.id == id)
    }

    pub fn add_member(&mut self, member: Member) {
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member.id.clone());
        }
        self.next_seq += 1;
        self.members.insert(self.next_seq, member);
    }

    /// Removes a member, answering whatever it was waiting for with `error`.
    pub fn remove_member(&mut self, id: &str, error: ResponseError) -> Option<Member> {
        let key = *self.members.iter().find(|(_, m)| m.id == id)?.0;
        let mut member = self.members.remove(&key)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).is_some_and(|m| m == id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::error(error, id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::error(error));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(member)
    }

    /// Does every member support one of `protocols` of type `protocol_type`?
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// Kafka's choice: among the protocols every member supports, each member votes for
    /// its most preferred one; the most votes win.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: HashSet<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
            .collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in self.members.values() {
            if let Some((choice, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(n.as_str())) {
                match votes.iter_mut().find(|(n, _)| *n == choice) {
                    Some(entry) => entry.1 += 1,
                    None => votes.push((choice, 1)),
                }
            }
        }
        let best = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(n, _)| n.to_string())
    }

    pub fn max_rebalance_timeout_ms(&self) -> i32 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    /// Starts a rebalance: members must rejoin within the rebalance timeout.
    pub fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        if self.state != GroupState::PreparingRebalance {
            self.state = GroupState::PreparingRebalance;
            self.rebalance_deadline =
                Some(now + std::time::Duration::from_millis(self.max_rebalance_timeout_ms().max(0) as u64));
        }
    }

    /// Have all members (and members told to come back with an id) rejoined?
    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Completes the join phase if it is time: drops members that did not rejoin, bumps
    /// the generation, picks protocol and leader, and answers every waiting JoinGroup.
    pub fn maybe_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        if self.initial_delay_until.is_some_and(|t| now < t) {
            return false;
        }
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        if !(self.all_joined() || deadline_passed) {
            return false;
        }
        self.initial_delay_until = None;
        self.pending_members.clear();
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %self.id, member = %id, "removing member that did not rejoin in time");
            self.remove_member(&id, ResponseError::UnknownMemberId);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return true;
        }
        self.protocol = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| self.member(l).is_none()) {
            self.leader = self.members.values().next().map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let roster: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
            .collect();
        for member in self.members.values_mut() {
            member.touch(now);
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinOutcome {
                    error: None,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: member.id.clone(),
                    members: if member.id == leader {
                        roster.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = %protocol, "group rebalanced");
        true
    }

    /// The current generation as a JoinGroup answer, for a member that need not rebalance.
    pub fn current_join_outcome(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            members: if member_id == leader {
                self.members
                    .values()
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
                    .collect()
            } else {
                Vec::new()
            },
            leader,
            member_id: member_id.to_string(),
            skip_assignment: false,
        }
    }

    /// Expires members whose session lapsed and pending ids never used. Returns whether
    /// membership changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.session_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id, ResponseError::UnknownMemberId);
        }
        !expired.is_empty()
    }
}
