//! `strom consume TOPIC`: print records, one line each, like `kafka-console-consumer.sh`.
//!
//! Starts at the latest offset unless told otherwise, reads every partition (or the one given),
//! and runs until `--max-messages` records were printed, until `--timeout-ms` passes without a
//! new record, or forever.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kafka_protocol::records::TimestampType;

use super::{ignore_broken_pipe, one_line, ConnectionArgs};
use crate::connection::ConnectionError;
use crate::consumer::{ConsumedRecord, Consumer, FetchOptions, OffsetSpec};

/// Consecutive failed fetches (connection errors) before giving up.
const MAX_RECONNECTS: u32 = 30;

/// Pause after a failed fetch.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// `--offset`: a number, or `earliest`/`latest` as `kafka-console-consumer.sh` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
    /// This exact offset.
    At(i64),
}

fn parse_start_offset(s: &str) -> std::result::Result<StartOffset, String> {
    match s {
        "earliest" => Ok(StartOffset::Earliest),
        "latest" => Ok(StartOffset::Latest),
        _ => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(StartOffset::At(n)),
            _ => Err(format!("expected an offset >= 0, 'earliest' or 'latest', got '{s}'")),
        },
    }
}

/// `strom consume TOPIC`: print records of a topic.
#[derive(Debug, clap::Args)]
pub struct ConsumeCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to read.
    pub topic: String,
    /// Start at the earliest offset instead of the latest.
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (or `earliest`/`latest`) in every partition read.
    #[arg(long, value_parser = parse_start_offset, conflicts_with = "timestamp")]
    pub offset: Option<StartOffset>,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub timestamp: Option<i64>,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Exit after printing this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit (successfully) after this many ms without a new record.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Print the key (`null` for a null key).
    #[arg(long)]
    pub print_key: bool,
    /// Print the headers as `k1:v1,k2:v2` (`NO_HEADERS` when there are none).
    #[arg(long)]
    pub print_headers: bool,
    /// Print the timestamp as `CreateTime:MS` or `LogAppendTime:MS`.
    #[arg(long)]
    pub print_timestamp: bool,
    /// Print the offset.
    #[arg(long)]
    pub print_offset: bool,
    /// Print the partition.
    #[arg(long)]
    pub print_partition: bool,
    /// Separator between the printed fields.
    #[arg(long, value_name = "S", default_value = "\t")]
    pub separator: String,
}

/// Which fields a line shows.
#[derive(Debug, Clone, Default)]
struct Format {
    partition: bool,
    offset: bool,
    timestamp: bool,
    headers: bool,
    key: bool,
    separator: String,
}

impl Format {
    /// Appends the line for `record` (with its newline) to `out`.
    fn write(&self, record: &ConsumedRecord, out: &mut Vec<u8>) {
        let mut fields: Vec<String> = Vec::with_capacity(6);
        if self.partition {
            fields.push(record.partition.to_string());
        }
        if self.offset {
            fields.push(record.offset.to_string());
        }
        if self.timestamp {
            let kind = match record.timestamp_type {
                TimestampType::Creation => "CreateTime",
                TimestampType::LogAppend => "LogAppendTime",
            };
            fields.push(format!("{kind}:{}", record.timestamp));
        }
        if self.headers {
            fields.push(if record.headers.is_empty() {
                "NO_HEADERS".to_string()
            } else {
                record
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", text(v.as_deref())))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        }
        if self.key {
            fields.push(text(record.key.as_deref()));
        }
        fields.push(text(record.value.as_deref()));
        out.extend_from_slice(fields.join(&self.separator).as_bytes());
        out.push(b'\n');
    }
}

/// Bytes as (lossy) UTF-8 text, `null` for null.
fn text(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(|| "null".to_string(), |b| String::from_utf8_lossy(b).into_owned())
}

impl ConsumeCommand {
    /// Runs the command; prints `Processed a total of N messages` to standard error at the end.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        // Kafka consumers let the broker auto-create a missing topic by default.
        let topic = client.topic_metadata(&self.topic, true).await?;
        let partitions: Vec<i32> = match self.partition {
            Some(p) if topic.partition(p).is_none() => bail!(
                "topic '{}' has no partition {p} (it has {})",
                self.topic,
                topic.partitions.len()
            ),
            Some(p) => vec![p],
            None => topic.partitions.iter().map(|p| p.partition).collect(),
        };
        let positions = self.start_positions(&client, &topic, &partitions).await?;

        let format = Format {
            partition: self.print_partition,
            offset: self.print_offset,
            timestamp: self.print_timestamp,
            headers: self.print_headers,
            key: self.print_key,
            separator: self.separator.clone(),
        };
        let default_wait = FetchOptions::default().max_wait_ms;
        let mut consumer = Consumer::new(&client, topic, positions, FetchOptions::default());
        let mut printed = 0u64;
        let mut last_record = Instant::now();
        let mut out = Vec::new();
        let mut failures = 0;
        'poll: loop {
            if let Some(timeout) = self.timeout_ms.map(Duration::from_millis) {
                let idle = last_record.elapsed();
                if idle >= timeout {
                    break;
                }
                // Do not long-poll past the deadline.
                let left = (timeout - idle).as_millis() as i32;
                consumer.set_max_wait_ms(left.clamp(1, default_wait));
            }
            let records = match consumer.poll().await {
                Ok(records) => {
                    failures = 0;
                    records
                }
                // A broker restart or a leader move: reconnect and go on where we were, as
                // Kafka's consumer does, but not forever.
                Err(e) if ConnectionError::is_cause_of(&e) && failures < MAX_RECONNECTS => {
                    failures += 1;
                    eprintln!("WARN {e:#}; retrying ({failures}/{MAX_RECONNECTS})");
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                    consumer.invalidate_metadata();
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !records.is_empty() {
                last_record = Instant::now();
            }
            out.clear();
            for record in &records {
                format.write(record, &mut out);
                printed += 1;
                if self.max_messages.is_some_and(|max| printed >= max) {
                    write_stdout(&out)?;
                    break 'poll;
                }
            }
            if !write_stdout(&out)? {
                break;
            }
        }
        eprintln!("Processed a total of {printed} messages");
        Ok(())
    }

    /// The offset to start at in each partition.
    async fn start_positions(
        &self,
        client: &crate::Client,
        topic: &crate::metadata::TopicInfo,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let spec = match (self.from_beginning, self.offset, self.timestamp) {
            (true, _, _) | (_, Some(StartOffset::Earliest), _) => OffsetSpec::Earliest,
            (_, Some(StartOffset::At(n)), _) => {
                return Ok(partitions.iter().map(|&p| (p, n)).collect());
            }
            (_, _, Some(ts)) => OffsetSpec::Timestamp(ts),
            _ => OffsetSpec::Latest,
        };
        let mut offsets = client.list_offsets(topic, partitions, spec).await?;
        if let OffsetSpec::Timestamp(_) = spec {
            // No record at or after the timestamp: start at the end, as Kafka's consumer does.
            let missing: Vec<i32> = offsets.iter().filter(|(_, &o)| o < 0).map(|(&p, _)| p).collect();
            if !missing.is_empty() {
                let latest = client.list_offsets(topic, &missing, OffsetSpec::Latest).await?;
                offsets.extend(latest);
            }
        }
        Ok(offsets)
    }
}

/// Writes and flushes; `false` when standard output was closed (stop quietly).
fn write_stdout(bytes: &[u8]) -> Result<bool> {
    if bytes.is_empty() {
        return Ok(true);
    }
    let mut out = std::io::stdout().lock();
    ignore_broken_pipe(out.write_all(bytes).and_then(|_| out.flush()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> ConsumedRecord {
        ConsumedRecord {
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::Creation,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v\xffx")),
            headers: vec![("h1".into(), Some(Bytes::from_static(b"a"))), ("h2".into(), None)],
        }
    }

    fn line(format: &Format, record: &ConsumedRecord) -> String {
        let mut out = Vec::new();
        format.write(record, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn value_only_by_default() {
        let format = Format {
            separator: "\t".into(),
            ..Format::default()
        };
        assert_eq!(line(&format, &record()), "v\u{fffd}x\n");
        let mut null = record();
        null.value = None;
        assert_eq!(line(&format, &null), "null\n");
    }

    #[test]
    fn every_field_in_kafka_order() {
        let format = Format {
            partition: true,
            offset: true,
            timestamp: true,
            headers: true,
            key: true,
            separator: "|".into(),
        };
        assert_eq!(
            line(&format, &record()),
            "2|41|CreateTime:1700000000000|h1:a,h2:null|k|v\u{fffd}x\n"
        );
        let mut r = record();
        r.headers.clear();
        r.key = None;
        r.timestamp_type = TimestampType::LogAppend;
        assert_eq!(
            line(&format, &r),
            "2|41|LogAppendTime:1700000000000|NO_HEADERS|null|v\u{fffd}x\n"
        );
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_start_offset("12"), Ok(StartOffset::At(12)));
        assert_eq!(parse_start_offset("earliest"), Ok(StartOffset::Earliest));
        assert!(parse_start_offset("-3").is_err());
    }
}
