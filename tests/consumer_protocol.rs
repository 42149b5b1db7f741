//! The consumer group protocol of KIP-848 (`group.protocol=consumer`) against the real
//! `strom` binary: the Java client (kafka-clients 3.9.1, ConsumerGroupHeartbeat v0 with
//! member ids made by the broker), librdkafka (confluent-kafka 2.16.1, v1 with member ids
//! made by the client) and raw requests for the error codes. Long-running members are
//! `groups_ck.py member` and `ConsumerProtocolMember.java`, collected by
//! `common::members::Proc`.
//!
//! In this protocol the broker, not the client, sets session timeout and heartbeat interval:
//! every broker here runs with a 6 s session and 500 ms heartbeats so that rebalances take a
//! few hundred milliseconds and an expelled member goes within seconds.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::members::{
    groups_ck, ints, member_id, now_ms, owned_incremental, records, set, settle_pair, Proc, STATE_WAIT,
};
use common::{int, java_classpath, run_java, strom_ok, Broker};
use serde_json::{json, Value};

const SESSION_MS: i64 = 6000;

/// Settings of every broker in this file.
const SETTINGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("admin.listener", ""),
    ("group.consumer.session.timeout.ms", "6000"),
    ("group.consumer.min.session.timeout.ms", "1000"),
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "100"),
];

fn broker() -> Broker {
    Broker::start_with(SETTINGS)
}

/// The client a long-running member is made with.
#[derive(Debug, Clone, Copy)]
enum Client {
    Librdkafka,
    Java,
}

/// A long-running member in the consumer protocol that prints its events: librdkafka
/// (`groups_ck.py member ... protocol=consumer`) or Java (`ConsumerProtocolMember.java`).
/// `None` (the test is skipped) if the Java client is not installed.
fn member(broker: &Broker, client: Client, topic: &str, group: &str, name: &str) -> Option<Proc> {
    match client {
        Client::Librdkafka => Some(Proc::ck_member(broker, topic, group, name, &["protocol=consumer"])),
        Client::Java => {
            let Some(cp) = java_classpath() else {
                eprintln!("SKIPPED: kafka-clients.jar not found (tests/setup installs it)");
                return None;
            };
            let addr = broker.addr();
            Some(Proc::java(
                name,
                &cp,
                "ConsumerProtocolMember.java",
                &[&addr, topic, group, name],
            ))
        }
    }
}

/// librdkafka, consumer protocol: A and B split 4 partitions 2+2 (disjoint, covering); C
/// joins and exactly one partition moves (revoked from its owner first, then assigned to C),
/// nobody else is revoked anything; B leaves and only B's partitions move, to A and C. Each
/// change happens after the members read offsets 0..39 (then 40..79) of every partition but
/// committed only below 30 (then 70): exactly the moved partitions' uncommitted tails are read
/// twice, every other record once, nothing is "lost", and the commits end at 120 everywhere.
#[test]
fn librdkafka_members_split_and_rebalance_incrementally() {
    let broker = broker();
    let r = groups_ck(&broker, &["consumer-protocol", "cp", "g-cp"]);
    for (phase, members, sizes) in [
        ("ab", vec!["A", "B"], vec![2, 2]),
        ("abc", vec!["A", "B", "C"], vec![1, 1, 2]),
        ("ac", vec!["A", "C"], vec![2, 2]),
    ] {
        let p = &r["phases"][phase];
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, members, "members in phase {phase}: {r}");
        let mut all: Vec<i32> = members.iter().flat_map(|m| ints(&p[*m])).collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3], "phase {phase} is a disjoint cover: {r}");
        let mut got: Vec<usize> = members.iter().map(|m| ints(&p[*m]).len()).collect();
        got.sort();
        assert_eq!(got, sizes, "phase {phase}: {r}");
    }
    let (ab, abc, ac) = (&r["phases"]["ab"], &r["phases"]["abc"], &r["phases"]["ac"]);
    let moved = ints(&r["moved_on_join"]);
    assert_eq!(moved.len(), 1, "{r}");
    assert_eq!(moved, ints(&abc["C"]), "{r}");
    assert_eq!(ints(&r["revoked_on_join"]), moved, "only C's partition is revoked: {r}");
    for name in ["A", "B"] {
        assert!(
            set(&ints(&abc[name])).is_subset(&set(&ints(&ab[name]))),
            "{name} is sticky: {r}"
        );
    }
    let b_owned = set(&ints(&r["b_owned"]));
    assert_eq!(b_owned, set(&ints(&abc["B"])), "{r}");
    assert_eq!(
        r["revoked_on_leave"],
        json!([]),
        "A and C keep theirs when B leaves: {r}"
    );
    assert_eq!(set(&ints(&r["assigned_on_leave"])), b_owned, "{r}");
    for name in ["A", "C"] {
        assert!(set(&ints(&abc[name])).is_subset(&set(&ints(&ac[name]))), "{r}");
    }
    let moved_count = (1 + b_owned.len()) as i64;
    assert_eq!(r["unexpected"], json!([]), "records read a wrong number of times: {r}");
    assert_eq!(r["extra_records"], json!([]), "{r}");
    assert_eq!(int(&r, "deliveries"), 480 + 10 * moved_count, "{r}");
    assert_eq!(int(&r, "restart_checks"), 4 + moved_count, "{r}");
    assert_eq!(
        r["restart_mismatches"],
        json!([]),
        "reads not at the committed offset: {r}"
    );
    assert_eq!(r["commit_failures"], json!([]), "{r}");
    assert_eq!(r["lost"], json!([]), "{r}");
    assert_eq!(r["committed"], json!({"0": 120, "1": 120, "2": 120, "3": 120}), "{r}");
}

/// The Java client, consumer protocol: A and B split 4 partitions 2+2; C joins (1+1+2); B
/// closes (2+2). Each member commits what it read after every poll and when partitions are
/// revoked, so across the three phases (100 new records per partition each) every record is
/// read exactly once. The Admin client's ConsumerGroupDescribe shows the group Stable with
/// the uniform assignor and each member's assignment as the members see it, and ListGroups
/// with a type filter lists it as a consumer group.
#[test]
fn java_consumers_split_join_and_leave_without_loss_or_duplicates() {
    let Some(cp) = java_classpath() else {
        eprintln!("SKIPPED java_consumers_split_join_and_leave_without_loss_or_duplicates: kafka-clients.jar not found (tests/setup installs it)");
        return;
    };
    let broker = broker();
    let r = run_java(
        &broker,
        &cp,
        "ConsumerProtocolJava.java",
        &[&broker.addr(), "java-cp", "g-java-cp"],
        Duration::from_secs(120),
    );
    assert_eq!(int(&r, "records"), 1200, "{r}");
    assert_eq!(int(&r, "distinct"), 1200, "{r}");
    assert_eq!(r["duplicates"], json!([]), "{r}");
    assert_eq!(int(&r, "missing"), 0, "{r}");
    let ab = (set(&ints(&r["ab"]["A"])), set(&ints(&r["ab"]["B"])));
    assert_eq!((ab.0.len(), ab.1.len()), (2, 2), "{r}");
    assert!(ab.0.is_disjoint(&ab.1), "{r}");
    let abc: Vec<BTreeSet<i32>> = ["A", "B", "C"].iter().map(|m| set(&ints(&r["abc"][*m]))).collect();
    assert!(
        abc[0].is_subset(&ab.0) && abc[1].is_subset(&ab.1),
        "sticky when C joins: {r}"
    );
    assert!(abc[2].len() == 1, "{r}");
    let ac = (set(&ints(&r["ac"]["A"])), set(&ints(&r["ac"]["C"])));
    assert!(
        abc[0].is_subset(&ac.0) && abc[2].is_subset(&ac.1),
        "A and C keep theirs when B leaves: {r}"
    );
    let ids: Vec<&str> = r["member_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "{r}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3, "distinct member ids: {r}");
    // Epochs: A joins (1), B (2), C (3), B leaves (4).
    assert_eq!(r["epochs"], json!([4, 4]), "{r}");
    let described = |a: &BTreeSet<i32>, (name, other): (&str, &BTreeSet<i32>)| {
        let list = |ps: &BTreeSet<i32>| format!("{:?}", ps.iter().collect::<Vec<_>>());
        json!({
            "state": "Stable",
            "assignor": "uniform",
            "type": "Consumer",
            "members": { "java-A": list(a), format!("java-{name}"): list(other) }
        })
    };
    assert_eq!(r["described_ab"], described(&ab.0, ("B", &ab.1)), "{r}");
    assert_eq!(r["described_ac"], described(&ac.0, ("C", &ac.1)), "{r}");
    assert_eq!(r["committed"], json!({"0": 300, "1": 300, "2": 300, "3": 300}), "{r}");
}

/// A consumer-protocol group survives a broker restart as in Kafka (its records in
/// __consumer_offsets are replayed): a member (librdkafka, then Java) that read and committed offsets
/// 0..9 of four partitions keeps running while the broker is stopped with SIGTERM and
/// started again; afterwards it is still the group's member with the same epoch and all four
/// partitions (no revocation, no loss, no new assignment), reads exactly the 5 records per
/// partition written after the restart, and its commits show in OffsetFetch.
#[test]
fn a_librdkafka_member_and_its_offsets_survive_a_broker_restart() {
    member_survives_a_broker_restart(Client::Librdkafka);
}

#[test]
fn a_java_member_and_its_offsets_survive_a_broker_restart() {
    member_survives_a_broker_restart(Client::Java);
}

fn member_survives_a_broker_restart(client: Client) {
    let mut broker = broker();
    groups_ck(&broker, &["produce", "kept", "4", "10"]);
    let Some(mut m) = member(&broker, client, "kept", "g-kept", "kept-member") else {
        return;
    };
    m.wait_for("40 records", STATE_WAIT, |ev| (records(ev).len() >= 40).then_some(()));
    thread::sleep(Duration::from_millis(500)); // each record is committed after it is printed
    let before = raw::describe_blocking(&broker.addr(), "g-kept");
    assert_eq!(before.members.len(), 1, "{before:?}");
    let events_before = m.events().len();

    broker.sigterm(Duration::from_secs(30));
    broker.restart();
    let after = raw::describe_blocking(&broker.addr(), "g-kept");
    assert_eq!(
        (
            after.group_epoch,
            after.assignment_epoch,
            &after.members[0].member_id,
            after.members[0].member_epoch
        ),
        (
            before.group_epoch,
            before.assignment_epoch,
            &before.members[0].member_id,
            before.members[0].member_epoch
        ),
        "the group as it was: {after:?}"
    );
    groups_ck(&broker, &["append", "kept", "4", "5", "late"]);
    m.wait_for("the 20 late records", STATE_WAIT, |ev| {
        (records(ev).len() >= 60).then_some(())
    });
    thread::sleep(Duration::from_secs(1));
    let got = records(&m.events());
    let expected: BTreeSet<(i32, i64)> = (0..4).flat_map(|p| (0..15).map(move |o| (p, o))).collect();
    assert_eq!(got.len(), 60, "each record once\n{}", m.report());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "{}", m.report());
    let unexpected: Vec<Value> = m.events()[events_before..]
        .iter()
        .filter(|e| !matches!(e["ev"].as_str(), Some("record" | "member_id")))
        .cloned()
        .collect();
    assert_eq!(
        unexpected,
        Vec::<Value>::new(),
        "no rebalance across the restart\n{}",
        m.report()
    );
    assert_eq!(owned_incremental(&m.events()), set(&[0, 1, 2, 3]));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        raw::committed_blocking(&broker.addr(), "g-kept", "kept", 4),
        vec![15, 15, 15, 15]
    );
}

/// A member (librdkafka, then Java) that stops heartbeating (SIGSTOP) is expelled after the
/// broker's consumer session timeout (6000 ms), not before; its partitions then go to the
/// surviving librdkafka member, which reads them from the silent member's last commits: exactly the records
/// written after the freeze, once each. `strom groups describe` then shows the survivor
/// with all four partitions, and the group Stable with the uniform assignor.
#[test]
fn silent_librdkafka_member_is_expelled_after_the_session_timeout() {
    silent_member_is_expelled_after_the_session_timeout(Client::Librdkafka);
}

#[test]
fn silent_java_member_is_expelled_after_the_session_timeout() {
    silent_member_is_expelled_after_the_session_timeout(Client::Java);
}

fn silent_member_is_expelled_after_the_session_timeout(client: Client) {
    let broker = broker();
    groups_ck(&broker, &["produce", "silent", "4", "10"]);
    let Some(mut k) = member(&broker, client, "silent", "g-silent", "silent-member") else {
        return;
    };
    k.wait_for("all 40 records", STATE_WAIT, |ev| {
        (records(ev).len() >= 40).then_some(())
    });
    let mut c = member(&broker, Client::Librdkafka, "silent", "g-silent", "ck-survivor").expect("librdkafka");
    let (k_owned, c_owned) = settle_pair(&mut k, &mut c, Duration::from_secs(1), owned_incremental);
    assert_eq!(records(&k.events()).len(), 40, "{}", k.report());
    assert_eq!(records(&c.events()), vec![], "C starts at K's commits\n{}", c.report());
    let assigns_before = c.events().iter().filter(|e| e["ev"] == "assign").count();

    k.signal("STOP");
    let stopped_at = now_ms();
    groups_ck(&broker, &["append", "silent", "4", "10", "late"]);
    let taken_over = c.wait_for("all four partitions", Duration::from_secs(30), |ev| {
        let assigns: Vec<&Value> = ev.iter().filter(|e| e["ev"] == "assign").collect();
        (assigns.len() > assigns_before && owned_incremental(ev) == set(&[0, 1, 2, 3]))
            .then(|| int(assigns.last().unwrap(), "t"))
    });
    let after = taken_over - stopped_at;
    eprintln!("the silent member's partitions moved {after} ms after SIGSTOP");
    // K's last heartbeat was at most one heartbeat interval (500 ms) before the freeze.
    assert!(
        after >= SESSION_MS - 700,
        "expelled {after} ms after going silent, before its session lapsed"
    );
    assert!(
        after <= SESSION_MS + 4000,
        "still in the group {after} ms after going silent"
    );
    c.wait_for("the 40 late records", STATE_WAIT, |ev| {
        (records(ev).len() >= 40).then_some(())
    });
    thread::sleep(Duration::from_secs(1));
    let got = records(&c.events());
    assert_eq!(got.len(), 40, "each late record once\n{}", c.report());
    let expected: BTreeSet<(i32, i64)> = (0..4).flat_map(|p| (10..20).map(move |o| (p, o))).collect();
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "{}", c.report());
    assert_eq!(
        owned_incremental(&c.events()),
        k_owned.union(&c_owned).copied().collect::<BTreeSet<_>>()
    );
    // `strom groups describe` describes the group with ConsumerGroupDescribe.
    let addr = broker.addr();
    let cli = |extra: &str| -> Vec<Vec<String>> {
        strom_ok(
            &["groups", "--bootstrap-server", &addr, "describe", "g-silent", extra],
            None,
        )
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
    };
    let c_id = member_id(&c.events()).expect("C's member id");
    assert_eq!(
        cli("--members"),
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
    assert_eq!(
        cli("--state"),
        vec![vec![
            "g-silent".to_string(),
            addr.clone(),
            "(1)".into(),
            "uniform".into(),
            "Stable".into(),
            "1".into()
        ]]
    );
    k.kill9();
}

// ------------------------------------------------------------------ raw protocol

mod raw {
    use std::time::Duration;

    use bytes::Bytes;
    use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Request, StrBytes};
    use strom_client::Connection;

    const CALL_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    pub async fn call<R: Request>(conn: &Connection, request: &R, version: i16) -> R::Response {
        let pending = conn.submit(request, version).await.expect("send request");
        tokio::time::timeout(CALL_TIMEOUT, pending.wait())
            .await
            .expect("answered in time")
            .expect("response")
    }

    /// A joining heartbeat (member epoch 0) subscribing to `topic`.
    pub fn join(group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s(topic))]))
            .with_topic_partitions(Some(vec![]))
    }

    /// A heartbeat reporting the partitions the member owns.
    pub fn beat(
        group: &str,
        member: &str,
        epoch: i32,
        owned: &[(uuid::Uuid, Vec<i32>)],
    ) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(
                owned
                    .iter()
                    .map(|(t, ps)| TopicPartitions::default().with_topic_id(*t).with_partitions(ps.clone()))
                    .collect(),
            ))
    }

    /// The (topic id, partitions) of a heartbeat's assignment, if it has one.
    pub fn assignment(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<(uuid::Uuid, Vec<i32>)>> {
        r.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .map(|tp| {
                    let mut ps = tp.partitions.clone();
                    ps.sort();
                    (tp.topic_id, ps)
                })
                .collect()
        })
    }

    pub async fn classic_join(conn: &Connection, group: &str, member: &str) -> JoinGroupResponse {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(6000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"\x00\x00"))]);
        call(conn, &request, 5).await
    }

    pub async fn commit(conn: &Connection, version: i16, group: &str, member: &str, epoch: i32, topic: &str) -> i16 {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])]);
        let response = call(conn, &request, version).await;
        response.topics[0].partitions[0].error_code
    }

    pub async fn describe(conn: &Connection, group: &str) -> DescribedGroup {
        let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
        call(conn, &request, 0).await.groups.remove(0)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    pub fn describe_blocking(addr: &str, group: &str) -> DescribedGroup {
        block_on(async {
            let conn = Connection::connect(addr, "describe").await.expect("connect");
            describe(&conn, group).await
        })
    }

    /// Committed offsets of partitions 0..n of `topic` (OffsetFetch v7, as an admin).
    pub fn committed_blocking(addr: &str, group: &str, topic: &str, n: i32) -> Vec<i64> {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        block_on(async {
            let conn = Connection::connect(addr, "offsets").await.expect("connect");
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes((0..n).collect())]));
            let response = call(&conn, &request, 7).await;
            response.topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect()
        })
    }
}

/// (member id, member epoch, assignment, target assignment, topic name) of a described member.
type DescribedMember = (String, i32, Vec<i32>, Vec<i32>, String);

// Kafka error codes.
const NONE: i16 = 0;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNRELEASED_INSTANCE_ID: i16 = 111;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// Raw ConsumerGroupHeartbeat, OffsetCommit, JoinGroup, ListGroups and ConsumerGroupDescribe
/// requests: member ids (made by the broker in v0, required from the client in v1), member
/// epochs, revocation before assignment, and Kafka's error codes for stale or unknown
/// members, unknown assignors, and a group id used by both protocols.
#[test]
fn raw_protocol_epochs_reconciliation_and_error_codes() {
    use kafka_protocol::messages::{
        consumer_group_describe_response, offset_delete_request, DescribeGroupsRequest, GroupId, ListGroupsRequest,
        OffsetDeleteRequest, TopicName,
    };
    use raw::*;
    let broker = broker();
    groups_ck(&broker, &["produce", "raw", "4", "1"]);
    let addr = broker.addr();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = strom_client::Connection::connect(&addr, "raw-848")
            .await
            .expect("connect");
        let g = "g-raw";

        // v0: the broker names the member; it gets every partition at epoch 1.
        let a = call(&conn, &join(g, "", "raw"), 0).await;
        assert_eq!(
            (a.error_code, a.member_epoch, a.heartbeat_interval_ms),
            (NONE, 1, 500),
            "{a:?}"
        );
        let a_id = a.member_id.clone().unwrap().to_string();
        assert!(!a_id.is_empty());
        let a_all = assignment(&a).expect("a joining member gets its assignment");
        assert_eq!(a_all.len(), 1);
        let topic = a_all[0].0;
        assert_eq!(a_all[0].1, vec![0, 1, 2, 3]);

        // v1: the client names the member; an empty id is an invalid request.
        assert_eq!(call(&conn, &join(g, "", "raw"), 1).await.error_code, INVALID_REQUEST);
        let unknown_assignor = join(g, "x", "raw").with_server_assignor(Some(s("sticky")));
        assert_eq!(call(&conn, &unknown_assignor, 1).await.error_code, UNSUPPORTED_ASSIGNOR);
        // Stale, future and unknown members.
        assert_eq!(
            call(&conn, &beat(g, &a_id, 7, &[]), 1).await.error_code,
            FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            call(&conn, &beat(g, "nobody", 1, &[]), 1).await.error_code,
            UNKNOWN_MEMBER_ID
        );

        // b joins (epoch 2) but gets nothing while a still owns everything.
        let b = call(&conn, &join(g, "member-b", "raw"), 1).await;
        assert_eq!((b.error_code, b.member_epoch), (NONE, 2), "{b:?}");
        assert_eq!(assignment(&b), Some(vec![]), "{b:?}");
        // a must revoke two partitions first and keeps epoch 1 until it has.
        let a2 = call(&conn, &beat(g, &a_id, 1, &[(topic, vec![0, 1, 2, 3])]), 1).await;
        assert_eq!((a2.error_code, a2.member_epoch), (NONE, 1), "{a2:?}");
        let a_kept = assignment(&a2).expect("a's new assignment");
        assert_eq!(a_kept[0].1.len(), 2, "{a2:?}");
        let b2 = call(&conn, &beat(g, "member-b", 2, &[]), 1).await;
        assert_eq!(
            (b2.member_epoch, assignment(&b2)),
            (2, None),
            "nothing released yet: {b2:?}"
        );
        // The previous epoch is fenced once a moved on; a commit with it is stale.
        let a3 = call(&conn, &beat(g, &a_id, 1, &a_kept), 1).await;
        assert_eq!((a3.error_code, a3.member_epoch), (NONE, 2), "{a3:?}");
        assert_eq!(
            call(&conn, &beat(g, "member-b", 1, &[]), 1).await.error_code,
            FENCED_MEMBER_EPOCH
        );
        let b3 = call(&conn, &beat(g, "member-b", 2, &[]), 1).await;
        let b_got = assignment(&b3).expect("b gets the released partitions");
        assert_eq!(b_got[0].1.len(), 2, "{b3:?}");
        let all: BTreeSet<i32> = a_kept[0].1.iter().chain(b_got[0].1.iter()).copied().collect();
        assert_eq!(all, set(&[0, 1, 2, 3]), "disjoint and covering: {a_kept:?} {b_got:?}");

        // Offsets: the member epoch is the generation (OffsetCommit v9).
        assert_eq!(commit(&conn, 9, g, &a_id, 2, "raw").await, NONE);
        assert_eq!(commit(&conn, 9, g, &a_id, 1, "raw").await, STALE_MEMBER_EPOCH);
        assert_eq!(commit(&conn, 9, g, "nobody", 2, "raw").await, UNKNOWN_MEMBER_ID);
        assert_eq!(commit(&conn, 8, g, &a_id, 2, "raw").await, UNSUPPORTED_VERSION);
        assert_eq!(commit(&conn, 9, "g-nowhere", "m", 3, "raw").await, GROUP_ID_NOT_FOUND);
        // The group subscribes to "raw": its offsets cannot be deleted.
        let delete = OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(g)))
            .with_topics(vec![offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("raw")))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0),
                ])]);
        let deleted = call(&conn, &delete, 0).await;
        assert_eq!(
            (deleted.error_code, deleted.topics[0].partitions[0].error_code),
            (NONE, GROUP_SUBSCRIBED_TO_TOPIC)
        );

        // One protocol per group id.
        assert_eq!(classic_join(&conn, g, "").await.error_code, INCONSISTENT_GROUP_PROTOCOL);
        let first = classic_join(&conn, "g-classic", "").await;
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first: {first:?}");
        let joined = classic_join(&conn, "g-classic", &first.member_id).await;
        assert_eq!(joined.error_code, NONE, "{joined:?}");
        let on_classic = call(&conn, &join("g-classic", "m", "raw"), 1).await;
        assert_eq!(on_classic.error_code, GROUP_ID_NOT_FOUND, "{on_classic:?}");
        assert_eq!(
            on_classic.error_message.as_deref(),
            Some("Group g-classic is not a consumer group.")
        );

        // ListGroups v5 tells the types apart; DescribeGroups describes a consumer group as Dead.
        let listed = call(
            &conn,
            &ListGroupsRequest::default().with_types_filter(vec![s("consumer")]),
            5,
        )
        .await;
        let rows: Vec<(String, String, String, String)> = listed
            .groups
            .iter()
            .map(|l| {
                (
                    l.group_id.0.to_string(),
                    l.protocol_type.to_string(),
                    l.group_state.to_string(),
                    l.group_type.to_string(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![(g.to_string(), "consumer".into(), "Stable".into(), "consumer".into())]
        );
        let classic_rows = call(
            &conn,
            &ListGroupsRequest::default().with_types_filter(vec![s("classic")]),
            5,
        )
        .await;
        assert_eq!(
            classic_rows
                .groups
                .iter()
                .map(|l| l.group_id.0.to_string())
                .collect::<Vec<_>>(),
            vec!["g-classic".to_string()]
        );
        let dg = call(
            &conn,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(g))]),
            5,
        )
        .await;
        assert_eq!(dg.groups[0].group_state.as_str(), "Dead");

        // ConsumerGroupDescribe: epochs, assignor, members with current and target assignment.
        let d = describe(&conn, g).await;
        assert_eq!(d.error_code, NONE, "{d:?}");
        assert_eq!(
            (
                d.group_state.as_str(),
                d.group_epoch,
                d.assignment_epoch,
                d.assignor_name.as_str()
            ),
            ("Stable", 2, 2, "uniform")
        );
        let mut members: Vec<DescribedMember> = d
            .members
            .iter()
            .map(|m| {
                let parts = |a: &consumer_group_describe_response::Assignment| {
                    let mut v: Vec<i32> = a.topic_partitions.iter().flat_map(|t| t.partitions.clone()).collect();
                    v.sort();
                    v
                };
                (
                    m.member_id.to_string(),
                    m.member_epoch,
                    parts(&m.assignment),
                    parts(&m.target_assignment),
                    m.assignment.topic_partitions[0].topic_name.0.to_string(),
                )
            })
            .collect();
        members.sort();
        let mut want = vec![
            (
                a_id.clone(),
                2,
                a_kept[0].1.clone(),
                a_kept[0].1.clone(),
                "raw".to_string(),
            ),
            (
                "member-b".to_string(),
                2,
                b_got[0].1.clone(),
                b_got[0].1.clone(),
                "raw".to_string(),
            ),
        ];
        want.sort();
        assert_eq!(members, want);
        assert_eq!(describe(&conn, "g-classic").await.error_code, GROUP_ID_NOT_FOUND);
        assert_eq!(describe(&conn, "g-none").await.error_code, GROUP_ID_NOT_FOUND);

        // Static membership: an instance id in use cannot join again until it leaves with -2.
        let s1 = join(g, "static-1", "raw").with_instance_id(Some(s("inst")));
        assert_eq!(call(&conn, &s1, 1).await.error_code, NONE);
        let s2 = join(g, "static-2", "raw").with_instance_id(Some(s("inst")));
        assert_eq!(call(&conn, &s2, 1).await.error_code, UNRELEASED_INSTANCE_ID);
        let leave_static = beat(g, "static-1", -2, &[]).with_instance_id(Some(s("inst")));
        let left = call(&conn, &leave_static, 1).await;
        assert_eq!((left.error_code, left.member_epoch), (NONE, -2), "{left:?}");
        let epoch_before = describe(&conn, g).await.group_epoch;
        assert_eq!(call(&conn, &s2, 1).await.error_code, NONE);
        assert_eq!(
            describe(&conn, g).await.group_epoch,
            epoch_before,
            "a returning static member does not rebalance"
        );

        // Leaving: epoch -1 answers -1 and bumps the group epoch.
        let leave = call(&conn, &beat(g, "member-b", -1, &[]), 1).await;
        assert_eq!((leave.error_code, leave.member_epoch), (NONE, -1), "{leave:?}");
        assert_eq!(describe(&conn, g).await.group_epoch, epoch_before + 1);
        assert_eq!(
            call(&conn, &beat(g, "member-b", 2, &[]), 1).await.error_code,
            UNKNOWN_MEMBER_ID
        );
    });
}

/// A regex subscription (ConsumerGroupHeartbeat v1, SubscribedTopicRegex): the member gets
/// the partitions of every topic whose whole name matches; a topic created later that
/// matches bumps the group epoch and is assigned on the next heartbeat; a topic that only
/// contains a match is not subscribed; ConsumerGroupDescribe shows the regex; a pattern that
/// does not compile is INVALID_REGULAR_EXPRESSION.
#[test]
fn raw_regex_subscription_follows_new_topics() {
    use raw::*;
    let broker = broker();
    groups_ck(&broker, &["produce", "rx-a", "2", "1"]);
    groups_ck(&broker, &["produce", "not-rx-a", "1", "1"]);
    let addr = broker.addr();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let conn = rt.block_on(async {
        strom_client::Connection::connect(&addr, "raw-regex")
            .await
            .expect("connect")
    });
    let g = "g-regex";
    let join_regex = |pattern: &str| {
        join(g, "rx-member", "unused")
            .with_subscribed_topic_names(None)
            .with_subscribed_topic_regex(Some(s(pattern)))
    };
    let bad = rt.block_on(call(&conn, &join_regex("rx-("), 1));
    assert_eq!(bad.error_code, INVALID_REGULAR_EXPRESSION, "{bad:?}");
    let joined = rt.block_on(call(&conn, &join_regex("rx-.*"), 1));
    assert_eq!((joined.error_code, joined.member_epoch), (NONE, 1), "{joined:?}");
    let first = assignment(&joined).unwrap();
    assert_eq!(first.len(), 1, "only rx-a matches as a whole: {first:?}");
    assert_eq!(first[0].1, vec![0, 1]);

    groups_ck(&broker, &["produce", "rx-b", "3", "1"]);
    let next = rt.block_on(call(&conn, &beat(g, "rx-member", 1, &first), 1));
    assert_eq!((next.error_code, next.member_epoch), (NONE, 2), "{next:?}");
    let mut sizes: Vec<usize> = assignment(&next).unwrap().iter().map(|(_, ps)| ps.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![2, 3], "rx-a and the new rx-b: {next:?}");
    let d = rt.block_on(describe(&conn, g));
    assert_eq!(d.members[0].subscribed_topic_regex.as_deref(), Some("rx-.*"));
}
