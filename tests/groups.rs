//! Consumer groups and committed offsets (issue 3) against the real `strom` binary, driven by
//! real clients: librdkafka (confluent-kafka 2.16 and kcat -G), kafka-python 3.x, the Java
//! client (kafka-clients 3.9) and the `strom groups` CLI; plus one raw-protocol test of the
//! classic protocol's member ids, generations and static membership.
//!
//! Every broker runs with `group.initial.rebalance.delay.ms=0` so that a new group forms at
//! once, and members use session.timeout.ms at the broker's minimum (6000 ms) unless a test
//! needs room to restart a process. The Python scenarios live in `tests/clients/groups_ck.py`
//! (confluent-kafka), `groups_kp.py` (kafka-python) and `GroupsJava.java`; long-running
//! members print one JSON event per line (assign, revoke, record, member_id), which [`Proc`]
//! collects so the test can wait for a state and act (SIGSTOP, kill -9, restart) in between.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::members::{
    groups_ck, ints, member_id, now_ms, owned, rebalance_events, records, set, settle_pair, Proc, STATE_WAIT,
};
use common::{
    clients_dir, int, java_classpath, kcat_ok, python, run_java, run_with_timeout, strom_cli, strom_ok, Broker,
};
use serde_json::{json, Value};

/// Settings of every broker in this file. The admin HTTP API is switched off: its default
/// port is fixed, so brokers of tests running in parallel would collide on it.
const GROUP_SETTINGS: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0"), ("admin.listener", "")];

// Kafka error codes.
const NONE: i16 = 0;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

fn broker() -> Broker {
    Broker::start_with(GROUP_SETTINGS)
}

// ------------------------------------------------------------------ the CLI

/// Data rows of a `strom groups` table (the header line checked and dropped), split at
/// whitespace.
fn rows(stdout: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no output, expected a table:\n{stdout}"));
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        header.split_whitespace().collect::<Vec<_>>(),
        "table header in:\n{stdout}"
    );
    lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

const DESCRIBE_HEADER: &str = "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID";
const MEMBERS_HEADER: &str = "GROUP CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS ASSIGNMENT";
const STATE_HEADER: &str = "GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS";
const RESET_HEADER: &str = "GROUP TOPIC PARTITION NEW-OFFSET";

fn groups_cli(broker: &Broker, args: &[&str]) -> String {
    let addr = broker.addr();
    let mut all = vec!["groups", "--bootstrap-server", &addr[..]];
    all.extend_from_slice(args);
    strom_ok(&all, None)
}

/// `strom groups describe GROUP` as rows.
fn describe(broker: &Broker, group: &str) -> Vec<Vec<String>> {
    rows(&groups_cli(broker, &["describe", group]), DESCRIBE_HEADER)
}

/// Expected describe rows of a group without members: (topic, partition, current, end).
fn idle_rows(group: &str, topic: &str, entries: &[(i32, i64, i64)]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|(p, current, end)| {
            vec![
                group.to_string(),
                topic.to_string(),
                p.to_string(),
                current.to_string(),
                end.to_string(),
                (end - current).to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]
        })
        .collect()
}

// ------------------------------------------------------------------ raw protocol probes

mod raw {
    use std::time::Duration;

    use bytes::Bytes;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{
        DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
        SyncGroupRequest, SyncGroupResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    use strom_client::Connection;

    const CALL_TIMEOUT: Duration = Duration::from_secs(30);

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Sends `request` and waits (at most CALL_TIMEOUT) for its answer; `what` names it in
    /// the failure.
    async fn call<R: kafka_protocol::protocol::Request>(conn: &Connection, request: &R, what: &str) -> R::Response {
        tokio::time::timeout(CALL_TIMEOUT, conn.send(request))
            .await
            .unwrap_or_else(|_| panic!("{what} not answered within {CALL_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{what}: {e:#}"))
    }

    pub async fn connect(addr: &str, client_id: &str) -> std::sync::Arc<Connection> {
        Connection::connect(addr, client_id)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e:#}"))
    }

    pub async fn join(
        conn: &Connection,
        group: &str,
        member: &str,
        instance: Option<&str>,
        metadata: &'static [u8],
    ) -> JoinGroupResponse {
        join_with(conn, group, member, instance, &[("range", metadata)]).await
    }

    /// JoinGroup (the highest version both sides speak) with `protocols` in order of preference.
    pub async fn join_with(
        conn: &Connection,
        group: &str,
        member: &str,
        instance: Option<&str>,
        protocols: &[(&str, &'static [u8])],
    ) -> JoinGroupResponse {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(6000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(name))
                            .with_metadata(Bytes::from_static(metadata))
                    })
                    .collect(),
            );
        call(conn, &request, "JoinGroup").await
    }

    pub async fn sync(
        conn: &Connection,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        assignments: &[(&str, &'static [u8])],
    ) -> SyncGroupResponse {
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from_static(a))
                    })
                    .collect(),
            );
        call(conn, &request, "SyncGroup").await
    }

    pub async fn heartbeat(
        conn: &Connection,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s));
        call(conn, &request, "Heartbeat").await.error_code
    }

    /// LeaveGroup v3+ for one member; returns (top-level error, member error).
    pub async fn leave(conn: &Connection, group: &str, member: &str, instance: Option<&str>) -> (i16, i16) {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(s(member))
                .with_group_instance_id(instance.map(s))]);
        let response = call(conn, &request, "LeaveGroup").await;
        (
            response.error_code,
            response.members.first().map_or(-100, |m| m.error_code),
        )
    }

    /// OffsetCommit v8 of one offset for partition 0 of `topic`; returns its error code.
    pub async fn commit(
        conn: &Connection,
        group: &str,
        generation: i32,
        member: &str,
        topic: &str,
        offset: i64,
    ) -> i16 {
        use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
        use kafka_protocol::messages::{OffsetCommitRequest, TopicName};
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        let response = call(conn, &request, "OffsetCommit").await;
        response.topics[0].partitions[0].error_code
    }

    /// The committed offset of partition 0 of `topic` (-1: none), by OffsetFetch.
    pub async fn committed(conn: &Connection, group: &str, topic: &str) -> i64 {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        use kafka_protocol::messages::{OffsetFetchRequest, TopicName};
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![0])]));
        let response = conn
            .submit(&request, 7)
            .await
            .expect("send OffsetFetch")
            .wait()
            .await
            .expect("OffsetFetch");
        response.topics[0].partitions[0].committed_offset
    }

    /// (state, protocol type, protocol, [(member id, assignment)]) from DescribeGroups.
    pub async fn describe_full(conn: &Connection, group: &str) -> (String, String, String, Vec<(String, Bytes)>) {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let response = call(conn, &request, "DescribeGroups").await;
        let g = &response.groups[0];
        (
            g.group_state.to_string(),
            g.protocol_type.to_string(),
            g.protocol_data.to_string(),
            g.members
                .iter()
                .map(|m| (m.member_id.to_string(), m.member_assignment.clone()))
                .collect(),
        )
    }

    /// (state, member ids) from DescribeGroups.
    pub async fn describe(conn: &Connection, group: &str) -> (String, Vec<String>) {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let response = call(conn, &request, "DescribeGroups").await;
        let g = &response.groups[0];
        (
            g.group_state.to_string(),
            g.members.iter().map(|m| m.member_id.to_string()).collect(),
        )
    }

    /// The group's current generation, found by heartbeating as `member` with generations
    /// 1, 2, ... until one is accepted (a heartbeat with any other generation is refused with
    /// ILLEGAL_GENERATION and changes nothing).
    pub fn current_generation(addr: &str, group: &str, member: &str, instance: Option<&str>) -> i32 {
        runtime().block_on(async {
            let conn = connect(addr, "groups-test-probe").await;
            for generation in 1..=100 {
                match heartbeat(&conn, group, generation, member, instance).await {
                    super::NONE => return generation,
                    super::ILLEGAL_GENERATION => continue,
                    other => panic!("heartbeat probe of {member} in generation {generation}: error {other}"),
                }
            }
            panic!("no generation up to 100 accepted for member {member}")
        })
    }

    pub fn heartbeat_once(addr: &str, group: &str, generation: i32, member: &str, instance: Option<&str>) -> i16 {
        runtime().block_on(async {
            let conn = connect(addr, "groups-test-probe").await;
            heartbeat(&conn, group, generation, member, instance).await
        })
    }
}

// ------------------------------------------------------------------ tests

/// Offset retention with KIP-211's semantics (offsets.retention.ms=3000, checked every
/// 200 ms): a group member commits and keeps heartbeating well past the retention period, and
/// its offset stays, because a group with members that subscribes to the topic keeps its
/// offsets. It leaves: the group is Empty, and the offset (committed long before) still stays
/// until the group has been empty for the retention period, then goes. A simple consumer's
/// offset (no group) expires by its commit time. Both are deleted with tombstones in
/// __consumer_offsets: after a restart with a week of retention they are still gone, while
/// an offset committed just before the restart is there.
#[test]
fn committed_offsets_expire_once_the_group_was_empty_for_the_retention_period() {
    const RETENTION: Duration = Duration::from_millis(3000);
    // A v0 consumer subscription to topic "ret".
    const META: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x03ret\xff\xff\xff\xff";
    let mut settings = GROUP_SETTINGS.to_vec();
    settings.extend([
        ("offsets.retention.ms", "3000"),
        ("offsets.retention.check.interval.ms", "200"),
    ]);
    let mut broker = Broker::start_with(&settings);
    groups_ck(&broker, &["produce", "ret", "1", "1"]);
    let addr = broker.addr();
    let rt = raw::runtime();
    rt.block_on(async {
        let m = raw::connect(&addr, "ret-m").await;
        let g = "g-ret";
        let first = raw::join(&m, g, "", None, META).await;
        let id = first.member_id.to_string();
        let joined = raw::join(&m, g, &id, None, META).await;
        assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
        assert_eq!(raw::sync(&m, g, 1, &id, None, &[(&id, b"")]).await.error_code, NONE);
        assert_eq!(raw::commit(&m, g, 1, &id, "ret", 7).await, NONE);
        assert_eq!(raw::commit(&m, "g-simple", -1, "", "ret", 5).await, NONE);
        let committed_at = Instant::now();

        // The member stays (heartbeats) for twice the retention: its offset stays too.
        while committed_at.elapsed() < RETENTION * 2 {
            assert_eq!(raw::heartbeat(&m, g, 1, &id, None).await, NONE);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            raw::committed(&m, g, "ret").await,
            7,
            "a group with members keeps its offsets"
        );
        // The simple consumer's offset expired by its commit time.
        assert_eq!(raw::committed(&m, "g-simple", "ret").await, -1);

        assert_eq!(raw::leave(&m, g, &id, None).await, (NONE, NONE));
        let left_at = Instant::now();
        assert_eq!(raw::describe(&m, g).await.0, "Empty");
        tokio::time::sleep(RETENTION / 2).await;
        assert_eq!(
            raw::committed(&m, g, "ret").await,
            7,
            "kept until the group has been empty for the retention period"
        );
        let deadline = left_at + RETENTION + Duration::from_secs(5);
        while raw::committed(&m, g, "ret").await != -1 {
            assert!(
                Instant::now() < deadline,
                "offset not expired {:?} after the group became empty",
                left_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            left_at.elapsed() >= RETENTION - Duration::from_millis(200),
            "expired early: {:?}",
            left_at.elapsed()
        );
        assert_eq!(raw::commit(&m, "g-fresh", -1, "", "ret", 3).await, NONE);
    });
    broker.sigterm(Duration::from_secs(30));
    broker.set_option("offsets.retention.ms", "604800000");
    broker.restart();
    rt.block_on(async {
        let m = raw::connect(&broker.addr(), "ret-check").await;
        assert_eq!(
            raw::committed(&m, "g-ret", "ret").await,
            -1,
            "the tombstone survives a restart"
        );
        assert_eq!(raw::committed(&m, "g-simple", "ret").await, -1);
        assert_eq!(raw::committed(&m, "g-fresh", "ret").await, 3);
    });
}

/// Classic groups are written to __consumer_offsets as Kafka's group metadata records (key
/// version 2) when a generation completes or the group empties, and replayed at start: a
/// group that was Stable comes back Stable with its member, generation, protocol and
/// assignment, and the member carries on heartbeating across the restart; after it leaves
/// and the broker restarts again, the group is Empty with protocol type "consumer" (not an
/// offsets-only group) in DescribeGroups and `strom groups describe --state`. Deleting the
/// group writes a tombstone: after another restart it is gone.
#[test]
fn classic_group_metadata_survives_restarts() {
    const META: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x04meta\xff\xff\xff\xff";
    let mut broker = broker();
    groups_ck(&broker, &["produce", "meta", "1", "1"]);
    let rt = raw::runtime();
    let g = "g-meta";
    let id = rt.block_on(async {
        let m = raw::connect(&broker.addr(), "meta-m").await;
        let first = raw::join(&m, g, "", None, META).await;
        let id = first.member_id.to_string();
        let joined = raw::join(&m, g, &id, None, META).await;
        assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
        let synced = raw::sync(&m, g, 1, &id, None, &[(&id, b"assignment-1")]).await;
        assert_eq!(synced.error_code, NONE);
        assert_eq!(raw::commit(&m, g, 1, &id, "meta", 1).await, NONE);
        id
    });
    broker.sigterm(Duration::from_secs(30));
    broker.restart();
    rt.block_on(async {
        let m = raw::connect(&broker.addr(), "meta-m").await;
        assert_eq!(
            raw::describe_full(&m, g).await,
            (
                "Stable".to_string(),
                "consumer".to_string(),
                "range".to_string(),
                vec![(id.clone(), Bytes::from_static(b"assignment-1"))]
            )
        );
        assert_eq!(raw::heartbeat(&m, g, 1, &id, None).await, NONE, "the member carries on");
        assert_eq!(raw::leave(&m, g, &id, None).await, (NONE, NONE));
        assert_eq!(raw::describe(&m, g).await.0, "Empty");
    });
    thread::sleep(Duration::from_millis(500)); // the Empty record is written within a tick
    broker.sigterm(Duration::from_secs(30));
    broker.restart();
    rt.block_on(async {
        let m = raw::connect(&broker.addr(), "meta-m").await;
        assert_eq!(
            raw::describe_full(&m, g).await,
            ("Empty".to_string(), "consumer".to_string(), String::new(), vec![])
        );
        assert_eq!(raw::committed(&m, g, "meta").await, 1);
    });
    assert_eq!(
        rows(&groups_cli(&broker, &["describe", g, "--state"]), STATE_HEADER),
        vec![vec![
            g.to_string(),
            broker.addr(),
            "(1)".into(),
            "-".into(),
            "Empty".into(),
            "0".into()
        ]]
    );
    groups_cli(&broker, &["delete", g]);
    broker.sigterm(Duration::from_secs(30));
    broker.restart();
    rt.block_on(async {
        let m = raw::connect(&broker.addr(), "meta-m").await;
        assert_eq!(raw::describe(&m, g).await.0, "Dead", "the tombstone deleted the group");
    });
}

/// KIP-814 and static rejoins (JoinGroup v9): a static leader that comes back under a new
/// member id to a stable group gets the current generation at once with skip_assignment set
/// (and the member list), and keeps its assignment. Coming back with other metadata but the
/// same chosen protocol changes nothing either; coming back preferring another protocol, so
/// that the next generation would choose differently, rebalances (a new generation with the
/// new protocol and no skip_assignment), as in Kafka.
#[test]
fn static_leader_rejoin_skips_assignment_and_rebalances_only_for_a_new_protocol() {
    const META: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff";
    const OTHER: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01x";
    let broker = broker();
    let rt = raw::runtime();
    rt.block_on(async {
        let g = "g-kip814";
        let c = raw::connect(&broker.addr(), "static").await;
        let first = raw::join_with(&c, g, "", Some("i-1"), &[("range", META), ("roundrobin", META)]).await;
        assert_eq!((first.error_code, first.generation_id), (NONE, 1), "{first:?}");
        let id1 = first.member_id.to_string();
        assert_eq!(first.leader.as_str(), id1);
        assert!(!first.skip_assignment);
        assert_eq!(
            raw::sync(&c, g, 1, &id1, Some("i-1"), &[(&id1, b"mine")])
                .await
                .error_code,
            NONE
        );

        // The leader restarts: same protocols, new member id.
        let back = raw::join_with(&c, g, "", Some("i-1"), &[("range", META), ("roundrobin", META)]).await;
        let id2 = back.member_id.to_string();
        assert_ne!(id2, id1);
        assert_eq!(
            (back.error_code, back.generation_id, back.leader.as_str()),
            (NONE, 1, id2.as_str())
        );
        assert_eq!(back.protocol_name.as_deref(), Some("range"));
        assert!(back.skip_assignment, "KIP-814: {back:?}");
        assert_eq!(back.members.len(), 1);
        let synced = raw::sync(&c, g, 1, &id2, Some("i-1"), &[]).await;
        assert_eq!((synced.error_code, &synced.assignment[..]), (NONE, &b"mine"[..]));

        // Other metadata, same chosen protocol: still generation 1.
        let again = raw::join_with(&c, g, "", Some("i-1"), &[("range", OTHER), ("roundrobin", OTHER)]).await;
        assert_eq!((again.error_code, again.generation_id), (NONE, 1), "{again:?}");
        assert!(again.skip_assignment);
        let id3 = again.member_id.to_string();

        // Preferring roundrobin changes the next generation's protocol: a rebalance.
        let switched = raw::join_with(&c, g, "", Some("i-1"), &[("roundrobin", META), ("range", META)]).await;
        assert_eq!((switched.error_code, switched.generation_id), (NONE, 2), "{switched:?}");
        assert_eq!(switched.protocol_name.as_deref(), Some("roundrobin"));
        assert!(!switched.skip_assignment);
        assert_eq!(raw::heartbeat(&c, g, 1, &id3, Some("i-1")).await, FENCED_INSTANCE_ID);
    });
}

/// librdkafka: two members join a group on an empty 4-partition topic and settle on two
/// partitions each, disjoint and covering the topic (so SyncGroup handed each member the
/// leader's assignment for it, not another's). Then 100 records per partition are written:
/// each member reads exactly the records of its own partitions, each once, with no further
/// rebalance; their commits show as CURRENT-OFFSET 100, LAG 0 in `strom groups describe`.
#[test]
fn two_librdkafka_members_split_four_partitions() {
    let broker = broker();
    let r = groups_ck(&broker, &["split", "split", "g-split"]);
    let a = set(&ints(&r["assignment"]["A"]));
    let b = set(&ints(&r["assignment"]["B"]));
    assert_eq!((a.len(), b.len()), (2, 2), "{r}");
    assert!(a.is_disjoint(&b), "overlapping assignments: {r}");
    assert_eq!(a.union(&b).copied().collect::<BTreeSet<_>>(), set(&[0, 1, 2, 3]), "{r}");
    for (name, mine) in [("A", &a), ("B", &b)] {
        let expected: serde_json::Map<String, Value> =
            mine.iter().map(|p| (p.to_string(), json!([100, 100, 0, 99]))).collect();
        assert_eq!(r["by_member"][name], Value::Object(expected), "{name} read: {r}");
    }
    assert_eq!(r["events_after_settle"], json!([]), "{r}");
    assert_eq!(r["commit_failures"], json!([]), "{r}");
    assert_eq!(
        describe(&broker, "g-split"),
        idle_rows(
            "g-split",
            "split",
            &[(0, 100, 100), (1, 100, 100), (2, 100, 100), (3, 100, 100)]
        )
    );
}

/// The Java client (kafka-clients 3.9, classic protocol): two consumers, each on its own
/// thread, split 4 partitions 2+2 with no overlap, read exactly their own records, and report
/// the same generation (ConsumerGroupMetadata) and distinct member ids that start with their
/// client ids, as Kafka forms them. Their synchronous commits show in `strom groups describe`.
#[test]
fn two_java_consumers_split_four_partitions() {
    let Some(cp) = java_classpath() else {
        eprintln!(
            "SKIPPED two_java_consumers_split_four_partitions: kafka-clients.jar not found \
             (pip install shigawire-apache-flink-libraries provides pyflink/lib/kafka-clients.jar)"
        );
        return;
    };
    let broker = broker();
    let r = run_java(
        &broker,
        &cp,
        "GroupsJava.java",
        &[&broker.addr(), "java-split", "g-java"],
        Duration::from_secs(150),
    );
    assert_eq!(int(&r, "delivered"), 400, "{r}");
    assert_eq!(int(&r, "events_after_settle"), 0, "{r}");
    let a = set(&ints(&r["A"]["assignment"]));
    let b = set(&ints(&r["B"]["assignment"]));
    assert_eq!((a.len(), b.len()), (2, 2), "{r}");
    assert!(a.is_disjoint(&b), "{r}");
    let generation = int(&r["A"], "generation");
    assert!(generation >= 1, "{r}");
    assert_eq!(int(&r["B"], "generation"), generation, "{r}");
    let (ida, idb) = (
        r["A"]["member_id"].as_str().unwrap(),
        r["B"]["member_id"].as_str().unwrap(),
    );
    assert!(
        ida.starts_with("java-A-") && idb.starts_with("java-B-") && ida != idb,
        "{r}"
    );
    for (name, mine) in [("A", &a), ("B", &b)] {
        let expected: serde_json::Map<String, Value> =
            mine.iter().map(|p| (p.to_string(), json!([100, 100, 0, 99]))).collect();
        assert_eq!(r[name]["records"], Value::Object(expected), "{name}: {r}");
    }
    assert_eq!(
        describe(&broker, "g-java"),
        idle_rows(
            "g-java",
            "java-split",
            &[(0, 100, 100), (1, 100, 100), (2, 100, 100), (3, 100, 100)]
        )
    );
}

/// librdkafka, eager protocol (range): A and B share the topic and read offsets 0..39 of
/// every partition, committing only below 30. C joins: every member's partitions are revoked
/// and reassigned (a rebalance: A+B+C own 2+1+1, disjoint), and each partition restarts at its
/// committed offset 30, so offsets 30..39 come exactly once more and nothing else does. Then
/// 40..79 are read, committed below 70, and B leaves (LeaveGroup): A and C rebalance to 2+2
/// and 70..79 of every partition come once more. Every other record is read exactly once,
/// every first read after an assignment is at the committed offset, no commit fails, no
/// partition is "lost", and the group's committed offsets end at 120 everywhere.
#[test]
fn third_member_joining_and_one_leaving_rebalance_without_loss() {
    let broker = broker();
    let r = groups_ck(&broker, &["rebalance", "churn", "g-churn"]);
    check_phases(&r);
    assert_eq!(
        r["revoked_on_join"],
        json!([0, 1, 2, 3]),
        "eager: everything is revoked when C joins: {r}"
    );
    let b_owned = set(&ints(&r["b_owned"]));
    let others: Vec<i32> = (0..4).filter(|p| !b_owned.contains(p)).collect();
    assert_eq!(
        r["revoked_on_leave"],
        json!(others),
        "eager: A and C give up all they own: {r}"
    );
    assert_eq!(r["assigned_on_leave"], json!([0, 1, 2, 3]), "{r}");
    assert_eq!(int(&r, "deliveries"), 480 + 40 + 40, "{r}");
    assert_eq!(int(&r, "restart_checks"), 12, "one per partition and assignment: {r}");
    assert_eq!(r["committed"], json!({"0": 120, "1": 120, "2": 120, "3": 120}), "{r}");
}

/// The same membership changes with `partition.assignment.strategy=cooperative-sticky`
/// (incremental cooperative rebalancing, KIP-429, on the classic protocol): when C joins,
/// exactly one partition moves (revoked from its owner, then assigned to C) and the others
/// are never revoked; when B leaves, only B's partitions move and A and C revoke nothing.
/// Only the moved partitions restart from their committed offsets (30 and 70), so exactly
/// their uncommitted tails are read twice; everything else exactly once.
#[test]
fn cooperative_sticky_rebalances_move_only_what_changes_owner() {
    let broker = broker();
    let r = groups_ck(&broker, &["cooperative", "coop", "g-coop"]);
    check_phases(&r);
    let ab = &r["phases"]["ab"];
    let abc = &r["phases"]["abc"];
    let ac = &r["phases"]["ac"];
    let moved = ints(&r["moved_on_join"]);
    assert_eq!(moved.len(), 1, "{r}");
    assert_eq!(ints(&r["revoked_on_join"]), moved, "only C's partition is revoked: {r}");
    for name in ["A", "B"] {
        let before = set(&ints(&ab[name]));
        let after = set(&ints(&abc[name]));
        assert!(
            after.is_subset(&before),
            "{name} kept a subset when C joined (sticky): {r}"
        );
    }
    let b_owned = set(&ints(&r["b_owned"]));
    assert_eq!(b_owned, set(&ints(&abc["B"])), "{r}");
    assert_eq!(
        r["revoked_on_leave"],
        json!([]),
        "nothing is revoked from A or C when B leaves: {r}"
    );
    assert_eq!(set(&ints(&r["assigned_on_leave"])), b_owned, "{r}");
    for name in ["A", "C"] {
        assert!(
            set(&ints(&abc[name])).is_subset(&set(&ints(&ac[name]))),
            "{name} kept its partitions when B left: {r}"
        );
    }
    let moved_count = (1 + b_owned.len()) as i64;
    assert_eq!(int(&r, "deliveries"), 480 + 10 * moved_count, "{r}");
    assert_eq!(int(&r, "restart_checks"), 4 + moved_count, "{r}");
    assert_eq!(r["committed"], json!({"0": 120, "1": 120, "2": 120, "3": 120}), "{r}");
}

/// What both membership-change scenarios must show: the three settled assignments are
/// disjoint covers of the 4 partitions with 2+2, 1+1+2 and 2+2 partitions, and deliveries,
/// restarts and commits are exactly as expected.
fn check_phases(r: &Value) {
    for (phase, members) in [
        ("ab", vec!["A", "B"]),
        ("abc", vec!["A", "B", "C"]),
        ("ac", vec!["A", "C"]),
    ] {
        let p = &r["phases"][phase];
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, members, "members in phase {phase}: {r}");
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        for m in &members {
            let ps = ints(&p[*m]);
            sizes.push(ps.len());
            all.extend(ps);
        }
        all.sort();
        sizes.sort();
        assert_eq!(all, vec![0, 1, 2, 3], "phase {phase} is a disjoint cover: {r}");
        let want = if members.len() == 3 { vec![1, 1, 2] } else { vec![2, 2] };
        assert_eq!(sizes, want, "phase {phase}: {r}");
    }
    assert_eq!(ints(&r["moved_on_join"]), ints(&r["phases"]["abc"]["C"]), "{r}");
    assert_eq!(r["unexpected"], json!([]), "records read a wrong number of times: {r}");
    assert_eq!(r["extra_records"], json!([]), "{r}");
    assert_eq!(
        r["restart_mismatches"],
        json!([]),
        "reads after an assignment not at the committed offset: {r}"
    );
    assert_eq!(r["commit_failures"], json!([]), "{r}");
    assert_eq!(r["lost"], json!([]), "{r}");
}

/// Committed offsets and their metadata survive a graceful restart (SIGTERM) and a kill -9.
/// Before SIGTERM a librdkafka group member commits three partitions with metadata strings;
/// after the restart librdkafka's OffsetFetch returns exactly those offsets and strings, a
/// partition never committed has none, a new member starts reading exactly at the committed
/// offsets, and `strom groups describe` shows the same table as before. Then kafka-python
/// commits new offsets and metadata for all four partitions (as a memberless consumer); after
/// kill -9 and restart kafka-python reads back exactly those offsets and metadata, and a
/// librdkafka member starts reading exactly at them.
///
/// (Metadata is compared within one client family: confluent-kafka-python sends a metadata
/// string with its C terminator, so kafka-python reads "m0" committed by it as "m0\0", and it
/// reads metadata without a terminator past its end.)
#[test]
fn committed_offsets_survive_sigterm_and_kill9() {
    let mut broker = broker();
    groups_ck(&broker, &["produce", "durable", "4", "30"]);
    let r = groups_ck(
        &broker,
        &[
            "commit",
            "durable",
            "g-durable",
            r#"{"0": [7, "m0"], "1": [13, "meta-one"], "2": [30, ""]}"#,
        ],
    );
    assert_eq!(r, json!({"committed": 3, "errors": []}));
    let before = describe(&broker, "g-durable");
    assert_eq!(
        before,
        idle_rows("g-durable", "durable", &[(0, 7, 30), (1, 13, 30), (2, 30, 30)])
    );

    let (status, _) = broker.sigterm(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM exit: {status}");
    broker.restart();
    assert_eq!(describe(&broker, "g-durable"), before, "after SIGTERM and restart");
    assert_eq!(groups_cli(&broker, &["list"]), "g-durable\n");
    let r = groups_ck(&broker, &["committed", "durable", "g-durable", "4"]);
    assert_eq!(
        r["committed"],
        json!({"0": [7, "m0"], "1": [13, "meta-one"], "2": [30, ""], "3": [-1001, null]}),
        "{r}"
    );
    // [first, last, count] read per partition by a new member: from the committed offsets,
    // and from the start where nothing was committed.
    assert_eq!(
        r["read"],
        json!({"0": [7, 29, 23], "1": [13, 29, 17], "3": [0, 29, 30]}),
        "{r}"
    );

    let addr = broker.addr();
    let offsets = r#"{"0": [25, "after-restart"], "1": [14, "one-more"], "2": [30, "two"], "3": [5, "p3"]}"#;
    let r = python(
        &broker,
        "groups_kp.py",
        &["commit", &addr, "durable", "g-durable", offsets],
    );
    assert_eq!(r, json!({"committed": 4}));
    broker.kill9();
    broker.restart();
    assert_eq!(
        describe(&broker, "g-durable"),
        idle_rows(
            "g-durable",
            "durable",
            &[(0, 25, 30), (1, 14, 30), (2, 30, 30), (3, 5, 30)]
        ),
        "after kill -9 and restart"
    );
    let addr = broker.addr();
    let r = python(
        &broker,
        "groups_kp.py",
        &["committed", &addr, "durable", "g-durable", "4"],
    );
    assert_eq!(
        r["committed"],
        json!({"0": [25, "after-restart"], "1": [14, "one-more"], "2": [30, "two"], "3": [5, "p3"]}),
        "kafka-python's OffsetFetch after kill -9: {r}"
    );
    let r = groups_ck(&broker, &["committed", "durable", "g-durable", "4"]);
    let offsets: Vec<i64> = (0..4)
        .map(|p| r["committed"][p.to_string()][0].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        vec![25, 14, 30, 5],
        "librdkafka's OffsetFetch after kill -9: {r}"
    );
    assert_eq!(
        r["read"],
        json!({"0": [25, 29, 5], "1": [14, 29, 16], "3": [5, 29, 25]}),
        "{r}"
    );
}

/// kcat -G: two groups consume the same topic at the same time, and each sees every record
/// exactly once (values match their offsets). kcat commits on exit, so both groups show
/// CURRENT-OFFSET 50 and LAG 0; after 10 more records per partition, the first group resumes
/// from its commit and reads exactly the 40 new ones, while the second group's offsets stay
/// at 50 (LAG 10): each group has its own offsets.
#[test]
fn two_groups_each_see_every_record() {
    let broker = broker();
    groups_ck(&broker, &["produce", "shared", "4", "50"]);
    let addr = broker.addr();
    let kcat = |group: &str| {
        let addr = addr.clone();
        let group = group.to_string();
        thread::spawn(move || {
            let out = kcat_ok(
                &[
                    "-b",
                    &addr,
                    "-G",
                    &group,
                    "-X",
                    "auto.offset.reset=earliest",
                    "-X",
                    "session.timeout.ms=6000",
                    "-e",
                    "-q",
                    "-f",
                    "%p %o %s\n",
                    "shared",
                ],
                None,
            );
            String::from_utf8(out).unwrap()
        })
    };
    let (one, two) = (kcat("g-one"), kcat("g-two"));
    let parse = |text: String| -> BTreeMap<(i32, i64), usize> {
        let mut seen = BTreeMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (p, o): (i32, i64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
            assert_eq!(f[2], format!("r-{p}-{o}"), "value of {p}/{o}");
            *seen.entry((p, o)).or_insert(0) += 1;
        }
        seen
    };
    let all: BTreeMap<(i32, i64), usize> = (0..4).flat_map(|p| (0..50).map(move |o| ((p, o), 1))).collect();
    assert_eq!(parse(one.join().unwrap()), all, "group g-one");
    assert_eq!(parse(two.join().unwrap()), all, "group g-two");
    for g in ["g-one", "g-two"] {
        assert_eq!(
            describe(&broker, g),
            idle_rows(g, "shared", &[(0, 50, 50), (1, 50, 50), (2, 50, 50), (3, 50, 50)])
        );
    }
    groups_ck(&broker, &["append", "shared", "4", "10", "r"]);
    let again = kcat("g-one").join().unwrap();
    let expected: BTreeMap<(i32, i64), usize> = (0..4).flat_map(|p| (50..60).map(move |o| ((p, o), 1))).collect();
    let mut seen = BTreeMap::new();
    for line in again.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        *seen
            .entry((f[0].parse::<i32>().unwrap(), f[1].parse::<i64>().unwrap()))
            .or_insert(0) += 1;
    }
    assert_eq!(seen, expected, "g-one resumes from its committed offsets");
    // Each group has offsets of its own: g-two did not move.
    assert_eq!(
        describe(&broker, "g-one"),
        idle_rows("g-one", "shared", &[(0, 60, 60), (1, 60, 60), (2, 60, 60), (3, 60, 60)])
    );
    assert_eq!(
        describe(&broker, "g-two"),
        idle_rows("g-two", "shared", &[(0, 50, 60), (1, 50, 60), (2, 50, 60), (3, 50, 60)])
    );
}

/// A kafka-python member that stops heartbeating (SIGSTOP freezes its heartbeat thread) is
/// expelled after session.timeout.ms (6000 ms) — not before — and its partitions go to the
/// librdkafka member, which reads them from the silent member's last commit: exactly the
/// records written after the freeze, once each, and nothing it had already processed.
#[test]
fn silent_member_is_expelled_after_session_timeout() {
    let broker = broker();
    groups_ck(&broker, &["produce", "silent", "4", "10"]);
    let mut k = Proc::kp_member(
        &broker,
        "silent",
        "g-silent",
        "kp-silent",
        &["session=6000", "heartbeat=1000"],
    );
    // K alone reads and commits offsets 0..9 of every partition.
    k.wait_for("all 40 records", STATE_WAIT, |ev| {
        (records(ev).len() >= 40).then_some(())
    });
    let mut c = Proc::ck_member(&broker, "silent", "g-silent", "ck-survivor", &[]);
    let (k_owned, c_owned) = settle_pair(&mut k, &mut c, Duration::from_secs(1), owned);
    assert_eq!(
        records(&k.events()).into_iter().collect::<BTreeSet<_>>(),
        (0..4)
            .flat_map(|p| (0..10).map(move |o| (p, o)))
            .collect::<BTreeSet<_>>(),
        "the kafka-python member read every record once before C joined\n{}",
        k.report()
    );
    assert_eq!(records(&k.events()).len(), 40, "{}", k.report());
    assert_eq!(records(&c.events()), vec![], "C starts at K's commits\n{}", c.report());
    let c_assigns_before = c.events().iter().filter(|e| e["ev"] == "assign").count();

    k.signal("STOP");
    let stopped_at = now_ms();
    groups_ck(&broker, &["append", "silent", "4", "10", "late"]);
    let taken_over = c.wait_for("all four partitions", Duration::from_secs(30), |ev| {
        let assigns: Vec<&Value> = ev.iter().filter(|e| e["ev"] == "assign").collect();
        (assigns.len() > c_assigns_before && owned(ev) == set(&[0, 1, 2, 3])).then(|| int(assigns.last().unwrap(), "t"))
    });
    let after = taken_over - stopped_at;
    eprintln!("the silent member's partitions moved {after} ms after SIGSTOP");
    // K's last heartbeat was at most heartbeat.interval.ms (1000) before the freeze.
    assert!(
        after >= 4_500,
        "expelled {after} ms after the member went silent, before its 6000 ms session could lapse"
    );
    assert!(
        after <= 12_000,
        "the silent member was still in the group {after} ms after going silent"
    );
    let expected: BTreeSet<(i32, i64)> = (0..4).flat_map(|p| (10..20).map(move |o| (p, o))).collect();
    c.wait_for("the 40 late records", STATE_WAIT, |ev| {
        (records(ev).len() >= 40).then_some(())
    });
    thread::sleep(Duration::from_secs(1));
    let got = records(&c.events());
    assert_eq!(got.len(), 40, "each late record once\n{}", c.report());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "{}", c.report());
    assert_eq!(
        owned(&c.events()),
        k_owned.union(&c_owned).copied().collect::<BTreeSet<_>>()
    );
    let members = rows(
        &groups_cli(&broker, &["describe", "g-silent", "--members"]),
        MEMBERS_HEADER,
    );
    let c_id = member_id(&c.events()).expect("C's member id");
    assert_eq!(
        members,
        vec![vec![
            "g-silent".to_string(),
            c_id,
            "-".into(),
            "/127.0.0.1".into(),
            "ck-survivor".into(),
            "4".into(),
            "silent(0,1,2,3)".into()
        ]]
    );
    k.kill9();
}

/// At least once, "process then commit": a librdkafka consumer writes each record to a
/// sqlite database (committing the transaction), and commits its Kafka offsets after every 10
/// records. It is SIGKILLed right after processing its 125th record, so records 121..125 are
/// processed but not committed. The broker's committed offsets are exactly those of the first
/// 120 records; the next consumer of the group re-delivers exactly the uncommitted records
/// (the 5 processed twice and all never processed), nothing committed comes again, and in the
/// end the database holds every record.
#[test]
fn process_then_commit_redelivers_exactly_the_uncommitted_after_sigkill() {
    let broker = broker();
    groups_ck(&broker, &["produce", "alo", "4", "50"]);
    let db = broker.scratch_dir().join("processed.sqlite");
    let db = db.to_str().unwrap();
    let addr = broker.addr();
    let mut cmd = Command::new("python3");
    cmd.arg(clients_dir().join("groups_ck.py"))
        .args(["alo", &addr, "alo", "g-alo", db, "200", "125", "10"])
        .env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(120));
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the first consumer must die by SIGKILL ({})\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report = python(&broker, "groups_ck.py", &["alo-report", db]);
    let first: Vec<(i32, i64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[1].as_i64().unwrap() as i32, r[2].as_i64().unwrap()))
        .collect();
    assert_eq!(first.len(), 125, "{report}");
    // What the commit after the 120th record covered: per partition, one past the highest
    // offset processed by then.
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &first[..120] {
        let c = committed.entry(*p).or_insert(0);
        *c = (*c).max(o + 1);
    }
    let rows_now = describe(&broker, "g-alo");
    for row in &rows_now {
        let p: i32 = row[2].parse().unwrap();
        let want = committed.get(&p).map_or("-".to_string(), |o| o.to_string());
        assert_eq!(
            row[3], want,
            "CURRENT-OFFSET of partition {p} after the crash: {rows_now:?}"
        );
        assert_eq!(row[4], "50", "{rows_now:?}");
    }
    let described: BTreeSet<i32> = rows_now.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        committed.keys().all(|p| described.contains(p)),
        "every committed partition is described: {rows_now:?}"
    );

    let r = python(
        &broker,
        "groups_ck.py",
        &["alo", &addr, "alo", "g-alo", db, "200", "0", "10"],
    );
    let redelivered_expected: Vec<(i32, i64)> = (0..4)
        .flat_map(|p| (committed.get(&p).copied().unwrap_or(0)..50).map(move |o| (p, o)))
        .collect();
    assert_eq!(int(&r, "processed") as usize, redelivered_expected.len(), "{r}");
    let report = python(&broker, "groups_ck.py", &["alo-report", db]);
    let all_rows = report["rows"].as_array().unwrap();
    let second: BTreeMap<(i32, i64), String> = all_rows[125..]
        .iter()
        .map(|r| {
            assert_eq!(r[0], json!(2), "{r}");
            (
                (r[1].as_i64().unwrap() as i32, r[2].as_i64().unwrap()),
                r[3].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(second.len(), all_rows.len() - 125, "no record twice in the second run");
    assert_eq!(
        second.keys().copied().collect::<Vec<_>>(),
        redelivered_expected,
        "the second run reads exactly from the committed offsets"
    );
    for ((p, o), v) in &second {
        assert_eq!(v, &format!("r-{p}-{o}"));
    }
    let twice: BTreeSet<(i32, i64)> = first.iter().filter(|k| second.contains_key(k)).copied().collect();
    assert_eq!(
        twice,
        first[120..].iter().copied().collect::<BTreeSet<_>>(),
        "processed twice: exactly the records after the last commit"
    );
    let union: BTreeSet<(i32, i64)> = first.iter().chain(second.keys()).copied().collect();
    assert_eq!(union.len(), 200, "every record processed");
    assert_eq!(
        describe(&broker, "g-alo"),
        idle_rows("g-alo", "alo", &[(0, 50, 50), (1, 50, 50), (2, 50, 50), (3, 50, 50)])
    );
}

/// Static membership (KIP-345) with librdkafka: members with `group.instance.id` split the
/// topic; one is killed with SIGKILL (no LeaveGroup) and restarted within its session
/// timeout. It comes back under a new member id with exactly its old partitions, while the
/// other member sees no revocation or assignment and the group's generation is unchanged (a
/// heartbeat in the old generation is still accepted); the old member id is fenced
/// (FENCED_INSTANCE_ID). Both keep reading their own partitions.
#[test]
fn static_member_restart_keeps_its_partitions_without_a_rebalance() {
    let broker = broker();
    groups_ck(&broker, &["produce", "static", "4", "0"]);
    let opts_a = ["instance=inst-a", "session=15000"];
    let opts_b = ["instance=inst-b", "session=15000"];
    let mut a = Proc::ck_member(&broker, "static", "g-static", "static-a", &opts_a);
    a.wait_for("A's first assignment", STATE_WAIT, |ev| {
        (owned(ev).len() == 4).then_some(())
    });
    let mut b = Proc::ck_member(&broker, "static", "g-static", "static-b", &opts_b);
    let (a_owned, b_owned) = settle_pair(&mut a, &mut b, Duration::from_secs(1), owned);
    let a_id = member_id(&a.events()).expect("A's member id");
    let b_id = member_id(&b.events()).expect("B's member id");
    let members = rows(
        &groups_cli(&broker, &["describe", "g-static", "--members"]),
        MEMBERS_HEADER,
    );
    let assignment = |owned: &BTreeSet<i32>| {
        format!(
            "static({})",
            owned.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
        )
    };
    let member_row = |id: &str, instance: &str, client: &str, owned: &BTreeSet<i32>| {
        vec![
            "g-static".to_string(),
            id.to_string(),
            instance.to_string(),
            "/127.0.0.1".to_string(),
            client.to_string(),
            "2".to_string(),
            assignment(owned),
        ]
    };
    let mut want = vec![
        member_row(&a_id, "inst-a", "static-a", &a_owned),
        member_row(&b_id, "inst-b", "static-b", &b_owned),
    ];
    want.sort();
    let mut got = members.clone();
    got.sort();
    assert_eq!(got, want, "members before the restart");
    let addr = broker.addr();
    let generation = raw::current_generation(&addr, "g-static", &b_id, Some("inst-b"));
    eprintln!("static group generation before the restart: {generation}");
    let b_rebalances = rebalance_events(&b.events()).len();

    a.kill9();
    let mut a2 = Proc::ck_member(&broker, "static", "g-static", "static-a", &opts_a);
    let a2_owned = a2.wait_for("A's assignment after the restart", Duration::from_secs(30), |ev| {
        let o = owned(ev);
        (!o.is_empty()).then_some(o)
    });
    assert_eq!(
        a2_owned, a_owned,
        "the restarted static member gets its partitions back"
    );
    let a2_id = a2.wait_for("A's new member id", Duration::from_secs(10), member_id);
    assert_ne!(a2_id, a_id);
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rebalance_events(&b.events()).len(),
        b_rebalances,
        "the other member saw a rebalance\n{}",
        b.report()
    );
    assert_eq!(
        raw::heartbeat_once(&addr, "g-static", generation, &b_id, Some("inst-b")),
        NONE,
        "generation {generation} is no longer current: the group rebalanced"
    );
    assert_eq!(
        raw::heartbeat_once(&addr, "g-static", generation, &a_id, Some("inst-a")),
        FENCED_INSTANCE_ID,
        "the old member id of inst-a must be fenced"
    );
    let mut want = vec![
        member_row(&a2_id, "inst-a", "static-a", &a_owned),
        member_row(&b_id, "inst-b", "static-b", &b_owned),
    ];
    want.sort();
    let mut got = rows(
        &groups_cli(&broker, &["describe", "g-static", "--members"]),
        MEMBERS_HEADER,
    );
    got.sort();
    assert_eq!(got, want, "members after the restart");

    groups_ck(&broker, &["append", "static", "4", "5", "s"]);
    let want_a: BTreeSet<(i32, i64)> = a_owned.iter().flat_map(|p| (0..5).map(move |o| (*p, o))).collect();
    let want_b: BTreeSet<(i32, i64)> = b_owned.iter().flat_map(|p| (0..5).map(move |o| (*p, o))).collect();
    a2.wait_for("A's records", STATE_WAIT, |ev| (records(ev).len() >= 10).then_some(()));
    b.wait_for("B's records", STATE_WAIT, |ev| (records(ev).len() >= 10).then_some(()));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(records(&a2.events()).len(), 10, "{}", a2.report());
    assert_eq!(records(&a2.events()).into_iter().collect::<BTreeSet<_>>(), want_a);
    assert_eq!(records(&b.events()).len(), 10, "{}", b.report());
    assert_eq!(records(&b.events()).into_iter().collect::<BTreeSet<_>>(), want_b);
}

/// The classic protocol at the wire, with exact error codes: MEMBER_ID_REQUIRED hands out a
/// member id that then joins; SyncGroup and Heartbeat refuse a wrong generation
/// (ILLEGAL_GENERATION) and an unknown member (UNKNOWN_MEMBER_ID); a static member joining a
/// stable group triggers one rebalance (REBALANCE_IN_PROGRESS to the other member, which
/// rejoins); the static member rejoining under a new member id changes nothing (same
/// generation, same assignment, no rebalance) and fences its old id; leaving empties the group.
#[test]
fn classic_protocol_member_ids_generations_and_static_rejoin() {
    let broker = broker();
    let addr = broker.addr();
    let rt = raw::runtime();
    rt.block_on(async {
        const META: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff";
        let g = "g-raw";
        let m = raw::connect(&addr, "raw-m").await;
        let first = raw::join(&m, g, "", None, META).await;
        assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
        let m_id = first.member_id.to_string();
        assert!(m_id.starts_with("raw-m-"), "member id {m_id}");
        let joined = raw::join(&m, g, &m_id, None, META).await;
        assert_eq!(joined.error_code, NONE);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader.as_str(), m_id);
        assert_eq!(joined.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
        assert_eq!(joined.members.len(), 1);
        assert_eq!(joined.members[0].metadata.as_ref(), META);
        assert_eq!(
            raw::sync(&m, g, 2, &m_id, None, &[]).await.error_code,
            ILLEGAL_GENERATION
        );
        let synced = raw::sync(&m, g, 1, &m_id, None, &[(&m_id, b"assignment-m")]).await;
        assert_eq!(synced.error_code, NONE);
        assert_eq!(synced.assignment.as_ref(), b"assignment-m");
        assert_eq!(raw::heartbeat(&m, g, 1, &m_id, None).await, NONE);
        assert_eq!(raw::heartbeat(&m, g, 2, &m_id, None).await, ILLEGAL_GENERATION);
        assert_eq!(raw::heartbeat(&m, g, 1, "nobody", None).await, UNKNOWN_MEMBER_ID);

        // A static member joins (no MEMBER_ID_REQUIRED round trip for static members).
        let s_conn = raw::connect(&addr, "raw-s").await;
        let s_join = tokio::spawn({
            let s_conn = s_conn.clone();
            async move { raw::join(&s_conn, g, "", Some("static-1"), META).await }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match raw::heartbeat(&m, g, 1, &m_id, None).await {
                REBALANCE_IN_PROGRESS => break,
                NONE if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                other => panic!("heartbeat while a static member joins: {other}"),
            }
        }
        let m_rejoin = raw::join(&m, g, &m_id, None, META).await;
        let s_joined = s_join.await.unwrap();
        assert_eq!((m_rejoin.error_code, s_joined.error_code), (NONE, NONE));
        assert_eq!((m_rejoin.generation_id, s_joined.generation_id), (2, 2));
        assert_eq!(m_rejoin.leader.as_str(), m_id, "the leader stays leader");
        assert_eq!(m_rejoin.members.len(), 2);
        assert!(s_joined.members.is_empty(), "only the leader gets the members");
        let s_id = s_joined.member_id.to_string();
        assert!(s_id.starts_with("raw-s-"), "{s_id}");
        let s_sync = tokio::spawn({
            let s_conn = s_conn.clone();
            let s_id = s_id.clone();
            async move { raw::sync(&s_conn, g, 2, &s_id, Some("static-1"), &[]).await }
        });
        let m_sync = raw::sync(&m, g, 2, &m_id, None, &[(&m_id, b"for-m"), (&s_id, b"for-s")]).await;
        assert_eq!(m_sync.error_code, NONE);
        assert_eq!(m_sync.assignment.as_ref(), b"for-m");
        let s_sync = s_sync.await.unwrap();
        assert_eq!(s_sync.error_code, NONE);
        assert_eq!(s_sync.assignment.as_ref(), b"for-s");

        // The static member restarts: a new connection, no member id, same instance id.
        let s2_conn = raw::connect(&addr, "raw-s").await;
        let s2 = raw::join(&s2_conn, g, "", Some("static-1"), META).await;
        assert_eq!(s2.error_code, NONE);
        assert_eq!(s2.generation_id, 2, "no new generation for a static rejoin");
        let s2_id = s2.member_id.to_string();
        assert_ne!(s2_id, s_id);
        assert_eq!(s2.leader.as_str(), m_id);
        let s2_sync = raw::sync(&s2_conn, g, 2, &s2_id, Some("static-1"), &[]).await;
        assert_eq!(s2_sync.error_code, NONE);
        assert_eq!(s2_sync.assignment.as_ref(), b"for-s", "the old assignment comes back");
        assert_eq!(
            raw::heartbeat(&m, g, 2, &m_id, None).await,
            NONE,
            "no rebalance for the others"
        );
        assert_eq!(
            raw::heartbeat(&s_conn, g, 2, &s_id, Some("static-1")).await,
            FENCED_INSTANCE_ID
        );
        assert_eq!(raw::heartbeat(&s2_conn, g, 2, &s2_id, Some("static-1")).await, NONE);
        let (state, mut ids) = raw::describe(&m, g).await;
        ids.sort();
        let mut want = vec![m_id.clone(), s2_id.clone()];
        want.sort();
        assert_eq!((state.as_str(), ids), ("Stable", want));

        assert_eq!(raw::leave(&s2_conn, g, &s2_id, Some("static-1")).await, (NONE, NONE));
        assert_eq!(raw::leave(&m, g, &m_id, None).await, (NONE, NONE));
        assert_eq!(raw::describe(&m, g).await, ("Empty".to_string(), vec![]));
    });
}

/// `strom groups` against an active group (a librdkafka member that committed everything),
/// an idle group with two committed partitions, and a group that does not exist: `list` with
/// and without a state filter, `describe` (offsets, lag, owner), `--members`, `--state`,
/// `reset-offsets` in every mode (a dry run commits nothing; --execute commits; the broker
/// refuses a reset of a group with members, with UNKNOWN_MEMBER_ID), and `delete`.
#[test]
fn strom_groups_cli_lists_describes_resets_and_deletes() {
    let broker = broker();
    groups_ck(&broker, &["produce", "cli", "4", "20"]);
    let mut m = Proc::ck_member(&broker, "cli", "cli-active", "cli-m", &[]);
    m.wait_for("80 records", STATE_WAIT, |ev| (records(ev).len() >= 80).then_some(()));
    let m_id = member_id(&m.events()).expect("member id");
    let r = groups_ck(
        &broker,
        &["commit", "cli", "cli-idle", r#"{"0": [5, ""], "1": [10, "x"]}"#],
    );
    assert_eq!(r, json!({"committed": 2, "errors": []}));

    // list
    assert_eq!(groups_cli(&broker, &["list"]), "cli-active\ncli-idle\n");
    assert_eq!(
        rows(&groups_cli(&broker, &["list", "--state"]), "GROUP STATE"),
        vec![vec!["cli-active", "Stable"], vec!["cli-idle", "Empty"]]
    );
    assert_eq!(
        rows(&groups_cli(&broker, &["list", "--state", "Stable"]), "GROUP STATE"),
        vec![vec!["cli-active", "Stable"]]
    );
    assert_eq!(
        rows(&groups_cli(&broker, &["list", "--state", "empty,Dead"]), "GROUP STATE"),
        vec![vec!["cli-idle", "Empty"]]
    );

    // describe
    // The member commits each record after reading it; wait for the last commit to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    let active_rows = loop {
        let got = describe(&broker, "cli-active");
        if got.iter().all(|r| r[3] == "20") || Instant::now() > deadline {
            break got;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let want: Vec<Vec<String>> = (0..4)
        .map(|p| {
            [
                "cli-active",
                "cli",
                &p.to_string(),
                "20",
                "20",
                "0",
                &m_id,
                "/127.0.0.1",
                "cli-m",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
        .collect();
    assert_eq!(active_rows, want);
    assert_eq!(
        rows(
            &groups_cli(&broker, &["describe", "cli-active", "--members"]),
            MEMBERS_HEADER
        ),
        vec![vec![
            "cli-active",
            &m_id[..],
            "-",
            "/127.0.0.1",
            "cli-m",
            "4",
            "cli(0,1,2,3)"
        ]]
    );
    assert_eq!(
        rows(
            &groups_cli(&broker, &["describe", "cli-active", "--state"]),
            STATE_HEADER
        ),
        vec![vec![
            "cli-active".to_string(),
            broker.addr(),
            "(1)".to_string(),
            "range".to_string(),
            "Stable".to_string(),
            "1".to_string()
        ]]
    );
    assert_eq!(
        rows(&groups_cli(&broker, &["describe", "cli-idle", "--state"]), STATE_HEADER),
        vec![vec![
            "cli-idle".to_string(),
            broker.addr(),
            "(1)".into(),
            "-".into(),
            "Empty".into(),
            "0".into()
        ]]
    );
    let addr = broker.addr();
    let idle = strom_cli(&["groups", "--bootstrap-server", &addr, "describe", "cli-idle"], None);
    assert!(idle.status.success());
    assert_eq!(
        String::from_utf8_lossy(&idle.stderr),
        "Consumer group 'cli-idle' has no active members.\n"
    );
    assert_eq!(
        rows(&String::from_utf8_lossy(&idle.stdout), DESCRIBE_HEADER),
        idle_rows("cli-idle", "cli", &[(0, 5, 20), (1, 10, 20)])
    );
    let missing = strom_cli(
        &["groups", "--bootstrap-server", &addr, "describe", "no-such-group"],
        None,
    );
    assert!(!missing.status.success());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "error: consumer group 'no-such-group' does not exist\n"
    );

    // reset-offsets
    let reset = |args: &[&str]| {
        let mut all = vec!["reset-offsets", "cli-idle"];
        all.extend_from_slice(args);
        rows(&groups_cli(&broker, &all), RESET_HEADER)
    };
    let plan = |entries: &[(i32, i64)]| -> Vec<Vec<String>> {
        entries
            .iter()
            .map(|(p, o)| vec!["cli-idle".to_string(), "cli".into(), p.to_string(), o.to_string()])
            .collect()
    };
    let dry = strom_cli(
        &[
            "groups",
            "--bootstrap-server",
            &addr,
            "reset-offsets",
            "cli-idle",
            "--topic",
            "cli",
            "--to-earliest",
        ],
        None,
    );
    assert!(dry.status.success());
    assert_eq!(
        rows(&String::from_utf8_lossy(&dry.stdout), RESET_HEADER),
        plan(&[(0, 0), (1, 0), (2, 0), (3, 0)])
    );
    assert!(String::from_utf8_lossy(&dry.stderr).contains("Dry run"));
    assert_eq!(
        describe(&broker, "cli-idle"),
        idle_rows("cli-idle", "cli", &[(0, 5, 20), (1, 10, 20)]),
        "a dry run commits nothing"
    );
    assert_eq!(
        reset(&["--topic", "cli:0,2", "--to-offset", "12", "--execute"]),
        plan(&[(0, 12), (2, 12)])
    );
    assert_eq!(
        describe(&broker, "cli-idle"),
        idle_rows("cli-idle", "cli", &[(0, 12, 20), (1, 10, 20), (2, 12, 20)])
    );
    assert_eq!(
        reset(&["--topic", "cli:0,1", "--shift-by", "-4", "--execute"]),
        plan(&[(0, 8), (1, 6)])
    );
    assert_eq!(
        reset(&["--topic", "cli:2", "--shift-by", "100"]),
        plan(&[(2, 20)]),
        "clamped to the log end"
    );
    assert_eq!(
        reset(&["--topic", "cli:1", "--to-offset", "-5"]),
        plan(&[(1, 0)]),
        "clamped to the log start"
    );
    let no_base = strom_cli(
        &[
            "groups",
            "--bootstrap-server",
            &addr,
            "reset-offsets",
            "cli-idle",
            "--topic",
            "cli:3",
            "--shift-by",
            "1",
        ],
        None,
    );
    assert!(!no_base.status.success());
    assert_eq!(
        String::from_utf8_lossy(&no_base.stderr),
        "error: cannot reset cli-3: the group has no committed offset to shift from\n"
    );
    assert_eq!(
        reset(&["--topic", "cli", "--to-datetime", "0"]),
        plan(&[(0, 0), (1, 0), (2, 0), (3, 0)])
    );
    assert_eq!(
        reset(&["--topic", "cli", "--to-datetime", "2100-01-01T00:00:00"]),
        plan(&[(0, 20), (1, 20), (2, 20), (3, 20)]),
        "no record that new: the log end"
    );
    assert_eq!(
        reset(&["--all-topics", "--to-latest", "--execute"]),
        plan(&[(0, 20), (1, 20), (2, 20), (3, 20)]),
        "--all-topics: every topic the group has committed offsets for, all its partitions"
    );
    assert_eq!(
        describe(&broker, "cli-idle"),
        idle_rows("cli-idle", "cli", &[(0, 20, 20), (1, 20, 20), (2, 20, 20), (3, 20, 20)])
    );
    let refused = strom_cli(
        &[
            "groups",
            "--bootstrap-server",
            &addr,
            "reset-offsets",
            "cli-active",
            "--topic",
            "cli",
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "error: cannot commit offsets of group 'cli-active' for cli-0, cli-1, cli-2, cli-3: \
         UNKNOWN_MEMBER_ID (error code 25)\n"
    );
    assert!(
        describe(&broker, "cli-active").iter().all(|r| r[3] == "20"),
        "a refused reset changes nothing"
    );

    // delete
    let busy = strom_cli(&["groups", "--bootstrap-server", &addr, "delete", "cli-active"], None);
    assert!(!busy.status.success());
    assert_eq!(
        String::from_utf8_lossy(&busy.stderr),
        "error: cannot delete consumer group 'cli-active': NON_EMPTY_GROUP (error code 68)\n"
    );
    assert_eq!(
        groups_cli(&broker, &["delete", "cli-idle"]),
        "Deleted consumer group 'cli-idle'.\n"
    );
    assert_eq!(groups_cli(&broker, &["list"]), "cli-active\n");
    let gone = strom_cli(&["groups", "--bootstrap-server", &addr, "delete", "cli-idle"], None);
    assert!(!gone.status.success());
    assert_eq!(
        String::from_utf8_lossy(&gone.stderr),
        "error: cannot delete consumer group 'cli-idle': GROUP_ID_NOT_FOUND (error code 69)\n"
    );
    let after = strom_cli(&["groups", "--bootstrap-server", &addr, "describe", "cli-idle"], None);
    assert!(!after.status.success(), "a deleted group does not exist any more");
    m.kill9();
}
