//! Plugins as the broker uses them: uploading (validated, then committed to metadata),
//! the plugins attached to each topic (resolved from topic configs and cached until the
//! configs change), and which topics use which plugin.
//!
//! A topic whose configs attach nothing costs one check of three config keys per request:
//! its batches are never decoded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_metadata::{MetadataImage, MetadataRecord, TopicImage};
use strom_plugins::{Limits, LoadedPlugin, PluginRuntime, World};

use crate::config::{topic as topic_config, BrokerConfig};

pub const PARTITIONER: &str = "partitioner";
pub const PARTITIONER_MODE: &str = "partitioner.mode";
pub const INTERCEPTORS_PRODUCE: &str = "interceptors.produce";
pub const INTERCEPTORS_FETCH: &str = "interceptors.fetch";
const ATTACHMENT_KEYS: [&str; 3] = [PARTITIONER, INTERCEPTORS_PRODUCE, INTERCEPTORS_FETCH];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionerMode {
    Route,
    Enforce,
}

/// The plugins attached to one topic, as of one version of its configs.
pub struct TopicPlugins {
    pub partitioner: Option<(Arc<LoadedPlugin>, PartitionerMode)>,
    pub produce: Vec<Arc<LoadedPlugin>>,
    pub fetch: Vec<Arc<LoadedPlugin>>,
}

impl TopicPlugins {
    pub fn touches_produce(&self) -> bool {
        self.partitioner.is_some() || !self.produce.is_empty()
    }
}

/// Identity of one loaded attachment: the same bytes with the same config and limits
/// share one loaded plugin (and its instance pool) across topics.
#[derive(Clone, PartialEq, Eq, Hash)]
struct AttachmentKey {
    id: String,
    sha256: String,
    config: BTreeMap<String, String>,
    limits: Limits,
}

/// A topic's configs and the plugins resolved from them (None: it attaches none).
type ResolvedTopic = (BTreeMap<String, String>, Option<Arc<TopicPlugins>>);

/// A plugin's calls, failed calls and time spent in calls (see `PluginManager::stats`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PluginStats {
    pub calls: u64,
    pub failures: u64,
    pub busy: Duration,
}

pub struct PluginManager {
    runtime: PluginRuntime,
    loaded: Mutex<HashMap<AttachmentKey, Arc<LoadedPlugin>>>,
    /// Per topic: the configs the cached plugins were resolved from.
    topics: Mutex<HashMap<String, ResolvedTopic>>,
    /// Whether any topic attaches a plugin, as of a metadata version, packed for a single
    /// atomic load on the produce and fetch paths: `(applied + 1) << 1 | attached`, 0 before
    /// the first answer.
    attached_as_of: AtomicU64,
}

/// An upload refused, with the HTTP status to answer.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// What an upload stored.
pub struct Uploaded {
    pub created: bool,
    pub world: String,
    pub sha256: String,
}

impl PluginManager {
    /// `memory_total`: what all plugin instances' memories may hold together.
    pub fn new(cache_dir: std::path::PathBuf, memory_total: usize) -> anyhow::Result<PluginManager> {
        let runtime = PluginRuntime::new(Some(cache_dir))?;
        runtime.set_memory_total(memory_total);
        Ok(PluginManager {
            runtime,
            loaded: Mutex::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
            attached_as_of: AtomicU64::new(0),
        })
    }

    /// Validates a component and commits it to metadata as `name@version`. Versions are
    /// immutable: the same bytes again are fine, different bytes are a conflict.
    pub fn upload(
        &self,
        metadata: &strom_metadata::MetadataStore,
        name: &str,
        version: &str,
        bytes: Vec<u8>,
    ) -> Result<Uploaded, Refusal> {
        if !crate::config::settings::is_plugin_id(&format!("{name}@{version}"))
            || name.contains(',')
            || version.contains(',')
        {
            return Err(Refusal::new(
                400,
                format!("{name:?}@{version:?} is not a valid NAME@VERSION"),
            ));
        }
        let sha256 = strom_plugins::content_hash(&bytes);
        let world = self
            .runtime
            .inspect(&bytes)
            .map_err(|e| Refusal::new(400, format!("{name}@{version} was refused: {e}")))?;
        let world = world.name().to_string();
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let committed = metadata.submit_with(|image| match image.plugin(name, version) {
            Some(existing) if existing.sha256 == sha256 => Ok(vec![]),
            Some(existing) => Err(Refusal::new(
                409,
                format!(
                    "{name}@{version} already exists with different content (sha256 {}); upload a new version",
                    existing.sha256
                ),
            )),
            None => Ok(vec![MetadataRecord::PluginUploaded {
                name: name.to_string(),
                version: version.to_string(),
                world: world.clone(),
                sha256: sha256.clone(),
                bytes: bytes.clone(),
            }]),
        });
        match committed {
            Ok(Ok(image)) => {
                let created = image.applied > 0
                    && image
                        .plugin(name, version)
                        .is_some_and(|p| Arc::ptr_eq(&p.bytes, &bytes));
                tracing::info!(plugin = %format!("{name}@{version}"), %world, size = bytes.len(), created, "plugin uploaded");
                Ok(Uploaded { created, world, sha256 })
            }
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => Err(Refusal::new(500, format!("metadata log: {e}"))),
        }
    }

    /// Deletes `name@version` unless a topic still uses it or the broker's
    /// `sasl.mechanism.plugins` names it.
    pub fn delete(
        &self,
        config: &BrokerConfig,
        metadata: &strom_metadata::MetadataStore,
        name: &str,
        version: &str,
    ) -> Result<(), Refusal> {
        let id = format!("{name}@{version}");
        let committed = metadata.submit_with(|image| {
            if image.plugin(name, version).is_none() {
                return Err(Refusal::new(404, format!("plugin {name}@{version} does not exist")));
            }
            if let Some((mechanism, _)) = crate::security::plugin_mechanisms(config)
                .into_iter()
                .find(|(_, plugin)| *plugin == id)
            {
                return Err(Refusal::new(
                    409,
                    format!(
                        "plugin {id} provides SASL mechanism {mechanism} (sasl.mechanism.plugins); change that setting first"
                    ),
                ));
            }
            let users = users(image, &format!("{name}@{version}"));
            if !users.is_empty() {
                let topics: Vec<String> = users.iter().map(|(t, as_)| format!("{t} ({as_})")).collect();
                return Err(Refusal::new(
                    409,
                    format!(
                        "plugin {name}@{version} is used by topic {}; detach it first",
                        topics.join(", ")
                    ),
                ));
            }
            Ok(vec![MetadataRecord::PluginDeleted {
                name: name.to_string(),
                version: version.to_string(),
            }])
        });
        match committed {
            Ok(Ok(_)) => {
                self.loaded.lock().retain(|k, _| k.id != format!("{name}@{version}"));
                Ok(())
            }
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => Err(Refusal::new(500, format!("metadata log: {e}"))),
        }
    }

    /// What the loaded attachments of `id` have done together so far.
    pub fn stats(&self, id: &str) -> PluginStats {
        let mut stats = PluginStats::default();
        for (_, p) in self.loaded.lock().iter().filter(|(k, _)| k.id == id) {
            let (calls, failures) = p.stats();
            stats.calls += calls;
            stats.failures += failures;
            stats.busy += p.busy();
        }
        stats
    }

    /// Whether any topic attaches a plugin (through its own configs or the broker's
    /// defaults); worked out once per metadata version, so a broker that uses no plugins
    /// pays one atomic load per produce or fetch request for asking.
    pub fn any_attached(&self, config: &BrokerConfig, image: &MetadataImage) -> bool {
        let version = (image.applied + 1) << 1;
        let cached = self.attached_as_of.load(Ordering::Relaxed);
        if cached & !1 == version {
            return cached & 1 == 1;
        }
        let attached = image.topics().any(|topic| {
            ATTACHMENT_KEYS
                .iter()
                .any(|k| topic_config::effective(config, &topic.configs, k).is_some_and(|v| !v.trim().is_empty()))
        });
        // A racing answer for another version may overwrite this one: the check above
        // only ever trusts an answer for the version at hand.
        self.attached_as_of
            .store(version | u64::from(attached), Ordering::Relaxed);
        attached
    }

    /// The plugins attached to `topic`, or `None` if it attaches none. Cached per version
    /// of the topic's configs, so a config change swaps plugins for the next request
    /// while requests already running finish on the old ones.
    pub fn for_topic(
        &self,
        config: &BrokerConfig,
        image: &MetadataImage,
        topic: &TopicImage,
    ) -> Result<Option<Arc<TopicPlugins>>, String> {
        let attaches = ATTACHMENT_KEYS
            .iter()
            .any(|k| topic_config::effective(config, &topic.configs, k).is_some_and(|v| !v.trim().is_empty()));
        if !attaches {
            return Ok(None);
        }
        if let Some((configs, cached)) = self.topics.lock().get(&topic.name) {
            if *configs == topic.configs {
                return Ok(cached.clone());
            }
        }
        let resolved = self.resolve(config, image, topic)?;
        self.topics
            .lock()
            .insert(topic.name.clone(), (topic.configs.clone(), resolved.clone()));
        Ok(resolved)
    }

    fn resolve(
        &self,
        config: &BrokerConfig,
        image: &MetadataImage,
        topic: &TopicImage,
    ) -> Result<Option<Arc<TopicPlugins>>, String> {
        let effective = |key: &str| {
            topic_config::effective(config, &topic.configs, key)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let limits = Limits {
            call_ms_max: effective("plugins.call.ms.max").parse().unwrap_or(100),
            memory_bytes_max: effective("plugins.memory.bytes.max").parse().unwrap_or(64 << 20),
        };
        let load = |id: &str, world: World| -> Result<Arc<LoadedPlugin>, String> {
            let plugin = lookup(image, id, world)?;
            let name = &plugin.name;
            let plugin_config: BTreeMap<String, String> = topic
                .configs
                .iter()
                .filter_map(|(k, v)| match topic_config::plugin_config_key(k) {
                    Some((p, key)) if p == name => Some((key.to_string(), v.clone())),
                    _ => None,
                })
                .collect();
            let key = AttachmentKey {
                id: id.to_string(),
                sha256: plugin.sha256.clone(),
                config: plugin_config.clone(),
                limits,
            };
            if let Some(loaded) = self.loaded.lock().get(&key) {
                return Ok(Arc::clone(loaded));
            }
            let loaded = Arc::new(
                self.runtime
                    .load(id, &plugin.bytes, plugin_config, limits)
                    .map_err(|e| format!("loading plugin {id}: {e}"))?,
            );
            warm_in_background(&loaded);
            self.loaded.lock().insert(key, Arc::clone(&loaded));
            Ok(loaded)
        };
        let list = |key: &str| -> Vec<String> {
            effective(key)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let partitioner = match effective(PARTITIONER) {
            id if id.is_empty() => None,
            id => {
                let mode = if effective(PARTITIONER_MODE) == "enforce" {
                    PartitionerMode::Enforce
                } else {
                    PartitionerMode::Route
                };
                Some((load(&id, World::Partitioner)?, mode))
            }
        };
        let produce = list(INTERCEPTORS_PRODUCE)
            .iter()
            .map(|id| load(id, World::Interceptor))
            .collect::<Result<Vec<_>, _>>()?;
        let fetch = list(INTERCEPTORS_FETCH)
            .iter()
            .map(|id| load(id, World::Interceptor))
            .collect::<Result<Vec<_>, _>>()?;
        if partitioner.is_none() && produce.is_empty() && fetch.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(TopicPlugins {
            partitioner,
            produce,
            fetch,
        })))
    }
}

impl PluginManager {
    /// The SASL plugin `id` (`NAME@VERSION` from `sasl.mechanism.plugins`), with the
    /// broker's `plugin.<NAME>.<key>` settings as its config, loaded once per content,
    /// config and limits and shared by every connection that uses it.
    pub fn sasl(
        &self,
        config: &BrokerConfig,
        image: &MetadataImage,
        id: &str,
        limits: Limits,
    ) -> Result<Arc<LoadedPlugin>, String> {
        let plugin = lookup(image, id, World::Sasl)?;
        let plugin_config = config.plugin_config(&plugin.name);
        let key = AttachmentKey {
            id: id.to_string(),
            sha256: plugin.sha256.clone(),
            config: plugin_config.clone(),
            limits,
        };
        if let Some(loaded) = self.loaded.lock().get(&key) {
            return Ok(Arc::clone(loaded));
        }
        let loaded = Arc::new(
            self.runtime
                .load(id, &plugin.bytes, plugin_config, limits)
                .map_err(|e| format!("loading plugin {id}: {e}"))?,
        );
        self.loaded.lock().insert(key, Arc::clone(&loaded));
        Ok(loaded)
    }
}

/// Instantiates one instance of a newly loaded plugin on the runtime, so the first call
/// does not pay for it (without a runtime, the first call instantiates).
fn warm_in_background(loaded: &Arc<LoadedPlugin>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let loaded = Arc::clone(loaded);
    runtime.spawn(async move {
        if let Err(e) = loaded.warm().await {
            tracing::warn!(plugin = %loaded.id, error = %e, "plugin failed to start; its calls will fail");
        }
    });
}

fn lookup<'a>(image: &'a MetadataImage, id: &str, world: World) -> Result<&'a strom_metadata::PluginImage, String> {
    let (name, version) = id
        .split_once('@')
        .ok_or_else(|| format!("{id:?} is not NAME@VERSION"))?;
    let plugin = image
        .plugin(name, version)
        .ok_or_else(|| format!("plugin {id} is not uploaded"))?;
    // Either form (typed or batch) of a partitioner or an interceptor may be attached.
    let same_kind = plugin.world == world.name()
        || (world.is_partitioner() && World::parse(&plugin.world).is_some_and(World::is_partitioner))
        || (world.is_interceptor() && World::parse(&plugin.world).is_some_and(World::is_interceptor));
    if !same_kind {
        return Err(format!("plugin {id} is a {}, not a {}", plugin.world, world.name()));
    }
    Ok(plugin)
}

/// Checks that every plugin a set of topic configs attaches exists with the right world.
pub fn validate_attachments(
    config: &BrokerConfig,
    image: &MetadataImage,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    let effective = |key: &str| {
        topic_config::effective(config, configs, key)
            .unwrap_or_default()
            .to_string()
    };
    let partitioner = effective(PARTITIONER);
    if !partitioner.trim().is_empty() {
        lookup(image, partitioner.trim(), World::Partitioner)?;
    }
    for key in [INTERCEPTORS_PRODUCE, INTERCEPTORS_FETCH] {
        for id in effective(key).split(',').map(str::trim).filter(|s| !s.is_empty()) {
            lookup(image, id, World::Interceptor)?;
        }
    }
    Ok(())
}

/// (topic, how) for every topic that attaches `id` through its own configs.
pub fn users(image: &MetadataImage, id: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for key in ATTACHMENT_KEYS {
            if topic
                .configs
                .get(key)
                .is_some_and(|v| v.split(',').any(|p| p.trim() == id))
            {
                out.push((topic.name.clone(), key));
            }
        }
    }
    out
}
