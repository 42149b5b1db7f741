//! The partitions this broker hosts: one [`Partition`] (a log plus its high watermark
//! signal) per topic partition in the metadata image, kept in step with the image.
//!
//! On disk each partition is `<log.dirs>/<topic>-<index>/`, holding a `partition.metadata`
//! file with the topic id, so a topic deleted and re-created under the same name never
//! picks up the old topic's data.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::{Mutex, RwLock};
use strom_metadata::MetadataImage;
use strom_storage::{FlushJob, Log, LogConfig};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::{topic, BrokerConfig};

/// The directory of the metadata log inside `log.dirs`; never a partition.
pub const METADATA_DIR: &str = "__cluster_metadata";
const PARTITION_METADATA_FILE: &str = "partition.metadata";
const DELETE_SUFFIX: &str = "-delete";

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub log: RwLock<Log>,
    /// The high watermark, published so long-polling fetches wake on new data.
    high_watermark: watch::Sender<i64>,
}

impl Partition {
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Single node: every replica (this one) is in sync as soon as the log has the data.
    pub fn advance_high_watermark(&self, log: &mut Log) {
        let hw = log.log_end_offset();
        log.set_high_watermark(hw);
        self.high_watermark.send_replace(hw);
    }

    /// Runs a flush job off the async threads, then records the recovery point.
    pub async fn run_flush(self: &Arc<Self>, job: FlushJob) -> anyhow::Result<()> {
        let job_for_thread = job.clone();
        tokio::task::spawn_blocking(move || job_for_thread.run())
            .await
            .context("flush task panicked")?
            .with_context(|| format!("fsync of {}-{}", self.topic, self.index))?;
        self.log.write().flushed_up_to(job.up_to_offset)?;
        Ok(())
    }
}

pub struct PartitionManager {
    dir: PathBuf,
    partitions: RwLock<HashMap<String, Vec<Arc<Partition>>>>,
    /// Serializes reconciliations, which create and delete directories.
    reconcile: Mutex<()>,
}

impl PartitionManager {
    /// Opens every partition of the image, and removes directories of deleted topics.
    pub fn open(
        dir: &Path,
        image: &MetadataImage,
        config: &BrokerConfig,
        now_ms: i64,
    ) -> anyhow::Result<PartitionManager> {
        fs::create_dir_all(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
        let manager = PartitionManager {
            dir: dir.to_owned(),
            partitions: RwLock::new(HashMap::new()),
            reconcile: Mutex::new(()),
        };
        for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            if name.ends_with(DELETE_SUFFIX) {
                remove_in_background(path);
            }
        }
        manager.reconcile(image, config, now_ms)?;
        // Directories that no partition of the image claims belong to deleted topics.
        let claimed: Vec<PathBuf> = manager.all().iter().map(|p| p.log.read().dir().to_owned()).collect();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() && path.join(PARTITION_METADATA_FILE).exists() && !claimed.contains(&path) {
                tracing::info!(dir = %path.display(), "removing the log of a deleted topic");
                mark_deleted(&path)?;
            }
        }
        Ok(manager)
    }

    /// Brings the hosted partitions in line with the image: opens new ones, applies config
    /// changes, and deletes the logs of topics that are gone.
    pub fn reconcile(&self, image: &MetadataImage, config: &BrokerConfig, now_ms: i64) -> anyhow::Result<()> {
        let _one_at_a_time = self.reconcile.lock();
        let current = self.partitions.read().clone();
        let mut next: HashMap<String, Vec<Arc<Partition>>> = HashMap::new();
        for topic in image.topics() {
            let log_config = topic::log_config(config, &topic.configs);
            let mut partitions = match current.get(&topic.name) {
                Some(existing) if existing.first().is_some_and(|p| p.topic_id == topic.id) => existing.clone(),
                _ => Vec::new(),
            };
            for partition in &partitions {
                let mut log = partition.log.write();
                if *log.config() != log_config {
                    log.set_config(log_config.clone());
                }
            }
            for index in partitions.len() as i32..topic.partitions as i32 {
                let partition = self
                    .open_partition(&topic.name, topic.id, index, log_config.clone(), now_ms)
                    .with_context(|| format!("opening partition {}-{index}", topic.name))?;
                partitions.push(Arc::new(partition));
            }
            next.insert(topic.name.clone(), partitions);
        }
        let mut doomed = Vec::new();
        for (name, partitions) in &current {
            let kept = next.get(name).and_then(|p| p.first()).map(|p| p.topic_id);
            if partitions.first().is_some_and(|p| Some(p.topic_id) != kept) {
                doomed.extend(partitions.iter().cloned());
            }
        }
        *self.partitions.write() = next;
        for partition in doomed {
            let dir = partition.log.read().dir().to_owned();
            tracing::info!(topic = %partition.topic, partition = partition.index, "deleting partition log");
            mark_deleted(&dir)?;
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: LogConfig,
        now_ms: i64,
    ) -> anyhow::Result<Partition> {
        let dir = self.dir.join(format!("{topic}-{index}"));
        let marker = dir.join(PARTITION_METADATA_FILE);
        let expected = format!("version: 0\ntopic_id: {topic_id}\n");
        match fs::read_to_string(&marker) {
            Ok(found) if found == expected => {}
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "directory belongs to an older topic of the same name; removing it");
                mark_deleted(&dir)?;
            }
            Err(_) => {}
        }
        let log = Log::open(&dir, config, now_ms)?;
        if !marker.exists() {
            strom_storage::checkpoint::write_atomically(&marker, expected.as_bytes())?;
        }
        let hw = log.high_watermark();
        Ok(Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            log: RwLock::new(log),
            high_watermark: watch::channel(hw).0,
        })
    }

    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let partitions = self.partitions.read();
        partitions.get(topic)?.get(usize::try_from(index).ok()?).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().flatten().cloned().collect()
    }

    /// Closes every log cleanly (flush, snapshot, clean-shutdown marker).
    pub fn close_all(&self) -> anyhow::Result<()> {
        let partitions: Vec<Arc<Partition>> = self.partitions.write().drain().flat_map(|(_, p)| p).collect();
        for partition in partitions {
            let name = format!("{}-{}", partition.topic, partition.index);
            match Arc::try_unwrap(partition) {
                Ok(partition) => partition
                    .log
                    .into_inner()
                    .close()
                    .with_context(|| format!("closing {name}"))?,
                Err(shared) => {
                    // A request still holds it: flush what we can; recovery handles the rest.
                    let log = shared.log.read();
                    if let Some(job) = log.close_job() {
                        job.run().with_context(|| format!("flushing {name}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Renames a log directory aside (fast, atomic) and removes it in the background.
fn mark_deleted(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let aside = dir.with_file_name(format!("{name}.{}{DELETE_SUFFIX}", Uuid::new_v4().simple()));
    fs::rename(dir, &aside).with_context(|| format!("renaming {} for deletion", dir.display()))?;
    remove_in_background(aside);
    Ok(())
}

fn remove_in_background(dir: PathBuf) {
    std::thread::spawn(move || {
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted log");
        }
    });
}
