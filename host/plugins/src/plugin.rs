//! A loaded plugin: a compiled component pre-linked for its world, a small pool of ready
//! instances, and the calls the broker makes into it, each under a time budget and a
//! memory cap. A failed call throws its instance away (a trapped instance cannot be
//! re-entered); the next call gets a fresh one.
//!
//! Calls are futures that run the guest on the caller's task, so a quick call costs no
//! thread hand-off. A guest yields to the executor at every epoch tick, and WASI's blocking
//! operations are async too, so a slow plugin delays its own caller and never holds a
//! runtime worker for longer than a tick. The time budget is a timer around the call (and
//! around an instantiation): when it ends, the unfinished call is dropped with its
//! instance, whether the guest was running wasm or waiting in WASI. Callers need a tokio
//! runtime with timers.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::bindings::batch_interceptor::{BatchInterceptorPlugin, BatchInterceptorPluginPre};
use crate::bindings::batch_partitioner::{BatchPartitionerPlugin, BatchPartitionerPluginPre};
use crate::bindings::interceptor::{InterceptorPlugin, InterceptorPluginPre};
use crate::bindings::partitioner::{PartitionerPlugin, PartitionerPluginPre};
use crate::bindings::sasl::{SaslPlugin, SaslPluginPre};
use crate::bindings::{BatchContext, BatchVerdict, KafkaRecord, PluginError, SaslOutcome, Verdict};
use crate::codec;
use crate::engine::{PluginEngine, PLUGIN_MEMORY_BYTES_LIMIT};
use crate::state::{CredentialLookup, MemoryBudget, MemoryRefusal, State};

/// Idle instances kept per loaded plugin.
const POOL_INSTANCES_MAX: usize = 8;

const PARTITIONER_EXPORT: &str = "strom:plugin/partitioner@0.1.0";
const BATCH_PARTITIONER_EXPORT: &str = "strom:plugin/batch-partitioner@0.1.0";
const INTERCEPTOR_EXPORT: &str = "strom:plugin/record-interceptor@0.1.0";
const BATCH_INTERCEPTOR_EXPORT: &str = "strom:plugin/batch-interceptor@0.1.0";
const SASL_EXPORT: &str = "strom:plugin/sasl-mechanism@0.1.0";

/// The largest session state a SASL plugin may hand back: the broker keeps it per
/// connection, so a plugin must not make it grow without bound.
pub const SASL_STATE_BYTES_MAX: usize = 64 << 10;
/// Kafka's SASL_AUTHENTICATION_FAILED, the code of a SASL plugin's refusal.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// The kind of plugin a component is, by the world it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    Partitioner,
    /// A partitioner that takes records in Kafka's encoding (`batch-partitioner`).
    BatchPartitioner,
    Interceptor,
    /// An interceptor that takes records in Kafka's encoding (`batch-interceptor`).
    BatchInterceptor,
    /// The `sasl-plugin` world: server side of SASL mechanisms.
    Sasl,
}

impl World {
    pub fn name(self) -> &'static str {
        match self {
            World::Partitioner => "partitioner",
            World::BatchPartitioner => "batch-partitioner",
            World::Interceptor => "record-interceptor",
            World::BatchInterceptor => "batch-interceptor",
            World::Sasl => "sasl-plugin",
        }
    }

    pub fn parse(name: &str) -> Option<World> {
        match name {
            "partitioner" => Some(World::Partitioner),
            "batch-partitioner" => Some(World::BatchPartitioner),
            "record-interceptor" => Some(World::Interceptor),
            "batch-interceptor" => Some(World::BatchInterceptor),
            "sasl-plugin" => Some(World::Sasl),
            _ => None,
        }
    }

    /// Whether plugins of this world choose partitions (either form).
    pub fn is_partitioner(self) -> bool {
        matches!(self, World::Partitioner | World::BatchPartitioner)
    }

    /// Whether plugins of this world intercept records (either form).
    pub fn is_interceptor(self) -> bool {
        matches!(self, World::Interceptor | World::BatchInterceptor)
    }
}

/// Per-attachment limits of every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    pub call_ms_max: u64,
    pub memory_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_ms_max: 100,
            memory_bytes_max: 64 << 20,
        }
    }
}

/// Why a component cannot be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component exports no Strom plugin world (it exports: {0}); build it against wit/strom-plugin.wit")]
    UnknownWorld(String),
    #[error("the component needs imports Strom does not provide: {0}")]
    Unlinkable(String),
}

/// Why a call into a plugin failed. Kept apart from a plugin's own refusal, which it
/// returns on purpose with a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin answered with an error of its own.
    Refused {
        error_code: i16,
        message: String,
    },
    Timeout {
        plugin: String,
        budget_ms: u64,
    },
    OutOfMemory {
        plugin: String,
        bytes: usize,
    },
    /// The plugin's memory could not grow because all plugins together hold the total
    /// their runtime allows.
    MemoryExhausted {
        plugin: String,
        total_bytes: usize,
    },
    Trap {
        plugin: String,
        message: String,
    },
    /// The plugin's answer broke the contract (wrong count, partition out of range...).
    BadAnswer {
        plugin: String,
        message: String,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused { message, .. } => write!(f, "{message}"),
            CallError::Timeout { plugin, budget_ms } => {
                write!(f, "plugin {plugin} exceeded its time budget of {budget_ms} ms")
            }
            CallError::OutOfMemory { plugin, bytes } => {
                write!(f, "plugin {plugin} exceeded its memory limit of {bytes} bytes")
            }
            CallError::MemoryExhausted { plugin, total_bytes } => write!(
                f,
                "plugin {plugin} needed more memory, but all plugins together already hold the broker's total of {total_bytes} bytes for plugins"
            ),
            CallError::Trap { plugin, message } => write!(f, "plugin {plugin} trapped: {message}"),
            CallError::BadAnswer { plugin, message } => write!(f, "plugin {plugin} gave an invalid answer: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

enum Pre {
    Partitioner(PartitionerPluginPre<State>),
    BatchPartitioner(BatchPartitionerPluginPre<State>),
    Interceptor(InterceptorPluginPre<State>),
    BatchInterceptor(BatchInterceptorPluginPre<State>),
    Sasl(SaslPluginPre<State>),
}

enum Bound {
    Partitioner(PartitionerPlugin),
    BatchPartitioner(BatchPartitionerPlugin),
    Interceptor(InterceptorPlugin),
    BatchInterceptor(BatchInterceptorPlugin),
    Sasl(SaslPlugin),
}

struct Instance {
    store: Store<State>,
    bound: Bound,
    /// Memory it held once instantiated: what a fresh instance costs.
    baseline: usize,
}

impl Instance {
    /// Whether its memory has grown by more than half the room it started with: a guest
    /// whose heap creeps up (a leak, an interpreter's heap) is replaced before it runs out,
    /// and one that merely starts big is not replaced on every call.
    fn outgrown(&self, memory_bytes_max: usize) -> bool {
        let held = self.store.data().memory_held();
        held.saturating_sub(self.baseline) > memory_bytes_max.saturating_sub(self.baseline) / 2
    }
}

pub struct LoadedPlugin {
    /// `name@version`, as it appears in messages and logs.
    pub id: Arc<str>,
    pub world: World,
    pub limits: Limits,
    config: Arc<BTreeMap<String, String>>,
    engine: wasmtime::Engine,
    memory: Arc<MemoryBudget>,
    pre: Pre,
    pool: Mutex<Vec<Instance>>,
    calls: AtomicU64,
    failures: AtomicU64,
    /// Nanoseconds spent in calls, from taking an instance to the answer.
    busy_nanos: AtomicU64,
}

/// Finds which Strom world a compiled component exports.
pub fn world_of(engine: &PluginEngine, component: &Component) -> Result<World, LoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(&engine.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|e| e == PARTITIONER_EXPORT) {
        Ok(World::Partitioner)
    } else if exports.iter().any(|e| e == BATCH_PARTITIONER_EXPORT) {
        Ok(World::BatchPartitioner)
    } else if exports.iter().any(|e| e == INTERCEPTOR_EXPORT) {
        Ok(World::Interceptor)
    } else if exports.iter().any(|e| e == BATCH_INTERCEPTOR_EXPORT) {
        Ok(World::BatchInterceptor)
    } else if exports.iter().any(|e| e == SASL_EXPORT) {
        Ok(World::Sasl)
    } else {
        Err(LoadError::UnknownWorld(if exports.is_empty() {
            "nothing".into()
        } else {
            exports.join(", ")
        }))
    }
}

impl LoadedPlugin {
    pub fn new(
        engine: &PluginEngine,
        id: &str,
        component: &Component,
        config: BTreeMap<String, String>,
        limits: Limits,
    ) -> Result<LoadedPlugin, LoadError> {
        let world = world_of(engine, component)?;
        let instance_pre = engine
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Unlinkable(format!("{e:#}")))?;
        let pre = match world {
            World::Partitioner => Pre::Partitioner(
                PartitionerPluginPre::new(instance_pre).map_err(|e| LoadError::UnknownWorld(format!("{e:#}")))?,
            ),
            World::BatchPartitioner => Pre::BatchPartitioner(
                BatchPartitionerPluginPre::new(instance_pre).map_err(|e| LoadError::UnknownWorld(format!("{e:#}")))?,
            ),
            World::Interceptor => Pre::Interceptor(
                InterceptorPluginPre::new(instance_pre).map_err(|e| LoadError::UnknownWorld(format!("{e:#}")))?,
            ),
            World::BatchInterceptor => Pre::BatchInterceptor(
                BatchInterceptorPluginPre::new(instance_pre).map_err(|e| LoadError::UnknownWorld(format!("{e:#}")))?,
            ),
            World::Sasl => {
                Pre::Sasl(SaslPluginPre::new(instance_pre).map_err(|e| LoadError::UnknownWorld(format!("{e:#}")))?)
            }
        };
        let limits = Limits {
            memory_bytes_max: limits.memory_bytes_max.min(PLUGIN_MEMORY_BYTES_LIMIT),
            ..limits
        };
        Ok(LoadedPlugin {
            id: Arc::from(id),
            world,
            limits,
            config: Arc::new(config),
            engine: engine.engine.clone(),
            memory: Arc::clone(&engine.memory),
            pre,
            pool: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
        })
    }

    /// Instantiates one instance ahead of the first call, so that call does not pay for
    /// the first instantiation (memory set-up, WASI, the guest's start code).
    pub async fn warm(&self) -> Result<(), CallError> {
        let instance = self.within_budget(self.instantiate()).await??;
        self.pool.lock().push(instance);
        Ok(())
    }

    /// (calls, failed calls) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Time spent in calls so far (wall clock, from taking an instance to the answer,
    /// including an instantiation when no instance was ready, and the copies in and out).
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }

    /// Runs `work` (an instantiation or a call) under the time budget: past it, `work` is
    /// dropped unfinished, with the instance it holds.
    async fn within_budget<R>(&self, work: impl Future<Output = R>) -> Result<R, CallError> {
        let budget = Duration::from_millis(self.limits.call_ms_max.max(1));
        tokio::time::timeout(budget, work)
            .await
            .map_err(|_| CallError::Timeout {
                plugin: self.id.to_string(),
                budget_ms: self.limits.call_ms_max,
            })
    }

    async fn instantiate(&self) -> Result<Instance, CallError> {
        let mut store = Store::new(
            &self.engine,
            State::new(
                Arc::clone(&self.id),
                Arc::clone(&self.config),
                self.limits.memory_bytes_max,
                Arc::clone(&self.memory),
            ),
        );
        store.limiter(|state| state);
        // At every tick the guest sees, it yields to the executor (where its budget's timer
        // may end it).
        store.epoch_deadline_async_yield_and_update(1);
        store.set_epoch_deadline(1);
        let bound = match &self.pre {
            Pre::Partitioner(pre) => pre.instantiate_async(&mut store).await.map(Bound::Partitioner),
            Pre::BatchPartitioner(pre) => pre.instantiate_async(&mut store).await.map(Bound::BatchPartitioner),
            Pre::Interceptor(pre) => pre.instantiate_async(&mut store).await.map(Bound::Interceptor),
            Pre::BatchInterceptor(pre) => pre.instantiate_async(&mut store).await.map(Bound::BatchInterceptor),
            Pre::Sasl(pre) => pre.instantiate_async(&mut store).await.map(Bound::Sasl),
        };
        match bound {
            Ok(bound) => {
                let baseline = store.data().memory_held();
                Ok(Instance { store, bound, baseline })
            }
            Err(e) => Err(self.classify(&store, e)),
        }
    }

    fn classify(&self, store: &Store<State>, error: wasmtime::Error) -> CallError {
        let plugin = self.id.to_string();
        match store.data().out_of_memory {
            Some(MemoryRefusal::OwnLimit) => {
                return CallError::OutOfMemory {
                    plugin,
                    bytes: self.limits.memory_bytes_max,
                }
            }
            Some(MemoryRefusal::Total) => {
                return CallError::MemoryExhausted {
                    plugin,
                    total_bytes: self.memory.max(),
                }
            }
            None => {}
        }
        let message = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{:#}", error).lines().next().unwrap_or_default().to_string(),
        };
        CallError::Trap { plugin, message }
    }

    /// Runs `call` on a pooled (or new) instance; returns the instance to the pool only if
    /// the call succeeded.
    async fn with_instance<R>(
        &self,
        call: impl AsyncFnOnce(&mut Store<State>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = self.call_on_instance(call).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        outcome
    }

    async fn call_on_instance<R>(
        &self,
        call: impl AsyncFnOnce(&mut Store<State>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let pooled = self.pool.lock().pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self
                .within_budget(self.instantiate())
                .await
                .flatten()
                .inspect_err(|_| {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                })?,
        };
        // The next tick, not one that passed while the instance sat in the pool, makes it yield.
        instance.store.set_epoch_deadline(1);
        let outcome = self
            .within_budget(call(&mut instance.store, &instance.bound))
            .await
            .inspect_err(|error| {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(plugin = %self.id, %error, "plugin call failed; instance discarded");
            })?;
        match outcome {
            Ok(result) => {
                if instance.outgrown(self.limits.memory_bytes_max) {
                    tracing::debug!(
                        plugin = %self.id,
                        held = instance.store.data().memory_held(),
                        baseline = instance.baseline,
                        "plugin instance retired: its memory grew by over half its room; the next call gets a fresh one"
                    );
                    return Ok(result);
                }
                let mut pool = self.pool.lock();
                if pool.len() < POOL_INSTANCES_MAX {
                    pool.push(instance);
                }
                Ok(result)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let error = self.classify(&instance.store, e);
                tracing::warn!(plugin = %self.id, error = %error, "plugin call failed; instance discarded");
                Err(error)
            }
        }
    }

    fn refused(&self, error: PluginError) -> CallError {
        self.failures.fetch_add(1, Ordering::Relaxed);
        CallError::Refused {
            error_code: error.error_code,
            message: format!("plugin {}: {}", self.id, error.message),
        }
    }

    fn bad_answer(&self, message: String) -> CallError {
        self.failures.fetch_add(1, Ordering::Relaxed);
        CallError::BadAnswer {
            plugin: self.id.to_string(),
            message,
        }
    }

    /// A partition for each record; every answer is checked to be below `partition_count`.
    /// A `batch-partitioner` gets the records encoded first.
    pub async fn partition(
        &self,
        topic: &str,
        partition_count: u32,
        records: &[KafkaRecord],
    ) -> Result<Vec<u32>, CallError> {
        let answer = match self.world {
            World::BatchPartitioner => {
                let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
                let mut encoded = Vec::new();
                codec::encode_records(records, base_timestamp, &mut encoded);
                self.call_batch_partitioner(topic, partition_count, &encoded, records.len())
                    .await?
            }
            _ => {
                self.with_instance(async |store, bound| match bound {
                    Bound::Partitioner(p) => {
                        p.strom_plugin_partitioner()
                            .call_partition(store, topic, partition_count, records)
                            .await
                    }
                    _ => unreachable!("world checked at load"),
                })
                .await?
            }
        };
        self.check_partitions(answer, records.len(), partition_count)
    }

    /// Like [`partition`](Self::partition), for `count` records in Kafka's record encoding
    /// (what a batch holds after decompression): a `batch-partitioner` takes them as they
    /// are, a typed partitioner gets them decoded.
    pub async fn partition_encoded(
        &self,
        topic: &str,
        partition_count: u32,
        records: &[u8],
        count: usize,
        base_timestamp: i64,
    ) -> Result<Vec<u32>, CallError> {
        let answer = match self.world {
            World::BatchPartitioner => {
                self.call_batch_partitioner(topic, partition_count, records, count)
                    .await?
            }
            _ => {
                let decoded =
                    codec::decode_records(records, count, base_timestamp).map_err(|e| CallError::BadAnswer {
                        plugin: self.id.to_string(),
                        message: format!("the batch's records cannot be decoded: {e}"),
                    })?;
                return self.partition(topic, partition_count, &decoded).await;
            }
        };
        self.check_partitions(answer, count, partition_count)
    }

    async fn call_batch_partitioner(
        &self,
        topic: &str,
        partition_count: u32,
        records: &[u8],
        count: usize,
    ) -> Result<Result<Vec<u32>, PluginError>, CallError> {
        self.with_instance(async |store, bound| match bound {
            Bound::BatchPartitioner(p) => {
                p.strom_plugin_batch_partitioner()
                    .call_partition_batch(store, topic, partition_count, records, count as u32)
                    .await
            }
            _ => unreachable!("world checked at load"),
        })
        .await
    }

    fn check_partitions(
        &self,
        answer: Result<Vec<u32>, PluginError>,
        count: usize,
        partition_count: u32,
    ) -> Result<Vec<u32>, CallError> {
        let partitions = answer.map_err(|e| self.refused(e))?;
        if partitions.len() != count {
            return Err(self.bad_answer(format!("{} partitions for {count} records", partitions.len())));
        }
        if let Some(bad) = partitions.iter().find(|&&p| p >= partition_count) {
            return Err(self.bad_answer(format!(
                "partition {bad} does not exist (the topic has {partition_count})"
            )));
        }
        Ok(partitions)
    }

    /// Produce-side verdicts, one per record (a `batch-interceptor` answers through
    /// [`intercept_encoded`](Self::intercept_encoded); this typed form is for typed ones).
    pub async fn on_produce(&self, ctx: &BatchContext, records: &[KafkaRecord]) -> Result<Vec<Verdict>, CallError> {
        self.intercept(ctx, records, true).await
    }

    /// Fetch-side verdicts, one per record.
    pub async fn on_fetch(&self, ctx: &BatchContext, records: &[KafkaRecord]) -> Result<Vec<Verdict>, CallError> {
        self.intercept(ctx, records, false).await
    }

    async fn intercept(
        &self,
        ctx: &BatchContext,
        records: &[KafkaRecord],
        produce: bool,
    ) -> Result<Vec<Verdict>, CallError> {
        if self.world == World::BatchInterceptor {
            return self.intercept_typed_through_batch(ctx, records, produce).await;
        }
        self.call_typed_interceptor(ctx, records, produce).await
    }

    /// Calls a typed interceptor and checks that it gave one verdict per record.
    async fn call_typed_interceptor(
        &self,
        ctx: &BatchContext,
        records: &[KafkaRecord],
        produce: bool,
    ) -> Result<Vec<Verdict>, CallError> {
        let answer = self
            .with_instance(async |store, bound| match bound {
                Bound::Interceptor(i) if produce => {
                    i.strom_plugin_record_interceptor()
                        .call_on_produce(store, ctx, records)
                        .await
                }
                Bound::Interceptor(i) => {
                    i.strom_plugin_record_interceptor()
                        .call_on_fetch(store, ctx, records)
                        .await
                }
                _ => unreachable!("typed interceptor calls are made on typed interceptors only"),
            })
            .await?;
        let verdicts = answer.map_err(|e| self.refused(e))?;
        if verdicts.len() != records.len() {
            return Err(self.bad_answer(format!("{} verdicts for {} records", verdicts.len(), records.len())));
        }
        Ok(verdicts)
    }

    /// A batch interceptor called with typed records: they are encoded, and its answer is
    /// turned back into one verdict per record (matched by offset delta).
    async fn intercept_typed_through_batch(
        &self,
        ctx: &BatchContext,
        records: &[KafkaRecord],
        produce: bool,
    ) -> Result<Vec<Verdict>, CallError> {
        let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
        let last_offset_delta = records.iter().map(|r| r.offset_delta).max().unwrap_or(0);
        let mut encoded = Vec::new();
        codec::encode_records(records, base_timestamp, &mut encoded);
        let replaced = self
            .intercept_encoded(ctx, &encoded, records.len(), base_timestamp, last_offset_delta, produce)
            .await?;
        let Some(replaced) = replaced else {
            return Ok(records.iter().map(|_| Verdict::Keep).collect());
        };
        let mut replacements = codec::decode_records(&replaced.records, replaced.count, base_timestamp)
            .map_err(|e| self.bad_answer(format!("replacement records: {e}")))?
            .into_iter()
            .peekable();
        Ok(records
            .iter()
            .map(
                |original| match replacements.next_if(|r| r.offset_delta == original.offset_delta) {
                    Some(replacement) => Verdict::Replace(replacement),
                    None => Verdict::Drop,
                },
            )
            .collect())
    }

    /// Runs the interceptor over `count` records in Kafka's record encoding (a batch's
    /// records after decompression). `None`: keep the batch; otherwise its new records,
    /// checked to be well-formed with increasing offset deltas within `0..=last_offset_delta`. A typed interceptor gets the records decoded, and its
    /// verdicts are applied and encoded here.
    pub async fn intercept_encoded(
        &self,
        ctx: &BatchContext,
        records: &[u8],
        count: usize,
        base_timestamp: i64,
        last_offset_delta: i32,
        produce: bool,
    ) -> Result<Option<ReplacedRecords>, CallError> {
        if self.world == World::Interceptor {
            let decoded = codec::decode_records(records, count, base_timestamp).map_err(|e| CallError::BadAnswer {
                plugin: self.id.to_string(),
                message: format!("the batch's records cannot be decoded: {e}"),
            })?;
            let verdicts = self.call_typed_interceptor(ctx, &decoded, produce).await?;
            let (kept, changed) = apply(decoded, verdicts);
            if !changed {
                return Ok(None);
            }
            let mut encoded = Vec::with_capacity(records.len());
            codec::encode_records(&kept, base_timestamp, &mut encoded);
            let deltas = kept.iter().map(|r| r.timestamp_ms - base_timestamp);
            let timestamp_deltas = match (deltas.clone().min(), deltas.max()) {
                (Some(min), Some(max)) => (min, max),
                _ => (0, 0),
            };
            return Ok(Some(ReplacedRecords {
                records: encoded,
                count: kept.len(),
                timestamp_deltas,
            }));
        }
        let count = count as u32;
        let answer = self
            .with_instance(async |store, bound| match bound {
                Bound::BatchInterceptor(i) if produce => {
                    i.strom_plugin_batch_interceptor()
                        .call_on_produce_batch(store, ctx, records, count)
                        .await
                }
                Bound::BatchInterceptor(i) => {
                    i.strom_plugin_batch_interceptor()
                        .call_on_fetch_batch(store, ctx, records, count)
                        .await
                }
                _ => unreachable!("world checked at load"),
            })
            .await?;
        match answer.map_err(|e| self.refused(e))? {
            BatchVerdict::Keep => Ok(None),
            BatchVerdict::Replace(out) => {
                let timestamp_deltas = codec::check_records(&out.records, out.count as usize, last_offset_delta)
                    .map_err(|e| self.bad_answer(format!("replacement records: {e}")))?;
                Ok(Some(ReplacedRecords {
                    records: out.records,
                    count: out.count as usize,
                    timestamp_deltas,
                }))
            }
        }
    }
}

/// The records an interceptor put in place of a batch's: `count` records in Kafka's
/// encoding, checked, with the span of their timestamp deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedRecords {
    pub records: Vec<u8>,
    pub count: usize,
    pub timestamp_deltas: (i64, i64),
}

/// Applies typed verdicts; returns the records and whether any verdict changed something.
/// A replacement keeps the offset delta of the record it replaces.
fn apply(records: Vec<KafkaRecord>, verdicts: Vec<Verdict>) -> (Vec<KafkaRecord>, bool) {
    let mut changed = false;
    let kept = records
        .into_iter()
        .zip(verdicts)
        .filter_map(|(original, verdict)| match verdict {
            Verdict::Keep => Some(original),
            Verdict::Drop => {
                changed = true;
                None
            }
            Verdict::Replace(mut replacement) => {
                changed = true;
                replacement.offset_delta = original.offset_delta;
                Some(replacement)
            }
        })
        .collect();
    (kept, changed)
}

/// SASL plugins (the `sasl-plugin` world). The session state is opaque bytes the broker
/// keeps per connection, so each step may run on any pooled instance, and an instance that
/// trapped is simply replaced.
impl LoadedPlugin {
    fn sasl_world(&self) -> Result<(), CallError> {
        if self.world == World::Sasl {
            return Ok(());
        }
        Err(CallError::BadAnswer {
            plugin: self.id.to_string(),
            message: format!("it is a {} plugin, not a sasl-plugin", self.world.name()),
        })
    }

    /// The mechanisms the plugin implements.
    pub async fn sasl_mechanisms(&self) -> Result<Vec<String>, CallError> {
        self.sasl_world()?;
        self.with_instance(async |store, bound| match bound {
            Bound::Sasl(s) => s.strom_plugin_sasl_mechanism().call_mechanisms(store).await,
            _ => unreachable!("world checked above"),
        })
        .await
    }

    /// Starts one authentication of `mechanism` for a client at `client_address`; returns
    /// the session's initial state.
    pub async fn sasl_start(&self, mechanism: &str, client_address: &str) -> Result<Vec<u8>, CallError> {
        self.sasl_world()?;
        let state = self
            .with_instance(async |store, bound| match bound {
                Bound::Sasl(s) => {
                    s.strom_plugin_sasl_mechanism()
                        .call_start(store, mechanism, client_address)
                        .await
                }
                _ => unreachable!("world checked above"),
            })
            .await?;
        self.check_sasl_state(&state)?;
        Ok(state)
    }

    /// Feeds the client's message to the session in `state`: the next state and either a
    /// challenge or the authenticated principal. The plugin's `credentials.lookup` import is
    /// answered by `lookup` during this call only. A refusal (bad credentials) is
    /// [`CallError::Refused`] with SASL_AUTHENTICATION_FAILED and the plugin's reason.
    pub async fn sasl_step(
        &self,
        state: &[u8],
        client_message: &[u8],
        lookup: CredentialLookup,
    ) -> Result<(Vec<u8>, SaslOutcome), CallError> {
        self.sasl_world()?;
        let answer = self
            .with_instance(async |store, bound| {
                let Bound::Sasl(s) = bound else {
                    unreachable!("world checked above")
                };
                store.data_mut().credentials = Some(lookup);
                let result = s
                    .strom_plugin_sasl_mechanism()
                    .call_step(&mut *store, state, client_message)
                    .await;
                store.data_mut().credentials = None;
                result
            })
            .await?;
        let (next, outcome) = answer.map_err(|reason| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            CallError::Refused {
                error_code: SASL_AUTHENTICATION_FAILED,
                message: format!("plugin {}: {reason}", self.id),
            }
        })?;
        self.check_sasl_state(&next)?;
        if let SaslOutcome::Authenticated(principal) = &outcome {
            if principal.principal_type.is_empty() || principal.name.is_empty() {
                return Err(self.bad_answer(format!(
                    "authenticated principal {:?}:{:?} has an empty type or name",
                    principal.principal_type, principal.name
                )));
            }
            if principal.principal_type.contains(':') {
                return Err(self.bad_answer(format!("principal type {:?} contains ':'", principal.principal_type)));
            }
            if principal.session_lifetime_ms.is_some_and(|ms| ms < 0) {
                return Err(self.bad_answer(format!("negative session lifetime {:?}", principal.session_lifetime_ms)));
            }
        }
        Ok((next, outcome))
    }

    fn check_sasl_state(&self, state: &[u8]) -> Result<(), CallError> {
        if state.len() > SASL_STATE_BYTES_MAX {
            return Err(self.bad_answer(format!(
                "session state of {} bytes (at most {SASL_STATE_BYTES_MAX})",
                state.len()
            )));
        }
        Ok(())
    }
}
