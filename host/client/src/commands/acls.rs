//! `strom acls`: Kafka ACLs, with kafka-acls.sh's flags.
//!
//! - `add (--allow-principal P | --deny-principal P)... --operation OP... RESOURCE
//!   [--host H] [--resource-pattern-type literal|prefixed]`
//! - `list [RESOURCE] [--principal P]`: `PRINCIPAL HOST OPERATION PERMISSION RESOURCE-TYPE
//!   NAME PATTERN` rows.
//! - `remove` with the same flags as `add` (omitted ones match anything); prints what it removed.
//!
//! RESOURCE is `--topic T`, `--group G`, `--transactional-id ID` or `--cluster`.

use anyhow::{bail, Result};

use super::{one_line, ConnectionArgs};
use crate::security::{names, Acl};

#[derive(Debug, clap::Args)]
pub struct AclsCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: AclsAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum AclsAction {
    /// Add ACLs: every principal gets every operation on the resource.
    Add(AclArgs),
    /// List ACLs, optionally of one resource or principal.
    List(AclArgs),
    /// Remove the ACLs matching the flags.
    Remove(AclArgs),
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct AclArgs {
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    pub allow: Vec<String>,
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    pub deny: Vec<String>,
    /// With list: only ACLs of this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, All.
    #[arg(long = "operation", value_delimiter = ',')]
    pub operations: Vec<String>,
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long = "transactional-id")]
    pub transactional_id: Option<String>,
    #[arg(long)]
    pub cluster: bool,
    /// Client address the ACL applies to (default *, any).
    #[arg(long)]
    pub host: Option<String>,
    /// literal (default) or prefixed; list and remove also take any and match.
    #[arg(long = "resource-pattern-type")]
    pub pattern: Option<String>,
}

impl AclsCommand {
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        match self.action {
            AclsAction::Add(args) => {
                let acls = args.bindings(false)?;
                if acls.is_empty() {
                    bail!("nothing to add: give --allow-principal or --deny-principal, and --operation");
                }
                client.create_acls(&acls).await?;
                print_acls(&acls);
            }
            AclsAction::List(args) => {
                let acls = client.describe_acls(&args.filter()?).await?;
                print_acls(&acls);
            }
            AclsAction::Remove(args) => {
                let filters = match args.bindings(true)? {
                    bindings if bindings.is_empty() => vec![args.filter()?],
                    bindings => bindings,
                };
                let mut removed = Vec::new();
                for filter in &filters {
                    removed.extend(client.delete_acls(filter).await?);
                }
                print_acls(&removed);
            }
        }
        Ok(())
    }
}

impl AclArgs {
    /// (resource type, name), from --topic/--group/--transactional-id/--cluster.
    fn resource(&self, required: bool) -> Result<(i8, String)> {
        let code = |n| names::code(names::RESOURCE_TYPES, n).expect("known resource type");
        let mut chosen = Vec::new();
        if let Some(t) = &self.topic {
            chosen.push((code("Topic"), t.clone()));
        }
        if let Some(g) = &self.group {
            chosen.push((code("Group"), g.clone()));
        }
        if let Some(t) = &self.transactional_id {
            chosen.push((code("TransactionalId"), t.clone()));
        }
        if self.cluster {
            chosen.push((code("Cluster"), "kafka-cluster".to_string()));
        }
        match chosen.len() {
            0 if !required => Ok((code("Any"), String::new())),
            1 => Ok(chosen.remove(0)),
            0 => bail!("name a resource: --topic, --group, --transactional-id or --cluster"),
            _ => bail!("name one resource at a time"),
        }
    }

    fn pattern(&self, default: &str) -> Result<i8> {
        let name = self.pattern.as_deref().unwrap_or(default);
        names::code(names::PATTERN_TYPES, name)
            .ok_or_else(|| anyhow::anyhow!("unknown --resource-pattern-type {name:?}"))
    }

    fn operations(&self) -> Result<Vec<i8>> {
        self.operations
            .iter()
            .map(|o| names::code(names::OPERATIONS, o).ok_or_else(|| anyhow::anyhow!("unknown --operation {o:?}")))
            .collect()
    }

    /// One ACL per (principal, operation); for `remove`, filters with the same shape.
    fn bindings(&self, for_removal: bool) -> Result<Vec<Acl>> {
        let (resource_type, resource_name) = self.resource(!for_removal)?;
        let pattern_type = self.pattern("Literal")?;
        let operations = self.operations()?;
        let any = names::code(names::OPERATIONS, "Any").expect("Any");
        let operations = if operations.is_empty() && for_removal {
            vec![any]
        } else {
            operations
        };
        let host = self.host.clone().unwrap_or_else(|| "*".to_string());
        let mut acls = Vec::new();
        for (principals, permission) in [(&self.allow, "Allow"), (&self.deny, "Deny")] {
            for principal in principals {
                for operation in &operations {
                    acls.push(Acl {
                        resource_type,
                        resource_name: resource_name.clone(),
                        pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *operation,
                        permission: names::code(names::PERMISSIONS, permission).expect("permission"),
                    });
                }
            }
        }
        Ok(acls)
    }

    /// A filter matching anything not given.
    fn filter(&self) -> Result<Acl> {
        let (resource_type, resource_name) = self.resource(false)?;
        let any = |table| names::code(table, "Any").expect("Any");
        Ok(Acl {
            resource_type,
            resource_name,
            pattern_type: self.pattern(if self.pattern.is_some() { "Literal" } else { "Any" })?,
            principal: self.principal.clone().unwrap_or_default(),
            host: self.host.clone().unwrap_or_default(),
            operation: match self.operations()?.as_slice() {
                [one] => *one,
                _ => any(names::OPERATIONS),
            },
            permission: any(names::PERMISSIONS),
        })
    }
}

fn print_acls(acls: &[Acl]) {
    println!("PRINCIPAL HOST OPERATION PERMISSION RESOURCE-TYPE NAME PATTERN");
    for a in acls {
        println!(
            "{} {} {} {} {} {} {}",
            a.principal,
            a.host,
            names::name(names::OPERATIONS, a.operation),
            names::name(names::PERMISSIONS, a.permission),
            names::name(names::RESOURCE_TYPES, a.resource_type),
            a.resource_name,
            names::name(names::PATTERN_TYPES, a.pattern_type),
        );
    }
}
