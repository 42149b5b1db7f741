//! Stamps every produced record with a header (`plugin.<name>.header`, default
//! `x-strom-stamp`) whose value is `plugin.<name>.value` (default: the plugin's version
//! tag `v1`) — handy for lineage, and for tests that need to see which version ran.
//!
//! A batch interceptor: it reads the batch's records in place and writes the stamped ones
//! straight into the new batch, the cheap form for a plugin that touches every record.

use strom_plugin_sdk::batch::{BatchInterceptor, Records, RecordsWriter, Rewrite};
use strom_plugin_sdk::{host, BatchContext, PluginError};

struct Stamp;

const VERSION_TAG: &str = env!("STAMP_VALUE");

impl BatchInterceptor for Stamp {
    fn on_produce(_ctx: &BatchContext, records: &Records<'_>, out: &mut RecordsWriter) -> Result<Rewrite, PluginError> {
        let name = host::config("header").unwrap_or_else(|| "x-strom-stamp".to_string());
        let value = host::config("value").unwrap_or_else(|| VERSION_TAG.to_string());
        for record in records.iter() {
            // Every header of that name is replaced by the stamp.
            out.keep_with_header(&record?, &name, Some(value.as_bytes()));
        }
        Ok(Rewrite::Replace)
    }
}

strom_plugin_sdk::export_batch_interceptor!(Stamp);
