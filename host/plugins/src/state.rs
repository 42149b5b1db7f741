//! What each plugin instance's store holds: its sandboxed WASI context (no files, no
//! network, no environment), its memory cap, its attachment's configuration, and (during a
//! SASL step only) the broker's credential lookup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::partitioner::strom::plugin::{host, types};
use crate::bindings::sasl::strom::plugin::credentials;
use crate::bindings::ScramCredential;

/// How a SASL plugin's `credentials.lookup` import is answered: (user, mechanism) to the
/// user's stored SCRAM credential for that mechanism.
pub type CredentialLookup = Arc<dyn Fn(&str, &str) -> Option<ScramCredential> + Send + Sync>;

/// The linear memory of every plugin instance together (idle pooled ones included), and
/// its cap: one plugin's limit keeps it from taking everything, this keeps many plugins
/// (or many instances of one) from taking the broker's memory together.
#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicUsize,
    max: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(max: usize) -> MemoryBudget {
        MemoryBudget {
            used: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
        }
    }

    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Bytes held by plugin memories now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_charge(&self, bytes: usize) -> bool {
        let max = self.max();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= max)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Why a guest's memory could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRefusal {
    /// Past this plugin's own limit.
    OwnLimit,
    /// Past what all plugins together may hold.
    Total,
}

pub struct State {
    pub plugin: Arc<str>,
    pub config: Arc<BTreeMap<String, String>>,
    pub memory_bytes_max: usize,
    /// Set when the guest tried to grow past a limit.
    pub out_of_memory: Option<MemoryRefusal>,
    budget: Arc<MemoryBudget>,
    /// What this instance's memories hold of `budget`, given back when it is dropped.
    charged: usize,
    /// Set for the duration of a SASL step; `None` answers every lookup with "no such user".
    pub credentials: Option<CredentialLookup>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl State {
    pub fn new(
        plugin: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        memory_bytes_max: usize,
        budget: Arc<MemoryBudget>,
    ) -> State {
        State {
            plugin,
            config,
            memory_bytes_max,
            out_of_memory: None,
            budget,
            charged: 0,
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
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes_max {
            self.out_of_memory = Some(MemoryRefusal::OwnLimit);
            wasmtime::bail!(
                "plugin memory limit of {} bytes exceeded (wanted {desired})",
                self.memory_bytes_max
            );
        }
        let growth = desired.saturating_sub(current);
        if !self.budget.try_charge(growth) {
            self.out_of_memory = Some(MemoryRefusal::Total);
            wasmtime::bail!(
                "all plugins together may hold {} bytes of memory, and {} are held",
                self.budget.max(),
                self.budget.used()
            );
        }
        self.charged += growth;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

impl State {
    /// Bytes this instance's memories hold.
    pub fn memory_held(&self) -> usize {
        self.charged
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.budget.release(self.charged);
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
