//! A small async Kafka client on tokio and the `kafka-protocol` crate, and the client-side
//! subcommands of the `strom` binary (`strom topics|configs|cluster|produce|consume|bench|groups|plugins|users|acls`).
//!
//! The crate talks to any Kafka-compatible broker; Strom is simply the one it is tested
//! against. It is laid out bottom-up, one concern per module:
//!
//! | module | owns |
//! | --- | --- |
//! | [`error`] | Kafka error codes turned into readable errors ([`KafkaError`]) |
//! | [`connection`] | one TCP connection: framing, correlation ids, ApiVersions negotiation, pipelining |
//! | [`metadata`] | the cluster view decoded from a Metadata response (brokers, topics, leaders) |
//! | [`client`] | [`Client`]: bootstrap, metadata look-ups, leader routing, per-broker connection cache |
//! | [`admin`] | topic administration (create, delete, list, describe, partitions), topic and broker configs, the cluster's description |
//! | [`admin_api`] | the broker's admin HTTP API: uploading, listing, describing, deleting plugins |
//! | [`partitioner`] | Kafka's default partitioning: murmur2 for keys, round-robin otherwise |
//! | [`producer`] | building record batches (magic 2, optional compression) and Produce requests |
//! | [`consumer`] | ListOffsets, Fetch, and decoding fetched batches into records |
//! | [`groups`] | consumer group administration: coordinators, list, describe, committed offsets, delete |
//! | [`commands`] | the `clap` commands the `strom` binary embeds |
//!
//! Requests are the generated structs of `kafka_protocol::messages`; this crate never
//! hand-writes a codec the protocol crate already has. Every request is sent at the highest
//! version both this client and the broker speak (see [`connection::Connection::version`]).

pub mod admin;
pub mod admin_api;
pub mod client;
pub mod commands;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod groups;
pub mod metadata;
pub mod partitioner;
pub mod producer;
pub mod security;

pub use client::Client;
pub use connection::Connection;
pub use error::KafkaError;
