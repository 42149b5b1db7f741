//! [`Client`]: the entry point. Bootstraps from `host:port`, learns the cluster from Metadata,
//! and keeps one connection per broker.
//!
//! Requests about the cluster (Metadata, DescribeConfigs) go to whichever broker we are
//! connected to; requests about a partition's data (Produce, ListOffsets, Fetch) go to that
//! partition's leader, found through Metadata and reached at its advertised address, as every
//! Kafka client must do (the bootstrap address may be a load balancer or an alias).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::Mutex;

use crate::connection::Connection;
use crate::metadata::{BrokerInfo, ClusterMetadata, TopicInfo};

/// The client id sent in every request header unless the caller picks another.
pub const DEFAULT_CLIENT_ID: &str = "strom-client";

/// How long [`Client::topic_metadata`] waits for a topic's partitions to get leaders (a topic
/// that was just created, explicitly or by auto-creation, has none for a moment).
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// A Kafka client bound to one cluster.
pub struct Client {
    bootstrap: Vec<String>,
    client_id: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The connection to a bootstrap server, used for cluster-wide requests.
    bootstrap: Option<Arc<Connection>>,
    /// One connection per broker node id.
    brokers: HashMap<i32, Arc<Connection>>,
    /// Broker addresses from the last Metadata response.
    known: HashMap<i32, BrokerInfo>,
}

impl Client {
    /// Connects to the first reachable of the comma-separated `host:port` bootstrap servers.
    pub async fn connect(bootstrap: &str) -> Result<Client> {
        Client::connect_as(bootstrap, DEFAULT_CLIENT_ID).await
    }

    /// Like [`Client::connect`], with the given client id in request headers.
    pub async fn connect_as(bootstrap: &str, client_id: &str) -> Result<Client> {
        let servers: Vec<String> = bootstrap
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            bail!("no bootstrap server given");
        }
        let client = Client {
            bootstrap: servers,
            client_id: client_id.to_string(),
            state: Mutex::new(State::default()),
        };
        client.any_connection().await?;
        Ok(client)
    }

    /// The client id sent in request headers.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A connection to some broker of the cluster, for requests any broker can answer.
    /// Reconnects (to the bootstrap servers in order) if the previous connection failed.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.bootstrap {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        let mut last_error = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, &self.client_id).await {
                Ok(conn) => {
                    state.bootstrap = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("no bootstrap server given")))
    }

    /// The cached connection to broker `node_id`, opened at its advertised address on first use.
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>> {
        {
            let state = self.state.lock().await;
            if let Some(conn) = state.brokers.get(&node_id) {
                if !conn.is_closed() {
                    return Ok(conn.clone());
                }
            }
        }
        let conn = self.dedicated_connection(node_id).await?;
        let mut state = self.state.lock().await;
        // Another task may have connected meanwhile; keep one connection per broker.
        if let Some(existing) = state.brokers.get(&node_id) {
            if !existing.is_closed() {
                return Ok(existing.clone());
            }
        }
        state.brokers.insert(node_id, conn.clone());
        Ok(conn)
    }

    /// A new connection to broker `node_id` that is not shared through the cache; for callers
    /// that must not queue behind others' requests (a long-polling fetch, a benchmark).
    pub async fn dedicated_connection(&self, node_id: i32) -> Result<Arc<Connection>> {
        let mut info = self.state.lock().await.known.get(&node_id).cloned();
        if info.is_none() {
            self.metadata(Some(&[])).await?;
            info = self.state.lock().await.known.get(&node_id).cloned();
        }
        let info = info.ok_or_else(|| anyhow!("broker {node_id} is not in the cluster metadata"))?;
        Connection::connect(&info.addr(), &self.client_id)
            .await
            .with_context(|| format!("cannot connect to broker {node_id}"))
    }

    /// The connection to the active controller when the cluster names one, else any broker.
    /// Topic creation and deletion are addressed there, as Kafka's admin client does.
    pub async fn controller(&self) -> Result<Arc<Connection>> {
        let metadata = self.metadata(Some(&[])).await?;
        if metadata.broker(metadata.controller_id).is_some() {
            if let Ok(conn) = self.broker(metadata.controller_id).await {
                return Ok(conn);
            }
        }
        self.any_connection().await
    }

    /// Metadata for `topics` (`None`: all topics) without auto-creating any.
    pub async fn metadata(&self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        self.metadata_request(topics, false).await
    }

    /// Sends a Metadata request and remembers the brokers it lists.
    pub async fn metadata_request(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<ClusterMetadata> {
        let conn = self.any_connection().await?;
        let version = conn.version::<MetadataRequest>()?;
        let mut request = MetadataRequest::default();
        request.topics = topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.clone())))))
                .collect()
        });
        if version == 0 && request.topics.is_none() {
            // v0 has no null array: an empty list means all topics.
            request.topics = Some(Vec::new());
        }
        // Below v4 the field does not exist and brokers always auto-create.
        request.allow_auto_topic_creation = allow_auto_topic_creation || version < 4;
        let response = conn
            .submit(&request, version)
            .await?
            .wait()
            .await
            .with_context(|| format!("Metadata request to broker at {} failed", conn.addr()))?;
        let metadata = ClusterMetadata::from_response(response);
        let mut state = self.state.lock().await;
        for broker in &metadata.brokers {
            state.known.insert(broker.node_id, broker.clone());
        }
        Ok(metadata)
    }

    /// Metadata for one topic, waiting briefly until every partition has a leader.
    ///
    /// With `auto_create` the broker may create a missing topic (if its configuration allows);
    /// a topic that still does not exist is an error naming it.
    pub async fn topic_metadata(&self, topic: &str, auto_create: bool) -> Result<TopicInfo> {
        let deadline = Instant::now() + LEADER_WAIT;
        let names = [topic.to_string()];
        let mut unknown_answers = 0;
        loop {
            let metadata = self.metadata_request(Some(&names), auto_create).await?;
            let info = metadata
                .topic(topic)
                .cloned()
                .ok_or_else(|| anyhow!("the broker's Metadata response omits topic '{topic}'"))?;
            let problem = match &info.error {
                Some(e) if e.kind() == ResponseError::UnknownTopicOrPartition => {
                    unknown_answers += 1;
                    // Auto-creation may take a moment to show up on the broker we ask.
                    if !auto_create || unknown_answers > 3 {
                        bail!("topic '{topic}' does not exist");
                    }
                    e.to_string()
                }
                Some(e) if !e.is_retriable() => {
                    return Err(anyhow::Error::new(e.clone()))
                        .with_context(|| format!("cannot get metadata of topic '{topic}'"));
                }
                Some(e) => e.to_string(),
                None if info.partitions.is_empty() => "the topic has no partitions yet".into(),
                None => match info.partitions.iter().find(|p| p.leader < 0) {
                    Some(p) => format!("partition {} has no leader", p.partition),
                    None => return Ok(info),
                },
            };
            if Instant::now() >= deadline {
                bail!(
                    "topic '{topic}' is not ready after {} s: {problem}",
                    LEADER_WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The connection to the leader of `topic`/`partition` per `info`.
    pub async fn leader(&self, info: &TopicInfo, partition: i32) -> Result<Arc<Connection>> {
        let p = info
            .partition(partition)
            .ok_or_else(|| anyhow!("topic '{}' has no partition {partition}", info.name))?;
        if p.leader < 0 {
            bail!("partition {partition} of topic '{}' has no leader", info.name);
        }
        self.broker(p.leader).await
    }
}
