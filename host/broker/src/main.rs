//! `strom`: the broker (`strom serve`) and its command line.
//!
//! Layout: a request walks [`net`] (listeners, framing) -> [`protocol`] (headers, versions)
//! -> [`broker`] (dispatch) -> [`handlers`] (one file per API family) -> storage and metadata
//! (their own crates). [`config`] holds every setting; [`partitions`] keeps the hosted logs
//! in step with the metadata image; [`maintenance`] runs flushes and retention.

mod admin;
mod broker;
mod config;
mod coordinator;
mod frames;
mod handlers;
mod intercept;
mod maintenance;
mod metrics;
mod net;
mod partitions;
mod plugins;
mod protocol;
mod records;
mod security;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strom",
    version,
    about = "A Kafka-compatible broker extended with WebAssembly"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(flatten)]
    Client(strom_client::commands::ClientCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML file of settings (Kafka names, e.g. `log.dirs = "./data"`). Without one the
    /// embedded defaults apply: PLAINTEXT on 127.0.0.1:9092, data in ./data.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Set a setting, overriding the file and STROM_* variables: `-o num.partitions=3`.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every setting with its default and documentation, as TOML (or a Markdown table).
    Defaults {
        #[arg(long)]
        markdown: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Defaults { markdown }) => {
            print!(
                "{}",
                if markdown {
                    config::defaults_markdown()
                } else {
                    config::defaults_toml()
                }
            );
            ExitCode::SUCCESS
        }
        Command::Client(command) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("starting the runtime");
            match runtime.block_on(command.run()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            init_logging();
            match serve(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config::BrokerConfig::load(args.config.as_deref(), &args.overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()?;
    runtime.block_on(async move {
        let grace = Duration::from_millis(config.i64("shutdown.timeout.ms").max(0) as u64);
        let broker = broker::Broker::open(config)?;
        let listeners = net::bind(&broker).await?;
        let admin_address = broker.config.get("admin.listener").trim().to_string();
        if !admin_address.is_empty() {
            let admin_listener = tokio::net::TcpListener::bind(&admin_address)
                .await
                .with_context(|| format!("cannot bind the admin API (admin.listener) to {admin_address}"))?;
            tracing::info!(address = %admin_listener.local_addr()?, "admin API listening");
            tokio::spawn(admin::serve(broker.clone(), admin_listener));
        }
        broker.apply_metadata()?;
        maintenance::spawn(broker.clone());
        let server = tokio::spawn(net::serve(broker.clone(), listeners, grace));
        tracing::info!(node_id = broker.config.node_id, log_dir = %broker.config.log_dir.display(), "strom is ready");
        wait_for_signal().await;
        tracing::info!("shutting down");
        broker.begin_shutdown();
        let _ = server.await;
        let partitions = &broker.partitions;
        partitions.close_all()?;
        tracing::info!("logs closed cleanly");
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
