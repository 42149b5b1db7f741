//! `strom users`: SCRAM users, after `kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[...]'
//! --entity-type users`. Passwords are salted and iterated here; the broker stores only the
//! derived keys.
//!
//! - `create NAME --password PW [--mechanism M]... [--iterations N]`: creates or replaces
//!   the user's credential for each mechanism (default SCRAM-SHA-256 and SCRAM-SHA-512).
//! - `list`: `USER MECHANISMS` with iteration counts.
//! - `delete NAME [--mechanism M]...`: removes the credentials (default: every mechanism the
//!   user has).

use anyhow::Result;

use super::{one_line, ConnectionArgs};

#[derive(Debug, clap::Args)]
pub struct UsersCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: UsersAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersAction {
    /// Create a user, or replace its password.
    Create {
        name: String,
        #[arg(long, env = "STROM_USER_PASSWORD")]
        password: String,
        /// SCRAM-SHA-256 and/or SCRAM-SHA-512 (default: both).
        #[arg(long = "mechanism", value_delimiter = ',')]
        mechanisms: Vec<String>,
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// List users and their SCRAM mechanisms.
    List,
    /// Delete a user's credentials.
    Delete {
        name: String,
        /// Only these mechanisms (default: all the user has).
        #[arg(long = "mechanism", value_delimiter = ',')]
        mechanisms: Vec<String>,
    },
}

impl UsersCommand {
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        match self.action {
            UsersAction::Create {
                name,
                password,
                mechanisms,
                iterations,
            } => {
                let mechanisms = if mechanisms.is_empty() {
                    vec!["SCRAM-SHA-256".to_string(), "SCRAM-SHA-512".to_string()]
                } else {
                    mechanisms
                };
                for mechanism in &mechanisms {
                    client
                        .upsert_scram_user(&name, &password, mechanism, iterations)
                        .await?;
                }
                println!("Created user {name} ({})", mechanisms.join(", "));
            }
            UsersAction::List => {
                println!("USER MECHANISMS");
                for (user, mechanisms) in client.describe_scram_users().await? {
                    let list: Vec<String> = mechanisms
                        .iter()
                        .map(|(m, iterations)| format!("{m}(iterations={iterations})"))
                        .collect();
                    println!("{user} {}", list.join(","));
                }
            }
            UsersAction::Delete { name, mechanisms } => {
                let mechanisms = if mechanisms.is_empty() {
                    client
                        .describe_scram_users()
                        .await?
                        .into_iter()
                        .find(|(u, _)| *u == name)
                        .map(|(_, m)| m.into_iter().map(|(m, _)| m).collect())
                        .ok_or_else(|| anyhow::anyhow!("user {name} does not exist"))?
                } else {
                    mechanisms
                };
                for mechanism in &mechanisms {
                    client.delete_scram_user(&name, mechanism).await?;
                }
                println!("Deleted user {name} ({})", mechanisms.join(", "));
            }
        }
        Ok(())
    }
}
