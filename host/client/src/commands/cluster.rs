//! `strom cluster`: what the cluster says of itself (DescribeCluster), in the spirit of
//! `rpk cluster info` and `kafka-cluster.sh cluster-id`.

use anyhow::Result;

use super::groups::format_table;
use super::{one_line, print, print_line, ConnectionArgs};
use crate::admin::ClusterDescription;

/// `strom cluster ...`
#[derive(Debug, clap::Args)]
pub struct ClusterCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// What `strom cluster` does.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterAction {
    /// Print the cluster id, the active controller and every broker with its address.
    Describe,
    /// Print the cluster id alone (for scripts).
    Id,
}

impl ClusterCommand {
    /// Runs the command, printing to standard output.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let cluster = self.connection.connect().await?.describe_cluster().await?;
        match self.action {
            ClusterAction::Describe => print(&describe(&cluster)),
            ClusterAction::Id => print_line(&cluster.cluster_id),
        }
    }
}

fn describe(cluster: &ClusterDescription) -> String {
    let controller = match cluster.controller_id {
        id if id < 0 => "unknown".to_string(),
        id => id.to_string(),
    };
    let rows: Vec<Vec<String>> = cluster
        .brokers
        .iter()
        .map(|b| {
            vec![
                b.node_id.to_string(),
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    format!(
        "Cluster ID: {}\nController: {controller}\n\n{}",
        cluster.cluster_id,
        format_table(&["ID", "HOST", "PORT", "RACK"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerInfo;

    #[test]
    fn describe_prints_id_controller_and_brokers() {
        let cluster = ClusterDescription {
            cluster_id: "q1Sh-9_ISia_zwGINzRvyQ".into(),
            controller_id: 1,
            brokers: vec![
                BrokerInfo {
                    node_id: 1,
                    host: "localhost".into(),
                    port: 9092,
                    rack: None,
                },
                BrokerInfo {
                    node_id: 12,
                    host: "broker-12.example".into(),
                    port: 19092,
                    rack: Some("eu-1a".into()),
                },
            ],
        };
        assert_eq!(
            describe(&cluster),
            "Cluster ID: q1Sh-9_ISia_zwGINzRvyQ\nController: 1\n\n\
             ID HOST              PORT  RACK\n\
             1  localhost         9092  -\n\
             12 broker-12.example 19092 eu-1a\n"
        );
    }
}
