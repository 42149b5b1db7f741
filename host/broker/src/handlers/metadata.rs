//! Metadata: brokers (as advertised on the listener the client used), the cluster id and
//! controller, and topics with their partitions; auto-creates topics like Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use strom_metadata::TopicImage;

use super::{str_bytes, topic_name, topics};
use crate::broker::{Broker, RequestContext};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// The operations a topic's authorized-operations bit set reports.
pub const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
/// What Kafka reports when authorized operations were not asked for.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub async fn handle(broker: &Broker, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let node = BrokerId(broker.config.node_id);
    let mut response = MetadataResponse::default();
    if let Some(advertised) = broker.config.advertised_for(&ctx.listener) {
        let mut b = MetadataResponseBroker::default();
        b.node_id = node;
        b.host = str_bytes(advertised.host.clone());
        b.port = advertised.port as i32;
        response.brokers.push(b);
    }
    response.controller_id = node;
    response.cluster_authorized_operations = OPERATIONS_NOT_REQUESTED;

    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match request.topics {
        Some(topics) if !(ctx.version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    // v0-3 cannot say "do not create"; Kafka treats them as allowing it.
    let allow_create =
        (ctx.version < 4 || request.allow_auto_topic_creation) && broker.config.bool("auto.create.topics.enable");
    let operations = |name: &str| {
        if request.include_topic_authorized_operations {
            broker.authorized_operations(ctx, ResourceType::Topic, name, TOPIC_OPERATIONS)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    let may = |op, name: &str| broker.authorized(ctx, op, ResourceType::Topic, name);

    let image = broker.metadata.image();
    response.cluster_id = Some(str_bytes(image.cluster_id.clone()));
    match requested {
        None => {
            // Topics the principal may not describe are left out, as Kafka does.
            for topic in image.topics().filter(|t| may(Operation::Describe, &t.name)) {
                response.topics.push(describe(broker, topic, operations(&topic.name)));
            }
        }
        Some(wanted) => {
            for want in wanted {
                let name = want.name.as_ref().map(|n| n.0.to_string());
                let found = match &name {
                    Some(name) => image.topic(name).cloned(),
                    None => image.topic_by_id(&want.topic_id).cloned(),
                };
                let entry = match (found, name) {
                    (Some(topic), _) if !may(Operation::Describe, &topic.name) => unknown(
                        Some(&topic.name),
                        want.topic_id,
                        ResponseError::TopicAuthorizationFailed,
                    ),
                    (Some(topic), _) => describe(broker, &topic, operations(&topic.name)),
                    (None, Some(name)) if !may(Operation::Describe, &name) && !may(Operation::Create, &name) => {
                        unknown(Some(&name), want.topic_id, ResponseError::TopicAuthorizationFailed)
                    }
                    (None, Some(name))
                        if allow_create
                            && (may(Operation::Create, &name)
                                || broker.authorized(ctx, Operation::Create, ResourceType::Cluster, CLUSTER_NAME)) =>
                    {
                        match topics::create_topic(broker, &name, -1, -1, Default::default(), false) {
                            Ok(topic) => describe(broker, &topic, operations(&topic.name)),
                            Err((code, message)) => {
                                tracing::debug!(topic = %name, %message, "auto-creation refused");
                                unknown(Some(&name), want.topic_id, code)
                            }
                        }
                    }
                    (None, Some(name)) => unknown(Some(&name), want.topic_id, ResponseError::UnknownTopicOrPartition),
                    (None, None) => unknown(None, want.topic_id, ResponseError::UnknownTopicId),
                };
                response.topics.push(entry);
            }
        }
    }
    response
}

fn describe(broker: &Broker, topic: &TopicImage, operations: i32) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    t.topic_id = topic.id;
    t.is_internal = topic.name.starts_with("__");
    t.topic_authorized_operations = operations;
    t.partitions = (0..topic.partitions as i32)
        .map(|index| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = index;
            p.leader_id = node;
            p.leader_epoch = 0;
            p.replica_nodes = vec![node];
            p.isr_nodes = vec![node];
            p
        })
        .collect();
    t
}

fn unknown(name: Option<&str>, id: uuid::Uuid, code: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name.map(topic_name);
    t.topic_id = id;
    t.error_code = code.code();
    t.topic_authorized_operations = OPERATIONS_NOT_REQUESTED;
    t
}
