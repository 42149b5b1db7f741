//! The WASM plugin runtime of Strom.
//!
//! - [`bindings`]: host bindings generated from `wit/strom-plugin.wit`.
//! - [`engine`]: the one wasmtime engine (component model, epoch ticks at which running
//!   guests yield, pooling allocator) and the disk cache of compiled components.
//! - [`state`]: a plugin instance's store: sandboxed WASI, memory cap, configuration.
//! - [`plugin`]: a loaded plugin, its instance pool and the calls the broker makes.
//!
//! *Architecture invariant:* nothing a plugin does can fail anything but its own call. A
//! trap, an exhausted time budget or memory cap, or an answer that breaks the contract
//! becomes a [`CallError`]; the instance is discarded and the broker carries on. This crate
//! knows nothing of Kafka framing or storage: it takes and returns typed records.

/// Paths of the plugin components built from `plugins/` by this crate's build script.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}
pub mod bindings;
pub mod codec;
pub mod engine;
pub mod plugin;
pub mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use bindings::{
    BatchContext, Header, KafkaRecord, PluginError, SaslOutcome, SaslPrincipal, ScramCredential, Verdict,
};
pub use engine::content_hash;
pub use plugin::{CallError, Limits, LoadError, LoadedPlugin, ReplacedRecords, World, SASL_STATE_BYTES_MAX};
pub use state::CredentialLookup;

/// Compiles, validates and loads plugins.
pub struct PluginRuntime {
    engine: engine::PluginEngine,
}

impl PluginRuntime {
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<PluginRuntime> {
        Ok(PluginRuntime {
            engine: engine::PluginEngine::new(cache_dir)?,
        })
    }

    /// Caps what the memories of all instances of all plugins may hold together (default
    /// [`engine::PLUGIN_MEMORY_TOTAL_BYTES_DEFAULT`]): past it, a plugin whose memory must
    /// grow fails that call with [`CallError::MemoryExhausted`].
    pub fn set_memory_total(&self, bytes: usize) {
        self.engine.memory.set_max(bytes);
    }

    /// Bytes all plugin memories hold now.
    pub fn memory_used(&self) -> usize {
        self.engine.memory.used()
    }

    /// Checks that `bytes` are a component exporting a Strom world with imports Strom
    /// provides; returns the world.
    pub fn inspect(&self, bytes: &[u8]) -> Result<World, LoadError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotAComponent(
                "the file does not start with the WebAssembly magic bytes \\0asm".into(),
            ));
        }
        let component = self
            .engine
            .compile(bytes)
            .map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;
        let world = plugin::world_of(&self.engine, &component)?;
        self.engine
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Unlinkable(format!("{e:#}")))?;
        Ok(world)
    }

    /// Loads a plugin for one attachment (its configuration and limits).
    pub fn load(
        &self,
        id: &str,
        bytes: &[u8],
        config: BTreeMap<String, String>,
        limits: Limits,
    ) -> Result<LoadedPlugin, LoadError> {
        let component = self
            .engine
            .compile(bytes)
            .map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;
        LoadedPlugin::new(&self.engine, id, &component, config, limits)
    }
}
