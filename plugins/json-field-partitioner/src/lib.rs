//! Partitions by a top-level field of a JSON value (`plugin.<name>.field`, default
//! `customer_id`): every order of a customer lands on the same partition. A value without
//! the field is refused with INVALID_RECORD.

use strom_plugin_sdk::partitioner::{Guest, KafkaRecord, PluginError};
use strom_plugin_sdk::{host, json};

struct JsonField;

impl Guest for JsonField {
    fn partition(_topic: String, partition_count: u32, records: Vec<KafkaRecord>) -> Result<Vec<u32>, PluginError> {
        let field = host::config("field").unwrap_or_else(|| "customer_id".to_string());
        records
            .iter()
            .map(|r| {
                let value = r.value.as_deref().unwrap_or_default();
                let text = json::field(value, &field).ok_or_else(|| {
                    PluginError::invalid_record(format!("record {} has no JSON field {field:?}", r.offset_delta))
                })?;
                Ok(fnv1a(text.as_bytes()) % partition_count.max(1))
            })
            .collect()
    }
}

fn fnv1a(data: &[u8]) -> u32 {
    data.iter()
        .fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

strom_plugin_sdk::export_partitioner!(JsonField);
