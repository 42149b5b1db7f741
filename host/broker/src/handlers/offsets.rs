//! OffsetCommit, OffsetFetch and OffsetDelete.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use super::groups::ensure_offsets_topic;
use super::{str_bytes, topic_name};
use crate::broker::{now_ms, Broker, RequestContext};
use crate::coordinator::offsets::Committed;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `offset.metadata.max.bytes`.
const OFFSET_METADATA_BYTES_MAX: usize = 4096;

pub async fn offset_commit(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let may_read_group = broker.authorized(ctx, Operation::Read, ResourceType::Group, &group);
    let allowed = if !may_read_group {
        Err(ResponseError::GroupAuthorizationFailed)
    } else {
        Ok(())
    };
    let allowed = allowed.and_then(|()| {
        broker
            .coordinator
            .check_commit(
                &group,
                request.generation_id_or_member_epoch,
                &request.member_id,
                request.group_instance_id.as_deref(),
                ctx.version,
            )
            .and_then(|()| ensure_offsets_topic(broker).map_err(|(code, _)| code))
    });
    let image = broker.metadata.image();
    let now = now_ms();
    let mut entries = Vec::new();
    let mut response = OffsetCommitResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut t = OffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        let may_read_topic = broker.authorized(ctx, Operation::Read, ResourceType::Topic, &name);
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            let error = match &allowed {
                Err(e) => Some(*e),
                Ok(()) if !may_read_topic => Some(ResponseError::TopicAuthorizationFailed),
                Ok(())
                    if !image
                        .topic(&name)
                        .is_some_and(|t| (p.partition_index as u32) < t.partitions && p.partition_index >= 0) =>
                {
                    Some(ResponseError::UnknownTopicOrPartition)
                }
                Ok(()) if metadata.len() > OFFSET_METADATA_BYTES_MAX => Some(ResponseError::OffsetMetadataTooLarge),
                Ok(()) => {
                    let leader_epoch = if ctx.version >= 6 { p.committed_leader_epoch } else { -1 };
                    entries.push((
                        name.clone(),
                        p.partition_index,
                        Some(Committed {
                            offset: p.committed_offset,
                            leader_epoch,
                            metadata,
                            commit_timestamp: now,
                        }),
                    ));
                    None
                }
            };
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = error.map(|e| e.code()).unwrap_or(0);
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    if let Err(e) = broker.coordinator.commit(&broker.partitions, &group, entries) {
        tracing::error!(group = %group, error = %format!("{e:#}"), "persisting committed offsets failed");
        for t in &mut response.topics {
            for p in &mut t.partitions {
                if p.error_code == 0 {
                    p.error_code = ResponseError::KafkaStorageError.code();
                }
            }
        }
    }
    response
}

/// (topic, partitions or None for all) as asked for in one group of an OffsetFetch.
type Wanted = Option<Vec<(String, Vec<i32>)>>;
/// Per topic, each asked-for partition with its committed offset, if any.
type CommittedByTopic = Vec<(String, Vec<(i32, Option<Committed>)>)>;

fn committed_for(broker: &Broker, group: &str, wanted: Wanted) -> CommittedByTopic {
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| (p, broker.coordinator.offsets.fetch(group, &topic, p)))
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut out: CommittedByTopic = Vec::new();
            for (topic, p, c) in broker.coordinator.offsets.all(group) {
                match out.last_mut() {
                    Some((t, list)) if *t == topic => list.push((p, Some(c))),
                    _ => out.push((topic, vec![(p, Some(c))])),
                }
            }
            out
        }
    }
}

pub async fn offset_fetch(broker: &Broker, ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if ctx.version >= 8 {
        for group in request.groups {
            let wanted: Wanted = group.topics.map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let mut g = OffsetFetchResponseGroup::default();
            g.group_id = group.group_id.clone();
            if !broker.authorized(ctx, Operation::Describe, ResourceType::Group, &group.group_id) {
                g.error_code = ResponseError::GroupAuthorizationFailed.code();
                response.groups.push(g);
                continue;
            }
            if ctx.version >= 9 {
                let member = group.member_id.as_ref().map(|m| m.as_str());
                if let Err(e) = broker
                    .coordinator
                    .check_offset_fetch(&group.group_id.0, member, group.member_epoch)
                {
                    g.error_code = e.code();
                    response.groups.push(g);
                    continue;
                }
            }
            for (topic, partitions) in committed_for(broker, &group.group_id.0, wanted) {
                if !broker.authorized(ctx, Operation::Describe, ResourceType::Topic, &topic) {
                    continue;
                }
                let mut t = OffsetFetchResponseTopics::default();
                t.name = topic_name(&topic);
                for (index, committed) in partitions {
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.partition_index = index;
                    p.committed_offset = committed.as_ref().map(|c| c.offset).unwrap_or(-1);
                    p.committed_leader_epoch = committed.as_ref().map(|c| c.leader_epoch).unwrap_or(-1);
                    p.metadata = Some(str_bytes(committed.map(|c| c.metadata).unwrap_or_default()));
                    t.partitions.push(p);
                }
                g.topics.push(t);
            }
            response.groups.push(g);
        }
        return response;
    }
    if !broker.authorized(ctx, Operation::Describe, ResourceType::Group, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let wanted: Wanted = request.topics.map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    for (topic, partitions) in committed_for(broker, &request.group_id.0, wanted) {
        if !broker.authorized(ctx, Operation::Describe, ResourceType::Topic, &topic) {
            continue;
        }
        let mut t = OffsetFetchResponseTopic::default();
        t.name = topic_name(&topic);
        for (index, committed) in partitions {
            let mut p = OffsetFetchResponsePartition::default();
            p.partition_index = index;
            p.committed_offset = committed.as_ref().map(|c| c.offset).unwrap_or(-1);
            if ctx.version >= 5 {
                p.committed_leader_epoch = committed.as_ref().map(|c| c.leader_epoch).unwrap_or(-1);
            }
            p.metadata = Some(str_bytes(committed.map(|c| c.metadata).unwrap_or_default()));
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}

pub async fn offset_delete(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let mut response = OffsetDeleteResponse::default();
    if !broker.authorized(ctx, Operation::Delete, ResourceType::Group, &group) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    if !broker.coordinator.is_known(&group) {
        response.error_code = ResponseError::GroupIdNotFound.code();
        return response;
    }
    let subscribed: HashSet<String> = broker
        .coordinator
        .subscribed_topics(&group)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tombstones = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = OffsetDeleteResponseTopic::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = OffsetDeleteResponsePartition::default();
            r.partition_index = p.partition_index;
            if subscribed.contains(&name) {
                r.error_code = ResponseError::GroupSubscribedToTopic.code();
            } else if broker
                .coordinator
                .offsets
                .fetch(&group, &name, p.partition_index)
                .is_some()
            {
                tombstones.push((name.clone(), p.partition_index, None));
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    if let Err(e) = broker.coordinator.commit(&broker.partitions, &group, tombstones) {
        tracing::error!(group = %group, error = %format!("{e:#}"), "deleting offsets failed");
        response.error_code = ResponseError::KafkaStorageError.code();
    }
    response
}
