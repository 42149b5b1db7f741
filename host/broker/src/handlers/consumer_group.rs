//! The consumer group protocol (KIP-848): ConsumerGroupHeartbeat and ConsumerGroupDescribe.
//! Requests are checked here as Kafka checks them; the group logic is in
//! `coordinator::consumer_group`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTopicPartitions,
};
use kafka_protocol::messages::*;
use strom_metadata::MetadataImage;
use uuid::Uuid;

use super::groups::ensure_offsets_topic;
use super::{str_bytes, topic_name};
use crate::broker::{Broker, RequestContext};
use crate::coordinator::assignor::{self, Assignment};
use crate::coordinator::consumer_group::{Heartbeat, Refusal, TopicRegex, Topics, LEAVE_EPOCH, STATIC_LEAVE_EPOCH};
use crate::security::acl::{Operation, ResourceType};

impl Topics for MetadataImage {
    fn lookup(&self, name: &str) -> Option<(Uuid, u32)> {
        self.topic(name).map(|t| (t.id, t.partitions))
    }

    fn names(&self) -> Vec<String> {
        self.topics().map(|t| t.name.clone()).collect()
    }
}

fn invalid(message: &str) -> Refusal {
    (ResponseError::InvalidRequest, message.to_string())
}

/// Kafka's checks of a ConsumerGroupHeartbeat request, before any group is looked at.
fn validate(request: &ConsumerGroupHeartbeatRequest, version: i16, assignors: &[&str]) -> Result<(), Refusal> {
    if request.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if request.instance_id.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if request.rack_id.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid("RackId can't be empty."));
    }
    if version >= 1 && request.member_id.is_empty() {
        return Err(invalid("MemberId can't be empty."));
    }
    match request.member_epoch {
        epoch if epoch > 0 || epoch == LEAVE_EPOCH => {
            if request.member_id.is_empty() {
                return Err(invalid("MemberId can't be empty."));
            }
        }
        0 => {
            if request.rebalance_timeout_ms == -1 {
                return Err(invalid("RebalanceTimeoutMs must be provided in first request."));
            }
            if request.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                return Err(invalid("TopicPartitions must be empty when (re-)joining."));
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
                return Err(invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                ));
            }
        }
        STATIC_LEAVE_EPOCH => {
            if request.member_id.is_empty() {
                return Err(invalid("MemberId can't be empty."));
            }
            if request.instance_id.is_none() {
                return Err(invalid("InstanceId can't be null."));
            }
        }
        _ => return Err(invalid("MemberEpoch is invalid.")),
    }
    if let Some(name) = &request.server_assignor {
        if !assignors.contains(&name.as_str()) {
            return Err((
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    assignors.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

pub async fn heartbeat(
    broker: &Broker,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let coordinator = &broker.coordinator;
    let settings = coordinator.consumer_settings();
    let mut response = ConsumerGroupHeartbeatResponse::default();
    if !broker.authorized(ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        response.error_message = Some(str_bytes(format!(
            "{} may not read group {}",
            ctx.principal, request.group_id.0
        )));
        return response;
    }
    let outcome = validate(&request, ctx.version, &settings.assignors).and_then(|()| {
        // An empty regex drops the member's regex subscription.
        let subscribed_topic_regex = match request.subscribed_topic_regex.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(pattern) => Some(Some(TopicRegex::new(pattern)?)),
        };
        let owned: Option<Assignment> = request.topic_partitions.as_ref().map(|tps| {
            let mut owned = Assignment::new();
            for tp in tps {
                owned
                    .entry(tp.topic_id)
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
            owned
        });
        let hb = Heartbeat {
            member_id: request.member_id.to_string(),
            member_epoch: request.member_epoch,
            instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
            rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            subscribed_topic_names: request
                .subscribed_topic_names
                .as_ref()
                .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
            subscribed_topic_regex,
            server_assignor: request
                .server_assignor
                .as_ref()
                .and_then(|n| assignor::canonical_name(n))
                .map(String::from),
            owned,
            client_id: ctx.client_id.clone(),
            client_host: format!("/{}", ctx.peer.ip()),
        };
        let image = broker.metadata.image();
        let answer = coordinator.consumer_heartbeat(&request.group_id.0, hb, image.as_ref())?;
        // The new state is written to __consumer_offsets before the member hears of it.
        ensure_offsets_topic(broker)
            .map_err(|(code, message)| anyhow::anyhow!("{message} ({code:?})"))
            .and_then(|()| coordinator.persist_consumer_groups(&broker.partitions))
            .map_err(|e| {
                tracing::error!(group = %request.group_id.0, error = %format!("{e:#}"), "writing consumer group records failed");
                (
                    ResponseError::CoordinatorNotAvailable,
                    "the group's state could not be written".to_string(),
                )
            })?;
        Ok(answer)
    });
    match outcome {
        Ok(answer) => {
            response.member_id = Some(str_bytes(answer.member_id));
            response.member_epoch = answer.member_epoch;
            response.heartbeat_interval_ms = settings.heartbeat_interval_ms;
            response.assignment = answer.assignment.map(|a| {
                HeartbeatAssignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic, partitions)| {
                            HeartbeatTopicPartitions::default()
                                .with_topic_id(topic)
                                .with_partitions(partitions.into_iter().collect())
                        })
                        .collect(),
                )
            });
        }
        Err((code, message)) => {
            tracing::debug!(group = %request.group_id.0, member = %request.member_id, error = ?code, %message, "consumer group heartbeat refused");
            response.error_code = code.code();
            response.error_message = Some(str_bytes(message));
            response.member_epoch = -1;
        }
    }
    response
}

fn described(assignment: &Assignment, image: &MetadataImage) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        assignment
            .iter()
            .filter_map(|(id, partitions)| {
                let topic = image.topic_by_id(id)?;
                Some(
                    DescribedTopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(topic_name(&topic.name))
                        .with_partitions(partitions.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.metadata.image();
    let mut response = ConsumerGroupDescribeResponse::default();
    for group_id in request.group_ids {
        let mut g = DescribedGroup::default().with_group_id(group_id.clone());
        let (operations, denied) =
            super::groups::describe_access(broker, ctx, &group_id, request.include_authorized_operations);
        g.authorized_operations = operations;
        if let Some(error) = denied {
            g.error_code = error.code();
            response.groups.push(g);
            continue;
        }
        match broker.coordinator.describe_consumer_group(&group_id.0) {
            Ok(d) => {
                g.group_state = str_bytes(d.state);
                g.group_epoch = d.epoch;
                g.assignment_epoch = d.assignment_epoch;
                g.assignor_name = str_bytes(d.assignor);
                g.members = d
                    .members
                    .into_iter()
                    .map(|(m, target)| {
                        let mut member = Member::default()
                            .with_member_id(str_bytes(m.id.clone()))
                            .with_instance_id(m.instance_id.clone().map(str_bytes))
                            .with_rack_id(m.rack_id.clone().map(str_bytes))
                            .with_member_epoch(m.epoch)
                            .with_client_id(str_bytes(m.client_id.clone()))
                            .with_client_host(str_bytes(m.client_host.clone()))
                            .with_subscribed_topic_names(
                                m.subscribed_topic_names.iter().map(|n| topic_name(n)).collect(),
                            )
                            .with_subscribed_topic_regex(
                                m.subscribed_topic_regex.as_ref().map(|r| str_bytes(r.pattern.clone())),
                            )
                            .with_assignment(described(&m.assigned, &image))
                            .with_target_assignment(described(&target, &image));
                        if ctx.version >= 1 {
                            member.member_type = 1; // a consumer-protocol member
                        }
                        member
                    })
                    .collect();
            }
            Err((code, message)) => {
                g.error_code = code.code();
                g.error_message = Some(str_bytes(message));
            }
        }
        response.groups.push(g);
    }
    response
}
