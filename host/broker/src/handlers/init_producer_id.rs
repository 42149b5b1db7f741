//! InitProducerId for idempotent producers: hands out producer ids from blocks reserved in
//! the metadata log, so an id is never reused, even across a crash.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use parking_lot::Mutex;
use strom_metadata::MetadataRecord;

use crate::broker::{Broker, RequestContext};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Producer ids reserved per metadata record.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Default)]
pub struct ProducerIdAllocator {
    /// (next id to hand out, end of the reserved block); both zero until first use.
    block: Mutex<Option<(i64, i64)>>,
}

impl ProducerIdAllocator {
    fn allocate(&self, broker: &Broker) -> Result<i64, String> {
        let mut block = self.block.lock();
        let (next, end) = match *block {
            Some((next, end)) if next < end => (next, end),
            _ => {
                let start = broker.metadata.image().next_producer_id;
                let end = start + PRODUCER_ID_BLOCK;
                broker
                    .metadata
                    .submit(vec![MetadataRecord::ProducerIdsAllocated { next: end }])
                    .map_err(|e| format!("reserving producer ids: {e}"))?;
                (start, end)
            }
        };
        *block = Some((next + 1, end));
        Ok(next)
    }
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.as_ref().is_some_and(|id| !id.0.is_empty()) {
        tracing::warn!(client = %ctx.client_id, "refusing a transactional producer: transactions are not supported yet");
        response.error_code = ResponseError::InvalidRequest.code();
        return response;
    }
    // Kafka (KIP-679): an idempotent producer needs IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic.
    if broker.authorizer.enabled()
        && !broker.authorized(ctx, Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME)
        && !broker
            .metadata
            .image()
            .topics()
            .any(|t| broker.authorized(ctx, Operation::Write, ResourceType::Topic, &t.name))
    {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    // Like Kafka, a producer without a transactional id always gets a fresh id (also when
    // it asks to bump the epoch of an old one, KIP-360), so its sequences start over.
    match broker.producer_ids.allocate(broker) {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(message) => {
            tracing::error!(%message, "InitProducerId failed");
            response.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    response
}
