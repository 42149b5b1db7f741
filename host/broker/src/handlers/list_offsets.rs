//! ListOffsets: earliest, latest, max timestamp, and the first offset at or after a
//! timestamp (found through the time index, then by decoding that one batch).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::RecordBatchDecoder;
use strom_storage::{BatchHeader, TimestampType};

use super::produce::LEADER_EPOCH;
use super::{leader_epoch_error, storage_error_code};
use crate::broker::{Broker, RequestContext};
use crate::partitions::Partition;
use crate::security::acl::{Operation, ResourceType};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(broker: &Broker, ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        let may_describe = broker.authorized(ctx, Operation::Describe, ResourceType::Topic, &name);
        for p in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            if ctx.version >= 4 {
                r.leader_epoch = LEADER_EPOCH;
            }
            let outcome = match broker.partitions.get(&name, p.partition_index) {
                _ if !may_describe => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(partition) => {
                    if let Some(error) = leader_epoch_error(p.current_leader_epoch, LEADER_EPOCH) {
                        Err(error)
                    } else {
                        lookup(&partition, p.timestamp, ctx.version)
                    }
                }
            };
            match outcome {
                Ok((timestamp, offset)) => {
                    r.timestamp = timestamp;
                    r.offset = offset;
                }
                Err(code) => r.error_code = code.code(),
            }
            topic_response.partitions.push(r);
        }
        response.topics.push(topic_response);
    }
    response
}

/// (timestamp, offset) answering one ListOffsets query on a partition.
fn lookup(partition: &Partition, timestamp: i64, version: i16) -> Result<(i64, i64), ResponseError> {
    let log = partition.log.read();
    match timestamp {
        LATEST => Ok((-1, log.high_watermark())),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, log.log_start_offset())),
        MAX_TIMESTAMP if version >= 7 => match log.batch_with_max_timestamp() {
            Ok(Some(batch)) => Ok(max_timestamp_record(&batch).unwrap_or((-1, -1))),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(storage_error_code(&e)),
        },
        ts if ts >= 0 => match log.batch_at_timestamp(ts) {
            Ok(Some(batch)) => Ok(first_record_at(&batch, ts, log.log_start_offset()).unwrap_or((-1, -1))),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(storage_error_code(&e)),
        },
        _ => Err(ResponseError::InvalidRequest),
    }
}

/// (timestamp, offset) of every record in one stored batch. `LogAppendTime` batches carry
/// the broker's time in the header only, so it applies to every record.
fn records_of(batch: &Bytes) -> Option<Vec<(i64, i64)>> {
    let header = BatchHeader::parse(batch).ok()?;
    let set = RecordBatchDecoder::decode(&mut batch.clone()).ok()?;
    Some(
        set.records
            .iter()
            .map(|r| {
                let ts = if header.timestamp_type() == TimestampType::LogAppendTime {
                    header.max_timestamp
                } else {
                    r.timestamp
                };
                (ts, r.offset)
            })
            .collect(),
    )
}

fn first_record_at(batch: &Bytes, timestamp: i64, log_start: i64) -> Option<(i64, i64)> {
    records_of(batch)?
        .into_iter()
        .find(|&(ts, offset)| ts >= timestamp && offset >= log_start)
}

fn max_timestamp_record(batch: &Bytes) -> Option<(i64, i64)> {
    // The first record holding the maximum, as Kafka reports it.
    records_of(batch)?
        .into_iter()
        .reduce(|best, r| if r.0 > best.0 { r } else { best })
}
