//! `strom topics`: create, list, describe, delete, alter-config, add-partitions.
//!
//! Output follows `kafka-topics.sh` where it has an equivalent.

use anyhow::Result;

use super::{alter_ops, one_line, parse_key_value, print, print_line, ConnectionArgs};
use crate::client::Client;
use crate::metadata::{format_topic_id, TopicInfo};

/// `strom topics ...`
#[derive(Debug, clap::Args)]
pub struct TopicsCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: TopicsAction,
}

/// What `strom topics` does.
#[derive(Debug, clap::Subcommand)]
pub enum TopicsAction {
    /// Create a topic.
    Create {
        /// The topic name.
        name: String,
        /// Number of partitions (default: the broker's `num.partitions`).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (default: the broker's `default.replication.factor`).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE; repeat for several.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names, one per line, sorted.
    List,
    /// Describe topics: id, partitions, leaders, replicas, ISR, non-default configs.
    Describe {
        /// Topics to describe (default: all).
        names: Vec<String>,
    },
    /// Delete topics.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs (IncrementalAlterConfigs).
    AlterConfig {
        /// The topic name.
        name: String,
        /// Set a config, KEY=VALUE; repeat for several.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove the topic's value of a config, so the broker default applies again.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise the partition count of a topic.
    AddPartitions {
        /// The topic name.
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        count: i32,
    },
}

impl TopicsCommand {
    /// Runs the command, printing to standard output.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        match self.action {
            TopicsAction::Create {
                name,
                partitions,
                replication_factor,
                configs,
            } => {
                client
                    .create_topic(&name, partitions, replication_factor, &configs)
                    .await?;
                print_line(&format!("Created topic {name}."))?;
            }
            TopicsAction::List => {
                for name in client.list_topics().await? {
                    print_line(&name)?;
                }
            }
            TopicsAction::Describe { names } => {
                let names = (!names.is_empty()).then_some(names);
                let topics = client.describe_topics(names.as_deref()).await?;
                for topic in &topics {
                    print(&describe(&client, topic).await?)?;
                }
            }
            TopicsAction::Delete { names } => {
                // One request per topic so that the output says exactly which ones went.
                for name in names {
                    client.delete_topics(std::slice::from_ref(&name)).await?;
                    print_line(&format!("Deleted topic {name}."))?;
                }
            }
            TopicsAction::AlterConfig { name, set, delete } => {
                client.alter_topic_config(&name, &alter_ops(set, delete)?).await?;
                print_line(&format!("Altered configs of topic {name}."))?;
            }
            TopicsAction::AddPartitions { name, count } => {
                client.create_partitions(&name, count).await?;
                print_line(&format!("Topic {name} now has {count} partitions."))?;
            }
        }
        Ok(())
    }
}

/// The `kafka-topics.sh --describe` block of one topic.
async fn describe(client: &Client, topic: &TopicInfo) -> Result<String> {
    let configs: Vec<String> = client
        .describe_configs(&topic.name)
        .await?
        .into_iter()
        .filter(|c| !c.is_default())
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("")))
        .collect();
    Ok(format_description(topic, &configs))
}

fn format_description(topic: &TopicInfo, configs: &[String]) -> String {
    let join = |ids: &[i32]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
    let mut text = format!(
        "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}  Configs: {}\n",
        topic.name,
        format_topic_id(&topic.topic_id),
        topic.partitions.len(),
        topic.replication_factor(),
        configs.join(",")
    );
    for p in &topic.partitions {
        let leader = if p.leader < 0 {
            "none".to_string()
        } else {
            p.leader.to_string()
        };
        text.push_str(&format!(
            "  Topic: {}  Partition: {}  Leader: {}  Replicas: {}  Isr: {}\n",
            topic.name,
            p.partition,
            leader,
            join(&p.replicas),
            join(&p.isr)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionInfo;

    #[test]
    fn description_looks_like_kafka_topics() {
        let partition = |p, leader| PartitionInfo {
            partition: p,
            leader,
            leader_epoch: 0,
            replicas: vec![1, 2],
            isr: vec![1],
            offline_replicas: vec![],
            error: None,
        };
        let topic = TopicInfo {
            name: "orders".into(),
            topic_id: uuid::Uuid::from_u128(1),
            is_internal: false,
            error: None,
            partitions: vec![partition(0, 1), partition(1, -1)],
        };
        let text = format_description(&topic, &["retention.ms=1000".into(), "a=b".into()]);
        assert_eq!(
            text,
            "Topic: orders  TopicId: AAAAAAAAAAAAAAAAAAAAAQ  PartitionCount: 2  ReplicationFactor: 2  Configs: retention.ms=1000,a=b\n\
             \x20 Topic: orders  Partition: 0  Leader: 1  Replicas: 1,2  Isr: 1\n\
             \x20 Topic: orders  Partition: 1  Leader: none  Replicas: 1,2  Isr: 1\n"
        );
    }
}
