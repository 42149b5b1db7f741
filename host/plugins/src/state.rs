//! What each plugin instance's store holds: its sandboxed WASI context (no files, no
//! network, no environment), its memory cap, its attachment's configuration, and (during a
//! SASL step only) the broker's credential lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::partitioner::strom::plugin::{host, types};
use crate::bindings::sasl::strom::plugin::credentials;
use crate::bindings::ScramCredential;

/// How a SASL plugin's `credentials.lookup` import is answered: (user, mechanism) to the
/// user's stored SCRAM credential for that mechanism.
pub type CredentialLookup = Arc<dyn Fn(&str, &str) -> Option<ScramCredential> + Send + Sync>;

pub struct State {
    pub plugin: Arc<str>,
    pub config: Arc<BTreeMap<String, String>>,
    pub memory_bytes_max: usize,
    /// Set when the guest tried to grow past `memory_bytes_max`.
    pub out_of_memory: bool,
    /// Set for the duration of a SASL step; `None` answers every lookup with "no such user".
    pub credentials: Option<CredentialLookup>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl State {
    pub fn new(plugin: Arc<str>, config: Arc<BTreeMap<String, String>>, memory_bytes_max: usize) -> State {
        State {
            plugin,
            config,
            memory_bytes_max,
            out_of_memory: false,
            credentials: None,
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for State {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes_max {
            self.out_of_memory = true;
            wasmtime::bail!(
                "plugin memory limit of {} bytes exceeded (wanted {desired})",
                self.memory_bytes_max
            );
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// Plenty for any plugin's function tables; a runaway table growth fails instead.
const TABLE_ELEMENTS_MAX: usize = 1 << 20;

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

impl credentials::Host for State {
    fn lookup(&mut self, user: String, mechanism: String) -> Option<ScramCredential> {
        self.credentials.as_ref().and_then(|lookup| lookup(&user, &mechanism))
    }
}
