//! The client commands on their own, embedded as the `strom` binary embeds them:
//! `cargo run -p strom-client --example cli -- topics list --bootstrap-server 127.0.0.1:9092`.

use clap::Parser;
use strom_client::commands::ClientCommand;

#[derive(Debug, Parser)]
#[command(name = "strom")]
struct Cli {
    #[command(subcommand)]
    command: ClientCommand,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = cli.command.run().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
