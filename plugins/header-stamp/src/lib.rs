//! Stamps every produced record with a header (`plugin.<name>.header`, default
//! `x-strom-stamp`) whose value is `plugin.<name>.value` (default: the plugin's version
//! tag `v1`) — handy for lineage, and for tests that need to see which version ran.

use strom_plugin_sdk::headers;
use strom_plugin_sdk::host;
use strom_plugin_sdk::interceptor::{BatchContext, Guest, KafkaRecord, PluginError, Verdict};

struct Stamp;

const VERSION_TAG: &str = env!("STAMP_VALUE");

impl Guest for Stamp {
    fn on_produce(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        let name = host::config("header").unwrap_or_else(|| "x-strom-stamp".to_string());
        let value = host::config("value").unwrap_or_else(|| VERSION_TAG.to_string());
        Ok(records
            .into_iter()
            .map(|mut r| {
                headers::set(&mut r, &name, value.as_bytes());
                Verdict::Replace(r)
            })
            .collect())
    }

    fn on_fetch(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        Ok(records.iter().map(|_| Verdict::Keep).collect())
    }
}

strom_plugin_sdk::export_interceptor!(Stamp);
