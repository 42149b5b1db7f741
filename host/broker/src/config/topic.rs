//! Topic-level configs: validation of overrides, and their effective values against the
//! broker's defaults (a topic's `retention.ms` falls back to `log.retention.ms`).

use std::collections::BTreeMap;

use strom_storage::{LogConfig, TimestampType};

use super::settings::{self, Setting};
use super::BrokerConfig;

/// Why a topic config was refused (INVALID_CONFIG at the edge).
#[derive(Debug, thiserror::Error)]
pub enum TopicConfigError {
    #[error("unknown topic config {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

/// The broker setting behind a topic config.
pub fn setting(name: &str) -> Result<&'static Setting, TopicConfigError> {
    settings::for_topic_config(name).ok_or_else(|| TopicConfigError::Unknown(name.to_string()))
}

/// Topic configs `plugin.<name>.<key>` are handed to plugin `<name>` as its configuration.
pub const PLUGIN_CONFIG_PREFIX: &str = "plugin.";

/// The plugin name and key of a `plugin.<name>.<key>` config.
pub fn plugin_config_key(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PLUGIN_CONFIG_PREFIX)?
        .split_once('.')
        .filter(|(p, k)| !p.is_empty() && !k.is_empty())
}

/// Validates one override, with the topic config's name in the message.
pub fn validate(name: &str, value: &str) -> Result<(), TopicConfigError> {
    if name.starts_with(PLUGIN_CONFIG_PREFIX) {
        return match plugin_config_key(name) {
            Some(_) => Ok(()),
            None => Err(TopicConfigError::Invalid(format!(
                "plugin config {name:?} is not of the form plugin.<name>.<key>"
            ))),
        };
    }
    let setting = setting(name)?;
    settings::validate(setting, value).map_err(|msg| TopicConfigError::Invalid(msg.replace(setting.name, name)))
}

pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))
}

/// The effective value of topic config `name`: the override, else the broker's value.
pub fn effective<'a>(broker: &'a BrokerConfig, overrides: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    match overrides.get(name) {
        Some(v) => Some(v.as_str()),
        None => settings::for_topic_config(name).map(|s| broker.get(s.name)),
    }
}

/// The storage settings of a topic's partitions.
pub fn log_config(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let num = |name: &str| -> i64 {
        effective(broker, overrides, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is validated"))
    };
    LogConfig {
        segment_bytes: num("segment.bytes").max(14) as u64,
        segment_ms: num("segment.ms"),
        index_interval_bytes: num("index.interval.bytes").max(0) as u64,
        max_message_bytes: num("max.message.bytes").max(0) as usize,
        timestamp_type: if effective(broker, overrides, "message.timestamp.type") == Some("LogAppendTime") {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        flush_messages: num("flush.messages"),
        flush_ms: num("flush.ms"),
        retention_ms: num("retention.ms"),
        retention_bytes: num("retention.bytes"),
        delete_enabled: effective(broker, overrides, "cleanup.policy")
            .is_some_and(|p| p.split(',').any(|x| x.trim() == "delete")),
    }
}
