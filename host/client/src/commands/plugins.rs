//! `strom plugins`: upload, list, describe and delete WebAssembly plugins through the
//! broker's admin HTTP API (`--admin-url`, env `STROM_ADMIN_URL`, default
//! `http://127.0.0.1:9644`).
//!
//! - `upload NAME@VERSION FILE`: `Uploaded NAME@VERSION (WORLD, N bytes, sha256 HEX).` (the
//!   same line when the broker already had these exact bytes, with a note on standard error).
//! - `list`: a table `NAME VERSION WORLD SIZE TOPICS`, sorted by name and version; TOPICS is
//!   `topic(as)` per attachment, comma-separated, or `-`.
//! - `describe NAME@VERSION`: `Key: value` lines: Name, Version, World, Size, SHA256, Calls,
//!   Failures, Topics.
//! - `delete NAME@VERSION`: `Deleted plugin NAME@VERSION.`
//!
//! Plugins are attached to topics with topic configs (`strom topics alter-config T --set
//! partitioner=NAME@VERSION`, `interceptors.produce=a@1,b@2`, `interceptors.fetch=...`).

use anyhow::{Context, Result};

use super::{one_line, print};
use crate::admin_api::{AdminApi, PluginInfo, PluginRef, DEFAULT_ADMIN_URL};

/// Where to reach the broker's admin HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AdminArgs {
    /// The broker's admin HTTP API (its `admin.listener`).
    #[arg(
        long = "admin-url",
        value_name = "URL",
        default_value = DEFAULT_ADMIN_URL,
        env = "STROM_ADMIN_URL",
        global = true
    )]
    pub admin_url: String,
}

/// `strom plugins ...`
#[derive(Debug, clap::Args)]
pub struct PluginsCommand {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub action: PluginsAction,
}

/// What `strom plugins` does.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsAction {
    /// Store a WebAssembly component in the cluster as NAME@VERSION.
    Upload {
        /// The name and version to store it under.
        #[arg(value_name = "NAME@VERSION")]
        plugin: PluginRef,
        /// The component (.wasm) to upload.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// List uploaded plugins and the topics that use them.
    List,
    /// Show one plugin: world, size, hash, call counters, topics.
    Describe {
        #[arg(value_name = "NAME@VERSION")]
        plugin: PluginRef,
    },
    /// Delete a plugin that no topic uses.
    Delete {
        #[arg(value_name = "NAME@VERSION")]
        plugin: PluginRef,
    },
}

impl PluginsCommand {
    /// Runs the command, printing to standard output.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let api = AdminApi::new(&self.admin.admin_url)?;
        match self.action {
            PluginsAction::Upload { plugin, file } => {
                let bytes = tokio::fs::read(&file)
                    .await
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let uploaded = api
                    .upload_plugin(&plugin, bytes)
                    .await
                    .with_context(|| format!("cannot upload {plugin}"))?;
                if !uploaded.created {
                    eprintln!("{plugin} was already uploaded with these exact bytes; nothing changed.");
                }
                print(&format_uploaded(&uploaded.info))?;
            }
            PluginsAction::List => {
                let mut plugins = api.list_plugins().await?;
                plugins.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
                print(&format_list(&plugins))?;
            }
            PluginsAction::Describe { plugin } => {
                print(&format_description(&api.describe_plugin(&plugin).await?))?;
            }
            PluginsAction::Delete { plugin } => {
                api.delete_plugin(&plugin).await?;
                print(&format!("Deleted plugin {plugin}.\n"))?;
            }
        }
        Ok(())
    }
}

fn format_uploaded(info: &PluginInfo) -> String {
    format!(
        "Uploaded {} ({}, {} bytes, sha256 {}).\n",
        info.reference(),
        info.world,
        info.size,
        info.sha256
    )
}

/// `topic(as),topic(as)` or `-`.
fn format_uses(info: &PluginInfo) -> String {
    if info.topics.is_empty() {
        return "-".to_string();
    }
    info.topics
        .iter()
        .map(|u| format!("{}({})", u.topic, u.role))
        .collect::<Vec<_>>()
        .join(",")
}

fn format_list(plugins: &[PluginInfo]) -> String {
    let rows: Vec<Vec<String>> = plugins
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.version.clone(),
                p.world.clone(),
                p.size.to_string(),
                format_uses(p),
            ]
        })
        .collect();
    format_table(&["NAME", "VERSION", "WORLD", "SIZE", "TOPICS"], &rows)
}

fn format_description(info: &PluginInfo) -> String {
    let count = |c: Option<u64>| c.map_or_else(|| "-".to_string(), |c| c.to_string());
    format!(
        "Name: {}\nVersion: {}\nWorld: {}\nSize: {}\nSHA256: {}\nCalls: {}\nFailures: {}\nTime in calls: {}\nTopics: {}\n",
        info.name,
        info.version,
        info.world,
        info.size,
        info.sha256,
        count(info.calls),
        count(info.failures),
        info.call_seconds.map_or_else(|| "-".to_string(), |s| format!("{s:.6} s")),
        format_uses(info)
    )
}

/// Columns left-aligned and padded to their widest cell, one space apart; no trailing spaces.
fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(cell);
            s.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_api::PluginUse;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: crate::commands::ClientCommand,
    }

    fn parse(args: &[&str]) -> PluginsCommand {
        match Cli::try_parse_from(args).unwrap().command {
            crate::commands::ClientCommand::Plugins(p) => p,
            other => panic!("{other:?}"),
        }
    }

    fn info(name: &str, version: &str, topics: &[(&str, &str)]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            world: "record-interceptor".into(),
            sha256: "00ff".into(),
            size: 12345,
            topics: topics
                .iter()
                .map(|(t, r)| PluginUse {
                    topic: t.to_string(),
                    role: r.to_string(),
                })
                .collect(),
            calls: None,
            failures: None,
            call_seconds: None,
        }
    }

    #[test]
    fn upload_takes_a_reference_and_a_file() {
        let p = parse(&["strom", "plugins", "upload", "murmur2@1", "m.wasm"]);
        assert_eq!(p.admin.admin_url, DEFAULT_ADMIN_URL);
        let PluginsAction::Upload { plugin, file } = p.action else {
            panic!()
        };
        assert_eq!(plugin.to_string(), "murmur2@1");
        assert_eq!(file, std::path::PathBuf::from("m.wasm"));
    }

    #[test]
    fn the_admin_url_goes_before_or_after_the_action() {
        let p = parse(&["strom", "plugins", "--admin-url", "http://h:1", "list"]);
        assert_eq!(p.admin.admin_url, "http://h:1");
        let p = parse(&["strom", "plugins", "delete", "a@1", "--admin-url", "http://h:2"]);
        assert_eq!(p.admin.admin_url, "http://h:2");
        assert!(matches!(p.action, PluginsAction::Delete { plugin } if plugin.to_string() == "a@1"));
    }

    #[test]
    fn a_malformed_reference_is_a_usage_error() {
        let err = Cli::try_parse_from(["strom", "plugins", "describe", "murmur2"]).unwrap_err();
        assert!(
            err.to_string().contains("expected NAME@VERSION, got 'murmur2'"),
            "{err}"
        );
        assert!(
            Cli::try_parse_from(["strom", "plugins", "upload", "a@1"]).is_err(),
            "FILE is required"
        );
    }

    #[test]
    fn upload_line() {
        let mut i = info("stamp", "2", &[]);
        i.sha256 = "ab12".into();
        assert_eq!(
            format_uploaded(&i),
            "Uploaded stamp@2 (record-interceptor, 12345 bytes, sha256 ab12).\n"
        );
    }

    #[test]
    fn list_is_a_padded_table() {
        let plugins = [
            info("murmur2", "1", &[("orders", "partitioner")]),
            info(
                "stamp",
                "10",
                &[("a", "interceptors.produce"), ("b", "interceptors.fetch")],
            ),
            info("x", "1", &[]),
        ];
        assert_eq!(
            format_list(&plugins),
            "NAME    VERSION WORLD              SIZE  TOPICS\n\
             murmur2 1       record-interceptor 12345 orders(partitioner)\n\
             stamp   10      record-interceptor 12345 a(interceptors.produce),b(interceptors.fetch)\n\
             x       1       record-interceptor 12345 -\n"
        );
        assert_eq!(format_list(&[]), "NAME VERSION WORLD SIZE TOPICS\n");
    }

    #[test]
    fn description_has_one_field_per_line() {
        let mut i = info("redact", "1", &[("payments", "interceptors.fetch")]);
        i.calls = Some(7);
        i.failures = Some(0);
        i.call_seconds = Some(0.25);
        assert_eq!(
            format_description(&i),
            "Name: redact\nVersion: 1\nWorld: record-interceptor\nSize: 12345\nSHA256: 00ff\n\
             Calls: 7\nFailures: 0\nTime in calls: 0.250000 s\nTopics: payments(interceptors.fetch)\n"
        );
    }
}
