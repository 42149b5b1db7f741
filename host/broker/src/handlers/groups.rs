//! FindCoordinator and the classic group membership APIs: JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, plus DescribeGroups, ListGroups and DeleteGroups.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;

use super::{str_bytes, topics};
use crate::broker::{Broker, RequestContext};
use crate::coordinator::offsets::OFFSETS_TOPIC;
use crate::coordinator::{JoinRequest, SyncRequest};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

const KEY_TYPE_GROUP: i8 = 0;
/// The operations a group's authorized-operations bit set reports.
const GROUP_OPERATIONS: &[Operation] = &[Operation::Read, Operation::Delete, Operation::Describe];

/// For describing a group (DescribeGroups, ConsumerGroupDescribe): the authorized-operations
/// bits to report (`i32::MIN` unless asked for), and GROUP_AUTHORIZATION_FAILED if the
/// principal may not describe it.
pub(crate) fn describe_access(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    include_operations: bool,
) -> (i32, Option<ResponseError>) {
    let operations = if include_operations {
        broker.authorized_operations(ctx, ResourceType::Group, group, GROUP_OPERATIONS)
    } else {
        i32::MIN
    };
    let denied = (!broker.authorized(ctx, Operation::Describe, ResourceType::Group, group))
        .then_some(ResponseError::GroupAuthorizationFailed);
    (operations, denied)
}

/// Creates `__consumer_offsets` on first use, as Kafka does.
pub fn ensure_offsets_topic(broker: &Broker) -> Result<(), (ResponseError, String)> {
    if broker.metadata.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        (
            "segment.bytes".to_string(),
            broker.config.get("offsets.topic.segment.bytes").to_string(),
        ),
    ]);
    let partitions = broker.coordinator.offsets.partitions();
    match topics::create_topic(broker, OFFSETS_TOPIC, partitions, 1, configs, false) {
        Ok(_) | Err((ResponseError::TopicAlreadyExists, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the group metadata records of groups that changed (a completed generation, a
/// group that became empty) before the members hear of it, as Kafka does.
fn persist_groups(broker: &Broker, group: &str) -> Result<(), ResponseError> {
    let written = ensure_offsets_topic(broker)
        .map_err(|(code, message)| anyhow::anyhow!("{message} ({code:?})"))
        .and_then(|()| broker.coordinator.persist_groups(&broker.partitions));
    written.map_err(|e| {
        tracing::error!(group, error = %format!("{e:#}"), "writing the group metadata record failed");
        ResponseError::CoordinatorNotAvailable
    })
}

fn client_host(ctx: &RequestContext) -> String {
    format!("/{}", ctx.peer.ip())
}

pub async fn find_coordinator(
    broker: &Broker,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytesKey> = if ctx.version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let advertised = broker.config.advertised_for(&ctx.listener).cloned();
    let mut response = FindCoordinatorResponse::default();
    for key in keys {
        let mut c = Coordinator::default();
        c.key = key.clone();
        let outcome = if request.key_type != KEY_TYPE_GROUP {
            Err((
                ResponseError::InvalidRequest,
                format!(
                    "coordinator key type {} is not supported (transactions are not implemented yet)",
                    request.key_type
                ),
            ))
        } else if key.is_empty() {
            Err((ResponseError::InvalidGroupId, "the group id is empty".to_string()))
        } else if !broker.authorized(ctx, Operation::Describe, ResourceType::Group, &key) {
            Err((
                ResponseError::GroupAuthorizationFailed,
                format!("{} may not describe group {key}", ctx.principal),
            ))
        } else {
            ensure_offsets_topic(broker)
        };
        match (outcome, &advertised) {
            (Ok(()), Some(listener)) => {
                c.node_id = BrokerId(broker.config.node_id);
                c.host = str_bytes(listener.host.clone());
                c.port = listener.port as i32;
            }
            (Ok(()), None) => {
                c.error_code = ResponseError::CoordinatorNotAvailable.code();
                c.error_message = Some(str_bytes("this listener is not advertised"));
                c.node_id = BrokerId(-1);
            }
            (Err((code, message)), _) => {
                c.error_code = code.code();
                c.error_message = Some(str_bytes(message));
                c.node_id = BrokerId(-1);
            }
        }
        if ctx.version >= 4 {
            response.coordinators.push(c);
        } else {
            response.error_code = c.error_code;
            if ctx.version >= 1 {
                response.error_message = c.error_message;
            }
            response.node_id = c.node_id;
            response.host = c.host;
            response.port = c.port;
        }
    }
    response
}

type StrBytesKey = kafka_protocol::protocol::StrBytes;

pub async fn join_group(broker: &Broker, ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    if !broker.authorized(ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        let mut response = JoinGroupResponse::default();
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        response.generation_id = -1;
        response.protocol_name = (ctx.version < 7).then(|| str_bytes(""));
        return response;
    }
    let outcome = broker
        .coordinator
        .join(JoinRequest {
            group_id: request.group_id.0.to_string(),
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: ctx.client_id.clone(),
            client_host: client_host(ctx),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: if ctx.version >= 1 {
                request.rebalance_timeout_ms
            } else {
                request.session_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            require_known_member_id: ctx.version >= 4,
        })
        .await;
    let mut outcome = outcome;
    if outcome.error.is_none() {
        // A static member that replaced another changed a stable group: record it.
        if let Err(e) = persist_groups(broker, &request.group_id.0) {
            outcome = crate::coordinator::JoinOutcome::error(e, &outcome.member_id);
        }
    }
    let mut response = JoinGroupResponse::default();
    if ctx.version >= 9 {
        response.skip_assignment = outcome.skip_assignment;
    }
    response.error_code = outcome.error.map(|e| e.code()).unwrap_or(0);
    response.generation_id = outcome.generation;
    response.member_id = str_bytes(outcome.member_id);
    response.leader = str_bytes(outcome.leader);
    if ctx.version >= 7 {
        response.protocol_type = outcome.protocol_type.map(str_bytes);
        response.protocol_name = outcome.protocol.map(str_bytes);
    } else {
        response.protocol_name = Some(str_bytes(outcome.protocol.unwrap_or_default()));
    }
    response.members = outcome
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = str_bytes(id);
            if ctx.version >= 5 {
                m.group_instance_id = instance.map(str_bytes);
            }
            m.metadata = metadata;
            m
        })
        .collect();
    response
}

pub async fn sync_group(broker: &Broker, ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    if !broker.authorized(ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        let mut response = SyncGroupResponse::default();
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let mut outcome = broker
        .coordinator
        .sync(SyncRequest {
            group_id: request.group_id.0.to_string(),
            generation: request.generation_id,
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
            protocol: request.protocol_name.as_ref().map(|s| s.to_string()),
            assignments: request
                .assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
        })
        .await;
    let mut response = SyncGroupResponse::default();
    // The completed generation is written to __consumer_offsets before members hear of it.
    if outcome.error.is_none() {
        if let Err(e) = persist_groups(broker, &request.group_id.0) {
            outcome.error = Some(e);
        }
    }
    response.error_code = outcome.error.map(|e| e.code()).unwrap_or(0);
    response.assignment = outcome.assignment;
    if ctx.version >= 5 {
        response.protocol_type = outcome.protocol_type.map(str_bytes);
        response.protocol_name = outcome.protocol.map(str_bytes);
    }
    response
}

pub async fn heartbeat(broker: &Broker, ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    if !broker.authorized(ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let error = broker.coordinator.heartbeat(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    response.error_code = error.map(|e| e.code()).unwrap_or(0);
    response
}

pub async fn leave_group(broker: &Broker, ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    if !broker.authorized(ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let outcome = broker
        .coordinator
        .leave(&request.group_id.0, &members)
        .and_then(|results| persist_groups(broker, &request.group_id.0).map(|()| results));
    match outcome {
        Err(e) => response.error_code = e.code(),
        Ok(results) if ctx.version >= 3 => {
            response.members = members
                .into_iter()
                .zip(results)
                .map(|((id, instance), error)| {
                    let mut m = MemberResponse::default();
                    m.member_id = str_bytes(id);
                    m.group_instance_id = instance.map(str_bytes);
                    m.error_code = error.map(|e| e.code()).unwrap_or(0);
                    m
                })
                .collect();
        }
        Ok(results) => response.error_code = results.first().copied().flatten().map(|e| e.code()).unwrap_or(0),
    }
    response
}

pub async fn describe_groups(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in request.groups {
        let mut g = DescribedGroup::default();
        g.group_id = group_id.clone();
        let (operations, denied) = describe_access(broker, ctx, &group_id, request.include_authorized_operations);
        g.authorized_operations = operations;
        if let Some(error) = denied {
            g.error_code = error.code();
            response.groups.push(g);
            continue;
        }
        match broker.coordinator.describe(&group_id.0) {
            Some(description) => {
                g.group_state = str_bytes(description.state);
                g.protocol_type = str_bytes(description.protocol_type);
                g.protocol_data = str_bytes(description.protocol);
                g.members = description
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut d = DescribedGroupMember::default();
                        d.member_id = str_bytes(m.member_id);
                        if ctx.version >= 4 {
                            d.group_instance_id = m.instance_id.map(str_bytes);
                        }
                        d.client_id = str_bytes(m.client_id);
                        d.client_host = str_bytes(m.client_host);
                        d.member_metadata = m.metadata;
                        d.member_assignment = m.assignment;
                        d
                    })
                    .collect();
            }
            // Kafka describes an unknown group as Dead, with no error.
            None => g.group_state = str_bytes("Dead"),
        }
        response.groups.push(g);
    }
    response
}

pub async fn list_groups(broker: &Broker, ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut response = ListGroupsResponse::default();
    // Without DESCRIBE on the cluster, a principal sees only the groups it may describe.
    let sees_all = broker.authorized(ctx, Operation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    for (id, protocol_type, state, group_type) in broker.coordinator.list() {
        if !sees_all && !broker.authorized(ctx, Operation::Describe, ResourceType::Group, &id) {
            continue;
        }
        if !states.is_empty() && !states.contains(&state.to_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.iter().any(|t| t == group_type) {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(str_bytes(id));
        g.protocol_type = str_bytes(protocol_type);
        if ctx.version >= 4 {
            g.group_state = str_bytes(state);
        }
        if ctx.version >= 5 {
            g.group_type = str_bytes(group_type);
        }
        response.groups.push(g);
    }
    response
}

pub async fn delete_groups(
    broker: &Broker,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let mut r = DeletableGroupResult::default();
        r.group_id = group_id.clone();
        let deleted = if !broker.authorized(ctx, Operation::Delete, ResourceType::Group, &group_id) {
            Err(ResponseError::GroupAuthorizationFailed)
        } else {
            broker.coordinator.delete(&broker.partitions, &group_id.0).and_then(|()| {
                // A consumer-protocol group's records are tombstoned before the answer.
                broker.coordinator.persist_consumer_groups(&broker.partitions).map_err(|e| {
                    tracing::error!(group = %group_id.0, error = %format!("{e:#}"), "deleting consumer group records failed");
                    ResponseError::KafkaStorageError
                })
            })
        };
        if let Err(e) = deleted {
            r.error_code = e.code();
        }
        response.results.push(r);
    }
    response
}
