//! The broker's shared state and the request dispatcher: one place that maps an API key
//! to its handler in `handlers/`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use strom_metadata::{LocalMetadataLog, MetadataStore};

use crate::config::BrokerConfig;
use crate::coordinator::{GroupCoordinator, GroupSettings};
use crate::handlers;
use crate::partitions::{PartitionManager, METADATA_DIR};
use crate::security::acl::{Authorizer, Operation, ResourceType};
use crate::security::sasl::{SaslExchange, Verifier};
use crate::security::tls::TlsListener;
use std::collections::BTreeMap;

/// Compiled plugin components, under `log.dirs`.
const PLUGIN_CACHE_DIR: &str = "__plugin_cache";
use crate::protocol::{self, FrameError, Request};

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: MetadataStore,
    pub partitions: PartitionManager,
    pub producer_ids: handlers::init_producer_id::ProducerIdAllocator,
    pub coordinator: GroupCoordinator,
    pub plugins: crate::plugins::PluginManager,
    pub authorizer: Authorizer,
    /// TLS state of each SSL and SASL_SSL listener, by listener name.
    pub tls: BTreeMap<String, Arc<TlsListener>>,
    pub metrics: crate::metrics::Metrics,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// Who sent a request, as far as handlers need to know.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The name of the listener the connection came in on.
    pub listener: Arc<str>,
    pub peer: std::net::SocketAddr,
    pub client_id: String,
    pub version: i16,
    /// `User:alice`, or `User:ANONYMOUS` before (or without) authentication.
    pub principal: Arc<str>,
}

impl Broker {
    /// Opens the metadata log and every partition log under `log.dirs`.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Arc<Broker>> {
        let started = std::time::Instant::now();
        let metadata_log = LocalMetadataLog::open(&config.log_dir.join(METADATA_DIR))?;
        let metadata = MetadataStore::open(Box::new(metadata_log), new_cluster_id)?;
        let image = metadata.image();
        let partitions = PartitionManager::open(&config.log_dir, &image, &config, now_ms())?;
        let coordinator = GroupCoordinator::new(
            GroupSettings::from_config(&config)?,
            config.i64("offsets.topic.num.partitions") as i32,
        );
        let offset_records = coordinator.load(&partitions, image.as_ref())?;
        let plugins = crate::plugins::PluginManager::new(
            config.log_dir.join(PLUGIN_CACHE_DIR),
            config.i64("plugins.memory.total.bytes.max").max(0) as usize,
        )?;
        crate::security::validate_config(&config)?;
        let mut tls = BTreeMap::new();
        for listener in config.listeners.iter().filter(|l| l.protocol.uses_tls()) {
            tls.insert(listener.name.clone(), Arc::new(TlsListener::load(&config, listener)?));
        }
        let authorizer = Authorizer::new(&config);
        tracing::info!(
            topics = image.topics().count(),
            partitions = partitions.all().len(),
            cluster_id = %image.cluster_id,
            offset_records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "logs loaded"
        );
        Ok(Arc::new(Broker {
            config,
            metadata,
            partitions,
            producer_ids: Default::default(),
            coordinator,
            plugins,
            authorizer,
            tls,
            metrics: crate::metrics::Metrics::new(),
            shutdown: tokio::sync::watch::channel(false).0,
        }))
    }

    /// Re-reads the image into the hosted partitions after a metadata change.
    pub fn apply_metadata(&self) -> anyhow::Result<()> {
        self.partitions
            .reconcile(&self.metadata.image(), &self.config, now_ms())
    }

    /// May the request's principal perform `operation` on the resource? Always true when
    /// no authorizer is configured.
    pub fn authorized(&self, ctx: &RequestContext, operation: Operation, resource: ResourceType, name: &str) -> bool {
        if !self.authorizer.enabled() {
            return true;
        }
        let host = ctx.peer.ip().to_string();
        self.authorizer
            .authorize(&self.metadata.image(), &ctx.principal, &host, operation, resource, name)
    }

    /// Kafka's authorized-operations bit set: bit `op` is set for each of `operations` the
    /// principal may perform on the resource.
    pub fn authorized_operations(
        &self,
        ctx: &RequestContext,
        resource: ResourceType,
        name: &str,
        operations: &[Operation],
    ) -> i32 {
        operations
            .iter()
            .filter(|op| self.authorized(ctx, **op, resource, name))
            .fold(0, |bits, op| bits | (1 << (*op as i8)))
    }

    /// The SASL mechanisms a listener offers, in configured order.
    pub fn sasl_mechanisms(&self, listener: &str) -> Vec<String> {
        crate::security::listener_mechanisms(&self.config, listener)
    }

    /// Starts the server side of `mechanism`: built in, or from a SASL plugin.
    ///
    /// A plugin mechanism (`sasl.mechanism.plugins`) is resolved from metadata now, at
    /// handshake time, so a plugin uploaded after the broker started is used; a missing
    /// plugin fails this handshake with the reason.
    pub async fn start_sasl(&self, mechanism: &str, verifier: Verifier) -> Result<SaslExchange, String> {
        let provided_by = crate::security::plugin_mechanisms(&self.config)
            .into_iter()
            .find(|(m, _)| m == mechanism);
        if let Some((_, id)) = provided_by {
            let limits = strom_plugins::Limits {
                call_ms_max: self.config.i64("plugins.call.ms.max").max(1) as u64,
                memory_bytes_max: self.config.i64("plugins.memory.bytes.max").max(1 << 16) as usize,
            };
            let plugin = self
                .plugins
                .sasl(&self.config, &verifier.image, &id, limits)
                .map_err(|e| format!("SASL mechanism {mechanism} is provided by plugin {id} (sasl.mechanism.plugins), which is unavailable: {e}"))?;
            return SaslExchange::start_plugin(mechanism, plugin, verifier).await;
        }
        SaslExchange::start(mechanism, verifier)
            .ok_or_else(|| format!("SASL mechanism {mechanism} could not be started"))
    }

    /// Tells connections and long-polls to wind down.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_started(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|&down| down).await;
    }

    /// Handles one request. `Ok(None)` means no response is sent (acks=0 produce).
    pub async fn handle(&self, ctx: &RequestContext, request: &Request) -> Result<Option<Bytes>, FrameError> {
        macro_rules! serve {
            ($req:ty, $handler:path) => {{
                let body: $req = protocol::decode_body(request)?;
                let response = $handler(self, ctx, body).await;
                Some(encode(request, &response)?)
            }};
        }
        self.metrics.request(request.api_key);
        let response = match request.api_key {
            ApiKey::ApiVersions => serve!(ApiVersionsRequest, handlers::api_versions::handle),
            ApiKey::Metadata => serve!(MetadataRequest, handlers::metadata::handle),
            ApiKey::Produce => {
                let body: ProduceRequest = protocol::decode_body(request)?;
                match handlers::produce::handle(self, ctx, body).await? {
                    Some(response) => Some(encode(request, &response)?),
                    None => None,
                }
            }
            ApiKey::Fetch => serve!(FetchRequest, handlers::fetch::handle),
            ApiKey::ListOffsets => serve!(ListOffsetsRequest, handlers::list_offsets::handle),
            ApiKey::CreateTopics => serve!(CreateTopicsRequest, handlers::topics::create_topics),
            ApiKey::DeleteTopics => serve!(DeleteTopicsRequest, handlers::topics::delete_topics),
            ApiKey::CreatePartitions => {
                serve!(CreatePartitionsRequest, handlers::topics::create_partitions)
            }
            ApiKey::DescribeConfigs => serve!(DescribeConfigsRequest, handlers::configs::describe),
            ApiKey::AlterConfigs => serve!(AlterConfigsRequest, handlers::configs::alter),
            ApiKey::IncrementalAlterConfigs => {
                serve!(IncrementalAlterConfigsRequest, handlers::configs::incremental_alter)
            }
            ApiKey::DescribeCluster => serve!(DescribeClusterRequest, handlers::cluster::describe),
            ApiKey::DeleteRecords => serve!(DeleteRecordsRequest, handlers::delete_records::handle),
            ApiKey::InitProducerId => {
                serve!(InitProducerIdRequest, handlers::init_producer_id::handle)
            }
            ApiKey::FindCoordinator => serve!(FindCoordinatorRequest, handlers::groups::find_coordinator),
            ApiKey::JoinGroup => serve!(JoinGroupRequest, handlers::groups::join_group),
            ApiKey::SyncGroup => serve!(SyncGroupRequest, handlers::groups::sync_group),
            ApiKey::Heartbeat => serve!(HeartbeatRequest, handlers::groups::heartbeat),
            ApiKey::LeaveGroup => serve!(LeaveGroupRequest, handlers::groups::leave_group),
            ApiKey::DescribeGroups => serve!(DescribeGroupsRequest, handlers::groups::describe_groups),
            ApiKey::ListGroups => serve!(ListGroupsRequest, handlers::groups::list_groups),
            ApiKey::DeleteGroups => serve!(DeleteGroupsRequest, handlers::groups::delete_groups),
            ApiKey::OffsetCommit => serve!(OffsetCommitRequest, handlers::offsets::offset_commit),
            ApiKey::OffsetFetch => serve!(OffsetFetchRequest, handlers::offsets::offset_fetch),
            ApiKey::OffsetDelete => serve!(OffsetDeleteRequest, handlers::offsets::offset_delete),
            ApiKey::CreateAcls => serve!(CreateAclsRequest, handlers::acls::create),
            ApiKey::DescribeAcls => serve!(DescribeAclsRequest, handlers::acls::describe),
            ApiKey::DeleteAcls => serve!(DeleteAclsRequest, handlers::acls::delete),
            ApiKey::DescribeUserScramCredentials => {
                serve!(DescribeUserScramCredentialsRequest, handlers::scram_users::describe)
            }
            ApiKey::AlterUserScramCredentials => {
                serve!(AlterUserScramCredentialsRequest, handlers::scram_users::alter)
            }
            ApiKey::ConsumerGroupHeartbeat => {
                serve!(ConsumerGroupHeartbeatRequest, handlers::consumer_group::heartbeat)
            }
            ApiKey::ConsumerGroupDescribe => {
                serve!(ConsumerGroupDescribeRequest, handlers::consumer_group::describe)
            }
            other => return Err(FrameError::UnknownApiKey(other as i16)),
        };
        Ok(response)
    }
}

pub fn encode<T: Encodable + HeaderVersion>(request: &Request, response: &T) -> Result<Bytes, FrameError> {
    protocol::encode_response(request.correlation_id, request.version, response).map_err(|e| FrameError::Malformed {
        what: format!("{:?} v{} response", request.api_key, request.version),
        detail: format!("{e:#}"),
    })
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cluster id in Kafka's form: a random UUID, base64url without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in uuid::Uuid::new_v4().into_bytes() {
        acc = (acc << 8) | byte as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}
