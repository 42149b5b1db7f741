//! The one wasmtime engine: component model, epoch ticks at which running guests yield, the
//! pooling allocator, and an on-disk cache of compiled components keyed by content hash.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::partitioner::strom::plugin::host;
use crate::bindings::sasl::strom::plugin::credentials;
use crate::state::{MemoryBudget, State};

/// How often the engine's epoch advances: how long a running guest keeps its thread before
/// it yields to the executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Instances the pooling allocator keeps slots for, across all plugins.
const POOLED_INSTANCES_MAX: u32 = 256;
/// The largest linear memory any plugin may be configured with.
pub const PLUGIN_MEMORY_BYTES_LIMIT: usize = 1 << 30;
/// What all plugin memories together may hold unless the embedder says otherwise.
pub const PLUGIN_MEMORY_TOTAL_BYTES_DEFAULT: usize = 2 << 30;

pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<State>,
    /// What all instances' memories hold together, and the cap.
    pub memory: Arc<MemoryBudget>,
    cache_dir: Option<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    /// `cache_dir`: where compiled components are kept between runs (None: no disk cache).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<PluginEngine> {
        let engine = match Engine::new(&config(true)) {
            Ok(engine) => engine,
            Err(e) => {
                // A machine that cannot reserve the pool's address space still runs plugins.
                tracing::warn!(error = %e, "pooling allocator unavailable; allocating plugin instances on demand");
                Engine::new(&config(false))?
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("adding WASI to the plugin linker")?;
        host::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("adding the host interface to the plugin linker")?;
        credentials::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("adding the credentials interface to the plugin linker")?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating plugin cache {}", dir.display()))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("strom-plugin-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        Ok(PluginEngine {
            engine,
            linker,
            memory: Arc::new(MemoryBudget::new(PLUGIN_MEMORY_TOTAL_BYTES_DEFAULT)),
            cache_dir,
            stop,
        })
    }

    /// Compiles a component, or loads its compiled form from the cache.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        let hash = content_hash(bytes);
        if let Some(path) = self.cache_path(&hash) {
            if path.exists() {
                // SAFETY: the file was written by `Component::serialize` of this engine
                // configuration into our own cache directory; wasmtime checks the header
                // (version and configuration) and refuses an incompatible artifact.
                match unsafe { Component::deserialize_file(&self.engine, &path) } {
                    Ok(component) => return Ok(component),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached plugin"),
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Some(path) = self.cache_path(&hash) {
            if let Err(e) = write_cache(&path, &component.serialize()?) {
                tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin");
            }
        }
        Ok(component)
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| d.join(format!("{hash}.cwasm")))
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // No concurrent guest tasks within a store (the component model's async ABI, which no
    // Strom world uses; our calls are Rust futures, one at a time per instance): this
    // halves the cost of a call into a guest.
    config.concurrency_support(false);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_INSTANCES_MAX);
        pool.total_core_instances(POOLED_INSTANCES_MAX * 2);
        pool.total_memories(POOLED_INSTANCES_MAX * 2);
        pool.total_tables(POOLED_INSTANCES_MAX * 2);
        pool.max_memory_size(PLUGIN_MEMORY_BYTES_LIMIT);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// The SHA-256 of a component's bytes, hex: its identity in the cache and in metadata.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn write_cache(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
