//! The cluster as a Metadata response describes it: brokers, topics, partitions and leaders.
//!
//! Plain owned types, so that callers (the admin commands, the producer's partitioner, the
//! consumer's leader routing) never touch the generated response structs.

use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

use crate::error::{self, KafkaError};

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub node_id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// The broker's rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with IPv6 literals in brackets so that it parses as a socket address.
    pub fn addr(&self) -> String {
        socket_addr(&self.host, self.port)
    }
}

/// `host:port`, with IPv6 literals in brackets so that it parses as a socket address.
pub fn socket_addr(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, -1 when there is none.
    pub leader: i32,
    /// The leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// Replica node ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error (e.g. LEADER_NOT_AVAILABLE), if any.
    pub error: Option<KafkaError>,
}

/// One topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The topic id (nil when the broker answers below Metadata v10).
    pub topic_id: Uuid,
    /// Whether the topic is internal (e.g. `__consumer_offsets`).
    pub is_internal: bool,
    /// The topic-level error (e.g. UNKNOWN_TOPIC_OR_PARTITION), if any.
    pub error: Option<KafkaError>,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The partition with index `partition`.
    pub fn partition(&self, partition: i32) -> Option<&PartitionInfo> {
        self.partitions.iter().find(|p| p.partition == partition)
    }

    /// The replication factor, taken from the first partition as Kafka's tools do.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// Brokers and topics from one Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id, when the broker reports one.
    pub cluster_id: Option<String>,
    /// The controller's node id as the broker reports it (-1 if unknown).
    pub controller_id: i32,
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics in the order the broker listed them.
    pub topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    /// Converts a decoded Metadata response.
    pub fn from_response(response: MetadataResponse) -> ClusterMetadata {
        let brokers = response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        let topics = response
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                        error: error::check(p.error_code, None).err(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicInfo {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    error: error::check(t.error_code, None).err(),
                    partitions,
                }
            })
            .collect();
        ClusterMetadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: response.controller_id.0,
            brokers,
            topics,
        }
    }

    /// The broker with node id `node_id`.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A topic id as Kafka prints it: URL-safe base64 of the 16 bytes, without padding
/// (`Uuid.toString()` in Kafka's Java code), e.g. `fUvXMxKcQaa3YW9WX8kF5w`.
pub fn format_topic_id(id: &Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // A chunk of k bytes gives k + 1 characters when unpadded.
        for s in &sextets[..chunk.len() + 1] {
            out.push(ALPHABET[*s as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_like_kafka() {
        assert_eq!(format_topic_id(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        // Kafka's Uuid.ONE_UUID (0..01) prints as "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(format_topic_id(&Uuid::from_u128(1)), "AAAAAAAAAAAAAAAAAAAAAQ");
        let id = Uuid::from_bytes([0xff; 16]);
        assert_eq!(format_topic_id(&id), "_____________________w");
        assert_eq!(format_topic_id(&Uuid::new_v4()).len(), 22);
    }

    #[test]
    fn ipv6_addresses_get_brackets() {
        let mut b = BrokerInfo {
            node_id: 1,
            host: "::1".into(),
            port: 9092,
            rack: None,
        };
        assert_eq!(b.addr(), "[::1]:9092");
        b.host = "localhost".into();
        assert_eq!(b.addr(), "localhost:9092");
    }
}
