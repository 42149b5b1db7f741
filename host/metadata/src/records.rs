//! The metadata records: every change to cluster metadata is one of these, appended to
//! the metadata log and applied in order to the image on every node.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// A plugin component was uploaded. The bytes live in the metadata log, so every
    /// broker of a cluster runs exactly the same component.
    PluginUploaded {
        name: String,
        version: String,
        /// The WIT world it exports (`partitioner`, `record-interceptor`, ...).
        world: String,
        /// SHA-256 of the bytes, hex.
        sha256: String,
        #[serde(with = "base64_bytes")]
        bytes: Arc<[u8]>,
    },
    PluginDeleted {
        name: String,
        version: String,
    },
    /// A user's SCRAM credential for one mechanism, as Kafka stores it: the salt, the
    /// derived keys and the iteration count, never the password.
    UserScramCredentialUpserted {
        user: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        #[serde(flatten)]
        credential: ScramCredential,
    },
    UserScramCredentialDeleted {
        user: String,
        mechanism: String,
    },
    /// An access control entry was added (adding an existing one changes nothing).
    AclCreated {
        #[serde(flatten)]
        acl: AclEntry,
    },
    AclDeleted {
        #[serde(flatten)]
        acl: AclEntry,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_vec")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_vec")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_vec")]
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

/// One access control entry, with Kafka's numeric codes for the resource type, pattern
/// type, operation and permission (the broker's authorizer gives them meaning).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// A client address, or `*`.
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

mod base64_vec {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Component bytes as base64 text inside the JSON record.
mod base64_bytes {
    use std::sync::Arc;

    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Arc::from)
            .map_err(serde::de::Error::custom)
    }
}
