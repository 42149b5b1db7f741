//! Topic administration (create, delete, list, describe, partitions), the configs of topics
//! and brokers, and the cluster's description.
//!
//! Each operation is one request and fails with the broker's error code and message for the
//! topic it concerns. Creation, deletion and partition changes are addressed to the controller
//! the cluster names (any broker forwards them in KRaft clusters, so this is only a shortcut);
//! config requests go to any broker.

use std::fmt;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::error;
use crate::metadata::{BrokerInfo, TopicInfo};

/// How long the broker may take to apply a topic change before it answers REQUEST_TIMED_OUT.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// What a config belongs to, as DescribeConfigs and IncrementalAlterConfigs address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// A broker by node id.
    Broker(i32),
}

impl ConfigResource {
    /// The protocol's resource type (Kafka's `ConfigResource.Type`).
    fn resource_type(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) => 4,
        }
    }

    fn name(&self) -> String {
        match self {
            ConfigResource::Topic(name) => name.clone(),
            ConfigResource::Broker(id) => id.to_string(),
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(name) => write!(f, "topic '{name}'"),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
        }
    }
}

/// The cluster as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    /// The node id of the active controller (-1 if the broker does not know it).
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
}

/// Where a config value comes from (DescribeConfigs `config_source`), named as Kafka's
/// `ConfigEntry.ConfigSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic itself.
    DynamicTopicConfig,
    /// Set dynamically for this broker.
    DynamicBrokerConfig,
    /// Set dynamically as the default for all brokers.
    DynamicDefaultBrokerConfig,
    /// Set in the broker's static configuration.
    StaticBrokerConfig,
    /// Kafka's default.
    DefaultConfig,
    /// A dynamic broker logger level.
    DynamicBrokerLoggerConfig,
    /// Anything else the broker reports.
    Unknown(i8),
}

impl ConfigSource {
    /// Decodes the protocol's `config_source`.
    pub fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            other => ConfigSource::Unknown(other),
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::DynamicTopicConfig => f.write_str("DYNAMIC_TOPIC_CONFIG"),
            ConfigSource::DynamicBrokerConfig => f.write_str("DYNAMIC_BROKER_CONFIG"),
            ConfigSource::DynamicDefaultBrokerConfig => f.write_str("DYNAMIC_DEFAULT_BROKER_CONFIG"),
            ConfigSource::StaticBrokerConfig => f.write_str("STATIC_BROKER_CONFIG"),
            ConfigSource::DefaultConfig => f.write_str("DEFAULT_CONFIG"),
            ConfigSource::DynamicBrokerLoggerConfig => f.write_str("DYNAMIC_BROKER_LOGGER_CONFIG"),
            ConfigSource::Unknown(code) => write!(f, "UNKNOWN({code})"),
        }
    }
}

/// One config of a topic or broker as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config name, e.g. `retention.ms`.
    pub name: String,
    /// The value; `None` for sensitive configs and configs without a value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the config cannot be altered.
    pub read_only: bool,
    /// Whether the value is hidden because it is sensitive.
    pub is_sensitive: bool,
}

impl ConfigEntry {
    /// Whether the value is Kafka's default (source DEFAULT_CONFIG), as `ConfigEntry.isDefault`.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::DefaultConfig
    }
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to `value` on the resource.
    Set(String, String),
    /// Remove the resource's own value of `name`, so the next level's value (the broker's,
    /// for a topic) applies again.
    Delete(String),
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Client {
    /// Creates a topic. `partitions` and `replication_factor` may be -1 for the broker's
    /// defaults (CreateTopics v4 and later).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        let conn = self.controller().await?;
        let version = conn.version::<CreateTopicsRequest>()?;
        if version < 4 && (partitions < 0 || replication_factor < 0) {
            bail!("this broker needs an explicit partition count and replication factor");
        }
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(k))
                            .with_value(Some(str_bytes(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = conn.submit(&request, version).await?.wait().await?;
        for result in &response.topics {
            error::check(result.error_code, result.error_message.as_ref())
                .with_context(|| format!("cannot create topic '{}'", result.name.0))?;
        }
        if !response.topics.iter().any(|t| t.name.0.as_str() == name) {
            bail!("the broker's CreateTopics response omits topic '{name}'");
        }
        Ok(())
    }

    /// Deletes topics; fails naming every topic that could not be deleted.
    pub async fn delete_topics(&self, names: &[String]) -> Result<()> {
        let conn = self.controller().await?;
        let version = conn.version::<DeleteTopicsRequest>()?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        // v6 names topics in `topics` (which may also carry ids); earlier versions in
        // `topic_names`.
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect();
        } else {
            request.topic_names = names.iter().map(|n| topic_name(n)).collect();
        }
        let response = conn.submit(&request, version).await?.wait().await?;
        let mut failures = Vec::new();
        for result in &response.responses {
            if let Err(e) = error::check(result.error_code, result.error_message.as_ref()) {
                let name = result.name.as_ref().map(|n| n.0.to_string());
                failures.push(format!("'{}': {e}", name.unwrap_or_default()));
            }
        }
        if !failures.is_empty() {
            bail!("cannot delete topic {}", failures.join("; "));
        }
        Ok(())
    }

    /// The names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let metadata = self.metadata(None).await?;
        let mut names: Vec<String> = metadata.topics.into_iter().map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders, replicas, ISR and ids of the named topics (`None`: all topics,
    /// sorted by name). A named topic that does not exist is an error.
    pub async fn describe_topics(&self, names: Option<&[String]>) -> Result<Vec<TopicInfo>> {
        let metadata = self.metadata(names).await?;
        let mut topics = metadata.topics;
        for topic in &topics {
            if let Some(e) = &topic.error {
                let what = if e.kind() == ResponseError::UnknownTopicOrPartition {
                    format!("topic '{}' does not exist", topic.name)
                } else {
                    format!("cannot describe topic '{}'", topic.name)
                };
                return Err(anyhow::Error::new(e.clone()).context(what));
            }
        }
        match names {
            // Keep the order the user asked in.
            Some(names) => topics.sort_by_key(|t| names.iter().position(|n| *n == t.name)),
            None => topics.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        Ok(topics)
    }

    /// Every config of a topic, in the order the broker lists them.
    pub async fn describe_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        self.describe_resource_configs(&ConfigResource::Topic(topic.to_string()))
            .await
    }

    /// Every config of a topic or broker, in the order the broker lists them.
    pub async fn describe_resource_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let conn = self.any_connection().await?;
        let name = resource.name();
        let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource.resource_type())
            .with_resource_name(str_bytes(&name))
            .with_configuration_keys(None)]);
        let response = conn.send(&request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_name.as_str() == name)
            .with_context(|| format!("the broker's DescribeConfigs response omits {resource}"))?;
        error::check(result.error_code, result.error_message.as_ref())
            .with_context(|| format!("cannot describe configs of {resource}"))?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| {
                let source = ConfigSource::from_code(c.config_source);
                ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source,
                    read_only: c.read_only,
                    is_sensitive: c.is_sensitive,
                }
            })
            .collect())
    }

    /// Sets and deletes topic configs with IncrementalAlterConfigs (other configs stay as
    /// they are, unlike the legacy AlterConfigs).
    pub async fn alter_topic_config(&self, topic: &str, ops: &[AlterConfigOp]) -> Result<()> {
        self.alter_configs(&ConfigResource::Topic(topic.to_string()), ops).await
    }

    /// Sets and deletes configs of a topic or broker with IncrementalAlterConfigs.
    pub async fn alter_configs(&self, resource: &ConfigResource, ops: &[AlterConfigOp]) -> Result<()> {
        const SET: i8 = 0;
        const DELETE: i8 = 1;
        let conn = self.any_connection().await?;
        let configs = ops
            .iter()
            .map(|op| match op {
                AlterConfigOp::Set(name, value) => AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(SET)
                    .with_value(Some(str_bytes(value))),
                AlterConfigOp::Delete(name) => AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(DELETE)
                    .with_value(None),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource.resource_type())
            .with_resource_name(str_bytes(&resource.name()))
            .with_configs(configs)]);
        let response = conn.send(&request).await?;
        for result in &response.responses {
            error::check(result.error_code, result.error_message.as_ref())
                .with_context(|| format!("cannot alter configs of {resource}"))?;
        }
        Ok(())
    }

    /// The cluster id, the controller and the brokers (DescribeCluster).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let conn = self.any_connection().await?;
        let response = conn.send(&DescribeClusterRequest::default()).await?;
        error::check(response.error_code, response.error_message.as_ref()).context("cannot describe the cluster")?;
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .into_iter()
                .map(|b| BrokerInfo {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                })
                .collect(),
        })
    }

    /// Raises the partition count of a topic to `new_total`.
    pub async fn create_partitions(&self, topic: &str, new_total: i32) -> Result<()> {
        let conn = self.controller().await?;
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(new_total)
                .with_assignments(None)])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = conn.send(&request).await?;
        for result in &response.results {
            error::check(result.error_code, result.error_message.as_ref())
                .with_context(|| format!("cannot raise the partition count of topic '{topic}' to {new_total}"))?;
        }
        Ok(())
    }
}
