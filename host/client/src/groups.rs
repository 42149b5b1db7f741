//! Consumer group administration: find a group's coordinator, list, describe and delete
//! groups, fetch committed offsets and commit new ones as a "simple" (memberless) consumer.
//!
//! Everything about one group goes to that group's coordinator (FindCoordinator with key type
//! group), as Kafka's admin client does; ListGroups goes to every broker, since each lists only
//! the groups it coordinates. Member assignments are decoded as the consumer protocol's
//! [`ConsumerProtocolAssignment`]: a 2-byte version, then the body in that version. Groups of
//! the consumer protocol (KIP-848) are described with ConsumerGroupDescribe, others with
//! DescribeGroups, as Kafka's admin client does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest,
    FindCoordinatorRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{self, KafkaError};

/// A group of the consumer protocol (KIP-848) by ConsumerGroupDescribe; `None` if the broker
/// does not serve that API or the group is not of that protocol (GROUP_ID_NOT_FOUND).
async fn describe_consumer_group(
    conn: &Connection,
    group: &str,
    coordinator: &Coordinator,
) -> Result<Option<GroupDescription>> {
    if conn.broker_versions(ApiKey::ConsumerGroupDescribe).is_none() {
        return Ok(None);
    }
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
    let response = conn.send(&request).await?;
    let Some(g) = response.groups.into_iter().find(|g| g.group_id.0.as_str() == group) else {
        bail!("the broker's ConsumerGroupDescribe response omits group '{group}'");
    };
    if g.error_code == ResponseError::GroupIdNotFound.code() {
        return Ok(None);
    }
    error::check(g.error_code, g.error_message.as_ref()).with_context(|| format!("cannot describe group '{group}'"))?;
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let mut assignment: Vec<(String, Vec<i32>)> = m
                .assignment
                .topic_partitions
                .into_iter()
                .map(|t| {
                    let mut partitions = t.partitions;
                    partitions.sort_unstable();
                    (t.topic_name.0.to_string(), partitions)
                })
                .collect();
            assignment.sort();
            GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect();
    Ok(Some(GroupDescription {
        group_id: group.to_string(),
        state: g.group_state.to_string(),
        protocol_type: "consumer".to_string(),
        protocol: g.assignor_name.to_string(),
        members,
        coordinator: coordinator.clone(),
    }))
}

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;

/// How long to keep asking for a coordinator that is not available yet (a broker that is
/// loading `__consumer_offsets`, or creating it on first use).
const COORDINATOR_WAIT: Duration = Duration::from_secs(10);

/// The highest consumer protocol assignment version `kafka-protocol` decodes; later versions
/// only add fields at the end, so their prefix decodes the same.
const ASSIGNMENT_VERSION_MAX: i16 = 3;

/// A group's coordinator as FindCoordinator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The coordinator's node id.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

impl Coordinator {
    /// `host:port`, with IPv6 literals in brackets.
    pub fn addr(&self) -> String {
        crate::metadata::socket_addr(&self.host, self.port)
    }
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type (`consumer` for consumer groups, `connect` for Connect workers, ...).
    pub protocol_type: String,
    /// The state (`Stable`, `Empty`, ...); `None` from brokers older than ListGroups v4.
    pub state: Option<String>,
}

/// One member of a group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` if it is a static member.
    pub instance_id: Option<String>,
    /// The client id it connected with.
    pub client_id: String,
    /// The host it connected from, as the broker prints it (`/127.0.0.1`).
    pub client_host: String,
    /// Its assignment, topic by topic with partitions sorted; empty while the group
    /// rebalances or when the group does not use the consumer protocol.
    pub assignment: Vec<(String, Vec<i32>)>,
}

impl GroupMember {
    /// How many partitions the member is assigned.
    pub fn partition_count(&self) -> usize {
        self.assignment.iter().map(|(_, p)| p.len()).sum()
    }
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The state: `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or `Dead`
    /// (what Kafka reports for a group it does not know).
    pub state: String,
    /// The protocol type; empty for a group without members.
    pub protocol_type: String,
    /// The chosen protocol (for consumer groups: the assignor, e.g. `range`); empty unless the
    /// group has members.
    pub protocol: String,
    /// The members, in the order the coordinator lists them.
    pub members: Vec<GroupMember>,
    /// Who answered the DescribeGroups request.
    pub coordinator: Coordinator,
}

/// One committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset of the next record the group will read.
    pub offset: i64,
    /// The leader epoch committed with it, -1 when unknown.
    pub leader_epoch: i32,
    /// The metadata string committed with it.
    pub metadata: String,
}

/// (topic, partition), ordered by topic then partition.
pub type TopicPartition = (String, i32);

/// Decodes a member assignment of the consumer protocol: a 2-byte version followed by the
/// [`ConsumerProtocolAssignment`] body in that version. Empty bytes are an empty assignment.
/// Topics come out sorted by name, partitions sorted within each topic.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        bail!("a consumer protocol assignment of {} byte(s) is too short", buf.len());
    }
    let version = buf.get_i16();
    if version < 0 {
        bail!("the consumer protocol assignment has a negative version {version}");
    }
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.min(ASSIGNMENT_VERSION_MAX))
        .with_context(|| format!("cannot decode a consumer protocol assignment (version {version})"))?;
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in assignment.assigned_partitions {
        topics.entry(tp.topic.0.to_string()).or_default().extend(tp.partitions);
    }
    Ok(topics
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            partitions.dedup();
            (topic, partitions)
        })
        .collect())
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// Whether `e` says to ask FindCoordinator again (the coordinator moved or is loading).
fn coordinator_retriable(e: &KafkaError) -> bool {
    matches!(
        e.kind(),
        ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator
    )
}

impl Client {
    /// The coordinator of `group`, waiting briefly while the cluster says none is available.
    pub async fn find_coordinator(&self, group: &str) -> Result<Coordinator> {
        let deadline = Instant::now() + COORDINATOR_WAIT;
        loop {
            match self.find_coordinator_once(group).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    let retriable = error::find_kafka_error(&e).is_some_and(coordinator_retriable);
                    if !retriable || Instant::now() >= deadline {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn find_coordinator_once(&self, group: &str) -> Result<Coordinator> {
        let conn = self.any_connection().await?;
        let version = conn.version::<FindCoordinatorRequest>()?;
        let mut request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
        if version >= 4 {
            request.coordinator_keys = vec![StrBytes::from_string(group.to_string())];
        } else {
            request.key = StrBytes::from_string(group.to_string());
        }
        let response = conn.submit(&request, version).await?.wait().await?;
        let what = || format!("cannot find the coordinator of group '{group}'");
        if version >= 4 {
            let c = response
                .coordinators
                .into_iter()
                .find(|c| c.key.as_str() == group)
                .ok_or_else(|| anyhow!("the broker's FindCoordinator response omits group '{group}'"))?;
            error::check(c.error_code, c.error_message.as_ref()).with_context(what)?;
            Ok(Coordinator {
                node_id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
            })
        } else {
            error::check(response.error_code, response.error_message.as_ref()).with_context(what)?;
            Ok(Coordinator {
                node_id: response.node_id.0,
                host: response.host.to_string(),
                port: response.port,
            })
        }
    }

    /// The coordinator of `group` and a connection to it.
    pub async fn coordinator(&self, group: &str) -> Result<(Coordinator, Arc<Connection>)> {
        let coordinator = self.find_coordinator(group).await?;
        let conn = match self.broker(coordinator.node_id).await {
            Ok(conn) => conn,
            // Not in the metadata we know: connect where FindCoordinator says.
            Err(_) => Connection::connect(&coordinator.addr(), self.client_id())
                .await
                .with_context(|| format!("cannot connect to the coordinator of group '{group}'"))?,
        };
        Ok((coordinator, conn))
    }

    /// Every group of the cluster (ListGroups to each broker), sorted by id. With `states`, only
    /// groups in one of those states (compared case-insensitively, as Kafka does).
    pub async fn list_groups(&self, states: &[String]) -> Result<Vec<GroupListing>> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut node_ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id).collect();
        node_ids.sort_unstable();
        let mut groups: BTreeMap<String, GroupListing> = BTreeMap::new();
        for node_id in node_ids {
            let conn = self.broker(node_id).await?;
            let version = conn.version::<ListGroupsRequest>()?;
            if version < 4 && !states.is_empty() {
                bail!(
                    "broker {node_id} speaks ListGroups up to v{version} and cannot filter by state (v4 and later can)"
                );
            }
            let mut request = ListGroupsRequest::default();
            if version >= 4 {
                request.states_filter = states.iter().map(|s| StrBytes::from_string(s.clone())).collect();
            }
            let response = conn.submit(&request, version).await?.wait().await?;
            error::check(response.error_code, None)
                .with_context(|| format!("cannot list the groups of broker {node_id}"))?;
            for g in response.groups {
                let listing = GroupListing {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: (version >= 4).then(|| g.group_state.to_string()),
                };
                groups.insert(listing.group_id.clone(), listing);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes one group through its coordinator. An unknown group comes back in state
    /// `Dead` (Kafka's answer) or as the broker's GROUP_ID_NOT_FOUND error.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let (coordinator, conn) = self.coordinator(group).await?;
        if let Some(description) = describe_consumer_group(&conn, group, &coordinator).await? {
            return Ok(description);
        }
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response = conn.send(&request).await?;
        let g = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| anyhow!("the broker's DescribeGroups response omits group '{group}'"))?;
        error::check(g.error_code, g.error_message.as_ref())
            .with_context(|| format!("cannot describe group '{group}'"))?;
        let consumer = g.protocol_type.as_str() == "consumer" || g.protocol_type.is_empty();
        let mut members = Vec::with_capacity(g.members.len());
        for m in g.members {
            let assignment = if consumer {
                decode_assignment(&m.member_assignment)
                    .with_context(|| format!("member {} of group '{group}'", m.member_id.as_str()))?
            } else {
                Vec::new()
            };
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            coordinator,
        })
    }

    /// Every offset `group` has committed, by (topic, partition).
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
        let (_, conn) = self.coordinator(group).await?;
        let version = conn.version::<OffsetFetchRequest>()?;
        let what = || format!("cannot fetch the committed offsets of group '{group}'");
        let mut request = OffsetFetchRequest::default();
        // (topic, partition, offset, leader epoch, metadata, error code)
        let mut found: Vec<(String, i32, i64, i32, String, i16)> = Vec::new();
        if version >= 8 {
            request.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(None)];
            let response = conn.submit(&request, version).await?.wait().await?;
            let g = response
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| anyhow!("the broker's OffsetFetch response omits group '{group}'"))?;
            error::check(g.error_code, None).with_context(what)?;
            for t in g.topics {
                for p in t.partitions {
                    let metadata = p.metadata.map(|m| m.to_string()).unwrap_or_default();
                    found.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        metadata,
                        p.error_code,
                    ));
                }
            }
        } else {
            if version < 2 {
                bail!(
                    "broker at {} speaks OffsetFetch only below v2, which cannot ask for all topics",
                    conn.addr()
                );
            }
            request.group_id = group_id(group);
            request.topics = None;
            let response = conn.submit(&request, version).await?.wait().await?;
            error::check(response.error_code, None).with_context(what)?;
            for t in response.topics {
                for p in t.partitions {
                    let metadata = p.metadata.map(|m| m.to_string()).unwrap_or_default();
                    found.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        metadata,
                        p.error_code,
                    ));
                }
            }
        }
        let mut offsets = BTreeMap::new();
        for (topic, partition, offset, leader_epoch, metadata, code) in found {
            error::check(code, None).with_context(|| format!("{}: {topic}-{partition}", what()))?;
            // -1: no offset committed for this partition.
            if offset >= 0 {
                offsets.insert(
                    (topic, partition),
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                    },
                );
            }
        }
        Ok(offsets)
    }

    /// Commits `offsets` for `group` as a simple consumer (generation -1, no member id), which
    /// Kafka accepts only while the group has no members. Fails with the broker's error for the
    /// first partition it refused, naming every refused partition.
    pub async fn commit_offsets(&self, group: &str, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let (_, conn) = self.coordinator(group).await?;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            topics.entry(topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_group_instance_id(None)
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = conn.send(&request).await?;
        let mut refused = Vec::new();
        let mut first_error = None;
        let mut answered = 0;
        for t in &response.topics {
            for p in &t.partitions {
                answered += 1;
                if let Err(e) = error::check(p.error_code, None) {
                    refused.push(format!("{}-{}", t.name.0.as_str(), p.partition_index));
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot commit offsets of group '{group}' for {}", refused.join(", ")));
        }
        if answered != offsets.len() {
            bail!(
                "the broker answered {answered} of {} partitions committed for group '{group}'",
                offsets.len()
            );
        }
        Ok(())
    }

    /// Deletes groups (which must have no members) and their committed offsets, each through
    /// its coordinator. Returns the broker's verdict per group, in the order given.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<(), KafkaError>)>> {
        let mut results = Vec::with_capacity(groups.len());
        for group in groups {
            let (_, conn) = self.coordinator(group).await?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let response = conn.send(&request).await?;
            let result = response
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == group.as_str())
                .ok_or_else(|| anyhow!("the broker's DeleteGroups response omits group '{group}'"))?;
            results.push((group.clone(), error::check(result.error_code, None)));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
    use kafka_protocol::protocol::Encodable;

    fn encode(version: i16, topics: &[(&str, &[i32])]) -> Bytes {
        let assignment = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        AssignedTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps.to_vec())
                    })
                    .collect(),
            )
            .with_user_data(Some(Bytes::from_static(b"sticky")));
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        assignment.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    #[test]
    fn assignments_decode_in_every_version_sorted() {
        for version in 0..=3 {
            let bytes = encode(version, &[("b", &[3, 1]), ("a", &[2]), ("b", &[0])]);
            assert_eq!(
                decode_assignment(&bytes).unwrap(),
                vec![("a".to_string(), vec![2]), ("b".to_string(), vec![0, 1, 3])],
                "version {version}"
            );
        }
    }

    #[test]
    fn newer_assignment_versions_decode_by_their_known_prefix() {
        // A v4 assignment (a future version) is a v3 body plus fields we do not know.
        let mut bytes = BytesMut::from(&encode(3, &[("t", &[0])])[..]);
        bytes[..2].copy_from_slice(&4i16.to_be_bytes());
        assert_eq!(
            decode_assignment(&bytes.freeze()).unwrap(),
            vec![("t".to_string(), vec![0])]
        );
    }

    #[test]
    fn empty_and_broken_assignments() {
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff])).is_err());
        // Version 0 with a topic count of 1 and nothing after it.
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn coordinator_addresses_bracket_ipv6() {
        let c = |host: &str| Coordinator {
            node_id: 1,
            host: host.into(),
            port: 9092,
        };
        assert_eq!(c("127.0.0.1").addr(), "127.0.0.1:9092");
        assert_eq!(c("::1").addr(), "[::1]:9092");
    }
}
