//! CreateTopics, DeleteTopics and CreatePartitions: validate against the image, then
//! commit metadata records and let the partition manager follow the new image.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use strom_metadata::{MetadataRecord, TopicImage};
use uuid::Uuid;

use super::configs;
use super::{str_bytes, topic_name, validate_topic_name};
use crate::broker::{Broker, RequestContext};
use crate::config::topic as topic_config;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Upper bound on partitions per topic: each partition holds open files and memory.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

type Refusal = (ResponseError, String);

/// Creates a topic (or, with `validate_only`, checks that it could be created).
/// `partitions` and `replication_factor` of -1 take the broker defaults.
pub fn create_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<TopicImage, Refusal> {
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    let partitions = if partitions == -1 {
        broker.config.i64("num.partitions") as i32
    } else {
        partitions
    };
    if partitions <= 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err((
            ResponseError::InvalidPartitions,
            format!("number of partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {partitions}"),
        ));
    }
    let replication_factor = if replication_factor == -1 {
        broker.config.i64("default.replication.factor") as i16
    } else {
        replication_factor
    };
    if replication_factor != 1 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {replication_factor} cannot be met: this cluster has 1 broker"),
        ));
    }
    topic_config::validate_all(&configs).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    let topic = TopicImage {
        name: name.to_string(),
        id: Uuid::new_v4(),
        partitions: partitions as u32,
        configs,
    };
    let committed = broker.metadata.submit_with(|image| {
        if image.topic(name).is_some() {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        crate::plugins::validate_attachments(&broker.config, image, &topic.configs)
            .map_err(|m| (ResponseError::InvalidConfig, m))?;
        let collision = name.replace('.', "_");
        if let Some(other) = image.topics().find(|t| t.name.replace('.', "_") == collision) {
            return Err((
                ResponseError::InvalidTopicException,
                format!(
                    "topic '{name}' collides with existing topic '{}': '.' and '_' must not be the only difference",
                    other.name
                ),
            ));
        }
        if validate_only {
            return Ok(vec![]);
        }
        Ok(vec![MetadataRecord::TopicCreated {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions,
            configs: topic.configs.clone(),
        }])
    });
    match committed {
        Ok(Ok(_)) => {}
        Ok(Err(refusal)) => return Err(refusal),
        Err(e) => return Err((ResponseError::KafkaStorageError, format!("metadata log: {e}"))),
    }
    if !validate_only {
        broker
            .apply_metadata()
            .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}")))?;
        tracing::info!(topic = name, partitions, "created topic");
    }
    Ok(topic)
}

pub async fn create_topics(
    broker: &Broker,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
    let duplicates: std::collections::HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        result.num_partitions = -1;
        result.replication_factor = -1;
        let outcome = if duplicates.contains(&name) {
            Err((
                ResponseError::InvalidRequest,
                format!("topic '{name}' appears more than once in the request"),
            ))
        } else if !broker.authorized(ctx, Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
            && !broker.authorized(ctx, Operation::Create, ResourceType::Topic, &name)
        {
            Err((
                ResponseError::TopicAuthorizationFailed,
                format!("{} may not create topic {name}", ctx.principal),
            ))
        } else {
            creatable_to_args(broker, &topic).and_then(|(partitions, rf, configs)| {
                create_topic(broker, &name, partitions, rf, configs, request.validate_only)
            })
        };
        match outcome {
            Ok(_) if ctx.version < 5 => {}
            Ok(created) => {
                if ctx.version >= 7 && !request.validate_only {
                    result.topic_id = created.id;
                }
                result.num_partitions = created.partitions as i32;
                result.replication_factor = 1;
                result.configs = Some(
                    configs::topic_entries(broker, &created.configs)
                        .into_iter()
                        .map(|entry| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = str_bytes(entry.name);
                            c.value = Some(str_bytes(entry.value));
                            c.config_source = entry.source as i8;
                            c
                        })
                        .collect(),
                );
            }
            Err((code, message)) => {
                result.error_code = code.code();
                if ctx.version >= 1 {
                    result.error_message = Some(str_bytes(message));
                }
            }
        }
        response.topics.push(result);
    }
    response
}

fn creatable_to_args(
    broker: &Broker,
    topic: &create_topics_request::CreatableTopic,
) -> Result<(i32, i16, BTreeMap<String, String>), Refusal> {
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let Some(value) = &config.value else {
            return Err((
                ResponseError::InvalidConfig,
                format!("config {} has a null value", config.name.as_str()),
            ));
        };
        configs.insert(config.name.to_string(), value.to_string());
    }
    if topic.assignments.is_empty() {
        return Ok((topic.num_partitions, topic.replication_factor, configs));
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "with manual replica assignments, numPartitions and replicationFactor must be -1".into(),
        ));
    }
    let node = broker.config.node_id;
    for (expected, assignment) in topic.assignments.iter().enumerate() {
        if assignment.partition_index != expected as i32 || assignment.broker_ids.iter().map(|b| b.0).ne([node]) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "partition {} is assigned to {:?}; this cluster has only broker {node}",
                    assignment.partition_index,
                    assignment.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>()
                ),
            ));
        }
    }
    Ok((topic.assignments.len() as i32, 1, configs))
}

pub async fn delete_topics(
    broker: &Broker,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    let mut changed = false;
    for (name, id) in wanted {
        let mut result = DeletableTopicResult::default();
        result.name = name.as_deref().map(topic_name);
        result.topic_id = id;
        let image = broker.metadata.image();
        let found = match &name {
            Some(name) => image.topic(name).ok_or(ResponseError::UnknownTopicOrPartition),
            None => image.topic_by_id(&id).ok_or(ResponseError::UnknownTopicId),
        };
        let code = match found {
            Err(code) => Some((code, "topic does not exist".to_string())),
            Ok(topic) if !broker.authorized(ctx, Operation::Delete, ResourceType::Topic, &topic.name) => {
                result.name = Some(topic_name(&topic.name));
                Some((
                    ResponseError::TopicAuthorizationFailed,
                    format!("{} may not delete topic {}", ctx.principal, topic.name),
                ))
            }
            Ok(topic) => {
                result.name = Some(topic_name(&topic.name));
                result.topic_id = topic.id;
                match broker
                    .metadata
                    .submit(vec![MetadataRecord::TopicDeleted { topic_id: topic.id }])
                {
                    Ok(_) => {
                        tracing::info!(topic = %topic.name, "deleted topic");
                        changed = true;
                        None
                    }
                    Err(e) => Some((ResponseError::KafkaStorageError, format!("metadata log: {e}"))),
                }
            }
        };
        if let Some((code, message)) = code {
            result.error_code = code.code();
            if ctx.version >= 5 {
                result.error_message = Some(str_bytes(message));
            }
        }
        response.responses.push(result);
    }
    if changed {
        if let Err(e) = broker.apply_metadata() {
            tracing::error!(error = %format!("{e:#}"), "deleting partition logs failed");
        }
    }
    response
}

pub async fn create_partitions(
    broker: &Broker,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    let node = broker.config.node_id;
    let mut changed = false;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        if !broker.authorized(ctx, Operation::Alter, ResourceType::Topic, &name) {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some(str_bytes(format!("{} may not alter topic {name}", ctx.principal)));
            response.results.push(result);
            continue;
        }
        let committed = broker.metadata.submit_with(|image| {
            let current = image.topic(&name).ok_or((
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            ))?;
            let count = topic.count;
            if count <= current.partitions as i32 {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!(
                        "topic '{name}' has {} partitions; the new count {count} must be larger",
                        current.partitions
                    ),
                ));
            }
            if count > PARTITIONS_PER_TOPIC_MAX {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("at most {PARTITIONS_PER_TOPIC_MAX} partitions per topic"),
                ));
            }
            if let Some(assignments) = &topic.assignments {
                if assignments.len() as i32 != count - current.partitions as i32
                    || assignments.iter().any(|a| a.broker_ids.iter().map(|b| b.0).ne([node]))
                {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "each of the {} new partitions must be assigned to broker {node} alone",
                            count - current.partitions as i32
                        ),
                    ));
                }
            }
            if request.validate_only {
                return Ok(vec![]);
            }
            Ok(vec![MetadataRecord::PartitionsCreated {
                topic_id: current.id,
                total: count as u32,
            }])
        });
        let refusal = match committed {
            Ok(Ok(_)) => {
                changed |= !request.validate_only;
                None
            }
            Ok(Err(refusal)) => Some(refusal),
            Err(e) => Some((ResponseError::KafkaStorageError, format!("metadata log: {e}"))),
        };
        if let Some((code, message)) = refusal {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
        response.results.push(result);
    }
    if changed {
        if let Err(e) = broker.apply_metadata() {
            tracing::error!(error = %format!("{e:#}"), "opening new partitions failed");
        }
    }
    response
}
