//! One group of the consumer group protocol (KIP-848): members, the three epochs and the
//! reconciliation of each member towards its target assignment. Pure state: callers pass
//! `now` and a view of the topics; nothing here waits or reads a clock.
//!
//! - The **group epoch** goes up when membership, a subscription or the partitions of a
//!   subscribed topic change.
//! - The **target assignment** is computed by a server assignor ([`super::assignor`]) for
//!   the group epoch; its epoch is the **assignment epoch**.
//! - Each member moves towards its target in steps, each acknowledged by a heartbeat: first
//!   it gives up (revokes) what it must lose, keeping its **member epoch**; then it gets the
//!   target epoch and whatever it should gain that no other member still owns. Partitions
//!   another member still owns are held back until that member lets them go.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::{self, Assignment, MemberSpec};

/// `member_epoch` of a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// `member_epoch` of a static member that leaves for a while and will come back.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// What the group needs to know of the cluster's topics.
pub trait Topics {
    /// (topic id, partition count) of an existing topic.
    fn lookup(&self, name: &str) -> Option<(Uuid, u32)>;
    /// Every topic's name, for regex subscriptions.
    fn names(&self) -> Vec<String>;
}

/// A regex subscription (ConsumerGroupHeartbeat v1): Kafka matches the whole topic name
/// (RE2J `matches()`); Rust's `regex` is the same linear-time RE2 family.
#[derive(Debug, Clone)]
pub struct TopicRegex {
    pub pattern: String,
    compiled: regex::Regex,
}

impl TopicRegex {
    pub fn new(pattern: &str) -> Result<TopicRegex, Refusal> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(|compiled| TopicRegex {
                pattern: pattern.to_string(),
                compiled,
            })
            .map_err(|e| {
                (
                    ResponseError::InvalidRegularExpression,
                    format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}."),
                )
            })
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.compiled.is_match(topic)
    }
}

/// An error answered to a heartbeat: Kafka's code and a message for the client.
pub type Refusal = (ResponseError, String);

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    /// Assignor names; the first is the default.
    pub assignors: Vec<&'static str>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl ConsumerSettings {
    pub fn default_assignor(&self) -> &'static str {
        self.assignors.first().copied().unwrap_or(assignor::UNIFORM)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Owns exactly its share of the target (or waits for nothing).
    Stable,
    /// Must revoke partitions before it may go on.
    UnrevokedPartitions,
    /// Waits for partitions that other members still own.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    /// Sorted, without duplicates.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<TopicRegex>,
    pub server_assignor: Option<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    /// What the member may use now.
    pub assigned: Assignment,
    /// What the member must give up before it gets the next epoch.
    pub pending_revocation: Assignment,
    pub session_deadline: Instant,
    /// Set while the member must revoke: it is removed if it has not by then.
    pub revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    pub fn new(id: String, now: Instant) -> ConsumerMember {
        ConsumerMember {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: -1,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: now,
            revocation_deadline: None,
        }
    }

    /// Does the member subscribe to `topic`, by name or by regex?
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names
            .binary_search_by(|n| n.as_str().cmp(topic))
            .is_ok()
            || self.subscribed_topic_regex.as_ref().is_some_and(|r| r.matches(topic))
    }

    /// Every partition the member holds: assigned or not yet revoked.
    fn holds(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(self.pending_revocation.iter())
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }
}

/// A heartbeat, decoded: `None` fields did not change since the member's last heartbeat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `Some(None)`: the member dropped its regex (sent an empty one).
    pub subscribed_topic_regex: Option<Option<TopicRegex>>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent on a full request and whenever the member's assignment changed.
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// The names Kafka reports in ListGroups and ConsumerGroupDescribe.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Target assignment per member id, for `assignment_epoch`.
    pub target: HashMap<String, Assignment>,
    /// The subscribed topics that exist, with their ids and partition counts, as of the
    /// last heartbeat: a change bumps the group epoch.
    pub subscription: BTreeMap<String, (Uuid, u32)>,
}

impl ConsumerGroup {
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: HashMap::new(),
            subscription: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the members prefer most (ties: the first name), else the default.
    pub fn preferred_assignor(&self, settings: &ConsumerSettings) -> &'static str {
        let mut votes: BTreeMap<&'static str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(name) = m.server_assignor.as_deref().and_then(assignor::canonical_name) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, v)| *v == best && best > 0)
            .map(|(n, _)| n)
            .unwrap_or_else(|| settings.default_assignor())
    }

    /// Handles a heartbeat with `member_epoch >= 0`.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        settings: &ConsumerSettings,
        topics: &dyn Topics,
        now: Instant,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let joining = hb.member_epoch == 0;
        if self.members.len() >= settings.max_size && !self.members.contains_key(&hb.member_id) {
            return Err((
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    settings.max_size
                ),
            ));
        }
        let member_id = if hb.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            hb.member_id.clone()
        };

        // Find the member, or make a new one.
        let mut replaced_static: Option<ConsumerMember> = None;
        let existing = match &hb.instance_id {
            None => match self.members.get(&member_id) {
                Some(m) => {
                    check_epoch(m, hb.member_epoch, hb.owned.as_ref())?;
                    Some(m.clone())
                }
                None if joining => None,
                None => {
                    return Err((
                        ResponseError::UnknownMemberId,
                        format!("Member {member_id} is not a member of group {}.", self.id),
                    ))
                }
            },
            Some(instance) => {
                let current = self.static_members.get(instance).and_then(|id| self.members.get(id));
                match current {
                    None if joining => self.members.get(&member_id).cloned(),
                    None => {
                        return Err((
                            ResponseError::UnknownMemberId,
                            format!("Instance id {instance} is unknown."),
                        ))
                    }
                    Some(old) if joining => {
                        if old.epoch != STATIC_LEAVE_EPOCH {
                            return Err((
                                ResponseError::UnreleasedInstanceId,
                                format!(
                                    "Static member {member_id} with instance id {instance} cannot join the group \
                                     because the instance id is owned by member {}.",
                                    old.id
                                ),
                            ));
                        }
                        replaced_static = Some(old.clone());
                        None
                    }
                    Some(old) => {
                        if old.id != member_id {
                            return Err((
                                ResponseError::FencedInstanceId,
                                format!(
                                    "Static member {member_id} with instance id {instance} was fenced by member {}.",
                                    old.id
                                ),
                            ));
                        }
                        check_epoch(old, hb.member_epoch, hb.owned.as_ref())?;
                        Some(old.clone())
                    }
                }
            }
        };

        let is_new = existing.is_none();
        let mut member = existing.unwrap_or_else(|| ConsumerMember::new(member_id.clone(), now));
        if let Some(old) = &replaced_static {
            // The returning static member takes over the assignment of the one that left.
            member.assigned = old.assigned.clone();
            let target = self.target.remove(&old.id).unwrap_or_default();
            self.target.insert(member_id.clone(), target);
            self.members.remove(&old.id);
            tracing::info!(group = %self.id, member = %member_id, old = %old.id, "static member rejoined");
        }
        let subscription_of = |m: &ConsumerMember| {
            (
                m.subscribed_topic_names.clone(),
                m.subscribed_topic_regex.as_ref().map(|r| r.pattern.clone()),
            )
        };
        let old_subscription = match &replaced_static {
            Some(old) => subscription_of(old),
            None => subscription_of(&member),
        };
        if let Some(instance) = &hb.instance_id {
            member.instance_id = Some(instance.clone());
        }
        if let Some(rack) = &hb.rack_id {
            member.rack_id = Some(rack.clone());
        }
        if hb.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if let Some(name) = &hb.server_assignor {
            member.server_assignor = Some(name.clone());
        }
        if let Some(names) = &hb.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.subscribed_topic_names = names;
        }
        if let Some(regex) = &hb.subscribed_topic_regex {
            member.subscribed_topic_regex = regex.clone();
        }
        member.client_id = hb.client_id.clone();
        member.client_host = hb.client_host.clone();
        let before = member.assigned.clone();
        let mut bump = subscription_of(&member) != old_subscription;
        if is_new && replaced_static.is_none() {
            tracing::info!(group = %self.id, member = %member_id, "member joins the consumer group");
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), member);

        // The subscribed topics as they are now.
        let subscription = self.compute_subscription(topics);
        if subscription != self.subscription {
            self.subscription = subscription;
            bump = true;
        }
        if bump {
            self.epoch += 1;
            tracing::info!(group = %self.id, epoch = self.epoch, "bumped the group epoch");
        }
        if self.epoch > self.assignment_epoch {
            self.compute_target(settings);
        }

        // Move the member towards its target.
        let target = self.target.get(&member_id).cloned().unwrap_or_default();
        let held_by_others: HashSet<(Uuid, i32)> = self
            .members
            .values()
            .filter(|m| m.id != member_id)
            .flat_map(|m| m.holds().collect::<Vec<_>>())
            .collect();
        let assignment_epoch = self.assignment_epoch;
        let member = self.members.get_mut(&member_id).expect("member was just inserted");
        reconcile(member, assignment_epoch, &target, hb.owned.as_ref(), &held_by_others);
        member.session_deadline = now + Duration::from_millis(settings.session_timeout_ms.max(0) as u64);
        if member.state == MemberState::UnrevokedPartitions {
            if member.revocation_deadline.is_none() {
                member.revocation_deadline =
                    Some(now + Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64));
            }
        } else {
            member.revocation_deadline = None;
        }

        let full =
            joining || (hb.rebalance_timeout_ms != -1 && hb.subscribed_topic_names.is_some() && hb.owned.is_some());
        Ok(HeartbeatAnswer {
            member_id: member_id.clone(),
            member_epoch: member.epoch,
            assignment: (full || member.assigned != before).then(|| member.assigned.clone()),
        })
    }

    /// Handles a heartbeat with `member_epoch` -1 (leave) or -2 (a static member leaving
    /// for a while: it keeps its partitions until its session expires or it rejoins).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        member_epoch: i32,
        settings: &ConsumerSettings,
        now: Instant,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let id = match instance_id {
            Some(instance) => {
                let Some(mapped) = self.static_members.get(instance) else {
                    return Err((
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    ));
                };
                if mapped != member_id {
                    return Err((
                        ResponseError::FencedInstanceId,
                        format!("Static member {member_id} with instance id {instance} was fenced by member {mapped}."),
                    ));
                }
                mapped.clone()
            }
            None if self.members.contains_key(member_id) => member_id.to_string(),
            None => {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Member {member_id} is not a member of group {}.", self.id),
                ))
            }
        };
        if member_epoch == STATIC_LEAVE_EPOCH {
            let member = self.members.get_mut(&id).expect("mapped static member exists");
            member.epoch = STATIC_LEAVE_EPOCH;
            member.pending_revocation.clear();
            member.revocation_deadline = None;
            member.session_deadline = now + Duration::from_millis(settings.session_timeout_ms.max(0) as u64);
            tracing::info!(group = %self.id, member = %id, "static member left temporarily");
        } else {
            self.remove_member(&id, "left the group");
        }
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch,
            assignment: None,
        })
    }

    /// Removes members whose session lapsed or that did not revoke in time. Returns how
    /// many were removed.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expired: Vec<(String, &'static str)> = self
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline <= now {
                    Some((m.id.clone(), "session expired"))
                } else if m.revocation_deadline.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "did not revoke its partitions within the rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in &expired {
            self.remove_member(id, why);
        }
        expired.len()
    }

    fn remove_member(&mut self, id: &str, why: &str) {
        if let Some(member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).is_some_and(|m| m == id) {
                    self.static_members.remove(instance);
                }
            }
            self.target.remove(id);
            self.epoch += 1;
            tracing::info!(group = %self.id, member = %id, epoch = self.epoch, "removed member: {why}");
        }
    }

    /// Reads the subscribed topics from `topics` without bumping the epoch (at start).
    pub fn refresh_subscription(&mut self, topics: &dyn Topics) {
        self.subscription = self.compute_subscription(topics);
    }

    fn compute_subscription(&self, topics: &dyn Topics) -> BTreeMap<String, (Uuid, u32)> {
        let mut names: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect();
        if self.members.values().any(|m| m.subscribed_topic_regex.is_some()) {
            for topic in topics.names() {
                if self.members.values().any(|m| m.subscribes_to(&topic)) {
                    names.insert(topic);
                }
            }
        }
        names
            .into_iter()
            .filter_map(|n| topics.lookup(&n).map(|t| (n, t)))
            .collect()
    }

    fn compute_target(&mut self, settings: &ConsumerSettings) {
        let name = self.preferred_assignor(settings);
        let partitions: BTreeMap<Uuid, u32> = self.subscription.values().copied().collect();
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                id: &m.id,
                topics: self
                    .subscription
                    .iter()
                    .filter(|(name, _)| m.subscribes_to(name))
                    .map(|(_, (id, _))| *id)
                    .collect(),
                previous: self.target.get(&m.id),
            })
            .collect();
        self.target = assignor::assign(name, &specs, &partitions);
        self.assignment_epoch = self.epoch;
        tracing::info!(group = %self.id, epoch = self.epoch, assignor = name, "computed a new target assignment");
    }
}

/// Kafka's member epoch check: a member may come with its current epoch, with 0 to rejoin
/// (after it was fenced), or with its previous epoch if it owns no more than it is assigned
/// (the answer that bumped its epoch may have been lost).
fn check_epoch(member: &ConsumerMember, received: i32, owned: Option<&Assignment>) -> Result<(), Refusal> {
    let fenced = |relation: &str| {
        Err((
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {relation} member epoch ({received}) than the one known by the \
                 group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.epoch
            ),
        ))
    };
    if received == 0 || received == member.epoch {
        Ok(())
    } else if received > member.epoch {
        fenced("greater")
    } else if received != member.previous_epoch || !owned.is_some_and(|o| is_subset(o, &member.assigned)) {
        fenced("smaller")
    } else {
        Ok(())
    }
}

fn is_subset(small: &Assignment, big: &Assignment) -> bool {
    small
        .iter()
        .all(|(t, ps)| ps.is_empty() || big.get(t).is_some_and(|b| ps.is_subset(b)))
}

/// Does the member (by what it reported, or, if it did not report, by assumption) still
/// own any of `revoking`?
fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    owned
        .iter()
        .any(|(t, ps)| revoking.get(t).is_some_and(|r| !r.is_disjoint(ps)))
}

/// One step of Kafka's reconciliation (its `CurrentAssignmentBuilder`).
fn reconcile(
    member: &mut ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_others: &HashSet<(Uuid, i32)>,
) {
    match member.state {
        MemberState::Stable if member.epoch == target_epoch => {}
        MemberState::UnrevokedPartitions if owns_any(owned, &member.pending_revocation) => {}
        _ => next_assignment(member, target_epoch, target, owned, held_by_others),
    }
}

fn next_assignment(
    member: &mut ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_others: &HashSet<(Uuid, i32)>,
) {
    let mut keep = Assignment::new();
    let mut revoke = Assignment::new();
    let mut gain = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = target.keys().chain(member.assigned.keys()).copied().collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let want = target.get(&topic).unwrap_or(&empty);
        let have = member.assigned.get(&topic).unwrap_or(&empty);
        let kept: BTreeSet<i32> = have.intersection(want).copied().collect();
        let lost: BTreeSet<i32> = have.difference(&kept).copied().collect();
        let mut new: BTreeSet<i32> = want.difference(&kept).copied().collect();
        let before = new.len();
        new.retain(|p| !held_by_others.contains(&(topic, *p)));
        unreleased |= new.len() != before;
        if !kept.is_empty() {
            keep.insert(topic, kept);
        }
        if !lost.is_empty() {
            revoke.insert(topic, lost);
        }
        if !new.is_empty() {
            gain.insert(topic, new);
        }
    }
    let set_epoch = |m: &mut ConsumerMember, epoch: i32| {
        if m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
    };
    if !revoke.is_empty() && owns_any(owned, &revoke) {
        // Revocation first: the member keeps its epoch until it has let go.
        member.state = MemberState::UnrevokedPartitions;
        member.assigned = keep;
        member.pending_revocation = revoke;
        return;
    }
    for (topic, partitions) in gain {
        keep.entry(topic).or_default().extend(partitions);
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    set_epoch(member, target_epoch);
    member.assigned = keep;
    member.pending_revocation.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeTopics(HashMap<String, (Uuid, u32)>);

    impl Topics for FakeTopics {
        fn lookup(&self, name: &str) -> Option<(Uuid, u32)> {
            self.0.get(name).copied()
        }

        fn names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    const T: Uuid = Uuid::from_bytes([7; 16]);

    fn topics(partitions: u32) -> FakeTopics {
        FakeTopics(HashMap::from([("t".to_string(), (T, partitions))]))
    }

    fn settings() -> ConsumerSettings {
        ConsumerSettings {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignors: vec![assignor::UNIFORM, assignor::RANGE],
            max_size: 3,
        }
    }

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(Assignment::new()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn beat(id: &str, epoch: i32, owned: Option<&Assignment>) -> Heartbeat {
        Heartbeat {
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            owned: owned.cloned(),
            ..join(id)
        }
    }

    fn parts(a: &Assignment) -> BTreeSet<i32> {
        a.get(&T).cloned().unwrap_or_default()
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
        let (s, t, now) = (settings(), topics(4), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let a = g.heartbeat(join("a"), &s, &t, now).unwrap();
        assert_eq!((a.member_epoch, g.epoch, g.assignment_epoch), (1, 1, 1));
        let a_owned = a.assignment.unwrap();
        assert_eq!(parts(&a_owned), BTreeSet::from([0, 1, 2, 3]));
        assert_eq!(g.state(), ConsumerGroupState::Stable);

        // b joins: epoch 2, but a still owns everything, so b waits with nothing.
        let b = g.heartbeat(join("b"), &s, &t, now).unwrap();
        assert_eq!((b.member_epoch, g.epoch), (2, 2));
        assert_eq!(parts(b.assignment.as_ref().unwrap()), BTreeSet::new());
        assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);

        // a is asked to revoke two partitions and keeps epoch 1 while it has not.
        let a2 = g.heartbeat(beat("a", 1, Some(&a_owned)), &s, &t, now).unwrap();
        assert_eq!(a2.member_epoch, 1);
        let a_kept = a2.assignment.unwrap();
        assert_eq!(parts(&a_kept).len(), 2);
        let a3 = g.heartbeat(beat("a", 1, Some(&a_owned)), &s, &t, now).unwrap();
        assert_eq!((a3.member_epoch, a3.assignment), (1, None), "still revoking");
        // A stale epoch is fenced; so is a future one.
        let stale = g.heartbeat(beat("b", 1, None), &s, &t, now).unwrap_err();
        assert_eq!(stale.0, ResponseError::FencedMemberEpoch);
        assert_eq!(
            g.heartbeat(beat("a", 5, None), &s, &t, now).unwrap_err().0,
            ResponseError::FencedMemberEpoch
        );

        // a acknowledges: epoch 2; then b gets the released partitions.
        let a4 = g.heartbeat(beat("a", 1, Some(&a_kept)), &s, &t, now).unwrap();
        assert_eq!(a4.member_epoch, 2);
        let b2 = g
            .heartbeat(beat("b", 2, Some(&Assignment::new())), &s, &t, now)
            .unwrap();
        let b_parts = parts(b2.assignment.as_ref().unwrap());
        assert_eq!(b_parts.len(), 2);
        assert!(b_parts.is_disjoint(&parts(&a_kept)));
        assert_eq!(g.state(), ConsumerGroupState::Stable);

        // The previous epoch is accepted with a subset of the assignment (a lost answer).
        assert!(g.heartbeat(beat("a", 1, Some(&a_kept)), &s, &t, now).is_ok());
        // An unknown member is refused.
        assert_eq!(
            g.heartbeat(beat("zz", 2, None), &s, &t, now).unwrap_err().0,
            ResponseError::UnknownMemberId
        );
    }

    #[test]
    fn leaving_and_expiring_members_bump_the_epoch_and_free_their_partitions() {
        let (s, t, now) = (settings(), topics(2), Instant::now());
        let mut g = ConsumerGroup::new("g");
        g.heartbeat(join("a"), &s, &t, now).unwrap();
        let b = g.heartbeat(join("b"), &s, &t, now).unwrap();
        assert_eq!(b.member_epoch, 2);
        let left = g.leave("a", None, LEAVE_EPOCH, &s, now).unwrap();
        assert_eq!(left.member_epoch, -1);
        assert_eq!(g.state(), ConsumerGroupState::Assigning);
        let b2 = g
            .heartbeat(beat("b", 2, Some(&Assignment::new())), &s, &t, now)
            .unwrap();
        assert_eq!(b2.member_epoch, 3);
        assert_eq!(parts(b2.assignment.as_ref().unwrap()), BTreeSet::from([0, 1]));
        assert_eq!(g.expire(now + Duration::from_millis(44_000)), 0);
        assert_eq!(g.expire(now + Duration::from_millis(45_000)), 1);
        assert_eq!(g.state(), ConsumerGroupState::Empty);
    }

    #[test]
    fn partitions_added_to_a_topic_bump_the_epoch() {
        let (s, now) = (settings(), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let a = g.heartbeat(join("a"), &s, &topics(2), now).unwrap();
        let owned = a.assignment.unwrap();
        let a2 = g.heartbeat(beat("a", 1, Some(&owned)), &s, &topics(3), now).unwrap();
        assert_eq!(a2.member_epoch, 2);
        assert_eq!(parts(a2.assignment.as_ref().unwrap()), BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn a_static_member_that_left_temporarily_is_replaced_with_its_assignment() {
        let (s, t, now) = (settings(), topics(2), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let hb = |id: &str| Heartbeat {
            instance_id: Some("i".into()),
            ..join(id)
        };
        let a = g.heartbeat(hb("a"), &s, &t, now).unwrap();
        // Another process with the same instance id is refused while a is in the group.
        assert_eq!(
            g.heartbeat(hb("a2"), &s, &t, now).unwrap_err().0,
            ResponseError::UnreleasedInstanceId
        );
        assert_eq!(
            g.leave("a", Some("i"), STATIC_LEAVE_EPOCH, &s, now)
                .unwrap()
                .member_epoch,
            -2
        );
        let epoch = g.epoch;
        let a2 = g.heartbeat(hb("a2"), &s, &t, now).unwrap();
        assert_eq!(g.epoch, epoch, "no rebalance for a returning static member");
        assert_eq!(a2.assignment, a.assignment);
        assert_eq!(a2.member_epoch, epoch);
        assert!(!g.members.contains_key("a"));
        assert_eq!(
            g.heartbeat(beat("a", 1, None), &s, &t, now).unwrap_err().0,
            ResponseError::UnknownMemberId
        );
    }

    #[test]
    fn a_regex_subscription_follows_the_topics_that_match() {
        let (s, now) = (settings(), Instant::now());
        let u = Uuid::from_bytes([9; 16]);
        let mut topics = FakeTopics(HashMap::from([
            ("t".to_string(), (T, 2)),
            ("other".to_string(), (u, 1)),
        ]));
        let mut g = ConsumerGroup::new("g");
        let hb = Heartbeat {
            subscribed_topic_names: Some(vec![]),
            subscribed_topic_regex: Some(Some(TopicRegex::new("t.*").unwrap())),
            ..join("a")
        };
        let a = g.heartbeat(hb, &s, &topics, now).unwrap();
        assert_eq!(a.assignment.as_ref().unwrap().keys().collect::<Vec<_>>(), vec![&T]);
        // A new topic that matches joins the subscription and bumps the epoch.
        let v = Uuid::from_bytes([3; 16]);
        topics.0.insert("tt".to_string(), (v, 1));
        let a2 = g
            .heartbeat(beat("a", 1, a.assignment.as_ref()), &s, &topics, now)
            .unwrap();
        assert_eq!(a2.member_epoch, 2);
        assert!(a2.assignment.unwrap().contains_key(&v));
        assert_eq!(
            TopicRegex::new("(").unwrap_err().0,
            ResponseError::InvalidRegularExpression
        );
        assert!(
            !TopicRegex::new("t").unwrap().matches("tt"),
            "the whole name must match"
        );
    }

    #[test]
    fn a_full_group_refuses_new_members_but_not_its_own() {
        let (s, t, now) = (settings(), topics(4), Instant::now());
        let mut g = ConsumerGroup::new("g");
        for id in ["a", "b", "c"] {
            g.heartbeat(join(id), &s, &t, now).unwrap();
        }
        assert_eq!(
            g.heartbeat(join("d"), &s, &t, now).unwrap_err().0,
            ResponseError::GroupMaxSizeReached
        );
        assert!(
            g.heartbeat(join("a"), &s, &t, now).is_ok(),
            "a member may rejoin a full group"
        );
    }
}
