//! Fetch: read whole batches straight from the segment files up to the high watermark,
//! and long-poll (`max_wait_ms`, `min_bytes`) on the partitions' high watermark signals.
//!
//! Fetch sessions (KIP-227) are declined by answering session id 0, which every client
//! handles by sending full fetch requests.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::produce::LEADER_EPOCH;
use super::{leader_epoch_error, storage_error_code};
use crate::broker::{Broker, RequestContext};
use crate::intercept;
use crate::partitions::Partition;
use crate::security::acl::{Operation, ResourceType};

/// Longest long-poll the broker honours, whatever the client asks.
const FETCH_WAIT_MS_MAX: i32 = 30_000;
/// Kafka's INVALID_SESSION_ID / FINAL_EPOCH conventions.
const NO_SESSION: i32 = 0;
const READ_COMMITTED: i8 = 1;

pub async fn handle(broker: &Broker, ctx: &RequestContext, request: FetchRequest) -> FetchResponse {
    if request.session_id != NO_SESSION {
        let mut response = FetchResponse::default();
        response.error_code = ResponseError::FetchSessionIdNotFound.code();
        return response;
    }
    let targets = resolve(broker, ctx, &request);
    let wait = Duration::from_millis(request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + wait;
    loop {
        // Subscribe before reading so that an append between the read and the wait wakes us.
        let mut signals: Vec<watch::Receiver<i64>> = targets
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.partition.as_ref().map(|p| p.subscribe()))
            .collect();
        let (response, bytes, had_error) = read(&targets, &request);
        let done = bytes >= request.min_bytes.max(0) as usize
            || had_error
            || signals.is_empty()
            || Instant::now() >= deadline
            || broker.is_shutting_down();
        if done {
            broker.metrics.fetched(bytes);
            return intercept_fetched(broker, ctx, response).await;
        }
        let changed = select_all(signals.iter_mut().map(|s| Box::pin(s.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => return intercept_fetched(broker, ctx, read(&targets, &request).0).await,
            _ = broker.shutdown_started() => return intercept_fetched(broker, ctx, read(&targets, &request).0).await,
        }
    }
}

/// Runs fetch interceptors over the partitions of topics that attach any. Consumers get
/// the transformed records; the log is not touched.
async fn intercept_fetched(broker: &Broker, ctx: &RequestContext, mut response: FetchResponse) -> FetchResponse {
    let image = broker.metadata.image();
    if !broker.plugins.any_attached(&broker.config, &image) {
        return response;
    }
    // (plugins, topic name, partition count) of each topic that has fetch interceptors.
    let attached: Vec<_> = response
        .responses
        .iter()
        .map(|topic| {
            let found = if ctx.version >= 13 {
                image.topic_by_id(&topic.topic_id)
            } else {
                image.topic(&topic.topic.0)
            };
            let topic_image = found?;
            match broker.plugins.for_topic(&broker.config, &image, topic_image) {
                Ok(Some(plugins)) if !plugins.fetch.is_empty() => {
                    Some((plugins, topic_image.name.clone(), topic_image.partitions))
                }
                _ => None,
            }
        })
        .collect();
    if attached.iter().all(Option::is_none) {
        return response;
    }
    let principal = ctx.principal.to_string();
    for (topic, attached) in response.responses.iter_mut().zip(&attached) {
        let Some((plugins, name, count)) = attached else {
            continue;
        };
        for data in &mut topic.partitions {
            let Some(stored) = data.records.clone().filter(|r| !r.is_empty()) else {
                continue;
            };
            let index = data.partition_index;
            let transformed =
                intercept::transform_fetched(plugins, name, index, *count, &ctx.client_id, &principal, &stored).await;
            match transformed {
                Ok(bytes) => data.records = Some(bytes),
                Err((code, message)) => {
                    tracing::warn!(topic = %name, partition = index, %message, "fetch interceptor failed");
                    data.error_code = code.code();
                    data.records = None;
                }
            }
        }
    }
    response
}

struct Target {
    name: Option<kafka_protocol::messages::TopicName>,
    topic_id: uuid::Uuid,
    partitions: Vec<PartitionTarget>,
}

struct PartitionTarget {
    index: i32,
    fetch_offset: i64,
    max_bytes: i32,
    partition: Option<Arc<Partition>>,
    error: Option<ResponseError>,
}

fn resolve(broker: &Broker, ctx: &RequestContext, request: &FetchRequest) -> Vec<Target> {
    let image = broker.metadata.image();
    request
        .topics
        .iter()
        .map(|topic| {
            // v13+ names topics by id only.
            let (name, unknown) = if ctx.version >= 13 {
                match image.topic_by_id(&topic.topic_id) {
                    Some(t) => (Some(t.name.clone()), ResponseError::UnknownTopicOrPartition),
                    None => (None, ResponseError::UnknownTopicId),
                }
            } else {
                (Some(topic.topic.0.to_string()), ResponseError::UnknownTopicOrPartition)
            };
            let may_read = name
                .as_ref()
                .is_none_or(|n| broker.authorized(ctx, Operation::Read, ResourceType::Topic, n));
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let partition = name
                        .as_ref()
                        .filter(|_| may_read)
                        .and_then(|n| broker.partitions.get(n, p.partition));
                    let error = if !may_read {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else if partition.is_none() {
                        Some(unknown)
                    } else {
                        leader_epoch_error(p.current_leader_epoch, LEADER_EPOCH)
                    };
                    PartitionTarget {
                        index: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes,
                        partition,
                        error,
                    }
                })
                .collect();
            Target {
                name: Some(topic.topic.clone()).filter(|_| ctx.version < 13),
                topic_id: topic.topic_id,
                partitions,
            }
        })
        .collect()
}

/// One pass over every requested partition. Returns the response, the record bytes in it
/// and whether any partition failed (an error answers a long-poll at once).
fn read(targets: &[Target], request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut response = FetchResponse::default();
    response.session_id = NO_SESSION;
    let mut budget = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut had_error = false;
    for target in targets {
        let mut topic = FetchableTopicResponse::default();
        if let Some(name) = &target.name {
            topic.topic = name.clone();
        }
        topic.topic_id = target.topic_id;
        for p in &target.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.index;
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
            data.preferred_read_replica = kafka_protocol::messages::BrokerId(-1);
            if request.isolation_level == READ_COMMITTED {
                data.aborted_transactions = Some(Vec::new());
            }
            match (&p.partition, p.error) {
                (None, _) | (_, Some(_)) => {
                    data.error_code = p.error.unwrap_or(ResponseError::UnknownTopicOrPartition).code();
                    had_error = true;
                }
                (Some(partition), None) => {
                    let log = partition.log.read();
                    data.high_watermark = log.high_watermark();
                    data.last_stable_offset = log.high_watermark();
                    data.log_start_offset = log.log_start_offset();
                    let max = (p.max_bytes.max(0) as usize).min(budget);
                    // KIP-74: the first batch of the response comes whole even if it is larger
                    // than the limits, so a consumer can always make progress.
                    match log.read(p.fetch_offset, max, log.high_watermark(), total == 0) {
                        Ok(bytes) => {
                            total += bytes.len();
                            budget = budget.saturating_sub(bytes.len());
                            data.records = Some(bytes);
                        }
                        Err(e) => {
                            data.error_code = storage_error_code(&e).code();
                            had_error = true;
                        }
                    }
                }
            }
            topic.partitions.push(data);
        }
        response.responses.push(topic);
    }
    (response, total, had_error)
}
