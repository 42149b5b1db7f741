//! `strom produce TOPIC`: one record per line of standard input.
//!
//! Lines are gathered into batches of up to `--batch-records` lines (or 512 KiB, so that a
//! batch stays under the broker's default `message.max.bytes`), sent when a batch is full, when
//! input pauses for a moment (so that typing lines interactively works), and at end of input.
//! Each send is one Produce request per partition leader, with one record batch per partition.
//! Records go to `--partition`, else where the topic's partitioner plugin (if its configs name
//! one) puts them, else where Kafka's default partitioner puts their key.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};

use strom_plugins::{Header, KafkaRecord, Limits, LoadedPlugin, PluginRuntime};

use super::{one_line, parse_acks, parse_key_value, AdminArgs, ConnectionArgs};
use crate::admin_api::{AdminApi, PluginRef};
use crate::client::Client;
use crate::metadata::TopicInfo;
use crate::partitioner::DefaultPartitioner;
use crate::producer::{encode_batch, now_ms, CompressionType, ProducerRecord};

/// Pending lines are sent once they add up to this many bytes, whatever `--batch-records` says.
const MAX_PENDING_BYTES: usize = 512 * 1024;

/// Pending lines are sent when no new line has arrived for this long (like `linger.ms`, but
/// only when input pauses: a piped file is sent in full batches).
const LINGER: Duration = Duration::from_millis(50);

/// `strom produce TOPIC`: write lines from standard input to a topic.
#[derive(Debug, clap::Args)]
pub struct ProduceCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to write to (auto-created if the broker allows it).
    pub topic: String,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header for every record, KEY=VALUE; repeat for several.
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition instead of partitioning by key.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements: -1 all in-sync replicas, 1 the leader, 0 none.
    #[arg(long, default_value = "-1", allow_negative_numbers = true, value_parser = parse_acks)]
    pub acks: i16,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value_t)]
    pub compression: CompressionType,
    /// The most lines per batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_records: u32,
    /// Where to fetch the topic's partitioner plugin from, if it has one.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The topic's partitioner plugin, run here so records go where the broker's plugin
/// would put them (required with `partitioner.mode=enforce`).
struct PluginPartitioner {
    plugin: LoadedPlugin,
    /// Keeps the engine (and its epoch ticker, which enforces time budgets) alive.
    _runtime: PluginRuntime,
}

impl ProduceCommand {
    /// The topic's `partitioner` plugin, loaded locally with the topic's plugin configs.
    async fn topic_partitioner(&self, client: &Client) -> Result<Option<PluginPartitioner>> {
        // A topic that does not exist yet has no configs: it will be auto-created plain.
        let Ok(configs) = client.describe_configs(&self.topic).await else {
            return Ok(None);
        };
        let get = |name: &str| configs.iter().find(|c| c.name == name).and_then(|c| c.value.clone());
        let Some(id) = get("partitioner").filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let plugin_ref = PluginRef::parse(id.trim()).map_err(anyhow::Error::msg)?;
        let api = AdminApi::new(&self.admin.admin_url)?;
        let component = api
            .download_plugin(&plugin_ref)
            .await
            .with_context(|| format!("topic '{}' is partitioned by plugin {id}; fetching it", self.topic))?;
        let prefix = format!("plugin.{}.", plugin_ref.name);
        let plugin_config: BTreeMap<String, String> = configs
            .iter()
            .filter_map(|c| {
                c.name
                    .strip_prefix(&prefix)
                    .map(|k| (k.to_string(), c.value.clone().unwrap_or_default()))
            })
            .collect();
        let defaults = Limits::default();
        let limits = Limits {
            call_ms_max: get("plugins.call.ms.max")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.call_ms_max),
            memory_bytes_max: get("plugins.memory.bytes.max")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.memory_bytes_max),
        };
        let runtime = PluginRuntime::new(None)?;
        let plugin = runtime
            .load(id.trim(), &component, plugin_config, limits)
            .map_err(|e| anyhow::anyhow!("plugin {id}: {e}"))?;
        Ok(Some(PluginPartitioner {
            plugin,
            _runtime: runtime,
        }))
    }
}

impl ProduceCommand {
    /// Runs the command; prints `Produced N records to TOPIC.` to standard error at the end.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        let headers: Vec<(String, Option<Bytes>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(Bytes::copy_from_slice(v.as_bytes()))))
            .collect();
        let separator = self.key_separator.as_deref().map(str::as_bytes);
        if separator.is_some_and(<[u8]>::is_empty) {
            bail!("--key-separator must not be empty");
        }
        let plugin = match self.partition {
            Some(_) => None,
            None => self.topic_partitioner(&client).await?,
        };
        let mut sender = Sender {
            client: &client,
            plugin,
            topic_name: &self.topic,
            topic: None,
            partitioner: DefaultPartitioner::new(),
            fixed_partition: self.partition,
            acks: self.acks,
            compression: self.compression,
            produced: 0,
        };

        let mut input = BufReader::with_capacity(1 << 20, tokio::io::stdin());
        let mut line = Vec::new();
        let mut line_no = 0usize;
        let mut pending: Vec<ProducerRecord> = Vec::new();
        let mut pending_bytes = 0usize;
        loop {
            let read = if pending.is_empty() {
                input.read_until(b'\n', &mut line).await
            } else {
                // read_until is cancel-safe: bytes read before the timeout stay in `line`.
                match tokio::time::timeout(LINGER, input.read_until(b'\n', &mut line)).await {
                    Ok(read) => read,
                    Err(_) => {
                        sender.send(std::mem::take(&mut pending)).await?;
                        pending_bytes = 0;
                        continue;
                    }
                }
            };
            read.context("cannot read standard input")?;
            if line.is_empty() {
                break; // end of input
            }
            line_no += 1;
            let (key, value) = match split_line(&line, separator) {
                Some(parts) => parts,
                None => {
                    // Lines before the bad one are sent, as a line-at-a-time producer would.
                    sender.send(std::mem::take(&mut pending)).await?;
                    bail!(
                        "line {line_no} has no key separator '{}'",
                        self.key_separator.as_deref().unwrap_or_default()
                    );
                }
            };
            line.clear();
            pending_bytes += key.as_ref().map_or(0, Bytes::len) + value.len() + 16;
            pending.push(ProducerRecord {
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp: now_ms(),
            });
            if pending.len() >= self.batch_records as usize || pending_bytes >= MAX_PENDING_BYTES {
                sender.send(std::mem::take(&mut pending)).await?;
                pending_bytes = 0;
            }
        }
        sender.send(pending).await?;
        eprintln!("Produced {} records to {}.", sender.produced, self.topic);
        Ok(())
    }
}

/// Strips the line end (`\n` or `\r\n`) and splits at the first `separator` into key and
/// value; `None` if a separator is given but the line lacks it.
fn split_line(line: &[u8], separator: Option<&[u8]>) -> Option<(Option<Bytes>, Bytes)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sep) = separator else {
        return Some((None, Bytes::copy_from_slice(line)));
    };
    let at = line.windows(sep.len()).position(|w| w == sep)?;
    Some((
        Some(Bytes::copy_from_slice(&line[..at])),
        Bytes::copy_from_slice(&line[at + sep.len()..]),
    ))
}

/// Partitions, encodes and sends batches of records; looks the topic up on first use.
struct Sender<'a> {
    client: &'a Client,
    plugin: Option<PluginPartitioner>,
    topic_name: &'a str,
    topic: Option<TopicInfo>,
    partitioner: DefaultPartitioner,
    fixed_partition: Option<i32>,
    acks: i16,
    compression: CompressionType,
    produced: u64,
}

impl Sender<'_> {
    async fn send(&mut self, records: Vec<ProducerRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let topic = match &self.topic {
            Some(topic) => topic,
            None => {
                // Like a Kafka producer, let the broker auto-create the topic if it may.
                let topic = self.client.topic_metadata(self.topic_name, true).await?;
                if let Some(p) = self.fixed_partition {
                    if topic.partition(p).is_none() {
                        bail!(
                            "topic '{}' has no partition {p} (it has {})",
                            self.topic_name,
                            topic.partitions.len()
                        );
                    }
                }
                self.topic.insert(topic)
            }
        };
        let count = records.len();
        let partitions = topic.partitions.len() as i32;
        let mut by_partition: BTreeMap<i32, Vec<ProducerRecord>> = BTreeMap::new();
        let plugin_choices = match &self.plugin {
            Some(p) if self.fixed_partition.is_none() => {
                let typed: Vec<KafkaRecord> = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| KafkaRecord {
                        offset_delta: i as i32,
                        timestamp_ms: r.timestamp,
                        key: r.key.as_ref().map(|k| k.to_vec()),
                        value: r.value.as_ref().map(|v| v.to_vec()),
                        headers: r
                            .headers
                            .iter()
                            .map(|(k, v)| Header {
                                key: k.clone(),
                                value: v.as_ref().map(|v| v.to_vec()),
                            })
                            .collect(),
                    })
                    .collect();
                let choices = p
                    .plugin
                    .partition(self.topic_name, partitions as u32, &typed)
                    .await
                    .map_err(|e| anyhow::anyhow!("partitioner plugin of topic '{}': {e}", self.topic_name))?;
                Some(choices)
            }
            _ => None,
        };
        for (i, record) in records.into_iter().enumerate() {
            let partition = match (self.fixed_partition, &plugin_choices) {
                (Some(p), _) => p,
                (None, Some(choices)) => choices[i] as i32,
                (None, None) => self.partitioner.partition(record.key.as_deref(), partitions),
            };
            by_partition.entry(partition).or_default().push(record);
        }
        let batches = by_partition
            .into_iter()
            .map(|(partition, records)| Ok((partition, encode_batch(&records, self.compression)?)))
            .collect::<Result<Vec<_>>>()?;
        self.client.produce(topic, batches, self.acks).await?;
        self.produced += count as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str, sep: Option<&str>) -> Option<(Option<String>, String)> {
        split_line(line.as_bytes(), sep.map(str::as_bytes)).map(|(k, v)| {
            (
                k.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
    }

    #[test]
    fn lines_lose_their_line_end() {
        assert_eq!(split("hello\n", None), Some((None, "hello".into())));
        assert_eq!(split("hello\r\n", None), Some((None, "hello".into())));
        assert_eq!(split("last", None), Some((None, "last".into())));
        assert_eq!(split("\n", None), Some((None, String::new())));
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(split("k:v:w\n", Some(":")), Some((Some("k".into()), "v:w".into())));
        assert_eq!(
            split("key::value", Some("::")),
            Some((Some("key".into()), "value".into()))
        );
        assert_eq!(split(":v", Some(":")), Some((Some(String::new()), "v".into())));
        assert_eq!(split("no separator\n", Some(":")), None);
    }
}
