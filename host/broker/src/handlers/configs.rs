//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (overrides kept in
//! metadata) and the broker (static: from strom.toml, environment and command line).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_metadata::MetadataRecord;

use super::str_bytes;
use crate::broker::{Broker, RequestContext};
use crate::config::{settings, topic as topic_config, Kind, Source};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigSource ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// One described config, with the chain of places its value could come from.
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub kind: Kind,
    pub doc: &'static str,
    pub read_only: bool,
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

fn broker_source(source: Source) -> ConfigSource {
    match source {
        Source::Default => ConfigSource::Default,
        _ => ConfigSource::StaticBroker,
    }
}

/// Every topic config with its effective value for a topic with these overrides, then the
/// topic's plugin configs (`plugin.<name>.<key>`).
pub fn topic_entries(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let plugin_configs = overrides
        .iter()
        .filter(|(k, _)| topic_config::plugin_config_key(k).is_some())
        .map(|(k, v)| ConfigEntry {
            name: k.clone(),
            value: v.clone(),
            source: ConfigSource::DynamicTopic,
            kind: Kind::String,
            doc: "Configuration handed to the plugin named in the key.",
            read_only: false,
            synonyms: vec![(k.clone(), v.clone(), ConfigSource::DynamicTopic)],
        });
    let mut entries: Vec<ConfigEntry> = settings::topic_config_names()
        .into_iter()
        .map(|name| {
            let setting = settings::for_topic_config(name).expect("listed names have settings");
            let broker_value = broker.config.get(setting.name).to_string();
            let broker_src = broker_source(broker.config.source(setting.name));
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(name) {
                synonyms.push((name.to_string(), v.clone(), ConfigSource::DynamicTopic));
            }
            if broker_src == ConfigSource::StaticBroker {
                synonyms.push((
                    setting.name.to_string(),
                    broker_value.clone(),
                    ConfigSource::StaticBroker,
                ));
            }
            synonyms.push((
                setting.name.to_string(),
                setting.default.to_string(),
                ConfigSource::Default,
            ));
            let (value, source) = match overrides.get(name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None => (broker_value, broker_src),
            };
            ConfigEntry {
                name: name.to_string(),
                value,
                source,
                kind: setting.kind,
                doc: setting.doc,
                read_only: false,
                synonyms,
            }
        })
        .collect();
    entries.extend(plugin_configs);
    entries
}

fn broker_entries(broker: &Broker) -> Vec<ConfigEntry> {
    broker
        .config
        .entries()
        .map(|(setting, value, source)| {
            let source = broker_source(source);
            let mut synonyms = vec![(setting.name.to_string(), value.to_string(), source)];
            if source != ConfigSource::Default {
                synonyms.push((
                    setting.name.to_string(),
                    setting.default.to_string(),
                    ConfigSource::Default,
                ));
            }
            ConfigEntry {
                name: setting.name.to_string(),
                value: value.to_string(),
                source,
                kind: setting.kind,
                doc: setting.doc,
                read_only: true,
                synonyms,
            }
        })
        .collect()
}

fn is_this_broker(broker: &Broker, name: &str) -> bool {
    name.is_empty() || name == broker.config.node_id.to_string()
}

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    let image = broker.metadata.image();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let entries = match resource.resource_type {
            _ if !may_configure(broker, ctx, resource.resource_type, &name, Operation::DescribeConfigs) => {
                Err(config_denied(resource.resource_type, &name, ctx))
            }
            RESOURCE_TOPIC => match image.topic(&name) {
                Some(topic) => Ok(topic_entries(broker, &topic.configs)),
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                )),
            },
            RESOURCE_BROKER if is_this_broker(broker, &name) => Ok(broker_entries(broker)),
            RESOURCE_BROKER => Err((
                ResponseError::InvalidRequest,
                format!("this node is broker {}, not {name}", broker.config.node_id),
            )),
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        };
        match entries {
            Ok(entries) => {
                let keys: Option<HashSet<String>> = resource
                    .configuration_keys
                    .map(|k| k.iter().map(|s| s.to_string()).collect());
                result.configs = entries
                    .into_iter()
                    .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                    .map(|e| to_wire(e, ctx.version, request.include_synonyms, request.include_documentation))
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(message));
            }
        }
        response.results.push(result);
    }
    response
}

fn to_wire(entry: ConfigEntry, version: i16, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = str_bytes(entry.name);
    c.value = Some(str_bytes(entry.value));
    c.read_only = entry.read_only;
    c.config_source = entry.source as i8;
    c.is_sensitive = false;
    if synonyms {
        c.synonyms = entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                let mut s = DescribeConfigsSynonym::default();
                s.name = str_bytes(name);
                s.value = Some(str_bytes(value));
                s.source = source as i8;
                s
            })
            .collect();
    }
    if version >= 3 {
        c.config_type = entry.kind as i8;
        if documentation {
            c.documentation = Some(str_bytes(entry.doc));
        }
    }
    c
}

type Refusal = (ResponseError, String);

/// Validates new overrides for a topic and, unless `validate_only`, commits them.
fn replace_topic_configs(
    broker: &Broker,
    topic: &str,
    validate_only: bool,
    compute: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Refusal>,
) -> Result<(), Refusal> {
    let committed = broker.metadata.submit_with(|image| {
        let current = image.topic(topic).ok_or((
            ResponseError::UnknownTopicOrPartition,
            format!("topic '{topic}' does not exist"),
        ))?;
        let next = compute(&current.configs)?;
        topic_config::validate_all(&next).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        crate::plugins::validate_attachments(&broker.config, image, &next)
            .map_err(|m| (ResponseError::InvalidConfig, m))?;
        if validate_only || next == current.configs {
            return Ok(vec![]);
        }
        Ok(vec![MetadataRecord::TopicConfigsReplaced {
            topic_id: current.id,
            configs: next,
        }])
    });
    match committed {
        Ok(Ok(_)) => {}
        Ok(Err(refusal)) => return Err(refusal),
        Err(e) => return Err((ResponseError::KafkaStorageError, format!("metadata log: {e}"))),
    }
    broker
        .apply_metadata()
        .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}")))
}

/// Alters one resource of an AlterConfigs or IncrementalAlterConfigs request: topic
/// overrides computed by `compute` from the current ones; broker configs are static.
fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    compute: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Refusal>,
) -> Result<(), Refusal> {
    match resource_type {
        RESOURCE_TOPIC => replace_topic_configs(broker, name, validate_only, compute),
        RESOURCE_BROKER => Err(broker_refusal(broker, name)),
        other => Err((
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported"),
        )),
    }
}

fn broker_refusal(broker: &Broker, name: &str) -> Refusal {
    if is_this_broker(broker, name) {
        (
            ResponseError::InvalidConfig,
            "broker configs cannot be changed at runtime yet: set them in strom.toml, STROM_* variables or `strom serve -o`".into(),
        )
    } else {
        (
            ResponseError::InvalidRequest,
            format!("this node is broker {}, not {name}", broker.config.node_id),
        )
    }
}

pub async fn alter(broker: &Broker, ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome = if !may_configure(broker, ctx, resource.resource_type, &name, Operation::AlterConfigs) {
            Err(config_denied(resource.resource_type, &name, ctx))
        } else {
            alter_resource(broker, resource.resource_type, &name, request.validate_only, |_| {
                // AlterConfigs replaces the whole set: anything not named reverts to default.
                let mut next = BTreeMap::new();
                for config in &resource.configs {
                    let value = config.value.as_ref().ok_or((
                        ResponseError::InvalidConfig,
                        format!("config {} has a null value", config.name.as_str()),
                    ))?;
                    next.insert(config.name.to_string(), value.to_string());
                }
                Ok(next)
            })
        };
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        if let Err((code, message)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(message));
        }
        response.responses.push(r);
    }
    response
}

/// Topic configs are checked on the topic; broker configs on the cluster, as Kafka does.
fn may_configure(broker: &Broker, ctx: &RequestContext, resource_type: i8, name: &str, op: Operation) -> bool {
    if resource_type == RESOURCE_TOPIC {
        broker.authorized(ctx, op, ResourceType::Topic, name)
    } else {
        broker.authorized(ctx, op, ResourceType::Cluster, CLUSTER_NAME)
    }
}

fn config_denied(resource_type: i8, name: &str, ctx: &RequestContext) -> (ResponseError, String) {
    if resource_type == RESOURCE_TOPIC {
        (
            ResponseError::TopicAuthorizationFailed,
            format!("{} may not access the configs of topic {name}", ctx.principal),
        )
    } else {
        (
            ResponseError::ClusterAuthorizationFailed,
            format!("{} may not access broker configs", ctx.principal),
        )
    }
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn incremental_alter(
    broker: &Broker,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let outcome = if !may_configure(broker, ctx, resource.resource_type, &name, Operation::AlterConfigs) {
            Err(config_denied(resource.resource_type, &name, ctx))
        } else {
            alter_resource(
                broker,
                resource.resource_type,
                &name,
                request.validate_only,
                |current| apply_operations(broker, current, &resource.configs),
            )
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        if let Err((code, message)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(message));
        }
        response.responses.push(r);
    }
    response
}

fn apply_operations(
    broker: &Broker,
    current: &BTreeMap<String, String>,
    operations: &[incremental_alter_configs_request::AlterableConfig],
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut next = current.clone();
    let mut seen = HashSet::new();
    for op in operations {
        let key = op.name.to_string();
        if !seen.insert(key.clone()) {
            return Err((
                ResponseError::InvalidRequest,
                format!("config {key} appears more than once"),
            ));
        }
        // Plugin configs (`plugin.<name>.<key>`) are free-form strings: only SET and DELETE.
        let kind = if topic_config::plugin_config_key(&key).is_some() {
            Kind::String
        } else {
            topic_config::setting(&key)
                .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?
                .kind
        };
        let value = || -> Result<String, Refusal> {
            op.value.as_ref().map(StrBytes::to_string).ok_or((
                ResponseError::InvalidConfig,
                format!("config {key} needs a value for this operation"),
            ))
        };
        match op.config_operation {
            OP_SET => {
                let value = value()?;
                next.insert(key, value);
            }
            OP_DELETE => {
                next.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT => {
                if kind != Kind::List {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("config {key} is not a list; APPEND and SUBTRACT do not apply"),
                    ));
                }
                let effective = topic_config::effective(&broker.config, &next, &key)
                    .unwrap_or_default()
                    .to_string();
                let mut items: Vec<String> = effective
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value()?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                next.insert(key, joined);
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(next)
}
