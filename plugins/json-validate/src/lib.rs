//! Refuses produced records whose value is not a JSON object with every field listed in
//! `plugin.<name>.required` (comma-separated, default `id`). The whole batch fails with
//! INVALID_RECORD and a message naming the record and the field.

use strom_plugin_sdk::interceptor::{BatchContext, Guest, KafkaRecord, PluginError, Verdict};
use strom_plugin_sdk::{host, json};

struct Validate;

impl Guest for Validate {
    fn on_produce(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        let required = host::config("required").unwrap_or_else(|| "id".to_string());
        for r in &records {
            let value = r.value.as_deref().unwrap_or_default();
            if !value.trim_ascii_start().starts_with(b"{") {
                return Err(PluginError::invalid_record(format!(
                    "record {} is not a JSON object",
                    r.offset_delta
                )));
            }
            for field in required.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                if json::field(value, field).is_none() {
                    return Err(PluginError::invalid_record(format!(
                        "record {} lacks required field {field:?}",
                        r.offset_delta
                    )));
                }
            }
        }
        Ok(records.iter().map(|_| Verdict::Keep).collect())
    }

    fn on_fetch(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        Ok(records.iter().map(|_| Verdict::Keep).collect())
    }
}

strom_plugin_sdk::export_interceptor!(Validate);
