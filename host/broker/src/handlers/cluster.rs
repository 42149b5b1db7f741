//! DescribeCluster: the brokers as seen from the caller's listener, cluster id, controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::{Broker, RequestContext};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// The operations the cluster's authorized-operations bit set reports.
const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.endpoint_type = ENDPOINT_TYPE_BROKERS;
    if ctx.version >= 1 && request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = Some(str_bytes("only broker endpoints (endpoint type 1) are served"));
        return response;
    }
    response.cluster_id = str_bytes(broker.metadata.image().cluster_id.clone());
    response.controller_id = BrokerId(broker.config.node_id);
    if !broker.authorized(ctx, Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes(format!("{} may not describe the cluster", ctx.principal)));
        return response;
    }
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        broker.authorized_operations(ctx, ResourceType::Cluster, CLUSTER_NAME, CLUSTER_OPERATIONS)
    } else {
        i32::MIN
    };
    if let Some(advertised) = broker.config.advertised_for(&ctx.listener) {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(broker.config.node_id);
        b.host = str_bytes(advertised.host.clone());
        b.port = advertised.port as i32;
        response.brokers.push(b);
    }
    response
}
