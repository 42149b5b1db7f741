//! `strom bench`: throughput and latency, measured the way Kafka's perf-test tools do.
//!
//! | subcommand | measures |
//! | --- | --- |
//! | `produce` | producer throughput and produce latency (ack time − batch creation time) |
//! | `consume` | consumer throughput reading a topic from the beginning |
//! | `e2e` | end-to-end latency at a fixed rate (consume time − create time) |
//! | `loopback` | the machine's raw TCP limit, for comparison |
//! | `plugins` | produce throughput with no plugin, a Rust partitioner, a Rust interceptor, a Python partitioner |
//!
//! Each prints a human line and, last on standard output, one JSON line for scripts. Only
//! acknowledged (or, for consumers, decoded) records count, and any error code from the broker
//! aborts the run: a benchmark that silently drops failures measures nothing.

mod consume;
mod e2e;
mod loopback;
mod plugins;
mod produce;
mod report;

pub use consume::ConsumeBench;
pub use e2e::E2eBench;
pub use loopback::LoopbackBench;
pub use plugins::PluginsBench;
pub use produce::ProduceBench;

use anyhow::{Context, Result};
use kafka_protocol::ResponseError;

use super::{one_line, ConnectionArgs};
use crate::client::Client;
use crate::error::find_kafka_error;
use crate::metadata::TopicInfo;

/// `strom bench ...`
#[derive(Debug, clap::Args)]
pub struct BenchCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub kind: BenchKind,
}

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub enum BenchKind {
    /// Producer throughput and latency (like kafka-producer-perf-test).
    Produce(ProduceBench),
    /// Consumer throughput from the beginning of a topic (like kafka-consumer-perf-test).
    Consume(ConsumeBench),
    /// End-to-end latency at a fixed produce rate.
    E2e(E2eBench),
    /// Raw TCP throughput over loopback in this process: the machine's limit.
    Loopback(LoopbackBench),
    /// Produce throughput of topics with and without plugins, side by side.
    Plugins(PluginsBench),
}

impl BenchCommand {
    /// Runs the benchmark.
    pub async fn run(self) -> Result<()> {
        let result = match self.kind {
            BenchKind::Produce(b) => b.run(&self.connection).await,
            BenchKind::Consume(b) => b.run(&self.connection).await,
            BenchKind::E2e(b) => b.run(&self.connection).await,
            BenchKind::Loopback(b) => b.run().await,
            BenchKind::Plugins(b) => b.run(&self.connection).await,
        };
        result.map_err(one_line)
    }
}

/// The topic's metadata, creating it with `partitions` partitions if it does not exist.
async fn ensure_topic(client: &Client, topic: &str, partitions: i32) -> Result<TopicInfo> {
    let metadata = client.metadata(Some(&[topic.to_string()])).await?;
    let missing = metadata.topic(topic).is_none_or(|t| {
        t.error
            .as_ref()
            .is_some_and(|e| e.kind() == ResponseError::UnknownTopicOrPartition)
    });
    if missing {
        match client.create_topic(topic, partitions, -1, &[]).await {
            Ok(()) => eprintln!("Created topic {topic} with {partitions} partitions."),
            // Someone else created it meanwhile: fine.
            Err(e) if find_kafka_error(&e).is_some_and(|k| k.kind() == ResponseError::TopicAlreadyExists) => {}
            Err(e) => return Err(e),
        }
    }
    let info = client
        .topic_metadata(topic, false)
        .await
        .with_context(|| format!("topic '{topic}' is not usable"))?;
    if info.partitions.len() as i32 != partitions {
        eprintln!(
            "Note: topic {topic} exists with {} partitions; using them all.",
            info.partitions.len()
        );
    }
    Ok(info)
}
