//! One module per API family, each a function from a decoded request to its response.
//! Kafka error codes are chosen here, at the edge, from the errors of the layers below.

pub mod acls;
pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod consumer_group;
pub mod delete_records;
pub mod fetch;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod scram_users;
pub mod topics;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use strom_storage::StorageError;

/// The Kafka error a storage failure is reported as.
pub fn storage_error_code(error: &StorageError) -> ResponseError {
    match error {
        StorageError::CorruptBatch(_) => ResponseError::CorruptMessage,
        StorageError::InvalidRecord(_) => ResponseError::InvalidRecord,
        StorageError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        StorageError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        StorageError::Io { .. } => ResponseError::KafkaStorageError,
    }
}

/// Kafka's check of a client's `current_leader_epoch` (-1: the client does not know it).
pub fn leader_epoch_error(requested: i32, current: i32) -> Option<ResponseError> {
    if requested < 0 || requested == current {
        None
    } else if requested > current {
        Some(ResponseError::UnknownLeaderEpoch)
    } else {
        Some(ResponseError::FencedLeaderEpoch)
    }
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if name.len() > 249 {
        return Err(format!("topic name is {} characters; the maximum is 249", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}
