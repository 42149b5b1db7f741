//! The client-side subcommands of the `strom` binary: `topics`, `configs`, `cluster`,
//! `produce`, `consume`, `bench`, `groups`, `plugins`, `users`, `acls`.
//!
//! Each command is a `clap` type with `pub async fn run(self) -> anyhow::Result<()>`, so the
//! binary embeds them as it likes; [`ClientCommand`] bundles them all for a
//! `#[command(flatten)]` into the binary's own subcommand enum. Every Kafka command takes
//! `--bootstrap-server HOST:PORT` (env `STROM_BOOTSTRAP_SERVER`, default `127.0.0.1:9092`);
//! `plugins` talks to the broker's admin HTTP API instead (`--admin-url URL`, env
//! `STROM_ADMIN_URL`, default `http://127.0.0.1:9644`).
//!
//! Errors returned by `run` are flattened into one line (`context: cause: cause`), so they read
//! the same whether the binary prints them with `{}`, `{:#}` or `{:?}`.

mod acls;
mod bench;
mod cluster;
mod configs;
mod consume;
mod groups;
mod plugins;
mod produce;
mod topics;
mod users;

pub use acls::{AclArgs, AclsAction, AclsCommand};
pub use bench::{BenchCommand, BenchKind, ConsumeBench, E2eBench, LoopbackBench, ProduceBench};
pub use cluster::{ClusterAction, ClusterCommand};
pub use configs::{ConfigsAction, ConfigsCommand, ResourceArgs};
pub use consume::{ConsumeCommand, StartOffset};
pub use groups::{GroupsAction, GroupsCommand, ResetSpec, ResetTarget, TopicSpec};
pub use plugins::{AdminArgs, PluginsAction, PluginsCommand};
pub use produce::ProduceCommand;
pub use topics::{TopicsAction, TopicsCommand};
pub use users::{UsersAction, UsersCommand};

use std::io::Write;

use anyhow::Result;

use crate::admin::AlterConfigOp;
use crate::client::Client;

/// The default bootstrap server of every command.
pub const DEFAULT_BOOTSTRAP_SERVER: &str = "127.0.0.1:9092";

/// Where to reach the cluster; shared by every command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConnectionArgs {
    /// The broker to start from, HOST:PORT (several may be given, comma-separated).
    #[arg(
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        default_value = DEFAULT_BOOTSTRAP_SERVER,
        env = "STROM_BOOTSTRAP_SERVER",
        global = true
    )]
    pub bootstrap_server: String,
}

impl ConnectionArgs {
    /// Connects a [`Client`] to the bootstrap server.
    pub async fn connect(&self) -> Result<Client> {
        Client::connect(&self.bootstrap_server).await
    }
}

/// All client commands, for `#[command(flatten)]` into the binary's subcommand enum.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Create, list, describe, alter and delete topics.
    Topics(TopicsCommand),
    /// Describe and alter the configs of a topic or a broker.
    Configs(ConfigsCommand),
    /// Describe the cluster: its id, controller and brokers.
    Cluster(ClusterCommand),
    /// Write lines from standard input to a topic.
    Produce(ProduceCommand),
    /// Print records of a topic.
    Consume(ConsumeCommand),
    /// Measure throughput and latency.
    Bench(BenchCommand),
    /// List, describe, reset the offsets of and delete consumer groups.
    Groups(GroupsCommand),
    /// Upload, list, describe and delete WebAssembly plugins (admin HTTP API).
    Plugins(PluginsCommand),
    /// Create, list and delete SCRAM users.
    Users(UsersCommand),
    /// Add, list and remove ACLs.
    Acls(Box<AclsCommand>),
}

impl ClientCommand {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        match self {
            ClientCommand::Topics(c) => c.run().await,
            ClientCommand::Configs(c) => c.run().await,
            ClientCommand::Cluster(c) => c.run().await,
            ClientCommand::Produce(c) => c.run().await,
            ClientCommand::Consume(c) => c.run().await,
            ClientCommand::Bench(c) => c.run().await,
            ClientCommand::Groups(c) => c.run().await,
            ClientCommand::Plugins(c) => c.run().await,
            ClientCommand::Users(c) => c.run().await,
            ClientCommand::Acls(c) => c.run().await,
        }
    }
}

/// Joins an error and its causes into one line.
pub(crate) fn one_line(error: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}

/// Parses `KEY=VALUE` (split at the first `=`; the value may be empty or contain `=`).
pub(crate) fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// The IncrementalAlterConfigs operations of `--set KEY=VALUE` and `--delete KEY` flags;
/// an error if there are none.
pub(crate) fn alter_ops(set: Vec<(String, String)>, delete: Vec<String>) -> Result<Vec<AlterConfigOp>> {
    if set.is_empty() && delete.is_empty() {
        anyhow::bail!("nothing to alter: give --set KEY=VALUE or --delete KEY");
    }
    Ok(set
        .into_iter()
        .map(|(k, v)| AlterConfigOp::Set(k, v))
        .chain(delete.into_iter().map(AlterConfigOp::Delete))
        .collect())
}

/// Parses `--acks`: -1 (all in-sync replicas), 0 (no answer) or 1 (the leader).
pub(crate) fn parse_acks(s: &str) -> std::result::Result<i16, String> {
    match s {
        "-1" | "all" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("acks must be -1, 0 or 1, got '{s}'")),
    }
}

/// Prints to standard output; a closed pipe (`| head`) silently ends the output.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|_| out.flush()))?;
    Ok(())
}

/// [`print`]s one line.
pub(crate) fn print_line(line: &str) -> Result<()> {
    print(&format!("{line}\n"))
}

/// Ignores a broken pipe (`strom consume ... | head`), which is not an error for a CLI.
pub(crate) fn ignore_broken_pipe(result: std::io::Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// How the `strom` binary embeds the commands next to its own.
    #[derive(Debug, Parser)]
    struct Binary {
        #[command(subcommand)]
        command: BinaryCommand,
    }

    #[derive(Debug, clap::Subcommand)]
    enum BinaryCommand {
        /// The binary's own command.
        Serve,
        #[command(flatten)]
        Client(ClientCommand),
    }

    #[test]
    fn the_commands_flatten_into_the_binary() {
        Binary::command().debug_assert();
        let cli = Binary::try_parse_from(["strom", "bench", "loopback", "--bytes", "10"]).unwrap();
        assert!(matches!(
            cli.command,
            BinaryCommand::Client(ClientCommand::Bench(BenchCommand {
                kind: BenchKind::Loopback(LoopbackBench { bytes: 10, .. }),
                ..
            }))
        ));
        let cli = Binary::try_parse_from(["strom", "serve"]).unwrap();
        assert!(matches!(cli.command, BinaryCommand::Serve));
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".to_string(), "b=c".to_string())));
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("a").is_err());
        assert!(parse_key_value("=b").is_err());
    }

    #[test]
    fn acks_accept_kafka_values() {
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn bootstrap_server_is_accepted_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "strom",
            "topics",
            "--bootstrap-server",
            "h:1",
            "create",
            "t",
            "--partitions",
            "3",
        ])
        .unwrap();
        let ClientCommand::Topics(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.connection.bootstrap_server, "h:1");
        let cli = Cli::try_parse_from(["strom", "topics", "list", "--bootstrap-server", "h:2"]).unwrap();
        let ClientCommand::Topics(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.connection.bootstrap_server, "h:2");
    }

    #[test]
    fn negative_acks_parse() {
        let cli = Cli::try_parse_from(["strom", "produce", "t", "--acks", "-1"]).unwrap();
        let ClientCommand::Produce(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.acks, -1);
    }
}
