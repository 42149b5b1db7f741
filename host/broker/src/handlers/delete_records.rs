//! DeleteRecords: move a partition's log start offset forward.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::storage_error_code;
use crate::broker::{now_ms, Broker, RequestContext};
use crate::security::acl::{Operation, ResourceType};

/// An offset of -1 means "up to the high watermark".
const TO_HIGH_WATERMARK: i64 = -1;

pub async fn handle(broker: &Broker, ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        let may_delete = broker.authorized(ctx, Operation::Delete, ResourceType::Topic, &name);
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            match broker.partitions.get(&name, p.partition_index) {
                _ if !may_delete => r.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    let mut log = partition.log.write();
                    let offset = if p.offset == TO_HIGH_WATERMARK {
                        log.high_watermark()
                    } else {
                        p.offset
                    };
                    match log.delete_records_before(offset, now_ms()) {
                        Ok(low) => r.low_watermark = low,
                        Err(e) => r.error_code = storage_error_code(&e).code(),
                    }
                }
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}
