//! Produce: append each partition's batches as they came (no decoding), then answer
//! with the assigned offsets. acks=0 gets no answer; a failure then closes the connection,
//! which is how Kafka tells such a producer that something went wrong.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{storage_error_code, str_bytes};
use crate::broker::{now_ms, Broker, RequestContext};
use crate::config::topic as topic_config;
use crate::intercept::{self, Refusal};
use crate::partitions::Partition;
use crate::protocol::FrameError;
use crate::security::acl::{Operation, ResourceType};
use strom_storage::batch::Origin;

/// The leader epoch of every partition until replication brings leader changes.
pub const LEADER_EPOCH: i32 = 0;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> Result<Option<ProduceResponse>, FrameError> {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut first_failure: Option<String> = None;
    let image = broker.metadata.image();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        let may_write = broker.authorized(ctx, Operation::Write, ResourceType::Topic, &name);
        let topic_image = image.topic(&name);
        // What the topic attaches is looked up once per topic, not per partition; not at all
        // (one atomic load) while no topic attaches anything, nor for a principal that may
        // not write (resolving may load and compile a component).
        let plugins = match topic_image {
            Some(t) if may_write && broker.plugins.any_attached(&broker.config, &image) => {
                broker.plugins.for_topic(&broker.config, &image, t)
            }
            _ => Ok(None),
        };
        // Only acks=all asks about replicas, once per topic (a string-keyed config search).
        let min_isr: i64 = match (acks, topic_image) {
            (-1, Some(t)) => topic_config::effective(&broker.config, &t.configs, "min.insync.replicas")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            _ => 1,
        };
        // Partitions of a topic with produce plugins wait here, to be planned together
        // after the loop (one partitioner call for the whole request, see
        // `intercept::plan_produce`); the others are appended as the loop reaches them.
        // Each waits as (its answer's index, the partition, its bytes) plus its input.
        let mut with_plugins: Vec<(usize, Arc<Partition>, usize)> = Vec::new();
        let mut inputs: Vec<intercept::ProduceInput> = Vec::new();
        for partition_data in topic.partition_data {
            let batch_bytes = partition_data.records.as_ref().map_or(0, |r| r.len());
            let mut r = PartitionProduceResponse::default();
            r.index = partition_data.index;
            r.base_offset = -1;
            r.log_append_time_ms = -1;
            r.log_start_offset = -1;
            // Ok(Some(())): appended; Ok(None): waits for the plugins, after this loop.
            let outcome = if !matches!(acks, -1..=1) {
                Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks must be -1, 0 or 1, not {acks}"),
                ))
            } else if !may_write {
                Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("{} may not write to topic {name}", ctx.principal),
                ))
            } else if name == crate::coordinator::offsets::OFFSETS_TOPIC {
                Err((
                    ResponseError::InvalidTopicException,
                    format!("{name} is internal: clients cannot produce to it"),
                ))
            } else if request.transactional_id.is_some() {
                Err((
                    ResponseError::InvalidTxnState,
                    "transactions are not supported by this broker yet".to_string(),
                ))
            } else {
                match (broker.partitions.get(&name, partition_data.index), topic_image) {
                    (Some(partition), Some(topic_image)) => {
                        if min_isr > 1 {
                            Err((
                                ResponseError::NotEnoughReplicas,
                                format!("min.insync.replicas is {min_isr} but only 1 replica is in sync"),
                            ))
                        } else {
                            match (partition_data.records, &plugins) {
                                (None, _) => Err((
                                    ResponseError::InvalidRecord,
                                    "the partition's records are null".to_string(),
                                )),
                                (Some(_), Err(message)) => Err((ResponseError::PolicyViolation, message.clone())),
                                (Some(records), Ok(Some(plugins))) if plugins.touches_produce() => {
                                    let input = intercept::ProduceInput {
                                        plugins: Arc::clone(plugins),
                                        topic: name.clone(),
                                        partition_count: topic_image.partitions,
                                        addressed: partition_data.index,
                                        client_id: ctx.client_id.clone(),
                                        principal: ctx.principal.to_string(),
                                        records,
                                    };
                                    with_plugins.push((
                                        topic_response.partition_responses.len(),
                                        partition,
                                        batch_bytes,
                                    ));
                                    inputs.push(input);
                                    Ok(None)
                                }
                                (Some(records), Ok(_)) => append(&partition, &records, Origin::Client, &mut r)
                                    .await
                                    .map(|_| Some(())),
                            }
                        }
                    }
                    _ => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("{name}-{} does not exist", partition_data.index),
                    )),
                }
            };
            if let Some(outcome) = outcome.transpose() {
                settle(broker, ctx, &name, &mut r, batch_bytes, outcome, &mut first_failure);
            }
            topic_response.partition_responses.push(r);
        }
        if !with_plugins.is_empty() {
            let plans = intercept::plan_produce(&inputs).await;
            for ((slot, partition, batch_bytes), plan) in with_plugins.iter().zip(plans) {
                let r = &mut topic_response.partition_responses[*slot];
                let outcome = match plan {
                    Ok(plan) => append_planned(broker, partition, &name, plan, r).await,
                    Err(refusal) => Err(refusal),
                };
                settle(broker, ctx, &name, r, *batch_bytes, outcome, &mut first_failure);
            }
        }
        response.responses.push(topic_response);
    }
    if acks == 0 {
        return match first_failure {
            Some(reason) => Err(FrameError::AcksZeroFailure(reason)),
            None => Ok(None),
        };
    }
    Ok(Some(response))
}

/// Counts a partition's produced bytes, or puts its refusal into its answer (with
/// `error_message` from version 8) and remembers the first one.
fn settle(
    broker: &Broker,
    ctx: &RequestContext,
    topic: &str,
    r: &mut PartitionProduceResponse,
    batch_bytes: usize,
    outcome: Result<(), Refusal>,
    first_failure: &mut Option<String>,
) {
    match outcome {
        Ok(()) => broker.metrics.produced(batch_bytes),
        Err((code, message)) => {
            tracing::debug!(%topic, partition = r.index, client = %ctx.client_id, peer = %ctx.peer, %message, "produce refused");
            first_failure.get_or_insert_with(|| format!("{topic}-{}: {message}", r.index));
            r.error_code = code.code();
            if ctx.version >= 8 {
                r.error_message = Some(str_bytes(message));
            }
        }
    }
}

/// Appends to one partition and fills in the response; returns whether the batch was a
/// duplicate of one already in the log.
async fn append(
    partition: &Arc<Partition>,
    records: &[u8],
    origin: Origin,
    r: &mut PartitionProduceResponse,
) -> Result<bool, (ResponseError, String)> {
    let appended = {
        let mut log = partition.log.write();
        let result = log.append_from(records, now_ms(), LEADER_EPOCH, origin);
        if result.as_ref().is_ok_and(|info| !info.duplicate) {
            partition.advance_high_watermark(&mut log);
        }
        r.log_start_offset = log.log_start_offset();
        result
    };
    let info = appended.map_err(|e| (storage_error_code(&e), e.to_string()))?;
    if let Some(job) = info.rolled {
        let partition = Arc::clone(partition);
        tokio::spawn(async move {
            if let Err(e) = partition.run_flush(job).await {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %format!("{e:#}"), "flushing rolled segment failed");
            }
        });
    }
    if let Some(job) = info.flush {
        // Acknowledge only what the flush policy says must be on disk.
        partition
            .run_flush(job)
            .await
            .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}")))?;
    }
    r.base_offset = info.base_offset;
    r.log_append_time_ms = info.log_append_time_ms;
    Ok(info.duplicate)
}

/// Appends what the plugins planned for one partition of a produce request.
async fn append_planned(
    broker: &Broker,
    addressed: &Arc<Partition>,
    topic: &str,
    planned: Vec<intercept::PlannedBatch>,
    r: &mut PartitionProduceResponse,
) -> Result<(), Refusal> {
    let mut batches = planned.into_iter();
    let first = batches
        .next()
        .expect("the addressed partition's batch is always planned");
    // A retry of a batch already appended is answered with its offsets and nothing more.
    // Otherwise records moved to other partitions go first: if anything fails, the client's
    // retry re-sends them (duplicates at worst), rather than being acknowledged as a
    // duplicate of the addressed batch while moved records are missing.
    let duplicate = addressed
        .log
        .read()
        .duplicate_of(&first.bytes)
        .map_err(|e| (storage_error_code(&e), e.to_string()))?;
    if let Some((base_offset, _)) = duplicate {
        r.base_offset = base_offset;
        r.log_start_offset = addressed.log.read().log_start_offset();
        return Ok(());
    }
    for planned in batches {
        let Some(partition) = broker.partitions.get(topic, planned.partition) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("{topic}-{} does not exist", planned.partition),
            ));
        };
        let mut ignored = PartitionProduceResponse::default();
        append(&partition, &planned.bytes, Origin::BrokerChecked, &mut ignored).await?;
    }
    append(addressed, &first.bytes, Origin::BrokerChecked, r).await?;
    Ok(())
}
