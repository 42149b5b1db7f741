//! The metadata records: every change to cluster metadata is one of these, appended to
//! the metadata log and applied in order to the image on every node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The first record of a new cluster.
    ClusterCreated {
        cluster_id: String,
    },
    TopicCreated {
        name: String,
        id: Uuid,
        partitions: u32,
        /// Topic-level config overrides; absent keys take the broker defaults.
        configs: BTreeMap<String, String>,
    },
    /// The topic now has `total` partitions (only ever grows).
    PartitionsCreated {
        topic_id: Uuid,
        total: u32,
    },
    /// Replaces the topic's config overrides as a whole.
    TopicConfigsReplaced {
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    },
    TopicDeleted {
        topic_id: Uuid,
    },
    /// Producer ids below `next` are handed out; the next block starts there.
    ProducerIdsAllocated {
        next: i64,
    },
}
