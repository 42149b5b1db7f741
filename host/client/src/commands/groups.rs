//! `strom groups`: list, describe, reset-offsets, delete — after `kafka-consumer-groups.sh`.
//!
//! Tables are printed the way Kafka's tool prints them: a header line, one row per line,
//! columns left-aligned, padded to their widest cell and separated by one space; a missing
//! value is `-`. Notes about a group's state (no active members, rebalancing) go to standard
//! error, as Kafka's tool does, so standard output holds only the tables.
//!
//! - `list [--state [S,...]]`: group ids, one per line; with `--state`, a `GROUP STATE` table
//!   (only groups in the given states when states are named).
//! - `describe GROUP...`: `GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID
//!   HOST CLIENT-ID` for every partition the group has committed an offset for or has
//!   assigned to a member (sorted by topic and partition), then one row per member without
//!   partitions. `--members`: `GROUP CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS
//!   ASSIGNMENT`. `--state`: `GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS`.
//! - `reset-offsets GROUP (--topic T[:P,...]... | --all-topics) (--to-earliest | --to-latest |
//!   --to-offset N | --to-datetime WHEN | --shift-by N) [--execute]`: prints `GROUP TOPIC
//!   PARTITION NEW-OFFSET`; only `--execute` commits (as a memberless consumer, which the
//!   broker allows only while the group has no members).
//! - `delete GROUP...`: deletes empty groups with their committed offsets.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};

use super::{one_line, print, ConnectionArgs};
use crate::client::Client;
use crate::consumer::OffsetSpec;
use crate::groups::{CommittedOffset, GroupDescription, GroupMember, TopicPartition};

/// `strom groups ...`
#[derive(Debug, clap::Args)]
pub struct GroupsCommand {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub action: GroupsAction,
}

/// What `strom groups` does.
#[derive(Debug, clap::Subcommand)]
pub enum GroupsAction {
    /// List group ids, one per line, sorted.
    List {
        /// Print a GROUP STATE table; with states (comma-separated, e.g. Stable,Empty), only
        /// groups in those states.
        #[arg(long, value_name = "STATE", num_args = 0.., value_delimiter = ',', value_parser = parse_state)]
        state: Option<Vec<String>>,
    },
    /// Show committed offsets, log end offsets and lag per partition, and who consumes it.
    Describe {
        /// The groups to describe.
        #[arg(required = true)]
        groups: Vec<String>,
        /// List the members instead: ids, hosts, client ids and assignments.
        #[arg(long, conflicts_with = "state")]
        members: bool,
        /// Show the group's coordinator, assignment strategy, state and member count instead.
        #[arg(long)]
        state: bool,
    },
    /// Compute new committed offsets for a group and, with --execute, commit them.
    ResetOffsets {
        /// The group whose offsets to reset (it must have no active members to execute).
        group: String,
        /// A topic, or TOPIC:P,P,... for some of its partitions; repeat for several.
        #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", value_parser = parse_topic_spec,
              required_unless_present = "all_topics", conflicts_with = "all_topics")]
        topics: Vec<TopicSpec>,
        /// Every topic the group has committed offsets for.
        #[arg(long)]
        all_topics: bool,
        #[command(flatten)]
        target: ResetTarget,
        /// Commit the new offsets (without it, only print them).
        #[arg(long)]
        execute: bool,
        /// Only print the new offsets (the default).
        #[arg(long, conflicts_with = "execute")]
        dry_run: bool,
    },
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        /// The groups to delete.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// Where `reset-offsets` moves the committed offsets: exactly one of these.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (kept within the log start and end offsets).
    #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// To the first offset with a timestamp at or after WHEN: milliseconds since the epoch,
    /// or YYYY-MM-DDTHH:MM:SS[.mmm] in UTC (the log end offset if no record is that new).
    #[arg(long, value_name = "WHEN", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// By this many offsets from the committed offset (negative to go back), kept within the
    /// log start and end offsets.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
}

/// What to reset to, decoded from [`ResetTarget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    Datetime(i64),
    ShiftBy(i64),
}

impl ResetTarget {
    fn spec(&self) -> ResetSpec {
        if self.to_earliest {
            ResetSpec::Earliest
        } else if self.to_latest {
            ResetSpec::Latest
        } else if let Some(n) = self.to_offset {
            ResetSpec::Offset(n)
        } else if let Some(ts) = self.to_datetime {
            ResetSpec::Datetime(ts)
        } else if let Some(n) = self.shift_by {
            ResetSpec::ShiftBy(n)
        } else {
            unreachable!("clap requires one reset target")
        }
    }
}

/// `--topic T` (all partitions) or `--topic T:0,2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    /// `None`: every partition of the topic.
    pub partitions: Option<Vec<i32>>,
}

fn parse_topic_spec(s: &str) -> std::result::Result<TopicSpec, String> {
    let (topic, partitions) = match s.split_once(':') {
        None => (s, None),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| format!("'{p}' is not a partition number in '{s}'"))
                })
                .collect::<std::result::Result<Vec<i32>, String>>()?;
            (topic, Some(partitions))
        }
    };
    if topic.is_empty() {
        return Err(format!("no topic name in '{s}'"));
    }
    Ok(TopicSpec {
        topic: topic.to_string(),
        partitions,
    })
}

/// The group states Kafka's tools accept, in the spelling brokers report.
const GROUP_STATES: [&str; 8] = [
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
    "Unknown",
];

/// A group state named in any case (`stable`, `Stable`), as Kafka's tool parses it, in the
/// spelling brokers report.
fn parse_state(s: &str) -> std::result::Result<String, String> {
    GROUP_STATES
        .iter()
        .find(|state| state.eq_ignore_ascii_case(s.trim()))
        .map(|state| state.to_string())
        .ok_or_else(|| {
            format!(
                "'{s}' is not a group state; valid states are {}",
                GROUP_STATES.join(", ")
            )
        })
}

/// Milliseconds since the epoch, or `YYYY-MM-DDTHH:MM:SS[.mmm]` (UTC; a trailing `Z` is
/// allowed) as Kafka's `--to-datetime` takes it.
fn parse_datetime(s: &str) -> std::result::Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("'{s}' is neither milliseconds since the epoch nor YYYY-MM-DDTHH:MM:SS[.mmm]");
    let t = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let num = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (clock, millis) = match time.split_once('.') {
        Some((clock, frac)) if frac.len() == 3 => (clock, num(frac)?),
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || c.len() != 3 || d[0].len() != 4 || [d[1], d[2], c[0], c[1], c[2]].iter().any(|x| x.len() != 2) {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hour, minute, second) = (num(c[0])?, num(c[1])?, num(c[2])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl GroupsCommand {
    /// Runs the command, printing to standard output.
    pub async fn run(self) -> Result<()> {
        self.execute().await.map_err(one_line)
    }

    async fn execute(self) -> Result<()> {
        let client = self.connection.connect().await?;
        match self.action {
            GroupsAction::List { state } => {
                let filter = state.clone().unwrap_or_default();
                let groups = client.list_groups(&filter).await?;
                if state.is_some() {
                    let rows = groups
                        .iter()
                        .map(|g| vec![g.group_id.clone(), dash(g.state.as_deref().unwrap_or(""))])
                        .collect::<Vec<_>>();
                    print(&format_table(&["GROUP", "STATE"], &rows))?;
                } else {
                    let ids: String = groups.iter().map(|g| format!("{}\n", g.group_id)).collect();
                    print(&ids)?;
                }
            }
            GroupsAction::Describe { groups, members, state } => {
                for (i, group) in groups.iter().enumerate() {
                    if i > 0 {
                        print("\n")?;
                    }
                    describe(&client, group, members, state).await?;
                }
            }
            GroupsAction::ResetOffsets {
                group,
                topics,
                all_topics,
                target,
                execute,
                dry_run: _,
            } => {
                let plan = plan(&client, &group, &topics, all_topics, target.spec()).await?;
                if execute {
                    client.commit_offsets(&group, &plan).await?;
                }
                print(&format_reset(&group, &plan))?;
                if !execute {
                    eprintln!("Dry run: nothing was committed; add --execute to commit these offsets.");
                }
            }
            GroupsAction::Delete { groups } => {
                let mut failures = Vec::new();
                for (group, result) in client.delete_groups(&groups).await? {
                    match result {
                        Ok(()) => print(&format!("Deleted consumer group '{group}'.\n"))?,
                        Err(e) => failures.push(format!("cannot delete consumer group '{group}': {e}")),
                    }
                }
                if !failures.is_empty() {
                    bail!("{}", failures.join("; "));
                }
            }
        }
        Ok(())
    }
}

/// Describes one group in the form the flags ask for.
async fn describe(client: &Client, group: &str, members: bool, state: bool) -> Result<()> {
    let description = client.describe_group(group).await?;
    if description.state == "Dead" {
        bail!("consumer group '{group}' does not exist");
    }
    if state {
        return print(&format_state(&description));
    }
    if members {
        note_state(&description);
        return print(&format_members(&description));
    }
    let committed = client.committed_offsets(group).await?;
    if description.state == "Empty" && committed.is_empty() {
        // Kafka forgets such a group; a broker may still list it for a moment.
        bail!("consumer group '{group}' does not exist");
    }
    let log_end = log_end_offsets(client, &description, &committed).await?;
    note_state(&description);
    print(&format_offsets(&description, &committed, &log_end))
}

/// What Kafka's tool prints to standard error about a group's state.
fn note_state(description: &GroupDescription) {
    let group = &description.group_id;
    match description.state.as_str() {
        "Empty" => eprintln!("Consumer group '{group}' has no active members."),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            eprintln!("Warning: Consumer group '{group}' is rebalancing.")
        }
        _ => {}
    }
}

/// Log end offsets of every partition the group has committed or assigned; topics that no
/// longer exist are left out (their rows show `-`).
async fn log_end_offsets(
    client: &Client,
    description: &GroupDescription,
    committed: &BTreeMap<TopicPartition, CommittedOffset>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut wanted: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (topic, partition) in committed.keys() {
        wanted.entry(topic.clone()).or_default().insert(*partition);
    }
    for member in &description.members {
        for (topic, partitions) in &member.assignment {
            wanted
                .entry(topic.clone())
                .or_default()
                .extend(partitions.iter().copied());
        }
    }
    let mut out = BTreeMap::new();
    for (topic, partitions) in wanted {
        let Ok(info) = client.topic_metadata(&topic, false).await else {
            continue;
        };
        let partitions: Vec<i32> = partitions
            .into_iter()
            .filter(|p| info.partition(*p).is_some())
            .collect();
        for (partition, offset) in client.list_offsets(&info, &partitions, OffsetSpec::Latest).await? {
            out.insert((topic.clone(), partition), offset);
        }
    }
    Ok(out)
}

/// The new offset of every partition `reset-offsets` covers.
async fn plan(
    client: &Client,
    group: &str,
    topics: &[TopicSpec],
    all_topics: bool,
    spec: ResetSpec,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let committed = client.committed_offsets(group).await?;
    let specs: Vec<TopicSpec> = if all_topics {
        let names: BTreeSet<&String> = committed.keys().map(|(t, _)| t).collect();
        if names.is_empty() {
            bail!("group '{group}' has no committed offsets, so --all-topics names no topic");
        }
        names
            .into_iter()
            .map(|t| TopicSpec {
                topic: t.clone(),
                partitions: None,
            })
            .collect()
    } else {
        topics.to_vec()
    };
    let mut plan = BTreeMap::new();
    for spec_of_topic in &specs {
        let info = client.topic_metadata(&spec_of_topic.topic, false).await?;
        let partitions = match &spec_of_topic.partitions {
            None => info.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
            Some(list) => {
                for p in list {
                    if info.partition(*p).is_none() {
                        bail!("topic '{}' has no partition {p}", info.name);
                    }
                }
                list.clone()
            }
        };
        let earliest = client.list_offsets(&info, &partitions, OffsetSpec::Earliest).await?;
        let latest = client.list_offsets(&info, &partitions, OffsetSpec::Latest).await?;
        let by_time = match spec {
            ResetSpec::Datetime(ts) => Some(
                client
                    .list_offsets(&info, &partitions, OffsetSpec::Timestamp(ts))
                    .await?,
            ),
            _ => None,
        };
        for partition in partitions {
            let bounds = OffsetBounds {
                earliest: earliest[&partition],
                latest: latest[&partition],
                at_time: by_time.as_ref().map(|m| m[&partition]),
                committed: committed.get(&(info.name.clone(), partition)).map(|c| c.offset),
            };
            let offset =
                new_offset(spec, &bounds).map_err(|e| anyhow!("cannot reset {}-{partition}: {e}", info.name))?;
            plan.insert((info.name.clone(), partition), offset);
        }
    }
    Ok(plan)
}

/// What is known about one partition when computing its new offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetBounds {
    earliest: i64,
    latest: i64,
    /// ListOffsets' answer for `--to-datetime` (-1: no record that new).
    at_time: Option<i64>,
    committed: Option<i64>,
}

/// Kafka's rules: targets outside the log are moved to its nearest end; a datetime after
/// the last record resets to the log end; shifting needs a committed offset to shift from.
fn new_offset(spec: ResetSpec, b: &OffsetBounds) -> std::result::Result<i64, String> {
    let clamp = |o: i64| o.max(b.earliest).min(b.latest);
    Ok(match spec {
        ResetSpec::Earliest => b.earliest,
        ResetSpec::Latest => b.latest,
        ResetSpec::Offset(n) => clamp(n),
        ResetSpec::Datetime(_) => match b.at_time {
            Some(o) if o >= 0 => clamp(o),
            _ => b.latest,
        },
        ResetSpec::ShiftBy(n) => {
            let current = b
                .committed
                .ok_or_else(|| "the group has no committed offset to shift from".to_string())?;
            clamp(current.saturating_add(n))
        }
    })
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Columns left-aligned and padded to their widest cell, one space apart; no trailing spaces.
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(cell);
            for _ in cell.chars().count()..widths[i] {
                s.push(' ');
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(|c| c.as_str()).collect()));
    }
    out
}

/// The `describe` table: a row per committed or assigned partition, then per idle member.
fn format_offsets(
    description: &GroupDescription,
    committed: &BTreeMap<TopicPartition, CommittedOffset>,
    log_end: &BTreeMap<TopicPartition, i64>,
) -> String {
    let mut owner: BTreeMap<TopicPartition, &GroupMember> = BTreeMap::new();
    for member in &description.members {
        for (topic, partitions) in &member.assignment {
            for p in partitions {
                owner.insert((topic.clone(), *p), member);
            }
        }
    }
    let partitions: BTreeSet<&TopicPartition> = committed.keys().chain(owner.keys()).collect();
    let group = &description.group_id;
    let mut rows = Vec::new();
    for tp in partitions {
        let current = committed.get(tp).map(|c| c.offset);
        let end = log_end.get(tp).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some(e - c),
            _ => None,
        };
        let (consumer, host, client) = match owner.get(tp) {
            Some(m) => (m.member_id.clone(), m.client_host.clone(), m.client_id.clone()),
            None => ("-".into(), "-".into(), "-".into()),
        };
        rows.push(vec![
            group.clone(),
            tp.0.clone(),
            tp.1.to_string(),
            opt(current),
            opt(end),
            opt(lag),
            dash(&consumer),
            dash(&host),
            dash(&client),
        ]);
    }
    for m in description.members.iter().filter(|m| m.assignment.is_empty()) {
        let mut row = vec![group.clone()];
        row.extend(std::iter::repeat_n("-".to_string(), 5));
        row.extend([dash(&m.member_id), dash(&m.client_host), dash(&m.client_id)]);
        rows.push(row);
    }
    format_table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    )
}

/// `topic(0,1),other(2)`, or `-` for no partitions.
fn format_assignment(assignment: &[(String, Vec<i32>)]) -> String {
    if assignment.is_empty() {
        return "-".into();
    }
    assignment
        .iter()
        .map(|(t, ps)| {
            let list: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
            format!("{t}({})", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The `describe --members` table.
fn format_members(description: &GroupDescription) -> String {
    let rows: Vec<Vec<String>> = description
        .members
        .iter()
        .map(|m| {
            vec![
                description.group_id.clone(),
                dash(&m.member_id),
                dash(m.instance_id.as_deref().unwrap_or("")),
                dash(&m.client_host),
                dash(&m.client_id),
                m.partition_count().to_string(),
                format_assignment(&m.assignment),
            ]
        })
        .collect();
    format_table(
        &[
            "GROUP",
            "CONSUMER-ID",
            "GROUP-INSTANCE-ID",
            "HOST",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
        ],
        &rows,
    )
}

/// The `describe --state` table.
fn format_state(description: &GroupDescription) -> String {
    let c = &description.coordinator;
    let row = vec![
        description.group_id.clone(),
        format!("{} ({})", c.addr(), c.node_id),
        dash(&description.protocol),
        dash(&description.state),
        description.members.len().to_string(),
    ];
    format_table(
        &["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"],
        &[row],
    )
}

/// The `reset-offsets` table.
fn format_reset(group: &str, plan: &BTreeMap<TopicPartition, i64>) -> String {
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|((t, p), o)| vec![group.to_string(), t.clone(), p.to_string(), o.to_string()])
        .collect();
    format_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::Coordinator;

    fn member(id: &str, instance: Option<&str>, assignment: &[(&str, &[i32])]) -> GroupMember {
        GroupMember {
            member_id: id.into(),
            instance_id: instance.map(String::from),
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".into(),
            assignment: assignment.iter().map(|(t, p)| (t.to_string(), p.to_vec())).collect(),
        }
    }

    fn group(state: &str, members: Vec<GroupMember>) -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            state: state.into(),
            protocol_type: "consumer".into(),
            protocol: if members.is_empty() {
                String::new()
            } else {
                "range".into()
            },
            members,
            coordinator: Coordinator {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
            },
        }
    }

    fn committed(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, CommittedOffset> {
        entries
            .iter()
            .map(|(t, p, o)| {
                (
                    (t.to_string(), *p),
                    CommittedOffset {
                        offset: *o,
                        leader_epoch: -1,
                        metadata: String::new(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let text = format_table(
            &["A", "LONG-HEADER", "C"],
            &[
                vec!["wide-cell".into(), "x".into(), "last".into()],
                vec!["y".into(), "z".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "A         LONG-HEADER C\n\
             wide-cell x           last\n\
             y         z\n"
        );
    }

    #[test]
    fn describe_rows_cover_committed_and_assigned_partitions() {
        let description = group(
            "Stable",
            vec![
                member("m1", None, &[("t", &[0, 1])]),
                member("m2", None, &[("t", &[2])]),
                member("idle", None, &[]),
            ],
        );
        // t-1 is assigned but never committed; u-0 is committed but unassigned and its topic
        // is gone (no log end offset).
        let offsets = committed(&[("t", 0, 5), ("t", 2, 7), ("u", 0, 3)]);
        let log_end: BTreeMap<TopicPartition, i64> = [
            (("t".to_string(), 0), 10),
            (("t".to_string(), 1), 4),
            (("t".to_string(), 2), 7),
        ]
        .into();
        assert_eq!(
            format_offsets(&description, &offsets, &log_end),
            "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST       CLIENT-ID\n\
             g     t     0         5              10             5   m1          /127.0.0.1 client-m1\n\
             g     t     1         -              4              -   m1          /127.0.0.1 client-m1\n\
             g     t     2         7              7              0   m2          /127.0.0.1 client-m2\n\
             g     u     0         3              -              -   -           -          -\n\
             g     -     -         -              -              -   idle        /127.0.0.1 client-idle\n"
        );
    }

    #[test]
    fn members_and_state_tables() {
        let description = group(
            "Stable",
            vec![
                member("m1", Some("static-1"), &[("a", &[0, 2]), ("b", &[1])]),
                member("m2", None, &[]),
            ],
        );
        assert_eq!(
            format_members(&description),
            "GROUP CONSUMER-ID GROUP-INSTANCE-ID HOST       CLIENT-ID #PARTITIONS ASSIGNMENT\n\
             g     m1          static-1          /127.0.0.1 client-m1 3           a(0,2),b(1)\n\
             g     m2          -                 /127.0.0.1 client-m2 0           -\n"
        );
        assert_eq!(
            format_state(&description),
            "GROUP COORDINATOR (ID)   ASSIGNMENT-STRATEGY STATE  #MEMBERS\n\
             g     127.0.0.1:9092 (1) range               Stable 2\n"
        );
        assert_eq!(
            format_state(&group("Empty", vec![])),
            "GROUP COORDINATOR (ID)   ASSIGNMENT-STRATEGY STATE #MEMBERS\n\
             g     127.0.0.1:9092 (1) -                   Empty 0\n"
        );
    }

    #[test]
    fn reset_table() {
        let plan: BTreeMap<TopicPartition, i64> = [(("t".to_string(), 1), 12), (("t".to_string(), 0), 0)].into();
        assert_eq!(
            format_reset("g", &plan),
            "GROUP TOPIC PARTITION NEW-OFFSET\n\
             g     t     0         0\n\
             g     t     1         12\n"
        );
    }

    #[test]
    fn new_offsets_follow_kafka() {
        let b = OffsetBounds {
            earliest: 10,
            latest: 50,
            at_time: Some(30),
            committed: Some(20),
        };
        assert_eq!(new_offset(ResetSpec::Earliest, &b), Ok(10));
        assert_eq!(new_offset(ResetSpec::Latest, &b), Ok(50));
        assert_eq!(new_offset(ResetSpec::Offset(25), &b), Ok(25));
        assert_eq!(new_offset(ResetSpec::Offset(5), &b), Ok(10));
        assert_eq!(new_offset(ResetSpec::Offset(99), &b), Ok(50));
        assert_eq!(new_offset(ResetSpec::Datetime(0), &b), Ok(30));
        let none_that_new = OffsetBounds { at_time: Some(-1), ..b };
        assert_eq!(new_offset(ResetSpec::Datetime(0), &none_that_new), Ok(50));
        assert_eq!(new_offset(ResetSpec::ShiftBy(-5), &b), Ok(15));
        assert_eq!(new_offset(ResetSpec::ShiftBy(-50), &b), Ok(10));
        assert_eq!(new_offset(ResetSpec::ShiftBy(100), &b), Ok(50));
        let uncommitted = OffsetBounds { committed: None, ..b };
        assert!(new_offset(ResetSpec::ShiftBy(1), &uncommitted).is_err());
    }

    #[test]
    fn topic_specs_parse() {
        assert_eq!(
            parse_topic_spec("orders"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: None
            })
        );
        assert_eq!(
            parse_topic_spec("orders:0,2"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: Some(vec![0, 2])
            })
        );
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":0").is_err());
    }

    #[test]
    fn states_parse_in_any_case() {
        assert_eq!(parse_state("stable"), Ok("Stable".to_string()));
        assert_eq!(parse_state("PREPARINGREBALANCE"), Ok("PreparingRebalance".to_string()));
        assert!(parse_state("calm").is_err());
    }

    #[test]
    fn datetimes_parse_as_utc() {
        assert_eq!(parse_datetime("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), Ok(0));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_datetime("2024-02-29T12:00:00Z"), Ok(1_709_208_000_000));
        assert!(parse_datetime("2024-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-01-01").is_err());
    }
}
