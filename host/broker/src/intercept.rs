//! The produce and fetch paths of topics that attach plugins: run the interceptors and the
//! partitioner on each batch's records, and re-encode only what changed. Plugin calls run
//! on the request's own task (a guest yields to the executor at every epoch tick, see
//! `strom_plugins::plugin`). Topics without plugins never come here.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use std::borrow::Cow;

use strom_plugins::{BatchContext, CallError, KafkaRecord, LoadedPlugin, World};
use strom_storage::batch::{self, BatchHeader};

use crate::plugins::{PartitionerMode, TopicPlugins};
use crate::records;

pub type Refusal = (ResponseError, String);

/// A batch to append, and to which partition. The first is always the addressed
/// partition's (it carries the producer's identity, so de-duplication happens there).
pub struct PlannedBatch {
    pub partition: i32,
    pub bytes: Bytes,
}

pub struct ProduceInput {
    pub plugins: Arc<TopicPlugins>,
    pub topic: String,
    pub partition_count: u32,
    pub addressed: i32,
    pub client_id: String,
    /// The authenticated principal plugins see (`User:ANONYMOUS` without authentication).
    pub principal: String,
    pub records: Bytes,
}

fn call_refusal(error: CallError) -> Refusal {
    match error {
        CallError::Refused { error_code, message } => (
            ResponseError::try_from_code(error_code).unwrap_or(ResponseError::PolicyViolation),
            message,
        ),
        other => (ResponseError::PolicyViolation, other.to_string()),
    }
}

/// One batch's records in Kafka's encoding as they pass from plugin to plugin.
struct Section<'a> {
    records: Cow<'a, [u8]>,
    count: usize,
    /// The span of timestamp deltas once a plugin replaced the records (`None`: unchanged).
    timestamp_deltas: Option<(i64, i64)>,
}

impl<'a> Section<'a> {
    fn of(raw: &'a [u8], header: &BatchHeader) -> Result<Section<'a>, Refusal> {
        Ok(Section {
            records: records::records_section(raw, header)
                .map_err(|e| (ResponseError::CorruptMessage, format!("{e:#}")))?,
            count: header.records_count.max(0) as usize,
            timestamp_deltas: None,
        })
    }

    async fn intercept(
        &mut self,
        interceptor: &LoadedPlugin,
        ctx: &BatchContext,
        header: &BatchHeader,
        produce: bool,
    ) -> Result<(), Refusal> {
        let replaced = interceptor
            .intercept_encoded(
                ctx,
                &self.records,
                self.count,
                header.base_timestamp,
                header.last_offset_delta,
                produce,
            )
            .await
            .map_err(call_refusal)?;
        if let Some(replaced) = replaced {
            // strom-plugins has checked the records (and measured their timestamps).
            self.timestamp_deltas = Some(replaced.timestamp_deltas);
            self.records = Cow::Owned(replaced.records);
            self.count = replaced.count;
        }
        Ok(())
    }

    /// The batch re-encoded around the new records, if a plugin replaced them.
    fn rewritten(&self, header: &BatchHeader) -> Result<Option<Bytes>, Refusal> {
        let Some(deltas) = self.timestamp_deltas else {
            return Ok(None);
        };
        records::encode_section(header, &self.records, self.count, deltas)
            .map(Some)
            .map_err(|e| (ResponseError::UnknownServerError, format!("{e:#}")))
    }
}

/// One batch of a request, checked, through the produce interceptors, awaiting the
/// partitioner.
struct Prepared<'a> {
    raw: &'a [u8],
    header: BatchHeader,
    section: Section<'a>,
}

/// Runs a topic's produce interceptors and partitioner over one request's batches for
/// that topic (one input per partition, all of the same topic) and returns, per input,
/// what to append where. Each input succeeds or fails on its own, as Kafka answers each
/// partition of a produce request on its own.
pub async fn plan_produce(inputs: &[ProduceInput]) -> Vec<Result<Vec<PlannedBatch>, Refusal>> {
    let mut prepared = Vec::with_capacity(inputs.len());
    for input in inputs {
        prepared.push(prepare(input).await);
    }
    let choices = choose_partitions(inputs, &prepared).await;
    inputs
        .iter()
        .zip(prepared)
        .zip(choices)
        .map(|((input, prepared), choices)| route(input, prepared?, choices?))
        .collect()
}

/// Checks one partition's batches and runs the produce interceptors over each.
async fn prepare(input: &ProduceInput) -> Result<Vec<Prepared<'_>>, Refusal> {
    let corrupt = |e: strom_storage::StorageError| (crate::handlers::storage_error_code(&e), e.to_string());
    let mut prepared = Vec::new();
    for raw in batch::split_batches(&input.records).map_err(corrupt)? {
        // The client's batch is checked before anything looks inside it.
        batch::validate(raw).map_err(corrupt)?;
        let header = BatchHeader::parse(raw).map_err(corrupt)?;
        // The records go from plugin to plugin in Kafka's encoding; only typed plugins (inside
        // strom-plugins) and records that move to other partitions are ever decoded. If no
        // plugin changes anything, the producer's batch is appended untouched.
        let mut section = Section::of(raw, &header)?;
        if !input.plugins.produce.is_empty() {
            let ctx = BatchContext {
                topic: input.topic.clone(),
                partition: input.addressed,
                partition_count: input.partition_count,
                base_offset: -1,
                producer_id: header.producer_id,
                client_id: input.client_id.clone(),
                principal: input.principal.clone(),
            };
            for interceptor in &input.plugins.produce {
                section.intercept(interceptor, &ctx, &header, true).await?;
            }
        }
        prepared.push(Prepared { raw, header, section });
    }
    Ok(prepared)
}

/// The partitioner's choice for every record of every prepared batch (`None` per batch
/// without a partitioner). The partitioner gets all of the request's batches for the topic
/// in one call: a call's fixed cost (about 2 µs for a Rust guest, as much as hashing 135
/// records; 12 µs for Python) is then paid once per request rather than once per
/// partition. If that call fails other than by running out of time (a refusal, a trap, a
/// bad answer), each batch is asked again on its own, so only the partition whose records
/// cause it fails.
async fn choose_partitions(
    inputs: &[ProduceInput],
    prepared: &[Result<Vec<Prepared<'_>>, Refusal>],
) -> Vec<Result<Vec<Option<Vec<u32>>>, Refusal>> {
    let unrouted = |batches: &[Prepared<'_>]| Ok(vec![None; batches.len()]);
    let Some(first) = inputs.first() else {
        return Vec::new();
    };
    let Some((partitioner, _)) = &first.plugins.partitioner else {
        return per_input(prepared, unrouted);
    };
    let batches: Vec<&Prepared<'_>> = prepared.iter().flatten().flatten().collect();
    // A config change between two partitions of the request could have swapped the plugin:
    // only batches planned with the very same plugins share a call.
    let same_plugins = inputs.iter().all(|i| Arc::ptr_eq(&i.plugins, &first.plugins));
    if batches.len() > 1 && same_plugins {
        if let Some(combined) = partition_together(partitioner, first, &batches).await {
            match combined {
                Ok(all) => {
                    let mut all = all.into_iter();
                    return per_input(prepared, |batches| {
                        Ok(batches
                            .iter()
                            .map(|b| Some(all.by_ref().take(b.section.count).collect()))
                            .collect())
                    });
                }
                // Running out of time again for each batch would only multiply the wait.
                Err(error @ CallError::Timeout { .. }) => {
                    let refusal = call_refusal(error);
                    return per_input(prepared, |_| Err(refusal.clone()));
                }
                Err(_) => {}
            }
        }
    }
    let mut choices = Vec::with_capacity(prepared.len());
    for (input, p) in inputs.iter().zip(prepared) {
        choices.push(match (p, &input.plugins.partitioner) {
            (Ok(batches), Some((partitioner, _))) => choose_each(partitioner, input, batches).await,
            (Ok(batches), None) => unrouted(batches),
            (Err(e), _) => Err(e.clone()),
        });
    }
    choices
}

/// `answer` for each input whose batches were prepared; the others keep their refusal.
fn per_input<T>(
    prepared: &[Result<Vec<Prepared<'_>>, Refusal>],
    mut answer: impl FnMut(&[Prepared<'_>]) -> Result<T, Refusal>,
) -> Vec<Result<T, Refusal>> {
    prepared
        .iter()
        .map(|p| match p {
            Ok(batches) => answer(batches),
            Err(e) => Err(e.clone()),
        })
        .collect()
}

/// One partitioner call over all of `batches` (`None` if their records cannot be decoded
/// for a typed partitioner: the calls per batch then say which partition is at fault).
async fn partition_together(
    partitioner: &LoadedPlugin,
    input: &ProduceInput,
    batches: &[&Prepared<'_>],
) -> Option<Result<Vec<u32>, CallError>> {
    if partitioner.world == World::BatchPartitioner {
        let mut records = Vec::with_capacity(batches.iter().map(|b| b.section.records.len()).sum());
        let mut count = 0;
        for b in batches {
            records.extend_from_slice(&b.section.records);
            count += b.section.count;
        }
        // The records keep their own batches' timestamp deltas: a batch partitioner is not
        // told any batch's base timestamp, so nothing it sees changes.
        return Some(
            partitioner
                .partition_encoded(&input.topic, input.partition_count, &records, count, 0)
                .await,
        );
    }
    let mut records = Vec::new();
    for b in batches {
        let mut decoded =
            strom_plugins::codec::decode_records(&b.section.records, b.section.count, b.header.base_timestamp).ok()?;
        records.append(&mut decoded);
    }
    Some(
        partitioner
            .partition(&input.topic, input.partition_count, &records)
            .await,
    )
}

/// The partitioner's choices for one partition's batches, a call per batch.
async fn choose_each(
    partitioner: &LoadedPlugin,
    input: &ProduceInput,
    batches: &[Prepared<'_>],
) -> Result<Vec<Option<Vec<u32>>>, Refusal> {
    let mut choices = Vec::with_capacity(batches.len());
    for b in batches {
        let chosen = partitioner
            .partition_encoded(
                &input.topic,
                input.partition_count,
                &b.section.records,
                b.section.count,
                b.header.base_timestamp,
            )
            .await
            .map_err(call_refusal)?;
        choices.push(Some(chosen));
    }
    Ok(choices)
}

/// What to append where for one partition's prepared batches, given the partitioner's
/// choices for each batch.
fn route(
    input: &ProduceInput,
    prepared: Vec<Prepared<'_>>,
    choices: Vec<Option<Vec<u32>>>,
) -> Result<Vec<PlannedBatch>, Refusal> {
    // The addressed partition's batches: zero-copy slices of the request where a batch
    // stays as the producer sent it, so a request no plugin changes is appended as it came.
    let mut addressed_batches: Vec<Bytes> = Vec::new();
    let mut untouched = true;
    let mut moved: BTreeMap<i32, Vec<Bytes>> = BTreeMap::new();
    for (Prepared { raw, header, section }, choices) in prepared.into_iter().zip(choices) {
        let stays_whole = choices
            .as_ref()
            .is_none_or(|c| c.iter().all(|&p| p as i32 == input.addressed));
        if stays_whole {
            match section.rewritten(&header)? {
                Some(batch) => {
                    untouched = false;
                    addressed_batches.push(batch);
                }
                None => addressed_batches.push(input.records.slice_ref(raw)),
            }
            continue;
        }
        untouched = false;
        let mut changed = section.timestamp_deltas.is_some();
        let recs = strom_plugins::codec::decode_records(&section.records, section.count, header.base_timestamp)
            .map_err(|e| (ResponseError::CorruptMessage, e))?;
        let mut stay = recs;
        if let (Some((partitioner, mode)), Some(choices)) = (&input.plugins.partitioner, choices) {
            match mode {
                PartitionerMode::Enforce => {
                    if let Some((record, choice)) =
                        stay.iter().zip(&choices).find(|(_, &c)| c as i32 != input.addressed)
                    {
                        return Err((
                            ResponseError::InvalidRecord,
                            format!(
                                "record {} belongs in partition {choice} according to partitioner {} (partitioner.mode=enforce), not in partition {}",
                                record.offset_delta, partitioner.id, input.addressed
                            ),
                        ));
                    }
                }
                PartitionerMode::Route => {
                    let mut kept = Vec::new();
                    let mut elsewhere: BTreeMap<i32, Vec<KafkaRecord>> = BTreeMap::new();
                    for (record, choice) in stay.into_iter().zip(choices) {
                        if choice as i32 == input.addressed {
                            kept.push(record);
                        } else {
                            elsewhere.entry(choice as i32).or_default().push(record);
                        }
                    }
                    changed |= !elsewhere.is_empty();
                    for (partition, mut recs) in elsewhere {
                        for (i, r) in recs.iter_mut().enumerate() {
                            r.offset_delta = i as i32;
                        }
                        let template = BatchHeader {
                            producer_id: -1,
                            producer_epoch: -1,
                            base_sequence: -1,
                            last_offset_delta: recs.len() as i32 - 1,
                            attributes: header.attributes & !0x10,
                            ..header
                        };
                        let encoded = records::encode(&template, &recs)
                            .map_err(|e| (ResponseError::UnknownServerError, format!("{e:#}")))?;
                        moved.entry(partition).or_default().push(encoded);
                    }
                    stay = kept;
                }
            }
        }
        if changed {
            let encoded =
                records::encode(&header, &stay).map_err(|e| (ResponseError::UnknownServerError, format!("{e:#}")))?;
            addressed_batches.push(encoded);
        } else {
            addressed_batches.push(input.records.slice_ref(raw));
        }
    }
    let addressed = if untouched {
        input.records.clone()
    } else {
        concat(addressed_batches)
    };
    let mut planned = vec![PlannedBatch {
        partition: input.addressed,
        bytes: addressed,
    }];
    for (partition, batches) in moved {
        planned.push(PlannedBatch {
            partition,
            bytes: concat(batches),
        });
    }
    Ok(planned)
}

/// One buffer holding `parts` in order (no copy for a single part).
fn concat(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for part in parts {
        joined.extend_from_slice(&part);
    }
    joined.freeze()
}

/// Runs a topic's fetch interceptors over the batches read for one partition. Offsets and
/// batch boundaries stay as stored; dropped records become gaps.
pub async fn transform_fetched(
    plugins: &TopicPlugins,
    topic: &str,
    partition: i32,
    partition_count: u32,
    client_id: &str,
    principal: &str,
    stored: &Bytes,
) -> Result<Bytes, Refusal> {
    let mut out = BytesMut::with_capacity(stored.len());
    for raw in batch::split_batches(stored).map_err(|e| (ResponseError::CorruptMessage, e.to_string()))? {
        let header = BatchHeader::parse(raw).map_err(|e| (ResponseError::CorruptMessage, e.to_string()))?;
        if header.is_control() {
            out.extend_from_slice(raw);
            continue;
        }
        let ctx = BatchContext {
            topic: topic.to_string(),
            partition,
            partition_count,
            base_offset: header.base_offset,
            producer_id: header.producer_id,
            client_id: client_id.to_string(),
            principal: principal.to_string(),
        };
        let mut section = Section::of(raw, &header)?;
        for interceptor in &plugins.fetch {
            section.intercept(interceptor, &ctx, &header, false).await?;
        }
        let Some(encoded) = section.rewritten(&header)? else {
            out.extend_from_slice(raw);
            continue;
        };
        let mut encoded = BytesMut::from(&encoded[..]);
        // The base offset and leader epoch are outside the CRC: put back the stored ones.
        encoded[0..8].copy_from_slice(&header.base_offset.to_be_bytes());
        encoded[12..16].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    Ok(out.freeze())
}
