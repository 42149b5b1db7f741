//! Kafka error codes as readable errors.
//!
//! Every response carries `i16` error codes, and many carry an `error_message` from the broker.
//! [`check`] turns a non-zero code into a [`KafkaError`] that prints the code's Kafka name
//! (`UNKNOWN_TOPIC_OR_PARTITION`, as Kafka's own tools print it) and the broker's message;
//! callers add what they were doing with `anyhow::Context`.

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// A non-zero Kafka error code returned by the broker, with the broker's message if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    /// The Kafka error code (never 0).
    pub code: i16,
    /// The broker's `error_message`, when the response has one and it was set.
    pub message: Option<String>,
}

impl KafkaError {
    /// The error as the `kafka-protocol` enum, e.g. for [`ResponseError::is_retriable`].
    pub fn kind(&self) -> ResponseError {
        ResponseError::try_from_code(self.code).unwrap_or(ResponseError::Unknown(0))
    }

    /// Kafka's name for the code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn name(&self) -> String {
        error_name(self.code)
    }

    /// Whether Kafka defines the error as retriable (a later attempt may succeed).
    pub fn is_retriable(&self) -> bool {
        self.kind().is_retriable()
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (error code {})", self.name(), self.code)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KafkaError {}

/// `Ok(())` for code 0, otherwise the [`KafkaError`] with the broker's message (empty messages
/// are dropped: brokers often send `""` rather than null).
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), KafkaError> {
    if code == 0 {
        return Ok(());
    }
    let message = message.map(|m| m.as_str().trim().to_string()).filter(|m| !m.is_empty());
    Err(KafkaError { code, message })
}

/// The [`KafkaError`] somewhere in an error's chain of causes, if there is one.
pub fn find_kafka_error(error: &anyhow::Error) -> Option<&KafkaError> {
    error.chain().find_map(|cause| cause.downcast_ref::<KafkaError>())
}

/// Kafka's SCREAMING_SNAKE name for an error code (`3` → `UNKNOWN_TOPIC_OR_PARTITION`).
///
/// `kafka-protocol` names its variants in CamelCase; Kafka's tools and documentation use the
/// upper snake form, which is what users will search for.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(known) => camel_to_upper_snake(&known.to_string()),
    }
}

fn camel_to_upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(35), "UNSUPPORTED_VERSION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn check_keeps_the_broker_message() {
        assert!(check(0, None).is_ok());
        let msg = StrBytes::from_static_str("Topic 'x' already exists.");
        let err = check(36, Some(&msg)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TOPIC_ALREADY_EXISTS (error code 36): Topic 'x' already exists."
        );
        let empty = StrBytes::from_static_str("");
        assert_eq!(check(3, Some(&empty)).unwrap_err().message, None);
        assert!(check(3, None).unwrap_err().is_retriable());
    }

    #[test]
    fn kafka_errors_are_found_behind_context() {
        use anyhow::Context;
        let err = Err::<(), _>(check(36, None).unwrap_err())
            .context("cannot create topic 't'")
            .unwrap_err();
        assert_eq!(find_kafka_error(&err).map(|e| e.code), Some(36));
        assert!(find_kafka_error(&anyhow::anyhow!("other")).is_none());
    }
}
