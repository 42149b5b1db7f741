//! The in-memory image of cluster metadata, built by applying records in log order.
//! Pure: no I/O, so it can be tested and replayed anywhere.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::records::{AclEntry, MetadataRecord, ScramCredential};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: u32,
    pub configs: BTreeMap<String, String>,
}

/// An uploaded plugin component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginImage {
    pub name: String,
    pub version: String,
    pub world: String,
    pub sha256: String,
    pub bytes: std::sync::Arc<[u8]>,
}

impl PluginImage {
    /// `name@version`, the form topic configs use.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Uploaded plugins by (name, version).
    plugins: BTreeMap<(String, String), PluginImage>,
    pub cluster_id: String,
    topics: BTreeMap<String, TopicImage>,
    names_by_id: HashMap<Uuid, String>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// SCRAM credentials by (user, mechanism).
    scram: BTreeMap<(String, String), ScramCredential>,
    acls: std::collections::BTreeSet<AclEntry>,
    /// Offset of the last applied record + 1.
    pub applied: u64,
}

impl MetadataImage {
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterCreated { cluster_id } => self.cluster_id = cluster_id.clone(),
            MetadataRecord::TopicCreated {
                name,
                id,
                partitions,
                configs,
            } => {
                self.names_by_id.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::PartitionsCreated { topic_id, total } => {
                if let Some(topic) = self.topic_by_id_mut(topic_id) {
                    topic.partitions = topic.partitions.max(*total);
                }
            }
            MetadataRecord::TopicConfigsReplaced { topic_id, configs } => {
                if let Some(topic) = self.topic_by_id_mut(topic_id) {
                    topic.configs = configs.clone();
                }
            }
            MetadataRecord::TopicDeleted { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIdsAllocated { next } => {
                self.next_producer_id = self.next_producer_id.max(*next);
            }
            MetadataRecord::PluginUploaded {
                name,
                version,
                world,
                sha256,
                bytes,
            } => {
                self.plugins.insert(
                    (name.clone(), version.clone()),
                    PluginImage {
                        name: name.clone(),
                        version: version.clone(),
                        world: world.clone(),
                        sha256: sha256.clone(),
                        bytes: bytes.clone(),
                    },
                );
            }
            MetadataRecord::PluginDeleted { name, version } => {
                self.plugins.remove(&(name.clone(), version.clone()));
            }
            MetadataRecord::UserScramCredentialUpserted {
                user,
                mechanism,
                credential,
            } => {
                self.scram.insert((user.clone(), mechanism.clone()), credential.clone());
            }
            MetadataRecord::UserScramCredentialDeleted { user, mechanism } => {
                self.scram.remove(&(user.clone(), mechanism.clone()));
            }
            MetadataRecord::AclCreated { acl } => {
                self.acls.insert(acl.clone());
            }
            MetadataRecord::AclDeleted { acl } => {
                self.acls.remove(acl);
            }
        }
        self.applied += 1;
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    fn topic_by_id_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.names_by_id.get(id)?;
        self.topics.get_mut(name)
    }

    pub fn plugin(&self, name: &str, version: &str) -> Option<&PluginImage> {
        self.plugins.get(&(name.to_string(), version.to_string()))
    }

    /// Plugins in (name, version) order.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginImage> {
        self.plugins.values()
    }

    pub fn scram_credential(&self, user: &str, mechanism: &str) -> Option<&ScramCredential> {
        self.scram.get(&(user.to_string(), mechanism.to_string()))
    }

    /// Every (user, mechanism, credential), in user order.
    pub fn scram_credentials(&self) -> impl Iterator<Item = (&str, &str, &ScramCredential)> {
        self.scram.iter().map(|((u, m), c)| (u.as_str(), m.as_str(), c))
    }

    pub fn acls(&self) -> impl Iterator<Item = &AclEntry> {
        self.acls.iter()
    }

    /// Topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_topic_lifecycle() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&MetadataRecord::TopicCreated {
            name: "orders".into(),
            id,
            partitions: 2,
            configs: BTreeMap::new(),
        });
        image.apply(&MetadataRecord::PartitionsCreated { topic_id: id, total: 5 });
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        image.apply(&MetadataRecord::TopicConfigsReplaced {
            topic_id: id,
            configs: configs.clone(),
        });
        let topic = image.topic("orders").unwrap();
        assert_eq!((topic.partitions, &topic.configs), (5, &configs));
        assert_eq!(image.topic_by_id(&id).unwrap().name, "orders");
        image.apply(&MetadataRecord::TopicDeleted { topic_id: id });
        assert!(image.topic("orders").is_none());
        assert!(image.topic_by_id(&id).is_none());
        assert_eq!(image.applied, 4);
    }

    #[test]
    fn security_records_round_trip_through_json() {
        let records = [
            MetadataRecord::UserScramCredentialUpserted {
                user: "alice".into(),
                mechanism: "SCRAM-SHA-256".into(),
                credential: ScramCredential {
                    salt: vec![1, 2, 3],
                    stored_key: vec![4; 32],
                    server_key: vec![5; 32],
                    iterations: 4096,
                },
            },
            MetadataRecord::AclCreated {
                acl: AclEntry {
                    resource_type: 2,
                    resource_name: "orders".into(),
                    pattern_type: 3,
                    principal: "User:alice".into(),
                    host: "*".into(),
                    operation: 3,
                    permission: 3,
                },
            },
        ];
        let mut image = MetadataImage::default();
        for record in &records {
            let json = serde_json::to_string(record).unwrap();
            let back: MetadataRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, record, "{json}");
            image.apply(&back);
        }
        assert_eq!(
            image.scram_credential("alice", "SCRAM-SHA-256").unwrap().iterations,
            4096
        );
        assert_eq!(image.acls().count(), 1);
        image.apply(&MetadataRecord::UserScramCredentialDeleted {
            user: "alice".into(),
            mechanism: "SCRAM-SHA-256".into(),
        });
        assert!(image.scram_credential("alice", "SCRAM-SHA-256").is_none());
    }
}
