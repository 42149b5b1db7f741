//! `strom configs`: describe and alter the configs of a topic or a broker, in the spirit of
//! `kafka-configs.sh` (DescribeConfigs and IncrementalAlterConfigs).

use anyhow::Result;

use super::{alter_ops, one_line, parse_key_value, print_line, ConnectionArgs};
use crate::admin::{ConfigEntry, ConfigResource};

/// `strom configs ...`
#[derive(Debug, clap::Args)]
pub struct ConfigsCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: ConfigsAction,
}

/// Which resource a `strom configs` command concerns: exactly one of a topic or a broker.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResourceArgs {
    /// A topic, by name.
    #[arg(long)]
    pub topic: Option<String>,
    /// A broker, by node id.
    #[arg(long)]
    pub broker: Option<i32>,
}

impl ResourceArgs {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(topic), _) => ConfigResource::Topic(topic.clone()),
            (None, Some(id)) => ConfigResource::Broker(id),
            (None, None) => unreachable!("clap requires --topic or --broker"),
        }
    }
}

/// What `strom configs` does.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigsAction {
    /// Print the configs that differ from the defaults (all of them with --all), each with
    /// where its value comes from.
    Describe {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Also print configs at their default value.
        #[arg(long)]
        all: bool,
    },
    /// Set or remove configs (IncrementalAlterConfigs); the others stay as they are.
    Alter {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Set a config, KEY=VALUE; repeat for several.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove the resource's own value of a config, so the default applies again.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

impl ConfigsCommand {
    /// Runs the command, printing to standard output.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        match self.action {
            ConfigsAction::Describe { resource, all } => {
                let resource = resource.resource();
                let entries = client.describe_resource_configs(&resource).await?;
                for line in describe_lines(&resource, &entries, all) {
                    print_line(&line)?;
                }
            }
            ConfigsAction::Alter { resource, set, delete } => {
                let resource = resource.resource();
                client.alter_configs(&resource, &alter_ops(set, delete)?).await?;
                print_line(&format!("Altered configs of {resource}."))?;
            }
        }
        Ok(())
    }
}

/// `kafka-configs.sh --describe`'s layout: a heading, then one indented line per config.
fn describe_lines(resource: &ConfigResource, entries: &[ConfigEntry], all: bool) -> Vec<String> {
    let which = if all { "All" } else { "Non-default" };
    let mut lines = vec![format!("{which} configs for {resource} are:")];
    for entry in entries.iter().filter(|e| all || !e.is_default()) {
        let value = entry.value.as_deref().unwrap_or("null");
        let mut line = format!(
            "  {}={value} sensitive={} source={}",
            entry.name, entry.is_sensitive, entry.source
        );
        if entry.read_only {
            line.push_str(" read-only");
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::ConfigSource;

    fn entry(name: &str, value: Option<&str>, source: ConfigSource, read_only: bool) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: value.map(str::to_string),
            source,
            read_only,
            is_sensitive: value.is_none(),
        }
    }

    #[test]
    fn describe_lists_non_defaults_unless_all() {
        let entries = [
            entry("cleanup.policy", Some("delete"), ConfigSource::DefaultConfig, false),
            entry("retention.ms", Some("1000"), ConfigSource::DynamicTopicConfig, false),
            entry("ssl.key.password", None, ConfigSource::StaticBrokerConfig, true),
        ];
        let topic = ConfigResource::Topic("orders".into());
        assert_eq!(
            describe_lines(&topic, &entries, false),
            [
                "Non-default configs for topic 'orders' are:",
                "  retention.ms=1000 sensitive=false source=DYNAMIC_TOPIC_CONFIG",
                "  ssl.key.password=null sensitive=true source=STATIC_BROKER_CONFIG read-only",
            ]
        );
        let all = describe_lines(&ConfigResource::Broker(1), &entries, true);
        assert_eq!(all[0], "All configs for broker 1 are:");
        assert_eq!(all[1], "  cleanup.policy=delete sensitive=false source=DEFAULT_CONFIG");
        assert_eq!(all.len(), 4);
    }
}
