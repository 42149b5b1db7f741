//! Cluster metadata for Strom: topics, partitions, topic configs, producer id blocks and
//! uploaded plugin components.
//!
//! - [`records`]: the record types, one per kind of change.
//! - [`image`]: the in-memory image those records build (pure, no I/O).
//! - [`log`]: the [`MetadataLog`] seam and the single-node file-backed log.
//! - [`MetadataStore`] (here): appends records and applies them to the image in log order.
//!
//! *Architecture invariant:* metadata knows nothing of sockets or Kafka requests. Handlers
//! validate a change against the current image, then submit records; the image only ever
//! changes by applying committed records, so replaying the log rebuilds it exactly.

pub mod image;
pub mod log;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use image::{MetadataImage, PluginImage, TopicImage};
pub use log::{LocalMetadataLog, MetadataLog};
pub use records::{AclEntry, MetadataRecord, ScramCredential};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{context} ({path}): {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MetadataError {
    pub(crate) fn io(context: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        MetadataError::Io {
            context,
            path: path.as_ref().to_owned(),
            source,
        }
    }
}

/// The metadata log plus the image built from it.
pub struct MetadataStore {
    log: Box<dyn MetadataLog>,
    image: RwLock<Arc<MetadataImage>>,
    /// Serializes submitters so records are applied in the order they were appended.
    submit: Mutex<()>,
}

impl MetadataStore {
    /// Replays the log into a fresh image; a brand-new log gets a `ClusterCreated` record.
    pub fn open(
        log: Box<dyn MetadataLog>,
        new_cluster_id: impl FnOnce() -> String,
    ) -> Result<MetadataStore, MetadataError> {
        let mut image = MetadataImage::default();
        let records = log.replay()?;
        for record in &records {
            image.apply(record);
        }
        let store = MetadataStore {
            log,
            image: RwLock::new(Arc::new(image)),
            submit: Mutex::new(()),
        };
        if records.is_empty() {
            store.submit(vec![MetadataRecord::ClusterCreated {
                cluster_id: new_cluster_id(),
            }])?;
        }
        Ok(store)
    }

    /// The current image; cheap to clone, never changes under the caller.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read())
    }

    /// Commits records and applies them; returns the image that includes them.
    pub fn submit(&self, records: Vec<MetadataRecord>) -> Result<Arc<MetadataImage>, MetadataError> {
        self.submit_with(|_| Ok::<_, std::convert::Infallible>(records))
            .map(|built| built.unwrap_or_else(|never| match never {}))
    }

    /// Like [`submit`](Self::submit), but builds the records from the current image while
    /// holding the submit order, so a check-then-write is atomic (e.g. "create if absent").
    pub fn submit_with<E>(
        &self,
        build: impl FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, E>,
    ) -> Result<Result<Arc<MetadataImage>, E>, MetadataError> {
        let _order = self.submit.lock();
        let current = self.image();
        let records = match build(&current) {
            Ok(records) => records,
            Err(e) => return Ok(Err(e)),
        };
        if records.is_empty() {
            return Ok(Ok(current));
        }
        self.log.append(&records)?;
        let mut next = (*current).clone();
        for record in &records {
            next.apply(record);
        }
        let next = Arc::new(next);
        *self.image.write() = Arc::clone(&next);
        Ok(Ok(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    #[test]
    fn survives_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::new_v4();
        {
            let store =
                MetadataStore::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap()), || "c1".into()).unwrap();
            store
                .submit(vec![MetadataRecord::TopicCreated {
                    name: "t".into(),
                    id,
                    partitions: 3,
                    configs: BTreeMap::new(),
                }])
                .unwrap();
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("metadata.log"))
            .unwrap();
        file.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        drop(file);
        let store = MetadataStore::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap()), || "c2".into()).unwrap();
        let image = store.image();
        assert_eq!(image.cluster_id, "c1");
        assert_eq!(image.topic("t").unwrap().partitions, 3);
        store
            .submit(vec![MetadataRecord::TopicDeleted { topic_id: id }])
            .unwrap();
        drop(store);
        let store = MetadataStore::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap()), || "c3".into()).unwrap();
        assert!(store.image().topic("t").is_none());
        assert_eq!(store.image().cluster_id, "c1");
    }

    #[test]
    fn plugin_bytes_round_trip_through_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: std::sync::Arc<[u8]> = std::sync::Arc::from(vec![0u8, 1, 2, 255, 128]);
        {
            let store =
                MetadataStore::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap()), || "c".into()).unwrap();
            store
                .submit(vec![MetadataRecord::PluginUploaded {
                    name: "p".into(),
                    version: "1".into(),
                    world: "partitioner".into(),
                    sha256: "abc".into(),
                    bytes: bytes.clone(),
                }])
                .unwrap();
        }
        let store = MetadataStore::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap()), || "c".into()).unwrap();
        let image = store.image();
        let plugin = image.plugin("p", "1").unwrap();
        assert_eq!((plugin.id(), &plugin.bytes), ("p@1".to_string(), &bytes));
        store
            .submit(vec![MetadataRecord::PluginDeleted {
                name: "p".into(),
                version: "1".into(),
            }])
            .unwrap();
        assert!(store.image().plugin("p", "1").is_none());
    }
}
