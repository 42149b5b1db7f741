#!/usr/bin/env python3
"""Consumer group scenarios with librdkafka (confluent-kafka) against a Strom broker.

Usage: groups_ck.py SCENARIO BOOTSTRAP ARGS...

Scenarios that run to completion print one JSON object as the last line of stdout, which
tests/groups.rs asserts on exactly:

  produce TOPIC PARTITIONS N         create TOPIC and write N records to every partition
  append TOPIC PARTITIONS N TAG      write N more records ("TAG-P-I") to every partition
  split TOPIC GROUP [PROTOCOL]       two members split 4 partitions, then consume 100/partition
  rebalance TOPIC GROUP              eager: C joins A+B, then B leaves; uncommitted tails
  cooperative TOPIC GROUP            the same with partition.assignment.strategy=cooperative-sticky
  consumer-protocol TOPIC GROUP      the same with group.protocol=consumer (KIP-848)
  commit TOPIC GROUP OFFSETS         a member commits {"partition": [offset, metadata]}
  committed TOPIC GROUP PARTITIONS [PROTOCOL]
                                     committed() of every partition, then consume to the end
  alo TOPIC GROUP DB TOTAL CRASH_AFTER COMMIT_EVERY
                                     process-then-commit into sqlite; SIGKILLs itself after
                                     CRASH_AFTER records (0: never), commits every COMMIT_EVERY
  alo-report DB                      the rows of the sqlite file, in processing order

  member TOPIC GROUP NAME [instance=ID] [strategy=S] [session=MS] [protocol=consumer]
                                     a long-running member printing one JSON event per line:
                                     {"ev": "assign"|"revoke"|"lost", "partitions": [...]},
                                     {"ev": "record", "p": P, "o": O}, {"ev": "ready", ...};
                                     commits every record; runs until killed

PROTOCOL is the group protocol, classic (the default) or consumer (KIP-848: the broker
assigns, and session and heartbeat timing come from the broker).

Every wait is bounded (WAIT_S); a failure prints a message to stderr and exits 1.
"""

import json
import os
import signal
import sqlite3
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kutil import emit, fail, require

WAIT_S = 60  # upper bound of every wait in this script
SESSION_MS = 6000  # the broker's group.min.session.timeout.ms
PARTITIONS = [0, 1, 2, 3]


def log(msg):
    sys.stderr.write("[%.3f] %s\n" % (time.time(), msg))
    sys.stderr.flush()


def create_topic(bootstrap, name, partitions):
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=30)
    for t, f in fs.items():
        try:
            f.result(timeout=WAIT_S)
        except Exception as e:  # noqa: BLE001
            fail("create_topics(%s) failed: %s" % (t, e))
    deadline = time.time() + WAIT_S
    while True:
        t = a.list_topics(topic=name, timeout=10).topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.time() > deadline:
            fail("topic %s not in metadata with %d partitions: %r" % (name, partitions, t))
        time.sleep(0.1)


def produce(bootstrap, topic, per_partition, partitions=PARTITIONS, tag="r"):
    """Writes `per_partition` records to each partition; returns {partition: [offsets]}."""
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 30000, "linger.ms": 5})
    got = {q: [] for q in partitions}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            got[msg.partition()].append(msg.offset())

    for i in range(per_partition):
        for q in partitions:
            p.produce(topic, value=("%s-%d-%d" % (tag, q, i)).encode(), partition=q, on_delivery=report)
        p.poll(0)
    remaining = p.flush(WAIT_S)
    require(remaining == 0 and not errors, "produce failed: %d unflushed, errors %s" % (remaining, errors[:5]))
    for q in partitions:
        got[q].sort()
    return got


def consumer_conf(bootstrap, group, name, **extra):
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 30000,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "topic.metadata.refresh.interval.ms": 60000,
    }
    c.update(extra)
    if c.get("group.protocol") == "consumer":
        # Set broker side in the consumer protocol; librdkafka refuses them.
        for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
            c.pop(key, None)
    return c


def protocol_conf(protocol):
    """Consumer settings of a group protocol given on the command line."""
    if protocol in ("classic", ""):
        return {}
    require(protocol == "consumer", "unknown group protocol %r" % protocol)
    return {"group.protocol": "consumer"}


class Member:
    """A group member polled by this process; remembers rebalance events and deliveries."""

    def __init__(self, name, conf, topic, clock):
        self.name = name
        self.clock = clock
        self.c = Consumer(conf)
        # Incremental assignments: cooperative-sticky, and every assignment of the consumer protocol.
        self.cooperative = (
            conf.get("partition.assignment.strategy") == "cooperative-sticky" or conf.get("group.protocol") == "consumer"
        )
        self.owned = set()
        self.events = []  # (seq, kind, partitions)
        self.deliveries = []  # (partition, offset)
        self.closed = False
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _on_assign(self, _c, parts):
        ps = sorted(tp.partition for tp in parts)
        if self.cooperative:
            self.owned |= set(ps)
        else:
            self.owned = set(ps)
        self.events.append((self.clock.tick(), "assign", ps))
        log("%s assign %s -> owns %s" % (self.name, ps, sorted(self.owned)))

    def _on_revoke(self, _c, parts):
        ps = sorted(tp.partition for tp in parts)
        self.owned -= set(ps)
        self.events.append((self.clock.tick(), "revoke", ps))
        log("%s revoke %s -> owns %s" % (self.name, ps, sorted(self.owned)))

    def _on_lost(self, _c, parts):
        ps = sorted(tp.partition for tp in parts)
        self.owned -= set(ps)
        self.events.append((self.clock.tick(), "lost", ps))
        log("%s LOST %s" % (self.name, ps))

    def poll(self, timeout):
        m = self.c.poll(timeout)
        if m is None:
            return None
        if m.error():
            fail("%s: consumer error %s" % (self.name, m.error()))
        self.deliveries.append((m.partition(), m.offset()))
        return m

    def close(self):
        self.c.close()
        self.closed = True
        self.owned = set()


class Clock:
    """A global sequence number ordering events and deliveries of all members."""

    def __init__(self):
        self.n = 0

    def tick(self):
        self.n += 1
        return self.n


class Group:
    """Members of one group polled round robin by one thread, with a commit policy."""

    def __init__(self, bootstrap, topic, group, **extra):
        self.bootstrap, self.topic, self.group, self.extra = bootstrap, topic, group, extra
        self.clock = Clock()
        self.members = {}
        self.commit_below = 0  # commit a record only if its offset is below this
        self.committed = {}  # partition -> last offset committed successfully (next to read)
        self.commit_failures = []
        # (member, partition) -> offset the next delivery must have, set at each assignment
        self.expect_next = {}
        self.restart_checks = []  # (member, partition, expected, got)

    def add(self, name, **extra):
        conf = consumer_conf(self.bootstrap, self.group, name, **self.extra)
        conf.update(extra)
        m = Member(name, conf, self.topic, self.clock)
        self.members[name] = m
        return m

    def active(self):
        return [m for m in self.members.values() if not m.closed]

    def poll_once(self, timeout=0.05):
        delivered = 0
        for m in self.active():
            before = len(m.events)
            msg = m.poll(timeout)
            for (_, kind, ps) in m.events[before:]:
                if kind == "assign":
                    for p in ps:
                        self.expect_next[(m.name, p)] = self.committed.get(p, 0)
            if msg is None:
                continue
            delivered += 1
            p, o = msg.partition(), msg.offset()
            key = (m.name, p)
            if key in self.expect_next:
                self.restart_checks.append((m.name, p, self.expect_next.pop(key), o))
            if o < self.commit_below:
                try:
                    m.c.commit(message=msg, asynchronous=False)
                    self.committed[p] = max(self.committed.get(p, 0), o + 1)
                except KafkaException as e:
                    self.commit_failures.append([m.name, p, o, str(e)])
        return delivered

    def deliveries(self):
        return sum(len(m.deliveries) for m in self.members.values())

    def consume_until(self, total, what):
        """Polls until `total` deliveries happened overall, then 1 s more to catch extras."""
        deadline = time.time() + WAIT_S
        while self.deliveries() < total:
            if time.time() > deadline:
                fail("%s: %d of %d deliveries after %ds" % (what, self.deliveries(), total, WAIT_S))
            self.poll_once()
        quiet = time.time() + 1.0
        while time.time() < quiet:
            self.poll_once()
        require(self.deliveries() == total, "%s: %d deliveries, expected %d" % (what, self.deliveries(), total))

    def settle(self, sizes, what, since=0):
        """Polls until the active members own disjoint sets covering all partitions, with the
        given sorted sizes, each member having been assigned after clock value `since`; then
        polls 1.5 s more and checks nothing changed."""
        deadline = time.time() + WAIT_S

        def ok():
            owned = [m.owned for m in self.active()]
            union = set().union(*owned)
            return (
                sorted(len(o) for o in owned) == sizes
                and sum(len(o) for o in owned) == len(union)
                and union == set(PARTITIONS)
                and all(any(s > since and k == "assign" for (s, k, _) in m.events) for m in self.active())
            )

        while not ok():
            if time.time() > deadline:
                fail("%s: no settled assignment %s after %ds: %s" % (what, sizes, WAIT_S, self.assignment()))
            self.poll_once()
        snapshot = self.assignment()
        quiet = time.time() + 1.5
        while time.time() < quiet:
            self.poll_once()
        require(self.assignment() == snapshot, "%s: assignment moved on: %s -> %s" % (what, snapshot, self.assignment()))
        log("%s settled: %s" % (what, snapshot))
        return snapshot

    def assignment(self):
        return {m.name: sorted(m.owned) for m in self.active()}

    def close_all(self):
        for m in self.active():
            m.close()


def delivery_counts(group):
    counts = {}
    for m in group.members.values():
        for (p, o) in m.deliveries:
            counts[(p, o)] = counts.get((p, o), 0) + 1
    return counts


# ---------------------------------------------------------------------------- scenarios


def scenario_produce(bootstrap, topic, partitions, n):
    partitions, n = int(partitions), int(n)
    create_topic(bootstrap, topic, partitions)
    got = produce(bootstrap, topic, n, partitions=list(range(partitions)))
    emit({"offsets": {str(p): [o[0], o[-1]] if o else [] for p, o in got.items()}})


def scenario_append(bootstrap, topic, partitions, n, tag):
    got = produce(bootstrap, topic, int(n), partitions=list(range(int(partitions))), tag=tag)
    emit({"offsets": {str(p): [o[0], o[-1]] if o else [] for p, o in got.items()}})


def scenario_split(bootstrap, topic, group_id, protocol="classic"):
    """Two members join before any record exists; once they own disjoint halves of the
    topic, 100 records per partition are written and each member must read exactly the
    records of its own partitions, each once."""
    create_topic(bootstrap, topic, 4)
    g = Group(bootstrap, topic, group_id, **protocol_conf(protocol))
    g.commit_below = 1 << 62
    g.add("A")
    g.add("B")
    assignment = g.settle([2, 2], "split")
    settled_at = g.clock.n
    produce(bootstrap, topic, 100)
    g.consume_until(400, "split")
    by_member = {}
    for name, m in g.members.items():
        per = {}
        for (p, o) in m.deliveries:
            per.setdefault(str(p), []).append(o)
        by_member[name] = {p: [len(os_), len(set(os_)), min(os_), max(os_)] for p, os_ in per.items()}
    later_events = [[name, k, ps] for name, m in g.members.items() for (s, k, ps) in m.events if s > settled_at]
    g.close_all()
    emit(
        {
            "assignment": assignment,
            "by_member": by_member,
            "commit_failures": g.commit_failures,
            "events_after_settle": later_events,
        }
    )


def run_membership_changes(bootstrap, topic, group_id, cooperative, protocol="classic"):
    """A and B share the topic; C joins; B leaves. Before each change the members have read
    everything but committed only offsets below a limit (30, then 70), so the records past
    it must come again, exactly once more, from where the commit left off."""
    extra = {"partition.assignment.strategy": "cooperative-sticky"} if cooperative else {}
    extra.update(protocol_conf(protocol))
    create_topic(bootstrap, topic, 4)
    g = Group(bootstrap, topic, group_id, **extra)
    g.add("A")
    g.add("B")
    phases = {}
    phases["ab"] = g.settle([2, 2], "A+B")

    # Phase 1: offsets 0..39 everywhere, committed below 30.
    g.commit_below = 30
    produce(bootstrap, topic, 40, tag="p1")
    g.consume_until(160, "phase 1")

    # C joins.
    mark_join = g.clock.n
    g.add("C")
    if cooperative:
        # Members that keep their partitions need not be told anything: only C must be.
        phases["abc"] = g.settle([1, 1, 2], "C joined", since=0)
    else:
        phases["abc"] = g.settle([1, 1, 2], "C joined", since=mark_join)
    settled_join = g.clock.n
    # Eager: every partition restarts from 30 (40 records again). Cooperative: only the
    # partition that moved to C does.
    moved = sorted(phases["abc"]["C"])
    redelivery = 40 if not cooperative else 10 * len(moved)
    g.consume_until(160 + redelivery, "redelivery after C joined")
    g.commit_below = 70
    produce(bootstrap, topic, 40, tag="p2")
    total = 320 + redelivery
    g.consume_until(total, "phase 2")

    # B leaves (LeaveGroup on close).
    mark_leave = g.clock.n
    b_owned = sorted(g.members["B"].owned)
    g.members["B"].close()
    phases["ac"] = g.settle([2, 2], "B left", since=(0 if cooperative else mark_leave))
    settled_leave = g.clock.n
    redelivery2 = 40 if not cooperative else 10 * len(b_owned)
    g.consume_until(total + redelivery2, "redelivery after B left")
    g.commit_below = 1 << 62
    produce(bootstrap, topic, 40, tag="p3")
    g.consume_until(total + redelivery2 + 160, "phase 3")

    def changes(names, kind, lo, hi):
        out = set()
        for name in names:
            for (s, k, ps) in g.members[name].events:
                if k == kind and lo < s <= hi:
                    out |= set(ps)
        return sorted(out)

    counts = delivery_counts(g)
    unexpected = []
    for p in PARTITIONS:
        for o in range(120):
            twice = (30 <= o < 40 and (not cooperative or p in moved)) or (
                70 <= o < 80 and (not cooperative or p in b_owned)
            )
            want = 2 if twice else 1
            if counts.get((p, o), 0) != want:
                unexpected.append([p, o, counts.get((p, o), 0), want])
    extra_records = sorted([p, o] for (p, o) in counts if o >= 120)
    restart_mismatches = [list(c) for c in g.restart_checks if c[2] != c[3]]
    lost = [[name, ps] for name, m in g.members.items() for (_, k, ps) in m.events if k == "lost"]
    result = {
        "phases": phases,
        "moved_on_join": moved,
        "b_owned": b_owned,
        "revoked_on_join": changes(["A", "B"], "revoke", mark_join, settled_join),
        "revoked_on_leave": changes(["A", "C"], "revoke", mark_leave, settled_leave),
        "assigned_on_leave": changes(["A", "C"], "assign", mark_leave, settled_leave),
        "lost": lost,
        "deliveries": sum(counts.values()),
        "unexpected": unexpected,
        "extra_records": extra_records,
        "restart_checks": len(g.restart_checks),
        "restart_mismatches": restart_mismatches,
        "commit_failures": g.commit_failures,
    }
    g.close_all()
    # The committed offsets as a consumer outside the group's life sees them.
    probe = Consumer(consumer_conf(bootstrap, group_id, "probe"))
    committed = probe.committed([TopicPartition(topic, p) for p in PARTITIONS], timeout=30)
    probe.close()
    result["committed"] = {str(tp.partition): tp.offset for tp in committed}
    emit(result)


def scenario_commit(bootstrap, topic, group_id, offsets_json):
    """A group member commits the given offsets with metadata, then leaves."""
    wanted = {int(p): v for p, v in json.loads(offsets_json).items()}
    g = Group(bootstrap, topic, group_id)
    m = g.add("committer")
    g.settle([4], "committer joined")
    tps = [TopicPartition(topic, p, off, meta) for p, (off, meta) in sorted(wanted.items())]
    result = m.c.commit(offsets=tps, asynchronous=False)
    errors = [[tp.partition, str(tp.error)] for tp in result if tp.error is not None]
    m.close()
    emit({"committed": len(tps), "errors": errors})


def metadata_of(tp):
    """The committed metadata as confluent-kafka returns it. It reads metadata as a C string,
    so metadata committed without a terminating NUL (by other clients) comes back with
    whatever follows it in memory, which may not even decode: reported as a marker."""
    try:
        return tp.metadata
    except UnicodeDecodeError:
        return "<undecodable>"


def scenario_committed(bootstrap, topic, group_id, partitions, protocol="classic"):
    """committed() with metadata for every partition, then a member reads to the end and
    reports the first and last offset it got per partition."""
    n = int(partitions)
    probe = Consumer(consumer_conf(bootstrap, group_id, "probe"))
    committed = probe.committed([TopicPartition(topic, p) for p in range(n)], timeout=30)
    probe.close()
    out = {str(tp.partition): [tp.offset, metadata_of(tp)] for tp in committed}
    g = Group(bootstrap, topic, group_id, **protocol_conf(protocol))
    m = g.add("reader")
    # The topic's end offsets tell how many records remain.
    lo_hi = {}
    for p in range(n):
        lo_hi[p] = m.c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
    expect = 0
    for p in range(n):
        start = out[str(p)][0] if out[str(p)][0] >= 0 else lo_hi[p][0]
        expect += lo_hi[p][1] - start
    deadline = time.time() + WAIT_S
    while not m.owned or len(m.deliveries) < expect:
        if time.time() > deadline:
            fail("reader got %d of %d records" % (len(m.deliveries), expect))
        g.poll_once()
    quiet = time.time() + 1.0
    while time.time() < quiet:
        g.poll_once()
    ranges = {}
    for (p, o) in m.deliveries:
        r = ranges.setdefault(str(p), [o, o, 0])
        r[0], r[1], r[2] = min(r[0], o), max(r[1], o), r[2] + 1
    m.close()
    emit({"committed": out, "read": ranges, "deliveries": len(m.deliveries)})


def scenario_alo(bootstrap, topic, group_id, db_path, total, crash_after, commit_every):
    """At-least-once: each record is written to sqlite (and the transaction committed)
    before its offset is committed to Kafka, every COMMIT_EVERY records. With CRASH_AFTER,
    the process SIGKILLs itself right after writing that many records."""
    total, crash_after, commit_every = int(total), int(crash_after), int(commit_every)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE IF NOT EXISTS processed (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
               " run INTEGER, p INTEGER, o INTEGER, v TEXT)")
    db.commit()
    run = db.execute("SELECT COALESCE(MAX(run), 0) + 1 FROM processed").fetchone()[0]
    c = Consumer(consumer_conf(bootstrap, group_id, "alo-%d" % run))
    c.subscribe([topic])
    processed = 0
    deadline = time.time() + WAIT_S
    last = time.time()
    while True:
        m = c.poll(0.1)
        if m is None:
            # Done when nothing more came for 2 s after reaching the end of every partition.
            if processed > 0 and time.time() - last > 2.0:
                break
            if time.time() > deadline:
                fail("alo run %d: only %d records within %ds" % (run, processed, WAIT_S))
            continue
        if m.error():
            fail("alo: consumer error %s" % m.error())
        last = time.time()
        db.execute("INSERT INTO processed (run, p, o, v) VALUES (?, ?, ?, ?)",
                   (run, m.partition(), m.offset(), m.value().decode()))
        db.commit()
        processed += 1
        if processed % commit_every == 0:
            c.commit(asynchronous=False)
        if crash_after and processed == crash_after:
            log("alo run %d: crashing after %d records" % (run, processed))
            os.kill(os.getpid(), signal.SIGKILL)
    try:
        c.commit(asynchronous=False)
    except KafkaException as e:
        # Nothing read since the last commit: nothing to commit.
        if e.args[0].code() != KafkaError._NO_OFFSET:
            raise
    c.close()
    emit({"run": run, "processed": processed, "total": total})


def scenario_alo_report(db_path):
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT run, p, o, v FROM processed ORDER BY seq").fetchall()
    emit({"rows": [list(r) for r in rows]})


def scenario_member(bootstrap, topic, group_id, name, *opts):
    """A long-running member: one JSON event per line on stdout, until killed."""
    kv = dict(o.split("=", 1) for o in opts)
    extra = {}
    if "instance" in kv:
        extra["group.instance.id"] = kv["instance"]
    if "strategy" in kv:
        extra["partition.assignment.strategy"] = kv["strategy"]
    if "session" in kv:
        extra["session.timeout.ms"] = int(kv["session"])
    extra.update(protocol_conf(kv.get("protocol", "classic")))
    conf = consumer_conf(bootstrap, group_id, name, **extra)

    def out(obj):
        obj["t"] = int(time.time() * 1000)
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()

    c = Consumer(conf)
    c.subscribe(
        [topic],
        on_assign=lambda _c, ps: out({"ev": "assign", "partitions": sorted(tp.partition for tp in ps)}),
        on_revoke=lambda _c, ps: out({"ev": "revoke", "partitions": sorted(tp.partition for tp in ps)}),
        on_lost=lambda _c, ps: out({"ev": "lost", "partitions": sorted(tp.partition for tp in ps)}),
    )
    out({"ev": "ready", "pid": os.getpid()})
    member_id = None
    while True:
        m = c.poll(0.1)
        mid = c.memberid()
        if mid and mid != member_id:
            member_id = mid
            out({"ev": "member_id", "id": mid})
        if m is None:
            continue
        if m.error():
            out({"ev": "error", "error": str(m.error())})
            continue
        out({"ev": "record", "p": m.partition(), "o": m.offset()})
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            out({"ev": "commit_failed", "p": m.partition(), "o": m.offset(), "error": str(e)})


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    scenario, args = sys.argv[1], sys.argv[2:]
    table = {
        "produce": scenario_produce,
        "append": scenario_append,
        "split": scenario_split,
        "rebalance": lambda b, t, g: run_membership_changes(b, t, g, cooperative=False),
        "cooperative": lambda b, t, g: run_membership_changes(b, t, g, cooperative=True),
        "consumer-protocol": lambda b, t, g: run_membership_changes(b, t, g, cooperative=True, protocol="consumer"),
        "commit": scenario_commit,
        "committed": scenario_committed,
        "alo": scenario_alo,
        "alo-report": scenario_alo_report,
        "member": scenario_member,
    }
    if scenario not in table:
        fail("unknown scenario %r" % scenario)
    table[scenario](*args)


if __name__ == "__main__":
    main()
