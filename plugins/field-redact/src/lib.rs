//! On fetch, masks top-level JSON fields listed in `plugin.<name>.fields` (default
//! `card_number`) unless the consumer's principal is listed in `plugin.<name>.allow`. What
//! is stored is unchanged. Records with a `drop-me` header are dropped on produce, to
//! show the drop verdict.

use strom_plugin_sdk::interceptor::{BatchContext, Guest, KafkaRecord, PluginError, Verdict};
use strom_plugin_sdk::{headers, host, json};

struct Redact;

impl Guest for Redact {
    fn on_produce(_ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        Ok(records
            .iter()
            .map(|r| {
                if headers::get(r, "drop-me").is_some() {
                    Verdict::Drop
                } else {
                    Verdict::Keep
                }
            })
            .collect())
    }

    fn on_fetch(ctx: BatchContext, records: Vec<KafkaRecord>) -> Result<Vec<Verdict>, PluginError> {
        let allowed = host::config("allow").unwrap_or_default();
        if allowed.split(',').any(|p| p.trim() == ctx.principal) {
            return Ok(records.iter().map(|_| Verdict::Keep).collect());
        }
        let fields = host::config("fields").unwrap_or_else(|| "card_number".to_string());
        Ok(records
            .into_iter()
            .map(|mut r| {
                let mut changed = false;
                for field in fields.split(',').map(str::trim) {
                    if let Some(value) = r
                        .value
                        .as_deref()
                        .and_then(|v| json::replace_field(v, field, "\"***\""))
                    {
                        r.value = Some(value);
                        changed = true;
                    }
                }
                if changed {
                    Verdict::Replace(r)
                } else {
                    Verdict::Keep
                }
            })
            .collect())
    }
}

strom_plugin_sdk::export_interceptor!(Redact);
